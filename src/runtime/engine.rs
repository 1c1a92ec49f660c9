//! The connection engine: event loops that run handlers inline, and hand themselves to a
//! spare thread when a handler blocks.
//!
//! Each [`EventLoop`] owns a [`Poller`] and the connections registered with it. The
//! thread that currently runs a loop takes a readable connection, parses the request and
//! calls the handler right there: no queue, no thread switch per request. When a handler
//! is about to block (its body read or response write would wait, see
//! [`release_loop_before_blocking`]) or the watchdog sees a loop stuck in user code, the
//! loop's ownership passes to a spare thread, like Go's scheduler handing a P to another
//! M. The blocked thread finishes its exchange, parks its connection back in the loop,
//! and becomes a spare. The thread count is bounded; when every thread is busy a loop
//! waits for one (back-pressure), or the watchdog answers new connections with 503.
//! A thread blocked on its connection's socket waits on the connection's [`Parker`],
//! to which the loop forwards the socket's readiness; while no thread runs a loop, the
//! watchdog forwards it.
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use super::listener::Listener;
use super::log_limit::{and_more, RateLimitedLog};
use super::parker::Parker;
use super::poll::{self, Poller, Token, LISTENER_TOKEN};
use super::socket::{shutdown_raw, Park, RawSocket, Readiness, Socket, Stream};
use super::transport::Transport;
use crate::server::config::{Config, Overload};
use crate::server::h2c_upgrade::H2cUpgrade;
use crate::server::h2conn::{self, H2Driver, H2Next};
use crate::server::http1::{self as h1conn, H1Conn, Next, Scratch};
use crate::server::{ConnEvent, ConnState, Handler};
use crate::tls::{HandshakeStatus, Interest, ALPN_H2};

/// How long a loop leaves the listener alone after accept ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Timer granularity: deadlines are checked in steps of this size.
const TICK: Duration = Duration::from_millis(100);
/// How often the watchdog looks for loops stuck in user code; a loop is handed off after
/// being stuck for one full interval.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(10);
/// How long a spare thread waits for work before it exits (above the minimum).
const SPARE_LINGER: Duration = Duration::from_secs(30);
/// Buffers kept for reuse per loop.
const FREE_BUFFERS: usize = 64;

/// A hook called on connection state changes.
pub(crate) type ConnHook = Arc<dyn Fn(&ConnEvent) + Send + Sync>;

/// "Run loop `index`, if its ownership generation is still `gen`."
#[derive(Debug, Clone, Copy)]
struct Assignment {
    index: usize,
    gen: u64,
}

/// The non-generic part of the engine, reachable from sockets through a thread-local.
pub(crate) struct EngineCore {
    loops: Vec<EventLoop>,
    pub config: Arc<Config>,
    listener: RwLock<Option<Listener>>,
    /// Graceful shutdown has begun: no new connections, idle ones close.
    pub stopping: AtomicBool,
    /// Every thread must exit.
    terminate: AtomicBool,
    assign_tx: Sender<Assignment>,
    assign_rx: Receiver<Assignment>,
    /// HTTP/2 connections whose runnable streams wait for a thread, first come first
    /// served; each connection has at most one job here and queues itself again at the
    /// end after each stream, so threads go round robin among connections (see
    /// [`EngineCore::submit_job`]).
    job_tx: Sender<Job>,
    job_rx: Receiver<Job>,
    /// A job slot may be free while jobs wait: threads that found every slot taken
    /// (and so wait for loops only) look again. Holds at most one token.
    job_wake_tx: Sender<()>,
    job_wake_rx: Receiver<()>,
    /// Jobs submitted and not yet taken by a thread.
    queued_jobs: AtomicUsize,
    /// Threads running a job, or reserved to take one.
    job_threads: AtomicUsize,
    idle_threads: AtomicUsize,
    live_threads: AtomicUsize,
    max_threads: usize,
    spawner: OnceLock<Box<dyn Fn() -> io::Result<JoinHandle<()>> + Send + Sync>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    live_conns: AtomicUsize,
    closed_conns: AtomicU64,
    next_conn_id: AtomicU64,
    pub served_requests: AtomicU64,
    hook: Option<ConnHook>,
    epoch: Instant,
}

/// One event loop: a poller and the connections registered with it.
struct EventLoop {
    poller: Arc<Poller>,
    /// Ownership generation: the thread that runs the loop holds the current value; a
    /// hand-off increments it.
    gen: AtomicU64,
    /// A thread is running the loop (not waiting for one).
    owned: AtomicBool,
    /// Work items processed, for the watchdog.
    progress: AtomicU64,
    /// The owner is inside the poller's wait (idle, not stuck).
    waiting: AtomicBool,
    state: Mutex<LoopState>,
}

struct LoopState {
    slots: Vec<Slot>,
    /// Each slot's connection's parker, for the threads blocked on its socket.
    parkers: Vec<Option<Arc<Parker>>>,
    free_slots: Vec<usize>,
    ready: VecDeque<Token>,
    free_bufs: Vec<Vec<u8>>,
    /// Timer wheel keyed by tick: (slot, connection id) entries, checked lazily.
    timers: BTreeMap<u64, Vec<(usize, u64)>>,
    /// The listener is out of this loop's poller until then: accepting ran out of
    /// descriptors or memory, and the level-triggered listener would otherwise wake the
    /// loop at once, again and again, while open connections wait.
    accept_resume: Option<Instant>,
}

enum Slot {
    Free,
    Parked(Box<Conn>),
    /// A thread is serving the connection. `pending` records readiness that arrived
    /// meanwhile, so parking cannot lose a wakeup.
    Busy {
        fd: RawSocket,
        id: u64,
        pending: bool,
        cut: bool,
    },
}

/// A connection and its protocol state, owned by its slot or by the serving thread.
pub(crate) struct Conn {
    socket: Socket,
    h1: H1Conn,
    peer: Option<SocketAddr>,
    id: u64,
    slot: usize,
    deadline: Instant,
    timer_tick: Option<u64>,
    /// Closing: we stopped writing and discard what the peer still sends (the count so
    /// far) until it closes or the linger deadline passes.
    lingering: Option<usize>,
    /// The connection speaks HTTP/2 (its first bytes were the client preface).
    h2: Option<Box<H2Driver>>,
}

/// How long a closing connection may keep sending before it is cut.
const LINGER: Duration = Duration::from_millis(500);
/// How much a closing connection may send before it is cut.
const LINGER_BYTES: usize = 256 * 1024;

/// A piece of work for any engine thread: one HTTP/2 stream's handler, run for its
/// connection's turn in the queue.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Jobs (connections) that may wait for a thread before new ones are refused (their
/// streams get REFUSED_STREAM).
const MAX_QUEUED_JOBS: usize = 4096;

/// Tells a loop that one of its connections has work (HTTP/2 output to write, a stream
/// that ended): the connection is served again as if it had become readable.
#[derive(Clone)]
pub(crate) struct ConnWaker {
    core: Weak<EngineCore>,
    index: usize,
    slot: usize,
}

