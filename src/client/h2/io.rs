//! The two halves of an HTTP/2 connection's byte stream.
//!
//! A blocking HTTP/2 client reads on one thread (the connection driver) while request
//! threads write HEADERS and DATA, so the stream must be usable from two threads at
//! once. Sockets split for free (`try_clone` gives a second handle to the same socket);
//! a TLS session cannot be split, so the pooled client shares it under a lock and the
//! reader waits for readiness without holding that lock.
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::wait::SocketWait;
use crate::client::Stream;

/// A stream the HTTP/2 client can read on one thread while writing on others.
///
/// Implemented for `TcpStream` and `UnixStream` (split with `try_clone`), for a pair
/// `(reader, writer)` of halves the caller split itself, and for the client's
/// `Box<dyn Stream>` (what a [`TlsConnector`](crate::tls::TlsConnector) returns): a
/// stream that cannot be split, such as a TLS session, is shared under a lock that the
/// reader holds only while bytes are there to read (it waits for the socket through
/// [`Stream::readable_fd`] on Unix, with `poll(2)`, or `Stream::readable_socket` on
/// Windows, with a mio poll of its own; else with short read timeouts).
///
/// A plain `Read + Write` value that can be neither split nor polled cannot serve a
/// blocking HTTP/2 connection: the reader must wait for the peer while other threads
/// write.
pub trait SplitStream: Send + 'static {
    /// The half the connection driver reads from.
    type Reader: Read + Send + 'static;
    /// The half requests are written to.
    type Writer: Write + Send + 'static;

    /// Splits the stream into its halves.
    fn split(self) -> io::Result<(Self::Reader, Self::Writer)>;

    /// Closes the stream when the connection is finished, so that the driver blocked
    /// reading wakes up (sockets: `shutdown(Both)`). The default does nothing: the
    /// driver then ends when the peer closes the connection after our GOAWAY.
    fn close(writer: &Self::Writer) {
        let _ = writer;
    }
}

impl SplitStream for TcpStream {
    type Reader = TcpStream;
    type Writer = TcpStream;
    fn split(self) -> io::Result<(TcpStream, TcpStream)> {
        let writer = self.try_clone()?;
        Ok((self, writer))
    }
    fn close(writer: &TcpStream) {
        let _ = writer.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(unix)]
impl SplitStream for std::os::unix::net::UnixStream {
    type Reader = std::os::unix::net::UnixStream;
    type Writer = std::os::unix::net::UnixStream;
    fn split(self) -> io::Result<(Self::Reader, Self::Writer)> {
        let writer = self.try_clone()?;
        Ok((self, writer))
    }
    fn close(writer: &Self::Writer) {
        let _ = writer.shutdown(std::net::Shutdown::Both);
    }
}

impl<R, W> SplitStream for (R, W)
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    type Reader = R;
    type Writer = W;
    fn split(self) -> io::Result<(R, W)> {
        Ok(self)
    }
}

/// The writing half, type-erased, with its way to close the stream.
pub(crate) trait WriteHalf: Write + Send {
    fn close(&self);
}

/// The writing half of a split `Box<dyn Stream>`.
pub struct StreamWriter(Box<dyn WriteHalf>);

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter").finish_non_exhaustive()
    }
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl SplitStream for Box<dyn Stream> {
    type Reader = Box<dyn Read + Send>;
    type Writer = StreamWriter;
    fn split(self) -> io::Result<(Self::Reader, StreamWriter)> {
        let (r, w) = split_boxed(self)?;
        Ok((r, StreamWriter(w)))
    }
    fn close(writer: &StreamWriter) {
        writer.0.close()
    }
}

struct Generic<S: SplitStream>(S::Writer);

impl<S: SplitStream> Write for Generic<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: SplitStream> WriteHalf for Generic<S> {
    fn close(&self) {
        S::close(&self.0)
    }
}

pub(crate) type Halves = (Box<dyn Read + Send>, Box<dyn WriteHalf>);

pub(crate) fn split<S: SplitStream>(io: S) -> io::Result<Halves> {
    let (r, w) = io.split()?;
    Ok((Box::new(r), Box::new(Generic::<S>(w))))
}

