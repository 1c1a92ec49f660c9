//! Fuzz the client's redirect step: an arbitrary `Location` against a base URL (one of a
//! fixed set, or arbitrary), for each redirect status and a few methods.
//!
//! Asserts: no panic; the result is an absolute http/https URL with a host that parses
//! back to itself, or an error of kind Redirect; credentials (Authorization, Cookie,
//! Proxy-Authorization, and the base URL's userinfo) never survive a change of origin;
//! Host never carries over; 307/308 keep method and body, 301/302/303 turn into GET (HEAD
//! stays HEAD) without the body and its content fields; a base fragment carries over
//! when the Location has none (RFC 9110 §10.2.2, §15.4).
//!
//! Input: byte 0 picks status and method; byte 1 picks the base (high bit: the base is
//! the input up to the first LF); the rest is the Location.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::client::{redirect, Url};
use spindle::http::header::{self, HeaderMap, HeaderValue};
use spindle::http::{Method, StatusCode};
use spindle::ErrorKind;

const BASES: [&str; 8] = [
    "http://a.example/d/e?q",
    "https://user:pass@a.example:8443/d/#frag",
    "http://[::1]:8080/x",
    "http://127.0.0.1/",
    "https://a.example",
    "http://user@a.example/%2e%2e/p;x?y#z",
    "http://xn--nxasmq6b.example/",
    "https://a.example:443/deep/er/path",
];
const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
const METHODS: [Method; 4] = [Method::GET, Method::HEAD, Method::POST, Method::DELETE];

fn origin(u: &Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_owned(),
        u.host_str().map(str::to_owned),
        u.port_or_known_default(),
    )
}

fuzz_target!(|data: &[u8]| {
    let [sel, base_sel, rest @ ..] = data else {
        return;
    };
    let status = StatusCode::from_u16(STATUSES[usize::from(sel % 5)]).unwrap();
    let method = METHODS[usize::from((sel / 5) % 4)].clone();
    let (base, location) = if base_sel & 0x80 != 0 {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let Ok(text) = std::str::from_utf8(&rest[..cut]) else {
            return;
        };
        let Ok(base) = Url::parse(text) else { return };
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return; // the client never sends to such a URL, so never redirects from it
        }
        (base, rest.get(cut + 1..).unwrap_or(&[]))
    } else {
        let base = Url::parse(BASES[usize::from(base_sel % 8)]).unwrap();
        (base, rest)
    };
    let mut headers = HeaderMap::new();
    let v = HeaderValue::from_static("v");
    for name in [
        header::AUTHORIZATION,
        header::COOKIE,
        header::PROXY_AUTHORIZATION,
        header::HOST,
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::ACCEPT,
    ] {
        headers.insert(name, v.clone());
    }
    let hop = match redirect(status, &method, &base, location, &mut headers) {
        Ok(hop) => hop,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Redirect, "{e}");
            return;
        }
    };
    let next = &hop.url;
    assert!(matches!(next.scheme(), "http" | "https"), "{next}");
    assert!(next.host_str().is_some_and(|h| !h.is_empty()), "{next}");
    assert!(next.port_or_known_default().is_some(), "{next}");
    assert_eq!(Url::parse(next.as_str()).as_ref(), Ok(next), "round trip");
    // Credentials stay with their origin.
    if origin(next) != origin(&base) {
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ] {
            assert!(!headers.contains_key(&name), "{name} kept for {next}");
        }
        if !location.contains(&b'@') {
            assert!(
                next.username().is_empty() && next.password().is_none(),
                "userinfo of {base} survived to {next}"
            );
        }
    } else {
        assert!(headers.contains_key(header::AUTHORIZATION));
    }
    assert!(!headers.contains_key(header::HOST));
    assert!(headers.contains_key(header::ACCEPT));
    // Method and body.
    match status.as_u16() {
        307 | 308 => {
            assert_eq!(hop.method, method);
            assert!(hop.keep_body);
            assert!(headers.contains_key(header::CONTENT_TYPE));
        }
        _ => {
            let expect = if method == Method::HEAD {
                Method::HEAD
            } else {
                Method::GET
            };
            assert_eq!(hop.method, expect);
            assert!(!hop.keep_body);
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
            ] {
                assert!(!headers.contains_key(&name), "{name} kept without a body");
            }
        }
    }
    if !location.contains(&b'#') {
        assert_eq!(next.fragment(), base.fragment(), "fragment carried over");
    }
});
