//! Malformed and truncated responses from raw-socket servers, and timeouts: every one
//! is a typed error, never a panic or a silent short read.
mod client_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use client_support::{read_head, Raw};
use spindle::client::Body;
use spindle::{Client, ErrorKind};

fn kind_of_send(response: &'static [u8]) -> ErrorKind {
    let raw = Raw::once(1, response);
    Client::new().get(raw.url("/")).send().unwrap_err().kind()
}

fn body_error(response: &'static [u8]) -> spindle::Error {
    let raw = Raw::once(1, response);
    let res = Client::new().get(raw.url("/")).send().unwrap();
    res.bytes().unwrap_err()
}

#[test]
fn bad_status_lines() {
    assert_eq!(kind_of_send(b"HTTP/1.1 2OO OK\r\n\r\n"), ErrorKind::Parse);
    assert_eq!(kind_of_send(b"HTTTP/1.1 200 OK\r\n\r\n"), ErrorKind::Parse);
    assert_eq!(kind_of_send(b"SSH-2.0-OpenSSH\r\n\r\n"), ErrorKind::Parse);
    assert_eq!(
        kind_of_send(b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n"),
        ErrorKind::Parse
    );
    assert_eq!(
        kind_of_send(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"),
        ErrorKind::Parse
    );
}

#[test]
fn closed_before_or_during_head() {
    assert_eq!(kind_of_send(b""), ErrorKind::Closed);
    assert_eq!(
        kind_of_send(b"HTTP/1.1 200 OK\r\nContent-"),
        ErrorKind::Closed
    );
}

#[test]
fn header_too_large() {
    let raw = Raw::start(1, |mut stream, _| {
        read_head(&mut stream);
        stream.write_all(b"HTTP/1.1 200 OK\r\n").ok();
        let line = format!("X-Big: {}\r\n", "b".repeat(1000));
        for _ in 0..200 {
            if stream.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    let err = Client::new().get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    let many = Raw::start(1, |mut stream, _| {
        read_head(&mut stream);
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..500 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        stream.write_all(&head).ok();
    });
    let err = Client::new().get(many.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

#[test]
fn bad_chunks() {
    let err = body_error(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    let err =
        body_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n");
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    let err =
        body_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n");
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
}

#[test]
fn truncated_bodies_are_errors() {
    let err = body_error(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a few bytes");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.url().is_some());
    let err = body_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    let err = body_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhel");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    // Through io::Read the error is an io::Error carrying the spindle::Error.
    let raw = Raw::once(1, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    let mut res = Client::new().get(raw.url("/")).send().unwrap();
    let mut buf = Vec::new();
    let io_err = res.read_to_end(&mut buf).unwrap_err();
    assert_eq!(buf, b"abc");
    let inner = io_err
        .into_inner()
        .unwrap()
        .downcast::<spindle::Error>()
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::Closed);
}

#[test]
fn close_delimited_body_is_complete_at_eof() {
    let raw = Raw::once(2, b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    let client = Client::new();
    assert_eq!(
        client.get(raw.url("/")).send().unwrap().text().unwrap(),
        "until close"
    );
    assert_eq!(client.idle_connections(), 0);
    let raw10 = Raw::once(1, b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold");
    assert_eq!(
        client.get(raw10.url("/")).send().unwrap().text().unwrap(),
        "old"
    );
    assert_eq!(
        client.idle_connections(),
        0,
        "HTTP/1.0 without keep-alive is not pooled"
    );
}

#[test]
fn interim_responses_are_skipped() {
    let raw = Raw::once(
        1,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    );
    let res = Client::new().post(raw.url("/")).body("x").send().unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.text().unwrap(), "ok");
}

#[test]
fn read_timeout() {
    let raw = Raw::start(1, |mut stream, _| {
        read_head(&mut stream);
        std::thread::sleep(Duration::from_secs(3));
    });
    let client = Client::builder()
        .read_timeout(Duration::from_millis(200))
        .build();
    let started = Instant::now();
    let err = client.get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn overall_deadline_covers_the_body() {
    let raw = Raw::start(1, |mut stream, _| {
        read_head(&mut stream);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            .ok();
        for _ in 0..100 {
            if stream.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    // Each read is quick, but the whole body takes 5 s: the deadline stops it.
    let client = Client::builder()
        .read_timeout(Duration::from_secs(1))
        .build();
    let started = Instant::now();
    let res = client
        .get(raw.url("/"))
        .timeout(Duration::from_millis(400))
        .send()
        .unwrap();
    let err = res.bytes().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn write_timeout() {
    // A server that never reads: the client's large body fills the socket buffers.
    let raw = Raw::start(1, |stream, _| {
        std::thread::sleep(Duration::from_secs(4));
        drop(stream);
    });
    let client = Client::builder()
        .write_timeout(Duration::from_millis(200))
        .build();
    let started = Instant::now();
    let body = vec![0u8; 64 << 20];
    let err = client
        .post(raw.url("/"))
        .body(Body::reader(&body[..]))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn connect_timeout_or_refusal_is_typed() {
    // Loopback cannot black-hole a SYN; a refused port must be Connect, quickly.
    let client = Client::builder()
        .connect_timeout(Duration::from_millis(300))
        .build();
    let err = client.get("http://127.0.0.1:9/").send().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{err}"
    );
    let err = client
        .get("http://no-such-host.invalid/")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
}
