//! Slow peers, all driven from one thread with `poll(2)`: clients that trickle a request
//! head or body a byte at a time, that never read (or read slowly) what they asked for,
//! and HTTP/2 connections that open streams and send nothing more. Used by
//! `tests/hostile_slow_peers.rs` (issue 14, item 5) and scenario (f) of
//! `benches/servers.rs` (item 6), which include this file with `#[path]`.
//!
//! Every socket is non-blocking, connects to 127.0.0.1 only and is closed when the
//! driver stops; the driver thread is bounded by its `stop` flag. It records, per peer,
//! when it started (its first bytes left), what came back (the first bytes of an
//! HTTP/1.1 answer; for HTTP/2 each stream's status, RST_STREAM and GOAWAY) and when
//! and how the server ended it: end of stream, reset, or a write that failed because
//! the server had closed. [`server_open_ports`] tells, from /proc, which connections
//! the server has not ended yet: the only way to see a server cut a client that reads
//! nothing (its FIN waits behind the unread bytes).
#![allow(dead_code)]
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spindle::h2::hpack::{Decoder, Encoder};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_MAGIC: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// How long a connection may take to be accepted before the peer counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// When a peer reads what the server sends.
#[derive(Debug, Clone, Copy)]
pub enum ReadPolicy {
    /// Never (the socket's receive buffer fills and the server's writes stall).
    Never,
    /// As soon as bytes arrive.
    All,
    /// Nothing until this long after the peer started, then everything.
    After(Duration),
    /// At most this many bytes a second, on average since the peer started.
    AtRate(u64),
}

/// One slow peer.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The caller's group (kind of peer), for reports.
    pub kind: usize,
    /// A 4 KiB receive buffer and a 536-byte MSS, set before connecting: on loopback
    /// the kernel would otherwise take megabytes of an answer the peer never reads
    /// (a 64 KiB MSS grows the sender's buffer to 4 MiB). With them it takes ~100 KiB.
    pub small_window: bool,
    /// Sent at once after connecting.
    pub first: Vec<u8>,
    /// Then sent one byte at a time, one every `every`.
    pub trickle: Vec<u8>,
    pub every: Duration,
    pub read: ReadPolicy,
    /// What comes back is HTTP/2 frames.
    pub h2: bool,
    /// Record how many bytes wait unread in the receive buffer (FIONREAD) this long
    /// after the start: shows an answer was sent without reading it.
    pub peek_after: Option<Duration>,
}

impl Spec {
    /// A peer of group `kind` that sends nothing, reads everything and waits 1 s between
    /// trickled bytes: the base the callers' kinds change.
    pub fn quiet(kind: usize) -> Spec {
        Spec {
            kind,
            small_window: false,
            first: Vec::new(),
            trickle: Vec::new(),
            every: Duration::from_secs(1),
            read: ReadPolicy::All,
            h2: false,
            peek_after: None,
        }
    }
}

/// How the server ended a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// End of stream (the server closed).
    Eof,
    /// Connection reset by the server.
    Reset,
    /// A trickled byte could not be written: the server had closed.
    WriteFailed,
}

/// How an HTTP/2 stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// RST_STREAM with this error code.
    Reset(u32),
    /// END_STREAM after an answer with this status (0: no status seen).
    Answered(u16),
}

/// One HTTP/2 stream, as the peer saw it.
#[derive(Debug, Clone, Default)]
pub struct StreamLog {
    pub status: Option<u16>,
    pub data: usize,
    pub end: Option<(Instant, StreamEnd)>,
}

/// What an HTTP/2 peer was told.
#[derive(Debug, Clone, Default)]
pub struct H2Log {
    pub frames: usize,
    pub streams: BTreeMap<u32, StreamLog>,
    /// (last stream id, error code, when)
    pub goaway: Option<(u32, u32, Instant)>,
    pub pings: usize,
    /// The frames could not be decoded (an HPACK error, a bad frame).
    pub broken: Option<String>,
}

