//! The handlers' percent-decoder, its encoder, and the decoded-segment form the router
//! matches (`match_key`), on arbitrary bytes:
//!
//! - `decode(encode(x)) == x` for any bytes, and the encoding is only unreserved
//!   characters and `%XX`;
//! - `decode` refuses exactly the inputs with a `%` not followed by two hex digits (a
//!   model decoder written here agrees byte for byte), and its output is never longer
//!   than its input;
//! - `match_key` keeps the segment count, decodes each segment to the same bytes as
//!   the raw one, and is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::handlers::{check_path, match_key, percent_decode, percent_encode};

fn model(s: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let encoded = percent_encode(data);
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
    assert_eq!(percent_decode(encoded.as_bytes()).as_deref(), Some(data));

    let decoded = percent_decode(data);
    assert_eq!(decoded, model(data), "{data:?}");
    if let Some(d) = &decoded {
        assert!(d.len() <= data.len());
        assert_eq!(
            percent_decode(percent_encode(d).as_bytes()).as_ref(),
            Some(d)
        );
    }

    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if !path.starts_with('/') || !check_path(path) {
        return;
    }
    let key = match_key(path);
    let raw: Vec<_> = path
        .split('/')
        .map(|s| percent_decode(s.as_bytes()))
        .collect();
    let ours: Vec<_> = key
        .split('/')
        .map(|s| percent_decode(s.as_bytes()))
        .collect();
    assert_eq!(raw, ours, "{path:?} → {key:?}");
    assert_eq!(
        match_key(&key),
        key,
        "{path:?} → {key:?} is not a fixed point"
    );
});
