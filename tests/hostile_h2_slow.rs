//! Issue 14, HTTP/2 half: slow peers never hold a handler thread, and handler threads
//! are shared fairly among connections.
//!
//! Each test starts this test binary again running only `slow_server_process` (with
//! SPINDLE_ATTACK_SERVER set it serves until its stdin closes, with the settings given in
//! its environment: `SLOW_THREADS`, `SLOW_LOOPS`, `SLOW_BODY_BUFFER`, `SLOW_RATE`
//! (`bytes_per_second/window_ms` or `off`), `SLOW_BODY_TIMEOUT_MS`, `SLOW_IDLE_MS`), so its threads can
//! be read from /proc, then plays a slow client with hand-built frames and checks what a
//! user sees: the status, RST_STREAM code and body on the wire, when they come, other
//! clients answered meanwhile, the server's thread count, and its log.
mod h2_attack_support;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use h2_attack_support::*;
use spindle::h2::hpack::Decoder;
use spindle::http::StatusCode;
use spindle::server::{Handler, MinRate, Request, Response, Server};

const SERVER: &str = "slow_server_process";

/// The tests measure times on a shared 2-core machine: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server of these tests (run in a child process by the tests below; does nothing
/// when run by itself).
#[test]
#[ignore = "the server process of the slow-client tests: they start it themselves"]
fn slow_server_process() {
    serve_slow_if_requested();
}

// ------------------------------------------------------------------ server process

/// Handler runs of `/started` in this process.
static RUNS: AtomicU64 = AtomicU64::new(0);

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn query_ms(req: &Request) -> u64 {
    req.query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

/// Reads the whole body; on failure answers 500 with the error's io kind and the kind
/// of the `spindle::Error` inside it.
fn read_or_answer<'a>(req: &mut Request, res: Response<'a>) -> Option<(Vec<u8>, Response<'a>)> {
    let mut body = Vec::new();
    match req.read_to_end(&mut body) {
        Ok(_) => Some((body, res)),
        Err(e) => {
            let inner = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<spindle::Error>())
                .map(|s| s.kind());
            let text = format!("read failed: io={:?} spindle={inner:?}: {e}\n", e.kind());
            log::info!("target: {text}");
            res.with_status(StatusCode::INTERNAL_SERVER_ERROR)
                .send(text.as_bytes())
                .ok();
            None
        }
    }
}

/// - `/` answers `hello\n` (the probes of h2_attack_support expect it);
/// - `/hold` reads the body to its end and answers `held N\n`;
/// - `/work?ms=M` sleeps M ms (default 50) and answers `worked\n`;
/// - `/started` records when it started and how many times it ran, reads the body and
///   answers `started=<unix µs> runs=<n> len=<body length>`;
/// - `/late?ms=M` sleeps M ms before it reads the body, then answers `late N\n`;
/// - `check_continue` refuses `/refuse` with 417.
struct Target;

impl Handler for Target {
    fn handle(&self, mut req: Request, res: Response) {
        match req.path() {
            "/hold" => {
                if let Some((body, res)) = read_or_answer(&mut req, res) {
                    res.send(format!("held {}\n", body.len()).as_bytes()).ok();
                }
            }
            "/work" => {
                std::thread::sleep(Duration::from_millis(query_ms(&req)));
                res.send(b"worked\n").ok();
            }
            "/started" => {
                let started = unix_micros();
                let runs = RUNS.fetch_add(1, Ordering::AcqRel) + 1;
                if let Some((body, res)) = read_or_answer(&mut req, res) {
                    let text = format!("started={started} runs={runs} len={}", body.len());
                    res.send(text.as_bytes()).ok();
                }
            }
            "/late" => {
                std::thread::sleep(Duration::from_millis(query_ms(&req)));
                if let Some((body, res)) = read_or_answer(&mut req, res) {
                    res.send(format!("late {}\n", body.len()).as_bytes()).ok();
                }
            }
            _ => {
                res.send(b"hello\n").ok();
            }
        }
    }

    fn check_continue(&self, req: &Request) -> StatusCode {
        if req.path() == "/refuse" {
            StatusCode::EXPECTATION_FAILED
        } else {
            StatusCode::CONTINUE
        }
    }
}