/// What happened to one peer.
#[derive(Debug, Clone)]
pub struct Peer {
    pub kind: usize,
    /// The peer's local port (the server sees it as the remote port).
    pub port: u16,
    /// When its first bytes were written (None: it never connected).
    pub started: Option<Instant>,
    pub error: Option<String>,
    /// Bytes trickled after `first`.
    pub trickled: usize,
    pub received: u64,
    /// The first bytes received (HTTP/1.1 peers), up to 2 KiB.
    pub head: Vec<u8>,
    pub first_byte: Option<Instant>,
    pub end: Option<(Instant, End)>,
    pub peeked: Option<usize>,
    pub h2: H2Log,
}

impl Peer {
    /// The status of the first HTTP/1.x answer, if one arrived.
    pub fn status(&self) -> Option<u16> {
        let head = std::str::from_utf8(self.head.get(..12)?).ok()?;
        head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    }

    /// Seconds from the start to `t`.
    pub fn since_start(&self, t: Instant) -> Option<f64> {
        Some(t.saturating_duration_since(self.started?).as_secs_f64())
    }
}

/// The connection, owned by the driver thread.
struct Conn {
    stream: TcpStream,
    connected: bool,
    connect_by: Instant,
    out: Vec<u8>,
    next_trickle: Option<Instant>,
    h2: Option<H2Reader>,
}

/// The driver: one thread, every peer.
pub struct Driver {
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<Peer>>>,
    handle: Option<JoinHandle<()>>,
}

impl Driver {
    /// Connects every peer (in batches of 100, 10 ms apart, in the order given) and
    /// drives them until [`stop`](Driver::stop). `cpu`: pin the driver thread to it.
    pub fn start(addr: SocketAddr, specs: Vec<Spec>, cpu: Option<usize>) -> Driver {
        assert!(
            addr.ip().is_loopback(),
            "slow peers connect to loopback only"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let peers: Vec<Peer> = specs
            .iter()
            .map(|s| Peer {
                kind: s.kind,
                port: 0,
                started: None,
                error: None,
                trickled: 0,
                received: 0,
                head: Vec::new(),
                first_byte: None,
                end: None,
                peeked: None,
                h2: H2Log::default(),
            })
            .collect();
        let peers = Arc::new(Mutex::new(peers));
        let (stop2, peers2) = (stop.clone(), peers.clone());
        let handle = std::thread::Builder::new()
            .name("slow-peers".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin_current_thread(cpu);
                }
                drive(addr, specs, &peers2, &stop2)
            })
            .expect("starting the slow-peer thread");
        Driver {
            stop,
            peers,
            handle: Some(handle),
        }
    }

    /// A copy of every peer's record so far.
    pub fn snapshot(&self) -> Vec<Peer> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls `f` with the records without copying them.
    pub fn with<T>(&self, f: impl FnOnce(&[Peer]) -> T) -> T {
        f(&self.peers.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stops the driver, closes every socket and returns the records.
    pub fn stop(mut self) -> Vec<Peer> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.snapshot()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn open(addr: SocketAddr, spec: &Spec) -> io::Result<(TcpStream, bool)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if spec.small_window {
        sock.set_recv_buffer_size(4096)?;
        sock.set_mss(536)?;
    }
    sock.set_nodelay(true)?;
    sock.set_nonblocking(true)?;
    let connected = match sock.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(e),
    };
    Ok((sock.into(), connected))
}

