//! Seeding the population before the load: users through the target's admin API (at a
//! bounded rate, like a real sign-up flow would be), then each user's rows by SQL when a
//! database URL is available. Everything is a pure function of the seed, so every shard and
//! worker knows a user's e-mail and password without asking.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use syncstorm_device::{Table, finos_columns};
use syncstorm_scenario::{Population, RowDist};
use syncstorm_wire::client::{AuthClient, Endpoint};
use uuid::Uuid;

use crate::driver::Credentials;
use crate::swarm::faults::{mix, unit};

/// Admin sign-ups in flight at once.
pub const SIGNUP_CONCURRENCY: usize = 16;
/// Users whose rows go into one SQL round trip.
const ROW_BATCH_USERS: usize = 200;
/// Seeded rows carry `updated_at` spread over this many days before now. Data columns follow
/// `syncstorm_device::row::data_column` (`name` = "wallet 123", `amount` in cents).
const HISTORY_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("could not create user {index} through the admin API: {message}")]
    User { index: u64, message: String },
    #[error("could not connect to the database to seed rows: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("seeding rows failed: {0}")]
    Rows(#[source] tokio_postgres::Error),
    #[error("creating users by SQL failed: {0}")]
    Users(#[source] tokio_postgres::Error),
    #[error("preparing the users failed: {0}")]
    Build(String),
    #[error("seeding was stopped")]
    Cancelled,
}

/// The e-mail domain of one run's users (unique per run, so a real target never collides).
pub fn credential_tag(scenario: &str, seed: u64, run_id: i64) -> String {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{safe}-{seed}-{run_id}.syncstorm.test")
}

/// User `index`'s credentials. Every user of one run shares the run's password, so a setup
/// by SQL hashes it once (`crate::fast_setup`); each sign-in still verifies a bcrypt hash at
/// the scenario's cost, so what the server does per sign-in is unchanged.
pub fn credentials(tag: &str, index: u64) -> Credentials {
    let tag_hash = tag.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    Credentials {
        email: format!("u{index}@{tag}"),
        password: format!("pw-{:016x}", mix(0x5EED, tag_hash, tag.len() as u64)),
    }
}

/// Creates users `users` through the admin API, at most `SIGNUP_CONCURRENCY` at once.
/// Returns their server ids in order.
pub async fn create_users(
    endpoint: &Endpoint,
    service_role_key: &str,
    tag: &str,
    users: Range<u64>,
    max_request_rate: Option<f64>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Vec<Uuid>, SeedError> {
    // Sign-ups count against the run's request ceiling like any other request.
    let limiter = max_request_rate
        .and_then(|rate| crate::target::RequestLimiter::new(rate, (rate / 10.0).floor() as u32))
        .map(Arc::new);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| SeedError::User {
            index: users.start,
            message: e.to_string(),
        })?;
    let auth = Arc::new(AuthClient::new(http, endpoint.clone()));
    let key: Arc<str> = Arc::from(service_role_key);
    let tag: Arc<str> = Arc::from(tag);
    let creations = stream::iter(users)
        .map(|index| {
            let (auth, key, tag) = (auth.clone(), key.clone(), tag.clone());
            let limiter = limiter.clone();
            async move {
                if let Some(limiter) = &limiter {
                    limiter.acquire().await;
                }
                let c = credentials(&tag, index);
                let user = auth
                    .admin_create_user(&key, &c.email, &c.password)
                    .await
                    .map_err(|e| SeedError::User {
                        index,
                        message: e.to_string(),
                    })?;
                Uuid::parse_str(&user.id).map_err(|e| SeedError::User {
                    index,
                    message: e.to_string(),
                })
            }
        })
        .buffered(SIGNUP_CONCURRENCY)
        .collect::<Vec<_>>();
    let ids = tokio::select! {
        ids = creations => ids,
        _ = cancel.cancelled() => return Err(SeedError::Cancelled),
    };
    ids.into_iter().collect()
}

/// Rows seeded for one user, as counts per table (parents first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRows {
    pub wallets: u64,
    pub channels: u64,
    pub categories: u64,
    pub transactions: u64,
    pub plans: u64,
}

