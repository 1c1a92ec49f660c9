//! One HTTP/1 connection on a blocking transport: read a head, run the handler with a
//! body reader and a response writer over the same connection, drain what the handler
//! left unread, and go again while keep-alive allows.
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use super::config::Config;
use super::h2c_upgrade::{self, H2cUpgrade};
use super::request::{Body, BodySource, Request};
use super::response::{Response, ResponseSink};
use super::upgrade::Upgraded;
use super::Handler;
use crate::h1::date::with_http_date;
use crate::h1::encode::{write_decimal, write_header, write_headers, write_status_line};
use crate::h1::framing::{write_chunk_size, BodyFraming, ChunkedDecoder};
use crate::h1::head::{comma_tokens, parse_request_head, RequestHead};
use crate::runtime::log_limit::{and_more, RateLimitedLog};
use crate::runtime::transport::Transport;

/// Body writes are gathered up to this many bytes before they go to the socket.
const WRITE_BUFFER: usize = 16 * 1024;
/// Reads of at least this size skip the connection buffer and land in the caller's.
const DIRECT_READ: usize = 4 * 1024;
const INITIAL_READ_BUFFER: usize = 8 * 1024;

/// Buffers a thread keeps from one exchange to the next, whatever connection it serves.
#[derive(Default)]
pub(crate) struct Scratch {
    write: Vec<u8>,
    headers: HeaderMap,
    /// HTTP/2's read buffer (see `h2conn::drive`).
    pub read: Vec<u8>,
}

/// What the engine should do with a connection after [`serve_ready`].
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing more to read now: park it until readable, or until the deadline.
    Park(Instant),
    /// Close it.
    Close(Fate),
    /// The connection opened with the HTTP/2 client preface: hand it to HTTP/2, with
    /// the bytes read so far ([`H1Conn::take_unread`]).
    Http2,
    /// A request asked to continue in HTTP/2 and was answered `101 Switching
    /// Protocols`: HTTP/2 serves it as stream 1; bytes after its body are unread.
    H2cUpgrade(Box<H2cUpgrade>),
}

/// The state of one HTTP/1 connection that survives while it is parked.
pub(crate) struct H1Conn {
    side: ReadSide,
    served: u64,
    /// When the first byte of the head now arriving came in.
    head_started: Option<Instant>,
    accepted: Instant,
    /// The socket may hold unread bytes. Cleared by a read that did not fill the space
    /// offered (the kernel had no more at that moment); any byte arriving later raises a
    /// new edge-triggered event, so the read that would only say "would block" is skipped
    /// (one system call fewer per request).
    unread_maybe: bool,
}

impl H1Conn {
    pub fn new(accepted: Instant) -> H1Conn {
        H1Conn {
            side: ReadSide {
                rbuf: ReadBuf {
                    buf: Vec::new(),
                    start: 0,
                    end: 0,
                    timeout_set: None,
                },
                body: BodyState::Done,
                trailers: None,
            },
            served: 0,
            head_started: None,
            accepted,
            unread_maybe: true,
        }
    }

    /// Marks that the socket became readable.
    pub fn readable(&mut self) {
        self.unread_maybe = true;
    }

    /// Requests served so far.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// No bytes of a next request have arrived.
    pub fn is_idle(&self) -> bool {
        self.side.rbuf.is_empty()
    }

    /// The connection gave its read buffer back while parked.
    pub fn needs_buffer(&self) -> bool {
        self.side.rbuf.buf.len() < INITIAL_READ_BUFFER
    }

    /// Hands the connection a read buffer (contents irrelevant).
    pub fn give_buffer(&mut self, mut buf: Vec<u8>) {
        if buf.len() < INITIAL_READ_BUFFER {
            buf.resize(INITIAL_READ_BUFFER, 0);
        }
        let rbuf = &mut self.side.rbuf;
        if rbuf.buf.len() < INITIAL_READ_BUFFER && rbuf.is_empty() {
            rbuf.buf = buf;
            rbuf.start = 0;
            rbuf.end = 0;
        }
    }

    /// Takes the read buffer back when it holds nothing, so an idle connection costs
    /// no buffer memory.
    pub fn take_buffer_if_idle(&mut self) -> Option<Vec<u8>> {
        if self.side.rbuf.is_empty() && !self.side.rbuf.buf.is_empty() {
            self.take_buffer()
        } else {
            None
        }
    }

    /// Takes the bytes read and not used (the HTTP/2 preface and what followed it).
    pub fn take_unread(&mut self) -> Vec<u8> {
        let data = self.side.rbuf.data().to_vec();
        self.side.rbuf.start = 0;
        self.side.rbuf.end = 0;
        data
    }

    /// Takes the read buffer (at close).
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        let rbuf = &mut self.side.rbuf;
        rbuf.start = 0;
        rbuf.end = 0;
        let buf = std::mem::take(&mut rbuf.buf);
        (!buf.is_empty() && buf.len() <= 4 * INITIAL_READ_BUFFER).then_some(buf)
    }
}

