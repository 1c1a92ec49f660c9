//! The harness shared by `h2_conn_server` and `h2_conn_client`: spindle's
//! `h2::proto::Connection` in the role under test ("A") against a peer `Connection` of
//! the other role ("B"), both driven by the fuzz input.
//!
//! The input is a configuration (limits of both ends, from a table of valid values) and
//! a sequence of steps: deliver bytes between the two (all, or a partial frame), a local
//! operation on either side (open a stream or answer one, send DATA of a known pattern,
//! trailers, resets, window releases and growth, PING, SETTINGS changes, GOAWAY), the
//! clock, event polling on or off, and, unless the input asked for a *clean* run, frames
//! built from the input (well-formed most of the time: chosen type, flags, stream and a
//! payload of that type's shape, HPACK blocks that leave the dynamic table alone) or raw
//! bytes injected into A's input.
//!
//! Checked after every step, on both ends (RFC 9113 references in the messages):
//! - windows never above 2^31-1 (§6.9.1); a send never exceeds the stream window, the
//!   connection window or the capacity reported; END_STREAM only with the last byte;
//! - stream states only move forward (idle → open → half-closed → closed, §5.1), so no
//!   stream id is reused; peer streams arrive with increasing ids of the right parity
//!   (§5.1.1); responses only on streams we opened;
//! - no event for a stream after its incoming side ended or it was reset (no DATA on a
//!   closed or reset stream), no DATA before a final response head;
//! - buffered output within `max_output_buffer` plus what local calls queued plus a
//!   constant, DATA held for unpolled events within `max_output_buffer` plus a frame, body
//!   bytes delivered and not released within the connection window we granted, the
//!   active-stream counts equal to the open streams in the table.
//!
//! In a clean run (only the two spindle ends talking) also: neither end reports a
//! connection error (other than the flood and SETTINGS-timeout limits, which a legitimate
//! peer can reach), no stream is reset by an end because of what the other sent (other
//! than REFUSED_STREAM), and every DATA byte delivered is the byte sent at that offset of
//! that stream, with the whole body delivered by END_STREAM.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use spindle::fuzz_api::h2::snapshot;
use spindle::h2::frame::{SettingId, StreamId};
use spindle::h2::hpack::{Encoder, IndexPolicy};
use spindle::h2::proto::{Config, Connection, Event, Role, StreamState};
use spindle::h2::{H2Error, Reason, Violation};
use spindle::http;

const MAX_WINDOW: i64 = 0x7fff_ffff;
/// Output one frame's processing may add past the output bound (ACKs, window updates
/// for every stream after a SETTINGS ACK, a reset, a GOAWAY): independent of the input.
const OUTPUT_SLACK: usize = 64 * 1024;
/// Body bytes all local sends of one run may offer (keeps a run's memory bounded).
const SEND_BUDGET: u64 = 8 << 20;

pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }
    fn done(&self) -> bool {
        self.data.is_empty()
    }
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

/// The body byte at `offset` of stream `id`: what clean runs check on delivery.
fn pattern(id: u32, offset: u64) -> u8 {
    (u64::from(id)
        .wrapping_mul(31)
        .wrapping_add(offset.wrapping_mul(7))
        % 251) as u8
}

fn config(input: &mut Input<'_>, clean: bool) -> Config {
    let d = Config::default();
    let mut c = Config {
        initial_stream_window: input.pick(&[65_535, 1 << 20, 16_384, 1, 0, 0x7fff_ffff]),
        initial_connection_window: input.pick(&[4 << 20, 65_535, 1 << 20, 0x7fff_ffff, 0]),
        max_concurrent_streams: input.pick(&[128, 1, 4, 100]),
        max_frame_size: input.pick(&[16_384, 16_384, 32_768]),
        max_header_list_size: input.pick(&[64 * 1024, 16 * 1024, 1024]),
        header_table_size: input.pick(&[4096, 4096, 0, 256]),
        max_header_block_size: input.pick(&[d.max_header_block_size, 1024]),
        max_continuations: input.pick(&[d.max_continuations, 2]),
        settings_timeout: Duration::from_secs(10),
        max_queued_control_frames: input.pick(&[1000, 1000, 8]),
        max_settings_entries: input.pick(&[64, 64, 2]),
        reset_burst: input.pick(&[1000, 1000, 4]),
        reset_rate: 33,
        max_empty_frames: input.pick(&[1000, 1000, 8]),
        max_output_buffer: input.pick(&[1 << 20, 1 << 20, 4096, 64 * 1024]),
    };
    if clean {
        // Blocks as large as the list size we advertise, or as the default bound before
        // the peer has seen our SETTINGS, are legitimate (the server's configuration,
        // server::h2conn::protocol_config, keeps to this); the small bounds are for the
        // runs with injected frames.
        c.max_header_block_size = d.max_header_block_size.max(c.max_header_list_size as usize);
        c.max_continuations = d.max_continuations;
    }
    c
}

