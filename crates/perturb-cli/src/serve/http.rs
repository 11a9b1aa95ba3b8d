//! The little HTTP/1.1 the page needs, on `std::net` with `httparse` reading the request's head:
//! one request per connection (answered with `Connection: close`), a head of at most
//! [`MAX_HEAD`] bytes and a body of at most [`MAX_BODY`] bytes, both within [`DEADLINE`], and
//! each connection on its own thread, so a slow or hostile client holds up only itself.
//!
//! (tiny_http 0.12, used before, read large bodies and wrote answers on the one thread that
//! answered everyone, so one client that stopped sending or reading stopped the server; and it
//! allocated an unread body's declared length when it dropped a request, so a
//! `Content-Length: 99999999999999` aborted the program. It offers no way to set a time limit.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Reply;

/// Request heads longer than this are refused (a browser's are well under 2 KiB).
pub const MAX_HEAD: usize = 16 << 10;

/// Request bodies longer than this are refused (an expression of the page's size is far
/// shorter: 500 nodes take a few kilobytes).
pub const MAX_BODY: usize = 64 << 10;

/// A client has this long to send its whole request, and this long to read the whole answer.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How long the server reads what a client still sends after its answer, before closing.
const LINGER: Duration = Duration::from_secs(2);

/// At most this many connections are served at once, each on its own thread.
const MAX_CONNECTIONS: usize = 128;

/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// A request as the routes see it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The minor version of HTTP/1.x.
    pub version: u8,
    /// The request target as sent (`/app.js?x=1`).
    pub target: String,
    /// Each header as sent (names in any case; values that are not UTF-8 are lossily read).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The values of the headers called `name` (case-insensitive).
    pub fn header_values<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'r str> + 'r {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target's path without its query: `/app.js` for `/app.js?x=1` and for the absolute
    /// form `http://127.0.0.1:8000/app.js` (which RFC 9112 section 3.2.2 obliges a server to
    /// accept), `/` for `http://127.0.0.1:8000`.
    pub fn path(&self) -> &str {
        let path = self
            .absolute()
            .map_or(self.target.as_str(), |(_, path)| path);
        match path.split('?').next().unwrap_or("") {
            "" => "/",
            path => path,
        }
    }

    /// The host the request names: the authority of a target in absolute form, which then
    /// overrides the Host header (RFC 9112 section 3.2.2), else the Host header.
    pub fn host(&self) -> Option<&str> {
        self.absolute()
            .map(|(authority, _)| authority)
            .or_else(|| self.header("Host"))
    }

    /// A target in absolute form (`http://` in any case), split into its authority and the
    /// rest (path and query).
    fn absolute(&self) -> Option<(&str, &str)> {
        let scheme = self.target.get(..7)?;
        if !scheme.eq_ignore_ascii_case("http://") {
            return None;
        }
        let rest = &self.target[7..];
        Some(rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len())))
    }

    /// The value of the header `name`, if it has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `answer` on `listener` until the process is stopped.
