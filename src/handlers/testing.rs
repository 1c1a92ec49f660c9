//! In-process testing, like Go's `httptest`: run a [`Handler`] on a request built from
//! parts and capture what it answers, with no socket ([`TestRequest`], [`Recorder`]);
//! or serve it on a loopback port for real clients ([`TestServer`]).
//!
//! ```
//! use spindle::handlers::testing::TestRequest;
//! use spindle::server::{Request, Response};
//! use std::io::Read;
//!
//! let echo = |mut req: Request, mut res: Response| {
//!     let mut body = Vec::new();
//!     req.read_to_end(&mut body).ok();
//!     res.headers_mut().insert("content-type", "text/plain".parse().unwrap());
//!     res.send(&body).ok();
//! };
//! let rec = TestRequest::post("/echo").body("ping").run(&echo);
//! assert_eq!(rec.status(), 200);
//! assert_eq!(rec.header("content-type"), Some("text/plain"));
//! assert_eq!(rec.text(), "ping");
//! ```
use std::io::{self, Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::{BodyReader, ResponseSink};
use crate::server::{Handler, Listening, Request, Response, Server};
use crate::Client;

fn test_client() -> Client {
    Client::builder()
        .env_proxy(false)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
}

/// A request built from parts, to run a handler on in-process.
#[derive(Debug, Clone)]
pub struct TestRequest {
    builder: Option<http::request::Parts>,
    error: Option<String>,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    chunked: bool,
    remote_addr: Option<SocketAddr>,
}

impl TestRequest {
    /// A request with `method` (any token; an invalid one panics when run) for
    /// `target` (a path and query such as `/a?b=c`).
    pub fn new(method: &str, target: &str) -> Self {
        let mut error = None;
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri(target)
            .version(Version::HTTP_11)
            .body(())
            .unwrap_or_else(|e| {
                error = Some(format!("bad test request {method} {target}: {e}"));
                http::Request::new(())
            })
            .into_parts();
        TestRequest {
            builder: Some(parts),
            error,
            body: Vec::new(),
            trailers: None,
            chunked: false,
            remote_addr: Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
        }
    }

    /// A GET request.
    pub fn get(target: &str) -> Self {
        TestRequest::new("GET", target)
    }

    /// A HEAD request.
    pub fn head(target: &str) -> Self {
        TestRequest::new("HEAD", target)
    }

    /// A POST request.
    pub fn post(target: &str) -> Self {
        TestRequest::new("POST", target)
    }

    /// A PUT request.
    pub fn put(target: &str) -> Self {
        TestRequest::new("PUT", target)
    }

    /// A DELETE request.
    pub fn delete(target: &str) -> Self {
        TestRequest::new("DELETE", target)
    }

    fn parts(&mut self) -> &mut http::request::Parts {
        self.builder
            .get_or_insert_with(|| http::Request::new(()).into_parts().0)
    }

    /// Adds a header field (appended: the same name may be given twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.parts().headers.append(n, v);
            }
            _ => self.error = Some(format!("bad test header {name}: {value}")),
        }
        self
    }

    /// Sets the body, with a matching `Content-Length`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.chunked = false;
        let len = HeaderValue::from(self.body.len());
        let headers = &mut self.parts().headers;
        headers.remove(http::header::TRANSFER_ENCODING);
        headers.insert(http::header::CONTENT_LENGTH, len);
        self
    }

    /// Sets the body as if it came chunked: `Transfer-Encoding: chunked`, no length.
    pub fn chunked_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.chunked = true;
        let headers = &mut self.parts().headers;
        headers.remove(http::header::CONTENT_LENGTH);
        headers.insert(
            http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        self
    }

    /// Trailer fields the body reader reports once read to its end.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.trailers
                    .get_or_insert_with(HeaderMap::new)
                    .append(n, v);
            }
            _ => self.error = Some(format!("bad test trailer {name}: {value}")),
        }
        self
    }

    /// The protocol version (default HTTP/1.1).
    pub fn version(mut self, version: Version) -> Self {
        self.parts().version = version;
        self
    }

    /// The peer address the handler sees (default 127.0.0.1:40000; `None` for none).
    pub fn remote_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.remote_addr = addr;
        self
    }

    /// Runs `handler` on this request and returns what it answered. A panic in the
    /// handler is caught like the server does: [`Recorder::panicked`] is set and the
    /// status is 500 if nothing had been sent.
    ///
    /// # Panics
    ///
    /// If the request was built with an invalid method, target or header.
    pub fn run<H: Handler + ?Sized>(mut self, handler: &H) -> Recorder {
        if let Some(err) = self.error.take() {
            panic!("{err}");
        }
        let parts = self
            .builder
            .take()
            .unwrap_or_else(|| http::Request::new(()).into_parts().0);
        let mut rec = Recorder::new();
        rec.version = parts.version;
        rec.is_head = parts.method == Method::HEAD;
        let mut body = TestBody {
            data: Cursor::new(std::mem::take(&mut self.body)),
            trailers: self.trailers.take(),
        };
        let mut req = Request::from_parts(parts, &mut body);
        *req.remote_addr_mut() = self.remote_addr;
        if req.headers().contains_key(http::header::EXPECT) {
            // As the server does, before the body is read.
            let verdict = handler.check_continue(&req);
            if verdict != StatusCode::CONTINUE {
                rec.status = verdict;
                rec.started = true;
                rec.finished = true;
                return rec;
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            handler.handle(req, Response::from_sink(&mut rec));
        }));
        if outcome.is_err() {
            rec.panicked = true;
            if !rec.started {
                rec.status = StatusCode::INTERNAL_SERVER_ERROR;
                rec.headers.clear();
                rec.body.clear();
            }
        }
        rec
    }
}