/// What one end has seen and done, for the checks.
#[derive(Default)]
struct Track {
    /// Streams this end knows: opened by it, or announced by the peer.
    known: Vec<u32>,
    known_set: HashSet<u32>,
    /// Highest peer-opened stream announced in an event (server role).
    last_peer: u32,
    /// Streams whose incoming side ended or that were reset (no events may follow).
    recv_ended: HashSet<u32>,
    /// Client: streams whose final response head arrived.
    final_head: HashSet<u32>,
    /// Delivered and not released body bytes, per stream.
    unreleased: HashMap<u32, usize>,
    /// Body bytes accepted by `send_data`, per stream, and the streams whose END_STREAM
    /// went out.
    sent: HashMap<u32, u64>,
    sent_fin: HashSet<u32>,
    /// Body bytes delivered, per stream.
    got: HashMap<u32, u64>,
    /// A delivered byte differed from the sender's pattern (checked in clean runs).
    got_mismatch: bool,
    /// Streams whose incoming side ended normally (END_STREAM on DATA, or trailers).
    ended_with_data: HashSet<u32>,
    /// Streams reset, by either end.
    reset: HashSet<u32>,
    /// Server: requests over our header-list limit, whose method is unknown (a HEAD
    /// answer must not carry content): clean runs answer them without a body.
    too_large: HashSet<u32>,
    /// Streams this end reset because of what the peer sent (not REFUSED_STREAM).
    reset_by_us: Vec<(u32, Reason)>,
    /// The last state seen, per stream.
    states: HashMap<u32, StreamState>,
    /// Output queued by local calls since the output was last empty.
    local_added: usize,
    error: Option<H2Error>,
}

impl Track {
    fn learn(&mut self, id: u32) {
        if self.known_set.insert(id) {
            self.known.push(id);
        }
    }
}

struct Side {
    conn: Connection,
    cfg: Config,
    role: Role,
    /// Bytes received and not yet consumed by `recv`.
    inbox: Vec<u8>,
    poll: bool,
    release: bool,
    t: Track,
}

/// An event, owned.
enum Ev {
    Request(u32, bool),
    TooLarge(u32, bool),
    Response(u32, u16, bool),
    Data(u32, Vec<u8>, bool),
    Trailers(u32),
    Reset(u32, Reason, bool),
    Error(H2Error),
    Other,
}

/// With `H2FUZZ_TRACE` set, what happens is printed (to read a crashing input).
fn trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("H2FUZZ_TRACE").is_some())
}

fn own(ev: Event<'_>) -> Ev {
    if trace() {
        eprintln!("    event {ev:?}");
    }
    match ev {
        Event::Request { id, end_stream, .. } => Ev::Request(id.value(), end_stream),
        Event::HeadersTooLarge { id, end_stream } => Ev::TooLarge(id.value(), end_stream),
        Event::Response {
            id,
            head,
            end_stream,
        } => Ev::Response(id.value(), head.status().as_u16(), end_stream),
        Event::Data {
            id,
            data,
            end_stream,
        } => Ev::Data(id.value(), data.to_vec(), end_stream),
        Event::Trailers { id, .. } => Ev::Trailers(id.value()),
        Event::Reset { id, reason, remote } => Ev::Reset(id.value(), reason, remote),
        Event::ConnectionError { error } => Ev::Error(error),
        _ => Ev::Other,
    }
}

/// A connection error a legitimate peer can cause: the flood limits and the SETTINGS ACK
/// timeout (the harness may hold the ACK back while the clock runs).
fn allowed_in_clean_run(e: &H2Error) -> bool {
    matches!(e.violation(), Violation::Flood | Violation::SettingsTimeout)
}

pub struct Pair {
    a: Side,
    b: Side,
    clean: bool,
    now: Instant,
    budget: u64,
    raw_enc: Encoder,
}

