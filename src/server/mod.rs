//! The HTTP server: [`Server`] binds and configures, [`Handler`] answers,
//! [`Request`] and [`Response`] are one exchange, [`Listening`] controls the running
//! server.
//!
//! ```no_run
//! use spindle::server::{Request, Response, Server};
//!
//! let listening = Server::http("127.0.0.1:3000")?
//!     .handle(|_req: Request, res: Response| {
//!         res.send(b"Hello, World!").ok();
//!     })?;
//! println!("listening on {}", listening.local_addr());
//! listening.join();
//! # Ok::<(), spindle::Error>(())
//! ```
//!
//! # How requests are run
//!
//! A few event-loop threads (one per core) watch every connection (epoll on Linux,
//! kqueue on macOS and the BSDs, IOCP on Windows; see `runtime::poll`). When a
//! request arrives, the loop thread runs the handler itself, with no hand-off to another
//! thread. If the handler blocks — reading a body that has not arrived, writing to a full
//! socket, or waiting on anything of its own for more than about 10 ms — the loop passes
//! to a spare thread so other connections keep being served, and the blocked thread
//! rejoins the spares when its handler returns. Idle keep-alive connections hold no
//! thread and no buffer. The number of threads is bounded (see
//! [`Server::handle_threads`]).
pub(crate) mod config;
pub(crate) mod h2c_upgrade;
pub(crate) mod h2conn;
mod handler;
pub(crate) mod http1;
mod request;
mod response;
mod upgrade;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::runtime::engine::ShutdownReport;
pub use crate::runtime::listener::{ListenAddr, ListenOptions};
pub use config::{MinRate, Overload};
pub use handler::Handler;
pub use request::Request;
pub use response::{Fresh, Response, ResponseSink, Streaming, WriteStatus};
pub use upgrade::{TlsUpgraded, Upgraded, UpgradedStream};

use crate::runtime::engine::{self, ConnHook, Running};
use crate::runtime::listener::Listener;
use crate::{Error, ErrorKind, Result};
use config::Config;

/// A connection's state, reported to the hook set with [`Server::on_connection`] (like
/// Go's `http.ConnState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Just accepted.
    New,
    /// Being served: its socket became readable and a thread is working on it.
    Active,
    /// Parked between requests (no thread held).
    Idle,
    /// Closed.
    Closed,
}

/// A connection state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnEvent {
    /// A number unique to the connection for the server's lifetime.
    pub id: u64,
    /// The peer (TCP only).
    pub peer: Option<SocketAddr>,
    /// The state entered.
    pub state: ConnState,
}

/// A server bound to a socket, not yet serving. Configure it, then call
/// [`handle`](Server::handle).
pub struct Server {
    listener: Listener,
    config: Config,
    loops: usize,
    hook: Option<ConnHook>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen_addr", &self.listener.listen_addr().ok())
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// Binds a TCP listener to `addr`.
    ///
    /// ```
    /// let server = spindle::server::Server::http("127.0.0.1:0")?;
    /// assert!(server.local_addr()?.port() != 0);
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn http(addr: impl ToSocketAddrs) -> Result<Server> {
        Server::bind(addr, ListenOptions::default())
    }

