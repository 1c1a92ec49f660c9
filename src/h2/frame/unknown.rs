//! Frames of unknown type (RFC 9113 §5.5): surfaced so the caller can discard them.
use super::*;

/// A frame of a type this codec does not know. RFC 9113 §5.5: "Implementations MUST
/// ignore and discard frames of unknown types" (except in the middle of a field block,
/// which the header-block assembler rejects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown<'a> {
    /// The frame header as received.
    pub head: FrameHead,
    /// The raw payload.
    pub payload: &'a [u8],
}

impl Unknown<'_> {
    /// Append the frame to `dst` (the header's length is taken from the payload).
    pub fn encode(&self, dst: &mut Vec<u8>) {
        FrameHead {
            length: self.payload.len() as u32,
            ..self.head
        }
        .encode(dst);
        dst.extend_from_slice(self.payload);
    }
}