struct TestBody {
    data: Cursor<Vec<u8>>,
    trailers: Option<HeaderMap>,
}

impl Read for TestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.data.read(buf)
    }
}

impl BodyReader for TestBody {
    fn trailers(&self) -> Option<&HeaderMap> {
        let done = self.data.position() as usize >= self.data.get_ref().len();
        if done {
            self.trailers.as_ref()
        } else {
            None
        }
    }
}

/// Captures a response: status, header fields, body and trailers. Made by
/// [`TestRequest::run`], or by hand with [`Response::from_sink`].
#[derive(Debug, Clone)]
pub struct Recorder {
    version: Version,
    is_head: bool,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    started: bool,
    streamed: bool,
    finished: bool,
    aborted: bool,
    panicked: bool,
    flushes: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder for an HTTP/1.1 GET.
    pub fn new() -> Self {
        Recorder {
            version: Version::HTTP_11,
            is_head: false,
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Vec::new(),
            trailers: None,
            started: false,
            streamed: false,
            finished: false,
            aborted: false,
            panicked: false,
            flushes: 0,
        }
    }

    /// The status sent (200 if none was).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The header fields sent.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body bytes written (none for a HEAD request, as on the wire).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The trailer fields set after a streamed body.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Whether the body was streamed (`start`) rather than sent whole.
    pub fn streamed(&self) -> bool {
        self.streamed
    }

    /// Whether the response was finished normally.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Whether the response was aborted ([`Response::abort`]) or abandoned by a panic.
    pub fn aborted(&self) -> bool {
        self.aborted
    }

    /// Whether the handler panicked.
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// How many times the handler flushed the body.
    pub fn flushes(&self) -> usize {
        self.flushes
    }
}

fn misuse(what: &str) -> io::Error {
    io::Error::other(format!("recorder: {what}"))
}

impl ResponseSink for Recorder {
    fn version(&self) -> Version {
        self.version
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        if self.started {
            return Err(misuse("head sent twice"));
        }
        self.status = status;
        self.started = true;
        self.finished = true;
        if !self.is_head {
            self.body.extend_from_slice(body);
        }
        Ok(())
    }
    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        if self.started {
            return Err(misuse("head sent twice"));
        }
        self.status = status;
        self.started = true;
        self.streamed = true;
        Ok(())
    }
    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.started || self.finished {
            return Err(misuse("body written outside streaming"));
        }
        if let Some(len) = crate::h1::framing::content_length(&self.headers)
            .ok()
            .flatten()
        {
            if self.body.len() as u64 + data.len() as u64 > len && !self.is_head {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "body longer than the Content-Length sent",
                ));
            }
        }
        if !self.is_head {
            self.body.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush_body(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        self.finished = true;
        Ok(())
    }
    fn abandon(&mut self) {
        if !self.finished {
            self.aborted = true;
        }
    }
    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.trailers = Some(trailers);
    }
    fn upgrade(&mut self, _status: StatusCode) -> io::Result<crate::server::Upgraded> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "recorder: a test recorder has no connection to hand over; \
             test upgrades against a TestServer",
        ))
    }
}