impl Pair {
    /// Reads the configuration from `input` and creates both ends; `role` is A's.
    pub fn new(role: Role, input: &mut Input<'_>) -> Pair {
        let flags = input.byte();
        let clean = flags & 1 == 1;
        let now = Instant::now();
        let cfg_a = config(input, clean);
        let cfg_b = if flags & 2 == 0 {
            Config::default()
        } else {
            config(input, clean)
        };
        let other = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let mk = |role: Role, cfg: Config| Side {
            conn: Connection::new(role, cfg.clone(), now),
            cfg,
            role,
            inbox: Vec::new(),
            poll: true,
            release: true,
            t: Track::default(),
        };
        let mut a = mk(role, cfg_a);
        let mut b = mk(other, cfg_b);
        a.t.local_added = a.conn.output_len();
        b.t.local_added = b.conn.output_len();
        let mut raw_enc = Encoder::new();
        // Raw header blocks must not touch A's dynamic table, which B's encoder mirrors.
        raw_enc.set_index_policy(IndexPolicy::None);
        let mut p = Pair {
            a,
            b,
            clean,
            now,
            budget: SEND_BUDGET,
            raw_enc,
        };
        if !clean && flags & 4 != 0 {
            // A starts from injected bytes instead of B's preface.
            drop(p.b.conn.take_output());
            p.b.t.local_added = 0;
        }
        p.check();
        p
    }

