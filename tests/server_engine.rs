//! The connection engine: idle connections cost no thread, blocked handlers do not stall
//! others, slow clients are cut, overload is answered, shutdown loses nothing.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use spindle::server::{ConnState, ListenOptions, Overload, Request, Response, Server};

fn hello(_req: Request, res: Response) {
    res.send(b"Hello, World!").ok();
}

/// Sleeps for the number of milliseconds in the path (`/sleep/250`), then answers.
fn sleepy(req: Request, res: Response) {
    if let Some(ms) = req.path().strip_prefix("/sleep/") {
        thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
    }
    res.send(format!("done {}", req.path()).as_bytes()).ok();
}

fn get(addr: std::net::SocketAddr, path: &str) -> RawResponse {
    let mut r = Reader::new(connect(addr));
    send(
        &mut r.stream,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
    );
    r.response(false)
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

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_idle_connections_cost_no_threads() {
    if !tool_available("python3") {
        return;
    }
    raise_fd_limit();
    const IDLE: usize = 10_000;
    let server = serve_with(Server::http("127.0.0.1:0").unwrap(), hello);
    let addr = server.local_addr();
    let rss_before = rss_kib();
    let mut holder = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/idle_holder.py"
        ))
        .args(["127.0.0.1", &addr.port().to_string(), &IDLE.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert_eq!(ready, format!("ready {IDLE}"));
    assert!(
        server.open_connections() >= IDLE,
        "{} open",
        server.open_connections()
    );
    let rss_after = rss_kib();
    let per_conn = (rss_after.saturating_sub(rss_before) * 1024) / IDLE as u64;
    eprintln!("server memory per idle connection: about {per_conn} bytes (RSS {rss_before} KiB -> {rss_after} KiB)");
    assert!(per_conn < 4096, "{per_conn} bytes per idle connection");
    // The idle connections hold no threads: the four allowed are enough for active work.
    assert!(server.threads() <= 4, "{} threads", server.threads());
    let t0 = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let mut r = Reader::new(connect(addr));
                for _ in 0..200 {
                    send(&mut r.stream, b"GET /active HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(r.response(false).body_str(), "Hello, World!");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    eprintln!(
        "1600 active requests beside {IDLE} idle connections took {:?}",
        t0.elapsed()
    );
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(stdin, "check").unwrap();
    let answered = lines.next().unwrap().unwrap();
    assert_eq!(answered, format!("answered {IDLE}"));
    holder.wait().unwrap();
}

#[test]
fn a_blocked_handler_does_not_stall_other_connections() {
    // One event loop, so the only way others get served is the hand-off.
    let server = serve_with(Server::http("127.0.0.1:0").unwrap().event_loops(1), sleepy);
    let addr = server.local_addr();
    let slow = thread::spawn(move || get(addr, "/sleep/1500"));
    thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    for i in 0..20 {
        assert_eq!(
            get(addr, &format!("/fast/{i}")).body_str(),
            format!("done /fast/{i}")
        );
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1000),
        "fast requests took {:?}",
        t0.elapsed()
    );
    assert_eq!(slow.join().unwrap().body_str(), "done /sleep/1500");
}

#[test]
fn a_handler_waiting_for_its_body_does_not_stall_others() {
    let server = serve_with(
        Server::http("127.0.0.1:0").unwrap().event_loops(1),
        |mut req: Request, res: Response| {
            let mut body = Vec::new();
            req.read_to_end(&mut body).unwrap();
            res.send(&body).ok();
        },
    );
    let addr = server.local_addr();
    let mut slow = Reader::new(connect(addr));
    send(
        &mut slow.stream,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello",
    );
    thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let mut other = Reader::new(connect(addr));
    send(
        &mut other.stream,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(other.response(false).body_str(), "ok");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "took {:?}",
        t0.elapsed()
    );
    send(&mut slow.stream, b"world");
    assert_eq!(slow.response(false).body_str(), "helloworld");
}

/// Every thread blocked in a body read, so no thread is left to run the event loop: the
/// watchdog then forwards the sockets' readiness to the blocked handlers (each waits on
/// its connection's parker, not on the socket), and both finish as soon as their bodies
/// arrive, not at the 30 s read timeout.
#[test]
fn handlers_blocked_on_their_bodies_finish_when_no_thread_is_left_for_the_loop() {
    let listening = Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(1)
        .body_buffer(0)
        .handle_threads(
            |mut req: Request, res: Response| {
                let mut body = Vec::new();
                req.read_to_end(&mut body).unwrap();
                res.send(&body).ok();
            },
            2,
        )
        .unwrap();
    let addr = listening.local_addr();
    let head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n";
    let mut a = Reader::new(connect(addr));
    send(&mut a.stream, &[&head[..], b"hello"].concat());
    thread::sleep(Duration::from_millis(200));
    let mut b = Reader::new(connect(addr));
    send(&mut b.stream, &[&head[..], b"HELLO"].concat());
    // Both handlers are blocked now, and the loop has no thread.
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    send(&mut a.stream, b"world");
    send(&mut b.stream, b"WORLD");
    assert_eq!(a.response(false).body_str(), "helloworld");
    assert_eq!(b.response(false).body_str(), "HELLOWORLD");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the blocked handlers took {:?} to see their bodies",
        t0.elapsed()
    );
    // The loop runs again once a thread is free: a new connection is served.
    assert_eq!(get(addr, "/").status, 200);
    listening.close();
}

