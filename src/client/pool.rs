//! The keep-alive pool shared by all clones of a [`Client`](crate::Client).
//!
//! Idle connections are kept per [`PoolKey`] (scheme, host, port and the proxy route),
//! newest first out (so rarely used connections age out), bounded per key and in total,
//! and dropped after an idle timeout. The lock is held only to push or pop, never
//! across I/O.
//!
//! HTTP/2 connections are not checked out: each is shared by every request to its
//! destination until it reaches the server's concurrency limit, and another is opened
//! only then. While one thread connects to a destination that may speak HTTP/2, the
//! others wait for that connection rather than each opening their own.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::conn::http2;
use super::conn::SendRequest;
use super::stream::Timed;

/// Where a pooled connection leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) scheme: &'static str,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The proxy route (`"http://proxy:port"` or `"connect://proxy:port"`), if any.
    pub(crate) route: Option<String>,
}

impl PoolKey {
    fn matches(&self, scheme: &str, host: &str, port: u16, route: Option<&str>) -> bool {
        self.port == port
            && self.scheme == scheme
            && self.host == host
            && self.route.as_deref() == route
    }
}

/// A live HTTP/1.1 connection, checked out for one exchange at a time.
pub(crate) enum Conn {
    H1(SendRequest<Timed>),
}

pub(crate) struct Pooled {
    pub(crate) key: Arc<PoolKey>,
    pub(crate) conn: Conn,
}

struct Idle {
    pooled: Pooled,
    since: Instant,
}

/// A shared HTTP/2 connection.
struct Shared2 {
    key: Arc<PoolKey>,
    sender: http2::SendRequest,
    last_used: Instant,
}

#[derive(Default)]
struct H2Pool {
    conns: Vec<Shared2>,
    /// Destinations a thread is connecting to now, for HTTP/2 (perhaps).
    connecting: Vec<Arc<PoolKey>>,
    /// Destinations whose TLS servers chose HTTP/1.1 though h2 was offered: requests to
    /// them do not wait for each other's connections.
    h1_only: Vec<Arc<PoolKey>>,
}

pub(crate) struct Pool {
    h2: Mutex<H2Pool>,
    h2_cv: Condvar,
    idle: Mutex<Vec<(Arc<PoolKey>, Vec<Idle>)>>,
    total: AtomicU64,
    max_idle_per_host: usize,
    max_idle: usize,
    idle_timeout: Option<Duration>,
}

impl Pool {
    pub(crate) fn new(
        max_idle_per_host: usize,
        max_idle: usize,
        idle_timeout: Option<Duration>,
    ) -> Pool {
        Pool {
            h2: Mutex::new(H2Pool::default()),
            h2_cv: Condvar::new(),
            idle: Mutex::new(Vec::new()),
            total: AtomicU64::new(0),
            max_idle_per_host,
            max_idle,
            idle_timeout,
        }
    }

