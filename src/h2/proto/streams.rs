//! The stream table: per-stream state in a hash map keyed by the stream id with a cheap
//! integer hasher, plus a small ring of recently closed streams for RFC 9113 §5.1's
//! "closed" rules.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher for `u32` stream ids (no SipHash on the hot path).
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        let h = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

pub(super) type Map = HashMap<u32, Stream, BuildHasherDefault<IdHasher>>;

/// One stream's state. `closed` entries are streams that ended normally while the
/// application still held unreleased body bytes: kept only for flow-control accounting.
#[derive(Debug)]
pub(super) struct Stream {
    /// What we may still send (may go negative after a SETTINGS change, §6.9.2).
    pub send_window: i64,
    /// What the peer may still send.
    pub recv_window: i64,
    /// Body bytes delivered in events and not yet released by the application.
    pub unreleased: u64,
    /// Bytes released but not yet announced in a WINDOW_UPDATE.
    pub pending_update: u64,
    /// Receive window granted beyond the initial one (see `grow_recv_window`).
    pub extra_window: u32,
    /// The smallest receive window asked for with `grow_recv_window`: kept when our
    /// initial window shrinks with an ACK even if it was not above the initial window
    /// when asked (it was not grown then, so `extra_window` does not cover it).
    pub min_window: u32,
    /// `content-length` of the incoming message, if any.
    pub content_length: Option<u64>,
    /// Body bytes received.
    pub received: u64,
    /// The peer may still send (not END_STREAM yet).
    pub recv_open: bool,
    /// We may still send.
    pub send_open: bool,
    /// Opened by us.
    pub local: bool,
    /// The final head was received: DATA and trailers may follow.
    pub recv_head: bool,
    /// The final head was sent.
    pub sent_head: bool,
    /// The request was HEAD (its response has no content).
    pub is_head: bool,
    /// The message we send has no content (RFC 9113 §8.1.1): an answer to HEAD, a 204 or
    /// a 304. DATA with bytes is refused.
    pub no_content: bool,
    /// In the blocked list, waiting for capacity.
    pub blocked: bool,
    /// Closed; kept until its unreleased bytes are released.
    pub closed: bool,
}

impl Stream {
    pub fn new(local: bool, send_window: u32, recv_window: u32) -> Stream {
        Stream {
            send_window: i64::from(send_window),
            recv_window: i64::from(recv_window),
            unreleased: 0,
            pending_update: 0,
            extra_window: 0,
            min_window: 0,
            content_length: None,
            received: 0,
            recv_open: true,
            send_open: true,
            local,
            recv_head: false,
            sent_head: false,
            is_head: false,
            no_content: false,
            blocked: false,
            closed: false,
        }
    }
}

const RECENT: usize = 256;

/// How a recently closed stream ended: what RFC 9113 §5.1 "closed" says about frames the
/// peer sends on it afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    /// We sent RST_STREAM (or the peer's GOAWAY refused it): frames the peer sent before
    /// it saw that are in flight and are ignored.
    Forgotten,
    /// The peer sent RST_STREAM: it knows the stream is gone, so any frame but PRIORITY
    /// (and the WINDOW_UPDATE or RST_STREAM crossing ours) is a stream error
    /// STREAM_CLOSED.
    ResetByPeer,
    /// Both sides sent END_STREAM.
    Ended,
}

/// The last [`RECENT`] streams that closed, and how (see [`Closed`]).
pub(super) struct Recent {
    ids: Box<[u32; RECENT]>,
    how: Box<[Closed; RECENT]>,
    pos: usize,
}

impl Recent {
    pub fn new() -> Recent {
        Recent {
            ids: Box::new([0; RECENT]),
            how: Box::new([Closed::Ended; RECENT]),
            pos: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, id: u32, how: Closed) {
        self.ids[self.pos] = id;
        self.how[self.pos] = how;
        self.pos = (self.pos + 1) % RECENT;
    }

    /// How `id` closed, when it closed recently (the newest record wins: a stream the
    /// peer reset and we then reset for a frame on it is `Forgotten`).
    pub fn get(&self, id: u32) -> Option<Closed> {
        (0..RECENT)
            .map(|i| (self.pos + RECENT - 1 - i) % RECENT)
            .find(|&i| self.ids[i] == id && id != 0)
            .map(|i| self.how[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_remembers_the_newest_record_and_forgets_the_oldest() {
        let mut r = Recent::new();
        assert_eq!(r.get(0), None);
        assert_eq!(r.get(1), None);
        r.push(1, Closed::ResetByPeer);
        r.push(3, Closed::Ended);
        assert_eq!(r.get(1), Some(Closed::ResetByPeer));
        assert_eq!(r.get(3), Some(Closed::Ended));
        r.push(1, Closed::Forgotten);
        assert_eq!(r.get(1), Some(Closed::Forgotten));
        for i in 0..RECENT as u32 {
            r.push(101 + 2 * i, Closed::Ended);
        }
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(3), None);
        assert_eq!(r.get(101), Some(Closed::Ended));
    }
}
