//! Hostile servers against the client: scripted servers on 127.0.0.1 write exact bytes,
//! and the pooled `Client`, the low-level `client::conn` and the reverse proxy example
//! must each see one consistent framing, fail fast with a typed error, or read the
//! response as RFC 9112 says a user agent must.
mod client_support;
#[path = "../examples/reverse_proxy.rs"]
mod reverse_proxy;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_support::{read_head, Raw};
use spindle::client::conn;
use spindle::h1::framing::ChunkedDecoder;
use spindle::h1::response_head::{parse_response_head, ResponseLimits};
use spindle::http::{header, Request};
use spindle::server::{Request as ServerRequest, Response as ServerResponse, Server};
use spindle::{Client, ErrorKind};

/// A client that never asks a proxy from the environment (loopback never is, but be
/// explicit) and gives up after 20 s, so that a regression fails instead of hanging.
fn client() -> Client {
    Client::builder()
        .env_proxy(false)
        .timeout(Duration::from_secs(20))
        .build()
}

/// One GET over a fresh TCP connection with the low-level API.
fn conn_get(
    addr: std::net::SocketAddr,
    builder: conn::Builder,
) -> spindle::Result<spindle::http::Response<conn::ResponseBody<TcpStream>>> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let sender = builder.handshake(stream)?;
    sender.send_request(Request::get("/").header("host", "a").body(()).unwrap())
}

/// Runs `f` on a thread and waits at most `limit` for it: a client stuck in a loop fails
/// the test instead of hanging it.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        tx.send(f()).ok();
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the client did not give up within {limit:?}"))
}

// --- o. Content-Length together with Transfer-Encoding (RFC 9112 §6.1, §6.3) ---------

const BOTH_FIELDS: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\
Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

#[test]
fn both_framing_fields_pooled_client_drops_content_length_and_the_connection() {
    let raw = Raw::canned(4, BOTH_FIELDS);
    let client = client();
    for round in 1..=2 {
        let res = client.get(raw.url("/")).send().unwrap();
        assert!(
            res.headers().get(header::CONTENT_LENGTH).is_none(),
            "Content-Length kept: {:?}",
            res.headers()
        );
        assert_eq!(res.headers()[header::TRANSFER_ENCODING], "chunked");
        assert_eq!(res.content_length(), None);
        assert_eq!(res.text().unwrap(), "abc");
        assert_eq!(client.idle_connections(), 0, "not returned to the pool");
        assert_eq!(raw.accepted(), round, "a fresh connection per request");
    }
}

#[test]
fn both_framing_fields_conn_is_not_reusable() {
    let raw = Raw::canned(1, BOTH_FIELDS);
    let res = conn_get(raw.addr, conn::Builder::new()).unwrap();
    assert!(res.headers().get(header::CONTENT_LENGTH).is_none());
    let mut body = res.into_body();
    let mut text = String::new();
    body.read_to_string(&mut text).unwrap();
    assert_eq!(text, "abc");
    assert!(body.is_finished());
    assert!(!body.is_reusable());
    assert_eq!(body.into_sender().unwrap_err().kind(), ErrorKind::Closed);
}

#[test]
fn http10_transfer_encoding_is_not_applied_nor_kept() {
    // HTTP/1.0 has no Transfer-Encoding: Content-Length frames the body, the field is
    // dropped from headers() and the connection is closed after (RFC 9112 §6.1).
    let raw = Raw::canned(
        2,
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\
Content-Length: 3\r\n\r\nabc",
    );
    let client = client();
    let res = client.get(raw.url("/")).send().unwrap();
    assert!(res.headers().get(header::TRANSFER_ENCODING).is_none());
    assert_eq!(res.content_length(), Some(3));
    assert_eq!(res.text().unwrap(), "abc");
    assert_eq!(client.idle_connections(), 0);
    let res = conn_get(raw.addr, conn::Builder::new()).unwrap();
    assert!(res.headers().get(header::TRANSFER_ENCODING).is_none());
    let mut body = res.into_body();
    std::io::copy(&mut body, &mut std::io::sink()).unwrap();
    assert!(!body.is_reusable());
}

