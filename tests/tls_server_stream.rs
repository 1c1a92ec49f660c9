//! The server side of the TLS layer as an event loop uses it: non-blocking sockets,
//! handshakes resumed after `WouldBlock`, plaintext buffered inside the TLS layer, and
//! typed errors for peers that do not speak TLS. Each backend against the native-tls
//! client.
#![cfg(feature = "tls")]
mod tls_support;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spindle::tls::{Acceptor, HandshakeStatus, Interest, ServerStream};
use spindle::ErrorKind;
use tls_support::{Ca, Leaf};

struct Pki {
    ca: Ca,
    server: Leaf,
}

fn pki() -> Pki {
    let ca = Ca::new("spindle test CA");
    let server = ca.issue("localhost", &["localhost", "127.0.0.1"], false);
    Pki { ca, server }
}

/// The acceptors under test: native-tls always, OpenSSL with `openssl-alpn`.
fn acceptors(pki: &Pki, alpn: &[&str]) -> Vec<(&'static str, Acceptor)> {
    let (chain, key) = (pki.server.chain_pem(), pki.server.key_pem());
    #[allow(unused_mut)]
    let mut v = vec![(
        "native-tls",
        Acceptor::from_pem_alpn(&chain, &key, alpn).unwrap(),
    )];
    #[cfg(feature = "openssl-alpn")]
    {
        let mut b = spindle::tls::OpensslAcceptor::builder_from_pem(&chain, &key).unwrap();
        if !alpn.is_empty() {
            b = b.alpn_protocols(alpn).unwrap();
        }
        v.push(("openssl", Acceptor::from(b.build())));
    }
    v
}

fn connector(pki: &Pki, alpn: &[&str]) -> native_tls::TlsConnector {
    let mut b = native_tls::TlsConnector::builder();
    b.add_root_certificate(native_tls::Certificate::from_pem(&pki.ca.pem()).unwrap());
    b.disable_built_in_roots(true);
    if !alpn.is_empty() {
        b.request_alpns(alpn);
    }
    b.build().unwrap()
}

/// Accepts one connection, non-blocking, wrapped in TLS (no I/O yet).
fn accept(listener: &TcpListener, acceptor: &Acceptor) -> ServerStream {
    let (sock, _) = listener.accept().unwrap();
    sock.set_nonblocking(true).unwrap();
    acceptor.accept(sock).unwrap()
}

