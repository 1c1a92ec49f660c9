//! [`Connection`]: the HTTP/2 connection state machine.
use std::collections::VecDeque;
use std::time::Instant;

use http::{HeaderMap, Method, StatusCode};

use super::streams::{Closed, Map, Recent, Stream};
use super::{Config, Event, Role, SendError, StreamState};
use crate::h2::frame::{
    encode_header_block, flags, Decoded, Frame, FrameDecoder, FrameHead, FrameType, GoAway, Ping,
    RstStream, SettingId, Settings, WindowUpdate, DEFAULT_MAX_FRAME_SIZE, HEAD_LEN,
    MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
};
use crate::h2::headers::{self, Assembled, BlockAssembler};
use crate::h2::hpack::{Decoder, Encoder};
use crate::h2::preface::CLIENT_MAGIC;
use crate::h2::{H2Error, Reason, Scope, StreamId, Violation};

/// The PING payload of the graceful GOAWAY (RFC 9113 §6.8).
const GRACEFUL_PING: [u8; 8] = *b"spndl-gw";
/// The default initial window of RFC 9113 §6.9.2.
const DEFAULT_WINDOW: u32 = 65_535;

/// Events as queued: DATA and GOAWAY debug bytes live in `data_buf`.
#[derive(Debug)]
enum Ev {
    Request(StreamId, http::Request<()>, bool),
    TooLarge(StreamId, bool),
    Response(StreamId, http::Response<()>, bool),
    Data(StreamId, usize, usize, bool),
    Trailers(StreamId, HeaderMap),
    Reset(StreamId, Reason, bool),
    Capacity(StreamId),
    GoAway(StreamId, Reason, usize, usize),
    SettingsReceived,
    SettingsAcked,
    PingAck([u8; 8]),
    Error(H2Error),
}

/// What a complete header block is for, decided before HPACK decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadKind {
    /// Server: a new stream from the peer.
    NewRequest,
    /// Server: a new stream over the concurrency limit.
    Refuse,
    /// Client: a response head on one of our streams.
    Response,
    /// Trailers on an open stream.
    Trailers,
    /// A block to decode (for the HPACK context) and drop: a stream we reset, or one above
    /// our GOAWAY.
    Ignore,
    /// HEADERS on a half-closed (remote) stream, or on one the peer reset: decode (for
    /// the HPACK context), then STREAM_CLOSED stream error.
    HalfClosed,
}

enum HeadOut {
    Request(http::Request<()>),
    Response(http::Response<()>),
    Trailers(HeaderMap),
    Dropped,
}

/// An HTTP/2 connection, server or client role, without I/O.
///
/// See the [module documentation](super) for the overall flow and an example. Driving it:
///
/// 1. Create it with [`Connection::server`] or [`Connection::client`]; its preface
///    (client magic for a client, SETTINGS, a connection WINDOW_UPDATE) is already in the
///    output.
/// 2. Whenever bytes arrive: [`recv`](Connection::recv) them, keep what it did not consume
///    (it stops early when [`wants_read`](Connection::wants_read) turns false), then drain
///    every event with [`poll_event`](Connection::poll_event).
/// 3. Whenever [`output`](Connection::output) is not empty, write it and
///    [`advance_output`](Connection::advance_output) by what was written.
/// 4. Call [`tick`](Connection::tick) at [`next_timeout`](Connection::next_timeout).
/// 5. Close the socket when [`is_closed`](Connection::is_closed) and the output is empty.
pub struct Connection {
    role: Role,
    cfg: Config,
    now: Instant,

    decoder: FrameDecoder,
    asm: BlockAssembler,
    hdec: Decoder,
    henc: Encoder,
    hbuf: Vec<u8>,
    magic_seen: usize,
    got_settings: bool,

    out: Vec<u8>,
    out_pos: usize,
    queued_control: usize,

    events: VecDeque<Ev>,
    data_buf: Vec<u8>,

    streams: Map,
    recent: Recent,
    blocked: Vec<u32>,
    active_local: u32,
    active_remote: u32,
    /// Highest peer-initiated id seen (opened, refused or ignored).
    max_peer_id: u32,
    /// Highest peer-initiated id accepted for processing (for GOAWAY).
    last_accepted: u32,
    next_local_id: u32,

    local_pending: VecDeque<(Instant, Vec<(SettingId, u32)>)>,
    /// Our INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE and HEADER_TABLE_SIZE as last acknowledged
    /// (the RFC's initial values before any ACK).
    acked_limits: [u32; 3],
    /// The limits in force for what the peer sends (see `sync_local_limits`).
    local_init_window: u32,
    local_max_concurrent: u32,
    local_table_size: u32,
    peer_init_window: u32,
    peer_max_frame: u32,
    peer_max_concurrent: u32,
    peer_max_header_list: u32,

    conn_send_window: i64,
    conn_recv_window: i64,
    conn_pending_update: u64,

    goaway_sent: Option<u32>,
    goaway_recv: Option<u32>,
    graceful_since: Option<Instant>,
    closed: bool,
    error: Option<H2Error>,

    reset_tokens: f64,
    reset_refilled: Instant,
    empty_frames: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("streams", &self.streams.len())
            .field("output", &self.output_len())
            .field("events", &self.events.len())
            .field("goaway_sent", &self.goaway_sent)
            .field("goaway_recv", &self.goaway_recv)
            .field("error", &self.error)
            .finish()
    }
}

fn conn_err(reason: Reason, v: Violation) -> H2Error {
    H2Error::connection(reason, v)
}

fn parse_content_length(h: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut out = None;
    for v in h.get_all(http::header::CONTENT_LENGTH) {
        let s = v.to_str().map_err(|_| ())?;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n: u64 = part.parse().map_err(|_| ())?;
            match out {
                Some(m) if m != n => return Err(()),
                _ => out = Some(n),
            }
        }
    }
    Ok(out)
}

impl Connection {
    /// A server-role connection. The server's SETTINGS (and a connection WINDOW_UPDATE
    /// when the configured window is above 65 535) are queued at once; the client's magic
    /// and SETTINGS are expected first in [`recv`](Connection::recv).
    ///
    /// ```
    /// use std::time::Instant;
    /// use spindle::h2::proto::{Config, Connection};
    /// let mut server = Connection::server(Config::default(), Instant::now());
    /// let out = server.take_output();
    /// assert_eq!(out[3], 0x4); // a SETTINGS frame
    /// ```
    pub fn server(cfg: Config, now: Instant) -> Connection {
        Connection::new(Role::Server, cfg, now)
    }

    /// A client-role connection. The client magic, SETTINGS (with ENABLE_PUSH = 0) and a
    /// connection WINDOW_UPDATE are queued at once; requests may be opened immediately.
    pub fn client(cfg: Config, now: Instant) -> Connection {
        Connection::new(Role::Client, cfg, now)
    }

    /// A server-role connection taking over from HTTP/1.1 after `Upgrade: h2c` (RFC 7540
    /// §3.2): `http2_settings` is the request's decoded `HTTP2-Settings` field, applied
    /// as the client's first SETTINGS (the 101 response acknowledges it; no ACK is
    /// sent). The upgrading request becomes stream 1, half-closed (remote): answer it with
    /// [`send_response`](Connection::send_response) on stream 1 ([`StreamId::new`]). The client's
    /// preface is still expected first in [`recv`](Connection::recv).
    ///
    /// ```
    /// use std::time::Instant;
    /// use spindle::h2::frame::StreamId;
    /// use spindle::h2::proto::{Config, Connection, StreamState};
    /// // SETTINGS_MAX_FRAME_SIZE = 32768.
    /// let settings = [0x00, 0x05, 0x00, 0x00, 0x80, 0x00];
    /// let server = Connection::server_upgraded(Config::default(), Instant::now(), &settings)?;
    /// assert_eq!(server.peer_max_frame_size(), 32768);
    /// assert_eq!(server.stream_state(StreamId::new(1)), StreamState::HalfClosedRemote);
    /// # Ok::<(), spindle::h2::H2Error>(())
    /// ```
    pub fn server_upgraded(
        cfg: Config,
        now: Instant,
        http2_settings: &[u8],
    ) -> Result<Connection, H2Error> {
        let settings = Settings::from_payload(http2_settings)?;
        let mut c = Connection::new(Role::Server, cfg, now);
        c.apply_peer_settings(&settings)?;
        // The preface must still open with a SETTINGS frame.
        c.got_settings = false;
        c.open_remote(1);
        c.end_recv(1);
        c.max_peer_id = 1;
        c.last_accepted = 1;
        Ok(c)
    }

