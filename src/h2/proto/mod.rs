//! The HTTP/2 connection state machine (RFC 9113), sans I/O, for both roles.
//!
//! A [`Connection`] owns everything one HTTP/2 connection needs except the socket: the
//! frame decoder, the HPACK contexts, the stream table (RFC 9113 §5.1 states, stream-id
//! rules), both levels of flow control, SETTINGS/PING/GOAWAY handling and the attack
//! limits. It never blocks, never reads a clock and never spawns anything:
//!
//! - bytes read from the socket go into [`Connection::recv`] (any split), which returns how
//!   many it consumed and queues [`Event`]s, taken with [`Connection::poll_event`];
//! - the application answers through [`Connection::send_response`],
//!   [`Connection::send_data`], [`Connection::send_trailers`], [`Connection::reset`],
//!   [`Connection::open_stream`] (client), [`Connection::release_capacity`], ...;
//! - everything to write is appended to one output buffer, drained with
//!   [`Connection::output`] + [`Connection::advance_output`] (zero-copy) or
//!   [`Connection::take_output`] / [`Connection::pending_output`];
//! - time enters through [`Connection::tick`], with [`Connection::next_timeout`] telling
//!   when it is next needed (SETTINGS ACK timeout, graceful-shutdown PING, reset budget).
//!
//! A whole exchange, our client role against our server role, in memory:
//!
//! ```
//! use std::time::Instant;
//! use spindle::h2::proto::{Config, Connection, Event};
//!
//! let now = Instant::now();
//! let mut client = Connection::client(Config::default(), now);
//! let mut server = Connection::server(Config::default(), now);
//!
//! let req = http::Request::get("http://example.com/hello").body(()).unwrap();
//! let id = client.open_stream(&req, true).unwrap();
//!
//! // Client -> server.
//! let bytes = client.take_output();
//! assert_eq!(server.recv(&bytes).unwrap(), bytes.len());
//! let mut got_request = false;
//! while let Some(ev) = server.poll_event() {
//!     if let Event::Request { id, head, end_stream } = ev {
//!         assert_eq!(head.uri().path(), "/hello");
//!         assert!(end_stream);
//!         let res = http::Response::builder().status(200).body(()).unwrap();
//!         server.send_response(id, &res, false).unwrap();
//!         assert_eq!(server.send_data(id, b"hi", true).unwrap(), 2);
//!         got_request = true;
//!     }
//! }
//! assert!(got_request);
//!
//! // Server -> client.
//! let bytes = server.take_output();
//! client.recv(&bytes).unwrap();
//! let mut body = Vec::new();
//! while let Some(ev) = client.poll_event() {
//!     match ev {
//!         Event::Response { head, .. } => assert_eq!(head.status(), 200),
//!         Event::Data { id: sid, data, .. } => {
//!             assert_eq!(sid, id);
//!             body.extend_from_slice(data);
//!             let n = data.len();
//!             client.release_capacity(sid, n);
//!         }
//!         _ => {}
//!     }
//! }
//! assert_eq!(body, b"hi");
//! ```

mod conn;
mod streams;

use std::time::Duration;

use http::HeaderMap;

use super::frame::StreamId;
use super::{H2Error, Reason};

pub use conn::Connection;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts streams opened by the client (odd identifiers); never pushes.
    Server,
    /// Opens streams (odd identifiers); sends SETTINGS_ENABLE_PUSH = 0.
    Client,
}

/// Limits and policies of a [`Connection`]. Every bound has a default fit for a server on
/// the open Internet; all are per connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our SETTINGS_INITIAL_WINDOW_SIZE: how many bytes of one stream's body the peer may
    /// send ahead of the application reading them (the per-stream buffering bound).
    /// Default 1 MiB.
    pub initial_stream_window: u32,
    /// The connection receive window we advertise (the bound on body bytes buffered for
    /// all streams together). Default 4 MiB.
    pub initial_connection_window: u32,
    /// Our SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused with
    /// REFUSED_STREAM. Default 128.
    pub max_concurrent_streams: u32,
    /// Our SETTINGS_MAX_FRAME_SIZE. Default 16 384.
    pub max_frame_size: u32,
    /// Our SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the HPACK decoder. A request over it
    /// surfaces as [`Event::HeadersTooLarge`] (answer 431). Default 64 KiB.
    pub max_header_list_size: u32,
    /// Our SETTINGS_HEADER_TABLE_SIZE (HPACK dynamic table the peer may use). Default 4096.
    pub header_table_size: u32,
    /// Bound on one compressed header block (HEADERS + CONTINUATION). Default 64 KiB.
    pub max_header_block_size: usize,
    /// Bound on the number of CONTINUATION frames of one header block. Default 64.
    pub max_continuations: usize,
    /// How long the peer has to acknowledge our SETTINGS before SETTINGS_TIMEOUT; also how
    /// long the graceful GOAWAY waits for its PING. Default 10 s.
    pub settings_timeout: Duration,
    /// Control frames we owe the peer (SETTINGS ACK, PING ACK, RST_STREAM) that may sit in
    /// the output buffer before the connection is closed with ENHANCE_YOUR_CALM: a
    /// SETTINGS or PING flood from a peer that does not read. Default 1000.
    pub max_queued_control_frames: usize,
    /// Entries allowed in one SETTINGS frame. Default 64.
    pub max_settings_entries: usize,
    /// Burst of streams the peer may reset (or make us reset) before the reset rate limit
    /// applies (CVE-2023-44487 "rapid reset"). Default 1000 (as nghttp2).
    pub reset_burst: u32,
    /// Sustained resets per second allowed after the burst. Default 33 (as nghttp2).
    pub reset_rate: u32,
    /// Frames that carry nothing (empty DATA without END_STREAM, PRIORITY, unknown types)
    /// allowed in a row before ENHANCE_YOUR_CALM. Default 1000.
    pub max_empty_frames: u32,
    /// Output buffer bound: above it [`Connection::recv`] stops consuming input,
    /// [`Connection::wants_read`] is false and [`Connection::send_data`] accepts nothing
    /// until the output is drained. Also bounds DATA bytes held in unpolled events.
    /// Default 1 MiB.
    pub max_output_buffer: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            initial_stream_window: 1 << 20,
            initial_connection_window: 4 << 20,
            max_concurrent_streams: 128,
            max_frame_size: super::frame::DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 64 * 1024,
            header_table_size: 4096,
            max_header_block_size: super::headers::DEFAULT_MAX_BLOCK_SIZE,
            max_continuations: super::headers::DEFAULT_MAX_CONTINUATIONS,
            settings_timeout: Duration::from_secs(10),
            max_queued_control_frames: 1000,
            max_settings_entries: 64,
            reset_burst: 1000,
            reset_rate: 33,
            max_empty_frames: 1000,
            max_output_buffer: 1 << 20,
        }
    }
}

