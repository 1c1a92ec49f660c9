//! A [`ServerStream`] that several threads use through `&self`, blocking by waiting for
//! socket readiness in between non-blocking attempts.
use std::io;
use std::sync::{Mutex, MutexGuard};

use super::{HandshakeStatus, Interest, ServerStream};
use crate::Result;

/// A [`ServerStream`] shared by the reading and the writing side of a connection (a
/// request body reader and a response writer, HTTP/2 streams on several threads):
/// reads and writes through `&self`, each blocking by calling a readiness `wait`
/// function between non-blocking attempts.
///
/// The TLS session is locked only for each non-blocking attempt, never while waiting,
/// so a reader waiting for bytes does not stop a writer. Writers are serialized for
/// the whole of each call: a TLS write that returned `WouldBlock` must be retried with
/// the same bytes before anything else is written.
///
/// `wait(interest)` must block until the socket under the stream has the readiness
/// `interest` (or the peer hung up), and return an error on timeout; an event loop
/// releases itself to a spare thread first.
///
/// ```no_run
/// # #[cfg(feature = "tls")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spindle::tls::{Acceptor, Interest, SharedServerStream};
/// let acceptor = Acceptor::from_pem_files("cert.pem", "key.pem")?;
/// let (socket, _) = std::net::TcpListener::bind("127.0.0.1:8443")?.accept()?;
/// socket.set_nonblocking(true)?;
/// let fd = socket.try_clone()?; // the same open file, for waiting on readiness
/// let tls = SharedServerStream::new(acceptor.accept(socket)?);
/// let wait = |interest: Interest| -> std::io::Result<()> {
///     // poll(2) `fd` for `interest` with a timeout
///     # let _ = (&fd, interest);
///     Ok(())
/// };
/// tls.handshake(wait)?;
/// let mut buf = [0; 4096];
/// let n = tls.read(&mut buf, wait)?;
/// tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n", wait)?;
/// # let _ = n; Ok(()) }
/// # #[cfg(not(feature = "tls"))] fn main() {}
/// ```
pub struct SharedServerStream {
    tls: Mutex<ServerStream>,
    reader: Mutex<()>,
    writer: Mutex<()>,
}

impl std::fmt::Debug for SharedServerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedServerStream").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SharedServerStream {
    /// Shares `stream` (handshake done or not: the first read or write finishes it).
    pub fn new(stream: ServerStream) -> SharedServerStream {
        SharedServerStream {
            tls: Mutex::new(stream),
            reader: Mutex::new(()),
            writer: Mutex::new(()),
        }
    }

    /// Completes the handshake, waiting as needed.
    pub fn handshake(&self, mut wait: impl FnMut(Interest) -> io::Result<()>) -> Result<()> {
        let _r = lock(&self.reader);
        let _w = lock(&self.writer);
        loop {
            let status = lock(&self.tls).handshake()?;
            match status {
                HandshakeStatus::Complete => return Ok(()),
                HandshakeStatus::Pending(interest) => wait(interest).map_err(|e| {
                    crate::Error::new(crate::ErrorKind::Tls, "waiting during the TLS handshake")
                        .with_source(e)
                })?,
            }
        }
    }

    /// Advances the handshake as far as the stream allows without blocking, as
    /// [`ServerStream::handshake`] does: an event loop calls it on readiness and parks
    /// the connection on `Pending(interest)`.
    pub fn try_handshake(&self) -> Result<HandshakeStatus> {
        lock(&self.tls).handshake()
    }

    /// One non-blocking attempt under the session lock; `Err(interest)` to wait for.
    fn attempt<T>(
        &self,
        op: impl FnOnce(&mut ServerStream) -> io::Result<T>,
    ) -> std::result::Result<io::Result<T>, Interest> {
        let mut tls = lock(&self.tls);
        match op(&mut tls) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(tls.wants()),
            other => Ok(other),
        }
    }

    /// Reads plaintext, waiting until some is available (0: the peer closed).
    pub fn read(
        &self,
        buf: &mut [u8],
        mut wait: impl FnMut(Interest) -> io::Result<()>,
    ) -> io::Result<usize> {
        let _r = lock(&self.reader);
        loop {
            match self.attempt(|tls| io::Read::read(tls, buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(result) => return result,
                Err(interest) => wait(interest)?,
            }
        }
    }

    /// Reads what is available now without waiting (`WouldBlock` if nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut *lock(&self.tls), buf)
    }

    /// Writes some of `buf`, waiting until the socket takes it.
    pub fn write(
        &self,
        buf: &[u8],
        mut wait: impl FnMut(Interest) -> io::Result<()>,
    ) -> io::Result<usize> {
        let _w = lock(&self.writer);
        loop {
            match self.attempt(|tls| io::Write::write(tls, buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(result) => return result,
                Err(interest) => wait(interest)?,
            }
        }
    }

    /// Writes what the socket takes now without waiting (`WouldBlock` if it takes
    /// nothing). After `WouldBlock`, the next write must start with the same bytes (a
    /// TLS record may be half sent); an output buffer that is only appended to and
    /// advanced by what was written keeps that rule.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let _w = lock(&self.writer);
        io::Write::write(&mut *lock(&self.tls), buf)
    }

    /// Writes all of `buf`, waiting as needed.
    pub fn write_all(
        &self,
        mut buf: &[u8],
        mut wait: impl FnMut(Interest) -> io::Result<()>,
    ) -> io::Result<()> {
        let _w = lock(&self.writer);
        while !buf.is_empty() {
            match self.attempt(|tls| io::Write::write(tls, buf)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => buf = &buf[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(interest) => wait(interest)?,
            }
        }
        Ok(())
    }

    /// Decrypted bytes held inside the TLS layer: never park the connection while this
    /// is above zero.
    pub fn buffered_plaintext(&self) -> usize {
        lock(&self.tls).buffered_plaintext()
    }

    /// The ALPN protocol selected in the handshake, if any.
    pub fn negotiated_alpn(&self) -> Option<Vec<u8>> {
        lock(&self.tls).negotiated_alpn().map(<[u8]>::to_vec)
    }

    /// True while the handshake has not completed.
    pub fn is_handshaking(&self) -> bool {
        lock(&self.tls).is_handshaking()
    }

    /// Sends a TLS `close_notify` alert (best effort, without waiting).
    pub fn close_notify(&self) -> io::Result<()> {
        let _w = lock(&self.writer);
        lock(&self.tls).close_notify()
    }

    /// Takes the stream back.
    pub fn into_inner(self) -> ServerStream {
        self.tls.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}
