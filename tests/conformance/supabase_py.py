"""Conformance: the official `supabase` Python client (pinned in requirements.txt) against a
running syncstorm stack.

Reads SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY (as `syncstorm stack`
prints them); prints one "ok - " line per check and exits non-zero at the first failure.
Its Auth models are strict pydantic types, so every Auth response shape is checked by the
client itself. Run by crates/stack/tests/stack_conformance.rs; by hand, from a venv with
requirements.txt installed: `python tests/conformance/supabase_py.py`.
"""

import asyncio
import os
import sys
import uuid
from datetime import datetime, timezone

from postgrest.types import CountMethod
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

# How long a realtime change may take to arrive.
REALTIME_WAIT_S = 10


def need(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set; source the lines `syncstorm stack` prints")
    return value


def ok(what):
    print(f"ok - {what}", flush=True)


def options():
    return AsyncClientOptions(auto_refresh_token=False, persist_session=False)


async def expect_auth_error(call, error_type, code, status):
    """The call fails with the client's `error_type`, GoTrue's `code` and HTTP `status`."""
    try:
        await call
    except error_type as e:
        assert e.code == code, f"error code {e.code!r}, expected {code!r} ({e})"
        assert e.status == status, f"status {e.status}, expected {status} ({e})"
        return e
    raise AssertionError(f"expected {error_type.__name__} {code}, the call succeeded")


async def auth_checks(url, admin, client, email, password):
    created = await admin.auth.admin.create_user(
        {"email": email, "password": password, "email_confirm": True}
    )
    user = created.user
    assert user.email == email, user
    assert user.email_confirmed_at is not None, user
    [identity] = user.identities
    assert identity.provider == "email" and identity.user_id == user.id, identity
    ok("auth.admin.create_user")

    listed = await admin.auth.admin.list_users(page=1, per_page=1000)
    assert user.id in [u.id for u in listed], "the new user is listed"
    ok("auth.admin.list_users")

    weak = await expect_auth_error(
        admin.auth.admin.create_user({"email": f"w-{email}", "password": "abc"}),
        AuthWeakPasswordError,
        "weak_password",
        422,
    )
    assert weak.reasons == ["length"], weak.reasons
    await expect_auth_error(
        admin.auth.admin.create_user({"email": email, "password": password}),
        AuthApiError,
        "email_exists",
        422,
    )
    ok("auth.admin.create_user errors (weak_password, email_exists)")

    await expect_auth_error(
        client.auth.sign_in_with_password({"email": email, "password": "wrong-password"}),
        AuthApiError,
        "invalid_credentials",
        400,
    )
    signed_in = await client.auth.sign_in_with_password({"email": email, "password": password})
    assert signed_in.user.id == user.id
    assert signed_in.session.access_token and signed_in.session.refresh_token
    assert signed_in.session.token_type == "bearer"
    assert signed_in.user.last_sign_in_at is not None
    ok("auth.sign_in_with_password (and invalid_credentials for a wrong password)")
    return user.id, signed_in.session


async def rest_checks(client, uid):
    ids = [str(uuid.uuid4()) for _ in range(5)]
    rows = [{"id": id, "user_id": uid, "name": f"w{i}", "balance": i * 10} for i, id in enumerate(ids)]
    inserted = await client.table("wallets").insert(rows).execute()
    assert sorted(r["id"] for r in inserted.data) == sorted(ids), inserted.data
    ok("table().insert()")

    page = (
        await client.table("wallets")
        .select("id,name,balance", count=CountMethod.exact)
        .eq("user_id", uid)
        .gt("balance", 0)
        .order("balance", desc=True)
        .limit(2)
        .execute()
    )
    assert page.count == 4, page
    assert [r["name"] for r in page.data] == ["w4", "w3"], page.data
    ok("table().select(count=exact).eq().gt().order(desc).limit()")

    upserted = (
        await client.table("wallets")
        .upsert({"id": ids[0], "user_id": uid, "name": "renamed", "balance": 0}, on_conflict="id")
        .execute()
    )
    assert [r["name"] for r in upserted.data] == ["renamed"], upserted.data
    ok("table().upsert(on_conflict)")

    updated = await client.table("wallets").update({"name": "updated"}).eq("id", ids[1]).execute()
    assert [(r["id"], r["name"]) for r in updated.data] == [(ids[1], "updated")], updated.data
    ok("table().update().eq()")

    deleted = await client.table("wallets").delete().eq("id", ids[2]).execute()
    assert [r["id"] for r in deleted.data] == [ids[2]], deleted.data
    left = await client.table("wallets").select("id", count=CountMethod.exact).eq("user_id", uid).execute()
    assert left.count == 4, left
    ok("table().delete().eq()")

    pushed = str(uuid.uuid4())
    now = datetime.now(timezone.utc).isoformat()
    row = {"id": pushed, "user_id": uid, "name": "pushed", "updated_at": now}
    rpc = await client.rpc("sync_push", {"rows": [{"table": "wallets", "row": row}]}).execute()
    assert rpc.data["applied"] == [pushed], rpc.data
    ok("rpc('sync_push')")


async def refresh_checks(url, anon_key, client, uid, session):
    old_refresh = session.refresh_token
    refreshed = await client.auth.refresh_session()
    assert refreshed.session.refresh_token != old_refresh
    assert refreshed.user.id == uid
    stranger = await acreate_client(url, anon_key, options())
    await expect_auth_error(
        stranger.auth.refresh_session(old_refresh),
        AuthApiError,
        "refresh_token_already_used",
        400,
    )
    me = await client.auth.get_user()
    assert me.user.id == uid
    ok("auth.refresh_session (rotated; the used token is refused) and auth.get_user")


async def realtime_check(client, uid):
    changes = asyncio.Queue(maxsize=16)
    states = asyncio.Queue(maxsize=16)
    channel = client.channel(f"conformance-{uid}")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.All,
        schema="public",
        table="wallets",
        filter=f"user_id=eq.{uid}",
        callback=changes.put_nowait,
    )
    await channel.subscribe(lambda state, err: states.put_nowait((state, err)))
    state, err = await asyncio.wait_for(states.get(), REALTIME_WAIT_S)
    assert state == RealtimeSubscribeStates.SUBSCRIBED, f"{state} {err}"
    id = str(uuid.uuid4())
    await client.table("wallets").insert({"id": id, "user_id": uid, "name": "live"}).execute()
    # Changes committed shortly before the join may still arrive (Realtime reads the WAL in
    # polls, matching against the subscriptions of the moment), so wait for this one.
    async def the_insert():
        while True:
            change = await changes.get()
            record = change["data"]["record"]
            assert record["user_id"] == uid, change
            if record["id"] == id:
                return change

    change = await asyncio.wait_for(the_insert(), REALTIME_WAIT_S)
    data = change["data"]
    assert data["type"] == "INSERT", change
    assert (data["schema"], data["table"]) == ("public", "wallets"), change
    assert data["record"]["name"] == "live", change
    await client.remove_channel(channel)
    ok("realtime postgres_changes: subscribed, received the INSERT")


async def rls_check(url, anon_key, password, uid):
    stranger = await acreate_client(url, anon_key, options())
    other = f"conformance-py-{uuid.uuid4()}@example.com"
    signed_up = await stranger.auth.sign_up({"email": other, "password": password})
    assert signed_up.session is not None, "autoconfirmed signup signs in"
    hidden = await stranger.table("wallets").select("id").eq("user_id", uid).execute()
    assert hidden.data == [], hidden.data
    ok("auth.sign_up, and row-level security hides other users' rows")


async def main():
    url = need("SUPABASE_URL")
    anon_key = need("SUPABASE_ANON_KEY")
    admin = await acreate_client(url, need("SUPABASE_SERVICE_ROLE_KEY"), options())
    client = await acreate_client(url, anon_key, options())
    email = f"conformance-py-{uuid.uuid4()}@example.com"
    password = "conformance-password"

    uid, session = await auth_checks(url, admin, client, email, password)
    await rest_checks(client, uid)
    await refresh_checks(url, anon_key, client, uid, session)
    await realtime_check(client, uid)
    await rls_check(url, anon_key, password, uid)
    await client.realtime.close()


if __name__ == "__main__":
    asyncio.run(main())
