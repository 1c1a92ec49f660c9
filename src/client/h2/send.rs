//! Sending requests over a shared HTTP/2 connection.
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::Method;

use super::body::RecvBody;
use super::shared::{wait_until, Shared, Slot, State, MAX_INTERIM};
use crate::client::body::{Body, BodyKind};
use crate::h2::proto::{SendError, StreamState};
use crate::h2::{Reason, StreamId};
use crate::{Error, ErrorKind, Result};

const BODY_CHUNK: usize = 16 * 1024;

/// Sends requests over one HTTP/2 connection. `Clone + Send + Sync`: every clone shares the
/// connection, and requests from many threads at once are multiplexed over it, each on
/// its own stream (up to the server's SETTINGS_MAX_CONCURRENT_STREAMS; beyond it
/// [`send_request`](SendRequest::send_request) waits for a stream to end).
///
/// When the last clone is dropped and the last response body is finished, the
/// connection is closed with GOAWAY and the driver returns.
pub struct SendRequest {
    pub(crate) shared: Arc<Shared>,
}

impl Clone for SendRequest {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        SendRequest {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for SendRequest {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.handles -= 1;
        drop(self.shared.close_if_unused(st));
    }
}

impl fmt::Debug for SendRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("h2::SendRequest")
            .field("active_streams", &st.conn.active_streams())
            .field("closed", &st.is_done())
            .finish()
    }
}

/// Bounds on one exchange (the pooled client's timeouts).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendOptions {
    pub(crate) deadline: Option<Instant>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    /// Wait for a free stream at the concurrency limit (else fail with `Busy`).
    pub(crate) wait_for_stream: bool,
}

/// Why an exchange failed.
pub(crate) enum Failed {
    /// The connection is at the server's concurrency limit; nothing was sent.
    Busy,
    /// The exchange failed. `unprocessed`: the server provably did not process the
    /// request (REFUSED_STREAM, above GOAWAY's last-stream-id, or never sent), so it may
    /// be retried on another connection.
    Error { error: Error, unprocessed: bool },
}

impl Failed {
    fn error(error: Error) -> Failed {
        Failed::Error {
            error,
            unprocessed: false,
        }
    }
}

type Guard<'a> = MutexGuard<'a, State>;

impl SendRequest {
    /// Sends `req` and waits for the response head; the body is a [`RecvBody`] that
    /// streams as it arrives. The URI should be absolute (`http://host/path`): its scheme
    /// and authority become `:scheme` and `:authority` (a relative URI needs a `Host`
    /// header and is sent as `https`). A body of known length gets `content-length`;
    /// connection-specific fields (`connection`, `transfer-encoding`, ...) are not sent,
    /// as HTTP/2 forbids them. Interim (1xx) responses are skipped, up to 16; one more
    /// cancels the stream and fails with [`ErrorKind::Limit`].
    ///
    /// At the server's concurrency limit this waits for a stream to end. A stream the
    /// server resets fails with [`ErrorKind::StreamReset`], a request cut by GOAWAY with
    /// [`ErrorKind::GoAway`]; [`Error::h2_reason`] gives the code.
    pub fn send_request<'b, B: Into<Body<'b>>>(
        &self,
        req: http::Request<B>,
    ) -> Result<http::Response<RecvBody>> {
        let (parts, body) = req.into_parts();
        let mut body = body.into();
        let head = http::Request::from_parts(parts, ());
        let opts = SendOptions {
            wait_for_stream: true,
            ..SendOptions::default()
        };
        match self.send(head, &mut body, &opts) {
            Ok((head, body)) => {
                let (parts, ()) = head.into_parts();
                Ok(http::Response::from_parts(parts, body))
            }
            Err(Failed::Busy) => Err(Error::new(
                ErrorKind::Http2,
                "the connection is at its stream limit",
            )),
            Err(Failed::Error { error, .. }) => Err(error),
        }
    }

    /// True when a request could start a stream now (the connection is usable and below
    /// the server's concurrency limit).
    pub fn is_ready(&self) -> bool {
        self.shared.lock().can_open()
    }

