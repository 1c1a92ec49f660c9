//! HTTP/2 with prior knowledge (h2c) on the HTTP/1.1 port: curl, nghttp, and the
//! deadlock-freedom test of issue 8 (Python `h2` as the client).
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use spindle::server::{Request, Response, Server};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Echoes the body back, and says which protocol carried the request.
fn echo(mut req: Request, res: Response) {
    let mut body = Vec::new();
    if let Err(e) = req.read_to_end(&mut body) {
        res.with_status(spindle::http::StatusCode::BAD_REQUEST)
            .send(e.to_string().as_bytes())
            .ok();
        return;
    }
    let mut res = res;
    res.headers_mut()
        .insert("x-version", format!("{:?}", req.version()).parse().unwrap());
    if body.is_empty() {
        res.send(format!("{:?} {}\n", req.version(), req.path()).as_bytes())
            .ok();
        return;
    }
    let mut res = res.start().unwrap();
    for part in body.chunks(100_000) {
        res.write_all(part).unwrap();
    }
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a: enough to compare two copies.
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn curl_prior_knowledge_get_and_upload() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(echo);
    let base = format!("http://{}", server.local_addr());
    let got = curl(&["--http2-prior-knowledge", &format!("{base}/hello")]);
    assert_eq!(String::from_utf8_lossy(&got), "HTTP/2.0 /hello\n");
    // HTTP/1.1 on the same port.
    let got = curl(&["--http1.1", &format!("{base}/old")]);
    assert_eq!(String::from_utf8_lossy(&got), "HTTP/1.1 /old\n");

    let dir = std::env::temp_dir().join(format!("spindle-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let got = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{base}/upload"),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got.len(), data.len());
    assert_eq!(checksum(&got), checksum(&data));
}

#[test]
fn nghttp_concurrent_streams_on_one_connection() {
    if !tool_available("nghttp") {
        return;
    }
    // One loop, four threads: three may run stream handlers at once.
    let server = serve_with(
        Server::http("127.0.0.1:0").unwrap().event_loops(1),
        |req: Request, res: Response| {
            // Concurrency, not sequence: each stream takes a while.
            std::thread::sleep(Duration::from_millis(200));
            res.send(format!("stream for {}\n", req.path()).as_bytes())
                .ok();
        },
    );
    let url = format!("http://{}/many", server.local_addr());
    let started = Instant::now();
    let out = Command::new("nghttp")
        .args(["-nv", "-m", "8", "-t", "20", &url])
        .output()
        .expect("running nghttp");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp failed: {stdout}");
    assert_eq!(stdout.matches(":status: 200").count(), 8, "{stdout}");
    let streams: std::collections::HashSet<&str> = stdout
        .lines()
        .filter(|l| l.contains("recv HEADERS frame"))
        .filter_map(|l| l.split("stream_id=").nth(1))
        .collect();
    assert_eq!(streams.len(), 8, "{stdout}");
    // Eight 200 ms handlers, three at a time at least (four threads, one loop).
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "streams did not run concurrently: {:?}",
        started.elapsed()
    );
}

fn python_h2() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import h2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(!ci(), "python3 with the `h2` module is required in CI");
    eprintln!("\n!!!!! SKIPPED: python3 with the `h2` module is not installed !!!!!\n");
    None
}

fn http1_get(addr: SocketAddr, path: &str) -> String {
    let mut s = connect(addr);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    read_to_close(&mut s)
}

