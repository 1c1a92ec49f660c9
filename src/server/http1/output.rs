//! Response bytes not yet written to the socket, and what the body reader and the
//! response writer of one exchange share.
use std::io;

use super::ReadSide;
use crate::h1::framing::write_chunk_size;
use crate::runtime::transport::Transport;

/// Body writes are gathered up to this many bytes before they go to the socket.
pub(super) const WRITE_BUFFER: usize = 16 * 1024;

/// What the body reader and the response writer of one exchange share. Both run on the
/// handler's thread, but each is a separate object the handler holds, so they meet here.
pub(super) struct Shared<'s> {
    pub(super) side: &'s mut ReadSide,
    pub(super) out: Output<'s>,
    /// The client waits for `100 Continue` before sending the body.
    pub(super) continue_pending: bool,
    /// The final response head is in the output (so no 100 may follow).
    pub(super) head_written: bool,
}

/// Response bytes not yet written to the socket, earlier pipelined answers first.
///
/// Everything waits here until the buffer fills, the handler flushes, the connection
/// would block on a read, or the exchange ends. "Would block on a read" includes the
/// body reader: before it waits for request body bytes it sends what is here, because
/// the client may be waiting for it (the answer to an unread body, a streamed prefix).
pub(super) struct Output<'s> {
    pub(super) buf: &'s mut Vec<u8>,
    /// The chunk being gathered starts here; its size line goes in front when it closes.
    pub(super) chunk_start: Option<usize>,
    /// This exchange's response starts here; what lies before it are earlier answers.
    pub(super) mark: usize,
    /// Some byte of this exchange's response has reached the socket, so it can no
    /// longer be taken back and replaced by an error answer.
    pub(super) sent_any: bool,
    /// A write failed: the connection is dead.
    pub(super) broken: bool,
}

impl<'s> Output<'s> {
    pub(super) fn new(buf: &'s mut Vec<u8>) -> Self {
        let mark = buf.len();
        Output {
            buf,
            chunk_start: None,
            mark,
            sent_any: false,
            broken: false,
        }
    }

    /// Puts the size line in front of the chunk being gathered.
    pub(super) fn close_chunk(&mut self) {
        if let Some(start) = self.chunk_start.take() {
            let len = self.buf.len() - start;
            if len == 0 {
                return;
            }
            let mut line = Vec::with_capacity(10);
            write_chunk_size(&mut line, len);
            self.buf.splice(start..start, line);
            self.buf.extend_from_slice(b"\r\n");
        }
    }

    /// Writes out everything gathered so far.
    pub(super) fn flush(&mut self, io: &dyn Transport) -> io::Result<()> {
        self.close_chunk();
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.broken {
            self.buf.clear();
            return Err(broken_pipe());
        }
        if self.buf.len() > self.mark {
            self.sent_any = true;
        }
        let result = io.write_all(self.buf);
        self.buf.clear();
        self.mark = 0;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Writes out what is gathered, then `data` straight from the caller's buffer.
    pub(super) fn write_through(&mut self, io: &dyn Transport, data: &[u8]) -> io::Result<()> {
        self.flush(io)?;
        self.sent_any = true;
        io.write_all(data).inspect_err(|_| self.broken = true)
    }

    /// Drops whatever this exchange's response put here and has not yet sent; earlier
    /// answers stay. Returns true when none of the response had been sent, so that an
    /// error answer may still take its place.
    pub(super) fn retract(&mut self) -> bool {
        self.chunk_start = None;
        self.buf.truncate(self.mark);
        !self.sent_any
    }
}

pub(super) fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection is broken")
}
