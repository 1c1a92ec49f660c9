//! Helpers shared by the client tests: spindle servers that count connections, and raw
//! socket servers that answer with canned bytes.
#![allow(dead_code)]
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use spindle::server::{Handler, Listening, Request, Response, Server};

/// A spindle server that remembers which client sockets (peer addresses) it saw.
pub struct Counted {
    pub listening: Listening,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl Counted {
    pub fn start<F>(handler: F) -> Counted
    where
        F: Fn(Request<'_>, Response<'_>) + Send + Sync + 'static,
    {
        let peers = Arc::new(Mutex::new(HashSet::new()));
        let seen = peers.clone();
        let listening = Server::http("127.0.0.1:0")
            .unwrap()
            .handle(move |req: Request<'_>, res: Response<'_>| {
                if let Some(peer) = req.remote_addr() {
                    seen.lock().unwrap().insert(peer);
                }
                handler.handle(req, res)
            })
            .unwrap();
        Counted { listening, peers }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listening.local_addr(), path)
    }

    /// TCP connections the server has served requests on.
    pub fn connections(&self) -> usize {
        self.peers.lock().unwrap().len()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.listening.close();
    }
}

/// Reads one request head (up to the blank line) from `stream`; returns it as text.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A raw server: for each accepted connection, calls `serve` on its own thread. Stops
/// when the returned guard is dropped (after at most `accepts` connections).
pub struct Raw {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
    accepted: Arc<Mutex<usize>>,
    _thread: JoinHandle<()>,
}

impl Raw {
    pub fn start<F>(accepts: usize, serve: F) -> Raw
    where
        F: Fn(TcpStream, &Mutex<Vec<String>>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0));
        let (h, a) = (heads.clone(), accepted.clone());
        let serve = Arc::new(serve);
        let thread = std::thread::spawn(move || {
            for _ in 0..accepts {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                *a.lock().unwrap() += 1;
                let (h, serve) = (h.clone(), serve.clone());
                std::thread::spawn(move || serve(stream, &h));
            }
        });
        Raw {
            addr,
            heads,
            accepted,
            _thread: thread,
        }
    }

    /// Answers every request on every connection with `response`, keeping connections
    /// open (unless the response says otherwise) until the client closes.
    pub fn canned(accepts: usize, response: &'static [u8]) -> Raw {
        Raw::start(accepts, move |mut stream, heads| loop {
            let head = read_head(&mut stream);
            if head.is_empty() {
                return;
            }
            heads.lock().unwrap().push(head);
            if stream.write_all(response).is_err() {
                return;
            }
        })
    }

    /// Answers the first request on each connection with `response`, then closes.
    pub fn once(accepts: usize, response: &'static [u8]) -> Raw {
        Raw::start(accepts, move |mut stream, heads| {
            let head = read_head(&mut stream);
            heads.lock().unwrap().push(head);
            stream.write_all(response).ok();
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

/// Copies both ways between two sockets until either side closes.
pub fn splice(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    let t = std::thread::spawn(move || {
        std::io::copy(&mut a2, &mut b2).ok();
        b2.shutdown(std::net::Shutdown::Write).ok();
    });
    std::io::copy(&mut b, &mut a).ok();
    a.shutdown(std::net::Shutdown::Write).ok();
    t.join().ok();
}
