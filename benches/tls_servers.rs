//! HTTPS hello-world servers side by side: spindle (`Server::https`, native-tls) against
//! hyper 1.x (tokio, tokio-native-tls), both on the same OpenSSL with the same
//! certificate and key.
//!
//! `cargo bench --bench tls_servers` runs each server in a child process pinned to
//! CPU 0 and measures, with the load pinned to CPU 1:
//!
//! * **keep-alive**: requests/s over 16 HTTPS keep-alive connections (`wrk`, which
//!   speaks TLS; a Rust client of this file if wrk is missing);
//! * **handshakes**: new connection, full TLS handshake, one request, close, by a Rust
//!   client on native-tls (8 threads; native-tls does not resume sessions, so every
//!   handshake is a full one).
//!
//! It prints requests/s and server CPU time per request, with spindle's ratio to hyper.
//! Environment: `BENCH_SECS` (default 5), `BENCH_RUNS` (default 3, medians reported).
//! Needs `taskset` (util-linux). Loopback only; every child is ended by its PID.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_ticks, env_or, free_addr, tool_exists, wait_for};

const HELLO: &[u8] = b"Hello, World!";
const SERVERS: [&str; 2] = ["spindle", "hyper"];
const MODES: [&str; 2] = ["keep-alive", "handshakes"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let (cert, key) = (Path::new(&args[i + 3]), Path::new(&args[i + 4]));
        match args[i + 1].as_str() {
            "spindle" => serve_spindle(&args[i + 2], cert, key),
            _ => serve_hyper(&args[i + 2], cert, key),
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--load") {
        let addr: SocketAddr = args[i + 2].parse().expect("address");
        let secs: u64 = args[i + 3].parse().expect("seconds");
        let count = load(&args[i + 1], addr, Duration::from_secs(secs));
        println!("{count}");
        return;
    }
    if !tool_exists("taskset") {
        eprintln!("benchmark needs `taskset` (apt-get install util-linux)");
        std::process::exit(2);
    }
    let secs: u64 = env_or("BENCH_SECS", 5);
    let runs: usize = env_or("BENCH_RUNS", 3);
    let wrk = tool_exists("wrk");
    let (cert, key) = make_cert();
    println!(
        "# HTTPS hello world, {secs} s per run, median of {runs} runs; server on CPU 0, load on CPU 1"
    );
    println!(
        "# keep-alive: {} with 16 connections; handshakes: Rust native-tls client, 8 threads, one request per connection",
        if wrk { "wrk" } else { "Rust client" }
    );
    let mut results: Vec<Row> = Vec::new();
    for mode in MODES {
        for server in SERVERS {
            results.push((mode.into(), server.into(), Vec::new()));
        }
    }
    for run in 0..runs {
        for r in results.iter_mut() {
            let m = measure(&r.1, &r.0, secs, wrk, &cert, &key);
            eprintln!(
                "  run {run} {} {}: {:.0} req/s, {:.1} µs CPU/req",
                r.0, r.1, m.0, m.1
            );
            r.2.push(m);
        }
    }
    println!();
    println!("| scenario | server | requests/s | server CPU µs/request |");
    println!("|---|---|---:|---:|");
    let med = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        x[x.len() / 2]
    };
    for (mode, server, ms) in &results {
        println!(
            "| {mode} | {server} | {:.0} | {:.1} |",
            med(ms, |m| m.0),
            med(ms, |m| m.1)
        );
    }
    println!();
    for mode in MODES {
        let get = |s: &str| results.iter().find(|r| r.0 == mode && r.1 == s).unwrap();
        let (sp, hy) = (get("spindle"), get("hyper"));
        println!(
            "{mode}: spindle/hyper requests/s {:.2}x, CPU per request {:.2}x",
            med(&sp.2, |m| m.0) / med(&hy.2, |m| m.0).max(1e-9),
            med(&sp.2, |m| m.1) / med(&hy.2, |m| m.1).max(1e-9)
        );
    }
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}