/// How many rows of each table user `index` gets; children without parents get none.
pub fn rows_for(population: &Population, seed: u64, index: u64) -> UserRows {
    let draw = |table: &str, salt: u64| {
        population.rows.get(table).map_or(0, |d: &RowDist| {
            d.quantile(unit(seed, index, 0x7AB1E + salt))
        })
    };
    let wallets = draw("wallets", 0);
    let categories = draw("categories_user", 2);
    let channels = if wallets > 0 { draw("channels", 1) } else { 0 };
    let transactions = if channels > 0 && categories > 0 {
        draw("transactions", 3)
    } else {
        0
    };
    let plans = if categories > 0 { draw("plans", 4) } else { 0 };
    UserRows {
        wallets,
        channels,
        categories,
        transactions,
        plans,
    }
}

/// A deterministic row id.
fn row_id(seed: u64, user: u64, table: u64, n: u64) -> Uuid {
    let hi = mix(seed, user, table << 40 | n);
    let lo = mix(seed ^ 0xA5A5, user, table << 40 | n);
    uuid::Builder::from_random_bytes(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
        .into_uuid()
}

/// Column arrays of one table in one batch: ids, owners, up to three parent ids, the data
/// value, the age of `updated_at` (ms before now), and the FinOS columns the protocol does not
/// read (`syncstorm_device::finos_columns`, the same values a device writes for the row).
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    user: Vec<Uuid>,
    refs: [Vec<Uuid>; 3],
    value: Vec<i64>,
    age: Vec<i64>,
    texts: [Vec<Option<String>>; 2],
    occurred_before: Vec<i64>,
}

impl Columns {
    fn push(&mut self, table: Table, id: Uuid, user: Uuid, refs: &[Uuid], value: i64, age: i64) {
        self.id.push(id);
        self.user.push(user);
        for (column, r) in self.refs.iter_mut().zip(refs) {
            column.push(*r);
        }
        self.value.push(value);
        self.age.push(age);
        for (column, text) in self
            .texts
            .iter_mut()
            .zip(finos_columns::text_values(table, id))
        {
            column.push(text);
        }
        if let Some(before) = finos_columns::occurred_before_ms(table, id) {
            self.occurred_before.push(before);
        }
    }
}

/// One batch of users' rows, table by table (parents first).
#[derive(Default)]
struct Batch {
    wallets: Columns,
    channels: Columns,
    categories: Columns,
    transactions: Columns,
    plans: Columns,
    rows: u64,
    /// Users with rows, and how many each: the raises of their sync token.
    token_users: Vec<Uuid>,
    token_raises: Vec<i64>,
}

impl Batch {
    fn add_user(&mut self, seed: u64, index: u64, user: Uuid, counts: UserRows) {
        let draw = |t: u64, n: u64| mix(seed, index, t << 40 | n);
        let age =
            |t: u64, n: u64| (draw(t | 1 << 20, n) % (HISTORY_DAYS as u64 * 86_400_000)) as i64;
        let pick =
            |ids: &[Uuid], t: u64, n: u64| ids[(draw(t | 1 << 21, n) % ids.len() as u64) as usize];
        let ids = |t: u64, count: u64| -> Vec<Uuid> {
            (0..count).map(|n| row_id(seed, index, t, n)).collect()
        };
        let (wallets, channels, categories) = (
            ids(1, counts.wallets),
            ids(2, counts.channels),
            ids(3, counts.categories),
        );
        for (n, id) in (0u64..).zip(&wallets) {
            let value = (draw(1, n) % 100_000) as i64;
            self.wallets
                .push(Table::Wallets, *id, user, &[], value, age(1, n));
        }
        for (n, id) in (0u64..).zip(&channels) {
            let wallet = pick(&wallets, 2, n);
            self.channels.push(
                Table::Channels,
                *id,
                user,
                &[wallet],
                (draw(2, n) % 100_000) as i64,
                age(2, n),
            );
        }
        for (n, id) in (0u64..).zip(&categories) {
            let value = (draw(3, n) % 100_000) as i64;
            self.categories
                .push(Table::CategoriesUser, *id, user, &[], value, age(3, n));
        }
        for n in 0..counts.transactions {
            let parents = [
                pick(&wallets, 4, n),
                pick(&channels, 5, n),
                pick(&categories, 6, n),
            ];
            let cents = (draw(7, n) % 100_000) as i64;
            let id = row_id(seed, index, 4, n);
            self.transactions
                .push(Table::Transactions, id, user, &parents, cents, age(4, n));
        }
        for n in 0..counts.plans {
            let category = pick(&categories, 8, n);
            let cents = (draw(9, n) % 500_000) as i64;
            self.plans.push(
                Table::Plans,
                row_id(seed, index, 5, n),
                user,
                &[category],
                cents,
                age(5, n),
            );
        }
        let rows = counts.wallets
            + counts.channels
            + counts.categories
            + counts.transactions
            + counts.plans;
        if rows > 0 {
            self.token_users.push(user);
            self.token_raises.push(rows as i64);
        }
        self.rows += rows;
    }
}