/// Something the peer did, queued by [`Connection::recv`] (or [`Connection::tick`], or an
/// output drain) and taken with [`Connection::poll_event`].
///
/// `Data` borrows from the connection: use it (copy it into the stream's body buffer)
/// before calling another `&mut self` method.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Server role: a new request. `end_stream` means it has no body.
    Request {
        /// The new stream.
        id: StreamId,
        /// Method, URI, headers; version HTTP/2.
        head: http::Request<()>,
        /// No DATA follows.
        end_stream: bool,
    },
    /// Server role: a request whose header list exceeded our SETTINGS_MAX_HEADER_LIST_SIZE.
    /// The stream is open; answer it, typically with 431 and END_STREAM (then
    /// [`Connection::reset`] with NO_ERROR if the request is still open).
    HeadersTooLarge {
        /// The stream.
        id: StreamId,
        /// The request had END_STREAM.
        end_stream: bool,
    },
    /// Client role: a response head. Informational (1xx) heads come first, each as its own
    /// event with `end_stream` false; the final one follows.
    Response {
        /// The stream.
        id: StreamId,
        /// Status and headers; version HTTP/2.
        head: http::Response<()>,
        /// No DATA follows.
        end_stream: bool,
    },
    /// Body bytes. Padding is already accounted for; once the application has consumed
    /// these bytes, call [`Connection::release_capacity`] with `data.len()` so the peer
    /// may send more. An empty `data` only carries `end_stream`.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes, padding removed.
        data: &'a [u8],
        /// This is the end of the body.
        end_stream: bool,
    },
    /// Trailers; the body is complete.
    Trailers {
        /// The stream.
        id: StreamId,
        /// The trailer fields.
        trailers: HeaderMap,
    },
    /// The stream ended abnormally: reset by the peer (`remote`), refused by a GOAWAY
    /// whose last-stream-id is below it (client role, reason REFUSED_STREAM: never
    /// processed, safe to retry), or reset by us because the peer broke a stream-level
    /// rule. The stream is gone; drop what was buffered for it (its flow-control credit
    /// is returned automatically).
    Reset {
        /// The stream.
        id: StreamId,
        /// The error code.
        reason: Reason,
        /// True when the peer sent RST_STREAM or GOAWAY.
        remote: bool,
    },
    /// A stream whose [`Connection::send_data`] accepted less than offered may now send
    /// more (its window, the connection window or the output buffer opened).
    Capacity {
        /// The stream.
        id: StreamId,
    },
    /// The peer sent GOAWAY. Streams we opened above `last_stream_id` were already reported
    /// as [`Event::Reset`] with REFUSED_STREAM; no new stream may be opened.
    GoAway {
        /// The highest stream the peer may have processed.
        last_stream_id: StreamId,
        /// The error code (NO_ERROR for a graceful shutdown).
        reason: Reason,
        /// The opaque debug data.
        debug_data: &'a [u8],
    },
    /// The peer's SETTINGS were applied (and acknowledged).
    SettingsReceived,
    /// The peer acknowledged our oldest outstanding SETTINGS.
    SettingsAcked,
    /// The peer answered our PING.
    PingAck {
        /// The payload we sent.
        payload: [u8; 8],
    },
    /// A connection error: GOAWAY with the error's code is in the output. Flush it and
    /// close the socket.
    ConnectionError {
        /// What went wrong.
        error: H2Error,
    },
}

/// Why an outgoing operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendError {
    /// The connection has failed or was closed with GOAWAY: nothing more can be sent.
    ConnectionClosed,
    /// The peer sent GOAWAY (or we did): no new stream may be opened.
    GoingAway,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached; wait for a stream to end.
    ConcurrencyLimit,
    /// All 2^30 stream identifiers were used; open a new connection.
    StreamIdsExhausted,
    /// The stream does not exist (never opened, closed or reset).
    UnknownStream,
    /// This side of the stream is already closed (END_STREAM sent).
    StreamClosed,
    /// The operation does not fit the stream's state: DATA or trailers before the head,
    /// a second final head, END_STREAM on an informational head.
    InvalidState,
    /// The head is over the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    HeaderListTooLarge,
    /// The operation is for the other role (`open_stream` on a server, `send_response` on
    /// a client).
    WrongRole,
    /// A SETTINGS value out of range (RFC 9113 §6.5.2).
    InvalidSetting,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for SendError {}

/// The state of a stream, RFC 9113 §5.1. The reserved states never occur: this endpoint
/// neither pushes nor accepts pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamState {
    /// Not yet opened.
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
    /// Done, or reset.
    Closed,
}
