//! CONTINUATION frames (RFC 9113 §6.10).
use super::head::write_head;
use super::*;

/// A CONTINUATION frame: more of a field block begun by HEADERS or PUSH_PROMISE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation<'a> {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The field block fragment.
    pub fragment: &'a [u8],
    /// END_HEADERS flag.
    pub end_headers: bool,
}

impl<'a> Continuation<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<Continuation<'a>, H2Error> {
        require_stream(head)?;
        Ok(Continuation {
            stream_id: head.stream_id,
            fragment: payload,
            end_headers: head.has(flags::END_HEADERS),
        })
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let fl = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        write_head(
            dst,
            self.fragment.len(),
            FrameType::Continuation,
            fl,
            self.stream_id,
        );
        dst.extend_from_slice(self.fragment);
    }
}
