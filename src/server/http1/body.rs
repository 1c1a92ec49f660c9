//! The request body as the handler reads it (Content-Length or chunked, through the
//! connection's read buffer or straight into the caller's), and draining what the
//! handler left unread.
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use http::header::HeaderMap;
use http::StatusCode;

use super::output::{Output, Shared};
use super::{lock, ReadSide};
use crate::h1::framing::ChunkedDecoder;
use crate::runtime::transport::Transport;
use crate::server::config::Config;
use crate::server::request::BodySource;

/// Reads of at least this size skip the connection buffer and land in the caller's.
const DIRECT_READ: usize = 4 * 1024;

pub(super) enum BodyState {
    Done,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    /// Reading it failed. `answer` is the status that says why (400 for bad framing),
    /// sent if no response to the request has reached the socket yet.
    Failed {
        answer: Option<StatusCode>,
    },
}

/// The body of the current request, read through the connection.
pub(super) struct H1Body<'c, 's> {
    pub(super) io: &'c dyn Transport,
    pub(super) shared: &'c Mutex<Shared<'s>>,
    /// Trailers moved out of the read side once the body ended.
    pub(super) trailers: Option<HeaderMap>,
    pub(super) read_timeout: Option<Duration>,
    pub(super) max_buffer: usize,
}

impl BodySource for H1Body<'_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = lock(self.shared);
        let result = read_body(
            self.io,
            &mut shared,
            self.read_timeout,
            self.max_buffer,
            buf,
        );
        if shared.side.trailers.is_some() {
            self.trailers = shared.side.trailers.take();
        }
        result
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

pub(super) fn read_body(
    io: &dyn Transport,
    shared: &mut Shared<'_>,
    read_timeout: Option<Duration>,
    max_buffer: usize,
    buf: &mut [u8],
) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    match shared.side.body {
        BodyState::Done => return Ok(0),
        BodyState::Failed { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body is unusable after an earlier error",
            ))
        }
        BodyState::Length(_) | BodyState::Chunked(_) => {}
    }
    if shared.continue_pending {
        shared.continue_pending = false;
        if !shared.head_written {
            // Before the mark: it is no part of the final response, which may still
            // be replaced by an error answer.
            let out = &mut shared.out;
            out.buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            out.mark = out.buf.len();
        }
    }
    let result = read_body_inner(
        io,
        shared.side,
        &mut shared.out,
        read_timeout,
        max_buffer,
        buf,
    );
    if let Err(e) = &result {
        shared.side.body = BodyState::Failed {
            answer: failure_status(e),
        };
    }
    result
}

/// The answer a failed request body deserves when no response has started: 400 when
/// the peer's framing was at fault, 408 when it was too slow, none when it went away.
pub(super) fn failure_status(e: &io::Error) -> Option<StatusCode> {
    match e.kind() {
        io::ErrorKind::InvalidData => Some(StatusCode::BAD_REQUEST),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Some(StatusCode::REQUEST_TIMEOUT),
        _ => None,
    }
}

pub(super) fn read_body_inner(
    io: &dyn Transport,
    side: &mut ReadSide,
    out: &mut Output<'_>,
    read_timeout: Option<Duration>,
    max_buffer: usize,
    buf: &mut [u8],
) -> io::Result<usize> {
    let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body");
    let ReadSide {
        rbuf,
        body,
        trailers,
    } = side;
    loop {
        match body {
            BodyState::Done | BodyState::Failed { .. } => return Ok(0),
            BodyState::Length(remaining) => {
                let want = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = if !rbuf.is_empty() {
                    let data = rbuf.data();
                    let n = want.min(data.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    rbuf.consume(n);
                    n
                } else if want >= DIRECT_READ {
                    out.flush(io)?;
                    rbuf.set_timeout(io, read_timeout)?;
                    match io.read(&mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                } else {
                    out.flush(io)?;
                    rbuf.set_timeout(io, read_timeout)?;
                    if rbuf.fill(io, max_buffer)? == 0 {
                        return Err(eof());
                    }
                    continue;
                };
                *remaining -= n as u64;
                if *remaining == 0 {
                    *body = BodyState::Done;
                }
                return Ok(n);
            }
            BodyState::Chunked(decoder) => {
                if !rbuf.is_empty() {
                    let avail = rbuf.data();
                    // Never let the decoder hand out more data than the caller can take.
                    let window = &avail[..avail.len().min(buf.len())];
                    let step = decoder
                        .decode(window)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let n = step.data.len();
                    buf[..n].copy_from_slice(&window[step.data]);
                    rbuf.consume(step.consumed);
                    if decoder.is_done() {
                        *trailers = decoder.take_trailers();
                        *body = BodyState::Done;
                    }
                    if n > 0 || matches!(body, BodyState::Done) {
                        return Ok(n);
                    }
                    continue;
                }
                out.flush(io)?;
                rbuf.set_timeout(io, read_timeout)?;
                let remaining = decoder.data_remaining();
                if remaining > 0 && buf.len() >= DIRECT_READ {
                    let want = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    match io.read(&mut buf[..want]) {
                        Ok(0) => return Err(eof()),
                        Ok(n) => {
                            decoder.data_read(n);
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                if rbuf.fill(io, max_buffer)? == 0 {
                    return Err(eof());
                }
            }
        }
    }
}

/// Reads and discards the rest of an unread request body, up to the drain limit. What
/// the output holds goes out first (the client may wait for it before sending more).
pub(super) fn drain_body(io: &dyn Transport, shared: &mut Shared<'_>, cfg: &Config) -> bool {
    let mut scratch = [0u8; 4096];
    let mut drained = 0u64;
    loop {
        match read_body(
            io,
            shared,
            cfg.read_timeout,
            cfg.max_head_bytes(),
            &mut scratch,
        ) {
            Ok(0) => return matches!(shared.side.body, BodyState::Done),
            Ok(n) => {
                drained += n as u64;
                if drained > cfg.drain_limit {
                    log::debug!("unread request body over the drain limit; closing");
                    return false;
                }
            }
            Err(e) => {
                log::debug!("draining the request body failed: {e}");
                return false;
            }
        }
    }
}
