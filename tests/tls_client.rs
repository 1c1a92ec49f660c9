//! spindle's client over HTTPS against a small TLS server written here (spindle's own
//! `tls::Acceptor` on blocking sockets, one thread per connection): roots, host names,
//! keep-alive reuse, ALPN, handshake timeouts, CONNECT tunnels.
#![cfg(feature = "tls")]
mod client_support;
mod tls_support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_support::{read_head, splice, Raw};
use spindle::client::Proxy;
use spindle::tls::{Acceptor, Certificate, Identity};
use spindle::{Client, ErrorKind};
use tls_support::{Ca, Leaf};

/// A tiny HTTPS/1.1 server: answers every request with `conn=<n> path=<path>`.
struct Https {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Https {
    fn start(acceptor: Acceptor) -> Https {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { return };
                let id = count.fetch_add(1, Ordering::SeqCst) + 1;
                let acceptor = acceptor.clone();
                std::thread::spawn(move || serve(id, &acceptor, sock));
            }
        });
        Https { addr, accepted }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve(id: usize, acceptor: &Acceptor, sock: TcpStream) {
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let Ok(mut tls) = acceptor.accept(sock) else {
        return;
    };
    // A blocking socket: the handshake completes (or fails) in one call.
    if tls.handshake().is_err() {
        return;
    }
    let alpn = tls
        .negotiated_alpn()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let mut reader = BufReader::new(tls);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
        }
        let body = format!("conn={id} path={path} alpn={alpn}");
        let res = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if reader.get_mut().write_all(res.as_bytes()).is_err() {
            return;
        }
    }
}

struct Pki {
    ca: Ca,
    localhost: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("spindle client test CA");
    let localhost = ca.issue("localhost", &["localhost", "127.0.0.1"], false);
    Pki { ca, localhost }
}

fn server(leaf: &Leaf) -> Https {
    let acceptor =
        Acceptor::from_pem_alpn(&leaf.chain_pem(), &leaf.key_pem(), &["h2", "http/1.1"]).unwrap();
    Https::start(acceptor)
}

fn builder() -> spindle::client::ClientBuilder {
    // The test server below picks h2 when offered but speaks only HTTP/1.1, so these
    // tests offer only http/1.1 (HTTP/2 over TLS is tested in client_h2.rs).
    Client::builder()
        .tls_offer_h2(false)
        .env_proxy(false)
        .timeout(Duration::from_secs(20))
}

fn trusting(pki: &Pki) -> spindle::client::ClientBuilder {
    builder()
        .add_root_certificate(Certificate::from_pem(&pki.ca.pem()).unwrap())
        .tls_built_in_root_certs(false)
}

#[test]
fn https_with_an_added_root_reuses_the_connection() {
    let pki = pki();
    let srv = server(&pki.localhost);
    let client = trusting(&pki).try_build().unwrap();
    for i in 0..3 {
        let res = client
            .get(format!("https://localhost:{}/a{i}", srv.port()))
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.alpn(), Some(&b"http/1.1"[..]), "http/1.1 offered only");
        assert_eq!(
            res.text().unwrap(),
            format!("conn=1 path=/a{i} alpn=http/1.1")
        );
    }
    assert_eq!(srv.connections(), 1, "one TLS connection, reused");
    assert_eq!(client.idle_connections(), 1);
    // An IP address in the certificate's subjectAltName works too (another pool key).
    let text = client
        .get(format!("https://127.0.0.1:{}/ip", srv.port()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(text, "conn=2 path=/ip alpn=http/1.1");
    // Plain HTTP responses carry no ALPN.
    assert_eq!(srv.connections(), 2);
}

#[test]
fn unknown_ca_is_refused_and_danger_accept_invalid_certs_overrides() {
    let pki = pki();
    let srv = server(&pki.localhost);
    let url = format!("https://localhost:{}/", srv.port());
    let err = builder().build().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("localhost"), "{err}");
    assert!(err.message().contains("trusted CA"), "{err}");
    assert_eq!(err.url(), Some(url.as_str()));
    // Another CA's root does not help either.
    let other = Ca::new("another CA");
    let err = builder()
        .add_root_certificate(Certificate::from_der(&other.cert.to_der().unwrap()).unwrap())
        .build()
        .get(&url)
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let res = builder()
        .danger_accept_invalid_certs(true)
        .build()
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn wrong_host_certificate_is_refused() {
    let pki = pki();
    let wrong = pki.ca.issue("wrong.example", &["wrong.example"], false);
    let srv = server(&wrong);
    let url = format!("https://localhost:{}/", srv.port());
    let err = trusting(&pki).build().get(&url).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        err.message()
            .contains("not valid for the host name localhost"),
        "{err}"
    );
    let res = trusting(&pki)
        .danger_accept_invalid_hostnames(true)
        .build()
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn silent_server_gives_a_tls_handshake_timeout_naming_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(sock);
    });
    let started = Instant::now();
    let err = builder()
        .connect_timeout(Duration::from_millis(300))
        .build()
        .get(format!("https://localhost:{port}/"))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("timed out"), "{err}");
    assert!(err.message().contains("localhost"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    hold.join().unwrap();
}

#[test]
fn plain_http_port_gives_a_tls_error() {
    // What a plain HTTP server says to a ClientHello, at once.
    let plain = Raw::start(1, |mut stream, _| {
        let mut hello = [0; 5];
        std::io::Read::read_exact(&mut stream, &mut hello).ok();
        stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .ok();
    });
    let err = builder()
        .build()
        .get(format!("https://localhost:{}/", plain.addr.port()))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("localhost"), "{err}");
}

