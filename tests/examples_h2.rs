//! The HTTP/2 examples end to end, with real clients (curl, nghttp):
//! `examples/h2_server.rs` (HTTP/1.1 and HTTP/2 on one port, each answer naming its
//! protocol) and `examples/reverse_proxy.rs` with an HTTP/2 client in front and an
//! HTTP/1.1 upstream behind (issue 8, item 7).
//!
//! The examples are compiled into this test as modules, so the test runs exactly their
//! handlers. Every client runs with `--max-time`, every socket with a read timeout, and
//! every wait on another thread is bounded.
mod common;

#[path = "../examples/h2_server.rs"]
mod h2_server;
#[path = "../examples/reverse_proxy.rs"]
mod reverse_proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tool_available;
use reverse_proxy::ReverseProxy;
use spindle::server::{Request, Response, Server};

/// FNV-1a, enough to tell two copies of a body apart.
fn fnv(h: u64, data: &[u8]) -> u64 {
    data.iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}
const FNV_START: u64 = 0xcbf29ce484222325;

/// A deterministic, non-repeating-looking byte pattern (so a lost or doubled chunk
/// changes the checksum).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("spindle-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs curl with a time bound, optionally with `stdin` from a file.
fn curl(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60"]).args(args);
    if let Some(file) = stdin {
        cmd.stdin(std::fs::File::open(file).unwrap());
    } else {
        cmd.stdin(Stdio::null());
    }
    let out = cmd.output().expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn h2_server_names_the_protocol_on_one_port() {
    if !tool_available("curl") || !tool_available("nghttp") {
        return;
    }
    let _ = env_logger::builder().is_test(true).try_init();
    let server = h2_server::serve("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.local_addr());

    // HTTP/2 with prior knowledge, then HTTP/1.1, on the same port.
    let h2 = text(&curl(
        &["--http2-prior-knowledge", "-i", &format!("{base}/hi")],
        None,
    ));
    assert!(h2.starts_with("HTTP/2 200"), "{h2}");
    assert!(h2.contains("x-protocol: HTTP/2.0\r\n"), "{h2}");
    assert!(h2.ends_with("\r\n\r\nGET /hi over HTTP/2.0\n"), "{h2}");
    let h1 = text(&curl(&["--http1.1", "-i", &format!("{base}/hi")], None));
    assert!(h1.starts_with("HTTP/1.1 200"), "{h1}");
    assert!(h1.contains("x-protocol: HTTP/1.1\r\n"), "{h1}");
    assert!(h1.ends_with("\r\n\r\nGET /hi over HTTP/1.1\n"), "{h1}");

    // HTTP/1.0 too (curl cannot be told to use it without also changing other things).
    let h10 = common::exchange(server.local_addr(), b"GET /old HTTP/1.0\r\n\r\n");
    assert!(h10.ends_with("GET /old over HTTP/1.0\n"), "{h10}");

    // nghttp, frame by frame: the answer arrives on an HTTP/2 stream.
    let out = Command::new("nghttp")
        .args(["-v", "-t", "20", &format!("{base}/frames")])
        .output()
        .expect("running nghttp");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp failed: {log}");
    assert!(log.contains(":status: 200"), "{log}");
    assert!(log.contains("x-protocol: HTTP/2.0"), "{log}");
    assert!(log.contains("GET /frames over HTTP/2.0"), "{log}");

    // The echo streams a body larger than any buffer back, over both protocols.
    let dir = TempDir::new("h2ex-echo");
    let file = dir.path("up.bin");
    let data = pattern(3 << 20, 1);
    std::fs::write(&file, &data).unwrap();
    for proto in ["--http2-prior-knowledge", "--http1.1"] {
        let out = curl(
            &[
                proto,
                "-X",
                "POST",
                "-T",
                &file.display().to_string(),
                &format!("{base}/echo"),
            ],
            None,
        );
        assert_eq!(out.stdout.len(), data.len(), "{proto}");
        assert_eq!(
            fnv(FNV_START, &out.stdout),
            fnv(FNV_START, &data),
            "{proto}"
        );
    }

    // Anything else: 405 with Allow, still naming the protocol.
    let out = text(&curl(
        &[
            "--http2-prior-knowledge",
            "-i",
            "-X",
            "DELETE",
            &format!("{base}/echo"),
        ],
        None,
    ));
    assert!(out.starts_with("HTTP/2 405"), "{out}");
    assert!(out.contains("allow: GET, HEAD, POST, PUT\r\n"), "{out}");
    server.close();
}

/// What the raw upstream saw of one request.
#[derive(Debug)]
struct Seen {
    /// The request head exactly as it arrived, lines without CRLF.
    head: Vec<String>,
    /// True when the body came with `Transfer-Encoding: chunked` and was decoded as such.
    chunked: bool,
    /// Chunks (or 1 for a Content-Length body, 0 for none).
    pieces: usize,
    body_len: u64,
    body_sum: u64,
}

impl Seen {
    /// The values of one field, by case-insensitive name.
    fn field(&self, name: &str) -> Vec<&str> {
        self.head[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

const RESPONSE_LEN: usize = 6 << 20;

/// An HTTP/1.1 upstream written from raw sockets, so the test sees the bytes the proxy
/// put on the wire rather than what a server library made of them. Each request is
/// answered with `RESPONSE_LEN` bytes of `pattern(_, 7)` in 64 KiB chunks, plus
/// hop-by-hop fields the proxy must drop before they reach an HTTP/2 client, and a
/// trailer field it must pass on.
fn raw_upstream() -> (std::net::SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    // The accept loop ends with the test process; each connection ends at EOF or
    // after its read timeout.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_raw(conn, tx));
        }
    });
    (addr, rx)
}

fn serve_raw(conn: TcpStream, tx: mpsc::Sender<Seen>) {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let line = |r: &mut BufReader<TcpStream>| -> Option<String> {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(l.trim_end_matches("\r\n").to_owned()),
        }
    };
    let body = pattern(RESPONSE_LEN, 7);
    loop {
        let mut head = Vec::new();
        loop {
            let Some(l) = line(&mut r) else { return };
            if l.is_empty() {
                break;
            }
            head.push(l);
        }
        let mut seen = Seen {
            head,
            chunked: false,
            pieces: 0,
            body_len: 0,
            body_sum: FNV_START,
        };
        if seen
            .field("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"))
        {
            seen.chunked = true;
            loop {
                let size_line = line(&mut r).expect("chunk size line");
                let size = usize::from_str_radix(size_line.split(';').next().unwrap(), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
                if size == 0 {
                    // Trailers, then the empty line.
                    while !line(&mut r).expect("trailer line").is_empty() {}
                    break;
                }
                let mut data = vec![0u8; size];
                r.read_exact(&mut data).expect("chunk data");
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf).expect("chunk CRLF");
                assert_eq!(&crlf, b"\r\n", "chunk not followed by CRLF");
                seen.pieces += 1;
                seen.body_len += size as u64;
                seen.body_sum = fnv(seen.body_sum, &data);
            }
        } else if let Some(n) = seen.field("content-length").first() {
            let mut data = vec![0u8; n.parse().unwrap()];
            r.read_exact(&mut data).expect("sized body");
            seen.pieces = 1;
            seen.body_len = data.len() as u64;
            seen.body_sum = fnv(seen.body_sum, &data);
        }
        let _ = tx.send(seen);
        let head = "HTTP/1.1 200 OK\r\n\
                    Transfer-Encoding: chunked\r\n\
                    Connection: keep-alive, x-hop\r\n\
                    Keep-Alive: timeout=5\r\n\
                    X-Hop: by-hop only\r\n\
                    X-Upstream: yes\r\n\
                    Content-Type: application/octet-stream\r\n\r\n";
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        for chunk in body.chunks(64 * 1024) {
            let framed = [
                format!("{:x}\r\n", chunk.len()).as_bytes(),
                chunk,
                b"\r\n".as_slice(),
            ]
            .concat();
            if out.write_all(&framed).is_err() {
                return;
            }
        }
        if out.write_all(b"0\r\nx-checksum: done\r\n\r\n").is_err() {
            return;
        }
    }
}

