//! Workers 2..N of a multi-process stack forward `/rest/v1/*` and `/auth/v1/*` to the parent
//! over loopback, the way Kong proxies to the one PostgREST and the one GoTrue, so the whole
//! stack has one REST pool and one Auth pool (one FIFO wait queue each), as Supabase does.
//!
//! Method, path, query, headers and body go through unchanged except the hop-by-hop headers
//! (RFC 9110 §7.6.1), and the peer address is appended to `X-Forwarded-For` as Kong does (the
//! token rate limiter keys on its first entry, so a client is still counted as itself).
//! Status, headers and body come back unchanged except the hop-by-hop headers. The `apikey`
//! gate runs before this, at the edge.
//!
//! Each worker holds **one** HTTP/2 connection (h2c, prior knowledge) to the parent and
//! multiplexes every forwarded request on it, with no stream limit: however many requests
//! queue for the pool, the parent spends one file descriptor per worker (HTTP/1.1 keep-alive
//! would need one per request in flight, and a deep pool queue could exhaust the parent's
//! 20,000 files, which its own websockets need). Forwarding costs about the same either way
//! (see `benches/token_check.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Why a request could not be forwarded (answered with Kong's 502).
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("cannot connect to the stack's parent process at {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("HTTP/2 to the stack's parent process failed: {0}")]
    Http(#[from] hyper::Error),
}

/// The parent's private REST/Auth listener and the one HTTP/2 connection to it.
pub struct Upstream {
    addr: SocketAddr,
    base: String,
    connection: Mutex<Option<SendRequest<Body>>>,
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            base: format!("http://{addr}"),
            connection: Mutex::new(None),
        }
    }

    /// The open connection, or a new one if there is none or it closed.
    async fn sender(&self) -> Result<SendRequest<Body>, ForwardError> {
        if let Some(open) = self.cached().filter(|s| !s.is_closed()) {
            return Ok(open);
        }
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| ForwardError::Connect(self.addr, e))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await?;
        tokio::spawn(connection);
        // Two tasks may connect at once; the later one's connection is kept, the other's
        // serves its own request and closes when its sender is dropped.
        *self.lock() = Some(sender.clone());
        Ok(sender)
    }

    fn cached(&self) -> Option<SendRequest<Body>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SendRequest<Body>>> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `/rest/v1/*` and `/auth/v1/*`, forwarded to `upstream`.
pub fn router(upstream: Arc<Upstream>) -> Router {
    Router::new()
        .route("/rest/v1/{*path}", any(forward))
        .route("/auth/v1/{*path}", any(forward))
        .with_state(upstream)
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", upstream.base).parse::<Uri>() else {
        return bad_gateway();
    };
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    strip_hop_by_hop(request.headers_mut());
    append_forwarded_for(request.headers_mut(), peer.ip());
    match send(&upstream, request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            parts.version = Version::HTTP_11;
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!("forwarding a request failed: {e}");
            bad_gateway()
        }
    }
}

/// Sends on the open connection; a request it never took (the connection had just closed)
/// is sent once more on a fresh one.
async fn send(
    upstream: &Upstream,
    request: Request,
) -> Result<hyper::Response<hyper::body::Incoming>, ForwardError> {
    let mut sender = upstream.sender().await?;
    match sender.try_send_request(request).await {
        Ok(response) => Ok(response),
        Err(mut failed) => match failed.take_message() {
            Some(request) => {
                upstream.lock().take();
                let mut fresh = upstream.sender().await?;
                Ok(fresh.send_request(request).await?)
            }
            None => Err(failed.into_error().into()),
        },
    }
}

/// The parent's side: serves `router` over HTTP/2 (prior knowledge) on `listener`, one
/// connection per worker, with no limit on concurrent streams, until `stop` is cancelled.
pub(crate) async fn serve_internal(listener: TcpListener, router: Router, stop: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("the stack's private listener could not accept: {e}");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let service = router.clone().layer(axum::Extension(ConnectInfo(peer)));
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.max_concurrent_streams(None);
            let connection =
                builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

/// Removes the standard hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    // A websocket upgrade never reaches these routes; `Upgrade` is connection-level too.
    headers.remove(header::UPGRADE);
}

/// `X-Forwarded-For: <existing>, <peer>`, as Kong sends it.
fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// Kong's answer when the upstream cannot be reached.
fn bad_gateway() -> Response {
    let body = serde_json::json!({
        "message": "An invalid response was received from the upstream server"
    });
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_headers_stay() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("prefer", "return=representation"),
            ("apikey", "k"),
        ] {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["apikey", "prefer"]);
    }

    #[test]
    fn the_peer_is_appended_to_forwarded_for() {
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, peer);
        assert_eq!(headers["x-forwarded-for"], "127.0.0.9");
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.1.2.3"));
        append_forwarded_for(&mut headers, peer);
        assert_eq!(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.9");
    }
}