impl ConnWaker {
    pub fn wake(&self) {
        if let Some(core) = self.core.upgrade() {
            let lp = &core.loops[self.index];
            lock(&lp.state).ready.push_back(self.slot);
            // The thread running this loop looks at its ready queue before it next
            // waits; only another thread must interrupt the wait.
            if owned_loop(&core) != Some(self.index) {
                lp.poller.wake();
            }
        }
    }
}

/// What became of [`Engine::try_park`].
enum Parking {
    /// In its slot, waiting.
    Parked,
    /// Readiness arrived while it was busy: serve it again.
    Readable(Box<Conn>),
    /// A shutdown deadline cut it: close it.
    Cut(Box<Conn>),
}

enum Work {
    Conn(Box<Conn>),
    Accept,
}

struct Owner {
    core: Arc<EngineCore>,
    index: usize,
    gen: u64,
}

thread_local! {
    /// The loop this thread currently runs, if any.
    static OWNER: RefCell<Option<Owner>> = const { RefCell::new(None) };
}

/// Called by a socket just before it blocks: if this thread runs an event loop, the loop
/// goes to a spare thread so its other connections keep being served. True when it did.
pub(crate) fn release_loop_before_blocking() -> bool {
    let owner = OWNER.with(|o| o.borrow_mut().take());
    match owner {
        Some(owner) => owner.core.hand_off(owner.index, owner.gen),
        None => false,
    }
}

/// `f` of the loop this thread runs now, if any (a hand-off or the watchdog may have
/// passed it on while this thread was in a handler).
fn with_current_loop<R>(f: impl FnOnce(&Owner) -> R) -> Option<R> {
    OWNER.with(|o| {
        o.borrow()
            .as_ref()
            .filter(|w| w.core.loops[w.index].gen.load(Ordering::Acquire) == w.gen)
            .map(f)
    })
}

/// The loop of `core` this thread runs now, if any.
fn owned_loop(core: &Arc<EngineCore>) -> Option<usize> {
    with_current_loop(|w| Arc::ptr_eq(&w.core, core).then_some(w.index)).flatten()
}

/// True while this thread runs an event loop.
pub(crate) fn owns_event_loop() -> bool {
    with_current_loop(|_| ()).is_some()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EngineCore {
    /// Passes loop `index` to another thread if generation `gen` still owns it; true
    /// when it did.
    fn hand_off(&self, index: usize, gen: u64) -> bool {
        let lp = &self.loops[index];
        if lp
            .gen
            .compare_exchange(gen, gen + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        lp.owned.store(false, Ordering::Release);
        // The owner may have been serving a connection it had just accepted, with more
        // waiting in the backlog: the new owner looks at the listener first. (On the
        // mio backend the listener is edge-triggered, so no new event would say so
        // until another client connects; on epoll it costs one accept that finds none.)
        lock(&lp.state).ready.push_back(LISTENER_TOKEN);
        // Unbounded channel, but at most one live assignment per loop is ever useful;
        // stale ones are skipped by their generation.
        let _ = self.assign_tx.send(Assignment {
            index,
            gen: gen + 1,
        });
        if self.idle_threads.load(Ordering::Acquire) == 0 {
            self.spawn_thread();
        }
        true
    }

    /// Starts another engine thread, unless the bound is reached.
    fn spawn_thread(&self) {
        let mut live = self.live_threads.load(Ordering::Acquire);
        loop {
            if live >= self.max_threads {
                log::debug!("all {live} server threads are busy; loops wait for one");
                return;
            }
            match self.live_threads.compare_exchange(
                live,
                live + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => live = now,
            }
        }
        let Some(spawn) = self.spawner.get() else {
            return;
        };
        match spawn() {
            Ok(handle) => {
                let mut joins = lock(&self.joins);
                joins.retain(|h| !h.is_finished());
                joins.push(handle);
            }
            Err(e) => {
                self.live_threads.fetch_sub(1, Ordering::AcqRel);
                log::error!("spawning a server thread failed: {e}");
            }
        }
    }

    fn emit(&self, conn: &Conn, state: ConnState) {
        self.emit_id(conn.id, conn.peer, state);
    }

    fn emit_id(&self, id: u64, peer: Option<SocketAddr>, state: ConnState) {
        if let Some(hook) = &self.hook {
            hook(&ConnEvent { id, peer, state });
        }
    }

    /// The timer tick at or after `deadline`: an entry there fires no earlier than it.
    fn tick_of(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.epoch).as_nanos();
        since.div_ceil(TICK.as_nanos()) as u64
    }

    /// The last tick that has fully begun at `now`: entries up to it are due.
    fn current_tick(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.epoch).as_nanos() / TICK.as_nanos()) as u64
    }

    /// Threads that may run jobs at once: the rest stay free to run the event loops, so
    /// a loop never waits for a thread held by a handler that waits for that loop.
    pub(crate) fn job_thread_limit(&self) -> usize {
        self.max_threads.saturating_sub(self.loops.len()).max(1)
    }

    /// Queues `job` for a thread (started if needed, within the bound). Never blocks;
    /// gives the job back when too many are waiting already.
    pub fn submit_job(&self, job: Job) -> Result<(), Job> {
        if self.terminate.load(Ordering::Acquire)
            || self.queued_jobs.load(Ordering::Acquire) >= MAX_QUEUED_JOBS
        {
            return Err(job);
        }
        let queued = self.queued_jobs.fetch_add(1, Ordering::AcqRel) + 1;
        if let Err(e) = self.job_tx.send(job) {
            self.queued_jobs.fetch_sub(1, Ordering::AcqRel);
            return Err(e.into_inner());
        }
        if self.job_threads.load(Ordering::Acquire) < self.job_thread_limit() {
            if queued > self.idle_threads.load(Ordering::Acquire) {
                self.spawn_thread();
            }
            // An idle thread that found every slot taken earlier waits for loops only.
            let _ = self.job_wake_tx.try_send(());
        }
        Ok(())
    }

    /// Jobs wait for a thread: threads are scarce, and work that could run inline on a
    /// loop's thread should take its turn in the queue instead (fairness among HTTP/2
    /// connections, see `h2conn`).
    pub(crate) fn jobs_waiting(&self) -> bool {
        self.queued_jobs.load(Ordering::Acquire) > 0
    }

    /// Reserves the right to run a job on this thread, within the limit; give it back
    /// with [`release_job_thread`](EngineCore::release_job_thread).
    pub(crate) fn reserve_job_thread(&self) -> bool {
        let limit = self.job_thread_limit();
        let mut n = self.job_threads.load(Ordering::Acquire);
        while n < limit {
            match self
                .job_threads
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Ends what [`reserve_job_thread`](EngineCore::reserve_job_thread) began. When jobs
    /// wait, the slot must not stay unused: a thread that found every slot taken looks
    /// again (it would otherwise wait for a loop to run, and the jobs with it), and with
    /// no idle thread at all one is started (within the bound).
    pub(crate) fn release_job_thread(&self) {
        self.job_threads.fetch_sub(1, Ordering::AcqRel);
        if self.queued_jobs.load(Ordering::Acquire) > 0 {
            if self.idle_threads.load(Ordering::Acquire) == 0 {
                self.spawn_thread();
            }
            let _ = self.job_wake_tx.try_send(());
        }
    }

    /// A waker for the connection in `slot` of the loop `lp`.
    fn waker(self: &Arc<Self>, lp: &EventLoop, slot: usize) -> ConnWaker {
        let index = self
            .loops
            .iter()
            .position(|l| std::ptr::eq(l, lp))
            .unwrap_or(0);
        ConnWaker {
            core: Arc::downgrade(self),
            index,
            slot,
        }
    }

    /// Connections currently open.
    pub fn live_connections(&self) -> usize {
        self.live_conns.load(Ordering::Acquire)
    }

    /// Threads currently alive (loop owners, blocked handlers, spares).
    pub fn live_threads(&self) -> usize {
        self.live_threads.load(Ordering::Acquire)
    }
}

impl LoopState {
    fn next_work(&mut self) -> Option<Work> {
        while let Some(token) = self.ready.pop_front() {
            if token == LISTENER_TOKEN {
                return Some(Work::Accept);
            }
            let index = token;
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            match slot {
                Slot::Parked(_) => {
                    let Slot::Parked(mut conn) = std::mem::replace(slot, Slot::Free) else {
                        unreachable!("matched Parked above")
                    };
                    *slot = Slot::Busy {
                        fd: conn.socket.raw(),
                        id: conn.id,
                        pending: false,
                        cut: false,
                    };
                    if conn.h1.needs_buffer() {
                        conn.h1
                            .give_buffer(self.free_bufs.pop().unwrap_or_default());
                    }
                    return Some(Work::Conn(conn));
                }
                Slot::Busy { pending, .. } => {
                    *pending = true;
                    if let Some(p) = &self.parkers[index] {
                        p.notify();
                    }
                }
                Slot::Free => {}
            }
        }
        None
    }

    /// Takes in the tokens of a wait: readiness for a connection a thread holds goes to
    /// its parker at once (a handler may be blocked on the socket); the rest is queued.
    fn deliver(&mut self, tokens: &mut Vec<Token>) {
        for token in tokens.drain(..) {
            match self.slots.get_mut(token) {
                Some(Slot::Busy { pending, .. }) => {
                    *pending = true;
                    if let Some(p) = &self.parkers[token] {
                        p.notify();
                    }
                }
                _ => self.ready.push_back(token),
            }
        }
    }

    fn insert_busy(&mut self, fd: RawSocket, id: u64, parker: Arc<Parker>) -> usize {
        let busy = Slot::Busy {
            fd,
            id,
            pending: false,
            cut: false,
        };
        match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = busy;
                self.parkers[i] = Some(parker);
                i
            }
            None => {
                self.slots.push(busy);
                self.parkers.push(Some(parker));
                self.slots.len() - 1
            }
        }
    }

    fn free(&mut self, index: usize) {
        self.slots[index] = Slot::Free;
        self.parkers[index] = None;
        self.free_slots.push(index);
    }

    fn recycle(&mut self, buf: Option<Vec<u8>>) {
        if let Some(buf) = buf {
            if self.free_bufs.len() < FREE_BUFFERS {
                self.free_bufs.push(buf);
            }
        }
    }

    fn schedule(&mut self, conn: &mut Conn, tick: u64) {
        // One entry per connection suffices while its deadline only moves later: the
        // entry fires, sees the later deadline and moves itself.
        if conn.timer_tick.is_none_or(|queued| tick < queued) {
            self.timers
                .entry(tick)
                .or_default()
                .push((conn.slot, conn.id));
            conn.timer_tick = Some(tick);
        }
    }
}

