//! The portable backend, on mio: kqueue on macOS and the BSDs, IOCP/AFD on Windows, epoll
//! on Linux (with the `poll-mio` feature).
//!
//! mio's `Poll::poll` takes `&mut self`, so the poll sits behind a mutex that only the
//! loop's owner takes; registration goes through a cloned `Registry`, which any thread
//! may use. Every connection is registered for writability from the start (mio is
//! edge-triggered, so that costs one event when the connection opens, not one per
//! write), which spares a re-registration that Windows could only do with the socket
//! object in hand.
//!
//! On Unix mio registers raw descriptors (`SourceFd`). On Windows readiness belongs to
//! the socket object: a registered socket is re-armed only by an operation through it
//! that returned `WouldBlock`. So there connections are `mio::net::TcpStream`s (see
//! [`Stream`]) and each loop accepts through its own `mio::net::TcpListener`, a
//! duplicate of the server's listener registered with this poller alone.
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ::mio::{Events as MioEvents, Interest as MioInterest, Poll, Registry, Token as MioToken};

use super::{interrupted_is_empty, Token, WAKE_TOKEN};
use crate::runtime::listener::Listener;
use crate::runtime::socket::Stream;

pub(super) const NAME: &str = "mio";

/// A mio poll, its registry and waker.
pub(crate) struct Poller {
    poll: Mutex<Poll>,
    registry: Registry,
    waker: ::mio::Waker,
    /// This loop's own duplicate of the listener (Windows: see the module docs).
    #[cfg(windows)]
    listener: Mutex<Option<::mio::net::TcpListener>>,
}

/// mio's event records for one wait.
pub(crate) struct Events(MioEvents);

impl Events {
    pub(super) fn with_capacity(n: usize) -> Events {
        Events(MioEvents::with_capacity(n.max(1)))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = ::mio::Waker::new(poll.registry(), MioToken(WAKE_TOKEN))?;
        Ok(Poller {
            poll: Mutex::new(poll),
            registry,
            waker,
            #[cfg(windows)]
            listener: Mutex::new(None),
        })
    }

    /// Registers a connection under `token`, for readability and (see the module
    /// docs) writability.
    pub fn add(&self, stream: &mut Stream, token: Token) -> io::Result<()> {
        let interest = MioInterest::READABLE | MioInterest::WRITABLE;
        stream.with_source(|source| self.registry.register(source, MioToken(token), interest))
    }

    /// Writability is watched from the start (see the module docs): nothing to do.
    pub fn watch_writable(&self, _stream: &Stream, _token: Token) -> io::Result<()> {
        Ok(())
    }

    /// Stops watching a connection.
    pub fn delete(&self, stream: &mut Stream) {
        let _ = stream.with_source(|source| self.registry.deregister(source));
    }

    /// Registers the listening socket.
    #[cfg(unix)]
    pub fn add_listener(&self, listener: &Listener, token: Token) -> io::Result<()> {
        let fd = listener.raw_fd();
        let mut source = ::mio::unix::SourceFd(&fd);
        self.registry
            .register(&mut source, MioToken(token), MioInterest::READABLE)
    }

    /// Stops watching the listener.
    #[cfg(unix)]
    pub fn delete_listener(&self, listener: &Listener) {
        let fd = listener.raw_fd();
        let _ = self.registry.deregister(&mut ::mio::unix::SourceFd(&fd));
    }

    /// Accepts a connection: through the server's listener on Unix.
    #[cfg(unix)]
    pub fn accept(
        &self,
        listener: &Listener,
    ) -> io::Result<(Stream, Option<std::net::SocketAddr>)> {
        listener.accept()
    }

    /// Registers this loop's own duplicate of the listening socket.
    #[cfg(windows)]
    pub fn add_listener(&self, listener: &Listener, token: Token) -> io::Result<()> {
        let mut own = lock(&self.listener);
        if own.is_none() {
            *own = Some(::mio::net::TcpListener::from_std(listener.try_clone_tcp()?));
        }
        let Some(l) = own.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        self.registry
            .register(l, MioToken(token), MioInterest::READABLE)
    }

    /// Stops watching (and closes) this loop's duplicate of the listener.
    #[cfg(windows)]
    pub fn delete_listener(&self, _listener: &Listener) {
        if let Some(mut l) = lock(&self.listener).take() {
            let _ = self.registry.deregister(&mut l);
        }
    }

    /// Accepts a connection through this loop's duplicate of the listener, so that its
    /// registration is re-armed when it runs dry.
    #[cfg(windows)]
    pub fn accept(
        &self,
        _listener: &Listener,
    ) -> io::Result<(Stream, Option<std::net::SocketAddr>)> {
        match lock(&self.listener).as_ref() {
            Some(l) => l.accept().map(|(s, peer)| (Stream::Tcp(s), Some(peer))),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Waits for events, at most `timeout`; appends their tokens to `out`.
    pub fn wait(
        &self,
        events: &mut Events,
        out: &mut Vec<Token>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let mut poll = lock(&self.poll);
        interrupted_is_empty(poll.poll(&mut events.0, timeout))?;
        for ev in events.0.iter() {
            let MioToken(token) = ev.token();
            if token != WAKE_TOKEN {
                out.push(token);
            }
        }
        Ok(())
    }

    /// Wakes the thread waiting in [`wait`](Poller::wait), or the next one.
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::error!("waking an event loop failed: {e}");
        }
    }
}
