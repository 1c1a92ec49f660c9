//! Hello-world servers side by side under one load generator.
//!
//! `cargo bench --bench servers` runs spindle, tiny_http and hyper 1.x (tokio,
//! multi-thread, auto HTTP/1 + h2c) in turn, each in a child process pinned to CPU 0,
//! with wrk pinned to CPU 1, and prints requests/s, p99 latency, server CPU per request
//! and RSS, with spindle's ratio to each peer.
//!
//! Environment: `BENCH_SECS` (default 5) per run, `BENCH_RUNS` (default 3; medians are
//! reported), `BENCH_SERVERS` (default `spindle,tiny_http,hyper`), `BENCH_SCENARIOS`
//! (default `a,b,c,d,e`), `BENCH_IDLE` (idle connections in scenario d, default 2000).
//! Needs `wrk` and `taskset` (Debian: wrk, util-linux). Loopback only; every child is
//! ended by its PID.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HELLO: &[u8] = b"Hello, World!";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(&args[i + 1], &args[i + 2]);
        return;
    }
    raise_fd_limit();
    let secs: u64 = env_or("BENCH_SECS", 5);
    let runs: usize = env_or("BENCH_RUNS", 3);
    let idle: usize = env_or("BENCH_IDLE", 2000);
    let servers: Vec<String> = env_list("BENCH_SERVERS", "spindle,tiny_http,hyper");
    let scenarios: Vec<String> = env_list("BENCH_SCENARIOS", "a,b,c,d,e");
    for tool in ["wrk", "taskset"] {
        if !tool_exists(tool) {
            eprintln!("benchmark needs `{tool}` (apt-get install wrk util-linux)");
            std::process::exit(2);
        }
    }
    println!(
        "# hello-world servers, {} s per run, median of {} runs; server on CPU 0, wrk on CPU 1",
        secs, runs
    );
    let mut table: BTreeMap<(String, String), Vec<Measure>> = BTreeMap::new();
    for scenario in &scenarios {
        for run in 0..runs {
            for server in &servers {
                let m = measure(server, scenario, secs, idle);
                eprintln!("  run {run} {scenario} {server}: {m:?}");
                table
                    .entry((scenario.clone(), server.clone()))
                    .or_default()
                    .push(m);
            }
        }
    }
    print_table(&table, &servers, &scenarios);
}

fn scenario_name(s: &str) -> &'static str {
    match s {
        "a" => "(a) keep-alive, 16 connections",
        "b" => "(b) keep-alive, 256 connections",
        "c" => "(c) new connection per request, 16 at a time",
        "d" => "(d) as (a) with idle keep-alive connections held open",
        "e" => "(e) 10,000 idle keep-alive connections, memory only",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, Default)]
struct Measure {
    rps: f64,
    p99_ms: f64,
    cpu_us_per_req: f64,
    rss_mib: f64,
    errors: u64,
    /// Scenario d: idle connections that answered after the load.
    idle_answered: Option<(usize, usize)>,
    /// wrk's connection count versus the connections that got at least one answer.
    connections_served: Option<(usize, usize)>,
}

