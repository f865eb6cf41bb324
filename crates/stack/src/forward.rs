//! Workers 2..N of a multi-process stack forward `/rest/v1/*` and `/auth/v1/*` to the parent
//! over loopback, the way Kong proxies to the one PostgREST and the one GoTrue, so the whole
//! stack has one REST pool and one Auth pool (one FIFO wait queue each), as Supabase does.
//!
//! Method, path, query, headers and body go through unchanged except the hop-by-hop headers
//! (RFC 9110 §7.6.1), and the peer address is appended to `X-Forwarded-For` as Kong does (the
//! token rate limiter keys on its first entry, so a client is still counted as itself).
//! Status, headers and body come back unchanged except the hop-by-hop headers. The `apikey`
//! gate runs before this, at the edge. Connections to the parent are HTTP/1.1 keep-alive.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long an idle keep-alive connection to the parent is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

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

/// The parent's private REST/Auth listener and a keep-alive client to it.
pub struct Upstream {
    base: String,
    client: Client<HttpConnector, Body>,
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(connector);
        Upstream {
            base: format!("http://{addr}"),
            client,
        }
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
    *request.version_mut() = Version::HTTP_11;
    strip_hop_by_hop(request.headers_mut());
    append_forwarded_for(request.headers_mut(), peer.ip());
    match upstream.client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!("forwarding to the stack's parent process failed: {e}");
            bad_gateway()
        }
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
