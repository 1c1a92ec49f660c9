//! Fuzzing entry points for `crate::h2` and the HTTP/2 parts of `crate::server`.
//!
//! - [`snapshot`]: the flow-control windows, stream table and buffer sizes of an
//!   `h2::proto::Connection`, read-only, for the `h2_conn_server` / `h2_conn_client`
//!   targets to check RFC 9113's bounds after every step;
//! - [`h2c_requested_settings`], [`h2c_stream_head`]: the `Upgrade: h2c` decisions of
//!   `server::h2c_upgrade`, for the `h2c_upgrade` target.
use http::header::HeaderMap;

use crate::h2::proto::Connection;

/// One stream as the state machine holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream id.
    pub id: u32,
    /// What we may still send on it (negative after a SETTINGS change, RFC 9113 §6.9.2).
    pub send_window: i64,
    /// What the peer may still send on it.
    pub recv_window: i64,
    /// Body bytes delivered in events and not yet released by the application.
    pub unreleased: u64,
    /// The peer may still send.
    pub recv_open: bool,
    /// We may still send.
    pub send_open: bool,
    /// Closed, kept only for the flow-control credit of its unreleased bytes.
    pub closed: bool,
    /// Opened by us.
    pub local: bool,
}

/// The state the fuzz targets check, taken by [`snapshot`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What we may still send on the connection.
    pub conn_send_window: i64,
    /// What the peer may still send on the connection.
    pub conn_recv_window: i64,
    /// Every stream in the table.
    pub streams: Vec<StreamSnapshot>,
    /// Bytes waiting to be written.
    pub output_len: usize,
    /// Events waiting to be polled.
    pub events: usize,
    /// DATA (and GOAWAY debug) bytes held for unpolled events.
    pub event_bytes: usize,
    /// Streams counted as open (ours, the peer's).
    pub active: (u32, u32),
    /// Streams waiting for send capacity.
    pub blocked: usize,
}

/// The state of `conn`, read-only (`Connection::fuzz_snapshot`).
pub fn snapshot(conn: &Connection) -> Snapshot {
    conn.fuzz_snapshot()
}

/// `server::h2c_upgrade::requested_settings`: the decoded `HTTP2-Settings` payload when
/// `headers` ask for `Upgrade: h2c` properly, else `None`.
pub fn h2c_requested_settings(headers: &HeaderMap) -> Option<Vec<u8>> {
    crate::server::h2c_upgrade::requested_settings(headers)
}

/// `server::h2c_upgrade::stream_head`: the head stream 1 carries after the upgrade.
pub fn h2c_stream_head(
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
) -> http::Request<()> {
    crate::server::h2c_upgrade::stream_head(method, uri, headers)
}
