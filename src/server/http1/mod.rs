//! One HTTP/1 connection: read a head, read its body ahead (up to `body_buffer`), run
//! the handler with a body reader and a response writer over the same connection,
//! settle what the handler left (an unread body, unsent output), and go again while
//! keep-alive allows. Everything that waits for the peer between handler runs is done
//! here, by the event loop, in parked states with deadlines; a handler's thread waits
//! only when it streams more than the buffers hold (under the minimum data rates).
//!
//! ```text
//!            ┌──────────────────────── keep-alive ◄───────────────────────┐
//!            ▼                                                             │
//!   Head ──head──► Body (loop reads ahead) ──whole, or body_buffer──► handler ─┤
//!    │  (head/idle    │  (min_body_rate,              (body beyond: it     │   │
//!    │   timeout)     │   body_timeout → 408)          reads, rate-bound)  │   │
//!    │                └── Expect: 100-continue: check_continue first     │   │
//!    │                                                                   ▼   │
//!    │                                            Drain (loop discards what │
//!    │                                            it left, drain_limit) ────┘
//!    └─ bad head → error answer ─┐
//!                                ▼
//!   Unsent output (loop writes it as the peer reads; min_write_rate) ──► close
//! ```
//!
//! Output that the socket does not take waits in [`Unsent`]; while any waits, no new
//! request is started (the peer is not reading: back-pressure, bounded memory), but a
//! drain goes on (the peer may be busy sending the body the handler left).
//!
//! - [`read_buf`]: the connection's read buffer (grow and compact);
//! - [`body`]: the request body: read ahead by the loop, read by the handler, drained;
//! - [`output`]: response bytes not yet written during an exchange, shared by the body
//!   reader and the response writer (what is owed goes out before a read that may
//!   block; a handler waits only past `write_buffer`);
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

use super::config::{Config, RateWindow};
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

use body::{BodyLimits, BodyProgress, BodyState, Scan, Step};
use exchange::{begin_body, check_continue, exchange, h2c_settings, take_h2c_upgrade, Settled};
use output::WRITE_BUFFER;
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
    /// Nothing more to do now: park it until it is readable (or writable, when
    /// [`H1Conn::wants_write`]), or until the deadline.
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
    stage: Stage,
    unsent: Option<Box<Unsent>>,
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

/// Where the connection stands between handler runs.
enum Stage {
    /// Waiting for (or reading) a request head.
    Head,
    /// A head has arrived; the loop reads its body ahead before running the handler.
    Body(Box<Pending>),
    /// The last handler left body bytes unread: the loop reads and discards them (the
    /// count so far, against `drain_limit`).
    Drain(u64),
}

/// A request whose body the loop is reading ahead.
struct Pending {
    head: RequestHead,
    /// `Expect: 100-continue` was answered (check_continue said yes, the 100 is out).
    continued: bool,
    /// A chunked body's framing, followed to find its end.
    scan: Option<Scan>,
    /// An `Upgrade: h2c` request, with the client's settings: it switches once its
    /// body is here.
    h2c: Option<Vec<u8>>,
}

