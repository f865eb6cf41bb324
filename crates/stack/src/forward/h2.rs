//! The HTTP/2 leg of forwarding: one h2c connection per worker to the parent, every request
//! beyond the HTTP/1.1 connections multiplexed on it, and the parent's listener for it.

use super::{ForwardError, absolute};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The parent's HTTP/2 listener and the one connection to it (opened on first use, reopened
/// if it closes).
pub(super) struct H2Link {
    addr: SocketAddr,
    base: String,
    /// Held while connecting, so a burst of requests opens one connection, not one each.
    connection: tokio::sync::Mutex<Option<SendRequest<Body>>>,
}

impl H2Link {
    pub(super) fn new(addr: SocketAddr) -> H2Link {
        H2Link {
            addr,
            base: format!("http://{addr}"),
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// Sends on the open connection; a request it never took (the connection had just
    /// closed) is sent once more on a fresh one.
    pub(super) async fn send(
        &self,
        mut request: Request,
        path: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ForwardError> {
        *request.uri_mut() = absolute(&self.base, path)?;
        let mut sender = self.sender().await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut failed) => match failed.take_message() {
                Some(request) => {
                    self.connection.lock().await.take();
                    let mut fresh = self.sender().await?;
                    Ok(fresh.send_request(request).await?)
                }
                None => Err(failed.into_error().into()),
            },
        }
    }

    /// The open connection, or a new one if there is none or it closed.
    async fn sender(&self) -> Result<SendRequest<Body>, ForwardError> {
        let mut cached = self.connection.lock().await;
        if let Some(open) = cached.as_ref().filter(|s| !s.is_closed()) {
            return Ok(open.clone());
        }
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| ForwardError::Connect(self.addr, e))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await?;
        tokio::spawn(connection);
        *cached = Some(sender.clone());
        Ok(sender)
    }
}

/// The parent's side: serves `router` over HTTP/2 (prior knowledge) on `listener`, one
/// connection per worker, with no limit on concurrent streams, until `stop` is cancelled.
pub(crate) async fn serve_internal_h2(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("the stack's private HTTP/2 listener could not accept: {e}");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let service = router.clone().layer(axum::Extension(ConnectInfo(peer)));
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            // The peer is our own worker process, and its resets are real: devices giving up
            // on requests during a storm. h2's guards against "rapid reset" floods (20 streams
            // reset before they are accepted; 1,024 locally reset) would close the link and
            // fail every request on it, a limit of our own server that Supabase does not have.
            builder
                .max_concurrent_streams(None)
                .max_pending_accept_reset_streams(usize::MAX)
                .max_local_error_reset_streams(None);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A storm of requests given up by their devices resets hundreds of streams before the
    /// parent accepts them; h2's guard against "rapid reset" attacks (20 by default) would
    /// close the whole link and fail every other request on it. The peer is our own worker.
    #[tokio::test]
    async fn streams_given_up_by_the_hundred_do_not_close_the_link() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let parent = Router::new().route(
            "/rest/v1/{*path}",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                "ok"
            }),
        );
        let stop = CancellationToken::new();
        tokio::spawn(serve_internal_h2(listener, parent, stop.clone()));
        let link = std::sync::Arc::new(H2Link::new(addr));
        let get = |link: std::sync::Arc<H2Link>| async move {
            let request = Request::builder()
                .uri("/rest/v1/t")
                .body(Body::empty())
                .unwrap();
            link.send(request, "/rest/v1/t").await
        };
        assert!(get(link.clone()).await.is_ok(), "the link works");
        for _ in 0..5 {
            let burst: Vec<_> = (0..300).map(|_| tokio::spawn(get(link.clone()))).collect();
            tokio::task::yield_now().await;
            for request in &burst {
                request.abort();
            }
        }
        let answer = get(link.clone()).await;
        assert!(answer.is_ok(), "the link survived: {:?}", answer.err());
        stop.cancel();
    }
}
