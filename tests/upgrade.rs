//! Upgrade and hijack (`Response::upgrade`): WebSocket echo against Python's
//! `websockets` client, bytes pipelined behind the upgrade request, a hijacked
//! connection leaving the server's books and surviving its graceful shutdown, CONNECT
//! tunnels, and the errors.
//!
//! The Python test needs `python3 -m pip install websockets` (.ci/run installs it): it
//! fails under `CI=true` without it and prints a loud SKIP otherwise.
mod common;
#[path = "../examples/websocket_echo.rs"]
mod websocket_echo;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use spindle::handlers::testing::{TestRequest, TestServer};
use spindle::handlers::{BodyLimitLayer, CatchPanicLayer, CompressionLayer, Layers};
use spindle::http::{Method, StatusCode};
use spindle::server::{Handler, Request, Response, Server, Upgraded};

const WS_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/ws_echo_client.py");

#[test]
fn websocket_echo_with_python_websockets() {
    if !common::python_with("websockets") {
        return;
    }
    let server = TestServer::start(websocket_echo::app()).unwrap();
    // Plain HTTP keeps working on the same port.
    let page = server.get("/").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("WebSocket"));
    let url = format!("ws://{}/ws", server.addr());
    for _ in 0..2 {
        let out = Command::new("python3")
            .arg(WS_CLIENT)
            .arg(&url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "python client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both upgraded connections were handed off; nothing is left on the server's books.
    wait_for(|| server.listening().open_connections() == 0);
}

#[test]
fn websocket_handshake_is_validated() {
    let server = TestServer::start(websocket_echo::app()).unwrap();
    let bad = server
        .send_raw(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .unwrap();
    assert_eq!(bad.status, 400);
    let old = server
        .send_raw(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        .unwrap();
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"));

    // RFC 6455 §1.3's sample key and accept value, on the wire.
    let mut s = connect(&server);
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let (head, _) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"));
}

/// Upgrades with `status`, reports what was buffered past the request, and echoes on a
/// thread of its own.
fn echo_handler(status: StatusCode, seen: mpsc::Sender<Vec<u8>>) -> impl Handler {
    let seen = Mutex::new(seen);
    move |_req: Request, mut res: Response| {
        *res.status_mut() = status;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            res.headers_mut().insert("upgrade", "echo".parse().unwrap());
            res.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
        }
        let upgraded = match res.upgrade() {
            Ok(u) => u,
            Err(e) => panic!("upgrade failed: {e}"),
        };
        seen.lock()
            .unwrap()
            .send(upgraded.buffered().to_vec())
            .unwrap();
        thread::spawn(move || echo(upgraded));
    }
}

fn echo(mut conn: Upgraded) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads up to the end of a response head; returns it and the bytes read past it.
fn read_head(s: &mut impl Read) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return (String::from_utf8(got).unwrap(), rest);
        }
        let n = s.read(&mut buf).expect("reading a response head");
        assert!(
            n > 0,
            "closed before a head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

fn read_exact_after(s: &mut impl Read, mut have: Vec<u8>, len: usize) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    while have.len() < len {
        let n = s.read(&mut buf).expect("reading echoed bytes");
        assert!(n > 0, "closed early");
        have.extend_from_slice(&buf[..n]);
    }
    have
}

fn round_trip(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).unwrap();
    let got = read_exact_after(s, Vec::new(), data.len());
    assert_eq!(got, data);
}

fn wait_for(cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "condition not met in 5 s");
        thread::sleep(Duration::from_millis(5));
    }
}

const UPGRADE_HEAD: &[u8] =
    b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n";

#[test]
fn bytes_pipelined_behind_the_upgrade_request_come_first() {
    let (tx, rx) = mpsc::channel();
    let server = TestServer::start(echo_handler(StatusCode::SWITCHING_PROTOCOLS, tx)).unwrap();
    let mut s = connect(&server);
    // One write, one packet: the server reads the early bytes along with the head.
    let mut packet = UPGRADE_HEAD.to_vec();
    packet.extend_from_slice(b"EARLY BYTES|");
    s.write_all(&packet).unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        b"EARLY BYTES|"
    );
    let echoed = read_exact_after(&mut s, rest, 12);
    assert_eq!(echoed, b"EARLY BYTES|");
    // What looks like HTTP is now just bytes of the new protocol: echoed, not parsed.
    round_trip(&mut s, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
}

#[test]
fn hijacked_connection_leaves_the_server_and_survives_graceful_shutdown() {
    let (tx, rx) = mpsc::channel();
    let listening = Server::http("127.0.0.1:0")
        .unwrap()
        .idle_timeout(Some(Duration::from_millis(200)))
        .head_timeout(Some(Duration::from_millis(200)))
        .handle_threads(echo_handler(StatusCode::SWITCHING_PROTOCOLS, tx), 8)
        .unwrap();
    let mut s = TcpStream::connect(listening.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(UPGRADE_HEAD).unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(rest.is_empty());
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b"");
    wait_for(|| listening.open_connections() == 0);
    // Quiet for longer than the idle and head timeouts: the server no longer times it out.
    thread::sleep(Duration::from_millis(500));
    round_trip(&mut s, b"still here");

    // A plain keep-alive connection, for contrast, is counted and closed by the shutdown.
    let mut plain = TcpStream::connect(listening.local_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let (head, _) = read_head(&mut plain);
    assert!(head.starts_with("HTTP/1.1 101 "));
    let _ = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    let started = Instant::now();
    let report = listening.shutdown(Instant::now() + Duration::from_secs(3));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited for a hijacked connection: {report:?}"
    );
    assert_eq!(report.cut, 0, "{report:?}");
    // The server is gone; the hijacked connections are not.
    round_trip(&mut s, b"after shutdown");
    round_trip(&mut plain, b"me too");
    drop(listening);
    round_trip(&mut s, b"after drop");
}

