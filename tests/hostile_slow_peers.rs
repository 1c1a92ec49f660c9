//! Issue 14, item 5: slow peers never hold a thread. With the server in its own process
//! (tests/h2_attack_support) and `handle_threads(h, 8)` (2 event loops), all at once:
//!
//! | kind | count | what it does | cut by (test value) |
//! |---|---:|---|---|
//! | body to a handler that does not read it | 150 | `POST /` with `Content-Length: 1000000`, then 1 byte/s (the first example) | `min_body_rate` 1000 B/s, 4 s slack |
//! | body to a handler that reads it | 25 | the same to `/hold` | `min_body_rate` |
//! | chunked body to a handler that reads it | 25 | `POST /hold`, chunked, a 1,000,000-byte chunk, 1 byte/s | `min_body_rate` |
//! | `Upgrade: h2c` body | 10 | `POST /hold`, `Upgrade: h2c`, `Content-Length: 1000`, 1 byte/s | `min_body_rate` |
//! | never reads its answers | 190 | two pipelined `GET /big?n=120000` (240 kB, within `write_buffer`), reads nothing | the write-out bound: `write_timeout` / `min_write_rate` (both 5 s) |
//! | reads its answers late | 10 | the same, reads everything 3.5 s after asking | gets both answers whole, then `idle_timeout` (3 s) |
//! | reads a large answer slowly | 3 | `GET /big?n=4000000` (past `write_buffer`), reads 64 KiB/s | `min_write_rate` 1 MB/s, 5 s slack |
//! | slowloris head | 1000 | `GET / HTTP/1.1`, `Host`, a field that grows 1 byte/s | `head_timeout` 3 s → 408 |
//! | h2c streams without DATA | 50 × 40 | prior knowledge, 40 `POST /hold` HEADERS without END_STREAM | `min_body_rate` per stream, then `idle_timeout` for the connection |
//!
//! The clients that never read set a 4 KiB receive buffer and a 536-byte MSS, so the
//! kernel takes about 100 kB of an answer (on loopback it would otherwise take 4 MiB).
//!
//! Meanwhile four probes ask `GET /` in a loop: HTTP/1.1 on a new connection and on a
//! kept-alive one, HTTP/2 on a new connection and on a kept-alive one; every answer must
//! come within 1 s. The test asserts, per kind, that every peer ends, when (inside the
//! window its bound gives, measured from its own start: no earlier than the bound less
//! 0.3 s, no later than the bound plus 2 s of slack for a debug build on a loaded
//! 2-core machine) and with what (408, a close, RST_STREAM, ...); that the server's
//! `spindle` threads never exceed 8 (plus its watchdog), its descriptors return to
//! where they were and its peak RSS stays within what the buffers allow. A peer's end
//! is when the client saw the close or reset, or when the server shut its side of the
//! socket or let go of it (read from /proc/net/tcp every 200 ms: the only way to see a
//! client that reads nothing be cut, as the server's FIN waits behind the unread bytes).
//!
//! It prints one `SLOW` line per kind, the probes' worst latencies and the server's RSS,
//! threads and descriptors before, at the peak and after (`cargo test --test
//! hostile_slow_peers -- --nocapture`). About 20 s; every socket and the server process
//! are closed at the end.
mod h2_attack_support;
#[path = "../benches/common/slow_peers.rs"]
mod slow_peers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use h2_attack_support::{probe_h1, probe_h2, usage, ServerProcess};
use slow_peers::{
    h2_open_streams, h2_preface, h2_read_until, h2_request, server_open_ports, Driver, End, H2Log,
    H2Reader, Peer, ReadPolicy, Spec, StreamEnd,
};
use spindle::h2::hpack::Encoder;

const SERVER: &str = "slow_peers_server_process";

/// The server under test (run in a child process by the test below; does nothing when
/// run by itself).
#[test]
#[ignore = "the server process of the slow-peer test: it starts it itself"]
fn slow_peers_server_process() {
    h2_attack_support::serve_if_requested();
}

// The server's settings, chosen so that each bound fires within a few seconds.
const THREADS: usize = 8;
const LOOPS: usize = 2;
const HEAD_TIMEOUT: f64 = 3.0;
const BODY_RATE: u64 = 1000;
const BODY_WINDOW: f64 = 4.0;
const WRITE_TIMEOUT: f64 = 5.0;
const WRITE_RATE: u64 = 1_000_000;
const WRITE_WINDOW: f64 = 5.0;
const IDLE_TIMEOUT: f64 = 3.0;
/// Longer than the test: a cut it makes would be a cut by the wrong bound.
const READ_TIMEOUT: f64 = 30.0;
const BODY_BUFFER: usize = 64 * 1024;
const WRITE_BUFFER: usize = 256 * 1024;

