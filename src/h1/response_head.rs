//! Parsing HTTP/1 response heads and deciding response body framing (RFC 9112 §4, §6.3),
//! sans-IO: bytes in, a [`ResponseHead`] out.
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::framing::{content_length, BodyFraming};
use super::head::{comma_tokens, trim_ows, LineEnds};

/// Bounds applied while parsing a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Largest head (status line plus fields) accepted, in bytes.
    pub max_head_bytes: usize,
    /// Most header fields accepted.
    pub max_headers: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseHeadError {
    /// The bytes are not an HTTP/1 response head.
    Malformed(&'static str),
    /// The head is larger than [`ResponseLimits::max_head_bytes`].
    TooLarge,
    /// More fields than [`ResponseLimits::max_headers`].
    TooManyHeaders,
}

impl std::fmt::Display for ResponseHeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseHeadError::Malformed(why) => write!(f, "malformed response head: {why}"),
            ResponseHeadError::TooLarge => f.write_str("response head too large"),
            ResponseHeadError::TooManyHeaders => f.write_str("too many response header fields"),
        }
    }
}

impl std::error::Error for ResponseHeadError {}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase as sent (often empty in HTTP/2-era servers).
    pub reason: String,
    /// The header fields, in order.
    pub headers: HeaderMap,
}

impl ResponseHead {
    /// Whether the connection may carry another request after this response's body:
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let mut close = false;
        let mut keep = false;
        for value in self.headers.get_all(header::CONNECTION) {
            for token in comma_tokens(value.as_bytes()) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep = true;
                }
            }
        }
        if close {
            return false;
        }
        self.version == Version::HTTP_11 || keep
    }
}

/// Parses a response head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the head and the number of bytes it
/// took. Invalid field values are refused, and so is a bare LF in a head that otherwise
/// ends its lines with CRLF (see below).
///
/// Obsolete line folding (obs-fold, RFC 9112 §5.2) is accepted as a user agent must: each
/// line break inside a value, with the whitespace around it, becomes one SP. It is
/// refused in `Content-Length` and `Transfer-Encoding`: a hop that does not unfold would
/// frame the body differently from this one (RFC 9112 §11.1), so a folded framing field
/// is the one place where unfolding is not safe.
///
/// Line ends: RFC 9112 §2.2 lets a recipient take a lone LF as a line end. A head that
/// does so throughout is read; one that mixes CRLF and lone LF is refused, because a hop
/// that splits lines only on CRLF would see other fields than this parser does (the
/// response-splitting twin of request smuggling).
///
/// The bytes are parsed in place: only the values of folded fields are copied, once the
/// head is complete.
///
/// ```
/// use spindle::h1::response_head::{parse_response_head, ResponseLimits};
/// let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: a\r\n b\r\n\r\nhi";
/// let (head, used) = parse_response_head(bytes, &ResponseLimits::default()).unwrap().unwrap();
/// assert_eq!(head.status, 200);
/// assert_eq!(head.headers["x-long"], "a b");
/// assert_eq!(&bytes[used..], b"hi");
/// ```
pub fn parse_response_head(
    buf: &[u8],
    limits: &ResponseLimits,
) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
    const STACK: usize = 64;
    let mut stack = [httparse::EMPTY_HEADER; STACK];
    let mut heap;
    let storage: &mut [httparse::Header<'_>] = if limits.max_headers <= STACK {
        &mut stack[..limits.max_headers]
    } else {
        heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
        &mut heap
    };
    // Nothing past the limit is looked at: the outcome then depends only on the first
    // `max_head_bytes + 1` bytes, whatever else has been read (a malformed byte past the
    // limit is "too large", not "malformed", however the bytes arrived), and each
    // attempt costs at most that much.
    let buf = buf
        .get(..limits.max_head_bytes.saturating_add(1))
        .unwrap_or(buf);
    let mut res = httparse::Response::new(storage);
    // RFC 9112 §5.2: a user agent MUST replace each obs-fold with SP rather than refuse
    // the message; httparse then leaves the line breaks inside the value for us.
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    let used = match config.parse_response(&mut res, buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(ResponseHeadError::TooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseHeadError::TooManyHeaders),
        Err(httparse::Error::Status) => {
            return Err(ResponseHeadError::Malformed("invalid status code"))
        }
        Err(httparse::Error::Version) => {
            return Err(ResponseHeadError::Malformed("invalid HTTP version"))
        }
        Err(_) => return Err(ResponseHeadError::Malformed("invalid status line or field")),
    };
    if used > limits.max_head_bytes {
        return Err(ResponseHeadError::TooLarge);
    }
    if mixes_line_ends(&buf[..used]) {
        return Err(ResponseHeadError::Malformed(
            "bare LF in a head whose lines end with CRLF",
        ));
    }
    let version = match res.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(ResponseHeadError::Malformed("invalid HTTP version")),
    };
    let code = res
        .code
        .ok_or(ResponseHeadError::Malformed("missing status"))?;
    let status = StatusCode::from_u16(code)
        .map_err(|_| ResponseHeadError::Malformed("invalid status code"))?;
    let reason = res.reason.unwrap_or("").to_owned();
    let mut headers = HeaderMap::with_capacity(res.headers.len());
    let fields = res.headers.iter();
    for (i, field) in fields.enumerate() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| ResponseHeadError::Malformed("invalid field name"))?;
        if (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING)
            && field_is_folded(buf, used, res.headers, i)
        {
            return Err(ResponseHeadError::Malformed("obs-fold in a framing field"));
        }
        // httparse lets CR and LF into a value only as part of an obs-fold (a fold
        // before the first or after the last visible byte is left out of the value).
        let value = if field.value.iter().any(|&b| b == b'\r' || b == b'\n') {
            HeaderValue::from_bytes(&unfold(field.value))
        } else {
            HeaderValue::from_bytes(trim_ows(field.value))
        }
        .map_err(|_| ResponseHeadError::Malformed("invalid field value"))?;
        headers.append(name, value);
    }
    Ok(Some((
        ResponseHead {
            version,
            status,
            reason,
            headers,
        },
        used,
    )))
}

