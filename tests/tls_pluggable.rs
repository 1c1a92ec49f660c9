//! The TLS plug points without any TLS library: a custom `TlsConnector` (here a
//! pass-through test double) serves `https://` URLs in every build, and a build without
//! the `tls` feature refuses `https://` with a clear `ErrorKind::Tls`.
mod client_support;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client_support::Raw;
use spindle::client::Stream;
use spindle::tls::TlsConnector;
use spindle::Client;

/// "TLS" that encrypts nothing but reports an ALPN protocol and counts handshakes.
struct PassThrough {
    handshakes: Arc<AtomicUsize>,
    hosts: Arc<std::sync::Mutex<Vec<String>>>,
}

struct Plain(Box<dyn Stream>);

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stream for Plain {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(t)
    }
    fn peer_closed(&self) -> bool {
        self.0.peer_closed()
    }
    fn negotiated_alpn(&self) -> Option<&[u8]> {
        Some(b"http/1.1")
    }
}

impl TlsConnector for PassThrough {
    fn connect(&self, host: &str, stream: Box<dyn Stream>) -> spindle::Result<Box<dyn Stream>> {
        self.handshakes.fetch_add(1, Ordering::SeqCst);
        self.hosts.lock().unwrap().push(host.to_owned());
        Ok(Box::new(Plain(stream)))
    }
}

#[test]
fn a_custom_tls_connector_serves_https_urls_and_is_pooled() {
    let server = Raw::canned(4, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let handshakes = Arc::new(AtomicUsize::new(0));
    let hosts = Arc::default();
    let client = Client::builder()
        .env_proxy(false)
        .tls_connector(PassThrough {
            handshakes: handshakes.clone(),
            hosts: Arc::clone(&hosts),
        })
        .build();
    let url = format!("https://{}/x", server.addr);
    for _ in 0..3 {
        let res = client.get(&url).send().unwrap();
        assert_eq!(res.alpn(), Some(&b"http/1.1"[..]));
        assert_eq!(res.text().unwrap(), "ok");
    }
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        1,
        "pooled after one handshake"
    );
    assert_eq!(server.accepted(), 1);
    assert_eq!(hosts.lock().unwrap()[0], "127.0.0.1");
    // Plain http:// never goes through the TLS connector, and reports no ALPN.
    let res = client.get(server.url("/plain")).send().unwrap();
    assert_eq!(res.alpn(), None);
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}

#[test]
fn ipv6_hosts_reach_the_connector_without_brackets() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("SKIP: no IPv6 loopback here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        client_support::read_head(&mut s.try_clone().unwrap());
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    });
    let hosts: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let client = Client::builder()
        .env_proxy(false)
        .tls_connector(PassThrough {
            handshakes: Arc::default(),
            hosts: hosts.clone(),
        })
        .build();
    let res = client.get(format!("https://[::1]:{port}/")).send().unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(hosts.lock().unwrap()[0], "::1");
    t.join().unwrap();
}

#[cfg(not(feature = "tls"))]
#[test]
fn without_the_tls_feature_https_is_a_clear_tls_error() {
    let client = Client::builder().env_proxy(false).build();
    let err = client.get("https://127.0.0.1:9/").send().unwrap_err();
    assert_eq!(err.kind(), spindle::ErrorKind::Tls);
    assert!(err.message().contains("no TLS backend"), "{err}");
    assert!(err.message().contains("`tls` feature"), "{err}");
}