/// Splits a pooled client stream: a second handle when the stream has one, else the
/// shared, locked form.
pub(crate) fn split_boxed(stream: Box<dyn Stream>) -> io::Result<Halves> {
    if let Some(clone) = stream.try_split() {
        let writer = clone?;
        return Ok((Box::new(stream), Box::new(BoxedWriter(writer))));
    }
    let shared = Arc::new(Locked {
        wait: socket_wait(&*stream),
        stream: Mutex::new(stream),
    });
    // Reads under the lock must not wait long (see `LockedReader`). Without a socket to
    // poll, this is also how the reader waits: short timeouts, which cost some wake-ups
    // while idle (custom connectors avoid them by implementing `Stream::readable_fd`, or
    // `Stream::readable_socket` on Windows).
    // Writes likewise: a TLS write into a full socket gives the lock back and waits for
    // room without it, so that the reader keeps reading (the peer may be waiting for
    // that before it reads what we write).
    {
        let s = lock(&shared.stream);
        s.set_read_timeout(Some(FALLBACK_READ_WAIT))?;
        s.set_write_timeout(Some(FALLBACK_READ_WAIT))?;
    }
    Ok((
        Box::new(LockedReader {
            shared: shared.clone(),
        }),
        Box::new(LockedWriter { shared }),
    ))
}

const FALLBACK_READ_WAIT: Duration = Duration::from_millis(5);

struct BoxedWriter(Box<dyn Stream>);

impl Write for BoxedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl WriteHalf for BoxedWriter {
    fn close(&self) {
        let _ = self.0.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The waiter for a stream's socket, if the stream names one (and, on Windows, its mio
/// poll could be set up; without one the reader falls back to short timeouts).
fn socket_wait(stream: &dyn Stream) -> Option<SocketWait> {
    #[cfg(unix)]
    let sock = stream.readable_fd()?;
    #[cfg(windows)]
    let sock = stream.readable_socket()?;
    match SocketWait::new(sock) {
        Ok(wait) => Some(wait),
        Err(e) => {
            log::debug!(
                "HTTP/2 client: no readiness wait for the socket ({e}); polling with timeouts"
            );
            None
        }
    }
}

/// A stream that cannot be split (a TLS session), shared by the reader and the writers.
struct Locked {
    /// Declared first so that it is dropped (and, on Windows, deregistered) before the
    /// stream closes the socket it waits on.
    wait: Option<SocketWait>,
    stream: Mutex<Box<dyn Stream>>,
}

impl Locked {
    fn can_poll(&self) -> bool {
        self.wait.is_some()
    }

    /// Waits until the socket has room to write (or hung up), without holding the lock.
    fn wait_writable(&self) -> io::Result<()> {
        if let Some(wait) = &self.wait {
            return wait.writable();
        }
        std::thread::yield_now();
        Ok(())
    }
}

struct LockedReader {
    shared: Arc<Locked>,
}

impl Read for LockedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(wait) = &self.shared.wait {
                // Waits until the socket is readable (or hung up), without the lock.
                let buffered = lock(&self.shared.stream).buffered_read() > 0;
                if !buffered {
                    wait.readable()?;
                }
            }
            // The socket is readable (or cannot be polled). A TLS read may still find only
            // a record that carries no application data (a session ticket) or part of a
            // record: the short read timeout makes it give the lock back rather than
            // hold the writers until more arrives.
            let r = lock(&self.shared.stream).read(buf);
            match r {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !self.shared.can_poll() {
                        std::thread::yield_now();
                    }
                    continue;
                }
                r => return r,
            }
        }
    }
}

struct LockedWriter {
    shared: Arc<Locked>,
}

impl Write for LockedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // A TLS write that would block must be retried with the same bytes; nothing
            // else writes meanwhile (the connection has one writer at a time).
            let r = lock(&self.shared.stream).write(buf);
            match r {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.shared.wait_writable()?
                }
                r => return r,
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        lock(&self.shared.stream).flush()
    }
}

impl WriteHalf for LockedWriter {
    fn close(&self) {
        let _ = lock(&self.shared.stream).shutdown();
    }
}