/// The engine for one handler type: the core plus the handler.
pub(crate) struct Engine<H> {
    pub core: Arc<EngineCore>,
    handler: Arc<H>,
}

/// A running engine, as seen by [`crate::server::Listening`].
pub(crate) struct Running {
    pub core: Arc<EngineCore>,
    watchdog: Mutex<Option<JoinHandle<()>>>,
    done: Mutex<Option<ShutdownReport>>,
    done_cv: std::sync::Condvar,
}

/// What a graceful shutdown achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that ended cleanly after shutdown began (idle ones closed at once,
    /// busy ones after their last response).
    pub finished: usize,
    /// Connections still busy at the deadline, closed mid-exchange.
    pub cut: usize,
}

pub(crate) fn start<H: Handler>(
    listener: Listener,
    handler: H,
    config: Config,
    loops: usize,
    max_threads: usize,
    hook: Option<ConnHook>,
) -> io::Result<Running> {
    listener.set_nonblocking()?;
    let loops = loops.max(1);
    let max_threads = max_threads.max(loops + 1);
    let mut event_loops = Vec::with_capacity(loops);
    for _ in 0..loops {
        let poller = Poller::new()?;
        poller.add_listener(&listener, LISTENER_TOKEN)?;
        event_loops.push(EventLoop {
            poller: Arc::new(poller),
            gen: AtomicU64::new(0),
            owned: AtomicBool::new(false),
            progress: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            state: Mutex::new(LoopState {
                slots: Vec::new(),
                parkers: Vec::new(),
                free_slots: Vec::new(),
                ready: VecDeque::new(),
                free_bufs: Vec::new(),
                timers: BTreeMap::new(),
                accept_resume: None,
            }),
        });
    }
    let (assign_tx, assign_rx) = unbounded();
    let (job_tx, job_rx) = unbounded();
    let (job_wake_tx, job_wake_rx) = crossbeam_channel::bounded(1);
    let core = Arc::new(EngineCore {
        loops: event_loops,
        config: Arc::new(config),
        listener: RwLock::new(Some(listener)),
        stopping: AtomicBool::new(false),
        terminate: AtomicBool::new(false),
        assign_tx,
        assign_rx,
        job_tx,
        job_rx,
        job_wake_tx,
        job_wake_rx,
        queued_jobs: AtomicUsize::new(0),
        job_threads: AtomicUsize::new(0),
        idle_threads: AtomicUsize::new(0),
        live_threads: AtomicUsize::new(0),
        max_threads,
        spawner: OnceLock::new(),
        joins: Mutex::new(Vec::new()),
        live_conns: AtomicUsize::new(0),
        closed_conns: AtomicU64::new(0),
        next_conn_id: AtomicU64::new(1),
        served_requests: AtomicU64::new(0),
        hook,
        epoch: Instant::now(),
    });
    let engine = Arc::new(Engine {
        core: core.clone(),
        handler: Arc::new(handler),
    });
    let weak: Weak<Engine<H>> = Arc::downgrade(&engine);
    let spawner = move || -> io::Result<JoinHandle<()>> {
        let engine = weak
            .upgrade()
            .ok_or_else(|| io::Error::other("server is gone"))?;
        thread::Builder::new()
            .name("spindle".into())
            .spawn(move || thread_main(engine))
    };
    let _ = core.spawner.set(Box::new(spawner));
    // One thread per loop, plus one spare so the first hand-off needs no spawn.
    for index in 0..loops {
        core.loops[index].owned.store(true, Ordering::Release);
        let _ = core.assign_tx.send(Assignment { index, gen: 0 });
    }
    for _ in 0..loops + 1 {
        core.spawn_thread();
    }
    let watchdog_core = core.clone();
    let watchdog = thread::Builder::new()
        .name("spindle-watchdog".into())
        .spawn(move || watchdog(&watchdog_core))?;
    // The engine is kept alive by its threads; the handle holds only the core.
    drop(engine);
    Ok(Running {
        core,
        watchdog: Mutex::new(Some(watchdog)),
        done: Mutex::new(None),
        done_cv: std::sync::Condvar::new(),
    })
}

