//! The low-level client: HTTP/1.1 over one connection the caller opened, and HTTP/2 in
//! [`http2`].
//!
//! [`handshake`] takes any `Read + Write` stream (a `TcpStream`, a `UnixStream`, an
//! in-memory pipe, a TLS stream) and gives a [`SendRequest`]. Sending a request consumes
//! the sender and gives back an [`http::Response`] whose body is a [`ResponseBody`];
//! once that body has been read to its end, [`ResponseBody::into_sender`] hands the
//! sender back for the next request, or says why the connection can no longer be used.
//! Pooling, redirects, proxies and timeouts live in [`Client`](crate::Client), which is
//! built on this module.
//!
//! ```
//! use std::io::Read;
//! use std::net::TcpStream;
//! use spindle::client::conn;
//! use spindle::server::{Request, Response, Server};
//!
//! let server = Server::http("127.0.0.1:0")?
//!     .handle(|req: Request, res: Response| { res.send(req.path().as_bytes()).ok(); })?;
//! let stream = TcpStream::connect(server.local_addr())?;
//! let mut sender = conn::handshake(stream)?;
//! for path in ["/one", "/two"] {
//!     let req = spindle::http::Request::get(path)
//!         .header("host", "localhost")
//!         .body(())
//!         .unwrap();
//!     let res = sender.send_request(req)?;
//!     assert_eq!(res.status(), 200);
//!     let mut body = res.into_body();
//!     let mut text = String::new();
//!     body.read_to_string(&mut text)?;
//!     assert_eq!(text, path);
//!     sender = body.into_sender()?; // the same connection, again
//! }
//! server.close();
//! # Ok::<(), spindle::Error>(())
//! ```
#[path = "h2/mod.rs"]
pub mod http2;

use std::fmt;
use std::io::{self, Read, Write};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use super::body::{Body, BodyKind};
use crate::h1::framing::{write_chunk_size, BodyFraming, ChunkedDecoder};
use crate::h1::request_encode::{valid_target, write_request_head, RequestFraming};
use crate::h1::response_head::{
    drop_overridden_framing, parse_response_head, response_framing, ResponseHead,
    ResponseHeadError, ResponseLimits,
};
use crate::{Error, ErrorKind, Result};

const INITIAL_READ_BUF: usize = 8 * 1024;
const WRITE_INLINE_BODY: usize = 16 * 1024;
const BODY_CHUNK: usize = 16 * 1024;
const DEFAULT_MAX_INTERIM: usize = 16;

/// Settings for a connection; [`Builder::handshake`] applies them.
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    limits: ResponseLimits,
    max_trailer_bytes: usize,
    max_interim_responses: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            limits: ResponseLimits::default(),
            max_trailer_bytes: 16 * 1024,
            max_interim_responses: DEFAULT_MAX_INTERIM,
        }
    }
}

impl Builder {
    /// Default settings: 64 KiB response heads, 100 header fields, 16 KiB of chunk
    /// extensions and trailers, 16 interim (1xx) responses per request.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The largest response head accepted, in bytes (default 64 KiB); the interim (1xx)
    /// heads before a final response count against it together with that final head.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_head_bytes = bytes;
        self
    }

    /// The most response header fields accepted.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.limits.max_headers = count;
        self
    }

    /// The most bytes of chunk extensions plus trailers accepted per response body.
    pub fn max_trailer_bytes(mut self, bytes: usize) -> Self {
        self.max_trailer_bytes = bytes;
        self
    }

    /// The most interim (1xx) responses (`100 Continue`, `103 Early Hints`, ...) read
    /// before the final response of one request; one more is an error of kind
    /// [`ErrorKind::Limit`]. Default 16. Their heads count against
    /// [`max_head_bytes`](Builder::max_head_bytes) together with the final head.
    pub fn max_interim_responses(mut self, count: usize) -> Self {
        self.max_interim_responses = count;
        self
    }

    /// Wraps `io` as an HTTP/1.1 connection. HTTP/1.1 needs no preface, so this does no
    /// I/O; it returns a `Result` so that protocols that do can share the signature.
    pub fn handshake<S: Read + Write>(&self, io: S) -> Result<SendRequest<S>> {
        Ok(SendRequest {
            io,
            rbuf: Vec::new(),
            rpos: 0,
            rend: 0,
            wbuf: Vec::new(),
            config: *self,
            requests: 0,
        })
    }
}