fn serve_slow_if_requested() {
    if std::env::var(SERVER_ENV).is_err() {
        return;
    }
    env_logger::Builder::new()
        .parse_filters("spindle=debug,hostile_h2_slow=info")
        .target(env_logger::Target::Stderr)
        .format_timestamp_millis()
        .init();
    let var = |name: &str| std::env::var(name).ok();
    let num =
        |name: &str, default: usize| var(name).map(|v| v.parse().expect(name)).unwrap_or(default);
    let mut server = Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(num("SLOW_LOOPS", 2));
    if let Some(n) = var("SLOW_BODY_BUFFER") {
        server = server.body_buffer(n.parse().unwrap());
    }
    match var("SLOW_RATE").as_deref() {
        None => {}
        Some("off") => server = server.min_body_rate(None),
        Some(rate) => {
            let (bps, ms) = rate.split_once('/').expect("SLOW_RATE=bps/window_ms");
            server = server.min_body_rate(Some(MinRate::new(
                bps.parse().unwrap(),
                Duration::from_millis(ms.parse().unwrap()),
            )));
        }
    }
    if let Some(ms) = var("SLOW_IDLE_MS") {
        server = server.idle_timeout(Some(Duration::from_millis(ms.parse().unwrap())));
    }
    if let Some(ms) = var("SLOW_BODY_TIMEOUT_MS") {
        server = server.body_timeout(Some(Duration::from_millis(ms.parse().unwrap())));
    }
    let listening = server
        .handle_threads(Target, num("SLOW_THREADS", 8))
        .unwrap();
    println!("\n{PORT_LINE}{}", listening.local_addr().port());
    io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    listening.close();
}

// ------------------------------------------------------------------ client

/// What the server answered on one stream.
#[derive(Debug, Default)]
struct Reply {
    /// Informational statuses (100).
    interim: Vec<u16>,
    status: Option<u16>,
    body: Vec<u8>,
    /// END_STREAM was received.
    ended: bool,
    /// The RST_STREAM code, if the stream was reset.
    rst: Option<u32>,
    /// When the reply was complete (ended or reset).
    done_at: Option<Instant>,
}

impl Reply {
    fn done(&self) -> bool {
        self.ended || self.rst.is_some()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/2 client that keeps each stream's status, body and reset code.
struct Client {
    c: RawH2,
    dec: Decoder,
    block: Option<(u32, u8, Vec<u8>)>,
    replies: HashMap<u32, Reply>,
    /// (stream, increment) of the WINDOW_UPDATE frames received.
    window_updates: Vec<(u32, u32)>,
    closed: bool,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Client {
        let mut c = RawH2::handshake(addr, &[]);
        c.send(&settings_ack()).unwrap();
        Client {
            c,
            dec: Decoder::new(),
            block: None,
            replies: HashMap::new(),
            window_updates: Vec::new(),
            closed: false,
        }
    }

    /// Opens stream `id` with `method path` and the `extra` fields.
    fn open(&mut self, id: u32, method: &str, path: &str, extra: &[(&str, &str)], end: bool) {
        let block = self.c.request_block(method, path, extra);
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        self.c.send(&frame(HEADERS, flags, id, &block)).unwrap();
    }

    fn data(&mut self, id: u32, bytes: &[u8], end: bool) {
        let flags = if end { END_STREAM } else { 0 };
        self.c.send(&frame(DATA, flags, id, bytes)).unwrap();
    }

    fn reply(&self, id: u32) -> &Reply {
        static NONE: std::sync::OnceLock<Reply> = std::sync::OnceLock::new();
        self.replies
            .get(&id)
            .unwrap_or_else(|| NONE.get_or_init(Reply::default))
    }

    /// Reads frames until `stop` holds, the server closes, or `timeout` passes; true
    /// when `stop` held.
    fn pump(&mut self, timeout: Duration, stop: impl Fn(&Client) -> bool) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if stop(self) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed {
                return false;
            }
            self.c
                .sock
                .set_read_timeout(Some(
                    left.clamp(Duration::from_millis(1), Duration::from_millis(50)),
                ))
                .unwrap();
            match self.c.read_frame() {
                Ok(Some(f)) => self.record(f),
                Ok(None) => self.closed = true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading from the server: {e}"),
            }
        }
    }

