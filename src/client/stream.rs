//! Streams the pooled client talks over, and how they are opened.
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::{Error, ErrorKind, Result};

/// A byte stream the pooled [`Client`](crate::Client) can use: a TCP socket today, a TLS
/// stream or a Unix socket from a custom [`Connector`].
pub trait Stream: Read + Write + Send + 'static {
    /// Bounds each blocking read (`None`: wait forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Bounds each blocking write (`None`: wait forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Without blocking: true when the peer has closed the stream, or sent bytes nobody
    /// asked for, so an idle pooled connection must not be reused. The default says
    /// false (the client then relies on retrying idempotent requests).
    fn peer_closed(&self) -> bool {
        false
    }
    /// The ALPN protocol the server chose during a TLS handshake (`b"http/1.1"`,
    /// `b"h2"`), if this is a TLS stream and one was chosen. The default says `None`.
    fn negotiated_alpn(&self) -> Option<&[u8]> {
        None
    }
    /// A second handle to the same stream (`TcpStream::try_clone`), so that an HTTP/2
    /// connection can read on one thread while others write. `None` (the default) for
    /// streams that cannot be used from two threads at once, such as TLS sessions: the
    /// HTTP/2 client then shares one handle under a lock (see
    /// [`readable_fd`](Stream::readable_fd)).
    fn try_split(&self) -> Option<io::Result<Box<dyn Stream>>> {
        None
    }
    /// Shuts the stream down in both directions, waking a thread blocked reading it
    /// (through any handle). Used to stop an HTTP/2 connection's reader. The default
    /// does nothing; the reader then ends when the peer closes.
    fn shutdown(&self) -> io::Result<()> {
        Ok(())
    }
    /// The socket to wait on (with `poll(2)`) for this stream to become readable, for a
    /// stream that cannot be split: the HTTP/2 client waits for readiness without
    /// holding the stream's lock. `None` (the default) makes it fall back to short
    /// read timeouts.
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Decrypted bytes held inside a TLS layer, readable without waiting on the socket.
    /// The default says 0.
    fn buffered_read(&self) -> usize {
        0
    }
}

impl Stream for TcpStream {
    fn try_split(&self) -> Option<io::Result<Box<dyn Stream>>> {
        Some(TcpStream::try_clone(self).map(|s| Box::new(s) as Box<dyn Stream>))
    }
    fn shutdown(&self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Both)
    }
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.as_raw_fd())
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    #[cfg(unix)]
    fn peer_closed(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut byte = 0u8;
        // SAFETY: a one-byte buffer we own, a descriptor owned by `self`.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            !matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            )
        } else {
            true // 0: closed; >0: unsolicited bytes
        }
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
    fn try_split(&self) -> Option<io::Result<Box<dyn Stream>>> {
        Some(
            std::os::unix::net::UnixStream::try_clone(self).map(|s| Box::new(s) as Box<dyn Stream>),
        )
    }
    fn shutdown(&self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, std::net::Shutdown::Both)
    }
    fn readable_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.as_raw_fd())
    }
}

/// Opens connections for the pooled client. The default is [`TcpConnector`]; the TLS
/// backend and custom transports (Unix sockets, test doubles) plug in here.
pub trait Connector: Send + Sync + 'static {
    /// Opens a stream to `host:port` within `timeout` (`None`: the OS default).
    fn connect(&self, host: &str, port: u16, timeout: Option<Duration>) -> Result<Box<dyn Stream>>;
}

/// Plain TCP: resolves the name, tries each address in turn, sets `TCP_NODELAY`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, host: &str, port: u16, timeout: Option<Duration>) -> Result<Box<dyn Stream>> {
        Ok(Box::new(connect_tcp(host, port, timeout)?))
    }
}

pub(crate) fn connect_tcp(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream> {
    let started = Instant::now();
    let host_trimmed = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host_trimmed, port)
        .to_socket_addrs()
        .map_err(|e| Error::new(ErrorKind::Connect, format!("resolving {host}")).with_source(e))?;
    let mut last = None;
    for addr in addrs {
        let result = match timeout {
            Some(t) => {
                let left = t.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("connecting to {host}:{port}"),
                    ));
                }
                TcpStream::connect_timeout(&addr, left)
            }
            None => TcpStream::connect(addr),
        };
        match result {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            Error::new(ErrorKind::Timeout, format!("connecting to {host}:{port}")).with_source(e)
        }
        Some(e) => {
            Error::new(ErrorKind::Connect, format!("connecting to {host}:{port}")).with_source(e)
        }
        None => Error::new(ErrorKind::Connect, format!("no address for {host}")),
    })
}

/// A pooled stream with the client's timeouts: per-operation read and write timeouts and
/// an overall deadline, applied to the socket only when they change.
pub(crate) struct Timed {
    inner: Box<dyn Stream>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
    applied_read: Option<Duration>,
    applied_write: Option<Duration>,
}

impl Timed {
    pub(crate) fn new(inner: Box<dyn Stream>) -> Timed {
        Timed {
            inner,
            read_timeout: None,
            write_timeout: None,
            deadline: None,
            applied_read: None,
            applied_write: None,
        }
    }

    pub(crate) fn inner(&self) -> &dyn Stream {
        &*self.inner
    }

    fn effective(&self, per_op: Option<Duration>) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(per_op);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request deadline passed",
            ));
        }
        Ok(Some(match per_op {
            Some(t) => t.min(left),
            None => left,
        }))
    }
}

fn nonzero(t: Option<Duration>) -> Option<Duration> {
    t.map(|t| t.max(Duration::from_millis(1)))
}

fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = nonzero(self.effective(self.read_timeout)?);
        if t != self.applied_read {
            self.inner.set_read_timeout(t)?;
            self.applied_read = t;
        }
        self.inner.read(buf).map_err(timeout_kind)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = nonzero(self.effective(self.write_timeout)?);
        if t != self.applied_write {
            self.inner.set_write_timeout(t)?;
            self.applied_write = t;
        }
        self.inner.write(buf).map_err(timeout_kind)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Timed {
    pub(crate) fn into_inner(self) -> Box<dyn Stream> {
        self.inner
    }
}