/// A bound may fire this much early (timer ticks of 100 ms, sampling).
const EARLY: f64 = 0.3;
/// And this much late.
const SLACK: f64 = 2.0;
/// Every probe's answer within this.
const PROMPT: Duration = Duration::from_secs(1);

/// The answers the never-reading clients ask for: two of `BIG` bytes.
const BIG: usize = 120_000;
/// When the late readers read.
const LATE_READ: f64 = 3.5;
/// When the clients that never read finally drain what reached them (to show it was
/// cut short), well after their bound.
const FINAL_READ: f64 = 10.0;
/// The large answer the slow readers take, and how fast.
const HUGE: usize = 4_000_000;
const SLOW_READ_RATE: u64 = 64 * 1024;
/// H2: connections × streams.
const H2_CONNS: usize = 50;
const H2_STREAMS: u32 = 40;
/// The observation ends at the latest this long after the peers start.
const OBSERVE: Duration = Duration::from_secs(16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    BodyIgnored,
    BodyRead,
    BodyChunked,
    UpgradeBody,
    NeverReads,
    LateReads,
    SlowReads,
    Slowloris,
    H2Streams,
}

const KINDS: [Kind; 9] = [
    Kind::BodyIgnored,
    Kind::BodyRead,
    Kind::BodyChunked,
    Kind::UpgradeBody,
    Kind::NeverReads,
    Kind::LateReads,
    Kind::SlowReads,
    Kind::Slowloris,
    Kind::H2Streams,
];

impl Kind {
    fn count(self) -> usize {
        match self {
            Kind::BodyIgnored => 150,
            Kind::BodyRead => 25,
            Kind::BodyChunked => 25,
            Kind::UpgradeBody => 10,
            Kind::NeverReads => 190,
            Kind::LateReads => 10,
            Kind::SlowReads => 3,
            Kind::Slowloris => 1000,
            Kind::H2Streams => H2_CONNS,
        }
    }

    /// Its name in `SPINDLE_SLOW_ONLY`.
    fn short(self) -> &'static str {
        match self {
            Kind::BodyIgnored => "body-ignored",
            Kind::BodyRead => "body-read",
            Kind::BodyChunked => "body-chunked",
            Kind::UpgradeBody => "upgrade",
            Kind::NeverReads => "never-reads",
            Kind::LateReads => "late-reads",
            Kind::SlowReads => "slow-reads",
            Kind::Slowloris => "slowloris",
            Kind::H2Streams => "h2-streams",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::BodyIgnored => "body trickled to a handler that does not read it",
            Kind::BodyRead => "body trickled to a handler that reads it",
            Kind::BodyChunked => "chunked body trickled to a handler that reads it",
            Kind::UpgradeBody => "Upgrade: h2c body trickled",
            Kind::NeverReads => "never reads its pipelined answers (within write_buffer)",
            Kind::LateReads => "reads its pipelined answers 3.5 s late",
            Kind::SlowReads => "reads an answer larger than write_buffer at 64 KiB/s",
            Kind::Slowloris => "slowloris head",
            Kind::H2Streams => "h2c connection with 40 streams without DATA",
        }
    }

    /// The bound that must end it, and the window (seconds from the peer's start).
    fn bound(self) -> (&'static str, f64, f64) {
        let body = BODY_WINDOW; // a trickle of 1 B/s earns 1 ms a byte at 1000 B/s
        match self {
            Kind::BodyIgnored | Kind::BodyRead | Kind::BodyChunked | Kind::UpgradeBody => {
                ("min_body_rate", body - EARLY, body + SLACK)
            }
            // The loop's write-out: whichever of write_timeout and min_write_rate
            // fires first; the ~100 kB the socket took earn 0.1 s at 1 MB/s.
            Kind::NeverReads => (
                "write_timeout / min_write_rate",
                WRITE_TIMEOUT.min(WRITE_WINDOW) - EARLY,
                WRITE_TIMEOUT.max(WRITE_WINDOW + 0.3) + SLACK,
            ),
            Kind::LateReads => (
                "idle_timeout after its answers",
                LATE_READ + IDLE_TIMEOUT - EARLY,
                LATE_READ + IDLE_TIMEOUT + SLACK,
            ),
            // Reading r of a rate R with window W and B bytes taken at once: cut at
            // (W + B/R) / (1 - r/R); B is at most ~100 kB + write_buffer.
            Kind::SlowReads => {
                let r = SLOW_READ_RATE as f64 / WRITE_RATE as f64;
                let b = (100_000 + WRITE_BUFFER) as f64 / WRITE_RATE as f64;
                (
                    "min_write_rate",
                    WRITE_WINDOW - EARLY,
                    (WRITE_WINDOW + b) / (1.0 - r) + SLACK,
                )
            }
            Kind::Slowloris => ("head_timeout", HEAD_TIMEOUT - EARLY, HEAD_TIMEOUT + SLACK),
            Kind::H2Streams => ("min_body_rate per stream", body - EARLY, body + SLACK),
        }
    }

    fn spec(self) -> Spec {
        let ones = |b: u8| vec![b; 60];
        let base = Spec::quiet(self as usize);
        let big = format!("GET /big?n={BIG} HTTP/1.1\r\nHost: a\r\n\r\n");
        match self {
            Kind::BodyIgnored => Spec {
                first: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx".to_vec(),
                trickle: ones(b'x'),
                ..base
            },
            Kind::BodyRead => Spec {
                first: b"POST /hold HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx"
                    .to_vec(),
                trickle: ones(b'x'),
                ..base
            },
            Kind::BodyChunked => Spec {
                first: b"POST /hold HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nf4240\r\nx"
                    .to_vec(),
                trickle: ones(b'x'),
                ..base
            },
            Kind::UpgradeBody => Spec {
                // HTTP2-Settings: SETTINGS_MAX_CONCURRENT_STREAMS = 100, base64url.
                first: b"POST /hold HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 1000\r\n\r\nx"
                    .to_vec(),
                trickle: ones(b'x'),
                ..base
            },
            Kind::NeverReads => Spec {
                small_window: true,
                first: big.repeat(2).into_bytes(),
                read: ReadPolicy::After(Duration::from_secs_f64(FINAL_READ)),
                peek_after: Some(Duration::from_millis(1500)),
                ..base
            },
            Kind::LateReads => Spec {
                small_window: true,
                first: big.repeat(2).into_bytes(),
                read: ReadPolicy::After(Duration::from_secs_f64(LATE_READ)),
                peek_after: Some(Duration::from_millis(1500)),
                ..base
            },
            Kind::SlowReads => Spec {
                small_window: true,
                first: format!("GET /big?n={HUGE} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes(),
                read: ReadPolicy::AtRate(SLOW_READ_RATE),
                ..base
            },
            Kind::Slowloris => Spec {
                first: b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".to_vec(),
                trickle: ones(b'a'),
                ..base
            },
            Kind::H2Streams => Spec {
                first: h2_open_streams(H2_STREAMS, "POST", "/hold"),
                h2: true,
                ..base
            },
        }
    }
}

fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ------------------------------------------------------------ the server, from /proc

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    threads: u64,
    /// Threads named `spindle` (the engine's; its watchdog is `spindle-watchdog`).
    spindle_threads: u64,
    watchdog_threads: u64,
    fds: usize,
}

fn sample(pid: u32) -> Sample {
    let u = usage(pid);
    let (mut spindle, mut watchdog) = (0, 0);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            match comm.trim() {
                "spindle" => spindle += 1,
                c if c.starts_with("spindle-watch") => watchdog += 1,
                _ => {}
            }
        }
    }
    Sample {
        rss_kib: u.rss_kib,
        threads: u.threads,
        spindle_threads: spindle,
        watchdog_threads: watchdog,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0),
    }
}

impl Sample {
    fn show(&self) -> String {
        format!(
            "RSS {:.1} MiB, {} threads ({} spindle, {} watchdog), {} descriptors",
            self.rss_kib as f64 / 1024.0,
            self.threads,
            self.spindle_threads,
            self.watchdog_threads,
            self.fds
        )
    }
}

#[derive(Default)]
struct Watch {
    peak: Sample,
    samples: usize,
    /// Client ports the server had open (not ended) at some sample.
    held: HashSet<u16>,
    /// When a port open before was first seen ended by the server.
    released: HashMap<u16, Instant>,
}

/// Samples the server every 200 ms: its figures and the connections it holds.
struct Monitor {
    stop: Arc<AtomicBool>,
    /// When the clients closed their sockets: a release after it is not a cut.
    stopped_clients: Mutex<Option<Instant>>,
    watch: Arc<Mutex<Watch>>,
    handle: Option<JoinHandle<()>>,
}

impl Monitor {
    fn start(pid: u32, port: u16) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let watch = Arc::new(Mutex::new(Watch::default()));
        let (stop2, watch2) = (stop.clone(), watch.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let s = sample(pid);
                let now_held = server_open_ports(port);
                let now = Instant::now();
                let mut w = watch2.lock().unwrap();
                w.samples += 1;
                w.peak.rss_kib = w.peak.rss_kib.max(s.rss_kib);
                w.peak.threads = w.peak.threads.max(s.threads);
                w.peak.spindle_threads = w.peak.spindle_threads.max(s.spindle_threads);
                w.peak.watchdog_threads = w.peak.watchdog_threads.max(s.watchdog_threads);
                w.peak.fds = w.peak.fds.max(s.fds);
                let gone: Vec<u16> = w
                    .held
                    .iter()
                    .filter(|p| !now_held.contains(p) && !w.released.contains_key(p))
                    .copied()
                    .collect();
                for p in gone {
                    w.released.insert(p, now);
                }
                w.held.extend(now_held);
                drop(w);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Monitor {
            stop,
            stopped_clients: Mutex::new(None),
            watch,
            handle: Some(handle),
        }
    }

