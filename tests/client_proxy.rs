//! HTTP proxies (absolute-form) and CONNECT tunnels, through proxies written here.
mod client_support;

use std::io::Write;
use std::net::TcpStream;

use client_support::{read_head, splice, Counted, Raw};
use spindle::client::Proxy;
use spindle::server::{Request, Response};
use spindle::{Client, ErrorKind};

fn origin() -> Counted {
    Counted::start(|req: Request, res: Response| {
        res.send(format!("origin saw {}", req.uri()).as_bytes())
            .ok();
    })
}

#[test]
fn forward_proxy_gets_absolute_form_and_credentials() {
    // A forward proxy that answers itself with what it received.
    let proxy = Raw::start(4, |mut stream, heads| loop {
        let head = read_head(&mut stream);
        if head.is_empty() {
            return;
        }
        let line = head.lines().next().unwrap_or("").to_owned();
        heads.lock().unwrap().push(head);
        let body = format!("proxied {line}");
        let res = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(res.as_bytes()).is_err() {
            return;
        }
    });
    let client = Client::builder()
        .proxy(Proxy::http(&format!("http://al%40ice:s3cret@{}", proxy.addr)).unwrap())
        .build();
    for _ in 0..2 {
        let text = client
            .get("http://example.test:8080/a?b=c")
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(text, "proxied GET http://example.test:8080/a?b=c HTTP/1.1");
    }
    let heads = proxy.heads.lock().unwrap();
    assert!(
        heads[0].contains("host: example.test:8080\r\n"),
        "{}",
        heads[0]
    );
    // base64("al@ice:s3cret")
    assert!(
        heads[0].contains("proxy-authorization: Basic YWxAaWNlOnMzY3JldA==\r\n"),
        "{}",
        heads[0]
    );
    assert_eq!(proxy.accepted(), 1, "the proxy connection is pooled");
}

/// A CONNECT proxy: checks credentials if asked, connects to the requested authority
/// on loopback only, says 200 and splices bytes both ways.
fn connect_proxy(require_auth: Option<&'static str>) -> Raw {
    Raw::start(8, move |mut stream, heads| {
        let head = read_head(&mut stream);
        heads.lock().unwrap().push(head.clone());
        let line = head.lines().next().unwrap_or("");
        let mut parts = line.split(' ');
        let (method, authority) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method != "CONNECT" {
            stream
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                .ok();
            return;
        }
        if let Some(auth) = require_auth {
            if !head.contains(&format!("proxy-authorization: {auth}\r\n")) {
                stream
                    .write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    )
                    .ok();
                return;
            }
        }
        let port: u16 = authority
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
            stream
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .ok();
            return;
        };
        stream
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .ok();
        splice(stream, upstream);
    })
}

#[test]
fn connect_tunnel_to_plain_http_target() {
    let target = origin();
    let proxy = connect_proxy(Some("Basic dTpw"));
    let client = Client::builder()
        .proxy(
            Proxy::all(&format!("http://u:p@{}", proxy.addr))
                .unwrap()
                .tunnel_http(true),
        )
        .build();
    for i in 0..3 {
        let text = client
            .get(target.url(&format!("/t{i}")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(
            text,
            format!("origin saw /t{i}"),
            "origin-form inside the tunnel"
        );
    }
    assert_eq!(proxy.accepted(), 1, "the tunnel is pooled");
    assert_eq!(target.connections(), 1);
    let heads = proxy.heads.lock().unwrap();
    let port = target.listening.local_addr().port();
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
}

#[test]
fn connect_tunnel_refused_or_https_without_tls() {
    let proxy = connect_proxy(Some("Basic dTpw"));
    let bad_creds = Client::builder()
        .proxy(
            Proxy::all(&format!("http://u:wrong@{}", proxy.addr))
                .unwrap()
                .tunnel_http(true),
        )
        .build();
    let err = bad_creds.get("http://127.0.0.1:1/").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.to_string().contains("407"), "{err}");
    // https goes through CONNECT; the tunnel opens, then TLS fails: the target speaks
    // plain HTTP (or, without the `tls` feature, TLS is missing).
    let target = origin();
    let client = Client::builder()
        .proxy(Proxy::https(&format!("http://u:p@{}", proxy.addr)).unwrap())
        .build();
    let err = client
        .get(format!(
            "https://127.0.0.1:{}/",
            target.listening.local_addr().port()
        ))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(proxy
        .heads
        .lock()
        .unwrap()
        .iter()
        .any(|h| h.starts_with("CONNECT 127.0.0.1:")));
}

#[test]
fn no_proxy_and_scope() {
    let target = origin();
    let proxy = connect_proxy(None);
    // An https-only proxy does not touch http URLs; no_proxy skips listed hosts.
    let client = Client::builder()
        .proxy(Proxy::https(&format!("http://{}", proxy.addr)).unwrap())
        .build();
    assert_eq!(
        client.get(target.url("/x")).send().unwrap().text().unwrap(),
        "origin saw /x"
    );
    let client = Client::builder()
        .proxy(
            Proxy::all(&format!("http://{}", proxy.addr))
                .unwrap()
                .no_proxy("127.0.0.1"),
        )
        .build();
    assert_eq!(
        client.get(target.url("/y")).send().unwrap().text().unwrap(),
        "origin saw /y"
    );
    assert_eq!(proxy.accepted(), 0);
}