/// Whether field `i` of a parsed head spans more than one line: its bytes run from its
/// name to the next field's name (or to the head's end, whose empty line is not its).
/// The value httparse gives cannot tell, since it leaves out a fold before the value.
fn field_is_folded(buf: &[u8], used: usize, fields: &[httparse::Header<'_>], i: usize) -> bool {
    let offset = |f: &httparse::Header<'_>| {
        (f.name.as_ptr() as usize)
            .checked_sub(buf.as_ptr() as usize)
            .filter(|&o| o <= used)
    };
    let (start, end, own_line_ends) = match (fields.get(i), fields.get(i + 1)) {
        (Some(f), Some(next)) => (offset(f), offset(next), 1),
        (Some(f), None) => (offset(f), Some(used), 2),
        _ => return true,
    };
    match (start, end) {
        (Some(start), Some(end)) => buf
            .get(start..end)
            .is_none_or(|field| field.iter().filter(|&&b| b == b'\n').count() > own_line_ends),
        // Not where httparse promises its slices are: refuse rather than guess.
        _ => true,
    }
}

/// True when `head` ends some lines with CRLF and others with a lone LF.
fn mixes_line_ends(head: &[u8]) -> bool {
    let ends = LineEnds::of(head);
    ends.crlf && ends.bare_lf
}

/// Replaces each obs-fold (`OWS CRLF RWS`, or with a lone LF) in a field value with one
/// SP (RFC 9112 §5.2).
fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, line) in value.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(trim_ows(line));
    }
    out
}

/// Removes a framing field that a response carries but that does not frame it, and says
/// whether it did: such a response is framed ambiguously, and its connection must not
/// carry another exchange (RFC 9112 §6.1, §6.3).
///
/// - HTTP/1.1 with both `Transfer-Encoding` and `Content-Length`: Transfer-Encoding
///   wins, so `Content-Length` goes. An intermediary must remove it before forwarding
///   (§6.3 rule 3), and a caller that forwards or trusts `headers()` would otherwise
///   read another length than the one the body was framed with.
/// - HTTP/1.0 with `Transfer-Encoding`: HTTP/1.0 has no transfer codings, so the field
///   is not applied and goes; the framing is faulty and the connection closes (§6.1).
///
/// [`response_framing`] decides the same framing before and after this call.
///
/// ```
/// use spindle::h1::response_head::{drop_overridden_framing, parse_response_head, ResponseLimits};
/// let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
/// let (mut head, _) = parse_response_head(bytes, &ResponseLimits::default()).unwrap().unwrap();
/// assert!(drop_overridden_framing(&mut head));
/// assert!(head.headers.get("content-length").is_none());
/// assert_eq!(head.headers["transfer-encoding"], "chunked");
/// ```
pub fn drop_overridden_framing(head: &mut ResponseHead) -> bool {
    if !head.headers.contains_key(header::TRANSFER_ENCODING) {
        return false;
    }
    if head.version == Version::HTTP_11 {
        head.headers.remove(header::CONTENT_LENGTH).is_some()
    } else {
        head.headers.remove(header::TRANSFER_ENCODING);
        true
    }
}

