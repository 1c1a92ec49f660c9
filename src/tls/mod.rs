//! Pluggable TLS for the server and the client.
//!
//! spindle's TLS layer is a handful of small traits, so that any TLS library can be
//! plugged in (as hyper 0.10's `SslServer`/`SslClient` allowed):
//!
//! * **Server side**: a [`TlsAcceptor`] wraps an accepted stream and starts a
//!   [`ServerHandshake`], which is resumed until it becomes a [`ServerSession`]. The
//!   handshake never blocks: the stream underneath may be non-blocking, and a handshake
//!   that needs more bytes says so and is resumed later, which lets an event loop park
//!   half-finished handshakes like idle connections. [`Acceptor`] (a cheap, clonable
//!   handle to any `TlsAcceptor`) and [`ServerStream`] (one connection, handshake and
//!   session alike) are what a server uses; [`SharedServerStream`] lets several threads
//!   read and write one connection through `&self`, blocking on a readiness wait the
//!   caller supplies.
//! * **Client side**: a [`TlsConnector`] wraps a connected
//!   [`crate::client::Stream`] for a host name; the result reports the ALPN protocol
//!   the server chose through [`crate::client::Stream::negotiated_alpn`].
//!
//! Backends shipped with spindle:
//!
//! * feature `tls` (on by default): [native-tls](https://docs.rs/native-tls) (OpenSSL on
//!   Linux) for both sides: `From<native_tls::TlsAcceptor> for Acceptor`,
//!   `Acceptor::from_pem`, `NativeTlsConnector`, `Certificate`, `Identity`. The server
//!   side can select ALPN protocols (native-tls' `alpn-accept`).
//! * feature `openssl-alpn`: `OpensslAcceptor`, a server acceptor on the `openssl`
//!   crate (the library native-tls already builds on, so no second TLS stack), with ALPN
//!   selection and full access to OpenSSL's settings.
//!
//! Without the `tls` feature the traits remain, so a custom backend (rustls, for example)
//! can still be plugged in; `https://` URLs then fail with [`ErrorKind::Tls`] unless
//! [`ClientBuilder::tls_connector`](crate::client::ClientBuilder::tls_connector) is set.
//!
//! # Driving a server handshake without blocking
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use spindle::tls::{Acceptor, HandshakeStatus, Interest};
//!
//! let acceptor = Acceptor::from_pem_files("cert.pem", "key.pem")?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
//! let (socket, _peer) = listener.accept()?;
//! socket.set_nonblocking(true)?;
//! let mut tls = acceptor.accept(socket)?; // no I/O yet
//! loop {
//!     match tls.handshake()? {
//!         HandshakeStatus::Complete => break,
//!         // An event loop parks the connection here and resumes on readiness.
//!         HandshakeStatus::Pending(Interest::Read) => { /* wait until readable */ }
//!         HandshakeStatus::Pending(Interest::Write) => { /* wait until writable */ }
//!     }
//! }
//! println!("ALPN: {:?}", tls.negotiated_alpn());
//! # Ok(()) }
//! # #[cfg(not(feature = "tls"))] fn main() {}
//! ```
//!
//! # The contract with an event loop
//!
//! 1. Accept, make the socket non-blocking, `acceptor.accept(socket)` (a `dup` of the
//!    socket, e.g. `TcpStream::try_clone`, works as the `Io`: it shares the
//!    non-blocking flag and the kernel buffers). No I/O happens yet.
//! 2. Call [`ServerStream::handshake`] when the socket is readable (or at once):
//!    `Pending(interest)` means park the connection on `interest` with a handshake
//!    deadline and call again on readiness; `Complete` means serve it; an error means
//!    close it (log at debug level with the peer address; [`ErrorKind::Tls`] for
//!    garbage, [`ErrorKind::Closed`] for a peer that left).
//! 3. After the handshake, [`ServerStream::negotiated_alpn`] says which protocol to
//!    run (`Some(b"h2")`: HTTP/2; otherwise HTTP/1.1).
//! 4. Reads and writes: `Read`/`Write` on the `ServerStream` (one owner), or
//!    [`SharedServerStream`] (`&self`, several threads, blocking through a readiness
//!    wait you supply). After `WouldBlock`, wait for [`ServerStream::wants`], which can
//!    be `Write` for a read.
//! 5. Before parking an idle connection, check [`ServerStream::buffered_plaintext`]:
//!    above zero, the next request is already decrypted in memory and the socket will
//!    never become readable for it, so serve it instead of parking. (A read that
//!    returned `WouldBlock` also means nothing is buffered.)
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::client::Stream;
use crate::{Error, ErrorKind, Result};

#[cfg(feature = "tls")]
mod native;
#[cfg(feature = "openssl-alpn")]
mod openssl;
mod shared;

