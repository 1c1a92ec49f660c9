//! PING frames (RFC 9113 §6.7).
use super::head::write_head;
use super::*;

/// A PING frame: 8 opaque bytes, echoed back with ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// ACK flag: this is the answer to a PING.
    pub ack: bool,
    /// The opaque data.
    pub payload: [u8; 8],
}

impl Ping {
    pub(crate) fn decode(head: &FrameHead, payload: &[u8]) -> Result<Ping, H2Error> {
        require_zero_stream(head)?;
        let payload: [u8; 8] = payload
            .try_into()
            .map_err(|_| conn_err(Reason::FrameSizeError, Violation::BadLength))?;
        Ok(Ping {
            ack: head.has(flags::ACK),
            payload,
        })
    }

    /// The answer to this PING: same payload, ACK set.
    pub fn pong(&self) -> Ping {
        Ping {
            ack: true,
            payload: self.payload,
        }
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let fl = if self.ack { flags::ACK } else { 0 };
        write_head(dst, 8, FrameType::Ping, fl, StreamId::ZERO);
        dst.extend_from_slice(&self.payload);
    }
}