    fn released(&self, port: u16) -> Option<Instant> {
        self.watch.lock().unwrap().released.get(&port).copied()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// -------------------------------------------------------------------------- probes

#[derive(Debug, Default)]
struct ProbeLog {
    asked: usize,
    answered: usize,
    worst: Duration,
    /// (seconds since the probes started, latency) of the worst.
    worst_at: f64,
    slow: usize,
    failures: Vec<String>,
}

impl ProbeLog {
    fn record(&mut self, t0: Instant, started: Instant, result: Result<(), String>) {
        let took = started.elapsed();
        self.asked += 1;
        if took > self.worst {
            self.worst = took;
            self.worst_at = started.duration_since(t0).as_secs_f64();
        }
        if took > PROMPT {
            self.slow += 1;
        }
        match result {
            Ok(()) => self.answered += 1,
            Err(e) => {
                if self.failures.len() < 3 {
                    self.failures.push(format!(
                        "at {:.1} s: {e}",
                        started.duration_since(t0).as_secs_f64()
                    ));
                }
            }
        }
    }
}

/// Every request gets at most this long (so a stalled server cannot hang the test).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s =
        TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(PROBE_TIMEOUT)).ok();
    s.set_write_timeout(Some(PROBE_TIMEOUT)).ok();
    Ok(s)
}

fn h1_get(s: &mut TcpStream, close: bool) -> Result<(), String> {
    let req: &[u8] = if close {
        b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: p\r\n\r\n"
    };
    s.write_all(req).map_err(|e| format!("write: {e}"))?;
    let until = Instant::now() + PROBE_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !(got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"\r\n\r\nhello\n")) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer within {PROBE_TIMEOUT:?}"));
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&got))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer within {PROBE_TIMEOUT:?}"))
            }
            Err(e) => return Err(format!("read: {e} after {} bytes", got.len())),
        }
    }
    Ok(())
}

/// An HTTP/2 connection for probes.
struct H2Probe {
    sock: TcpStream,
    enc: Encoder,
    reader: H2Reader,
    log: H2Log,
    next: u32,
}

impl H2Probe {
    fn open(addr: SocketAddr) -> Result<H2Probe, String> {
        let mut sock = connect(addr)?;
        sock.write_all(&h2_preface())
            .map_err(|e| format!("preface: {e}"))?;
        Ok(H2Probe {
            sock,
            enc: Encoder::new(),
            reader: H2Reader::new(),
            log: H2Log::default(),
            next: 1,
        })
    }

    fn get(&mut self) -> Result<(), String> {
        let id = self.next;
        self.next += 2;
        let req = h2_request(&mut self.enc, id, "GET", "/", true);
        self.sock
            .write_all(&req)
            .map_err(|e| format!("write: {e}"))?;
        let ended = |l: &H2Log| l.streams.get(&id).is_some_and(|s| s.end.is_some());
        h2_read_until(
            &mut self.sock,
            &mut self.reader,
            &mut self.log,
            PROBE_TIMEOUT,
            ended,
        );
        match self.log.streams.get(&id) {
            Some(s) if s.end.is_some() && s.status == Some(200) && s.data == 6 => Ok(()),
            None => Err(format!("stream {id}: no answer within {PROBE_TIMEOUT:?}")),
            s => Err(format!(
                "stream {id}: {s:?}, GOAWAY {:?}, broken {:?}",
                self.log.goaway, self.log.broken
            )),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum ProbeKind {
    H1New,
    H1Kept,
    H2New,
    H2Kept,
}

impl ProbeKind {
    fn name(self) -> &'static str {
        match self {
            ProbeKind::H1New => "HTTP/1.1, new connections",
            ProbeKind::H1Kept => "HTTP/1.1, one kept-alive connection",
            ProbeKind::H2New => "HTTP/2, new connections",
            ProbeKind::H2Kept => "HTTP/2, one kept-alive connection",
        }
    }
}

struct Probes {
    stop: Arc<AtomicBool>,
    handles: Vec<(ProbeKind, JoinHandle<ProbeLog>)>,
}

impl Probes {
    fn start(addr: SocketAddr) -> Probes {
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let kinds = [
            ProbeKind::H1New,
            ProbeKind::H1Kept,
            ProbeKind::H2New,
            ProbeKind::H2Kept,
        ];
        let handles = kinds
            .into_iter()
            .map(|kind| {
                let stop = stop.clone();
                let h = std::thread::spawn(move || {
                    let mut log = ProbeLog::default();
                    let mut h1: Option<TcpStream> = None;
                    let mut h2: Option<H2Probe> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let r = match kind {
                            ProbeKind::H1New => {
                                connect(addr).and_then(|mut s| h1_get(&mut s, true))
                            }
                            ProbeKind::H1Kept => {
                                let r = match h1.take() {
                                    Some(s) => Ok(s),
                                    None => connect(addr),
                                }
                                .and_then(|mut s| h1_get(&mut s, false).map(|()| s));
                                r.map(|s| h1 = Some(s))
                            }
                            ProbeKind::H2New => H2Probe::open(addr).and_then(|mut c| c.get()),
                            ProbeKind::H2Kept => {
                                let r = match h2.take() {
                                    Some(c) => Ok(c),
                                    None => H2Probe::open(addr),
                                }
                                .and_then(|mut c| c.get().map(|()| c));
                                r.map(|c| h2 = Some(c))
                            }
                        };
                        log.record(t0, t, r);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    log
                });
                (kind, h)
            })
            .collect();
        Probes { stop, handles }
    }

    fn finish(self) -> Vec<(ProbeKind, ProbeLog)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|(k, h)| (k, h.join().expect("a probe thread panicked")))
            .collect()
    }
}