/// Why a connection ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The peer closed an idle connection.
    PeerClosed,
    /// The peer stopped sending partway through a request head. It may still be
    /// reading (a half-close), so the answers owed to earlier requests still go out.
    TruncatedHead,
    /// Keep-alive was not wanted by one side.
    NotKeepAlive,
    /// No request arrived within the idle timeout.
    IdleTimeout,
    /// A request head did not arrive in time.
    HeadTimeout,
    /// The request was refused (status sent).
    BadRequest(StatusCode),
    /// The request or response body could not be completed.
    BodyError,
    /// The handler panicked.
    HandlerPanic,
    /// A socket error.
    Io,
    /// The server is shutting down.
    Shutdown,
    /// A handler took the connection over ([`Response::upgrade`]): the server must
    /// forget it without shutting it down, flushing or lingering.
    Hijacked,
    /// The first bytes were the HTTP/2 client preface (never a close: see
    /// [`Next::Http2`]).
    Http2Preface,
}

/// The read side: the buffer and where the current request body stands.
struct ReadSide {
    rbuf: ReadBuf,
    body: BodyState,
    trailers: Option<HeaderMap>,
}

/// Bytes read from the connection and not yet used: `buf[start..end]`.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The read timeout last set on the socket, to skip redundant system calls.
    timeout_set: Option<Option<Duration>>,
}

enum BodyState {
    Done,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    /// Reading it failed. `answer` is the status that says why (400 for bad framing),
    /// sent if no response to the request has reached the socket yet.
    Failed {
        answer: Option<StatusCode>,
    },
}

impl ReadBuf {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn set_timeout(&mut self, io: &dyn Transport, timeout: Option<Duration>) -> io::Result<()> {
        if self.timeout_set != Some(timeout) {
            // A zero duration means "forever" to us, but is an error to the OS.
            let t = timeout.filter(|d| !d.is_zero());
            io.set_read_timeout(t)?;
            self.timeout_set = Some(timeout);
        }
        Ok(())
    }

    /// Reads more bytes into the buffer, growing it up to `max` bytes.
    fn fill(&mut self, io: &dyn Transport, max: usize) -> io::Result<usize> {
        self.fill_with(|buf| io.read(buf), max)
    }

    /// Like [`fill`](ReadBuf::fill), with the read operation given.
    fn fill_with(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
        max: usize,
    ) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown =
                (self.buf.len() * 2).clamp(INITIAL_READ_BUFFER, max.max(INITIAL_READ_BUFFER));
            if grown <= self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "read buffer full",
                ));
            }
            self.buf.resize(grown, 0);
        }
        loop {
            match read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the body reader and the response writer of one exchange share. Both run on the
/// handler's thread, but each is a separate object the handler holds, so they meet here.
struct Shared<'s> {
    side: &'s mut ReadSide,
    out: Output<'s>,
    /// The client waits for `100 Continue` before sending the body.
    continue_pending: bool,
    /// The final response head is in the output (so no 100 may follow).
    head_written: bool,
}

/// Response bytes not yet written to the socket, earlier pipelined answers first.
///
/// Everything waits here until the buffer fills, the handler flushes, the connection
/// would block on a read, or the exchange ends. "Would block on a read" includes the
/// body reader: before it waits for request body bytes it sends what is here, because
/// the client may be waiting for it (the answer to an unread body, a streamed prefix).
struct Output<'s> {
    buf: &'s mut Vec<u8>,
    /// The chunk being gathered starts here; its size line goes in front when it closes.
    chunk_start: Option<usize>,
    /// This exchange's response starts here; what lies before it are earlier answers.
    mark: usize,
    /// Some byte of this exchange's response has reached the socket, so it can no
    /// longer be taken back and replaced by an error answer.
    sent_any: bool,
    /// A write failed: the connection is dead.
    broken: bool,
}

impl<'s> Output<'s> {
    fn new(buf: &'s mut Vec<u8>) -> Self {
        let mark = buf.len();
        Output {
            buf,
            chunk_start: None,
            mark,
            sent_any: false,
            broken: false,
        }
    }

    /// Puts the size line in front of the chunk being gathered.
    fn close_chunk(&mut self) {
        if let Some(start) = self.chunk_start.take() {
            let len = self.buf.len() - start;
            if len == 0 {
                return;
            }
            let mut line = Vec::with_capacity(10);
            write_chunk_size(&mut line, len);
            self.buf.splice(start..start, line);
            self.buf.extend_from_slice(b"\r\n");
        }
    }

