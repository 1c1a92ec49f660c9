//! Issue 8, item 6 (server side): real HTTP/2 clients against spindle's h2c (prior
//! knowledge) server: curl, nghttp, h2load, Python's `h2` for the edge cases
//! (tests/py/h2_edge_cases.py) and httpx (tests/py/h2_httpx_client.py).
//!
//! A missing tool fails the test under `CI=true` and prints a loud SKIPPED line otherwise
//! (`.ci/run` installs them all).
mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use spindle::http::{HeaderMap, HeaderValue};
use spindle::server::{Listening, Request, Response, Server};

/// The bytes of `/bytes?n=N`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a.
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// What the handlers of `/watch/...` saw, for the tests to check.
type Seen = Arc<Mutex<Vec<String>>>;

/// The interop server's routes:
/// - `/bytes?n=N`: N bytes of `pattern`, written 64 KiB at a time;
/// - `/echo`: the request body back;
/// - `/upload`: `len N fnv X` of the request body;
/// - `/id/N`: `id N`;
/// - `/trailers`: reads the body and its trailers, answers with a streamed body and
///   trailers of its own (`x-body-len`, `x-echo-note`, `x-echo-sum`);
/// - `/watch/...`: reads the body and records `ok N` or `error ...` in `seen`;
/// - anything else: `<version> <path>`.
fn start(seen: Seen) -> Listening {
    start_with(Server::http("127.0.0.1:0").unwrap(), seen)
}

/// [`start`] with the settings of `server`.
fn start_with(server: Server, seen: Seen) -> Listening {
    let _ = env_logger::builder().is_test(true).try_init();
    server
        .handle_threads(
            move |mut req: Request, res: Response| {
                let path = req.path().to_owned();
                match path.as_str() {
                    "/bytes" => {
                        let n: usize = req
                            .query()
                            .and_then(|q| q.strip_prefix("n="))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let data = pattern(n);
                        let Ok(mut res) = res.start() else { return };
                        for part in data.chunks(64 * 1024) {
                            if res.write_all(part).is_err() {
                                res.abort();
                                return;
                            }
                        }
                    }
                    "/echo" => {
                        let mut body = Vec::new();
                        match req.read_to_end(&mut body) {
                            Ok(_) => res.send(&body).ok(),
                            Err(e) => res
                                .with_status(spindle::http::StatusCode::BAD_REQUEST)
                                .send(e.to_string().as_bytes())
                                .ok(),
                        };
                    }
                    "/upload" => {
                        let mut body = Vec::new();
                        req.read_to_end(&mut body).unwrap();
                        res.send(
                            format!("len {} fnv {:x}", body.len(), checksum(&body)).as_bytes(),
                        )
                        .ok();
                    }
                    "/trailers" => {
                        let mut body = Vec::new();
                        req.read_to_end(&mut body).unwrap();
                        let t = req.trailers().cloned().unwrap_or_default();
                        let get = |k: &str| {
                            t.get(k)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_owned()
                        };
                        let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
                        let text = format!(
                            "got {} bytes, sum {sum}; trailers: x-client-sum={} x-note={}\n",
                            body.len(),
                            get("x-client-sum"),
                            get("x-note")
                        );
                        let mut out = HeaderMap::new();
                        out.insert("x-body-len", HeaderValue::from(body.len()));
                        out.insert("x-echo-note", get("x-note").parse().unwrap());
                        out.insert("x-echo-sum", get("x-client-sum").parse().unwrap());
                        let Ok(mut res) = res.start() else { return };
                        res.set_trailers(out);
                        res.write_all(text.as_bytes()).ok();
                        res.end().ok();
                    }
                    p if p.starts_with("/id/") => {
                        res.send(format!("id {}\n", &p[4..]).as_bytes()).ok();
                    }
                    p if p.starts_with("/watch/") => {
                        let mut body = Vec::new();
                        let what = match req.read_to_end(&mut body) {
                            Ok(n) => format!("{p}: ok {n}"),
                            Err(e) => format!("{p}: error after {} bytes: {e}", body.len()),
                        };
                        seen.lock().unwrap().push(what);
                        res.send(b"watched\n").ok();
                    }
                    p => {
                        res.send(format!("{:?} {p}\n", req.version()).as_bytes())
                            .ok();
                    }
                }
            },
            16,
        )
        .unwrap()
}

fn serve_interop() -> (Listening, Seen) {
    let seen = Seen::default();
    (start(seen.clone()), seen)
}

fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--http2-prior-knowledge"])
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

