//! The pooled client against spindle's own server: bodies, framing, pool reuse.
mod client_support;

use std::io::{Read, Write};
use std::sync::Arc;

use client_support::{Counted, Raw};
use spindle::client::Body;
use spindle::http::{header, Method, StatusCode};
use spindle::server::{Request, Response};
use spindle::{Client, ErrorKind};

fn echo() -> Counted {
    Counted::start(|mut req: Request, mut res: Response| {
        let mut body = Vec::new();
        req.read_to_end(&mut body).unwrap();
        let mut text = format!("{} {} {}\n", req.method(), req.uri(), body.len());
        for (k, v) in req.headers() {
            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        if req.headers().contains_key("x-echo-body") {
            text = String::from_utf8_lossy(&body).into_owned();
        }
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/plain; charset=utf-8".parse().unwrap(),
        );
        res.send(text.as_bytes()).ok();
    })
}

#[test]
fn get_with_query_and_headers() {
    let server = echo();
    let client = Client::new();
    let res = client
        .get(server.url("/path"))
        .query("a", "b c")
        .query("x", "&")
        .header("x-custom", "yes")
        .send()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), spindle::http::Version::HTTP_11);
    assert_eq!(res.content_type().unwrap().essence_str(), "text/plain");
    assert_eq!(res.url().path(), "/path");
    let text = res.text().unwrap();
    assert!(text.starts_with("GET /path?a=b+c&x=%26 0\n"), "{text}");
    assert!(text.contains("x-custom: yes\n"));
    assert!(text.contains("user-agent: spindle/"));
    assert!(text.contains(&format!("host: {}\n", server.listening.local_addr())));
}

