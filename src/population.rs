//! Seeding the population before the load: users through the target's admin API (at a
//! bounded rate, like a real sign-up flow would be), then each user's rows by SQL when a
//! database URL is available. Everything is a pure function of the seed, so every shard and
//! worker knows a user's e-mail and password without asking.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
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

/// User `index`'s credentials.
pub fn credentials(tag: &str, index: u64) -> Credentials {
    Credentials {
        email: format!("u{index}@{tag}"),
        password: format!("pw-{:016x}", mix(0x5EED, index, tag.len() as u64)),
    }
}

/// Creates users `users` through the admin API, at most `SIGNUP_CONCURRENCY` at once.
/// Returns their server ids in order.
pub async fn create_users(
    endpoint: &Endpoint,
    service_role_key: &str,
    tag: &str,
    users: Range<u64>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Vec<Uuid>, SeedError> {
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
            async move {
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

/// Column arrays of one batch, one `Vec` per column.
#[derive(Default)]
struct Batch {
    wallets: (Vec<Uuid>, Vec<Uuid>, Vec<i64>),
    channels: (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>, Vec<i64>),
    categories: (Vec<Uuid>, Vec<Uuid>, Vec<i64>),
    transactions: (
        Vec<Uuid>,
        Vec<Uuid>,
        Vec<Uuid>,
        Vec<Uuid>,
        Vec<Uuid>,
        Vec<i64>,
        Vec<i64>,
    ),
    plans: (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>, Vec<i64>, Vec<i64>),
    rows: u64,
}

impl Batch {
    fn add_user(&mut self, seed: u64, index: u64, user: Uuid, counts: UserRows) {
        let age = |t: u64, n: u64| {
            (mix(seed, index, t << 40 | n | 1 << 63) % (HISTORY_DAYS as u64 * 86_400_000)) as i64
        };
        let pick = |ids: &[Uuid], t: u64, n: u64| {
            ids[(mix(seed, index, t << 32 | n) % ids.len() as u64) as usize]
        };
        let wallets: Vec<Uuid> = (0..counts.wallets)
            .map(|n| row_id(seed, index, 1, n))
            .collect();
        let channels: Vec<Uuid> = (0..counts.channels)
            .map(|n| row_id(seed, index, 2, n))
            .collect();
        let categories: Vec<Uuid> = (0..counts.categories)
            .map(|n| row_id(seed, index, 3, n))
            .collect();
        for (n, id) in wallets.iter().enumerate() {
            push3(&mut self.wallets, *id, user, age(1, n as u64));
        }
        for (n, id) in channels.iter().enumerate() {
            let c = &mut self.channels;
            (
                c.0.push(*id),
                c.1.push(user),
                c.2.push(pick(&wallets, 2, n as u64)),
                c.3.push(age(2, n as u64)),
            );
        }
        for (n, id) in categories.iter().enumerate() {
            push3(&mut self.categories, *id, user, age(3, n as u64));
        }
        for n in 0..counts.transactions {
            let t = &mut self.transactions;
            t.0.push(row_id(seed, index, 4, n));
            t.1.push(user);
            t.2.push(pick(&wallets, 4, n));
            t.3.push(pick(&channels, 5, n));
            t.4.push(pick(&categories, 6, n));
            t.5.push((mix(seed, index, 7 << 40 | n) % 100_000) as i64);
            t.6.push(age(4, n));
        }
        for n in 0..counts.plans {
            let p = &mut self.plans;
            (
                p.0.push(row_id(seed, index, 5, n)),
                p.1.push(user),
                p.2.push(pick(&categories, 8, n)),
            );
            (
                p.3.push((mix(seed, index, 9 << 40 | n) % 500_000) as i64),
                p.4.push(age(5, n)),
            );
        }
        self.rows += counts.wallets
            + counts.channels
            + counts.categories
            + counts.transactions
            + counts.plans;
    }
}

fn push3(cols: &mut (Vec<Uuid>, Vec<Uuid>, Vec<i64>), id: Uuid, user: Uuid, age: i64) {
    cols.0.push(id);
    cols.1.push(user);
    cols.2.push(age);
}

const AT: &str = "date_trunc('milliseconds', now() - make_interval(secs => a / 1000.0))";

/// Seeds every user's rows by SQL, `ROW_BATCH_USERS` users per round trip. Returns rows written.
pub async fn seed_rows(
    database_url: &str,
    population: &Population,
    seed: u64,
    users: Range<u64>,
    user_ids: &[Uuid],
) -> Result<u64, SeedError> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(SeedError::Connect)?;
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
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
        insert_batch(&client, &batch)
            .await
            .map_err(SeedError::Rows)?;
        written += batch.rows;
    }
    connection.abort();
    Ok(written)
}

async fn insert_batch(db: &tokio_postgres::Client, b: &Batch) -> Result<(), tokio_postgres::Error> {
    let tx = format!(
        "insert into public.wallets (id, user_id, name, updated_at) \
         select i, u, 'wallet ' || (a % 100000), {AT} from unnest($1::uuid[], $2::uuid[], $3::int8[]) as x(i, u, a)"
    );
    db.execute(&tx, &[&b.wallets.0, &b.wallets.1, &b.wallets.2])
        .await?;
    let ch = format!(
        "insert into public.channels (id, user_id, wallet_id, name, updated_at) \
         select i, u, w, 'channel ' || (a % 100000), {AT} from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[]) as x(i, u, w, a)"
    );
    let c = &b.channels;
    db.execute(&ch, &[&c.0, &c.1, &c.2, &c.3]).await?;
    let cat = format!(
        "insert into public.categories_user (id, user_id, name, updated_at) \
         select i, u, 'category ' || (a % 100000), {AT} from unnest($1::uuid[], $2::uuid[], $3::int8[]) as x(i, u, a)"
    );
    db.execute(&cat, &[&b.categories.0, &b.categories.1, &b.categories.2])
        .await?;
    let t = &b.transactions;
    let trx = format!(
        "insert into public.transactions (id, user_id, wallet_id, channel_id, category_id, amount, updated_at) \
         select i, u, w, c, k, m::numeric / 100, {AT} \
         from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int8[], $7::int8[]) as x(i, u, w, c, k, m, a)"
    );
    db.execute(&trx, &[&t.0, &t.1, &t.2, &t.3, &t.4, &t.5, &t.6])
        .await?;
    let p = &b.plans;
    let pl = format!(
        "insert into public.plans (id, user_id, category_id, name, amount, updated_at) \
         select i, u, k, 'plan', m::numeric / 100, {AT} \
         from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::int8[]) as x(i, u, k, m, a)"
    );
    db.execute(&pl, &[&p.0, &p.1, &p.2, &p.3, &p.4]).await?;
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
