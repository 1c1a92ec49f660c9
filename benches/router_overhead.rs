//! Router overhead: the bare hello server against a router of 100 routes with the
//! access-log layer in front of the same hello handler, in one run, under the same
//! load generator. Target: the router stack keeps at least 0.95x the bare
//! requests/s.
//!
//! `cargo bench --bench router_overhead` (uses `wrk` when installed, else a simple
//! keep-alive load loop in Rust; `ROUTER_BENCH_SECS` sets the seconds per round).
//!
//! Three servers: bare hello; router + access log with the `spindle::access` log
//! target disabled (the layer then does nothing); and router + access log with the
//! target enabled, every line formatted into a sink (the full cost of the log except
//! the I/O of writing it).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::handlers::{AccessLogLayer, HandlerExt, Router};
use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::server::{Handler, Listening, Request, Response, Server};

fn hello(_req: Request, mut res: Response) {
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res.send(b"Hello, World!").ok();
}

fn router() -> Router {
    let mut b = Router::builder();
    for i in 0..33 {
        b = b
            .route(&format!("GET /api/v{i}/users/{{id}}"), hello)
            .route(&format!("POST /api/v{i}/users"), hello)
            .route(&format!("GET /static{i}/{{path...}}"), hello);
    }
    b.route("GET /hello", hello).build().expect("routes build")
}

/// Formats each record into nothing: the CPU cost of logging without the I/O.
struct SinkLogger;
impl log::Log for SinkLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target() == "spindle::access"
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let _ = write!(std::io::sink(), "{}", r.args());
        }
    }
    fn flush(&self) {}
}

fn start<H: Handler>(h: H) -> Listening {
    Server::http("127.0.0.1:0")
        .unwrap()
        .handle_threads(h, 32)
        .unwrap()
}

fn wrk_available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

fn secs() -> u64 {
    std::env::var("ROUTER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// Requests per second at `addr`.
fn load(addr: SocketAddr) -> f64 {
    if wrk_available() {
        let out = Command::new("wrk")
            .args([
                "-t1",
                "-c16",
                &format!("-d{}s", secs()),
                &format!("http://{addr}/hello"),
            ])
            .output()
            .expect("wrk runs");
        let text = String::from_utf8_lossy(&out.stdout);
        return text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("wrk output: {text}"));
    }
    // Fallback: 4 keep-alive connections in a tight request loop.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).ok();
                let req = b"GET /hello HTTP/1.1\r\nHost: b\r\n\r\n";
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(req).unwrap();
                    let mut got = Vec::new();
                    while !got.ends_with(b"Hello, World!") {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs()));
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    for t in threads {
        t.join().ok();
    }
    rate
}

/// This process's CPU time (user + system), from /proc; `None` off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100/s).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Requests per second and server CPU microseconds per request at `addr`.
fn measure(addr: SocketAddr) -> (f64, f64) {
    let before = cpu_seconds();
    let t = Instant::now();
    let rate = load(addr);
    let elapsed = t.elapsed().as_secs_f64().min(secs() as f64);
    let cpu = match (before, cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) * 1e6 / (rate * elapsed),
        _ => f64::NAN,
    };
    (rate, cpu)
}

fn main() {
    log::set_logger(&SinkLogger).unwrap();
    log::set_max_level(log::LevelFilter::Off);
    let bare = start(hello);
    let routed = start(router().with(AccessLogLayer::new()));
    println!(
        "load generator: {}",
        if wrk_available() {
            "wrk -t1 -c16"
        } else {
            "rust loop, 4 connections (install wrk for better numbers)"
        }
    );
    // Interleaved rounds; the best of each, to damp the noise of a shared machine.
    // Server CPU per request is printed too: on a shared machine it is steadier than
    // requests/s (the process CPU is the in-process servers' only; wrk is another
    // process).
    let best = |a: (f64, f64), b: (f64, f64)| (a.0.max(b.0), a.1.min(b.1));
    let (mut b, mut r, mut rl) = ((0f64, f64::MAX), (0f64, f64::MAX), (0f64, f64::MAX));
    for round in 0..2 {
        log::set_max_level(log::LevelFilter::Off);
        let x = measure(bare.local_addr());
        b = best(b, x);
        let y = measure(routed.local_addr());
        r = best(r, y);
        log::set_max_level(log::LevelFilter::Info);
        let z = measure(routed.local_addr());
        rl = best(rl, z);
        println!(
            "round {round}: bare {:.0} req/s {:.1} us/req, router+log(off) {:.0} {:.1}, router+log(on) {:.0} {:.1}",
            x.0, x.1, y.0, y.1, z.0, z.1
        );
    }
    println!(
        "bare hello:                  {:>9.0} req/s  {:>5.1} us CPU/req",
        b.0, b.1
    );
    println!(
        "router(100)+access log, off: {:>9.0} req/s  {:>5.1} us CPU/req  ratio {:.3}",
        r.0,
        r.1,
        r.0 / b.0
    );
    println!(
        "router(100)+access log, on:  {:>9.0} req/s  {:>5.1} us CPU/req  ratio {:.3}",
        rl.0,
        rl.1,
        rl.0 / b.0
    );
    println!("target: ratio >= 0.95");
}
