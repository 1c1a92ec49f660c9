//! The state one HTTP/2 connection shares between its driver (the reader), its flusher
//! and the request threads: the sans-IO [`Connection`], the per-stream inboxes, and the
//! protocol for writing output without ever making the reader wait on the socket.
//!
//! Writing: whoever changes the connection (a request thread opening a stream or sending
//! DATA, a body reader releasing window) writes the output itself, outside the state
//! lock, unless another thread is already writing, in which case that thread picks the
//! new bytes up before it stops. The driver never writes: it would stop reading while the
//! peer may be waiting for us to read before it reads again (a deadlock between two full
//! socket buffers). Output the driver causes (SETTINGS and PING acknowledgements) is
//! written by the flusher thread.
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use http::HeaderMap;

use super::io::WriteHalf;
use crate::h2::proto::{Connection, Event};
use crate::h2::{Reason, StreamId};
use crate::{Error, ErrorKind};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the connection can no longer be used.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    kind: ErrorKind,
    message: String,
    reason: Option<Reason>,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            reason: None,
        }
    }

    /// The failure an error describes (kind, message and HTTP/2 code kept).
    pub(crate) fn from_error(e: &Error) -> Failure {
        Failure {
            kind: e.kind(),
            message: e.message().to_owned(),
            reason: e.h2_reason(),
        }
    }

    fn with_reason(mut self, reason: Reason) -> Failure {
        self.reason = Some(reason);
        self
    }

    pub(crate) fn to_error(&self) -> Error {
        let e = Error::new(self.kind, self.message.clone());
        match self.reason {
            Some(r) => e.with_h2_reason(r),
            None => e,
        }
    }
}

/// One stream's inbox, filled by the driver and emptied by the request thread.
pub(crate) struct Slot {
    pub(crate) cv: Arc<Condvar>,
    /// A thread waits on `cv`: notify it (avoids a futex wake per event otherwise).
    pub(crate) waiting: bool,
    pub(crate) head: Option<http::Response<()>>,
    pub(crate) data: Vec<u8>,
    pub(crate) pos: usize,
    /// The peer ended its side (END_STREAM or trailers).
    pub(crate) end: bool,
    pub(crate) trailers: Option<HeaderMap>,
    /// The stream was reset: the code and whether the peer did it.
    pub(crate) reset: Option<(Reason, bool)>,
    /// A [`Event::Capacity`] arrived since the sender last looked.
    pub(crate) capacity: bool,
    /// The request body is still being sent: response bytes get their window back on
    /// arrival (up to [`UPLOAD_READ_AHEAD`] buffered), so that a server answering while
    /// it reads (an echo) is not stopped by a response nobody can read yet.
    pub(crate) uploading: bool,
    /// Bytes whose window was given back on arrival, not yet read.
    pub(crate) prereleased: usize,
    /// Interim (1xx) heads received before the final one.
    pub(crate) interim: usize,
    /// More than [`MAX_INTERIM`] interim heads came: the stream was cancelled, and the
    /// request fails with [`ErrorKind::Limit`].
    pub(crate) too_many_interim: bool,
}

/// The most interim (1xx) heads read before a final response, as over HTTP/1.1 by
/// default: a server sending `103 Early Hints` forever must not hold the request.
pub(crate) const MAX_INTERIM: usize = 16;

/// How much of a response may be buffered while its request body is still being sent.
pub(crate) const UPLOAD_READ_AHEAD: usize = 16 * 1024 * 1024;

impl Slot {
    pub(crate) fn new() -> Slot {
        Slot {
            cv: Arc::new(Condvar::new()),
            waiting: false,
            head: None,
            data: Vec::new(),
            pos: 0,
            end: false,
            trailers: None,
            reset: None,
            capacity: false,
            uploading: false,
            prereleased: 0,
            interim: 0,
            too_many_interim: false,
        }
    }

    fn wake(&mut self) {
        if self.waiting {
            self.cv.notify_all();
        }
    }

    /// Bytes received and not read yet.
    pub(crate) fn buffered(&self) -> usize {
        self.data.len() - self.pos
    }
}

