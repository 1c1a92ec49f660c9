//! Hello-world servers side by side under one load generator.
//!
//! `cargo bench --bench servers` runs spindle, tiny_http, hyper 1.x (tokio,
//! multi-thread, auto HTTP/1 + h2c) and nghttpd in turn, each in a child process pinned
//! to CPU 0, with the load generator pinned to CPU 1, and prints requests/s, latency,
//! server CPU per request and RSS, with spindle's ratio to each peer.
//!
//! Scenarios (`BENCH_SCENARIOS`, default `a,b,c,d,e,f,h2a,h2b`):
//!
//! - HTTP/1.1 with wrk: `a` keep-alive, 16 connections; `b` keep-alive, 256
//!   connections; `c` a new connection per request; `d` as `a` with `BENCH_IDLE` idle
//!   keep-alive connections held open; `e` 10,000 idle connections, memory only; `f` as
//!   `a` while `BENCH_SLOW` (default 1,000) slow clients are connected, the kinds of
//!   `tests/hostile_slow_peers.rs` in its proportions: 69% slowloris heads (a byte a
//!   second), 13.8% `POST /` bodies of a declared 1,000,000 bytes trickled a byte a
//!   second, 13.8% clients that never read their two pipelined `GET /big` answers
//!   (128 KiB each; a 4 KiB receive buffer and a 536-byte MSS keep the kernel from
//!   taking them whole), 3.4% h2c connections with 40 `POST /` streams that send no
//!   DATA. The slow clients are driven by one thread of this process pinned to CPU 1
//!   (benches/common/slow_peers.rs), connect before wrk starts and are watched after it
//!   until the server has cut every one or `BENCH_SLOW_WAIT` seconds (default 35) have
//!   passed since they connected; a client counts as cut when it saw the close or reset,
//!   or the server shut its side of the socket (from /proc/net/tcp), and an h2c
//!   connection when every stream was reset or answered. The notes give the ratio to
//!   the same server's (a) in the run (spindle's target: at least 0.9×) and what was
//!   cut, by kind.
//! - HTTP/2 with prior knowledge (h2c) with h2load: `h2a` is `h2load -c4 -m32` (4
//!   connections, 32 streams in flight on each), `h2b` is `h2load -c1 -m100` (one
//!   connection, 100 streams in flight). h2load runs in duration mode (`-D`) after a
//!   warm-up of `BENCH_H2_WARMUP` seconds (`--warm-up-time`); server CPU is sampled
//!   when h2load announces the start and end of its main phase, so the warm-up is not
//!   counted. The latency column shows h2load's mean time per request (h2load reports
//!   no percentiles). Failed, errored and timed-out requests and non-2xx statuses are
//!   counted as errors and listed in the notes, as is an h2load that did not finish.
//!
//! Servers (`BENCH_SERVERS`, default `spindle,tiny_http,hyper,nghttpd`): tiny_http
//! speaks only HTTP/1.x and nghttpd (nghttp2's server: `nghttpd --no-tls -n 1`, one
//! worker, serving the hello text from a temporary directory) only HTTP/2, so each is
//! shown as "n/a" in the other protocol's scenarios. spindle, hyper and nghttpd all
//! advertise SETTINGS_MAX_CONCURRENT_STREAMS = 128 (spindle's default, set explicitly
//! for the others), so neither h2load `-m` is cut short by a server limit.
//! `spindle-mio` (not in the default list) is spindle on its mio readiness backend: this
//! harness built with `--features poll-mio`, which it builds itself (`cargo bench
//! --no-run`) unless `BENCH_MIO_EXE` names such a binary; its ratio column compares it
//! with spindle on epoll.
//!
//! Other knobs: `BENCH_SECS` (default 5) per run, `BENCH_RUNS` (default 3; medians are
//! reported, plus the best CPU per request), `BENCH_IDLE` (idle connections in scenario
//! d, default 2000), `BENCH_H2_WARMUP` (default 1 s), `BENCH_SLOW` and
//! `BENCH_SLOW_WAIT` (scenario f).
//!
//! Needs `taskset` (util-linux), `wrk` for the HTTP/1 scenarios, `h2load` for the h2
//! ones (nghttp2-client) and `nghttpd` (nghttp2-server) for that server; a missing
//! nghttpd is skipped with a warning. Loopback only; every child is ended by its PID.
mod common;
#[path = "common/slow_peers.rs"]
mod slow_peers;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    cpu_ticks, env_list, env_or, free_addr, raise_fd_limit, rss_kib, tool_exists, wait_for,
};

