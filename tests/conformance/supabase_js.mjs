// Conformance: the real @supabase/supabase-js v2 client against a running syncstorm stack.
// Reads SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY (as `syncstorm stack`
// prints them); prints one "ok" line per check and exits non-zero at the first failure.
// Run by crates/stack/tests/stack_conformance.rs; by hand: `node tests/conformance/supabase_js.mjs`.
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

const url = need('SUPABASE_URL');
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket }, // Node 20 has no global WebSocket
};
const admin = createClient(url, need('SUPABASE_SERVICE_ROLE_KEY'), options);
const client = createClient(url, need('SUPABASE_ANON_KEY'), options);

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; source the lines \`syncstorm stack\` prints`);
  return value;
}

function ok(what) {
  console.log(`ok - ${what}`);
}

function check({ data, error, ...rest }, what) {
  assert.equal(error, null, `${what}: ${JSON.stringify(error)}`);
  return { data, ...rest };
}

const email = `conformance-${randomUUID()}@example.com`;
const password = 'conformance-password';

const created = check(await admin.auth.admin.createUser({ email, password, email_confirm: true }), 'admin.createUser');
const uid = created.data.user.id;
assert.equal(created.data.user.email, email);
ok('auth.admin.createUser');

const signedIn = check(await client.auth.signInWithPassword({ email, password }), 'signInWithPassword');
assert.equal(signedIn.data.user.id, uid);
assert.ok(signedIn.data.session.access_token);
ok('auth.signInWithPassword');

const ids = [0, 1, 2, 3, 4].map(() => randomUUID());
const rows = ids.map((id, i) => ({ id, user_id: uid, name: `w${i}`, balance: i * 10 }));
check(await client.from('wallets').insert(rows), 'insert');
ok('from().insert()');

const page = check(
  await client
    .from('wallets')
    .select('id,name,balance', { count: 'exact' })
    .eq('user_id', uid)
    .gt('balance', 0)
    .in('id', ids.slice(1))
    .order('balance', { ascending: false })
    .range(1, 2),
  'select',
);
assert.equal(page.count, 4);
assert.equal(page.status, 206);
assert.deepEqual(page.data.map((r) => r.name), ['w3', 'w2']);
ok('from().select().eq().gt().in().order().range() with count: exact');

const upserted = check(
  await client.from('wallets').upsert({ id: ids[0], user_id: uid, name: 'renamed', balance: 0 }, { onConflict: 'id' }).select('name'),
  'upsert',
);
assert.deepEqual(upserted.data, [{ name: 'renamed' }]);
ok('from().upsert({ onConflict })');

const updated = check(await client.from('wallets').update({ name: 'updated' }).eq('id', ids[1]).select('id,name'), 'update');
assert.deepEqual(updated.data, [{ id: ids[1], name: 'updated' }]);
ok('from().update().eq()');

const pushed = randomUUID();
const rpc = check(
  await client.rpc('sync_push', {
    rows: [{ table: 'wallets', row: { id: pushed, user_id: uid, name: 'pushed', updated_at: new Date().toISOString() } }],
  }),
  'rpc',
);
assert.deepEqual(rpc.data.applied, [pushed]);
ok("rpc('sync_push')");

const oldRefresh = signedIn.data.session.refresh_token;
const refreshed = check(await client.auth.refreshSession(), 'refreshSession');
assert.notEqual(refreshed.data.session.refresh_token, oldRefresh);
assert.equal(refreshed.data.user.id, uid);
const token = check(await client.from('user_sync_tokens').select('sync_token').eq('user_id', uid).single(), 'token read');
assert.ok(token.data.sync_token > 0);
const replay = await fetch(`${url}/auth/v1/token?grant_type=refresh_token`, {
  method: 'POST',
  headers: { apikey: need('SUPABASE_ANON_KEY'), 'content-type': 'application/json' },
  body: JSON.stringify({ refresh_token: oldRefresh }),
});
assert.equal((await replay.json()).error_code, 'refresh_token_already_used');
ok('auth.refreshSession (rotated; the used token is refused)');

const me = check(await client.auth.getUser(), 'getUser');
assert.equal(me.data.user.email, email);
ok('auth.getUser');

const stranger = createClient(url, need('SUPABASE_ANON_KEY'), options);
const other = `conformance-${randomUUID()}@example.com`;
check(await stranger.auth.signUp({ email: other, password }), 'signUp');
const hidden = check(await stranger.from('wallets').select('id').eq('user_id', uid), 'RLS read');
assert.deepEqual(hidden.data, []);
ok('auth.signUp, and row-level security hides other users\' rows');
