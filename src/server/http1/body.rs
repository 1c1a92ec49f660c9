//! The request body: read by the event loop before the handler runs (up to
//! `body_buffer` bytes, into the connection's read buffer, see [`buffer`]), then by the
//! handler (from that buffer first, then from the socket, waiting under the read
//! timeout, the minimum body rate and the body timeout), and drained by the loop when
//! the handler left some of it unread (see [`drain`]).
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::HeaderMap;
use http::StatusCode;

use super::output::{Output, Shared};
use super::{lock, ReadSide};
use crate::h1::framing::ChunkedDecoder;
use crate::runtime::transport::Transport;
use crate::server::config::{Config, MinRate, RateWindow};
use crate::server::request::BodySource;
use crate::{Error, ErrorKind};

/// Reads of at least this size skip the connection buffer and land in the caller's.
const DIRECT_READ: usize = 4 * 1024;
/// The discard buffer of a drain.
const DRAIN_CHUNK: usize = 4 * 1024;

pub(super) enum BodyState {
    Done,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    /// Reading it failed. `answer` is the status that says why (400 for bad framing,
    /// 408 when too slow), sent if no response to the request has reached the socket.
    Failed {
        answer: Option<StatusCode>,
    },
}

/// How far the current request body has come: the body timeout is measured from the
/// end of the head, the minimum rate window by window (boxed in `ReadSide`: only a
/// request with a body has one).
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyProgress {
    pub(super) started: Instant,
    /// Bytes read from the socket for this body (framing included).
    pub(super) received: u64,
    rate: Option<MinRate>,
    window: RateWindow,
}

impl BodyProgress {
    pub(super) fn start(cfg: &Config) -> BodyProgress {
        let now = Instant::now();
        BodyProgress {
            started: now,
            received: 0,
            rate: cfg.min_body_rate,
            window: RateWindow::start(now),
        }
    }

    /// `n` more bytes of the body came from the socket.
    pub(super) fn record(&mut self, n: usize) {
        self.received += n as u64;
        if let Some(rate) = &self.rate {
            self.window.moved(rate, n as u64, Instant::now());
        }
    }
}

/// Records `n` body bytes read, if the request has a body being tracked.
fn record(progress: &mut Option<Box<BodyProgress>>, n: usize) {
    if let Some(p) = progress {
        p.record(n);
    }
}

/// What bounds the wait for request body bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    /// One blocking read.
    pub(super) read_timeout: Option<Duration>,
    /// The whole body.
    pub(super) body_timeout: Option<Duration>,
}

impl BodyLimits {
    pub(super) fn of(cfg: &Config) -> BodyLimits {
        BodyLimits {
            read_timeout: cfg.read_timeout,
            body_timeout: cfg.body_timeout,
        }
    }

    /// When the body must have made more progress, and which bound says so: the end
    /// of the rate's current window, or the body timeout.
    pub(super) fn deadline(&self, progress: &Option<Box<BodyProgress>>) -> Option<(Instant, Slow)> {
        let progress = progress.as_deref()?;
        let rate = progress
            .rate
            .map(|r| (progress.window.deadline(&r), Slow::Rate(r)));
        let whole = self
            .body_timeout
            .map(|t| (progress.started + t, Slow::Timeout(t)));
        match (rate, whole) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// Which bound a slow body (or a slow reader of a response) ran into.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slow {
    Rate(MinRate),
    Timeout(Duration),
}

impl Slow {
    /// The typed error a handler's read or write gets: an `io::Error` of kind `TimedOut`
    /// carrying a [`spindle::Error`](Error) of kind [`ErrorKind::Timeout`].
    pub(super) fn error(self, what: &str) -> io::Error {
        let message = match self {
            Slow::Rate(r) => format!(
                "{what} slower than the minimum rate ({} bytes/s over {:?})",
                r.bytes_per_second(),
                r.window()
            ),
            Slow::Timeout(t) => format!("{what} took longer than {t:?}"),
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            Error::new(ErrorKind::Timeout, message),
        )
    }
}

/// The body of the current request, read through the connection.
pub(super) struct H1Body<'c, 's> {
    pub(super) io: &'c dyn Transport,
    pub(super) shared: &'c Mutex<Shared<'s>>,
    /// Trailers moved out of the read side once the body ended.
    pub(super) trailers: Option<HeaderMap>,
    pub(super) limits: BodyLimits,
    pub(super) max_buffer: usize,
}

impl BodySource for H1Body<'_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = lock(self.shared);
        let result = read_body(self.io, &mut shared, self.limits, self.max_buffer, buf);
        if shared.side.trailers.is_some() {
            self.trailers = shared.side.trailers.take().map(|t| *t);
        }
        result
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

/// A handler's read: may wait for the peer (after sending what the output holds).
pub(super) fn read_body(
    io: &dyn Transport,
    shared: &mut Shared<'_>,
    limits: BodyLimits,
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
        Wait::Blocking {
            out: &mut shared.out,
            limits,
        },
        max_buffer,
        buf,
    );
    if let Err(e) = &result {
        log_failure(e);
        shared.side.body = BodyState::Failed {
            answer: failure_status(e),
        };
    }
    result
}

