//! SETTINGS frames (RFC 9113 §6.5).
use super::head::write_head;
use super::*;

/// The largest flow-control window, 2^31-1 (RFC 9113 §6.9.1).
pub const MAX_WINDOW_SIZE: u32 = 0x7fff_ffff;

/// A setting identifier (RFC 9113 §6.5.2, RFC 8441, RFC 9218); unknown ones are kept and
/// must be ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingId {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    HeaderTableSize,
    /// SETTINGS_ENABLE_PUSH (0x2).
    EnablePush,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    MaxConcurrentStreams,
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    InitialWindowSize,
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    MaxFrameSize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    MaxHeaderListSize,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441).
    EnableConnectProtocol,
    /// SETTINGS_NO_RFC7540_PRIORITIES (0x9, RFC 9218).
    NoRfc7540Priorities,
    /// Any other identifier, to be ignored.
    Unknown(u16),
}

impl From<u16> for SettingId {
    fn from(v: u16) -> SettingId {
        match v {
            1 => SettingId::HeaderTableSize,
            2 => SettingId::EnablePush,
            3 => SettingId::MaxConcurrentStreams,
            4 => SettingId::InitialWindowSize,
            5 => SettingId::MaxFrameSize,
            6 => SettingId::MaxHeaderListSize,
            8 => SettingId::EnableConnectProtocol,
            9 => SettingId::NoRfc7540Priorities,
            other => SettingId::Unknown(other),
        }
    }
}

impl From<SettingId> for u16 {
    fn from(id: SettingId) -> u16 {
        match id {
            SettingId::HeaderTableSize => 1,
            SettingId::EnablePush => 2,
            SettingId::MaxConcurrentStreams => 3,
            SettingId::InitialWindowSize => 4,
            SettingId::MaxFrameSize => 5,
            SettingId::MaxHeaderListSize => 6,
            SettingId::EnableConnectProtocol => 8,
            SettingId::NoRfc7540Priorities => 9,
            SettingId::Unknown(v) => v,
        }
    }
}

/// A SETTINGS frame. Its values were all validated when it was decoded; iterate them with
/// [`Settings::iter`].
///
/// ```
/// use spindle::h2::frame::{Decoded, Frame, FrameDecoder, SettingId, Settings};
/// let mut buf = Vec::new();
/// Settings::encode_values(&[(SettingId::MaxConcurrentStreams, 100)], &mut buf);
/// let Decoded::Frame { frame: Frame::Settings(s), .. } = FrameDecoder::new().decode(&buf).unwrap()
/// else { panic!() };
/// assert_eq!(s.iter().collect::<Vec<_>>(), [(SettingId::MaxConcurrentStreams, 100)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings<'a> {
    ack: bool,
    payload: &'a [u8],
}

impl<'a> Settings<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<Settings<'a>, H2Error> {
        require_zero_stream(head)?;
        let ack = head.has(flags::ACK);
        if ack {
            if !payload.is_empty() {
                return Err(conn_err(
                    Reason::FrameSizeError,
                    Violation::SettingsAckWithPayload,
                ));
            }
        } else if payload.len() % 6 != 0 {
            return Err(conn_err(Reason::FrameSizeError, Violation::SettingsLength));
        }
        let s = Settings { ack, payload };
        for (id, v) in s.iter() {
            validate(id, v)?;
        }
        Ok(s)
    }

    /// The settings of an `HTTP2-Settings` header field (RFC 9113 §3.2 of the older RFC
    /// 7540: a SETTINGS payload, base64url-decoded by the caller), validated as a
    /// received frame's would be.
    pub fn from_payload(payload: &'a [u8]) -> Result<Settings<'a>, H2Error> {
        if payload.len() % 6 != 0 {
            return Err(conn_err(Reason::FrameSizeError, Violation::SettingsLength));
        }
        let s = Settings {
            ack: false,
            payload,
        };
        for (id, v) in s.iter() {
            validate(id, v)?;
        }
        Ok(s)
    }

    /// An empty SETTINGS frame with ACK set.
    pub fn ack() -> Settings<'static> {
        Settings {
            ack: true,
            payload: &[],
        }
    }

    /// True if this acknowledges the peer's SETTINGS.
    pub fn is_ack(&self) -> bool {
        self.ack
    }

    /// The raw payload (6 bytes per setting).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The settings in the order received. Unknown identifiers are included as
    /// [`SettingId::Unknown`]; a receiver ignores them.
    pub fn iter(&self) -> SettingsIter<'a> {
        SettingsIter { rest: self.payload }
    }

    /// Append this frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let fl = if self.ack { flags::ACK } else { 0 };
        write_head(
            dst,
            self.payload.len(),
            FrameType::Settings,
            fl,
            StreamId::ZERO,
        );
        dst.extend_from_slice(self.payload);
    }

    /// Append a SETTINGS frame (without ACK) carrying `values` to `dst`.
    pub fn encode_values(values: &[(SettingId, u32)], dst: &mut Vec<u8>) {
        write_head(
            dst,
            values.len() * 6,
            FrameType::Settings,
            0,
            StreamId::ZERO,
        );
        for &(id, v) in values {
            dst.extend_from_slice(&u16::from(id).to_be_bytes());
            dst.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Check one setting value against RFC 9113 §6.5.2.
pub(crate) fn validate(id: SettingId, v: u32) -> Result<(), H2Error> {
    match id {
        SettingId::EnablePush if v > 1 => Err(conn_err(
            Reason::ProtocolError,
            Violation::InvalidEnablePush,
        )),
        SettingId::InitialWindowSize if v > MAX_WINDOW_SIZE => Err(conn_err(
            Reason::FlowControlError,
            Violation::InvalidInitialWindowSize,
        )),
        SettingId::MaxFrameSize if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&v) => {
            Err(conn_err(
                Reason::ProtocolError,
                Violation::InvalidMaxFrameSize,
            ))
        }
        SettingId::EnableConnectProtocol | SettingId::NoRfc7540Priorities if v > 1 => Err(
            conn_err(Reason::ProtocolError, Violation::InvalidBooleanSetting),
        ),
        _ => Ok(()),
    }
}

/// Iterator over the `(identifier, value)` pairs of a [`Settings`] frame.
#[derive(Debug, Clone)]
pub struct SettingsIter<'a> {
    rest: &'a [u8],
}

impl Iterator for SettingsIter<'_> {
    type Item = (SettingId, u32);

    fn next(&mut self) -> Option<(SettingId, u32)> {
        let (one, rest) = self.rest.split_first_chunk::<6>()?;
        self.rest = rest;
        Some((
            SettingId::from(u16::from_be_bytes([one[0], one[1]])),
            u32::from_be_bytes([one[2], one[3], one[4], one[5]]),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / 6;
        (n, Some(n))
    }
}