const HELLO: &[u8] = b"Hello, World!";
/// The answer to `GET /big` (scenario f's clients that never read).
static BIG: [u8; 128 * 1024] = [b'x'; 128 * 1024];

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
    let warmup: u64 = env_or("BENCH_H2_WARMUP", 1);
    let slow: usize = env_or("BENCH_SLOW", 1000);
    let slow_wait: u64 = env_or("BENCH_SLOW_WAIT", 35);
    let mut servers: Vec<String> = env_list("BENCH_SERVERS", "spindle,tiny_http,hyper,nghttpd");
    let scenarios: Vec<String> = env_list("BENCH_SCENARIOS", "a,b,c,d,e,f,h2a,h2b");
    let mut tools = vec!["taskset"];
    if scenarios.iter().any(|s| !is_h2(s)) {
        tools.push("wrk");
    }
    if scenarios.iter().any(|s| is_h2(s)) {
        tools.push("h2load");
    }
    for tool in tools {
        if !tool_exists(tool) {
            eprintln!("benchmark needs `{tool}` (apt-get install util-linux wrk nghttp2-client)");
            std::process::exit(2);
        }
    }
    if servers.iter().any(|s| s == "nghttpd") && !tool_exists("nghttpd") {
        eprintln!("\n!!!!! `nghttpd` is not installed (apt-get install nghttp2-server): skipping that server !!!!!\n");
        servers.retain(|s| s != "nghttpd");
    }
    // nghttpd serves files: the hello text as the directory's index.
    let docroot =
        std::env::temp_dir().join(format!("spindle-bench-nghttpd-{}", std::process::id()));
    std::fs::create_dir_all(&docroot).expect("a temporary directory");
    std::fs::write(docroot.join("index.html"), HELLO).expect("writing the hello file");
    let mio_exe = servers.iter().any(|s| s == "spindle-mio").then(mio_harness);
    let ctx = Ctx {
        secs,
        idle,
        slow,
        slow_wait,
        warmup,
        docroot: docroot.clone(),
        mio_exe,
    };
    println!(
        "# hello-world servers, {} s per run, median of {} runs; server on CPU 0, wrk/h2load on CPU 1",
        secs, runs
    );
    let mut table: BTreeMap<(String, String), Vec<Measure>> = BTreeMap::new();
    for scenario in &scenarios {
        for run in 0..runs {
            for server in servers.iter().filter(|s| supports(s, scenario)) {
                let m = measure(server, scenario, &ctx);
                eprintln!("  run {run} {scenario} {server}: {m:?}");
                table
                    .entry((scenario.clone(), server.clone()))
                    .or_default()
                    .push(m);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&docroot);
    print_table(&table, &servers, &scenarios);
}

/// What every run needs besides the server and the scenario.
struct Ctx {
    secs: u64,
    idle: usize,
    /// Scenario f: slow clients, and how long to wait for the server to cut them.
    slow: usize,
    slow_wait: u64,
    /// h2load's `--warm-up-time`, seconds.
    warmup: u64,
    /// nghttpd's document root.
    docroot: std::path::PathBuf,
    /// This harness built with `--features poll-mio`, for `spindle-mio`.
    mio_exe: Option<std::path::PathBuf>,
}

/// This harness built with `--features poll-mio` (spindle on its mio readiness
/// backend): `BENCH_MIO_EXE`, or built now with `cargo bench --no-run`.
fn mio_harness() -> std::path::PathBuf {
    if let Ok(exe) = std::env::var("BENCH_MIO_EXE") {
        return exe.into();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A target directory of its own: the `cargo bench` running us holds the lock on
    // ours (target/release/deps/servers-… → target/poll-mio).
    let own = std::env::current_exe().expect("own path");
    let target = own
        .ancestors()
        .nth(3)
        .map(|t| t.join("poll-mio"))
        .unwrap_or_else(|| "target/poll-mio".into());
    let out = Command::new(cargo)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "bench",
            "--bench",
            "servers",
            "--features",
            "poll-mio",
            "--no-run",
        ])
        .args(["--message-format", "json"])
        .stderr(Stdio::inherit())
        .output()
        .expect("building the poll-mio harness");
    assert!(out.status.success(), "building the poll-mio harness failed");
    // The last compiler-artifact line names the executable (`"executable":"..."`).
    let text = String::from_utf8_lossy(&out.stdout);
    let exe = text
        .lines()
        .filter(|l| {
            l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"executable\":\"")
        })
        .filter_map(|l| l.split("\"executable\":\"").nth(1)?.split('"').next())
        .next_back()
        .expect("cargo named no executable for the poll-mio harness");
    exe.into()
}

