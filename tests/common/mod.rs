//! Helpers for the integration tests: start a server on 127.0.0.1:0 and speak raw bytes.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use spindle::server::{Handler, Listening, Server};

/// Starts `handler` on 127.0.0.1:0 with four workers.
pub fn serve<H: Handler>(handler: H) -> Listening {
    serve_with(Server::http("127.0.0.1:0").unwrap(), handler)
}

pub fn serve_with<H: Handler>(server: Server, handler: H) -> Listening {
    let _ = env_logger::builder().is_test(true).try_init();
    server.handle_threads(handler, 4).unwrap()
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends `bytes` and reads until the server closes the connection.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(bytes).unwrap();
    read_to_close(&mut stream)
}

pub fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "reading the response: {e} (so far: {:?})",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub chunked: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Reads responses one at a time from a connection, by their framing.
pub struct Reader {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Self {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(
                self.fill() > 0,
                "connection closed mid-line: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill() > 0, "connection closed mid-body");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one response; `head_request` says the body is absent whatever the fields say.
    pub fn response(&mut self, head_request: bool) -> RawResponse {
        let status_line = self.line();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("field line");
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut res = RawResponse {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
            chunked: false,
        };
        if status < 200 || status == 204 || status == 304 || head_request {
            return res;
        }
        if res
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            res.chunked = true;
            loop {
                let size =
                    usize::from_str_radix(self.line().split(';').next().unwrap(), 16).unwrap();
                if size == 0 {
                    loop {
                        let line = self.line();
                        if line.is_empty() {
                            break;
                        }
                        let (k, v) = line.split_once(':').unwrap();
                        res.trailers.push((k.to_string(), v.trim().to_string()));
                    }
                    break;
                }
                let data = self.exact(size);
                res.body.extend_from_slice(&data);
                assert_eq!(self.exact(2), b"\r\n");
            }
        } else if let Some(len) = res.header("content-length") {
            let len: usize = len.parse().unwrap();
            res.body = self.exact(len);
        } else {
            while self.fill() > 0 {}
            res.body = std::mem::take(&mut self.buf);
        }
        res
    }

    /// True if the server has closed the connection (reads EOF), waiting up to 5 s.
    pub fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_)) && self.buf.is_empty()
    }
}

pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
}

/// Runs a command-line tool, or reports it missing: an error under CI, a loud skip
/// message otherwise.
pub fn tool_available(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is required in CI but is not installed");
        }
        eprintln!(
            "\n!!!!! SKIPPED: `{name}` is not installed; install it to run this test !!!!!\n"
        );
    }
    found
}

/// python3 can import `modules` (e.g. `"httpx, h2"`), or it is reported missing like
/// [`tool_available`]: an error under CI, a loud skip message otherwise.
pub fn python_with(modules: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3 with `{modules}` is required in CI but is not installed");
        }
        eprintln!("\n!!!!! SKIPPED: python3 with `{modules}` is not installed !!!!!\n");
    }
    ok
}

pub mod nginx;