    /// Binds a TCP listener with options, for example SO_REUSEPORT so that several
    /// processes share a port (or a new process starts while the old one drains).
    ///
    /// SO_REUSEPORT is Unix only: on Windows `reuse_port: true` fails with
    /// [`ErrorKind::Unsupported`].
    ///
    /// ```
    /// use spindle::server::{ListenOptions, Server};
    /// let opts = ListenOptions { reuse_port: true, ..ListenOptions::default() };
    /// # #[cfg(unix)] {
    /// let a = Server::bind("127.0.0.1:0", opts)?;
    /// let b = Server::bind(a.local_addr()?, opts)?; // the same port, twice
    /// # }
    /// # #[cfg(windows)]
    /// # assert_eq!(Server::bind("127.0.0.1:0", opts).unwrap_err().kind(), spindle::ErrorKind::Unsupported);
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs, options: ListenOptions) -> Result<Server> {
        let listener = Listener::bind_tcp(addr, &options).map_err(|e| {
            let kind = match e.kind() {
                std::io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                _ => ErrorKind::Io,
            };
            Error::new(kind, "binding the listener").with_source(e)
        })?;
        Ok(Server::with_listener(listener))
    }

    /// Binds a TCP listener to `addr` and serves HTTPS on it: every connection starts
    /// with a TLS handshake through `tls` (a [`tls::Acceptor`](crate::tls::Acceptor), or
    /// anything that converts into one, such as a `native_tls::TlsAcceptor`).
    ///
    /// Handshakes are driven by the event loops without blocking: a client that sends
    /// nothing, or garbage, holds no thread and is cut by the
    /// [handshake timeout](Server::tls_handshake_timeout); failed handshakes are logged
    /// at debug level with the peer address. After the handshake, connections are
    /// served exactly like plain ones (idle keep-alive connections hold no thread):
    /// as HTTP/2 when ALPN selected `h2` (the acceptors spindle builds from PEM offer
    /// `h2` and `http/1.1`), as HTTP/1.1 otherwise.
    ///
    /// ```no_run
    /// # #[cfg(feature = "tls")]
    /// # fn main() -> spindle::Result<()> {
    /// use spindle::server::{Request, Response, Server};
    /// use spindle::tls::Acceptor;
    ///
    /// let tls = Acceptor::from_pem_files("cert.pem", "key.pem")?;
    /// let listening = Server::https("127.0.0.1:8443", tls)?
    ///     .handle(|_req: Request, res: Response| {
    ///         res.send(b"Hello, World!").ok();
    ///     })?;
    /// listening.join();
    /// # Ok(()) }
    /// # #[cfg(not(feature = "tls"))] fn main() {}
    /// ```
    pub fn https(addr: impl ToSocketAddrs, tls: impl Into<crate::tls::Acceptor>) -> Result<Server> {
        Ok(Server::http(addr)?.tls(tls))
    }

    /// Serves HTTPS on a TCP listener the caller bound; see [`Server::https`].
    pub fn from_listener_tls(
        listener: TcpListener,
        tls: impl Into<crate::tls::Acceptor>,
    ) -> Server {
        Server::from_listener(listener).tls(tls)
    }

    /// Speaks TLS on every accepted connection (HTTPS; also over a Unix socket); see
    /// [`Server::https`].
    pub fn tls(mut self, acceptor: impl Into<crate::tls::Acceptor>) -> Self {
        self.config.tls = Some(acceptor.into());
        self
    }

    /// How long a TLS handshake may take, from accepting the connection to the
    /// handshake's last message (default 10 seconds). A client that is slower, silent,
    /// or not speaking TLS is disconnected; it never holds a thread meanwhile.
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.tls_handshake_timeout = timeout;
        self
    }

    /// Serves on a TCP listener the caller bound (socket activation, a port chosen
    /// elsewhere, a descriptor inherited from a supervisor via `FromRawFd`, or
    /// `FromRawSocket` on Windows).
    pub fn from_listener(listener: TcpListener) -> Server {
        Server::with_listener(Listener::Tcp(listener))
    }

    /// Binds a Unix domain socket at `path`. Unix only (Linux, macOS, the BSDs): `std`
    /// has no Unix domain sockets on Windows.
    #[cfg(unix)]
    pub fn unix(path: impl AsRef<Path>) -> Result<Server> {
        let listener = Listener::bind_unix(path.as_ref())
            .map_err(|e| Error::new(ErrorKind::Io, "binding the unix socket").with_source(e))?;
        Ok(Server::with_listener(listener))
    }

    /// Serves on a Unix domain socket listener the caller bound. Unix only.
    #[cfg(unix)]
    pub fn from_unix_listener(listener: UnixListener) -> Server {
        Server::with_listener(Listener::Unix(listener))
    }

    fn with_listener(listener: Listener) -> Server {
        Server {
            listener,
            config: Config::default(),
            loops: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hook: None,
        }
    }

    /// The TCP address the listener is bound to (an error for a Unix socket).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        match self.listener.listen_addr() {
            Ok(ListenAddr::Tcp(addr)) => Ok(addr),
            Ok(ListenAddr::Unix(_)) => Err(Error::new(
                ErrorKind::Usage,
                "a unix socket has no TCP address",
            )),
            Err(e) => Err(Error::io("reading the local address", e)),
        }
    }

    /// Whether connections stay open for more requests (default: true).
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.config.keep_alive = enabled;
        self
    }

    /// How long a kept-alive connection may wait for its next request (default 60 s;
    /// `None` waits forever). A waiting connection holds no thread.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long a request head may take to arrive once it has begun, and a new
    /// connection may take to send its first head (default 10 s). This is what cuts
    /// off slowloris clients; an expired head gets 408.
    pub fn head_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.head_timeout = timeout;
        self
    }

    /// How long one read of a request body may block (default 30 s).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// How long one write of a response may block (default 30 s).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// The most bytes a request head may take (default 64 KiB); larger gets 431.
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_head_bytes = bytes.max(64);
        self
    }

    /// The most header fields a request may carry (default 100); more gets 431.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.config.limits.max_headers = count.max(1);
        self
    }

    /// The longest request target accepted (default 8 KiB); longer gets 414.
    pub fn max_uri_len(mut self, bytes: usize) -> Self {
        self.config.limits.max_uri_len = bytes.max(1);
        self
    }

    /// Accepts request heads whose lines end in a bare LF instead of CRLF (default off:
    /// a bare LF anywhere in a head gets 400). RFC 9112 §2.2 lets a recipient accept
    /// LF alone, but a server behind a front end that splits lines only on CRLF would
    /// then see fields the front end did not (request smuggling), so only heads that
    /// use LF throughout are accepted; a head that mixes the two is still refused.
    ///
    /// ```no_run
    /// let server = spindle::server::Server::http("127.0.0.1:0")?.allow_lf_line_endings(true);
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn allow_lf_line_endings(mut self, allow: bool) -> Self {
        self.config.limits.allow_lf_line_endings = allow;
        self
    }

    /// How much of a request body the handler left unread is read and thrown away to
    /// keep the connection (default 256 KiB); beyond it the connection is closed.
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.config.drain_limit = bytes;
        self
    }

    /// How much of a request body the event loop reads before it runs the handler
    /// (default 64 KiB; 0 turns it off). A body that fits arrives whole before the
    /// handler runs, so a client that sends it slowly holds no thread, only this much
    /// memory; the handler reads it from memory. Of a larger body, the first
    /// `body_buffer` bytes are read this way and the rest streams to the handler under
    /// [`min_body_rate`](Server::min_body_rate). `Expect: 100-continue` keeps its
    /// meaning: [`Handler::check_continue`] decides before anything is read. Applies
    /// to HTTP/2 streams too (a stream's handler starts once its body is complete or
    /// this much is buffered).
    pub fn body_buffer(mut self, bytes: usize) -> Self {
        self.config.body_buffer = bytes;
        self
    }

    /// The slowest a request body may arrive (default [`MinRate::DEFAULT`]: 500 bytes
    /// a second with 10 s of slack; `None` turns it off). Checked while the loop waits
    /// for a body (see [`body_buffer`](Server::body_buffer)) and while a handler reads
    /// one; past it the handler's read fails with [`ErrorKind::Timeout`] (an
    /// `io::Error` of kind `TimedOut` carrying a [`spindle::Error`](crate::Error)), the
    /// connection closes and a log line says why.
    pub fn min_body_rate(mut self, rate: Option<MinRate>) -> Self {
        self.config.min_body_rate = rate;
        self
    }

    /// The longest a whole request body may take to arrive, from the end of its head
    /// (default `None`: only [`min_body_rate`](Server::min_body_rate) and
    /// [`read_timeout`](Server::read_timeout) bound it).
    pub fn body_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.body_timeout = timeout;
        self
    }

    /// How many response bytes a connection may hold that the socket did not take yet
    /// (default 256 KiB). A handler whose answer fits returns at once and the event loop
    /// writes the rest as the client reads; only a handler that streams more waits, under
    /// [`min_write_rate`](Server::min_write_rate) and
    /// [`write_timeout`](Server::write_timeout).
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.config.write_buffer = bytes;
        self
    }

    /// The slowest a client may take a response a handler waits to write (default
    /// [`MinRate::DEFAULT`]; `None` turns it off); past it the handler's write fails
    /// with [`ErrorKind::Timeout`] and the connection closes.
    pub fn min_write_rate(mut self, rate: Option<MinRate>) -> Self {
        self.config.min_write_rate = rate;
        self
    }

    /// The most connections open at once (default 100,000); beyond it new connections
    /// are answered 503 and closed.
    pub fn max_connections(mut self, count: usize) -> Self {
        self.config.max_connections = count.max(1);
        self
    }

    /// What to do with new connections while every thread is busy in a handler
    /// (default [`Overload::Backpressure`]).
    pub fn overload(mut self, policy: Overload) -> Self {
        self.config.overload = policy;
        self
    }

    /// How many event loops to run (default: the CPUs this process may use).
    pub fn event_loops(mut self, loops: usize) -> Self {
        self.loops = loops.max(1);
        self
    }

    /// Calls `hook` on every connection state change (for metrics). It runs on the
    /// server's threads, so keep it quick.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicI64, Ordering};
    /// use std::sync::Arc;
    /// use spindle::server::{ConnState, Server};
    ///
    /// let open = Arc::new(AtomicI64::new(0));
    /// let gauge = open.clone();
    /// let server = Server::http("127.0.0.1:0")?.on_connection(move |event| match event.state {
    ///     ConnState::New => { gauge.fetch_add(1, Ordering::Relaxed); }
    ///     ConnState::Closed => { gauge.fetch_sub(1, Ordering::Relaxed); }
    ///     _ => {}
    /// });
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn on_connection(mut self, hook: impl Fn(&ConnEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The thread bound [`handle`](Server::handle) uses: 256.
    ///
    /// Threads are made on demand: one per event loop runs handlers inline, and another
    /// is added only while a handler blocks. The bound is how many handlers may block at
    /// once (on bodies, slow clients, databases); 256 blocked handlers cost little memory
    /// (stacks are reserved, not committed), and past the bound the server applies its
    /// [`Overload`] policy instead of growing.
    pub fn default_threads() -> usize {
        256
    }

    /// Starts serving with `handler`, with up to [`default_threads`](Server::default_threads)
    /// threads.
    pub fn handle<H: Handler>(self, handler: H) -> Result<Listening> {
        self.handle_threads(handler, Server::default_threads())
    }

    /// Starts serving with `handler`, with at most `threads` threads (at least one more
    /// than the number of event loops).
    pub fn handle_threads<H: Handler>(self, handler: H, threads: usize) -> Result<Listening> {
        let addr = self
            .listener
            .listen_addr()
            .map_err(|e| Error::io("reading the local address", e))?;
        let running = engine::start(
            self.listener,
            handler,
            self.config,
            self.loops,
            threads,
            self.hook,
        )
        .map_err(|e| Error::io("starting the server", e))?;
        Ok(Listening { running, addr })
    }
}

/// A running server. Dropping it closes the server; keep it, and call
/// [`join`](Listening::join) to serve until another thread calls
/// [`close`](Listening::close) or [`shutdown`](Listening::shutdown).
pub struct Listening {
    running: Running,
    addr: ListenAddr,
}

impl Listening {
    /// The TCP address the server listens on (`0.0.0.0:0` for a Unix socket; see
    /// [`listen_addr`](Listening::listen_addr)).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.addr {
            ListenAddr::Tcp(addr) => *addr,
            ListenAddr::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Where the server listens, TCP or Unix.
    pub fn listen_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Blocks until the server has been shut down (from another thread).
    pub fn join(&self) {
        self.running.wait()
    }

    /// Stops at once: stops accepting, cuts open connections, and returns when every
    /// server thread has ended.
    pub fn close(&self) {
        self.running.close()
    }

    /// Graceful shutdown: stops accepting at once, closes idle connections, lets
    /// requests in flight (and requests already received behind them) finish, and at
    /// `deadline` cuts whatever is still open. Returns how many connections finished
    /// and how many were cut.
    pub fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        self.running.shutdown(deadline)
    }

    /// Requests answered so far. The count is updated when the event loop is done with a
    /// connection's ready requests, so it may trail the last answer a client has read by
    /// a moment.
    pub fn served_requests(&self) -> u64 {
        self.running
            .core
            .served_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.running.core.live_connections()
    }

    /// Server threads alive right now (event loops, blocked handlers, spares).
    pub fn threads(&self) -> usize {
        self.running.core.live_threads()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.running.close();
    }
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Blocks until the process receives SIGTERM or SIGINT, and returns which one.
///
/// The library installs no signal handler unless this is called; calling it installs
/// handlers for those two signals for the rest of the process's life. The usual use is
/// a graceful stop (see `examples/graceful.rs`):
///
/// - **Unix** (Linux, macOS, the BSDs): SIGTERM (what `kill`, systemd and container
///   runtimes send) or SIGINT (Ctrl-C), delivered through a self-pipe
///   (`signal_hook::iterator`): the call sleeps until one arrives.
/// - **Windows**: Ctrl-C in the console (which the C runtime reports as SIGINT), or
///   SIGTERM raised inside the process; Windows sends no SIGTERM from outside.
///   signal-hook offers no blocking wait there, so the handlers set a flag that this
///   call looks at every 50 ms.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use spindle::server::{Request, Response, Server};
///
/// let listening = Server::http("127.0.0.1:3000")?.handle(|_req: Request, res: Response| {
///     res.send(b"hi").ok();
/// })?;
/// spindle::server::wait_for_shutdown_signal()?;
/// let report = listening.shutdown(Instant::now() + Duration::from_secs(10));
/// eprintln!("{} connections finished, {} cut", report.finished, report.cut);
/// # Ok::<(), spindle::Error>(())
/// ```
#[cfg(feature = "signals")]
pub fn wait_for_shutdown_signal() -> Result<i32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    #[cfg(unix)]
    {
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .map_err(|e| Error::io("installing signal handlers", e))?;
        Ok(signals.forever().next().unwrap_or(SIGTERM))
    }
    #[cfg(not(unix))]
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // `signal_hook::iterator` is Unix only; a flag is what a handler may safely set.
        let got = Arc::new(AtomicUsize::new(0));
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register_usize(signal, got.clone(), signal as usize)
                .map_err(|e| Error::io("installing signal handlers", e))?;
        }
        loop {
            match got.load(Ordering::SeqCst) {
                0 => std::thread::sleep(Duration::from_millis(50)),
                signal => return Ok(signal as i32),
            }
        }
    }
}
