//! Fuzz the frame decoder, the header-block assembler and the preface checks with any
//! bytes. Asserted, besides "no panic":
//! - every call makes progress (consumes a whole frame of at least 9 bytes within the
//!   buffer, asks for more, or errors) and never accepts a frame over the maximum size;
//! - encode → decode gives the same frame back, from the same number of bytes, and
//!   encoding is stable (the re-decoded frame encodes to the same bytes);
//! - a stream error carries the frame's stream and length; a connection error found from
//!   the header alone consumes nothing;
//! - the assembler returns exactly the concatenated fragments of HEADERS + CONTINUATION,
//!   for the stream that opened it, within its size and frame-count bounds;
//! - `sniff` and `parse_client_preface` agree with each other and with the magic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::frame::{Decoded, Frame, FrameDecoder, FrameHead, HEAD_LEN};
use spindle::h2::headers::{Assembled, BlockAssembler};
use spindle::h2::preface::{parse_client_preface, sniff, Preface, Sniff, CLIENT_MAGIC};
use spindle::h2::Scope;

const MAX_BLOCK: usize = 4096;
const MAX_CONTINUATIONS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    check_preface(data);

    let mut dec = FrameDecoder::new();
    if mode & 1 != 0 {
        dec.set_max_frame_size(16_384 * 2);
    }
    let mut asm = BlockAssembler::new();
    asm.set_max_block_size(MAX_BLOCK);
    asm.set_max_continuations(MAX_CONTINUATIONS);
    // The block the assembler should be building: its stream and the fragments so far.
    let mut expect: Option<(u32, Vec<u8>, usize)> = None;
    let mut pos = 0;
    loop {
        let buf = &data[pos..];
        match dec.decode(buf) {
            Ok(Decoded::Frame { frame, consumed }) => {
                assert!(consumed >= HEAD_LEN && consumed <= buf.len());
                assert!(consumed - HEAD_LEN <= dec.max_frame_size() as usize);
                roundtrip(&dec, &frame, consumed);
                assemble(&mut asm, &mut expect, &frame);
                pos += consumed;
            }
            Ok(Decoded::NeedMore(n)) => {
                assert!(n > 0);
                match FrameHead::parse(buf) {
                    None => assert_eq!(n, HEAD_LEN - buf.len()),
                    Some(h) => assert_eq!(n, HEAD_LEN + h.length as usize - buf.len()),
                }
                break;
            }
            Err(e) => {
                let head = FrameHead::parse(buf).expect("errors come after a whole header");
                match e.error.scope() {
                    Scope::Stream(id) => {
                        assert_eq!(id, head.stream_id);
                        assert!(!id.is_zero());
                    }
                    Scope::Connection => {}
                }
                if e.consumed == 0 {
                    // Only a frame too large is refused from its header alone.
                    assert!(head.length > dec.max_frame_size());
                    break;
                }
                assert_eq!(e.consumed, HEAD_LEN + head.length as usize);
                assert!(e.consumed <= buf.len());
                if e.error.is_connection_error() {
                    break;
                }
                pos += e.consumed;
            }
        }
    }
});

/// encode → decode is the identity on frames, and encoding is length-preserving and
/// stable.
fn roundtrip(dec: &FrameDecoder, frame: &Frame<'_>, consumed: usize) {
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), consumed, "re-encoded length of {frame:?}");
    match dec.decode(&out) {
        Ok(Decoded::Frame {
            frame: again,
            consumed: n,
        }) => {
            assert_eq!(n, out.len());
            assert_eq!(&again, frame);
            let mut out2 = Vec::new();
            again.encode(&mut out2);
            assert_eq!(out2, out);
        }
        other => panic!("{frame:?} re-encoded to {out:?}, decoded as {other:?}"),
    }
}

/// The assembler against a model: the block is the fragments in order.
fn assemble(
    asm: &mut BlockAssembler,
    expect: &mut Option<(u32, Vec<u8>, usize)>,
    frame: &Frame<'_>,
) {
    let was_open = asm.is_open();
    assert_eq!(was_open, expect.is_some());
    let result = asm.push(frame);
    match (result, frame) {
        (Ok(Assembled::NotHeaders), _) => {
            assert!(!was_open);
            assert!(!matches!(
                frame,
                Frame::Headers(_) | Frame::PushPromise(_) | Frame::Continuation(_)
            ));
        }
        (Ok(Assembled::Incomplete), _) => {
            let (id, frag) = match frame {
                Frame::Headers(h) => (h.stream_id.value(), h.fragment),
                Frame::PushPromise(p) => (p.stream_id.value(), p.fragment),
                Frame::Continuation(c) => (c.stream_id.value(), c.fragment),
                other => panic!("incomplete after {other:?}"),
            };
            match expect {
                Some((sid, buf, n)) => {
                    assert_eq!(*sid, id);
                    buf.extend_from_slice(frag);
                    *n += 1;
                    assert!(*n <= MAX_CONTINUATIONS);
                }
                None => *expect = Some((id, frag.to_vec(), 0)),
            }
            assert!(asm.is_open());
        }
        (Ok(Assembled::Complete(b)), _) => {
            let (id, mut want) = match expect.take() {
                Some((sid, buf, _)) => (sid, buf),
                None => (frame.stream_id().value(), Vec::new()),
            };
            match frame {
                Frame::Headers(h) => want.extend_from_slice(h.fragment),
                Frame::PushPromise(p) => want.extend_from_slice(p.fragment),
                Frame::Continuation(c) => want.extend_from_slice(c.fragment),
                other => panic!("complete after {other:?}"),
            }
            assert_eq!(b.stream_id.value(), id);
            assert_eq!(b.block, &want[..]);
            assert!(b.block.len() <= MAX_BLOCK);
            assert!(!asm.is_open());
        }
        (Err(e), _) => {
            assert!(e.is_connection_error());
            // Start over, as a connection would be closed.
            *asm = BlockAssembler::new();
            asm.set_max_block_size(MAX_BLOCK);
            asm.set_max_continuations(MAX_CONTINUATIONS);
            *expect = None;
        }
    }
}

/// `sniff` is a prefix test of the magic; `parse_client_preface` accepts exactly the
/// magic followed by a SETTINGS frame without ACK.
fn check_preface(data: &[u8]) {
    let n = data.len().min(CLIENT_MAGIC.len());
    let s = sniff(data);
    match s {
        Sniff::H2 => assert!(data.starts_with(CLIENT_MAGIC)),
        Sniff::NeedMore => {
            assert!(data.len() < CLIENT_MAGIC.len());
            assert_eq!(data, &CLIENT_MAGIC[..n]);
        }
        Sniff::NotH2 => assert_ne!(&data[..n], &CLIENT_MAGIC[..n]),
    }
    // The same bytes behind the magic, so the SETTINGS check is reached too.
    for buf in [data.to_vec(), [&CLIENT_MAGIC[..], data].concat()] {
        match parse_client_preface(&buf, 16_384) {
            Ok(Preface::Complete { settings, consumed }) => {
                assert!(buf.starts_with(CLIENT_MAGIC));
                assert!(consumed <= buf.len());
                assert_eq!(buf[CLIENT_MAGIC.len() + 3], 0x4);
                assert!(!settings.is_ack());
                assert_eq!(
                    consumed,
                    CLIENT_MAGIC.len() + HEAD_LEN + settings.payload().len()
                );
            }
            Ok(Preface::NeedMore(k)) => assert!(k > 0),
            Err(e) => assert!(e.error.is_connection_error()),
        }
    }
}
