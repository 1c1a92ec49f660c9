//! RST_STREAM frames (RFC 9113 §6.4).
use super::head::write_head;
use super::*;

/// A RST_STREAM frame: terminates one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// Why the stream is reset.
    pub error_code: Reason,
}

impl RstStream {
    pub(crate) fn decode(head: &FrameHead, payload: &[u8]) -> Result<RstStream, H2Error> {
        require_stream(head)?;
        if payload.len() != 4 {
            return Err(conn_err(Reason::FrameSizeError, Violation::BadLength));
        }
        Ok(RstStream {
            stream_id: head.stream_id,
            error_code: Reason::from(read_u32(payload)),
        })
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        write_head(dst, 4, FrameType::RstStream, 0, self.stream_id);
        dst.extend_from_slice(&u32::from(self.error_code).to_be_bytes());
    }
}
