//! WINDOW_UPDATE frames (RFC 9113 §6.9).
use super::head::write_head;
use super::*;

/// A WINDOW_UPDATE frame: grants flow-control credit to a stream or (stream 0) the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// The increment, 1..=2^31-1.
    pub increment: u32,
}

impl WindowUpdate {
    pub(crate) fn decode(head: &FrameHead, payload: &[u8]) -> Result<WindowUpdate, H2Error> {
        if payload.len() != 4 {
            return Err(conn_err(Reason::FrameSizeError, Violation::BadLength));
        }
        // The reserved bit is ignored.
        let increment = read_u32(payload) & 0x7fff_ffff;
        if increment == 0 {
            return Err(if head.stream_id.is_zero() {
                conn_err(Reason::ProtocolError, Violation::ZeroWindowIncrement)
            } else {
                H2Error::stream(
                    head.stream_id,
                    Reason::ProtocolError,
                    Violation::ZeroWindowIncrement,
                )
            });
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }

    /// Append the frame to `dst`; the reserved bit is written as zero.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        write_head(dst, 4, FrameType::WindowUpdate, 0, self.stream_id);
        dst.extend_from_slice(&(self.increment & 0x7fff_ffff).to_be_bytes());
    }
}