/// A handler served on `127.0.0.1:0` for tests with real clients, like Go's
/// `httptest.Server`; stopped when dropped. Talk to it with the ready
/// [`client`](TestServer::client) and [`url`](TestServer::url), with any other client
/// through [`addr`](TestServer::addr), or byte for byte with the raw helpers.
///
/// ```
/// use spindle::handlers::testing::TestServer;
/// use spindle::server::{Request, Response};
///
/// let server = TestServer::start(|_req: Request, res: Response| { res.send(b"hi").ok(); })?;
/// let res = server.client().get(server.url("/")).send()?;
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.text()?, "hi");
///
/// // Byte for byte:
/// let res = server.get("/")?;
/// assert_eq!((res.status, res.body.as_slice()), (200, &b"hi"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TestServer {
    // Declared first so it is dropped first: its pooled connections close before the
    // server shuts down.
    client: Client,
    listening: Listening,
}

impl TestServer {
    /// Starts `handler` on a loopback port with 8 workers.
    pub fn start<H: Handler>(handler: H) -> crate::Result<TestServer> {
        TestServer::start_with(Server::http("127.0.0.1:0")?, handler, 8)
    }

    /// Starts `handler` on a server configured by the caller, with `threads` workers.
    pub fn start_with<H: Handler>(
        server: Server,
        handler: H,
        threads: usize,
    ) -> crate::Result<TestServer> {
        Ok(TestServer {
            client: test_client(),
            listening: server.handle_threads(handler, threads)?,
        })
    }

    /// A [`Client`] ready for this server (use it with [`url`](TestServer::url)): it
    /// ignores proxy environment variables (the server is on loopback) and gives up
    /// on a request after 30 s rather than hang a test. Clones share one connection
    /// pool, which this server owns: connections are reused across calls.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.listening.local_addr()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// The running server, to close it early or read its counters.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Sends `request` as raw bytes on a new connection and returns every byte the
    /// server sends until it closes the connection (send `Connection: close`) or 5 s
    /// pass without data.
    pub fn raw(&self, request: &[u8]) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !out.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Sends a `GET path` with `Connection: close` and parses the answer.
    pub fn get(&self, path: &str) -> io::Result<RawResponse> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        RawResponse::parse(&self.raw(request.as_bytes())?)
    }

    /// Sends `request` (raw bytes; include `Connection: close`) and parses the answer.
    pub fn send_raw(&self, request: &[u8]) -> io::Result<RawResponse> {
        let bytes = self.raw(request)?;
        if request.starts_with(b"HEAD ") {
            RawResponse::parse_head_reply(&bytes)
        } else {
            RawResponse::parse(&bytes)
        }
    }
}

/// A response read off the wire by [`TestServer`]'s raw helpers: the body is
/// de-chunked, not decompressed.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses one HTTP/1.1 response (after any 1xx) from `bytes`.
    pub fn parse(bytes: &[u8]) -> io::Result<RawResponse> {
        RawResponse::parse_inner(bytes, false)
    }

    /// Parses the answer to a HEAD request: it has no body, whatever its
    /// `Content-Length` says.
    pub fn parse_head_reply(bytes: &[u8]) -> io::Result<RawResponse> {
        RawResponse::parse_inner(bytes, true)
    }

    fn parse_inner(mut bytes: &[u8], head: bool) -> io::Result<RawResponse> {
        let bad = |what: &str| {
            io::Error::new(io::ErrorKind::InvalidData, format!("raw response: {what}"))
        };
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut fields);
            let head_len = match parsed.parse(bytes) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Err(bad("incomplete head")),
                Err(e) => return Err(bad(&e.to_string())),
            };
            let status = parsed.code.unwrap_or(0);
            let mut headers = HeaderMap::new();
            for f in parsed.headers.iter() {
                let name =
                    HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| bad("header name"))?;
                let value = HeaderValue::from_bytes(f.value).map_err(|_| bad("header value"))?;
                headers.append(name, value);
            }
            bytes = &bytes[head_len..];
            if (100..200).contains(&status) {
                continue;
            }
            let chunked = headers
                .get(http::header::TRANSFER_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
            let body = if head {
                Vec::new()
            } else if chunked {
                dechunk(bytes).ok_or_else(|| bad("chunked body"))?
            } else if let Some(len) = headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            {
                if status == 304 || status == 204 {
                    Vec::new()
                } else {
                    bytes.get(..len).ok_or_else(|| bad("short body"))?.to_vec()
                }
            } else {
                bytes.to_vec()
            };
            return Ok(RawResponse {
                status,
                headers,
                body,
            });
        }
    }
}

fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&bytes[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size + 2..)?;
    }
}
