//! The HTTP/1.1 client and its pools against hand-written servers on real loopback sockets:
//! the bytes of a request, keep-alive reuse, both body framings, closed and stale
//! connections, timeouts, refusals, and the idle reaper.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::http::{HttpClient, Method, Request};
use crate::client::{ConnectionModel, Endpoint, HttpClients, HttpOptions, http_client};
use crate::error::ErrorKind;

const WAIT: Duration = Duration::from_secs(5);
const OK_JSON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n[{\"sync_token\":42}]";

async fn listen() -> (TcpListener, Endpoint) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, Endpoint::new(&base, "anon").unwrap())
}

async fn accept(listener: &TcpListener) -> TcpStream {
    tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("a connection in time")
        .unwrap()
        .0
}

/// Reads one request head (and a body of `content-length`) off the server side.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.parse::<usize>().unwrap());
            if bytes.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a request in time")
            .unwrap();
        assert!(n > 0, "the client closed before its request was complete");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

fn get<'a>(path: &'a [&'a str]) -> Request<'a> {
    Request {
        method: Method::Get,
        path,
        bearer: Some("jwt"),
        prefer: None,
        json: None,
    }
}

async fn fetch(
    http: &HttpClient,
    endpoint: &Endpoint,
    path: &str,
) -> Result<(u16, String), ErrorKind> {
    http.exchange(endpoint, get(&[path]), |status, body| {
        (status, String::from_utf8_lossy(body).into_owned())
    })
    .await
    .map_err(|e| e.kind)
}

fn client(options: HttpOptions) -> HttpClient {
    http_client(&options).unwrap()
}

#[tokio::test]
async fn requests_carry_reqwests_headers_and_reuse_the_connection() {
    let (listener, endpoint) = listen().await;
    let http = client(HttpOptions::default());
    let server = tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(read_request(&mut stream).await);
            stream.write_all(OK_JSON).await.unwrap();
        }
        seen
    });
    let post = Request {
        method: Method::Post,
        path: &["/rest/v1/", "wallets"],
        bearer: Some("jwt"),
        prefer: Some("return=minimal"),
        json: Some(b"[1]".to_vec()),
    };
    let answer = fetch(&http, &endpoint, "/rest/v1/t?select=*&user_id=eq.u 1").await;
    assert_eq!(answer, Ok((200, r#"[{"sync_token":42}]"#.to_owned())));
    let status = http.exchange(&endpoint, post, |status, _| status).await;
    assert_eq!(status, Ok(200));
    let seen = server.await.unwrap();
    let authority = endpoint.authority();
    assert_eq!(
        seen[0],
        format!(
            "GET /rest/v1/t?select=*&user_id=eq.u%201 HTTP/1.1\r\nhost: {authority}\r\napikey: anon\r\n\
             authorization: Bearer jwt\r\naccept: */*\r\n\r\n"
        )
    );
    assert_eq!(
        seen[1],
        format!(
            "POST /rest/v1/wallets HTTP/1.1\r\nhost: {authority}\r\napikey: anon\r\n\
             authorization: Bearer jwt\r\nprefer: return=minimal\r\ncontent-type: application/json\r\n\
             accept: */*\r\ncontent-length: 3\r\n\r\n[1]"
        )
    );
}

#[tokio::test]
async fn chunked_bodies_are_joined_and_split_writes_are_read_whole() {
    let (listener, endpoint) = listen().await;
    let http = client(HttpOptions::default());
    let server = tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        let parts: [&[u8]; 4] = [
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n",
            b"\r\n5;ext=1\r\nhello\r\n",
            b"6\r\n world\r\n0\r\n",
            b"trailer: x\r\n\r\n",
        ];
        for part in parts {
            stream.write_all(part).await.unwrap();
            stream.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        read_request(&mut stream).await;
        stream.write_all(OK_JSON).await.unwrap();
    });
    let answer = fetch(&http, &endpoint, "/a").await;
    assert_eq!(answer, Ok((201, "hello world".to_owned())));
    // Same connection: the server reads the second request on the first socket.
    assert_eq!(fetch(&http, &endpoint, "/b").await.unwrap().0, 200);
    server.await.unwrap();
}

#[tokio::test]
async fn answers_without_length_end_at_close_and_closed_connections_are_not_reused() {
    let (listener, endpoint) = listen().await;
    let http = client(HttpOptions::default());
    let server = tokio::spawn(async move {
        // 1: no length, body until close.
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
            .await
            .unwrap();
        drop(stream);
        // 2: keep-alive answer, then the server closes the idle connection.
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream.write_all(OK_JSON).await.unwrap();
        drop(stream);
        // 3: the next request comes on a new connection.
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream.write_all(OK_JSON).await.unwrap();
    });
    assert_eq!(
        fetch(&http, &endpoint, "/1").await,
        Ok((200, "until close".into()))
    );
    assert_eq!(fetch(&http, &endpoint, "/2").await.unwrap().0, 200);
    assert_eq!(fetch(&http, &endpoint, "/3").await.unwrap().0, 200);
    server.await.unwrap();
}

#[tokio::test]
async fn transport_failures_have_their_kinds() {
    // Refused: a port nobody listens on any more.
    let (listener, endpoint) = listen().await;
    drop(listener);
    let http = client(HttpOptions::default());
    assert_eq!(fetch(&http, &endpoint, "/").await, Err(ErrorKind::Connect));

    // Silent server: the request deadline.
    let (listener, endpoint) = listen().await;
    let quick = client(HttpOptions {
        request_timeout: Duration::from_millis(200),
        ..HttpOptions::default()
    });
    let silent = tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        // Hold the socket open until the client gives up and closes it.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    });
    assert_eq!(fetch(&quick, &endpoint, "/").await, Err(ErrorKind::Timeout));
    silent.await.unwrap();

    // Cut mid-body, and a malformed head.
    let (listener, endpoint) = listen().await;
    let server = tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
            .await
            .unwrap();
        drop(stream);
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream.write_all(b"SMTP ready\r\n\r\n").await.unwrap();
    });
    assert_eq!(fetch(&http, &endpoint, "/").await, Err(ErrorKind::Connect));
    assert_eq!(fetch(&http, &endpoint, "/").await, Err(ErrorKind::Connect));
    server.await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (listener, endpoint) = listen().await;
    let clients = HttpClients::new(
        ConnectionModel::PerDevice,
        HttpOptions {
            idle_timeout: Duration::from_millis(150),
            ..HttpOptions::default()
        },
    )
    .unwrap();
    let http = clients.for_device().unwrap();
    let server = tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        read_request(&mut stream).await;
        stream.write_all(OK_JSON).await.unwrap();
        // The reaper closes the idle connection: EOF, without another request.
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
            .await
            .expect("the idle connection is closed in time")
            .unwrap();
        rest.len()
    });
    assert_eq!(fetch(&http, &endpoint, "/").await.unwrap().0, 200);
    assert_eq!(server.await.unwrap(), 0);
}