    /// True when the connection will carry no more requests: it failed, closed, or the
    /// server sent GOAWAY.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_done()
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive).
    pub fn max_concurrent_streams(&self) -> u32 {
        self.shared.lock().conn.peer_max_concurrent_streams()
    }

    /// Streams open now on this connection.
    pub fn active_streams(&self) -> usize {
        self.shared.lock().conn.active_streams()
    }

    pub(crate) fn send(
        &self,
        mut head: http::Request<()>,
        body: &mut Body<'_>,
        opts: &SendOptions,
    ) -> std::result::Result<(http::Response<()>, RecvBody), Failed> {
        let shared = &*self.shared;
        let declared = body.len();
        if let Some(n) = declared {
            let wants =
                n > 0 || matches!(*head.method(), Method::POST | Method::PUT | Method::PATCH);
            if wants && !head.headers().contains_key(header::CONTENT_LENGTH) {
                head.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
        let end_stream = declared == Some(0);
        let mut st = shared.lock();
        let id = loop {
            if st.failure.is_none() && st.conn.can_open_stream() {
                match st.conn.open_stream(&head, end_stream) {
                    Ok(id) => break id,
                    Err(SendError::ConcurrencyLimit) => {}
                    Err(SendError::HeaderListTooLarge) => {
                        return Err(Failed::error(Error::new(
                            ErrorKind::Limit,
                            "the request head is larger than the server's \
                             SETTINGS_MAX_HEADER_LIST_SIZE",
                        )))
                    }
                    Err(e @ (SendError::WrongRole | SendError::InvalidState)) => {
                        return Err(Failed::error(Error::new(
                            ErrorKind::Usage,
                            format!("cannot open a stream: {e}"),
                        )))
                    }
                    Err(_) => {}
                }
            }
            if st.is_done() || !st.conn.can_open_stream() && st.conn.active_streams() == 0 {
                // Nothing was sent on this connection: any other may take the request.
                return Err(Failed::Error {
                    error: st.conn_error(),
                    unprocessed: true,
                });
            }
            if !opts.wait_for_stream {
                return Err(Failed::Busy);
            }
            st.open_waiters += 1;
            let (s, in_time) = wait_until(&shared.open_cv, st, opts.deadline);
            st = s;
            st.open_waiters -= 1;
            if !in_time {
                return Err(Failed::error(Error::new(
                    ErrorKind::Timeout,
                    "timed out waiting for a free HTTP/2 stream",
                )));
            }
        };
        let mut slot = Slot::new();
        slot.uploading = !end_stream;
        st.streams.insert(id.value(), slot);
        st = shared.flush(st);
        if !end_stream {
            st = match send_body(shared, st, id, body, opts) {
                Ok(mut st) => {
                    if let Some(slot) = st.streams.get_mut(&id.value()) {
                        slot.uploading = false;
                    }
                    st
                }
                Err((mut st, e)) => {
                    st.conn.reset(id, Reason::Cancel);
                    st.streams.remove(&id.value());
                    let st = shared.flush(st);
                    drop(shared.close_if_unused(st));
                    return Err(Failed::error(e));
                }
            };
        }
        // Wait for the final response head (the read timeout bounds the whole wait).
        let head_deadline = bound(opts.deadline, opts.read_timeout);
        let res = loop {
            let failed = st.failure.is_some();
            let Some(slot) = st.streams.get_mut(&id.value()) else {
                return Err(Failed::error(Error::new(ErrorKind::Closed, "stream lost")));
            };
            if let Some(res) = slot.head.take() {
                break res;
            }
            if slot.too_many_interim {
                st.streams.remove(&id.value());
                let st = shared.flush(st);
                drop(shared.close_if_unused(st));
                return Err(Failed::error(Error::new(
                    ErrorKind::Limit,
                    format!("more than {MAX_INTERIM} interim (1xx) responses"),
                )));
            }
            if let Some((reason, remote)) = slot.reset {
                let (error, unprocessed) = st.reset_error(reason, remote);
                st.streams.remove(&id.value());
                drop(shared.close_if_unused(st));
                return Err(Failed::Error { error, unprocessed });
            }
            if failed {
                let error = st.conn_error();
                // Above GOAWAY's last-stream-id the server did not process it.
                let unprocessed = st.goaway.is_some_and(|(last, _)| id.value() > last.value());
                st.streams.remove(&id.value());
                drop(shared.close_if_unused(st));
                return Err(Failed::Error { error, unprocessed });
            }
            let cv = slot.cv.clone();
            slot.waiting = true;
            let (mut s, in_time) = wait_until(&cv, st, head_deadline);
            if let Some(slot) = s.streams.get_mut(&id.value()) {
                slot.waiting = false;
            }
            if !in_time {
                s.conn.reset(id, Reason::Cancel);
                s.streams.remove(&id.value());
                let s = shared.flush(s);
                drop(shared.close_if_unused(s));
                return Err(Failed::error(Error::new(
                    ErrorKind::Timeout,
                    "timed out waiting for the HTTP/2 response head",
                )));
            }
            st = s;
        };
        // The server answered before the whole upload went out (and finished its
        // answer): our half of the stream is cancelled so it stops counting.
        let finished = st.streams.get(&id.value()).is_some_and(|s| s.end);
        if finished && matches!(st.conn.stream_state(id), StreamState::HalfClosedRemote) {
            st.conn.reset(id, Reason::Cancel);
            st = shared.flush(st);
        }
        drop(st);
        let no_body = head.method() == Method::HEAD
            || res.status() == http::StatusCode::NO_CONTENT
            || res.status() == http::StatusCode::NOT_MODIFIED;
        let length = if no_body {
            None
        } else {
            crate::h1::framing::content_length(res.headers())
                .ok()
                .flatten()
        };
        let mut recv = RecvBody::new(self.shared.clone(), id, length);
        recv.read_timeout = opts.read_timeout;
        recv.deadline = opts.deadline;
        recv.finish_now();
        Ok((res, recv))
    }
}

fn bound(deadline: Option<Instant>, per_op: Option<Duration>) -> Option<Instant> {
    match (per_op, deadline) {
        (Some(t), Some(d)) => Some(d.min(Instant::now() + t)),
        (Some(t), None) => Some(Instant::now() + t),
        (None, d) => d,
    }
}

/// Sends the request body, waiting for flow-control window as needed. Stops early,
/// without error, when the stream ended or was reset (the caller then finds the answer
/// or the reset in the stream's inbox).
fn send_body<'a>(
    shared: &'a Shared,
    mut st: Guard<'a>,
    id: StreamId,
    body: &mut Body<'_>,
    opts: &SendOptions,
) -> std::result::Result<Guard<'a>, (Guard<'a>, Error)> {
    if let BodyKind::Reader(reader, len) = &mut body.kind {
        let mut left = *len;
        let mut chunk = vec![0u8; BODY_CHUNK];
        loop {
            drop(st);
            let want = match left {
                Some(l) => usize::try_from(l).unwrap_or(usize::MAX).min(BODY_CHUNK),
                None => BODY_CHUNK,
            };
            let r = loop {
                match reader.read(&mut chunk[..want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            st = shared.lock();
            let n = match r {
                Ok(n) => n,
                Err(e) => return Err((st, Error::io("reading the request body", e))),
            };
            if n == 0 && left.is_some_and(|l| l > 0) {
                let l = left.unwrap_or(0);
                return Err((
                    st,
                    Error::new(
                        ErrorKind::Usage,
                        format!("request body ended {l} bytes before its declared length"),
                    ),
                ));
            }
            if let Some(l) = &mut left {
                *l -= n as u64;
            }
            let last = n == 0 || left == Some(0);
            let (s, go_on) = push(shared, st, id, &chunk[..n], last, opts)?;
            st = s;
            if last || !go_on {
                return Ok(st);
            }
        }
    }
    let bytes = body.bytes().unwrap_or(&[]);
    let (st, _) = push(shared, st, id, bytes, true, opts)?;
    Ok(st)
}

/// Sends `data` on stream `id`, waiting for window. `Ok(false)`: the stream is gone or
/// answered, stop sending.
fn push<'a>(
    shared: &'a Shared,
    mut st: Guard<'a>,
    id: StreamId,
    data: &[u8],
    end: bool,
    opts: &SendOptions,
) -> std::result::Result<(Guard<'a>, bool), (Guard<'a>, Error)> {
    let mut off = 0;
    loop {
        let failed = st.failure.is_some();
        let Some(slot) = st.streams.get_mut(&id.value()) else {
            return Ok((st, false));
        };
        if slot.reset.is_some() || slot.end || failed {
            return Ok((st, false));
        }
        slot.capacity = false;
        match st.conn.send_data(id, &data[off..], end) {
            Ok(n) => off += n,
            Err(e) => {
                log::debug!("h2 client: sending on stream {} stopped: {e}", id.value());
                return Ok((st, false));
            }
        }
        st = shared.flush(st);
        if off == data.len() {
            return Ok((st, true));
        }
        // Blocked on flow control (or output room): wait for Capacity.
        let wait_deadline = bound(opts.deadline, opts.write_timeout);
        loop {
            let failed = st.failure.is_some();
            let Some(slot) = st.streams.get_mut(&id.value()) else {
                return Ok((st, false));
            };
            if slot.capacity || slot.reset.is_some() || slot.end || failed {
                break;
            }
            let cv = slot.cv.clone();
            slot.waiting = true;
            let (mut s, in_time) = wait_until(&cv, st, wait_deadline);
            if let Some(slot) = s.streams.get_mut(&id.value()) {
                slot.waiting = false;
            }
            st = s;
            if !in_time {
                return Err((
                    st,
                    Error::new(
                        ErrorKind::Timeout,
                        "timed out waiting for HTTP/2 flow-control window to send the body",
                    ),
                ));
            }
        }
    }
}
