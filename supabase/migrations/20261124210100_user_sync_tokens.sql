-- USAP authority token: every committed change to a user's rows in the five synced tables
-- raises that user's `sync_token` (shared/design/sync-protocol.md, "USAP authority check").
--
-- A row-level AFTER trigger upserts the user's token row. This is faithful, and it is part of
-- what the simulator measures (risk 3): the upsert takes the token row's lock until commit, so
-- all writers of one user are serialised from their first changed row on, and a batch of N rows
-- rewrites the token row N times. Devices only read the table; writes come from the trigger.

create table public.user_sync_tokens (
  user_id uuid primary key references auth.users (id) on delete cascade,
  sync_token bigint not null default 0
);

alter table public.user_sync_tokens enable row level security;
create policy user_sync_tokens_select_own on public.user_sync_tokens
  for select to authenticated using (user_id = auth.uid());
grant select on table public.user_sync_tokens to anon, authenticated, service_role;
revoke insert, update, delete, truncate on table public.user_sync_tokens from anon, authenticated;
grant all on table public.user_sync_tokens to service_role;

-- Helpers the API must not expose live in `private` (PostgREST serves `public` only).
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Security definer: the invoker may not write tokens directly. `search_path` is pinned.
create or replace function private.raise_sync_token() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    -- Update only: on a cascaded delete of the user, the token row may already be gone,
    -- and inserting one would violate its own foreign key.
    update public.user_sync_tokens set sync_token = sync_token + 1 where user_id = old.user_id;
    return null;
  end if;
  insert into public.user_sync_tokens as s (user_id, sync_token)
  values (new.user_id, 1)
  on conflict (user_id) do update set sync_token = s.sync_token + 1;
  if tg_op = 'UPDATE' and old.user_id is distinct from new.user_id then
    update public.user_sync_tokens set sync_token = sync_token + 1 where user_id = old.user_id;
  end if;
  return null;
end
$$;
revoke all on function private.raise_sync_token() from public;

do $$
declare
  t text;
begin
  foreach t in array array['wallets', 'channels', 'categories_user', 'transactions', 'plans'] loop
    execute format(
      'create trigger raise_sync_token after insert or update or delete on public.%I '
      'for each row execute function private.raise_sync_token()', t);
  end loop;
end
$$;