pub(crate) struct State {
    pub(crate) conn: Connection,
    pub(crate) streams: HashMap<u32, Slot>,
    /// A thread is writing output now (and will write whatever is added meanwhile).
    writing: bool,
    /// The driver left output for the flusher.
    flush_wanted: bool,
    /// The driver waits for the output to drain before it reads more.
    driver_waiting: bool,
    spare: Vec<u8>,
    /// The connection can no longer carry new exchanges (and streams without a final
    /// answer fail with this).
    pub(crate) failure: Option<Failure>,
    /// GOAWAY received: last-stream-id and code.
    pub(crate) goaway: Option<(StreamId, Reason)>,
    /// Live senders (`SendRequest` clones, the pool's included).
    pub(crate) handles: usize,
    /// Threads waiting in `open_cv` for a stream to end.
    pub(crate) open_waiters: usize,
    /// We sent our GOAWAY and closed the stream (no handles, no streams).
    closing: bool,
    /// The driver has stopped.
    pub(crate) finished: bool,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    writer: Mutex<Box<dyn WriteHalf>>,
    /// Wakes threads waiting for the stream limit (or a failure).
    pub(crate) open_cv: Condvar,
    /// Wakes the flusher (work or stop) and the driver (output drained).
    flush_cv: Condvar,
}