    fn record(&mut self, f: Frame) {
        let now = Instant::now();
        match f.kind {
            RST_STREAM => {
                let r = self.replies.entry(f.stream).or_default();
                r.rst = Some(f.code());
                r.done_at.get_or_insert(now);
            }
            WINDOW_UPDATE => {
                let inc = u32::from_be_bytes(f.payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                self.window_updates.push((f.stream, inc));
            }
            DATA => {
                let r = self.replies.entry(f.stream).or_default();
                r.body.extend_from_slice(&f.payload);
                if f.flags & END_STREAM != 0 {
                    r.ended = true;
                    r.done_at.get_or_insert(now);
                }
            }
            HEADERS | CONTINUATION => {
                let (stream, flags, mut block) = match (f.kind, self.block.take()) {
                    (CONTINUATION, Some(b)) => b,
                    _ => (f.stream, f.flags, Vec::new()),
                };
                let mut frag: &[u8] = &f.payload;
                if f.kind == HEADERS {
                    if f.flags & 0x8 != 0 {
                        let pad = frag[0] as usize;
                        frag = &frag[1..frag.len() - pad];
                    }
                    if f.flags & 0x20 != 0 {
                        frag = &frag[5..];
                    }
                }
                block.extend_from_slice(frag);
                if f.flags & END_HEADERS == 0 {
                    self.block = Some((stream, flags, block));
                    return;
                }
                let fields = self.dec.decode_to_vec(&block).expect("server's HPACK");
                let r = self.replies.entry(stream).or_default();
                if let Some(st) = fields.iter().find(|f| f.name.as_bytes() == b":status") {
                    let s: u16 = std::str::from_utf8(st.value.as_bytes())
                        .unwrap()
                        .parse()
                        .unwrap();
                    if s < 200 {
                        r.interim.push(s);
                    } else {
                        r.status = Some(s);
                    }
                }
                if flags & END_STREAM != 0 {
                    r.ended = true;
                    r.done_at.get_or_insert(now);
                }
            }
            _ => {}
        }
    }
}

/// Parses `key=value` words of a `/started` answer.
fn words(text: &str) -> HashMap<String, u64> {
    text.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Engine threads of a server at rest: one per loop plus a spare.
fn engine_threads_at_rest(loops: u64) -> u64 {
    loops + 1
}

// ------------------------------------------------------------------ tests

/// `conns` prior-knowledge connections each open 40 `POST /hold` streams and send no
/// DATA, against `handle_threads(h, 8)` with a minimum rate of 500 B/s and 2 s of slack:
/// throughout, a new connection's `GET /` over HTTP/1.1 and over HTTP/2 is answered
/// within 1 s and the server has at most 8 engine threads; every slow stream is answered
/// 408 and reset with NO_ERROR once the rate's slack is spent (not before 2 s, by 4 s),
/// and the server logs why.
fn streams_without_data(conns: usize) {
    let _serial = serial();
    const STREAMS: u32 = 40;
    let window = Duration::from_secs(2);
    let server = ServerProcess::start(
        SERVER,
        &[
            ("SLOW_THREADS", "8"),
            ("SLOW_LOOPS", "2"),
            ("SLOW_RATE", "500/2000"),
            ("SLOW_IDLE_MS", "1500"),
        ],
    );
    let before = server.usage();
    // Threads of the process that are not the engine's (main, test harness, watchdog).
    let others = before.threads.saturating_sub(engine_threads_at_rest(2));
    let t = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..conns {
        let mut c = RawH2::handshake(server.addr, &[]);
        let mut bytes = settings_ack();
        for i in 0..STREAMS {
            bytes.extend(c.request(1 + 2 * i, "POST", "/hold", false));
        }
        c.send(&bytes).unwrap();
        attackers.push(c);
    }
    let mut worst = Duration::ZERO;
    let mut most_threads = 0;
    let mut rounds = 0;
    let mut early = Seen::default();
    while t.elapsed() < window - Duration::from_millis(400) {
        worst = worst.max(probe_h1(server.addr)).max(probe_h2(server.addr));
        most_threads = most_threads.max(server.usage().threads);
        rounds += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not before the rate allows: the slack is not spent yet.
    attackers[0].observe(&mut early, Duration::from_millis(20), |_| false);
    assert!(
        early.statuses.is_empty() && early.rsts.is_empty(),
        "slow streams were cut before the rate's slack was spent: {}",
        early.describe()
    );
    let until = t + window + Duration::from_secs(2);
    for (n, c) in attackers.iter_mut().enumerate() {
        let mut seen = Seen::default();
        c.observe(
            &mut seen,
            until.saturating_duration_since(Instant::now()),
            |s| s.statuses.len() >= STREAMS as usize && s.rsts.len() >= STREAMS as usize,
        );
        for i in 0..STREAMS {
            let id = 1 + 2 * i;
            assert_eq!(
                seen.statuses.get(&id),
                Some(&408),
                "connection {n} stream {id}: {}",
                seen.describe()
            );
        }
        assert_eq!(seen.rsts.len(), STREAMS as usize, "{}", seen.describe());
        assert!(
            seen.rsts.iter().all(|r| r.1 == NO_ERROR),
            "connection {n}: {:?}",
            seen.rsts
        );
        most_threads = most_threads.max(server.usage().threads);
    }
    let ended = t.elapsed();
    // Each connection, left without a stream, is closed idle_timeout (1.5 s) after its
    // last 408, with GOAWAY NO_ERROR.
    let idle_until = Instant::now() + Duration::from_millis(1500 + 2000);
    for (n, c) in attackers.iter_mut().enumerate() {
        let mut seen = Seen::default();
        c.observe(
            &mut seen,
            idle_until.saturating_duration_since(Instant::now()),
            |s| s.closed,
        );
        assert!(
            seen.closed && seen.goaway_code() == Some(NO_ERROR),
            "connection {n} not closed idle_timeout after its last stream: {}",
            seen.describe()
        );
    }
    eprintln!(
        "  {conns} x {STREAMS} streams without DATA: {rounds} probe rounds, slowest {worst:?}; \
         engine threads at most {}; all answered 408 by {ended:?}",
        most_threads - others
    );
    Cost {
        name: "streams without DATA",
        before,
        after: server.usage(),
        wall: t.elapsed(),
    }
    .check(Duration::from_secs(10), 64);
    assert!(worst < Duration::from_secs(1), "a probe took {worst:?}");
    assert!(
        most_threads <= 8 + others,
        "the server ran {} engine threads (bound 8)",
        most_threads - others
    );
    server.expect_log_line(&["request body", "408"]);
    probes(server.addr, Duration::from_secs(1));
}

#[test]
fn ten_connections_of_streams_without_data_hold_no_thread_and_get_408() {
    streams_without_data(10);
}

#[test]
fn fifty_connections_of_streams_without_data_hold_no_thread_and_get_408() {
    streams_without_data(50);
}

/// `hogs` connections each with 100 streams whose handlers sleep 50 ms, on a server
/// whose handler threads they fill (`threads` threads, `loops` loops); then a second
/// client's single `GET /work` is answered after about one handler run (under 400 ms),
/// not after the hogs' queues (100 × 50 ms over at most 6 threads: over 800 ms).
fn fair_scheduling(threads: &str, loops: &str, hogs: usize) {
    let _serial = serial();
    let server = ServerProcess::start(SERVER, &[("SLOW_THREADS", threads), ("SLOW_LOOPS", loops)]);
    let mut busy = Vec::new();
    for _ in 0..hogs {
        let mut a = Client::connect(server.addr);
        for i in 0..100 {
            a.open(1 + 2 * i, "GET", "/work?ms=50", &[], true);
        }
        busy.push(a);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut b = Client::connect(server.addr);
    let t = Instant::now();
    b.open(1, "GET", "/work?ms=50", &[], true);
    assert!(
        b.pump(Duration::from_secs(10), |c| c.reply(1).done()),
        "no answer"
    );
    let waited = t.elapsed();
    assert_eq!(b.reply(1).status, Some(200), "{:?}", b.reply(1));
    for a in busy.iter_mut() {
        assert!(a.pump(Duration::from_secs(20), |c| (0..100)
            .all(|i| c.reply(1 + 2 * i).done())));
        for i in 0..100 {
            assert_eq!(a.reply(1 + 2 * i).status, Some(200), "stream {}", 1 + 2 * i);
        }
    }
    eprintln!(
        "  {hogs} connection(s) x 100 streams of 50 ms ({threads} threads, {loops} loops): \
         another client waited {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(400),
        "a new connection's request waited {waited:?} behind another connection's streams"
    );
}

#[test]
fn one_busy_connection_delays_another_by_about_one_handler_run() {
    fair_scheduling("4", "1", 1);
}

#[test]
fn three_busy_connections_delay_another_by_about_one_handler_run() {
    fair_scheduling("8", "2", 3);
}

/// A body sent one byte a second, before its handler runs (it is within `body_buffer`):
/// with a minimum rate of 100 B/s and 2 s of slack, the stream is answered 408 and reset
/// with NO_ERROR once the slack is spent (2 s plus a few bytes' worth), and the server
/// logs why.
#[test]
fn a_body_trickled_before_its_handler_runs_is_cut_by_the_rate() {
    let _serial = serial();
    let server = ServerProcess::start(SERVER, &[("SLOW_RATE", "100/2000")]);
    let mut c = Client::connect(server.addr);
    let t = Instant::now();
    c.open(1, "POST", "/hold", &[], false);
    while t.elapsed() < Duration::from_secs(6) && !c.reply(1).done() {
        c.data(1, b"x", false);
        c.pump(Duration::from_secs(1), |c| c.reply(1).done());
    }
    c.pump(Duration::from_secs(1), |c| c.reply(1).rst.is_some());
    let r = c.reply(1);
    let took = r.done_at.map(|at| at - t);
    eprintln!("  trickled body: {r:?} after {took:?}");
    assert_eq!(r.status, Some(408), "{r:?}");
    assert_eq!(r.rst, Some(NO_ERROR), "{r:?}");
    let took = took.unwrap();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "cut after {took:?}"
    );
    server.expect_log_line(&["request body", "too slow", "408"]);
}

/// A body whose first 16 bytes (`body_buffer`) come at once and the rest one byte a
/// second: the handler runs and reads, and its blocking read fails once the rate's slack
/// is spent, with an `io::Error` of kind `TimedOut` holding a `spindle::Error` of kind
/// `Timeout`; the handler's 500 goes out, the rest of the request is reset with
/// NO_ERROR, and the server logs why.
#[test]
fn a_body_trickled_while_its_handler_reads_fails_the_read_with_a_timeout() {
    let _serial = serial();
    let server = ServerProcess::start(
        SERVER,
        &[("SLOW_RATE", "100/2000"), ("SLOW_BODY_BUFFER", "16")],
    );
    let mut c = Client::connect(server.addr);
    let t = Instant::now();
    c.open(1, "POST", "/hold", &[], false);
    c.data(1, &[b'x'; 16], false);
    while t.elapsed() < Duration::from_secs(6) && !c.reply(1).done() {
        c.pump(Duration::from_secs(1), |c| c.reply(1).done());
        c.data(1, b"x", false);
    }
    c.pump(Duration::from_secs(1), |c| c.reply(1).rst.is_some());
    let r = c.reply(1);
    let took = r.done_at.map(|at| at - t);
    eprintln!(
        "  trickled body under a reading handler: {:?} {:?} after {took:?}",
        r.status,
        r.text()
    );
    assert_eq!(r.status, Some(500), "{r:?}");
    assert!(
        r.text().contains("io=TimedOut spindle=Some(Timeout)"),
        "{}",
        r.text()
    );
    assert_eq!(r.rst, Some(NO_ERROR), "{r:?}");
    let took = took.unwrap();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "cut after {took:?}"
    );
    server.expect_log_line(&["request body", "too slow"]);
}

/// `body_timeout` bounds a body that arrives fast enough for the rate: 100 bytes every
/// 200 ms with the rate off and a 1 s body timeout is answered 408 and reset after 1 s.
#[test]
fn body_timeout_bounds_a_waiting_body_whatever_its_rate() {
    let _serial = serial();
    let server = ServerProcess::start(
        SERVER,
        &[("SLOW_RATE", "off"), ("SLOW_BODY_TIMEOUT_MS", "1000")],
    );
    let mut c = Client::connect(server.addr);
    let t = Instant::now();
    c.open(1, "POST", "/hold", &[], false);
    while t.elapsed() < Duration::from_secs(4) && !c.reply(1).done() {
        c.data(1, &[b'x'; 100], false);
        c.pump(Duration::from_millis(200), |c| c.reply(1).done());
    }
    c.pump(Duration::from_secs(1), |c| c.reply(1).rst.is_some());
    let r = c.reply(1);
    let took = r.done_at.map(|at| at - t);
    eprintln!(
        "  body under body_timeout: status {:?} after {took:?}",
        r.status
    );
    assert_eq!(r.status, Some(408), "{r:?}");
    assert_eq!(r.rst, Some(NO_ERROR), "{r:?}");
    let took = took.unwrap();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "cut after {took:?}"
    );
    server.expect_log_line(&["request body", "408"]);
}

/// A body within `body_buffer` (4 × 1000 bytes, 300 ms apart): the handler runs once,
/// after the last piece was sent, and reads the body whole.
#[test]
fn a_small_body_sent_in_pieces_starts_its_handler_once_after_the_last_piece() {
    let _serial = serial();
    let server = ServerProcess::start(SERVER, &[]);
    let mut c = Client::connect(server.addr);
    c.open(1, "POST", "/started", &[], false);
    let mut last_sent = 0;
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        last_sent = unix_micros();
        c.data(1, &[b'a' + i; 1000], i == 3);
    }
    assert!(c.pump(Duration::from_secs(5), |c| c.reply(1).done()));
    let r = c.reply(1);
    assert_eq!(r.status, Some(200), "{r:?}");
    let w = words(&r.text());
    eprintln!(
        "  handler started {} µs after the last piece was sent: {}",
        w["started"] as i64 - last_sent as i64,
        r.text()
    );
    assert!(
        w["started"] >= last_sent,
        "the handler started before the last piece was sent: {}",
        r.text()
    );
    assert_eq!(w["runs"], 1, "{}", r.text());
    assert_eq!(w["len"], 4000, "{}", r.text());
}