    /// Writes out everything gathered so far.
    fn flush(&mut self, io: &dyn Transport) -> io::Result<()> {
        self.close_chunk();
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.broken {
            self.buf.clear();
            return Err(broken_pipe());
        }
        if self.buf.len() > self.mark {
            self.sent_any = true;
        }
        let result = io.write_all(self.buf);
        self.buf.clear();
        self.mark = 0;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Writes out what is gathered, then `data` straight from the caller's buffer.
    fn write_through(&mut self, io: &dyn Transport, data: &[u8]) -> io::Result<()> {
        self.flush(io)?;
        self.sent_any = true;
        io.write_all(data).inspect_err(|_| self.broken = true)
    }

    /// Drops whatever this exchange's response put here and has not yet sent; earlier
    /// answers stay. Returns true when none of the response had been sent, so that an
    /// error answer may still take its place.
    fn retract(&mut self) -> bool {
        self.chunk_start = None;
        self.buf.truncate(self.mark);
        !self.sent_any
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection is broken")
}

/// The body of the current request, read through the connection.
struct H1Body<'c, 's> {
    io: &'c dyn Transport,
    shared: &'c Mutex<Shared<'s>>,
    /// Trailers moved out of the read side once the body ended.
    trailers: Option<HeaderMap>,
    read_timeout: Option<Duration>,
    max_buffer: usize,
}

impl BodySource for H1Body<'_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = lock(self.shared);
        let result = read_body(
            self.io,
            &mut shared,
            self.read_timeout,
            self.max_buffer,
            buf,
        );
        if shared.side.trailers.is_some() {
            self.trailers = shared.side.trailers.take();
        }
        result
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

fn lock<'g, T>(m: &'g Mutex<T>) -> MutexGuard<'g, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_body(
    io: &dyn Transport,
    shared: &mut Shared<'_>,
    read_timeout: Option<Duration>,
    max_buffer: usize,
    buf: &mut [u8],
) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    match shared.side.body {
        BodyState::Done => return Ok(0),
        BodyState::Failed { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body is unusable after an earlier error",
            ))
        }
        BodyState::Length(_) | BodyState::Chunked(_) => {}
    }
    if shared.continue_pending {
        shared.continue_pending = false;
        if !shared.head_written {
            // Before the mark: it is no part of the final response, which may still
            // be replaced by an error answer.
            let out = &mut shared.out;
            out.buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            out.mark = out.buf.len();
        }
    }
    let result = read_body_inner(
        io,
        shared.side,
        &mut shared.out,
        read_timeout,
        max_buffer,
        buf,
    );
    if let Err(e) = &result {
        shared.side.body = BodyState::Failed {
            answer: failure_status(e),
        };
    }
    result
}

/// The answer a failed request body deserves when no response has started: 400 when
/// the peer's framing was at fault, 408 when it was too slow, none when it went away.
fn failure_status(e: &io::Error) -> Option<StatusCode> {
    match e.kind() {
        io::ErrorKind::InvalidData => Some(StatusCode::BAD_REQUEST),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Some(StatusCode::REQUEST_TIMEOUT),
        _ => None,
    }
}

