//! Fuzz the frame decoder and the header-block assembler: any bytes, no panic, and every
//! call makes progress (consumes bytes, asks for more, or errors).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::frame::{Decoded, FrameDecoder};
use spindle::h2::headers::BlockAssembler;
use spindle::h2::preface::{parse_client_preface, sniff};

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let _ = parse_client_preface(data, 16_384);
    let dec = FrameDecoder::new();
    let mut asm = BlockAssembler::new();
    let mut pos = 0;
    loop {
        match dec.decode(&data[pos..]) {
            Ok(Decoded::Frame { frame, consumed }) => {
                assert!(consumed >= 9 && pos + consumed <= data.len());
                pos += consumed;
                let mut out = Vec::new();
                frame.encode(&mut out);
                if asm.push(&frame).is_err() {
                    asm = BlockAssembler::new();
                }
            }
            Ok(Decoded::NeedMore(n)) => {
                assert!(n > 0);
                break;
            }
            Err(e) if !e.error.is_connection_error() && e.consumed > 0 => pos += e.consumed,
            Err(_) => break,
        }
    }
});
