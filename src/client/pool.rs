//! The keep-alive pool shared by all clones of a [`Client`](crate::Client).
//!
//! Idle connections are kept per [`PoolKey`] (scheme, host, port and the proxy route),
//! newest first out (so rarely used connections age out), bounded per key and in total,
//! and dropped after an idle timeout. The lock is held only to push or pop, never
//! across I/O.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A live connection. HTTP/2 connections (shared by many requests at once) will be a
/// second variant.
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

pub(crate) struct Pool {
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

    /// How many idle connections are kept now.
    pub(crate) fn idle_count(&self) -> usize {
        self.total.load(Ordering::Relaxed) as usize
    }

    /// Drops every idle connection.
    pub(crate) fn clear(&self) {
        let all = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            self.total.store(0, Ordering::Relaxed);
            std::mem::take(&mut *idle)
        };
        drop(all);
    }
}
