//! The one way the clients open a TCP connection: bound to a source address when one is
//! given, within a connect timeout, with `TCP_NODELAY` as browsers set it.
//!
//! A bound socket normally takes its ephemeral port at `bind`, before the kernel knows the
//! destination, so every bound socket of one source address would need a port of its own
//! across all destinations. `IP_BIND_ADDRESS_NO_PORT` defers the choice to `connect`, where a
//! port is shared by different (destination address, port) pairs as an unbound socket's is:
//! ~28k connections per (source, destination) pair, which is what the fd and port budget
//! counts on.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::ClientError;
use crate::error::ErrorKind;

pub(crate) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ClientError::from_io(&e))?;
    if let Some(ip) = source {
        if ip.is_ipv4() {
            // Best effort: without it (an old kernel) the bind still works, with fewer ports.
            let _ = nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::IpBindAddressNoPort,
                &true,
            );
        }
        socket.bind(SocketAddr::new(ip, 0)).map_err(|e| {
            ClientError::new(
                ErrorKind::Connect,
                format!("cannot use source address {ip}: {e}"),
            )
        })?;
    }
    let stream = match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ClientError::from_io(&e)),
        Err(_) => {
            return Err(ClientError::new(
                ErrorKind::Timeout,
                format!("connecting to {addr} timed out"),
            ));
        }
    };
    stream
        .set_nodelay(true)
        .map_err(|e| ClientError::from_io(&e))?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_leaves_from_the_source_address_it_was_given() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for source in ["127.0.0.7", "127.0.0.8"] {
            let source: IpAddr = source.parse().unwrap();
            let _client = connect(addr, Some(source), Duration::from_secs(5))
                .await
                .unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), source);
        }
        let _client = connect(addr, None, Duration::from_secs(5)).await.unwrap();
        let (_server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), IpAddr::from([127, 0, 0, 1]));
    }

    #[tokio::test]
    async fn a_source_address_that_is_not_this_machines_is_one_sentence() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let source: IpAddr = "192.0.2.1".parse().unwrap();
        let err = connect(
            listener.local_addr().unwrap(),
            Some(source),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cannot use source address 192.0.2.1"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