#[test]
fn connect_tunnel_with_2xx() {
    let (tx, rx) = mpsc::channel();
    let server = TestServer::start(echo_handler(StatusCode::OK, tx)).unwrap();
    let mut s = connect(&server);
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01")
        .unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    // RFC 9110 §9.3.6: no framing fields on a 2xx to CONNECT.
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"));
    assert!(!lower.contains("connection: close"), "{head}");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        b"\x16\x03\x01"
    );
    assert_eq!(read_exact_after(&mut s, rest, 3), b"\x16\x03\x01");
    round_trip(&mut s, b"tunnelled bytes");
    wait_for(|| server.listening().open_connections() == 0);
}

#[test]
fn refused_connect_and_upgrade_close_the_connection() {
    // Answered normally: the connection is not reused, and what followed is not parsed
    // as another request (it may be the other protocol).
    let server = TestServer::start(|req: Request, res: Response| {
        let status = if req.method() == Method::CONNECT {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        res.with_status(status).send(b"no\n").ok();
    })
    .unwrap();
    for first in [
        &b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"[..],
        &b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
    ] {
        let mut req = first.to_vec();
        req.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n");
        let out = server.raw(&req).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    // An upgrade request with a body the handler leaves unread: not drained, closed.
    let out = server
        .raw(b"POST /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 404 "));
}

#[test]
fn upgrade_errors_are_clear_and_answer_500() {
    let (tx, rx) = mpsc::channel::<io::Error>();
    let tx = Mutex::new(tx);
    let server = TestServer::start(move |req: Request, mut res: Response| {
        *res.status_mut() = match req.path() {
            "/200" => StatusCode::OK,
            "/404" => StatusCode::NOT_FOUND,
            _ => StatusCode::SWITCHING_PROTOCOLS,
        };
        let err = res.upgrade().expect_err("upgrade must fail");
        tx.lock().unwrap().send(err).unwrap();
    })
    .unwrap();
    let cases: [(&[u8], &str); 4] = [
        // 2xx, but not a CONNECT.
        (
            b"GET /200 HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
            "CONNECT",
        ),
        // Not 101 or 2xx at all.
        (
            b"GET /404 HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
            "101",
        ),
        // 101 without the client asking.
        (
            b"GET /101 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "Upgrade field",
        ),
        // 101 to HTTP/1.0.
        (
            b"GET /101 HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
            "HTTP/1.0",
        ),
    ];
    for (request, why) in cases {
        let res = server.send_raw(request).unwrap();
        assert_eq!(res.status, 500, "{}", String::from_utf8_lossy(request));
        let err = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn recorder_refuses_an_upgrade_clearly() {
    let (tx, rx) = mpsc::channel::<io::Error>();
    let tx = Mutex::new(tx);
    let rec = TestRequest::get("/ws")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .run(&move |_req: Request, res: Response| {
            let err = res
                .with_status(StatusCode::SWITCHING_PROTOCOLS)
                .upgrade()
                .unwrap_err();
            tx.lock().unwrap().send(err).unwrap();
        });
    let err = rx.try_recv().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("recorder"), "{err}");
    assert_eq!(rec.status(), 500);
    assert!(rec.finished() && !rec.panicked());
}

#[test]
fn upgrade_passes_through_layers() {
    let (tx, rx) = mpsc::channel();
    let app = Layers::new()
        .layer(CatchPanicLayer::new())
        .layer(BodyLimitLayer::new(1024))
        .layer(CompressionLayer::new())
        .service(echo_handler(StatusCode::SWITCHING_PROTOCOLS, tx));
    let server = TestServer::start(app).unwrap();
    let mut s = connect(&server);
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let (head, _) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "{head}"
    );
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    round_trip(&mut s, b"through three layers");
}

/// Unix only: `Server::unix` exists only there.
#[cfg(unix)]
#[test]
fn upgrade_on_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("spindle-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let (tx, _rx) = mpsc::channel();
    let listening = Server::unix(&path)
        .unwrap()
        .handle_threads(echo_handler(StatusCode::SWITCHING_PROTOCOLS, tx), 4)
        .unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(UPGRADE_HEAD).unwrap();
    s.write_all(b"ping").unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(read_exact_after(&mut s, rest, 4), b"ping");
    wait_for(|| listening.open_connections() == 0);
    drop(listening);
    s.write_all(b"pong").unwrap();
    assert_eq!(read_exact_after(&mut s, Vec::new(), 4), b"pong");
    let _ = std::fs::remove_dir_all(&dir);
}