#[test]
fn slowloris_clients_are_cut_and_others_served() {
    let server = serve_with(
        Server::http("127.0.0.1:0")
            .unwrap()
            .event_loops(1)
            .head_timeout(Some(Duration::from_millis(800))),
        hello,
    );
    let addr = server.local_addr();
    let slow: Vec<_> = (0..50)
        .map(|_| {
            thread::spawn(move || {
                let mut s = connect(addr);
                let t0 = Instant::now();
                for b in b"GET / HTTP/1.1\r\nHost: slow\r\n".iter() {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(200));
                    if t0.elapsed() > Duration::from_secs(3) {
                        break;
                    }
                }
                let out = read_to_close(&mut s);
                (out, t0.elapsed())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        assert_eq!(get(addr, "/").body_str(), "Hello, World!");
    }
    for t in slow {
        let (out, took) = t.join().unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(took < Duration::from_millis(2500), "cut after {took:?}");
    }
}

#[test]
fn overload_answers_503_then_recovers() {
    // Two threads in all: one runs the loop; when it and the spare are both asleep in
    // handlers, nobody is left to accept, so the watchdog answers 503.
    let server = serve_with(
        Server::http("127.0.0.1:0")
            .unwrap()
            .event_loops(1)
            .overload(Overload::Reject),
        sleepy,
    );
    drop(server);
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(1)
        .overload(Overload::Reject)
        .handle_threads(sleepy, 2)
        .unwrap();
    let addr = server.local_addr();
    let busy: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || get(addr, "/sleep/1500").status))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let burst: Vec<_> = (0..10)
        .map(|_| thread::spawn(move || get(addr, "/fast").status))
        .collect();
    let statuses: Vec<u16> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 200),
        "{statuses:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    for b in busy {
        assert_eq!(b.join().unwrap(), 200);
    }
    // Recovered: requests are served again.
    assert_eq!(get(addr, "/after").status, 200);
}

#[test]
fn overload_back_pressure_serves_everyone_eventually() {
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(1)
        .handle_threads(sleepy, 2)
        .unwrap();
    let addr = server.local_addr();
    let t0 = Instant::now();
    let all: Vec<_> = (0..8)
        .map(|i| thread::spawn(move || get(addr, &format!("/sleep/{}", 200 + i)).status))
        .collect();
    for t in all {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn graceful_shutdown_loses_no_received_request() {
    // Handlers that have started: the shutdown must begin while they run (a request
    // that reaches a connection only after it began finds it idle and closed, rightly),
    // and they run for 1.5 s, so that even on a loaded machine none has answered (with
    // keep-alive) before it begins.
    let started = Arc::new(AtomicUsize::new(0));
    let seen = started.clone();
    let server = serve(move |req: Request, res: Response| {
        if req.path().starts_with("/sleep/") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        sleepy(req, res)
    });
    let addr = server.local_addr();
    // In flight: handlers running when shutdown begins.
    let in_flight: Vec<_> = (0..3)
        .map(|i| thread::spawn(move || get(addr, &format!("/sleep/{}", 1500 + i))))
        .collect();
    // Pipelined: a second request already sent behind a slow one.
    let mut piped = Reader::new(connect(addr));
    send(
        &mut piped.stream,
        b"GET /sleep/300 HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    // Idle: must be closed at once.
    let mut idle = Reader::new(connect(addr));
    send(&mut idle.stream, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.response(false).status, 200);
    let until = Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) < 4 && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        4,
        "the slow handlers never started"
    );

    let t0 = Instant::now();
    let report = server.shutdown(Instant::now() + Duration::from_secs(5));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t0.elapsed()
    );
    for (i, t) in in_flight.into_iter().enumerate() {
        let res = t.join().unwrap();
        assert_eq!(res.body_str(), format!("done /sleep/{}", 1500 + i));
        assert_eq!(res.header("connection"), Some("close"));
    }
    assert_eq!(piped.response(false).body_str(), "done /sleep/300");
    assert_eq!(piped.response(false).body_str(), "done /behind");
    assert!(piped.closed());
    assert!(idle.closed());
    assert_eq!(report.cut, 0);
    assert!(report.finished >= 5, "{report:?}");
    // No longer accepting.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn shutdown_deadline_cuts_what_is_left() {
    let server = serve(sleepy);
    let addr = server.local_addr();
    let stuck = thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET /sleep/2000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        read_to_close(&mut s)
    });
    thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let report = server.shutdown(Instant::now() + Duration::from_millis(300));
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(report.cut, 1, "{report:?}");
    let out = stuck.join().unwrap();
    assert!(!out.contains("done"), "{out}");
}