fn read_body_inner(
    io: &dyn Transport,
    side: &mut ReadSide,
    out: &mut Output<'_>,
    read_timeout: Option<Duration>,
    max_buffer: usize,
    buf: &mut [u8],
) -> io::Result<usize> {
    let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body");
    let ReadSide {
        rbuf,
        body,
        trailers,
    } = side;
    loop {
        match body {
            BodyState::Done | BodyState::Failed { .. } => return Ok(0),
            BodyState::Length(remaining) => {
                let want = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = if !rbuf.is_empty() {
                    let data = rbuf.data();
                    let n = want.min(data.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    rbuf.consume(n);
                    n
                } else if want >= DIRECT_READ {
                    out.flush(io)?;
                    rbuf.set_timeout(io, read_timeout)?;
                    match io.read(&mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                } else {
                    out.flush(io)?;
                    rbuf.set_timeout(io, read_timeout)?;
                    if rbuf.fill(io, max_buffer)? == 0 {
                        return Err(eof());
                    }
                    continue;
                };
                *remaining -= n as u64;
                if *remaining == 0 {
                    *body = BodyState::Done;
                }
                return Ok(n);
            }
            BodyState::Chunked(decoder) => {
                if !rbuf.is_empty() {
                    let avail = rbuf.data();
                    // Never let the decoder hand out more data than the caller can take.
                    let window = &avail[..avail.len().min(buf.len())];
                    let step = decoder
                        .decode(window)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let n = step.data.len();
                    buf[..n].copy_from_slice(&window[step.data]);
                    rbuf.consume(step.consumed);
                    if decoder.is_done() {
                        *trailers = decoder.take_trailers();
                        *body = BodyState::Done;
                    }
                    if n > 0 || matches!(body, BodyState::Done) {
                        return Ok(n);
                    }
                    continue;
                }
                out.flush(io)?;
                rbuf.set_timeout(io, read_timeout)?;
                let remaining = decoder.data_remaining();
                if remaining > 0 && buf.len() >= DIRECT_READ {
                    let want = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    match io.read(&mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => {
                            decoder.data_read(n);
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                if rbuf.fill(io, max_buffer)? == 0 {
                    return Err(eof());
                }
            }
        }
    }
}

enum SinkState {
    Fresh,
    Streaming(Encoder),
    Done,
    Abandoned,
    /// The handler took the connection ([`Response::upgrade`]).
    Hijacked,
}

#[derive(Clone, Copy)]
enum Encoder {
    Length(u64),
    Chunked,
    /// Written as is until the connection closes: an HTTP/1.0 body of unknown length,
    /// or the tunnel after a 2xx answer to CONNECT.
    CloseDelimited,
    /// HEAD, 204, 304: the body is dropped.
    Discard,
}

/// The response writer of the current exchange.
struct H1Sink<'c, 's> {
    io: &'c dyn Transport,
    shared: &'c Mutex<Shared<'s>>,
    /// The request is a CONNECT (a 2xx answer may take the connection).
    connect: bool,
    /// The request offers to switch protocols (`Connection: upgrade` and `Upgrade`).
    upgrade_offered: bool,
    headers: &'c mut HeaderMap,
    version: Version,
    is_head: bool,
    keep_alive: bool,
    state: SinkState,
    trailers: Option<HeaderMap>,
    /// The connection must close after this response (unfinished or close-delimited body).
    close: bool,
    /// The server is shutting down gracefully.
    stopping: &'c AtomicBool,
    /// Another request already waits behind this one.
    pipelined: bool,
}

impl H1Sink<'_, '_> {
    /// Writes the head into the output and decides the body's framing.
    fn write_head(
        &mut self,
        shared: &mut Shared<'_>,
        status: StatusCode,
        whole_len: Option<u64>,
    ) -> io::Result<Encoder> {
        if !matches!(self.state, SinkState::Fresh) {
            return Err(io::Error::other("response head already sent"));
        }
        shared.head_written = true;
        let no_body_status = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        // RFC 9110 §9.3.6: a 2xx answer to CONNECT starts the tunnel; it has no body
        // and no framing fields, and what the handler writes after it is tunnel data.
        let tunnel = self.connect && status.is_success();
        let headers = &mut *self.headers;

        if no_body_status || tunnel {
            // RFC 9110 §8.6, RFC 9112 §6.1: never framing fields on 1xx and 204.
            if status != StatusCode::NOT_MODIFIED {
                headers.remove(header::CONTENT_LENGTH);
            }
            headers.remove(header::TRANSFER_ENCODING);
        }
        let user_length = if no_body_status || tunnel {
            None
        } else {
            match crate::h1::framing::content_length(headers) {
                Ok(n) => n,
                Err(_) => {
                    headers.remove(header::CONTENT_LENGTH);
                    log::warn!("handler set an invalid Content-Length; removed it");
                    None
                }
            }
        };
        if response_wants_close(headers)
            || (self.stopping.load(Ordering::Relaxed) && !self.pipelined)
        {
            // During a graceful shutdown the last answer says so.
            self.keep_alive = false;
        }

        let mut encoder = if no_body_status || (self.is_head && whole_len.is_none()) {
            Encoder::Discard
        } else if tunnel {
            self.keep_alive = false;
            Encoder::CloseDelimited
        } else if let Some(len) = whole_len {
            // `send`: the real length wins, except that a HEAD answer may keep the length
            // the handler declared for the GET it mirrors.
            if !(self.is_head && len == 0 && user_length.is_some()) {
                headers.remove(header::CONTENT_LENGTH);
                headers.remove(header::TRANSFER_ENCODING);
            }
            Encoder::Length(len)
        } else if let Some(len) = user_length {
            headers.remove(header::TRANSFER_ENCODING);
            Encoder::Length(len)
        } else if let Some(te) = headers.get(header::TRANSFER_ENCODING) {
            let last = comma_tokens(te.as_bytes()).last().unwrap_or(b"");
            if last.eq_ignore_ascii_case(b"chunked") && self.version == Version::HTTP_11 {
                Encoder::Chunked
            } else {
                headers.remove(header::TRANSFER_ENCODING);
                self.keep_alive = false;
                Encoder::CloseDelimited
            }
        } else if self.version == Version::HTTP_11 {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Encoder::Chunked
        } else {
            self.keep_alive = false;
            Encoder::CloseDelimited
        };
        if self.is_head {
            encoder = Encoder::Discard;
        }

        let out = &mut *shared.out.buf;
        write_status_line(out, Version::HTTP_11, status);
        if !headers.contains_key(header::DATE) {
            with_http_date(|date| write_header(out, b"date", date));
        }
        if let (Some(len), false) = (whole_len, headers.contains_key(header::CONTENT_LENGTH)) {
            if !no_body_status && !tunnel {
                out.extend_from_slice(b"content-length: ");
                write_decimal(out, len);
                out.extend_from_slice(b"\r\n");
            }
        }
        write_headers(out, headers);
        if !status.is_informational() {
            if !self.keep_alive {
                if !response_wants_close(headers) && !tunnel {
                    out.extend_from_slice(b"connection: close\r\n");
                }
            } else if self.version == Version::HTTP_10 {
                out.extend_from_slice(b"connection: keep-alive\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(encoder)
    }
}

fn response_wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close")))
}

impl ResponseSink for H1Sink<'_, '_> {
    fn version(&self) -> Version {
        self.version
    }

    fn headers(&self) -> &HeaderMap {
        self.headers
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers
    }

    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        let shared = self.shared;
        let mut shared = lock(shared);
        let encoder = self.write_head(&mut shared, status, Some(body.len() as u64))?;
        if matches!(encoder, Encoder::Length(_) | Encoder::CloseDelimited) {
            let out = &mut shared.out;
            if body.len() >= WRITE_BUFFER {
                out.write_through(self.io, body)?;
            } else {
                out.buf.extend_from_slice(body);
            }
        }
        if let Encoder::CloseDelimited = encoder {
            self.close = true;
        }
        self.state = SinkState::Done;
        Ok(())
    }

    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        let shared = self.shared;
        let encoder = self.write_head(&mut lock(shared), status, None)?;
        if let Encoder::CloseDelimited = encoder {
            self.close = true;
        }
        self.state = SinkState::Streaming(encoder);
        Ok(())
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        let SinkState::Streaming(encoder) = &mut self.state else {
            return Err(io::Error::other("response body written outside streaming"));
        };
        let mut shared = lock(self.shared);
        let out = &mut shared.out;
        if out.broken {
            return Err(broken_pipe());
        }
        let chunked = match encoder {
            Encoder::Discard => return Ok(data.len()),
            Encoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "body longer than the Content-Length sent",
                    ));
                }
                *remaining -= data.len() as u64;
                false
            }
            Encoder::Chunked => true,
            Encoder::CloseDelimited => false,
        };
        if data.is_empty() {
            return Ok(0);
        }
        if out.buf.len() + data.len() > WRITE_BUFFER {
            out.flush(self.io)?;
            if data.len() >= WRITE_BUFFER {
                // Large writes go straight out instead of through the buffer.
                if chunked {
                    write_chunk_size(out.buf, data.len());
                }
                out.write_through(self.io, data)?;
                if chunked {
                    out.buf.extend_from_slice(b"\r\n");
                }
                return Ok(data.len());
            }
        }
        if chunked {
            out.chunk_start.get_or_insert(out.buf.len());
        }
        out.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush_body(&mut self) -> io::Result<()> {
        lock(self.shared).out.flush(self.io)
    }

    fn end(&mut self) -> io::Result<()> {
        let mut shared = lock(self.shared);
        if matches!(self.state, SinkState::Streaming(_))
            && matches!(shared.side.body, BodyState::Failed { .. })
        {
            // The exchange failed under a started response: cut it, as HTTP/2 resets
            // the stream, rather than end it as if it were whole.
            self.state = SinkState::Abandoned;
            return Err(io::Error::other(
                "the request body failed, so the response is cut",
            ));
        }
        match self.state {
            SinkState::Streaming(Encoder::Chunked) => {
                let out = &mut shared.out;
                out.close_chunk();
                self.state = SinkState::Done;
                out.buf.extend_from_slice(b"0\r\n");
                if let Some(trailers) = self.trailers.take() {
                    write_headers(out.buf, &trailers);
                }
                out.buf.extend_from_slice(b"\r\n");
                Ok(())
            }
            SinkState::Streaming(Encoder::Length(remaining)) if remaining > 0 => {
                // The peer was promised more: the only honest end is to close.
                self.state = SinkState::Done;
                self.close = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("response ended {remaining} bytes short of its Content-Length"),
                ))
            }
            SinkState::Streaming(_) => {
                self.state = SinkState::Done;
                Ok(())
            }
            SinkState::Fresh => Err(io::Error::other("response not started")),
            SinkState::Done | SinkState::Abandoned | SinkState::Hijacked => Ok(()),
        }
    }

    fn abandon(&mut self) {
        if !matches!(self.state, SinkState::Done | SinkState::Hijacked) {
            self.state = SinkState::Abandoned;
        }
    }

    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.trailers = Some(trailers);
    }

    fn upgrade(&mut self, status: StatusCode) -> io::Result<Upgraded> {
        if !matches!(self.state, SinkState::Fresh) {
            return Err(io::Error::other("response head already sent"));
        }
        let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if self.version != Version::HTTP_11 {
                return refuse("101 Switching Protocols cannot answer an HTTP/1.0 request");
            }
            if !self.upgrade_offered {
                return refuse("101 Switching Protocols needs a request with an Upgrade field");
            }
        } else if !(status.is_success() && self.connect) {
            return refuse("only a CONNECT request may be taken over with a 2xx status");
        }
        let mut shared = lock(self.shared);
        if shared.out.broken {
            return Err(broken_pipe());
        }
        // Take the socket first: if it cannot be had, nothing has been sent yet.
        let mut stream = self.io.hijack()?;
        shared.head_written = true;
        // RFC 9110 §9.3.6 and §15.2: no framing fields on these.
        let headers = &mut *self.headers;
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        let out = &mut shared.out;
        write_status_line(out.buf, Version::HTTP_11, status);
        if status != StatusCode::SWITCHING_PROTOCOLS && !headers.contains_key(header::DATE) {
            with_http_date(|date| write_header(out.buf, b"date", date));
        }
        write_headers(out.buf, headers);
        out.buf.extend_from_slice(b"\r\n");
        // From here on the connection cannot go back to HTTP/1.
        self.state = SinkState::Done;
        self.close = true;
        // Through the duplicate, which is blocking now (the mode is shared with the
        // engine's descriptor); with earlier pipelined answers still buffered, if any.
        let written = io::Write::write_all(&mut stream, out.buf);
        out.buf.clear();
        out.mark = 0;
        if let Err(e) = written {
            out.broken = true;
            return Err(e);
        }
        let side = &mut *shared.side;
        let buffered = side.rbuf.data().to_vec();
        side.rbuf.consume(buffered.len());
        // Whatever body the request declared is now the new owner's business.
        side.body = BodyState::Done;
        drop(shared);
        self.state = SinkState::Hijacked;
        Ok(Upgraded::new(stream, buffered))
    }
}

