//! A connection taken off the server by [`Response::upgrade`](super::Response::upgrade):
//! the blocking counterpart of Go's `http.Hijacker`.
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::runtime::socket::RawSocket;
#[cfg(unix)]
use crate::runtime::sys::{wait_fd, Readiness};
use crate::tls::{Interest, SharedServerStream};

/// The socket of an upgraded connection: a blocking TCP or Unix stream with no timeouts
/// set, or the TLS session of an HTTPS connection, owned by the handler.
///
/// It is a duplicate of the descriptor the server accepted; the server has forgotten
/// its own copy, so the connection lives exactly as long as this value (and its
/// clones). More kinds may follow, hence `#[non_exhaustive]`.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradedStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix domain socket connection.
    #[cfg(unix)]
    Unix(UnixStream),
    /// An HTTPS connection (WebSocket over `wss://`, say): reads and writes go through
    /// its TLS session.
    Tls(TlsUpgraded),
}

/// The TCP or Unix socket under an upgraded stream (for [`UpgradedStream::Tls`], the one
/// carrying its records).
macro_rules! socket {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            UpgradedStream::Tcp($s) => $e,
            #[cfg(unix)]
            UpgradedStream::Unix($s) => $e,
            UpgradedStream::Tls(t) => match &t.0.socket {
                Plain::Tcp($s) => $e,
                #[cfg(unix)]
                Plain::Unix($s) => $e,
            },
        }
    };
}

impl UpgradedStream {
    /// An upgraded HTTPS connection: `session` now does its I/O on `socket` (a
    /// non-blocking duplicate of the server's descriptor).
    pub(crate) fn tls(session: Arc<SharedServerStream>, socket: UpgradedStream) -> UpgradedStream {
        let socket = match socket {
            UpgradedStream::Tcp(s) => Plain::Tcp(s),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => Plain::Unix(s),
            UpgradedStream::Tls(t) => return UpgradedStream::Tls(t),
        };
        UpgradedStream::Tls(TlsUpgraded(Arc::new(TlsShared {
            session,
            socket,
            read_timeout: Mutex::new(None),
            write_timeout: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
        })))
    }

    /// Another handle to the same connection (a duplicated descriptor, or the same TLS
    /// session), for example to read on one thread and write on another.
    pub fn try_clone(&self) -> io::Result<UpgradedStream> {
        Ok(match self {
            UpgradedStream::Tcp(s) => UpgradedStream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => UpgradedStream::Unix(s.try_clone()?),
            UpgradedStream::Tls(t) => UpgradedStream::Tls(TlsUpgraded(t.0.clone())),
        })
    }

    /// How long a read may block (`None`: forever, the initial setting).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            UpgradedStream::Tls(t) => {
                *lock(&t.0.read_timeout) = timeout;
                Ok(())
            }
            _ => socket!(self, s => s.set_read_timeout(timeout)),
        }
    }

    /// How long a write may block (`None`: forever, the initial setting).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            UpgradedStream::Tls(t) => {
                *lock(&t.0.write_timeout) = timeout;
                Ok(())
            }
            _ => socket!(self, s => s.set_write_timeout(timeout)),
        }
    }

    /// Switches non-blocking mode (off initially).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            // The socket under TLS always is; the session waits for readiness unless
            // asked not to.
            UpgradedStream::Tls(t) => {
                t.0.nonblocking.store(nonblocking, Ordering::Relaxed);
                Ok(())
            }
            _ => socket!(self, s => s.set_nonblocking(nonblocking)),
        }
    }

    /// Shuts down one or both directions of the connection (for every clone). Over TLS,
    /// shutting down writing first sends the `close_notify` alert.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let UpgradedStream::Tls(t) = self {
            if how != Shutdown::Read {
                let _ = t.0.session.close_notify();
            }
        }
        socket!(self, s => s.shutdown(how))
    }

    /// The peer's address, for TCP.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            UpgradedStream::Tcp(s) => s.peer_addr().ok(),
            UpgradedStream::Tls(t) => match &t.0.socket {
                Plain::Tcp(s) => s.peer_addr().ok(),
                #[cfg(unix)]
                Plain::Unix(_) => None,
            },
            #[cfg(unix)]
            UpgradedStream::Unix(_) => None,
        }
    }
}

impl Read for UpgradedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            UpgradedStream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.read(buf),
            UpgradedStream::Tls(t) => {
                let timeout = *lock(&t.0.read_timeout);
                t.0.session
                    .read(buf, |interest| t.0.wait(interest, timeout))
            }
        }
    }
}

impl Write for UpgradedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            UpgradedStream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.write(buf),
            UpgradedStream::Tls(t) => {
                let timeout = *lock(&t.0.write_timeout);
                t.0.session
                    .write(buf, |interest| t.0.wait(interest, timeout))
            }
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            UpgradedStream::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.write_vectored(bufs),
            UpgradedStream::Tls(_) => {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]);
                self.write(first)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl UpgradedStream {
    /// The socket's handle (under TLS, the one carrying the encrypted records).
    pub(crate) fn raw_socket(&self) -> RawSocket {
        #[cfg(unix)]
        return socket!(self, s => s.as_raw_fd());
        #[cfg(windows)]
        return socket!(self, s => std::os::windows::io::AsRawSocket::as_raw_socket(s));
    }
}

