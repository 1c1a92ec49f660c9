//! `Upgrade: h2c` requests (RFC 7540 §3.2) built from the input — `Upgrade`, `Connection`
//! and `HTTP2-Settings` fields from common values or arbitrary bytes, the settings
//! base64url-encoded from arbitrary payloads (sometimes padded, cut or corrupted), plus
//! hop-by-hop and ordinary fields — parsed by spindle's HTTP/1 request parser, then
//! through `server::h2c_upgrade` as the server does. Asserted:
//! - `requested_settings` accepts exactly the requests a model of RFC 7540 §3.2.1 accepts
//!   (an `Upgrade` token `h2c`, `Connection` tokens `Upgrade` and `HTTP2-Settings`, one
//!   `HTTP2-Settings` field that is base64url of whole 6-byte settings), and its decoded
//!   payload equals a reference decoder's;
//! - the decoded settings are well-formed or refused: `Settings::from_payload` and
//!   `Connection::server_upgraded` agree, accepted values are within RFC 9113 §6.5.2's
//!   ranges and are the ones in force, stream 1 is half-closed (remote);
//! - `stream_head` keeps exactly the end-to-end fields (each name's values in order), as
//!   HTTP/2.
#![no_main]
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::h2::{h2c_requested_settings, h2c_stream_head};
use spindle::h1::head::{parse_request_head, HeadLimits};
use spindle::h2::frame::{SettingId, Settings, StreamId};
use spindle::h2::proto::{Config, Connection, StreamState};
use spindle::http;

const UPGRADES: &[&[u8]] = &[
    b"h2c",
    b"H2C",
    b"websocket, h2c",
    b"h2",
    b"h2c, h2",
    b" h2c",
    b"tls/1.0",
];
const CONNECTIONS: &[&[u8]] = &[
    b"Upgrade, HTTP2-Settings",
    b"upgrade",
    b"HTTP2-Settings",
    b"close",
    b"Upgrade, HTTP2-Settings, x-hop",
    b"keep-alive, upgrade, http2-settings",
    b"upgrade,,http2-settings",
];
const METHODS: &[&str] = &["GET", "POST", "OPTIONS", "PUT", "HEAD", "DELETE"];
const HOP: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "x-hop",
    "te",
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    /// A common value, or up to 31 arbitrary bytes.
    fn pick(&mut self, common: &[&[u8]]) -> Vec<u8> {
        let b = self.byte();
        if b & 0x80 == 0 {
            common[usize::from(b) % common.len()].to_vec()
        } else {
            self.bytes(usize::from(b & 0x1f))
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url(data: &[u8], pad: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
        }
        if pad {
            out.extend(std::iter::repeat(b'=').take(4 - chars));
        }
    }
    out
}

