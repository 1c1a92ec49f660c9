//! Arbitrary `Accept-Encoding` field values (one to three fields) through the
//! compression layer's negotiation, against a model of RFC 9110 §12.5.3 written here:
//!
//! - a chosen coding has a non-zero weight (its own, or `*`'s when it is not named),
//!   no other acceptable coding weighs more, and an explicit `identity` (or `*` standing
//!   for it) never weighs more than it;
//! - no coding is chosen when none has a non-zero weight;
//! - `identity` is refused exactly for `identity;q=0`, or `*;q=0` without an `identity`
//!   entry; odd q-values never panic, and one that does not parse voids its element.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::handlers::accept_encoding;

/// RFC 9110 §12.4.2 qvalue, in thousandths.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut f: u16 = frac.parse().unwrap_or(0);
    for _ in frac.len()..3 {
        f *= 10;
    }
    match int {
        "0" => Some(f),
        "1" if f == 0 => Some(1000),
        _ => None,
    }
}

#[derive(Default)]
struct Weights {
    gzip: Option<u16>,
    deflate: Option<u16>,
    identity: Option<u16>,
    star: Option<u16>,
}

fn model(values: &[&str]) -> Weights {
    let mut w = Weights::default();
    for value in values {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = Some(1000);
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = qvalue(v.trim());
                    }
                }
            }
            let Some(q) = q else { continue };
            let slot = match name.as_str() {
                "gzip" | "x-gzip" => &mut w.gzip,
                "deflate" => &mut w.deflate,
                "identity" => &mut w.identity,
                "*" => &mut w.star,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |o: u16| o.min(q)));
        }
    }
    w
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let deflate_ok = flags & 1 == 1;
    let fields: Vec<&[u8]> = rest.split(|&b| b == b'\n').take(3).collect();
    let (chosen, identity_refused) = accept_encoding(&fields, deflate_ok);

    // What the layer reads: valid field values that are visible ASCII (others are
    // skipped, as `HeaderValue::to_str` fails on them).
    let texts: Vec<String> = fields
        .iter()
        .filter_map(|v| {
            let v = spindle::http::HeaderValue::from_bytes(v).ok()?;
            v.to_str().ok().map(str::to_owned)
        })
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let w = model(&texts);
    let gzip = w.gzip.or(w.star).unwrap_or(0);
    let deflate = if deflate_ok {
        w.deflate.or(w.star).unwrap_or(0)
    } else {
        0
    };
    let identity = w.identity.or(w.star);
    assert_eq!(identity_refused, identity == Some(0), "{texts:?}");
    match chosen {
        Some(coding) => {
            let (q, other) = match coding {
                "gzip" => (gzip, deflate),
                "deflate" => {
                    assert!(deflate_ok, "{texts:?}: deflate was turned off");
                    (deflate, gzip)
                }
                c => panic!("unknown coding {c}"),
            };
            assert!(q > 0, "{texts:?}: {coding} has weight 0");
            assert!(q >= other, "{texts:?}: {coding} ({q}) over {other}");
            if coding == "deflate" {
                assert!(q > other, "{texts:?}: deflate chosen on a tie");
            }
            assert!(
                identity.is_none_or(|i| q >= i),
                "{texts:?}: identity weighs more"
            );
        }
        None => assert!(
            (gzip == 0 && deflate == 0) || identity.is_some_and(|i| i > gzip.max(deflate)),
            "{texts:?}: nothing chosen, gzip {gzip}, deflate {deflate}"
        ),
    }
});
