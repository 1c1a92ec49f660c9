//! Slow HTTP/1.1 peers hold no thread (issue 14): the event loop reads bodies ahead,
//! drains what handlers leave and writes out what the socket did not take, under the
//! minimum data rates. Each test drives slow peers past a bound on a server with few
//! threads while a prober's requests are answered at once.
mod common;

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use spindle::http::StatusCode;
use spindle::server::{Listening, MinRate, Request, Response, Server};

/// A quick rate for tests: 1000 bytes in every 2 s window.
fn quick_rate() -> Option<MinRate> {
    Some(MinRate::new(500, Duration::from_secs(2)))
}

fn server(threads: usize, handler: impl spindle::server::Handler) -> Listening {
    let _ = env_logger::builder().is_test(true).try_init();
    Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(1)
        .min_body_rate(quick_rate())
        .min_write_rate(quick_rate())
        .handle_threads(handler, threads)
        .unwrap()
}

/// `GET /` on a new connection, answered within `bound`.
fn probe(addr: SocketAddr, bound: Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let took = t.elapsed();
    assert!(
        out.starts_with(b"HTTP/1.1 200 "),
        "probe answered {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(took < bound, "a probe waited {took:?} (bound {bound:?})");
}

/// Probes every 100 ms for `time`; the worst latency.
fn probe_for(addr: SocketAddr, time: Duration) -> Duration {
    let until = Instant::now() + time;
    let mut worst = Duration::ZERO;
    while Instant::now() < until {
        let t = Instant::now();
        probe(addr, Duration::from_secs(1));
        worst = worst.max(t.elapsed());
        thread::sleep(Duration::from_millis(100));
    }
    worst
}

/// Reads until EOF or `limit`, returning what came and whether the peer closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {}
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

/// The first example: connections that declare a large body, send one byte and
/// then a byte every 500 ms, to a handler that never reads. With four threads, new
/// requests are still answered at once, and each slow body is cut by the minimum rate
/// (408 from the loop, which was reading it ahead) at the end of its first window.
#[test]
fn trickled_bodies_hold_no_thread_and_are_cut_by_the_rate() {
    let server = server(4, |req: Request, res: Response| {
        let _ = req;
        res.send(b"hello\n").unwrap();
    });
    let addr = server.local_addr();
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx")
                .unwrap();
            s
        })
        .collect();
    let trickle = {
        let slow: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
        thread::spawn(move || {
            for _ in 0..12 {
                thread::sleep(Duration::from_millis(500));
                for mut s in &slow {
                    let _ = s.write_all(b"y");
                }
            }
        })
    };
    let worst = probe_for(addr, Duration::from_millis(1500));
    eprintln!(
        "trickled bodies: probes worst {worst:?}, threads {}",
        server.threads()
    );
    assert!(server.threads() <= 4, "{} threads", server.threads());
    for mut s in slow {
        let (out, closed) = read_until_closed(&mut s, Duration::from_secs(6));
        let text = String::from_utf8_lossy(&out);
        assert!(closed, "a trickling body was not cut");
        assert!(
            text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "a trickling body got {text:?}"
        );
    }
    let cut_after = started.elapsed();
    // One 2 s window (plus the timer's granularity) in which 1000 bytes did not come.
    assert!(
        cut_after < Duration::from_secs(5),
        "the slow bodies were cut only after {cut_after:?}"
    );
    trickle.join().unwrap();
    probe(addr, Duration::from_secs(1));
}

/// A body that fits the read-ahead arrives in pieces: the handler runs once, after the
/// last piece, reads it from memory, and no thread waits meanwhile.
#[test]
fn a_small_body_arrives_whole_before_the_handler_runs() {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = runs.clone();
    let server = server(2, move |mut req: Request, res: Response| {
        let started = Instant::now();
        let mut body = Vec::new();
        req.read_to_end(&mut body).unwrap();
        if req.path() == "/x" {
            let mut seen = seen.lock().unwrap();
            seen.push((started, started.elapsed(), body.len()));
        }
        res.send(format!("got {}", body.len()).as_bytes()).unwrap();
    });
    let addr = server.local_addr();
    let t0 = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n")
                    .unwrap();
                for _ in 0..3 {
                    thread::sleep(Duration::from_millis(300));
                    s.write_all(&[b'z'; 1000]).unwrap();
                }
                let mut r = Reader::new(s);
                let res = r.response(false);
                assert_eq!(res.body_str(), "got 3000");
            })
        })
        .collect();
    // Six bodies in flight with two threads, and the prober is answered throughout.
    let worst = probe_for(addr, Duration::from_millis(800));
    for c in clients {
        c.join().unwrap();
    }
    let runs = runs.lock().unwrap();
    eprintln!(
        "small bodies: {} handler runs, probes worst {worst:?}",
        runs.len()
    );
    assert_eq!(runs.len(), 6);
    for (started, reading, len) in runs.iter() {
        assert_eq!(*len, 3000);
        assert!(
            *reading < Duration::from_millis(50),
            "the handler waited {reading:?} for a body the loop should have read"
        );
        // It ran after the body's last piece (sent 900 ms in), not when the head came.
        let after = started.duration_since(t0);
        assert!(
            after >= Duration::from_millis(800),
            "a handler ran {after:?} after the heads were sent"
        );
    }
}