#[test]
fn bodies_of_every_kind() {
    let server = echo();
    let client = Client::new();
    let url = server.url("/");
    let check = |res: spindle::client::Response, expect: &str| {
        let text = res.text().unwrap();
        assert!(text.starts_with(expect), "{text} vs {expect}");
        text
    };
    check(
        client.post(&url).body("hello").send().unwrap(),
        "POST / 5\n",
    );
    check(
        client.put(&url).body(vec![7u8; 100_000]).send().unwrap(),
        "PUT / 100000\n",
    );
    check(
        client.post(&url).body(String::from("s")).send().unwrap(),
        "POST / 1\n",
    );
    let text = check(client.post(&url).send().unwrap(), "POST / 0\n");
    assert!(text.contains("content-length: 0"));
    let text = check(client.delete(&url).send().unwrap(), "DELETE / 0\n");
    assert!(!text.contains("content-length"));
    // A reader of unknown length goes chunked.
    let data = vec![b'z'; 300_000];
    let text = check(
        client
            .post(&url)
            .body(Body::reader(&data[..]))
            .send()
            .unwrap(),
        "POST / 300000\n",
    );
    assert!(text.contains("transfer-encoding: chunked"));
    // A reader of known length goes with Content-Length.
    let text = check(
        client
            .post(&url)
            .body(Body::sized_reader(&data[..1000], 1000))
            .send()
            .unwrap(),
        "POST / 1000\n",
    );
    assert!(text.contains("content-length: 1000"));
    // A short sized reader is the caller's mistake, reported, not sent truncated.
    let err = client
        .post(&url)
        .body(Body::sized_reader(&data[..10], 20))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    // The body arrives intact.
    let echoed = client
        .post(&url)
        .header("x-echo-body", "1")
        .body(Body::reader(std::io::Cursor::new(b"round trip".to_vec())))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(echoed, "round trip");
    let head = client.head(&url).send().unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.content_length().unwrap() > 0);
    assert_eq!(head.bytes().unwrap(), b"");
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = echo();
    let client = Client::new();
    for i in 0..20 {
        let res = client.get(server.url(&format!("/{i}"))).send().unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().unwrap();
    }
    // A clone shares the pool.
    let clone = client.clone();
    clone.get(server.url("/")).send().unwrap().bytes().unwrap();
    // Reading with io::Read to the end releases it too.
    let mut res = client.get(server.url("/")).send().unwrap();
    let mut sink = Vec::new();
    res.read_to_end(&mut sink).unwrap();
    drop(res);
    client.get(server.url("/")).send().unwrap().bytes().unwrap();
    assert_eq!(server.connections(), 1);
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn many_threads_share_one_client() {
    let server = echo();
    let client = Client::new();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            let url = server.url(&format!("/t{t}"));
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let text = client.get(&url).send().unwrap().text().unwrap();
                    assert!(text.starts_with(&format!("GET /t{t} ")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        server.connections() <= 8,
        "{} connections",
        server.connections()
    );
    assert!(client.idle_connections() <= 8);
}

#[test]
fn chunked_response_with_trailers_and_streaming() {
    let server = Counted::start(|_req: Request, res: Response| {
        let mut res = res.start().unwrap();
        for i in 0..100 {
            writeln!(res, "line {i}").unwrap();
            res.flush().unwrap();
        }
        let mut trailers = spindle::http::HeaderMap::new();
        trailers.insert("x-lines", "100".parse().unwrap());
        res.set_trailers(trailers);
    });
    let client = Client::new();
    for _ in 0..3 {
        let mut res = client.get(server.url("/")).send().unwrap();
        assert!(res.content_length().is_none());
        let mut text = String::new();
        // Small reads exercise partial chunk delivery.
        let mut buf = [0u8; 3];
        loop {
            let n = res.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(text.lines().count(), 100);
        assert!(text.ends_with("line 99\n"));
    }
    assert_eq!(server.connections(), 1);
}

#[test]
fn trailers_visible_after_body() {
    let raw = Raw::canned(
        1,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",
    );
    let client = Client::new();
    let mut res = client.get(raw.url("/")).send().unwrap();
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "hello");
    assert_eq!(res.trailers().unwrap()["x-sum"], "5");
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn dropping_a_half_read_response() {
    let server = Counted::start(|req: Request, res: Response| {
        let size = if req.path() == "/big" {
            4 << 20
        } else {
            10_000
        };
        res.send(&vec![b'x'; size]).ok();
    });
    let client = Client::new();
    // A small unread rest is drained: the connection is reused.
    let mut res = client.get(server.url("/small")).send().unwrap();
    let mut part = [0u8; 10];
    res.read_exact(&mut part).unwrap();
    drop(res);
    assert_eq!(client.idle_connections(), 1);
    client
        .get(server.url("/small"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(server.connections(), 1);
    // A large unread rest is not: the connection is closed.
    let res = client.get(server.url("/big")).send().unwrap();
    drop(res);
    assert_eq!(client.idle_connections(), 0);
    client
        .get(server.url("/small"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(server.connections(), 2);
}

#[test]
fn size_limit_on_whole_body_reads() {
    let server = Counted::start(|_req: Request, res: Response| {
        res.send(&[b'a'; 5000]).ok();
    });
    let client = Client::new();
    let err = client
        .get(server.url("/"))
        .send()
        .unwrap()
        .bytes_limited(100)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    assert!(err.url().unwrap().starts_with("http://127.0.0.1"));
    assert_eq!(
        client
            .get(server.url("/"))
            .send()
            .unwrap()
            .bytes_limited(5000)
            .unwrap()
            .len(),
        5000
    );
}

#[test]
fn stale_pooled_connection_is_retried() {
    // Each connection answers one request with keep-alive, then the server closes it.
    let raw = Raw::once(3, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let client = Client::new();
    assert_eq!(
        client.get(raw.url("/")).send().unwrap().text().unwrap(),
        "ok"
    );
    assert_eq!(client.idle_connections(), 1);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The pooled connection is dead: detected (or retried), never an error for GET.
    assert_eq!(
        client.get(raw.url("/")).send().unwrap().text().unwrap(),
        "ok"
    );
    assert_eq!(raw.accepted(), 2);
}

#[test]
fn retry_when_closed_without_detection() {
    // A server that closes the connection only after reading the second request:
    // the pooled connection looks alive, the request fails before any response byte,
    // and an idempotent request is retried on a fresh connection.
    let raw = Raw::start(3, |mut stream, heads| {
        let head = client_support::read_head(&mut stream);
        heads.lock().unwrap().push(head);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .ok();
        let head = client_support::read_head(&mut stream);
        heads.lock().unwrap().push(head);
        // close without answering
    });
    let client = Client::new();
    assert_eq!(
        client.get(raw.url("/")).send().unwrap().text().unwrap(),
        "ok"
    );
    assert_eq!(
        client.get(raw.url("/")).send().unwrap().text().unwrap(),
        "ok"
    );
    assert_eq!(raw.accepted(), 2);
    // POST is not idempotent: its failure is reported.
    let err = client.post(raw.url("/")).body("x").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn url_errors() {
    let client = Client::new();
    assert_eq!(
        client.get("not a url").send().unwrap_err().kind(),
        ErrorKind::Url
    );
    let err = client.get("ftp://example.com/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Url);
    assert_eq!(err.url(), Some("ftp://example.com/"));
    // With TLS the connection is refused first; without, TLS is what is missing.
    let err = client.get("https://127.0.0.1:1/").send().unwrap_err();
    let expect = if cfg!(feature = "tls") {
        ErrorKind::Connect
    } else {
        ErrorKind::Tls
    };
    assert_eq!(err.kind(), expect, "{err}");
    let err = client.get("http://127.0.0.1:1/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.url().is_some());
    let err = client
        .get("http://127.0.0.1:1/")
        .header("bad name", "v")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
}

#[test]
fn client_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Client>();
    fn send<T: Send>() {}
    send::<spindle::client::Response>();
    let _ = Arc::new(Client::new());
    let _ = Method::GET;
}
