//! The HTTP/2 client: prior knowledge (h2c) against spindle's server and nghttpd, ALPN h2
//! over TLS against nghttpd, multiplexing, the concurrency limit, retries of refused
//! requests, typed RST_STREAM / GOAWAY errors, and several-MiB bodies both ways with
//! their checksums compared.
mod common;
#[cfg(feature = "tls")]
mod tls_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::client::conn::http2;
use spindle::client::Body;
use spindle::h2::proto::{Config, Connection, Event};
use spindle::h2::{Reason, StreamId};
use spindle::http::{self, Version};
use spindle::server::{ConnState, Request, Response, Server};
use spindle::{Client, ErrorKind};

const MIB: usize = 1024 * 1024;

fn crc(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Deterministic, incompressible-looking bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn h2c_client() -> Client {
    Client::builder()
        .http2_prior_knowledge()
        .env_proxy(false)
        .timeout(Duration::from_secs(30))
        .build()
}

/// spindle's server with an app for the tests, counting the connections it accepted.
struct App {
    listening: spindle::server::Listening,
    connections: Arc<AtomicUsize>,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listening.local_addr())
    }
}

fn app() -> App {
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .on_connection(move |e| {
            if e.state == ConnState::New {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
    let listening = common::serve_with(server, |mut req: Request, mut res: Response| {
        let path = req.path().to_owned();
        match path.as_str() {
            // The request body's length and CRC-32.
            "/sum" => {
                let mut body = Vec::new();
                req.read_to_end(&mut body).unwrap();
                res.send(format!("{} {:08x}", body.len(), crc(&body)).as_bytes())
                    .ok();
            }
            // Streams the request body back as it arrives.
            "/echo" => {
                let mut out = res.start().unwrap();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    match req.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            p if p.starts_with("/bytes/") => {
                let n: usize = p["/bytes/".len()..].parse().unwrap_or(0);
                res.headers_mut().insert(
                    "x-crc",
                    format!("{:08x}", crc(&pattern(n, 7))).parse().unwrap(),
                );
                res.send(&pattern(n, 7)).ok();
            }
            _ => {
                let text = format!("{} {} {:?}", req.method(), path, req.version());
                res.send(text.as_bytes()).ok();
            }
        }
    });
    App {
        listening,
        connections,
    }
}

#[test]
fn prior_knowledge_get_and_post_against_spindle() {
    let app = app();
    let client = h2c_client();
    let res = client.get(app.url("/hello?x=1")).send().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.alpn(), None, "no TLS");
    assert_eq!(res.content_length(), Some(19));
    assert_eq!(res.text().unwrap(), "GET /hello HTTP/2.0");
    let res = client
        .post(app.url("/sum"))
        .body("twelve bytes")
        .send()
        .unwrap();
    assert_eq!(
        res.text().unwrap(),
        format!("12 {:08x}", crc(b"twelve bytes"))
    );
    // A streamed body of unknown length.
    let res = client
        .post(app.url("/sum"))
        .body(Body::reader(std::io::Cursor::new(b"streamed".to_vec())))
        .send()
        .unwrap();
    assert_eq!(res.text().unwrap(), format!("8 {:08x}", crc(b"streamed")));
    let res = client.head(app.url("/hello")).send().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().unwrap(), b"");
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "one connection for all"
    );
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn clear_idle_closes_the_shared_connection() {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .on_connection(move |e| {
            if e.state == ConnState::Closed {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
    let listening = common::serve_with(server, |_req: Request, res: Response| {
        res.send(b"hi").ok();
    });
    let client = h2c_client();
    let url = format!("http://{}/", listening.local_addr());
    assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "hi");
    assert_eq!(client.idle_connections(), 1);
    client.clear_idle();
    assert_eq!(client.idle_connections(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never saw the connection close"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // And a new one is opened on demand.
    assert_eq!(client.get(&url).send().unwrap().text().unwrap(), "hi");
}

#[test]
fn without_prior_knowledge_plain_http_stays_http1() {
    let app = app();
    let client = Client::builder().env_proxy(false).build();
    let res = client.get(app.url("/v")).send().unwrap();
    assert_eq!(res.version(), Version::HTTP_11);
    assert_eq!(res.text().unwrap(), "GET /v HTTP/1.1");
}

#[test]
fn eight_threads_multiplex_over_one_connection() {
    let app = Arc::new(app());
    let client = h2c_client();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            let app = app.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let path = format!("/t{t}/r{i}");
                    let res = client.get(app.url(&path)).send().unwrap();
                    assert_eq!(res.version(), Version::HTTP_2);
                    assert_eq!(res.text().unwrap(), format!("GET {path} HTTP/2.0"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "800 requests from 8 threads share one TCP connection"
    );
}

#[test]
fn several_mib_both_ways_with_checksums() {
    let app = app();
    let client = h2c_client();
    // Download: 8 MiB, far beyond the 1 MiB stream window, read in small pieces.
    let mut res = client
        .get(app.url(&format!("/bytes/{}", 8 * MIB)))
        .send()
        .unwrap();
    let expected = res.header("x-crc").unwrap().to_owned();
    let mut got = Vec::new();
    let mut buf = [0u8; 3000];
    loop {
        let n = res.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), 8 * MIB);
    assert_eq!(format!("{:08x}", crc(&got)), expected);
    // Upload: 6 MiB in memory, then 5 MiB streamed from a reader.
    let up = pattern(6 * MIB, 3);
    let res = client.put(app.url("/sum")).body(up.clone()).send().unwrap();
    assert_eq!(
        res.text().unwrap(),
        format!("{} {:08x}", up.len(), crc(&up))
    );
    let up2 = pattern(5 * MIB, 4);
    let res = client
        .post(app.url("/sum"))
        .body(Body::sized_reader(
            std::io::Cursor::new(up2.clone()),
            up2.len() as u64,
        ))
        .send()
        .unwrap();
    assert_eq!(
        res.text().unwrap(),
        format!("{} {:08x}", up2.len(), crc(&up2))
    );
    // Both ways at once on one stream: the server echoes as it reads.
    let up3 = pattern(4 * MIB, 5);
    let res = client
        .post(app.url("/echo"))
        .body(up3.clone())
        .send()
        .unwrap();
    let back = res.bytes_limited(64 * MIB as u64).unwrap();
    assert_eq!(back.len(), up3.len());
    assert_eq!(crc(&back), crc(&up3));
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn parallel_large_transfers_share_the_connection() {
    let app = Arc::new(app());
    let client = h2c_client();
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let client = client.clone();
            let app = app.clone();
            std::thread::spawn(move || {
                let up = pattern(2 * MIB + t as usize, t);
                let res = client
                    .post(app.url("/echo"))
                    .body(up.clone())
                    .send()
                    .unwrap();
                let back = res.bytes_limited(64 * MIB as u64).unwrap();
                assert_eq!(crc(&back), crc(&up), "thread {t}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_an_unread_body_cancels_only_its_stream() {
    let app = app();
    let client = h2c_client();
    for _ in 0..5 {
        let res = client
            .get(app.url(&format!("/bytes/{}", 4 * MIB)))
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        drop(res); // RST_STREAM CANCEL; the connection stays
    }
    let res = client.get(app.url("/after")).send().unwrap();
    assert_eq!(res.text().unwrap(), "GET /after HTTP/2.0");
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn low_level_handshake_multiplexes_and_closes_when_dropped() {
    let app = app();
    let stream = TcpStream::connect(app.listening.local_addr()).unwrap();
    let (sender, conn) = http2::handshake(stream).unwrap();
    let driver = std::thread::spawn(move || conn.run());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let sender = sender.clone();
            let url = app.url(&format!("/bytes/{}", 300_000 + i));
            std::thread::spawn(move || {
                let req = http::Request::get(url).body(()).unwrap();
                let res = sender.send_request(req).unwrap();
                assert_eq!(res.version(), Version::HTTP_2);
                let want = res.headers()["x-crc"].to_str().unwrap().to_owned();
                let mut body = res.into_body();
                let mut got = Vec::new();
                body.read_to_end(&mut got).unwrap();
                assert!(body.is_end_stream());
                assert_eq!(format!("{:08x}", crc(&got)), want);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(sender.is_ready());
    drop(sender);
    driver.join().unwrap().unwrap();
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------ scripted raw servers

/// What a scripted server does with a request.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// 200 with the body "ok <connection number>", after a pause.
    Answer(Duration),
    /// RST_STREAM with this code.
    Reset(Reason),
    /// GOAWAY with this last-stream-id and code, then close.
    GoAway(u32, Reason),
    /// The head, 5 bytes of body, then RST_STREAM with this code.
    ResetMidBody(Reason),
    /// 103 Early Hints, then 200 with "body" and trailers `x-sum: 42`.
    HintsAndTrailers,
}

/// A tiny HTTP/2 server on the sans-IO state machine: `script(conn, n)` decides what
/// the n-th request (counted over the whole server) on connection `conn` gets.
struct Raw {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
}

fn raw_server(cfg: Config, script: impl Fn(usize, usize) -> Act + Send + Sync + 'static) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let script = Arc::new(script);
    let requests = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let conn_no = count.fetch_add(1, Ordering::SeqCst) + 1;
            let (cfg, script, requests) = (cfg.clone(), script.clone(), requests.clone());
            std::thread::spawn(move || serve_raw(stream, cfg, conn_no, &*script, &requests));
        }
    });
    Raw { addr, accepted }
}

fn serve_raw(
    mut stream: TcpStream,
    cfg: Config,
    conn_no: usize,
    script: &(dyn Fn(usize, usize) -> Act + Send + Sync),
    requests: &AtomicUsize,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut conn = Connection::server(cfg, Instant::now());
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut later: Vec<(Instant, StreamId)> = Vec::new();
    loop {
        let out = conn.take_output();
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if conn.is_closed() {
            return;
        }
        let now = Instant::now();
        let (due, rest): (Vec<_>, Vec<_>) = later.into_iter().partition(|(t, _)| *t <= now);
        later = rest;
        for (_, id) in due {
            let res = http::Response::builder().status(200).body(()).unwrap();
            if conn.send_response(id, &res, false).is_ok() {
                let _ = conn.send_data(id, format!("ok {conn_no}").as_bytes(), true);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        let used = match conn.recv(&pending) {
            Ok(n) => n,
            Err(_) => {
                let _ = stream.write_all(&conn.take_output());
                return;
            }
        };
        pending.drain(..used);
        let mut requests_seen = Vec::new();
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Request { id, .. } => requests_seen.push(id),
                Event::Data { id, data, .. } => {
                    let n = data.len();
                    conn.release_capacity(id, n);
                }
                _ => {}
            }
        }
        for id in requests_seen {
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            match script(conn_no, n) {
                Act::Answer(pause) => later.push((Instant::now() + pause, id)),
                Act::Reset(reason) => conn.reset(id, reason),
                Act::GoAway(last, reason) => {
                    // A GOAWAY naming a last-stream-id of our choosing, then close.
                    let mut frame = vec![0, 0, 8, 7, 0, 0, 0, 0, 0];
                    frame.extend_from_slice(&last.to_be_bytes());
                    frame.extend_from_slice(&u32::from(reason).to_be_bytes());
                    let _ = stream.write_all(&conn.take_output());
                    let _ = stream.write_all(&frame);
                    std::thread::sleep(Duration::from_millis(50));
                    return;
                }
                Act::HintsAndTrailers => {
                    let hints = http::Response::builder()
                        .status(103)
                        .header("link", "</style.css>; rel=preload")
                        .body(())
                        .unwrap();
                    let _ = conn.send_response(id, &hints, false);
                    let res = http::Response::builder().status(200).body(()).unwrap();
                    let _ = conn.send_response(id, &res, false);
                    let _ = conn.send_data(id, b"body", false);
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("x-sum", "42".parse().unwrap());
                    let _ = conn.send_trailers(id, &trailers);
                }
                Act::ResetMidBody(reason) => {
                    let res = http::Response::builder().status(200).body(()).unwrap();
                    let _ = conn.send_response(id, &res, false);
                    let _ = conn.send_data(id, b"hello", false);
                    let _ = stream.write_all(&conn.take_output());
                    std::thread::sleep(Duration::from_millis(20));
                    conn.reset(id, reason);
                }
            }
        }
    }
}

fn raw_url(raw: &Raw, path: &str) -> String {
    format!("http://{}{path}", raw.addr)
}

#[test]
fn max_concurrent_streams_reached_opens_a_second_connection() {
    let cfg = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let raw = raw_server(cfg, |_, _| Act::Answer(Duration::from_millis(300)));
    let client = h2c_client();
    // The first exchange brings the server's SETTINGS (limit 1).
    assert_eq!(
        client
            .get(raw_url(&raw, "/"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "ok 1"
    );
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            let url = raw_url(&raw, "/");
            std::thread::spawn(move || client.get(url).send().unwrap().text().unwrap())
        })
        .collect();
    let mut bodies: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    bodies.sort();
    assert_eq!(bodies, ["ok 1", "ok 2"], "one stream on each connection");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
    // Both connections stay shared: sequential requests need no third.
    for _ in 0..3 {
        client
            .get(raw_url(&raw, "/"))
            .send()
            .unwrap()
            .text()
            .unwrap();
    }
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn a_slow_answer_times_out_and_leaves_the_connection_usable() {
    let raw = raw_server(Config::default(), |_, n| match n {
        1 => Act::Answer(Duration::from_secs(3)),
        _ => Act::Answer(Duration::ZERO),
    });
    let client = Client::builder()
        .http2_prior_knowledge()
        .env_proxy(false)
        .read_timeout(Duration::from_millis(300))
        .build();
    let started = Instant::now();
    let err = client.get(raw_url(&raw, "/slow")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The timed-out stream was cancelled; the connection carries the next request.
    let res = client.get(raw_url(&raw, "/")).send().unwrap();
    assert_eq!(res.text().unwrap(), "ok 1");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn interim_heads_are_skipped_and_trailers_arrive_after_the_body() {
    let raw = raw_server(Config::default(), |_, _| Act::HintsAndTrailers);
    let client = h2c_client();
    let mut res = client.get(raw_url(&raw, "/")).send().unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.trailers().is_none(), "not before the body's end");
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "body");
    assert_eq!(res.trailers().unwrap()["x-sum"], "42");
}

#[test]
fn refused_stream_is_retried_once_on_a_fresh_connection() {
    let raw = raw_server(Config::default(), |conn, _| match conn {
        1 => Act::Reset(Reason::RefusedStream),
        _ => Act::Answer(Duration::ZERO),
    });
    let client = h2c_client();
    let res = client
        .post(raw_url(&raw, "/"))
        .body("in memory")
        .send()
        .unwrap();
    assert_eq!(
        res.text().unwrap(),
        "ok 2",
        "answered on the second connection"
    );
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn refused_twice_fails_typed_and_streamed_bodies_are_not_retried() {
    let raw = raw_server(Config::default(), |_, _| Act::Reset(Reason::RefusedStream));
    let client = h2c_client();
    let err = client.get(raw_url(&raw, "/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamReset, "{err}");
    assert_eq!(err.h2_reason(), Some(Reason::RefusedStream));
    assert_eq!(
        raw.accepted.load(Ordering::SeqCst),
        2,
        "retried exactly once"
    );
    let before = raw.accepted.load(Ordering::SeqCst);
    let err = client
        .post(raw_url(&raw, "/"))
        .body(Body::reader(std::io::Cursor::new(b"once".to_vec())))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamReset, "{err}");
    // A fresh connection may be opened for it, but the request is not sent twice.
    assert!(raw.accepted.load(Ordering::SeqCst) <= before + 1);
}

#[test]
fn request_above_goaway_last_stream_id_is_retried() {
    let raw = raw_server(Config::default(), |conn, _| match conn {
        1 => Act::GoAway(0, Reason::NoError),
        _ => Act::Answer(Duration::ZERO),
    });
    let client = h2c_client();
    let res = client.get(raw_url(&raw, "/")).send().unwrap();
    assert_eq!(res.text().unwrap(), "ok 2");
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn goaway_with_an_error_is_a_typed_error() {
    // last-stream-id 1: the server says it may have processed the request, so it is not
    // retried.
    let raw = raw_server(Config::default(), |_, _| {
        Act::GoAway(1, Reason::InternalError)
    });
    let client = h2c_client();
    let err = client.get(raw_url(&raw, "/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GoAway, "{err}");
    assert_eq!(err.h2_reason(), Some(Reason::InternalError));
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn rst_stream_is_a_typed_error_before_and_during_the_body() {
    let raw = raw_server(Config::default(), |_, n| match n {
        1 => Act::Reset(Reason::InternalError),
        2 => Act::ResetMidBody(Reason::Cancel),
        _ => Act::Answer(Duration::ZERO),
    });
    let client = h2c_client();
    let err = client.get(raw_url(&raw, "/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamReset, "{err}");
    assert_eq!(err.h2_reason(), Some(Reason::InternalError));
    let res = client.get(raw_url(&raw, "/")).send().unwrap();
    assert_eq!(res.status(), 200);
    let err = res.bytes().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamReset, "{err}");
    assert_eq!(err.h2_reason(), Some(Reason::Cancel));
    // A stream reset leaves the connection usable.
    assert_eq!(
        client
            .get(raw_url(&raw, "/"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "ok 1"
    );
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------------------ nghttpd

struct Nghttpd {
    child: Child,
    port: u16,
    dir: tempdir::Dir,
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    use std::path::{Path, PathBuf};
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "spindle-h2client-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nghttpd serving `dir` (TLS with `cert`/`key`, else cleartext h2c).
fn nghttpd(dir: tempdir::Dir, tls: Option<(&Path, &Path)>) -> Option<Nghttpd> {
    if !common::tool_available("nghttpd") {
        return None;
    }
    let port = free_port();
    let mut cmd = Command::new("nghttpd");
    cmd.arg("-a").arg("127.0.0.1").arg("-d").arg(dir.path());
    match tls {
        None => {
            cmd.arg("--no-tls").arg(port.to_string());
        }
        Some((cert, key)) => {
            cmd.arg(port.to_string()).arg(key).arg(cert);
        }
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nghttpd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nghttpd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Nghttpd { child, port, dir })
}

fn files(tag: &str) -> (tempdir::Dir, Vec<(String, u32, usize)>) {
    let dir = tempdir::Dir::new(tag);
    let mut list = Vec::new();
    for (i, size) in [12usize, 100_000, 3 * MIB + 17, 9 * MIB]
        .into_iter()
        .enumerate()
    {
        let data = pattern(size, i as u32 + 11);
        let name = format!("f{i}.bin");
        std::fs::write(dir.path().join(&name), &data).unwrap();
        list.push((name, crc(&data), size));
    }
    (dir, list)
}

#[test]
fn h2c_downloads_from_nghttpd_with_checksums() {
    let (dir, list) = files("h2c");
    let Some(server) = nghttpd(dir, None) else {
        return;
    };
    let client = h2c_client();
    let list = Arc::new(list);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, list) = (client.clone(), list.clone());
            let port = server.port;
            std::thread::spawn(move || {
                for (name, sum, size) in list.iter().cycle().skip(t).take(4) {
                    let res = client
                        .get(format!("http://127.0.0.1:{port}/{name}"))
                        .send()
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    assert_eq!(res.version(), Version::HTTP_2);
                    let body = res.bytes_limited(64 * MIB as u64).unwrap();
                    assert_eq!(body.len(), *size, "{name}");
                    assert_eq!(crc(&body), *sum, "{name}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.idle_connections(), 1, "one shared connection");
    let res = client
        .get(format!("http://127.0.0.1:{}/missing", server.port))
        .send()
        .unwrap();
    assert_eq!(res.status(), 404);
    drop(server.dir.path().to_owned());
}

#[cfg(feature = "tls")]
#[test]
fn alpn_h2_over_tls_against_nghttpd_by_default() {
    let pki_dir = tempdir::Dir::new("pki");
    let ca = tls_support::Ca::new("spindle h2 client test CA");
    let leaf = ca.issue("localhost", &["localhost", "127.0.0.1"], false);
    let (cert, key) = leaf.write(pki_dir.path(), "localhost");
    let (dir, list) = files("tls");
    let Some(server) = nghttpd(dir, Some((&cert, &key))) else {
        return;
    };
    let client = Client::builder()
        .env_proxy(false)
        .timeout(Duration::from_secs(30))
        .add_root_certificate(spindle::tls::Certificate::from_pem(&ca.pem()).unwrap())
        .tls_built_in_root_certs(false)
        .build();
    let client = Arc::new(client);
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, list, errors) = (client.clone(), list.clone(), errors.clone());
            let port = server.port;
            std::thread::spawn(move || {
                for (name, sum, size) in list.iter().cycle().skip(t).take(4) {
                    let res = client
                        .get(format!("https://localhost:{port}/{name}"))
                        .send()
                        .unwrap();
                    assert_eq!(res.alpn(), Some(&b"h2"[..]));
                    assert_eq!(res.version(), Version::HTTP_2);
                    let body = res.bytes_limited(64 * MIB as u64).unwrap();
                    if body.len() != *size || crc(&body) != *sum {
                        errors.lock().unwrap().push(format!(
                            "{name}: got {} bytes crc {:08x}, want {size} {sum:08x}",
                            body.len(),
                            crc(&body)
                        ));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    assert_eq!(client.idle_connections(), 1, "one shared TLS connection");
    // Uploads over TLS: nghttpd takes (and ignores) a request body and answers with the
    // file; several MiB must go out under flow control while other streams download.
    let (name, sum, size) = list[2].clone();
    let threads: Vec<_> = (0..3u32)
        .map(|t| {
            let client = client.clone();
            let url = format!("https://localhost:{}/{name}", server.port);
            std::thread::spawn(move || {
                let res = client.post(url).body(pattern(6 * MIB, t)).send().unwrap();
                assert_eq!(res.status(), 200);
                let body = res.bytes_limited(64 * MIB as u64).unwrap();
                (body.len(), crc(&body))
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (size, sum));
    }
    assert_eq!(client.idle_connections(), 1);
    // Turning the offer off gives HTTP/1.1 from the same server.
    let h1 = Client::builder()
        .env_proxy(false)
        .tls_offer_h2(false)
        .add_root_certificate(spindle::tls::Certificate::from_pem(&ca.pem()).unwrap())
        .build()
        .get(format!("https://localhost:{}/f0.bin", server.port))
        .send();
    // nghttpd speaks only HTTP/2: without h2 offered the handshake or exchange fails.
    assert!(h1.is_err() || h1.is_ok_and(|r| r.version() != Version::HTTP_2));
}

// -------------------------------------------------------------------------- nginx

/// nginx serving HTTP/2 over TLS (ALPN h2): `/conn` answers with nginx's connection
/// number and protocol, `/big.bin` is a file of several MiB.
#[cfg(feature = "tls")]
struct NginxH2 {
    _nginx: common::nginx::Nginx,
    port: u16,
}

#[cfg(feature = "tls")]
fn nginx_h2(ca: &tls_support::Ca, big: &[u8]) -> Option<NginxH2> {
    // Removed when the nginx is dropped.
    let dir = std::env::temp_dir().join(format!("spindle-h2client-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.display().to_string();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/big.bin"), big).unwrap();
    ca.issue("localhost", &["localhost", "127.0.0.1"], false)
        .write(&dir, "good");
    let port = free_port();
    let http = format!(
        r#"
    types {{ application/octet-stream bin; }}
    keepalive_requests 100000;
    http2_max_requests 100000;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {d}/good.pem;
        ssl_certificate_key {d}/good.key;
        root {d}/www;
        location = /conn {{
            return 200 "conn=$connection proto=$server_protocol alpn=$ssl_alpn_protocol\n";
        }}
    }}"#
    );
    let Some(nginx) = common::nginx::Nginx::start(&dir, &http, port) else {
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    };
    Some(NginxH2 {
        _nginx: nginx,
        port,
    })
}

#[cfg(feature = "tls")]
#[test]
fn nginx_over_tls_multiplexes_eight_threads_on_one_connection() {
    let ca = tls_support::Ca::new("spindle h2 nginx CA");
    let big = pattern(5 * MIB + 3, 99);
    let Some(nginx) = nginx_h2(&ca, &big) else {
        return;
    };
    let client = Client::builder()
        .env_proxy(false)
        .timeout(Duration::from_secs(30))
        .add_root_certificate(spindle::tls::Certificate::from_pem(&ca.pem()).unwrap())
        .tls_built_in_root_certs(false)
        .build();
    let url = format!("https://localhost:{}/conn", nginx.port);
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, seen) = (client.clone(), url.clone(), seen.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let res = client.get(&url).send().unwrap();
                    assert_eq!(res.version(), Version::HTTP_2);
                    let text = res.text().unwrap();
                    assert!(text.contains("proto=HTTP/2.0 alpn=h2"), "{text}");
                    seen.lock().unwrap().insert(text);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "nginx saw one connection: {seen:?}");
    let res = client
        .get(format!("https://localhost:{}/big.bin", nginx.port))
        .send()
        .unwrap();
    let body = res.bytes_limited(64 * MIB as u64).unwrap();
    assert_eq!(body.len(), big.len());
    assert_eq!(crc(&body), crc(&big));
}

#[test]
fn a_server_that_never_acknowledges_settings_fails_the_connection() {
    // Sends its own (empty) SETTINGS, never an ACK, never an answer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let mut buf = [0u8; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let cfg = Config {
        settings_timeout: Duration::from_millis(300),
        ..http2::Builder::default_config()
    };
    let client = Client::builder()
        .env_proxy(false)
        .http2_prior_knowledge()
        .http2_builder(http2::Builder::new().config(cfg))
        .timeout(Duration::from_secs(10))
        .build();
    let started = Instant::now();
    let err = client.get(format!("http://{addr}/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Http2, "{err}");
    assert_eq!(err.h2_reason(), Some(Reason::SettingsTimeout));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[cfg(feature = "tls")]
#[test]
fn low_level_handshake_over_a_tls_stream() {
    use spindle::tls::{NativeTlsConnector, TlsConnector};
    let pki_dir = tempdir::Dir::new("pki-ll");
    let ca = tls_support::Ca::new("spindle h2 low-level CA");
    let (cert, key) = ca
        .issue("localhost", &["localhost"], false)
        .write(pki_dir.path(), "localhost");
    let (dir, list) = files("tls-ll");
    let Some(server) = nghttpd(dir, Some((&cert, &key))) else {
        return;
    };
    let tls: NativeTlsConnector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&ca.pem()).unwrap())
        .request_alpns(&["h2"])
        .build()
        .unwrap()
        .into();
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let stream = tls.connect("localhost", Box::new(tcp)).unwrap();
    assert_eq!(stream.negotiated_alpn(), Some(&b"h2"[..]));
    let (sender, conn) = http2::handshake(stream).unwrap();
    let driver = std::thread::spawn(move || conn.run());
    let threads: Vec<_> = list
        .iter()
        .cloned()
        .map(|(name, sum, size)| {
            let sender = sender.clone();
            let url = format!("https://localhost:{}/{name}", server.port);
            std::thread::spawn(move || {
                let res = sender
                    .send_request(http::Request::get(url).body(()).unwrap())
                    .unwrap();
                let mut got = Vec::new();
                res.into_body().read_to_end(&mut got).unwrap();
                assert_eq!((got.len(), crc(&got)), (size, sum), "{name}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(sender);
    driver.join().unwrap().unwrap();
}

/// A server on spindle that answers each request with its version, body length and
/// CRC-32, with `threads` handler threads.
fn checksum_server(server: Server, threads: usize) -> spindle::server::Listening {
    server
        .handle_threads(
            |mut req: Request, res: Response| {
                let mut body = Vec::new();
                if req.read_to_end(&mut body).is_err() {
                    return;
                }
                let text = format!("{:?} {} {:08x}", req.version(), body.len(), crc(&body));
                res.send(text.as_bytes()).ok();
            },
            threads,
        )
        .unwrap()
}

/// `threads` threads each POST `rounds` bodies (the first of `big` bytes, then small
/// ones) and check the echoed length and checksum.
fn upload_from_threads(client: &Client, url: &str, threads: u32, rounds: u32, big: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (client, url) = (client.clone(), url.to_owned());
            std::thread::spawn(move || {
                for i in 0..rounds {
                    let size = if i == 0 { big } else { 1000 * i as usize };
                    let body = pattern(size, t * 100 + i);
                    let res = client.post(&url).body(body.clone()).send().unwrap();
                    assert_eq!(res.version(), Version::HTTP_2);
                    assert_eq!(
                        res.text().unwrap(),
                        format!("HTTP/2.0 {} {:08x}", body.len(), crc(&body))
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[cfg(feature = "tls")]
#[test]
fn alpn_h2_against_spindles_https_server_both_ways() {
    let ca = tls_support::Ca::new("spindle h2 self CA");
    let leaf = ca.issue("localhost", &["localhost"], false);
    let acceptor = spindle::tls::Acceptor::from_pem(&leaf.chain_pem(), &leaf.key_pem()).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let server = Server::https("127.0.0.1:0", acceptor)
        .unwrap()
        .on_connection(move |e| {
            if e.state == ConnState::New {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
    let listening = checksum_server(server, 16);
    let client = Client::builder()
        .env_proxy(false)
        .timeout(Duration::from_secs(30))
        .add_root_certificate(spindle::tls::Certificate::from_pem(&ca.pem()).unwrap())
        .tls_built_in_root_certs(false)
        .build();
    let url = format!("https://localhost:{}/", listening.local_addr().port());
    let res = client.get(&url).send().unwrap();
    assert_eq!(res.alpn(), Some(&b"h2"[..]));
    assert_eq!(res.text().unwrap(), "HTTP/2.0 0 00000000");
    // Several MiB up, one at a time, then 8 threads of small uploads at once (many
    // concurrent big uploads stall spindle's server: see the ignored test below).
    for i in 0..3 {
        let body = pattern(3 * MIB + i, i as u32);
        let res = client.put(&url).body(body.clone()).send().unwrap();
        assert_eq!(
            res.text().unwrap(),
            format!("HTTP/2.0 {} {:08x}", body.len(), crc(&body))
        );
    }
    upload_from_threads(&client, &url, 8, 10, 64 * 1024);
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one TLS connection");
}

/// 8 streams of one connection upload 3 MiB each at once, to a server with more and
/// with fewer handler threads than streams. Streams waiting for a thread must not hold
/// the connection window the streams being read need (the server once stalled at
/// exact multiples of its 1 MiB stream window).
#[test]
fn concurrent_big_uploads_to_spindles_server() {
    for threads in [16, 4] {
        let listening = checksum_server(Server::http("127.0.0.1:0").unwrap(), threads);
        let client = Client::builder()
            .http2_prior_knowledge()
            .env_proxy(false)
            .timeout(Duration::from_secs(10))
            .build();
        let url = format!("http://{}/", listening.local_addr());
        upload_from_threads(&client, &url, 8, 10, 3 * MIB);
    }
}

#[test]
fn eight_threads_upload_to_hyper_with_checksums() {
    // hyper's HTTP/2 server (tokio) as a neutral peer, with spindle's window sizes.
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service =
                        service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let text = format!("HTTP/2.0 {} {:08x}", body.len(), crc(&body));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                bytes::Bytes::from(text),
                            )))
                        });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .initial_stream_window_size(1 << 20)
                        .initial_connection_window_size(4 << 20)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    let client = h2c_client();
    upload_from_threads(&client, &format!("http://{addr}/"), 8, 10, 3 * MIB);
}
