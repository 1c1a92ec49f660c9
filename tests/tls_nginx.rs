//! spindle's client against nginx with TLS on loopback: certificates made now, ports
//! chosen now, nginx started and killed (by PID) here. Keep-alive reuse is proven with
//! nginx's own `$connection` and `$connection_requests`.
//!
//! Without nginx this is a loud SKIP in plain `cargo test` and a failure when `CI=true`
//! (`.ci/run` installs it).
#![cfg(feature = "tls")]
mod client_support;
mod common;
mod tls_support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use client_support::{read_head, splice, Raw};
use common::nginx::Nginx;
use spindle::client::Proxy;
use spindle::tls::{Certificate, Identity};
use spindle::{Client, ErrorKind};
use tls_support::Ca;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx with three TLS servers: `good` (a certificate for localhost and 127.0.0.1),
/// `wrong` (a certificate for another name) and `mtls` (requires a client certificate
/// from the test CA). Killed by PID and its directory removed when dropped.
struct TlsNginx {
    _nginx: Nginx,
    ca: Ca,
    good: u16,
    wrong: u16,
    mtls: u16,
}

fn nginx(tag: &str) -> Option<TlsNginx> {
    let dir = std::env::temp_dir().join(format!("spindle-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("www/big.bin"), &big).unwrap();
    let ca = Ca::new("spindle nginx test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    ca.issue("localhost", &["localhost", "127.0.0.1"], false)
        .write(&dir, "good");
    ca.issue("wrong.example", &["wrong.example"], false)
        .write(&dir, "wrong");
    let (good, wrong, mtls) = (free_port(), free_port(), free_port());
    let d = dir.display();
    let http = format!(
        r#"
    types {{ application/octet-stream bin; }}
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{good} ssl;
        ssl_certificate {d}/good.pem;
        ssl_certificate_key {d}/good.key;
        root {d}/www;
        location = /conn {{
            return 200 "conn=$connection n=$connection_requests alpn=$ssl_alpn_protocol sni=$ssl_server_name\n";
        }}
    }}
    server {{
        listen 127.0.0.1:{wrong} ssl;
        ssl_certificate {d}/wrong.pem;
        ssl_certificate_key {d}/wrong.key;
        location / {{ return 200 "wrong\n"; }}
    }}
    server {{
        listen 127.0.0.1:{mtls} ssl;
        ssl_certificate {d}/good.pem;
        ssl_certificate_key {d}/good.key;
        ssl_verify_client on;
        ssl_client_certificate {d}/ca.pem;
        location / {{ return 200 "client=$ssl_client_s_dn verify=$ssl_client_verify\n"; }}
    }}"#
    );
    // nginx binds every listener before it serves any: one port is enough to wait for.
    let nginx = Nginx::start(&dir, &http, mtls)?;
    Some(TlsNginx {
        _nginx: nginx,
        ca,
        good,
        wrong,
        mtls,
    })
}

fn trusting(n: &TlsNginx) -> spindle::client::ClientBuilder {
    Client::builder()
        .env_proxy(false)
        .timeout(Duration::from_secs(20))
        .add_root_certificate(Certificate::from_pem(&n.ca.pem()).unwrap())
}

/// `conn=<n>` of a `/conn` answer.
fn conn_id(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

#[test]
fn nginx_https_keep_alive_reuse_and_alpn() {
    let Some(n) = nginx("reuse") else { return };
    let client = trusting(&n).build();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let res = client
            .get(format!("https://localhost:{}/conn", n.good))
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.alpn(), Some(&b"http/1.1"[..]));
        let text = res.text().unwrap();
        assert!(text.contains(&format!(" n={i} ")), "{text}");
        assert!(text.contains("alpn=http/1.1"), "{text}");
        assert!(text.contains("sni=localhost"), "{text}");
        ids.push(conn_id(&text).to_owned());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // A 1 MB body over TLS, then the same connection again.
    let big = client
        .get(format!("https://localhost:{}/big.bin", n.good))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(big.len(), 1_000_000);
    assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    let text = client
        .get(format!("https://localhost:{}/conn", n.good))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(conn_id(&text), ids[0], "{text}");
    assert!(text.contains(" n=5 "), "{text}");
    assert_eq!(client.idle_connections(), 1);
    // The IP address is in the certificate too; no SNI is sent for it.
    let text = client
        .get(format!("https://127.0.0.1:{}/conn", n.good))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_ne!(conn_id(&text), ids[0]);
    assert!(text.contains("sni= ") || text.ends_with("sni=\n"), "{text}");
}

#[test]
fn nginx_unknown_ca_then_add_root_certificate() {
    let Some(n) = nginx("ca") else { return };
    let url = format!("https://localhost:{}/conn", n.good);
    let err = Client::builder()
        .env_proxy(false)
        .build()
        .get(&url)
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("localhost"), "{err}");
    assert!(err.message().contains("trusted CA"), "{err}");
    let res = trusting(&n).build().get(&url).send().unwrap();
    assert_eq!(res.status(), 200);
    let res = Client::builder()
        .env_proxy(false)
        .danger_accept_invalid_certs(true)
        .build()
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn nginx_wrong_host_certificate_is_refused() {
    let Some(n) = nginx("host") else { return };
    let url = format!("https://localhost:{}/", n.wrong);
    let err = trusting(&n).build().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        err.message()
            .contains("not valid for the host name localhost"),
        "{err}"
    );
    let text = trusting(&n)
        .danger_accept_invalid_hostnames(true)
        .build()
        .get(&url)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(text, "wrong\n");
}

