//! The few operating-system calls the engine needs, wrapped safely: epoll in
//! edge-triggered mode, an eventfd to wake a waiting loop, and poll(2) on one socket.
//!
//! Raw epoll rather than a portable poller crate: `polling` re-arms its notifier (and a
//! timerfd when a timeout is given) with `epoll_ctl` after every wait, two or three
//! extra system calls per wakeup, which is a measurable share of the ~6 µs a request
//! costs at 140k requests/s. Edge-triggered registration here costs one `epoll_ctl`
//! per connection, not per request.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An epoll instance with an eventfd registered for wakeups.
pub(crate) struct Epoll {
    epfd: OwnedFd,
    wake: OwnedFd,
}

/// The token the wakeup eventfd is registered under.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 and eventfd take no pointers; on success each returns a
        // new descriptor that nothing else owns, so wrapping it in OwnedFd is sound.
        let epfd =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let wake = unsafe {
            OwnedFd::from_raw_fd(check(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let ep = Epoll { epfd, wake };
        ep.add(ep.wake.as_raw_fd(), WAKE_TOKEN)?;
        Ok(ep)
    }

    /// Registers `fd` for readability, edge-triggered, under `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; epoll keeps
        // no pointer to it. A stale fd only makes the call fail.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Adds writability to a registered connection's events (edge-triggered), for
    /// HTTP/2 connections, whose output the loop writes without blocking.
    pub fn watch_writable(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: as in `add`.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) })?;
        Ok(())
    }

    /// Registers a listening socket: level-triggered and, where several loops share the
    /// listener, exclusive, so one new connection wakes one loop.
    pub fn add_listener(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
            u64: token,
        };
        // SAFETY: as in `add`.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Removes `fd` from the interest list.
    pub fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; failure (fd already closed) is harmless.
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Waits for events, at most `timeout`; fills `out` with their tokens.
    pub fn wait(
        &self,
        events: &mut [libc::epoll_event],
        out: &mut Vec<u64>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_millis().min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `events` is a valid, writable buffer of `events.len()` entries, and the
        // kernel writes at most that many.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ms,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(err);
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == WAKE_TOKEN {
                self.clear_wake();
            } else {
                out.push(token);
            }
        }
        Ok(())
    }

    /// Wakes the thread waiting in [`wait`](Epoll::wait), or the next one.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn clear_wake(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from an eventfd we own (non-blocking).
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Which readiness [`wait_fd`] waits for.
#[derive(Clone, Copy)]
pub(crate) enum Readiness {
    Read,
    Write,
}

/// Blocks until `fd` is ready or `timeout` passes (`None`: forever). Returns false on
/// timeout.
pub(crate) fn wait_fd(
    fd: RawFd,
    readiness: Readiness,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let events = match readiness {
        Readiness::Read => libc::POLLIN | libc::POLLRDHUP,
        Readiness::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = match timeout {
        None => -1,
        Some(t) => t.as_millis().clamp(1, i32::MAX as u128) as libc::c_int,
    };
    loop {
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(n > 0);
    }
}

/// Shuts a socket down in both directions by descriptor (used to cut connections whose
/// owner is busy in a handler, at a shutdown deadline).
pub(crate) fn shutdown_fd(fd: RawFd) {
    // SAFETY: shutdown takes no pointers; on a stale descriptor it fails harmlessly. The
    // engine only calls it on descriptors of connections it still owns.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// One `recv(2)` on `fd` (no flags): what a TLS session reads through, on a descriptor
/// owned by the [`Socket`](super::socket::Socket) the session lives in.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid and writable for `buf.len()` bytes; the kernel writes at
    // most that many. A stale descriptor only makes the call fail.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `send(2)` on `fd` with `MSG_NOSIGNAL` (a closed peer is an error, not SIGPIPE).
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the
    // call. A stale descriptor only makes the call fail.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