/// Reads one response from a raw socket, with its own framing, and returns the head
/// and the decoded body; `buf` keeps bytes read past it.
fn read_one_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> (spindle::h1::response_head::ResponseHead, Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let (head, used) = loop {
        if let Some(found) = parse_response_head(buf, &ResponseLimits::default()).unwrap() {
            break found;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed in the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    buf.drain(..used);
    let cl = head.headers.get(header::CONTENT_LENGTH);
    let te = head.headers.get(header::TRANSFER_ENCODING);
    assert!(
        !(cl.is_some() && te.is_some()),
        "both framing fields went downstream: {:?}",
        head.headers
    );
    let mut body = Vec::new();
    if let Some(cl) = cl {
        let n: usize = cl.to_str().unwrap().parse().unwrap();
        while buf.len() < n {
            let k = stream.read(&mut chunk).unwrap();
            assert!(k > 0, "closed with {} of {n} body bytes", buf.len());
            buf.extend_from_slice(&chunk[..k]);
        }
        body.extend(buf.drain(..n));
    } else {
        assert_eq!(te.unwrap(), "chunked");
        let mut dec = ChunkedDecoder::new(4096);
        while !dec.is_done() {
            if buf.is_empty() {
                let k = stream.read(&mut chunk).unwrap();
                assert!(k > 0, "closed before the last chunk");
                buf.extend_from_slice(&chunk[..k]);
            }
            let step = dec.decode(buf).unwrap();
            body.extend_from_slice(&buf[step.data.clone()]);
            buf.drain(..step.consumed);
        }
    }
    (head, body)
}

#[test]
fn reverse_proxy_forwards_one_consistent_framing() {
    let upstream = Raw::canned(8, BOTH_FIELDS);
    let proxy = reverse_proxy::ReverseProxy::new(
        &format!("http://{}", upstream.addr),
        Duration::from_secs(5),
    );
    let listening = Server::http("127.0.0.1:0")
        .unwrap()
        .handle(move |req: ServerRequest, res: ServerResponse| proxy.handle(req, res))
        .unwrap();
    let mut down = TcpStream::connect(listening.local_addr()).unwrap();
    down.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Two requests on one downstream connection: the second answer must start exactly
    // where the first one's framing says it ends.
    down.write_all(b"GET /a HTTP/1.1\r\nHost: p\r\n\r\nGET /b HTTP/1.1\r\nHost: p\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        let (head, body) = read_one_response(&mut down, &mut buf);
        assert_eq!(head.status, 200);
        assert_eq!(body, b"abc");
    }
    assert!(
        buf.is_empty(),
        "stray bytes: {:?}",
        String::from_utf8_lossy(&buf)
    );
    listening.close();
}

// --- p. Interim (1xx) responses are bounded -------------------------------------------

/// A server that answers with `100 Continue` until the client goes away.
fn endless_continue() -> Raw {
    Raw::start(2, |mut stream, _| {
        read_head(&mut stream);
        let burst = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(64);
        while stream.write_all(&burst).is_ok() {}
    })
}

#[test]
fn endless_100_continue_fails_fast_pooled() {
    let raw = endless_continue();
    let url = raw.url("/");
    let started = Instant::now();
    // No overall timeout: the bound must come from the interim limit.
    let err = within(Duration::from_secs(10), move || {
        Client::builder()
            .env_proxy(false)
            .build()
            .get(url)
            .send()
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn endless_100_continue_fails_fast_conn() {
    let raw = endless_continue();
    let addr = raw.addr;
    let err = within(Duration::from_secs(10), move || {
        conn_get(addr, conn::Builder::new()).unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

#[test]
fn interim_heads_share_the_head_byte_limit() {
    // Three 103s of ~30 KiB each: each alone is under max_head_bytes (64 KiB), together
    // they are not.
    let raw = Raw::start(2, |mut stream, _| {
        read_head(&mut stream);
        let hint = format!(
            "HTTP/1.1 103 Early Hints\r\nLink: <{}>; rel=preload\r\n\r\n",
            "a".repeat(30 * 1024)
        );
        for _ in 0..3 {
            if stream.write_all(hint.as_bytes()).is_err() {
                return;
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .ok();
    });
    let err = client().get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    let err = conn_get(raw.addr, conn::Builder::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}

const THREE_INTERIM: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
HTTP/1.1 102 Processing\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn a_few_interim_responses_are_skipped() {
    let raw = Raw::canned(1, THREE_INTERIM);
    let client = client();
    for _ in 0..2 {
        let res = client.get(raw.url("/")).send().unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().unwrap(), "ok");
    }
    assert_eq!(
        raw.accepted(),
        1,
        "the connection is reused after interim heads"
    );
}

#[test]
fn max_interim_responses_is_a_setting() {
    let raw = Raw::canned(4, THREE_INTERIM);
    let strict = Client::builder()
        .env_proxy(false)
        .conn_builder(conn::Builder::new().max_interim_responses(2))
        .build();
    let err = strict.get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    let err = conn_get(raw.addr, conn::Builder::new().max_interim_responses(2)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
    let res = conn_get(raw.addr, conn::Builder::new().max_interim_responses(3)).unwrap();
    assert_eq!(res.status(), 200);
}

// --- q. obs-fold in a response is replaced by SP (RFC 9112 §5.2) -----------------------

const FOLDED: &[u8] = b"HTTP/1.1 200 OK\r\nX-Folded: hello\r\n world\r\n\t again\r\n\
Content-Length: 2\r\n\r\nhi";

#[test]
fn obs_fold_is_replaced_by_a_space_pooled() {
    let raw = Raw::canned(1, FOLDED);
    let client = client();
    for _ in 0..2 {
        let res = client.get(raw.url("/")).send().unwrap();
        assert_eq!(res.header("x-folded"), Some("hello world again"));
        assert_eq!(res.text().unwrap(), "hi");
    }
    assert_eq!(raw.accepted(), 1, "an unfolded head keeps its connection");
}

#[test]
fn obs_fold_is_replaced_by_a_space_conn() {
    let raw = Raw::canned(1, FOLDED);
    let res = conn_get(raw.addr, conn::Builder::new()).unwrap();
    assert_eq!(res.headers()["x-folded"], "hello world again");
    let mut body = res.into_body();
    let mut text = String::new();
    body.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hi");
    assert!(body.is_reusable());
}

#[test]
fn obs_fold_in_a_framing_field_is_refused() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nhi"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ] {
        let raw = Raw::canned(2, response);
        let err = client().get(raw.url("/")).send().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
        let err = conn_get(raw.addr, conn::Builder::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    }
}

#[test]
fn bare_lf_inside_a_crlf_head_is_refused() {
    // A front end that splits lines only on CRLF sees one field `X` here; a client that
    // also splits on LF would see Transfer-Encoding and frame the body differently.
    let raw = Raw::canned(
        2,
        b"HTTP/1.1 200 OK\r\nX: y\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi",
    );
    let err = client().get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    let err = conn_get(raw.addr, conn::Builder::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    // A head that uses LF alone throughout is still read (RFC 9112 §2.2 allows it).
    let lf = Raw::canned(1, b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi");
    assert_eq!(
        client().get(lf.url("/")).send().unwrap().text().unwrap(),
        "hi"
    );
}

// --- credentials in URLs ----------------------------------------------------------------

#[test]
fn url_credentials_do_not_reach_a_forward_proxy() {
    // The userinfo of a URL is not part of a request target (RFC 9110 §4.2.4): an
    // absolute-form target for a forwarding proxy leaves it out.
    let proxy = Raw::once(1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let client = Client::builder()
        .env_proxy(false)
        .proxy(spindle::client::Proxy::http(&proxy.url("")).unwrap())
        .build();
    let res = client
        .get("http://user:s3cret@example.test:8080/x?q")
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let heads = proxy.heads.lock().unwrap();
    assert!(
        heads[0].starts_with("GET http://example.test:8080/x?q HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(!heads[0].contains("s3cret"), "{}", heads[0]);
}

#[test]
fn redirect_to_another_scheme_is_a_redirect_error() {
    let raw = Raw::canned(
        1,
        b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n",
    );
    let err = client().get(raw.url("/")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
}

/// An HTTP/2 server (prior knowledge) that answers every request with `103 Early Hints`
/// HEADERS frames until the stream or the connection goes away (at most 10 s).
fn endless_h2_hints() -> std::net::SocketAddr {
    use spindle::h2::proto::{Config, Connection, Event};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let started = Instant::now();
        let mut conn = Connection::server(Config::default(), started);
        let hints = spindle::http::Response::builder()
            .status(103)
            .header("link", "</style.css>; rel=preload")
            .body(())
            .unwrap();
        let (mut pending, mut buf) = (Vec::new(), vec![0u8; 16 * 1024]);
        let mut hinting = Vec::new();
        while started.elapsed() < Duration::from_secs(10) && !conn.is_closed() {
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(_) => {}
            }
            let Ok(used) = conn.recv(&pending) else {
                return;
            };
            pending.drain(..used);
            while let Some(ev) = conn.poll_event() {
                if let Event::Request { id, .. } = ev {
                    hinting.push(id);
                }
            }
            hinting.retain(|&id| (0..32).all(|_| conn.send_response(id, &hints, false).is_ok()));
            if stream.write_all(&conn.take_output()).is_err() {
                return;
            }
        }
    });
    addr
}

#[test]
fn endless_h2_interim_heads_fail_fast() {
    let addr = endless_h2_hints();
    let err = within(Duration::from_secs(8), move || {
        Client::builder()
            .env_proxy(false)
            .http2_prior_knowledge()
            .build()
            .get(format!("http://{addr}/"))
            .send()
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
}
