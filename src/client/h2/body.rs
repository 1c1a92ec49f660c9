//! The body of an HTTP/2 response, read as the driver receives it.
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::shared::{wait_until, Shared};
use crate::h2::{Reason, StreamId};
use crate::{Error, ErrorKind};

/// The body of a response received over HTTP/2, as [`io::Read`].
///
/// At most one stream window (1 MiB by default) of unread bytes is buffered: the peer
/// may send more only as the body is read, so a large download is bounded in memory.
/// (While the request body is still being sent, the window is given back on arrival for
/// up to 16 MiB, so that a server answering as it reads does not stall the upload.)
/// Reading it to its end makes the [`trailers`](RecvBody::trailers) available; dropping it
/// earlier cancels the stream (RST_STREAM CANCEL), which leaves the connection usable.
///
/// Errors are `io::Error`s carrying a [`spindle::Error`](crate::Error)
/// ([`ErrorKind::StreamReset`], [`ErrorKind::GoAway`], [`ErrorKind::Timeout`], ...).
pub struct RecvBody {
    shared: Arc<Shared>,
    id: StreamId,
    done: bool,
    trailers: Option<HeaderMap>,
    /// Bounds each wait for bytes.
    pub(crate) read_timeout: Option<Duration>,
    /// Bounds the whole body.
    pub(crate) deadline: Option<Instant>,
    /// Bytes still expected according to Content-Length, checked at the end.
    remaining: Option<u64>,
}

impl fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBody")
            .field("stream", &self.id.value())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl RecvBody {
    pub(crate) fn new(shared: Arc<Shared>, id: StreamId, content_length: Option<u64>) -> RecvBody {
        RecvBody {
            shared,
            id,
            done: false,
            trailers: None,
            read_timeout: None,
            deadline: None,
            remaining: content_length,
        }
    }

    /// An empty, finished body (a response to HEAD, or one that ended with its head).
    pub(crate) fn finish_now(&mut self) {
        let mut st = self.shared.lock();
        if let Some(slot) = st.streams.get(&self.id.value()) {
            if slot.end && slot.buffered() == 0 && slot.reset.is_none() {
                self.trailers = st.streams.remove(&self.id.value()).and_then(|s| s.trailers);
                self.done = true;
                drop(self.shared.close_if_unused(st));
            }
        }
    }

    /// True once the body was read to its end (or failed).
    pub fn is_end_stream(&self) -> bool {
        self.done
    }

    /// The trailer fields, once the body has been read to its end and if the server
    /// sent any.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    fn error(&mut self, e: Error) -> io::Error {
        self.done = true;
        e.into()
    }
}

impl Read for RecvBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let shared = self.shared.clone();
        let id = self.id;
        // The read timeout bounds this whole call.
        let deadline = match (self.read_timeout, self.deadline) {
            (Some(t), Some(d)) => Some(d.min(Instant::now() + t)),
            (Some(t), None) => Some(Instant::now() + t),
            (None, d) => d,
        };
        let mut st = shared.lock();
        loop {
            let conn_failed =
                st.failure.is_some() || st.goaway.is_some_and(|(_, r)| r != Reason::NoError);
            let Some(slot) = st.streams.get_mut(&id.value()) else {
                drop(st);
                return Err(self.error(Error::new(ErrorKind::Closed, "the stream is gone")));
            };
            if slot.buffered() > 0 {
                if buf.is_empty() {
                    return Ok(0);
                }
                let n = buf.len().min(slot.buffered());
                buf[..n].copy_from_slice(&slot.data[slot.pos..slot.pos + n]);
                slot.pos += n;
                if slot.pos == slot.data.len() {
                    slot.data.clear();
                    slot.pos = 0;
                }
                if let Some(r) = &mut self.remaining {
                    *r = r.saturating_sub(n as u64);
                }
                // Bytes whose window went back on arrival are not released twice.
                let early = n.min(slot.prereleased);
                slot.prereleased -= early;
                st.conn.release_capacity(id, n - early);
                if st.conn.wants_write() {
                    drop(shared.flush(st));
                }
                return Ok(n);
            }
            if slot.end {
                let slot = st.streams.remove(&id.value());
                self.trailers = slot.and_then(|s| s.trailers);
                drop(shared.close_if_unused(st));
                self.done = true;
                if let Some(left @ 1..) = self.remaining {
                    return Err(Error::new(
                        ErrorKind::Closed,
                        format!("the response body ended {left} bytes short of its Content-Length"),
                    )
                    .into());
                }
                return Ok(0);
            }
            if let Some((reason, remote)) = slot.reset {
                let (e, _) = st.reset_error(reason, remote);
                st.streams.remove(&id.value());
                drop(shared.close_if_unused(st));
                return Err(self.error(e));
            }
            if conn_failed {
                let e = st.conn_error();
                st.streams.remove(&id.value());
                drop(shared.close_if_unused(st));
                return Err(self.error(e));
            }
            let cv = slot.cv.clone();
            slot.waiting = true;
            let (mut st2, in_time) = wait_until(&cv, st, deadline);
            if let Some(slot) = st2.streams.get_mut(&id.value()) {
                slot.waiting = false;
            }
            if !in_time {
                st2.conn.reset(id, Reason::Cancel);
                st2.streams.remove(&id.value());
                let st2 = shared.flush(st2);
                drop(shared.close_if_unused(st2));
                return Err(self.error(Error::new(
                    ErrorKind::Timeout,
                    "timed out reading the HTTP/2 response body",
                )));
            }
            st = st2;
        }
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let Some(slot) = st.streams.remove(&self.id.value()) else {
            return;
        };
        // Unread bytes go back to the connection window; an unfinished stream is
        // cancelled so the server stops sending it.
        st.conn
            .release_capacity(self.id, slot.buffered().saturating_sub(slot.prereleased));
        if !slot.end && slot.reset.is_none() {
            st.conn.reset(self.id, Reason::Cancel);
        }
        let st = self.shared.flush(st);
        drop(self.shared.close_if_unused(st));
    }
}