/// Unix only: `Server::unix` exists only there.
#[cfg(unix)]
#[test]
fn unix_socket_listener() {
    let path = std::env::temp_dir().join(format!("spindle-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = Server::unix(&path)
        .unwrap()
        .handle_threads(hello, 4)
        .unwrap();
    assert_eq!(
        server.listen_addr().to_string(),
        format!("unix:{}", path.display())
    );
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: unix\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.ends_with("Hello, World!"), "{out}");
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// Unix only: Windows has no SO_REUSEPORT (see the next test).
#[cfg(unix)]
#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let opts = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let a = Server::bind("127.0.0.1:0", opts).unwrap();
    let addr = a.local_addr().unwrap();
    let b = Server::bind(addr, opts).unwrap();
    let a = a
        .handle_threads(
            |_r: Request, res: Response| {
                res.send(b"a").ok();
            },
            4,
        )
        .unwrap();
    let b = b
        .handle_threads(
            |_r: Request, res: Response| {
                res.send(b"b").ok();
            },
            4,
        )
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        seen.insert(get(addr, "/").body_str().to_string());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "both servers should take connections: {seen:?}"
    );
    // A rolling restart: one goes away gracefully, the other keeps the port answering.
    a.shutdown(Instant::now() + Duration::from_secs(1));
    for _ in 0..20 {
        assert_eq!(get(addr, "/").body_str(), "b");
    }
    drop(b);
}

/// Windows has no SO_REUSEPORT: asking for it is a typed error, not a port bound
/// without it.
#[cfg(not(unix))]
#[test]
fn reuse_port_is_unsupported_where_the_os_has_none() {
    let opts = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let err = Server::bind("127.0.0.1:0", opts).unwrap_err();
    assert_eq!(err.kind(), spindle::ErrorKind::Unsupported, "{err}");
}

#[test]
fn connection_hooks_report_each_state() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .on_connection(move |e| log.lock().unwrap().push((e.id, e.state)))
        .handle_threads(hello, 4)
        .unwrap();
    let mut r = Reader::new(connect(server.local_addr()));
    send(&mut r.stream, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    r.response(false);
    drop(r);
    let t0 = Instant::now();
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|(_, s)| *s == ConnState::Closed)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "no Closed event: {:?}",
            events.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let states: Vec<ConnState> = events.lock().unwrap().iter().map(|(_, s)| *s).collect();
    assert_eq!(states.first(), Some(&ConnState::New));
    assert!(states.contains(&ConnState::Active));
    assert!(states.contains(&ConnState::Idle));
    assert_eq!(states.last(), Some(&ConnState::Closed));
    let ids: std::collections::HashSet<u64> =
        events.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 1);
}

#[test]
fn threads_stay_bounded_under_many_blocking_handlers() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .handle_threads(
            move |_req: Request, res: Response| {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(100));
                r.fetch_sub(1, Ordering::SeqCst);
                res.send(b"ok").ok();
            },
            6,
        )
        .unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..30)
        .map(|_| thread::spawn(move || get(addr, "/").status))
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 6,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert!(server.threads() <= 6);
}
