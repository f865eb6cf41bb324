-- sync_push(rows jsonb): server-side last-writer-wins push (the report's "Edge Functions" roadmap).
--
-- Body: `[{"table": "wallets", "row": {"id": ..., "updated_at": ..., ...}}, ...]`, tables among
-- wallets, channels, categories_user, transactions, plans. A row is inserted, or updates the
-- stored one only when its `updated_at` is strictly newer; otherwise it "lost". Returns
-- `{"applied": [ids], "lost": [ids]}`. Keys missing from a row take the column default
-- (`user_id` defaults to the caller); unknown keys are ignored; a row repeated in one push
-- counts once, its newest version.
--
-- Security invoker, so row-level security applies to every row as it would to a REST write.
--
-- Locking, so concurrent pushes cannot deadlock:
-- 1. the caller's token row is locked first. The sync-token trigger would lock it at the first
--    changed row anyway (a user's pushes serialise either way), but taking it first removes
--    the cycle "push A holds the token and waits for a row push B is inserting, while B waits
--    for the token";
-- 2. tables go in tier order (parents first), one INSERT … ON CONFLICT statement each, rows in
--    id order, so row locks are taken in one global order. Foreign keys are checked at the end
--    of each statement, so a parent and its child may arrive in the same push.

-- Locks (creating when missing) the token rows of the given users, in id order. A signed-in
-- caller may lock only their own; service_role may lock any. Definer: callers cannot write
-- user_sync_tokens themselves.
create or replace function private.lock_sync_tokens(p_users uuid[]) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  me uuid := auth.uid();
  users uuid[];
begin
  users := case when me is null then p_users else array[me] end;
  insert into public.user_sync_tokens (user_id, sync_token)
  select u, 0 from unnest(users) u order by u
  on conflict (user_id) do nothing;
  perform 1 from public.user_sync_tokens
  where user_id = any (users) order by user_id for update;
end
$$;
revoke all on function private.lock_sync_tokens(uuid[]) from public;
grant execute on function private.lock_sync_tokens(uuid[]) to authenticated, service_role;

-- One table's share of a push is one statement in `private.sync_push_<table>(rows jsonb)`,
-- returning the ids it applied. The functions are generated from the table's columns (so
-- they follow the schema) but hold static SQL, so each session plans them once. A migration
-- that changes a synced table's columns must call `private.build_sync_push_table` again.
create or replace function private.build_sync_push_table(p_table text) returns void
language plpgsql set search_path = ''
as $$
declare
  target regclass := format('public.%I', p_table)::regclass;
  fn text := 'sync_push_' || p_table;
  cols text;
  vals text;
  updates text;
begin
  select string_agg(format('%I', a.attname), ', ' order by a.attnum),
         string_agg(
           case
             when a.attname = 'user_id' then 'coalesce(user_id, auth.uid())'
             when d.adbin is not null then
               format('coalesce(%I, %s)', a.attname, pg_get_expr(d.adbin, d.adrelid))
             else format('%I', a.attname)
           end, ', ' order by a.attnum),
         string_agg(format('%1$I = excluded.%1$I', a.attname), ', ' order by a.attnum)
           filter (where a.attname not in ('id', 'user_id'))
    into cols, vals, updates
  from pg_attribute a
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  where a.attrelid = target and a.attnum > 0 and not a.attisdropped;

  execute format($f$
    create or replace function private.%1$I(p_rows jsonb) returns uuid[]
    language plpgsql set search_path = ''
    as $body$
    declare
      applied uuid[];
    begin
      with incoming as (
        select distinct on (id) * from jsonb_populate_recordset(null::%2$s, p_rows)
        order by id, updated_at desc nulls last
      ), written as (
        insert into %2$s as t (%3$s)
        select %4$s from incoming order by id
        on conflict (id) do update set %5$s where excluded.updated_at > t.updated_at
        returning t.id
      )
      select coalesce(array_agg(id order by id), '{}') into applied from written;
      return applied;
    end
    $body$
  $f$, fn, target, cols, vals, updates);
  execute format('revoke all on function private.%I(jsonb) from public', fn);
  execute format('grant execute on function private.%I(jsonb) to authenticated, service_role', fn);
end
$$;
revoke all on function private.build_sync_push_table(text) from public;

select private.build_sync_push_table(t)
from unnest(array['wallets', 'channels', 'categories_user', 'transactions', 'plans']) t;

create or replace function public.sync_push(rows jsonb) returns jsonb
language plpgsql security invoker set search_path = ''
as $$
declare
  tiers constant text[] := array['wallets', 'channels', 'categories_user', 'transactions', 'plans'];
  body constant jsonb := sync_push.rows;
  bad text;
  t text;
  table_rows jsonb;
  written uuid[];
  applied uuid[] := '{}';
  offered uuid[];
begin
  if jsonb_typeof(body) is distinct from 'array' then
    raise exception 'sync_push expects a JSON array of {"table": ..., "row": {...}}'
      using errcode = '22023';
  end if;
  select coalesce(e ->> 'table', 'null') into bad from jsonb_array_elements(body) e
  where not coalesce(e ->> 'table' = any (tiers), false)
     or jsonb_typeof(e -> 'row') is distinct from 'object'
  limit 1;
  if found then
    raise exception 'sync_push: entry for table % is not {"table": one of %, "row": {...}}', bad, tiers
      using errcode = '22023';
  end if;

  perform private.lock_sync_tokens(array(
    select distinct (e -> 'row' ->> 'user_id')::uuid from jsonb_array_elements(body) e
    where e -> 'row' ? 'user_id'));

  foreach t in array tiers loop
    select jsonb_agg(e -> 'row') into table_rows from jsonb_array_elements(body) e
    where e ->> 'table' = t;
    continue when table_rows is null;
    written := case t
      when 'wallets' then private.sync_push_wallets(table_rows)
      when 'channels' then private.sync_push_channels(table_rows)
      when 'categories_user' then private.sync_push_categories_user(table_rows)
      when 'transactions' then private.sync_push_transactions(table_rows)
      when 'plans' then private.sync_push_plans(table_rows)
    end;
    applied := applied || written;
  end loop;

  select array(select distinct (e -> 'row' ->> 'id')::uuid from jsonb_array_elements(body) e)
    into offered;
  return jsonb_build_object(
    'applied', to_jsonb(applied),
    'lost', to_jsonb(array(select o from unnest(offered) o where o <> all (applied) order by o)));
end
$$;
-- anon may call it (as any public function on Supabase) but fails at the token lock.
grant execute on function public.sync_push(jsonb) to anon, authenticated, service_role;