pub fn serve(listener: &TcpListener, answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) {
    let answer = Arc::new(answer);
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors, say: wait for some to be let go.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        // Beyond the connections served at once, the next one waits for a place (each is let
        // go within [`DEADLINE`] and [`LINGER`]); the ones after it wait in the system's queue.
        let slot = loop {
            match Slot::take(&open) {
                Some(slot) => break slot,
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let answer = Arc::clone(&answer);
        let spawned = std::thread::Builder::new()
            .name("perturb serve connection".into())
            .spawn(move || {
                let _slot = slot;
                connection(stream, answer.as_ref());
            });
        if spawned.is_err() {
            // No thread to be had: the connection and its slot, moved into the closure that
            // did not run, are let go.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One of the [`MAX_CONNECTIONS`] connections served at once, given back when dropped (also
/// when the thread serving it panics or cannot be started).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Option<Slot> {
        let slot = Slot(Arc::clone(open));
        (open.fetch_add(1, Ordering::SeqCst) < MAX_CONNECTIONS).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one request from `stream`, answers it and closes the connection.
fn connection(mut stream: TcpStream, answer: &(impl Fn(&Request) -> Reply + ?Sized)) {
    let deadline = Instant::now() + DEADLINE;
    let (reply, head_only) = match read_request(&mut stream, deadline) {
        Ok(request) => (answer(&request), request.method == "HEAD"),
        Err(Some(reply)) => (reply, false),
        // The client went away without a whole request: no one to answer.
        Err(None) => return,
    };
    write_reply(&mut stream, &reply, head_only);
    // Read what the client still sends before closing (a body too long to serve, say), for a
    // moment: closing with unread data resets the connection, which can lose the answer before
    // the client reads it.
    stream.shutdown(Shutdown::Write).ok();
    let linger = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    while let Some(left) = linger.checked_duration_since(Instant::now()) {
        if stream.set_read_timeout(Some(left)).is_err()
            || !matches!(stream.read(&mut sink), Ok(1..))
        {
            break;
        }
    }
}

/// Reads more of the request into `buf`, waiting at most until `deadline`. `Ok(0)`: the
/// client closed its side. `Err`: the time is up (`Some`: the answer) or the connection failed.
fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, Option<Reply>> {
    let time_up = || {
        Reply::error(
            408,
            &format!(
                "the request did not arrive within {} seconds",
                DEADLINE.as_secs()
            ),
        )
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Some(time_up()));
    }
    stream.set_read_timeout(Some(left)).map_err(|_| None)?;
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(Some(time_up()))
        }
        Err(_) => Err(None),
    }
}

/// Reads one request: its head, then the body its `Content-Length` announces. `Err(Some)`: the
/// answer to a request that cannot be served; `Err(None)`: the client went away.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, Option<Reply>> {
    let mut buf = Vec::new();
    let (mut request, head_len) = loop {
        if read_more(stream, &mut buf, deadline)? == 0 {
            return Err(None);
        }
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
    };
    // HTTP/1.1 asks for exactly one (RFC 9112, 3.2): with two, which one the guard against
    // other host names should read is anyone's guess.
    let hosts = request.header_values("Host").count();
    if hosts > 1 || (hosts == 0 && request.version == 1) {
        return Err(Some(Reply::error(
            400,
            "an HTTP/1.1 request must have exactly one Host header",
        )));
    }
    let length = body_length(&request)?;
    if length > 0
        && request
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| None)?;
    }
    buf.drain(..head_len);
    while buf.len() < length {
        if read_more(stream, &mut buf, deadline)? == 0 {
            return Err(None);
        }
    }
    buf.truncate(length);
    request.body = buf;
    Ok(request)
}

/// The request's head if `buf` holds all of it (with its length in bytes), `Ok(None)` if more
/// is to come.
fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, Option<Reply>> {
    let too_long = || {
        Reply::error(
            431,
            &format!(
                "the request's head is longer than {} KiB or has more than {MAX_HEADERS} headers",
                MAX_HEAD >> 10
            ),
        )
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(Some(too_long())),
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(Some(too_long())),
        Ok(httparse::Status::Complete(len)) => {
            let request = Request {
                method: parsed.method.unwrap_or_default().to_string(),
                version: parsed.version.unwrap_or_default(),
                target: parsed.path.unwrap_or_default().to_string(),
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).trim().to_string(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
            };
            Ok(Some((request, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(Some(too_long())),
        Err(e) => Err(Some(Reply::error(
            400,
            &format!("this is not an HTTP/1.1 request ({e})"),
        ))),
    }
}

/// The length of the request's body, from its `Content-Length`; an error names what is wrong
/// with it (too long, not a number, chunked).
fn body_length(request: &Request) -> Result<usize, Option<Reply>> {
    if request.header("Transfer-Encoding").is_some() {
        return Err(Some(Reply::error(
            411,
            "send the request body with a Content-Length (Transfer-Encoding is not read)",
        )));
    }
    let mut lengths = request.header_values("Content-Length");
    let Some(first) = lengths.next() else {
        return Ok(0);
    };
    if lengths.any(|other| other != first) {
        return Err(Some(Reply::error(
            400,
            "the request has two different Content-Length headers",
        )));
    }
    // Digits only: `usize::from_str` would take a leading `+`.
    let length = if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() {
        // All digits: the only failure is a number too large for usize, which is too long.
        first.parse::<usize>().unwrap_or(usize::MAX)
    } else {
        return Err(Some(Reply::error(
            400,
            &format!(
                "the Content-Length header `{}` is not a number of bytes",
                first.escape_debug()
            ),
        )));
    };
    if length > MAX_BODY {
        return Err(Some(Reply::error(
            413,
            &format!(
                "the request body is longer than {} KiB, the most the server reads",
                MAX_BODY >> 10
            ),
        )));
    }
    Ok(length)
}

/// Writes `reply` (only its head for `HEAD` requests); a client that went away or has not read
/// it all within [`DEADLINE`] is not answered further.
fn write_reply(stream: &mut TcpStream, reply: &Reply, head_only: bool) {
    // The page loads nothing from elsewhere and runs no inline script.
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Content-Security-Policy: default-src 'self'; img-src 'self' data:; base-uri 'none'; \
         form-action 'none'\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&reply.body);
    }
    // Each write waits at most until the deadline: a time limit on each write alone would let
    // a client that reads a little now and then hold the connection for ever.
    let deadline = Instant::now() + DEADLINE;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return;
        }
        match stream.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The reason phrase of the statuses the server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        _ => "",
    }
}
