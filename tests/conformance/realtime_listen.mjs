// Subscribes with the real supabase-js client and reports what it sees, one JSON object per
// line on stdout. Driven by crates/stack/tests/realtime_conformance.rs.
//   env: SUPABASE_URL, ANON_KEY, ACCESS_TOKEN, VSN (1.0.0 | 2.0.0), TABLE, FILTER (optional)
//   stdin: "remove" → removeChannel, then {"removed": <result>}; "quit" → exit.
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import readline from 'node:readline';

const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const { SUPABASE_URL, ANON_KEY, ACCESS_TOKEN, VSN, TABLE, FILTER } = process.env;

const supabase = createClient(SUPABASE_URL, ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { vsn: VSN, transport: WebSocket },
});
await supabase.realtime.setAuth(ACCESS_TOKEN);

const binding = { event: '*', schema: 'public', table: TABLE };
if (FILTER) binding.filter = FILTER;
const channel = supabase
  .channel('conformance')
  .on('postgres_changes', binding, (payload) => say({ change: payload }))
  .on('system', {}, (payload) => say({ system: payload }))
  .subscribe((status, err) => say({ status, error: err ? String(err) : null }));

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  if (line === 'remove') {
    say({ removed: await supabase.removeChannel(channel) });
  } else if (line === 'quit') {
    process.exit(0);
  }
});
