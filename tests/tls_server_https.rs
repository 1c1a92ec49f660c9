//! spindle's HTTPS server (TLS wired into the event loops) against curl, spindle's own
//! client and raw native-tls connections: keep-alive reuse, handshake timeouts for
//! silent and garbage clients, idle connections holding no threads, plaintext buffered
//! inside the TLS layer, large bodies and graceful shutdown.
#![cfg(feature = "tls")]
mod common;
mod tls_support;
#[path = "../examples/websocket_echo.rs"]
#[allow(dead_code)]
mod websocket_echo;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::server::{ConnState, Handler, Listening, Request, Response, Server};
use spindle::tls::{Acceptor, Certificate};
use spindle::{Client, ErrorKind};
use tls_support::{Ca, Leaf};

struct Pki {
    ca: Ca,
    server: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("spindle https test CA");
    let server = ca.issue("localhost", &["localhost", "127.0.0.1"], false);
    Pki { ca, server }
}

fn acceptor(leaf: &Leaf) -> Acceptor {
    Acceptor::from_pem(&leaf.chain_pem(), &leaf.key_pem()).unwrap()
}

fn hello(_req: Request, mut res: Response) {
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res.send(b"Hello, World!").ok();
}

/// A running HTTPS server and the number of connections it accepted.
struct Https {
    listening: Listening,
    accepted: Arc<AtomicUsize>,
}

