//! The few Unix calls outside the pollers, wrapped safely: poll(2) on one socket (for
//! upgraded TLS streams, which have left the engine) and `recv`/`send` for TLS sessions
//! on a descriptor they do not own.
use std::io;
use std::os::fd::RawFd;

pub(crate) use super::socket::Readiness;
use std::time::Duration;

/// Blocks until `fd` is ready or `timeout` passes (`None`: forever). Returns false on
/// timeout.
pub(crate) fn wait_fd(
    fd: RawFd,
    readiness: Readiness,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let events = match readiness {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Readiness::Read => libc::POLLIN | libc::POLLRDHUP,
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Readiness::Read => libc::POLLIN,
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
