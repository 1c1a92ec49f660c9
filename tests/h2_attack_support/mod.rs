//! Support for tests/h2_attacks.rs: a spindle server in its own process (so its CPU time
//! and memory can be read from /proc), a raw HTTP/2 client that writes hand-built frames,
//! and the probes that check other clients are still served.
#![allow(dead_code)]
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle::h2::hpack::{Decoder, Encoder};
use spindle::server::{MinRate, Request, Response, Server};

/// Set in the environment of the server process.
pub const SERVER_ENV: &str = "SPINDLE_ATTACK_SERVER";
/// The line the server process prints with its port.
pub const PORT_LINE: &str = "SPINDLE_ATTACK_PORT=";
/// The client connection preface.
pub const MAGIC: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// ------------------------------------------------------------------ server process

/// The handler of the attacked server:
/// - `/` answers `hello\n`;
/// - `/big?n=N` streams N bytes in 16 KiB writes;
/// - `/hold` reads the request body to its end (blocks while the client sends none),
///   then answers with its length.
fn target(mut req: Request, res: Response) {
    match req.path() {
        "/big" => {
            let n: usize = req
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1 << 20);
            let mut res = match res.start() {
                Ok(r) => r,
                Err(_) => return,
            };
            let chunk = vec![b'x'; 16 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len());
                if let Err(e) = res.write_all(&chunk[..k]) {
                    log::info!("target: /big write failed after {} bytes: {e}", n - left);
                    // Not a complete body: cut the stream rather than end it.
                    res.abort();
                    return;
                }
                left -= k;
            }
        }
        "/hold" => {
            let mut body = Vec::new();
            match req.read_to_end(&mut body) {
                Ok(n) => {
                    res.send(format!("held {n}\n").as_bytes()).ok();
                }
                Err(e) => log::info!("target: /hold read failed: {e}"),
            }
        }
        _ => {
            res.send(b"hello\n").ok();
        }
    }
}

/// Runs the attacked server when this process was started as one (the environment
/// variable is set): prints its port, serves until stdin closes. Returns at once
/// otherwise.
pub fn serve_if_requested() {
    if std::env::var(SERVER_ENV).is_err() {
        return;
    }
    env_logger::Builder::new()
        .parse_filters("spindle=debug")
        .target(env_logger::Target::Stderr)
        .format_timestamp_millis()
        .init();
    let ms = |name: &str, default: u64| {
        Duration::from_millis(
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default),
        )
    };
    let mut server = Server::http("127.0.0.1:0")
        .unwrap()
        .write_timeout(Some(ms("SPINDLE_ATTACK_WRITE_TIMEOUT_MS", 1000)))
        .read_timeout(Some(ms("SPINDLE_ATTACK_READ_TIMEOUT_MS", 10_000)));
    // Issue 14's bounds, each changed only when its variable is set
    // (tests/hostile_slow_peers.rs): times in ms, buffers in bytes, a rate as
    // "BYTES_PER_SECOND/WINDOW_MS" or "off".
    let var = |name: &str| std::env::var(name).ok();
    let opt_ms = |name: &str| var(name).map(|v| Duration::from_millis(v.parse().unwrap()));
    let rate = |name: &str| {
        var(name).map(|v| {
            let (bps, window) = v.split_once('/')?;
            let window = Duration::from_millis(window.parse().unwrap());
            Some(MinRate::new(bps.parse().unwrap(), window))
        })
    };
    if let Some(t) = opt_ms("SPINDLE_ATTACK_HEAD_TIMEOUT_MS") {
        server = server.head_timeout(Some(t));
    }
    if let Some(t) = opt_ms("SPINDLE_ATTACK_IDLE_TIMEOUT_MS") {
        server = server.idle_timeout(Some(t));
    }
    if let Some(t) = opt_ms("SPINDLE_ATTACK_BODY_TIMEOUT_MS") {
        server = server.body_timeout(Some(t));
    }
    if let Some(n) = var("SPINDLE_ATTACK_BODY_BUFFER") {
        server = server.body_buffer(n.parse().unwrap());
    }
    if let Some(n) = var("SPINDLE_ATTACK_WRITE_BUFFER") {
        server = server.write_buffer(n.parse().unwrap());
    }
    if let Some(r) = rate("SPINDLE_ATTACK_MIN_BODY_RATE") {
        server = server.min_body_rate(r);
    }
    if let Some(r) = rate("SPINDLE_ATTACK_MIN_WRITE_RATE") {
        server = server.min_write_rate(r);
    }
    if let Ok(n) = std::env::var("SPINDLE_ATTACK_LOOPS") {
        server = server.event_loops(n.parse().unwrap());
    }
    let listening = match std::env::var("SPINDLE_ATTACK_THREADS") {
        Ok(n) => server.handle_threads(target, n.parse().unwrap()),
        Err(_) => server.handle(target), // the default thread budget
    }
    .unwrap();
    println!("\n{PORT_LINE}{}", listening.local_addr().port());
    io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    listening.close();
}