/// `Expect: 100-continue` keeps its meaning with buffered bodies: `check_continue`
/// refuses `/refuse` with 417 before the client is told to send (no 100, and the
/// request side is reset with NO_ERROR), and accepts `/started` with a 100, after which
/// the body is buffered and the handler runs once, after its last piece, reading it
/// whole.
#[test]
fn expect_continue_is_decided_first_and_the_body_then_arrives_before_the_handler() {
    let _serial = serial();
    let server = ServerProcess::start(SERVER, &[]);
    let mut c = Client::connect(server.addr);
    let expect = [("expect", "100-continue")];
    c.open(1, "POST", "/refuse", &expect, false);
    assert!(c.pump(Duration::from_secs(5), |c| c.reply(1).rst.is_some()));
    let r = c.reply(1);
    assert_eq!(r.status, Some(417), "{r:?}");
    assert!(r.interim.is_empty(), "{r:?}");
    assert_eq!(r.rst, Some(NO_ERROR), "{r:?}");

    c.open(3, "POST", "/started", &expect, false);
    assert!(
        c.pump(Duration::from_secs(5), |c| !c.reply(3).interim.is_empty()),
        "no 100 Continue: {:?}",
        c.reply(3)
    );
    assert_eq!(c.reply(3).interim, [100]);
    let mut last_sent = 0;
    for i in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        last_sent = unix_micros();
        c.data(3, &[b'a'; 1000], i == 1);
    }
    assert!(c.pump(Duration::from_secs(5), |c| c.reply(3).done()));
    let r = c.reply(3);
    assert_eq!(r.status, Some(200), "{r:?}");
    let w = words(&r.text());
    assert!(
        w["started"] >= last_sent,
        "the handler started before the body was sent: {}",
        r.text()
    );
    assert_eq!(w["runs"], 1, "{}", r.text());
    assert_eq!(w["len"], 2000, "{}", r.text());
}

