-- The five synced FinOS tables (shared/design/sync-protocol.md), with row-level security.
--
-- Every row: `id` made on the device, `user_id` the owner, `updated_at` set by the device's
-- clock with millisecond precision (last-writer-wins compares it), `deleted` a tombstone so
-- deletes sync. Index (user_id, updated_at) serves the delta pull
-- `where user_id = $me and updated_at > $cursor order by updated_at`.
--
-- Foreign keys between synced tables are composite, (parent_id, user_id) → (id, user_id):
-- foreign-key checks bypass row-level security, so a single-column key would let a user attach
-- rows to another user's wallet by guessing its id. The cost is one extra unique index per
-- parent table. Parents are never deleted (tombstones), so no ON DELETE actions.

create table public.wallets (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null,
  currency char(3) not null default 'USD',
  balance numeric(14, 2) not null default 0,
  updated_at timestamptz not null default now(),
  deleted boolean not null default false,
  unique (id, user_id)
);

create table public.channels (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  wallet_id uuid not null,
  name text not null,
  kind text not null default 'cash',
  updated_at timestamptz not null default now(),
  deleted boolean not null default false,
  unique (id, user_id),
  foreign key (wallet_id, user_id) references public.wallets (id, user_id)
);

create table public.categories_user (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  parent_id uuid,
  name text not null,
  kind text not null default 'expense' check (kind in ('expense', 'income')),
  updated_at timestamptz not null default now(),
  deleted boolean not null default false,
  unique (id, user_id),
  foreign key (parent_id, user_id) references public.categories_user (id, user_id)
);

create table public.transactions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  wallet_id uuid not null,
  channel_id uuid not null,
  category_id uuid not null,
  amount numeric(14, 2) not null,
  currency char(3) not null default 'USD',
  note text,
  occurred_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted boolean not null default false,
  foreign key (wallet_id, user_id) references public.wallets (id, user_id),
  foreign key (channel_id, user_id) references public.channels (id, user_id),
  foreign key (category_id, user_id) references public.categories_user (id, user_id)
);

create table public.plans (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  category_id uuid not null,
  wallet_id uuid,
  name text not null,
  amount numeric(14, 2) not null,
  period text not null default 'month' check (period in ('week', 'month', 'year')),
  starts_on date not null default current_date,
  updated_at timestamptz not null default now(),
  deleted boolean not null default false,
  foreign key (category_id, user_id) references public.categories_user (id, user_id),
  foreign key (wallet_id, user_id) references public.wallets (id, user_id)
);

create index wallets_user_id_updated_at_idx on public.wallets (user_id, updated_at);
create index channels_user_id_updated_at_idx on public.channels (user_id, updated_at);
create index categories_user_user_id_updated_at_idx on public.categories_user (user_id, updated_at);
create index transactions_user_id_updated_at_idx on public.transactions (user_id, updated_at);
create index plans_user_id_updated_at_idx on public.plans (user_id, updated_at);

-- Row-level security: a user reads and writes only their own rows. Policies are for
-- `authenticated`; `anon` gets none (so nothing), `service_role` bypasses RLS.
do $$
declare
  t text;
begin
  foreach t in array array['wallets', 'channels', 'categories_user', 'transactions', 'plans'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format(
      'create policy %I on public.%I for select to authenticated using (user_id = auth.uid())',
      t || '_select_own', t);
    execute format(
      'create policy %I on public.%I for insert to authenticated with check (user_id = auth.uid())',
      t || '_insert_own', t);
    execute format(
      'create policy %I on public.%I for update to authenticated using (user_id = auth.uid()) with check (user_id = auth.uid())',
      t || '_update_own', t);
    execute format(
      'create policy %I on public.%I for delete to authenticated using (user_id = auth.uid())',
      t || '_delete_own', t);
    -- Explicit, as a Supabase project's default privileges would give them.
    execute format('grant all on table public.%I to anon, authenticated, service_role', t);
  end loop;
end
$$;