fn is_h2(scenario: &str) -> bool {
    scenario.starts_with("h2")
}

/// Whether `server` speaks the protocol `scenario` uses.
fn supports(server: &str, scenario: &str) -> bool {
    match server {
        "tiny_http" => !is_h2(scenario),
        "nghttpd" => is_h2(scenario),
        _ => true,
    }
}

fn scenario_name(s: &str) -> &'static str {
    match s {
        "a" => "(a) keep-alive, 16 connections",
        "b" => "(b) keep-alive, 256 connections",
        "c" => "(c) new connection per request, 16 at a time",
        "d" => "(d) as (a) with idle keep-alive connections held open",
        "e" => "(e) 10,000 idle keep-alive connections, memory only",
        "f" => "(f) as (a) while 1,000 slow clients are connected",
        "h2a" => "(h2a) h2c, h2load -c4 -m32",
        "h2b" => "(h2b) h2c, h2load -c1 -m100",
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
    /// h2load's own counts (HTTP/2 scenarios).
    h2: Option<H2Counts>,
    /// Scenario f: what the server did with the slow clients.
    slow: Option<SlowCut>,
}

/// What h2load said beyond requests/s. `failed` counts every request that did not
/// succeed (network and HTTP level); `errored` is its network-level part and `timeout`
/// a part of that.
#[derive(Debug, Clone, Default)]
struct H2Counts {
    done: u64,
    succeeded: u64,
    failed: u64,
    errored: u64,
    timeout: u64,
    /// Responses with a 3xx, 4xx or 5xx status.
    non_2xx: u64,
    /// Mean time per request.
    mean_ms: f64,
    /// Set when h2load did not run to its report (crashed, was killed, or its output
    /// could not be read): the first line of its complaint.
    broken: Option<String>,
}

