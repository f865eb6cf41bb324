//! The poll loop: owns the temporary slot's session, refreshes the publication catalog, and
//! hands each non-empty batch to the dispatcher (waiting when it is behind, as Realtime's single
//! poller does). Polls again at once after a poll that returned rows.

use super::Shared;
use super::capture::{self, Change, POLL_SQL, TypeNames};
use super::catalog::Catalog;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// A batch of changes from one poll, shared by every dispatcher.
pub type Batch = Arc<Vec<Change>>;

const CATALOG_REFRESH: Duration = Duration::from_secs(1);

pub struct Poller {
    pub client: Client,
    pub slot: String,
    pub types: TypeNames,
}

/// Creates the temporary wal2json slot on `client`'s session (it vanishes with the session).
pub async fn create_slot(client: &Client, slot: &str) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("set timezone = 'UTC'").await?;
    client
        .execute(
            "select pg_create_logical_replication_slot($1, 'wal2json', true)",
            &[&slot],
        )
        .await?;
    Ok(())
}

impl Poller {
    pub async fn run(
        mut self,
        shared: Arc<Shared>,
        out: mpsc::Sender<Batch>,
        cancel: CancellationToken,
    ) {
        let mut catalog_at = Instant::now();
        loop {
            if catalog_at.elapsed() >= CATALOG_REFRESH {
                match Catalog::load(&self.client, &shared.config.publication).await {
                    Ok(catalog) => shared.catalog.set(catalog),
                    Err(e) => tracing::warn!("realtime: reading the publication failed: {e}"),
                }
                catalog_at = Instant::now();
            }
            let got_rows = tokio::select! {
                _ = cancel.cancelled() => break,
                polled = self.poll_once(&shared) => match polled {
                    Ok(batch) if !batch.is_empty() => {
                        if out.send(Arc::new(batch)).await.is_err() {
                            break;
                        }
                        true
                    }
                    Ok(_) => false,
                    Err(e) => {
                        tracing::warn!("realtime: polling the slot failed: {e}");
                        false
                    }
                },
            };
            if !got_rows {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(shared.config.poll_interval) => {}
                }
            }
        }
        let drop_sql = "select pg_drop_replication_slot($1)";
        if let Err(e) = self.client.execute(drop_sql, &[&self.slot]).await {
            tracing::warn!("realtime: dropping slot {} failed: {e}", self.slot);
        }
    }

    async fn poll_once(&mut self, shared: &Shared) -> Result<Vec<Change>, tokio_postgres::Error> {
        let started = Instant::now();
        let catalog = shared.catalog.get();
        let max = shared.config.poll_max_changes as i32;
        let rows = self
            .client
            .query(POLL_SQL, &[&self.slot, &max, &catalog.add_tables()])
            .await?;
        let m = &shared.metrics;
        m.add(&m.polls_total, 1);
        m.add(&m.poll_micros_total, started.elapsed().as_micros() as u64);
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let line: &str = row.get(0);
            if self.names_unknown_type(line)
                && let Ok(types) = capture::load_type_names(&self.client).await
            {
                self.types = types;
            }
            match capture::decode(line, &catalog, &self.types) {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(e) => tracing::warn!("realtime: {e}"),
            }
        }
        m.add(&m.poll_changes_total, changes.len() as u64);
        if let Some(newest) = changes.iter().map(|c| c.commit_time).max() {
            let lag = (chrono::Utc::now() - newest)
                .num_microseconds()
                .unwrap_or(0);
            m.record_lag(lag.max(0) as u64);
        }
        Ok(changes)
    }

    /// Whether `line` names a type oid not in the cache (a type created after start).
    fn names_unknown_type(&self, line: &str) -> bool {
        line.split("\"typeoid\":")
            .skip(1)
            .filter_map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .any(|oid| !self.types.contains_key(&oid))
    }
}
