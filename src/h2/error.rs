//! HTTP/2 error codes (RFC 9113 §7) and the typed protocol error of the codec.
use std::fmt;

use super::frame::StreamId;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
///
/// Codes this crate does not know are preserved in [`Reason::Unknown`], as §7 requires
/// ("unknown or unsupported error codes MUST NOT trigger any special behavior").
///
/// ```
/// use spindle::h2::Reason;
/// assert_eq!(Reason::from(0x1), Reason::ProtocolError);
/// assert_eq!(u32::from(Reason::Unknown(0xdead)), 0xdead);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `NO_ERROR` (0x0): graceful shutdown, not an error.
    NoError,
    /// `PROTOCOL_ERROR` (0x1): an unspecific protocol error.
    ProtocolError,
    /// `INTERNAL_ERROR` (0x2): the endpoint hit an unexpected internal error.
    InternalError,
    /// `FLOW_CONTROL_ERROR` (0x3): the peer violated flow control.
    FlowControlError,
    /// `SETTINGS_TIMEOUT` (0x4): a SETTINGS frame was not acknowledged in time.
    SettingsTimeout,
    /// `STREAM_CLOSED` (0x5): a frame was received on a half-closed stream.
    StreamClosed,
    /// `FRAME_SIZE_ERROR` (0x6): a frame had an invalid size.
    FrameSizeError,
    /// `REFUSED_STREAM` (0x7): the stream was refused before any processing.
    RefusedStream,
    /// `CANCEL` (0x8): the stream is no longer needed.
    Cancel,
    /// `COMPRESSION_ERROR` (0x9): the field-compression context cannot be maintained.
    CompressionError,
    /// `CONNECT_ERROR` (0xa): the connection of a CONNECT request was reset or closed.
    ConnectError,
    /// `ENHANCE_YOUR_CALM` (0xb): the peer is generating excessive load.
    EnhanceYourCalm,
    /// `INADEQUATE_SECURITY` (0xc): the transport does not meet security requirements.
    InadequateSecurity,
    /// `HTTP_1_1_REQUIRED` (0xd): HTTP/1.1 must be used instead.
    Http11Required,
    /// A code not defined by RFC 9113, preserved as received.
    Unknown(u32),
}

impl From<u32> for Reason {
    fn from(v: u32) -> Reason {
        match v {
            0x0 => Reason::NoError,
            0x1 => Reason::ProtocolError,
            0x2 => Reason::InternalError,
            0x3 => Reason::FlowControlError,
            0x4 => Reason::SettingsTimeout,
            0x5 => Reason::StreamClosed,
            0x6 => Reason::FrameSizeError,
            0x7 => Reason::RefusedStream,
            0x8 => Reason::Cancel,
            0x9 => Reason::CompressionError,
            0xa => Reason::ConnectError,
            0xb => Reason::EnhanceYourCalm,
            0xc => Reason::InadequateSecurity,
            0xd => Reason::Http11Required,
            other => Reason::Unknown(other),
        }
    }
}

impl From<Reason> for u32 {
    fn from(r: Reason) -> u32 {
        match r {
            Reason::NoError => 0x0,
            Reason::ProtocolError => 0x1,
            Reason::InternalError => 0x2,
            Reason::FlowControlError => 0x3,
            Reason::SettingsTimeout => 0x4,
            Reason::StreamClosed => 0x5,
            Reason::FrameSizeError => 0x6,
            Reason::RefusedStream => 0x7,
            Reason::Cancel => 0x8,
            Reason::CompressionError => 0x9,
            Reason::ConnectError => 0xa,
            Reason::EnhanceYourCalm => 0xb,
            Reason::InadequateSecurity => 0xc,
            Reason::Http11Required => 0xd,
            Reason::Unknown(v) => v,
        }
    }
}

