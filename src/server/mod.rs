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
pub(crate) mod config;
pub(crate) mod h1conn;
mod handler;
mod request;
mod response;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

pub use handler::Handler;
pub use request::Request;
pub use response::{Fresh, Response, Streaming, WriteStatus};

use crate::runtime::pool::Pool;
use crate::{Error, ErrorKind, Result};
use config::Config;

/// A server bound to a socket, not yet serving. Configure it, then call
/// [`handle`](Server::handle).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: Config,
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
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error::new(ErrorKind::Io, "binding the listener").with_source(e))?;
        Ok(Server::from_listener(listener))
    }

    /// Serves on a listener the caller bound (socket activation, a port chosen
    /// elsewhere).
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            config: Config::default(),
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("reading the local address", e))
    }

    /// Whether connections stay open for more requests (default: true).
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.config.keep_alive = enabled;
        self
    }

    /// How long a kept-alive connection may wait for its next request (default 60 s;
    /// `None` waits forever).
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

    /// How much of a request body the handler left unread is read and thrown away to
    /// keep the connection (default 256 KiB); beyond it the connection is closed.
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.config.drain_limit = bytes;
        self
    }

    /// The worker count [`handle`](Server::handle) uses: 8 per CPU core, at least 32.
    ///
    /// A worker serves one connection at a time while it is open, and blocking handlers
    /// (database calls, file reads) spend most of their time waiting, so the pool is
    /// sized well above the core count; the idle timeout returns workers held by quiet
    /// keep-alive clients.
    pub fn default_threads() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores * 8).max(32)
    }

    /// Starts serving with `handler` on [`default_threads`](Server::default_threads)
    /// workers.
    pub fn handle<H: Handler>(self, handler: H) -> Result<Listening> {
        self.handle_threads(handler, Server::default_threads())
    }

    /// Starts serving with `handler` on `threads` workers.
    pub fn handle_threads<H: Handler>(self, handler: H, threads: usize) -> Result<Listening> {
        let pool = Pool::start(self.listener, handler, self.config, threads)
            .map_err(|e| Error::io("starting the server threads", e))?;
        Ok(Listening { pool })
    }
}

/// A running server. Dropping it closes the server; keep it, and call
/// [`join`](Listening::join) to serve until another thread calls
/// [`close`](Listening::close).
pub struct Listening {
    pool: Pool,
}

impl Listening {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.pool.local_addr
    }

    /// Blocks until the server has been closed (from another thread).
    pub fn join(&self) {
        self.pool.wait()
    }

    /// Stops accepting at once, cuts the open connections, and returns when every
    /// server thread has ended.
    pub fn close(&self) {
        self.pool.close()
    }

    /// Requests answered so far (all connections that have ended).
    pub fn served_requests(&self) -> u64 {
        self.pool
            .shared
            .served_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.pool.close();
    }
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("local_addr", &self.pool.local_addr)
            .finish()
    }
}
