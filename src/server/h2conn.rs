//! The server side of an HTTP/2 connection (prior knowledge, `Upgrade: h2c` or ALPN
//! `h2`): the driver the event loop runs, and the stream handlers.
//!
//! The connection's I/O is driven by its event loop only: on readiness the loop reads
//! without blocking, feeds [`Connection::recv`], dispatches the events, and writes the
//! output without blocking (what does not fit waits for a writability edge). The
//! connection stays parked in its slot between events like an idle HTTP/1 connection.
//!
//! # When a stream's handler starts
//!
//! A request without a body (END_STREAM on its HEADERS) is runnable at once. A request
//! with a body first waits for it in the loop, holding no thread and no job: its DATA go
//! into the stream's buffer, and it becomes runnable once the body has ended or
//! `body_buffer` bytes (the server setting, 64 KiB by default) are buffered. Its handler
//! then reads from the buffer, and the rest of a larger body streams to it as before:
//! the stream's window grows to 1 MiB when the handler first reads, and credit returns
//! as it reads. With `body_buffer` 0 every stream is runnable at once.
//!
//! `Expect: 100-continue` (RFC 9110 §10.1.1) keeps its meaning: such a stream is
//! runnable at once, to run [`Handler::check_continue`] only. A refusal is the final
//! answer (the client was never told to send, and the request side is reset with
//! NO_ERROR); an acceptance sends `100 Continue`, and the stream then waits for its body
//! like any other before [`Handler::handle`] runs. (With `body_buffer` 0 the handler runs
//! at once and the 100 goes out with its first read, as over HTTP/1.1 before.)
//!
//! # How much a connection buffers
//!
//! Our SETTINGS_INITIAL_WINDOW_SIZE is 16 KiB ([`WAITING_STREAM_WINDOW`]): what a stream
//! may send before we grow its window. A waiting stream's window is grown to
//! `body_buffer` (at most 16 KiB + 1 MiB) out of a budget of 1 MiB of growth per
//! connection ([`WAITING_GROWTH_BUDGET`]), first come; a stream that finds the budget
//! spent keeps 16 KiB and becomes runnable when that is full, and a stream gives its
//! growth back when its handler starts (or it goes). So the streams whose handlers have
//! not started hold at most 128 (our SETTINGS_MAX_CONCURRENT_STREAMS) × 16 KiB + 1 MiB
//! = 3 MiB, inside the 4 MiB connection window that bounds every body byte buffered on
//! the connection: streams whose handlers read always find connection window, and since
//! the thresholds of the waiting streams add up to less than the connection window, a
//! full connection window always has a runnable stream behind it (it cannot deadlock).
//! Until the client acknowledges our SETTINGS each stream may send the default 65 535
//! bytes; the connection window bounds the total then too.
//!
//! # Minimum rates
//!
//! `min_body_rate` ([`MinRate::deadline`]: the next byte is due at `started + window +
//! received / rate`) and `body_timeout` apply per stream, while someone waits for the
//! client: while the loop waits for a stream's body, and while a handler is blocked
//! reading it; not while a handler does other work, and not while the client has no
//! window (it waits for us then). The rate's clock runs only then: its start moves on by
//! the time it stood still. `body_timeout` counts from the end of the head (or from the
//! `100 Continue`). The connection's own timer enforces them (the deadline of
//! [`H2Next::Park`]), not a thread. Past one:
//!
//! - a stream waiting for its body (nothing was sent on it) is answered 408 and its
//!   request side is reset with NO_ERROR: RFC 9113 §8.1 lets a server that sent a
//!   complete response ask the client to stop sending that way, and a client must not
//!   discard the response for it (CANCEL or ENHANCE_YOUR_CALM would let it drop the
//!   408);
//! - a handler's blocked read fails with an `io::Error` of kind `TimedOut` holding a
//!   [`crate::Error`] of kind [`crate::ErrorKind::Timeout`]; after the handler returns
//!   the request side is reset (NO_ERROR after a complete answer) instead of drained.
//!
//! Either way a rate-limited log line says why.
//!
//! # Scheduling
//!
//! Runnable streams wait in their connection's queue. Once the loop has parked the
//! connection it starts them with a [`StreamRunner`]: on its own thread, one after the
//! other, as HTTP/1.1 handlers run (no thread switch; the answers to a batch leave in one
//! write), while it still owns the loop, a job slot is free and no job of another
//! connection waits for a thread. Otherwise the connection takes its turn in the
//! engine's job queue: it has at most one job there, and a job runs one stream, then
//! puts the connection back at the end of the queue if it has more. So when threads are
//! scarce they go round robin among the connections with runnable streams, and a
//! connection's new stream waits for at most about one handler run of each busier
//! connection, never for their queues. At most an eighth of the threads (at least 4) run
//! one connection's handlers at once.
//!
//! A handler's body reads take from its stream's buffer; its response goes through the
//! state machine under the connection's lock, waiting for window when it must; then the
//! loop is woken to write. A handler about to wait hands the loop to another thread
//! first, so the streams behind it start there and the connection keeps being driven:
//! nothing the loop does ever waits for a handler (DESIGN.md, threading rule 3).
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::config::{Config, MinRate, RateWindow};
use super::h2c_upgrade::H2cUpgrade;
use super::request::{Body, BodySource, Request};
use super::response::{Response, ResponseSink};
use super::Handler;
use crate::h1::date::with_http_date;
use crate::h2::frame::StreamId;
use crate::h2::proto::{self, Connection, Event, StreamState};
use crate::h2::{H2Error, Reason};
use crate::runtime::engine::{
    owns_event_loop, release_loop_before_blocking, ConnWaker, EngineCore, Job,
};
use crate::runtime::log_limit::{and_more, RateLimitedLog};
use crate::runtime::socket::Socket;
use crate::runtime::transport::Transport;

/// Bytes read from the socket per system call.
const READ_CHUNK: usize = 64 * 1024;

/// What the engine does with an HTTP/2 connection after [`drive`].
pub(crate) enum H2Next {
    /// Nothing to do now: park it until an event, or until the deadline.
    Park(Instant),
    /// It is finished: close it.
    Close,
}

/// The loop's side of one HTTP/2 connection.
pub(crate) struct H2Driver {
    shared: Arc<Shared>,
    /// Received bytes not yet consumed by the state machine (a partial frame).
    input: Vec<u8>,
    peer: Option<SocketAddr>,
    read_closed: bool,
    going_away: bool,
    /// Since when output has waited for a socket with no room (for the write timeout).
    write_stalled: Option<Instant>,
    /// When the connection last had no stream (for the idle timeout).
    idle_since: Option<Instant>,
    idle_timeout: Option<Duration>,
    config: Arc<Config>,
    /// The request of an `Upgrade: h2c`, to run as stream 1 on the first drive.
    upgraded: Option<(http::Request<()>, Vec<u8>)>,
    /// The last drive left runnable streams that the connection's share of threads has
    /// room for: [`H2Driver::runner`] hands them out.
    runnable: bool,
}

/// What the loop and the stream handlers share.
struct Shared {
    state: Mutex<State>,
    /// Signalled on any change a handler may wait for (body bytes, window, reset).
    changed: Condvar,
    waker: ConnWaker,
    /// Streams whose handler has not finished (or not started: they wait for their body
    /// or for a thread).
    live_streams: AtomicUsize,
    /// A wakeup is queued and the driver has not run since: later ones are redundant.
    wake_queued: AtomicBool,
}

