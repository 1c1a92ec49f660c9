//! Fuzz the HTTP/1 request-head parser: any bytes, with default and small limits, strict
//! and LF-lenient. Asserts the result is `Ok(None)`, a head, or an error with one of the
//! statuses RFC 9110/9112 name for it, and that it is consistent:
//!
//! - a complete head's length is within `max_head_bytes`, its field count within
//!   `max_headers`, it never carries both Content-Length and Transfer-Encoding, the
//!   framing it reports is the one its fields say, `Host` is the target's authority when
//!   the target has one, and (strict) its bytes hold no bare LF;
//! - prefix consistency: the same head and length whatever follows it; every prefix
//!   shorter than the head is `Ok(None)`; every prefix of an incomplete head is
//!   `Ok(None)`; every prefix of a refused head is `Ok(None)` or an error of the same
//!   status class;
//! - what the strict mode accepts, the LF-lenient mode accepts the same way.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h1::framing::{content_length, BodyFraming};
use spindle::h1::head::{parse_request_head, HeadError, HeadLimits, RequestHead};
use spindle::http::header;

type Parsed = Result<Option<(RequestHead, usize)>, HeadError>;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the limits; the rest is what the peer sent.
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut limits = if mode & 1 == 0 {
        HeadLimits::default()
    } else {
        HeadLimits {
            max_head_bytes: 64 + usize::from(mode >> 2) * 4,
            max_headers: usize::from(mode >> 4) % 5,
            max_uri_len: 1 + usize::from(mode >> 3) % 24,
            allow_lf_line_endings: false,
        }
    };
    let strict = parse_request_head(data, &limits);
    check(data, &limits, &strict);
    limits.allow_lf_line_endings = true;
    let lenient = parse_request_head(data, &limits);
    check(data, &limits, &lenient);
    if let Ok(Some((head, len))) = &strict {
        let (other, other_len) = lenient
            .as_ref()
            .expect("strict accepted, lenient refused")
            .as_ref()
            .expect("strict accepted, lenient wants more");
        assert_eq!(len, other_len);
        assert_same(head, other);
    }
});

fn check(data: &[u8], limits: &HeadLimits, result: &Parsed) {
    match result {
        Ok(Some((head, len))) => {
            let len = *len;
            assert!(len > 0 && len <= data.len());
            assert!(
                len <= limits.max_head_bytes,
                "{len} > {}",
                limits.max_head_bytes
            );
            check_head(head, &data[..len], limits);
            // The same head whatever follows it.
            match parse_request_head(&data[..len], limits) {
                Ok(Some((again, again_len))) => {
                    assert_eq!(again_len, len);
                    assert_same(head, &again);
                }
                other => panic!("the head alone parses differently: {:?}", brief(&other)),
            }
            for cut in cuts(data, len) {
                let got = parse_request_head(&data[..cut], limits);
                assert!(
                    matches!(got, Ok(None)),
                    "prefix {cut} of a {len}-byte head: {:?}",
                    brief(&got)
                );
            }
        }
        Ok(None) => {
            assert!(data.len() < limits.max_head_bytes);
            for cut in cuts(data, data.len()) {
                let got = parse_request_head(&data[..cut], limits);
                assert!(
                    matches!(got, Ok(None)),
                    "prefix {cut} of an incomplete head: {:?}",
                    brief(&got)
                );
            }
        }
        Err(err) => {
            let status = err.status().as_u16();
            assert!(
                matches!(status, 400 | 414 | 417 | 431 | 501 | 505),
                "{status}"
            );
            for cut in cuts(data, data.len()) {
                match parse_request_head(&data[..cut], limits) {
                    Ok(None) => {}
                    Err(e) => assert_eq!(
                        e.status().as_u16() / 100,
                        status / 100,
                        "prefix {cut}: {e:?}, whole: {err:?}"
                    ),
                    Ok(Some((_, n))) => panic!("prefix {cut} parsed ({n} bytes), whole: {err:?}"),
                }
            }
        }
    }
}

fn check_head(head: &RequestHead, bytes: &[u8], limits: &HeadLimits) {
    let h = &head.headers;
    let has_te = h.contains_key(header::TRANSFER_ENCODING);
    let cl = content_length(h).expect("a parsed head has a valid Content-Length");
    assert!(
        !(has_te && cl.is_some()),
        "both Content-Length and Transfer-Encoding"
    );
    let want = match (has_te, cl) {
        (true, _) => BodyFraming::Chunked,
        (false, None | Some(0)) => BodyFraming::Empty,
        (false, Some(n)) => BodyFraming::Length(n),
    };
    assert_eq!(head.framing, want);
    // Host may have been added from an absolute-form target (RFC 9112 §3.2.2).
    let added = usize::from(head.uri.authority().is_some());
    assert!(h.len() <= limits.max_headers + added, "{} fields", h.len());
    let hosts = h.get_all(header::HOST).iter().count();
    assert!(hosts <= 1);
    if head.version == spindle::http::Version::HTTP_11 {
        assert_eq!(hosts, 1);
    }
    if let Some(authority) = head.uri.authority() {
        assert_eq!(h[header::HOST], authority.as_str());
    }
    if !limits.allow_lf_line_endings {
        let bare_lf = bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
        assert!(!bare_lf, "a bare LF in an accepted strict head");
    }
    if head.expect_continue {
        assert_eq!(head.version, spindle::http::Version::HTTP_11);
    }
}

fn assert_same(a: &RequestHead, b: &RequestHead) {
    assert_eq!(a.method, b.method);
    assert_eq!(a.uri, b.uri);
    assert_eq!(a.version, b.version);
    assert_eq!(a.headers, b.headers);
    assert_eq!(a.framing, b.framing);
    assert_eq!(a.keep_alive, b.keep_alive);
    assert_eq!(a.expect_continue, b.expect_continue);
}

fn brief(r: &Parsed) -> Result<Option<usize>, HeadError> {
    r.as_ref()
        .map(|o| o.as_ref().map(|(_, n)| *n))
        .map_err(|e| *e)
}

/// Prefix lengths below `end` to try: every one for a short input; otherwise the ones
/// right after each LF (where the server parses again), the last few, and a spread.
fn cuts(data: &[u8], end: usize) -> Vec<usize> {
    if end <= 256 {
        return (0..end).collect();
    }
    let mut cuts: Vec<usize> = (0..end)
        .filter(|&i| i > 0 && data[i - 1] == b'\n')
        .take(64)
        .collect();
    cuts.extend(end.saturating_sub(8)..end);
    cuts.extend((0..end).step_by(end / 32 + 1));
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}