#[tokio::test]
async fn shared_pools_keep_one_connection_per_host_and_per_device_pools_their_own() {
    let (listener, endpoint) = listen().await;
    let server = tokio::spawn(async move {
        let mut accepted = 0;
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut stream = accept(&listener).await;
            accepted += 1;
            read_request(&mut stream).await;
            stream.write_all(OK_JSON).await.unwrap();
            streams.push(stream);
        }
        // The shared pool's second device reuses the first socket.
        read_request(&mut streams[0]).await;
        streams[0].write_all(OK_JSON).await.unwrap();
        accepted
    });
    let shared = HttpClients::new(ConnectionModel::Shared, HttpOptions::default()).unwrap();
    let own = HttpClients::new(ConnectionModel::PerDevice, HttpOptions::default()).unwrap();
    let (a, b) = (own.for_device().unwrap(), own.for_device().unwrap());
    let (c, d) = (shared.for_device().unwrap(), shared.for_device().unwrap());
    for http in [&c, &a, &b, &d] {
        assert_eq!(fetch(http, &endpoint, "/").await.unwrap().0, 200);
    }
    assert_eq!(server.await.unwrap(), 3);
}

#[test]
fn targets_are_percent_encoded_as_a_url_parser_encodes_them() {
    let mut buf = Vec::new();
    super::push_target(&mut buf, "/r?note=eq.\"a b\"<c>`d'é\tz&or=(x.gt.1)");
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "/r?note=eq.%22a%20b%22%3Cc%3E%60d%27%C3%A9%09z&or=(x.gt.1)"
    );
}
