//! One HTTP/1.1 client connection: the request is written from its pieces into the
//! connection's buffer, the answer is read back into the same buffer, and the body is handed
//! to the caller as a slice of it (chunked bodies are joined in place). No task, no channel:
//! the device's own task drives the socket.
//!
//! Why our own and not a well-kept client: CPU per token check, each closed loop owning its
//! connection as a device does (`cargo bench --bench http_generation`, 64 connections, one
//! generator thread, published as `docs/runs/http-clients-20261207T130537Z`, measured under
//! load): this client 8.7 ms per 1,000 requests (1.02× `wrk`'s), hyper's `client::conn::http1`
//! 10.7 ms (1.26×), reqwest 20.6 ms (2.43×). At 100k devices that is the difference between
//! one generator core and two and a half. The memory side of the comparison (reqwest and hyper
//! arms in `device_memory`) is not measured yet.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ClientError;
use super::http::{Endpoint, HttpOptions, Method, Request};
use crate::error::ErrorKind;

/// Heads longer than this are refused (PostgREST's are ~300 bytes).
const MAX_HEAD: usize = 64 * 1024;
/// Bodies longer than this are refused (a delta page of 1,000 rows is ~300 KiB).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Read at least this much at a time.
const READ_CHUNK: usize = 1024;
/// An idle connection keeps at most this much buffer (0: none; an idle device's connection is
/// then a socket and ~100 bytes, and a request allocates its buffer anew — ~0.1 µs).
const RETAINED_BUFFER: usize = 0;
/// Response headers parsed at most.
const MAX_HEADERS: usize = 48;

pub(crate) struct Conn {
    stream: TcpStream,
    pub addr: SocketAddr,
    buf: Vec<u8>,
    /// When it was put back in the pool (for the idle timeout).
    pub idle_since: tokio::time::Instant,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish()
    }
}

/// Why a round trip failed: `early` when no byte of an answer arrived (a reused connection
/// the server had already closed; a GET may go again on a fresh one).
pub(crate) struct Failure {
    pub error: ClientError,
    pub early: bool,
}

impl Failure {
    fn io(e: &io::Error, early: bool) -> Failure {
        Failure {
            error: ClientError::from_io(e),
            early,
        }
    }

    fn protocol(message: impl Into<String>) -> Failure {
        Failure {
            error: ClientError::new(ErrorKind::Connect, message),
            early: false,
        }
    }
}

/// A complete answer: where its body lies in the buffer, and whether the connection can
/// carry another request.
pub(crate) struct Answer {
    pub status: u16,
    body: std::ops::Range<usize>,
    pub reusable: bool,
}

/// What the head says about the body.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Opens a connection (bound to the source address, if any) within the connect timeout.
pub(crate) async fn connect(addr: SocketAddr, options: &HttpOptions) -> Result<Conn, ClientError> {
    let stream = super::tcp::connect(addr, options.local_address, options.connect_timeout).await?;
    Ok(Conn {
        stream,
        addr,
        buf: Vec::new(),
        idle_since: tokio::time::Instant::now(),
    })
}

impl Conn {
    /// True when the server has closed (or written to) this idle connection: it must not be
    /// reused. Costs no system call unless the socket was reported readable.
    pub fn looks_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// The body of `answer` (valid until the next request).
    pub fn body(&self, answer: &Answer) -> &[u8] {
        &self.buf[answer.body.clone()]
    }

    /// Frees a buffer a large answer grew, so an idle connection stays small.
    pub fn trim(&mut self) {
        if self.buf.capacity() > RETAINED_BUFFER {
            self.buf = Vec::new();
        }
    }