#[cfg(feature = "tls")]
pub(crate) use native::TlsOptions;
#[cfg(feature = "tls")]
pub use native::{Certificate, Identity, NativeTlsConnector};
#[cfg(feature = "openssl-alpn")]
pub use openssl::{OpensslAcceptor, OpensslAcceptorBuilder};
pub use shared::SharedServerStream;

/// The ALPN protocol identifier of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol identifier of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A byte stream TLS can run over: anything `Read + Write + Send`. For the server side's
/// non-blocking handshakes it should be non-blocking (reads and writes return
/// [`io::ErrorKind::WouldBlock`] instead of waiting).
pub trait Io: Read + Write + Send + 'static {}

impl<T: Read + Write + Send + 'static> Io for T {}

/// Which readiness a TLS stream waits for after an operation returned
/// [`io::ErrorKind::WouldBlock`].
///
/// A TLS read may need to *write* (and a write to *read*): during a handshake, and in
/// TLS 1.3 after it (key updates). So wait for what [`ServerStream::wants`] says, not
/// for what the failed call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Wait until the socket is readable.
    Read,
    /// Wait until the socket is writable.
    Write,
}

/// The stream a server backend is given: the accepted connection, plus a record of
/// which direction last returned `WouldBlock` (so [`ServerStream::wants`] can tell the
/// event loop what to wait for, whatever the backend) and whether the peer closed or
/// the socket failed (so a failed handshake gets the right [`ErrorKind`]).
pub struct TlsIo {
    inner: Box<dyn Io>,
    status: Arc<IoStatus>,
}

/// What a [`TlsIo`] saw, shared so it survives a backend that drops the stream with a
/// failed handshake.
#[derive(Debug, Default)]
pub(crate) struct IoStatus(AtomicU8);

const BLOCKED_READ: u8 = 1;
const BLOCKED_WRITE: u8 = 2;
const EOF: u8 = 4;
const IO_ERROR: u8 = 8;

impl IoStatus {
    fn last_blocked(&self) -> Option<Interest> {
        match self.0.load(Ordering::Relaxed) & (BLOCKED_READ | BLOCKED_WRITE) {
            BLOCKED_READ => Some(Interest::Read),
            BLOCKED_WRITE => Some(Interest::Write),
            _ => None,
        }
    }
    fn has(&self, flag: u8) -> bool {
        self.0.load(Ordering::Relaxed) & flag != 0
    }
    fn set_blocked(&self, dir: Interest) {
        let bit = match dir {
            Interest::Read => BLOCKED_READ,
            Interest::Write => BLOCKED_WRITE,
        };
        let old = self.0.load(Ordering::Relaxed);
        let new = (old & !(BLOCKED_READ | BLOCKED_WRITE)) | bit;
        if new != old {
            self.0.store(new, Ordering::Relaxed);
        }
    }
    fn set(&self, flag: u8) {
        self.0.fetch_or(flag, Ordering::Relaxed);
    }
}

impl TlsIo {
    /// Wraps `io`. ([`Acceptor::accept`] does this; backends receive a `TlsIo`.)
    pub fn new(io: impl Io) -> TlsIo {
        TlsIo::from_box(Box::new(io))
    }

    fn from_box(inner: Box<dyn Io>) -> TlsIo {
        TlsIo {
            inner,
            status: Arc::default(),
        }
    }

    /// The direction of the most recent `WouldBlock`, if any.
    pub fn last_blocked(&self) -> Option<Interest> {
        self.status.last_blocked()
    }

    /// True once a read returned end-of-stream.
    pub fn saw_eof(&self) -> bool {
        self.status.has(EOF)
    }

    /// True once an I/O error other than `WouldBlock`/`Interrupted` was returned.
    pub fn saw_io_error(&self) -> bool {
        self.status.has(IO_ERROR)
    }

    /// The shared record, for backends that lose the stream when a handshake fails.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn status(&self) -> Arc<IoStatus> {
        self.status.clone()
    }

    fn note<T>(&mut self, r: io::Result<T>, dir: Interest) -> io::Result<T> {
        if let Err(e) = &r {
            match e.kind() {
                io::ErrorKind::WouldBlock => self.status.set_blocked(dir),
                io::ErrorKind::Interrupted => {}
                _ => self.status.set(IO_ERROR),
            }
        }
        r
    }
}

impl fmt::Debug for TlsIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIo")
            .field("last_blocked", &self.last_blocked())
            .field("eof", &self.saw_eof())
            .finish_non_exhaustive()
    }
}

impl Read for TlsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(r, Ok(0)) && !buf.is_empty() {
            self.status.set(EOF);
        }
        self.note(r, Interest::Read)
    }
}

impl Write for TlsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r, Interest::Write)
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.note(r, Interest::Write)
    }
}