// ----------------------------------------------------------------------- verdicts

/// When and how one HTTP/1.1 peer (or HTTP/2 connection) ended: the client's view or
/// the server's release of its socket, whichever came first.
fn ended(peer: &Peer, monitor: &Monitor) -> Option<(Instant, &'static str)> {
    let stopped = monitor
        .stopped_clients
        .lock()
        .unwrap()
        .unwrap_or_else(Instant::now);
    let client = peer.end.map(|(t, how)| {
        (
            t,
            match how {
                End::Eof => "close",
                End::Reset => "reset",
                End::WriteFailed => "close (a write failed)",
            },
        )
    });
    // Not what the server did once the driver closed its own sockets.
    let server = monitor
        .released(peer.port)
        .filter(|t| *t < stopped)
        .map(|t| (t, "close (server side)"));
    match (client, server) {
        (Some(c), Some(s)) => Some(if s.0 < c.0 { s } else { c }),
        (c, s) => c.or(s),
    }
}

struct Verdict {
    line: String,
    problems: Vec<String>,
}

/// Collects what a kind's peers did and what was wrong with it.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, usize>,
    times: Vec<f64>,
    problems: BTreeMap<String, (usize, String)>,
}

impl Tally {
    fn problem(&mut self, what: &str, example: String) {
        let e = self
            .problems
            .entry(what.to_string())
            .or_insert((0, example));
        e.0 += 1;
    }

    /// "n of N": streams for stream-level problems, peers otherwise.
    fn of(what: &str, peers: usize) -> usize {
        if what.starts_with("stream") {
            peers * H2_STREAMS as usize
        } else {
            peers
        }
    }
}