/// A handler that streams a large body from a trickling client: its read fails with a
/// typed timeout (`io::ErrorKind::TimedOut` carrying a `spindle::Error` of kind
/// Timeout) once a window passes without enough bytes, and the connection closes.
#[test]
fn a_handler_reading_a_trickle_gets_a_typed_timeout() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let server = server(4, move |mut req: Request, res: Response| {
        let mut sink = vec![0u8; 8192];
        let mut total = 0usize;
        loop {
            match req.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    let kind = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<spindle::Error>())
                        .map(|err| err.kind());
                    seen.lock().unwrap().push((e.kind(), kind, total));
                    return;
                }
            }
        }
        res.send(b"whole").unwrap();
    });
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    // More than the read-ahead, so the handler runs and streams the rest.
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    s.write_all(&vec![b'b'; 70_000]).unwrap();
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(8) && !closed {
        thread::sleep(Duration::from_millis(400));
        closed = s.write_all(b"c").is_err();
        let (_, c) = read_until_closed(&mut s, Duration::from_millis(50));
        closed |= c;
    }
    assert!(closed, "the trickle was not cut");
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (io_kind, kind, total) = errors[0];
    assert_eq!(io_kind, IoKind::TimedOut);
    assert_eq!(kind, Some(spindle::ErrorKind::Timeout));
    assert!(
        total >= 65_536,
        "the handler read {total} bytes before the cut"
    );
    probe(addr, Duration::from_secs(1));
}

/// Answers that fit `write_buffer`, to clients that never read them: every handler
/// returns at once (the loop writes what the socket did not take), so a server with two
/// threads keeps answering others; the non-readers are cut by the minimum write rate.
#[test]
fn answers_to_non_readers_are_written_by_the_loop() {
    let returned = Arc::new(AtomicUsize::new(0));
    let count = returned.clone();
    let server = server(2, move |req: Request, res: Response| {
        if req.path() == "/big" {
            res.send(&vec![b'w'; 200_000]).unwrap();
            count.fetch_add(1, Ordering::SeqCst);
        } else {
            res.send(b"hello\n").unwrap();
        }
    });
    let addr = server.local_addr();
    let started = Instant::now();
    // Enough pipelined answers (6 MB each) to fill the kernel's socket buffers (a few
    // MiB on loopback), so that the rest waits with the server.
    let mut non_readers: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = socket2::SockRef::from(&s).set_recv_buffer_size(4096);
            let pipelined = b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n".repeat(30);
            s.write_all(&pipelined).unwrap();
            s
        })
        .collect();
    let worst = probe_for(addr, Duration::from_millis(1500));
    let done = returned.load(Ordering::SeqCst);
    eprintln!(
        "non-readers: {done} big answers handed over, probes worst {worst:?}, threads {}",
        server.threads()
    );
    assert!(
        done >= 5,
        "only {done} handlers returned: they waited on the socket"
    );
    assert!(done < 150, "every answer was taken: nothing waited");
    assert!(server.threads() <= 2, "{} threads", server.threads());
    // Nobody reads: each connection is cut once a write window passes without progress.
    thread::sleep(Duration::from_secs(4));
    for s in &mut non_readers {
        s.set_nonblocking(true).unwrap();
        let mut drained = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => drained += n,
                Err(e) if e.kind() == IoKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        assert!(
            closed,
            "a non-reader was not cut after {:?} ({drained} bytes were waiting)",
            started.elapsed()
        );
    }
    probe(addr, Duration::from_secs(1));
}

/// A body the handler left unread is drained by the loop while the client sends it
/// slowly; no thread waits for it, and the connection then serves its next request.
#[test]
fn unread_bodies_are_drained_by_the_loop() {
    let server = server(2, |req: Request, res: Response| {
        let _ = req;
        res.send(b"hello\n").unwrap();
    });
    let addr = server.local_addr();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 150000\r\n\r\n")
                    .unwrap();
                for _ in 0..10 {
                    s.write_all(&[b'd'; 15_000]).unwrap();
                    thread::sleep(Duration::from_millis(100));
                }
                s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                let mut r = Reader::new(s);
                assert_eq!(r.response(false).body_str(), "hello\n");
                assert_eq!(r.response(false).body_str(), "hello\n");
            })
        })
        .collect();
    let worst = probe_for(addr, Duration::from_millis(900));
    for c in clients {
        c.join().unwrap();
    }
    eprintln!(
        "drains: probes worst {worst:?}, threads {}",
        server.threads()
    );
    assert!(server.threads() <= 2);
}

/// An `Expect: 100-continue` request: the handler's `check_continue` decides before
/// anything is read; a yes sends 100 and the loop reads the body ahead; a no answers
/// at once and reads nothing.
#[test]
fn expect_continue_is_decided_before_the_read_ahead() {
    struct Picky;
    impl spindle::server::Handler for Picky {
        fn handle(&self, mut req: Request, res: Response) {
            let mut body = Vec::new();
            req.read_to_end(&mut body).unwrap();
            res.send(format!("got {}", body.len()).as_bytes()).unwrap();
        }
        fn check_continue(&self, req: &Request) -> StatusCode {
            if req.content_length().unwrap_or(0) > 10 {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::CONTINUE
            }
        }
    }
    let server = server(2, Picky);
    let mut r = Reader::new(connect(server.local_addr()));
    send(
        &mut r.stream,
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(r.response(false).status, 100);
    send(&mut r.stream, b"hello");
    assert_eq!(r.response(false).body_str(), "got 5");
    send(
        &mut r.stream,
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n",
    );
    let res = r.response(false);
    assert_eq!(res.status, 413);
    assert!(r.closed());
}
