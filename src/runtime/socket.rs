//! Connected sockets owned by the engine: non-blocking underneath, blocking for the
//! handler on top. A read or write that would block first hands the calling thread's
//! event loop to a spare thread (so other connections keep being served), then waits
//! for the loop to forward the socket's next readiness (the connection's [`Parker`]):
//! no system call on the descriptor, so it works the same on every backend.
//!
//! A socket may carry TLS (see [`Socket::start_tls`]): the engine then drives the
//! handshake without blocking, and reads and writes go through the TLS session, which
//! sits inside the socket and reads the socket's own descriptor.
use std::io::{self, Read, Write};
use std::net::Shutdown;
#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(windows)]
use std::os::windows::io::{AsRawSocket, FromRawSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::release_loop_before_blocking;
use super::parker::Parker;
use super::poll::{Poller, Token};
#[cfg(unix)]
use super::sys;
use super::transport::Transport;
use crate::server::UpgradedStream;
use crate::tls::{Acceptor, HandshakeStatus, Interest, SharedServerStream};

/// The operating system's handle of a socket: a descriptor on Unix, a `SOCKET` on
/// Windows.
#[cfg(unix)]
pub(crate) type RawSocket = RawFd;
/// The operating system's handle of a socket: a descriptor on Unix, a `SOCKET` on
/// Windows.
#[cfg(windows)]
pub(crate) type RawSocket = std::os::windows::io::RawSocket;

/// The TCP stream type of a connection: std's on Unix; on Windows mio's, whose reads
/// and writes re-arm its registration (see `runtime::poll`).
#[cfg(unix)]
pub(crate) type TcpConn = std::net::TcpStream;
/// The TCP stream type of a connection: std's on Unix; on Windows mio's, whose reads
/// and writes re-arm its registration (see `runtime::poll`).
#[cfg(windows)]
pub(crate) type TcpConn = mio::net::TcpStream;

/// A stream accepted from a TCP or (on Unix) a Unix domain listener.
pub(crate) enum Stream {
    Tcp(TcpConn),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// Runs `f` on a borrowed `std::net::TcpStream` for `raw`, which stays open (for the
/// socket options and calls mio's Windows stream does not offer).
#[cfg(windows)]
fn with_std_tcp<R>(raw: RawSocket, f: impl FnOnce(&std::net::TcpStream) -> R) -> R {
    // SAFETY: `raw` is the handle of a live socket owned by our caller for the duration
    // of the call; ManuallyDrop keeps the borrowed stream from closing it.
    let s = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_socket(raw) });
    f(&s)
}

/// Shuts a socket down in both directions by handle (used to cut connections whose
/// owner is busy in a handler, at a shutdown deadline). The engine only calls it on
/// handles of connections it still owns.
pub(crate) fn shutdown_raw(raw: RawSocket) {
    #[cfg(unix)]
    {
        // SAFETY: shutdown takes no pointers; on a stale descriptor it fails harmlessly.
        unsafe { libc::shutdown(raw, libc::SHUT_RDWR) };
    }
    #[cfg(windows)]
    {
        let _ = with_std_tcp(raw, |s| s.shutdown(Shutdown::Both));
    }
}