/// Scenario, server, and (requests/s, CPU µs per request) of each run.
type Row = (String, String, Vec<(f64, f64)>);

/// Runs one server under one load; returns (requests/s, server CPU µs per request).
fn measure(server: &str, mode: &str, secs: u64, wrk: bool, cert: &Path, key: &Path) -> (f64, f64) {
    let addr = free_addr();
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&exe)
        .args(["--serve", server, &addr.to_string()])
        .arg(cert)
        .arg(key)
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the server");
    wait_for(addr, &mut child);
    // Warm up.
    run_load(&exe, mode, addr, 1, wrk);
    let cpu0 = cpu_ticks(child.id());
    let t0 = Instant::now();
    let requests = run_load(&exe, mode, addr, secs, wrk);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_ticks(child.id());
    // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu_us = (cpu1 - cpu0) as f64 / ticks_per_sec * 1e6 / requests.max(1) as f64;
    (requests as f64 / elapsed.min(secs as f64).max(1e-9), cpu_us)
}

/// Requests completed in `secs` seconds of `mode` load, from CPU 1.
fn run_load(exe: &Path, mode: &str, addr: SocketAddr, secs: u64, wrk: bool) -> u64 {
    if mode == "keep-alive" && wrk {
        let out = Command::new("taskset")
            .args(["-c", "1", "wrk", "-t1", "-c16", "--timeout", "5s"])
            .arg(format!("-d{secs}s"))
            .arg(format!("https://{addr}/"))
            .output()
            .expect("running wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        return text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(exe)
        .args(["--load", mode, &addr.to_string(), &secs.to_string()])
        .output()
        .expect("running the load client");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The load client: `keep-alive` (16 connections) or `handshakes` (8 threads, a new
/// connection per request). Returns the number of requests answered.
fn load(mode: &str, addr: SocketAddr, dur: Duration) -> u64 {
    let connector = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("TLS connector");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads = if mode == "keep-alive" { 16 } else { 8 };
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (connector, stop, count) = (connector.clone(), stop.clone(), count.clone());
            let keep_alive = mode == "keep-alive";
            std::thread::spawn(move || {
                let connect = || {
                    let tcp = TcpStream::connect(addr).ok()?;
                    tcp.set_nodelay(true).ok()?;
                    connector.connect("localhost", tcp).ok()
                };
                let mut conn = None;
                while !stop.load(Ordering::Relaxed) {
                    let mut c = match conn.take() {
                        Some(c) => c,
                        None => match connect() {
                            Some(c) => c,
                            None => continue,
                        },
                    };
                    let req: &[u8] = if keep_alive {
                        b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"
                    } else {
                        b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
                    };
                    if c.write_all(req).is_err() || !read_hello(&mut c) {
                        continue;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if keep_alive {
                        conn = Some(c);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    n
}

/// Reads one hello response (its body is the last thing in it).
fn read_hello(c: &mut impl Read) -> bool {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.ends_with(HELLO) {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

fn serve_spindle(addr: &str, cert: &Path, key: &Path) {
    use spindle::http::header::{HeaderValue, CONTENT_TYPE};
    use spindle::server::{Request, Response, Server};
    let tls = spindle::tls::Acceptor::from_pem_files(cert, key).expect("certificate");
    let listening = Server::https(addr, tls)
        .expect("bind")
        .handle(|_req: Request, mut res: Response| {
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            res.send(HELLO).ok();
        })
        .expect("start");
    listening.join();
}

fn serve_hyper(addr: &str, cert: &Path, key: &Path) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let identity = native_tls::Identity::from_pkcs8(
        &std::fs::read(cert).expect("certificate"),
        &std::fs::read(key).expect("key"),
    )
    .expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_req| async {
                    let mut res = hyper::Response::new(Full::new(bytes::Bytes::from_static(HELLO)));
                    res.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

/// A self-signed P-256 certificate for localhost, written to a temporary directory.
fn make_cert() -> (PathBuf, PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509NameBuilder, X509};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let dir = std::env::temp_dir().join(format!("spindle-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k)
}