/// A server-side TLS backend: starts handshakes over accepted streams.
///
/// Implemented by spindle for native-tls (feature `tls`) and OpenSSL (feature
/// `openssl-alpn`); implement it to plug in another TLS library, then wrap it with
/// [`Acceptor::new`].
pub trait TlsAcceptor: Send + Sync + 'static {
    /// Prepares a server handshake over `io` without doing any I/O yet; the caller then
    /// calls [`ServerHandshake::resume`] until it completes. Fails only if the backend
    /// cannot allocate a session.
    fn start(&self, io: TlsIo) -> Result<Box<dyn ServerHandshake>>;
}

/// A server handshake in progress.
pub trait ServerHandshake: Send {
    /// Advances the handshake as far as the stream allows without blocking.
    fn resume(self: Box<Self>) -> HandshakeStep;
    /// The stream underneath (for its [`TlsIo::last_blocked`] record).
    fn io(&self) -> &TlsIo;
}

/// What [`ServerHandshake::resume`] came to.
pub enum HandshakeStep {
    /// The handshake is complete.
    Done(Box<dyn ServerSession>),
    /// The stream would block; resume later (see [`TlsIo::last_blocked`]).
    Pending(Box<dyn ServerHandshake>),
    /// The handshake failed; the connection must be closed.
    Failed(Error),
}

impl fmt::Debug for HandshakeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeStep::Done(_) => f.write_str("Done"),
            HandshakeStep::Pending(_) => f.write_str("Pending"),
            HandshakeStep::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

/// An established server-side TLS session: plaintext `Read`/`Write` over the stream.
pub trait ServerSession: Read + Write + Send {
    /// The ALPN protocol selected during the handshake (`b"h2"`, `b"http/1.1"`), if any.
    fn negotiated_alpn(&self) -> Option<&[u8]>;
    /// How many decrypted bytes are held inside the TLS layer, readable without any I/O.
    /// An event loop must not park a connection (wait for socket readiness) while this
    /// is above zero: those bytes will never make the socket readable.
    fn buffered_plaintext(&self) -> usize;
    /// Sends a TLS `close_notify` alert (best effort; may return `WouldBlock`).
    fn close_notify(&mut self) -> io::Result<()>;
    /// The stream underneath (for its [`TlsIo::last_blocked`] record).
    fn io(&self) -> &TlsIo;
}

/// A server's TLS configuration: a cheap, clonable handle to any [`TlsAcceptor`].
///
/// Make one from a `native_tls::TlsAcceptor` (`Acceptor::from(acceptor)`), from PEM
/// files (`Acceptor::from_pem_files`, feature `tls`), from an `OpensslAcceptor`
/// (feature `openssl-alpn`), or from your own backend ([`Acceptor::new`]).
#[derive(Clone)]
pub struct Acceptor {
    backend: Arc<dyn TlsAcceptor>,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Wraps a TLS backend.
    pub fn new(backend: impl TlsAcceptor) -> Acceptor {
        Acceptor {
            backend: Arc::new(backend),
        }
    }

    /// Starts serving TLS on an accepted stream. No I/O happens here: drive the
    /// handshake with [`ServerStream::handshake`] (or just read, which drives it too).
    pub fn accept(&self, io: impl Io) -> Result<ServerStream> {
        self.accept_boxed(Box::new(io))
    }

    /// [`accept`](Acceptor::accept) for a stream that is already boxed.
    pub fn accept_boxed(&self, io: Box<dyn Io>) -> Result<ServerStream> {
        let handshake = self.backend.start(TlsIo::from_box(io))?;
        Ok(ServerStream {
            state: State::Handshaking(handshake),
        })
    }
}

/// How far a server handshake got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeStatus {
    /// Done: the stream carries plaintext now.
    Complete,
    /// The stream would block: wait for this readiness, then call
    /// [`ServerStream::handshake`] again.
    Pending(Interest),
}

enum State {
    Handshaking(Box<dyn ServerHandshake>),
    Ready(Box<dyn ServerSession>),
    Failed,
}

/// One server-side TLS connection, from the first handshake byte to the end: plaintext
/// `Read`/`Write` over the accepted stream.
///
/// Made by [`Acceptor::accept`]. Over a non-blocking stream every method is
/// non-blocking; after [`io::ErrorKind::WouldBlock`] (or
/// [`HandshakeStatus::Pending`]), wait for the readiness [`wants`](ServerStream::wants)
/// names and call again. Reading or writing before the handshake is complete drives
/// the handshake first.
///
/// Before parking a connection (waiting for the socket to become readable), check
/// [`buffered_plaintext`](ServerStream::buffered_plaintext): decrypted bytes already
/// inside the TLS layer never make the socket readable again.
pub struct ServerStream {
    state: State,
}