    /// An idle connection to the destination that the peer has not closed, if any.
    pub(crate) fn take(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        route: Option<&str>,
    ) -> Option<Pooled> {
        if self.total.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = Instant::now();
        loop {
            let mut expired = Vec::new();
            let found = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let entry = idle
                    .iter_mut()
                    .find(|(k, _)| k.matches(scheme, host, port, route))?;
                let mut found = None;
                while let Some(c) = entry.1.pop() {
                    self.total.fetch_sub(1, Ordering::Relaxed);
                    match self.idle_timeout {
                        Some(t) if now.duration_since(c.since) >= t => expired.push(c),
                        _ => {
                            found = Some(c);
                            break;
                        }
                    }
                }
                found
            };
            drop(expired); // closing sockets outside the lock
            let c = found?;
            let Conn::H1(sender) = &c.pooled.conn;
            if sender.io().inner().peer_closed() {
                log::debug!("pooled connection to {host}:{port} was closed by the peer");
                continue;
            }
            return Some(c.pooled);
        }
    }

    /// Keeps `pooled` for reuse, unless the pool is full.
    pub(crate) fn put(&self, pooled: Pooled) {
        if self.max_idle_per_host == 0 || self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut evicted = None;
        {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if self.total.load(Ordering::Relaxed) as usize >= self.max_idle {
                // Full: drop the oldest idle connection of the fullest host.
                if let Some((_, list)) = idle.iter_mut().max_by_key(|(_, l)| l.len()) {
                    if !list.is_empty() {
                        evicted = Some(list.remove(0));
                        self.total.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            let pos = match idle
                .iter()
                .position(|(k, _)| Arc::ptr_eq(k, &pooled.key) || **k == *pooled.key)
            {
                Some(pos) => pos,
                None => {
                    idle.push((pooled.key.clone(), Vec::new()));
                    idle.len() - 1
                }
            };
            let list = &mut idle[pos].1;
            if list.len() >= self.max_idle_per_host {
                evicted = Some(list.remove(0));
                self.total.fetch_sub(1, Ordering::Relaxed);
            }
            list.push(Idle { pooled, since: now });
            self.total.fetch_add(1, Ordering::Relaxed);
            idle.retain(|(_, l)| !l.is_empty());
        }
        drop(evicted);
    }

    /// How many idle connections are kept now (HTTP/2 connections without a request in
    /// flight included).
    pub(crate) fn idle_count(&self) -> usize {
        let h2 = self
            .lock_h2()
            .conns
            .iter()
            .filter(|c| c.sender.active_streams() == 0 && !c.sender.is_closed())
            .count();
        self.total.load(Ordering::Relaxed) as usize + h2
    }

    /// Drops every idle connection, and the pool's hold on HTTP/2 connections (those
    /// with requests in flight close when their last response is finished).
    pub(crate) fn clear(&self) {
        let all = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            self.total.store(0, Ordering::Relaxed);
            std::mem::take(&mut *idle)
        };
        drop(all);
        let h2 = std::mem::take(&mut self.lock_h2().conns);
        drop(h2);
    }

    fn lock_h2(&self) -> MutexGuard<'_, H2Pool> {
        self.h2.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a fresh connection to this TLS destination may turn out to be HTTP/2.
    pub(crate) fn may_be_h2(&self, key: &PoolKey) -> bool {
        !self.lock_h2().h1_only.iter().any(|k| **k == *key)
    }

    /// Remembers that this destination chose HTTP/1.1 through ALPN.
    pub(crate) fn mark_h1_only(&self, key: &Arc<PoolKey>) {
        let mut h2 = self.lock_h2();
        if !h2.h1_only.iter().any(|k| **k == **key) {
            if h2.h1_only.len() >= 1024 {
                h2.h1_only.remove(0);
            }
            h2.h1_only.push(key.clone());
        }
    }

    /// A shared HTTP/2 connection to `key` that can take another stream now; else,
    /// after waiting (until `deadline`) for a connection another thread is opening, the
    /// right to open one: the destination is marked as being connected to, in the same
    /// critical section, so that two threads never both decide to connect.
    pub(crate) fn h2_checkout(
        self: &Arc<Self>,
        key: &Arc<PoolKey>,
        deadline: Option<Instant>,
    ) -> H2Checkout {
        match self.h2_get(key, deadline, true) {
            Some(sender) => H2Checkout::Use(sender),
            None => H2Checkout::Connect(Connecting {
                pool: self.clone(),
                key: key.clone(),
            }),
        }
    }

    fn h2_get(
        &self,
        key: &Arc<PoolKey>,
        deadline: Option<Instant>,
        mark: bool,
    ) -> Option<http2::SendRequest> {
        let mut dead = Vec::new();
        let mut h2 = self.lock_h2();
        let found = loop {
            let now = Instant::now();
            let mut found = None;
            let mut i = 0;
            while i < h2.conns.len() {
                let c = &h2.conns[i];
                let idle_expired = self.idle_timeout.is_some_and(|t| {
                    now.duration_since(c.last_used) >= t && c.sender.active_streams() == 0
                });
                if c.sender.is_closed() || idle_expired {
                    dead.push(h2.conns.swap_remove(i));
                    continue;
                }
                if found.is_none() && *c.key == **key && c.sender.is_ready() {
                    found = Some(i);
                }
                i += 1;
            }
            if let Some(i) = found {
                h2.conns[i].last_used = now;
                break Some(h2.conns[i].sender.clone());
            }
            if !h2.connecting.iter().any(|k| **k == **key) {
                if mark {
                    h2.connecting.push(key.clone());
                }
                break None;
            }
            h2 = match deadline {
                None => self.h2_cv.wait(h2).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(now);
                    if left.is_zero() {
                        // Out of time waiting: connect (the connect fails on the deadline).
                        if mark {
                            h2.connecting.push(key.clone());
                        }
                        break None;
                    }
                    self.h2_cv
                        .wait_timeout(h2, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        };
        drop(h2);
        drop(dead); // closing connections outside the lock
        found
    }

    /// Marks `key` as being connected to, until the guard is dropped.
    pub(crate) fn h2_connecting(self: &Arc<Self>, key: Arc<PoolKey>) -> Connecting {
        self.lock_h2().connecting.push(key.clone());
        Connecting {
            pool: self.clone(),
            key,
        }
    }

    /// Shares a new HTTP/2 connection (unless pooling is off: it then serves the one
    /// request and closes).
    pub(crate) fn h2_insert(&self, key: Arc<PoolKey>, sender: http2::SendRequest) {
        if self.max_idle_per_host == 0 || self.max_idle == 0 {
            return;
        }
        self.lock_h2().conns.push(Shared2 {
            key,
            sender,
            last_used: Instant::now(),
        });
        self.h2_cv.notify_all();
    }
}

/// What [`Pool::h2_checkout`] found.
pub(crate) enum H2Checkout {
    /// A shared connection with room for a stream.
    Use(http2::SendRequest),
    /// None: this thread connects (others wait for it until the guard is dropped).
    Connect(Connecting),
}

/// A destination being connected to; waiters for its HTTP/2 connection wake when this
/// is dropped.
pub(crate) struct Connecting {
    pool: Arc<Pool>,
    key: Arc<PoolKey>,
}

impl Drop for Connecting {
    fn drop(&mut self) {
        let mut h2 = self.pool.lock_h2();
        if let Some(i) = h2.connecting.iter().position(|k| Arc::ptr_eq(k, &self.key)) {
            h2.connecting.swap_remove(i);
        }
        drop(h2);
        self.pool.h2_cv.notify_all();
    }
}
