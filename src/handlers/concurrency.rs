//! The concurrency-limit layer.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::StatusCode;

use super::Layer;
use crate::server::{Handler, Request, Response};

/// Makes [`ConcurrencyLimit`] handlers: at most `max` requests at a time go through
/// the inner handler. A request beyond that waits up to `wait` for a slot (the
/// blocking form of tower's `poll_ready` back-pressure), then gets
/// `503 Service Unavailable` with `Retry-After`.
///
/// Every handler the layer makes shares the one set of slots, so the same layer can
/// guard several routes together; make one layer per independent limit.
///
/// ```
/// use std::time::Duration;
/// use spindle::handlers::{ConcurrencyLimitLayer, HandlerExt};
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, res: Response| { res.send(b"slow work done").ok(); })
///     .with(ConcurrencyLimitLayer::new(8).wait(Duration::from_millis(100)).retry_after(2));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    slots: Arc<Slots>,
    wait: Duration,
    retry_after: u32,
}

impl ConcurrencyLimitLayer {
    /// At most `max` requests in flight (at least 1); by default a request waits up to
    /// 1 s for a slot and a refusal says `Retry-After: 1`.
    pub fn new(max: usize) -> Self {
        ConcurrencyLimitLayer {
            slots: Arc::new(Slots::new(max.max(1))),
            wait: Duration::from_secs(1),
            retry_after: 1,
        }
    }

    /// How long a request may wait for a slot (zero: refuse at once).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The seconds a refusal asks the client to wait before retrying.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Requests in flight through the handlers of this layer right now.
    pub fn in_flight(&self) -> usize {
        self.slots.used.load(Ordering::SeqCst)
    }
}

impl<H: Handler> Layer<H> for ConcurrencyLimitLayer {
    type Handler = ConcurrencyLimit<H>;
    fn layer(&self, inner: H) -> ConcurrencyLimit<H> {
        ConcurrencyLimit {
            inner,
            slots: self.slots.clone(),
            wait: self.wait,
            retry_after: HeaderValue::from(self.retry_after),
        }
    }
}

/// A handler that lets a bounded number of requests through at a time; made by
/// [`ConcurrencyLimitLayer`].
#[derive(Debug)]
pub struct ConcurrencyLimit<H> {
    inner: H,
    slots: Arc<Slots>,
    wait: Duration,
    retry_after: HeaderValue,
}

impl<H: Handler> ConcurrencyLimit<H> {
    /// Wraps `inner`, with the defaults of [`ConcurrencyLimitLayer::new`].
    pub fn new(inner: H, max: usize) -> Self {
        ConcurrencyLimitLayer::new(max).layer(inner)
    }
}

impl<H: Handler> Handler for ConcurrencyLimit<H> {
    fn handle(&self, req: Request<'_>, mut res: Response<'_>) {
        let Some(_permit) = self.slots.acquire(self.wait) else {
            log::debug!(
                "concurrency limit reached; refusing {} {}",
                req.method(),
                req.uri()
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, self.retry_after.clone());
            return super::plain(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                "503 service unavailable: too busy, retry later\n",
            );
        };
        self.inner.handle(req, res);
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        self.inner.check_continue(req)
    }
}

/// A counting semaphore: a lock-free fast path, a condition variable for waiters.
#[derive(Debug)]
struct Slots {
    max: usize,
    used: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

struct Permit<'s>(&'s Slots);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
        if self.0.waiters.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this notify after a waiter's last check.
            let _guard = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.0.freed.notify_one();
        }
    }
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            max,
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    fn try_acquire(&self) -> bool {
        let mut used = self.used.load(Ordering::SeqCst);
        while used < self.max {
            match self.used.compare_exchange_weak(
                used,
                used + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
        false
    }

    fn acquire(&self, wait: Duration) -> Option<Permit<'_>> {
        if self.try_acquire() {
            return Some(Permit(self));
        }
        if wait.is_zero() {
            return None;
        }
        let deadline = Instant::now() + wait;
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let got = loop {
            if self.try_acquire() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            guard = match self.freed.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        got.then(|| Permit(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_then_gives_up() {
        let slots = Slots::new(1);
        let first = slots.acquire(Duration::ZERO).unwrap();
        let t = Instant::now();
        assert!(slots.acquire(Duration::from_millis(50)).is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(first);
        assert!(slots.acquire(Duration::ZERO).is_some());
    }

    #[test]
    fn a_released_slot_wakes_a_waiter() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.acquire(Duration::ZERO).map(std::mem::forget);
        assert!(held.is_some());
        let s2 = slots.clone();
        let waiter = std::thread::spawn(move || s2.acquire(Duration::from_secs(10)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        drop(Permit(&slots));
        assert!(waiter.join().unwrap());
    }
}