/// Wraps `io` as an HTTP/1.1 connection with default [`Builder`] settings.
pub fn handshake<S: Read + Write>(io: S) -> Result<SendRequest<S>> {
    Builder::default().handshake(io)
}

/// The sending side of an idle connection. Each request consumes it; the response body
/// gives it back when the connection may carry another request.
pub struct SendRequest<S> {
    io: S,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    wbuf: Vec<u8>,
    config: Builder,
    requests: u64,
}

impl<S> fmt::Debug for SendRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendRequest")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// A failed exchange, and whether it may be retried on a fresh connection: true when the
/// connection had already carried a request and failed before any byte of the response
/// arrived (the server most likely closed it while idle).
pub(crate) struct SendFailure {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

impl From<Error> for SendFailure {
    fn from(error: Error) -> Self {
        SendFailure {
            error,
            retryable: false,
        }
    }
}

/// What the client layer needs to write a request without building an `http::Request`.
pub(crate) struct Outgoing<'r> {
    pub(crate) method: &'r Method,
    pub(crate) target: &'r str,
    pub(crate) host: Option<&'r str>,
    pub(crate) headers: &'r HeaderMap,
    pub(crate) defaults: Option<&'r HeaderMap>,
}

impl<S> SendRequest<S> {
    /// The stream, for settings such as socket timeouts.
    pub fn io(&self) -> &S {
        &self.io
    }

    /// The stream, mutably.
    pub fn io_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// How many requests this connection has carried.
    pub fn requests_sent(&self) -> u64 {
        self.requests
    }

    /// Gives back the stream and any bytes already read from it but not used.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.rbuf[self.rpos..self.rend].to_vec();
        (self.io, rest)
    }
}

