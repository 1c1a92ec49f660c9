//! GOAWAY frames (RFC 9113 §6.8).
use super::head::write_head;
use super::*;

/// A GOAWAY frame: the connection is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway<'a> {
    /// The highest stream the sender may have processed.
    pub last_stream_id: StreamId,
    /// Why the connection is closed.
    pub error_code: Reason,
    /// Opaque diagnostic data.
    pub debug_data: &'a [u8],
}

impl<'a> GoAway<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<GoAway<'a>, H2Error> {
        require_zero_stream(head)?;
        if payload.len() < 8 {
            return Err(conn_err(Reason::FrameSizeError, Violation::PayloadTooShort));
        }
        Ok(GoAway {
            last_stream_id: StreamId::new(read_u32(payload)),
            error_code: Reason::from(read_u32(&payload[4..])),
            debug_data: &payload[8..],
        })
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        write_head(
            dst,
            8 + self.debug_data.len(),
            FrameType::GoAway,
            0,
            StreamId::ZERO,
        );
        dst.extend_from_slice(&self.last_stream_id.value().to_be_bytes());
        dst.extend_from_slice(&u32::from(self.error_code).to_be_bytes());
        dst.extend_from_slice(self.debug_data);
    }
}
