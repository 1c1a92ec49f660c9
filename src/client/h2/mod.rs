//! The HTTP/2 client over one connection: a blocking counterpart of hyper's
//! `client::conn::http2`.
//!
//! [`handshake`] takes a stream the caller opened (a `TcpStream`, a `UnixStream`, a
//! `(reader, writer)` pair, or a TLS stream as `Box<dyn client::Stream>`; see
//! [`SplitStream`]), writes the connection preface and gives two things:
//!
//! - a [`SendRequest`], `Clone + Send + Sync`: any number of threads send requests
//!   through clones of it at once, each on its own stream, writing their own HEADERS and
//!   DATA (no thread switch on the way out);
//! - a [`Connection`], the driver, which the caller [`run`](Connection::run)s on a thread
//!   of its own: it reads the socket and hands each response head and body bytes to the
//!   thread waiting for them.
//!
//! Response bodies ([`RecvBody`]) are `io::Read` and flow-controlled: the server may send
//! only as far ahead as the body is read (one stream window, 1 MiB by default). Request
//! bodies are sent as the server's window allows. The pooled [`Client`](crate::Client)
//! is built on this module (prior knowledge for `http://` with
//! [`ClientBuilder::http2_prior_knowledge`](crate::client::ClientBuilder::http2_prior_knowledge),
//! and `https://` when ALPN picks `h2`).
//!
//! ```
//! use std::io::Read;
//! use std::net::TcpStream;
//! use spindle::client::conn::http2;
//! use spindle::server::{Request, Response, Server};
//!
//! // spindle's server speaks HTTP/2 with prior knowledge on its HTTP/1.1 port.
//! let server = Server::http("127.0.0.1:0")?
//!     .handle(|req: Request, res: Response| { res.send(req.path().as_bytes()).ok(); })?;
//! let stream = TcpStream::connect(server.local_addr())?;
//! let (sender, connection) = http2::handshake(stream)?;
//! let driver = std::thread::spawn(move || connection.run());
//!
//! let threads: Vec<_> = ["/one", "/two", "/three"]
//!     .into_iter()
//!     .map(|path| {
//!         let sender = sender.clone(); // one connection, three streams at once
//!         let url = format!("http://{}{path}", server.local_addr());
//!         std::thread::spawn(move || -> spindle::Result<String> {
//!             let req = spindle::http::Request::get(url).body(()).unwrap();
//!             let res = sender.send_request(req)?;
//!             assert_eq!(res.version(), spindle::http::Version::HTTP_2);
//!             let mut text = String::new();
//!             res.into_body().read_to_string(&mut text)?;
//!             Ok(text)
//!         })
//!     })
//!     .collect();
//! for (t, path) in threads.into_iter().zip(["/one", "/two", "/three"]) {
//!     assert_eq!(t.join().unwrap()?, path);
//! }
//! drop(sender); // the last sender gone: GOAWAY, and the driver returns
//! driver.join().unwrap()?;
//! server.close();
//! # Ok::<(), spindle::Error>(())
//! ```
mod body;
mod driver;
mod io;
mod send;
mod shared;
mod wait;

use std::sync::Arc;
use std::time::Instant;

pub use body::RecvBody;
pub use driver::Connection;
pub use io::{SplitStream, StreamWriter};
pub use send::SendRequest;

pub(crate) use send::{Failed, SendOptions};

use crate::h2::proto;
use crate::{Error, Result};
use shared::Shared;

/// Settings of an HTTP/2 client connection; [`Builder::handshake`] applies them.
#[derive(Debug, Clone)]
pub struct Builder {
    config: proto::Config,
}

impl Default for Builder {
    fn default() -> Self {
        // A client accepts no streams (push is disabled); only responses are bounded.
        let config = proto::Config {
            max_concurrent_streams: 0,
            ..proto::Config::default()
        };
        Builder { config }
    }
}

impl Builder {
    /// Default settings: a 1 MiB stream window (the most of one response body buffered
    /// ahead of the reader), a 4 MiB connection window, 64 KiB response heads.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE: how far ahead of the reader each response body may
    /// be sent (and buffered).
    pub fn initial_stream_window(mut self, bytes: u32) -> Self {
        self.config.initial_stream_window = bytes;
        self
    }

    /// The connection window: the bound on body bytes buffered for all streams together.
    pub fn initial_connection_window(mut self, bytes: u32) -> Self {
        self.config.initial_connection_window = bytes;
        self
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest response head (decoded) accepted.
    pub fn max_header_list_size(mut self, bytes: u32) -> Self {
        self.config.max_header_list_size = bytes;
        self
    }

    /// The configuration a default builder uses (a starting point for
    /// [`config`](Builder::config)).
    pub fn default_config() -> proto::Config {
        Builder::default().config
    }

    /// The whole protocol configuration, for the settings not covered above (for
    /// example `settings_timeout`, how long the server has to acknowledge our SETTINGS).
    /// `max_concurrent_streams` is best left at 0: a client accepts no streams.
    pub fn config(mut self, config: proto::Config) -> Self {
        self.config = config;
        self
    }

    /// Splits `io`, writes the client preface and SETTINGS, and returns the sender and
    /// the driver to run. Requests may be sent at once, before the server's SETTINGS.
    pub fn handshake<S: SplitStream>(&self, io: S) -> Result<(SendRequest, Connection)> {
        let halves = io::split(io).map_err(|e| Error::io("splitting the stream", e))?;
        self.start(halves)
    }

    pub(crate) fn handshake_boxed(
        &self,
        stream: Box<dyn crate::client::Stream>,
    ) -> Result<(SendRequest, Connection)> {
        let halves = io::split_boxed(stream).map_err(|e| Error::io("splitting the stream", e))?;
        self.start(halves)
    }

    fn start(&self, (reader, writer): io::Halves) -> Result<(SendRequest, Connection)> {
        let conn = proto::Connection::client(self.config.clone(), Instant::now());
        let shared = Arc::new(Shared::new(conn, writer));
        // The preface goes out now, so a dead stream fails here rather than later.
        let st = shared.flush(shared.lock());
        if let Some(f) = &st.failure {
            return Err(f.to_error());
        }
        drop(st);
        Ok((
            SendRequest {
                shared: shared.clone(),
            },
            Connection { shared, reader },
        ))
    }
}

/// [`Builder::handshake`] with default settings.
pub fn handshake<S: SplitStream>(io: S) -> Result<(SendRequest, Connection)> {
    Builder::default().handshake(io)
}