impl<S: Read + Write> SendRequest<S> {
    /// Sends `req` and reads the response head. The request target is the URI's path
    /// and query (origin-form) unless the URI is absolute and the caller set no `Host`,
    /// in which case `Host` comes from the URI's authority; for an absolute-form target
    /// (to an HTTP proxy) use a full URI and set `Host` yourself.
    ///
    /// Framing is chosen here: `Content-Length` for bodies of known length, chunked for
    /// readers of unknown length; framing fields the caller set are replaced.
    /// Interim (1xx) responses other than `101` are skipped, up to
    /// [`Builder::max_interim_responses`].
    ///
    /// A response with both `Transfer-Encoding` and `Content-Length` is read by its
    /// Transfer-Encoding, its `Content-Length` is removed from the headers, and its
    /// connection is not reusable (RFC 9112 §6.3); the same for an HTTP/1.0 response
    /// with `Transfer-Encoding`, which is removed.
    pub fn send_request<'b, B: Into<Body<'b>>>(
        self,
        req: http::Request<B>,
    ) -> Result<http::Response<ResponseBody<S>>> {
        let (parts, body) = req.into_parts();
        let mut body = body.into();
        let uri = &parts.uri;
        let target = match (uri.authority(), parts.headers.contains_key(header::HOST)) {
            (Some(_), true) => uri.to_string(),
            _ if parts.method == Method::CONNECT => uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_else(|| uri.to_string()),
            _ => uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned()),
        };
        let host = uri.authority().map(|a| a.as_str());
        let out = Outgoing {
            method: &parts.method,
            target: &target,
            host,
            headers: &parts.headers,
            defaults: None,
        };
        match self.send(&out, &mut body) {
            Ok((head, body)) => Ok(into_http_response(head, body)),
            Err(fail) => Err(fail.error),
        }
    }

    pub(crate) fn send(
        mut self,
        out: &Outgoing<'_>,
        body: &mut Body<'_>,
    ) -> std::result::Result<(ResponseHead, ResponseBody<S>), SendFailure> {
        let reused = self.requests > 0;
        self.requests += 1;
        if !valid_target(out.target) {
            return Err(Error::new(
                ErrorKind::Usage,
                "request target contains whitespace or control bytes",
            )
            .into());
        }
        if let Err(e) = self.write_request(out, body) {
            // A write that fails on a reused connection means the peer had closed it.
            return Err(SendFailure {
                retryable: reused && body.is_replayable() && e.kind() != ErrorKind::Timeout,
                error: e,
            });
        }
        let mut head = match self.read_head() {
            Ok(head) => head,
            Err((error, nothing_received)) => {
                return Err(SendFailure {
                    retryable: reused
                        && nothing_received
                        && body.is_replayable()
                        && error.kind() != ErrorKind::Timeout,
                    error,
                })
            }
        };
        let framing = response_framing(out.method, &head).map_err(parse_error)?;
        // Content-Length beside Transfer-Encoding (or Transfer-Encoding in HTTP/1.0)
        // leaves `headers()`, so nobody reads or forwards a length the body was not
        // framed with, and the connection is not reused: the peer's framing is suspect
        // (RFC 9112 §6.1, §6.3, §11.2).
        let ambiguous = drop_overridden_framing(&mut head);
        if ambiguous {
            log::debug!("response with conflicting framing fields: connection not reused");
        }
        let keep_alive = !ambiguous
            && head.keep_alive()
            && framing != BodyFraming::CloseDelimited
            && head.status != StatusCode::SWITCHING_PROTOCOLS
            && !(out.method == Method::CONNECT && head.status.is_success())
            && !request_wants_close(out.headers);
        let state = match framing {
            BodyFraming::Empty => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length(n),
            BodyFraming::Chunked => {
                BodyState::Chunked(Box::new(ChunkedDecoder::new(self.config.max_trailer_bytes)))
            }
            BodyFraming::CloseDelimited => BodyState::Close,
        };
        let mut body = ResponseBody {
            conn: self,
            state,
            keep_alive,
            pending: 0,
            trailers: None,
            received: 0,
        };
        if matches!(body.state, BodyState::Done) {
            body.finish();
        }
        Ok((head, body))
    }

    fn write_request(&mut self, out: &Outgoing<'_>, body: &mut Body<'_>) -> Result<()> {
        let mut declared = body.len();
        if declared.is_none() {
            // A reader of unknown length with a caller-declared Content-Length (a
            // proxy forwarding a request) is sent with that length.
            declared = crate::h1::framing::content_length(out.headers)
                .ok()
                .flatten();
        }
        let framing = match declared {
            Some(0) if !method_expects_body(out.method) => RequestFraming::None,
            Some(n) => RequestFraming::Length(n),
            None => RequestFraming::Chunked,
        };
        self.wbuf.clear();
        write_request_head(
            &mut self.wbuf,
            out.method,
            out.target,
            out.host,
            out.headers,
            out.defaults,
            framing,
        );
        let io_err = |e| io_error("writing the request", e);
        match &mut body.kind {
            BodyKind::Reader(reader, _) => {
                self.io.write_all(&self.wbuf).map_err(io_err)?;
                match framing {
                    RequestFraming::Chunked => self.write_chunked(reader.as_mut())?,
                    RequestFraming::Length(n) => self.write_sized(reader.as_mut(), n)?,
                    RequestFraming::None => {}
                }
            }
            _ => {
                let bytes = body.bytes().unwrap_or(&[]);
                if bytes.len() <= WRITE_INLINE_BODY {
                    self.wbuf.extend_from_slice(bytes);
                    self.io.write_all(&self.wbuf).map_err(io_err)?;
                } else {
                    self.io.write_all(&self.wbuf).map_err(io_err)?;
                    self.io.write_all(bytes).map_err(io_err)?;
                }
            }
        }
        self.io.flush().map_err(io_err)?;
        if self.wbuf.capacity() > 64 * 1024 {
            self.wbuf = Vec::new();
        }
        Ok(())
    }

    fn write_chunked(&mut self, reader: &mut dyn Read) -> Result<()> {
        const PREFIX: usize = 18;
        self.wbuf.clear();
        self.wbuf.resize(PREFIX + BODY_CHUNK + 2, 0);
        loop {
            let n = match reader.read(&mut self.wbuf[PREFIX..PREFIX + BODY_CHUNK]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("reading the request body", e)),
            };
            if n == 0 {
                self.io
                    .write_all(b"0\r\n\r\n")
                    .map_err(|e| io_error("writing the request body", e))?;
                return Ok(());
            }
            let mut size = Vec::with_capacity(PREFIX);
            write_chunk_size(&mut size, n);
            let start = PREFIX - size.len();
            self.wbuf[start..PREFIX].copy_from_slice(&size);
            self.wbuf[PREFIX + n..PREFIX + n + 2].copy_from_slice(b"\r\n");
            self.io
                .write_all(&self.wbuf[start..PREFIX + n + 2])
                .map_err(|e| io_error("writing the request body", e))?;
        }
    }

    fn write_sized(&mut self, reader: &mut dyn Read, len: u64) -> Result<()> {
        self.wbuf.clear();
        self.wbuf.resize(BODY_CHUNK, 0);
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(BODY_CHUNK);
            let n = match reader.read(&mut self.wbuf[..want]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("request body ended {left} bytes before its declared length"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("reading the request body", e)),
            };
            self.io
                .write_all(&self.wbuf[..n])
                .map_err(|e| io_error("writing the request body", e))?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads until a final response head; the flag says whether nothing at all arrived.
    ///
    /// Interim (1xx) heads other than `101` are skipped, within bounds: at most
    /// `max_interim_responses` of them, and all the heads of the exchange together
    /// within `max_head_bytes`, so that a peer sending `100 Continue` forever gets an
    /// [`ErrorKind::Limit`] error at once rather than holding the caller.
    fn read_head(&mut self) -> std::result::Result<ResponseHead, (Error, bool)> {
        let mut received = self.rend > self.rpos;
        let mut interim = 0usize;
        let mut limits = self.config.limits;
        loop {
            if self.rend > self.rpos {
                match parse_response_head(&self.rbuf[self.rpos..self.rend], &limits) {
                    Ok(Some((head, used))) => {
                        self.rpos += used;
                        let code = head.status.as_u16();
                        if (100..200).contains(&code) && code != 101 {
                            // 100 Continue, 102 Processing, 103 Early Hints: informational
                            // only (RFC 9110 §15.2); the final response follows.
                            interim += 1;
                            limits.max_head_bytes = limits.max_head_bytes.saturating_sub(used);
                            if interim > self.config.max_interim_responses {
                                return Err((
                                    Error::new(
                                        ErrorKind::Limit,
                                        format!(
                                            "more than {} interim (1xx) responses",
                                            self.config.max_interim_responses
                                        ),
                                    ),
                                    false,
                                ));
                            }
                            continue;
                        }
                        return Ok(head);
                    }
                    Ok(None) => {}
                    Err(ResponseHeadError::TooLarge) if interim > 0 => {
                        return Err((
                            Error::new(
                                ErrorKind::Limit,
                                format!(
                                    "interim (1xx) responses and the final head exceed {} bytes",
                                    self.config.limits.max_head_bytes
                                ),
                            ),
                            false,
                        ))
                    }
                    Err(e) => return Err((parse_error(e), false)),
                }
            }
            match self.fill() {
                Ok(0) if !received => {
                    return Err((
                        Error::new(ErrorKind::Closed, "connection closed before the response"),
                        true,
                    ))
                }
                Ok(0) => {
                    return Err((
                        Error::new(ErrorKind::Closed, "connection closed in the response head"),
                        false,
                    ))
                }
                Ok(_) => received = true,
                Err(e) => return Err((io_error("reading the response head", e), !received)),
            }
        }
    }

    /// Reads more bytes into the read buffer, making room first.
    fn fill(&mut self) -> io::Result<usize> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        }
        if self.rend == self.rbuf.len() {
            if self.rpos > 0 {
                self.rbuf.copy_within(self.rpos..self.rend, 0);
                self.rend -= self.rpos;
                self.rpos = 0;
            } else {
                let max = self.config.limits.max_head_bytes + 1;
                let new_len =
                    (self.rbuf.len() * 2).clamp(INITIAL_READ_BUF, max.max(INITIAL_READ_BUF));
                if new_len <= self.rbuf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "read buffer full",
                    ));
                }
                self.rbuf.resize(new_len, 0);
            }
        }
        loop {
            match self.io.read(&mut self.rbuf[self.rend..]) {
                Ok(n) => {
                    self.rend += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// An I/O error in the client's terms: a reset or broken connection is
/// [`ErrorKind::Closed`], a timeout [`ErrorKind::Timeout`].
pub(crate) fn io_error(context: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Error::new(ErrorKind::Closed, context).with_source(e),
        _ => Error::io(context, e),
    }
}

fn method_expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

fn request_wants_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        crate::h1::head::comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"))
    })
}