/// The rate counts only while someone waits for the client: a handler that sleeps 2.5 s
/// before reading (the client meanwhile has no window: the first 16 KiB filled it) is
/// not cut by a rate of 100 kB/s with 1 s of slack (a clock started at the head would
/// have expired after 1.2 s), and reads the whole 48 KiB.
#[test]
fn a_handler_that_reads_late_does_not_charge_the_client_for_the_wait() {
    let _serial = serial();
    let server = ServerProcess::start(
        SERVER,
        &[("SLOW_RATE", "100000/1000"), ("SLOW_BODY_BUFFER", "16384")],
    );
    let mut c = Client::connect(server.addr);
    c.open(1, "POST", "/late?ms=2500", &[], false);
    c.data(1, &[b'x'; 16384], false);
    // The handler's first read opens the stream's window.
    assert!(
        c.pump(Duration::from_secs(5), |c| c
            .window_updates
            .iter()
            .any(|w| w.0 == 1)),
        "no WINDOW_UPDATE for stream 1: {:?}",
        c.reply(1)
    );
    c.data(1, &[b'y'; 16384], false);
    c.data(1, &[b'z'; 16384], true);
    assert!(c.pump(Duration::from_secs(5), |c| c.reply(1).done()));
    let r = c.reply(1);
    assert_eq!(r.status, Some(200), "{r:?} {}", r.text());
    assert_eq!(r.text(), "late 49152\n");
}
