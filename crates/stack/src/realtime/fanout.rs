//! One WAL capture for a multi-process stack, as Supabase runs one poller per tenant: the
//! first process polls the slot and fans every batch out over a loopback socket to the other
//! processes, each of which matches, authorizes and delivers to its own subscribers. N slots
//! would make PostgreSQL decode the WAL N times — the embedded server's own cost, not
//! Supabase's.
//!
//! The wire is JSON lines: a header `{"decoder":"pgoutput"}`, then one line per batch.
//! Full-queue policy: a follower more than [`FANOUT_BATCHES`] batches behind loses the oldest
//! and they are counted (`fanout_lagged_batches_total`); the capture never waits for it.

use super::capture::Change;
use super::catalog::Catalog;
use super::poller::Batch;
use super::{Decoder, Shared};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Batches a follower may trail the capture by before it loses the oldest.
pub const FANOUT_BATCHES: usize = 1024;
/// How long a follower waits for the capture's header, and between reconnects.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    decoder: String,
}

/// The capturing side: where followers connect, and the channel every batch goes out on.
pub struct FanOut {
    pub tx: broadcast::Sender<Batch>,
    listener: TcpListener,
}

impl FanOut {
    pub async fn bind() -> std::io::Result<FanOut> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let (tx, _) = broadcast::channel(FANOUT_BATCHES);
        Ok(FanOut { tx, listener })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts followers until `cancel`, each fed from its own subscription.
    pub async fn serve(self, shared: Arc<Shared>, tasks: TaskTracker, cancel: CancellationToken) {
        loop {
            let stream = tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("realtime: accepting a follower failed: {e}");
                        continue;
                    }
                },
            };
            let rx = self.tx.subscribe();
            let feed = feed(stream, rx, Arc::clone(&shared), cancel.clone());
            tasks.spawn(feed);
        }
    }
}

async fn feed(
    stream: TcpStream,
    mut rx: broadcast::Receiver<Batch>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let mut out = BufWriter::new(stream);
    let header = Header {
        decoder: shared.decoder.plugin().to_string(),
    };
    if write_line(&mut out, &header).await.is_err() {
        return;
    }
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            next = rx.recv() => match next {
                Ok(batch) => batch,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    let m = &shared.metrics;
                    m.add(&m.fanout_lagged_batches_total, lost);
                    tracing::warn!("realtime: a follower lost {lost} batches (it fell behind)");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if write_line(&mut out, &*batch).await.is_err() {
            return; // the follower went away
        }
    }
}

async fn write_line(out: &mut BufWriter<TcpStream>, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await?;
    out.flush().await
}

/// The following side: a connection to the capture, its decoder read off the header.
pub struct Follower {
    upstream: SocketAddr,
    lines: Option<tokio::io::Lines<BufReader<TcpStream>>>,
}

/// Connects to the capture at `upstream` and reads which decoder it runs.
pub async fn follow(upstream: SocketAddr) -> std::io::Result<(Decoder, Follower)> {
    let mut lines = connect(upstream).await?;
    let header = tokio::time::timeout(CONNECT_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| io_error("the capture sent no header in time"))??
        .ok_or_else(|| io_error("the capture closed before its header"))?;
    let header: Header =
        serde_json::from_str(&header).map_err(|e| io_error(&format!("bad header: {e}")))?;
    let decoder = Decoder::from_plugin(&header.decoder)
        .ok_or_else(|| io_error(&format!("unknown decoder {}", header.decoder)))?;
    let follower = Follower {
        upstream,
        lines: Some(lines),
    };
    Ok((decoder, follower))
}

async fn connect(upstream: SocketAddr) -> std::io::Result<tokio::io::Lines<BufReader<TcpStream>>> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| io_error("connecting to the capture timed out"))??;
    Ok(BufReader::new(stream).lines())
}

fn io_error(what: &str) -> std::io::Error {
    std::io::Error::other(format!("realtime fan-out: {what}"))
}

impl Follower {
    /// Hands every batch the capture sends to `out`, refreshing the publication catalog on
    /// `client` each second (joins validate against it); reconnects if the capture's stream
    /// breaks while this process still runs.
    pub async fn run(
        mut self,
        client: Client,
        shared: Arc<Shared>,
        out: mpsc::Sender<Batch>,
        cancel: CancellationToken,
    ) {
        let refresher = refresh_catalog(client, Arc::clone(&shared), cancel.clone());
        let reader = async {
            while !cancel.is_cancelled() {
                let Some(lines) = self.lines.as_mut() else {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    self.lines = reconnect(self.upstream).await;
                    continue;
                };
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if !forward(&line, &shared, &out).await {
                            return;
                        }
                    }
                    Ok(None) | Err(_) => {
                        tracing::warn!("realtime: the capture's stream ended; reconnecting");
                        self.lines = None;
                    }
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = reader => {}
            _ = refresher => {}
        }
    }
}

async fn reconnect(upstream: SocketAddr) -> Option<tokio::io::Lines<BufReader<TcpStream>>> {
    let mut lines = connect(upstream).await.ok()?;
    lines.next_line().await.ok().flatten()?; // the header again
    Some(lines)
}

/// Decodes one batch line and queues it for dispatch; `false` when dispatch has stopped.
async fn forward(line: &str, shared: &Shared, out: &mpsc::Sender<Batch>) -> bool {
    if line.is_empty() {
        return true;
    }
    let batch: Vec<Change> = match serde_json::from_str(line) {
        Ok(batch) => batch,
        Err(e) => {
            tracing::warn!("realtime: an unreadable batch from the capture: {e}");
            return true;
        }
    };
    let m = &shared.metrics;
    m.add(&m.fanout_changes_received_total, batch.len() as u64);
    m.add(&m.dispatch_queue_changes, batch.len() as u64);
    out.send(Arc::new(batch)).await.is_ok()
}

async fn refresh_catalog(client: Client, shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(super::poller::CATALOG_REFRESH);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match Catalog::load(&client, &shared.config.publication).await {
            Ok(catalog) => shared.catalog.set(catalog),
            Err(e) => tracing::warn!("realtime: reading the publication failed: {e}"),
        }
    }
}