    /// Writes the request and reads the whole answer.
    pub async fn round_trip(
        &mut self,
        endpoint: &Endpoint,
        request: &Request<'_>,
    ) -> Result<Answer, Failure> {
        self.buf.clear();
        encode(&mut self.buf, endpoint, request);
        if let Err(e) = self.stream.write_all(&self.buf).await {
            return Err(Failure::io(&e, true));
        }
        self.buf.clear();
        let head = loop {
            let head = self.read_head().await?;
            if (100..200).contains(&head.status) && head.status != 101 {
                // An interim answer (100 Continue): the real one follows.
                self.buf.drain(..head.len);
                continue;
            }
            break head;
        };
        let start = head.len;
        let (end, clean) = match head.framing {
            Framing::Empty => (start, self.buf.len() == start),
            Framing::Length(n) => {
                self.fill_to(start + n).await?;
                (start + n, self.buf.len() == start + n)
            }
            Framing::Chunked => self.read_chunked(start).await?,
            Framing::UntilClose => (self.read_to_end().await?, false),
        };
        Ok(Answer {
            status: head.status,
            body: start..end,
            reusable: head.keep_alive && clean,
        })
    }

    /// Reads until a complete head is in the buffer.
    async fn read_head(&mut self) -> Result<Head, Failure> {
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                return Ok(head);
            }
            let early = self.buf.is_empty();
            match self.read_more(READ_CHUNK).await {
                Ok(0) => {
                    return Err(Failure {
                        error: closed_early(),
                        early,
                    });
                }
                Ok(_) => {}
                Err(e) => return Err(Failure::io(&e, early)),
            }
        }
    }

    /// Reads until the buffer holds `len` bytes.
    async fn fill_to(&mut self, len: usize) -> Result<(), Failure> {
        while self.buf.len() < len {
            match self.read_more(len - self.buf.len()).await {
                Ok(0) => return Err(Failure::protocol(closed_early().message)),
                Ok(_) => {}
                Err(e) => return Err(Failure::io(&e, false)),
            }
        }
        Ok(())
    }

    /// Reads until the server closes; returns the end of the body.
    async fn read_to_end(&mut self) -> Result<usize, Failure> {
        loop {
            if self.buf.len() > MAX_BODY {
                return Err(Failure::protocol("answer body too long"));
            }
            match self.read_more(READ_CHUNK * 8).await {
                Ok(0) => return Ok(self.buf.len()),
                Ok(_) => {}
                Err(e) => return Err(Failure::io(&e, false)),
            }
        }
    }

    /// Decodes a chunked body in place from `start`: the chunks' data is moved down to form
    /// one contiguous body. Returns its end and whether nothing followed the last chunk.
    async fn read_chunked(&mut self, start: usize) -> Result<(usize, bool), Failure> {
        let (mut out, mut at) = (start, start);
        loop {
            let (size, data) = loop {
                match chunk_size_line(&self.buf[at..]) {
                    Ok(Some(found)) => break found,
                    Ok(None) => self.more_for_chunk(at).await?,
                    Err(message) => return Err(Failure::protocol(message)),
                }
            };
            at += data;
            if size == 0 {
                let end = self.skip_trailers(at).await?;
                return Ok((out, self.buf.len() == end));
            }
            if out - start + size > MAX_BODY {
                return Err(Failure::protocol("answer body too long"));
            }
            self.fill_to(at + size + 2).await?;
            if &self.buf[at + size..at + size + 2] != b"\r\n" {
                return Err(Failure::protocol("malformed chunk"));
            }
            self.buf.copy_within(at..at + size, out);
            out += size;
            at += size + 2;
        }
    }

    /// After the last chunk: trailer lines up to an empty line; returns where they end.
    async fn skip_trailers(&mut self, mut at: usize) -> Result<usize, Failure> {
        loop {
            match find_crlf(&self.buf[at..]) {
                Some(0) => return Ok(at + 2),
                Some(line) => at += line + 2,
                None => self.more_for_chunk(at).await?,
            }
        }
    }

    async fn more_for_chunk(&mut self, at: usize) -> Result<(), Failure> {
        if self.buf.len() - at > MAX_HEAD {
            return Err(Failure::protocol("malformed chunk"));
        }
        match self.read_more(READ_CHUNK).await {
            Ok(0) => Err(Failure::protocol(closed_early().message)),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::io(&e, false)),
        }
    }

    /// One read into the buffer's spare room (at least `want` bytes of room, up to 64 KiB).
    async fn read_more(&mut self, want: usize) -> io::Result<usize> {
        let room = want.clamp(READ_CHUNK, 64 * 1024);
        if self.buf.capacity() - self.buf.len() < room {
            self.buf.reserve(room);
        }
        self.stream.read_buf(&mut self.buf).await
    }
}