/// Reference base64url decoder (RFC 4648 §5): surrounding whitespace ignored, `=` or `==`
/// at the end tolerated, a lone trailing sextet refused.
fn b64url_reference(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    let text = text
        .strip_suffix(b"==")
        .or(text.strip_suffix(b"="))
        .unwrap_or(text);
    if text.len() % 4 == 1 {
        return None;
    }
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &c in text {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6 | v) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(|t| t.trim_ascii())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let method = METHODS[usize::from(input.byte()) % METHODS.len()];
    let mut req = format!("{method} /up?x=1 HTTP/1.1\r\nHost: example.com\r\n").into_bytes();
    let field = |req: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        req.extend_from_slice(name);
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    };
    for _ in 0..(flags & 3) {
        let v = input.pick(UPGRADES);
        field(&mut req, b"Upgrade", &v);
    }
    for _ in 0..((flags >> 2) & 3) {
        let v = input.pick(CONNECTIONS);
        field(&mut req, b"Connection", &v);
    }
    for _ in 0..((flags >> 4) & 3) {
        let how = input.byte();
        let payload_len = usize::from(input.byte() % 64);
        let payload = input.bytes(payload_len);
        let mut v = b64url(&payload, how & 1 != 0);
        if how & 2 != 0 && !v.is_empty() {
            // Corrupt or cut it.
            let at = usize::from(input.byte()) % v.len();
            if how & 4 != 0 {
                v[at] = input.byte();
            } else {
                v.truncate(at);
            }
        }
        field(&mut req, b"HTTP2-Settings", &v);
    }
    for _ in 0..(flags >> 6) {
        let name = HOP[usize::from(input.byte()) % HOP.len()];
        let v = input.pick(&[b"1", b"trailers", b"chunked"]);
        field(&mut req, name.as_bytes(), &v);
    }
    field(&mut req, b"Accept", b"*/*");
    req.extend_from_slice(b"\r\n");

    let head = match parse_request_head(&req, &HeadLimits::default()) {
        Ok(Some((head, _))) => head,
        // Fields the HTTP/1 parser refuses never reach the upgrade code.
        Ok(None) | Err(_) => return,
    };
    let headers = &head.headers;

    // The model of RFC 7540 §3.2.1.
    let has = |name: &str, token: &[u8]| {
        headers
            .get_all(name)
            .iter()
            .any(|v| tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(token)))
    };
    let offers = has("upgrade", b"h2c")
        && has("connection", b"upgrade")
        && has("connection", b"http2-settings");
    let values: Vec<_> = headers.get_all("http2-settings").iter().collect();
    let model = match (offers, &values[..]) {
        (true, [one]) => b64url_reference(one.as_bytes()).filter(|s| s.len() % 6 == 0),
        _ => None,
    };
    let got = h2c_requested_settings(headers);
    assert_eq!(
        got,
        model,
        "requested_settings disagrees with the model for {:?}",
        String::from_utf8_lossy(&req)
    );

    if let Some(settings) = &got {
        let parsed = Settings::from_payload(settings);
        let conn = Connection::server_upgraded(Config::default(), Instant::now(), settings);
        assert_eq!(parsed.is_ok(), conn.is_ok(), "{parsed:?} vs {conn:?}");
        match (parsed, conn) {
            (Ok(s), Ok(conn)) => {
                let mut frame = 16_384;
                let mut window = 65_535;
                for (id, v) in s.iter() {
                    match id {
                        SettingId::EnablePush => assert!(v <= 1),
                        SettingId::InitialWindowSize => {
                            assert!(v <= 0x7fff_ffff);
                            window = v;
                        }
                        SettingId::MaxFrameSize => {
                            assert!((16_384..=16_777_215).contains(&v));
                            frame = v;
                        }
                        _ => {}
                    }
                }
                assert_eq!(conn.peer_max_frame_size(), frame);
                assert_eq!(conn.peer_initial_window_size(), window);
                assert_eq!(
                    conn.stream_state(StreamId::new(1)),
                    StreamState::HalfClosedRemote
                );
                assert_eq!(conn.last_peer_stream_id(), StreamId::new(1));
            }
            (Err(e), Err(e2)) => {
                assert!(e.is_connection_error() && e2.is_connection_error());
            }
            _ => unreachable!(),
        }
    }

    // The head of stream 1: the end-to-end fields only, in order (RFC 9113 §8.2.2).
    let listed: Vec<Vec<u8>> = headers
        .get_all("connection")
        .iter()
        .flat_map(|v| {
            tokens(v.as_bytes())
                .map(|t| t.to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let gone = |name: &str| {
        matches!(
            name,
            "connection"
                | "upgrade"
                | "http2-settings"
                | "transfer-encoding"
                | "keep-alive"
                | "proxy-connection"
        ) || listed.iter().any(|t| t == name.as_bytes())
    };
    // Per name, the values in order (a HeaderMap does not keep the order across names
    // once fields are removed).
    let by_name = |h: &http::HeaderMap, keep: &dyn Fn(&str) -> bool| {
        let mut v: Vec<(String, Vec<Vec<u8>>)> = h
            .keys()
            .filter(|n| keep(n.as_str()))
            .map(|n| {
                let vals = h.get_all(n).iter().map(|v| v.as_bytes().to_vec()).collect();
                (n.as_str().to_string(), vals)
            })
            .collect();
        v.sort();
        v
    };
    let want = by_name(headers, &|n| !gone(n));
    let stream1 = h2c_stream_head(head.method.clone(), head.uri.clone(), head.headers.clone());
    assert_eq!(stream1.version(), http::Version::HTTP_2);
    assert_eq!(stream1.method(), &head.method);
    assert_eq!(stream1.uri(), &head.uri);
    let kept = by_name(stream1.headers(), &|_| true);
    assert_eq!(kept, want);
});
