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
    /// false (the client then relies on retrying idempotent requests). `TcpStream`
    /// answers with a non-blocking one-byte peek, on every platform.
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
    /// `readable_fd` on Unix, `readable_socket` on Windows).
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
    /// read timeouts. The descriptor must stay open while the stream lives.
    ///
    /// Unix only; on Windows the same hook is `readable_socket`.
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// The connected TCP socket under this stream, for a stream that cannot be split:
    /// the HTTP/2 client waits for it to become readable or writable with a mio poll of
    /// its own (IOCP/AFD), without holding the stream's lock. `None` (the default)
    /// makes it fall back to short read timeouts. The socket must be a TCP socket and
    /// stay open while the stream lives.
    ///
    /// Windows only; on Unix the same hook is `readable_fd`.
    #[cfg(windows)]
    fn readable_socket(&self) -> Option<std::os::windows::io::RawSocket> {
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
    #[cfg(windows)]
    fn readable_socket(&self) -> Option<std::os::windows::io::RawSocket> {
        use std::os::windows::io::AsRawSocket;
        Some(self.as_raw_socket())
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    /// Unix: one `recv(MSG_PEEK | MSG_DONTWAIT)`, which leaves the socket blocking.
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
    /// Elsewhere (Windows has no `MSG_DONTWAIT`): a peek with the socket non-blocking
    /// for its duration.
    #[cfg(not(unix))]
    fn peer_closed(&self) -> bool {
        peek_closed(self)
    }
}

/// Whether `stream`'s peer closed it or sent bytes nobody asked for, without blocking:
/// the socket is non-blocking for one `peek`, then blocking again. A socket whose mode
/// cannot be set is reported closed (a new connection costs less than a request sent
/// into a broken one).
#[cfg(any(not(unix), test))]
fn peek_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let peeked = stream.peek(&mut [0u8; 1]);
    let restored = stream.set_nonblocking(false).is_ok();
    match peeked {
        Ok(_) => true, // 0: closed; 1: unsolicited bytes
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            !restored
        }
        Err(_) => true,
    }
}

/// Unix only, as `std`'s Unix domain sockets are.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// Waits (bounded) until `check` says what the peer did, for the bytes or FIN to
    /// cross loopback.
    fn eventually(check: impl Fn() -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// The portable peek (Windows' liveness check) answers as the Unix `recv` does: an
    /// idle connection is alive, unsolicited bytes or the peer's close make it unusable,
    /// and the socket is left blocking, its bytes unread.
    #[test]
    fn portable_peek_tells_idle_from_closed_or_unsolicited() {
        let (mut client, server) = pair();
        assert!(!peek_closed(&client), "an idle connection looked closed");
        assert!(!client.peer_closed());

        (&server).write_all(b"x").unwrap();
        assert!(
            eventually(|| peek_closed(&client)),
            "unsolicited bytes unseen"
        );
        assert!(client.peer_closed());
        // Not consumed, and the socket blocks again: a read waits for the next byte.
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let started = Instant::now();
        let e = client.read(&mut byte).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "a byte too many: {e}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "the read did not wait: the socket was left non-blocking"
        );

        drop(server);
        assert!(eventually(|| peek_closed(&client)), "the close unseen");
        assert!(client.peer_closed());
    }
}