fn drive(addr: SocketAddr, specs: Vec<Spec>, peers: &Mutex<Vec<Peer>>, stop: &AtomicBool) {
    let mut conns: Vec<Option<Conn>> = (0..specs.len()).map(|_| None).collect();
    let mut next_open = 0usize;
    let mut next_batch = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut idx: Vec<usize> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut log = peers.lock().unwrap_or_else(|p| p.into_inner());
        // Connect the next batch.
        if next_open < specs.len() && now >= next_batch {
            let end = (next_open + 100).min(specs.len());
            for i in next_open..end {
                match open(addr, &specs[i]) {
                    Ok((stream, connected)) => {
                        log[i].port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
                        conns[i] = Some(Conn {
                            stream,
                            connected: false,
                            connect_by: now + CONNECT_TIMEOUT,
                            out: Vec::new(),
                            next_trickle: None,
                            h2: specs[i].h2.then(H2Reader::new),
                        });
                        if connected {
                            on_connected(conns[i].as_mut().unwrap(), &specs[i], &mut log[i], now);
                        }
                    }
                    Err(e) => log[i].error = Some(format!("socket: {e}")),
                }
            }
            next_open = end;
            next_batch = now + Duration::from_millis(10);
        }
        // Writes that are due; connects that timed out; peeks. `wake`: when something
        // is next due, so the thread sleeps in poll until then (it shares a CPU with
        // the load generator in the benchmark).
        let mut wake = now + Duration::from_millis(100);
        if next_open < specs.len() {
            wake = wake.min(next_batch);
        }
        for (i, slot) in conns.iter_mut().enumerate() {
            let Some(c) = slot else { continue };
            let (spec, peer) = (&specs[i], &mut log[i]);
            if !c.connected {
                wake = wake.min(c.connect_by);
                if now >= c.connect_by {
                    peer.error = Some("not accepted within 5 s".into());
                    *slot = None;
                }
                continue;
            }
            if c.out.is_empty() {
                if let Some(at) = c.next_trickle {
                    if now >= at && peer.trickled < spec.trickle.len() {
                        c.out.push(spec.trickle[peer.trickled]);
                        peer.trickled += 1;
                        c.next_trickle = Some(at + spec.every);
                    }
                }
            }
            if !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(n) => {
                        c.out.drain(..n);
                        if c.out.is_empty() && c.next_trickle.is_none() {
                            peer.started = Some(now);
                            c.next_trickle = Some(now + spec.every);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        peer.end = Some((now, End::WriteFailed));
                        *slot = None;
                        continue;
                    }
                }
            }
            if let (Some(after), Some(started), None) = (spec.peek_after, peer.started, peer.peeked)
            {
                if now >= started + after {
                    peer.peeked = Some(unread_bytes(&c.stream));
                } else {
                    wake = wake.min(started + after);
                }
            }
            if !c.out.is_empty() {
                wake = wake.min(now + Duration::from_millis(10));
            } else if let Some(at) = c
                .next_trickle
                .filter(|_| peer.trickled < spec.trickle.len())
            {
                wake = wake.min(at);
            }
            match (spec.read, peer.started) {
                (ReadPolicy::After(d), Some(started)) if now < started + d => {
                    wake = wake.min(started + d);
                }
                (ReadPolicy::AtRate(_), Some(_)) => {
                    wake = wake.min(now + Duration::from_millis(20));
                }
                _ => {}
            }
        }
        // Poll: reads where the policy allows, errors everywhere.
        fds.clear();
        idx.clear();
        for (i, slot) in conns.iter().enumerate() {
            let Some(c) = slot else { continue };
            let events = if !c.connected {
                libc::POLLOUT
            } else if read_allowance(&specs[i], &log[i], now) > 0 {
                libc::POLLIN
            } else {
                0
            };
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
            idx.push(i);
        }
        drop(log);
        let timeout_ms = wake
            .saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1, 100) as libc::c_int;
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n <= 0 {
            if fds.is_empty() {
                std::thread::sleep(Duration::from_millis(timeout_ms as u64));
            }
            continue;
        }
        let now = Instant::now();
        let mut log = peers.lock().unwrap_or_else(|p| p.into_inner());
        for (k, pfd) in fds.iter().enumerate() {
            if pfd.revents == 0 {
                continue;
            }
            let i = idx[k];
            let Some(c) = conns[i].as_mut() else { continue };
            let (spec, peer) = (&specs[i], &mut log[i]);
            if !c.connected {
                match c.stream.take_error() {
                    Ok(None) => on_connected(c, spec, peer, now),
                    Ok(Some(e)) | Err(e) => {
                        peer.error = Some(format!("connect: {e}"));
                        conns[i] = None;
                    }
                }
                continue;
            }
            let mut ended = None;
            if pfd.revents & libc::POLLIN != 0 {
                let allowed = read_allowance(spec, peer, now).min(buf.len());
                match c.stream.read(&mut buf[..allowed]) {
                    Ok(0) => ended = Some(End::Eof),
                    Ok(n) => {
                        peer.received += n as u64;
                        peer.first_byte.get_or_insert(now);
                        if let Some(r) = c.h2.as_mut() {
                            r.feed(&buf[..n], now, &mut peer.h2);
                        } else if peer.head.len() < 2048 {
                            let take = n.min(2048 - peer.head.len());
                            peer.head.extend_from_slice(&buf[..take]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => ended = Some(End::Reset),
                }
            } else if pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                // A peer that reads nothing still sees a reset.
                ended = Some(End::Reset);
            }
            if let Some(how) = ended {
                peer.end = Some((now, how));
                conns[i] = None;
            }
        }
    }
}

