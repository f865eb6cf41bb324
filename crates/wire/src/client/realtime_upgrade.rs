//! Opening the realtime websocket: the TCP connection (bound to the device's source address,
//! if any), then the HTTP upgrade. The upgrade is done here rather than by tungstenite's
//! handshake, whose 4 KiB read buffer would otherwise stay with every socket for its life.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::ClientError;
use super::realtime::SocketSetup;
use super::transport::Transport;
use crate::error::ErrorKind;

pub(crate) type Socket = WebSocketStream<Transport>;

/// Upgrade answers longer than this are refused.
const MAX_HEAD: usize = 16 * 1024;

/// Opens the TCP connection and upgrades it.
pub(crate) async fn connect(setup: &SocketSetup) -> Result<Socket, ClientError> {
    let endpoint = &setup.endpoint;
    let address = endpoint.socket_addr().await?;
    let tcp = super::tcp::connect(
        address,
        setup.options.local_address,
        setup.options.connect_timeout,
    )
    .await?;
    let mut stream = if endpoint.is_https() {
        Transport::tls(tcp, endpoint.host()).await?
    } else {
        Transport::Plain(tcp)
    };
    let key = generate_key();
    let request = format!(
        "GET {}/realtime/v1/websocket?apikey={}&vsn={} HTTP/1.1\r\nHost: {}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {key}\r\n\r\n",
        endpoint.path_prefix(),
        endpoint.api_key(),
        setup.options.vsn.as_str(),
        endpoint.authority(),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ClientError::from_io(&e))?;
    let tail = read_upgrade(&mut stream, &key).await?;
    let config = Some(lean_config());
    Ok(if tail.is_empty() {
        WebSocketStream::from_raw_socket(stream, Role::Client, config).await
    } else {
        WebSocketStream::from_partially_read(stream, tail, Role::Client, config).await
    })
}

/// Reads the upgrade answer; returns what followed it (frames sent right after, if any).
async fn read_upgrade(stream: &mut Transport, key: &str) -> Result<Vec<u8>, ClientError> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if let Some(len) = check_answer(&buf, key)? {
            return Ok(buf.split_off(len));
        }
        if buf.len() >= MAX_HEAD {
            return Err(refused(None, "websocket upgrade answer too long"));
        }
        buf.reserve(512);
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| ClientError::from_io(&e))?;
        if n == 0 {
            return Err(refused(
                None,
                "connection closed during the websocket upgrade",
            ));
        }
    }
}

/// `Some(head length)` once a complete `101` with the right accept key is in `buf`.
fn check_answer(buf: &[u8], key: &str) -> Result<Option<usize>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(refused(None, &format!("malformed upgrade answer: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    if status != 101 {
        // Realtime refuses an upgrade with 403 and an empty body for limits and bad JWTs alike.
        return Err(refused(Some(status), "websocket upgrade refused"));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
    };
    let upgraded = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    let accepted =
        header("sec-websocket-accept") == Some(derive_accept_key(key.as_bytes()).as_bytes());
    if !upgraded || !accepted {
        return Err(refused(
            None,
            "the server answered the upgrade without accepting it",
        ));
    }
    Ok(Some(len))
}

fn refused(status: Option<u16>, message: &str) -> ClientError {
    ClientError {
        kind: status.map_or(ErrorKind::Connect, |s| ErrorKind::from_http(s, None)),
        status,
        code: None,
        message: message.to_owned(),
    }
}

/// Small buffers: tungstenite reserves `read_buffer_size` per socket up front (128 KiB by
/// default), far over the per-device budget. Replies and system messages are a few hundred
/// bytes; a larger frame grows the buffer to its size (tungstenite reserves per frame).
fn lean_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
}