/// Serves every request the connection has ready, until reading would block.
pub(crate) fn serve_ready<H: Handler + ?Sized>(
    conn: &mut H1Conn,
    io: &dyn Transport,
    peer: Option<SocketAddr>,
    handler: &H,
    cfg: &Config,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
) -> Next {
    let side = &mut conn.side;
    loop {
        let head = match read_head(
            io,
            side,
            &mut scratch.write,
            cfg,
            &mut conn.head_started,
            &mut conn.unread_maybe,
            conn.served == 0,
        ) {
            Ok(Some(head)) => head,
            Err(Fate::Http2Preface) => return Next::Http2,
            Ok(None) => {
                // Would block: answers go out now, then the connection parks.
                if let Err(e) = flush(io, &mut scratch.write) {
                    log::debug!("write failed: {e}");
                    return Next::Close(Fate::Io);
                }
                if stopping.load(Ordering::Relaxed) && side.rbuf.is_empty() {
                    return Next::Close(Fate::Shutdown);
                }
                let deadline = match conn.head_started {
                    Some(t0) => cfg.head_timeout.map(|t| t0 + t),
                    None if conn.served == 0 => cfg.head_timeout.map(|t| conn.accepted + t),
                    None => cfg.idle_timeout.map(|t| Instant::now() + t),
                };
                let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                return Next::Park(deadline.unwrap_or(far));
            }
            Err(fate) => return Next::Close(fate),
        };
        conn.head_started = None;
        conn.served += 1;
        if let Some(settings) = h2c_settings(io, &head) {
            return match take_h2c_upgrade(io, side, cfg, &mut scratch.write, head, settings) {
                Ok(upgrade) => Next::H2cUpgrade(Box::new(upgrade)),
                Err(fate) => Next::Close(fate),
            };
        }
        match exchange(io, peer, handler, cfg, side, scratch, stopping, head) {
            Ok(()) => {}
            Err(fate) => return Next::Close(fate),
        }
    }
}

