//! The poll loop: owns the temporary slot's session, refreshes the publication catalog, and
//! hands each non-empty batch to the dispatcher (waiting when it is behind, as Realtime's single
//! poller does). Polls again at once after a poll that returned rows.

use super::capture::{self, Change, TypeNames, pgoutput, wal2json};
use super::catalog::Catalog;
use super::{Decoder, Shared};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// A batch of changes from one poll, shared by every dispatcher.
pub type Batch = Arc<Vec<Change>>;

pub(crate) const CATALOG_REFRESH: Duration = Duration::from_secs(1);

pub struct Poller {
    pub client: Client,
    pub slot: String,
    pub types: TypeNames,
    pub decoding: Decoding,
}

/// The slot's plugin, with the state its decoder keeps between polls.
pub enum Decoding {
    Wal2json,
    Pgoutput(pgoutput::Decoder),
}

impl Decoding {
    pub fn decoder(&self) -> Decoder {
        match self {
            Decoding::Wal2json => Decoder::Wal2json,
            Decoding::Pgoutput(_) => Decoder::Pgoutput,
        }
    }
}

/// Creates the temporary slot on `client`'s session (it vanishes with the session) with the
/// chosen plugin; `None` prefers wal2json and falls back to pgoutput when the server has no
/// wal2json library.
pub async fn create_slot(
    client: &Client,
    slot: &str,
    choice: Option<Decoder>,
) -> Result<Decoding, tokio_postgres::Error> {
    client.batch_execute("set timezone = 'UTC'").await?;
    let wanted = choice.unwrap_or(Decoder::Wal2json);
    match create_with(client, slot, wanted).await {
        Err(e) if choice.is_none() && plugin_missing(&e) => {
            tracing::info!(
                "realtime: the wal2json plugin is not installed; capturing changes with pgoutput"
            );
            create_with(client, slot, Decoder::Pgoutput).await
        }
        other => other,
    }
}

async fn create_with(
    client: &Client,
    slot: &str,
    decoder: Decoder,
) -> Result<Decoding, tokio_postgres::Error> {
    client
        .execute(
            "select pg_create_logical_replication_slot($1, $2, true)",
            &[&slot, &decoder.plugin()],
        )
        .await?;
    Ok(match decoder {
        Decoder::Wal2json => Decoding::Wal2json,
        Decoder::Pgoutput => Decoding::Pgoutput(pgoutput::Decoder::default()),
    })
}

/// The server could not load the output plugin's library (`could not access file`).
fn plugin_missing(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FILE)
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
                self.sample_wal_behind(&shared).await;
                catalog_at = Instant::now();
            }
            let got_rows = tokio::select! {
                _ = cancel.cancelled() => break,
                polled = self.poll_once(&shared) => match polled {
                    Ok(batch) if !batch.is_empty() => {
                        let m = &shared.metrics;
                        m.add(&m.dispatch_queue_changes, batch.len() as u64);
                        let batch = Arc::new(batch);
                        if let Some(fanout) = &shared.fanout {
                            // No follower connected yet is not an error.
                            let _ = fanout.send(Arc::clone(&batch));
                        }
                        if out.send(batch).await.is_err() {
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
        let changes = match self.decoding {
            Decoding::Wal2json => self.poll_wal2json(shared, &catalog).await?,
            Decoding::Pgoutput(_) => self.poll_pgoutput(shared, &catalog).await?,
        };
        let m = &shared.metrics;
        m.add(&m.polls_total, 1);
        m.add(&m.poll_micros_total, started.elapsed().as_micros() as u64);
        m.add(&m.poll_changes_total, changes.len() as u64);
        if let Some(newest) = changes.iter().map(|c| c.commit_time).max() {
            let lag = (chrono::Utc::now() - newest)
                .num_microseconds()
                .unwrap_or(0);
            m.record_lag(lag.max(0) as u64);
        }
        Ok(changes)
    }

    async fn poll_wal2json(
        &mut self,
        shared: &Shared,
        catalog: &Catalog,
    ) -> Result<Vec<Change>, tokio_postgres::Error> {
        let max = shared.config.poll_max_changes as i32;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&self.slot, &max, &catalog.add_tables()];
        let rows = self.client.query(wal2json::POLL_SQL, &params).await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let line: &str = row.get(0);
            if wal2json::type_oids(line).any(|oid| !self.types.contains_key(&oid)) {
                self.reload_types().await;
            }
            match wal2json::decode(line) {
                Ok(Some(raw)) => changes.extend(capture::assemble(raw, catalog, &self.types)),
                Ok(None) => {}
                Err(e) => tracing::warn!("realtime: {e}"),
            }
        }
        Ok(changes)
    }

    async fn poll_pgoutput(
        &mut self,
        shared: &Shared,
        catalog: &Catalog,
    ) -> Result<Vec<Change>, tokio_postgres::Error> {
        let max = shared.config.poll_max_changes as i32;
        let publications = pgoutput::publication_names(&shared.config.publication);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&self.slot, &max, &publications];
        let rows = self.client.query(pgoutput::POLL_SQL, &params).await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let msg: &[u8] = row.get(0);
            let Decoding::Pgoutput(decoder) = &mut self.decoding else {
                break;
            };
            let decoded = decoder.decode(msg, catalog, &self.types);
            // A relation is announced before its changes: new types are learnt there.
            if msg.first() == Some(&b'R') && decoder.names_unknown_type(&self.types) {
                self.reload_types().await;
            }
            match decoded {
                Ok(Some(raw)) => changes.extend(capture::assemble(raw, catalog, &self.types)),
                Ok(None) => {}
                Err(e) => tracing::warn!("realtime: {e}"),
            }
        }
        Ok(changes)
    }

    /// How far the slot trails the WAL written, so a capture that falls behind shows.
    async fn sample_wal_behind(&self, shared: &Shared) {
        let sql = "select (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 \
                   from pg_replication_slots where slot_name = $1";
        if let Ok(row) = self.client.query_one(sql, &[&self.slot]).await {
            let behind: Option<i64> = row.get(0);
            let m = &shared.metrics;
            m.set(&m.wal_behind_bytes, behind.unwrap_or(0).max(0) as u64);
        }
    }

    /// Rereads the type names (a type created after start); a failure keeps the old ones.
    async fn reload_types(&mut self) {
        if let Ok(types) = capture::load_type_names(&self.client).await {
            self.types = types;
        }
    }
}