impl Reason {
    /// The name RFC 9113 gives the code, e.g. `"PROTOCOL_ERROR"`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::NoError => "NO_ERROR",
            Reason::ProtocolError => "PROTOCOL_ERROR",
            Reason::InternalError => "INTERNAL_ERROR",
            Reason::FlowControlError => "FLOW_CONTROL_ERROR",
            Reason::SettingsTimeout => "SETTINGS_TIMEOUT",
            Reason::StreamClosed => "STREAM_CLOSED",
            Reason::FrameSizeError => "FRAME_SIZE_ERROR",
            Reason::RefusedStream => "REFUSED_STREAM",
            Reason::Cancel => "CANCEL",
            Reason::CompressionError => "COMPRESSION_ERROR",
            Reason::ConnectError => "CONNECT_ERROR",
            Reason::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            Reason::InadequateSecurity => "INADEQUATE_SECURITY",
            Reason::Http11Required => "HTTP_1_1_REQUIRED",
            Reason::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unknown(v) => write!(f, "unknown error code {v:#x}"),
            r => f.write_str(r.name()),
        }
    }
}

/// Whether an error ends the whole connection (GOAWAY) or one stream (RST_STREAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A connection error (RFC 9113 §5.4.1): send GOAWAY and close.
    Connection,
    /// A stream error (RFC 9113 §5.4.2): send RST_STREAM on this stream.
    Stream(StreamId),
}

/// Which rule was broken: the precise cause behind an [`H2Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// The frame's length exceeds SETTINGS_MAX_FRAME_SIZE (§4.2).
    FrameTooLarge,
    /// The frame type requires a non-zero stream identifier but had 0.
    StreamIdZero,
    /// The frame type requires stream identifier 0 but had another.
    StreamIdNotZero,
    /// The Pad Length field is not smaller than the payload it pads (§6.1, §6.2, §6.6).
    PaddingTooLong,
    /// The payload is too short to hold the frame's fixed fields.
    PayloadTooShort,
    /// The payload has a length the frame type does not allow (PRIORITY, RST_STREAM,
    /// PING, WINDOW_UPDATE).
    BadLength,
    /// A SETTINGS payload length is not a multiple of 6 (§6.5).
    SettingsLength,
    /// A SETTINGS frame with ACK had a payload (§6.5).
    SettingsAckWithPayload,
    /// SETTINGS_ENABLE_PUSH other than 0 or 1 (§6.5.2).
    InvalidEnablePush,
    /// SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 (§6.5.2).
    InvalidInitialWindowSize,
    /// SETTINGS_MAX_FRAME_SIZE outside 2^14..=2^24-1 (§6.5.2).
    InvalidMaxFrameSize,
    /// A boolean setting of an extension (ENABLE_CONNECT_PROTOCOL, NO_RFC7540_PRIORITIES)
    /// other than 0 or 1.
    InvalidBooleanSetting,
    /// A WINDOW_UPDATE with an increment of 0 (§6.9).
    ZeroWindowIncrement,
    /// A stream depends on itself (§5.3.1).
    SelfDependency,
    /// A PUSH_PROMISE promised stream identifier 0 (§6.6).
    InvalidPromisedId,
    /// The connection preface was not the client magic followed by SETTINGS (§3.4).
    BadPreface,
    /// A frame other than CONTINUATION arrived while a header block was open, or a
    /// CONTINUATION arrived with no open block or on another stream (§6.10).
    ExpectedContinuation,
    /// A header block (HEADERS + CONTINUATION) exceeded the configured size or frame-count
    /// bound.
    HeaderBlockTooLarge,
    /// HPACK decoding failed (RFC 7541); the compression context is lost.
    Compression(super::hpack::DecoderError),
    /// The decoded header list exceeded the configured size limit (RFC 9113 §10.5.1).
    HeaderListTooLarge,
    /// The header list is malformed (RFC 9113 §8.1.1), see [`Malformed`].
    Malformed(Malformed),
    /// A flow-control window was exceeded by the peer or overflowed past 2^31-1 (§6.9).
    FlowControl,
    /// A stream identifier of the wrong parity, or not above all earlier ones (§5.1.1).
    InvalidStreamId,
    /// A frame other than PRIORITY on a stream in the idle state (§5.1).
    IdleStream,
    /// A frame on a closed or half-closed (remote) stream that the state forbids (§5.1).
    ClosedStream,
    /// A PUSH_PROMISE, which this endpoint never allows (§8.4), or ENABLE_PUSH=1 from a
    /// server (§6.5.2).
    PushNotAllowed,
    /// The DATA received disagrees with `content-length` (§8.1.1).
    ContentLength,
    /// HEADERS where the message does not allow them: a second header block without
    /// END_STREAM, DATA before the response head, an informational response with
    /// END_STREAM (§8.1).
    UnexpectedFrame,
    /// A new stream over SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2).
    TooManyStreams,
    /// The peer did not acknowledge SETTINGS in time (§6.5.3).
    SettingsTimeout,
    /// The peer is generating excessive load (a flood of resets, control frames, empty
    /// frames or settings).
    Flood,
}