#[test]
fn curl_get_and_uploads() {
    if !tool_available("curl") {
        return;
    }
    let (server, _) = serve_interop();
    let base = format!("http://{}", server.local_addr());

    // GET: the head shows HTTP/2, the body is whole.
    let head = curl(&["-D", "-", "-o", "/dev/null", &format!("{base}/bytes?n=10")]);
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    let got = curl(&[&format!("{base}/bytes?n=2500000")]);
    assert_eq!(got.len(), 2_500_000);
    assert!(got == pattern(2_500_000), "GET body differs");

    let dir = std::env::temp_dir().join(format!("spindle-h2-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("up.bin");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let want = format!("len {} fnv {:x}", data.len(), checksum(&data));
    // POST with a Content-Length.
    let got = curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{base}/upload"),
    ]);
    assert_eq!(String::from_utf8_lossy(&got), want);
    // PUT of a file, echoed back.
    let got = curl(&["-T", &file.display().to_string(), &format!("{base}/echo")]);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed upload differs");
    // A body of unknown length from stdin: no content-length, END_STREAM ends it.
    let mut child = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--http2-prior-knowledge",
            "-T",
            "-",
        ])
        .arg(format!("{base}/upload"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data2 = data.clone();
    let w = std::thread::spawn(move || {
        for part in data2.chunks(100_000) {
            stdin.write_all(part).unwrap();
        }
    });
    let mut got = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    w.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nghttp_shows_the_settings_exchange_and_a_200() {
    if !tool_available("nghttp") {
        return;
    }
    let (server, _) = serve_interop();
    let url = format!("http://{}/bytes?n=100000", server.local_addr());
    let (out, _) = run(Command::new("nghttp").args(["-nv", "-t", "20", &url]));
    for want in [
        // Both prefaces, and each side acknowledging the other's SETTINGS.
        "send SETTINGS frame <length=",
        "recv SETTINGS frame <length=",
        "recv SETTINGS frame <length=0, flags=0x01, stream_id=0>",
        "send SETTINGS frame <length=0, flags=0x01, stream_id=0>",
        "(niv=",
        "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]",
        "send HEADERS frame <length=",
        ":path: /bytes?n=100000",
        "recv (stream_id=13) :status: 200",
        "recv DATA frame <length=",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    let data: usize = out
        .lines()
        .filter(|l| l.contains("recv DATA frame <length="))
        .map(|l| {
            l.split("length=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(data, 100_000, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("recv DATA frame") && l.contains("flags=0x01, stream_id=13>")),
        "{out}"
    );
}

/// Parses h2load's summary: (done, succeeded, failed, errored, timeout, 2xx, other).
fn h2load_summary(out: &str) -> [u64; 7] {
    let nums = |line: &str| -> Vec<u64> {
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let req = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line:\n{out}"));
    let r = nums(req); // total, started, done, succeeded, failed, errored, timeout
    let st = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or_else(|| panic!("no status codes line:\n{out}"));
    // "status codes: 20000 2xx, 0 3xx, 0 4xx, 0 5xx"
    let s: Vec<u64> = st["status codes:".len()..]
        .split(',')
        .map(|p| p.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    [r[2], r[3], r[4], r[5], r[6], s[0], s[1] + s[2] + s[3]]
}

#[test]
fn h2load_bounded_runs_without_errors() {
    if !tool_available("h2load") {
        return;
    }
    let (server, _) = serve_interop();
    let url = format!("http://{}/id/7", server.local_addr());
    for (n, c, m) in [(20_000u64, "4", "32"), (10_000, "1", "100")] {
        let started = Instant::now();
        let (out, _) = run(Command::new("h2load").args([
            "-n",
            &n.to_string(),
            "-c",
            c,
            "-m",
            m,
            "-T",
            "30",
            "-N",
            "30",
            &url,
        ]));
        let [done, ok, failed, errored, timeout, s2xx, other] = h2load_summary(&out);
        eprintln!(
            "h2load -n {n} -c {c} -m {m}: {:?}; {}",
            started.elapsed(),
            out.lines()
                .find(|l| l.starts_with("finished in"))
                .unwrap_or("")
        );
        assert_eq!(
            (done, ok, failed, errored, timeout, s2xx, other),
            (n, n, 0, 0, 0, n, 0),
            "{out}"
        );
        assert!(out.contains("Application protocol: h2c"), "{out}");
    }
}

/// Runs tests/py/h2_edge_cases.py in `mode` against `server`; its JSON report.
fn edge_case(server: &Listening, mode: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/h2_edge_cases.py");
    let (out, _) =
        run(Command::new("python3").args([script, &server.local_addr().port().to_string(), mode]));
    let r = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{mode}: {e}: {out}"));
    eprintln!("h2_edge_cases.py {mode}: {r}");
    r
}

#[test]
fn python_h2_one_byte_window() {
    if !python_with("h2") {
        return;
    }
    let (server, _) = serve_interop();
    let r = edge_case(&server, "window1");
    // 3000 bytes, one DATA frame and one WINDOW_UPDATE per byte.
    assert_eq!(r["status"], "200", "{r}");
    assert_eq!(r["len"], 3000, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["max_frame"], 1, "{r}");
    assert_eq!(r["frames"], 3000, "{r}");
    // The last byte needs no WINDOW_UPDATE when its frame ends the stream.
    let updates = r["updates"].as_u64().unwrap();
    assert!((2999..=3000).contains(&updates), "{r}");
}

#[test]
fn python_h2_trailers_both_ways() {
    if !python_with("h2") {
        return;
    }
    let (server, _) = serve_interop();
    let r = edge_case(&server, "trailers");
    let sum: u64 = pattern(50_000).iter().map(|&b| u64::from(b)).sum();
    assert_eq!(r["status"], "200", "{r}");
    // The handler read the request trailers ...
    assert_eq!(
        r["body"],
        format!("got 50000 bytes, sum {sum}; trailers: x-client-sum={sum} x-note=sent after\n"),
        "{r}"
    );
    // ... and its own trailers arrived.
    assert_eq!(r["trailers"]["x-body-len"], "50000", "{r}");
    assert_eq!(r["trailers"]["x-echo-note"], "sent after", "{r}");
    assert_eq!(r["trailers"]["x-echo-sum"], sum.to_string(), "{r}");
}

#[test]
fn python_h2_reset_mid_upload() {
    if !python_with("h2") {
        return;
    }
    // Buffered bodies (the default, issue 14): the upload's 1000 bytes wait for the
    // rest of the body in the loop, and the reset ends the stream before its handler
    // ever runs. Unbuffered (`body_buffer(0)`): the handler started at once and sees
    // its body fail after the 1000 bytes it got.
    for buffered in [true, false] {
        let seen = Seen::default();
        let mut builder = Server::http("127.0.0.1:0").unwrap();
        if !buffered {
            builder = builder.body_buffer(0);
        }
        let server = start_with(builder, seen.clone());
        let r = edge_case(&server, "rst");
        assert_eq!(
            r["before"],
            serde_json::json!(["200", "HTTP/2.0 /other-before\n"]),
            "{r}"
        );
        assert_eq!(
            r["after"],
            serde_json::json!(["200", "HTTP/2.0 /other-after\n"]),
            "{r}"
        );
        assert_eq!(r["closed"], serde_json::Value::Null, "{r}");
        let until = Instant::now() + Duration::from_millis(if buffered { 500 } else { 5000 });
        while seen.lock().unwrap().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = seen.lock().unwrap().clone();
        if buffered {
            assert_eq!(seen, Vec::<String>::new(), "no handler runs for it");
            continue;
        }
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with("/watch/rst: error after 1000 bytes: stream reset: Cancel"),
            "{seen:?}"
        );
    }
}

#[test]
fn python_h2_hundred_concurrent_streams() {
    if !python_with("h2") {
        return;
    }
    let (server, _) = serve_interop();
    let r = edge_case(&server, "many");
    assert_eq!(r["server_max_concurrent"], 128, "{r}");
    assert_eq!(r["streams"], 100, "{r}");
    assert_eq!(r["answered"], 100, "{r}");
    assert_eq!(r["resets"], 0, "{r}");
    assert_eq!(r["bad"], serde_json::json!([]), "{r}");
}

#[test]
fn python_h2_settings_change_mid_connection() {
    if !python_with("h2") {
        return;
    }
    let (server, _) = serve_interop();
    let r = edge_case(&server, "settings");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["statuses"],
        serde_json::json!(["200", "200", "200", "200"]),
        "{r}"
    );
    let phases = r["phases"].as_array().unwrap();
    // 16 KiB window: frames up to the default 16 KiB frame size.
    assert!(phases[0]["max_frame"].as_u64().unwrap() <= 16_384, "{r}");
    // Once the smaller window is acknowledged, no frame is larger than it (and 200 KB
    // came that way).
    assert!(phases[1]["max_frame"].as_u64().unwrap() <= 1000, "{r}");
    assert!(phases[1]["frames"].as_u64().unwrap() >= 200, "{r}");
    // With MAX_FRAME_SIZE 65536 the server sends frames above 16 KiB, up to it.
    let big = phases[2]["max_frame"].as_u64().unwrap();
    assert!(big > 16_384 && big <= 65_536, "{r}");
}

#[test]
fn httpx_http2_prior_knowledge() {
    if !python_with("httpx, h2") {
        return;
    }
    let (server, _) = serve_interop();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/h2_httpx_client.py");
    let (out, _) =
        run(Command::new("python3").args([script, &format!("http://{}", server.local_addr())]));
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    let upload = pattern(300_000);
    let want_upload = format!("len {} fnv {:x}", upload.len(), checksum(&upload));
    assert_eq!(
        r["get"],
        serde_json::json!(["HTTP/2", 200, "HTTP/2.0 /hello\n"]),
        "{r}"
    );
    assert_eq!(
        r["bytes"],
        serde_json::json!(["HTTP/2", 200, 1_000_000, true]),
        "{r}"
    );
    assert_eq!(r["echo"], serde_json::json!(["HTTP/2", 200, true]), "{r}");
    assert_eq!(
        r["stream_upload"],
        serde_json::json!(["HTTP/2", 200, want_upload]),
        "{r}"
    );
    assert_eq!(
        r["path"],
        serde_json::json!([200, "HTTP/2.0 /missing-handler-path\n"]),
        "{r}"
    );
}
