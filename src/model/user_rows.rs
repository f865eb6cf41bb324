//! The model's server side of the data: each user's rows and sync token, what PostgREST would
//! read and write for that user's requests, kept in memory instead of PostgreSQL.
//!
//! Only rows written during the run are stored. The rows the population seeded are derived
//! again from the seed when a request needs them: at 1M devices, storing them held 1.4 GB,
//! while a pull whose cursor is past a table's newest seeded row (every pull after a device's
//! first) never needs them. Regenerating a user's rows costs about 4.7 µs, so the last few
//! thousand users' seeded rows are cached: a device's tiered first sync asks for five tables
//! within milliseconds.

use syncstorm_device::{Keyset, PageQuery, Row, Table};
use syncstorm_scenario::Population;
use uuid::Uuid;

/// Seeded-row cache slots, direct-mapped by user index (≈ 10 MB at 25 rows a user).
const CACHE_SLOTS: usize = 4096;

/// A user's id in the model: fixed by the seed and the user's index.
pub fn user_uuid(seed: u64, user: u64) -> Uuid {
    Uuid::from_u64_pair(seed ^ 0x5EED_0000_0000_0000, user)
}

struct UserRows {
    /// The user's sync token (USAP): bumped by every commit that changed a row.
    token: i64,
    /// Rows written during the run (new ones, and new versions of seeded ones).
    written: Vec<Row>,
    /// Per table, the newest seeded `updated_at` (`i64::MIN`: the table has no seeded rows).
    seeded_newest: [i64; 5],
}

pub struct ServerRows<'a> {
    population: &'a Population,
    seed: u64,
    /// The seeded rows' `updated_at` are this instant minus each row's age.
    seeded_at_ms: i64,
    users: Vec<Option<UserRows>>,
    cache: Vec<Option<(u64, Vec<Row>)>>,
}

