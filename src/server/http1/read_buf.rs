//! The connection's read buffer: bytes read and not yet used, `buf[start..end]`,
//! grown up to a bound and compacted when the front is spent.
use std::io;
use std::time::Duration;

use crate::runtime::transport::Transport;

/// A connection's first read buffer; it grows (doubling) up to the caller's bound.
pub(super) const INITIAL_READ_BUFFER: usize = 8 * 1024;

/// Bytes read from the connection and not yet used: `buf[start..end]`.
pub(super) struct ReadBuf {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// The read timeout last set on the socket, to skip redundant system calls.
    pub(super) timeout_set: Option<Option<Duration>>,
}

impl ReadBuf {
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(super) fn set_timeout(
        &mut self,
        io: &dyn Transport,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        if self.timeout_set != Some(timeout) {
            // A zero duration means "forever" to us, but is an error to the OS.
            let t = timeout.filter(|d| !d.is_zero());
            io.set_read_timeout(t)?;
            self.timeout_set = Some(timeout);
        }
        Ok(())
    }

    /// Reads more bytes into the buffer with `read`, growing it up to `max` bytes (an
    /// `OutOfMemory` error once it is that large and full).
    pub(super) fn fill_with(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
        max: usize,
    ) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown =
                (self.buf.len() * 2).clamp(INITIAL_READ_BUFFER, max.max(INITIAL_READ_BUFFER));
            if grown <= self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "read buffer full",
                ));
            }
            self.buf.resize(grown, 0);
        }
        loop {
            match read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
