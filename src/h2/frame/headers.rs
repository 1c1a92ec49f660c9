//! HEADERS frames (RFC 9113 §6.2).
use super::head::write_head;
use super::priority::PrioritySpec;
use super::*;

/// A HEADERS frame: opens a stream and carries (the start of) a field block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The field block fragment (HPACK), without padding or priority fields.
    pub fragment: &'a [u8],
    /// END_STREAM flag.
    pub end_stream: bool,
    /// END_HEADERS flag: no CONTINUATION follows.
    pub end_headers: bool,
    /// The deprecated priority fields when the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
    /// Padding length when PADDED was set.
    pub pad_len: Option<u8>,
}

impl<'a> Headers<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<Headers<'a>, H2Error> {
        require_stream(head)?;
        let has_prio = head.has(flags::PRIORITY);
        let fixed = if has_prio { 5 } else { 0 };
        let (rest, pad_len) = strip_padding(head, payload, fixed)?;
        let (priority, fragment) = if has_prio {
            let spec = PrioritySpec::parse(&rest[..5]);
            if spec.dependency == head.stream_id {
                return Err(H2Error::stream(
                    head.stream_id,
                    Reason::ProtocolError,
                    Violation::SelfDependency,
                ));
            }
            (Some(spec), &rest[5..])
        } else {
            (None, rest)
        };
        Ok(Headers {
            stream_id: head.stream_id,
            fragment,
            end_stream: head.has(flags::END_STREAM),
            end_headers: head.has(flags::END_HEADERS),
            priority,
            pad_len,
        })
    }

    /// Append the frame to `dst`. The caller keeps the payload within the peer's
    /// SETTINGS_MAX_FRAME_SIZE; [`encode_header_block`] splits a large block for it.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.end_headers {
            fl |= flags::END_HEADERS;
        }
        if self.pad_len.is_some() {
            fl |= flags::PADDED;
        }
        if self.priority.is_some() {
            fl |= flags::PRIORITY;
        }
        let len = self.fragment.len()
            + padded_len(self.pad_len)
            + if self.priority.is_some() { 5 } else { 0 };
        write_head(dst, len, FrameType::Headers, fl, self.stream_id);
        write_pad_len(dst, self.pad_len);
        if let Some(p) = self.priority {
            p.encode(dst);
        }
        dst.extend_from_slice(self.fragment);
        write_padding(dst, self.pad_len);
    }
}

/// Append a whole field block as one HEADERS frame followed by as many CONTINUATION frames
/// as needed so that no payload exceeds `max_frame_size` (the peer's
/// SETTINGS_MAX_FRAME_SIZE).
///
/// ```
/// use spindle::h2::frame::{encode_header_block, StreamId};
/// let block = vec![0x82u8; 40_000];
/// let mut out = Vec::new();
/// encode_header_block(StreamId::new(1), &block, true, 16_384, &mut out);
/// // HEADERS(16384) + CONTINUATION(16384) + CONTINUATION(7232), each with a 9-byte header.
/// assert_eq!(out.len(), 40_000 + 3 * 9);
/// ```
pub fn encode_header_block(
    stream_id: StreamId,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
    dst: &mut Vec<u8>,
) {
    let max = (max_frame_size.max(1)) as usize;
    let first = block.len().min(max);
    let (head, mut rest) = block.split_at(first);
    Headers {
        stream_id,
        fragment: head,
        end_stream,
        end_headers: rest.is_empty(),
        priority: None,
        pad_len: None,
    }
    .encode(dst);
    while !rest.is_empty() {
        let n = rest.len().min(max);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Continuation {
            stream_id,
            fragment: chunk,
            end_headers: rest.is_empty(),
        }
        .encode(dst);
    }
}
