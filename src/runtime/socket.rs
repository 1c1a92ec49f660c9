//! Connected sockets owned by the engine: non-blocking underneath, blocking for the
//! handler on top. A read or write that would block first hands the calling thread's
//! event loop to a spare thread (so other connections keep being served), then waits on
//! this one socket with poll(2).
//!
//! A socket may carry TLS (see [`Socket::start_tls`]): the engine then drives the
//! handshake without blocking, and reads and writes go through the TLS session, which
//! sits inside the socket and reads the socket's own descriptor.
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::engine::release_loop_before_blocking;
use super::sys::{self, wait_fd, Readiness};
use super::transport::Transport;
use crate::server::UpgradedStream;
use crate::tls::{Acceptor, HandshakeStatus, Interest, SharedServerStream};

/// A stream accepted from a TCP or Unix listener.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)
            }
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Writes a short, complete answer on a socket that was never handed to the engine
    /// (still blocking), then closes it.
    pub fn answer_and_close(self, bytes: &[u8]) {
        let limit = Some(Duration::from_millis(100));
        let _ = match &self {
            Stream::Tcp(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
            Stream::Unix(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
        };
        let _ = match &self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
}

const NO_TIMEOUT: u64 = u64::MAX;

fn encode(timeout: Option<Duration>) -> u64 {
    timeout.filter(|d| !d.is_zero()).map_or(NO_TIMEOUT, |d| {
        d.as_nanos().min(u128::from(NO_TIMEOUT - 1)) as u64
    })
}

fn decode(nanos: u64) -> Option<Duration> {
    (nanos != NO_TIMEOUT).then(|| Duration::from_nanos(nanos))
}

/// What a TLS session reads and writes through: a descriptor it does not own. First the
/// one of the [`Socket`] the session lives in (the session is declared before the
/// stream, so it is dropped before that descriptor closes); after an upgrade, a
/// duplicate owned by the [`UpgradedStream`] that took the session over.
struct FdIo(Arc<AtomicI32>);

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.0.load(Ordering::Relaxed), buf)
    }
}

impl Write for FdIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.0.load(Ordering::Relaxed), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<Interest> for Readiness {
    fn from(interest: Interest) -> Readiness {
        match interest {
            Interest::Read => Readiness::Read,
            Interest::Write => Readiness::Write,
        }
    }
}