fn measure(server: &str, scenario: &str, ctx: &Ctx) -> Measure {
    let (secs, idle) = (ctx.secs, ctx.idle);
    let addr = free_addr();
    let mut child = if server == "nghttpd" {
        // One worker thread, on CPU 0 like the others; loopback only.
        Command::new("taskset")
            .args(["-c", "0", "nghttpd", "--no-tls", "-n", "1", "-m", "128"])
            .args(["-a", &addr.ip().to_string(), "-d"])
            .arg(&ctx.docroot)
            .arg(addr.port().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nghttpd")
    } else {
        // spindle on the mio backend is the same server in the poll-mio build.
        let (exe, name) = match server {
            "spindle-mio" => (ctx.mio_exe.clone().expect("built at the start"), "spindle"),
            _ => (std::env::current_exe().expect("own path"), server),
        };
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .args(["--serve", name, &addr.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server")
    };
    wait_for(addr, &mut child);
    if is_h2(scenario) {
        // h2load warms up by itself (`--warm-up-time`); wrk would speak HTTP/1.1,
        // which nghttpd does not.
        let (clients, streams) = if scenario == "h2b" { (1, 100) } else { (4, 32) };
        let m = run_h2load(addr, child.id(), clients, streams, secs, ctx.warmup);
        let _ = child.kill();
        let _ = child.wait();
        return m;
    }
    // Warm up, so lazily made threads and buffers exist before counting.
    run_wrk(addr, 16, 1, false);
    let slow = (scenario == "f").then(|| SlowClients::connect(addr, ctx.slow));

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
    // In scenario f this process's only busy thread is the slow clients' (on CPU 1,
    // with wrk): its share of that CPU is reported.
    let own0 = cpu_ticks(std::process::id());
    let wrk = run_wrk(addr, conns, secs, close);
    let cpu1 = cpu_ticks(child.id());
    let own1 = cpu_ticks(std::process::id());
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
    if let Some(slow) = slow {
        let mut cut = slow.watch(Duration::from_secs(ctx.slow_wait));
        // SAFETY: sysconf takes no pointers.
        let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        cut.driver_cpu = (own1 - own0) as f64 / ticks_per_sec / secs as f64;
        m.slow = Some(cut);
    }
    drop(idle_conns);
    let _ = child.kill();
    let _ = child.wait();
    m
}

/// Scenario f's slow clients: kind name and share of `BENCH_SLOW` (the proportions of
/// tests/hostile_slow_peers.rs: 1,000 slowloris, 200 bodies, 200 non-readers, 50 h2c).
const SLOW_KINDS: [(&str, u32); 4] = [
    ("slowloris", 690),
    ("trickled bodies", 138),
    ("never read", 138),
    ("h2c streams without DATA", 34),
];

/// What a server did with scenario f's slow clients.
#[derive(Debug, Clone, Default)]
struct SlowCut {
    /// (kind, cut, connected, total)
    by_kind: Vec<(&'static str, usize, usize, usize)>,
    /// Seconds from their connecting until the last was cut, if all were.
    all_cut_after: Option<f64>,
    /// Seconds they were watched.
    watched: f64,
    /// The share of CPU 1 their thread took while wrk ran.
    driver_cpu: f64,
}

impl SlowCut {
    fn note(&self) -> String {
        let (cut, connected, total) = self
            .by_kind
            .iter()
            .fold((0, 0, 0), |(c, n, t), k| (c + k.1, n + k.2, t + k.3));
        let when = match self.all_cut_after {
            Some(s) => format!("all cut by {s:.1} s"),
            None => format!("{cut}/{connected} cut within {:.0} s", self.watched),
        };
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, c, n, _)| format!("{k} {c}/{n}"))
            .collect();
        let unconnected = if connected < total {
            format!(", {} never connected", total - connected)
        } else {
            String::new()
        };
        format!(
            "slow clients: {when} ({}){unconnected}; their thread took {:.1}% of CPU 1",
            kinds.join(", "),
            self.driver_cpu * 100.0
        )
    }
}

/// Scenario f's slow clients, connected and started.
struct SlowClients {
    driver: slow_peers::Driver,
    port: u16,
    connected_at: Instant,
    totals: Vec<usize>,
}

impl SlowClients {
    /// Connects `n` slow clients (from a thread pinned to CPU 1) and waits until each
    /// has sent its first bytes (10 s at most), then one more second.
    fn connect(addr: SocketAddr, n: usize) -> SlowClients {
        use slow_peers::{h2_open_streams, ReadPolicy, Spec};
        let mut totals: Vec<usize> = SLOW_KINDS
            .iter()
            .map(|(_, share)| n * *share as usize / 1000)
            .collect();
        totals[0] += n - totals.iter().sum::<usize>();
        let spec = |kind: usize| {
            let base = Spec::quiet(kind);
            match kind {
                0 => Spec {
                    first: b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ".to_vec(),
                    trickle: vec![b'a'; 120],
                    ..base
                },
                1 => Spec {
                    first: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx"
                        .to_vec(),
                    trickle: vec![b'x'; 120],
                    ..base
                },
                2 => Spec {
                    small_window: true,
                    first: b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2),
                    read: ReadPolicy::Never,
                    ..base
                },
                _ => Spec {
                    first: h2_open_streams(40, "POST", "/"),
                    h2: true,
                    ..base
                },
            }
        };
        // Round robin over the kinds, so each batch of connections has all of them.
        let mut left = totals.clone();
        let mut specs = Vec::with_capacity(n);
        while left.iter().any(|l| *l > 0) {
            for (kind, l) in left.iter_mut().enumerate() {
                if *l > 0 {
                    *l -= 1;
                    specs.push(spec(kind));
                }
            }
        }
        let driver = slow_peers::Driver::start(addr, specs, Some(1));
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until
            && driver.with(|p| p.iter().any(|p| p.started.is_none() && p.error.is_none()))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let connected_at = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        SlowClients {
            driver,
            port: addr.port(),
            connected_at,
            totals,
        }
    }

    /// Per kind: (cut, connected).
    fn count(&self) -> Vec<(usize, usize)> {
        let open = slow_peers::server_open_ports(self.port);
        let mut counts = vec![(0, 0); SLOW_KINDS.len()];
        self.driver.with(|peers| {
            for p in peers.iter().filter(|p| p.started.is_some()) {
                let c = &mut counts[p.kind];
                c.1 += 1;
                let streams_done =
                    p.h2.streams.len() >= 40 && p.h2.streams.values().all(|s| s.end.is_some());
                if p.end.is_some() || !open.contains(&p.port) || streams_done {
                    c.0 += 1;
                }
            }
        });
        counts
    }

    /// Watches until every slow client was cut or `wait` has passed since they
    /// connected, then closes them.
    fn watch(self, wait: Duration) -> SlowCut {
        let mut all_cut_after = None;
        let counts = loop {
            let counts = self.count();
            if counts.iter().all(|(cut, connected)| cut == connected) {
                all_cut_after = Some(self.connected_at.elapsed().as_secs_f64());
                break counts;
            }
            if self.connected_at.elapsed() >= wait {
                break counts;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let watched = self.connected_at.elapsed().as_secs_f64();
        self.driver.stop();
        SlowCut {
            by_kind: SLOW_KINDS
                .iter()
                .zip(&counts)
                .zip(&self.totals)
                .map(|(((name, _), (cut, connected)), total)| (*name, *cut, *connected, *total))
                .collect(),
            all_cut_after,
            watched,
            driver_cpu: 0.0,
        }
    }
}

/// Runs h2load (pinned to CPU 1) for `warmup` + `secs` seconds and measures the server
/// `pid`'s CPU time over the main phase only, which h2load announces on its output.
fn run_h2load(
    addr: SocketAddr,
    pid: u32,
    clients: usize,
    streams: usize,
    secs: u64,
    warmup: u64,
) -> Measure {
    use std::io::BufRead;
    use std::sync::{mpsc, Arc, Mutex};

    let spawned = Command::new("taskset")
        .args(["-c", "1", "h2load", "-t1"])
        .arg(format!("-c{clients}"))
        .arg(format!("-m{streams}"))
        .arg(format!("-D{secs}"))
        .arg(format!("--warm-up-time={warmup}"))
        .arg(format!("http://{addr}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return Measure {
                errors: 1,
                h2: Some(H2Counts {
                    broken: Some(format!("could not start h2load: {e}")),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Read stderr on the side so that a chatty h2load cannot block on a full pipe.
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // A server that stops answering must not hang the benchmark: h2load gets its
    // run time plus 30 s, then it is killed (by its own PID, through `Child`).
    let child = Arc::new(Mutex::new(child));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let child = child.clone();
        let bound = Duration::from_secs(secs + warmup + 30);
        std::thread::spawn(move || {
            if done_rx.recv_timeout(bound).is_err() {
                let mut c = child.lock().unwrap_or_else(|p| p.into_inner());
                if matches!(c.try_wait(), Ok(None)) {
                    let _ = c.kill();
                    return true;
                }
            }
            false
        })
    };
    let (mut cpu0, mut cpu1) = (None, None);
    let mut text = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.starts_with("Main benchmark duration is started") && cpu0.is_none() {
            cpu0 = Some(cpu_ticks(pid));
        } else if line.starts_with("Main benchmark duration is over") && cpu1.is_none() {
            cpu1 = Some(cpu_ticks(pid));
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.lock().unwrap_or_else(|p| p.into_inner()).wait().ok();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    let err_text = err_reader.join().unwrap_or_default();

    let (rps, mut counts) = parse_h2load(&text);
    if counts.broken.is_none() && counts.succeeded == 0 {
        // h2load reports a server that speaks no HTTP/2, or whose connections all
        // died during the warm-up, as a clean run of zero requests.
        counts.broken = Some("no request succeeded".into());
    }
    let exited_ok = status.is_some_and(|s| s.success());
    if killed {
        counts.broken = Some(format!("h2load killed after {} s", secs + warmup + 30));
    } else if !exited_ok || counts.broken.is_some() {
        // Add what h2load itself said on stderr (its stdout is only the report).
        let mut why = counts.broken.take().unwrap_or_default();
        if !exited_ok {
            why = format!("h2load exited with {status:?}; {why}");
        }
        if let Some(said) = err_text.lines().find(|l| !l.trim().is_empty()) {
            why = format!("{why}; h2load: {}", said.trim());
        }
        counts.broken = Some(why);
    }
    let mut m = Measure {
        rps,
        p99_ms: counts.mean_ms,
        rss_mib: rss_mib(pid),
        // h2load's `failed` includes `errored` (network level, RST_STREAM), which
        // includes `timeout`, and HTTP-level failures; `non_2xx` adds any 3xx it
        // counted as a success.
        errors: counts.failed.max(counts.non_2xx) + u64::from(counts.broken.is_some()),
        ..Default::default()
    };
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        if counts.succeeded > 0 {
            // SAFETY: sysconf takes no pointers.
            let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
            m.cpu_us_per_req = (c1 - c0) as f64 / ticks_per_sec * 1e6 / counts.succeeded as f64;
        }
    }
    m.h2 = Some(counts);
    m
}

/// Reads h2load's report: requests/s and the counts. Without a `requests:` line the
/// run is marked broken.
fn parse_h2load(text: &str) -> (f64, H2Counts) {
    let mut rps = 0.0;
    let mut c = H2Counts::default();
    let mut saw_requests = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in") {
            // "finished in 3.00s, 32197.00 req/s, 1.17MB/s"
            rps = rest
                .split(", ")
                .find_map(|f| f.strip_suffix(" req/s"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("requests:") {
            // "requests: 64394 total, 64394 started, 64394 done, 64394 succeeded,
            //  0 failed, 0 errored, 0 timeout"
            saw_requests = true;
            for (n, what) in counted(rest) {
                match what {
                    "done" => c.done = n,
                    "succeeded" => c.succeeded = n,
                    "failed" => c.failed = n,
                    "errored" => c.errored = n,
                    "timeout" => c.timeout = n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            // "status codes: 64395 2xx, 0 3xx, 0 4xx, 0 5xx"
            c.non_2xx = counted(rest)
                .filter(|(_, what)| matches!(*what, "3xx" | "4xx" | "5xx"))
                .map(|(n, _)| n)
                .sum();
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min, max, mean, sd, +/- sd
            c.mean_ms = rest
                .split_whitespace()
                .nth(2)
                .map(parse_duration_ms)
                .unwrap_or(0.0);
        }
    }
    if !saw_requests {
        c.broken = Some("no report".into());
    }
    (rps, c)
}

/// The `<number> <word>` pairs of a comma-separated h2load line.
fn counted(list: &str) -> impl Iterator<Item = (u64, &str)> {
    list.split(',').filter_map(|f| {
        let (n, what) = f.trim().split_once(' ')?;
        Some((n.parse().ok()?, what.trim()))
    })
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
        "| scenario | server | requests/s | latency (wrk: p99, h2load: mean) | server CPU/request | best CPU/request | RSS | spindle ratio (req/s) | peer CPU ÷ spindle CPU (best) | notes |"
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
            if !supports(server, scenario) {
                let why = if is_h2(scenario) {
                    "no HTTP/2"
                } else {
                    "HTTP/2 only"
                };
                println!(
                    "| {} | {server} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | {why} |",
                    scenario_name(scenario)
                );
                continue;
            }
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
            notes.extend(h2_notes(ms));
            if let Some((served, of)) = ms
                .last()
                .and_then(|m| m.connections_served.map(|(of, s)| (s, of)))
            {
                notes.push(format!("{served}/{of} connections answered"));
            }
            if let Some((answered, total)) = ms.last().and_then(|m| m.idle_answered) {
                notes.push(format!("{answered}/{total} idle answered after"));
            }
            if scenario == "f" {
                notes.push(own_a_ratio(table, server, rps));
            }
            if let Some(slow) = ms.last().and_then(|m| m.slow.as_ref()) {
                notes.push(slow.note());
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
    // Scenario f's target, and every run's slow-client outcome (the table shows the
    // last run's).
    if scenarios.iter().any(|s| s == "f") {
        println!();
        for server in servers.iter().filter(|s| supports(s, "f")) {
            let Some(ms) = table.get(&("f".to_string(), server.clone())) else {
                continue;
            };
            let runs: Vec<String> = ms
                .iter()
                .map(|m| m.slow.as_ref().map_or("-".to_string(), SlowCut::note))
                .collect();
            let ratio = own_a_ratio(table, server, median(ms, |m| m.rps));
            let target = if server == "spindle" {
                let met = table
                    .get(&("a".to_string(), server.clone()))
                    .map(|a| median(ms, |m| m.rps) >= 0.9 * median(a, |m| m.rps));
                match met {
                    Some(true) => " (target ≥ 0.9×: met)",
                    Some(false) => " (target ≥ 0.9×: NOT met)",
                    None => "",
                }
            } else {
                ""
            };
            println!(
                "(f) {server}: {ratio}{target}; per run: {}",
                runs.join(" | ")
            );
        }
    }
}

/// Scenario f against the same server's (a) in this run: "0.95× own (a)".
fn own_a_ratio(table: &BTreeMap<(String, String), Vec<Measure>>, server: &str, rps: f64) -> String {
    match table.get(&("a".to_string(), server.to_string())) {
        Some(a) if median(a, |m| m.rps) > 0.0 => {
            format!("{:.2}× own (a)", rps / median(a, |m| m.rps))
        }
        _ => "own (a) not run".to_string(),
    }
}

/// h2load's error counts summed over the runs, and any run where h2load broke down,
/// so that a run with errors cannot pass unseen.
fn h2_notes(ms: &[Measure]) -> Vec<String> {
    let counts: Vec<&H2Counts> = ms.iter().filter_map(|m| m.h2.as_ref()).collect();
    if counts.is_empty() {
        return Vec::new();
    }
    let sum = |f: fn(&H2Counts) -> u64| counts.iter().map(|c| f(c)).sum::<u64>();
    let mut notes = Vec::new();
    let kinds = [
        ("failed", sum(|c| c.failed)),
        ("errored (of the failed)", sum(|c| c.errored)),
        ("timed out (of the errored)", sum(|c| c.timeout)),
        ("non-2xx", sum(|c| c.non_2xx)),
    ];
    let bad: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    if !bad.is_empty() {
        notes.push(format!(
            "h2load: {} of {} requests done",
            bad.join(", "),
            sum(|c| c.done)
        ));
    }
    for (run, c) in counts.iter().enumerate() {
        if let Some(why) = &c.broken {
            notes.push(format!("run {run}: {}", why.replace('|', "/")));
        }
    }
    notes
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

fn rss_mib(pid: u32) -> f64 {
    rss_kib(&pid.to_string()) as f64 / 1024.0
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
        .handle(|req: Request, mut res: Response| {
            res.headers_mut().insert(
                "content-type",
                spindle::http::HeaderValue::from_static("text/plain"),
            );
            let body: &[u8] = if req.path() == "/big" { &BIG } else { HELLO };
            res.send(body).ok();
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
                    let body: &[u8] = if req.url() == "/big" { &BIG } else { HELLO };
                    let res = tiny_http::Response::from_data(body).with_header(header.clone());
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
    // The auto builder serves HTTP/1.x, and HTTP/2 when a connection opens with the
    // HTTP/2 preface (h2c with prior knowledge), as spindle does on one port. Its
    // max_concurrent_streams default (200) is "not part of the stability of hyper";
    // it is pinned to spindle's 128 so both advertise the same limit.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(128);
    let builder = std::sync::Arc::new(builder);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body: &'static [u8] = if req.uri().path() == "/big" {
                        &BIG
                    } else {
                        HELLO
                    };
                    let mut res = hyper::Response::new(Full::new(bytes::Bytes::from_static(body)));
                    res.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
