//! PUSH_PROMISE frames (RFC 9113 §6.6).
use super::head::write_head;
use super::*;

/// A PUSH_PROMISE frame: the server reserves a stream for a pushed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPromise<'a> {
    /// The stream the promise is associated with (never 0).
    pub stream_id: StreamId,
    /// The reserved stream (never 0).
    pub promised_id: StreamId,
    /// The field block fragment of the promised request.
    pub fragment: &'a [u8],
    /// END_HEADERS flag.
    pub end_headers: bool,
    /// Padding length when PADDED was set.
    pub pad_len: Option<u8>,
}

impl<'a> PushPromise<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<PushPromise<'a>, H2Error> {
        require_stream(head)?;
        let (rest, pad_len) = strip_padding(head, payload, 4)?;
        let promised_id = StreamId::new(read_u32(rest));
        if promised_id.is_zero() {
            return Err(conn_err(
                Reason::ProtocolError,
                Violation::InvalidPromisedId,
            ));
        }
        Ok(PushPromise {
            stream_id: head.stream_id,
            promised_id,
            fragment: &rest[4..],
            end_headers: head.has(flags::END_HEADERS),
            pad_len,
        })
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let mut fl = 0;
        if self.end_headers {
            fl |= flags::END_HEADERS;
        }
        if self.pad_len.is_some() {
            fl |= flags::PADDED;
        }
        let len = 4 + self.fragment.len() + padded_len(self.pad_len);
        write_head(dst, len, FrameType::PushPromise, fl, self.stream_id);
        write_pad_len(dst, self.pad_len);
        dst.extend_from_slice(&self.promised_id.value().to_be_bytes());
        dst.extend_from_slice(self.fragment);
        write_padding(dst, self.pad_len);
    }
}
