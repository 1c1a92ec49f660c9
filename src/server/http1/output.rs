//! Response bytes not yet written to the socket, and what the body reader and the
//! response writer of one exchange share.
//!
//! Writes never wait while what is gathered stays within `write_buffer`: the socket
//! takes what it can without blocking and the rest waits here, to go out with later
//! writes or, after the handler returns, through the event loop (see
//! [`H1Conn`](super::H1Conn)). Only a handler that has more than that outstanding
//! waits, under the write timeout and the minimum write rate; so does an explicit
//! flush, and the flush before a body read that may block (the client may be waiting
//! for these bytes before it sends more).
use std::io;
use std::time::{Duration, Instant};

use super::body::Slow;
use super::ReadSide;
use crate::h1::framing::write_chunk_size;
use crate::runtime::transport::Transport;
use crate::server::config::{Config, MinRate, RateWindow};

/// Body writes are gathered up to this many bytes before the socket is offered them.
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

/// What bounds the response bytes a handler may leave outstanding, and its waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteLimits {
    /// Bytes the connection may hold that the socket did not take.
    pub(super) write_buffer: usize,
    /// One blocking write.
    pub(super) write_timeout: Option<Duration>,
    pub(super) min_rate: Option<MinRate>,
}

impl WriteLimits {
    pub(super) fn of(cfg: &Config) -> WriteLimits {
        WriteLimits {
            write_buffer: cfg.write_buffer.max(WRITE_BUFFER),
            write_timeout: cfg.write_timeout,
            min_rate: cfg.min_write_rate,
        }
    }
}

/// Response bytes not yet written to the socket, earlier pipelined answers first.
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
    limits: WriteLimits,
    /// Since the first wait for the socket: the minimum write rate's window.
    waiting: Option<RateWindow>,
}

impl<'s> Output<'s> {
    pub(super) fn new(buf: &'s mut Vec<u8>, limits: WriteLimits) -> Self {
        let mark = buf.len();
        Output {
            buf,
            chunk_start: None,
            mark,
            sent_any: false,
            broken: false,
            limits,
            waiting: None,
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

    /// Takes `n` written bytes off the front.
    fn advance(&mut self, n: usize) {
        if n > self.mark {
            self.sent_any = true;
        }
        self.mark = self.mark.saturating_sub(n);
        self.buf.drain(..n);
        self.moved(n);
    }

    /// `n` bytes went out: they count for the minimum rate once waiting has begun.
    fn moved(&mut self, n: usize) {
        if let (Some(window), Some(rate)) = (&mut self.waiting, &self.limits.min_rate) {
            window.moved(rate, n as u64, Instant::now());
        }
    }

    fn check(&mut self) -> io::Result<()> {
        if self.broken {
            self.buf.clear();
            self.mark = 0;
            return Err(broken_pipe());
        }
        Ok(())
    }

    /// Writes what the socket takes now, without waiting. True when nothing is left.
    pub(super) fn write_some(&mut self, io: &dyn Transport) -> io::Result<bool> {
        self.close_chunk();
        self.check()?;
        let mut written = 0;
        while written < self.buf.len() {
            match io.try_write(&self.buf[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken = true;
                    self.advance(written);
                    return Err(e);
                }
            }
        }
        self.advance(written);
        Ok(self.buf.is_empty())
    }

    /// Writes, waiting for the socket as needed, until at most `keep` bytes are left.
    fn wait_until(&mut self, io: &dyn Transport, keep: usize) -> io::Result<()> {
        while self.buf.len() > keep {
            let buf = std::mem::take(self.buf);
            let written = self.write_waiting(io, &buf);
            *self.buf = buf;
            self.advance(written?);
        }
        Ok(())
    }

    /// One write that may wait for the socket, bounded by the write timeout and the
    /// minimum rate (whose error says so). A failure leaves the connection broken.
    fn write_waiting(&mut self, io: &dyn Transport, bytes: &[u8]) -> io::Result<usize> {
        loop {
            let binding = self.before_wait(io)?;
            match io.write(bytes) {
                Ok(0) => {
                    self.broken = true;
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken = true;
                    return Err(match binding {
                        Some(slow) if e.kind() == io::ErrorKind::TimedOut => {
                            slow.error("the client read the response")
                        }
                        _ => e,
                    });
                }
            }
        }
    }

    /// Sets the socket's write timeout to what the limits leave; names the minimum
    /// rate when it is the nearer bound.
    fn before_wait(&mut self, io: &dyn Transport) -> io::Result<Option<Slow>> {
        let window = *self
            .waiting
            .get_or_insert_with(|| RateWindow::start(Instant::now()));
        let mut timeout = self.limits.write_timeout;
        let mut binding = None;
        if let Some(rate) = self.limits.min_rate {
            let left = window
                .deadline(&rate)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.broken = true;
                return Err(Slow::Rate(rate).error("the client read the response"));
            }
            if timeout.is_none_or(|t| t.is_zero() || left < t) {
                timeout = Some(left);
                binding = Some(Slow::Rate(rate));
            }
        }
        io.set_write_timeout(timeout.filter(|t| !t.is_zero()))?;
        Ok(binding)
    }

    /// Writes out everything gathered so far, waiting as needed.
    pub(super) fn flush(&mut self, io: &dyn Transport) -> io::Result<()> {
        if self.write_some(io)? {
            return Ok(());
        }
        self.wait_until(io, 0)
    }

    /// Makes room for `incoming` more bytes: offers the socket what is gathered, and
    /// waits only if more than `write_buffer` would be outstanding.
    pub(super) fn make_room(&mut self, io: &dyn Transport, incoming: usize) -> io::Result<()> {
        self.write_some(io)?;
        let keep = self.limits.write_buffer.saturating_sub(incoming);
        if self.buf.len() > keep {
            self.wait_until(io, keep)?;
        }
        Ok(())
    }

    /// Writes `data` after what is gathered, straight from the caller's buffer as far
    /// as the socket takes it; what is left waits here if it fits `write_buffer`.
    pub(super) fn write_through(&mut self, io: &dyn Transport, data: &[u8]) -> io::Result<()> {
        let mut data = data;
        if self.write_some(io)? {
            while !data.is_empty() {
                match io.try_write(data) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.sent_any = true;
                        data = &data[n..];
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.broken = true;
                        return Err(e);
                    }
                }
            }
        }
        if self.buf.len() + data.len() > self.limits.write_buffer {
            // More than the connection may hold: the handler waits until the rest fits.
            self.wait_until(io, 0)?;
            while data.len() > self.limits.write_buffer {
                let n = self.write_waiting(io, data)?;
                self.sent_any = true;
                self.moved(n);
                data = &data[n..];
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
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