#[test]
fn reverse_proxy_forwards_http2_uploads_chunked_to_http1_upstream() {
    if !tool_available("curl") {
        return;
    }
    let _ = env_logger::builder().is_test(true).try_init();
    let (up_addr, seen) = raw_upstream();
    let proxy = ReverseProxy::new(&format!("http://{up_addr}"), Duration::from_secs(30));
    let listening = Server::http("127.0.0.1:0")
        .unwrap()
        .handle(move |req: Request, res: Response| proxy.handle(req, res))
        .unwrap();
    let base = format!("http://{}", listening.local_addr());
    let wait = |what: &str| {
        seen.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the upstream never saw {what}"))
    };
    let dir = TempDir::new("h2ex-proxy");

    // 1. An HTTP/2 GET: no body, so none goes upstream (no empty chunked body).
    let got = dir.path("get.out");
    let hdrs = dir.path("get.head");
    curl(
        &[
            "--http2-prior-knowledge",
            "-H",
            "Cookie: a=1",
            "-H",
            "Cookie: b=2",
            "-D",
            &hdrs.display().to_string(),
            "-o",
            &got.display().to_string(),
            &format!("{base}/get?x=1"),
        ],
        None,
    );
    let get = wait("the GET");
    assert_eq!(get.head[0], "GET /get?x=1 HTTP/1.1", "{get:?}");
    assert!(get.field("transfer-encoding").is_empty(), "{get:?}");
    assert!(get.field("content-length").is_empty(), "{get:?}");
    assert_eq!(get.pieces, 0, "{get:?}");
    // RFC 9113 §8.2.3: the split cookie fields arrive as one HTTP/1.1 field.
    assert_eq!(get.field("cookie"), ["a=1; b=2"], "{get:?}");
    check_forwarded_head(
        &get,
        &up_addr.to_string(),
        &listening.local_addr().to_string(),
    );
    check_client_response(&hdrs, &got);

    // 2. An HTTP/2 upload of unknown length (curl reads stdin, so it cannot send a
    //    Content-Length), larger than every buffer on the way: 8 MiB.
    let file = dir.path("up.bin");
    let data = pattern(8 << 20, 3);
    std::fs::write(&file, &data).unwrap();
    let got = dir.path("put.out");
    let hdrs = dir.path("put.head");
    curl(
        &[
            "--http2-prior-knowledge",
            "-T",
            "-",
            "-D",
            &hdrs.display().to_string(),
            "-o",
            &got.display().to_string(),
            &format!("{base}/upload"),
        ],
        Some(&file),
    );
    let put = wait("the upload");
    assert_eq!(put.head[0], "PUT /upload HTTP/1.1", "{put:?}");
    assert!(
        put.chunked,
        "unknown length must go upstream chunked: {put:?}"
    );
    assert!(put.field("content-length").is_empty(), "{put:?}");
    assert_eq!(put.body_len, data.len() as u64, "the whole body arrived");
    assert_eq!(put.body_sum, fnv(FNV_START, &data), "and unchanged");
    assert!(put.pieces > 1, "streamed in pieces, not as one: {put:?}");
    check_forwarded_head(
        &put,
        &up_addr.to_string(),
        &listening.local_addr().to_string(),
    );
    check_client_response(&hdrs, &got);

    // 3. The same body with a Content-Length (curl knows a file's size): it is kept.
    let got = dir.path("sized.out");
    let hdrs = dir.path("sized.head");
    curl(
        &[
            "--http2-prior-knowledge",
            "-T",
            &file.display().to_string(),
            "-D",
            &hdrs.display().to_string(),
            "-o",
            &got.display().to_string(),
            &format!("{base}/sized"),
        ],
        None,
    );
    let sized = wait("the sized upload");
    assert_eq!(sized.field("content-length"), [data.len().to_string()]);
    assert!(!sized.chunked, "{sized:?}");
    assert_eq!(sized.body_sum, fnv(FNV_START, &data));
    check_client_response(&hdrs, &got);
    listening.close();
}

