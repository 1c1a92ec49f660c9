//! Regression tests for HTTP/1 request-head parsing and the chunked coding under hostile
//! input (issue 13, defects a, d, g, h, i, j): exact bytes over a real socket, asserting
//! the status and bytes a client sees, and that the server goes on serving.
mod common;
#[path = "../examples/reverse_proxy.rs"]
mod reverse_proxy;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reverse_proxy::ReverseProxy;
use spindle::http::StatusCode;
use spindle::server::{Listening, Request, Response, Server};
use spindle::Client;

/// Reads the body, then answers with what the handler saw: method, target, version,
/// the Host field, the body and the trailer fields (names and values, sorted).
fn report(mut req: Request, res: Response) {
    let mut body = Vec::new();
    if let Err(e) = req.read_to_end(&mut body) {
        res.with_status(StatusCode::BAD_REQUEST)
            .send(format!("body error: {e}").as_bytes())
            .ok();
        return;
    }
    let host = req
        .headers()
        .get_all("host")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join("|");
    let mut trailers: Vec<String> = req
        .trailers()
        .map(|t| {
            t.iter()
                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v.as_bytes())))
                .collect()
        })
        .unwrap_or_default();
    trailers.sort();
    let text = format!(
        "{} {} {:?} host={host} body={} trailers={}",
        req.method(),
        req.uri(),
        req.version(),
        String::from_utf8_lossy(&body),
        trailers.join(",")
    );
    res.send(text.as_bytes()).ok();
}

/// Sends `bytes` on a new connection and reads one response.
fn ask(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut r = Reader::new(connect(addr));
    send(&mut r.stream, bytes);
    r.response(false)
}

