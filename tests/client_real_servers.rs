//! The client against servers users meet: Python's `http.server` and nginx, on loopback,
//! on ports chosen now, started and killed (by PID) here.
//!
//! A missing tool is a loud SKIP in plain `cargo test`, and a failure when `CI=true`
//! (`.ci/run` installs them).
mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nginx::Nginx;
use spindle::server::{Request, Response, Server};
use spindle::Client;

fn tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let ok = Command::new(c)
            .arg(if name == "nginx" { "-v" } else { "--version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(c));
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} is required in CI (.ci/run installs it)");
    }
    eprintln!("\n!!!!!!!! SKIP: {name} not installed; this test did not run (.ci/run installs it) !!!!!!!!\n");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spindle-client-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www/sub")).unwrap();
    std::fs::write(dir.join("www/hello.txt"), "hello from disk\n").unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("www/big.bin"), &big).unwrap();
    std::fs::write(dir.join("www/sub/index.html"), "<p>sub</p>").unwrap();
    dir
}

/// A child process killed (by its PID) and reaped when dropped.
struct Proc(Child, PathBuf);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn wait_listening(port: u16, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not listen on {port} within 15 s");
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .env_proxy(false)
        .build()
}

fn python(dir: &Path, http11: bool) -> Option<(Proc, u16)> {
    let py = tool("python3", &["python3", "python"])?;
    let port = free_port();
    let script = r#"
import http.server, os, sys
os.chdir(sys.argv[2])
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = sys.argv[3]
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let mut child = Command::new(py)
        .args([
            "-c",
            script,
            &port.to_string(),
            dir.join("www").to_str().unwrap(),
        ])
        .arg(if http11 { "HTTP/1.1" } else { "HTTP/1.0" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port, &mut child);
    Some((Proc(child, dir.to_owned()), port))
}

#[test]
fn python_http_server_http10() {
    let dir = temp_dir("py10");
    let Some((_proc, port)) = python(&dir, false) else {
        return;
    };
    let client = client();
    let base = format!("http://127.0.0.1:{port}");
    let res = client.get(format!("{base}/hello.txt")).send().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), spindle::http::Version::HTTP_10);
    assert_eq!(res.content_type().unwrap().essence_str(), "text/plain");
    assert_eq!(res.text().unwrap(), "hello from disk\n");
    assert_eq!(
        client.idle_connections(),
        0,
        "HTTP/1.0 connections are not pooled"
    );
    assert_eq!(
        client
            .get(format!("{base}/missing"))
            .send()
            .unwrap()
            .status(),
        404
    );
    // Directory without a slash: 301 to the slash form, followed.
    let res = client.get(format!("{base}/sub")).send().unwrap();
    assert_eq!(res.url().path(), "/sub/");
    assert_eq!(res.text().unwrap(), "<p>sub</p>");
}

#[test]
fn python_http_server_http11_keep_alive() {
    let dir = temp_dir("py11");
    let Some((_proc, port)) = python(&dir, true) else {
        return;
    };
    let client = client();
    let base = format!("http://127.0.0.1:{port}");
    let expect: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..3 {
        let mut res = client.get(format!("{base}/big.bin")).send().unwrap();
        assert_eq!(res.content_length(), Some(1_000_000));
        let mut body = Vec::new();
        res.read_to_end(&mut body).unwrap();
        assert!(body == expect);
    }
    assert_eq!(client.idle_connections(), 1);
    let head = client.head(format!("{base}/hello.txt")).send().unwrap();
    assert_eq!(head.content_length(), Some(16));
    assert_eq!(head.bytes().unwrap(), b"");
    assert_eq!(
        client
            .get(format!("{base}/hello.txt"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "hello from disk\n"
    );
    assert_eq!(client.idle_connections(), 1);
}

fn nginx(dir: &Path, upstream_port: u16) -> Option<(Nginx, u16)> {
    let port = free_port();
    let d = dir.display();
    let http = format!(
        r#"
    types {{ text/plain txt; text/html html; application/octet-stream bin; }}
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        client_max_body_size 64m;
        location = /echo {{ return 200 "$request_method $request_uri\n"; }}
        location = /redirect {{ return 302 /hello.txt; }}
        location /up/ {{
            proxy_pass http://127.0.0.1:{upstream_port}/;
            proxy_http_version 1.1;
            proxy_buffering off;
        }}
    }}"#
    );
    Some((Nginx::start(dir, &http, port)?, port))
}

#[test]
fn nginx_static_redirect_and_proxied_chunked() {
    // The upstream behind nginx: streams (chunked) and echoes request bodies.
    let upstream = Server::http("127.0.0.1:0")
        .unwrap()
        .handle(|mut req: Request, res: Response| {
            if req.path() == "/stream" {
                let mut out = res.start().unwrap();
                for i in 0..200 {
                    use std::io::Write;
                    if writeln!(out, "row {i}").is_err() {
                        return;
                    }
                }
            } else {
                let mut body = Vec::new();
                req.read_to_end(&mut body).ok();
                res.send(format!("{} bytes", body.len()).as_bytes()).ok();
            }
        })
        .unwrap();
    let dir = temp_dir("nginx");
    let Some((_proc, port)) = nginx(&dir, upstream.local_addr().port()) else {
        upstream.close();
        return;
    };
    let client = client();
    let base = format!("http://127.0.0.1:{port}");
    let res = client.get(format!("{base}/hello.txt")).send().unwrap();
    assert_eq!(
        res.header("server").map(|s| s.starts_with("nginx")),
        Some(true)
    );
    assert_eq!(res.text().unwrap(), "hello from disk\n");
    let big = client
        .get(format!("{base}/big.bin"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(big.len(), 1_000_000);
    assert_eq!(
        client
            .get(format!("{base}/echo?x=1"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "GET /echo?x=1\n"
    );
    let res = client.get(format!("{base}/redirect")).send().unwrap();
    assert_eq!(res.url().path(), "/hello.txt");
    assert_eq!(res.text().unwrap(), "hello from disk\n");
    assert_eq!(
        client.get(format!("{base}/nope")).send().unwrap().status(),
        404
    );
    // All of the above on one keep-alive connection.
    assert_eq!(client.idle_connections(), 1);
    // Chunked both ways through nginx.
    let res = client.get(format!("{base}/up/stream")).send().unwrap();
    assert!(res.content_length().is_none());
    let text = res.text().unwrap();
    assert_eq!(text.lines().count(), 200);
    let body = vec![b'q'; 3 << 20];
    let res = client
        .post(format!("{base}/up/echo"))
        .body(spindle::client::Body::reader(&body[..]))
        .send()
        .unwrap();
    assert_eq!(res.text().unwrap(), format!("{} bytes", 3 << 20));
    upstream.close();
}