/// The request head the upstream got: no HTTP/2 pseudo-fields or connection-specific
/// fields, its own `Host`, and the client's `:authority` as `X-Forwarded-Host`.
fn check_forwarded_head(seen: &Seen, upstream: &str, proxy: &str) {
    for line in &seen.head[1..] {
        assert!(!line.starts_with(':'), "pseudo-field leaked: {seen:?}");
    }
    assert_eq!(seen.field("host"), [upstream], "{seen:?}");
    assert_eq!(seen.field("x-forwarded-host"), [proxy], "{seen:?}");
    assert_eq!(seen.field("x-forwarded-proto"), ["http"], "{seen:?}");
    assert_eq!(seen.field("x-forwarded-for"), ["127.0.0.1"], "{seen:?}");
    for hop in [
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "http2-settings",
    ] {
        assert!(seen.field(hop).is_empty(), "{hop} forwarded: {seen:?}");
    }
}

/// What the HTTP/2 client got back: the whole upstream body, and no connection-specific
/// fields (which HTTP/2 forbids; curl would also have failed the stream on them).
fn check_client_response(head_file: &Path, body_file: &Path) {
    let head = std::fs::read_to_string(head_file).unwrap();
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    for gone in ["connection:", "keep-alive:", "x-hop:", "transfer-encoding:"] {
        assert!(!lower.contains(gone), "{gone} reached the client: {head}");
    }
    assert!(lower.contains("x-upstream: yes"), "{head}");
    // The upstream's chunked trailer arrives as the HTTP/2 trailer block (curl writes
    // it after the head's empty line).
    let (_, trailers) = head.split_once("\r\n\r\n").unwrap();
    assert_eq!(trailers, "x-checksum: done\r\n", "{head}");
    let body = std::fs::read(body_file).unwrap();
    assert_eq!(body.len(), RESPONSE_LEN, "the whole response arrived");
    assert_eq!(
        fnv(FNV_START, &body),
        fnv(FNV_START, &pattern(RESPONSE_LEN, 7))
    );
}