#[test]
fn a_server_that_chooses_h2_gets_http2() {
    // This server picks h2 but answers in HTTP/1.1: the client, speaking HTTP/2 as ALPN
    // said, sees a protocol error rather than misreading the answer.
    let pki = pki();
    let srv = server(&pki.localhost);
    let err = trusting(&pki)
        .tls_offer_h2(true)
        .build()
        .get(format!("https://localhost:{}/", srv.port()))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Http2, "{err}");
}

/// A CONNECT proxy that splices to the requested loopback port.
fn connect_proxy() -> Raw {
    Raw::start(8, |mut stream, heads| {
        let head = read_head(&mut stream);
        heads.lock().unwrap().push(head.clone());
        let authority = head.split(' ').nth(1).unwrap_or("").to_owned();
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
fn connect_tunnel_carries_tls_and_is_pooled() {
    let pki = pki();
    let srv = server(&pki.localhost);
    let proxy = connect_proxy();
    let client = trusting(&pki)
        .proxy(Proxy::https(&format!("http://{}", proxy.addr)).unwrap())
        .build();
    for i in 0..2 {
        let res = client
            .get(format!("https://localhost:{}/t{i}", srv.port()))
            .send()
            .unwrap();
        assert_eq!(res.alpn(), Some(&b"http/1.1"[..]));
        assert_eq!(
            res.text().unwrap(),
            format!("conn=1 path=/t{i} alpn=http/1.1")
        );
    }
    assert_eq!(proxy.accepted(), 1, "the tunnel is pooled");
    let first = proxy.heads.lock().unwrap()[0].clone();
    assert!(
        first.starts_with(&format!("CONNECT localhost:{} HTTP/1.1\r\n", srv.port())),
        "{first}"
    );
    // The host name is checked through the tunnel too.
    let wrong = pki.ca.issue("wrong.example", &["wrong.example"], false);
    let bad = server(&wrong);
    let err = client
        .get(format!("https://localhost:{}/", bad.port()))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}

#[test]
fn certificate_and_identity_parsing_errors_are_typed() {
    assert_eq!(
        Certificate::from_pem(b"junk").unwrap_err().kind(),
        ErrorKind::Tls
    );
    assert_eq!(
        Certificate::from_der(b"junk").unwrap_err().kind(),
        ErrorKind::Tls
    );
    let pki = pki();
    let mut bundle = pki.ca.pem();
    bundle.extend(Ca::new("second").pem());
    assert_eq!(Certificate::bundle_from_pem(&bundle).unwrap().len(), 2);
    assert_eq!(
        Identity::from_pem(b"junk", b"junk").unwrap_err().kind(),
        ErrorKind::Tls
    );
    assert_eq!(
        Identity::from_pkcs12(b"junk", "pw").unwrap_err().kind(),
        ErrorKind::Tls
    );
    let client = pki.ca.issue("client", &[], true);
    Identity::from_pem(&client.chain_pem(), &client.key_pem()).unwrap();
    Identity::from_pkcs12(&client.pkcs12("pw"), "pw").unwrap();
    assert_eq!(
        Identity::from_pkcs12(&client.pkcs12("pw"), "wrong")
            .unwrap_err()
            .kind(),
        ErrorKind::Tls
    );
}

/// A client certificate checked by an OpenSSL acceptor that requires one.
#[cfg(feature = "openssl-alpn")]
#[test]
fn client_certificate_is_presented_to_a_server_that_requires_one() {
    use openssl::ssl::SslVerifyMode;
    let pki = pki();
    let mut b = spindle::tls::OpensslAcceptor::builder_from_pem(
        &pki.localhost.chain_pem(),
        &pki.localhost.key_pem(),
    )
    .unwrap();
    let ossl = b.openssl_mut();
    ossl.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    ossl.cert_store_mut().add_cert(pki.ca.cert.clone()).unwrap();
    let srv = Https::start(b.build().into());
    let url = format!("https://localhost:{}/who", srv.port());
    // Without a certificate the server aborts the handshake (TLS 1.3: right after it,
    // so the client may see it on its first read).
    let err = trusting(&pki).build().get(&url).send().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Tls | ErrorKind::Closed | ErrorKind::Io
        ),
        "{err}"
    );
    let me = pki.ca.issue("spindle client", &[], true);
    for identity in [
        Identity::from_pem(&me.chain_pem(), &me.key_pem()).unwrap(),
        Identity::from_pkcs12(&me.pkcs12("pw"), "pw").unwrap(),
    ] {
        let res = trusting(&pki)
            .identity(identity)
            .build()
            .get(&url)
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}
