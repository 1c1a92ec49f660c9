//! Regression tests for the HTTP/1.1 exchange under hostile or unlucky input (issue 13,
//! defects b, c, e, f): exact bytes over a real socket, asserting what the client sees.
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use spindle::http::StatusCode;
use spindle::server::{Request, Response};

fn hello(_req: Request, res: Response) {
    res.send(b"Hello, World!").unwrap();
}

/// Reads whatever arrives within `wait`, stopping early once `until` is in it.
fn read_for(stream: &mut std::net::TcpStream, wait: Duration, until: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !out.windows(until.len()).any(|w| w == until) {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// The peer sees EOF (or a reset) within five seconds.
fn closes(stream: &mut std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    matches!(stream.read_to_end(&mut rest), Ok(_) | Err(_)) && rest.is_empty()
}

/// The two ways a handler meets a body it has not got yet: with the event loop's
/// read-ahead off (it runs as soon as the head is in), and with a body larger than the
/// read-ahead (64 KiB by default: it runs once that much is in).
fn unfinished_bodies<H: spindle::server::Handler + Clone>(handler: H) -> Vec<Unfinished> {
    let off = serve_with(
        spindle::server::Server::http("127.0.0.1:0")
            .unwrap()
            .body_buffer(0),
        handler.clone(),
    );
    let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    vec![
        Unfinished {
            server: off,
            head: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n".to_vec(),
            first: b"abcde".to_vec(),
            rest: b"fghij".to_vec(),
        },
        Unfinished {
            server: serve(handler),
            head: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".to_vec(),
            first: big[..70_000].to_vec(),
            rest: big[70_000..].to_vec(),
        },
    ]
}

/// A server, a request head, the first part of its body and the rest.
struct Unfinished {
    server: spindle::server::Listening,
    head: Vec<u8>,
    first: Vec<u8>,
    rest: Vec<u8>,
}

/// b: the answer to a request whose body the handler never read goes out at once, not
/// after the body (which the server drains to keep the connection) has arrived.
#[test]
fn answer_does_not_wait_for_an_unread_body() {
    for Unfinished {
        server,
        head,
        first,
        rest,
    } in unfinished_bodies(hello)
    {
        let mut stream = connect(server.local_addr());
        send(&mut stream, &head);
        send(&mut stream, &first);
        let got = read_for(&mut stream, Duration::from_secs(3), b"Hello, World!");
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("Hello, World!"),
            "the answer waited for the rest of the body: {got:?}"
        );
        // The rest of the body is drained, and the connection serves the next request.
        send(&mut stream, &rest);
        send(&mut stream, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut r = Reader::new(stream);
        let res = r.response(false);
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), "Hello, World!");
    }
}

/// Writes "abc", then reads the whole body and echoes it: a client that waits for the
/// first bytes before it sends the rest of the body must get them.
fn prefix_then_echo(mut req: Request, res: Response) {
    let mut res = res.start().unwrap();
    res.write_all(b"abc").unwrap();
    let mut body = Vec::new();
    req.read_to_end(&mut body).unwrap();
    res.write_all(&body).unwrap();
}

/// Sends `head` and `first`, expects the "abc" chunk before the rest of the body is
/// sent, then sends `rest` and expects the whole body echoed as the last chunk.
fn prefix_arrives_before_the_body(
    server: &spindle::server::Listening,
    head: &[u8],
    first: &[u8],
    rest: &[u8],
    check_head: impl Fn(&str),
) {
    let mut stream = connect(server.local_addr());
    send(&mut stream, head);
    send(&mut stream, first);
    let got = read_for(&mut stream, Duration::from_secs(3), b"abc\r\n");
    let got = String::from_utf8_lossy(&got).into_owned();
    check_head(&got);
    assert!(
        got.ends_with("\r\n\r\n3\r\nabc\r\n"),
        "the first chunk waited for the body: {got:?}"
    );
    send(&mut stream, rest);
    let echo = read_for(&mut stream, Duration::from_secs(5), b"\r\n0\r\n\r\n");
    let mut body = first.to_vec();
    body.extend_from_slice(rest);
    let mut expect = format!("{:x}\r\n", body.len()).into_bytes();
    expect.extend_from_slice(&body);
    expect.extend_from_slice(b"\r\n0\r\n\r\n");
    assert!(
        echo == expect,
        "the echo is not the body ({} bytes)",
        echo.len()
    );
}

/// b: what a streaming handler wrote goes out before the handler waits for body bytes
/// (the client may be waiting for it before it sends more).
#[test]
fn written_bytes_go_out_before_a_body_read_blocks() {
    for Unfinished {
        server,
        head,
        first,
        rest,
    } in unfinished_bodies(prefix_then_echo)
    {
        prefix_arrives_before_the_body(&server, &head, &first, &rest, |got| {
            assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}")
        });
    }
}