impl<'a> ServerRows<'a> {
    pub fn new(population: &'a Population, seed: u64, seeded_at_ms: i64) -> ServerRows<'a> {
        ServerRows {
            population,
            seed,
            seeded_at_ms,
            users: (0..population.users).map(|_| None).collect(),
            cache: (0..CACHE_SLOTS).map(|_| None).collect(),
        }
    }

    /// The user's sync token.
    pub fn token(&mut self, user: u64) -> i64 {
        self.user(user).token
    }

    /// One keyset page of a table, ordered by (`updated_at`, `id`) as the sync's pull asks.
    pub fn page(&mut self, user: u64, q: &PageQuery) -> Vec<Row> {
        let newest = self.user(user).seeded_newest[q.table.index()];
        // A table without seeded rows (`i64::MIN`) never needs the seed regenerated.
        let seeded_may_match = newest != i64::MIN
            && q.after.is_none_or(|k| match k.id {
                None => newest > k.updated_at_ms,
                Some(_) => newest >= k.updated_at_ms,
            });
        if seeded_may_match {
            self.cache_seeded(user);
        }
        let data = self.users[user as usize].as_ref().expect("seeded above");
        let mut rows: Vec<Row> = data
            .written
            .iter()
            .filter(|r| r.table == q.table && after(r, q.after))
            .cloned()
            .collect();
        if seeded_may_match {
            let seeded = self.cached(user);
            rows.extend(
                seeded
                    .iter()
                    .filter(|r| r.table == q.table && after(r, q.after))
                    .filter(|r| !data.written.iter().any(|w| w.id == r.id))
                    .cloned(),
            );
        }
        rows.sort_by_key(|r| (r.updated_at_ms, r.id));
        rows.truncate(q.limit as usize);
        rows
    }

    /// The current rows of `table` with these ids, in the order the table stores them
    /// (seeded rows first, then rows the run added).
    pub fn read(&mut self, user: u64, table: Table, ids: &[Uuid]) -> Vec<Row> {
        self.user(user);
        self.cache_seeded(user);
        let data = self.users[user as usize].as_ref().expect("made above");
        let seeded = self.cached(user);
        let wanted = |r: &&Row| r.table == table && ids.contains(&r.id);
        let mut rows: Vec<Row> = seeded
            .iter()
            .filter(wanted)
            .map(|r| {
                data.written
                    .iter()
                    .find(|w| w.id == r.id)
                    .unwrap_or(r)
                    .clone()
            })
            .collect();
        rows.extend(
            data.written
                .iter()
                .filter(wanted)
                .filter(|w| !seeded.iter().any(|r| r.id == w.id))
                .cloned(),
        );
        rows
    }

    /// A plain upsert (PostgREST's `merge-duplicates`): every row is written.
    pub fn upsert_all(&mut self, user: u64, rows: Vec<Row>) {
        let data = self.user(user);
        for row in rows {
            upsert(&mut data.written, row);
        }
        data.token += 1;
    }

    /// The `sync_push` RPC: a row is written only when newer than the stored one (LWW on the
    /// server). Returns whether anything was written (the token moved) and the ids refused.
    pub fn push_newer(&mut self, user: u64, rows: Vec<Row>) -> (bool, Vec<Uuid>) {
        let mut rejected = Vec::new();
        let mut accepted = 0;
        for row in rows {
            let newer = self
                .current(user, row.table, row.id)
                .is_none_or(|r| r.updated_at_ms < row.updated_at_ms);
            if newer {
                upsert(&mut self.user(user).written, row);
                accepted += 1;
            } else {
                rejected.push(row.id);
            }
        }
        if accepted > 0 {
            self.user(user).token += 1;
        }
        (accepted > 0, rejected)
    }

    /// The stored version of one row: the run's write, else the seeded row.
    fn current(&mut self, user: u64, table: Table, id: Uuid) -> Option<Row> {
        let data = self.user(user);
        if let Some(row) = data.written.iter().find(|r| r.id == id) {
            return Some(row.clone());
        }
        if data.seeded_newest[table.index()] == i64::MIN {
            return None;
        }
        self.cache_seeded(user);
        self.cached(user).iter().find(|r| r.id == id).cloned()
    }

    fn user(&mut self, user: u64) -> &mut UserRows {
        if self.users[user as usize].is_none() {
            self.cache_seeded(user);
            let seeded = self.cached(user);
            let mut seeded_newest = [i64::MIN; 5];
            for r in seeded {
                let newest = &mut seeded_newest[r.table.index()];
                *newest = (*newest).max(r.updated_at_ms);
            }
            let token = i64::from(!seeded.is_empty());
            self.users[user as usize] = Some(UserRows {
                token,
                written: Vec::new(),
                seeded_newest,
            });
        }
        self.users[user as usize].as_mut().expect("just made")
    }

    /// Makes sure the user's seeded rows are in their cache slot.
    fn cache_seeded(&mut self, user: u64) {
        let slot = &mut self.cache[user as usize % CACHE_SLOTS];
        if slot.as_ref().is_some_and(|(u, _)| *u == user) {
            return;
        }
        let rows = crate::population::seeded_rows(
            self.population,
            self.seed,
            user,
            user_uuid(self.seed, user),
            self.seeded_at_ms,
        );
        *slot = Some((user, rows));
    }

    /// The user's seeded rows; [`Self::cache_seeded`] must have run.
    fn cached(&self, user: u64) -> &[Row] {
        match &self.cache[user as usize % CACHE_SLOTS] {
            Some((u, rows)) if *u == user => rows,
            _ => unreachable!("cache_seeded runs first"),
        }
    }
}

fn upsert(rows: &mut Vec<Row>, row: Row) {
    match rows.iter_mut().find(|r| r.id == row.id) {
        Some(stored) => *stored = row,
        None => rows.push(row),
    }
}

fn after(row: &Row, keyset: Option<Keyset>) -> bool {
    match keyset {
        None => true,
        Some(k) => match k.id {
            None => row.updated_at_ms > k.updated_at_ms,
            Some(id) => (row.updated_at_ms, row.id) > (k.updated_at_ms, id),
        },
    }
}

#[cfg(test)]
mod tests {
    //! The seed-derived store against the plain one it replaced: every row in one vector,
    //! seeded first, upserts in place.

    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    struct Plain {
        token: i64,
        rows: Vec<Row>,
    }