impl Shared {
    pub(crate) fn new(conn: Connection, writer: Box<dyn WriteHalf>) -> Shared {
        Shared {
            state: Mutex::new(State {
                conn,
                streams: HashMap::new(),
                writing: false,
                flush_wanted: false,
                driver_waiting: false,
                spare: Vec::new(),
                failure: None,
                goaway: None,
                handles: 1,
                open_waiters: 0,
                closing: false,
                finished: false,
            }),
            writer: Mutex::new(writer),
            open_cv: Condvar::new(),
            flush_cv: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes the pending output unless another thread is writing (it then writes ours
    /// too). Takes the lock guard and gives it back, re-taken after the write.
    pub(crate) fn flush<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if st.writing || !st.conn.wants_write() || st.closing_io() {
            return st;
        }
        st.writing = true;
        let mut buf = std::mem::take(&mut st.spare);
        loop {
            st.conn.pending_output(&mut buf);
            // Draining the output can unblock senders (Capacity events).
            st.dispatch(&self.open_cv);
            drop(st);
            let res = {
                let mut w = lock(&self.writer);
                w.write_all(&buf).and_then(|()| w.flush())
            };
            buf.clear();
            st = self.lock();
            if let Err(e) = res {
                log::debug!("h2 client: writing to the connection failed: {e}");
                st.fail(
                    Failure::new(
                        ErrorKind::Io,
                        format!("writing to the HTTP/2 connection: {e}"),
                    ),
                    &self.open_cv,
                );
                st.conn.take_output(); // nothing more will be written
                break;
            }
            if !st.conn.wants_write() {
                break;
            }
        }
        st.writing = false;
        if buf.capacity() <= 256 * 1024 {
            st.spare = buf;
        }
        if st.driver_waiting {
            self.flush_cv.notify_all();
        }
        st
    }

    /// From the driver: have the flusher write the output unless a writer is at it.
    pub(crate) fn request_flush(&self, st: &mut State) {
        if st.conn.wants_write() && !st.writing {
            st.flush_wanted = true;
            self.flush_cv.notify_all();
        }
    }

    /// The flusher thread's loop: writes what the driver left, until the driver stops.
    /// It also keeps the connection's clock (the driver sleeps in `read`): a server that
    /// never acknowledges our SETTINGS fails the connection with SETTINGS_TIMEOUT.
    pub(crate) fn run_flusher(&self) {
        let mut st = self.lock();
        loop {
            if st.flush_wanted {
                st.flush_wanted = false;
                st = self.flush(st);
                continue;
            }
            if st.finished {
                return;
            }
            let Some(at) = st.conn.next_timeout().filter(|_| st.failure.is_none()) else {
                st = self.flush_cv.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let now = Instant::now();
            if at > now {
                st = self
                    .flush_cv
                    .wait_timeout(st, at - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            if let Err(e) = st.conn.tick(now) {
                log::debug!("h2 client: {e}");
                st.dispatch(&self.open_cv);
                let f = Failure::new(ErrorKind::Http2, format!("HTTP/2 connection error: {e}"))
                    .with_reason(e.reason());
                st.fail(f, &self.open_cv);
                // The GOAWAY goes out, then the stream is closed to stop the driver.
                st = self.flush(st);
                drop(st);
                lock(&self.writer).close();
                st = self.lock();
            }
        }
    }

    /// From the driver: waits until the output has drained enough to read again.
    pub(crate) fn wait_drained<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        while !st.conn.wants_read() && st.conn.wants_write() && st.failure.is_none() {
            self.request_flush(&mut st);
            st.driver_waiting = true;
            st = self.flush_cv.wait(st).unwrap_or_else(|p| p.into_inner());
            st.driver_waiting = false;
        }
        st
    }

    /// From the driver, when it stops: wakes everyone and stops the flusher.
    pub(crate) fn finish(&self, failure: Failure) {
        let mut st = self.lock();
        st.fail(failure, &self.open_cv);
        st.finished = true;
        self.flush_cv.notify_all();
    }

    /// With no senders and no streams left, says goodbye (GOAWAY) and closes the
    /// stream, which ends the driver.
    pub(crate) fn close_if_unused<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        if st.handles > 0 || !st.streams.is_empty() || st.closing {
            return st;
        }
        st.closing = true;
        if !st.finished && st.failure.is_none() {
            st.conn.goaway(Reason::NoError, b"");
            st = self.flush(st);
        }
        st.fail(
            Failure::new(ErrorKind::Closed, "the HTTP/2 connection was closed"),
            &self.open_cv,
        );
        // Not under the state lock: a writer may hold the stream while the socket is full.
        drop(st);
        lock(&self.writer).close();
        self.lock()
    }
}

impl State {
    fn closing_io(&self) -> bool {
        self.finished
            && self
                .failure
                .as_ref()
                .is_some_and(|f| f.kind == ErrorKind::Io)
    }

    /// Marks the connection failed (first reason wins) and wakes every waiter.
    pub(crate) fn fail(&mut self, failure: Failure, open_cv: &Condvar) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        for slot in self.streams.values_mut() {
            slot.wake();
        }
        open_cv.notify_all();
    }

    /// True when a new stream can be opened now.
    pub(crate) fn can_open(&self) -> bool {
        self.failure.is_none() && self.conn.can_open_stream()
    }

    /// True when this connection will never open another stream (as opposed to being at
    /// its concurrency limit for now).
    pub(crate) fn is_done(&self) -> bool {
        self.failure.is_some() || self.goaway.is_some() || self.conn.is_closed() || self.closing
    }

    /// Routes the connection's queued events to the streams' inboxes.
    pub(crate) fn dispatch(&mut self, open_cv: &Condvar) {
        let mut wake_openers = false;
        loop {
            let mut release = None;
            let mut cancel = None;
            {
                let Some(ev) = self.conn.poll_event() else {
                    break;
                };
                match ev {
                    Event::Response {
                        id,
                        head,
                        end_stream,
                    } => {
                        if let Some(slot) = self.streams.get_mut(&id.value()) {
                            // Interim (1xx) heads are skipped, as over HTTP/1.1, up to
                            // MAX_INTERIM of them (RFC 9110 §15.2 sets no bound; we do).
                            if !head.status().is_informational() {
                                slot.head = Some(head);
                                slot.end |= end_stream;
                                slot.wake();
                            } else if !slot.too_many_interim {
                                slot.interim += 1;
                                if slot.interim > MAX_INTERIM {
                                    slot.too_many_interim = true;
                                    cancel = Some(id);
                                    slot.wake();
                                }
                            }
                        }
                        wake_openers |= end_stream;
                    }
                    Event::Data {
                        id,
                        data,
                        end_stream,
                    } => {
                        match self.streams.get_mut(&id.value()) {
                            Some(slot) => {
                                // Drop what was read (amortized: only once it is at least
                                // half the buffer), so a reader that never quite catches
                                // up does not grow the buffer past the window.
                                if slot.pos > 0 && slot.pos * 2 >= slot.data.len() {
                                    slot.data.drain(..slot.pos);
                                    slot.pos = 0;
                                }
                                slot.data.extend_from_slice(data);
                                slot.end |= end_stream;
                                if slot.uploading && slot.buffered() <= UPLOAD_READ_AHEAD {
                                    slot.prereleased += data.len();
                                    release = Some((id, data.len()));
                                }
                                slot.wake();
                            }
                            // The response was dropped: give the window back.
                            None => release = Some((id, data.len())),
                        }
                        wake_openers |= end_stream;
                    }
                    Event::Trailers { id, trailers } => {
                        if let Some(slot) = self.streams.get_mut(&id.value()) {
                            slot.trailers = Some(trailers);
                            slot.end = true;
                            slot.wake();
                        }
                        wake_openers = true;
                    }
                    Event::Reset { id, reason, remote } => {
                        log::debug!(
                            "h2 client: stream {} reset ({reason}, by {})",
                            id.value(),
                            if remote { "peer" } else { "us" }
                        );
                        if let Some(slot) = self.streams.get_mut(&id.value()) {
                            slot.reset = Some((reason, remote));
                            slot.wake();
                        }
                        wake_openers = true;
                    }
                    Event::Capacity { id } => {
                        if let Some(slot) = self.streams.get_mut(&id.value()) {
                            slot.capacity = true;
                            slot.wake();
                        }
                    }
                    Event::GoAway {
                        last_stream_id,
                        reason,
                        debug_data,
                    } => {
                        log::debug!(
                            "h2 client: GOAWAY last-stream-id {} {reason} {:?}",
                            last_stream_id.value(),
                            String::from_utf8_lossy(debug_data)
                        );
                        self.goaway = Some((last_stream_id, reason));
                        wake_openers = true;
                    }
                    // New SETTINGS may raise the concurrency limit.
                    Event::SettingsReceived => wake_openers = true,
                    Event::ConnectionError { error } => {
                        log::debug!("h2 client: connection error: {error}");
                        let f = Failure::new(
                            ErrorKind::Http2,
                            format!("HTTP/2 connection error: {error}"),
                        )
                        .with_reason(error.reason());
                        self.fail(f, open_cv);
                    }
                    _ => {}
                }
            }
            if let Some((id, n)) = release {
                self.conn.release_capacity(id, n);
            }
            if let Some(id) = cancel {
                log::debug!(
                    "h2 client: more than {MAX_INTERIM} interim heads on stream {}",
                    id.value()
                );
                self.conn.reset(id, Reason::Cancel);
            }
        }
        if wake_openers && self.open_waiters > 0 {
            open_cv.notify_all();
        }
    }

    /// The error for a stream that was reset, and whether the request provably was not
    /// processed (so it may be retried on another connection).
    pub(crate) fn reset_error(&self, reason: Reason, remote: bool) -> (Error, bool) {
        let refused = remote && reason == Reason::RefusedStream;
        let e = match self.goaway {
            Some((last, goaway_reason)) if refused => Error::new(
                ErrorKind::GoAway,
                format!(
                    "the server sent GOAWAY ({goaway_reason}, last stream {}) before \
                     processing the request",
                    last.value()
                ),
            )
            .with_h2_reason(goaway_reason),
            _ if remote => Error::new(
                ErrorKind::StreamReset,
                format!("the server reset the stream ({reason})"),
            )
            .with_h2_reason(reason),
            _ => Error::new(
                ErrorKind::Http2,
                format!("the stream was reset for a protocol error ({reason})"),
            )
            .with_h2_reason(reason),
        };
        (e, refused)
    }

    /// The error for a stream cut by the connection failing or the server going away.
    pub(crate) fn conn_error(&self) -> Error {
        match (&self.failure, self.goaway) {
            (_, Some((last, reason))) if reason != Reason::NoError => Error::new(
                ErrorKind::GoAway,
                format!(
                    "the server closed the connection with GOAWAY ({reason}, last stream {})",
                    last.value()
                ),
            )
            .with_h2_reason(reason),
            (Some(f), _) => f.to_error(),
            (None, Some((last, reason))) => Error::new(
                ErrorKind::GoAway,
                format!(
                    "the server is going away (GOAWAY {reason}, last stream {})",
                    last.value()
                ),
            )
            .with_h2_reason(reason),
            (None, None) => Error::new(ErrorKind::Closed, "the HTTP/2 connection closed"),
        }
    }
}

/// Waits on `cv` (once; callers loop on their condition) until `deadline` at the
/// latest (forever without one); false when the deadline has passed.
pub(crate) fn wait_until<'a>(
    cv: &Condvar,
    st: MutexGuard<'a, State>,
    deadline: Option<Instant>,
) -> (MutexGuard<'a, State>, bool) {
    match deadline {
        None => (cv.wait(st).unwrap_or_else(|p| p.into_inner()), true),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (st, false);
            }
            let (st, _) = cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner());
            (st, Instant::now() < d)
        }
    }
}