fn on_connected(c: &mut Conn, spec: &Spec, peer: &mut Peer, now: Instant) {
    c.connected = true;
    c.out = spec.first.clone();
    match c.stream.write(&c.out) {
        Ok(n) => {
            c.out.drain(..n);
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => peer.error = Some(format!("first write: {e}")),
    }
    if c.out.is_empty() {
        peer.started = Some(now);
        c.next_trickle = Some(now + spec.every);
    }
}

/// How many bytes the peer may read now.
fn read_allowance(spec: &Spec, peer: &Peer, now: Instant) -> usize {
    let Some(started) = peer.started else {
        return 0;
    };
    match spec.read {
        ReadPolicy::Never => 0,
        ReadPolicy::All => usize::MAX,
        ReadPolicy::After(d) if now >= started + d => usize::MAX,
        ReadPolicy::After(_) => 0,
        ReadPolicy::AtRate(bps) => {
            let due = (now.duration_since(started).as_secs_f64() * bps as f64) as u64;
            let left = due.saturating_sub(peer.received) as usize;
            // Reads of at least 1 KiB, so the poll loop does not spin on a trickle.
            if left >= 1024.min(bps as usize) {
                left
            } else {
                0
            }
        }
    }
}

/// Bytes waiting unread in a socket's receive buffer.
pub fn unread_bytes(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points to `n`.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

/// Pins the calling thread to one CPU (ignored where not allowed).
pub fn pin_current_thread(cpu: usize) {
    // SAFETY: the set is zeroed, then one bit is set; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The client ports of the TCP connections to `server_port` that the server has not
/// ended: its side of the socket is ESTABLISHED or CLOSE_WAIT in /proc/net/tcp (a
/// connection still in its accept queue is ESTABLISHED too). After the server's
/// `shutdown(SHUT_WR)` or `close` the state is FIN_WAIT1 (or LAST_ACK) at once, even
/// while its FIN waits behind bytes a client never read; a reset socket is gone.
pub fn server_open_ports(server_port: u16) -> HashSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of = |field: &str| {
        field
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state) = (f.get(1)?, f.get(2)?, f.get(3)?);
            // 01: ESTABLISHED, 08: CLOSE_WAIT.
            let open = matches!(*state, "01" | "08");
            (port_of(local)? == server_port && open)
                .then(|| port_of(remote))
                .flatten()
        })
        .collect()
}

// ------------------------------------------------------------------------ HTTP/2

/// One HTTP/2 frame, as bytes.
pub fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    v.push(kind);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The client preface, an empty SETTINGS and an ACK for the server's SETTINGS (sent
/// blind: the server's come first on the wire and are acknowledged in order).
pub fn h2_preface() -> Vec<u8> {
    let mut v = H2_MAGIC.to_vec();
    v.extend(h2_frame(SETTINGS, 0, 0, &[]));
    v.extend(h2_frame(SETTINGS, 0x1, 0, &[]));
    v
}

/// A HEADERS frame for a request on `stream`.
pub fn h2_request(
    enc: &mut Encoder,
    stream: u32,
    method: &str,
    path: &str,
    end_stream: bool,
) -> Vec<u8> {
    let fields: Vec<(&[u8], &[u8], bool)> = vec![
        (b":method", method.as_bytes(), false),
        (b":scheme", b"http", false),
        (b":authority", b"127.0.0.1", false),
        (b":path", path.as_bytes(), false),
    ];
    let mut block = Vec::new();
    enc.encode(fields, &mut block);
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    h2_frame(HEADERS, flags, stream, &block)
}

/// The preface and `streams` requests (`method path`, no END_STREAM: the bodies never
/// come) on streams 1, 3, 5, ...
pub fn h2_open_streams(streams: u32, method: &str, path: &str) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut v = h2_preface();
    for i in 0..streams {
        v.extend(h2_request(&mut enc, 1 + 2 * i, method, path, false));
    }
    v
}