fn log_failure(e: &io::Error) {
    static FAILED: crate::runtime::log_limit::RateLimitedLog =
        crate::runtime::log_limit::RateLimitedLog::new(10);
    if e.kind() == io::ErrorKind::TimedOut {
        FAILED.hit(|n| {
            log::info!(
                "request body: {e}; closing the connection{}",
                crate::runtime::log_limit::and_more(n)
            )
        });
    }
}

/// The answer a failed request body deserves when no response has started: 400 when
/// the peer's framing was at fault, 408 when it was too slow, none when it went away.
pub(super) fn failure_status(e: &io::Error) -> Option<StatusCode> {
    match e.kind() {
        io::ErrorKind::InvalidData => Some(StatusCode::BAD_REQUEST),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Some(StatusCode::REQUEST_TIMEOUT),
        _ => None,
    }
}

/// How a body read may wait for the peer.
pub(super) enum Wait<'a, 'o> {
    /// On the handler's thread: first send what the output holds (the peer may be
    /// waiting for it), then block, bounded by `limits`.
    Blocking {
        out: &'a mut Output<'o>,
        limits: BodyLimits,
    },
    /// On the event loop: never; `WouldBlock` means "park until readable".
    Never,
}

impl Wait<'_, '_> {
    /// Gets ready to read from the socket: for a blocking read, sends the output and
    /// sets the socket's read timeout to what the limits leave.
    fn before_read(
        &mut self,
        io: &dyn Transport,
        side_timeout: &mut super::read_buf::ReadBuf,
        progress: &Option<Box<BodyProgress>>,
    ) -> io::Result<Option<Slow>> {
        let Wait::Blocking { out, limits } = self else {
            return Ok(None);
        };
        out.flush(io)?;
        let mut timeout = limits.read_timeout;
        let mut binding = None;
        if let Some((deadline, slow)) = limits.deadline(progress) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(slow.error("the request body arrived"));
            }
            if timeout.is_none_or(|t| t.is_zero() || left < t) {
                timeout = Some(left);
                binding = Some(slow);
            }
        }
        side_timeout.set_timeout(io, timeout)?;
        Ok(binding)
    }

    fn read(&self, io: &dyn Transport, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wait::Blocking { .. } => io.read(buf),
            Wait::Never => io.try_read(buf),
        }
    }
}

/// A timeout of a blocking read whose wait the body's own bound had shortened is that
/// bound's error.
fn explain(e: io::Error, binding: Option<Slow>) -> io::Error {
    match binding {
        Some(slow)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            slow.error("the request body arrived")
        }
        _ => e,
    }
}

pub(super) fn read_body_inner(
    io: &dyn Transport,
    side: &mut ReadSide,
    mut wait: Wait<'_, '_>,
    max_buffer: usize,
    buf: &mut [u8],
) -> io::Result<usize> {
    let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body");
    let ReadSide {
        rbuf,
        body,
        trailers,
        progress,
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
                    let binding = wait.before_read(io, rbuf, progress)?;
                    match wait.read(io, &mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => {
                            record(progress, n);
                            n
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(explain(e, binding)),
                    }
                } else {
                    let binding = wait.before_read(io, rbuf, progress)?;
                    match rbuf.fill_with(|b| wait.read(io, b), max_buffer) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => record(progress, n),
                        Err(e) => return Err(explain(e, binding)),
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
                        *trailers = decoder.take_trailers().map(Box::new);
                        *body = BodyState::Done;
                    }
                    if n > 0 || matches!(body, BodyState::Done) {
                        return Ok(n);
                    }
                    continue;
                }
                let binding = wait.before_read(io, rbuf, progress)?;
                let remaining = decoder.data_remaining();
                if remaining > 0 && buf.len() >= DIRECT_READ {
                    let want = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    match wait.read(io, &mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => {
                            record(progress, n);
                            decoder.data_read(n);
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(explain(e, binding)),
                    }
                }
                match rbuf.fill_with(|b| wait.read(io, b), max_buffer) {
                    Ok(0) => return Err(eof()),
                    Ok(n) => record(progress, n),
                    Err(e) => return Err(explain(e, binding)),
                }
            }
        }
    }
}

