//! Encoding HTTP/1.1 request heads into a caller's buffer.
use http::header::{self, HeaderMap};
use http::Method;

use super::encode::{write_decimal, write_header};

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no framing field (GET, HEAD, ... without a body).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Appends a complete request head: the request line, `Host` (when `host` is given and
/// `headers` has none), the caller's fields except framing fields, the fields of
/// `defaults` whose names `headers` lacks, the framing field and the empty line.
///
/// ```
/// use spindle::h1::request_encode::{write_request_head, RequestFraming};
/// let mut out = Vec::new();
/// let headers = spindle::http::HeaderMap::new();
/// write_request_head(&mut out, &spindle::http::Method::POST, "/a?b", Some("example.com"),
///     &headers, None, RequestFraming::Length(3));
/// assert_eq!(out, b"POST /a?b HTTP/1.1\r\nhost: example.com\r\ncontent-length: 3\r\n\r\n");
/// ```
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    host: Option<&str>,
    headers: &HeaderMap,
    defaults: Option<&HeaderMap>,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host {
        if !headers.contains_key(header::HOST) {
            write_header(out, b"host", host.as_bytes());
        }
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        write_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in defaults.into_iter().flatten() {
        if !headers.contains_key(name)
            && name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
        {
            write_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether a request target is safe to put on the request line: no whitespace or
/// control bytes that would split the line.
pub fn valid_target(target: &str) -> bool {
    !target.is_empty() && target.bytes().all(|b| b > 0x20 && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_fields_are_ours() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "99".parse().unwrap());
        headers.insert("transfer-encoding", "gzip".parse().unwrap());
        headers.insert("host", "h:1".parse().unwrap());
        headers.insert("x-a", "b".parse().unwrap());
        let mut out = Vec::new();
        let mut defaults = HeaderMap::new();
        defaults.insert("x-a", "default".parse().unwrap());
        defaults.insert("user-agent", "t".parse().unwrap());
        write_request_head(
            &mut out,
            &Method::PUT,
            "/",
            Some("ignored"),
            &headers,
            Some(&defaults),
            RequestFraming::Chunked,
        );
        assert_eq!(
            out,
            b"PUT / HTTP/1.1\r\nhost: h:1\r\nx-a: b\r\nuser-agent: t\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn targets() {
        assert!(valid_target("/a?b=c"));
        assert!(valid_target("http://x/"));
        assert!(!valid_target("/a b"));
        assert!(!valid_target("/a\r\nX: y"));
        assert!(!valid_target(""));
    }
}
