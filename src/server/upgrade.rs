//! A connection taken off the server by [`Response::upgrade`](super::Response::upgrade):
//! the blocking counterpart of Go's `http.Hijacker`.
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The socket of an upgraded connection: a blocking TCP or Unix stream with no timeouts
/// set, owned by the handler.
///
/// It is a duplicate of the descriptor the server accepted; the server has forgotten
/// its own copy, so the connection lives exactly as long as this value (and its
/// clones). More kinds (TLS) may follow, hence `#[non_exhaustive]`.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradedStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix domain socket connection.
    Unix(UnixStream),
}

macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            UpgradedStream::Tcp($s) => $e,
            UpgradedStream::Unix($s) => $e,
        }
    };
}

impl UpgradedStream {
    /// Another handle to the same connection (a duplicated descriptor), for example to
    /// read on one thread and write on another.
    pub fn try_clone(&self) -> io::Result<UpgradedStream> {
        Ok(match self {
            UpgradedStream::Tcp(s) => UpgradedStream::Tcp(s.try_clone()?),
            UpgradedStream::Unix(s) => UpgradedStream::Unix(s.try_clone()?),
        })
    }

    /// How long a read may block (`None`: forever, the initial setting).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        both!(self, s => s.set_read_timeout(timeout))
    }

    /// How long a write may block (`None`: forever, the initial setting).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        both!(self, s => s.set_write_timeout(timeout))
    }

    /// Switches non-blocking mode (off initially).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        both!(self, s => s.set_nonblocking(nonblocking))
    }

    /// Shuts down one or both directions of the connection (for every clone).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        both!(self, s => s.shutdown(how))
    }

    /// The peer's address, for TCP.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            UpgradedStream::Tcp(s) => s.peer_addr().ok(),
            UpgradedStream::Unix(_) => None,
        }
    }
}

impl Read for UpgradedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        both!(self, s => s.read(buf))
    }
}

impl Write for UpgradedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        both!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        both!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for UpgradedStream {
    fn as_raw_fd(&self) -> RawFd {
        both!(self, s => s.as_raw_fd())
    }
}

impl AsFd for UpgradedStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        both!(self, s => s.as_fd())
    }
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