    /// Runs every step of the input, then (clean runs) lets both ends settle.
    pub fn run(&mut self, input: &mut Input<'_>) {
        let mut steps = 0;
        while !input.done() && steps < 4096 {
            steps += 1;
            self.step(input);
            self.check();
        }
        if self.clean {
            for _ in 0..64 {
                let moved = self.a.conn.output_len() + self.b.conn.output_len();
                self.a.poll = true;
                self.b.poll = true;
                self.deliver(true, usize::MAX);
                self.deliver(false, usize::MAX);
                self.check();
                if moved == 0 && self.a.inbox.is_empty() && self.b.inbox.is_empty() {
                    break;
                }
            }
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        if trace() {
            eprintln!("step {op:#04x} ({})", op % 16);
        }
        match op % 16 {
            0..=2 => self.deliver(false, usize::MAX),
            3..=4 => self.deliver(true, usize::MAX),
            5 => {
                let n = usize::from(input.byte()) * 7 + 1;
                let to_a = op & 0x10 != 0;
                self.deliver(!to_a, n)
            }
            6..=8 => local(&mut self.a, input, &mut self.budget, self.clean),
            9..=10 => local(&mut self.b, input, &mut self.budget, self.clean),
            11 => {
                self.now += Duration::from_millis(u64::from(input.byte()) * 40);
                for s in [&mut self.a, &mut self.b] {
                    if let Err(e) = s.conn.tick(self.now) {
                        s.t.error.get_or_insert(e);
                    }
                    drain_events(s);
                }
            }
            12 => {
                let s = if op & 0x10 != 0 {
                    &mut self.b
                } else {
                    &mut self.a
                };
                s.poll = !s.poll;
                if op & 0x20 != 0 {
                    s.release = !s.release;
                }
                if s.poll {
                    drain_events(s);
                    feed(s);
                }
            }
            13..=14 if !self.clean => {
                let frame = raw_frame(input, &self.a.t, &mut self.raw_enc);
                self.a.inbox.extend_from_slice(&frame);
                feed(&mut self.a);
            }
            15 if !self.clean => {
                let n = usize::from(input.byte());
                let bytes = input.bytes(n).to_vec();
                self.a.inbox.extend_from_slice(&bytes);
                feed(&mut self.a);
            }
            _ => self.deliver(false, usize::MAX),
        }
    }

    /// Moves up to `max` bytes of output from A to B (`from_a`) or from B to A.
    fn deliver(&mut self, from_a: bool, max: usize) {
        let (from, to) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let out = from.conn.output();
        let n = out.len().min(max);
        if trace() {
            eprintln!("  deliver {n} bytes {:?} -> {:?}", from.role, to.role);
            let dec = spindle::h2::frame::FrameDecoder::new();
            let mut rest = &out[..n];
            if rest.starts_with(spindle::h2::preface::CLIENT_MAGIC) {
                rest = &rest[24..];
            }
            while let Ok(spindle::h2::frame::Decoded::Frame { frame, consumed }) = dec.decode(rest)
            {
                let mut f = format!("{frame:?}");
                f.truncate(160);
                eprintln!("      frame {f}");
                rest = &rest[consumed..];
            }
        }
        to.inbox.extend_from_slice(&out[..n]);
        from.conn.advance_output(n);
        if from.conn.output_len() == 0 {
            from.t.local_added = 0;
        }
        // Draining may have woken blocked senders.
        drain_events(from);
        feed(to);
        if trace() {
            for side in [&*from, &*to] {
                let snap = snapshot(&side.conn);
                eprintln!(
                    "    {:?}: conn send {} recv {}, streams {:?}",
                    side.role, snap.conn_send_window, snap.conn_recv_window, snap.streams
                );
            }
        }
    }

    /// The invariants, on both ends; then the stream states become the new baseline.
    fn check(&mut self) {
        for (s, peer) in [(&self.a, &self.b), (&self.b, &self.a)] {
            check_side(s, peer, self.clean);
        }
        restate(&mut self.a);
        restate(&mut self.b);
    }
}

/// Feeds a side's inbox to its connection until it consumes nothing more.
fn feed(s: &mut Side) {
    loop {
        if s.inbox.is_empty() {
            return;
        }
        match s.conn.recv(&s.inbox) {
            Ok(n) => {
                s.inbox.drain(..n.min(s.inbox.len()));
                drain_events(s);
                if n == 0 {
                    return;
                }
            }
            Err(e) => {
                s.t.error.get_or_insert(e);
                s.inbox.clear();
                drain_events(s);
                return;
            }
        }
    }
}

/// Polls a side's events (when polling is on) and checks each against the stream rules.
fn drain_events(s: &mut Side) {
    if !s.poll {
        return;
    }
    let mut evs = Vec::new();
    while let Some(ev) = s.conn.poll_event() {
        evs.push(own(ev));
    }
    for ev in evs {
        on_event(s, ev);
    }
    // Streams first heard of here start being followed from their current state.
    for i in 0..s.t.known.len() {
        let id = s.t.known[i];
        touch(s, id);
    }
    if s.release {
        let before = s.conn.output_len();
        let ids: Vec<(u32, usize)> = s.t.unreleased.drain().collect();
        for (id, n) in ids {
            s.conn.release_capacity(StreamId::new(id), n);
        }
        s.t.local_added += s.conn.output_len().saturating_sub(before);
    }
}

fn on_event(s: &mut Side, ev: Ev) {
    let role = s.role;
    let t = &mut s.t;
    if let Ev::TooLarge(id, _) = ev {
        t.too_large.insert(id);
    }
    match ev {
        Ev::Request(id, end) | Ev::TooLarge(id, end) => {
            assert_eq!(role, Role::Server, "a request event on a client");
            assert_eq!(id & 1, 1, "§5.1.1: client streams are odd ({id})");
            assert!(
                id > t.last_peer,
                "§5.1.1: stream {id} after {}: reused or lower",
                t.last_peer
            );
            t.last_peer = id;
            t.learn(id);
            if end {
                t.recv_ended.insert(id);
            }
        }
        Ev::Response(id, status, end) => {
            assert_eq!(role, Role::Client, "a response event on a server");
            assert!(
                t.known_set.contains(&id),
                "a response on stream {id} we did not open"
            );
            assert!(
                !t.recv_ended.contains(&id),
                "a response on ended stream {id}"
            );
            assert!(
                !t.final_head.contains(&id),
                "a second final response on stream {id}"
            );
            if (100..200).contains(&status) {
                assert!(!end, "§8.1: END_STREAM on an informational head");
            } else {
                t.final_head.insert(id);
            }
            if end {
                t.recv_ended.insert(id);
            }
        }
        Ev::Data(id, data, end) => {
            assert!(t.known_set.contains(&id), "DATA on unknown stream {id}");
            assert!(
                !t.recv_ended.contains(&id),
                "§5.1: DATA on closed or reset stream {id}"
            );
            if role == Role::Client {
                assert!(
                    t.final_head.contains(&id),
                    "§8.1: DATA before the response head ({id})"
                );
            }
            let got = t.got.entry(id).or_insert(0);
            // Clean runs check the bytes against the sender's pattern in `check_side`.
            for (i, &b) in data.iter().enumerate() {
                if b != pattern(id, *got + i as u64) {
                    t.got_mismatch = true;
                    break;
                }
            }
            *got += data.len() as u64;
            *t.unreleased.entry(id).or_insert(0) += data.len();
            if end {
                t.recv_ended.insert(id);
                t.ended_with_data.insert(id);
            }
        }
        Ev::Trailers(id) => {
            assert!(t.known_set.contains(&id), "trailers on unknown stream {id}");
            assert!(
                !t.recv_ended.contains(&id),
                "trailers on closed stream {id}"
            );
            t.recv_ended.insert(id);
            t.ended_with_data.insert(id);
        }
        Ev::Reset(id, reason, remote) => {
            assert!(t.known_set.contains(&id), "a reset of unknown stream {id}");
            // The credit of what was not released is returned by the reset itself.
            t.unreleased.remove(&id);
            t.recv_ended.insert(id);
            t.reset.insert(id);
            if !remote && reason != Reason::RefusedStream {
                t.reset_by_us.push((id, reason));
            }
        }
        Ev::Error(e) => {
            t.error.get_or_insert(e);
        }
        Ev::Other => {}
    }
}

fn rank(s: StreamState) -> u8 {
    match s {
        StreamState::Idle => 0,
        StreamState::Open => 1,
        StreamState::HalfClosedLocal | StreamState::HalfClosedRemote => 2,
        StreamState::Closed => 3,
    }
}

fn check_side(s: &Side, peer: &Side, clean: bool) {
    let snap = snapshot(&s.conn);
    let dead = s.t.error.is_some();
    if !dead {
        // §6.9.1: no window above 2^31-1.
        assert!(
            snap.conn_send_window <= MAX_WINDOW,
            "conn send window {}",
            snap.conn_send_window
        );
        assert!(
            snap.conn_recv_window <= MAX_WINDOW,
            "conn recv window {}",
            snap.conn_recv_window
        );
        for st in &snap.streams {
            assert!(
                st.send_window <= MAX_WINDOW,
                "stream {} send window {}",
                st.id,
                st.send_window
            );
            assert!(
                st.recv_window <= MAX_WINDOW,
                "stream {} recv window {}",
                st.id,
                st.recv_window
            );
            assert!(st.send_window >= -2 * MAX_WINDOW && st.recv_window >= -2 * MAX_WINDOW);
        }
    }
    // The counts of open streams agree with the table.
    let local = snap
        .streams
        .iter()
        .filter(|st| !st.closed && st.local)
        .count() as u32;
    let remote = snap
        .streams
        .iter()
        .filter(|st| !st.closed && !st.local)
        .count() as u32;
    assert_eq!(snap.active, (local, remote), "active counts vs the table");
    assert!(
        snap.streams
            .iter()
            .all(|st| !st.closed || st.unreleased > 0),
        "a closed stream kept for nothing"
    );
    // Buffers stay bounded.
    assert!(
        snap.output_len <= s.cfg.max_output_buffer + OUTPUT_SLACK + s.t.local_added,
        "output {} over {} + {} + {} queued locally",
        snap.output_len,
        s.cfg.max_output_buffer,
        OUTPUT_SLACK,
        s.t.local_added
    );
    let frame = s.cfg.max_frame_size.max(16_384) as usize;
    assert!(
        snap.event_bytes <= s.cfg.max_output_buffer + frame + 1024,
        "{} bytes held for events",
        snap.event_bytes
    );
    let granted = (s.cfg.initial_connection_window.min(0x7fff_ffff) as u64).max(65_535);
    let held: u64 = snap.streams.iter().map(|st| st.unreleased).sum();
    assert!(
        held <= granted,
        "{held} body bytes held, the connection window is {granted}"
    );
    // §5.1: states only move forward; an id is never reused.
    for (&id, &before) in &s.t.states {
        let now = s.conn.stream_state(StreamId::new(id));
        let (rb, rn) = (rank(before), rank(now));
        assert!(rn >= rb, "stream {id} went from {before:?} back to {now:?}");
        if rb == 2 && rn == 2 {
            assert_eq!(before, now, "stream {id}: half-closed on the other side");
        }
    }
    if clean {
        if let Some(e) = &s.t.error {
            assert!(
                allowed_in_clean_run(e),
                "{:?}: connection error in a clean run: {e}",
                s.role
            );
        }
        if peer.t.error.is_none() && s.t.error.is_none() {
            assert!(
                s.t.reset_by_us.is_empty(),
                "{:?} reset streams for what its spindle peer sent: {:?}",
                s.role,
                s.t.reset_by_us
            );
        }
        assert!(
            !s.t.got_mismatch,
            "{:?}: a body byte differs from what was sent",
            s.role
        );
        for (&id, &got) in &s.t.got {
            let sent = peer.t.sent.get(&id).copied().unwrap_or(0);
            assert!(
                got <= sent,
                "stream {id}: {got} bytes delivered of {sent} sent"
            );
            if s.t.ended_with_data.contains(&id) && !s.t.reset.contains(&id) {
                assert_eq!(got, sent, "stream {id} ended with {got} of {sent} bytes");
            }
        }
    }
}

/// Records the state of `id` the first time it is touched.
fn touch(s: &mut Side, id: u32) {
    let st = s.conn.stream_state(StreamId::new(id));
    s.t.states.entry(id).or_insert(st);
}

/// Updates the recorded states (after the checks compared them).
fn restate(s: &mut Side) {
    let ids: Vec<u32> = s.t.states.keys().copied().collect();
    for id in ids {
        let st = s.conn.stream_state(StreamId::new(id));
        s.t.states.insert(id, st);
    }
}

fn stream_choice(s: &Side, input: &mut Input<'_>) -> u32 {
    let b = input.byte();
    if b < 0xf0 && !s.t.known.is_empty() {
        s.t.known[usize::from(b) % s.t.known.len()]
    } else {
        u32::from(b & 0x0f)
    }
}

const NAMES: &[&str] = &[
    "x-a",
    "content-type",
    "cache-control",
    "x-request-id",
    "accept",
    "te",
];
const VALUES: &[&str] = &["1", "text/plain", "no-cache", "trailers", "", "a b"];

fn fields(input: &mut Input<'_>) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for _ in 0..(input.byte() % 4) {
        let name = input.pick(NAMES);
        let value = input.pick(VALUES);
        if name == "te" && value != "trailers" {
            continue;
        }
        h.append(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
    }
    // A big field now and then, for CONTINUATION and the header-list limits.
    if input.byte() & 0x1f == 0 {
        // Within the decoder's 16 KiB bound on one string.
        let n = usize::from(input.byte()) * 64;
        h.insert(
            "x-big",
            http::HeaderValue::from_str(&"b".repeat(n)).unwrap(),
        );
    }
    h
}

/// One local operation on side `s`.
fn local(s: &mut Side, input: &mut Input<'_>, budget: &mut u64, clean: bool) {
    let op = input.byte();
    if trace() {
        eprintln!("  local {:?} op {}", s.role, op % 12);
    }
    let before = s.conn.output_len();
    match op % 12 {
        0 | 1 => match s.role {
            Role::Client => {
                let method = input.pick(&["GET", "POST", "HEAD", "PUT"]);
                let end = input.byte() & 1 == 0;
                let mut b = http::Request::builder().method(method).uri(input.pick(&[
                    "http://x/",
                    "https://example.com/a?b",
                    "/rel",
                ]));
                for (k, v) in &fields(input) {
                    b = b.header(k, v);
                }
                if let Ok(req) = b.body(()) {
                    if let Ok(id) = s.conn.open_stream(&req, end) {
                        let id = id.value();
                        assert!(
                            !s.t.states.contains_key(&id) || s.t.states[&id] == StreamState::Idle,
                            "open_stream gave used id {id}"
                        );
                        assert!(
                            s.t.known.iter().all(|&k| k < id || k % 2 == 0),
                            "ids increase"
                        );
                        touch(s, id);
                        s.t.learn(id);
                    }
                }
            }
            Role::Server => {
                let id = stream_choice(s, input);
                touch(s, id);
                let status = input.pick(&[200u16, 204, 304, 100, 103, 404, 500, 200]);
                let end = input.byte() & 1 == 0 || (clean && s.t.too_large.contains(&id));
                let mut res = http::Response::new(());
                *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                *res.headers_mut() = fields(input);
                let _ = s.conn.send_response(StreamId::new(id), &res, end);
            }
        },
        2..=4 => {
            let id = stream_choice(s, input);
            touch(s, id);
            let len = usize::from(input.byte()) * 64 + usize::from(input.byte() % 64);
            let end = input.byte() & 3 == 0;
            if (len as u64) > *budget || (clean && s.t.too_large.contains(&id)) {
                return;
            }
            *budget -= len as u64;
            let sid = StreamId::new(id);
            let offset = s.t.sent.get(&id).copied().unwrap_or(0);
            let data: Vec<u8> = (0..len as u64).map(|i| pattern(id, offset + i)).collect();
            let cap = s.conn.send_capacity(sid);
            let snap = snapshot(&s.conn);
            let win = snap
                .streams
                .iter()
                .find(|st| st.id == id)
                .map(|st| st.send_window);
            if let Ok(n) = s.conn.send_data(sid, &data, end) {
                assert!(n <= data.len());
                assert!(n <= cap, "send_data took {n}, capacity was {cap}");
                if n > 0 {
                    let w = win.expect("a stream that sends is in the table");
                    assert!(n as i64 <= w, "§6.9.1: {n} bytes sent, stream window {w}");
                    assert!(
                        n as i64 <= snap.conn_send_window,
                        "§6.9.1: {n} bytes, connection window {}",
                        snap.conn_send_window
                    );
                }
                *s.t.sent.entry(id).or_insert(0) += n as u64;
                let state = s.conn.stream_state(sid);
                let local_closed =
                    matches!(state, StreamState::HalfClosedLocal | StreamState::Closed);
                if end && n == data.len() {
                    assert!(local_closed, "END_STREAM accepted, state {state:?}");
                    s.t.sent_fin.insert(id);
                } else {
                    assert!(
                        !local_closed,
                        "stream {id} ended without END_STREAM ({state:?})"
                    );
                }
            }
        }
        5 => {
            let id = stream_choice(s, input);
            touch(s, id);
            let mut t = http::HeaderMap::new();
            t.insert("x-checksum", http::HeaderValue::from_static("abc"));
            if s.conn.send_trailers(StreamId::new(id), &t).is_ok() {
                s.t.sent_fin.insert(id);
            }
        }
        6 => {
            let id = stream_choice(s, input);
            touch(s, id);
            let reason = input.pick(&[
                Reason::Cancel,
                Reason::NoError,
                Reason::InternalError,
                Reason::RefusedStream,
            ]);
            // Events queued before the reset still come out (they are history): take
            // them now, so that any event on the stream after this is a finding.
            let poll = std::mem::replace(&mut s.poll, true);
            drain_events(s);
            s.poll = poll;
            let live = matches!(
                s.conn.stream_state(StreamId::new(id)),
                StreamState::Open | StreamState::HalfClosedLocal | StreamState::HalfClosedRemote
            );
            s.conn.reset(StreamId::new(id), reason);
            if live {
                s.t.unreleased.remove(&id);
                s.t.recv_ended.insert(id);
                s.t.reset.insert(id);
            }
        }
        7 => {
            let id = stream_choice(s, input);
            let n = if input.byte() & 1 == 0 {
                s.t.unreleased.remove(&id).unwrap_or(0)
            } else {
                usize::from(input.byte()) * 16
            };
            if let Some(u) = s.t.unreleased.get_mut(&id) {
                *u = u.saturating_sub(n);
            }
            s.conn.release_capacity(StreamId::new(id), n);
        }
        8 => {
            let id = stream_choice(s, input);
            let w = u32::from(input.byte()) << input.pick(&[8u32, 12, 16, 23]);
            s.conn.grow_recv_window(StreamId::new(id), w);
        }
        9 => {
            let mut p = [0u8; 8];
            p[0] = input.byte();
            let _ = s.conn.ping(p);
        }
        10 => {
            let mut values = Vec::new();
            for _ in 0..(1 + input.byte() % 2) {
                let v = match input.byte() % 5 {
                    0 => (
                        SettingId::InitialWindowSize,
                        input.pick(&[0, 1, 16_384, 65_535, 1 << 20, 0x7fff_ffff]),
                    ),
                    1 => (SettingId::MaxFrameSize, input.pick(&[16_384, 32_768])),
                    2 => (SettingId::MaxConcurrentStreams, input.pick(&[0, 1, 4, 100])),
                    3 => (SettingId::HeaderTableSize, input.pick(&[0, 256, 4096])),
                    // Applied at once (it is advisory, RFC 9113 §6.5.2): only raised in
                    // clean runs, where a request in flight must not be refused for it.
                    _ if clean => (SettingId::MaxHeaderListSize, 1 << 20),
                    _ => (
                        SettingId::MaxHeaderListSize,
                        input.pick(&[100, 16_384, 1 << 20]),
                    ),
                };
                values.push(v);
            }
            let ok = s.conn.send_settings(&values).is_ok();
            if ok {
                s.cfg.max_frame_size = s.cfg.max_frame_size.max(
                    values
                        .iter()
                        .filter(|v| v.0 == SettingId::MaxFrameSize)
                        .map(|v| v.1)
                        .max()
                        .unwrap_or(0),
                );
            }
        }
        _ => match input.byte() % 8 {
            0 => s.conn.goaway(
                input.pick(&[Reason::NoError, Reason::ProtocolError]),
                b"fuzz",
            ),
            1 => s.conn.goaway_graceful(),
            _ => s.conn.release_buffers(),
        },
    }
    s.t.local_added += s.conn.output_len().saturating_sub(before);
}

/// A frame for A's input, from the input: mostly well-formed for its type.
fn raw_frame(input: &mut Input<'_>, t: &Track, enc: &mut Encoder) -> Vec<u8> {
    let kind = input.byte() % 11;
    let flags = input.byte();
    let sid = match input.byte() {
        b if b < 0x80 && !t.known.is_empty() => t.known[usize::from(b) % t.known.len()],
        b if b < 0xc0 => u32::from(b & 0x0f),
        0xff => 0x7fff_ffff,
        b => u32::from(b) * 2 + 1,
    };
    let mut payload = Vec::new();
    let kind_byte = match kind {
        0 => {
            // DATA, perhaps padded.
            if flags & 0x08 != 0 {
                payload.push(input.byte() % 16);
            }
            let n = usize::from(input.byte()) * 4;
            payload.extend((0..n as u64).map(|i| pattern(sid, i)));
            if flags & 0x08 != 0 {
                payload.extend(std::iter::repeat(0).take(usize::from(payload[0])));
            }
            0
        }
        1 | 9 => {
            // HEADERS (sometimes with priority) or CONTINUATION: an HPACK block that
            // adds nothing to the dynamic table.
            if kind == 1 && flags & 0x20 != 0 {
                payload.extend_from_slice(&[0, 0, 0, input.byte() % 8, 15]);
            }
            let mut fields: Vec<(&[u8], &[u8], bool)> = vec![
                (
                    b":method",
                    input.pick(&[&b"GET"[..], b"POST", b"CONNECT", b"HEAD"]),
                    false,
                ),
                (b":scheme", b"http", false),
                (b":path", input.pick(&[&b"/"[..], b"", b"*", b"/x"]), false),
                (b":authority", b"a", false),
            ];
            match input.byte() % 6 {
                0 => fields.truncate(usize::from(input.byte() % 4)),
                1 => {
                    fields = vec![(
                        b":status",
                        input.pick(&[&b"200"[..], b"100", b"20", b"204"]),
                        false,
                    )]
                }
                2 => fields.push((
                    b"content-length",
                    input.pick(&[&b"0"[..], b"4", b"x"]),
                    false,
                )),
                3 => fields.push((b"connection", b"close", false)),
                4 => fields = vec![(b"x-trailer", b"1", false)],
                _ => {}
            }
            enc.encode(fields, &mut payload);
            if input.byte() & 0x0f == 0 {
                let junk = input.bytes(8);
                payload.extend_from_slice(junk);
            }
            if kind == 1 {
                1
            } else {
                9
            }
        }
        2 => {
            payload.extend_from_slice(&[0, 0, 0, input.byte() % 8, input.byte()]);
            2
        }
        3 => {
            payload.extend_from_slice(&u32::from(input.byte() % 14).to_be_bytes());
            3
        }
        4 => {
            for _ in 0..(input.byte() % 4) {
                payload.extend_from_slice(&u16::from(input.byte() % 10).to_be_bytes());
                let v: u32 = input.pick(&[0, 1, 16_384, 65_535, 0x7fff_ffff, 0x8000_0000, 1 << 24]);
                payload.extend_from_slice(&v.to_be_bytes());
            }
            4
        }
        5 => {
            payload.extend_from_slice(&(u32::from(input.byte()) * 2).to_be_bytes());
            5
        }
        6 => {
            payload.extend_from_slice(input.bytes(8));
            6
        }
        7 => {
            payload.extend_from_slice(&u32::from(input.byte()).to_be_bytes());
            payload.extend_from_slice(&u32::from(input.byte() % 14).to_be_bytes());
            let n = usize::from(input.byte() % 16);
            payload.extend_from_slice(input.bytes(n));
            7
        }
        8 => {
            let inc: u32 = match input.byte() % 5 {
                0 => 0,
                1 => 0x7fff_ffff,
                2 => u32::from(input.u16()) << 8,
                3 => 1,
                _ => 65_535,
            };
            payload.extend_from_slice(&inc.to_be_bytes());
            8
        }
        _ => {
            let n = usize::from(input.byte() % 32);
            payload.extend_from_slice(input.bytes(n));
            0xfa
        }
    };
    if input.byte() & 0x3f == 0 {
        // A wrong length for the type.
        let cut = usize::from(input.byte()) % (payload.len() + 1);
        payload.truncate(cut);
    }
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind_byte);
    f.push(flags);
    f.extend_from_slice(&sid.to_be_bytes());
    f.extend_from_slice(&payload);
    f
}