    /// A connection of either role.
    pub fn new(role: Role, cfg: Config, now: Instant) -> Connection {
        let mut asm = BlockAssembler::new();
        asm.set_max_block_size(cfg.max_header_block_size);
        asm.set_max_continuations(cfg.max_continuations);
        let mut hdec = Decoder::new();
        hdec.set_max_header_list_size(cfg.max_header_list_size as usize);
        let mut c = Connection {
            role,
            now,
            decoder: FrameDecoder::new(),
            asm,
            hdec,
            henc: Encoder::new(),
            hbuf: Vec::with_capacity(256),
            magic_seen: 0,
            got_settings: false,
            out: Vec::with_capacity(16 * 1024),
            out_pos: 0,
            queued_control: 0,
            events: VecDeque::with_capacity(16),
            data_buf: Vec::new(),
            streams: Map::default(),
            recent: Recent::new(),
            blocked: Vec::new(),
            active_local: 0,
            active_remote: 0,
            max_peer_id: 0,
            last_accepted: 0,
            next_local_id: if role == Role::Client { 1 } else { 2 },
            local_pending: VecDeque::new(),
            acked_limits: [DEFAULT_WINDOW, DEFAULT_MAX_FRAME_SIZE, 4096],
            local_init_window: DEFAULT_WINDOW,
            local_max_concurrent: u32::MAX,
            local_table_size: 4096,
            peer_init_window: DEFAULT_WINDOW,
            peer_max_frame: DEFAULT_MAX_FRAME_SIZE,
            // RFC 9113 §6.5.2 recommends at least 100; until the server's SETTINGS arrive
            // a client assumes 100 rather than unlimited (and opens no more).
            peer_max_concurrent: if role == Role::Client { 100 } else { u32::MAX },
            peer_max_header_list: u32::MAX,
            conn_send_window: i64::from(DEFAULT_WINDOW),
            conn_recv_window: i64::from(DEFAULT_WINDOW),
            conn_pending_update: 0,
            goaway_sent: None,
            goaway_recv: None,
            graceful_since: None,
            closed: false,
            error: None,
            reset_tokens: f64::from(cfg.reset_burst),
            reset_refilled: now,
            empty_frames: 0,
            cfg,
        };
        if role == Role::Client {
            c.out.extend_from_slice(CLIENT_MAGIC);
        }
        let mut s = vec![
            (SettingId::EnablePush, 0),
            (
                SettingId::MaxConcurrentStreams,
                c.cfg.max_concurrent_streams,
            ),
            (SettingId::InitialWindowSize, c.cfg.initial_stream_window),
            (SettingId::MaxHeaderListSize, c.cfg.max_header_list_size),
        ];
        if c.cfg.max_frame_size != DEFAULT_MAX_FRAME_SIZE {
            s.push((SettingId::MaxFrameSize, c.cfg.max_frame_size));
        }
        if c.cfg.header_table_size != 4096 {
            s.push((SettingId::HeaderTableSize, c.cfg.header_table_size));
        }
        // Values from the config are clamped rather than refused.
        for (id, v) in s.iter_mut() {
            *v = clamp_setting(*id, *v);
        }
        c.write_settings(s);
        let target = i64::from(c.cfg.initial_connection_window.min(MAX_WINDOW_SIZE));
        if target > c.conn_recv_window {
            WindowUpdate {
                stream_id: StreamId::ZERO,
                increment: (target - c.conn_recv_window) as u32,
            }
            .encode(&mut c.out);
            c.conn_recv_window = target;
        }
        c
    }

    /// Which role this connection plays.
    pub fn role(&self) -> Role {
        self.role
    }

    // ------------------------------------------------------------------ input

