//! Readiness: one interface, two implementations.
//!
//! An event loop asks its [`Poller`] which of its sockets became readable (or writable)
//! and sleeps in [`Poller::wait`] until one does, a timer is due, or another thread
//! calls [`Poller::wake`]. Notifications are **edge-triggered** on both backends: a
//! socket is reported when it becomes ready, and again only after an operation on it
//! returned `WouldBlock`. Code that stops reading a socket before `WouldBlock` must look
//! at it again by itself (the loop's ready queue), never wait for a new event.
//!
//! | backend | where | why |
//! |---|---|---|
//! | [`epoll`] | Linux (default) | raw edge-triggered epoll and an eventfd: one `epoll_ctl` per connection, not per request; the listener level-triggered with `EPOLLEXCLUSIVE`, so one new connection wakes one loop |
//! | [`mio`](self::mio) | macOS and the BSDs (kqueue), Windows (IOCP/AFD), Linux with the `poll-mio` feature (epoll through mio) | portability; on Linux it lets CI run the whole test suite on the code path other systems use |
//!
//! A thread that must wait for one socket (a handler blocked in a body read or a
//! response write) does not poll that socket itself: the loop that owns the connection
//! forwards the connection's readiness to a per-connection [`Parker`](crate::runtime::parker::Parker),
//! as Go's netpoller wakes a parked goroutine. That works on every backend, including
//! Windows, which has no poll(2) for one socket and where a registered socket reports
//! readiness only to its poller.
use std::io;

#[cfg(all(target_os = "linux", not(feature = "poll-mio")))]
mod epoll;
#[cfg(any(not(target_os = "linux"), feature = "poll-mio"))]
mod mio;

#[cfg(any(not(target_os = "linux"), feature = "poll-mio"))]
use self::mio as backend;
#[cfg(all(target_os = "linux", not(feature = "poll-mio")))]
use epoll as backend;

/// The name of the readiness backend compiled in (`"epoll"` or `"mio"`), for logs and
/// test output.
pub(crate) const BACKEND: &str = backend::NAME;

/// Identifies a registered socket in the events [`Poller::wait`] returns: a connection's
/// slot index, or [`LISTENER_TOKEN`].
pub(crate) type Token = usize;

/// The token the listening socket is registered under.
pub(crate) const LISTENER_TOKEN: Token = usize::MAX - 1;

/// The token the backend's own wakeup is registered under (never returned).
const WAKE_TOKEN: Token = usize::MAX;

/// The sockets a poller watches, as the backend needs them: raw descriptors on Unix;
/// on Windows the mio socket objects, whose operations re-arm their registration.
pub(crate) use backend::{Events, Poller};

/// A buffer for the events of one [`Poller::wait`], with room for `capacity` of them.
pub(crate) fn events(capacity: usize) -> Events {
    Events::with_capacity(capacity)
}

/// Retries a wait interrupted by a signal as an empty wait (the loop looks at its timers
/// and comes back), and passes other errors on.
fn interrupted_is_empty(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// A socket that becomes readable is reported once under its token; without a new
    /// `WouldBlock` it is not reported again (edge-triggered), and `wake` ends a wait.
    #[test]
    fn readiness_is_edge_triggered_and_wake_ends_a_wait() {
        let poller = Poller::new().unwrap();
        let (mut client, server) = pair();
        let mut server = crate::runtime::socket::Stream::Tcp(server);
        poller.add(&mut server, 7).unwrap();
        let mut events = events(16);
        let mut tokens = Vec::new();
        client.write_all(b"x").unwrap();
        let t = Instant::now();
        while tokens.is_empty() && t.elapsed() < Duration::from_secs(5) {
            poller
                .wait(&mut events, &mut tokens, Some(Duration::from_millis(100)))
                .unwrap();
        }
        assert_eq!(tokens, vec![7]);
        tokens.clear();
        poller
            .wait(&mut events, &mut tokens, Some(Duration::from_millis(50)))
            .unwrap();
        assert!(
            tokens.is_empty(),
            "reported again without a WouldBlock: {tokens:?}"
        );
        poller.wake();
        let t = Instant::now();
        poller
            .wait(&mut events, &mut tokens, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "wake did not end the wait"
        );
        assert!(
            tokens.is_empty(),
            "the wakeup is not a socket event: {tokens:?}"
        );
        poller.delete(&mut server);
    }

    /// Writability is reported once asked for.
    #[test]
    fn writability_is_reported_when_watched() {
        let poller = Poller::new().unwrap();
        let (_client, server) = pair();
        let mut server = crate::runtime::socket::Stream::Tcp(server);
        poller.add(&mut server, 3).unwrap();
        poller.watch_writable(&server, 3).unwrap();
        let mut events = events(16);
        let mut tokens = Vec::new();
        let t = Instant::now();
        while tokens.is_empty() && t.elapsed() < Duration::from_secs(5) {
            poller
                .wait(&mut events, &mut tokens, Some(Duration::from_millis(100)))
                .unwrap();
        }
        assert_eq!(tokens, vec![3]);
    }
}
