//! Regression tests for the connection engine under resource exhaustion (issue 13,
//! defect k), with the server in its own process (tests/h2_attack_support) so that its
//! descriptor limit, CPU time and log can be set and read from outside.
mod h2_attack_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use h2_attack_support::*;

const SERVER: &str = "engine_server_process";

/// The server under test (run in a child process by the tests below; does nothing when
/// run by itself).
#[test]
#[ignore = "the server process of the engine tests: they start it themselves"]
fn engine_server_process() {
    serve_if_requested();
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// One keep-alive request on `stream`; the answer must be `hello`.
fn keep_alive_get(stream: &mut TcpStream) -> Duration {
    let t = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"hello\n") {
        let n = stream.read(&mut buf).expect("keep-alive answer");
        assert!(n > 0, "the server closed the keep-alive connection");
        got.extend_from_slice(&buf[..n]);
    }
    t.elapsed()
}

/// k: when accept fails for want of descriptors (EMFILE), the server logs about it once
/// a second with a count instead of hundreds of times, does not spin or sleep on the
/// loop thread, keeps serving its open connections at full speed, and accepts again
/// (the connections that waited in the backlog too) once descriptors are free.
#[test]
fn out_of_descriptors_on_accept() {
    if !std::path::Path::new("/usr/bin/prlimit").exists() && !tool_on_path("prlimit") {
        return;
    }
    let server = ServerProcess::start(
        SERVER,
        &[
            ("SPINDLE_ATTACK_LOOPS", "2"),
            ("SPINDLE_ATTACK_THREADS", "8"),
        ],
    );
    let pid = server.child_id();
    let mut victim = TcpStream::connect(server.addr).unwrap();
    victim
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    keep_alive_get(&mut victim);
    let rate = |victim: &mut TcpStream| {
        let started = Instant::now();
        let (mut served, mut slowest) = (0u32, Duration::ZERO);
        while started.elapsed() < Duration::from_secs(2) {
            slowest = slowest.max(keep_alive_get(victim));
            served += 1;
        }
        (served, slowest)
    };
    let (baseline, _) = rate(&mut victim);
    // Room for a few more connections only.
    let limit = open_fds(pid) + 6;
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("running prlimit");
    assert!(status.success(), "prlimit failed");

    // Far more connections than descriptors: the kernel completes their handshakes,
    // the server runs out of descriptors accepting them.
    let fillers: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    server.expect_log_line(&["accept failed"]);
    let log_before = server.log().matches("accept failed").count();
    let (served, slowest) = rate(&mut victim);
    let lines = server.log().matches("accept failed").count() - log_before;
    eprintln!(
        "EMFILE: {served} keep-alive requests in 2 s (before: {baseline}; slowest {slowest:?}), \
         {lines} accept log lines"
    );
    assert!(
        lines <= 3,
        "accept failures must be logged about once a second, not {lines} times in 2 s"
    );
    assert!(
        served * 2 >= baseline,
        "an open connection slowed down from {baseline} to {served} requests in 2 s"
    );
    assert!(
        slowest < Duration::from_millis(200),
        "an open connection waited {slowest:?} for an answer"
    );
    assert!(
        server.log().contains(" more since the last such line"),
        "a later line carries the count of those left out"
    );

    // Descriptors come back: the connections that waited in the backlog are served.
    drop(victim);
    let mut fillers = fillers;
    let late = fillers.split_off(50);
    drop(fillers);
    let started = Instant::now();
    for mut c in late {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("hello\n"),
            "a connection from the backlog got {text:?}"
        );
    }
    eprintln!(
        "EMFILE: backlog served {:?} after descriptors came back",
        started.elapsed()
    );
    probe_h1(server.addr);
}

fn tool_on_path(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is required in CI but is not installed");
        }
        eprintln!("\n!!!!! SKIPPED: `{name}` is not installed !!!!!\n");
    }
    found
}

/// A flood of malformed requests costs a few log lines a second (each later one with the
/// count of those it stands for), and every one of them still gets its 400.
#[test]
fn bad_request_flood_is_logged_a_few_times_a_second() {
    let server = ServerProcess::start(SERVER, &[("SPINDLE_ATTACK_THREADS", "8")]);
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..400 {
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        if out.starts_with(b"HTTP/1.1 400 ") {
            answered += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64().ceil() as usize;
    assert_eq!(answered, 400, "every malformed request gets its 400");
    // The last line may still be due when the flood ends: wait for the next window.
    std::thread::sleep(Duration::from_millis(1100));
    let mut last = TcpStream::connect(server.addr).unwrap();
    last.write_all(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let _ = last.read_to_end(&mut Vec::new());
    // The log comes through a pipe read by another thread: let the last line arrive.
    let counted = server.wait_log_line(
        &["bad request", " more since the last such line"],
        Duration::from_secs(3),
    );
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("bad request")).collect();
    eprintln!(
        "bad-request flood: 401 requests in {secs} s, {} log lines",
        lines.len()
    );
    assert!(
        lines.len() <= 10 * (secs + 2),
        "{} lines for 401 bad requests in {secs} s",
        lines.len()
    );
    assert!(counted.is_some(), "a line says how many were left out");
}

/// `max_connections`: connections beyond the bound are answered 503 and closed at once,
/// the open ones keep being served, and room comes back as they close.
#[test]
fn connections_beyond_max_connections_get_503() {
    let _ = env_logger::builder().is_test(true).try_init();
    let listening = spindle::server::Server::http("127.0.0.1:0")
        .unwrap()
        .max_connections(8)
        .handle_threads(
            |_req: spindle::server::Request, res: spindle::server::Response| {
                res.send(b"hello\n").unwrap();
            },
            4,
        )
        .unwrap();
    let addr = listening.local_addr();
    let mut open: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            keep_alive_get(&mut c);
            c
        })
        .collect();
    assert_eq!(listening.open_connections(), 8);
    for _ in 0..20 {
        let mut extra = TcpStream::connect(addr).unwrap();
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = extra.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut out = Vec::new();
        let _ = extra.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "a connection beyond the bound got {text:?}"
        );
    }
    for c in &mut open {
        keep_alive_get(c);
    }
    drop(open.pop());
    let until = Instant::now() + Duration::from_secs(5);
    while listening.open_connections() > 7 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut again = TcpStream::connect(addr).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    keep_alive_get(&mut again);
}
