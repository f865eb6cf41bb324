-- Columns and indexes the embedded Auth relies on, applied after the compatibility SQL.
-- Each piece is added only when missing, checked in the catalog first, so a stack starting on a
-- database that already has them takes no table locks (other stacks may be using it).
do $$
declare
  c record;
begin
  for c in
    select * from (values
      ('users', 'instance_id', 'uuid'),
      ('users', 'aud', 'varchar(255)'),
      ('users', 'role', 'varchar(255)'),
      ('users', 'encrypted_password', 'varchar(255)'),
      ('users', 'email_confirmed_at', 'timestamptz'),
      ('users', 'last_sign_in_at', 'timestamptz'),
      ('users', 'raw_app_meta_data', 'jsonb'),
      ('users', 'raw_user_meta_data', 'jsonb'),
      ('users', 'created_at', 'timestamptz default now()'),
      ('users', 'updated_at', 'timestamptz default now()'),
      ('users', 'is_anonymous', 'boolean not null default false'),
      ('refresh_tokens', 'parent', 'varchar(255)'),
      ('refresh_tokens', 'session_id', 'uuid'),
      ('refresh_tokens', 'revoked', 'boolean not null default false'),
      ('refresh_tokens', 'created_at', 'timestamptz default now()'),
      ('refresh_tokens', 'updated_at', 'timestamptz default now()')
    ) as wanted (tbl, col, typ)
  loop
    if not exists (select from information_schema.columns
                   where table_schema = 'auth' and table_name = c.tbl and column_name = c.col) then
      execute format('alter table auth.%I add column %I %s', c.tbl, c.col, c.typ);
    end if;
  end loop;
  -- Sign-in looks users up by lower(email); GoTrue keeps emails lower-case too.
  if to_regclass('auth.users_email_lower_key') is null then
    create unique index users_email_lower_key on auth.users (lower(email));
  end if;
  if not exists (select from pg_indexes where schemaname = 'auth' and tablename = 'refresh_tokens'
                 and indexdef like '%UNIQUE%(token)%') then
    create unique index refresh_tokens_token_key on auth.refresh_tokens (token);
  end if;
end
$$;
