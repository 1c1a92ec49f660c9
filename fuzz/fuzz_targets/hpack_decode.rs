//! Fuzz the HPACK decoder and the request/response/trailer mapping: any bytes, no panic,
//! decoded output bounded by the configured limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::headers::{decode_request, decode_response, decode_trailers};
use spindle::h2::hpack::Decoder;
use spindle::h2::StreamId;

const LIMIT: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how to read the rest; the rest is split into blocks on 0xfe
    // so that one input exercises the dynamic table across several blocks.
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut dec = Decoder::new();
    dec.set_max_header_list_size(LIMIT);
    dec.set_max_string_len(LIMIT / 2);
    if mode & 0x80 != 0 {
        dec.set_max_table_size(256);
    }
    let id = StreamId::new(1);
    for block in rest.split(|&b| b == 0xfe) {
        match mode % 4 {
            0 => {
                let mut total = 0usize;
                let _ = dec.decode(block, |f| total += f.size());
                assert!(total <= LIMIT);
            }
            1 => drop(decode_request(&mut dec, id, block)),
            2 => drop(decode_response(&mut dec, id, block)),
            _ => drop(decode_trailers(&mut dec, id, block)),
        }
        assert!(dec.table_size() <= 4096);
    }
});