/// Reads HTTP/2 frames from bytes as they come, into an [`H2Log`].
pub struct H2Reader {
    buf: Vec<u8>,
    dec: Decoder,
    /// A header block being assembled: (stream, HEADERS flags, fragments).
    block: Option<(u32, u8, Vec<u8>)>,
}

impl Default for H2Reader {
    fn default() -> Self {
        H2Reader::new()
    }
}

impl H2Reader {
    pub fn new() -> H2Reader {
        H2Reader {
            buf: Vec::new(),
            dec: Decoder::new(),
            block: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8], now: Instant, log: &mut H2Log) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while log.broken.is_none() && self.buf.len() - at >= 9 {
            let h = &self.buf[at..at + 9];
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            if self.buf.len() - at < 9 + len {
                break;
            }
            let (kind, flags) = (h[3], h[4]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            let payload = self.buf[at + 9..at + 9 + len].to_vec();
            at += 9 + len;
            log.frames += 1;
            if let Err(why) = self.frame(kind, flags, stream, &payload, now, log) {
                log.broken = Some(why);
            }
        }
        self.buf.drain(..at);
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
        now: Instant,
        log: &mut H2Log,
    ) -> Result<(), String> {
        let code = |p: &[u8], at: usize| -> Result<u32, String> {
            p.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("short frame of type {kind}"))
        };
        match kind {
            RST_STREAM => {
                let c = code(payload, 0)?;
                let s = log.streams.entry(stream).or_default();
                s.end.get_or_insert((now, StreamEnd::Reset(c)));
            }
            GOAWAY => {
                let last = code(payload, 0)? & 0x7fff_ffff;
                log.goaway = Some((last, code(payload, 4)?, now));
            }
            PING if flags & 0x1 == 0 => log.pings += 1,
            DATA => {
                let s = log.streams.entry(stream).or_default();
                s.data += payload.len();
                if flags & END_STREAM != 0 {
                    let status = s.status.unwrap_or(0);
                    s.end.get_or_insert((now, StreamEnd::Answered(status)));
                }
            }
            HEADERS | CONTINUATION => {
                let (stream, hflags, mut block) = match (kind, self.block.take()) {
                    (CONTINUATION, Some(b)) => b,
                    (CONTINUATION, None) => return Err("CONTINUATION without HEADERS".into()),
                    _ => (stream, flags, Vec::new()),
                };
                let mut frag = payload;
                if kind == HEADERS {
                    if flags & PADDED != 0 {
                        let pad = *frag.first().ok_or("empty padded HEADERS")? as usize;
                        frag = frag
                            .get(1..frag.len().saturating_sub(pad))
                            .ok_or("bad padding")?;
                    }
                    if flags & PRIORITY_FLAG != 0 {
                        frag = frag.get(5..).ok_or("short priority")?;
                    }
                }
                block.extend_from_slice(frag);
                if flags & END_HEADERS == 0 {
                    self.block = Some((stream, hflags, block));
                    return Ok(());
                }
                let fields = self
                    .dec
                    .decode_to_vec(&block)
                    .map_err(|e| format!("HPACK: {e:?}"))?;
                let status = fields
                    .iter()
                    .find(|f| f.name.as_bytes() == b":status")
                    .and_then(|f| std::str::from_utf8(f.value.as_bytes()).ok()?.parse().ok());
                let s = log.streams.entry(stream).or_default();
                if let Some(st) = status {
                    if st >= 200 {
                        s.status = Some(st);
                    }
                }
                if hflags & END_STREAM != 0 {
                    let status = s.status.unwrap_or(0);
                    s.end.get_or_insert((now, StreamEnd::Answered(status)));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads from a blocking socket into `reader` until `done(log)` or `timeout`;
/// false on timeout, end of stream or error.
pub fn h2_read_until(
    sock: &mut TcpStream,
    reader: &mut H2Reader,
    log: &mut H2Log,
    timeout: Duration,
    done: impl Fn(&H2Log) -> bool,
) -> bool {
    let until = Instant::now() + timeout;
    let mut buf = [0u8; 16 * 1024];
    while !done(log) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => reader.feed(&buf[..n], Instant::now(), log),
        }
        if log.broken.is_some() {
            return false;
        }
    }
    true
}
