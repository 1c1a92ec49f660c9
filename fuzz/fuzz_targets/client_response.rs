//! Fuzz what a server may send the client: arbitrary bytes as the read side of a
//! `client::conn` connection (split into reads at fuzz-chosen sizes), for GET, HEAD and
//! POST, up to four requests while the connection stays reusable; and
//! `parse_response_head` alone.
//!
//! Asserts:
//! - no panic; a failed exchange or body read is an error of kind Parse, Limit or Closed;
//! - `headers()` never holds both Content-Length and Transfer-Encoding;
//! - a body never has more bytes than its framing allows (none for HEAD, 1xx, 204, 304;
//!   exactly Content-Length when it ends well, at most that when it fails; never more
//!   than the input);
//! - a connection is reported reusable only when its response was self-delimiting
//!   (Content-Length, chunked, or bodiless by status or method), fully read, not
//!   `Connection: close`, not 101, and not framed ambiguously (both framing fields in
//!   HTTP/1.1, Transfer-Encoding in HTTP/1.0, judged from the raw head);
//! - how the input is split into reads changes nothing of the first response (status,
//!   fields, body, error kind);
//! - `parse_response_head` is prefix-consistent: a complete head parses the same from
//!   its own bytes as with trailing bytes, and a shorter prefix is `Ok(None)` or the same
//!   error.
//!
//! Input: byte 0 picks the method (bits 0-1) and small limits (bit 2); byte 1 & 7 is the
//! number of split sizes that follow; the rest is what the server sends.
#![no_main]
use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use spindle::client::conn;
use spindle::h1::response_head::{parse_response_head, ResponseHead, ResponseLimits};
use spindle::http::header::{self, HeaderMap};
use spindle::http::{Method, Request, StatusCode, Version};
use spindle::ErrorKind;

/// The server side: reads yield the input, at most `splits[k]` bytes at a time (cycling;
/// no sizes: all that fits); writes are swallowed.
struct Script<'a> {
    input: &'a [u8],
    pos: usize,
    splits: &'a [u8],
    k: usize,
}

impl Read for Script<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.pos..];
        let mut n = rest.len().min(buf.len());
        if !self.splits.is_empty() {
            let size = usize::from(self.splits[self.k % self.splits.len()]).max(1);
            self.k += 1;
            n = n.min(size);
        }
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Script<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn typed(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Parse | ErrorKind::Limit | ErrorKind::Closed
    )
}

fn limits(small: bool) -> (conn::Builder, ResponseLimits) {
    if small {
        let l = ResponseLimits {
            max_head_bytes: 256,
            max_headers: 8,
        };
        let b = conn::Builder::new()
            .max_head_bytes(l.max_head_bytes)
            .max_headers(l.max_headers)
            .max_trailer_bytes(64)
            .max_interim_responses(2);
        (b, l)
    } else {
        (conn::Builder::new(), ResponseLimits::default())
    }
}

/// What the first exchange showed a caller.
#[derive(Debug, PartialEq)]
enum Seen {
    Failed(ErrorKind),
    Response {
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        body: Vec<u8>,
        body_error: Option<ErrorKind>,
        trailers: Option<HeaderMap>,
    },
}

fn request(method: &Method) -> Request<&'static [u8]> {
    let body: &'static [u8] = if *method == Method::POST {
        b"hello"
    } else {
        b""
    };
    Request::builder()
        .method(method.clone())
        .uri("/x")
        .header("host", "fuzz")
        .body(body)
        .unwrap()
}

/// The final head as the raw bytes give it (interim heads skipped), before the client
/// settles its framing fields: the oracle for the ambiguity rule.
fn raw_final_head(input: &[u8], limits: &ResponseLimits) -> Option<ResponseHead> {
    let mut pos = 0;
    loop {
        let (head, used) = parse_response_head(&input[pos..], limits).ok()??;
        pos += used;
        let code = head.status.as_u16();
        if !(100..200).contains(&code) || code == 101 {
            return Some(head);
        }
    }
}

fn has(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers.contains_key(name)
}

fn has_token(headers: &HeaderMap, token: &[u8]) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"))
}