impl Stream {
    pub fn raw(&self) -> RawSocket {
        match self {
            #[cfg(unix)]
            Stream::Tcp(s) => s.as_raw_fd(),
            #[cfg(windows)]
            Stream::Tcp(s) => s.as_raw_socket(),
            #[cfg(unix)]
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Lends the stream to mio for (de)registration: its descriptor on Unix, the socket
    /// object on Windows.
    #[cfg(any(not(target_os = "linux"), feature = "poll-mio"))]
    pub fn with_source<R>(&mut self, f: impl FnOnce(&mut dyn mio::event::Source) -> R) -> R {
        #[cfg(unix)]
        {
            let fd = self.raw();
            f(&mut mio::unix::SourceFd(&fd))
        }
        #[cfg(windows)]
        {
            match self {
                Stream::Tcp(s) => f(s),
            }
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)
            }
            // mio's streams are non-blocking already.
            #[cfg(windows)]
            Stream::Tcp(s) => s.set_nodelay(true),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Writes a short, complete answer on a socket that was never handed to the engine
    /// (still blocking), then closes it.
    pub fn answer_and_close(self, bytes: &[u8]) {
        let limit = Some(Duration::from_millis(100));
        let _ = match &self {
            #[cfg(unix)]
            Stream::Tcp(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
            // Non-blocking: one write, which a fresh socket's buffer takes whole.
            #[cfg(windows)]
            Stream::Tcp(s) => {
                let _ = limit;
                (&*s).write(bytes).map(|_| ())
            }
            #[cfg(unix)]
            Stream::Unix(s) => s
                .set_write_timeout(limit)
                .and_then(|()| (&*s).write_all(bytes)),
        };
        let _ = self.shutdown(Shutdown::Both);
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            #[cfg(unix)]
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
struct FdIo(Arc<AtomicRaw>);

/// A socket handle that an upgrade may swap (see [`FdIo`]).
#[cfg(unix)]
type AtomicRaw = std::sync::atomic::AtomicI32;
/// A socket handle that an upgrade may swap (see [`FdIo`]).
#[cfg(windows)]
type AtomicRaw = AtomicU64;

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        return sys::recv(self.0.load(Ordering::Relaxed), buf);
        #[cfg(windows)]
        return with_std_tcp(self.0.load(Ordering::Relaxed), |mut s| s.read(buf));
    }
}

impl Write for FdIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(unix)]
        return sys::send(self.0.load(Ordering::Relaxed), buf);
        #[cfg(windows)]
        return with_std_tcp(self.0.load(Ordering::Relaxed), |mut s| s.write(buf));
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a blocked reader or writer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    Read,
    Write,
}

impl From<Interest> for Readiness {
    fn from(interest: Interest) -> Readiness {
        match interest {
            Interest::Read => Readiness::Read,
            Interest::Write => Readiness::Write,
        }
    }
}

/// How a connection's blocked threads hear of its readiness: its [`Parker`], and the
/// poller and token to ask for writability with (once, by the first blocked writer).
pub(crate) struct Park {
    pub parker: Arc<Parker>,
    pub poller: Arc<Poller>,
    pub token: Token,
}

/// A connection's socket. Timeouts are kept here, not set on the socket, so changing
/// them costs no system call.
pub(crate) struct Socket {
    /// The TLS session over `stream`, for HTTPS. Declared before `stream`: it uses
    /// `stream`'s descriptor and must be dropped first.
    tls: Option<Arc<SharedServerStream>>,
    /// The handle the TLS session does its I/O on (see [`FdIo`]).
    tls_fd: Option<Arc<AtomicRaw>>,
    /// A non-blocking TLS read ended on end-of-stream or an error after returning data:
    /// the socket will raise no new readiness event for it, so the connection must be
    /// looked at again before it parks.
    tls_revisit: AtomicBool,
    stream: Stream,
    park: Park,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl Socket {
    pub fn new(stream: Stream, park: Park) -> Socket {
        Socket {
            tls: None,
            tls_fd: None,
            tls_revisit: AtomicBool::new(false),
            stream,
            park,
            read_timeout: AtomicU64::new(NO_TIMEOUT),
            write_timeout: AtomicU64::new(NO_TIMEOUT),
        }
    }

    pub fn raw(&self) -> RawSocket {
        self.stream.raw()
    }

    /// The stream, for (de)registering it with a poller.
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// The stream, for watching its writability.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The readiness count to wait past, read before an operation that may return
    /// `WouldBlock` (see [`Parker`]).
    pub fn ready_seen(&self) -> u64 {
        self.park.parker.seen()
    }

    /// Puts a TLS session on the socket (the socket must be non-blocking). No I/O
    /// happens yet: drive the handshake with [`Socket::tls_handshake`].
    pub fn start_tls(&mut self, acceptor: &Acceptor) -> crate::Result<()> {
        let fd = Arc::new(AtomicRaw::new(self.raw()));
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

    /// Waits until readiness arrives after `seen` (see [`ready_seen`](Socket::ready_seen))
    /// or `timeout` passes; the event loop goes to a spare thread first. For
    /// `Readiness::Write` the socket's writability is watched from now on.
    pub fn wait_for(
        &self,
        readiness: Readiness,
        seen: u64,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let park = &self.park;
        if readiness == Readiness::Write && park.parker.watch_writable_once() {
            if let Err(e) = park.poller.watch_writable(&self.stream, park.token) {
                park.parker.unwatch_writable();
                return Err(e);
            }
        }
        release_loop_before_blocking();
        if park.parker.wait_past(seen, deadline) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"))
        }
    }

    /// Marks writability as watched; true the first time (the caller registers it).
    pub fn watch_writable_once(&self) -> bool {
        self.park.parker.watch_writable_once()
    }

    fn wait(&self, readiness: Readiness, seen: u64, timeout: &AtomicU64) -> io::Result<()> {
        self.wait_for(readiness, seen, decode(timeout.load(Ordering::Relaxed)))
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
            let seen = self.ready_seen();
            let read = tls.read(&mut buf[n..], |interest| match interest {
                Interest::Read => Err(io::ErrorKind::WouldBlock.into()),
                Interest::Write => self.wait(Readiness::Write, seen, &self.write_timeout),
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
    /// Runs a blocking TLS operation whose session calls back when it must wait: each
    /// wait is for readiness after the count read before the attempt that blocked.
    fn tls_blocking<R>(
        &self,
        op: impl FnOnce(&mut dyn FnMut(Interest) -> io::Result<()>) -> io::Result<R>,
        timeout: &AtomicU64,
    ) -> io::Result<R> {
        let mut seen = self.ready_seen();
        op(&mut |interest| {
            let waited = self.wait(interest.into(), seen, timeout);
            seen = self.ready_seen();
            waited
        })
    }

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
            return self.tls_blocking(|wait| tls.read(buf, wait), &self.read_timeout);
        }
        loop {
            let seen = self.ready_seen();
            match self.stream.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Read, seen, &self.read_timeout)?
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
            return self.tls_blocking(|wait| tls.write(buf, wait), &self.write_timeout);
        }
        loop {
            let seen = self.ready_seen();
            match self.stream.write_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Readiness::Write, seen, &self.write_timeout)?
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
        #[cfg(unix)]
        if let Stream::Tcp(s) = &self.stream {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
        #[cfg(windows)]
        with_std_tcp(self.stream.raw(), |s| {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        });
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Some(tls) = &self.tls {
            if how != Shutdown::Read && !tls.is_handshaking() {
                // Best effort, without waiting: tells the peer the data is complete.
                let _ = tls.close_notify();
            }
        }
        self.stream.shutdown(how)
    }

    fn hijack(&self) -> io::Result<UpgradedStream> {
        let stream = match &self.stream {
            #[cfg(unix)]
            Stream::Tcp(s) => UpgradedStream::Tcp(s.try_clone()?),
            #[cfg(windows)]
            Stream::Tcp(s) => {
                if self.tls.is_some() {
                    // An upgraded TLS stream waits for readiness on its socket between
                    // attempts, which Windows offers only through a poller.
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "upgrading an HTTPS connection is not supported on Windows",
                    ));
                }
                UpgradedStream::Tcp(with_std_tcp(s.as_raw_socket(), |s| s.try_clone())?)
            }
            #[cfg(unix)]
            Stream::Unix(s) => UpgradedStream::Unix(s.try_clone()?),
        };
        if let (Some(tls), Some(fd)) = (&self.tls, &self.tls_fd) {
            // The session goes with the connection and speaks through the duplicate
            // from now on, so the server may close its own descriptor. It stays
            // non-blocking: the upgraded stream waits for readiness between attempts.
            fd.store(stream.raw_socket(), Ordering::Relaxed);
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
