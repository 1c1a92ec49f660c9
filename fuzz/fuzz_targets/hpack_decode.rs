//! Fuzz the HPACK decoder and the request / response / trailer mapping with any bytes,
//! several blocks per input so that the dynamic table carries over. Asserted, besides
//! "no panic":
//! - the decoded list stays within the header-list limit, and the dynamic table within
//!   its maximum, its size the RFC 7541 §4.1 sum of its entries;
//! - what decodes re-encodes: the decoded fields, encoded by spindle's encoder and decoded
//!   by a fresh decoder, give the same list (names, values, never-indexed flags);
//! - a decoded request, response or trailer section, encoded again by
//!   `headers::encode_*` and decoded by a fresh decoder, is the same message;
//! - after a compression error (the context is lost) nothing more is decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::headers::{
    decode_request, decode_response, decode_trailers, encode_request, encode_response,
    encode_trailers,
};
use spindle::h2::hpack::{Decoder, Encoder, Field, IndexPolicy, ENTRY_OVERHEAD};
use spindle::h2::StreamId;

const LIMIT: usize = 16 * 1024;

fn decoder(table: usize) -> Decoder {
    let mut dec = Decoder::with_max_table_size(table);
    dec.set_max_header_list_size(LIMIT);
    dec.set_max_string_len(LIMIT / 2);
    dec
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how to read the rest; the rest is split into blocks on 0xfe.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut dec = decoder(4096);
    let mut table = 4096;
    if mode & 0x80 != 0 {
        // A smaller table than the default: the block must start with a size update.
        dec.set_max_table_size(256);
        table = 256;
    }
    let id = StreamId::new(1);
    for block in rest.split(|&b| b == 0xfe) {
        let lost = match mode % 4 {
            0 => {
                let mut fields = Vec::new();
                match dec.decode(block, |f| fields.push(f)) {
                    Ok(()) => {
                        assert!(fields.iter().map(Field::size).sum::<usize>() <= LIMIT);
                        reencode_fields(&fields);
                        false
                    }
                    Err(e) => e.is_compression_error(),
                }
            }
            1 => match decode_request(&mut dec, id, block) {
                Ok(req) => {
                    let mut enc = Encoder::new();
                    let mut buf = Vec::new();
                    encode_request(&mut enc, &req, &mut buf);
                    let again = decode_request(&mut decoder(4096), id, &buf)
                        .unwrap_or_else(|e| panic!("{req:?} re-encoded fails: {e}"));
                    assert_eq!(again.method(), req.method());
                    assert_eq!(again.uri(), req.uri());
                    let mut want = req.headers().clone();
                    // `host` travels as `:authority` (RFC 9113 §8.3.1).
                    want.remove(spindle::http::header::HOST);
                    let mut got = again.headers().clone();
                    got.remove(spindle::http::header::HOST);
                    assert_eq!(got, want);
                    false
                }
                Err(e) => e.is_connection_error(),
            },
            2 => match decode_response(&mut dec, id, block) {
                Ok(res) => {
                    let mut enc = Encoder::new();
                    let mut buf = Vec::new();
                    encode_response(&mut enc, &res, &mut buf);
                    let again = decode_response(&mut decoder(4096), id, &buf)
                        .unwrap_or_else(|e| panic!("{res:?} re-encoded fails: {e}"));
                    assert_eq!(again.status(), res.status());
                    assert_eq!(again.headers(), res.headers());
                    false
                }
                Err(e) => e.is_connection_error(),
            },
            _ => match decode_trailers(&mut dec, id, block) {
                Ok(t) => {
                    let mut enc = Encoder::new();
                    let mut buf = Vec::new();
                    encode_trailers(&mut enc, &t, &mut buf);
                    let again = decode_trailers(&mut decoder(4096), id, &buf)
                        .unwrap_or_else(|e| panic!("{t:?} re-encoded fails: {e}"));
                    assert_eq!(again, t);
                    false
                }
                Err(e) => e.is_connection_error(),
            },
        };
        check_table(&dec, table);
        if lost {
            break;
        }
    }
});

fn check_table(dec: &Decoder, max: usize) {
    let sum: usize = (0..dec.table_len())
        .map(|i| {
            let (n, v) = dec.table_entry(i).expect("entry within table_len");
            n.len() + v.len() + ENTRY_OVERHEAD
        })
        .sum();
    assert_eq!(sum, dec.table_size());
    assert!(dec.table_size() <= max);
    assert!(dec.table_entry(dec.table_len()).is_none());
}

fn reencode_fields(fields: &[Field]) {
    let mut enc = Encoder::new();
    // Only the fields that came never-indexed are sent so (the default policy adds its
    // own, such as `proxy-authorization`).
    enc.set_index_policy(IndexPolicy::All);
    let mut buf = Vec::new();
    enc.encode(
        fields
            .iter()
            .map(|f| (f.name.as_bytes(), f.value.as_bytes(), f.never_indexed)),
        &mut buf,
    );
    let again = decoder(4096)
        .decode_to_vec(&buf)
        .unwrap_or_else(|e| panic!("{fields:?} re-encoded fails: {e:?}"));
    assert_eq!(again.len(), fields.len());
    for (a, b) in again.iter().zip(fields) {
        assert_eq!(a.name.as_bytes(), b.name.as_bytes());
        assert_eq!(a.value.as_bytes(), b.value.as_bytes());
        assert_eq!(a.never_indexed, b.never_indexed);
    }
}