fn thread_main<H: Handler>(engine: Arc<Engine<H>>) {
    let core = engine.core.clone();
    let mut scratch = Scratch::default();
    loop {
        core.idle_threads.fetch_add(1, Ordering::AcqRel);
        let got = next_task(&core);
        core.idle_threads.fetch_sub(1, Ordering::AcqRel);
        if core.terminate.load(Ordering::Acquire) {
            break;
        }
        let got = match got {
            Ok(Task::Job(job)) => {
                job();
                core.job_threads.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            Ok(Task::Assign(a)) => Ok(a),
            Err(e) => Err(e),
        };
        match got {
            Ok(a) => {
                let lp = &core.loops[a.index];
                if lp.gen.load(Ordering::Acquire) == a.gen {
                    engine.run_loop(a, &mut scratch);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // Shrink back towards one thread per loop plus a spare.
                let floor = core.loops.len() + 1;
                let live = core.live_threads.load(Ordering::Acquire);
                if live > floor
                    && core
                        .live_threads
                        .compare_exchange(live, live - 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    core.live_threads.fetch_sub(1, Ordering::AcqRel);
}

enum Task {
    Assign(Assignment),
    Job(Job),
}

/// The next thing for a free thread: a loop to run first (a loop must never wait behind
/// jobs), else a job if this thread may take one.
fn next_task(core: &EngineCore) -> Result<Task, RecvTimeoutError> {
    if let Ok(a) = core.assign_rx.try_recv() {
        return Ok(Task::Assign(a));
    }
    while !core.reserve_job_thread() {
        // Every job slot is taken: wait for a loop to run, or for word that a slot
        // came free while jobs wait (see `release_job_thread`).
        crossbeam_channel::select! {
            recv(core.assign_rx) -> a => {
                return a.map(Task::Assign).map_err(|_| RecvTimeoutError::Disconnected)
            }
            recv(core.job_wake_rx) -> _ => {}
            default(SPARE_LINGER) => return Err(RecvTimeoutError::Timeout),
        }
    }
    let got = crossbeam_channel::select! {
        recv(core.assign_rx) -> a => a.map(Task::Assign).map_err(|_| RecvTimeoutError::Disconnected),
        recv(core.job_rx) -> j => j.map(Task::Job).map_err(|_| RecvTimeoutError::Disconnected),
        default(SPARE_LINGER) => Err(RecvTimeoutError::Timeout),
    };
    match &got {
        Ok(Task::Job(_)) => {
            core.queued_jobs.fetch_sub(1, Ordering::AcqRel);
        }
        _ => core.release_job_thread(),
    }
    got
}

impl<H: Handler> Engine<H> {
    fn run_loop(&self, a: Assignment, scratch: &mut Scratch) {
        let core = &self.core;
        let lp = &core.loops[a.index];
        lp.owned.store(true, Ordering::Release);
        OWNER.with(|o| {
            *o.borrow_mut() = Some(Owner {
                core: core.clone(),
                index: a.index,
                gen: a.gen,
            })
        });
        let mut events = poll::events(256);
        let mut tokens = Vec::with_capacity(256);
        while lp.gen.load(Ordering::Acquire) == a.gen && !core.terminate.load(Ordering::Acquire) {
            let work = lock(&lp.state).next_work();
            match work {
                Some(Work::Conn(conn)) => self.serve(lp, conn, scratch),
                Some(Work::Accept) => self.accept_ready(lp, a, scratch),
                None => {
                    let mut timeout = self.run_timers(lp, scratch);
                    if lp.gen.load(Ordering::Acquire) != a.gen {
                        break;
                    }
                    if let Some(wait) = self.resume_accepting(lp) {
                        timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
                    } else if !lock(&lp.state).ready.is_empty() {
                        continue;
                    }
                    lp.waiting.store(true, Ordering::Release);
                    let waited = lp.poller.wait(&mut events, &mut tokens, timeout);
                    lp.waiting.store(false, Ordering::Release);
                    if let Err(e) = waited {
                        log::error!("waiting for readiness ({}) failed: {e}", poll::BACKEND);
                        thread::sleep(Duration::from_millis(10));
                    }
                    if !tokens.is_empty() {
                        lock(&lp.state).deliver(&mut tokens);
                    }
                }
            }
            lp.progress.fetch_add(1, Ordering::Relaxed);
        }
        // Either another thread took the loop over, or the server is ending.
        OWNER.with(|o| o.borrow_mut().take());
    }

    /// Puts the listener back into the loop's poller once an accept pause is over,
    /// and looks for waiting connections at once. Returns how long the pause still
    /// lasts, if it does.
    fn resume_accepting(&self, lp: &EventLoop) -> Option<Duration> {
        let core = &self.core;
        let mut st = lock(&lp.state);
        let resume = st.accept_resume?;
        let left = resume.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            return Some(left);
        }
        st.accept_resume = None;
        if core.stopping.load(Ordering::Acquire) {
            return None;
        }
        let added = match core
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(listener) => lp.poller.add_listener(listener, LISTENER_TOKEN),
            // A shutdown closed the listener meanwhile.
            None => return None,
        };
        if let Err(e) = added {
            if core.stopping.load(Ordering::Acquire) {
                return None;
            }
            log::error!("watching the listener again failed: {e}");
            st.accept_resume = Some(Instant::now() + ACCEPT_BACKOFF);
            return Some(ACCEPT_BACKOFF);
        }
        st.ready.push_back(LISTENER_TOKEN);
        None
    }

    /// Serves a connection until it would block, then parks or closes it.
    fn serve(&self, lp: &EventLoop, mut conn: Box<Conn>, scratch: &mut Scratch) {
        let core = &self.core;
        if conn.lingering.is_some() {
            return self.linger(lp, conn);
        }
        if conn.h2.is_some() {
            return self.serve_h2(lp, conn, scratch);
        }
        if conn.socket.is_handshaking() {
            match self.handshake(lp, conn) {
                Some(ready) => conn = ready,
                None => return,
            }
            if conn.socket.negotiated_alpn().as_deref() == Some(ALPN_H2) {
                // The client speaks HTTP/2 from its first byte (RFC 9113 §3.2).
                return self.start_h2(lp, conn, Vec::new(), None, scratch);
            }
        }
        conn.h1.readable();
        loop {
            core.emit(&conn, ConnState::Active);
            let before = conn.h1.served();
            let next = h1conn::serve_ready(
                &mut conn.h1,
                &conn.socket,
                conn.peer,
                &self.handler,
                &core.config,
                scratch,
                &core.stopping,
            );
            core.served_requests
                .fetch_add(conn.h1.served() - before, Ordering::Relaxed);
            match next {
                Next::Park(deadline) => {
                    if core.stopping.load(Ordering::Acquire) && conn.h1.is_idle() {
                        self.close(lp, conn, h1conn::Fate::Shutdown, scratch);
                        return;
                    }
                    if conn.h1.wants_write() && conn.socket.watch_writable_once() {
                        // Output waits for the socket: writability wakes it too (kept
                        // for the connection's life; edge-triggered, so it costs an
                        // event only after the socket was full).
                        if let Err(e) = lp.poller.watch_writable(conn.socket.stream(), conn.slot) {
                            log::debug!("watching a connection for writability: {e}");
                            self.close(lp, conn, h1conn::Fate::Io, scratch);
                            return;
                        }
                    }
                    if conn.socket.must_not_park() {
                        // TLS: decrypted bytes wait inside the session (or an end of
                        // stream does); the socket will never signal them.
                        conn.h1.readable();
                        continue;
                    }
                    // Idle for the connection hook only when nothing is owed either way.
                    let idle = conn.h1.is_idle();
                    match self.try_park(lp, conn, deadline, idle) {
                        Parking::Parked => return,
                        Parking::Cut(cut) => {
                            return self.close(lp, cut, h1conn::Fate::Shutdown, scratch)
                        }
                        Parking::Readable(ready) => {
                            conn = ready;
                            conn.h1.readable();
                        }
                    }
                }
                Next::Close(fate) => {
                    self.close(lp, conn, fate, scratch);
                    return;
                }
                Next::Http2 => {
                    // The client preface: this connection speaks HTTP/2 from now on.
                    let input = conn.h1.take_unread();
                    let buf = conn.h1.take_buffer();
                    lock(&lp.state).recycle(buf);
                    return self.start_h2(lp, conn, input, None, scratch);
                }
                Next::H2cUpgrade(upgrade) => {
                    // `101 Switching Protocols` is out; the client preface follows.
                    let input = conn.h1.take_unread();
                    let buf = conn.h1.take_buffer();
                    lock(&lp.state).recycle(buf);
                    return self.start_h2(lp, conn, input, Some(*upgrade), scratch);
                }
            }
        }
    }

    /// Switches a connection to HTTP/2 (after the client preface, ALPN `h2`, or an
    /// `Upgrade: h2c` whose request becomes stream 1) and serves it. `input`: bytes
    /// already read, from the preface on.
    fn start_h2(
        &self,
        lp: &EventLoop,
        mut conn: Box<Conn>,
        input: Vec<u8>,
        upgrade: Option<H2cUpgrade>,
        scratch: &mut Scratch,
    ) {
        let core = &self.core;
        // HTTP/2 output may not fit the socket; the loop then waits for writability.
        let watch = if conn.socket.watch_writable_once() {
            lp.poller.watch_writable(conn.socket.stream(), conn.slot)
        } else {
            Ok(())
        };
        if let Err(e) = watch {
            log::debug!("watching an HTTP/2 connection for writability: {e}");
            self.close(lp, conn, h1conn::Fate::Io, scratch);
            return;
        }
        let waker = core.waker(lp, conn.slot);
        match H2Driver::new(&core.config, input, conn.peer, waker, upgrade) {
            Ok(driver) => conn.h2 = Some(Box::new(driver)),
            Err(e) => {
                log::debug!(
                    "h2c upgrade from {:?} with invalid settings: {e:?}",
                    conn.peer
                );
                self.close(lp, conn, h1conn::Fate::Io, scratch);
                return;
            }
        }
        self.serve_h2(lp, conn, scratch)
    }

    /// Drives an HTTP/2 connection's I/O until it would block, then parks or closes it,
    /// and runs the requests that arrived once it is parked (see [`StreamRunner::run`]):
    /// the connection is always back in its slot, drivable by the loop, while a
    /// handler runs.
    ///
    /// [`StreamRunner::run`]: h2conn::StreamRunner::run
    fn serve_h2(&self, lp: &EventLoop, mut conn: Box<Conn>, scratch: &mut Scratch) {
        let core = &self.core;
        loop {
            let Some(h2) = conn.h2.as_mut() else {
                return;
            };
            core.emit_id(conn.id, conn.peer, ConnState::Active);
            let next = h2conn::drive(h2, &conn.socket, core, &mut scratch.read);
            let runner = h2.runner(core);
            let deadline = match next {
                H2Next::Park(deadline) => deadline,
                H2Next::Close => {
                    let _ = conn.socket.shutdown(std::net::Shutdown::Both);
                    lp.poller.delete(conn.socket.stream_mut());
                    self.release(lp, conn);
                    return;
                }
            };
            // TLS: decrypted bytes wait inside the session; no edge will announce them.
            let revisit = conn.socket.must_not_park();
            let Some(runner) = runner else {
                if revisit {
                    continue;
                }
                match self.try_park(lp, conn, deadline, true) {
                    Parking::Parked => return,
                    Parking::Cut(cut) => {
                        let _ = cut.socket.shutdown(std::net::Shutdown::Both);
                        return self.release(lp, cut);
                    }
                    Parking::Readable(ready) => {
                        conn = ready;
                        continue;
                    }
                }
            };
            if let Some(cut) = self.park_and_queue(lp, conn, deadline, revisit) {
                let _ = cut.socket.shutdown(std::net::Shutdown::Both);
                return self.release(lp, cut);
            }
            runner.run(&self.handler);
            return;
        }
    }

    /// Parks a connection whose handlers this thread is about to run. Unlike
    /// [`try_park`](Engine::try_park), readiness that arrived meanwhile (or `requeue`)
    /// puts it on the ready queue rather than back in our hands, so the loop serves it
    /// after the handlers, or its next owner at once should a handler block. Returns
    /// the connection when a shutdown deadline cut it.
    fn park_and_queue(
        &self,
        lp: &EventLoop,
        mut conn: Box<Conn>,
        deadline: Instant,
        requeue: bool,
    ) -> Option<Box<Conn>> {
        let mut st = lock(&lp.state);
        let mut requeue = requeue;
        if let Slot::Busy { pending, cut, .. } = &mut st.slots[conn.slot] {
            if *cut {
                return Some(conn);
            }
            requeue |= *pending;
        }
        conn.deadline = deadline;
        let tick = self.core.tick_of(deadline);
        st.schedule(&mut conn, tick);
        let slot = conn.slot;
        st.slots[slot] = Slot::Parked(conn);
        if requeue {
            st.ready.push_back(slot);
            drop(st);
            // The watchdog may have passed the loop on while this thread served the
            // connection: then its owner may be waiting for readiness, blind to the
            // ready queue.
            let ours = with_current_loop(|w| std::ptr::eq(&w.core.loops[w.index], lp));
            if ours != Some(true) {
                lp.poller.wake();
            }
        }
        None
    }

    /// Drives a connection's TLS handshake as far as it goes without blocking. Returns
    /// the connection once the handshake is complete; `None` when it was parked (waiting
    /// for the client's next flight, until the handshake deadline) or closed.
    fn handshake(&self, lp: &EventLoop, mut conn: Box<Conn>) -> Option<Box<Conn>> {
        let core = &self.core;
        loop {
            let now = Instant::now();
            if core.stopping.load(Ordering::Acquire) {
                self.end_handshake(lp, conn, "the server is shutting down");
                return None;
            }
            let seen = conn.socket.ready_seen();
            match conn.socket.tls_handshake() {
                Ok(HandshakeStatus::Complete) => {
                    return Some(conn);
                }
                Ok(HandshakeStatus::Pending(_)) if now >= conn.deadline => {
                    self.end_handshake(lp, conn, "timed out");
                    return None;
                }
                Ok(HandshakeStatus::Pending(Interest::Write)) => {
                    // Rare: our flight did not fit the socket buffer. Wait for room here;
                    // the loop passes to a spare thread first.
                    let left = conn.deadline - now;
                    if let Err(e) = conn.socket.wait_for(Readiness::Write, seen, Some(left)) {
                        self.end_handshake(lp, conn, &e.to_string());
                        return None;
                    }
                }
                Ok(HandshakeStatus::Pending(Interest::Read)) => {
                    // The socket said "would block": a new readiness edge will come.
                    let deadline = conn.deadline;
                    match self.try_park(lp, conn, deadline, false) {
                        Parking::Parked => return None,
                        Parking::Cut(cut) => {
                            self.end_handshake(lp, cut, "cut at shutdown");
                            return None;
                        }
                        Parking::Readable(ready) => conn = ready,
                    }
                }
                Err(e) => {
                    self.end_handshake(lp, conn, &e.to_string());
                    return None;
                }
            }
        }
    }

    /// Closes a connection whose TLS handshake did not complete (or selected a protocol
    /// we do not serve).
    fn end_handshake(&self, lp: &EventLoop, conn: Box<Conn>, why: &str) {
        log::debug!(
            "TLS handshake with {:?} (connection {}) failed: {why}",
            conn.peer,
            conn.id
        );
        let _ = conn.socket.shutdown(std::net::Shutdown::Both);
        self.release(lp, conn);
    }

    fn close(
        &self,
        lp: &EventLoop,
        mut conn: Box<Conn>,
        fate: h1conn::Fate,
        scratch: &mut Scratch,
    ) {
        let linger = h1conn::finish(&mut conn.h1, &conn.socket, scratch, fate);
        log::debug!(
            "connection {} from {:?} ended after {} requests: {fate:?}",
            conn.id,
            conn.peer,
            conn.h1.served()
        );
        if linger && !self.core.terminate.load(Ordering::Acquire) {
            conn.lingering = Some(0);
            conn.deadline = Instant::now() + LINGER;
            return self.linger(lp, conn);
        }
        if fate == h1conn::Fate::Hijacked {
            // A handler holds a duplicate of the descriptor, which keeps the poller's
            // registration alive past our close: remove it, or its events would reach
            // whatever takes this slot next.
            lp.poller.delete(conn.socket.stream_mut());
        }
        self.release(lp, conn);
    }

    /// Parks a busy connection in its slot until it is readable or `deadline` passes,
    /// unless readiness arrived while it was busy (its edge is spent: serve it again) or
    /// a shutdown deadline cut it meanwhile. Both checks and the parking happen under
    /// the loop's lock, so no wakeup is lost. `idle` reports the connection as Idle.
    fn try_park(
        &self,
        lp: &EventLoop,
        mut conn: Box<Conn>,
        deadline: Instant,
        idle: bool,
    ) -> Parking {
        let mut st = lock(&lp.state);
        if let Slot::Busy { pending, cut, .. } = &mut st.slots[conn.slot] {
            if *cut {
                return Parking::Cut(conn);
            }
            if *pending {
                *pending = false;
                return Parking::Readable(conn);
            }
        }
        if idle {
            self.core.emit_id(conn.id, conn.peer, ConnState::Idle);
        }
        conn.deadline = deadline;
        let tick = self.core.tick_of(deadline);
        st.schedule(&mut conn, tick);
        let buf = conn.h1.take_buffer_if_idle();
        st.recycle(buf);
        let slot = conn.slot;
        st.slots[slot] = Slot::Parked(conn);
        Parking::Parked
    }

    /// Discards what a closing peer still sends, without blocking; parks the connection
    /// until it closes its side or the linger deadline passes.
    fn linger(&self, lp: &EventLoop, mut conn: Box<Conn>) {
        let mut sink = [0u8; 4096];
        loop {
            let total = conn.lingering.unwrap_or(0);
            match conn.socket.try_read(&mut sink) {
                Ok(n) if n > 0 && total + n < LINGER_BYTES => conn.lingering = Some(total + n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= conn.deadline {
                        break;
                    }
                    let deadline = conn.deadline;
                    match self.try_park(lp, conn, deadline, false) {
                        Parking::Parked => return,
                        Parking::Cut(cut) => {
                            conn = cut;
                            break;
                        }
                        Parking::Readable(ready) => conn = ready,
                    }
                }
                _ => break,
            }
        }
        let _ = conn.socket.shutdown(std::net::Shutdown::Both);
        self.release(lp, conn);
    }

    /// Frees a connection's slot and closes its socket.
    fn release(&self, lp: &EventLoop, mut conn: Box<Conn>) {
        {
            let mut st = lock(&lp.state);
            st.free(conn.slot);
            let buf = conn.h1.take_buffer();
            st.recycle(buf);
        }
        self.core.emit(&conn, ConnState::Closed);
        // The descriptor closes only after its slot is free (see `cut_remaining`).
        drop(conn);
        self.core.live_conns.fetch_sub(1, Ordering::AcqRel);
        self.core.closed_conns.fetch_add(1, Ordering::AcqRel);
    }

    fn accept_ready(&self, lp: &EventLoop, a: Assignment, scratch: &mut Scratch) {
        let core = &self.core;
        loop {
            let accepted = {
                let guard = core.listener.read().unwrap_or_else(|p| p.into_inner());
                match guard.as_ref() {
                    Some(listener) => lp.poller.accept(listener),
                    None => return,
                }
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors or memory. The listener stays readable, so
                    // this loop stops watching it for a while instead of spinning (or
                    // sleeping, which would stall its open connections, the likeliest
                    // to free descriptors).
                    if let Some(l) = core
                        .listener
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                    {
                        lp.poller.delete_listener(l);
                    }
                    lock(&lp.state).accept_resume = Some(Instant::now() + ACCEPT_BACKOFF);
                    static ACCEPT_FAILED: RateLimitedLog = RateLimitedLog::new(1);
                    ACCEPT_FAILED.hit(|n| {
                        log::warn!(
                            "accept failed: {e}{}; new connections wait in the backlog",
                            and_more(n)
                        )
                    });
                    return;
                }
            };
            if core.stopping.load(Ordering::Acquire) {
                continue;
            }
            if core.live_conns.load(Ordering::Acquire) >= core.config.max_connections {
                static REFUSED: RateLimitedLog = RateLimitedLog::new(1);
                REFUSED.hit(|n| {
                    log::warn!(
                        "connection limit {} reached; refused {peer:?}{}",
                        core.config.max_connections,
                        and_more(n)
                    )
                });
                reject_overloaded(stream);
                continue;
            }
            if let Err(e) = stream.set_nonblocking() {
                log::debug!("configuring an accepted socket failed: {e}");
                continue;
            }
            let id = core.next_conn_id.fetch_add(1, Ordering::Relaxed);
            let parker = Arc::new(Parker::new());
            let (slot, buf) = {
                let mut st = lock(&lp.state);
                (
                    st.insert_busy(stream.raw(), id, parker.clone()),
                    st.free_bufs.pop().unwrap_or_default(),
                )
            };
            let park = Park {
                parker,
                poller: lp.poller.clone(),
                token: slot,
            };
            let mut socket = Socket::new(stream, park);
            let _ = socket.set_write_timeout(core.config.write_timeout);
            if let Some(acceptor) = &core.config.tls {
                if let Err(e) = socket.start_tls(acceptor) {
                    log::debug!("starting TLS for {peer:?} failed: {e}");
                    lock(&lp.state).free(slot);
                    continue;
                }
            }
            let mut h1 = H1Conn::new(Instant::now());
            h1.give_buffer(buf);
            let mut conn = Box::new(Conn {
                socket,
                h1,
                peer,
                id,
                slot,
                // For TLS, the handshake's deadline until it completes.
                deadline: Instant::now() + core.config.tls_handshake_timeout,
                timer_tick: None,
                lingering: None,
                h2: None,
            });
            core.live_conns.fetch_add(1, Ordering::AcqRel);
            core.emit(&conn, ConnState::New);
            if let Err(e) = lp.poller.add(conn.socket.stream_mut(), slot) {
                log::warn!("registering a connection failed: {e}");
                self.close(lp, conn, h1conn::Fate::Io, scratch);
                continue;
            }
            // The request usually arrives with the connection: serve it now.
            self.serve(lp, conn, scratch);
            if lp.gen.load(Ordering::Acquire) != a.gen {
                // Lost the loop while serving: the new owner must look at the listener
                // again (readiness is edge-triggered on the mio backend).
                lock(&lp.state).ready.push_back(LISTENER_TOKEN);
                lp.poller.wake();
                return;
            }
        }
    }

    /// Expires parked connections whose deadline passed; returns how long the loop may
    /// sleep before the next timer.
    fn run_timers(&self, lp: &EventLoop, scratch: &mut Scratch) -> Option<Duration> {
        let core = &self.core;
        let now = Instant::now();
        let now_tick = core.current_tick(now);
        let mut expired = Vec::new();
        let next = {
            let mut st = lock(&lp.state);
            while let Some(entry) = st.timers.first_entry() {
                if *entry.key() > now_tick {
                    break;
                }
                let due = entry.remove();
                for (index, id) in due {
                    let requeue = match st.slots.get_mut(index) {
                        Some(Slot::Parked(conn)) if conn.id == id => {
                            if conn.deadline <= now {
                                let fd = conn.socket.raw();
                                let Slot::Parked(mut conn) = std::mem::replace(
                                    &mut st.slots[index],
                                    Slot::Busy {
                                        fd,
                                        id,
                                        pending: false,
                                        cut: false,
                                    },
                                ) else {
                                    unreachable!("matched Parked above")
                                };
                                // Its entry is gone: a connection that parks again (HTTP/2 after its
                                // timer) needs a new one.
                                conn.timer_tick = None;
                                expired.push(conn);
                                None
                            } else {
                                conn.timer_tick = None;
                                Some(core.tick_of(conn.deadline).max(now_tick + 1))
                            }
                        }
                        // Busy: look again shortly; the connection re-arms when it parks.
                        Some(Slot::Busy { id: busy_id, .. }) if *busy_id == id => {
                            Some(now_tick + 10)
                        }
                        _ => None,
                    };
                    if let Some(tick) = requeue {
                        if let Some(Slot::Parked(conn)) = st.slots.get_mut(index) {
                            conn.timer_tick = Some(tick);
                        }
                        st.timers.entry(tick).or_default().push((index, id));
                    }
                }
            }
            st.timers.first_key_value().map(|(tick, _)| *tick)
        };
        for mut conn in expired {
            if conn.h2.is_some() {
                // The driver looks at its own clock: idle timeout, SETTINGS ACK, GOAWAY.
                self.serve_h2(lp, conn, scratch);
                continue;
            }
            if conn.lingering.is_some() {
                let _ = conn.socket.shutdown(std::net::Shutdown::Both);
                self.release(lp, conn);
                continue;
            }
            if conn.socket.is_handshaking() {
                self.end_handshake(lp, conn, "timed out");
                continue;
            }
            let fate = h1conn::on_timeout(&mut conn.h1, scratch);
            self.close(lp, conn, fate, scratch);
        }
        next.map(|tick| {
            let at = core.epoch + TICK * (tick as u32);
            at.saturating_duration_since(Instant::now())
        })
    }
}

/// Answers a connection the server has no room for, without reading its request.
fn reject_overloaded(stream: Stream) {
    stream.answer_and_close(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 18\r\n\
          retry-after: 1\r\nconnection: close\r\n\r\nserver overloaded\n",
    );
}

fn watchdog(core: &EngineCore) {
    let mut last: Vec<(u64, u64)> = vec![(0, 0); core.loops.len()];
    let mut events = poll::events(64);
    let mut tokens = Vec::with_capacity(64);
    while !core.terminate.load(Ordering::Acquire) {
        thread::sleep(WATCHDOG_INTERVAL);
        let mut starved = false;
        for (index, lp) in core.loops.iter().enumerate() {
            if !lp.owned.load(Ordering::Acquire) {
                // No thread runs this loop (every one is busy): forward its readiness,
                // so handlers blocked on their sockets go on (their threads free up),
                // and queue the rest for the next owner. Go's sysmon polls the network
                // the same way when no thread does.
                if lp
                    .poller
                    .wait(&mut events, &mut tokens, Some(Duration::ZERO))
                    .is_ok()
                    && !tokens.is_empty()
                {
                    lock(&lp.state).deliver(&mut tokens);
                }
                tokens.clear();
            }
            let progress = lp.progress.load(Ordering::Relaxed);
            let gen = lp.gen.load(Ordering::Acquire);
            let owned = lp.owned.load(Ordering::Acquire);
            let stuck =
                owned && !lp.waiting.load(Ordering::Acquire) && last[index] == (progress, gen);
            if stuck {
                log::debug!("event loop {index} stuck in a handler; handing it to another thread");
                core.hand_off(index, gen);
            }
            if !owned && core.idle_threads.load(Ordering::Acquire) == 0 {
                starved = true;
            }
            last[index] = (progress, lp.gen.load(Ordering::Acquire));
        }
        if starved
            && core.config.overload == Overload::Reject
            && !core.stopping.load(Ordering::Acquire)
        {
            // Every thread is busy and a loop waits for one: answer new connections
            // from here rather than leave them in the backlog.
            let guard = core.listener.read().unwrap_or_else(|p| p.into_inner());
            if let Some(listener) = guard.as_ref() {
                for _ in 0..1024 {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            static REJECTED: RateLimitedLog = RateLimitedLog::new(1);
                            REJECTED.hit(|n| {
                                log::warn!("overloaded: answered {peer:?} with 503{}", and_more(n))
                            });
                            reject_overloaded(stream);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

impl Running {
    /// Graceful shutdown; see [`crate::server::Listening::shutdown`].
    pub fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        if let Some(report) = *lock(&self.done) {
            return report;
        }
        let core = &self.core;
        let closed_before = core.closed_conns.load(Ordering::Acquire);
        core.stopping.store(true, Ordering::Release);
        // Stop accepting: out of every poller, then closed, freeing the port.
        let listener = core
            .listener
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(l) = &listener {
            for lp in &core.loops {
                lp.poller.delete_listener(l);
            }
        }
        drop(listener);
        // Idle connections close at once.
        let mut scratch = Scratch::default();
        for lp in &core.loops {
            let idle: Vec<Box<Conn>> = {
                let mut st = lock(&lp.state);
                let mut idle = Vec::new();
                for index in 0..st.slots.len() {
                    if let Slot::Parked(c) = &st.slots[index] {
                        if c.h2.as_ref().is_some_and(|h2| !h2.is_idle()) {
                            // Streams in flight: GOAWAY, and they finish (see h2conn).
                            st.ready.push_back(index);
                            continue;
                        }
                    }
                    if matches!(&st.slots[index], Slot::Parked(c) if c.h2.is_some() || c.h1.is_idle() || c.lingering.is_some())
                    {
                        if let Slot::Parked(conn) =
                            std::mem::replace(&mut st.slots[index], Slot::Free)
                        {
                            st.free_slots.push(index);
                            idle.push(conn);
                        }
                    }
                }
                idle
            };
            for mut conn in idle {
                if let Some(h2) = conn.h2.as_mut() {
                    h2.close_idle(&conn.socket);
                } else if conn.lingering.is_none() {
                    h1conn::finish(
                        &mut conn.h1,
                        &conn.socket,
                        &mut scratch,
                        h1conn::Fate::Shutdown,
                    );
                }
                let _ = conn.socket.shutdown(std::net::Shutdown::Both);
                core.emit(&conn, ConnState::Closed);
                drop(conn);
                core.live_conns.fetch_sub(1, Ordering::AcqRel);
                core.closed_conns.fetch_add(1, Ordering::AcqRel);
            }
            lp.poller.wake();
        }
        // In-flight exchanges finish; their connections close as they go quiet.
        while core.live_conns.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let finished_before_cut = core.closed_conns.load(Ordering::Acquire) - closed_before;
        let cut = self.cut_remaining();
        let report = ShutdownReport {
            finished: finished_before_cut as usize,
            cut,
        };
        self.stop_threads(deadline.max(Instant::now()) + Duration::from_secs(1));
        *lock(&self.done) = Some(report);
        self.done_cv.notify_all();
        report
    }

    /// Closes every connection still open: parked ones directly, busy ones by shutting
    /// their socket down so the serving thread's I/O fails and it lets go.
    fn cut_remaining(&self) -> usize {
        let core = &self.core;
        let mut cut = 0;
        for lp in &core.loops {
            let parked: Vec<Box<Conn>> = {
                let mut st = lock(&lp.state);
                let mut parked = Vec::new();
                for index in 0..st.slots.len() {
                    match &mut st.slots[index] {
                        Slot::Busy {
                            fd, cut: was_cut, ..
                        } if !*was_cut => {
                            // Safe against descriptor reuse: a busy connection's
                            // descriptor closes only after its slot is freed, which
                            // needs this lock.
                            shutdown_raw(*fd);
                            *was_cut = true;
                            cut += 1;
                        }
                        Slot::Parked(_) => {
                            if let Slot::Parked(conn) =
                                std::mem::replace(&mut st.slots[index], Slot::Free)
                            {
                                st.free_slots.push(index);
                                parked.push(conn);
                            }
                        }
                        _ => {}
                    }
                }
                parked
            };
            for conn in parked {
                cut += 1;
                self.core.emit(&conn, ConnState::Closed);
                drop(conn);
                core.live_conns.fetch_sub(1, Ordering::AcqRel);
                core.closed_conns.fetch_add(1, Ordering::AcqRel);
            }
        }
        cut
    }

    /// Ends the engine threads, waiting for them until `until`.
    fn stop_threads(&self, until: Instant) {
        let core = &self.core;
        core.terminate.store(true, Ordering::Release);
        for lp in &core.loops {
            lp.poller.wake();
        }
        let live = core.live_threads.load(Ordering::Acquire);
        for _ in 0..live + 1 {
            let _ = core.assign_tx.send(Assignment {
                index: 0,
                gen: u64::MAX,
            });
        }
        if let Some(w) = lock(&self.watchdog).take() {
            let _ = w.join();
        }
        while core.live_threads.load(Ordering::Acquire) > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        let joins: Vec<JoinHandle<()>> = lock(&core.joins).drain(..).collect();
        for j in joins {
            if j.is_finished() || core.live_threads.load(Ordering::Acquire) == 0 {
                let _ = j.join();
            }
        }
    }

    /// Stops at once and waits for every thread to end.
    pub fn close(&self) {
        self.shutdown(Instant::now());
        let core = &self.core;
        while core.live_threads.load(Ordering::Acquire) > 0 {
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Blocks until a shutdown has completed.
    pub fn wait(&self) {
        let mut done = lock(&self.done);
        while done.is_none() {
            done = self.done_cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}
