//! Where a thread waits for its connection's socket: the event loop forwards the
//! connection's readiness here, as Go's netpoller wakes a parked goroutine.
//!
//! A handler blocked in a body read or a response write does not poll the socket
//! itself (Windows has no poll(2) for one socket, and there a registered socket reports
//! readiness to its poller alone). Instead:
//!
//! ```text
//!   handler thread                          event loop (or the watchdog, for a loop
//!                                           no thread runs: see runtime::engine)
//!   seen = parker.seen()
//!   read/write → WouldBlock
//!   parker.wait_past(seen, deadline) ──┐    event for a Busy slot
//!        (sleeps)                       └─── parker.notify(): count += 1, wake
//!   count != seen → try again
//! ```
//!
//! The count is read **before** the operation that returned `WouldBlock`: readiness is
//! edge-triggered, and an edge that comes between the operation and the wait has
//! already moved the count, so it is never lost.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One connection's readiness count and the threads waiting on it.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    /// Readiness events forwarded so far.
    count: AtomicU64,
    /// Threads in [`wait_past`](Parker::wait_past): `notify` takes the lock only then.
    waiters: AtomicUsize,
    /// Writability is among the socket's registered interests (the blocking writer
    /// asks for it once; see `Socket::wait`).
    write_watched: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Parker {
    pub fn new() -> Parker {
        Parker::default()
    }

    /// The count to pass to [`wait_past`](Parker::wait_past), read before trying the
    /// operation that may return `WouldBlock`.
    pub fn seen(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// True if some thread waits.
    #[cfg(test)]
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Records readiness and wakes the waiting threads.
    pub fn notify(&self) {
        // SeqCst on both sides (count then waiters here, waiters then count in
        // `wait_past`): either the waiter sees the new count, or we see the waiter.
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.lock);
            self.changed.notify_all();
        }
    }

    /// Waits until readiness arrives after `seen` or `deadline` passes (`None`: no
    /// deadline). True when it arrived.
    pub fn wait_past(&self, seen: u64, deadline: Option<Instant>) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.lock);
        let arrived = loop {
            if self.count.load(Ordering::SeqCst) != seen {
                break true;
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break false,
                },
                // Looked at again now and then: a lost notification costs a second.
                None => Duration::from_secs(1),
            };
            guard = match self.changed.wait_timeout(guard, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        arrived
    }

    /// Marks writability as watched; true the first time (the caller registers it).
    pub fn watch_writable_once(&self) -> bool {
        !self.write_watched.swap(true, Ordering::AcqRel)
    }

    /// After a failed registration: the next writer tries again.
    pub fn unwatch_writable(&self) {
        self.write_watched.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readiness_before_the_wait_is_not_lost() {
        let p = Parker::new();
        let seen = p.seen();
        p.notify();
        assert!(p.wait_past(seen, Some(Instant::now())));
    }

    #[test]
    fn a_wait_ends_at_its_deadline_without_readiness() {
        let p = Parker::new();
        let t = Instant::now();
        assert!(!p.wait_past(p.seen(), Some(t + Duration::from_millis(30))));
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn notify_wakes_a_waiting_thread() {
        let p = Arc::new(Parker::new());
        let seen = p.seen();
        let q = p.clone();
        let waiter = std::thread::spawn(move || {
            q.wait_past(seen, Some(Instant::now() + Duration::from_secs(10)))
        });
        while !p.has_waiters() {
            std::thread::yield_now();
        }
        let t = Instant::now();
        p.notify();
        assert!(waiter.join().unwrap());
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn writability_is_registered_once() {
        let p = Parker::new();
        assert!(p.watch_writable_once());
        assert!(!p.watch_writable_once());
        p.unwatch_writable();
        assert!(p.watch_writable_once());
    }
}