/// Decides how the body of a response to `method` is delimited (RFC 9112 §6.3):
/// HEAD, 1xx, 204 and 304 have none; a final `chunked` coding means chunked; any other
/// Transfer-Encoding means read until close; then Content-Length; else until close.
pub fn response_framing(
    method: &Method,
    head: &ResponseHead,
) -> Result<BodyFraming, ResponseHeadError> {
    let status = head.status.as_u16();
    if method == Method::HEAD || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(BodyFraming::Empty);
    }
    if method == Method::CONNECT && head.status.is_success() {
        return Ok(BodyFraming::Empty);
    }
    if head.headers.contains_key(header::TRANSFER_ENCODING) && head.version == Version::HTTP_11 {
        let mut last_chunked = false;
        for value in head.headers.get_all(header::TRANSFER_ENCODING) {
            for coding in comma_tokens(value.as_bytes()) {
                last_chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        }
        return Ok(if last_chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::CloseDelimited
        });
    }
    match content_length(&head.headers) {
        Ok(Some(0)) => Ok(BodyFraming::Empty),
        Ok(Some(n)) => Ok(BodyFraming::Length(n)),
        Ok(None) => Ok(BodyFraming::CloseDelimited),
        Err(_) => Err(ResponseHeadError::Malformed("invalid Content-Length")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(ResponseHead, usize)>, ResponseHeadError> {
        parse_response_head(bytes, &ResponseLimits::default())
    }

    fn framing(method: Method, bytes: &[u8]) -> Result<BodyFraming, ResponseHeadError> {
        let (head, _) = parse(bytes).unwrap().unwrap();
        response_framing(&method, &head)
    }

    #[test]
    fn parses_in_any_split() {
        let input = b"HTTP/1.1 404 Not Found\r\nServer: x\r\nX-A: 1\r\nx-a: 2 \r\n\r\nbody";
        for cut in 0..input.len() - 4 {
            assert!(parse(&input[..cut]).unwrap().is_none(), "cut {cut}");
        }
        let (head, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len() - 4);
        assert_eq!(head.status, 404);
        assert_eq!(head.reason, "Not Found");
        assert_eq!(head.version, Version::HTTP_11);
        let xa: Vec<_> = head.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert!(head.keep_alive());
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |b: &[u8]| parse(b).unwrap().unwrap().0.keep_alive();
        assert!(ka(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!ka(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.0 200 OK\r\n\r\n"));
        assert!(ka(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn malformed_heads_refused() {
        for bad in [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"FOO 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\nX: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ResponseHeadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn obs_fold_becomes_one_space() {
        let value = |b: &[u8]| {
            let (head, used) = parse(b).unwrap().unwrap();
            assert_eq!(used, b.len());
            head.headers["x"].as_bytes().to_vec()
        };
        assert_eq!(value(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), b"a b");
        assert_eq!(value(b"HTTP/1.1 200 OK\r\nX: a \r\n\t b\r\n\r\n"), b"a b");
        assert_eq!(
            value(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n  c d\r\n\r\n"),
            b"a b c d"
        );
        // A fold right after the colon, and a line of whitespace only: each obs-fold
        // is one SP, leading and trailing ones are OWS.
        assert_eq!(value(b"HTTP/1.1 200 OK\r\nX:\r\n a\r\n\r\n"), b"a");
        assert_eq!(
            value(b"HTTP/1.1 200 OK\r\nX: a\r\n \r\n b\r\n\r\n"),
            b"a  b"
        );
        assert_eq!(value(b"HTTP/1.1 200 OK\r\nX: a\r\n \r\n\r\n"), b"a");
        // A head that ends lines with LF alone may fold with LF alone.
        assert_eq!(value(b"HTTP/1.1 200 OK\nX: a\n b\n\n"), b"a b");
        // Folded fields that do not frame the body are fine, and so is an unfolded
        // Content-Length next to them.
        let (head, _) =
            parse(b"HTTP/1.1 200 OK\r\nConnection: x,\r\n close\r\nContent-Length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(!head.keep_alive());
        assert_eq!(
            response_framing(&Method::GET, &head),
            Ok(BodyFraming::Length(3))
        );
    }

    #[test]
    fn prefixes_of_folded_heads_need_more() {
        let input = b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\tc\r\nY:\r\n d\r\n\r\n";
        for cut in 0..input.len() {
            assert_eq!(parse(&input[..cut]), Ok(None), "cut {cut}");
        }
        let (head, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        assert_eq!(head.headers["x"], "a b c");
        assert_eq!(head.headers["y"], "d");
    }

    #[test]
    fn lone_lf_heads_are_read() {
        let (head, used) = parse(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi")
            .unwrap()
            .unwrap();
        assert_eq!(used, b"HTTP/1.1 200 OK\nContent-Length: 2\n\n".len());
        assert_eq!(head.headers["content-length"], "2");
    }

    #[test]
    fn nothing_past_the_limit_is_read() {
        let limits = ResponseLimits {
            max_head_bytes: 32,
            max_headers: 8,
        };
        // The NUL comes after the limit: the head is too large, however much was read.
        let head = b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaa\0\r\n\r\n";
        for cut in 33..=head.len() {
            assert_eq!(
                parse_response_head(&head[..cut], &limits),
                Err(ResponseHeadError::TooLarge),
                "cut {cut}"
            );
        }
        assert_eq!(parse_response_head(&head[..32], &limits), Ok(None));
    }

    #[test]
    fn overridden_framing_fields_are_dropped() {
        let settle = |b: &[u8]| {
            let (mut head, _) = parse(b).unwrap().unwrap();
            let before = response_framing(&Method::GET, &head);
            let dropped = drop_overridden_framing(&mut head);
            assert_eq!(before, response_framing(&Method::GET, &head));
            let has = |n| head.headers.contains_key(n);
            (
                dropped,
                has(header::CONTENT_LENGTH),
                has(header::TRANSFER_ENCODING),
            )
        };
        assert_eq!(
            settle(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (true, false, true)
        );
        assert_eq!(
            settle(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\n\r\n"),
            (true, false, true)
        );
        assert_eq!(
            settle(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            (true, true, false)
        );
        assert_eq!(
            settle(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (true, false, false)
        );
        assert_eq!(
            settle(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (false, false, true)
        );
        assert_eq!(
            settle(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            (false, true, false)
        );
    }

    #[test]
    fn limits_enforced() {
        let limits = ResponseLimits {
            max_head_bytes: 64,
            max_headers: 2,
        };
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(100));
        assert_eq!(
            parse_response_head(big.as_bytes(), &limits).unwrap_err(),
            ResponseHeadError::TooLarge
        );
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse_response_head(many, &limits).unwrap_err(),
            ResponseHeadError::TooManyHeaders
        );
        let many_limits = ResponseLimits {
            max_head_bytes: 1 << 20,
            max_headers: 200,
        };
        let head = "HTTP/1.1 200 OK\r\n".to_owned() + &"A: 1\r\n".repeat(150) + "\r\n";
        let (parsed, _) = parse_response_head(head.as_bytes(), &many_limits)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.headers.get_all("a").iter().count(), 150);
    }

    #[test]
    fn framing_rules() {
        use BodyFraming::*;
        assert_eq!(
            framing(Method::GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Ok(Length(5))
        );
        assert_eq!(
            framing(
                Method::HEAD,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            ),
            Ok(Empty)
        );
        assert_eq!(
            framing(Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n"),
            Ok(Empty)
        );
        assert_eq!(
            framing(
                Method::GET,
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
            ),
            Ok(Empty)
        );
        assert_eq!(
            framing(Method::GET, b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(CloseDelimited)
        );
        assert_eq!(
            framing(Method::GET, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(Empty)
        );
        assert_eq!(
            framing(
                Method::GET,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            ),
            Ok(Chunked)
        );
        assert_eq!(
            framing(
                Method::GET,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
            ),
            Ok(CloseDelimited)
        );
        assert_eq!(
            framing(Method::CONNECT, b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(Empty)
        );
        assert!(framing(
            Method::GET,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"
        )
        .is_err());
        assert!(framing(
            Method::GET,
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"
        )
        .is_err());
    }
}
