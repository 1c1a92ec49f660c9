//! HTTP/2 frames (RFC 9113 §4, §6): a zero-copy decoder and encoders.
//!
//! [`FrameDecoder::decode`] takes a byte buffer that may hold a partial frame and returns
//! either [`Decoded::NeedMore`] or a typed [`Frame`] borrowing its payload from the buffer,
//! with the number of bytes consumed. Nothing is copied and nothing is allocated.
//! Every rule of RFC 9113 §4 and §6 that a single frame can break is checked; a violation
//! is a [`DecodeError`] carrying an [`H2Error`] (error code, connection or stream scope, and
//! the rule).
//!
//! Encoders append to a caller's `Vec<u8>`: each frame type has an `encode` method.
//!
//! ```
//! use spindle::h2::frame::{Decoded, Frame, FrameDecoder, Ping};
//! let mut buf = Vec::new();
//! Ping { ack: false, payload: *b"12345678" }.encode(&mut buf);
//! let dec = FrameDecoder::new();
//! // A partial frame asks for more bytes.
//! assert!(matches!(dec.decode(&buf[..5]), Ok(Decoded::NeedMore(4))));
//! match dec.decode(&buf).unwrap() {
//!     Decoded::Frame { frame: Frame::Ping(p), consumed } => {
//!         assert_eq!(consumed, 17);
//!         assert_eq!(&p.payload, b"12345678");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

mod continuation;
mod data;
mod goaway;
mod head;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod unknown;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use goaway::GoAway;
pub use head::{FrameHead, FrameType, DEFAULT_MAX_FRAME_SIZE, HEAD_LEN, MAX_MAX_FRAME_SIZE};
pub use headers::{encode_header_block, Headers};
pub use ping::Ping;
pub use priority::{Priority, PrioritySpec};
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{SettingId, Settings, SettingsIter, MAX_WINDOW_SIZE};
pub use unknown::Unknown;
pub use window_update::WindowUpdate;

use super::error::{H2Error, Violation};
use super::Reason;

/// Frame flags (RFC 9113 §6).
pub mod flags {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, PUSH_PROMISE, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS, PUSH_PROMISE).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// A 31-bit stream identifier. The reserved high bit is always cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0, the connection control stream.
    pub const ZERO: StreamId = StreamId(0);
    /// The largest stream identifier (2^31-1).
    pub const MAX: StreamId = StreamId(0x7fff_ffff);

    /// A stream identifier from a 32-bit field; the reserved bit is dropped.
    #[inline]
    pub const fn new(v: u32) -> StreamId {
        StreamId(v & 0x7fff_ffff)
    }

    /// The identifier as a number.
    #[inline]
    pub const fn value(self) -> u32 {
        self.0
    }

    /// True for stream 0.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for odd identifiers, the streams clients open (RFC 9113 §5.1.1).
    #[inline]
    pub const fn is_client_initiated(self) -> bool {
        self.0 & 1 == 1
    }
}

impl From<u32> for StreamId {
    fn from(v: u32) -> StreamId {
        StreamId::new(v)
    }
}