/// Resumes the handshake until it completes, as an event loop would on readiness
/// (here: short sleeps). Returns how many times it was pending.
fn drive(tls: &mut ServerStream) -> spindle::Result<usize> {
    let started = Instant::now();
    let mut pending = 0;
    loop {
        match tls.handshake()? {
            HandshakeStatus::Complete => return Ok(pending),
            HandshakeStatus::Pending(interest) => {
                assert_eq!(interest, tls.wants());
                pending += 1;
                assert!(started.elapsed() < Duration::from_secs(10), "stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Reads exactly `n` bytes from a non-blocking TLS stream, retrying on `WouldBlock`.
fn read_exact_nb(tls: &mut ServerStream, n: usize, chunk: usize) -> Vec<u8> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = vec![0; chunk];
    while out.len() < n {
        match tls.read(&mut buf[..chunk.min(n - out.len())]) {
            Ok(0) => panic!("EOF after {} bytes", out.len()),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(started.elapsed() < Duration::from_secs(10), "stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

fn write_all_nb(tls: &mut ServerStream, mut data: &[u8]) {
    let started = Instant::now();
    while !data.is_empty() {
        match tls.write(data) {
            Ok(k) => data = &data[k..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(started.elapsed() < Duration::from_secs(10), "stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
}

fn client<T: Send + 'static>(
    addr: std::net::SocketAddr,
    connector: native_tls::TlsConnector,
    f: impl FnOnce(native_tls::TlsStream<TcpStream>) -> T + Send + 'static,
) -> JoinHandle<T> {
    std::thread::spawn(move || {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The server side reads before the ClientHello is there, so its handshake
        // would block at least once however the two threads are scheduled.
        std::thread::sleep(Duration::from_millis(100));
        let tls = connector.connect("localhost", tcp).unwrap();
        f(tls)
    })
}

#[test]
fn handshake_resumes_after_would_block_and_data_flows_both_ways() {
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &[]) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = client(addr, connector(&pki, &[]), |mut tls| {
            tls.write_all(b"ping from the client").unwrap();
            let mut buf = [0; 20];
            tls.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"pong from the server");
            tls.shutdown().ok();
        });
        let mut tls = accept(&listener, &acceptor);
        assert!(tls.is_handshaking());
        // Reading before the handshake is done drives it, and would block.
        let mut buf = [0; 8];
        let first = tls.read(&mut buf);
        if let Err(e) = &first {
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{name}: {e}");
            assert_eq!(tls.wants(), Interest::Read, "{name}");
        }
        let pending = drive(&mut tls).unwrap();
        assert!(!tls.is_handshaking());
        // The server cannot finish before the client's Finished arrives: at least one
        // WouldBlock happened (in the read above or in drive).
        assert!(first.is_err() || pending > 0, "{name}: never blocked");
        assert_eq!(tls.negotiated_alpn(), None, "{name}: no ALPN configured");
        assert_eq!(
            read_exact_nb(&mut tls, 20, 64),
            b"ping from the client",
            "{name}"
        );
        write_all_nb(&mut tls, b"pong from the server");
        c.join().unwrap();
        // The client's close_notify reads as a clean end of stream.
        let started = Instant::now();
        loop {
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => panic!("{name}: unexpected {n} bytes"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(started.elapsed() < Duration::from_secs(10));
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}

#[test]
fn buffered_plaintext_is_reported_until_drained() {
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &[]) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let sent = message.clone();
        let c = client(addr, connector(&pki, &[]), move |mut tls| {
            tls.write_all(&sent).unwrap(); // one TLS record
            done_rx.recv().ok();
        });
        let mut tls = accept(&listener, &acceptor);
        drive(&mut tls).unwrap();
        assert_eq!(tls.buffered_plaintext(), 0, "{name}");
        // A small read leaves the rest of the record decrypted inside the TLS layer,
        // where no socket readiness will ever announce it.
        let first = read_exact_nb(&mut tls, 100, 100);
        let buffered = tls.buffered_plaintext();
        assert!(buffered > 0, "{name}: nothing reported as buffered");
        assert!(buffered <= 9_900, "{name}: {buffered}");
        // Exactly the buffered bytes can be read without touching the socket.
        let mut rest = first;
        rest.extend(read_exact_nb(&mut tls, 9_900, 4096));
        assert!(rest == message, "{name}: data mismatch");
        assert_eq!(tls.buffered_plaintext(), 0, "{name}");
        let mut buf = [0; 16];
        let e = tls.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{name}");
        assert_eq!(tls.wants(), Interest::Read, "{name}");
        done_tx.send(()).unwrap();
        c.join().unwrap();
    }
}

#[test]
fn plaintext_http_instead_of_a_handshake_is_a_tls_error() {
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &[]) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = std::thread::spawn(move || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut sink = Vec::new();
            tcp.read_to_end(&mut sink).ok();
        });
        let mut tls = accept(&listener, &acceptor);
        let err = drive(&mut tls).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{name}: {err}");
        // Once failed, the stream stays failed and never panics.
        assert!(tls.handshake().is_err());
        assert!(tls.read(&mut [0; 4]).is_err());
        drop(tls);
        c.join().unwrap();
    }
}

#[test]
fn garbage_bytes_and_early_close_are_typed_errors() {
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &[]) {
        // Random-looking bytes that start like a TLS record.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = std::thread::spawn(move || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            let mut junk = vec![0x16, 0x03, 0x01, 0x00, 0x40];
            junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
            tcp.write_all(&junk).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut tls = accept(&listener, &acceptor);
        let err = drive(&mut tls).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Tls | ErrorKind::Closed),
            "{name}: {err}"
        );
        c.join().unwrap();

        // A client that connects, stays silent, then leaves.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = accept(&listener, &acceptor);
        // Silent: pending on read, never blocking the caller.
        assert_eq!(
            tls.handshake().unwrap(),
            HandshakeStatus::Pending(Interest::Read),
            "{name}"
        );
        drop(tcp);
        let err = drive(&mut tls).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{name}: {err}");
    }
}

#[test]
fn alpn_selection_follows_the_server_preference() {
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &["h2", "http/1.1"]) {
        for (offer, expect) in [
            (&["http/1.1", "h2"][..], Some(&b"h2"[..])),
            (&["http/1.1"][..], Some(&b"http/1.1"[..])),
            (&["spdy/3"][..], None),
            (&[][..], None),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let c = client(addr, connector(&pki, offer), |tls| {
                tls.negotiated_alpn().unwrap()
            });
            let mut tls = accept(&listener, &acceptor);
            drive(&mut tls).unwrap();
            assert_eq!(tls.negotiated_alpn(), expect, "{name} offered {offer:?}");
            assert_eq!(tls.is_h2(), expect == Some(b"h2"));
            assert_eq!(c.join().unwrap().as_deref(), expect, "{name}: client view");
        }
    }
}

#[test]
fn bad_server_identity_is_a_tls_error() {
    let pki = pki();
    let err = Acceptor::from_pem(&pki.server.chain_pem(), b"not a key").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    // native-tls does not check that the key matches the certificate (handshakes fail
    // later); OpensslAcceptor does, below.
    let err = Acceptor::from_pem(b"", &pki.server.key_pem()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let err =
        Acceptor::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    #[cfg(feature = "openssl-alpn")]
    {
        use spindle::tls::OpensslAcceptor;
        let other = Ca::new("other").issue("x", &["x"], false);
        let err = OpensslAcceptor::from_pem(&pki.server.chain_pem(), &other.key_pem()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        let err = OpensslAcceptor::from_pem(b"", &pki.server.key_pem()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    }
}

/// Waits with poll(2) for `interest` on `fd`, up to 10 s (Unix only).
#[cfg(unix)]
fn poll_wait(fd: std::os::fd::RawFd, interest: Interest) -> io::Result<()> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd we own, for a descriptor kept open by the caller.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    match n {
        0 => Err(io::Error::new(io::ErrorKind::TimedOut, "poll timed out")),
        n if n < 0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// A reader and a writer on two threads share one TLS connection. The client first
/// writes 8 MiB without reading, so the server's writer fills the socket and must wait
/// for writability while its reader keeps reading: holding the TLS lock while waiting
/// would deadlock here. Unix only: it waits with poll(2).
#[cfg(unix)]
#[test]
fn shared_stream_reads_and_writes_from_two_threads_without_deadlock() {
    use spindle::tls::SharedServerStream;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    const SIZE: usize = 8 << 20;
    let pki = pki();
    for (name, acceptor) in acceptors(&pki, &[]) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = client(addr, connector(&pki, &[]), |mut tls| {
            let out: Vec<u8> = (0..SIZE).map(|i| (i % 249) as u8).collect();
            tls.write_all(&out).unwrap();
            let mut back = vec![0; SIZE];
            tls.read_exact(&mut back).unwrap();
            assert!(back.iter().enumerate().all(|(i, b)| *b == (i % 241) as u8));
        });
        let (sock, _) = listener.accept().unwrap();
        sock.set_nonblocking(true).unwrap();
        let fd = sock.as_raw_fd();
        let keep = sock.try_clone().unwrap(); // keeps `fd` valid for poll
        let tls = Arc::new(SharedServerStream::new(acceptor.accept(sock).unwrap()));
        tls.handshake(|i| poll_wait(fd, i)).unwrap();
        let writer = {
            let tls = tls.clone();
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..SIZE).map(|i| (i % 241) as u8).collect();
                for chunk in data.chunks(100_000) {
                    tls.write_all(chunk, |i| poll_wait(fd, i)).unwrap();
                }
            })
        };
        let mut got = 0usize;
        let mut buf = vec![0; 16 * 1024];
        while got < SIZE {
            let n = tls.read(&mut buf, |i| poll_wait(fd, i)).unwrap();
            assert!(n > 0, "{name}: EOF after {got}");
            assert!(buf[..n]
                .iter()
                .enumerate()
                .all(|(i, b)| *b == ((got + i) % 249) as u8));
            got += n;
        }
        writer.join().unwrap();
        c.join().unwrap();
        assert_eq!(tls.buffered_plaintext(), 0);
        // The client is gone: end of stream (or an unexpected-EOF error), no data.
        let r = tls.try_read(&mut buf);
        assert!(!matches!(r, Ok(n) if n > 0), "{name}: {r:?}");
        drop(keep);
    }
}