/// b: the same with `Expect: 100-continue` and the read-ahead off: the 100 and the
/// bytes written before the read both reach the client before it sends anything.
#[test]
fn interim_and_early_bytes_go_out_before_a_continue_read() {
    let server = serve_with(
        spindle::server::Server::http("127.0.0.1:0")
            .unwrap()
            .body_buffer(0),
        prefix_then_echo,
    );
    prefix_arrives_before_the_body(
        &server,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        b"",
        b"hi",
        // RFC 9110 §10.1.1: a server that starts its final answer before reading the
        // body need not send 100 at all; either way the client must see the bytes
        // written so far.
        |got| assert!(got.contains("HTTP/1.1 200 OK\r\n"), "{got:?}"),
    );
}

fn pipelined_then_failing(fail: fn(Response)) -> String {
    let server = serve(move |req: Request, res: Response| {
        if req.path() == "/b" {
            fail(res);
        } else {
            res.send(b"A").unwrap();
        }
    });
    let mut stream = connect(server.local_addr());
    send(
        &mut stream,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let out = read_to_close(&mut stream);
    // The server keeps serving others.
    let again = exchange(
        server.local_addr(),
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(again.ends_with("\r\n\r\nA"), "{again:?}");
    out
}

/// c: a panic in the second of two pipelined requests costs that request only: the
/// first answer, still buffered when the panic came, goes out, then the 500.
#[test]
fn panic_in_a_pipelined_request_keeps_earlier_answers() {
    let out = pipelined_then_failing(|_res| panic!("boom (expected by the test)"));
    let first = out.find("HTTP/1.1 200 OK\r\n");
    let second = out.find("HTTP/1.1 500 Internal Server Error\r\n");
    assert!(
        matches!((first, second), (Some(a), Some(b)) if a < b),
        "the client must get /a's 200, then /b's 500: {out:?}"
    );
    assert!(out[..second.unwrap()].ends_with("\r\n\r\nA"), "{out:?}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "{out:?}");
}

/// c: the same when the second handler aborts before sending its head: /a's answer
/// arrives whole, and nothing that looks like an answer to /b follows it.
#[test]
fn abort_in_a_pipelined_request_keeps_earlier_answers() {
    let out = pipelined_then_failing(|res| res.abort());
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.ends_with("\r\n\r\nA"), "{out:?}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out:?}");
}

/// c: a panic after the second response started streaming (but before anything of it
/// reached the socket) still lets the first answer out, and the second is either a 500
/// or visibly cut (no last chunk), never a complete-looking response.
#[test]
fn panic_mid_stream_after_a_pipelined_answer() {
    let out = pipelined_then_failing(|res| {
        let mut res = res.start().unwrap();
        res.write_all(b"0\r\n\r\n").unwrap();
        panic!("boom mid-stream (expected by the test)");
    });
    let a_end = out.find("\r\n\r\nA").map(|i| i + 5);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && a_end.is_some(),
        "{out:?}"
    );
    let rest = &out[a_end.unwrap()..];
    if !rest.is_empty() {
        assert!(
            rest.starts_with("HTTP/1.1 500 "),
            "a cut response must not look complete: {rest:?}"
        );
    }
}

/// e: a 2xx answer to CONNECT carries no framing fields and no chunked framing
/// (RFC 9110 §9.3.6): what follows the head is the tunnel.
#[test]
fn connect_2xx_has_no_framing() {
    let server = serve(|_req: Request, res: Response| {
        let mut res = res.start().unwrap();
        res.write_all(b"tunnel bytes").unwrap();
    });
    let mut stream = connect(server.local_addr());
    send(
        &mut stream,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    let out = read_to_close(&mut stream);
    let (head, body) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("transfer-encoding"), "{out:?}");
    assert!(!lower.contains("content-length"), "{out:?}");
    assert_eq!(body, "tunnel bytes");

    // A dropped 200 answer (no body) has no framing fields either.
    let server = serve(|_req: Request, res: Response| drop(res));
    let out = exchange(
        server.local_addr(),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    let lower = out.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 ok\r\n"), "{out:?}");
    assert!(!lower.contains("transfer-encoding"), "{out:?}");
    assert!(!lower.contains("content-length"), "{out:?}");
    assert!(out.ends_with("\r\n\r\n"), "{out:?}");

    // A CONNECT refused with a 4xx is an ordinary response.
    let server = serve(|_req: Request, mut res: Response| {
        *res.status_mut() = StatusCode::FORBIDDEN;
        res.send(b"no").unwrap();
    });
    let out = exchange(
        server.local_addr(),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out:?}");
    assert!(out.contains("content-length: 2\r\n"), "{out:?}");
}

fn bad_chunked_bodies() -> Vec<String> {
    vec![
        "3;x\nabc\r\n0\r\n\r\n".to_owned(),
        "11111111111111111\r\nabc\r\n0\r\n\r\n".to_owned(),
        format!("3;{}\r\nabc\r\n0\r\n\r\n", "e".repeat(70_000)),
    ]
}

fn post_chunked(addr: std::net::SocketAddr, body: &str) -> String {
    let mut stream = connect(addr);
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(body.as_bytes());
    // The server may close before reading it all; that is the point.
    let _ = stream.write_all(&req);
    read_to_close(&mut stream)
}

/// f: when the request body fails (bad chunk framing), a response that had already
/// reached the socket is cut: the connection closes without the last chunk, so the
/// client cannot take the truncated answer for a whole one.
#[test]
fn failed_request_body_cuts_a_started_response() {
    let server = serve(|mut req: Request, res: Response| {
        let mut res = res.start().unwrap();
        res.write_all(b"echo:").unwrap();
        res.flush().unwrap();
        let _ = std::io::copy(&mut req, &mut res);
    });
    for body in bad_chunked_bodies() {
        let out = post_chunked(server.local_addr(), &body);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
        assert!(out.ends_with("\r\n\r\n5\r\necho:\r\n"), "{out:?}");
    }
}

/// f: the same when none of the started response had been sent yet: it is dropped and
/// the client gets the 400 the bad framing deserves instead of a clean 200.
#[test]
fn failed_request_body_replaces_an_unsent_response() {
    let server = serve(|mut req: Request, res: Response| {
        let mut res = res.start().unwrap();
        res.write_all(b"echo:").unwrap();
        let _ = std::io::copy(&mut req, &mut res);
    });
    // Only the short bodies: they arrive with the head, so the server finds them bad
    // without waiting (before a wait, what the handler wrote would go out first).
    for body in &bad_chunked_bodies()[..2] {
        let out = post_chunked(server.local_addr(), body);
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
        assert!(!out.contains("echo:"), "{out:?}");
        assert!(out.contains("connection: close\r\n"), "{out:?}");
    }
}

/// f: a handler that answers a failed body with an error of its own still gets it out
/// whole (it was a fresh response), and the connection then closes.
#[test]
fn failed_request_body_with_a_fresh_answer() {
    let server = serve(|mut req: Request, mut res: Response| {
        let mut body = Vec::new();
        if req.read_to_end(&mut body).is_err() {
            *res.status_mut() = StatusCode::BAD_REQUEST;
            res.send(b"bad body").unwrap();
            return;
        }
        res.send(&body).unwrap();
    });
    let mut stream = connect(server.local_addr());
    send(
        &mut stream,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n",
    );
    let mut r = Reader::new(stream);
    let res = r.response(false);
    assert_eq!(res.status, 400);
    assert_eq!(res.body_str(), "bad body");
    assert!(closes(&mut r.stream));
}

/// Found by the h1_exchange fuzzer: a client that pipelines a request, then the start
/// of another, then shuts down its sending side (half-close) still gets the answer to
/// the first; the partial head is not a reason to drop what was owed.
#[test]
fn half_close_mid_head_keeps_the_owed_answer() {
    let server = serve(|mut req: Request, res: Response| {
        let mut body = Vec::new();
        req.read_to_end(&mut body).unwrap();
        res.send(format!("got {}", body.len()).as_bytes()).unwrap();
    });
    // A body larger than the server's first read, so that reading the next head goes
    // on reading (and finds the end of the stream) rather than waiting for readiness.
    let mut bytes = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[b'x'; 10_000]);
    bytes.extend_from_slice(b"GET /next HTTP/1.1\r\nHo");
    for _ in 0..5 {
        let mut stream = connect(server.local_addr());
        send(&mut stream, &bytes);
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let out = read_to_close(&mut stream);
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\ngot 10000"),
            "the answer to the complete request was lost: {out:?}"
        );
    }
}

/// d, wired into the server: a bare LF inside a CRLF head is refused by default and with
/// `allow_lf_line_endings`; a head that uses LF alone is served only with the setting.
#[test]
fn lf_line_endings_setting() {
    let mixed = b"GET / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n";
    let lf_only = b"GET / HTTP/1.1\nHost: a\nConnection: close\n\n";
    let strict = serve(hello);
    for bytes in [&mixed[..], &lf_only[..]] {
        let out = exchange(strict.local_addr(), bytes);
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
    }
    let lenient = serve_with(
        spindle::server::Server::http("127.0.0.1:0")
            .unwrap()
            .allow_lf_line_endings(true),
        hello,
    );
    let out = exchange(lenient.local_addr(), mixed);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
    let out = exchange(lenient.local_addr(), lf_only);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("Hello, World!"),
        "{out:?}"
    );
}