/// The descriptor of the socket (under TLS, the one carrying the encrypted records:
/// wait on it for readiness, but read and write through the stream).
#[cfg(unix)]
impl AsRawFd for UpgradedStream {
    fn as_raw_fd(&self) -> RawFd {
        socket!(self, s => s.as_raw_fd())
    }
}

#[cfg(unix)]
impl AsFd for UpgradedStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        socket!(self, s => s.as_fd())
    }
}

/// An upgraded HTTPS connection ([`UpgradedStream::Tls`]): its TLS session and the
/// socket under it, shared by the clones of the stream. Reading and writing may go on at
/// once from two clones.
#[derive(Debug)]
pub struct TlsUpgraded(Arc<TlsShared>);

#[derive(Debug)]
struct TlsShared {
    /// Declared before the socket: it does its I/O on the socket's descriptor.
    session: Arc<SharedServerStream>,
    socket: Plain,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

#[derive(Debug)]
enum Plain {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl TlsShared {
    /// Waits until the socket has `interest` (a TLS read may need to write, and the
    /// other way round), up to `timeout`.
    fn wait(&self, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        #[cfg(unix)]
        {
            let fd = match &self.socket {
                Plain::Tcp(s) => s.as_raw_fd(),
                Plain::Unix(s) => s.as_raw_fd(),
            };
            let readiness = match interest {
                Interest::Read => Readiness::Read,
                Interest::Write => Readiness::Write,
            };
            if wait_fd(fd, readiness, timeout)? {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "upgraded TLS stream timed out",
                ))
            }
        }
        // Never made there (see `Socket::hijack`): Windows has no wait for one socket.
        #[cfg(windows)]
        {
            let _ = (interest, timeout);
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection taken over by a handler after answering `101 Switching Protocols` (or
/// `2xx` to a `CONNECT`): made by [`Response::upgrade`](super::Response::upgrade).
///
/// It is a blocking [`Read`] + [`Write`] stream that the server no longer watches,
/// counts, times out or closes: its fate is the owner's, who may keep it after the
/// handler returns (on a thread of its own, say). Reads first yield the bytes the
/// server had already read past the request (the start of the new protocol, if the
/// client sent it right behind the request), then come from the socket.
/// [`into_parts`](Upgraded::into_parts) separates the two.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use spindle::http::StatusCode;
/// use spindle::server::{Request, Response, Server};
///
/// Server::http("127.0.0.1:0")?.handle(|req: Request, mut res: Response| {
///     if req.headers().get("upgrade").map(|v| v.as_bytes()) != Some(b"echo") {
///         res.with_status(StatusCode::BAD_REQUEST).send(b"upgrade: echo expected\n").ok();
///         return;
///     }
///     *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
///     res.headers_mut().insert("upgrade", "echo".parse().unwrap());
///     res.headers_mut().insert("connection", "upgrade".parse().unwrap());
///     let Ok(mut conn) = res.upgrade() else { return };
///     // The server forgets the connection when this handler returns.
///     std::thread::spawn(move || {
///         let mut buf = [0u8; 4096];
///         while let Ok(n @ 1..) = conn.read(&mut buf) {
///             if conn.write_all(&buf[..n]).is_err() {
///                 break;
///             }
///         }
///     });
/// })?;
/// # Ok::<(), spindle::Error>(())
/// ```
pub struct Upgraded {
    stream: UpgradedStream,
    buffered: Vec<u8>,
    pos: usize,
}

impl Upgraded {
    pub(crate) fn new(stream: UpgradedStream, buffered: Vec<u8>) -> Upgraded {
        Upgraded {
            stream,
            buffered,
            pos: 0,
        }
    }

    /// The bytes read past the request that [`read`](Read::read) has not returned yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buffered[self.pos..]
    }

    /// The socket.
    pub fn get_ref(&self) -> &UpgradedStream {
        &self.stream
    }

    /// The socket, mutably (reading from it directly skips [`buffered`](Upgraded::buffered)).
    pub fn get_mut(&mut self) -> &mut UpgradedStream {
        &mut self.stream
    }

    /// The socket and the bytes the server had read past the request that were not
    /// read from this value yet; those come first in the new protocol.
    pub fn into_parts(mut self) -> (UpgradedStream, Vec<u8>) {
        self.buffered.drain(..self.pos);
        (self.stream, self.buffered)
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buffered.len() {
            let rest = &self.buffered[self.pos..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            if self.pos == self.buffered.len() {
                self.buffered = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.stream.read(buf)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", &self.stream)
            .field("buffered", &self.buffered().len())
            .finish()
    }
}

/// The error for a response that cannot hand its connection over.
pub(crate) fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_owned())
}