    /// Feed bytes received from the peer; returns how many were consumed. Whole frames
    /// are consumed; a partial frame at the end is left for the caller to present again
    /// with more bytes behind it. Consumption also stops early (possibly at 0) while
    /// [`wants_read`](Connection::wants_read) is false: drain the output and poll the
    /// events, then call again with the rest.
    ///
    /// A connection error queues GOAWAY and an [`Event::ConnectionError`] and is returned;
    /// every later call returns it again.
    pub fn recv(&mut self, buf: &[u8]) -> Result<usize, H2Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.closed {
            return Ok(buf.len());
        }
        if self.events.is_empty() {
            self.data_buf.clear();
        }
        let mut pos = 0;
        if self.role == Role::Server && self.magic_seen < CLIENT_MAGIC.len() {
            let n = (CLIENT_MAGIC.len() - self.magic_seen).min(buf.len());
            if buf[..n] != CLIENT_MAGIC[self.magic_seen..self.magic_seen + n] {
                return Err(self.fail(conn_err(Reason::ProtocolError, Violation::BadPreface)));
            }
            self.magic_seen += n;
            pos = n;
            if self.magic_seen < CLIENT_MAGIC.len() {
                return Ok(pos);
            }
        }
        while pos < buf.len() && self.wants_read() {
            match self.decoder.decode(&buf[pos..]) {
                Ok(Decoded::NeedMore(_)) => break,
                Ok(Decoded::Frame { frame, consumed }) => {
                    pos += consumed;
                    if let Err(e) = self.on_frame(frame) {
                        return Err(self.fail(e));
                    }
                }
                Err(de) => {
                    let kind = FrameHead::parse(&buf[pos..]).map(|h| h.kind);
                    match de.error.scope() {
                        Scope::Stream(id)
                            if de.consumed > 0
                                && self.got_settings
                                && !self.asm.is_open()
                                && kind != Some(FrameType::Headers) =>
                        {
                            pos += de.consumed;
                            if let Err(e) = self.stream_error(id.value(), de.error) {
                                return Err(self.fail(e));
                            }
                        }
                        Scope::Stream(_) => {
                            let e = conn_err(de.error.reason(), de.error.violation());
                            return Err(self.fail(e));
                        }
                        Scope::Connection => return Err(self.fail(de.error)),
                    }
                }
            }
            if self.closed {
                return Ok(buf.len());
            }
        }
        Ok(pos)
    }

    /// The next queued event, if any. DATA bytes borrow from the connection.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let ev = match self.events.pop_front() {
            Some(ev) => ev,
            None => {
                self.data_buf.clear();
                return None;
            }
        };
        Some(match ev {
            Ev::Request(id, head, end_stream) => Event::Request {
                id,
                head,
                end_stream,
            },
            Ev::TooLarge(id, end_stream) => Event::HeadersTooLarge { id, end_stream },
            Ev::Response(id, head, end_stream) => Event::Response {
                id,
                head,
                end_stream,
            },
            Ev::Data(id, start, len, end_stream) => Event::Data {
                id,
                data: &self.data_buf[start..start + len],
                end_stream,
            },
            Ev::Trailers(id, trailers) => Event::Trailers { id, trailers },
            Ev::Reset(id, reason, remote) => Event::Reset { id, reason, remote },
            Ev::Capacity(id) => Event::Capacity { id },
            Ev::GoAway(id, reason, start, len) => Event::GoAway {
                last_stream_id: id,
                reason,
                debug_data: &self.data_buf[start..start + len],
            },
            Ev::SettingsReceived => Event::SettingsReceived,
            Ev::SettingsAcked => Event::SettingsAcked,
            Ev::PingAck(payload) => Event::PingAck { payload },
            Ev::Error(error) => Event::ConnectionError { error },
        })
    }

    /// True while there are events to poll.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Advance the connection's clock: SETTINGS ACK timeout (connection error
    /// SETTINGS_TIMEOUT), the second step of a graceful GOAWAY, the reset-rate budget.
    pub fn tick(&mut self, now: Instant) -> Result<(), H2Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.now = now;
        if let Some(&(sent, _)) = self.local_pending.front() {
            if now.saturating_duration_since(sent) >= self.cfg.settings_timeout {
                return Err(self.fail(conn_err(
                    Reason::SettingsTimeout,
                    Violation::SettingsTimeout,
                )));
            }
        }
        if let Some(since) = self.graceful_since {
            if now.saturating_duration_since(since) >= self.cfg.settings_timeout {
                self.finish_graceful();
            }
        }
        Ok(())
    }

    /// When [`tick`](Connection::tick) must next be called, if anything is pending.
    pub fn next_timeout(&self) -> Option<Instant> {
        let a = self
            .local_pending
            .front()
            .map(|&(t, _)| t + self.cfg.settings_timeout);
        let b = self.graceful_since.map(|t| t + self.cfg.settings_timeout);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----------------------------------------------------------------- output

    /// The bytes waiting to be written.
    #[inline]
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Mark `n` bytes of [`output`](Connection::output) as written.
    pub fn advance_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.on_drained();
        } else if self.out_pos > 64 * 1024 && self.out_pos * 2 > self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Frees the buffers kept for reuse between frames (output, header scratch,
    /// event queue) when they hold nothing, so a connection parked while idle costs
    /// little; they grow again on use. Pending output and events are kept.
    pub fn release_buffers(&mut self) {
        if self.output_len() == 0 {
            self.out = Vec::new();
            self.out_pos = 0;
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
            self.data_buf = Vec::new();
        }
        self.hbuf = Vec::new();
    }

    /// Append all pending output to `dst` and clear it.
    pub fn pending_output(&mut self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(self.output());
        let n = self.output_len();
        self.advance_output(n);
    }

    /// Take all pending output.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        self.pending_output(&mut v);
        v
    }

    /// Bytes waiting to be written.
    #[inline]
    pub fn output_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// True when there is output to write.
    pub fn wants_write(&self) -> bool {
        self.output_len() > 0
    }

    /// Server role: the client's connection preface (the 24-byte magic) has arrived.
    /// After an `Upgrade: h2c`, a server may hold its answer to stream 1 until then:
    /// some clients (curl 7.88) can take only so many bytes behind the 101 before they
    /// have switched to HTTP/2, which they do before sending the preface.
    pub fn client_preface_received(&self) -> bool {
        self.role == Role::Server && self.magic_seen == CLIENT_MAGIC.len()
    }

    /// False while input should not be read: the output buffer or the DATA held in
    /// unpolled events is over [`Config::max_output_buffer`] (a peer that does not read
    /// what it asks for), or the connection is closed.
    #[inline]
    pub fn wants_read(&self) -> bool {
        !self.closed
            && self.error.is_none()
            && self.output_len() <= self.cfg.max_output_buffer
            && self.data_buf.len() <= self.cfg.max_output_buffer
    }

    /// True when the connection is finished: after a connection error or a GOAWAY with an
    /// error code, or after a GOAWAY either way once no stream is active. Flush the output,
    /// then close the socket.
    pub fn is_closed(&self) -> bool {
        self.closed
            || self.error.is_some()
            || ((self.goaway_recv.is_some() || self.goaway_sent.is_some())
                && self.graceful_since.is_none()
                && self.active_local + self.active_remote == 0)
    }

    fn on_drained(&mut self) {
        self.queued_control = 0;
        if !self.blocked.is_empty() {
            self.wake_blocked();
        }
    }

    // ------------------------------------------------------------ inspection

    /// The RFC 9113 §5.1 state of a stream.
    pub fn stream_state(&self, id: StreamId) -> StreamState {
        let v = id.value();
        match self.streams.get(&v) {
            Some(s) if !s.closed => match (s.recv_open, s.send_open) {
                (true, true) => StreamState::Open,
                (true, false) => StreamState::HalfClosedLocal,
                (false, true) => StreamState::HalfClosedRemote,
                (false, false) => StreamState::Closed,
            },
            Some(_) => StreamState::Closed,
            None if self.is_idle(v) => StreamState::Idle,
            None => StreamState::Closed,
        }
    }

    /// Streams open or half-closed (the ones SETTINGS_MAX_CONCURRENT_STREAMS counts).
    pub fn active_streams(&self) -> usize {
        (self.active_local + self.active_remote) as usize
    }

    /// How many body bytes [`send_data`](Connection::send_data) would accept on `id` now
    /// (the stream and connection windows and the output room), 0 for an unknown stream.
    pub fn send_capacity(&self, id: StreamId) -> usize {
        match self.streams.get(&id.value()) {
            Some(s) if !s.closed && s.send_open && !s.no_content => {
                let w = s.send_window.min(self.conn_send_window).max(0) as usize;
                w.min(self.output_room())
            }
            _ => 0,
        }
    }

    /// How many body bytes the peer may send on `id` right now: the smaller of the
    /// stream's receive window and the connection's, as announced (0 for a stream that
    /// receives no more). 0 means the peer waits for us (a WINDOW_UPDATE), not the other
    /// way round: a server measuring how fast a body arrives stops its clock then.
    ///
    /// ```
    /// use std::time::Instant;
    /// use spindle::h2::proto::{Config, Connection};
    /// let now = Instant::now();
    /// let mut client = Connection::client(Config::default(), now);
    /// let mut server = Connection::server(Config::default(), now);
    /// let req = http::Request::post("http://x/up").body(()).unwrap();
    /// let id = client.open_stream(&req, false).unwrap();
    /// server.recv(&client.take_output()).unwrap();
    /// client.recv(&server.take_output()).unwrap();
    /// server.recv(&client.take_output()).unwrap(); // the SETTINGS ACK
    /// let open = server.recv_capacity(id);
    /// assert!(open > 0);
    /// client.send_data(id, &[0; 1000], false).unwrap();
    /// server.recv(&client.take_output()).unwrap();
    /// assert_eq!(server.recv_capacity(id), open - 1000);
    /// ```
    pub fn recv_capacity(&self, id: StreamId) -> usize {
        match self.streams.get(&id.value()) {
            Some(s) if !s.closed && s.recv_open => {
                s.recv_window.min(self.conn_recv_window).max(0) as usize
            }
            _ => 0,
        }
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (a client assumes 100 until the server's
    /// first SETTINGS, then unlimited unless they say otherwise).
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.peer_max_concurrent
    }

    /// The peer's SETTINGS_MAX_FRAME_SIZE.
    pub fn peer_max_frame_size(&self) -> u32 {
        self.peer_max_frame
    }

    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE.
    pub fn peer_initial_window_size(&self) -> u32 {
        self.peer_init_window
    }

    /// True once the client could open another stream right now.
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.error.is_none()
            && !self.closed
            && self.goaway_recv.is_none()
            && self.goaway_sent.is_none()
            && self.active_local < self.peer_max_concurrent
            && self.next_local_id <= StreamId::MAX.value()
    }

    /// The highest peer-initiated stream accepted for processing.
    pub fn last_peer_stream_id(&self) -> StreamId {
        StreamId::new(self.last_accepted)
    }

    // ------------------------------------------------------------ user sends

    fn check_usable(&self) -> Result<(), SendError> {
        if self.error.is_some() || self.closed {
            Err(SendError::ConnectionClosed)
        } else {
            Ok(())
        }
    }

    /// Client role: open a stream with a request head (HEADERS, plus CONTINUATION when the
    /// block exceeds the peer's frame size). `end_stream` for a request without body.
    pub fn open_stream<T>(
        &mut self,
        head: &http::Request<T>,
        end_stream: bool,
    ) -> Result<StreamId, SendError> {
        self.check_usable()?;
        if self.role != Role::Client {
            return Err(SendError::WrongRole);
        }
        if self.goaway_recv.is_some() || self.goaway_sent.is_some() {
            return Err(SendError::GoingAway);
        }
        if self.active_local >= self.peer_max_concurrent {
            return Err(SendError::ConcurrencyLimit);
        }
        let id = self.next_local_id;
        if id > StreamId::MAX.value() {
            return Err(SendError::StreamIdsExhausted);
        }
        if self.peer_max_header_list != u32::MAX {
            let size = headers::header_list_size(head.headers()) + 4 * 32 + 64;
            let uri = head.uri().to_string().len() + head.method().as_str().len();
            if (size + uri) as u64 > u64::from(self.peer_max_header_list) {
                return Err(SendError::HeaderListTooLarge);
            }
        }
        self.next_local_id += 2;
        self.hbuf.clear();
        headers::encode_request(&mut self.henc, head, &mut self.hbuf);
        encode_header_block(
            StreamId::new(id),
            &self.hbuf,
            end_stream,
            self.peer_max_frame,
            &mut self.out,
        );
        let mut s = Stream::new(true, self.peer_init_window, self.local_init_window);
        s.sent_head = true;
        s.send_open = !end_stream;
        s.is_head = head.method() == Method::HEAD;
        self.streams.insert(id, s);
        self.active_local += 1;
        Ok(StreamId::new(id))
    }

    /// Server role: send a response head. An informational (1xx) head may precede the
    /// final one and cannot carry `end_stream`. With `end_stream` the response has no body.
    ///
    /// When the request is still being received after the response ended, the engine
    /// should [`reset`](Connection::reset) the stream with NO_ERROR if it will not read
    /// the rest (RFC 9113 §8.1).
    pub fn send_response<T>(
        &mut self,
        id: StreamId,
        head: &http::Response<T>,
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.check_usable()?;
        if self.role != Role::Server {
            return Err(SendError::WrongRole);
        }
        let informational = head.status().is_informational();
        let s = self.sendable(id)?;
        if s.sent_head || (informational && end_stream) {
            return Err(SendError::InvalidState);
        }
        if self.peer_max_header_list != u32::MAX {
            let size = headers::header_list_size(head.headers()) + 32 + 10;
            if size as u64 > u64::from(self.peer_max_header_list) {
                return Err(SendError::HeaderListTooLarge);
            }
        }
        let s = self.streams.get_mut(&id.value()).expect("checked");
        if !informational {
            s.sent_head = true;
            s.no_content = s.is_head
                || head.status() == StatusCode::NO_CONTENT
                || head.status() == StatusCode::NOT_MODIFIED;
        }
        self.hbuf.clear();
        headers::encode_response(&mut self.henc, head, &mut self.hbuf);
        encode_header_block(
            id,
            &self.hbuf,
            end_stream,
            self.peer_max_frame,
            &mut self.out,
        );
        if end_stream {
            self.end_send(id.value());
        }
        Ok(())
    }

    fn sendable(&self, id: StreamId) -> Result<&Stream, SendError> {
        match self.streams.get(&id.value()) {
            Some(s) if !s.closed => {
                if s.send_open {
                    Ok(s)
                } else {
                    Err(SendError::StreamClosed)
                }
            }
            _ => Err(SendError::UnknownStream),
        }
    }

    fn output_room(&self) -> usize {
        self.cfg.max_output_buffer.saturating_sub(self.output_len())
    }

    /// Send body bytes: accepts at most what the stream window, the connection window and
    /// the output room allow, split into DATA frames of the peer's SETTINGS_MAX_FRAME_SIZE,
    /// and returns how many bytes were taken. END_STREAM is set only when all of `data`
    /// was accepted. Fewer bytes than offered (possibly 0) mean the stream is blocked: an
    /// [`Event::Capacity`] for it follows when it may send again. An empty `data` with
    /// `end_stream` always goes out. Bytes on a response without content (to a HEAD
    /// request, 204, 304; RFC 9113 §8.1.1) are refused with [`SendError::InvalidState`].
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        self.check_usable()?;
        let room = self.output_room();
        let conn_window = self.conn_send_window;
        let s = match self.streams.get_mut(&id.value()) {
            Some(s) if !s.closed => s,
            _ => return Err(SendError::UnknownStream),
        };
        if !s.send_open {
            return Err(SendError::StreamClosed);
        }
        if !s.sent_head || (s.no_content && !data.is_empty()) {
            return Err(SendError::InvalidState);
        }
        let avail = s.send_window.min(conn_window).max(0) as usize;
        let n = data.len().min(avail).min(room);
        let fin = end_stream && n == data.len();
        if n == 0 && !fin {
            if !data.is_empty() && !s.blocked {
                s.blocked = true;
                self.blocked.push(id.value());
            }
            return Ok(0);
        }
        s.send_window -= n as i64;
        self.conn_send_window -= n as i64;
        if n < data.len() && !s.blocked {
            s.blocked = true;
            self.blocked.push(id.value());
        }
        let max = self.peer_max_frame as usize;
        let mut rest = &data[..n];
        self.out.reserve(n + (n / max + 1) * HEAD_LEN);
        loop {
            let k = rest.len().min(max);
            let last = k == rest.len();
            let fl = if last && fin { flags::END_STREAM } else { 0 };
            FrameHead {
                length: k as u32,
                kind: FrameType::Data,
                flags: fl,
                stream_id: id,
            }
            .encode(&mut self.out);
            self.out.extend_from_slice(&rest[..k]);
            rest = &rest[k..];
            if last {
                break;
            }
        }
        if fin {
            self.end_send(id.value());
        }
        Ok(n)
    }

    /// Send trailers, ending the stream. The final head must have been sent.
    pub fn send_trailers(&mut self, id: StreamId, trailers: &HeaderMap) -> Result<(), SendError> {
        self.check_usable()?;
        let s = self.sendable(id)?;
        if !s.sent_head {
            return Err(SendError::InvalidState);
        }
        if self.peer_max_header_list != u32::MAX
            && headers::header_list_size(trailers) as u64 > u64::from(self.peer_max_header_list)
        {
            return Err(SendError::HeaderListTooLarge);
        }
        self.hbuf.clear();
        headers::encode_trailers(&mut self.henc, trailers, &mut self.hbuf);
        encode_header_block(id, &self.hbuf, true, self.peer_max_frame, &mut self.out);
        self.end_send(id.value());
        Ok(())
    }

    /// Reset a stream (RST_STREAM with `reason`); a no-op for a stream that is already
    /// closed or unknown. Frames the peer sends on it afterwards are ignored, and its
    /// unread body bytes are credited back to the connection window.
    pub fn reset(&mut self, id: StreamId, reason: Reason) {
        if self.error.is_some() || self.closed {
            return;
        }
        match self.streams.get(&id.value()) {
            Some(s) if !s.closed => {
                log::debug!("h2: resetting stream {} with {}", id.value(), reason);
                self.reset_stream(id.value(), reason);
            }
            _ => {}
        }
    }

    /// The application consumed `n` body bytes of stream `id` (as delivered by
    /// [`Event::Data`]): give the credit back. WINDOW_UPDATE frames go out once half a
    /// window has been consumed, for the stream and for the connection. Releases for a
    /// stream that was reset are ignored (its credit was returned at the reset).
    pub fn release_capacity(&mut self, id: StreamId, n: usize) {
        let v = id.value();
        let Some(s) = self.streams.get_mut(&v) else {
            return;
        };
        let n = (n as u64).min(s.unreleased);
        if n == 0 {
            return;
        }
        s.unreleased -= n;
        if s.closed {
            if s.unreleased == 0 {
                self.streams.remove(&v);
            }
        } else if s.recv_open {
            s.pending_update += n;
            let threshold = update_threshold(self.local_init_window, s);
            if s.pending_update >= threshold && self.error.is_none() {
                let inc = s.pending_update.min(u64::from(MAX_WINDOW_SIZE)) as u32;
                s.pending_update -= u64::from(inc);
                s.recv_window += i64::from(inc);
                WindowUpdate {
                    stream_id: id,
                    increment: inc,
                }
                .encode(&mut self.out);
            }
        }
        self.release_conn(n);
    }

    fn release_conn(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.conn_pending_update += n;
        let threshold = u64::from((self.cfg.initial_connection_window / 2).max(1));
        if self.conn_pending_update >= threshold && self.error.is_none() && !self.closed {
            let inc = self.conn_pending_update.min(u64::from(MAX_WINDOW_SIZE)) as u32;
            self.conn_pending_update -= u64::from(inc);
            self.conn_recv_window += i64::from(inc);
            WindowUpdate {
                stream_id: StreamId::ZERO,
                increment: inc,
            }
            .encode(&mut self.out);
        }
    }

    /// After our initial window shrank, credit already released may now exceed the
    /// WINDOW_UPDATE threshold of streams that will receive nothing more until it is sent.
    fn flush_stream_updates(&mut self) {
        for (&id, s) in self.streams.iter_mut() {
            let threshold = update_threshold(self.local_init_window, s);
            if !s.closed && s.recv_open && s.pending_update >= threshold {
                let inc = s.pending_update.min(u64::from(MAX_WINDOW_SIZE)) as u32;
                s.pending_update -= u64::from(inc);
                s.recv_window += i64::from(inc);
                WindowUpdate {
                    stream_id: StreamId::new(id),
                    increment: inc,
                }
                .encode(&mut self.out);
            }
        }
    }

    /// Grows the receive window of stream `id` to `window` bytes (from our
    /// SETTINGS_INITIAL_WINDOW_SIZE, or an earlier growth), with a WINDOW_UPDATE; it
    /// stays that size as the application releases what it read. A server advertises a
    /// small initial window, so streams nobody reads yet hold little of the connection
    /// window, and grows it when a handler starts reading. Sends nothing for a stream
    /// whose window is already that size or larger, or that receives no more; a window
    /// that is that large only because the peer has not yet acknowledged a smaller
    /// initial window keeps `window` bytes when it does.
    ///
    /// ```
    /// use std::time::Instant;
    /// use spindle::h2::proto::{Config, Connection, Event};
    /// let now = Instant::now();
    /// let mut client = Connection::client(Config::default(), now);
    /// let small = Config { initial_stream_window: 16 * 1024, ..Config::default() };
    /// let mut server = Connection::server(small, now);
    /// let req = http::Request::post("http://x/up").body(()).unwrap();
    /// let id = client.open_stream(&req, false).unwrap();
    /// server.recv(&client.take_output()).unwrap();
    /// client.recv(&server.take_output()).unwrap();
    /// assert_eq!(client.send_capacity(id), 16 * 1024);
    /// server.grow_recv_window(id, 1 << 20);
    /// client.recv(&server.take_output()).unwrap();
    /// // Until the client acknowledges our SETTINGS we count with the default window
    /// // (65 535) it may still use; its ACK brings the difference.
    /// server.recv(&client.take_output()).unwrap();
    /// client.recv(&server.take_output()).unwrap();
    /// assert_eq!(client.send_capacity(id), 1 << 20);
    /// ```
    pub fn grow_recv_window(&mut self, id: StreamId, window: u32) {
        let init = self.local_init_window;
        let Some(s) = self.streams.get_mut(&id.value()) else {
            return;
        };
        let current = u64::from(init) + u64::from(s.extra_window);
        let window = u64::from(window.min(MAX_WINDOW_SIZE));
        if s.closed || !s.recv_open || self.error.is_some() {
            return;
        }
        // Remembered even when the window is that large already: before the peer
        // acknowledges a smaller initial window it is, and it must stay this large after.
        s.min_window = s.min_window.max(window as u32);
        if window <= current {
            return;
        }
        let inc = (window - current) as u32;
        s.extra_window += inc;
        s.recv_window += i64::from(inc);
        WindowUpdate {
            stream_id: id,
            increment: inc,
        }
        .encode(&mut self.out);
    }

    /// Send a PING; its answer arrives as [`Event::PingAck`].
    pub fn ping(&mut self, payload: [u8; 8]) -> Result<(), SendError> {
        self.check_usable()?;
        Ping {
            ack: false,
            payload,
        }
        .encode(&mut self.out);
        Ok(())
    }

    /// Change our settings mid-connection. Limits that loosen what the peer may do apply
    /// at once; limits that tighten apply when the peer acknowledges (RFC 9113 §6.5.3).
    /// Supported: HEADER_TABLE_SIZE, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE,
    /// MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE (others are sent as given). A value out of
    /// range, or an INITIAL_WINDOW_SIZE raise that would take a stream's window past
    /// 2^31-1 (RFC 9113 §6.9.2), is refused with [`SendError::InvalidSetting`].
    pub fn send_settings(&mut self, values: &[(SettingId, u32)]) -> Result<(), SendError> {
        self.check_usable()?;
        for &(id, v) in values {
            if clamp_setting(id, v) != v || (id == SettingId::EnablePush && v != 0) {
                return Err(SendError::InvalidSetting);
            }
            if id == SettingId::InitialWindowSize && v > self.local_init_window {
                // RFC 9113 §6.9.2: the peer must treat a window pushed past 2^31-1 by
                // this change as a connection error; a stream grown with WINDOW_UPDATE
                // could be.
                let delta = i64::from(v) - i64::from(self.local_init_window);
                let overflows = self
                    .streams
                    .values()
                    .any(|s| !s.closed && s.recv_window + delta > i64::from(MAX_WINDOW_SIZE));
                if overflows {
                    return Err(SendError::InvalidSetting);
                }
            }
        }
        self.write_settings(values.to_vec());
        Ok(())
    }

    fn write_settings(&mut self, values: Vec<(SettingId, u32)>) {
        Settings::encode_values(&values, &mut self.out);
        for &(id, v) in &values {
            match id {
                // Applied at once: streams over a lowered limit are refused with
                // REFUSED_STREAM (safe to retry), and the header list size is advisory
                // (RFC 9113 §6.5.2).
                SettingId::MaxConcurrentStreams => self.local_max_concurrent = v,
                SettingId::MaxHeaderListSize => self.hdec.set_max_header_list_size(v as usize),
                _ => {}
            }
        }
        self.local_pending.push_back((self.now, values));
        self.sync_local_limits();
    }

    /// The peer acknowledged our oldest SETTINGS in flight.
    fn settings_acked(&mut self, values: Vec<(SettingId, u32)>) {
        for (id, v) in values {
            match id {
                SettingId::InitialWindowSize => self.acked_limits[0] = v,
                SettingId::MaxFrameSize => self.acked_limits[1] = v,
                SettingId::HeaderTableSize => self.acked_limits[2] = v,
                _ => {}
            }
        }
        self.sync_local_limits();
    }

    /// Puts in force the limits on what the peer sends. The peer applies our SETTINGS in
    /// order (RFC 9113 §6.5.3), so until it acknowledges the last one it may be working
    /// under the values acknowledged last or under those of any frame in flight: what it
    /// sends is judged by the most permissive of them. So a looser value takes effect at
    /// once, a tighter one with the ACK of its frame, and a tighter value acknowledged
    /// while a looser frame is still in flight waits for that frame's ACK too.
    fn sync_local_limits(&mut self) {
        let in_force = |which: SettingId, acked: u32| {
            self.local_pending
                .iter()
                .flat_map(|(_, values)| values.iter())
                .filter(|(id, _)| *id == which)
                .fold(acked, |m, &(_, v)| m.max(v))
        };
        let window = in_force(SettingId::InitialWindowSize, self.acked_limits[0]);
        let frame = in_force(SettingId::MaxFrameSize, self.acked_limits[1]);
        let table = in_force(SettingId::HeaderTableSize, self.acked_limits[2]);
        if window != self.local_init_window {
            self.set_local_init_window(window);
        }
        if frame != self.decoder.max_frame_size() {
            self.decoder.set_max_frame_size(frame);
        }
        if table != self.local_table_size {
            self.hdec.set_max_table_size(table as usize);
            self.local_table_size = table;
        }
    }

    /// Changes the initial window of the streams the peer sends on (RFC 9113 §6.9.2).
    fn set_local_init_window(&mut self, v: u32) {
        let delta = i64::from(v) - i64::from(self.local_init_window);
        for (&id, s) in self.streams.iter_mut() {
            if s.closed {
                continue;
            }
            s.recv_window += delta;
            // A grown window keeps its size when the initial one shrinks (which happens
            // only with an ACK): the peer took the difference off, so it is given back;
            // a window asked for while the initial one was larger still (before the
            // ACK of a smaller one) is given back up to the size asked for.
            let give = if s.extra_window > 0 {
                -delta
            } else {
                (i64::from(s.min_window) - i64::from(v)).clamp(0, -delta.min(0))
            };
            if delta < 0 && give > 0 && s.recv_open {
                let inc = give as u32;
                s.extra_window = s.extra_window.saturating_add(inc);
                s.recv_window += i64::from(inc);
                WindowUpdate {
                    stream_id: StreamId::new(id),
                    increment: inc,
                }
                .encode(&mut self.out);
            }
        }
        self.local_init_window = v;
        if delta < 0 {
            self.flush_stream_updates();
        }
    }

    /// Send GOAWAY now with `reason`, announcing the last stream we accepted: no new
    /// stream will be processed, streams up to it may finish. With an error code the
    /// connection is closed for input at once.
    pub fn goaway(&mut self, reason: Reason, debug_data: &[u8]) {
        if self.error.is_some() || self.closed {
            return;
        }
        log::debug!(
            "h2: sending GOAWAY {} (last stream {})",
            reason,
            self.last_accepted
        );
        GoAway {
            last_stream_id: StreamId::new(self.last_accepted),
            error_code: reason,
            debug_data,
        }
        .encode(&mut self.out);
        self.goaway_sent = Some(self.last_accepted);
        self.graceful_since = None;
        if reason != Reason::NoError {
            self.closed = true;
        }
    }

    /// Graceful shutdown, RFC 9113 §6.8: GOAWAY with last-stream-id 2^31-1 and a PING;
    /// when the PING is answered (or after [`Config::settings_timeout`]), the real GOAWAY
    /// with the last stream accepted meanwhile. Open streams finish; then
    /// [`is_closed`](Connection::is_closed) turns true.
    pub fn goaway_graceful(&mut self) {
        if self.error.is_some() || self.closed || self.goaway_sent.is_some() {
            return;
        }
        if self.graceful_since.is_some() {
            return;
        }
        if self.role == Role::Client {
            self.goaway(Reason::NoError, b"");
            return;
        }
        GoAway {
            last_stream_id: StreamId::MAX,
            error_code: Reason::NoError,
            debug_data: b"",
        }
        .encode(&mut self.out);
        Ping {
            ack: false,
            payload: GRACEFUL_PING,
        }
        .encode(&mut self.out);
        self.graceful_since = Some(self.now);
    }

    fn finish_graceful(&mut self) {
        if self.graceful_since.take().is_some() {
            self.goaway(Reason::NoError, b"");
        }
    }

    // ---------------------------------------------------------- internals

    fn push_ev(&mut self, ev: Ev) {
        self.events.push_back(ev);
    }

    /// A connection error: log it, send GOAWAY, remember it.
    fn fail(&mut self, e: H2Error) -> H2Error {
        if self.error.is_none() {
            log::debug!("h2: {} ({:?} role): sending GOAWAY", e, self.role);
            GoAway {
                last_stream_id: StreamId::new(self.last_accepted),
                error_code: e.reason(),
                debug_data: b"",
            }
            .encode(&mut self.out);
            self.goaway_sent = Some(self.last_accepted);
            self.error = Some(e);
            self.push_ev(Ev::Error(e));
        }
        self.error.unwrap_or(e)
    }

    fn is_peer_id(&self, id: u32) -> bool {
        let odd = id & 1 == 1;
        match self.role {
            Role::Server => odd,
            Role::Client => !odd,
        }
    }

    fn is_idle(&self, id: u32) -> bool {
        if self.is_peer_id(id) {
            id > self.max_peer_id
        } else {
            id >= self.next_local_id
        }
    }

    fn count_control(&mut self) -> Result<(), H2Error> {
        self.queued_control += 1;
        if self.queued_control > self.cfg.max_queued_control_frames {
            return Err(conn_err(Reason::EnhanceYourCalm, Violation::Flood));
        }
        Ok(())
    }

    fn count_empty(&mut self) -> Result<(), H2Error> {
        self.empty_frames += 1;
        if self.empty_frames > self.cfg.max_empty_frames {
            return Err(conn_err(Reason::EnhanceYourCalm, Violation::Flood));
        }
        Ok(())
    }

    /// Spend one token of the reset budget (streams reset by the peer, or by us because of
    /// the peer): CVE-2023-44487 and its "made you reset" variant.
    fn spend_reset(&mut self) -> Result<(), H2Error> {
        let elapsed = self
            .now
            .saturating_duration_since(self.reset_refilled)
            .as_secs_f64();
        self.reset_refilled = self.now;
        self.reset_tokens = (self.reset_tokens + elapsed * f64::from(self.cfg.reset_rate))
            .min(f64::from(self.cfg.reset_burst));
        if self.reset_tokens < 1.0 {
            return Err(conn_err(Reason::EnhanceYourCalm, Violation::Flood));
        }
        self.reset_tokens -= 1.0;
        Ok(())
    }

    /// Remove a live stream from the table, returning its unread credit to the connection.
    fn remove_stream(&mut self, id: u32) -> Option<Stream> {
        let s = self.streams.remove(&id)?;
        if !s.closed {
            if s.local {
                self.active_local -= 1;
            } else {
                self.active_remote -= 1;
            }
        }
        self.release_conn(s.unreleased);
        Some(s)
    }

    fn reset_stream(&mut self, id: u32, reason: Reason) {
        RstStream {
            stream_id: StreamId::new(id),
            error_code: reason,
        }
        .encode(&mut self.out);
        if matches!(self.streams.get(&id), Some(s) if !s.closed) {
            self.remove_stream(id);
        }
        self.recent.push(id, Closed::Forgotten);
    }

    /// A stream error caused by the peer: RST_STREAM, an event if the application knew the
    /// stream, and a charge on the reset budget.
    fn stream_error(&mut self, id: u32, e: H2Error) -> Result<(), H2Error> {
        log::debug!("h2: {} ({:?} role): sending RST_STREAM", e, self.role);
        let known = matches!(self.streams.get(&id), Some(s) if !s.closed);
        self.reset_stream(id, e.reason());
        if known {
            self.push_ev(Ev::Reset(StreamId::new(id), e.reason(), false));
        }
        self.count_control()?;
        self.spend_reset()
    }

    fn end_send(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.send_open = false;
        }
        self.maybe_close(id);
    }

    fn end_recv(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.recv_open = false;
        }
        self.maybe_close(id);
    }

    fn maybe_close(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.closed || s.recv_open || s.send_open {
            return;
        }
        s.closed = true;
        let local = s.local;
        let drop = s.unreleased == 0;
        if local {
            self.active_local -= 1;
        } else {
            self.active_remote -= 1;
        }
        if drop {
            self.streams.remove(&id);
        }
        self.recent.push(id, Closed::Ended);
    }

    fn wake_blocked(&mut self) {
        if self.output_room() == 0 || self.conn_send_window <= 0 {
            return;
        }
        let mut i = 0;
        while i < self.blocked.len() {
            let id = self.blocked[i];
            match self.streams.get_mut(&id) {
                Some(s) if !s.closed && s.send_open && s.blocked => {
                    if s.send_window > 0 {
                        s.blocked = false;
                        self.blocked.swap_remove(i);
                        self.events.push_back(Ev::Capacity(StreamId::new(id)));
                    } else {
                        i += 1;
                    }
                }
                Some(s) => {
                    s.blocked = false;
                    self.blocked.swap_remove(i);
                }
                None => {
                    self.blocked.swap_remove(i);
                }
            }
        }
    }

    // ------------------------------------------------------------ frames

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), H2Error> {
        if !self.got_settings {
            match frame {
                Frame::Settings(s) if !s.is_ack() => {}
                _ => return Err(conn_err(Reason::ProtocolError, Violation::BadPreface)),
            }
        }
        if self.asm.is_open() {
            return self.on_headers(&frame);
        }
        match frame {
            Frame::Data(d) => self.on_data(
                d.stream_id.value(),
                d.data,
                d.flow_controlled_len(),
                d.end_stream,
            ),
            Frame::Headers(_) | Frame::Continuation(_) => self.on_headers(&frame),
            Frame::Priority(_) | Frame::Unknown(_) => self.count_empty(),
            Frame::RstStream(r) => self.on_rst(r.stream_id.value(), r.error_code),
            Frame::Settings(s) => self.on_settings(s),
            Frame::PushPromise(_) => {
                Err(conn_err(Reason::ProtocolError, Violation::PushNotAllowed))
            }
            Frame::Ping(p) => self.on_ping(p),
            Frame::GoAway(g) => self.on_goaway(g),
            Frame::WindowUpdate(w) => self.on_window_update(w.stream_id.value(), w.increment),
        }
    }

    fn on_data(
        &mut self,
        id: u32,
        data: &[u8],
        flow: usize,
        end_stream: bool,
    ) -> Result<(), H2Error> {
        let flow_i = flow as i64;
        if flow_i > self.conn_recv_window {
            return Err(conn_err(Reason::FlowControlError, Violation::FlowControl));
        }
        self.conn_recv_window -= flow_i;
        if data.is_empty() && !end_stream {
            self.count_empty()?;
        }
        let s = match self.streams.get_mut(&id) {
            Some(s) if !s.closed => s,
            _ => {
                if self.is_idle(id) {
                    return Err(conn_err(Reason::ProtocolError, Violation::IdleStream));
                }
                self.release_conn(flow as u64);
                // After our RST_STREAM, frames the peer sent before seeing it are ignored;
                // after its own RST_STREAM or END_STREAM, DATA is a STREAM_CLOSED stream
                // error (RFC 9113 §5.1 "closed").
                let ignored = self.recent.get(id) == Some(Closed::Forgotten)
                    || (self.is_peer_id(id) && matches!(self.goaway_sent, Some(l) if id > l));
                if ignored {
                    return Ok(());
                }
                return self.stream_error(
                    id,
                    H2Error::stream(
                        StreamId::new(id),
                        Reason::StreamClosed,
                        Violation::ClosedStream,
                    ),
                );
            }
        };
        let sid = StreamId::new(id);
        let err = if !s.recv_open {
            Some(H2Error::stream(
                sid,
                Reason::StreamClosed,
                Violation::ClosedStream,
            ))
        } else if !s.recv_head {
            Some(H2Error::stream(
                sid,
                Reason::ProtocolError,
                Violation::UnexpectedFrame,
            ))
        } else if flow_i > 0 && flow_i > s.recv_window {
            // (An empty frame that only carries END_STREAM consumes nothing: accepted even
            // when a smaller initial window left this one negative, §6.9.2.)
            Some(H2Error::stream(
                sid,
                Reason::FlowControlError,
                Violation::FlowControl,
            ))
        } else {
            s.recv_window -= flow_i;
            s.received += data.len() as u64;
            match s.content_length {
                Some(cl) if s.received > cl || (end_stream && s.received != cl) => Some(
                    H2Error::stream(sid, Reason::ProtocolError, Violation::ContentLength),
                ),
                _ => None,
            }
        };
        if let Some(e) = err {
            self.release_conn(flow as u64);
            return self.stream_error(id, e);
        }
        s.unreleased += data.len() as u64;
        let pad = (flow - data.len()) as u64;
        if pad > 0 {
            // Padding is never delivered: credit it back at once.
            s.unreleased += pad;
            self.release_capacity(sid, pad as usize);
        }
        if !data.is_empty() || end_stream {
            let start = self.data_buf.len();
            self.data_buf.extend_from_slice(data);
            self.events
                .push_back(Ev::Data(sid, start, data.len(), end_stream));
        }
        if !data.is_empty() {
            self.empty_frames = 0;
        }
        if end_stream {
            self.end_recv(id);
        }
        Ok(())
    }

    fn classify_headers(&self, id: u32) -> Result<HeadKind, H2Error> {
        match self.streams.get(&id) {
            Some(s) if !s.closed => {
                return Ok(if !s.recv_open {
                    HeadKind::HalfClosed
                } else if s.recv_head {
                    HeadKind::Trailers
                } else {
                    HeadKind::Response
                });
            }
            _ => {}
        }
        let peer = self.is_peer_id(id);
        if peer && matches!(self.goaway_sent, Some(l) if id > l) {
            // Above the last stream of our GOAWAY: never processed, so every block on it
            // (a request, then its trailers) is decoded and dropped (RFC 9113 §6.8).
            return Ok(HeadKind::Ignore);
        }
        if peer && self.role == Role::Server && id > self.max_peer_id {
            if self.active_remote >= self.local_max_concurrent {
                return Ok(HeadKind::Refuse);
            }
            return Ok(HeadKind::NewRequest);
        }
        if self.is_idle(id) || (peer && self.role == Role::Client) {
            return Err(conn_err(Reason::ProtocolError, Violation::InvalidStreamId));
        }
        match self.recent.get(id) {
            Some(Closed::Forgotten) => Ok(HeadKind::Ignore),
            // RFC 9113 §5.1 "closed": after the peer's RST_STREAM a stream error, after
            // END_STREAM both ways a connection error, both STREAM_CLOSED.
            Some(Closed::ResetByPeer) => Ok(HeadKind::HalfClosed),
            Some(Closed::Ended) => Err(conn_err(Reason::StreamClosed, Violation::ClosedStream)),
            None => Err(conn_err(Reason::ProtocolError, Violation::InvalidStreamId)),
        }
    }

    fn on_headers(&mut self, frame: &Frame<'_>) -> Result<(), H2Error> {
        let id = frame.stream_id().value();
        // Classify before the block borrows the assembler. A block is completed either by
        // its HEADERS frame or by a CONTINUATION on the same stream; nothing else can
        // arrive in between, so the stream's state cannot change meanwhile.
        let kind = match frame {
            Frame::Headers(h) if !self.asm.is_open() && h.end_headers => {
                Some(self.classify_headers(id)?)
            }
            Frame::Headers(_) if !self.asm.is_open() => {
                self.classify_headers(id)?;
                None
            }
            Frame::Continuation(c) if c.end_headers && self.asm.is_open() => {
                Some(self.classify_headers(id)?)
            }
            _ => None,
        };
        let (kind, end_stream, out) =
            {
                let (sid, end_stream, block) = match self.asm.push(frame)? {
                    Assembled::Complete(b) => (b.stream_id, b.end_stream, b.block),
                    Assembled::Incomplete | Assembled::NotHeaders => return Ok(()),
                };
                let Some(kind) = kind else {
                    return Err(conn_err(
                        Reason::ProtocolError,
                        Violation::ExpectedContinuation,
                    ));
                };
                let res =
                    match kind {
                        HeadKind::NewRequest => headers::decode_request(&mut self.hdec, sid, block)
                            .map(HeadOut::Request),
                        HeadKind::Response => headers::decode_response(&mut self.hdec, sid, block)
                            .map(HeadOut::Response),
                        HeadKind::Trailers => headers::decode_trailers(&mut self.hdec, sid, block)
                            .map(HeadOut::Trailers),
                        HeadKind::Refuse | HeadKind::Ignore | HeadKind::HalfClosed => {
                            match self.hdec.decode(block, |_| {}) {
                                Err(e) if e.is_compression_error() => Err(conn_err(
                                    Reason::CompressionError,
                                    Violation::Compression(e),
                                )),
                                _ => Ok(HeadOut::Dropped),
                            }
                        }
                    };
                (kind, end_stream, res)
            };
        let sid = StreamId::new(id);
        let out = match out {
            Ok(o) => o,
            Err(e) if e.is_connection_error() => return Err(e),
            Err(e) => {
                if kind == HeadKind::NewRequest {
                    self.max_peer_id = id;
                    if e.violation() == Violation::HeaderListTooLarge {
                        log::debug!(
                            "h2: stream {id}: HeaderListTooLarge (over {} bytes decoded); \
                             the request is to be answered 431",
                            self.cfg.max_header_list_size
                        );
                        self.last_accepted = id;
                        self.open_remote(id);
                        self.push_ev(Ev::TooLarge(sid, end_stream));
                        if end_stream {
                            self.end_recv(id);
                        }
                        return Ok(());
                    }
                }
                return self.stream_error(id, e);
            }
        };
        self.empty_frames = 0;
        match (kind, out) {
            (HeadKind::NewRequest, HeadOut::Request(req)) => {
                self.max_peer_id = id;
                self.last_accepted = id;
                let cl = match parse_content_length(req.headers()) {
                    Ok(Some(n)) if end_stream && n != 0 => Err(()),
                    cl => cl,
                };
                let Ok(cl) = cl else {
                    // Malformed (RFC 9113 §8.1.1): reset before the stream is opened, so
                    // the application hears of it neither as a request nor as a reset.
                    return self.stream_error(
                        id,
                        H2Error::stream(sid, Reason::ProtocolError, Violation::ContentLength),
                    );
                };
                self.open_remote(id);
                if let Some(s) = self.streams.get_mut(&id) {
                    s.is_head = req.method() == Method::HEAD;
                    s.content_length = cl;
                }
                self.push_ev(Ev::Request(sid, req, end_stream));
                if end_stream {
                    self.end_recv(id);
                }
            }
            (HeadKind::Response, HeadOut::Response(res)) => {
                let status = res.status();
                if status.is_informational() {
                    if end_stream || status == StatusCode::SWITCHING_PROTOCOLS {
                        return self.stream_error(
                            id,
                            H2Error::stream(sid, Reason::ProtocolError, Violation::UnexpectedFrame),
                        );
                    }
                    self.push_ev(Ev::Response(sid, res, false));
                    return Ok(());
                }
                let cl = parse_content_length(res.headers());
                let s = self.streams.get_mut(&id).expect("classified");
                let no_body = s.is_head
                    || status == StatusCode::NO_CONTENT
                    || status == StatusCode::NOT_MODIFIED;
                let cl = match cl {
                    Err(()) => {
                        return self.stream_error(
                            id,
                            H2Error::stream(sid, Reason::ProtocolError, Violation::ContentLength),
                        )
                    }
                    Ok(_) if no_body => Some(0),
                    Ok(cl) => cl,
                };
                if end_stream && cl.is_some_and(|n| n != 0) {
                    return self.stream_error(
                        id,
                        H2Error::stream(sid, Reason::ProtocolError, Violation::ContentLength),
                    );
                }
                s.content_length = cl;
                s.recv_head = true;
                self.push_ev(Ev::Response(sid, res, end_stream));
                if end_stream {
                    self.end_recv(id);
                }
            }
            (HeadKind::Trailers, HeadOut::Trailers(t)) => {
                let s = self.streams.get_mut(&id).expect("classified");
                if !end_stream {
                    return self.stream_error(
                        id,
                        H2Error::stream(sid, Reason::ProtocolError, Violation::UnexpectedFrame),
                    );
                }
                if s.content_length.is_some_and(|cl| cl != s.received) {
                    return self.stream_error(
                        id,
                        H2Error::stream(sid, Reason::ProtocolError, Violation::ContentLength),
                    );
                }
                self.push_ev(Ev::Trailers(sid, t));
                self.end_recv(id);
            }
            (HeadKind::Refuse, _) => {
                self.max_peer_id = id;
                log::debug!(
                    "h2: refusing stream {id}: {} streams open",
                    self.active_remote
                );
                let e = H2Error::stream(sid, Reason::RefusedStream, Violation::TooManyStreams);
                return self.stream_error(id, e);
            }
            (HeadKind::Ignore, _) => {
                if self.is_peer_id(id) && id > self.max_peer_id {
                    self.max_peer_id = id;
                }
            }
            (HeadKind::HalfClosed, _) => {
                return self.stream_error(
                    id,
                    H2Error::stream(sid, Reason::StreamClosed, Violation::ClosedStream),
                );
            }
            _ => unreachable!("decode result matches its kind"),
        }
        Ok(())
    }

    fn open_remote(&mut self, id: u32) {
        let mut s = Stream::new(false, self.peer_init_window, self.local_init_window);
        s.recv_head = true;
        self.streams.insert(id, s);
        self.active_remote += 1;
    }

    fn on_rst(&mut self, id: u32, reason: Reason) -> Result<(), H2Error> {
        match self.streams.get(&id) {
            Some(s) if !s.closed => {
                log::debug!("h2: stream {id} reset by peer: {reason}");
                let remote = !s.local;
                self.remove_stream(id);
                // The peer knows the stream is gone: what it sends on it from now on is a
                // STREAM_CLOSED stream error (RFC 9113 §5.1 "closed").
                self.recent.push(id, Closed::ResetByPeer);
                self.push_ev(Ev::Reset(StreamId::new(id), reason, true));
                if remote && self.role == Role::Server {
                    self.spend_reset()?;
                }
                Ok(())
            }
            _ if self.is_idle(id) => Err(conn_err(Reason::ProtocolError, Violation::IdleStream)),
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, s: Settings<'_>) -> Result<(), H2Error> {
        if s.is_ack() {
            if let Some((_, values)) = self.local_pending.pop_front() {
                self.settings_acked(values);
                self.push_ev(Ev::SettingsAcked);
            }
            return Ok(());
        }
        if s.payload().len() / 6 > self.cfg.max_settings_entries {
            return Err(conn_err(Reason::EnhanceYourCalm, Violation::Flood));
        }
        let widened = self.apply_peer_settings(&s)?;
        Settings::ack().encode(&mut self.out);
        self.push_ev(Ev::SettingsReceived);
        if widened {
            self.wake_blocked();
        }
        self.count_control()
    }

    /// Applies the peer's settings; true when its stream windows grew.
    fn apply_peer_settings(&mut self, s: &Settings<'_>) -> Result<bool, H2Error> {
        if !self.got_settings {
            self.got_settings = true;
            self.peer_max_concurrent = u32::MAX;
        }
        let mut widened = false;
        for (id, v) in s.iter() {
            match id {
                SettingId::HeaderTableSize => self.henc.set_max_table_size(v as usize),
                SettingId::EnablePush if self.role == Role::Client && v == 1 => {
                    return Err(conn_err(Reason::ProtocolError, Violation::PushNotAllowed));
                }
                SettingId::MaxConcurrentStreams => self.peer_max_concurrent = v,
                SettingId::InitialWindowSize => {
                    let delta = i64::from(v) - i64::from(self.peer_init_window);
                    for st in self.streams.values_mut() {
                        if st.closed {
                            continue;
                        }
                        st.send_window += delta;
                        if st.send_window > i64::from(MAX_WINDOW_SIZE) {
                            return Err(conn_err(Reason::FlowControlError, Violation::FlowControl));
                        }
                    }
                    widened |= delta > 0;
                    self.peer_init_window = v;
                }
                SettingId::MaxFrameSize => self.peer_max_frame = v,
                SettingId::MaxHeaderListSize => self.peer_max_header_list = v,
                _ => {}
            }
        }
        Ok(widened)
    }

    fn on_ping(&mut self, p: Ping) -> Result<(), H2Error> {
        if p.ack {
            if p.payload == GRACEFUL_PING && self.graceful_since.is_some() {
                self.finish_graceful();
            } else {
                self.push_ev(Ev::PingAck(p.payload));
            }
            return Ok(());
        }
        p.pong().encode(&mut self.out);
        self.count_control()
    }

    fn on_goaway(&mut self, g: GoAway<'_>) -> Result<(), H2Error> {
        let last = g.last_stream_id.value();
        log::debug!(
            "h2: GOAWAY received: {} (last stream {last}, {:?} role)",
            g.error_code,
            self.role
        );
        if let Some(prev) = self.goaway_recv {
            if last > prev {
                return Err(conn_err(Reason::ProtocolError, Violation::InvalidStreamId));
            }
        }
        self.goaway_recv = Some(last);
        let mut refused: Vec<u32> = self
            .streams
            .iter()
            .filter(|(&id, s)| s.local && !s.closed && id > last)
            .map(|(&id, _)| id)
            .collect();
        refused.sort_unstable();
        for id in refused {
            self.remove_stream(id);
            // Never processed by the peer, which sends nothing more on it; anything in
            // flight is ignored.
            self.recent.push(id, Closed::Forgotten);
            self.push_ev(Ev::Reset(StreamId::new(id), Reason::RefusedStream, true));
        }
        let start = self.data_buf.len();
        let n = g.debug_data.len().min(1024);
        self.data_buf.extend_from_slice(&g.debug_data[..n]);
        self.push_ev(Ev::GoAway(g.last_stream_id, g.error_code, start, n));
        Ok(())
    }

    fn on_window_update(&mut self, id: u32, inc: u32) -> Result<(), H2Error> {
        if id == 0 {
            self.conn_send_window += i64::from(inc);
            if self.conn_send_window > i64::from(MAX_WINDOW_SIZE) {
                return Err(conn_err(Reason::FlowControlError, Violation::FlowControl));
            }
            if !self.blocked.is_empty() {
                self.wake_blocked();
            }
            return Ok(());
        }
        let room = self.output_room();
        let idle = self.is_idle(id);
        match self.streams.get_mut(&id) {
            Some(s) if !s.closed => {
                s.send_window += i64::from(inc);
                if s.send_window > i64::from(MAX_WINDOW_SIZE) {
                    let e = H2Error::stream(
                        StreamId::new(id),
                        Reason::FlowControlError,
                        Violation::FlowControl,
                    );
                    return self.stream_error(id, e);
                }
                if s.blocked && s.send_window > 0 && self.conn_send_window > 0 && room > 0 {
                    s.blocked = false;
                    if let Some(i) = self.blocked.iter().position(|&b| b == id) {
                        self.blocked.swap_remove(i);
                    }
                    self.events.push_back(Ev::Capacity(StreamId::new(id)));
                }
                Ok(())
            }
            _ if idle => Err(conn_err(Reason::ProtocolError, Violation::IdleStream)),
            _ => Ok(()),
        }
    }
}