fn closed_early() -> ClientError {
    ClientError::new(
        ErrorKind::Connect,
        "connection closed before the answer was complete",
    )
}

/// The head, once the buffer holds all of it. Kept out of the async reader so that the
/// header array (1.5 KiB) is not part of every request future.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => head(&response, len).map(Some),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(Failure::protocol("answer head too long")),
        Err(e) => Err(Failure::protocol(format!("malformed answer head: {e}"))),
    }
}

/// The status, the body's framing and the connection's fate, from a parsed head.
fn head(response: &httparse::Response<'_, '_>, len: usize) -> Result<Head, Failure> {
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let (mut length, mut chunked) = (None, false);
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).ok();
            match value.and_then(|v| v.trim().parse::<usize>().ok()) {
                Some(n) if n <= MAX_BODY => length = Some(n),
                _ => return Err(Failure::protocol("bad content-length")),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = header
                .value
                .split(|b| *b == b',')
                .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            let value = header.value.trim_ascii();
            if value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Head {
        status,
        len,
        framing,
        keep_alive,
    })
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// `<hex size>[;ext]\r\n`: the size and the line's length, `None` while incomplete.
fn chunk_size_line(bytes: &[u8]) -> Result<Option<(usize, usize)>, &'static str> {
    let Some(line) = find_crlf(bytes) else {
        return Ok(None);
    };
    let digits = bytes[..line]
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let text = std::str::from_utf8(digits).map_err(|_| "malformed chunk size")?;
    let size = usize::from_str_radix(text, 16).map_err(|_| "malformed chunk size")?;
    Ok(Some((size, line + 2)))
}

/// The request's bytes: request line, headers (the ones reqwest sent: host, apikey,
/// authorization, prefer, content-type, accept, content-length), body.
fn encode(buf: &mut Vec<u8>, endpoint: &Endpoint, request: &Request<'_>) {
    buf.extend_from_slice(match request.method {
        Method::Get => b"GET ",
        Method::Post => b"POST ",
        Method::Patch => b"PATCH ",
        Method::Delete => b"DELETE ",
    });
    push_target(buf, endpoint.path_prefix());
    for piece in request.path {
        push_target(buf, piece);
    }
    buf.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    buf.extend_from_slice(endpoint.authority().as_bytes());
    buf.extend_from_slice(b"\r\napikey: ");
    buf.extend_from_slice(endpoint.api_key().as_bytes());
    if let Some(token) = request.bearer {
        buf.extend_from_slice(b"\r\nauthorization: Bearer ");
        buf.extend_from_slice(token.as_bytes());
    }
    if let Some(prefer) = request.prefer {
        buf.extend_from_slice(b"\r\nprefer: ");
        buf.extend_from_slice(prefer.as_bytes());
    }
    if request.json.is_some() {
        buf.extend_from_slice(b"\r\ncontent-type: application/json");
    }
    buf.extend_from_slice(b"\r\naccept: */*");
    match &request.json {
        Some(body) => {
            buf.extend_from_slice(b"\r\ncontent-length: ");
            buf.extend_from_slice(body.len().to_string().as_bytes());
            buf.extend_from_slice(b"\r\n\r\n");
            buf.extend_from_slice(body);
        }
        None if matches!(request.method, Method::Post | Method::Patch) => {
            buf.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        }
        None => buf.extend_from_slice(b"\r\n\r\n"),
    }
}

/// What a URL parser percent-encodes in a path or query: controls, space, quotes, angle
/// brackets, backtick (and, as `percent-encoding` always does, non-ASCII bytes).
const TARGET_ENCODED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'\'');

/// Appends a path-and-query piece percent-encoded as a URL parser would, so the bytes on the
/// wire match what reqwest sent for the same URL.
fn push_target(buf: &mut Vec<u8>, piece: &str) {
    for chunk in percent_encoding::utf8_percent_encode(piece, TARGET_ENCODED) {
        buf.extend_from_slice(chunk.as_bytes());
    }
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
