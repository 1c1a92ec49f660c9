//! The reverse proxy example, end to end: downstream client → proxy → upstream server.
#[path = "../examples/reverse_proxy.rs"]
mod reverse_proxy;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reverse_proxy::ReverseProxy;
use spindle::client::Body;
use spindle::server::{Listening, Request, Response, Server};
use spindle::Client;

fn upstream() -> Listening {
    Server::http("127.0.0.1:0")
        .unwrap()
        .handle(|mut req: Request, mut res: Response| match req.path() {
            "/sum" => {
                // Streams the request body, answers with its length and checksum.
                let mut buf = [0u8; 65536];
                let (mut n, mut sum) = (0u64, 0u64);
                loop {
                    match req.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => {
                            n += k as u64;
                            sum = buf[..k]
                                .iter()
                                .fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
                        }
                        Err(_) => return,
                    }
                }
                res.send(format!("{n} {sum}").as_bytes()).ok();
            }
            "/big" => {
                // 64 MiB, streamed with chunked framing.
                let mut out = res.start().unwrap();
                let block = vec![7u8; 1 << 20];
                for _ in 0..64 {
                    if out.write_all(&block).is_err() {
                        return;
                    }
                }
            }
            "/slow" => {
                std::thread::sleep(Duration::from_millis(1500));
                res.send(b"late").ok();
            }
            _ => {
                let mut text = String::new();
                for name in [
                    "x-forwarded-for",
                    "x-forwarded-host",
                    "connection",
                    "x-secret",
                    "keep-alive",
                ] {
                    if let Some(v) = req.headers().get(name) {
                        text.push_str(&format!("{name}={}\n", v.to_str().unwrap()));
                    }
                }
                res.headers_mut()
                    .insert("connection", "x-hop".parse().unwrap());
                res.headers_mut().insert("x-hop", "gone".parse().unwrap());
                res.send(text.as_bytes()).ok();
            }
        })
        .unwrap()
}

fn proxy_to(upstream: &str, timeout: Duration) -> Listening {
    let proxy = ReverseProxy::new(upstream, timeout);
    Server::http("127.0.0.1:0")
        .unwrap()
        .handle(move |req: Request, res: Response| proxy.handle(req, res))
        .unwrap()
}

#[test]
fn headers_are_rewritten() {
    let up = upstream();
    let proxy = proxy_to(
        &format!("http://{}", up.local_addr()),
        Duration::from_secs(5),
    );
    let client = Client::new();
    let res = client
        .get(format!("http://{}/headers", proxy.local_addr()))
        .header("connection", "x-secret")
        .header("x-secret", "do not forward")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .unwrap();
    assert!(
        res.headers().get("x-hop").is_none(),
        "response hop-by-hop removed"
    );
    let text = res.text().unwrap();
    assert!(
        text.contains("x-forwarded-for=10.0.0.1, 127.0.0.1\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("x-forwarded-host={}\n", proxy.local_addr())),
        "{text}"
    );
    assert!(!text.contains("x-secret"), "{text}");
    assert!(!text.contains("keep-alive"), "{text}");
    proxy.close();
    up.close();
}

#[test]
fn large_bodies_stream_both_ways() {
    let up = upstream();
    let proxy = proxy_to(
        &format!("http://{}", up.local_addr()),
        Duration::from_secs(30),
    );
    let client = Client::new();
    // 48 MiB up, generated on the fly (never held whole), once sized, once chunked.
    struct Gen(u64);
    impl Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(3);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let size = 48u64 << 20;
    let url = format!("http://{}/sum", proxy.local_addr());
    let sized = client
        .post(&url)
        .body(Body::sized_reader(Gen(size), size))
        .send()
        .unwrap();
    assert_eq!(sized.text().unwrap(), format!("{size} {}", size * 3));
    let chunked = client
        .post(&url)
        .body(Body::reader(Gen(size)))
        .send()
        .unwrap();
    assert_eq!(chunked.text().unwrap(), format!("{size} {}", size * 3));
    // 64 MiB down, read in pieces.
    let mut res = client
        .get(format!("http://{}/big", proxy.local_addr()))
        .send()
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = res.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 7));
        total += n as u64;
    }
    assert_eq!(total, 64 << 20);
    proxy.close();
    up.close();
}

#[test]
fn upstream_failures_map_to_502_and_504() {
    let up = upstream();
    let slow = proxy_to(
        &format!("http://{}", up.local_addr()),
        Duration::from_millis(300),
    );
    let client = Client::new();
    let res = client
        .get(format!("http://{}/slow", slow.local_addr()))
        .send()
        .unwrap();
    assert_eq!(res.status(), 504);
    // Nothing listens on port 1.
    let dead = proxy_to("http://127.0.0.1:1", Duration::from_secs(1));
    let res = client
        .get(format!("http://{}/", dead.local_addr()))
        .send()
        .unwrap();
    assert_eq!(res.status(), 502);
    slow.close();
    dead.close();
    up.close();
}

#[test]
fn pool_is_shared_by_the_proxy_workers() {
    let connections = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (c, s) = (connections.clone(), seen.clone());
    let up = Server::http("127.0.0.1:0")
        .unwrap()
        .handle(move |req: Request, res: Response| {
            if s.lock().unwrap().insert(req.remote_addr()) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            res.send(b"ok").ok();
        })
        .unwrap();
    let proxy = proxy_to(
        &format!("http://{}", up.local_addr()),
        Duration::from_secs(5),
    );
    let client = Client::new();
    for _ in 0..50 {
        assert_eq!(
            client
                .get(format!("http://{}/", proxy.local_addr()))
                .send()
                .unwrap()
                .text()
                .unwrap(),
            "ok"
        );
    }
    assert_eq!(
        connections.load(Ordering::Relaxed),
        1,
        "upstream connection reused"
    );
    proxy.close();
    up.close();
}