/// A decoded frame; payloads borrow from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA.
    Data(Data<'a>),
    /// HEADERS.
    Headers(Headers<'a>),
    /// PRIORITY.
    Priority(Priority),
    /// RST_STREAM.
    RstStream(RstStream),
    /// SETTINGS.
    Settings(Settings<'a>),
    /// PUSH_PROMISE.
    PushPromise(PushPromise<'a>),
    /// PING.
    Ping(Ping),
    /// GOAWAY.
    GoAway(GoAway<'a>),
    /// WINDOW_UPDATE.
    WindowUpdate(WindowUpdate),
    /// CONTINUATION.
    Continuation(Continuation<'a>),
    /// A frame of an unknown type, which the receiver must ignore (RFC 9113 §5.5).
    Unknown(Unknown<'a>),
}

impl<'a> Frame<'a> {
    /// The stream this frame belongs to (0 for connection frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => StreamId::ZERO,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Continuation(f) => f.stream_id,
            Frame::Unknown(f) => f.head.stream_id,
        }
    }

    /// The frame type.
    pub fn kind(&self) -> FrameType {
        match self {
            Frame::Data(_) => FrameType::Data,
            Frame::Headers(_) => FrameType::Headers,
            Frame::Priority(_) => FrameType::Priority,
            Frame::RstStream(_) => FrameType::RstStream,
            Frame::Settings(_) => FrameType::Settings,
            Frame::PushPromise(_) => FrameType::PushPromise,
            Frame::Ping(_) => FrameType::Ping,
            Frame::GoAway(_) => FrameType::GoAway,
            Frame::WindowUpdate(_) => FrameType::WindowUpdate,
            Frame::Continuation(_) => FrameType::Continuation,
            Frame::Unknown(f) => f.head.kind,
        }
    }

    /// Append this frame, header and payload, to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        match self {
            Frame::Data(f) => f.encode(dst),
            Frame::Headers(f) => f.encode(dst),
            Frame::Priority(f) => f.encode(dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::PushPromise(f) => f.encode(dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Continuation(f) => f.encode(dst),
            Frame::Unknown(f) => f.encode(dst),
        }
    }
}

/// The result of [`FrameDecoder::decode`] when no rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The buffer holds only part of a frame: at least this many more bytes are needed.
    NeedMore(usize),
    /// A whole frame, and how many bytes of the buffer it took (header included).
    Frame {
        /// The frame, borrowing from the buffer.
        frame: Frame<'a>,
        /// Bytes consumed from the start of the buffer.
        consumed: usize,
    },
}

/// A frame that broke a rule of RFC 9113.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The error to report.
    pub error: H2Error,
    /// The length of the offending frame (header included) when it was fully buffered, so a
    /// stream error can be answered with RST_STREAM and the frame skipped. Connection errors
    /// found from the header alone (a frame too large) report 0.
    pub consumed: usize,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes frames from bytes, checking them against the local SETTINGS_MAX_FRAME_SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_size: u32,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder accepting frames up to the default 16 384-byte payload.
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// Set the largest payload accepted: the SETTINGS_MAX_FRAME_SIZE this endpoint has
    /// advertised (and the peer acknowledged). Clamped to 2^14..=2^24-1.
    pub fn set_max_frame_size(&mut self, size: u32) {
        self.max_frame_size = size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
    }

    /// The largest payload accepted.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Decode one frame from the start of `buf`.
    ///
    /// A frame whose length exceeds the maximum is reported as soon as its header is seen,
    /// as a connection error `FRAME_SIZE_ERROR` (RFC 9113 §4.2 allows this for every frame
    /// type, and requires it for most), so oversized frames are never buffered.
    #[inline]
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        let head = match FrameHead::parse(buf) {
            Some(h) => h,
            None => return Ok(Decoded::NeedMore(HEAD_LEN - buf.len())),
        };
        if head.length > self.max_frame_size {
            return Err(DecodeError {
                error: H2Error::connection(Reason::FrameSizeError, Violation::FrameTooLarge),
                consumed: 0,
            });
        }
        let total = HEAD_LEN + head.length as usize;
        if buf.len() < total {
            return Ok(Decoded::NeedMore(total - buf.len()));
        }
        let payload = &buf[HEAD_LEN..total];
        match decode_payload(head, payload) {
            Ok(frame) => Ok(Decoded::Frame {
                frame,
                consumed: total,
            }),
            Err(error) => Err(DecodeError {
                error,
                consumed: total,
            }),
        }
    }
}

/// Decode a frame from its parsed header and its whole payload.
pub fn decode_payload(head: FrameHead, payload: &[u8]) -> Result<Frame<'_>, H2Error> {
    Ok(match head.kind {
        FrameType::Data => Frame::Data(Data::decode(&head, payload)?),
        FrameType::Headers => Frame::Headers(Headers::decode(&head, payload)?),
        FrameType::Priority => Frame::Priority(Priority::decode(&head, payload)?),
        FrameType::RstStream => Frame::RstStream(RstStream::decode(&head, payload)?),
        FrameType::Settings => Frame::Settings(Settings::decode(&head, payload)?),
        FrameType::PushPromise => Frame::PushPromise(PushPromise::decode(&head, payload)?),
        FrameType::Ping => Frame::Ping(Ping::decode(&head, payload)?),
        FrameType::GoAway => Frame::GoAway(GoAway::decode(&head, payload)?),
        FrameType::WindowUpdate => Frame::WindowUpdate(WindowUpdate::decode(&head, payload)?),
        FrameType::Continuation => Frame::Continuation(Continuation::decode(&head, payload)?),
        FrameType::Unknown(_) => Frame::Unknown(Unknown { head, payload }),
    })
}

// ---- helpers shared by the frame modules ----

#[inline]
pub(crate) fn conn_err(reason: Reason, v: Violation) -> H2Error {
    H2Error::connection(reason, v)
}

#[inline]
pub(crate) fn require_stream(head: &FrameHead) -> Result<(), H2Error> {
    if head.stream_id.is_zero() {
        Err(conn_err(Reason::ProtocolError, Violation::StreamIdZero))
    } else {
        Ok(())
    }
}

#[inline]
pub(crate) fn require_zero_stream(head: &FrameHead) -> Result<(), H2Error> {
    if head.stream_id.is_zero() {
        Ok(())
    } else {
        Err(conn_err(Reason::ProtocolError, Violation::StreamIdNotZero))
    }
}

/// Strip the Pad Length field and the padding when PADDED is set. Returns the payload
/// between them and the pad length. `fixed` is the number of bytes of fixed fields that
/// follow the Pad Length field and must fit before the padding.
#[inline]
pub(crate) fn strip_padding<'a>(
    head: &FrameHead,
    payload: &'a [u8],
    fixed: usize,
) -> Result<(&'a [u8], Option<u8>), H2Error> {
    if !head.has(flags::PADDED) {
        if payload.len() < fixed {
            return Err(conn_err(Reason::FrameSizeError, Violation::PayloadTooShort));
        }
        return Ok((payload, None));
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or_else(|| conn_err(Reason::FrameSizeError, Violation::PayloadTooShort))?;
    if rest.len() < fixed {
        return Err(conn_err(Reason::FrameSizeError, Violation::PayloadTooShort));
    }
    // "If the length of the padding is the length of the frame payload or greater, the
    // recipient MUST treat this as a connection error of type PROTOCOL_ERROR" (§6.1);
    // for HEADERS and PUSH_PROMISE the padding may not eat the fixed fields either.
    if pad as usize > rest.len() - fixed {
        return Err(conn_err(Reason::ProtocolError, Violation::PaddingTooLong));
    }
    Ok((&rest[..rest.len() - pad as usize], Some(pad)))
}

/// Append a Pad Length byte when padding is requested.
#[inline]
pub(crate) fn write_pad_len(dst: &mut Vec<u8>, pad: Option<u8>) {
    if let Some(p) = pad {
        dst.push(p);
    }
}

/// Append `pad` zero bytes of padding.
#[inline]
pub(crate) fn write_padding(dst: &mut Vec<u8>, pad: Option<u8>) {
    if let Some(p) = pad {
        dst.resize(dst.len() + p as usize, 0);
    }
}

#[inline]
pub(crate) fn padded_len(pad: Option<u8>) -> usize {
    pad.map_or(0, |p| 1 + p as usize)
}

#[inline]
pub(crate) fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