fn parse_error(e: ResponseHeadError) -> Error {
    let kind = match e {
        ResponseHeadError::Malformed(_) => ErrorKind::Parse,
        ResponseHeadError::TooLarge | ResponseHeadError::TooManyHeaders => ErrorKind::Limit,
    };
    Error::new(kind, e.to_string())
}

pub(crate) fn into_http_response<B>(head: ResponseHead, body: B) -> http::Response<B> {
    let mut res = http::Response::new(body);
    *res.status_mut() = head.status;
    *res.version_mut() = head.version;
    *res.headers_mut() = head.headers;
    res
}

enum BodyState {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    Close,
    Done,
    Failed,
}

/// A response body being read from its connection. It owns the connection: read it to
/// the end, then [`into_sender`](ResponseBody::into_sender) gives the connection back.
///
/// A body cut short by the peer (closed before `Content-Length` bytes or before the last
/// chunk) is an error of kind [`ErrorKind::Closed`], never a silent short read.
pub struct ResponseBody<S> {
    conn: SendRequest<S>,
    state: BodyState,
    keep_alive: bool,
    /// Chunk data already accounted for by the decoder, waiting at `rbuf[rpos..]`.
    pending: usize,
    trailers: Option<HeaderMap>,
    received: u64,
}

impl<S> fmt::Debug for ResponseBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("finished", &self.is_finished())
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<S> ResponseBody<S> {
    /// True once the whole body has been read.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Whether the connection can carry another request once the body is finished.
    pub fn is_reusable(&self) -> bool {
        self.is_finished() && self.keep_alive
    }

    /// The trailer fields of a chunked body, once it is finished.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Body bytes read so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Bytes still owed by a `Content-Length` body, if that is its framing.
    pub fn remaining_length(&self) -> Option<u64> {
        match self.state {
            BodyState::Length(n) => Some(n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }

    /// True for a body sent with the chunked coding.
    pub fn is_chunked(&self) -> bool {
        matches!(self.state, BodyState::Chunked(_))
    }

    /// The connection, for settings such as timeouts.
    pub fn io(&self) -> &S {
        &self.conn.io
    }

    /// The connection, mutably.
    pub fn io_mut(&mut self) -> &mut S {
        &mut self.conn.io
    }

    /// Gives the connection back for another request, or an error saying why it cannot
    /// carry one (the body is not finished, or the exchange ends the connection).
    pub fn into_sender(self) -> Result<SendRequest<S>> {
        if !self.is_finished() {
            return Err(Error::new(
                ErrorKind::Usage,
                "the response body was not read to its end",
            ));
        }
        if !self.keep_alive {
            return Err(Error::new(
                ErrorKind::Closed,
                "the connection closes after this response",
            ));
        }
        Ok(self.conn)
    }

    /// Gives back the stream and the bytes already read from it but not used: for a
    /// `101 Switching Protocols` or a `CONNECT` tunnel.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        self.conn.into_parts()
    }

    fn finish(&mut self) {
        self.state = BodyState::Done;
        if self.conn.rpos < self.conn.rend {
            // Bytes after a complete response, unasked for: the connection's framing is
            // no longer trustworthy.
            self.keep_alive = false;
        }
        if self.conn.rbuf.len() > 64 * 1024 {
            self.conn.rbuf = Vec::new();
            self.conn.rpos = 0;
            self.conn.rend = 0;
        }
    }

    fn fail(&mut self, error: Error) -> io::Error {
        self.state = BodyState::Failed;
        self.keep_alive = false;
        error.into()
    }

    fn truncated(&mut self) -> io::Error {
        let msg = match self.state {
            BodyState::Length(n) => format!("connection closed with {n} body bytes still owed"),
            _ => "connection closed before the last chunk".to_owned(),
        };
        self.fail(Error::new(ErrorKind::Closed, msg))
    }

    fn buffered(&self) -> usize {
        self.conn.rend - self.conn.rpos
    }

    fn take_buffered(&mut self, out: &mut [u8], max: usize) -> usize {
        let n = max.min(out.len()).min(self.buffered());
        let c = &mut self.conn;
        out[..n].copy_from_slice(&c.rbuf[c.rpos..c.rpos + n]);
        c.rpos += n;
        n
    }
}

impl<S: Read + Write> ResponseBody<S> {
    fn read_direct(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.io.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail(io_error("reading the response body", e))),
                Ok(n) => return Ok(n),
            }
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        match self.conn.fill() {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(io_error("reading the response body", e))),
        }
    }

    /// Reads and discards the rest of the body, at most `limit` bytes; true when the body
    /// ended within the limit (and the connection may be reused).
    pub fn drain(&mut self, limit: u64) -> bool {
        let mut scratch = [0u8; 4096];
        let mut total = 0u64;
        while !self.is_finished() {
            if matches!(self.state, BodyState::Failed) || total > limit {
                return false;
            }
            match self.read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => return false,
            }
        }
        true
    }
}

