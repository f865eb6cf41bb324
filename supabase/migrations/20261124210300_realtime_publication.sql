-- Publish the synced tables and the token table to Supabase Realtime (postgres_changes).
-- Guarded: Supabase's image creates `supabase_realtime` empty, the embedded stack's
-- compatibility SQL creates it too, and a table already published is not added twice.
do $$
declare
  t text;
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  foreach t in array array['wallets', 'channels', 'categories_user', 'transactions', 'plans',
                           'user_sync_tokens'] loop
    if not exists (
      select from pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;