fn judge(kind: Kind, peers: &[&Peer], monitor: &Monitor) -> Verdict {
    let (bound, lo, hi) = kind.bound();
    let mut t = Tally::default();
    for p in peers {
        if let Some(e) = &p.error {
            t.problem("never connected", format!("port {}: {e}", p.port));
            continue;
        }
        let Some(start) = p.started else {
            t.problem("never sent its request", format!("port {}", p.port));
            continue;
        };
        if kind == Kind::H2Streams {
            judge_h2(p, start, monitor, lo, hi, &mut t);
            continue;
        }
        let status = p.status();
        let answer = status.map_or("no answer".to_string(), |s| s.to_string());
        let end = ended(p, monitor);
        match end {
            Some((at, how)) => {
                let secs = at.saturating_duration_since(start).as_secs_f64();
                t.times.push(secs);
                *t.outcomes
                    .entry(format!("{answer} then {how}"))
                    .or_default() += 1;
                if !(lo..=hi).contains(&secs) {
                    t.problem(
                        "ended outside its window",
                        format!("port {} ended at {secs:.2} s ({answer}, {how})", p.port),
                    );
                }
            }
            None => {
                *t.outcomes
                    .entry(format!("{answer}, still open"))
                    .or_default() += 1;
                t.problem(
                    "never ended",
                    format!("port {}: {answer}, {} bytes received", p.port, p.received),
                );
            }
        }
        // What it must have been told.
        let ok = match kind {
            // A handler that ignores the body may have answered before the loop cut
            // the drain; otherwise the loop cut the body before the handler ran.
            Kind::BodyIgnored => matches!(status, None | Some(408) | Some(200)),
            Kind::BodyRead | Kind::BodyChunked => matches!(status, None | Some(408)),
            Kind::UpgradeBody => matches!(status, None | Some(408) | Some(101)),
            Kind::Slowloris => status == Some(408),
            // A reset (what the server does to a client past its write bound) throws
            // away what the client had not read yet, so a never-reader may see none of
            // its answer; it was sent (the unread bytes at 1.5 s below).
            Kind::NeverReads => status == Some(200) || matches!(p.end, Some((_, End::Reset))),
            Kind::LateReads | Kind::SlowReads => status == Some(200),
            Kind::H2Streams => true,
        };
        if !ok && end.is_some() {
            t.problem(
                "wrong answer",
                format!(
                    "port {}: {:?}",
                    p.port,
                    String::from_utf8_lossy(&p.head[..p.head.len().min(80)])
                ),
            );
        }
        // Its answers were sent at once (its handler ran and returned).
        if matches!(kind, Kind::NeverReads | Kind::LateReads) && p.peeked.unwrap_or(0) == 0 {
            t.problem(
                "no answer bytes waiting 1.5 s after asking",
                format!("port {}: {:?} unread bytes", p.port, p.peeked),
            );
        }
        match kind {
            Kind::NeverReads if p.end.is_some() && p.received >= 2 * BIG as u64 => t.problem(
                "was sent its answers whole, not cut",
                format!("port {}: {} bytes", p.port, p.received),
            ),
            Kind::LateReads if p.received < 2 * BIG as u64 => t.problem(
                "did not get its answers whole when it read",
                format!("port {}: {} bytes", p.port, p.received),
            ),
            Kind::SlowReads if p.received >= HUGE as u64 => t.problem(
                "was sent the whole large answer, not cut",
                format!("port {}: {} bytes", p.port, p.received),
            ),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for (what, (n, example)) in &t.problems {
        problems.push(format!(
            "{}: {n} of {} {what} (e.g. {example})",
            kind.name(),
            Tally::of(what, peers.len())
        ));
    }
    t.times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let times = if t.times.is_empty() {
        "none ended".to_string()
    } else {
        format!(
            "ended {} at {:.2}–{:.2} s (median {:.2} s)",
            t.times.len(),
            t.times[0],
            t.times[t.times.len() - 1],
            t.times[t.times.len() / 2]
        )
    };
    let outcomes: Vec<String> = t
        .outcomes
        .iter()
        .map(|(o, n)| format!("{o} ×{n}"))
        .collect();
    Verdict {
        line: format!(
            "SLOW {} [{}]: {times}; bound {bound}, window {lo:.1}–{hi:.1} s; {}; {}",
            kind.name(),
            peers.len(),
            outcomes.join(", "),
            if problems.is_empty() { "OK" } else { "FAILED" }
        ),
        problems,
    }
}

/// An h2c connection: every stream reset (or answered 408) by the body rate, then the
/// idle connection closed with GOAWAY.
fn judge_h2(p: &Peer, start: Instant, monitor: &Monitor, lo: f64, hi: f64, t: &mut Tally) {
    let mut last_end: Option<Instant> = None;
    for id in (0..H2_STREAMS).map(|i| 1 + 2 * i) {
        match p.h2.streams.get(&id).and_then(|s| s.end) {
            Some((at, how)) => {
                let secs = at.saturating_duration_since(start).as_secs_f64();
                t.times.push(secs);
                last_end = Some(last_end.map_or(at, |l: Instant| l.max(at)));
                let label = match how {
                    StreamEnd::Reset(code) => {
                        format!("RST_STREAM {}", h2_attack_support::code_name(code))
                    }
                    StreamEnd::Answered(s) => format!("stream answered {s}"),
                };
                if !matches!(how, StreamEnd::Reset(_) | StreamEnd::Answered(408)) {
                    t.problem(
                        "stream answered other than 408",
                        format!("port {} stream {id}: {label}", p.port),
                    );
                }
                *t.outcomes.entry(label).or_default() += 1;
                if !(lo..=hi).contains(&secs) {
                    t.problem(
                        "stream ended outside its window",
                        format!("port {} stream {id} at {secs:.2} s", p.port),
                    );
                }
            }
            None => {
                *t.outcomes.entry("stream still open".into()).or_default() += 1;
                t.problem("stream never ended", format!("port {} stream {id}", p.port));
            }
        }
    }
    if let Some(b) = &p.h2.broken {
        t.problem("undecodable frames", format!("port {}: {b}", p.port));
    }
    match (ended(p, monitor), last_end) {
        (Some((at, how)), Some(last)) => {
            let after = at.saturating_duration_since(last).as_secs_f64();
            let goaway =
                p.h2.goaway
                    .map(|(_, c, _)| h2_attack_support::code_name(c))
                    .unwrap_or_else(|| "no GOAWAY".into());
            *t.outcomes
                .entry(format!("connection: {goaway} then {how}"))
                .or_default() += 1;
            if !(IDLE_TIMEOUT - EARLY..=IDLE_TIMEOUT + SLACK).contains(&after) {
                t.problem(
                    "connection not closed idle_timeout after its last stream",
                    format!("port {}: {after:.2} s after", p.port),
                );
            }
        }
        (None, _) => {
            *t.outcomes
                .entry("connection still open".into())
                .or_default() += 1;
            t.problem("connection never closed", format!("port {}", p.port));
        }
        (Some(_), None) => {
            *t.outcomes
                .entry("connection closed with streams open".into())
                .or_default() += 1;
        }
    }
}

// --------------------------------------------------------------------------- test

/// Every kind, or those `SPINDLE_SLOW_ONLY` names (comma-separated short names such as
/// `slowloris,h2-streams`), to look at one kind of peer alone.
fn selected_kinds() -> Vec<Kind> {
    match std::env::var("SPINDLE_SLOW_ONLY") {
        Ok(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            let kinds: Vec<Kind> = KINDS
                .into_iter()
                .filter(|k| names.contains(&k.short()))
                .collect();
            assert!(!kinds.is_empty(), "SPINDLE_SLOW_ONLY names no kind: {list}");
            kinds
        }
        Err(_) => KINDS.to_vec(),
    }
}

/// Everything at once; see the file's header.
#[test]
fn slow_peers_never_hold_a_thread() {
    raise_fd_limit();
    let ms = |s: f64| format!("{}", (s * 1000.0) as u64);
    let server = ServerProcess::start(
        SERVER,
        &[
            ("SPINDLE_ATTACK_THREADS", &THREADS.to_string()),
            ("SPINDLE_ATTACK_LOOPS", &LOOPS.to_string()),
            ("SPINDLE_ATTACK_HEAD_TIMEOUT_MS", &ms(HEAD_TIMEOUT)),
            ("SPINDLE_ATTACK_IDLE_TIMEOUT_MS", &ms(IDLE_TIMEOUT)),
            ("SPINDLE_ATTACK_READ_TIMEOUT_MS", &ms(READ_TIMEOUT)),
            ("SPINDLE_ATTACK_WRITE_TIMEOUT_MS", &ms(WRITE_TIMEOUT)),
            ("SPINDLE_ATTACK_BODY_BUFFER", &BODY_BUFFER.to_string()),
            ("SPINDLE_ATTACK_WRITE_BUFFER", &WRITE_BUFFER.to_string()),
            (
                "SPINDLE_ATTACK_MIN_BODY_RATE",
                &format!("{BODY_RATE}/{}", ms(BODY_WINDOW)),
            ),
            (
                "SPINDLE_ATTACK_MIN_WRITE_RATE",
                &format!("{WRITE_RATE}/{}", ms(WRITE_WINDOW)),
            ),
        ],
    );
    let (addr, pid) = (server.addr, server.child_id());
    // Served before anything else happens (and every engine thread made so far).
    probe_h1(addr);
    probe_h2(addr);
    let before = sample(pid);
    let monitor = Monitor::start(pid, addr.port());
    let probes = Probes::start(addr);
    std::thread::sleep(Duration::from_millis(300));

    // Every kind in each batch of connections: round robin over the kinds.
    let kinds = selected_kinds();
    let mut queues: Vec<Vec<Spec>> = kinds
        .iter()
        .map(|k| (0..k.count()).map(|_| k.spec()).collect())
        .collect();
    let mut specs = Vec::new();
    while queues.iter().any(|q| !q.is_empty()) {
        for q in &mut queues {
            if let Some(s) = q.pop() {
                specs.push(s);
            }
        }
    }
    let total = specs.len();
    let t0 = Instant::now();
    let driver = Driver::start(addr, specs, None);

    // Until every peer has ended (and the never-readers have read what reached them),
    // or the observation time is over.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let open = driver.with(|peers| {
            peers
                .iter()
                .filter(|p| {
                    p.error.is_none()
                        && p.end.is_none()
                        && !(p.kind != Kind::H2Streams as usize
                            && p.kind != Kind::NeverReads as usize
                            && monitor.released(p.port).is_some())
                })
                .count()
        });
        if open == 0 || t0.elapsed() >= OBSERVE {
            eprintln!(
                "observation over after {:.1} s, {open} of {total} peers still open",
                t0.elapsed().as_secs_f64()
            );
            break;
        }
    }
    let probe_logs = probes.finish();
    *monitor.stopped_clients.lock().unwrap() = Some(Instant::now());
    let peers = driver.stop();
    // Settle: every slow connection is gone; the server's descriptors come back.
    let settle = Instant::now();
    let mut after = sample(pid);
    while after.fds > before.fds + 8 && settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        after = sample(pid);
    }
    let peak = {
        let w = monitor.watch.lock().unwrap();
        Sample {
            rss_kib: usage(pid).hwm_kib.max(w.peak.rss_kib),
            ..w.peak
        }
    };
    let served_after = (
        std::panic::catch_unwind(|| probe_h1(addr)).is_ok(),
        std::panic::catch_unwind(|| probe_h2(addr)).is_ok(),
    );

    // ------------------------------------------------------------- the verdict
    let mut problems = Vec::new();
    for &kind in &kinds {
        let of_kind: Vec<&Peer> = peers.iter().filter(|p| p.kind == kind as usize).collect();
        let v = judge(kind, &of_kind, &monitor);
        eprintln!("{}", v.line);
        problems.extend(v.problems);
    }
    for (kind, log) in &probe_logs {
        eprintln!(
            "PROBE {}: {} asked, {} answered, {} over {PROMPT:?}, worst {:?} at {:.1} s{}",
            kind.name(),
            log.asked,
            log.answered,
            log.slow,
            log.worst,
            log.worst_at,
            if log.failures.is_empty() {
                String::new()
            } else {
                format!("; failures: {}", log.failures.join(" | "))
            }
        );
        if log.asked == 0 || log.answered < log.asked || log.worst > PROMPT {
            problems.push(format!(
                "probe {}: {} of {} answered, worst {:?} (bound {PROMPT:?}); {:?}",
                kind.name(),
                log.answered,
                log.asked,
                log.worst,
                log.failures
            ));
        }
    }
    eprintln!("SERVER before: {}", before.show());
    eprintln!("SERVER peak:   {} (RSS is VmHWM)", peak.show());
    eprintln!("SERVER after:  {}", after.show());
    if !(served_after.0 && served_after.1) {
        problems.push(format!(
            "after the slow peers: HTTP/1.1 served {}, HTTP/2 served {}",
            served_after.0, served_after.1
        ));
    }
    // The engine's threads: at most `handle_threads`, plus its watchdog; nothing else
    // in the server process grows.
    let others = before.threads - before.spindle_threads - before.watchdog_threads;
    if peak.spindle_threads > THREADS as u64 || peak.threads > others + THREADS as u64 + 1 {
        problems.push(format!(
            "threads: peak {} ({} spindle), bound {THREADS} spindle + 1 watchdog + {others}",
            peak.threads, peak.spindle_threads
        ));
    }
    // A descriptor per connection at most (slow peers, probes), and all back after.
    if peak.fds > before.fds + total + 16 {
        problems.push(format!(
            "descriptors: peak {} for {total} slow connections (before: {})",
            peak.fds, before.fds
        ));
    }
    if after.fds > before.fds + 8 {
        problems.push(format!(
            "descriptors: {} after the slow peers left (before: {})",
            after.fds, before.fds
        ));
    }
    // What the buffers allow: write_buffer per reader that stalls, body_buffer per
    // trickled body, plus 64 MiB for heads, streams, stacks and the allocator.
    let stalled =
        (Kind::NeverReads.count() + Kind::LateReads.count() + Kind::SlowReads.count()) as u64;
    let bodies = (Kind::BodyIgnored.count()
        + Kind::BodyRead.count()
        + Kind::BodyChunked.count()
        + Kind::UpgradeBody.count()) as u64;
    let budget_kib =
        (stalled * WRITE_BUFFER as u64 + bodies * BODY_BUFFER as u64) / 1024 + 64 * 1024;
    let growth = peak.rss_kib.saturating_sub(before.rss_kib);
    eprintln!(
        "SERVER RSS grew by {:.1} MiB at the peak (bound {:.1} MiB)",
        growth as f64 / 1024.0,
        budget_kib as f64 / 1024.0
    );
    if growth > budget_kib {
        problems.push(format!("RSS grew by {growth} KiB (bound {budget_kib} KiB)"));
    }
    if std::env::var_os("SPINDLE_SLOW_LOG").is_some() {
        let log = server.log();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!("server log (last 60 lines):");
        for l in &lines[lines.len().saturating_sub(60)..] {
            eprintln!("  {l}");
        }
    }
    drop(monitor);
    drop(server);
    assert!(
        problems.is_empty(),
        "slow peers were not handled as issue 14 requires:\n  {}",
        problems.join("\n  ")
    );
}
