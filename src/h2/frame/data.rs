//! DATA frames (RFC 9113 §6.1).
use super::head::write_head;
use super::*;

/// A DATA frame: a slice of a stream's body.
///
/// ```
/// use spindle::h2::frame::{Data, StreamId};
/// let mut buf = Vec::new();
/// Data { stream_id: StreamId::new(1), data: b"hi", end_stream: true, pad_len: None }
///     .encode(&mut buf);
/// assert_eq!(buf, [0, 0, 2, 0, 1, 0, 0, 0, 1, b'h', b'i']);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The body bytes, without padding.
    pub data: &'a [u8],
    /// END_STREAM flag.
    pub end_stream: bool,
    /// Padding length when PADDED was set.
    pub pad_len: Option<u8>,
}

impl<'a> Data<'a> {
    pub(crate) fn decode(head: &FrameHead, payload: &'a [u8]) -> Result<Data<'a>, H2Error> {
        require_stream(head)?;
        let (data, pad_len) = strip_padding(head, payload, 0)?;
        Ok(Data {
            stream_id: head.stream_id,
            data,
            end_stream: head.has(flags::END_STREAM),
            pad_len,
        })
    }

    /// The number of bytes this frame counts against flow control: the whole payload,
    /// padding and Pad Length field included (RFC 9113 §6.1).
    pub fn flow_controlled_len(&self) -> usize {
        self.data.len() + padded_len(self.pad_len)
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.pad_len.is_some() {
            fl |= flags::PADDED;
        }
        write_head(
            dst,
            self.flow_controlled_len(),
            FrameType::Data,
            fl,
            self.stream_id,
        );
        write_pad_len(dst, self.pad_len);
        dst.extend_from_slice(self.data);
        write_padding(dst, self.pad_len);
    }
}