impl Shared {
    /// Brings the connection back to its event loop (to write what handlers queued, or
    /// to notice a finished stream), once per drive however many handlers ask.
    fn wake(&self) {
        if !self.wake_queued.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

struct State {
    conn: Connection,
    streams: HashMap<u32, StreamBuf>,
    /// The connection is gone: every wait ends with an error.
    broken: bool,
    /// Streams whose handler runs.
    running: usize,
    /// Streams whose handler may start (their body is buffered, or they have none), in
    /// the order they became so.
    runnable: VecDeque<NewStream>,
    /// Streams answered before their request ended, whose handler has returned: the rest
    /// of the body is read and thrown away, up to this many more bytes (see
    /// [`settle_request_side`]). At most one entry per open stream.
    draining: HashMap<u32, u64>,
    /// What is left of [`WAITING_GROWTH_BUDGET`].
    growth_left: u32,
    /// The streams whose bodies are timed (they have a [`BodyClock`]), so the loop looks
    /// at those only; ids of streams gone since are dropped when it looks.
    timed: Vec<u32>,
    /// The connection has a job in the engine's queue (at most one: round robin).
    queued: bool,
    /// The deadline the connection was last parked with: a handler that starts waiting
    /// for body bytes wakes the loop if its stream's deadline comes sooner.
    parked_until: Option<Instant>,
}

#[derive(Default)]
struct StreamBuf {
    data: VecDeque<u8>,
    /// The request body has ended (END_STREAM or trailers).
    end: bool,
    trailers: Option<HeaderMap>,
    reset: Option<Reason>,
    /// How the body arrives, for a request that has one (boxed: most have none).
    body: Option<Box<BodyWait>>,
}

/// The waiting for, and timing of, one request body.
struct BodyWait {
    /// The request, while the stream waits for its body before its handler may start.
    pending: Option<NewStream>,
    /// Buffered bytes at which a pending stream becomes runnable.
    threshold: usize,
    /// Window growth taken from [`State::growth_left`], given back when the handler
    /// starts or the stream goes.
    granted: u32,
    /// Body bytes received (for the minimum rate).
    received: u64,
    clock: BodyClock,
    /// A handler is blocked reading the body.
    reader_waiting: bool,
    /// The body was too slow (why): the handler's reads fail.
    too_slow: Option<String>,
}

impl BodyWait {
    /// A body that may arrive from `now` on, its clock stopped (nobody waits yet).
    fn new(now: Instant, received: u64) -> Box<BodyWait> {
        let mut clock = BodyClock::new(now);
        clock.stop(now);
        Box::new(BodyWait {
            pending: None,
            threshold: 0,
            granted: 0,
            received,
            clock,
            reader_waiting: false,
            too_slow: None,
        })
    }
}

impl StreamBuf {
    /// Someone waits for the client to send: the loop (the stream is pending) or a
    /// handler blocked in a read.
    fn awaited(&self) -> bool {
        !self.end
            && self.reset.is_none()
            && self
                .body
                .as_ref()
                .is_some_and(|b| (b.pending.is_some() || b.reader_waiting) && b.too_slow.is_none())
    }

    /// The stream waits for its body before its handler may start.
    fn pending(&self) -> bool {
        self.body.as_ref().is_some_and(|b| b.pending.is_some())
    }

    /// The window growth it holds.
    fn granted(&self) -> u32 {
        self.body.as_ref().map_or(0, |b| b.granted)
    }
}

/// The time a request body takes, for `min_body_rate` and `body_timeout`.
///
/// The rate is checked window by window ([`RateWindow`]): `min_body_rate` bytes must
/// arrive in every window, so an early burst buys no credit for a later trickle. The
/// window's clock stands still while nobody waits for the client, or while the client
/// has no window to send in; `body_timeout` counts wall time from `since`.
#[derive(Debug, Clone, Copy)]
struct BodyClock {
    /// When the client was free to send the body (the end of the head, or the `100
    /// Continue`): `body_timeout` counts from here.
    since: Instant,
    /// The current rate window, its start moved on by the time the clock stood still.
    window: RateWindow,
    /// The clock stands still since then.
    stopped: Option<Instant>,
}

impl BodyClock {
    fn new(now: Instant) -> BodyClock {
        BodyClock {
            since: now,
            window: RateWindow::start(now),
            stopped: None,
        }
    }

    fn run(&mut self, now: Instant) {
        if let Some(at) = self.stopped.take() {
            self.window.pause(now.saturating_duration_since(at));
        }
    }

    fn stop(&mut self, now: Instant) {
        self.stopped.get_or_insert(now);
    }

    /// Records `n` body bytes arriving at `now`.
    fn moved(&mut self, config: &Config, n: u64, now: Instant) {
        if let Some(rate) = &config.min_body_rate {
            self.window.moved(rate, n, now);
        }
    }

    /// When the body is too slow.
    fn due(&self, config: &Config) -> Option<Instant> {
        let rate = config
            .min_body_rate
            .filter(|_| self.stopped.is_none())
            .map(|r| self.window.deadline(&r));
        let total = config.body_timeout.map(|t| self.since + t);
        match (rate, total) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why the body is too slow at `now` (past [`due`](BodyClock::due)), having brought
    /// `received` bytes in all.
    fn why(&self, config: &Config, received: u64, now: Instant) -> String {
        match config.body_timeout {
            Some(t) if now >= self.since + t => {
                format!("{received} bytes, not complete after the body timeout of {t:?}")
            }
            _ => {
                let rate = config.min_body_rate.unwrap_or(MinRate::DEFAULT);
                format!(
                    "{received} bytes in all, under {} bytes/s over a {:?} window of waiting",
                    rate.bytes_per_second(),
                    rate.window()
                )
            }
        }
    }
}

/// Request bodies too slow, logged at most 10 times a second.
static TOO_SLOW: RateLimitedLog = RateLimitedLog::new(10);

/// The error a handler's read of a body that is too slow fails with.
fn too_slow_error(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        crate::Error::new(
            crate::ErrorKind::Timeout,
            format!("request body too slow: {why}"),
        ),
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The receive window of a stream whose handler has not read yet (our
/// SETTINGS_INITIAL_WINDOW_SIZE), unless it waits for its body and got growth.
const WAITING_STREAM_WINDOW: u32 = 16 * 1024;

/// How much the windows of the streams waiting for their bodies may be grown in all,
/// per connection, beyond [`WAITING_STREAM_WINDOW`] (see the module docs: with 128
/// streams they hold at most 3 MiB of the 4 MiB connection window).
const WAITING_GROWTH_BUDGET: u32 = 1 << 20;

/// The receive window of a stream whose handler reads its body: enough for an upload
/// at full loopback speed.
const READING_STREAM_WINDOW: u32 = 1 << 20;

/// The server's limits, in HTTP/2 terms: the bound on a request head becomes the header
/// list size we advertise and enforce (431 above it, as in HTTP/1.1).
fn protocol_config(config: &Config) -> proto::Config {
    let defaults = proto::Config::default();
    // The streams not being read leave at least a quarter of the connection window to
    // those that are (module docs, "How much a connection buffers").
    debug_assert!(
        u64::from(defaults.max_concurrent_streams) * u64::from(WAITING_STREAM_WINDOW)
            + u64::from(WAITING_GROWTH_BUDGET)
            <= u64::from(defaults.initial_connection_window) * 3 / 4
    );
    let max_header_list_size = u32::try_from(config.max_head_bytes()).unwrap_or(u32::MAX);
    proto::Config {
        max_header_list_size,
        // A client within the list size we advertise may send a compressed block about as
        // large (literals cost less than the 32 bytes a field counts, RFC 9113 §6.5.2):
        // the bound on one block must not refuse it with ENHANCE_YOUR_CALM first.
        max_header_block_size: defaults
            .max_header_block_size
            .max(max_header_list_size as usize),
        initial_stream_window: WAITING_STREAM_WINDOW,
        ..defaults
    }
}

/// A stream with a body starts waiting for it in the loop (its request is `new`; the
/// client may send from `now` on): its window is grown towards `body_buffer` as far as
/// the connection's budget allows, and it becomes runnable at once if what is buffered
/// already suffices.
#[allow(clippy::too_many_arguments)]
fn await_body(
    conn: &mut Connection,
    growth_left: &mut u32,
    runnable: &mut VecDeque<NewStream>,
    timed: &mut Vec<u32>,
    s: &mut StreamBuf,
    new: NewStream,
    body_buffer: usize,
    now: Instant,
) {
    let most = WAITING_STREAM_WINDOW + WAITING_GROWTH_BUDGET;
    let want = u32::try_from(body_buffer).unwrap_or(most).min(most);
    let growth = want.saturating_sub(WAITING_STREAM_WINDOW).min(*growth_left);
    if growth > 0 {
        conn.grow_recv_window(new.id, WAITING_STREAM_WINDOW + growth);
        *growth_left -= growth;
    }
    timed.push(new.id.value());
    // Bytes the client sent before it was told to (RFC 9110 §10.1.1 lets it) count too.
    let mut b = BodyWait::new(now, s.data.len() as u64);
    b.clock.run(now);
    b.granted = growth;
    b.threshold = body_buffer.min((WAITING_STREAM_WINDOW + growth) as usize);
    b.pending = Some(new);
    s.body = Some(b);
    ready_if_buffered(s, runnable, now);
}

/// A pending stream becomes runnable once its body has ended or its buffer holds
/// enough.
fn ready_if_buffered(s: &mut StreamBuf, runnable: &mut VecDeque<NewStream>, now: Instant) {
    let Some(b) = s.body.as_mut() else {
        return;
    };
    if s.end || s.data.len() >= b.threshold {
        if let Some(new) = b.pending.take() {
            runnable.push_back(new);
            b.clock.stop(now);
        }
    }
}

impl H2Driver {
    /// A driver for a connection that just turned to HTTP/2; `input` holds the bytes
    /// already read. With `upgrade` (an `Upgrade: h2c` request), that request is served
    /// as stream 1; `Err` when its `HTTP2-Settings` are invalid.
    pub fn new(
        config: &Arc<Config>,
        input: Vec<u8>,
        peer: Option<SocketAddr>,
        waker: ConnWaker,
        upgrade: Option<H2cUpgrade>,
    ) -> Result<H2Driver, H2Error> {
        let now = Instant::now();
        let settings = protocol_config(config);
        let (conn, upgraded) = match upgrade {
            None => (Connection::server(settings, now), None),
            Some(up) => (
                Connection::server_upgraded(settings, now, &up.settings)?,
                Some((up.head, up.body)),
            ),
        };
        Ok(H2Driver {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    conn,
                    streams: HashMap::new(),
                    broken: false,
                    running: 0,
                    runnable: VecDeque::new(),
                    draining: HashMap::new(),
                    growth_left: WAITING_GROWTH_BUDGET,
                    timed: Vec::new(),
                    queued: false,
                    parked_until: None,
                }),
                changed: Condvar::new(),
                waker,
                live_streams: AtomicUsize::new(0),
                wake_queued: AtomicBool::new(false),
            }),
            input,
            peer,
            read_closed: false,
            going_away: false,
            write_stalled: None,
            idle_since: Some(now),
            idle_timeout: config.idle_timeout,
            config: config.clone(),
            upgraded,
            runnable: false,
        })
    }

    /// The runner of the streams the last [`drive`] left runnable, when the connection
    /// has room to start some: the engine calls it once the connection is parked.
    pub fn runner(&mut self, core: &Arc<EngineCore>) -> Option<StreamRunner> {
        std::mem::take(&mut self.runnable).then(|| StreamRunner {
            shared: self.shared.clone(),
            config: self.config.clone(),
            core: core.clone(),
            peer: self.peer,
        })
    }

    /// No stream is in flight (no handler running). Takes no lock.
    pub fn is_idle(&self) -> bool {
        self.shared.live_streams.load(Ordering::Acquire) == 0
    }

    /// Closing an idle connection at shutdown: GOAWAY, written if the socket has room.
    pub fn close_idle(&mut self, socket: &Socket) {
        let mut st = lock(&self.shared.state);
        st.conn.goaway(Reason::NoError, b"");
        let _ = write_out(&mut st.conn, socket);
        st.broken = true;
        drop(st);
        self.shared.changed.notify_all();
    }
}

impl Drop for H2Driver {
    fn drop(&mut self) {
        lock(&self.shared.state).broken = true;
        self.shared.changed.notify_all();
    }
}

/// Writes output until it is all out or the socket is full. `Err` on a socket error.
fn write_out(conn: &mut Connection, socket: &Socket) -> io::Result<bool> {
    let mut wrote = false;
    while conn.wants_write() {
        match socket.try_write(conn.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.advance_output(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(wrote)
}

/// Serves the connection until reading and writing would both block (or there is
/// nothing to do), then tells the engine to park or close it. Requests that arrived
/// wait for [`H2Driver::runner`]: the engine runs them once the connection is parked.
/// `read_buf` is the thread's read buffer, reused across connections.
pub(crate) fn drive(
    d: &mut H2Driver,
    socket: &Socket,
    core: &EngineCore,
    read_buf: &mut Vec<u8>,
) -> H2Next {
    let shared = d.shared.clone();
    // Wakeups from now on bring the connection back; earlier ones are served here.
    shared.wake_queued.store(false, Ordering::Release);
    let mut st = lock(&shared.state);
    let now = Instant::now();
    if st.conn.tick(now).is_err() {
        let _ = write_out(&mut st.conn, socket);
        return close(&shared, st);
    }
    if d.upgraded.is_some() {
        // Stream 1 is open from the 101 on (RFC 7540 §3.2): frames the client sends on
        // it before its handler starts are recorded.
        st.streams.entry(1).or_insert_with(|| StreamBuf {
            end: true,
            ..StreamBuf::default()
        });
    }
    if core.stopping.load(Ordering::Acquire) && !d.going_away {
        d.going_away = true;
        st.conn.goaway_graceful();
    }
    if read_buf.len() < READ_CHUNK {
        read_buf.resize(READ_CHUNK, 0);
    }
    loop {
        let mut progress = false;
        // Input: read until the socket is drained (edge-triggered), unless the state
        // machine wants us to drain its output first.
        while !d.read_closed && st.conn.wants_read() {
            match socket.try_read(read_buf) {
                Ok(0) => d.read_closed = true,
                Ok(n) => {
                    progress = true;
                    let fed = if d.input.is_empty() {
                        // Straight from the read buffer; only a partial frame is kept.
                        feed(d, &mut st, &read_buf[..n]).map(|used| {
                            d.input.extend_from_slice(&read_buf[used..n]);
                        })
                    } else {
                        d.input.extend_from_slice(&read_buf[..n]);
                        feed_buffered(d, &mut st)
                    };
                    if fed.is_err() {
                        let _ = write_out(&mut st.conn, socket);
                        return close(&shared, st);
                    }
                    if n < read_buf.len() {
                        // A short read drained the socket: new bytes raise a new edge,
                        // so the read that would only say "would block" is skipped.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("HTTP/2 read from {:?} failed: {e}", d.peer);
                    d.read_closed = true;
                }
            }
        }
        if !d.input.is_empty() && st.conn.wants_read() && feed_buffered(d, &mut st).is_err() {
            let _ = write_out(&mut st.conn, socket);
            return close(&shared, st);
        }
        // Output.
        match write_out(&mut st.conn, socket) {
            Ok(wrote) => {
                if wrote {
                    progress = true;
                    d.write_stalled = None;
                    // Draining may have opened room for blocked senders.
                    if dispatch(d, &mut st) {
                        shared.changed.notify_all();
                    }
                }
            }
            Err(e) => {
                log::debug!("HTTP/2 write to {:?} failed: {e}", d.peer);
                return close(&shared, st);
            }
        }
        if !progress {
            break;
        }
    }
    // The upgraded request (stream 1) runs once the client has switched, that is once its
    // preface has been read above: curl, for one, cannot take much of the answer before
    // it has (RFC 7540 §3.2: the client sends the preface after the 101).
    let switched = st.conn.client_preface_received();
    if let Some((head, body)) = d.upgraded.take_if(|_| switched) {
        let new = NewStream {
            id: StreamId::new(1),
            head,
            end_stream: body.is_empty(),
            upgrade_body: body,
            check_continue: false,
            continued: false,
        };
        shared.live_streams.fetch_add(1, Ordering::AcqRel);
        st.runnable.push_back(new);
    }
    let now = Instant::now();
    // Bodies the loop or a handler waits for: too slow ones are cut, the others say
    // when they next must be looked at.
    let body_due = watch_bodies(d, &mut st, now);
    if st.conn.wants_write() && write_out(&mut st.conn, socket).is_err() {
        return close(&shared, st);
    }
    // A connection with a job in the engine's queue waits for its turn there.
    d.runnable =
        !st.runnable.is_empty() && !st.queued && st.running < handlers_per_connection(core);
    if d.read_closed {
        log::debug!("HTTP/2 peer {:?} closed the connection", d.peer);
        return close(&shared, st);
    }
    let idle = st.streams.is_empty() && d.is_idle();
    if st.conn.is_closed() && !st.conn.wants_write() {
        return close(&shared, st);
    }
    if idle && core.stopping.load(Ordering::Acquire) && !st.conn.wants_write() {
        st.conn.goaway(Reason::NoError, b"");
        let _ = write_out(&mut st.conn, socket);
        return close(&shared, st);
    }
    let far = now + Duration::from_secs(365 * 24 * 3600);
    let mut deadline = st.conn.next_timeout().unwrap_or(far);
    if let Some(due) = body_due {
        deadline = deadline.min(due);
    }
    if idle {
        let since = *d.idle_since.get_or_insert(now);
        if let Some(t) = d.idle_timeout {
            if now >= since + t {
                log::debug!("HTTP/2 connection from {:?} idle; closing", d.peer);
                st.conn.goaway(Reason::NoError, b"");
                let _ = write_out(&mut st.conn, socket);
                return close(&shared, st);
            }
            deadline = deadline.min(since + t);
        }
    } else {
        d.idle_since = None;
    }
    if st.conn.wants_write() {
        // The socket is full: a writability edge brings us back; bounded by the write
        // timeout in case the peer stops reading.
        let since = *d.write_stalled.get_or_insert(now);
        if let Some(t) = d.config.write_timeout {
            if now >= since + t {
                log::debug!("HTTP/2 peer {:?} stopped reading; closing", d.peer);
                return close(&shared, st);
            }
            deadline = deadline.min(since + t);
        }
    } else {
        d.write_stalled = None;
    }
    if idle && d.input.is_empty() {
        // A parked idle connection keeps no buffers.
        d.input = Vec::new();
        st.conn.release_buffers();
    }
    st.parked_until = Some(deadline);
    H2Next::Park(deadline)
}

/// Looks at the bodies someone waits for (see [`StreamBuf::awaited`]): stops the clock
/// of those whose client has no window (it waits for us), cuts those past their
/// deadline, and returns the next deadline of the others.
fn watch_bodies(d: &H2Driver, st: &mut State, now: Instant) -> Option<Instant> {
    let config = &*d.config;
    let State {
        conn,
        streams,
        timed,
        ..
    } = st;
    if timed.is_empty() {
        return None;
    }
    timed.retain(|id| streams.contains_key(id));
    if config.min_body_rate.is_none() && config.body_timeout.is_none() {
        return None;
    }
    let mut next: Option<Instant> = None;
    let mut late = Vec::new();
    for &id in timed.iter() {
        let Some(b) = streams
            .get_mut(&id)
            .filter(|s| s.awaited())
            .and_then(|s| s.body.as_mut())
        else {
            continue;
        };
        let clock = &mut b.clock;
        if conn.recv_capacity(StreamId::new(id)) == 0 {
            clock.stop(now);
        } else {
            clock.run(now);
        }
        match clock.due(config) {
            Some(due) if due <= now => late.push(id),
            Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
            None => {}
        }
    }
    let mut woke = false;
    for id in late {
        woke |= body_too_slow(d, st, id, now);
    }
    if woke {
        d.shared.changed.notify_all();
    }
    next
}

/// Stream `id`'s body is past its deadline: a stream still waiting for it is answered
/// 408 and its request side reset with NO_ERROR (RFC 9113 §8.1, see the module docs); a
/// handler's blocked read fails. True when a handler must be woken.
fn body_too_slow(d: &H2Driver, st: &mut State, id: u32, now: Instant) -> bool {
    let Some(b) = st.streams.get_mut(&id).and_then(|s| s.body.as_mut()) else {
        return false;
    };
    let why = b.clock.why(&d.config, b.received, now);
    let sid = StreamId::new(id);
    if b.pending.is_some() {
        TOO_SLOW.hit(|n| {
            log::debug!(
                "HTTP/2 stream {id} from {:?}: request body too slow ({why}); answered 408 \
                 and reset{}",
                d.peer,
                and_more(n)
            )
        });
        let mut res = http::Response::new(());
        *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
        insert_date(res.headers_mut());
        let _ = st.conn.send_response(sid, &res, true);
        st.conn.reset(sid, Reason::NoError);
        if let Some(s) = st.streams.remove(&id) {
            st.growth_left += s.granted();
        }
        d.shared.live_streams.fetch_sub(1, Ordering::AcqRel);
        false
    } else {
        TOO_SLOW.hit(|n| {
            log::debug!(
                "HTTP/2 stream {id} from {:?}: request body too slow ({why}); the handler's \
                 read fails{}",
                d.peer,
                and_more(n)
            )
        });
        b.too_slow = Some(why);
        true
    }
}

fn close(shared: &Shared, mut st: MutexGuard<'_, State>) -> H2Next {
    st.broken = true;
    drop(st);
    shared.changed.notify_all();
    H2Next::Close
}

/// Feeds `input` to the state machine, dispatching the events as they come; returns how
/// many bytes it consumed (the rest is a partial frame, or waits for output room).
/// `Err` on a connection error (GOAWAY is in the output).
fn feed(d: &mut H2Driver, st: &mut State, input: &[u8]) -> Result<usize, ()> {
    let mut pos = 0;
    while pos < input.len() && st.conn.wants_read() {
        let used = match st.conn.recv(&input[pos..]) {
            Ok(n) => n,
            Err(e) => {
                log::debug!("HTTP/2 connection error with {:?}: {e:?}", d.peer);
                dispatch(d, st);
                d.shared.changed.notify_all();
                return Err(());
            }
        };
        pos += used;
        if dispatch(d, st) {
            d.shared.changed.notify_all();
        }
        if used == 0 {
            break;
        }
    }
    Ok(pos)
}

/// [`feed`] from the driver's own buffer of unconsumed input.
fn feed_buffered(d: &mut H2Driver, st: &mut State) -> Result<(), ()> {
    let input = std::mem::take(&mut d.input);
    let result = feed(d, st, &input);
    d.input = input;
    d.input.drain(..*result.as_ref().unwrap_or(&0));
    result.map(|_| ())
}

/// Handles the queued events; true when a handler may need waking. New requests wait
/// for their body in the loop, or in the connection's queue for [`H2Driver::runner`].
fn dispatch(d: &mut H2Driver, st: &mut State) -> bool {
    let mut woke = false;
    let body_buffer = d.config.body_buffer;
    let State {
        conn,
        streams,
        runnable,
        draining,
        growth_left,
        timed,
        ..
    } = st;
    while let Some(ev) = conn.poll_event() {
        match ev {
            Event::Request {
                id,
                head,
                end_stream,
            } => {
                d.shared.live_streams.fetch_add(1, Ordering::AcqRel);
                let mut s = StreamBuf {
                    end: end_stream,
                    ..StreamBuf::default()
                };
                let mut new = NewStream {
                    id,
                    head,
                    end_stream,
                    upgrade_body: Vec::new(),
                    check_continue: false,
                    continued: false,
                };
                if end_stream {
                    runnable.push_back(new);
                } else if body_buffer == 0 {
                    // Not buffered: the handler runs at once and its reads wait (under
                    // the rate only while they do).
                    s.body = Some(BodyWait::new(Instant::now(), 0));
                    timed.push(id.value());
                    runnable.push_back(new);
                } else if expects_continue(new.head.headers()) {
                    // The client waits for our word before it sends the body: the
                    // handler decides first (RFC 9110 §10.1.1).
                    new.check_continue = true;
                    runnable.push_back(new);
                } else {
                    await_body(
                        conn,
                        growth_left,
                        runnable,
                        timed,
                        &mut s,
                        new,
                        body_buffer,
                        Instant::now(),
                    );
                }
                // In the table at once: DATA may follow in this same batch of events.
                streams.insert(id.value(), s);
            }
            Event::HeadersTooLarge { id, end_stream } => {
                let mut res = http::Response::new(());
                *res.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                insert_date(res.headers_mut());
                let _ = conn.send_response(id, &res, true);
                if !end_stream {
                    conn.reset(id, Reason::NoError);
                }
            }
            Event::Data {
                id,
                data,
                end_stream,
            } => match streams.get_mut(&id.value()) {
                Some(s) => {
                    s.data.extend(data);
                    s.end |= end_stream;
                    if let Some(b) = s.body.as_mut() {
                        b.received += data.len() as u64;
                        b.clock.moved(&d.config, data.len() as u64, Instant::now());
                        if b.pending.is_some() {
                            ready_if_buffered(s, runnable, Instant::now());
                        }
                    }
                    woke = true;
                }
                None => {
                    let n = data.len();
                    match draining.get_mut(&id.value()) {
                        Some(left) if n as u64 > *left => {
                            // More unread body than we throw away: ask the client to
                            // stop (RFC 9113 §8.1); the reset returns the credit.
                            log::debug!(
                                "HTTP/2 stream {} from {:?}: unread body over the drain \
                                 limit; resetting it",
                                id.value(),
                                d.peer
                            );
                            draining.remove(&id.value());
                            conn.reset(id, Reason::NoError);
                        }
                        left => {
                            if let Some(left) = left {
                                *left -= n as u64;
                                if end_stream {
                                    draining.remove(&id.value());
                                }
                            }
                            conn.release_capacity(id, n);
                        }
                    }
                }
            },
            Event::Trailers { id, trailers } => {
                if let Some(s) = streams.get_mut(&id.value()) {
                    s.trailers = Some(trailers);
                    s.end = true;
                    if s.pending() {
                        ready_if_buffered(s, runnable, Instant::now());
                    }
                    woke = true;
                }
                draining.remove(&id.value());
            }
            Event::Reset { id, reason, .. } => {
                match streams.get_mut(&id.value()) {
                    Some(s) if s.pending() => {
                        // Given up before its handler started: no handler runs.
                        *growth_left += s.granted();
                        streams.remove(&id.value());
                        d.shared.live_streams.fetch_sub(1, Ordering::AcqRel);
                    }
                    Some(s) => {
                        s.reset = Some(reason);
                        woke = true;
                    }
                    None => {}
                }
                draining.remove(&id.value());
            }
            Event::Capacity { .. } => woke = true,
            Event::ConnectionError { error } => {
                log::debug!("HTTP/2 connection error: {error:?}");
                woke = true;
            }
            _ => {}
        }
    }
    woke
}

/// A request that starts a stream.
pub(crate) struct NewStream {
    id: StreamId,
    head: http::Request<()>,
    /// No body follows.
    end_stream: bool,
    /// The body of an `Upgrade: h2c` request, read over HTTP/1.1 (outside HTTP/2 flow
    /// control); empty otherwise.
    upgrade_body: Vec<u8>,
    /// This run only decides `Expect: 100-continue` ([`Handler::check_continue`]); an
    /// acceptance sends `100 Continue` and the stream waits for its body.
    check_continue: bool,
    /// `100 Continue` was sent already.
    continued: bool,
}

/// Starts a connection's runnable streams.
#[derive(Clone)]
pub(crate) struct StreamRunner {
    shared: Arc<Shared>,
    config: Arc<Config>,
    core: Arc<EngineCore>,
    peer: Option<SocketAddr>,
}

impl StreamRunner {
    /// Starts the connection's runnable streams, as many as its share of threads allows
    /// ([`handlers_per_connection`]): here, on the thread that runs the event loop, one
    /// after the other while it still does, a job slot is free and no other
    /// connection's job waits for a thread (no thread switch, and the answers to a batch
    /// of requests leave in one write); the rest by the connection's turn in the
    /// engine's job queue (see [`StreamRunner::queue`]). A handler that must wait
    /// releases the loop first (see [`wait`]) and counts against the job limit, so a
    /// loop never waits for a thread held by a handler that waits for that loop; the
    /// loop's next owner then starts the streams behind it.
    pub fn run<H: Handler>(self, handler: &Arc<H>) {
        let core = &self.core;
        while owns_event_loop() && !core.jobs_waiting() && core.reserve_job_thread() {
            let Some(new) = self.next() else {
                core.release_job_thread();
                return;
            };
            self.run_one(&**handler, new);
            core.release_job_thread();
        }
        self.queue(handler);
    }

    /// Puts the connection in the engine's job queue if it has runnable streams it may
    /// start and is not there yet. Its job runs one stream and queues the connection
    /// again, at the end: the queue holds each connection at most once, so threads go
    /// round robin among connections, and a connection's streams cannot keep another's
    /// waiting for more than a handler run. When the queue is full (4096 connections
    /// waiting for a thread) the runnable streams are refused (REFUSED_STREAM).
    fn queue<H: Handler>(&self, handler: &Arc<H>) {
        {
            let mut st = lock(&self.shared.state);
            if st.queued
                || st.runnable.is_empty()
                || st.running >= handlers_per_connection(&self.core)
            {
                return;
            }
            st.queued = true;
        }
        let runner = self.clone();
        let job_handler = handler.clone();
        let job: Job = Box::new(move || runner.run_queued(&job_handler));
        if self.core.submit_job(job).is_err() {
            let mut st = lock(&self.shared.state);
            st.queued = false;
            let refused: Vec<NewStream> = st.runnable.drain(..).collect();
            for new in refused {
                let id = new.id;
                log::debug!(
                    "no thread for stream {} of {:?}: refused",
                    id.value(),
                    self.peer
                );
                if let Some(s) = st.streams.remove(&id.value()) {
                    st.growth_left += s.granted();
                }
                st.conn.reset(id, Reason::RefusedStream);
                self.shared.live_streams.fetch_sub(1, Ordering::AcqRel);
            }
            drop(st);
            self.shared.wake();
        }
    }

    /// The connection's job: one stream, then the connection's next turn.
    fn run_queued<H: Handler>(&self, handler: &Arc<H>) {
        let new = {
            let mut st = lock(&self.shared.state);
            st.queued = false;
            self.take_next(&mut st)
        };
        if let Some(new) = new {
            self.run_one(&**handler, new);
        }
        self.queue(handler);
    }

    /// The next runnable stream, if the connection may start one now.
    fn next(&self) -> Option<NewStream> {
        self.take_next(&mut lock(&self.shared.state))
    }

    fn take_next(&self, st: &mut State) -> Option<NewStream> {
        if st.running >= handlers_per_connection(&self.core) {
            return None;
        }
        let new = st.runnable.pop_front()?;
        st.running += 1;
        if !new.end_stream {
            if let Some(b) = st
                .streams
                .get_mut(&new.id.value())
                .and_then(|s| s.body.as_mut())
            {
                // From here on a handler reads what it holds.
                st.growth_left += std::mem::take(&mut b.granted);
            }
        }
        Some(new)
    }

    fn run_one<H: Handler + ?Sized>(&self, handler: &H, new: NewStream) {
        if run_stream(handler, &self.shared, &self.config, new, self.peer) {
            self.core.served_requests.fetch_add(1, Ordering::Relaxed);
            self.shared.live_streams.fetch_sub(1, Ordering::AcqRel);
        }
        lock(&self.shared.state).running -= 1;
        self.shared.wake();
    }
}

/// How many stream handlers one connection may run at once: an eighth of the threads
/// handlers may hold (at least 4).
fn handlers_per_connection(core: &EngineCore) -> usize {
    (core.job_thread_limit() / 8).max(4)
}

/// Runs the handler for one stream and settles the stream after it; true when the
/// stream is done with (false after an accepted `Expect: 100-continue`: it waits for its
/// body now, and its handler runs later).
fn run_stream<H: Handler + ?Sized>(
    handler: &H,
    shared: &Arc<Shared>,
    config: &Config,
    new: NewStream,
    peer: Option<SocketAddr>,
) -> bool {
    let NewStream {
        id,
        head,
        end_stream,
        upgrade_body,
        check_continue,
        continued,
    } = new;
    let (mut parts, ()) = head.into_parts();
    join_cookies(&mut parts.headers);
    let expects = !end_stream && !continued && expects_continue(&parts.headers);
    let mut body = H2Body {
        shared,
        id,
        config,
        trailers: None,
        upgrade_body: io::Cursor::new(upgrade_body),
        // Unbuffered bodies (`body_buffer` 0): `100 Continue` goes out with the first
        // body read, as in HTTP/1.1.
        continue_pending: expects && !check_continue,
        reading: false,
    };
    let mut refused_continue = false;
    let mut accepted: Option<http::request::Parts> = None;
    let mut sink = H2Sink {
        shared,
        id,
        headers: HeaderMap::new(),
        trailers: None,
        state: SinkState::Fresh,
        is_head: parts.method == Method::HEAD,
        bodiless: false,
        declared: None,
        sent: 0,
        write_timeout: config.write_timeout,
    };
    let outcome = {
        let mut request = Request::new(
            parts.method,
            parts.uri,
            Version::HTTP_2,
            parts.headers,
            peer,
            if end_stream {
                Body::Empty
            } else {
                Body::Source(&mut body)
            },
        );
        *request.extensions_mut() = parts.extensions;
        catch_unwind(AssertUnwindSafe(|| {
            if expects {
                let verdict = handler.check_continue(&request);
                if verdict != StatusCode::CONTINUE {
                    // Refused before the client sent its body: the status ends the
                    // stream, and the unread request side is reset after the handler.
                    log::debug!("refused an expected body with {verdict}");
                    refused_continue = true;
                    drop(request);
                    sink.send_whole(verdict, b"").ok();
                    return;
                }
                if check_continue {
                    accepted = Some(request.take_head());
                    return;
                }
            }
            handler.handle(request, Response::new(&mut sink));
        }))
    };
    let mut st = lock(&shared.state);
    if let (Some(parts), Ok(())) = (accepted, &outcome) {
        let st = &mut *st;
        let Some(s) = st
            .streams
            .get_mut(&id.value())
            .filter(|s| s.reset.is_none())
        else {
            // The client gave up meanwhile.
            st.streams.remove(&id.value());
            return true;
        };
        {
            // Accepted: the client may send now, and the loop buffers the body before
            // the handler runs.
            let go_ahead = http::Response::builder()
                .status(StatusCode::CONTINUE)
                .body(())
                .expect("valid response");
            let _ = st.conn.send_response(id, &go_ahead, false);
            let new = NewStream {
                id,
                head: http::Request::from_parts(parts, ()),
                end_stream: false,
                upgrade_body: body.upgrade_body.into_inner(),
                check_continue: false,
                continued: true,
            };
            await_body(
                &mut st.conn,
                &mut st.growth_left,
                &mut st.runnable,
                &mut st.timed,
                s,
                new,
                config.body_buffer,
                Instant::now(),
            );
            return false;
        }
    }
    if outcome.is_err() {
        log::error!("handler panicked (HTTP/2 stream {})", id.value());
    }
    match sink.state {
        SinkState::Done => {}
        SinkState::Fresh | SinkState::Abandoned if outcome.is_err() => {
            let mut res = http::Response::new(());
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            insert_date(res.headers_mut());
            if st.conn.send_response(id, &res, true).is_err() {
                st.conn.reset(id, Reason::InternalError);
            }
        }
        _ => {
            if sink.state != SinkState::Failed {
                log::warn!("handler returned without finishing its response");
            }
            st.conn.reset(id, Reason::InternalError);
        }
    }
    if let Some(s) = st.streams.remove(&id.value()) {
        settle_request_side(&mut st, id, &s, refused_continue, config.drain_limit);
    }
    drop(st);
    true
}

/// After the handler of stream `id` returned: gives back the window of the body bytes it
/// left unread and decides what becomes of a request that has not ended yet.
///
/// RFC 9113 §8.1 lets a server that has sent a complete response reset the request side
/// with NO_ERROR. Doing so at once would make the stream's state depend on timing: frames
/// the client sent a moment later (its remaining body, a WINDOW_UPDATE past 2^31-1,
/// HEADERS without END_STREAM) would meet a forgotten stream and be ignored, instead of
/// getting the RFC 9113 §5.1 half-closed (local) treatment. So, as HTTP/1.1 drains an
/// unread body to keep its connection, the stream stays half-closed (local) and the rest
/// of its body is read and thrown away, up to `drain_limit` bytes in all; past that it
/// is reset with NO_ERROR. A stream in that state holds no thread and no buffer, only its
/// entry in the state machine and in [`State::draining`], and counts against our
/// SETTINGS_MAX_CONCURRENT_STREAMS. When the client was told not to send its body (a
/// refused `Expect: 100-continue`), or its body was too slow, the stream is reset at
/// once.
fn settle_request_side(
    st: &mut State,
    id: StreamId,
    s: &StreamBuf,
    refused_continue: bool,
    drain_limit: u64,
) {
    if s.reset.is_some() {
        return;
    }
    let unread = s.data.len() as u64;
    if unread > 0 {
        st.conn.release_capacity(id, s.data.len());
    }
    if s.end {
        return;
    }
    let answered = st.conn.stream_state(id) == StreamState::HalfClosedLocal;
    // A body that was too slow is not waited for any longer, not even to drain it.
    let too_slow = s.body.as_ref().is_some_and(|b| b.too_slow.is_some());
    if answered && !refused_continue && !too_slow && unread <= drain_limit {
        st.draining.insert(id.value(), drain_limit - unread);
    } else {
        // The rest of the request body will not be read (RFC 9113 §8.1).
        st.conn.reset(id, Reason::NoError);
    }
}

/// A `Date` field unless the handler set one, as over HTTP/1.1 (RFC 9110 §6.6.1).
fn insert_date(headers: &mut HeaderMap) {
    if !headers.contains_key(header::DATE) {
        with_http_date(|date| {
            if let Ok(v) = HeaderValue::from_bytes(date) {
                headers.insert(header::DATE, v);
            }
        });
    }
}

/// HTTP/2 may split `Cookie` into one field per cookie for better compression; they
/// are joined with "; " before the request reaches a handler (RFC 9113 §8.2.3), so it
/// sees what HTTP/1.1 would have carried.
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    let (Some(first), Some(_)) = (values.next(), values.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for v in headers.get_all(header::COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(v.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

/// `Expect: 100-continue` (RFC 9110 §10.1.1), which HTTP/2 keeps.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// A request body: what the loop put in the stream's buffer.
struct H2Body<'a> {
    shared: &'a Arc<Shared>,
    id: StreamId,
    /// For `read_timeout`, `min_body_rate` and `body_timeout`.
    config: &'a Config,
    trailers: Option<HeaderMap>,
    /// The body of an `Upgrade: h2c` request, read before the switch; it comes first
    /// and took no HTTP/2 flow-control window.
    upgrade_body: io::Cursor<Vec<u8>>,
    /// The client waits for `100 Continue` before sending the body.
    continue_pending: bool,
    /// The handler has read (so the stream's window was grown).
    reading: bool,
}

fn wait<'a>(
    shared: &'a Shared,
    st: MutexGuard<'a, State>,
    deadline: Option<Instant>,
    what: &str,
) -> io::Result<MutexGuard<'a, State>> {
    // Only the event loop can end this wait: if this thread runs it (a handler called
    // inline), it passes to a spare thread first, whose first task is to start the
    // streams queued behind this one.
    if release_loop_before_blocking() && !st.runnable.is_empty() {
        shared.wake();
    }
    match deadline {
        None => Ok(shared.changed.wait(st).unwrap_or_else(|p| p.into_inner())),
        Some(at) => {
            let now = Instant::now();
            if now >= at {
                return Err(io::Error::new(io::ErrorKind::TimedOut, what.to_string()));
            }
            let (st, _) = shared
                .changed
                .wait_timeout(st, at - now)
                .unwrap_or_else(|p| p.into_inner());
            Ok(st)
        }
    }
}

impl BodySource for H2Body<'_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.upgrade_body.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let deadline = self.config.read_timeout.map(|t| Instant::now() + t);
        let mut st = lock(&self.shared.state);
        if !self.reading {
            // From here on the body has a reader: give it the window of a fast upload.
            self.reading = true;
            st.conn.grow_recv_window(self.id, READING_STREAM_WINDOW);
            if st.conn.wants_write() {
                self.shared.wake();
            }
        }
        if self.continue_pending {
            self.continue_pending = false;
            let go_ahead = http::Response::builder()
                .status(StatusCode::CONTINUE)
                .body(())
                .expect("valid response");
            // Fails only if the stream is gone, which the loop below reports.
            let _ = st.conn.send_response(self.id, &go_ahead, false);
            self.shared.wake();
        }
        let result = loop {
            let st_ref = &mut *st;
            let Some(s) = st_ref.streams.get_mut(&self.id.value()) else {
                break Ok(0);
            };
            if let Some(reason) = s.reset {
                break Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("stream reset: {reason:?}"),
                ));
            }
            if let Some(why) = s.body.as_ref().and_then(|b| b.too_slow.as_deref()) {
                break Err(too_slow_error(why));
            }
            if !s.data.is_empty() {
                let n = s.data.read(buf)?;
                st_ref.conn.release_capacity(self.id, n);
                break Ok(n);
            }
            if s.end {
                if self.trailers.is_none() {
                    self.trailers = s.trailers.take();
                }
                break Ok(0);
            }
            if st_ref.broken {
                break Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "HTTP/2 connection closed",
                ));
            }
            if let Some(b) = s.body.as_mut().filter(|b| !b.reader_waiting) {
                // The client is waited for from now on: the rate's clock runs (the
                // loop stops it while the client has no window), and the loop's timer
                // must come by the stream's deadline.
                b.reader_waiting = true;
                let now = Instant::now();
                b.clock.run(now);
                let due = b.clock.due(self.config);
                if due.is_some_and(|due| st_ref.parked_until.is_none_or(|p| due < p)) {
                    self.shared.wake();
                }
            }
            match wait(self.shared, st, deadline, "request body read timed out") {
                Ok(guard) => st = guard,
                Err(e) => {
                    st = lock(&self.shared.state);
                    break Err(e);
                }
            }
        };
        if let Some(b) = st
            .streams
            .get_mut(&self.id.value())
            .and_then(|s| s.body.as_mut())
        {
            if std::mem::take(&mut b.reader_waiting) {
                b.clock.stop(Instant::now());
            }
        }
        let flush = st.conn.wants_write();
        drop(st);
        if flush {
            self.shared.wake();
        }
        result
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkState {
    Fresh,
    Streaming,
    Done,
    Abandoned,
    /// A send failed (stream reset, connection gone).
    Failed,
}

/// A response sent as HEADERS and DATA frames through the state machine.
struct H2Sink<'a> {
    shared: &'a Arc<Shared>,
    id: StreamId,
    headers: HeaderMap,
    trailers: Option<HeaderMap>,
    state: SinkState,
    is_head: bool,
    /// The answer has no content (HEAD, 204, 304): its HEADERS carried END_STREAM and
    /// body writes are dropped.
    bodiless: bool,
    /// The `content-length` the handler declared for a streamed body, which the DATA
    /// sent must match (RFC 9113 §8.1.1), and how much of it was sent.
    declared: Option<u64>,
    sent: u64,
    write_timeout: Option<Duration>,
}