/// Runs the handler for one request and settles the connection afterwards. `Err` means
/// the connection must close.
#[allow(clippy::too_many_arguments)]
fn exchange<H: Handler + ?Sized>(
    io: &dyn Transport,
    peer: Option<SocketAddr>,
    handler: &H,
    cfg: &Config,
    side: &mut ReadSide,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
    head: RequestHead,
) -> Result<(), Fate> {
    let RequestHead {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    } = head;
    side.body = match framing {
        BodyFraming::Empty => BodyState::Done,
        BodyFraming::Length(n) => BodyState::Length(n),
        BodyFraming::Chunked => {
            BodyState::Chunked(Box::new(ChunkedDecoder::new(cfg.max_head_bytes())))
        }
        // Requests are never close-delimited (RFC 9112 §6.3).
        BodyFraming::CloseDelimited => BodyState::Done,
    };
    side.trailers = None;
    // An upgrade request (RFC 9110 §7.8) or a CONNECT: what follows the request may be
    // another protocol, so the connection is never reused for HTTP/1 after it and an
    // unread body is not drained; the handler may take the connection over instead.
    let connect = method == Method::CONNECT;
    let upgrade_offered = is_upgrade_request(&headers);
    let keep_alive = keep_alive && cfg.keep_alive && !connect && !upgrade_offered;
    // Bytes beyond this request's body are already here: another request follows, which
    // a graceful shutdown must still answer.
    let pipelined = match framing {
        BodyFraming::Length(n) => side.rbuf.data().len() as u64 > n,
        BodyFraming::Empty => !side.rbuf.is_empty(),
        _ => false,
    };
    let is_head = method == Method::HEAD;
    scratch.headers.clear();

    let has_body = !matches!(side.body, BodyState::Done);
    let shared = Mutex::new(Shared {
        side,
        out: Output::new(&mut scratch.write),
        continue_pending: false,
        head_written: false,
    });
    let mut body = H1Body {
        io,
        shared: &shared,
        trailers: None,
        read_timeout: cfg.read_timeout,
        max_buffer: cfg.max_head_bytes(),
    };
    let request = Request::new(
        method,
        uri,
        version,
        headers,
        peer,
        if has_body {
            Body::Source(&mut body)
        } else {
            Body::Empty
        },
    );
    if expect_continue && has_body {
        let verdict = catch_unwind(AssertUnwindSafe(|| handler.check_continue(&request)))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if verdict != StatusCode::CONTINUE {
            drop(request);
            log::debug!("refused an expected body with {verdict}");
            write_error(lock(&shared).out.buf, verdict, "");
            return Err(Fate::BadRequest(verdict));
        }
        // The 100 goes out with the first body read, if no final answer came first.
        lock(&shared).continue_pending = true;
    }

    let mut sink = H1Sink {
        io,
        shared: &shared,
        connect,
        upgrade_offered,
        headers: &mut scratch.headers,
        version,
        is_head,
        keep_alive,
        state: SinkState::Fresh,
        trailers: None,
        close: false,
        stopping,
        pipelined,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        handler.handle(request, Response::new(&mut sink));
    }));
    let panicked = match outcome {
        Ok(()) => false,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            static PANICS: RateLimitedLog = RateLimitedLog::new(5);
            PANICS.hit(|n| log::error!("handler panicked: {message}{}", and_more(n)));
            true
        }
    };
    let H1Sink {
        state,
        close,
        keep_alive,
        ..
    } = sink;
    drop(body);
    let shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    let Shared {
        side,
        mut out,
        continue_pending,
        ..
    } = shared;
    let finished = match state {
        // Whatever became of the connection is the handler's business.
        SinkState::Hijacked => return Err(Fate::Hijacked),
        SinkState::Done => !panicked,
        SinkState::Abandoned => false,
        SinkState::Fresh | SinkState::Streaming(_) => {
            if !panicked {
                // The handler kept the response (mem::forget, or a leak).
                log::warn!("handler returned without finishing its response");
            }
            false
        }
    };
    if !finished {
        // A panic, an abort, or a body that failed under a started response: this
        // response must not look complete. Earlier pipelined answers still go out;
        // what this one buffered is dropped, and if none of it was sent, an error
        // answer takes its place.
        if out.retract() && !out.broken {
            let answer = match side.body {
                _ if panicked => Some(StatusCode::INTERNAL_SERVER_ERROR),
                BodyState::Failed { answer } => answer,
                _ => None,
            };
            if let Some(status) = answer {
                write_error(out.buf, status, "");
            }
        }
        return Err(if panicked {
            Fate::HandlerPanic
        } else {
            Fate::BodyError
        });
    }
    if out.broken {
        // A failed write: the connection is dead, nothing to flush or linger for.
        return Err(Fate::Io);
    }
    if close {
        return Err(Fate::BodyError);
    }
    if out.buf.len() >= WRITE_BUFFER {
        if let Err(e) = out.flush(io) {
            log::debug!("write failed: {e}");
            return Err(Fate::Io);
        }
    }
    if !keep_alive {
        return Err(Fate::NotKeepAlive);
    }
    // Whatever body the handler left unread must go before the next head.
    if !matches!(side.body, BodyState::Done) {
        if continue_pending {
            // The client still waits for our go-ahead; it may never send the body.
            return Err(Fate::NotKeepAlive);
        }
        let mut shared = Shared {
            side,
            out,
            continue_pending: false,
            head_written: true,
        };
        if !drain_body(io, &mut shared, cfg) {
            return Err(if shared.out.broken {
                Fate::Io
            } else {
                Fate::BodyError
            });
        }
    }
    Ok(())
}

