//! What a connection runs over. The HTTP engines only need reads and writes through a
//! shared reference (so a request's body reader and its response writer can both use
//! the connection), timeouts, and a way to shut it down.
use std::io;
use std::net::Shutdown;
use std::time::Duration;

use crate::server::UpgradedStream;

/// A byte stream a server connection runs over: TCP, a Unix socket, or (later) TLS.
///
/// Methods take `&self` like `&TcpStream`'s `Read`/`Write` impls do, so the reading and
/// the writing half of one exchange can be used side by side.
pub(crate) trait Transport: Send + Sync {
    /// Reads bytes, blocking up to the read timeout; 0 means the peer closed its side.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads what is available now without blocking (`WouldBlock` if nothing is).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// True when the transport carries TLS.
    fn is_tls(&self) -> bool {
        false
    }
    /// Writes bytes, blocking up to the write timeout; returns how many were taken.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes what the socket takes now without waiting (`WouldBlock` if it takes
    /// nothing). After `WouldBlock` the next write must start with the same bytes (a TLS
    /// record may be half sent), which an output buffer advanced by what was written
    /// keeps.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Sets how long a read may block (`None`: forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets how long a write may block (`None`: forever).
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Shuts down one or both directions.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// Makes the coming close discard what the kernel still holds to send and reset the
    /// connection (TCP: `SO_LINGER` of zero), for a peer that does not read: its
    /// buffered answer would otherwise keep kernel memory until it did.
    fn abort_on_close(&self) {}
    /// Hands the connection to a handler ([`Response::upgrade`]): a duplicate of the
    /// socket, in blocking mode, with no timeouts (with its TLS session, if any). The
    /// caller must then forget the connection without shutting it down (that would end
    /// the duplicate too). Transports that cannot be handed over keep this default.
    ///
    /// [`Response::upgrade`]: crate::server::Response::upgrade
    fn hijack(&self) -> io::Result<UpgradedStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this connection's transport cannot be handed over",
        ))
    }
}
