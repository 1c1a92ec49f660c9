//! The 9-byte frame header (RFC 9113 §4.1).
use super::StreamId;

/// Size of the frame header in bytes.
pub const HEAD_LEN: usize = 9;

/// The default and minimum SETTINGS_MAX_FRAME_SIZE (2^14).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

/// The largest SETTINGS_MAX_FRAME_SIZE a peer may advertise (2^24-1).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// The type of a frame (RFC 9113 §6); unknown types are kept (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// DATA (0x0).
    Data,
    /// HEADERS (0x1).
    Headers,
    /// PRIORITY (0x2).
    Priority,
    /// RST_STREAM (0x3).
    RstStream,
    /// SETTINGS (0x4).
    Settings,
    /// PUSH_PROMISE (0x5).
    PushPromise,
    /// PING (0x6).
    Ping,
    /// GOAWAY (0x7).
    GoAway,
    /// WINDOW_UPDATE (0x8).
    WindowUpdate,
    /// CONTINUATION (0x9).
    Continuation,
    /// Any other type, to be ignored and discarded (RFC 9113 §5.5).
    Unknown(u8),
}

impl From<u8> for FrameType {
    fn from(v: u8) -> FrameType {
        match v {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::GoAway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            other => FrameType::Unknown(other),
        }
    }
}

impl From<FrameType> for u8 {
    fn from(t: FrameType) -> u8 {
        match t {
            FrameType::Data => 0,
            FrameType::Headers => 1,
            FrameType::Priority => 2,
            FrameType::RstStream => 3,
            FrameType::Settings => 4,
            FrameType::PushPromise => 5,
            FrameType::Ping => 6,
            FrameType::GoAway => 7,
            FrameType::WindowUpdate => 8,
            FrameType::Continuation => 9,
            FrameType::Unknown(v) => v,
        }
    }
}

/// A parsed frame header: payload length, type, flags and stream identifier.
///
/// ```
/// use spindle::h2::frame::{FrameHead, FrameType, StreamId};
/// let head = FrameHead { length: 8, kind: FrameType::Ping, flags: 1, stream_id: StreamId::ZERO };
/// let mut buf = Vec::new();
/// head.encode(&mut buf);
/// assert_eq!(buf, [0, 0, 8, 6, 1, 0, 0, 0, 0]);
/// assert_eq!(FrameHead::parse(&buf).unwrap(), head);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHead {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type.
    pub kind: FrameType,
    /// Flags, exactly as received (unknown flags are kept here and ignored elsewhere).
    pub flags: u8,
    /// Stream identifier, with the reserved bit cleared.
    pub stream_id: StreamId,
}

impl FrameHead {
    /// Parse the first 9 bytes of `buf`; `None` if fewer than 9 bytes are given.
    /// The reserved bit of the stream identifier is ignored (RFC 9113 §4.1).
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<FrameHead> {
        let h: &[u8; HEAD_LEN] = buf.get(..HEAD_LEN)?.try_into().ok()?;
        Some(FrameHead {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: FrameType::from(h[3]),
            flags: h[4],
            stream_id: StreamId::new(u32::from_be_bytes([h[5], h[6], h[7], h[8]])),
        })
    }

    /// Append the 9-byte header to `dst`; the reserved bit is written as zero and the
    /// length is truncated to 24 bits.
    #[inline]
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let len = self.length.to_be_bytes();
        let id = self.stream_id.value().to_be_bytes();
        dst.extend_from_slice(&[
            len[1],
            len[2],
            len[3],
            u8::from(self.kind),
            self.flags,
            id[0],
            id[1],
            id[2],
            id[3],
        ]);
    }

    /// True if `flag` is set.
    #[inline]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// Write a frame header for a payload of `len` bytes.
#[inline]
pub(crate) fn write_head(dst: &mut Vec<u8>, len: usize, kind: FrameType, flags: u8, id: StreamId) {
    FrameHead {
        length: len as u32,
        kind,
        flags,
        stream_id: id,
    }
    .encode(dst)
}