fn measure(server: &str, scenario: &str, secs: u64, idle: usize) -> Measure {
    let addr = free_addr();
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(exe)
        .args(["--serve", server, &addr.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the server");
    wait_for(addr, &mut child);
    // Warm up, so lazily made threads and buffers exist before counting.
    run_wrk(addr, 16, 1, false);

    let mut idle_conns = Vec::new();
    if scenario == "e" {
        for _ in 0..10_000 {
            match open_idle(addr) {
                Some(c) => idle_conns.push(c),
                None => break,
            }
        }
        let rss = rss_mib(child.id());
        let total = idle_conns.len();
        let answered = idle_conns.iter_mut().map(ask).filter(|ok| *ok).count();
        drop(idle_conns);
        let _ = child.kill();
        let _ = child.wait();
        return Measure {
            rss_mib: rss,
            idle_answered: Some((answered, total.max(10_000))),
            ..Default::default()
        };
    }
    if scenario == "d" {
        for _ in 0..idle {
            match open_idle(addr) {
                Some(c) => idle_conns.push(c),
                None => break,
            }
        }
    }
    let (conns, close) = match scenario {
        "b" => (256, false),
        "c" => (16, true),
        _ => (16, false),
    };
    let cpu0 = cpu_ticks(child.id());
    let wrk = run_wrk(addr, conns, secs, close);
    let cpu1 = cpu_ticks(child.id());
    let rss = rss_mib(child.id());
    let mut m = Measure {
        rps: wrk.rps,
        p99_ms: wrk.p99_ms,
        rss_mib: rss,
        errors: wrk.errors,
        ..Default::default()
    };
    if wrk.requests > 0 {
        // SAFETY: sysconf takes no pointers.
        let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        m.cpu_us_per_req = (cpu1 - cpu0) as f64 / ticks_per_sec * 1e6 / wrk.requests as f64;
    }
    if scenario == "b" {
        // wrk does not say how many of its connections were ever answered; a second,
        // short probe with 256 connections that each must get one answer does.
        m.connections_served = Some((256, count_served(addr, 256)));
    }
    if scenario == "d" {
        let total = idle_conns.len();
        let answered = idle_conns.iter_mut().map(ask).filter(|ok| *ok).count();
        m.idle_answered = Some((answered, total.max(idle)));
    }
    drop(idle_conns);
    let _ = child.kill();
    let _ = child.wait();
    m
}

struct WrkResult {
    rps: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

fn run_wrk(addr: SocketAddr, conns: usize, secs: u64, close: bool) -> WrkResult {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1", "--latency", "--timeout", "5s"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(format!("http://{addr}/"))
        .output()
        .expect("running wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = WrkResult {
        rps: 0.0,
        p99_ms: 0.0,
        requests: 0,
        errors: 0,
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_ms = parse_duration_ms(v.trim());
        } else if line.contains("requests in") {
            r.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            r.errors += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        } else if line.starts_with("Non-2xx") {
            r.errors += line
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    r
}

fn parse_duration_ms(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let n: f64 = v[..split].parse().unwrap_or(0.0);
    match &v[split..] {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => n,
    }
}

/// Opens `n` connections at once, each asking one question; returns how many were
/// answered within 5 s.
fn count_served(addr: SocketAddr, n: usize) -> usize {
    let mut conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for c in &mut conns {
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    conns
        .iter_mut()
        .map(|c| {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            c.set_read_timeout(Some(left)).ok();
            read_response(c)
        })
        .filter(|answered| *answered)
        .count()
}

fn open_idle(addr: SocketAddr) -> Option<TcpStream> {
    let mut c = TcpStream::connect(addr).ok()?;
    ask(&mut c).then_some(c)
}

/// One request on an open connection; true if it was answered within 5 s.
fn ask(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c.write_all(b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n").is_ok() && read_response(c)
}

fn read_response(c: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(HELLO) {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

fn print_table(
    table: &BTreeMap<(String, String), Vec<Measure>>,
    servers: &[String],
    scenarios: &[String],
) {
    println!();
    println!(
        "| scenario | server | requests/s | p99 | server CPU/request | best CPU/request | RSS | spindle ratio (req/s) | peer CPU ÷ spindle CPU (best) | notes |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for scenario in scenarios {
        let spindle = table
            .get(&(scenario.clone(), "spindle".to_string()))
            .map(|v| median(v, |m| m.rps));
        let spindle_cpu = table
            .get(&(scenario.clone(), "spindle".to_string()))
            .map(|v| best(v, |m| m.cpu_us_per_req));
        for server in servers {
            let Some(ms) = table.get(&(scenario.clone(), server.clone())) else {
                continue;
            };
            let rps = median(ms, |m| m.rps);
            let ratio = match (spindle, server.as_str()) {
                (_, "spindle") => "—".to_string(),
                (Some(s), _) if rps > 0.0 => format!("{:.2}×", s / rps),
                _ => "n/a".to_string(),
            };
            let cpu_ratio = match (spindle_cpu, server.as_str()) {
                (_, "spindle") => "—".to_string(),
                (Some(s), _) if s > 0.0 => format!("{:.2}×", best(ms, |m| m.cpu_us_per_req) / s),
                _ => "n/a".to_string(),
            };
            let mut notes = Vec::new();
            let errors: u64 = ms.iter().map(|m| m.errors).sum();
            if errors > 0 {
                notes.push(format!("{errors} errors"));
            }
            if let Some((served, of)) = ms
                .last()
                .and_then(|m| m.connections_served.map(|(of, s)| (s, of)))
            {
                notes.push(format!("{served}/{of} connections answered"));
            }
            if let Some((answered, total)) = ms.last().and_then(|m| m.idle_answered) {
                notes.push(format!("{answered}/{total} idle answered after"));
            }
            println!(
                "| {} | {} | {:.0} | {:.2} ms | {:.2} µs | {:.2} µs | {:.1} MiB | {} | {} | {} |",
                scenario_name(scenario),
                server,
                rps,
                median(ms, |m| m.p99_ms),
                median(ms, |m| m.cpu_us_per_req),
                best(ms, |m| m.cpu_us_per_req),
                median(ms, |m| m.rss_mib),
                ratio,
                cpu_ratio,
                notes.join("; ")
            );
        }
    }
}

fn median(ms: &[Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    let mut v: Vec<f64> = ms.iter().map(f).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The smallest positive value: on a shared machine, interference only ever adds CPU
/// time, so the best run is the truest figure of a server's own cost.
fn best(ms: &[Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    ms.iter()
        .map(f)
        .filter(|v| *v > 0.0)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.min(v)))
        })
        .unwrap_or(0.0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn wait_for(addr: SocketAddr, child: &mut Child) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if t0.elapsed() > Duration::from_secs(10) || child.try_wait().ok().flatten().is_some() {
            panic!("server did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tool_exists(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ---------------------------------------------------------------- the servers

fn serve(name: &str, addr: &str) {
    raise_fd_limit();
    match name {
        "spindle" => serve_spindle(addr),
        "tiny_http" => serve_tiny_http(addr),
        "hyper" => serve_hyper(addr),
        other => panic!("unknown server {other}"),
    }
}

fn serve_spindle(addr: &str) {
    use spindle::server::{Request, Response, Server};
    let listening = Server::http(addr)
        .expect("bind")
        .handle(|_req: Request, mut res: Response| {
            res.headers_mut().insert(
                "content-type",
                spindle::http::HeaderValue::from_static("text/plain"),
            );
            res.send(HELLO).ok();
        })
        .expect("serve");
    listening.join();
}

fn serve_tiny_http(addr: &str) {
    let server = std::sync::Arc::new(tiny_http::Server::http(addr).expect("bind"));
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain"[..]).expect("header");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let header = header.clone();
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    let res = tiny_http::Response::from_data(HELLO).with_header(header.clone());
                    let _ = req.respond(res);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn serve_hyper(addr: &str) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    let mut res = hyper::Response::new(Full::new(bytes::Bytes::from_static(HELLO)));
                    res.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