/// How rows are seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSeeding {
    /// Row by row through the tables' triggers (foreign keys, the sync-token trigger): what any
    /// database role may do.
    Triggers,
    /// As a superuser that owns the database (the embedded stack): triggers off for the
    /// session (`session_replication_role = replica`, as a restore does), and each user's
    /// sync token set once to what the row trigger would have made it — one raise per row.
    /// Parents are seeded from the same user's ids before their children, so the foreign keys
    /// hold without being checked.
    Bulk,
}

/// Seeds every user's rows by SQL, `ROW_BATCH_USERS` users per round trip. Returns rows written.
pub async fn seed_rows(
    database_url: &str,
    population: &Population,
    seed: u64,
    users: Range<u64>,
    user_ids: &[Uuid],
    how: RowSeeding,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<u64, SeedError> {
    let (client, connection) = tokio::select! {
        c = tokio_postgres::connect(database_url, tokio_postgres::NoTls) => c.map_err(SeedError::Connect)?,
        _ = cancel.cancelled() => return Err(SeedError::Cancelled),
    };
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    if how == RowSeeding::Bulk {
        client
            .batch_execute("set session_replication_role = replica")
            .await
            .map_err(SeedError::Rows)?;
    }
    let mut written = 0;
    let indices: Vec<u64> = users.collect();
    for (chunk, ids) in indices
        .chunks(ROW_BATCH_USERS)
        .zip(user_ids.chunks(ROW_BATCH_USERS))
    {
        let mut batch = Batch::default();
        for (index, id) in chunk.iter().zip(ids) {
            batch.add_user(seed, *index, *id, rows_for(population, seed, *index));
        }
        tokio::select! {
            r = insert_batch(&client, &batch, how) => r.map_err(SeedError::Rows)?,
            _ = cancel.cancelled() => {
                connection.abort();
                return Err(SeedError::Cancelled);
            }
        }
        written += batch.rows;
    }
    connection.abort();
    Ok(written)
}

/// The rows setup seeds for user `index` (owner `user`), as the server holds them when the
/// load starts at `now_ms`: what the capacity model's server starts from. Same draws as the
/// SQL seed, so a modelled and a measured run start from the same histories.
pub fn seeded_rows(
    population: &Population,
    seed: u64,
    index: u64,
    user: Uuid,
    now_ms: i64,
) -> Vec<syncstorm_device::Row> {
    let mut batch = Batch::default();
    batch.add_user(seed, index, user, rows_for(population, seed, index));
    let tables = [
        (Table::Wallets, &batch.wallets),
        (Table::Channels, &batch.channels),
        (Table::CategoriesUser, &batch.categories),
        (Table::Transactions, &batch.transactions),
        (Table::Plans, &batch.plans),
    ];
    let mut rows = Vec::with_capacity(batch.rows as usize);
    for (table, cols) in tables {
        for i in 0..cols.id.len() {
            let mut refs = [None; syncstorm_device::table::MAX_FKS];
            for (slot, column) in refs.iter_mut().zip(&cols.refs) {
                *slot = column.get(i).copied();
            }
            rows.push(syncstorm_device::Row {
                table,
                id: cols.id[i],
                user_id: user,
                updated_at_ms: now_ms - cols.age[i],
                deleted: false,
                refs,
                value: cols.value[i],
            });
        }
    }
    rows
}

/// `updated_at` from the age column, at PostgreSQL's millisecond precision.
const AT: &str = "date_trunc('milliseconds', now() - make_interval(secs => a / 1000.0))";

/// Insert statements per table: `$1` ids, `$2` owners, `$3..` parents, then value, age, the
/// FinOS text columns (`finos_columns::text_columns`, in order) and, for transactions, how long
/// before `updated_at` the spending occurred.
const INSERTS: [(&str, usize); 5] = [
    (
        "insert into public.wallets (id, user_id, name, updated_at, currency) \
      select i, u, 'wallet ' || v, {AT}, t1 from unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::text[]) as x(i, u, v, a, t1)",
        0,
    ),
    (
        "insert into public.channels (id, user_id, wallet_id, name, updated_at, kind) \
      select i, u, w, 'channel ' || v, {AT}, t1 from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::int8[], $6::text[]) as x(i, u, w, v, a, t1)",
        1,
    ),
    (
        "insert into public.categories_user (id, user_id, name, updated_at, kind) \
      select i, u, 'category ' || v, {AT}, t1 from unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::text[]) as x(i, u, v, a, t1)",
        0,
    ),
    (
        "insert into public.transactions (id, user_id, wallet_id, channel_id, category_id, amount, updated_at, currency, note, occurred_at) \
      select i, u, w, c, k, v::numeric / 100, {AT}, t1, t2, {AT} - make_interval(secs => o / 1000.0) \
      from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::int8[]) as x(i, u, w, c, k, v, a, t1, t2, o)",
        3,
    ),
    (
        "insert into public.plans (id, user_id, category_id, name, amount, updated_at, period) \
      select i, u, k, 'plan', v::numeric / 100, {AT}, t1 \
      from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::int8[], $6::text[]) as x(i, u, k, v, a, t1)",
        1,
    ),
];

/// What the sync-token trigger does for a user's N inserted rows, in one statement.
const RAISE_TOKENS: &str = "insert into public.user_sync_tokens as s (user_id, sync_token) \
     select u, n from unnest($1::uuid[], $2::int8[]) as x(u, n) \
     on conflict (user_id) do update set sync_token = s.sync_token + excluded.sync_token";

async fn insert_batch(
    db: &tokio_postgres::Client,
    b: &Batch,
    how: RowSeeding,
) -> Result<(), tokio_postgres::Error> {
    let tables = [
        &b.wallets,
        &b.channels,
        &b.categories,
        &b.transactions,
        &b.plans,
    ];
    for ((sql, parents), cols) in INSERTS.iter().zip(tables) {
        if cols.id.is_empty() {
            continue;
        }
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&cols.id, &cols.user];
        params.extend(
            cols.refs
                .iter()
                .take(*parents)
                .map(|r| r as &(dyn tokio_postgres::types::ToSql + Sync)),
        );
        params.push(&cols.value);
        params.push(&cols.age);
        let texts = cols.texts.iter().filter(|t| !t.is_empty());
        params.extend(texts.map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
        if !cols.occurred_before.is_empty() {
            params.push(&cols.occurred_before);
        }
        db.execute(&sql.replace("{AT}", AT), &params).await?;
    }
    if how == RowSeeding::Bulk && !b.token_users.is_empty() {
        db.execute(RAISE_TOKENS, &[&b.token_users, &b.token_raises])
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn population() -> Population {
        let mut rows = BTreeMap::new();
        rows.insert("wallets".to_string(), RowDist::Fixed { n: 2 });
        rows.insert("channels".to_string(), RowDist::Fixed { n: 3 });
        rows.insert("categories_user".to_string(), RowDist::Fixed { n: 0 });
        rows.insert(
            "transactions".to_string(),
            RowDist::Uniform { min: 5, max: 9 },
        );
        rows.insert("plans".to_string(), RowDist::Fixed { n: 1 });
        Population {
            users: 10,
            devices_per_user: 2,
            rows,
            password_hash_cost: 4,
        }
    }

    #[test]
    fn children_without_parents_are_not_seeded() {
        let rows = rows_for(&population(), 1, 3);
        assert_eq!((rows.wallets, rows.channels, rows.categories), (2, 3, 0));
        assert_eq!((rows.transactions, rows.plans), (0, 0));
    }

    #[test]
    fn credentials_and_ids_are_stable_and_distinct() {
        let tag = credential_tag("Quick Start", 42, 1700);
        assert_eq!(tag, "quick-start-42-1700.syncstorm.test");
        assert_eq!(credentials(&tag, 7), credentials(&tag, 7));
        assert_ne!(credentials(&tag, 7).email, credentials(&tag, 8).email);
        assert_eq!(row_id(1, 2, 3, 4), row_id(1, 2, 3, 4));
        assert_ne!(row_id(1, 2, 3, 4), row_id(1, 2, 3, 5));
        assert_eq!(row_id(1, 2, 3, 4).get_version_num(), 4);
    }
}