/// Why a header list is malformed (RFC 9113 §8.1.1, §8.2, §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malformed {
    /// A field name contains an uppercase character (§8.2.1).
    UppercaseName,
    /// A field name is empty or contains a character not allowed in a token.
    InvalidName,
    /// A field value contains NUL, CR or LF, or starts or ends with whitespace.
    InvalidValue,
    /// A pseudo-header not defined for this message kind (§8.3).
    UnknownPseudo,
    /// A pseudo-header after a regular field (§8.3).
    PseudoAfterRegular,
    /// A pseudo-header repeated (§8.3).
    DuplicatePseudo,
    /// A required pseudo-header is missing (§8.3.1, §8.3.2).
    MissingPseudo,
    /// A pseudo-header in trailers (§8.1).
    PseudoInTrailers,
    /// A connection-specific header field such as `connection` (§8.2.2).
    ConnectionSpecific,
    /// `te` with a value other than `trailers` (§8.2.2).
    InvalidTe,
    /// `:method` does not parse as a method.
    InvalidMethod,
    /// `:scheme`, `:authority` or `:path` do not form a valid URI.
    InvalidUri,
    /// `:path` is empty, or `*` on a method other than OPTIONS (§8.3.1).
    InvalidPath,
    /// CONNECT request with `:scheme` or `:path`, or without `:authority` (§8.5).
    InvalidConnect,
    /// `:protocol` on a request that is not CONNECT (RFC 8441).
    InvalidProtocol,
    /// `:status` missing, repeated or not a three-digit status code (§8.3.2).
    InvalidStatus,
}

/// A protocol error found by the codec: the RFC 9113 error code to send, whether it ends
/// the connection or one stream, and the rule that was broken.
///
/// ```
/// use spindle::h2::frame::{FrameDecoder, Decoded};
/// use spindle::h2::{Reason, Scope};
/// // A PING (type 6) of length 4 instead of 8 on stream 0.
/// let bytes = [0, 0, 4, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4];
/// let err = FrameDecoder::new().decode(&bytes).unwrap_err();
/// assert_eq!(err.error.reason(), Reason::FrameSizeError);
/// assert_eq!(err.error.scope(), Scope::Connection);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct H2Error {
    reason: Reason,
    scope: Scope,
    violation: Violation,
}

impl H2Error {
    /// A connection error.
    pub fn connection(reason: Reason, violation: Violation) -> H2Error {
        H2Error {
            reason,
            scope: Scope::Connection,
            violation,
        }
    }

    /// A stream error on stream `id`.
    pub fn stream(id: StreamId, reason: Reason, violation: Violation) -> H2Error {
        H2Error {
            reason,
            scope: Scope::Stream(id),
            violation,
        }
    }

    /// The error code to send in GOAWAY or RST_STREAM.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// Whether this is a connection or a stream error.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// True when this error ends the connection.
    pub fn is_connection_error(&self) -> bool {
        self.scope == Scope::Connection
    }

    /// The rule that was broken.
    pub fn violation(&self) -> Violation {
        self.violation
    }
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Connection => {
                write!(f, "connection error {}: {:?}", self.reason, self.violation)
            }
            Scope::Stream(id) => write!(
                f,
                "stream error {} on stream {}: {:?}",
                self.reason,
                id.value(),
                self.violation
            ),
        }
    }
}

impl std::error::Error for H2Error {}

impl From<H2Error> for crate::Error {
    fn from(e: H2Error) -> crate::Error {
        crate::Error::new(crate::ErrorKind::Http2, e.to_string()).with_source(e)
    }
}