/// Output the socket did not take, written by the loop as the peer reads it.
struct Unsent {
    bytes: Vec<u8>,
    /// The minimum write rate's window, and when writing last made progress (the write
    /// timeout).
    window: RateWindow,
    progress_at: Instant,
    /// Close once it is out, for this reason.
    then_close: Option<Fate>,
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
                progress: None,
            },
            stage: Stage::Head,
            unsent: None,
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

    /// No bytes of a next request have arrived, and nothing is owed to the peer.
    pub fn is_idle(&self) -> bool {
        self.side.rbuf.is_empty() && matches!(self.stage, Stage::Head) && self.unsent.is_none()
    }

    /// Output waits for the socket: the engine must wake the connection when it is
    /// writable, too.
    pub fn wants_write(&self) -> bool {
        self.unsent.is_some()
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

    /// Offers the socket what is owed (earlier unsent output, then what this round
    /// gathered in `out`), without waiting; what it does not take is kept.
    fn send_output(
        &mut self,
        io: &dyn Transport,
        out: &mut Vec<u8>,
        cfg: &Config,
    ) -> io::Result<()> {
        if let Some(unsent) = &mut self.unsent {
            unsent.bytes.append(out);
        } else if !out.is_empty() {
            let n = write_nonblocking(io, out)?;
            if n == out.len() {
                out.clear();
                return Ok(());
            }
            let now = Instant::now();
            self.unsent = Some(Box::new(Unsent {
                bytes: out[n..].to_vec(),
                window: RateWindow::start(now),
                progress_at: now,
                then_close: None,
            }));
            out.clear();
            return Ok(());
        } else {
            return Ok(());
        }
        let unsent = self.unsent.as_mut().expect("checked above");
        let n = write_nonblocking(io, &unsent.bytes)?;
        if n > 0 {
            let now = Instant::now();
            unsent.bytes.drain(..n);
            if let Some(rate) = &cfg.min_write_rate {
                unsent.window.moved(rate, n as u64, now);
            }
            unsent.progress_at = now;
        }
        // Once out, it goes, unless a close waits for it (serve_ready does that next).
        if unsent.bytes.is_empty() && unsent.then_close.is_none() {
            self.unsent = None;
        }
        Ok(())
    }

    /// When the peer must have read more of the unsent output.
    fn write_deadline(&self, cfg: &Config) -> Option<Instant> {
        let unsent = self.unsent.as_ref()?;
        let rate = cfg.min_write_rate.map(|r| unsent.window.deadline(&r));
        let idle = cfg.write_timeout.map(|t| unsent.progress_at + t);
        match (rate, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Writes what the socket takes now; how much that was.
fn write_nonblocking(io: &dyn Transport, bytes: &[u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < bytes.len() {
        match io.try_write(&bytes[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
    /// A request body (read ahead, or drained) came slower than `min_body_rate` or
    /// took longer than `body_timeout`.
    BodyTimeout,
    /// The peer did not read what it was sent: slower than `min_write_rate`, or no
    /// progress within `write_timeout`. What was left is dropped.
    WriteTimeout,
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
    ///
    /// [`Response::upgrade`]: crate::server::Response::upgrade
    Hijacked,
    /// The first bytes were the HTTP/2 client preface (never a close: see
    /// [`Next::Http2`]).
    Http2Preface,
}

/// The read side: the buffer and where the current request body stands.
struct ReadSide {
    rbuf: ReadBuf,
    body: BodyState,
    /// The trailers of a chunked body, once it ended (boxed: rare, and idle
    /// connections keep this struct).
    trailers: Option<Box<HeaderMap>>,
    /// Where a body's reading stands against its bounds (boxed: only while there is
    /// one).
    progress: Option<Box<BodyProgress>>,
}

/// Serves the connection as far as it goes without waiting for the peer: every
/// request that is ready, its body read ahead, what handlers leave settled.
pub(crate) fn serve_ready<H: Handler + ?Sized>(
    conn: &mut H1Conn,
    io: &dyn Transport,
    peer: Option<SocketAddr>,
    handler: &H,
    cfg: &Config,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
) -> Next {
    loop {
        // What is owed goes out first, as far as the socket takes it.
        if conn.unsent.is_some() || scratch.write.len() >= WRITE_BUFFER {
            if let Err(e) = conn.send_output(io, &mut scratch.write, cfg) {
                log::debug!("write failed: {e}");
                return Next::Close(Fate::Io);
            }
        }
        if let Some(unsent) = &conn.unsent {
            if let Some(fate) = unsent.then_close {
                if unsent.bytes.is_empty() {
                    conn.unsent = None;
                    return Next::Close(fate);
                }
                return park(conn, io, cfg, scratch, stopping);
            }
        }
        match &mut conn.stage {
            Stage::Drain(drained) => match body::drain(io, &mut conn.side, drained, cfg) {
                Ok(Step::Ready) => conn.stage = Stage::Head,
                Ok(Step::Blocked) => return park(conn, io, cfg, scratch, stopping),
                Err(e) => {
                    log::debug!("draining the request body failed: {e}");
                    return close_after_output(conn, io, cfg, scratch, Fate::BodyError);
                }
            },
            Stage::Body(_) | Stage::Head if conn.unsent.is_some() => {
                // The peer is not reading: no new work until it does.
                return park(conn, io, cfg, scratch, stopping);
            }
            Stage::Body(pending) => {
                let cap = cfg.body_buffer.max(1);
                match body::buffer(
                    io,
                    &mut conn.side,
                    &mut pending.scan,
                    cap,
                    cfg.max_head_bytes(),
                    &mut conn.unread_maybe,
                ) {
                    Ok(Step::Ready) => {
                        let Stage::Body(pending) = std::mem::replace(&mut conn.stage, Stage::Head)
                        else {
                            unreachable!("matched Body above")
                        };
                        if let Some(next) =
                            run(conn, io, peer, handler, cfg, scratch, stopping, *pending)
                        {
                            return next;
                        }
                    }
                    Ok(Step::Blocked) => return park(conn, io, cfg, scratch, stopping),
                    Err(e) => {
                        log::debug!("request body from {peer:?} ended early: {e}");
                        return close_after_output(conn, io, cfg, scratch, Fate::BodyError);
                    }
                }
            }
            Stage::Head => {
                let head = match read_head(
                    io,
                    &mut conn.side,
                    &mut scratch.write,
                    cfg,
                    &mut conn.head_started,
                    &mut conn.unread_maybe,
                    conn.served == 0,
                ) {
                    Ok(Some(head)) => head,
                    Err(Fate::Http2Preface) => return Next::Http2,
                    Ok(None) => return park(conn, io, cfg, scratch, stopping),
                    Err(fate) => return close_after_output(conn, io, cfg, scratch, fate),
                };
                conn.head_started = None;
                conn.served += 1;
                begin_body(&mut conn.side, head.framing, cfg);
                let h2c = h2c_settings(io, &head, cfg);
                let has_body = !matches!(conn.side.body, BodyState::Done);
                let mut pending = Pending {
                    head,
                    continued: false,
                    scan: None,
                    h2c,
                };
                if has_body && cfg.body_buffer > 0 {
                    if pending.head.expect_continue {
                        // RFC 9110 §10.1.1: the handler decides before the client sends
                        // the body; a refusal is answered at once, unread.
                        let verdict = check_continue(handler, &mut pending.head, peer);
                        if verdict != StatusCode::CONTINUE {
                            log::debug!("refused an expected body with {verdict}");
                            write_error(&mut scratch.write, verdict, "");
                            return close_after_output(
                                conn,
                                io,
                                cfg,
                                scratch,
                                Fate::BadRequest(verdict),
                            );
                        }
                        scratch
                            .write
                            .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        pending.continued = true;
                    }
                    conn.stage = Stage::Body(Box::new(pending));
                    continue;
                }
                if let Some(next) = run(conn, io, peer, handler, cfg, scratch, stopping, pending) {
                    return next;
                }
            }
        }
    }
}

/// Runs a request whose body is read ahead (or needs none): the handler, or the switch
/// to HTTP/2. `None`: go on serving the connection.
#[allow(clippy::too_many_arguments)]
fn run<H: Handler + ?Sized>(
    conn: &mut H1Conn,
    io: &dyn Transport,
    peer: Option<SocketAddr>,
    handler: &H,
    cfg: &Config,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
    pending: Pending,
) -> Option<Next> {
    let Pending {
        head,
        continued,
        h2c,
        ..
    } = pending;
    if let Some(settings) = h2c {
        // The 101 must follow every earlier answer.
        if let Err(e) = conn.send_output(io, &mut scratch.write, cfg) {
            log::debug!("write failed: {e}");
            return Some(Next::Close(Fate::Io));
        }
        if conn.unsent.is_some() {
            // The peer does not read: serve this request over HTTP/1.1 after all?
            // No: it offered to switch and waits for the 101. Give up on it.
            return Some(close_after_output(
                conn,
                io,
                cfg,
                scratch,
                Fate::WriteTimeout,
            ));
        }
        return Some(
            match take_h2c_upgrade(io, &mut conn.side, cfg, &mut scratch.write, head, settings) {
                Ok(upgrade) => Next::H2cUpgrade(Box::new(upgrade)),
                Err(fate) => Next::Close(fate),
            },
        );
    }
    match exchange(
        io,
        peer,
        handler,
        cfg,
        &mut conn.side,
        scratch,
        stopping,
        head,
        continued,
    ) {
        Ok(Settled::Done) => None,
        Ok(Settled::Drain) => {
            conn.stage = Stage::Drain(0);
            None
        }
        Err(fate) => Some(close_after_output(conn, io, cfg, scratch, fate)),
    }
}

/// The connection waits for the peer: what is owed is offered to the socket, and the
/// deadline is the nearest of the stage's and the unsent output's.
fn park(
    conn: &mut H1Conn,
    io: &dyn Transport,
    cfg: &Config,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
) -> Next {
    if let Err(e) = conn.send_output(io, &mut scratch.write, cfg) {
        log::debug!("write failed: {e}");
        return Next::Close(Fate::Io);
    }
    if stopping.load(Ordering::Relaxed) && conn.is_idle() {
        return Next::Close(Fate::Shutdown);
    }
    let now = Instant::now();
    let stage_deadline = match &conn.stage {
        Stage::Head => match conn.head_started {
            Some(t0) => cfg.head_timeout.map(|t| t0 + t),
            None if conn.served == 0 => cfg.head_timeout.map(|t| conn.accepted + t),
            None if conn.unsent.is_some() => None,
            None => cfg.idle_timeout.map(|t| now + t),
        },
        Stage::Body(_) | Stage::Drain(_) => BodyLimits::of(cfg)
            .deadline(&conn.side.progress)
            .map(|(at, _)| at)
            .or(cfg.read_timeout.map(|t| now + t)),
    };
    let deadline = match (stage_deadline, conn.write_deadline(cfg)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let far = now + Duration::from_secs(365 * 24 * 3600);
    Next::Park(deadline.unwrap_or(far))
}

/// Ends the connection once what is owed (an error answer, the last response) is out:
/// now if the socket takes it, else after the loop has written it.
fn close_after_output(
    conn: &mut H1Conn,
    io: &dyn Transport,
    cfg: &Config,
    scratch: &mut Scratch,
    fate: Fate,
) -> Next {
    if matches!(fate, Fate::Io | Fate::Hijacked) {
        return Next::Close(fate);
    }
    if let Err(e) = conn.send_output(io, &mut scratch.write, cfg) {
        log::debug!("write failed: {e}");
        return Next::Close(Fate::Io);
    }
    match &mut conn.unsent {
        None => Next::Close(fate),
        Some(unsent) => {
            unsent.then_close = Some(fate);
            let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
            Next::Park(conn.write_deadline(cfg).unwrap_or(far))
        }
    }
}

/// Forgets everything the connection holds, read and unwritten, for a connection that
/// will do no more I/O of ours.
fn discard_all(conn: &mut H1Conn, scratch: &mut Scratch) {
    scratch.write.clear();
    conn.side.rbuf.start = 0;
    conn.side.rbuf.end = 0;
    conn.side.body = BodyState::Done;
    conn.stage = Stage::Head;
}

/// Ends a connection: offers the socket what is still owed (an error answer, say)
/// without waiting, and stops writing. Returns true when the peer may still be
/// sending: the caller should then read and discard for a short while before closing,
/// so the kernel does not answer the peer's late bytes with a reset that destroys the
/// answer we just sent (RFC 9112 §9.6).
pub(crate) fn finish(
    conn: &mut H1Conn,
    io: &dyn Transport,
    scratch: &mut Scratch,
    fate: Fate,
) -> bool {
    let unsent = conn.unsent.take();
    if fate == Fate::Hijacked {
        // A handler owns a duplicate of the socket: no flush (the head went out with the
        // upgrade), and no shutdown, which would end the duplicate's connection too.
        discard_all(conn, scratch);
        return false;
    }
    if fate == Fate::WriteTimeout {
        // The peer does not read: drop what it was owed, here and in the kernel.
        discard_all(conn, scratch);
        io.abort_on_close();
        let _ = io.shutdown(Shutdown::Both);
        return false;
    }
    if fate != Fate::Io {
        let mut owed = unsent.map(|u| u.bytes).unwrap_or_default();
        owed.append(&mut scratch.write);
        let _ = write_nonblocking(io, &owed);
    }
    scratch.write.clear();
    let unread_input = !conn.side.rbuf.is_empty()
        || !matches!(conn.side.body, BodyState::Done)
        || !matches!(conn.stage, Stage::Head);
    conn.side.rbuf.start = 0;
    conn.side.rbuf.end = 0;
    conn.side.body = BodyState::Done;
    conn.stage = Stage::Head;
    if unread_input && fate != Fate::Io {
        let _ = io.shutdown(Shutdown::Write);
        true
    } else {
        let _ = io.shutdown(Shutdown::Both);
        false
    }
}

/// A parked connection's deadline passed. A head that was arriving gets 408, and so
/// does a body the loop was reading ahead; an idle connection, a drain or output the
/// peer does not read just close.
pub(crate) fn on_timeout(conn: &mut H1Conn, scratch: &mut Scratch) -> Fate {
    static SLOW: RateLimitedLog = RateLimitedLog::new(10);
    if conn.unsent.is_some() {
        SLOW.hit(|n| {
            log::info!(
                "a client did not read its response in time; closing{}",
                and_more(n)
            )
        });
        return Fate::WriteTimeout;
    }
    match conn.stage {
        Stage::Body(_) => {
            SLOW.hit(|n| {
                log::info!(
                    "a request body came too slowly; answering 408{}",
                    and_more(n)
                )
            });
            write_error(
                &mut scratch.write,
                StatusCode::REQUEST_TIMEOUT,
                "request body timed out",
            );
            return Fate::BodyTimeout;
        }
        Stage::Drain(_) => {
            SLOW.hit(|n| {
                log::info!(
                    "an unread request body came too slowly; closing{}",
                    and_more(n)
                )
            });
            return Fate::BodyTimeout;
        }
        Stage::Head => {}
    }
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
    // A short read says the socket had no more at that moment, so the next read is
    // skipped until readiness says otherwise. But the peer's FIN may already be in
    // (it raises no new edge): while a head is incomplete, read once more anyway.
    let mut looked_again = false;
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
            if side.rbuf.is_empty() || looked_again {
                return Ok(None);
            }
            looked_again = true;
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