    impl Plain {
        fn page(&self, q: &PageQuery) -> Vec<Row> {
            let mut rows: Vec<Row> = self
                .rows
                .iter()
                .filter(|r| r.table == q.table && after(r, q.after))
                .cloned()
                .collect();
            rows.sort_by_key(|r| (r.updated_at_ms, r.id));
            rows.truncate(q.limit as usize);
            rows
        }
        fn read(&self, table: Table, ids: &[Uuid]) -> Vec<Row> {
            let wanted = |r: &&Row| r.table == table && ids.contains(&r.id);
            self.rows.iter().filter(wanted).cloned().collect()
        }
        fn push_newer(&mut self, rows: Vec<Row>) -> (bool, Vec<Uuid>) {
            let mut rejected = Vec::new();
            let mut accepted = 0;
            for row in rows {
                let stored = self.rows.iter().find(|r| r.id == row.id);
                if stored.is_none_or(|r| r.updated_at_ms < row.updated_at_ms) {
                    upsert(&mut self.rows, row);
                    accepted += 1;
                } else {
                    rejected.push(row.id);
                }
            }
            self.token += i64::from(accepted > 0);
            (accepted > 0, rejected)
        }
    }

    fn population() -> Population {
        let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/model_scale/hour.toml");
        let plan = syncstorm_scenario::load_with(
            std::path::Path::new(scenario),
            &["population.users=40".to_string()],
            &[],
        )
        .expect("the bench scenario loads");
        plan.population
    }

    #[test]
    fn answers_as_the_plain_store_does() {
        let population = population();
        let (seed, at) = (7, 1_790_000_000_000);
        let mut derived = ServerRows::new(&population, seed, at);
        let mut plain: Vec<Plain> = (0..population.users)
            .map(|u| {
                let rows =
                    crate::population::seeded_rows(&population, seed, u, user_uuid(seed, u), at);
                Plain {
                    token: i64::from(!rows.is_empty()),
                    rows,
                }
            })
            .collect();
        let mut rng = SmallRng::seed_from_u64(3);
        for step in 0..20_000 {
            let user = rng.random_range(0..population.users);
            let p = &mut plain[user as usize];
            let table = Table::ALL[rng.random_range(0..5)];
            let known: Vec<Row> = p
                .rows
                .iter()
                .filter(|r| r.table == table)
                .cloned()
                .collect();
            // A stored row changed (newer or older than stored), or a new one.
            let mut row = if !known.is_empty() && rng.random_bool(0.7) {
                known[rng.random_range(0..known.len())].clone()
            } else {
                let mut r = p.rows[0].clone();
                r.table = table;
                r.id = Uuid::from_u128(rng.random());
                r
            };
            row.updated_at_ms += rng.random_range(-5_000..5_000);
            let cursor = |rng: &mut SmallRng| match rng.random_range(0..4) {
                0 => None,
                1 => known.iter().map(|r| r.updated_at_ms).max().map(|t| Keyset {
                    updated_at_ms: t,
                    id: None,
                }),
                2 => known.first().map(|r| Keyset {
                    updated_at_ms: r.updated_at_ms,
                    id: Some(r.id),
                }),
                _ => Some(Keyset {
                    updated_at_ms: at + rng.random_range(-1_000_000_000..10_000),
                    id: None,
                }),
            };
            match step % 4 {
                0 => {
                    assert_eq!(
                        derived.push_newer(user, vec![row.clone()]),
                        p.push_newer(vec![row])
                    );
                }
                1 => {
                    derived.upsert_all(user, vec![row.clone()]);
                    upsert(&mut p.rows, row);
                    p.token += 1;
                }
                2 => {
                    let q = PageQuery {
                        table,
                        after: cursor(&mut rng),
                        limit: rng.random_range(1..40),
                    };
                    assert_eq!(derived.page(user, &q), p.page(&q), "{q:?}");
                }
                _ => {
                    let mut ids: Vec<Uuid> = known.iter().map(|r| r.id).take(3).collect();
                    ids.push(row.id);
                    assert_eq!(derived.read(user, table, &ids), p.read(table, &ids));
                }
            }
            assert_eq!(derived.token(user), p.token);
        }
    }
}