/// The client's SETTINGS when `head` asks for `Upgrade: h2c` and can have it: plain
/// TCP (h2c means cleartext), HTTP/1.1, a body small enough to read before switching and
/// no `Expect: 100-continue` (the client must send the whole body first).
fn h2c_settings(io: &dyn Transport, head: &RequestHead) -> Option<Vec<u8>> {
    let body_fits = match head.framing {
        BodyFraming::Empty => true,
        BodyFraming::Length(n) => n <= h2c_upgrade::MAX_UPGRADE_BODY,
        BodyFraming::Chunked | BodyFraming::CloseDelimited => false,
    };
    if io.is_tls()
        || head.version != Version::HTTP_11
        || head.expect_continue
        || head.method == Method::CONNECT
        || !body_fits
    {
        return None;
    }
    h2c_upgrade::requested_settings(&head.headers)
}

/// Reads the upgrading request's body and switches the connection: `101 Switching
/// Protocols` goes out (after any earlier pipelined answers).
fn take_h2c_upgrade(
    io: &dyn Transport,
    side: &mut ReadSide,
    cfg: &Config,
    out: &mut Vec<u8>,
    head: RequestHead,
    settings: Vec<u8>,
) -> Result<H2cUpgrade, Fate> {
    let RequestHead {
        method,
        uri,
        headers,
        framing,
        ..
    } = head;
    let mut shared = Shared {
        side,
        out: Output::new(out),
        continue_pending: false,
        head_written: false,
    };
    let mut body = Vec::new();
    if let BodyFraming::Length(n) = framing {
        // `h2c_settings` bounded `n`.
        body.resize(n as usize, 0);
        shared.side.body = BodyState::Length(n);
        let mut filled = 0;
        while filled < body.len() {
            let read = read_body(
                io,
                &mut shared,
                cfg.read_timeout,
                cfg.max_head_bytes(),
                &mut body[filled..],
            );
            match read {
                Ok(0) => return Err(Fate::BodyError),
                Ok(k) => filled += k,
                Err(e) => {
                    log::debug!("reading the body of an h2c upgrade request: {e}");
                    return Err(Fate::BodyError);
                }
            }
        }
    }
    shared.side.body = BodyState::Done;
    let out = &mut shared.out;
    out.buf.extend_from_slice(h2c_upgrade::SWITCHING_PROTOCOLS);
    if let Err(e) = out.flush(io) {
        log::debug!("write failed: {e}");
        return Err(Fate::Io);
    }
    Ok(H2cUpgrade {
        head: h2c_upgrade::stream_head(method, uri, headers),
        body,
        settings,
    })
}

/// `Connection: upgrade` with an `Upgrade` field: the client offers to switch protocols.
fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"upgrade")))
}

fn flush(io: &dyn Transport, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let result = io.write_all(out);
    out.clear();
    result
}

/// Ends a connection: sends what is buffered (an error answer, say) and stops writing.
/// Returns true when the peer may still be sending: the caller should then read and
/// discard for a short while before closing, so the kernel does not answer the peer's
/// late bytes with a reset that destroys the answer we just sent (RFC 9112 §9.6).
pub(crate) fn finish(
    conn: &mut H1Conn,
    io: &dyn Transport,
    scratch: &mut Scratch,
    fate: Fate,
) -> bool {
    if fate == Fate::Hijacked {
        // A handler owns a duplicate of the socket: no flush (the head went out with the
        // upgrade), and no shutdown, which would end the duplicate's connection too.
        scratch.write.clear();
        conn.side.rbuf.start = 0;
        conn.side.rbuf.end = 0;
        conn.side.body = BodyState::Done;
        return false;
    }
    if fate != Fate::Io {
        let _ = flush(io, &mut scratch.write);
    }
    scratch.write.clear();
    let unread_input = !conn.side.rbuf.is_empty() || !matches!(conn.side.body, BodyState::Done);
    conn.side.rbuf.start = 0;
    conn.side.rbuf.end = 0;
    conn.side.body = BodyState::Done;
    if unread_input && fate != Fate::Io {
        let _ = io.shutdown(Shutdown::Write);
        true
    } else {
        let _ = io.shutdown(Shutdown::Both);
        false
    }
}