fn send_err(e: proto::SendError) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("HTTP/2 send failed: {e}"),
    )
}

impl H2Sink<'_> {
    /// The response head for `status`; `whole` is the length of a body given whole. Sets
    /// `bodiless` and `declared`. The framing fields follow RFC 9110 §8.6 and RFC 9113
    /// §8.1.1 as over HTTP/1.1: no `content-length` on a 204; on a 304 only the one the
    /// handler set (the length a GET would get); with a whole body its real length, except
    /// that a HEAD answer may keep the length the handler declared for the GET it mirrors.
    fn head(&mut self, status: StatusCode, whole: Option<usize>) -> io::Result<http::Response<()>> {
        if status.is_informational() {
            // A 1xx HEADERS never ends a stream and a final head must follow (RFC 9113
            // §8.1): it cannot be the answer. The stream is reset once the handler
            // returns.
            self.state = SinkState::Failed;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{status} cannot be the final response of an HTTP/2 stream"),
            ));
        }
        let mut headers = std::mem::take(&mut self.headers);
        // Connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2).
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            HeaderName::from_static("keep-alive"),
            HeaderName::from_static("proxy-connection"),
        ] {
            headers.remove(name);
        }
        insert_date(&mut headers);
        let declared = match crate::h1::framing::content_length(&headers) {
            Ok(n) => n,
            Err(_) => {
                headers.remove(header::CONTENT_LENGTH);
                log::warn!("handler set an invalid Content-Length; removed it");
                None
            }
        };
        let no_content = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
        if status == StatusCode::NO_CONTENT {
            headers.remove(header::CONTENT_LENGTH);
        } else if status == StatusCode::NOT_MODIFIED {
            // Only what the handler declared: a body given here is not sent.
        } else if let Some(len) = whole {
            if !(self.is_head && len == 0 && declared.is_some()) {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
        } else if !self.is_head {
            self.declared = declared;
        }
        self.bodiless = no_content || self.is_head;
        let mut res = http::Response::new(());
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        Ok(res)
    }

    fn send_head(&mut self, res: &http::Response<()>, end: bool) -> io::Result<()> {
        let mut st = lock(&self.shared.state);
        let r = st.conn.send_response(self.id, res, end);
        drop(st);
        self.shared.wake();
        r.map_err(|e| {
            self.state = SinkState::Failed;
            send_err(e)
        })
    }

    /// Sends some of `data` (at least one byte unless it is empty), waiting for window.
    fn send_some(&mut self, data: &[u8], end: bool) -> io::Result<usize> {
        let deadline = self.write_timeout.map(|t| Instant::now() + t);
        let mut st = lock(&self.shared.state);
        loop {
            if st.broken {
                self.state = SinkState::Failed;
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "HTTP/2 connection closed",
                ));
            }
            if let Some(reason) = st.streams.get(&self.id.value()).and_then(|s| s.reset) {
                self.state = SinkState::Failed;
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!("stream reset: {reason:?}"),
                ));
            }
            match st.conn.send_data(self.id, data, end) {
                Ok(n) if n > 0 || data.is_empty() => {
                    drop(st);
                    self.shared.wake();
                    return Ok(n);
                }
                Ok(_) => {
                    // Blocked on window or output room: the loop writes what is queued
                    // (it takes no lock of ours first), and a Capacity event wakes us.
                    if st.conn.wants_write() {
                        self.shared.wake();
                    }
                    st = wait(self.shared, st, deadline, "response write timed out")
                        .inspect_err(|_| self.state = SinkState::Failed)?;
                }
                Err(e) => {
                    self.state = SinkState::Failed;
                    return Err(send_err(e));
                }
            }
        }
    }
}

