//! The websocket endpoint (`/realtime/v1/websocket?apikey=…&vsn=…`) and `GET /metrics`.
//! Upgrades are refused with 403 and an empty body, as Realtime does, when the key is not a
//! valid JWT or every connection place is taken.

use super::Shared;
use super::caps::ConnectionPlace;
use super::registry::Outbox;
use super::session::{Reaction, Session};
use super::token::{self, Identity};
use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use syncstorm_wire::phoenix::{Message, Vsn};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// `/realtime/v1/websocket` (behind the stack's `apikey` gate, as behind Kong).
pub fn websocket_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/realtime/v1/websocket", get(upgrade))
        .with_state(shared)
}

/// `GET /metrics` (open, for the harness's probes).
pub fn metrics_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared)
}

#[derive(Debug, Deserialize)]
struct Params {
    apikey: Option<String>,
    vsn: Option<String>,
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let m = &shared.metrics;
    let header_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let key = header_key.map(str::to_string).or(params.apikey);
    let vsn = match params.vsn.as_deref() {
        None => Some(Vsn::V1),
        Some(text) => Vsn::parse(text),
    };
    let now = chrono::Utc::now().timestamp();
    let identity = key.and_then(|k| token::verify(&shared.config.jwt_secret, &k, now).ok());
    let (Some(identity), Some(vsn)) = (identity, vsn) else {
        m.add(&m.connections_refused_jwt_total, 1);
        return StatusCode::FORBIDDEN.into_response();
    };
    let Some(place) = shared.caps.try_connect() else {
        m.add(&m.connections_refused_cap_total, 1);
        return StatusCode::FORBIDDEN.into_response();
    };
    m.add(&m.connections_opened_total, 1);
    ws.read_buffer_size(shared.config.socket_buffer)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, shared, place, identity, vsn))
}

async fn send_all(ws: &mut WebSocket, frames: Vec<String>) -> bool {
    for text in frames {
        if ws.send(WsMessage::Text(text.into())).await.is_err() {
            return false;
        }
    }
    true
}

fn instant_at(unix_secs: i64) -> Instant {
    let ahead = unix_secs - chrono::Utc::now().timestamp();
    Instant::now() + Duration::from_secs(ahead.max(0) as u64)
}

/// One socket's life: frames in, queued frames out, idle timeout, token expiry, shutdown.
async fn serve(
    mut ws: WebSocket,
    shared: Arc<Shared>,
    _place: ConnectionPlace,
    identity: Identity,
    vsn: Vsn,
) {
    let (tx, mut rx) = mpsc::channel(shared.config.outbox_capacity);
    let outbox = Arc::new(Outbox { tx, vsn });
    let mut session = Session::new(Arc::clone(&shared), outbox, identity);
    let idle = shared.config.idle_timeout;
    let mut deadline = Instant::now() + idle;
    loop {
        let expiry = session.next_expiry().map(instant_at);
        let reaction = tokio::select! {
            incoming = ws.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    deadline = Instant::now() + idle;
                    match Message::decode(text.as_str(), vsn) {
                        Ok(msg) => session.handle(msg),
                        Err(_) => Reaction::default(),
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {
                    deadline = Instant::now() + idle;
                    Reaction::default()
                }
            },
            Some(text) = rx.recv() => Reaction { frames: vec![text], close_socket: false },
            _ = tokio::time::sleep_until(deadline) => {
                shared.metrics.add(&shared.metrics.connections_idle_closed_total, 1);
                break;
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or(deadline)), if expiry.is_some() => session.expire(),
            _ = shared.cancel.cancelled() => break,
        };
        if !send_all(&mut ws, reaction.frames).await || reaction.close_socket {
            break;
        }
    }
    drop(session);
    let _ = ws.send(WsMessage::Close(None)).await;
}