/// Released bytes worth a WINDOW_UPDATE: half the stream's full window.
fn update_threshold(init_window: u32, s: &Stream) -> u64 {
    ((u64::from(init_window) + u64::from(s.extra_window)) / 2).max(1)
}

fn clamp_setting(id: SettingId, v: u32) -> u32 {
    match id {
        SettingId::InitialWindowSize => v.min(MAX_WINDOW_SIZE),
        SettingId::MaxFrameSize => v.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
        SettingId::EnablePush => v.min(1),
        _ => v,
    }
}

#[cfg(fuzzing)]
impl Connection {
    /// The windows, stream table and buffer sizes, for `crate::fuzz_api::h2::snapshot`.
    pub(crate) fn fuzz_snapshot(&self) -> crate::fuzz_api::h2::Snapshot {
        use crate::fuzz_api::h2::{Snapshot, StreamSnapshot};
        let mut streams: Vec<StreamSnapshot> = self
            .streams
            .iter()
            .map(|(&id, s)| StreamSnapshot {
                id,
                send_window: s.send_window,
                recv_window: s.recv_window,
                unreleased: s.unreleased,
                recv_open: s.recv_open,
                send_open: s.send_open,
                closed: s.closed,
                local: s.local,
            })
            .collect();
        streams.sort_unstable_by_key(|s| s.id);
        Snapshot {
            conn_send_window: self.conn_send_window,
            conn_recv_window: self.conn_recv_window,
            streams,
            output_len: self.output_len(),
            events: self.events.len(),
            event_bytes: self.data_buf.len(),
            active: (self.active_local, self.active_remote),
            blocked: self.blocked.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client and a server, the client's first flight (preface, SETTINGS, a POST
    /// without END_STREAM) received but our SETTINGS not yet acknowledged.
    fn unacked_stream(init: u32) -> (Connection, Connection, StreamId) {
        let now = Instant::now();
        let mut client = Connection::client(Config::default(), now);
        let cfg = Config {
            initial_stream_window: init,
            ..Config::default()
        };
        let mut server = Connection::server(cfg, now);
        let req = http::Request::post("http://x/up").body(()).unwrap();
        let id = client.open_stream(&req, false).unwrap();
        server.recv(&client.take_output()).unwrap();
        (client, server, id)
    }

    /// Our SETTINGS (16 KiB initial window) reach the client, and its ACK comes back.
    fn ack(client: &mut Connection, server: &mut Connection) {
        client.recv(&server.take_output()).unwrap();
        server.recv(&client.take_output()).unwrap();
        client.recv(&server.take_output()).unwrap();
    }

    #[test]
    fn a_window_asked_for_before_the_ack_of_a_smaller_initial_window_is_kept() {
        // 32 KiB asked for while the window is still the default 65 535: nothing to
        // send then, but once the client applies our 16 KiB it is given back up to it.
        let (mut client, mut server, id) = unacked_stream(16 * 1024);
        assert_eq!(server.recv_capacity(id), 65_535);
        server.grow_recv_window(id, 32 * 1024);
        ack(&mut client, &mut server);
        assert_eq!(client.send_capacity(id), 32 * 1024);
        assert_eq!(server.recv_capacity(id), 32 * 1024);
        // Never more than the default window it had: 1 MiB asked for is 1 MiB, and a
        // window asked for below the initial one changes nothing.
        let (mut client, mut server, id) = unacked_stream(16 * 1024);
        server.grow_recv_window(id, 1 << 20);
        ack(&mut client, &mut server);
        assert_eq!(client.send_capacity(id), 1 << 20);
        let (mut client, mut server, id) = unacked_stream(16 * 1024);
        server.grow_recv_window(id, 8 * 1024);
        ack(&mut client, &mut server);
        assert_eq!(client.send_capacity(id), 16 * 1024);
    }

    #[test]
    fn recv_capacity_is_the_smaller_window_and_zero_for_a_closed_side() {
        let (mut client, mut server, id) = unacked_stream(1 << 20);
        ack(&mut client, &mut server);
        // 1 MiB stream window, but the connection window is what limits.
        let conn = server.conn_recv_window as usize;
        assert_eq!(server.recv_capacity(id), conn.min(1 << 20));
        client.send_data(id, &[7; 100], true).unwrap();
        server.recv(&client.take_output()).unwrap();
        assert_eq!(server.recv_capacity(id), 0);
        assert_eq!(server.recv_capacity(StreamId::new(99)), 0);
    }
}