/// A connection's socket. Timeouts are kept here, not set on the socket, so changing
/// them costs no system call.
pub(crate) struct Socket {
    /// The TLS session over `stream`, for HTTPS. Declared before `stream`: it uses
    /// `stream`'s descriptor and must be dropped first.
    tls: Option<Arc<SharedServerStream>>,
    /// The descriptor the TLS session does its I/O on (see [`FdIo`]).
    tls_fd: Option<Arc<AtomicI32>>,
    /// A non-blocking TLS read ended on end-of-stream or an error after returning data:
    /// the socket will raise no new readiness event for it, so the connection must be
    /// looked at again before it parks.
    tls_revisit: AtomicBool,
    stream: Stream,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl Socket {
    pub fn new(stream: Stream) -> Socket {
        Socket {
            tls: None,
            tls_fd: None,
            tls_revisit: AtomicBool::new(false),
            stream,
            read_timeout: AtomicU64::new(NO_TIMEOUT),
            write_timeout: AtomicU64::new(NO_TIMEOUT),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.stream.raw_fd()
    }

    /// Puts a TLS session on the socket (the socket must be non-blocking). No I/O
    /// happens yet: drive the handshake with [`Socket::tls_handshake`].
    pub fn start_tls(&mut self, acceptor: &Acceptor) -> crate::Result<()> {
        let fd = Arc::new(AtomicI32::new(self.raw_fd()));
        let stream = acceptor.accept(FdIo(fd.clone()))?;
        self.tls = Some(Arc::new(SharedServerStream::new(stream)));
        self.tls_fd = Some(fd);
        Ok(())
    }

    /// True while a TLS handshake on this socket has not completed.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Advances the TLS handshake without blocking (`Complete` for a plain socket).
    pub fn tls_handshake(&self) -> crate::Result<HandshakeStatus> {
        match &self.tls {
            Some(tls) => tls.try_handshake(),
            None => Ok(HandshakeStatus::Complete),
        }
    }

    /// The ALPN protocol the TLS handshake selected, if any.
    pub fn negotiated_alpn(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().and_then(|t| t.negotiated_alpn())
    }

    /// True when the connection must not be parked to wait for readability: the TLS
    /// layer holds decrypted bytes (the socket will never become readable for them), or
    /// a non-blocking read saw end-of-stream or an error it has not reported yet.
    pub fn must_not_park(&self) -> bool {
        match &self.tls {
            Some(tls) => {
                self.tls_revisit.swap(false, Ordering::Relaxed) || tls.buffered_plaintext() > 0
            }
            None => false,
        }
    }

    /// Waits until the socket has `readiness` or `timeout` passes (the event loop goes
    /// to a spare thread first).
    pub fn wait_for(&self, readiness: Readiness, timeout: Option<Duration>) -> io::Result<()> {
        release_loop_before_blocking();
        if wait_fd(self.raw_fd(), readiness, timeout)? {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"))
        }
    }

    fn wait(&self, readiness: Readiness, timeout: &AtomicU64) -> io::Result<()> {
        self.wait_for(readiness, decode(timeout.load(Ordering::Relaxed)))
    }

    /// The non-blocking read of a TLS connection. It fills `buf` as far as it can, so
    /// that a short count means what it means on a plain socket (the socket had no more
    /// bytes, so a new readiness event will come), which the HTTP/1 code relies on: one
    /// TLS read returns at most one record, and the next record may already sit in the
    /// kernel buffer, raising no new edge-triggered event.
    fn tls_try_read(&self, tls: &SharedServerStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            // A read that needs to write (TLS 1.3 post-handshake messages) waits for
            // writability, like any other blocking write; for reading it never waits.
            let read = tls.read(&mut buf[n..], |interest| match interest {
                Interest::Read => Err(io::ErrorKind::WouldBlock.into()),
                Interest::Write => self.wait(Readiness::Write, &self.write_timeout),
            });
            match read {
                Ok(0) if n > 0 => {
                    self.tls_revisit.store(true, Ordering::Relaxed);
                    break;
                }
                Ok(0) => return Ok(0),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
                Err(e) if n > 0 => {
                    // Report the data now; the error is seen on the next read.
                    log::trace!("TLS read after {n} bytes: {e}");
                    self.tls_revisit.store(true, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

impl Socket {
    /// One write that never waits: `WouldBlock` when the socket is full. Over TLS, a
    /// write refused with `WouldBlock` must be retried with the same leading bytes (see
    /// [`SharedServerStream::try_write`]).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return tls.try_write(buf);
        }
        loop {
            match self.stream.write_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Transport for Socket {
    fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return tls.read(buf, |interest| {
                self.wait(interest.into(), &self.read_timeout)
            });
        }
        loop {
            match self.stream.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Read, &self.read_timeout)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return self.tls_try_read(tls, buf);
        }
        loop {
            match self.stream.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        Socket::try_write(self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return tls.write(buf, |interest| {
                self.wait(interest.into(), &self.write_timeout)
            });
        }
        loop {
            match self.stream.write_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Write, &self.write_timeout)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(encode(timeout), Ordering::Relaxed);
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.store(encode(timeout), Ordering::Relaxed);
        Ok(())
    }

    fn abort_on_close(&self) {
        if let Stream::Tcp(s) = &self.stream {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Some(tls) = &self.tls {
            if how != Shutdown::Read && !tls.is_handshaking() {
                // Best effort, without waiting: tells the peer the data is complete.
                let _ = tls.close_notify();
            }
        }
        match &self.stream {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    fn hijack(&self) -> io::Result<UpgradedStream> {
        let stream = match &self.stream {
            Stream::Tcp(s) => UpgradedStream::Tcp(s.try_clone()?),
            Stream::Unix(s) => UpgradedStream::Unix(s.try_clone()?),
        };
        if let (Some(tls), Some(fd)) = (&self.tls, &self.tls_fd) {
            // The session goes with the connection and speaks through the duplicate
            // from now on, so the server may close its own descriptor. It stays
            // non-blocking: the upgraded stream waits for readiness between attempts.
            fd.store(stream.as_raw_fd(), Ordering::Relaxed);
            return Ok(UpgradedStream::tls(tls.clone(), stream));
        }
        // O_NONBLOCK belongs to the open file description, which the duplicate shares:
        // the engine's descriptor turns blocking too, but it does no more I/O on it.
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        Ok(stream)
    }
}