/// The server answers a plain request on a new connection.
fn still_serving(addr: SocketAddr) {
    let res = ask(addr, b"GET /alive HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(res.status, 200);
    assert!(res.body_str().starts_with("GET /alive"), "{res:?}");
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// (a) Every shape of HTTP-version token: a status, never an abort (the process used to
/// overflow its stack on `GET /a b HTTP/1.1`, recursing on a rewritten copy of the buffer).
#[test]
fn request_line_shapes_get_a_status_never_an_abort() {
    let server = serve(report);
    let addr = server.local_addr();
    let cases: &[(&[u8], u16)] = &[
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a b HTTP/1.2\r\nHost: a\r\n\r\n", 400),
        (b"GET /a b c HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a  HTTP/1.2\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.2 x\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.2 \r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.2.3\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.a\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
        (b"GET / XTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.9\r\n\r\n", 400), // served as 1.1: Host is required
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/3\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.9\r\nHost: a\r\n\r\n", 200),
        (b"GET / HTTP/1.2\r\nHost: a\r\nX: \x01\r\n\r\n", 400),
        (b"GET / HTTP/1.2\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    ];
    // The exact bytes, as a connection's first request.
    let res = ask(addr, b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(res.status, 400, "{res:?}");
    still_serving(addr);
    // Each shape as the second request of a connection: on a connection's first bytes,
    // the server may take a line that names no HTTP version for a garbled HTTP/2
    // preface and answer with GOAWAY (RFC 9113 §3.4); after one HTTP/1 exchange, the
    // answer is HTTP/1's.
    for &(bytes, want) in cases {
        let mut r = Reader::new(connect(addr));
        let mut burst = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        burst.extend_from_slice(bytes);
        send(&mut r.stream, &burst);
        assert_eq!(r.response(false).status, 200);
        let res = r.response(false);
        assert_eq!(res.status, want, "{:?} -> {res:?}", show(bytes));
        if want == 200 {
            assert!(
                res.body_str().starts_with("GET / HTTP/1.1 host=a"),
                "{res:?}"
            );
        } else {
            assert_eq!(res.header("connection"), Some("close"), "{res:?}");
            assert!(r.closed(), "{:?}", show(bytes));
        }
        still_serving(addr);
    }
}

/// (a) A later 1.x minor version is served as HTTP/1.1 with its fields and body, and the
/// connection stays usable (RFC 9110 §2.5).
#[test]
fn later_minor_version_is_served_as_http11_with_its_body() {
    let server = serve(report);
    let mut r = Reader::new(connect(server.local_addr()));
    send(
        &mut r.stream,
        b"POST /p HTTP/1.7\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /q HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let res = r.response(false);
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "POST /p HTTP/1.1 host=a body=abc trailers=");
    let res = r.response(false);
    assert_eq!(res.body_str(), "GET /q HTTP/1.1 host=a body= trailers=");
}

/// (d) A bare LF anywhere in the head is a 400 by default (a front end that splits only
/// on CRLF would see one field where we would see two), and the handler never runs.
#[test]
fn bare_lf_in_a_head_is_400() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let server = serve(move |req: Request, res: Response| {
        log.lock().unwrap().push(req.uri().to_string());
        report(req, res)
    });
    let addr = server.local_addr();
    for bytes in [
        &b"POST /smuggle HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            [..],
        b"GET /smuggle HTTP/1.1\r\nHost: a\r\nX: y\nContent-Length: 4\r\n\r\nabcd",
        b"GET /smuggle HTTP/1.1\nHost: a\r\n\r\n",
        b"GET /smuggle HTTP/1.1\r\nHost: a\n\r\n",
        b"GET /smuggle HTTP/1.1\r\nHost: a\r\n\n",
        b"GET /smuggle HTTP/1.1\nHost: a\n\n",
        b"GET /smuggle HTTP/1.2\r\nHost: a\r\nX: y\nZ: w\r\n\r\n",
        b"\nGET /smuggle HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let out = exchange(addr, bytes);
        assert!(
            out.starts_with("HTTP/1.1 400 "),
            "{:?} -> {out:?}",
            show(bytes)
        );
        assert!(out.contains("connection: close\r\n"), "{out}");
        still_serving(addr);
    }
    assert_eq!(*seen.lock().unwrap(), vec!["/alive"; 8]);
}

fn chunked_post(body: &[u8]) -> Vec<u8> {
    let mut bytes = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// (g) Leading zeros in a chunk size are valid (RFC 9112 §7.1: chunk-size = 1*HEXDIG);
/// only the value's overflow and the line's length are bounded.
#[test]
fn chunk_sizes_with_leading_zeros_are_accepted() {
    let server = serve_with(
        Server::http("127.0.0.1:0").unwrap().max_head_bytes(4096),
        report,
    );
    let addr = server.local_addr();
    let zeros = "0".repeat(100);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            chunked_post(b"00000000000000003\r\nabc\r\n0\r\n\r\n"),
            "abc",
        ),
        (
            chunked_post(
                format!("{zeros}3\r\nabc\r\n{zeros}2;x=y\r\nde\r\n{zeros}\r\n\r\n").as_bytes(),
            ),
            "abcde",
        ),
        (
            chunked_post(b"0000000000000000000a\r\n0123456789\r\n0\r\n\r\n"),
            "0123456789",
        ),
    ];
    for (bytes, want) in cases {
        let res = ask(addr, &bytes);
        assert_eq!(res.status, 200, "{:?} -> {res:?}", show(&bytes));
        assert_eq!(
            res.body_str(),
            format!("POST /c HTTP/1.1 host=a body={want} trailers=")
        );
    }
    // The value still may not overflow 64 bits, and the line is still bounded.
    let long_zeros = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(5000));
    for body in [
        &b"10000000000000000\r\n"[..],
        b"0000010000000000000000\r\n",
        long_zeros.as_bytes(),
    ] {
        let res = ask(addr, &chunked_post(body));
        assert_eq!(res.status, 400, "{:?} -> {res:?}", show(body));
        assert!(res.body_str().starts_with("body error"), "{res:?}");
        still_serving(addr);
    }
}

/// The trailer section of the (h) test: fields that must not be trailers
/// (RFC 9110 §6.5.1) around one that may.
const HOSTILE_TRAILERS: &[u8] = b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil.example\r\nAuthorization: Basic eDp5\r\nTrailer: X-Checksum\r\nContent-Type: text/html\r\nSet-Cookie: a=b\r\nX-Checksum: 42\r\n\r\n";

/// (h) Forbidden trailer fields are dropped before the handler sees the trailers; the
/// allowed one arrives and the connection stays in step.
#[test]
fn forbidden_trailer_fields_never_reach_the_handler() {
    let server = serve(report);
    let mut r = Reader::new(connect(server.local_addr()));
    let mut bytes = chunked_post(b"3\r\nabc\r\n0\r\n");
    bytes.extend_from_slice(HOSTILE_TRAILERS);
    bytes.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    send(&mut r.stream, &bytes);
    let res = r.response(false);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body_str(),
        "POST /c HTTP/1.1 host=a body=abc trailers=x-checksum=42"
    );
    let res = r.response(false);
    assert_eq!(res.body_str(), "GET /next HTTP/1.1 host=a body= trailers=");
}

/// A scripted upstream: answers every request head on every connection with `canned`.
fn scripted_upstream(canned: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        if stream.write_all(canned).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn proxy_to(upstream: &str) -> Listening {
    let proxy = ReverseProxy::new(upstream, Duration::from_secs(10));
    serve(move |req: Request, res: Response| proxy.handle(req, res))
}

/// (h) The client drops forbidden trailer fields too (the decoder is shared), so the
/// reverse proxy never forwards them downstream.
#[test]
fn forbidden_trailer_fields_are_dropped_by_the_client_and_the_proxy() {
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil.example\r\nAuthorization: Basic eDp5\r\nTrailer: X-Checksum\r\nContent-Type: text/html\r\nSet-Cookie: a=b\r\nX-Checksum: 42\r\n\r\n";
    let upstream = scripted_upstream(RESPONSE);

    let client = Client::new();
    let mut res = client.get(format!("http://{upstream}/")).send().unwrap();
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "hello");
    let trailers = res.trailers().unwrap();
    assert_eq!(trailers.len(), 1, "{trailers:?}");
    assert_eq!(trailers["x-checksum"], "42");

    let proxy = proxy_to(&format!("http://{upstream}"));
    let mut r = Reader::new(connect(proxy.local_addr()));
    send(
        &mut r.stream,
        b"GET / HTTP/1.1\r\nHost: p\r\nTE: trailers\r\n\r\n",
    );
    let res = r.response(false);
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello");
    assert_eq!(
        res.trailers,
        vec![("x-checksum".to_string(), "42".to_string())]
    );
}

/// (i) Empty lines before the request line are ignored (RFC 9112 §2.2), whatever the
/// version token, up to a bound.
#[test]
fn leading_empty_lines_are_ignored_up_to_a_bound() {
    let server = serve(report);
    let addr = server.local_addr();
    for version in ["HTTP/1.1", "HTTP/1.2"] {
        for lines in [1, 2, 8] {
            let bytes = format!("{}GET / {version}\r\nHost: a\r\n\r\n", "\r\n".repeat(lines));
            let res = ask(addr, bytes.as_bytes());
            assert_eq!(res.status, 200, "{bytes:?} -> {res:?}");
            assert_eq!(res.body_str(), "GET / HTTP/1.1 host=a body= trailers=");
        }
        let bytes = format!("{}GET / {version}\r\nHost: a\r\n\r\n", "\r\n".repeat(9));
        let out = exchange(addr, bytes.as_bytes());
        assert!(out.starts_with("HTTP/1.1 400 "), "{bytes:?} -> {out:?}");
        still_serving(addr);
    }
    // The CRLF an old client sends after a POST body, then a 1.2 request.
    let mut r = Reader::new(connect(addr));
    send(
        &mut r.stream,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\nGET /2 HTTP/1.2\r\nHost: a\r\n\r\n",
    );
    assert_eq!(
        r.response(false).body_str(),
        "POST / HTTP/1.1 host=a body=x trailers="
    );
    assert_eq!(
        r.response(false).body_str(),
        "GET /2 HTTP/1.1 host=a body= trailers="
    );
}

/// (j) With an absolute-form target, the target's authority is the host (RFC 9112
/// §3.2.2): the handler sees it in `Host` as well as in the URI.
#[test]
fn absolute_form_authority_wins_over_host() {
    let server = serve(report);
    let addr = server.local_addr();
    let cases: &[(&[u8], &str)] = &[
        (
            b"GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "GET http://b.example/x HTTP/1.1 host=b.example body= trailers=",
        ),
        (
            b"GET http://b.example:8080/x?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "GET http://b.example:8080/x?q HTTP/1.1 host=b.example:8080 body= trailers=",
        ),
        (
            b"GET http://b.example/x HTTP/1.1\r\nHost: \r\n\r\n",
            "GET http://b.example/x HTTP/1.1 host=b.example body= trailers=",
        ),
        (
            b"GET http://b.example/x HTTP/1.0\r\n\r\n",
            "GET http://b.example/x HTTP/1.0 host=b.example body= trailers=",
        ),
    ];
    for &(bytes, want) in cases {
        let res = ask(addr, bytes);
        assert_eq!(res.status, 200, "{:?} -> {res:?}", show(bytes));
        assert_eq!(res.body_str(), want);
    }
    // Host is still required on HTTP/1.1, once (RFC 9112 §3.2).
    for bytes in [
        &b"GET http://b.example/x HTTP/1.1\r\n\r\n"[..],
        b"GET http://b.example/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let res = ask(addr, bytes);
        assert_eq!(res.status, 400, "{:?} -> {res:?}", show(bytes));
        still_serving(addr);
    }
}

/// (j) The reverse proxy passes the target's authority on as `X-Forwarded-Host`.
#[test]
fn absolute_form_authority_reaches_the_upstream_through_the_proxy() {
    let upstream = serve(|req: Request, res: Response| {
        let host = req
            .headers()
            .get_all("x-forwarded-host")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join("|");
        res.send(format!("forwarded-host={host}").as_bytes()).ok();
    });
    let proxy = proxy_to(&format!("http://{}", upstream.local_addr()));
    let res = ask(
        proxy.local_addr(),
        b"GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body_str(), "forwarded-host=b.example");
}