impl fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Handshaking(_) => "handshaking",
            State::Ready(_) => "ready",
            State::Failed => "failed",
        };
        f.debug_struct("ServerStream")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ServerStream {
    /// Advances the handshake as far as the stream allows without blocking.
    ///
    /// Errors: [`ErrorKind::Tls`] when the peer does not speak TLS or the handshake
    /// fails, [`ErrorKind::Closed`] when the peer closed the connection mid-handshake,
    /// [`ErrorKind::Io`] for socket errors. After an error the stream is unusable.
    pub fn handshake(&mut self) -> Result<HandshakeStatus> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Ready(s) => {
                self.state = State::Ready(s);
                Ok(HandshakeStatus::Complete)
            }
            State::Failed => Err(Error::new(
                ErrorKind::Tls,
                "the TLS handshake on this connection failed earlier",
            )),
            State::Handshaking(h) => match h.resume() {
                HandshakeStep::Done(s) => {
                    self.state = State::Ready(s);
                    Ok(HandshakeStatus::Complete)
                }
                HandshakeStep::Pending(h) => {
                    let wants = h.io().last_blocked().unwrap_or(Interest::Read);
                    self.state = State::Handshaking(h);
                    Ok(HandshakeStatus::Pending(wants))
                }
                HandshakeStep::Failed(e) => Err(e),
            },
        }
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    /// The readiness to wait for after the last call returned `WouldBlock` (or
    /// [`HandshakeStatus::Pending`]).
    pub fn wants(&self) -> Interest {
        let io = match &self.state {
            State::Handshaking(h) => h.io(),
            State::Ready(s) => s.io(),
            State::Failed => return Interest::Read,
        };
        io.last_blocked().unwrap_or(Interest::Read)
    }

    /// The ALPN protocol selected in the handshake (`b"h2"`, `b"http/1.1"`), if the
    /// handshake is complete and a protocol was selected.
    pub fn negotiated_alpn(&self) -> Option<&[u8]> {
        match &self.state {
            State::Ready(s) => s.negotiated_alpn(),
            _ => None,
        }
    }

    /// True when HTTP/2 was selected through ALPN.
    pub fn is_h2(&self) -> bool {
        self.negotiated_alpn() == Some(ALPN_H2)
    }

    /// Decrypted bytes held inside the TLS layer, readable now without any I/O. Never
    /// park a connection while this is above zero.
    pub fn buffered_plaintext(&self) -> usize {
        match &self.state {
            State::Ready(s) => s.buffered_plaintext(),
            _ => 0,
        }
    }

    /// Sends a TLS `close_notify` alert if the session is established (best effort:
    /// over a non-blocking stream it may return `WouldBlock`).
    pub fn close_notify(&mut self) -> io::Result<()> {
        match &mut self.state {
            State::Ready(s) => s.close_notify(),
            _ => Ok(()),
        }
    }

    fn session(&mut self) -> io::Result<&mut Box<dyn ServerSession>> {
        if !matches!(self.state, State::Ready(_)) {
            match self.handshake() {
                Ok(HandshakeStatus::Complete) => {}
                Ok(HandshakeStatus::Pending(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "TLS handshake in progress",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        match &mut self.state {
            State::Ready(s) => Ok(s),
            _ => Err(io::Error::other("TLS handshake failed")),
        }
    }
}

impl Read for ServerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.session()?.read(buf)
    }
}

impl Write for ServerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.session()?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            State::Ready(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Classifies a failed server handshake from what the stream underneath saw.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) fn server_handshake_error(
    status: &IoStatus,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    let (kind, msg) = if status.has(IO_ERROR) {
        (ErrorKind::Io, "socket error during the TLS handshake")
    } else if status.has(EOF) {
        (
            ErrorKind::Closed,
            "the peer closed the connection during the TLS handshake",
        )
    } else {
        (
            ErrorKind::Tls,
            "TLS handshake failed (the peer may not speak TLS)",
        )
    };
    Error::new(kind, msg).with_source(source)
}

/// A client-side TLS backend: runs a handshake over a connected stream.
///
/// spindle's [`Client`](crate::Client) calls it for `https://` URLs, directly over TCP
/// or through a proxy's `CONNECT` tunnel, with the stream's read and write timeouts set
/// to bound the handshake (and reset to none afterwards).
pub trait TlsConnector: Send + Sync + 'static {
    /// Runs a TLS handshake for `host` (a DNS name or an IP address, without brackets)
    /// over `stream` and returns the encrypted stream, which reports the negotiated ALPN
    /// protocol through [`Stream::negotiated_alpn`]. Errors are [`ErrorKind::Tls`] and
    /// name the host.
    fn connect(&self, host: &str, stream: Box<dyn Stream>) -> Result<Box<dyn Stream>>;
}

impl<T: TlsConnector + ?Sized> TlsConnector for Arc<T> {
    fn connect(&self, host: &str, stream: Box<dyn Stream>) -> Result<Box<dyn Stream>> {
        (**self).connect(host, stream)
    }
}