/// Where the event loop's reading of a body stands.
pub(super) enum Step {
    /// As far as it goes: the whole body, or `body_buffer` bytes of it, are read (or
    /// its framing is bad, which the handler's read will report).
    Ready,
    /// The socket has no more now: park until readable, or until the deadline.
    Blocked,
}

/// A chunked body's framing, followed by the event loop to find where the body ends
/// while it reads ahead (the handler's reader decodes it again from the buffer).
pub(super) struct Scan {
    decoder: ChunkedDecoder,
    /// Bytes of the read buffer already followed.
    scanned: usize,
}

impl Scan {
    pub(super) fn new(overhead_limit: usize) -> Scan {
        Scan {
            decoder: ChunkedDecoder::new(overhead_limit),
            scanned: 0,
        }
    }

    /// Follows `data` (the body's bytes so far, from its start): true once the body has
    /// ended, or when its framing is bad (the handler's read finds and reports that).
    fn ended(&mut self, data: &[u8]) -> bool {
        while self.scanned < data.len() && !self.decoder.is_done() {
            match self.decoder.decode(&data[self.scanned..]) {
                Ok(step) if step.consumed > 0 => self.scanned += step.consumed,
                Ok(_) => break,
                Err(_) => return true,
            }
        }
        self.decoder.is_done()
    }
}

/// Reads request body bytes into the connection's read buffer without waiting, until
/// the whole body or `cap` bytes of it are there. `scan` follows a chunked body.
pub(super) fn buffer(
    io: &dyn Transport,
    side: &mut ReadSide,
    scan: &mut Option<Scan>,
    cap: usize,
    overhead_limit: usize,
    unread_maybe: &mut bool,
) -> io::Result<Step> {
    let mut looked_again = false;
    loop {
        let have = side.rbuf.data().len();
        let enough = have >= cap
            || match &side.body {
                BodyState::Length(n) => have as u64 >= *n,
                BodyState::Chunked(_) => scan
                    .get_or_insert_with(|| Scan::new(overhead_limit))
                    .ended(side.rbuf.data()),
                BodyState::Done | BodyState::Failed { .. } => true,
            };
        if enough {
            return Ok(Step::Ready);
        }
        if !*unread_maybe {
            // After a short read, once more anyway: the peer's FIN may be in already,
            // which raises no new readiness edge (see `read_head`).
            if looked_again {
                return Ok(Step::Blocked);
            }
            looked_again = true;
        }
        let mut short = false;
        let filled = side.rbuf.fill_with(
            |b| {
                let n = io.try_read(b)?;
                short = n < b.len();
                Ok(n)
            },
            cap,
        );
        if short {
            *unread_maybe = false;
        }
        match filled {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-body",
                ))
            }
            Ok(n) => record(&mut side.progress, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *unread_maybe = false;
                return Ok(Step::Blocked);
            }
            // The buffer is at its bound: as much as the loop reads ahead is here.
            Err(e) if e.kind() == io::ErrorKind::OutOfMemory => return Ok(Step::Ready),
            Err(e) => return Err(e),
        }
    }
}

/// Reads and throws away what the handler left of the body, without waiting: `Ready`
/// once the body has ended, `Blocked` when the socket has no more now. Over the drain
/// limit, or on bad framing, it fails: the connection must close.
pub(super) fn drain(
    io: &dyn Transport,
    side: &mut ReadSide,
    drained: &mut u64,
    cfg: &Config,
) -> io::Result<Step> {
    let mut sink = [0u8; DRAIN_CHUNK];
    loop {
        match read_body_inner(io, side, Wait::Never, cfg.max_head_bytes(), &mut sink) {
            Ok(0) => return Ok(Step::Ready),
            Ok(n) => {
                *drained += n as u64;
                if *drained > cfg.drain_limit {
                    return Err(io::Error::other("unread request body over the drain limit"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Blocked),
            Err(e) => return Err(e),
        }
    }
}
