//! Memory of idle connections: HTTP/2 (h2c, prior knowledge) against HTTP/1.1
//! keep-alive, on one spindle server in this process.
//!
//! `cargo bench --bench h2_idle_memory` opens `IDLE_CONNS` (default 2000) connections
//! of each kind; each makes one request, reads the whole answer and then stays open
//! and silent. It prints the growth of the process's resident memory per idle
//! connection and the server's thread count (an idle connection must hold none).
//! The client side keeps only its socket, so the growth is the server's share (plus
//! allocator slack). Loopback only; the fd limit is raised to fit.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{raise_fd_limit, rss_kib};
use spindle::h2::proto::{Config, Connection, Event};
use spindle::server::{Request, Response, Server};

fn hello(_req: Request, res: Response) {
    res.send(b"Hello, World!").ok();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    raise_fd_limit();
    let n: usize = std::env::var("IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let server = Server::http("127.0.0.1:0")
        .expect("bind")
        .idle_timeout(Some(Duration::from_secs(600)))
        .handle_threads(hello, 64)
        .expect("serve");
    let addr = server.local_addr();
    // Warm up: thread pool, buffers, allocator arenas.
    drop(open_h1(addr, 50));
    drop(open_h2(addr, 50));
    std::thread::sleep(Duration::from_millis(300));

    println!("# idle connections: resident memory per connection, {n} of each kind");
    println!("| protocol | KiB per idle connection | server threads while idle |");
    println!("|---|---:|---:|");
    for (name, open) in [
        (
            "HTTP/1.1 keep-alive",
            open_h1 as fn(SocketAddr, usize) -> Vec<TcpStream>,
        ),
        ("HTTP/2 (h2c)", open_h2),
    ] {
        let before = rss_kib("self");
        let conns = open(addr, n);
        std::thread::sleep(Duration::from_millis(500));
        let after = rss_kib("self");
        let threads = server.threads();
        let per = (after.saturating_sub(before)) as f64 / n as f64;
        println!("| {name} | {per:.1} | {threads} |");
        drop(conns);
        std::thread::sleep(Duration::from_millis(500));
    }
    server.close();
}

fn open_h1(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .expect("write");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"Hello, World!") {
                let k = s.read(&mut buf).expect("read");
                assert!(k > 0, "closed");
                got.extend_from_slice(&buf[..k]);
            }
            s
        })
        .collect()
}

fn open_h2(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut client = Connection::client(Config::default(), Instant::now());
            let req = http::Request::get(format!("http://{addr}/"))
                .body(())
                .expect("request");
            let id = client.open_stream(&req, true).expect("open");
            s.write_all(&client.take_output()).expect("write");
            let mut buf = [0u8; 4096];
            let mut done = false;
            while !done {
                let k = s.read(&mut buf).expect("read");
                assert!(k > 0, "closed");
                client.recv(&buf[..k]).expect("valid HTTP/2");
                while let Some(ev) = client.poll_event() {
                    if let Event::Data {
                        id: sid,
                        end_stream: true,
                        ..
                    } = ev
                    {
                        done |= sid == id;
                    }
                }
                // SETTINGS ACK and the like.
                s.write_all(&client.take_output()).expect("write");
            }
            s
        })
        .collect()
}
