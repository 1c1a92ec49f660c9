//! The acceptor thread and the worker threads that serve connections.
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};

use crate::server::h1conn::{self, ConnBuffers};
use crate::server::{config::Config, Handler};

/// State shared by the acceptor, the workers and the [`crate::server::Listening`] handle.
pub(crate) struct Shared {
    pub stopping: AtomicBool,
    /// The connection each worker is serving, so `close` can cut them.
    slots: Vec<Mutex<Option<TcpStream>>>,
    pub served_requests: AtomicU64,
    done: Mutex<bool>,
    done_cv: Condvar,
}

pub(crate) struct Pool {
    pub shared: Arc<Shared>,
    pub local_addr: SocketAddr,
    threads: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl Pool {
    pub fn start<H: Handler>(
        listener: TcpListener,
        handler: H,
        config: Config,
        workers: usize,
    ) -> std::io::Result<Pool> {
        let workers = workers.max(1);
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            slots: (0..workers).map(|_| Mutex::new(None)).collect(),
            served_requests: AtomicU64::new(0),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        });
        let handler = Arc::new(handler);
        let config = Arc::new(config);
        // A short queue: when every worker is busy, accepting stops and the kernel's
        // backlog holds further clients (back-pressure, not unbounded memory).
        let (tx, rx) = bounded::<(TcpStream, SocketAddr)>(workers.max(16));
        let mut threads = Vec::with_capacity(workers + 1);
        for index in 0..workers {
            let rx = rx.clone();
            let shared = shared.clone();
            let handler = handler.clone();
            let config = config.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("spindle-worker-{index}"))
                    .spawn(move || worker(index, rx, &*handler, &config, &shared))?,
            );
        }
        let acceptor_shared = shared.clone();
        threads.push(
            thread::Builder::new()
                .name("spindle-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if acceptor_shared.stopping.load(Ordering::Acquire) {
                            break;
                        }
                        match conn {
                            Ok(stream) => {
                                let peer = match stream.peer_addr() {
                                    Ok(peer) => peer,
                                    Err(_) => continue,
                                };
                                let _ = stream.set_nodelay(true);
                                log::trace!("accepted {peer}");
                                if tx.send((stream, peer)).is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                // Out of file descriptors and the like: back off rather
                                // than spin, and keep serving what is open.
                                log::warn!("accept failed: {e}");
                                thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    log::debug!("acceptor stopped");
                })?,
        );
        Ok(Pool {
            shared,
            local_addr,
            threads: Mutex::new(Some(threads)),
        })
    }

    /// Stops accepting, cuts open connections, and waits for every thread to end.
    pub fn close(&self) {
        let threads = match self.threads.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(threads) = threads else {
            self.wait();
            return;
        };
        self.shared.stopping.store(true, Ordering::Release);
        // Wake the acceptor out of accept(2) with a connection of our own.
        let wake_addr = match self.local_addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            addr => addr,
        };
        let _ = TcpStream::connect_timeout(&wake_addr, Duration::from_secs(1));
        for slot in &self.shared.slots {
            let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(stream) = guard.as_ref() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        for thread in threads {
            let _ = thread.join();
        }
        let mut done = self.shared.done.lock().unwrap_or_else(|p| p.into_inner());
        *done = true;
        self.shared.done_cv.notify_all();
    }

    /// Blocks until [`close`](Pool::close) has finished.
    pub fn wait(&self) {
        let mut done = self.shared.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = self
                .shared
                .done_cv
                .wait(done)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn worker<H: Handler>(
    index: usize,
    rx: Receiver<(TcpStream, SocketAddr)>,
    handler: &H,
    config: &Config,
    shared: &Shared,
) {
    let mut buffers = ConnBuffers::default();
    for (stream, peer) in rx.iter() {
        if shared.stopping.load(Ordering::Acquire) {
            continue;
        }
        let slot = &shared.slots[index];
        if let Ok(clone) = stream.try_clone() {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(clone);
        }
        // close() may have swept the slots just before this one was filled.
        if shared.stopping.load(Ordering::Acquire) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let (fate, served) = h1conn::serve(
            &stream,
            Some(peer),
            handler,
            config,
            &mut buffers,
            &shared.stopping,
        );
        shared.served_requests.fetch_add(served, Ordering::Relaxed);
        log::debug!("connection from {peer} ended after {served} requests: {fate:?}");
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