/// Issue 8, item 3: with N threads and N+4 streams whose handlers block on slowly sent
/// bodies, every stream finishes, PINGs are answered throughout, and another HTTP/2
/// connection and HTTP/1.1 are served meanwhile.
#[test]
fn blocked_handlers_never_stop_the_connection() {
    let Some(py) = python_h2() else { return };
    let _ = env_logger::builder().is_test(true).try_init();
    const N: usize = 4;
    let server = Server::http("127.0.0.1:0")
        .unwrap()
        .event_loops(1)
        .handle_threads(echo, N)
        .unwrap();
    let addr = server.local_addr();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/h2_slow_bodies.py");
    let child = Command::new(py)
        .args([script, &addr.port().to_string(), &(N + 4).to_string(), "15"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While every handler thread is blocked on a slow body: HTTP/1.1 is served at once,
    // and a second HTTP/2 connection's request is answered before the slow ones end.
    std::thread::sleep(Duration::from_millis(800));
    let t = Instant::now();
    let got = http1_get(addr, "/h1-meanwhile");
    assert!(got.contains("HTTP/1.1 /h1-meanwhile"), "{got}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let second = Arc::new(std::sync::Mutex::new(None));
    let second2 = second.clone();
    let url = format!("http://{addr}/second");
    let h = std::thread::spawn(move || {
        if tool_available("curl") {
            let out = curl(&["--http2-prior-knowledge", &url]);
            *second2.lock().unwrap() =
                Some((String::from_utf8_lossy(&out).into_owned(), Instant::now()));
        }
    });
    let out = child.wait_with_output().unwrap();
    let python_done = Instant::now();
    h.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("probe output");
    for s in report["streams"].as_array().unwrap() {
        assert_eq!(s["status"], "200", "{report}");
        assert_eq!(s["len"], s["sent"], "{report}");
        assert_eq!(s["ended"], true, "{report}");
    }
    assert!(report["max_ping"].as_f64().unwrap() < 1.0, "{report}");
    if let Some((text, at)) = second.lock().unwrap().take() {
        assert_eq!(text, "HTTP/2.0 /second\n");
        assert!(at < python_done, "second connection waited for the first");
    }
    let report = server.shutdown(Instant::now() + Duration::from_secs(5));
    assert_eq!(report.cut, 0);
}

#[test]
fn panicking_handler_costs_one_response() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(|req: Request, res: Response| {
        if req.path() == "/panic" {
            panic!("on purpose");
        }
        res.send(b"fine\n").ok();
    });
    let base = format!("http://{}", server.local_addr());
    // One URL per curl: curl 7.88 fails reusing an h2c connection for a second URL
    // (against any server, Python's h2 too).
    for (path, want) in [("/panic", "500"), ("/after", "200")] {
        let out = curl(&[
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}{path}"),
        ]);
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
    if tool_available("nghttp") {
        // Both on one connection: the panic costs its own stream only.
        let out = Command::new("nghttp")
            .args([
                "-nv",
                "-t",
                "20",
                &format!("{base}/panic"),
                &format!("{base}/after"),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(":status: 500") && text.contains(":status: 200"),
            "{text}"
        );
    }
}

#[test]
fn graceful_shutdown_lets_open_streams_finish() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(|_req: Request, res: Response| {
        std::thread::sleep(Duration::from_millis(600));
        res.send(b"finished\n").ok();
    });
    let url = format!("http://{}/slow", server.local_addr());
    let h = std::thread::spawn(move || curl(&["--http2-prior-knowledge", &url]));
    std::thread::sleep(Duration::from_millis(250));
    let report = server.shutdown(Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&h.join().unwrap()), "finished\n");
    assert_eq!(report.cut, 0, "{report:?}");
    assert_eq!(report.finished, 1, "{report:?}");
}

#[test]
fn download_through_a_small_client_window() {
    if !tool_available("nghttp") {
        return;
    }
    let data: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i % 251) as u8).collect());
    let body = data.clone();
    let server = serve(move |_req: Request, res: Response| {
        let mut res = res.start().unwrap();
        for part in body.chunks(50_000) {
            res.write_all(part).unwrap();
        }
    });
    // 64 KiB windows (2^16 - 1) for the stream and the connection: the handler's
    // writes block on window again and again.
    let out = Command::new("nghttp")
        .args(["-w", "16", "-W", "16", "-t", "30"])
        .arg(format!("http://{}/big", server.local_addr()))
        .output()
        .expect("running nghttp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(checksum(&out.stdout), checksum(&data));
}