impl Https {
    fn start<H: Handler>(leaf: &Leaf, handler: H, tune: impl FnOnce(Server) -> Server) -> Https {
        let _ = env_logger::builder().is_test(true).try_init();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let server = Server::https("127.0.0.1:0", acceptor(leaf))
            .unwrap()
            .on_connection(move |ev| {
                if ev.state == ConnState::New {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        let listening = tune(server).handle_threads(handler, 16).unwrap();
        Https {
            listening,
            accepted,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listening.local_addr()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr().port())
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn client(pki: &Pki) -> Client {
    Client::builder()
        .add_root_certificate(Certificate::from_pem(&pki.ca.pem()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
}

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spindle-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A raw TLS client connection (native-tls, blocking) trusting the test CA.
fn tls_connect(pki: &Pki, addr: SocketAddr) -> native_tls::TlsStream<TcpStream> {
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&pki.ca.pem()).unwrap())
        .disable_built_in_roots(true)
        .build()
        .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    connector.connect("localhost", tcp).unwrap()
}

/// Reads one response with a Content-Length body; returns (head, body).
fn read_response(s: &mut impl Read) -> (String, Vec<u8>) {
    let mut carry = Vec::new();
    let response = read_pipelined(s, &mut carry);
    assert!(carry.is_empty(), "no more than one response expected");
    response
}

/// Reads one response with a Content-Length body, keeping bytes of the responses
/// after it in `buf`.
fn read_pipelined(s: &mut impl Read, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return (head, body);
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// True once the server closed the connection (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // an alert, say
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn curl_reuses_a_keep_alive_https_connection() {
    if !common::tool_available("curl") {
        return;
    }
    let pki = pki();
    let srv = Https::start(&pki.server, hello, |s| s);
    let dir = tmpdir("curl");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca.pem()).unwrap();
    let out = Command::new("curl")
        .args(["-sv", "--http1.1", "--cacert"])
        .arg(&ca)
        .arg(srv.url("/one"))
        .arg(srv.url("/two"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {stderr}");
    assert_eq!(stdout, "Hello, World!Hello, World!");
    assert!(
        stderr.contains("Re-using existing connection"),
        "no reuse: {stderr}"
    );
    assert_eq!(srv.accepted(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

use std::process::Command;

#[test]
fn spindle_client_pools_https_connections_and_refuses_a_wrong_host() {
    let pki = pki();
    let srv = Https::start(&pki.server, hello, |s| s);
    let client = client(&pki);
    for i in 0..5 {
        let res = client.get(srv.url(&format!("/{i}"))).send().unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.header("content-type"), Some("text/plain"));
        assert_eq!(res.text_limited(1024).unwrap(), "Hello, World!");
    }
    assert_eq!(srv.accepted(), 1, "pooled connection reused");

    let wrong = pki.ca.issue("wrong.example", &["wrong.example"], false);
    let bad = Https::start(&wrong, hello, |s| s);
    let err = client.get(bad.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("localhost"), "{err}");
    // The server took the failed handshake in its stride.
    let res = Client::builder()
        .add_root_certificate(Certificate::from_pem(&pki.ca.pem()).unwrap())
        .danger_accept_invalid_hostnames(true)
        .build()
        .get(bad.url("/"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn silent_and_garbage_clients_block_no_one_and_are_cut() {
    let pki = pki();
    let srv = Https::start(&pki.server, hello, |s| {
        s.event_loops(1)
            .tls_handshake_timeout(Duration::from_millis(1500))
    });
    let t0 = Instant::now();
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(srv.addr()).unwrap())
        .collect();
    let mut garbage: Vec<TcpStream> = (0..10)
        .map(|i| {
            let mut s = TcpStream::connect(srv.addr()).unwrap();
            let bytes: &[u8] = if i % 2 == 0 {
                b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
            } else {
                b"\x16\x03\x01\x00\x05garbage garbage garbage garbage"
            };
            s.write_all(bytes).unwrap();
            s
        })
        .collect();
    // A half-sent handshake: a TLS record header promising more than ever comes.
    let mut partial = TcpStream::connect(srv.addr()).unwrap();
    partial.write_all(b"\x16\x03\x01\x02\x00\x01").unwrap();

    // Real clients are served at once, meanwhile.
    let client = client(&pki);
    for _ in 0..3 {
        let started = Instant::now();
        let res = client.get(srv.url("/")).send().unwrap();
        assert_eq!(res.text_limited(100).unwrap(), "Hello, World!");
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
    assert!(srv.listening.threads() <= 6, "{}", srv.listening.threads());

    // Garbage is refused promptly, without waiting for the timeout.
    for s in &mut garbage {
        assert!(
            closed_within(s, Duration::from_millis(1000)),
            "garbage kept open"
        );
    }
    // The silent ones are cut by the handshake timeout, not before.
    assert!(!closed_within(&mut silent[0], Duration::from_millis(500)));
    for s in silent.iter_mut().chain([&mut partial]) {
        assert!(closed_within(s, Duration::from_secs(4)), "silent kept open");
    }
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Only the pooled client connection remains.
    let deadline = Instant::now() + Duration::from_secs(2);
    while srv.listening.open_connections() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(srv.listening.open_connections(), 1);
}

#[test]
fn idle_https_keep_alive_connections_hold_no_threads() {
    let pki = pki();
    let srv = Https::start(&pki.server, hello, |s| s.event_loops(2));
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut c = tls_connect(&pki, srv.addr());
        write!(c, "GET /first/{i} HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
        let (head, body) = read_response(&mut c);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"Hello, World!");
        conns.push(c);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(srv.listening.open_connections(), 200);
    let threads = srv.listening.threads();
    assert!(threads <= 6, "{threads} threads for 200 idle connections");
    for (i, c) in conns.iter_mut().enumerate().rev() {
        write!(c, "GET /again/{i} HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
        let (head, body) = read_response(c);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"Hello, World!");
    }
    assert_eq!(srv.accepted(), 200);
    // The count is updated when the loop finishes with the connection, which may be a
    // moment after the client has read the last answer.
    let deadline = Instant::now() + Duration::from_secs(2);
    while srv.listening.served_requests() < 400 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(srv.listening.served_requests(), 400);
}

fn echo_path(req: Request, res: Response) {
    res.send(req.path().as_bytes()).ok();
}

#[test]
fn pipelined_requests_in_one_record_and_in_separate_records_are_all_answered() {
    let pki = pki();
    let srv = Https::start(&pki.server, echo_path, |s| s.event_loops(1));
    let mut c = tls_connect(&pki, srv.addr());
    // Three requests in one TLS record: after the first, the rest is plaintext held
    // inside the TLS layer, which never makes the socket readable again.
    c.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\nGET /c HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut carry = Vec::new();
    for path in ["/a", "/b", "/c"] {
        assert_eq!(read_pipelined(&mut c, &mut carry).1, path.as_bytes());
    }
    // Many small records at once: one TLS read returns one record, the next ones wait
    // in the kernel buffer without a new readiness edge.
    let mut many = Vec::new();
    for i in 0..50 {
        many.push(format!("GET /r{i} HTTP/1.1\r\nhost: x\r\n\r\n"));
    }
    for r in &many {
        c.write_all(r.as_bytes()).unwrap(); // one record each
    }
    for i in 0..50 {
        assert_eq!(
            read_pipelined(&mut c, &mut carry).1,
            format!("/r{i}").as_bytes()
        );
    }
    assert!(carry.is_empty());
    assert_eq!(srv.accepted(), 1);
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn large_bodies_both_ways_over_tls_arrive_intact() {
    const UP: usize = 6 << 20;
    const DOWN: usize = 9 << 20;
    let pki = pki();
    let handler = |mut req: Request, mut res: Response| {
        let mut body = Vec::new();
        req.read_to_end(&mut body).unwrap();
        let sum = hex(&openssl::sha::sha256(&body));
        res.headers_mut()
            .insert("x-received-len", body.len().to_string().parse().unwrap());
        res.headers_mut()
            .insert("x-received-sha256", sum.parse().unwrap());
        res.send(&pattern(DOWN, 7)).unwrap();
    };
    let srv = Https::start(&pki.server, handler, |s| s.event_loops(1));
    let client = client(&pki);
    for round in 0..2u8 {
        let up = pattern(UP, round);
        let res = client
            .post(srv.url("/upload"))
            .body(up.clone())
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.header("x-received-len"), Some(&*UP.to_string()));
        assert_eq!(
            res.header("x-received-sha256"),
            Some(&*hex(&openssl::sha::sha256(&up)))
        );
        let down = res.bytes_limited(DOWN as u64 + 1).unwrap();
        assert_eq!(down.len(), DOWN);
        assert_eq!(
            openssl::sha::sha256(&down),
            openssl::sha::sha256(&pattern(DOWN, 7))
        );
    }
    assert_eq!(srv.accepted(), 1, "kept alive after large bodies");
}

#[test]
fn graceful_shutdown_with_https_connections() {
    let pki = pki();
    let handler = |req: Request, res: Response| {
        if req.path() == "/slow" {
            std::thread::sleep(Duration::from_millis(600));
        }
        res.send(b"done").ok();
    };
    let srv = Https::start(&pki.server, handler, |s| s);
    // An idle keep-alive connection, a connection mid-handshake, an exchange in flight.
    let mut idle = tls_connect(&pki, srv.addr());
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).1, b"done");
    let mut silent = TcpStream::connect(srv.addr()).unwrap();
    let mut busy = tls_connect(&pki, srv.addr());
    busy.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let listening = Arc::new(srv.listening);
    let l = listening.clone();
    let stopper = std::thread::spawn(move || l.shutdown(Instant::now() + Duration::from_secs(5)));
    let (head, body) = read_response(&mut busy);
    assert!(head.contains("200"), "{head}");
    assert_eq!(body, b"done");
    let report = stopper.join().unwrap();
    assert_eq!(report.cut, 0, "{report:?}");
    assert_eq!(report.finished, 3, "{report:?}");
    assert!(closed_within(&mut silent, Duration::from_secs(1)));
    let mut rest = Vec::new();
    assert!(matches!(idle.read_to_end(&mut rest), Ok(_) | Err(_)));
    assert!(rest.is_empty());
    assert!(TcpStream::connect(listening.local_addr()).is_err());
}

/// Answers with the protocol that carried the request and the request body's length
/// and checksum, so a test sees both directions.
fn protocol_and_body(mut req: Request, res: Response) {
    let mut body = Vec::new();
    if req.read_to_end(&mut body).is_err() {
        return;
    }
    let text = format!("{:?} {} {:08x}", req.version(), body.len(), crc32(&body));
    res.send(text.as_bytes()).ok();
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

#[test]
fn alpn_h2_serves_curl_and_nghttp_over_tls_and_http11_clients_still_work() {
    if !common::tool_available("curl") || !common::tool_available("nghttp") {
        return;
    }
    let pki = pki();
    let srv = Https::start(&pki.server, protocol_and_body, |s| s);
    let dir = tmpdir("alpn-h2");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca.pem()).unwrap();
    // 3 MiB: many DATA frames and several flow-control window updates each way.
    let upload: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let file = dir.join("upload.bin");
    std::fs::write(&file, &upload).unwrap();

    // curl negotiates h2 through ALPN; two requests reuse the one connection.
    let out = Command::new("curl")
        .args(["-sS", "-v", "--http2", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(srv.url("/a"))
        .args(["--next", "--http2", "--cacert"])
        .arg(&ca)
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(srv.url("/b"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {stderr}");
    assert!(stderr.contains("ALPN: server accepted h2"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "HTTP/2.0 0 {:08x}HTTP/2.0 {} {:08x}",
            crc32(b""),
            upload.len(),
            crc32(&upload)
        )
    );
    assert_eq!(srv.accepted(), 1, "both requests on one connection");

    // nghttp: the SETTINGS exchange, then the response on stream 1.
    let out = Command::new("nghttp")
        .args(["-nv", "-t", "20"])
        .arg(srv.url("/n"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp failed: {log}");
    assert!(log.contains("recv SETTINGS frame"), "{log}");
    assert!(log.contains(":status: 200"), "{log}");
    assert!(log.contains("send GOAWAY frame"), "{log}");

    // A client offering only HTTP/1.1 is served HTTP/1.1 on the same port.
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(srv.url("/c"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("HTTP/1.1 0 {:08x}", crc32(b""))
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `Response::upgrade` on an HTTPS connection hands the TLS session over: the WebSocket
/// echo example serves `wss://` (Python `websockets`: text, binary, 1 MiB, ping, close),
/// and the connection leaves the server's books.
#[test]
fn websocket_over_tls_with_python_websockets() {
    if !common::python_with("websockets") {
        return;
    }
    let pki = pki();
    let srv = Https::start(&pki.server, websocket_echo::app(), |s| s);
    let dir = tmpdir("wss");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca.pem()).unwrap();
    let url = format!("wss://localhost:{}/ws", srv.addr().port());
    for _ in 0..2 {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/py/ws_echo_client.py"
            ))
            .arg(&url)
            .arg(&ca)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "wss client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Plain HTTPS keeps working beside it.
    let res = client(&pki).get(srv.url("/")).send().unwrap();
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.listening.open_connections() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        srv.listening.open_connections() <= 1,
        "upgraded connections handed off"
    );
    let _ = std::fs::remove_dir_all(dir);
}
