//! One HTTP/1 connection: read a head, run the handler with a body reader and a
//! response writer over the same connection, settle what the handler left (an unread
//! body, unsent output), and go again while keep-alive allows.
//!
//! - [`read_buf`]: the connection's read buffer (grow and compact);
//! - [`body`]: the request body as the handler reads it, and draining what it left;
//! - [`output`]: response bytes not yet written, shared by the body reader and the
//!   response writer (what is owed goes out before a read that may block);
//! - [`sink`]: the response writer (head policy, framing, upgrades);
//! - [`exchange`]: one request through the handler, and the `Upgrade: h2c` switch;
//! - this module: the connection's state across requests, what the engine does next.
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::header::HeaderMap;
use http::{StatusCode, Version};

use super::config::Config;
use super::h2c_upgrade::H2cUpgrade;
use super::Handler;
use crate::h1::date::with_http_date;
use crate::h1::encode::{write_decimal, write_header, write_status_line};
use crate::h1::head::{parse_request_head, RequestHead};
use crate::runtime::log_limit::{and_more, RateLimitedLog};
use crate::runtime::transport::Transport;

mod body;
mod exchange;
mod output;
mod read_buf;
mod sink;

use body::BodyState;
use exchange::{exchange, h2c_settings, take_h2c_upgrade};
use read_buf::{ReadBuf, INITIAL_READ_BUFFER};

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

fn lock<'g, T>(m: &'g Mutex<T>) -> MutexGuard<'g, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
