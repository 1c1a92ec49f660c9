//! `Upgrade: h2c`: an HTTP/1.1 request that asks to continue the connection in HTTP/2
//! (RFC 7540 §3.2; RFC 9113 deprecates it, but curl and other clients still send it).
//!
//! The server answers `101 Switching Protocols`, sends its HTTP/2 preface, and answers
//! the upgrading request as stream 1. Everything HTTP/1-specific stays in
//! [`http1`](super::http1); this module decides whether a request qualifies and turns
//! it into the head HTTP/2 serves.
use http::header::{self, HeaderMap, HeaderName};

use crate::h1::head::comma_tokens;

/// The answer that switches the connection; the server's SETTINGS follow it.
pub(crate) const SWITCHING_PROTOCOLS: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n";

/// An upgrading request, taken off the HTTP/1.1 connection with its whole body.
#[derive(Debug)]
pub(crate) struct H2cUpgrade {
    /// Method, URI, end-to-end headers (the upgrade's own fields removed).
    pub head: http::Request<()>,
    /// The request body, complete.
    pub body: Vec<u8>,
    /// The decoded `HTTP2-Settings` field: the client's first SETTINGS payload.
    pub settings: Vec<u8>,
}

const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The client's decoded SETTINGS when `headers` ask for `h2c` properly: an `Upgrade`
/// listing `h2c`, `Connection` naming `Upgrade` and `HTTP2-Settings`, and exactly one
/// valid `HTTP2-Settings` field (RFC 7540 §3.2.1). `None`: serve the request as HTTP/1.1.
pub(crate) fn requested_settings(headers: &HeaderMap) -> Option<Vec<u8>> {
    let has_token = |name: HeaderName, token: &[u8]| {
        headers
            .get_all(name)
            .iter()
            .any(|v| comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(token)))
    };
    if !has_token(header::UPGRADE, b"h2c")
        || !has_token(header::CONNECTION, b"upgrade")
        || !has_token(header::CONNECTION, b"http2-settings")
    {
        return None;
    }
    let mut values = headers.get_all(HTTP2_SETTINGS).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let settings = base64url_decode(value.as_bytes())?;
    (settings.len() % 6 == 0).then_some(settings)
}

/// Builds the head stream 1 carries: the request without the fields that belong to the
/// HTTP/1.1 connection or to the upgrade itself (RFC 9113 §8.2.2).
pub(crate) fn stream_head(
    method: http::Method,
    uri: http::Uri,
    mut headers: HeaderMap,
) -> http::Request<()> {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| comma_tokens(v.as_bytes()))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::UPGRADE,
        HTTP2_SETTINGS,
        header::TRANSFER_ENCODING,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    let mut head = http::Request::new(());
    *head.method_mut() = method;
    *head.uri_mut() = uri;
    *head.version_mut() = http::Version::HTTP_2;
    *head.headers_mut() = headers;
    head
}

/// Decodes base64url without padding (RFC 4648 §5), as `HTTP2-Settings` is sent;
/// trailing `=` padding is tolerated. `None` on any other byte.
fn base64url_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    let text = text
        .strip_suffix(b"==")
        .or(text.strip_suffix(b"="))
        .unwrap_or(text);
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | sextet(c)?;
        }
        // A partial group holds 1 or 2 bytes, left-aligned in its bits.
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn base64url_decodes_unpadded_and_padded_input_and_refuses_other_alphabets() {
        // SETTINGS_MAX_CONCURRENT_STREAMS = 100, SETTINGS_INITIAL_WINDOW_SIZE = 65535.
        let want = [0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 255, 255];
        assert_eq!(base64url_decode(b"AAMAAABkAAQAAP__").unwrap(), want);
        assert_eq!(base64url_decode(b"").unwrap(), b"");
        assert_eq!(base64url_decode(b"AAUAAIAA").unwrap(), [0, 5, 0, 0, 128, 0]);
        assert_eq!(base64url_decode(b"aGk").unwrap(), b"hi");
        assert_eq!(base64url_decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(base64url_decode(b"aA").unwrap(), b"h");
        assert!(
            base64url_decode(b"AAMAAABkAAQAAP//").is_none(),
            "standard alphabet"
        );
        assert!(base64url_decode(b"a").is_none());
        assert!(base64url_decode(b"a$bc").is_none());
    }

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in fields {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_a_complete_h2c_offer_qualifies() {
        let good = [
            ("upgrade", "h2c"),
            ("connection", "Upgrade, HTTP2-Settings"),
            ("http2-settings", "AAMAAABkAAQAAP__"),
        ];
        assert_eq!(requested_settings(&headers(&good)).unwrap().len(), 12);
        let empty_settings = [
            ("upgrade", "websocket, h2c"),
            ("connection", "upgrade"),
            ("connection", "http2-settings"),
            ("http2-settings", ""),
        ];
        assert_eq!(requested_settings(&headers(&empty_settings)).unwrap(), b"");
        for bad in [
            &[
                ("upgrade", "h2c"),
                ("connection", "Upgrade, HTTP2-Settings"),
            ][..],
            &[
                ("upgrade", "h2"),
                ("connection", "Upgrade, HTTP2-Settings"),
                ("http2-settings", ""),
            ],
            &[
                ("upgrade", "h2c"),
                ("connection", "Upgrade"),
                ("http2-settings", ""),
            ],
            &[
                ("upgrade", "h2c"),
                ("connection", "Upgrade, HTTP2-Settings"),
                ("http2-settings", ""),
                ("http2-settings", ""),
            ],
        ] {
            assert!(requested_settings(&headers(bad)).is_none(), "{bad:?}");
        }
        let ragged = [
            ("upgrade", "h2c"),
            ("connection", "Upgrade, HTTP2-Settings"),
            ("http2-settings", "AAMAAA"),
        ];
        assert!(
            requested_settings(&headers(&ragged)).is_none(),
            "not whole settings"
        );
    }

    #[test]
    fn the_stream_head_drops_connection_specific_fields() {
        let h = headers(&[
            ("host", "example.com"),
            ("upgrade", "h2c"),
            ("connection", "Upgrade, HTTP2-Settings, x-hop"),
            ("http2-settings", ""),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("accept", "*/*"),
        ]);
        let head = stream_head(http::Method::POST, "/up".parse().unwrap(), h);
        assert_eq!(head.version(), http::Version::HTTP_2);
        assert_eq!(head.method(), http::Method::POST);
        let names: Vec<&str> = head.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "accept"]);
    }
}