#[test]
fn nginx_client_certificate_is_presented() {
    let Some(n) = nginx("mtls") else { return };
    let url = format!("https://localhost:{}/", n.mtls);
    // nginx answers a missing client certificate with 400.
    let res = trusting(&n).build().get(&url).send().unwrap();
    assert_eq!(res.status(), 400);
    let me = n.ca.issue("spindle test client", &[], true);
    for identity in [
        Identity::from_pem(&me.chain_pem(), &me.key_pem()).unwrap(),
        Identity::from_pkcs12(&me.pkcs12("secret"), "secret").unwrap(),
    ] {
        let res = trusting(&n)
            .identity(identity)
            .build()
            .get(&url)
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().unwrap();
        assert!(text.contains("CN=spindle test client"), "{text}");
        assert!(text.contains("verify=SUCCESS"), "{text}");
    }
    // A certificate from another CA is refused.
    let stranger = Ca::new("stranger").issue("intruder", &[], true);
    let res = trusting(&n)
        .identity(Identity::from_pem(&stranger.chain_pem(), &stranger.key_pem()).unwrap())
        .build()
        .get(&url)
        .send();
    match res {
        Ok(res) => assert_eq!(res.status(), 400),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Tls | ErrorKind::Closed | ErrorKind::Io),
            "{e}"
        ),
    }
}

#[test]
fn nginx_through_a_connect_tunnel() {
    let Some(n) = nginx("tunnel") else { return };
    let proxy = Raw::start(4, |mut stream, heads| {
        let head = read_head(&mut stream);
        heads.lock().unwrap().push(head.clone());
        let port: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|a| a.rsplit(':').next())
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
    });
    let client = trusting(&n)
        .proxy(Proxy::https(&format!("http://{}", proxy.addr)).unwrap())
        .build();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = client
            .get(format!("https://localhost:{}/conn", n.good))
            .send()
            .unwrap();
        assert_eq!(res.alpn(), Some(&b"http/1.1"[..]));
        let text = res.text().unwrap();
        assert!(text.contains("sni=localhost"), "{text}");
        ids.push(conn_id(&text).to_owned());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(proxy.accepted(), 1, "one tunnel, reused");
    let first = proxy.heads.lock().unwrap()[0].clone();
    assert!(
        first.starts_with(&format!("CONNECT localhost:{} HTTP/1.1\r\n", n.good)),
        "{first}"
    );
}
