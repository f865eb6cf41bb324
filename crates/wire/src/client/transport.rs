//! The realtime socket's transport: plain TCP for `http://` targets, TLS (rustls with ring,
//! Mozilla's roots compiled in) for `https://` ones such as hosted Supabase. Plain sockets stay
//! as small as before: the TLS session is boxed and only wss sockets carry one.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use super::ClientError;
use crate::error::ErrorKind;

pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// Runs the TLS handshake for `host` over `tcp`.
    pub(crate) async fn tls(tcp: TcpStream, host: &str) -> Result<Transport, ClientError> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            ClientError::new(ErrorKind::Connect, format!("{host} is not a TLS name: {e}"))
        })?;
        let connector = connector()?;
        let stream = connector.connect(name, tcp).await.map_err(|e| {
            ClientError::new(ErrorKind::Connect, format!("TLS with {host} failed: {e}"))
        })?;
        Ok(Transport::Tls(Box::new(stream)))
    }
}

/// One connector for the process: building the root store costs more than a handshake.
fn connector() -> Result<TlsConnector, ClientError> {
    static CONNECTOR: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let mut config =
                ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            // The upgrade is an HTTP/1.1 request.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(TlsConnector::from(Arc::new(config)))
        })
        .clone()
        .map_err(|e| ClientError::new(ErrorKind::Connect, format!("TLS is not usable: {e}")))
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_builds_with_the_compiled_in_roots() {
        assert!(connector().is_ok());
    }

    #[tokio::test]
    async fn a_plain_tcp_server_is_refused_as_a_connect_error_not_a_panic() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let Err(err) = Transport::tls(tcp, "localhost").await else {
            panic!("a server that speaks no TLS cannot complete the handshake");
        };
        assert_eq!(err.kind, ErrorKind::Connect);
        assert!(
            err.message.starts_with("TLS with localhost failed"),
            "{}",
            err.message
        );
        server.await.unwrap();
    }
}