/// Runs up to four exchanges over `input`; returns what the first one showed.
fn exchanges(
    input: &[u8],
    splits: &[u8],
    method: &Method,
    builder: conn::Builder,
    limits: &ResponseLimits,
) -> Seen {
    let script = Script {
        input,
        pos: 0,
        splits,
        k: 0,
    };
    let mut sender = builder.handshake(script).unwrap();
    let mut first = None;
    for round in 0..4 {
        let start = sender.io().pos;
        let res = match sender.send_request(request(method)) {
            Ok(res) => res,
            Err(e) => {
                assert!(typed(e.kind()), "exchange failed untyped: {e}");
                first.get_or_insert(Seen::Failed(e.kind()));
                break;
            }
        };
        let status = res.status();
        let version = res.version();
        let headers = res.headers().clone();
        assert!(
            !(has(&headers, header::CONTENT_LENGTH) && has(&headers, header::TRANSFER_ENCODING)),
            "both framing fields in headers(): {headers:?}"
        );
        let mut body = res.into_body();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 512];
        let mut body_error = None;
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) => {
                    let kind = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<spindle::Error>())
                        .map(|err| err.kind());
                    assert!(kind.is_some_and(typed), "body failed untyped: {e}");
                    body_error = kind;
                    break;
                }
            }
        }
        let consumed = body.io().pos - start;
        assert!(bytes.len() <= consumed, "more body than bytes read");
        let code = status.as_u16();
        let bodiless =
            *method == Method::HEAD || (100..200).contains(&code) || code == 204 || code == 304;
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if bodiless {
            assert!(bytes.is_empty(), "a body on a bodiless response");
        } else if let (Some(n), false) = (length, has(&headers, header::TRANSFER_ENCODING)) {
            match body_error {
                None => assert_eq!(bytes.len() as u64, n, "Content-Length body"),
                Some(_) => assert!(bytes.len() as u64 <= n, "past Content-Length"),
            }
        }
        let reusable = body.is_reusable();
        if reusable {
            assert!(body.is_finished() && body_error.is_none());
            assert!(code != 101);
            assert!(
                bodiless || length.is_some() || last_coding_is_chunked(&headers),
                "reusable after a close-delimited body: {headers:?}"
            );
            assert!(
                !has_token(&headers, b"close"),
                "reusable after Connection: close"
            );
            assert!(
                version == Version::HTTP_11 || has_token(&headers, b"keep-alive"),
                "HTTP/1.0 reusable without keep-alive"
            );
            if round == 0 {
                if let Some(raw) = raw_final_head(input, limits) {
                    let te = has(&raw.headers, header::TRANSFER_ENCODING);
                    let cl = has(&raw.headers, header::CONTENT_LENGTH);
                    assert!(
                        !(te && (cl || raw.version == Version::HTTP_10)),
                        "reusable after ambiguous framing: {:?}",
                        raw.headers
                    );
                }
            }
        }
        let trailers = body.trailers().cloned();
        first.get_or_insert(Seen::Response {
            status,
            version,
            headers,
            body: bytes,
            body_error,
            trailers,
        });
        match body.into_sender() {
            Ok(next) => {
                assert!(reusable, "into_sender gave back an unreusable connection");
                sender = next;
            }
            Err(_) => {
                assert!(!reusable);
                break;
            }
        }
    }
    first.unwrap()
}

/// Prefix consistency of the head parser on `bytes`.
fn prefixes(bytes: &[u8], limits: &ResponseLimits) {
    let whole = parse_response_head(bytes, limits);
    let end = match &whole {
        Ok(Some((head, used))) => {
            let own = parse_response_head(&bytes[..*used], limits);
            assert_eq!(own, Ok(Some((head.clone(), *used))), "head alone");
            *used
        }
        Ok(None) => bytes.len(),
        Err(_) => bytes.len(),
    };
    // Every cut near the end, and 32 spread over the rest.
    let step = (end / 32).max(1);
    let cuts = (0..end).step_by(step).chain(end.saturating_sub(4)..end);
    for cut in cuts {
        match parse_response_head(&bytes[..cut], limits) {
            Ok(None) => {}
            Ok(Some((_, used))) => panic!("prefix of {cut} bytes complete ({used}) before {end}"),
            Err(e) => assert_eq!(Err(e), whole.clone().map(|_| ()), "prefix of {cut} bytes"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, nsplit, rest @ ..] = data else {
        return;
    };
    let nsplit = usize::from(nsplit & 7).min(rest.len());
    let (splits, input) = rest.split_at(nsplit);
    let method = match sel & 3 {
        0 | 3 => Method::GET,
        1 => Method::HEAD,
        _ => Method::POST,
    };
    let (builder, limits) = limits(sel & 4 != 0);
    prefixes(input, &limits);
    let split = exchanges(input, splits, &method, builder, &limits);
    if !splits.is_empty() {
        let whole = exchanges(input, &[], &method, builder, &limits);
        assert_eq!(
            split, whole,
            "the split of reads changed the first response"
        );
    }
});