impl ResponseSink for H2Sink<'_> {
    fn version(&self) -> Version {
        Version::HTTP_2
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        let res = self.head(status, Some(body.len()))?;
        // No DATA for HEAD, 204 and 304 (RFC 9110 §9.3.2, §15.3.5, §15.4.5): the body
        // given to one is dropped, and END_STREAM rides on the HEADERS.
        let no_body = body.is_empty() || self.bodiless;
        self.send_head(&res, no_body)?;
        if !no_body {
            let mut rest = body;
            while !rest.is_empty() {
                let n = self.send_some(rest, true)?;
                rest = &rest[n..];
            }
        }
        self.state = SinkState::Done;
        Ok(())
    }

    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        let res = self.head(status, None)?;
        let bodiless = self.bodiless;
        self.send_head(&res, bodiless)?;
        self.state = SinkState::Streaming;
        Ok(())
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.bodiless || data.is_empty() {
            return Ok(data.len());
        }
        if let Some(limit) = self.declared {
            if self.sent + data.len() as u64 > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "body longer than the Content-Length sent",
                ));
            }
        }
        let n = self.send_some(data, false)?;
        self.sent += n as u64;
        Ok(n)
    }

    fn flush_body(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        if self.state == SinkState::Failed {
            // Part of the body was lost: ending the stream would pass a truncated body
            // off as whole; it is reset once the handler returns.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the response body is incomplete after a failed write",
            ));
        }
        if self.bodiless {
            // END_STREAM went with the HEADERS; trailers have no place after it.
            if self.trailers.take().is_some() {
                log::debug!("trailers dropped: the response has no content");
            }
            self.state = SinkState::Done;
            return Ok(());
        }
        if self.declared.is_some_and(|n| n != self.sent) {
            // Ending the stream would pass a short body off as whole (RFC 9113 §8.1.1);
            // it is reset once the handler returns.
            self.state = SinkState::Failed;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the response body is shorter than its Content-Length",
            ));
        }
        if let Some(trailers) = self.trailers.take() {
            let mut st = lock(&self.shared.state);
            let r = st.conn.send_trailers(self.id, &trailers);
            drop(st);
            self.shared.wake();
            r.map_err(|e| {
                self.state = SinkState::Failed;
                send_err(e)
            })?;
        } else {
            self.send_some(&[], true)?;
        }
        self.state = SinkState::Done;
        Ok(())
    }

    fn abandon(&mut self) {
        if self.state != SinkState::Done {
            self.state = SinkState::Abandoned;
        }
    }

    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.trailers = Some(trailers);
    }
}