/// CPU time and memory of a process, from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system time of all its threads.
    pub cpu: Duration,
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS since start), KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
}

pub fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    Usage {
        cpu: Duration::from_millis(ticks * 1000 / hz),
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    }
}

/// A spindle server running in a child process (this test binary, re-executed to run
/// only the ignored test `server_test`). Killed by its PID when dropped.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    pub fn start(server_test: &str, env: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([server_test, "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(SERVER_ENV, "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting the server process");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
                log2.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness may have printed the test's name on the same line.
                if let Some((_, port)) = line.split_once(PORT_LINE) {
                    let _ = tx.send(port.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server process printed no port; its stderr:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        ServerProcess {
            stdin: child.stdin.take(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    pub fn usage(&self) -> Usage {
        usage(self.child.id())
    }

    /// The server process's PID.
    pub fn child_id(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the server's log has a line containing every one of
    /// `needles`; returns that line.
    pub fn wait_log_line(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Some(l.to_string());
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the log has a line with all of `needles` (within 3 s) and returns it.
    pub fn expect_log_line(&self, needles: &[&str]) -> String {
        match self.wait_log_line(needles, Duration::from_secs(3)) {
            Some(l) => l,
            None => panic!(
                "no server log line with {needles:?}; the log:\n{}",
                tail(&self.log(), 60)
            ),
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; then the PID we started is killed if needed.
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an attack cost the server, for the report.
pub struct Cost {
    pub name: &'static str,
    pub before: Usage,
    pub after: Usage,
    pub wall: Duration,
}

impl Cost {
    pub fn cpu(&self) -> Duration {
        self.after.cpu.saturating_sub(self.before.cpu)
    }
    /// Peak RSS during the attack above the RSS before it, KiB.
    pub fn peak_growth_kib(&self) -> u64 {
        self.after.hwm_kib.saturating_sub(self.before.rss_kib)
    }
    /// Prints the figures and asserts the bounds.
    pub fn check(&self, max_cpu: Duration, max_growth_mib: u64) {
        eprintln!(
            "ATTACK {}: server CPU {} ms over {} ms; RSS {} KiB -> {} KiB (peak {} KiB, +{} KiB); \
             threads {} -> {}",
            self.name,
            self.cpu().as_millis(),
            self.wall.as_millis(),
            self.before.rss_kib,
            self.after.rss_kib,
            self.after.hwm_kib,
            self.peak_growth_kib(),
            self.before.threads,
            self.after.threads,
        );
        assert!(
            self.cpu() < max_cpu,
            "{}: the server spent {:?} of CPU (bound {max_cpu:?})",
            self.name,
            self.cpu()
        );
        assert!(
            self.peak_growth_kib() < max_growth_mib * 1024,
            "{}: server RSS grew by {} KiB (bound {max_growth_mib} MiB)",
            self.name,
            self.peak_growth_kib()
        );
    }
}

// --------------------------------------------------------------------- frames

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

pub fn code_name(code: u32) -> String {
    spindle::h2::Reason::from(code).to_string()
}

/// One frame, as bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + payload.len());
    let len = payload.len() as u32;
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(kind);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in values {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub fn rst(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

pub fn ping(payload: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &payload)
}

/// A frame read from the server.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn code(&self) -> u32 {
        match self.kind {
            RST_STREAM => u32::from_be_bytes(self.payload[..4].try_into().unwrap()),
            GOAWAY => u32::from_be_bytes(self.payload[4..8].try_into().unwrap()),
            _ => panic!("no error code in {self:?}"),
        }
    }
}

/// What the server said to an attacker until it closed the connection (or the deadline).
#[derive(Debug, Default)]
pub struct Seen {
    pub frames: usize,
    /// (last stream id, error code)
    pub goaway: Option<(u32, u32)>,
    pub rsts: Vec<(u32, u32)>,
    pub statuses: HashMap<u32, u16>,
    pub data: HashMap<u32, usize>,
    pub ended: Vec<u32>,
    pub kinds: HashMap<u8, usize>,
    /// The server closed the connection (EOF or reset).
    pub closed: bool,
}

impl Seen {
    pub fn goaway_code(&self) -> Option<u32> {
        self.goaway.map(|g| g.1)
    }
    pub fn describe(&self) -> String {
        format!(
            "{} frames {:?}, GOAWAY {:?}, {} RST_STREAM (first {:?}), {} responses, closed {}",
            self.frames,
            self.kinds,
            self.goaway
                .map(|(l, c)| format!("last={l} {}", code_name(c))),
            self.rsts.len(),
            self.rsts.first(),
            self.statuses.len(),
            self.closed
        )
    }
}

/// A raw HTTP/2 client connection.
pub struct RawH2 {
    pub sock: TcpStream,
    pub enc: Encoder,
    dec: Decoder,
    buf: Vec<u8>,
    /// Header block being assembled (HEADERS without END_HEADERS).
    block: Option<(u32, u8, Vec<u8>)>,
}

impl RawH2 {
    pub fn connect(addr: SocketAddr) -> RawH2 {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        RawH2 {
            sock,
            enc: Encoder::new(),
            dec: Decoder::new(),
            buf: Vec::new(),
            block: None,
        }
    }

    /// Connects and sends the preface (magic + SETTINGS with `values`).
    pub fn handshake(addr: SocketAddr, values: &[(u16, u32)]) -> RawH2 {
        let mut c = RawH2::connect(addr);
        let mut out = MAGIC.to_vec();
        out.extend(settings(values));
        c.send(&out).expect("sending the preface");
        c
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// An HPACK block for a request (pseudo-headers, then `extra`).
    pub fn request_block(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut fields: Vec<(&[u8], &[u8], bool)> = vec![
            (b":method", method.as_bytes(), false),
            (b":scheme", b"http", false),
            (b":authority", b"127.0.0.1", false),
            (b":path", path.as_bytes(), false),
        ];
        for (k, v) in extra {
            fields.push((k.as_bytes(), v.as_bytes(), false));
        }
        let mut block = Vec::new();
        self.enc.encode(fields, &mut block);
        block
    }

    /// A whole HEADERS frame for a request.
    pub fn request(&mut self, stream: u32, method: &str, path: &str, end_stream: bool) -> Vec<u8> {
        let block = self.request_block(method, path, &[]);
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        frame(HEADERS, flags, stream, &block)
    }

    /// Reads one frame. `Ok(None)` when the server closed the connection.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Ok(Some(f));
                }
            }
            let mut chunk = [0u8; 65536];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads frames, recording them in `seen`, until `stop(seen)` is true, the server
    /// closes the connection, or `timeout` passes. Answers nothing.
    pub fn observe(&mut self, seen: &mut Seen, timeout: Duration, stop: impl Fn(&Seen) -> bool) {
        let until = Instant::now() + timeout;
        while !stop(seen) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.read_frame() {
                Ok(Some(f)) => self.record(seen, f),
                Ok(None) => {
                    seen.closed = true;
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return
                }
                Err(e) => panic!("reading from the server: {e}"),
            }
        }
    }

    /// Reads until the server closes the connection (bounded by `timeout`).
    pub fn observe_to_close(&mut self, timeout: Duration) -> Seen {
        let mut seen = Seen::default();
        self.observe(&mut seen, timeout, |_| false);
        seen
    }

    /// Reads until the server closes (5 s at most) and asserts it sent GOAWAY with
    /// `code` and closed; `what` names the case in failure messages.
    pub fn expect_goaway_and_close(&mut self, code: u32, what: &str) -> Seen {
        let seen = self.observe_to_close(Duration::from_secs(5));
        assert_eq!(
            seen.goaway_code(),
            Some(code),
            "{what}: {}",
            seen.describe()
        );
        assert!(seen.closed, "{what}: {}", seen.describe());
        seen
    }

    fn record(&mut self, seen: &mut Seen, f: Frame) {
        seen.frames += 1;
        *seen.kinds.entry(f.kind).or_default() += 1;
        match f.kind {
            GOAWAY => {
                let last = u32::from_be_bytes(f.payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                seen.goaway = Some((last, f.code()));
            }
            RST_STREAM => seen.rsts.push((f.stream, f.code())),
            DATA => {
                *seen.data.entry(f.stream).or_default() += f.payload.len();
                if f.flags & END_STREAM != 0 {
                    seen.ended.push(f.stream);
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
                if let Some(st) = fields.iter().find(|f| f.name.as_bytes() == b":status") {
                    let s: u16 = std::str::from_utf8(st.value.as_bytes())
                        .unwrap()
                        .parse()
                        .unwrap();
                    if s >= 200 {
                        seen.statuses.insert(stream, s);
                    }
                }
                if flags & END_STREAM != 0 {
                    seen.ended.push(stream);
                }
            }
            _ => {}
        }
    }
}

/// Sends `bytes` in pieces of `piece`, stopping quietly when the server has closed the
/// connection (it may do so in the middle of a flood). Returns the bytes written.
pub fn flood(c: &mut RawH2, bytes: &[u8], piece: usize) -> usize {
    let mut sent = 0;
    for part in bytes.chunks(piece) {
        match c.sock.write_all(part) {
            Ok(()) => sent += part.len(),
            Err(_) => break,
        }
    }
    sent
}

// ---------------------------------------------------------------------- probes

/// Another client over HTTP/1.1: `GET /` must be answered `hello` at once.
pub fn probe_h1(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("HTTP/1.1 probe");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("hello\n"),
        "HTTP/1.1 probe got {text:?}"
    );
    t.elapsed()
}

/// Another client over HTTP/2: `GET /` on a new connection must be answered `hello`.
pub fn probe_h2(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut c = RawH2::handshake(addr, &[]);
    let mut out = settings_ack();
    out.extend(c.request(1, "GET", "/", true));
    c.send(&out).unwrap();
    let mut seen = Seen::default();
    c.observe(&mut seen, Duration::from_secs(5), |s| s.ended.contains(&1));
    assert_eq!(seen.statuses.get(&1), Some(&200), "{}", seen.describe());
    assert_eq!(seen.data.get(&1), Some(&6), "{}", seen.describe());
    t.elapsed()
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

/// Both probes, each answered within `bound`.
pub fn probes(addr: SocketAddr, bound: Duration) {
    let h1 = probe_h1(addr);
    let h2 = probe_h2(addr);
    eprintln!("  probes: HTTP/1.1 {h1:?}, HTTP/2 {h2:?}");
    assert!(h1 < bound, "HTTP/1.1 probe took {h1:?}");
    assert!(h2 < bound, "HTTP/2 probe took {h2:?}");
}