/// A parked connection's deadline passed: 408 if a head was arriving, else just close.
pub(crate) fn on_timeout(conn: &mut H1Conn, scratch: &mut Scratch) -> Fate {
    if conn.is_idle() && conn.served > 0 {
        return Fate::IdleTimeout;
    }
    if !conn.is_idle() {
        log::debug!("request head timed out");
        write_error(
            &mut scratch.write,
            StatusCode::REQUEST_TIMEOUT,
            "request head timed out",
        );
    }
    Fate::HeadTimeout
}

/// Reads and discards the rest of an unread request body, up to the drain limit. What
/// the output holds goes out first (the client may wait for it before sending more).
fn drain_body(io: &dyn Transport, shared: &mut Shared<'_>, cfg: &Config) -> bool {
    let mut scratch = [0u8; 4096];
    let mut drained = 0u64;
    loop {
        match read_body(
            io,
            shared,
            cfg.read_timeout,
            cfg.max_head_bytes(),
            &mut scratch,
        ) {
            Ok(0) => return matches!(shared.side.body, BodyState::Done),
            Ok(n) => {
                drained += n as u64;
                if drained > cfg.drain_limit {
                    log::debug!("unread request body over the drain limit; closing");
                    return false;
                }
            }
            Err(e) => {
                log::debug!("draining the request body failed: {e}");
                return false;
            }
        }
    }
}

/// Parses the next request head from what has arrived, reading more without blocking.
/// `Ok(None)`: reading would block.
fn read_head(
    io: &dyn Transport,
    side: &mut ReadSide,
    out: &mut Vec<u8>,
    cfg: &Config,
    head_started: &mut Option<Instant>,
    unread_maybe: &mut bool,
    first: bool,
) -> Result<Option<RequestHead>, Fate> {
    let mut check_from = 0usize;
    loop {
        if !side.rbuf.is_empty() {
            let data = side.rbuf.data();
            // A connection's first bytes may be the HTTP/2 preface (prior knowledge);
            // while they may still be, the head is not parsed.
            let mut maybe_h2 = false;
            if first && data[0] == b'P' && !io.is_tls() {
                match crate::h2::preface::sniff(data) {
                    crate::h2::preface::Sniff::H2 => return Err(Fate::Http2Preface),
                    crate::h2::preface::Sniff::NeedMore => maybe_h2 = true,
                    crate::h2::preface::Sniff::NotH2 => {}
                }
            }
            // Parsing again only helps once a new line ending has arrived.
            let worth_parsing = !maybe_h2
                && (data[check_from.min(data.len())..].contains(&b'\n')
                    || data.len() >= cfg.limits.max_head_bytes);
            if worth_parsing {
                match parse_request_head(data, &cfg.limits) {
                    Ok(Some((head, len))) => {
                        side.rbuf.consume(len);
                        return Ok(Some(head));
                    }
                    Ok(None) => {}
                    // First bytes that name no HTTP/1 version are an HTTP/2 client's bad
                    // preface: HTTP/2 answers them with GOAWAY (rule and why in
                    // `answer_with_goaway`).
                    Err(_)
                        if first
                            && !io.is_tls()
                            && crate::h2::preface::answer_with_goaway(data) =>
                    {
                        return Err(Fate::Http2Preface)
                    }
                    Err(err) => {
                        static BAD_REQUESTS: RateLimitedLog = RateLimitedLog::new(10);
                        BAD_REQUESTS.hit(|n| log::debug!("bad request: {err}{}", and_more(n)));
                        write_error(out, err.status(), err.reason());
                        return Err(Fate::BadRequest(err.status()));
                    }
                }
            }
            check_from = data.len();
            head_started.get_or_insert_with(Instant::now);
        }
        if !*unread_maybe {
            return Ok(None);
        }
        let mut short = false;
        let filled = side.rbuf.fill_with(
            |buf| {
                let n = io.try_read(buf)?;
                short = n < buf.len();
                Ok(n)
            },
            cfg.limits.max_head_bytes + 1,
        );
        if short {
            *unread_maybe = false;
        }
        match filled {
            Ok(0) => {
                return Err(if side.rbuf.is_empty() {
                    Fate::PeerClosed
                } else {
                    log::debug!("connection closed mid-head");
                    Fate::TruncatedHead
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => {
                log::debug!("read failed: {e}");
                return Err(Fate::Io);
            }
        }
    }
}

/// A complete error answer that closes the connection.
fn write_error(out: &mut Vec<u8>, status: StatusCode, reason: &str) {
    write_status_line(out, Version::HTTP_11, status);
    with_http_date(|date| write_header(out, b"date", date));
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\ncontent-length: ");
    let body_len = if reason.is_empty() {
        0
    } else {
        reason.len() + 1
    };
    write_decimal(out, body_len as u64);
    out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    if !reason.is_empty() {
        out.extend_from_slice(reason.as_bytes());
        out.push(b'\n');
    }
}