impl<S: Read + Write> Read for ResponseBody<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                BodyState::Done => return Ok(0),
                BodyState::Failed => {
                    return Err(io::Error::other(Error::new(
                        ErrorKind::Usage,
                        "reading a response body after it failed",
                    )))
                }
                BodyState::Length(left) => {
                    let max = usize::try_from(*left).unwrap_or(usize::MAX);
                    let n = if self.buffered() > 0 {
                        self.take_buffered(out, max)
                    } else {
                        let want = max.min(out.len());
                        self.read_direct(&mut out[..want])?
                    };
                    if n == 0 {
                        return Err(self.truncated());
                    }
                    self.received += n as u64;
                    if let BodyState::Length(left) = &mut self.state {
                        *left -= n as u64;
                        if *left == 0 {
                            self.finish();
                        }
                    }
                    return Ok(n);
                }
                BodyState::Close => {
                    let n = if self.buffered() > 0 {
                        self.take_buffered(out, usize::MAX)
                    } else {
                        self.read_direct(out)?
                    };
                    if n == 0 {
                        self.finish();
                        self.keep_alive = false;
                    }
                    self.received += n as u64;
                    return Ok(n);
                }
                BodyState::Chunked(dec) => {
                    if self.pending > 0 {
                        let max = self.pending;
                        let n = self.take_buffered(out, max);
                        self.pending -= n;
                        self.received += n as u64;
                        return Ok(n);
                    }
                    if dec.is_done() {
                        self.trailers = dec.take_trailers();
                        self.finish();
                        return Ok(0);
                    }
                    let remaining = dec.data_remaining();
                    let buffered = self.conn.rend - self.conn.rpos;
                    if remaining > 0 && buffered == 0 {
                        let want = usize::try_from(remaining)
                            .unwrap_or(usize::MAX)
                            .min(out.len());
                        let n = self.read_direct(&mut out[..want])?;
                        if n == 0 {
                            return Err(self.truncated());
                        }
                        if let BodyState::Chunked(dec) = &mut self.state {
                            dec.data_read(n);
                        }
                        self.received += n as u64;
                        return Ok(n);
                    }
                    if buffered == 0 {
                        if self.fill()? == 0 {
                            return Err(self.truncated());
                        }
                        continue;
                    }
                    let c = &self.conn;
                    let step = match dec.decode(&c.rbuf[c.rpos..c.rend]) {
                        Ok(step) => step,
                        Err(e) => {
                            let kind = match e {
                                crate::h1::framing::ChunkedError::TooLarge => ErrorKind::Limit,
                                _ => ErrorKind::Parse,
                            };
                            return Err(self.fail(Error::new(kind, e.to_string()).with_source(e)));
                        }
                    };
                    if step.data.is_empty() {
                        self.conn.rpos += step.consumed;
                    } else {
                        self.conn.rpos += step.data.start;
                        self.pending = step.data.len();
                    }
                }
            }
        }
    }
}
