//! The database side of the probes: one plain connection, three cheap catalog queries per
//! sample. Read-only; a statement timeout keeps a sick server from stalling the sampler.

use std::collections::BTreeMap;

use crate::result::ProbeSample;

/// Client backends by state, excluding the probe's own session.
const BY_STATE: &str = "select coalesce(state, 'unknown'), count(*)::int from pg_stat_activity \
     where backend_type = 'client backend' and pid <> pg_backend_pid() group by 1";

/// What backends are waiting on, as `type:event` (`Lock:transactionid`, `Client:ClientRead`).
const BY_WAIT_EVENT: &str = "select wait_event_type || ':' || wait_event, count(*)::int \
     from pg_stat_activity where wait_event is not null and backend_type = 'client backend' \
     and pid <> pg_backend_pid() group by 1";

/// Sessions waiting for a lock another session holds.
const BLOCKED: &str = "select count(distinct pid)::int from pg_locks \
     where not granted and cardinality(pg_blocking_pids(pid)) > 0";

/// Every (waiting session, session it waits for) pair of a lock wait, by their
/// `application_name` — the stack tags each request's transaction with its user.
const LOCK_PAIRS: &str = "select coalesce(w.application_name, ''), coalesce(b.application_name, ''), \
     count(*)::int from pg_stat_activity w \
     cross join lateral unnest(pg_blocking_pids(w.pid)) as blocker(pid) \
     join pg_stat_activity b on b.pid = blocker.pid \
     where w.wait_event_type = 'Lock' group by 1, 2";

/// The stack's tag of a user's request (`syncstorm:sub:<uuid>`).
const USER_TAG: &str = "syncstorm:sub:";

/// Errors of the database probe.
#[derive(Debug, thiserror::Error)]
pub enum PgProbeError {
    #[error("could not connect the probe to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("a probe query failed: {0}")]
    Query(#[source] tokio_postgres::Error),
}

/// A connected database probe.
pub struct PgProbe {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl PgProbe {
    pub async fn connect(database_url: &str) -> Result<Self, PgProbeError> {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .map_err(PgProbeError::Connect)?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute("set application_name = 'syncstorm-probe'; set statement_timeout = '2s'")
            .await
            .map_err(PgProbeError::Query)?;
        Ok(PgProbe { client, connection })
    }

    /// `max_connections` of the server.
    pub async fn max_connections(&self) -> Result<u32, PgProbeError> {
        let row = self
            .client
            .query_one("select current_setting('max_connections')::int", &[])
            .await
            .map_err(PgProbeError::Query)?;
        Ok(row.get::<_, i32>(0).max(0) as u32)
    }

    /// Fills the database fields of `sample`.
    pub async fn sample_into(&self, sample: &mut ProbeSample) -> Result<(), PgProbeError> {
        sample.db_connections = self.counts(BY_STATE).await?;
        sample.wait_events = self.counts(BY_WAIT_EVENT).await?;
        let row = self
            .client
            .query_one(BLOCKED, &[])
            .await
            .map_err(PgProbeError::Query)?;
        sample.blocked_sessions = row.get::<_, i32>(0).max(0) as u32;
        let pairs = self
            .client
            .query(LOCK_PAIRS, &[])
            .await
            .map_err(PgProbeError::Query)?;
        let pairs = pairs.iter().map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, i32>(2),
            )
        });
        (sample.lock_waits_same_user, sample.lock_waits_cross_user) = classify_waits(pairs);
        Ok(())
    }

    async fn counts(&self, sql: &str) -> Result<BTreeMap<String, u32>, PgProbeError> {
        let rows = self
            .client
            .query(sql, &[])
            .await
            .map_err(PgProbeError::Query)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1).max(0) as u32))
            .collect())
    }
}

impl Drop for PgProbe {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// (same user, cross user) lock waits from (waiter, blocker, count) tags; waits where either
/// side is not a user's request (Auth, maintenance) count as neither.
fn classify_waits(pairs: impl Iterator<Item = (String, String, i32)>) -> (u32, u32) {
    let mut same = 0u32;
    let mut cross = 0u32;
    for (waiter, blocker, n) in pairs {
        let n = n.max(0) as u32;
        match (
            waiter.strip_prefix(USER_TAG),
            blocker.strip_prefix(USER_TAG),
        ) {
            (Some(w), Some(b)) if w == b => same += n,
            (Some(_), Some(_)) => cross += n,
            _ => {}
        }
    }
    (same, cross)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_are_told_apart_by_whose_requests_they_are() {
        let tag = |u: &str| format!("{USER_TAG}{u}");
        let pairs = vec![
            (tag("a"), tag("a"), 3),
            (tag("b"), tag("a"), 2),
            (tag("c"), "syncstorm-auth".to_string(), 5),
        ];
        assert_eq!(classify_waits(pairs.into_iter()), (3, 2));
    }
}
