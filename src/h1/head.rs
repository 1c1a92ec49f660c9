//! Parsing an HTTP/1 request head (RFC 9112 §2–§3, §5, §6): bytes in, a validated
//! [`RequestHead`] and its body framing out. Sans-IO: the caller owns the buffer.
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::framing::{self, BodyFraming};

/// Bounds on what a peer may send in a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes a request head (request line, fields and the empty line) may take.
    pub max_head_bytes: usize,
    /// Most header field lines a request head may carry.
    pub max_headers: usize,
    /// Longest request target, in bytes.
    pub max_uri_len: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_uri_len: 8 * 1024,
        }
    }
}

/// Why a request head was refused, with the status code RFC 9110/9112 name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: malformed syntax, a smuggling attempt or an invalid field.
    BadRequest(&'static str),
    /// 414: the request target is longer than [`HeadLimits::max_uri_len`].
    UriTooLong,
    /// 431: the head is larger than [`HeadLimits::max_head_bytes`] or has too many fields.
    HeadTooLarge,
    /// 501: a transfer coding the server does not implement.
    NotImplemented(&'static str),
    /// 505: an HTTP major version other than 1.
    VersionNotSupported,
    /// 417: an `Expect` value other than `100-continue`.
    ExpectationFailed,
}

impl HeadError {
    /// The status code to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HeadError::UriTooLong => StatusCode::URI_TOO_LONG,
            HeadError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            HeadError::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HeadError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
        }
    }

    /// A short description for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::BadRequest(why) | HeadError::NotImplemented(why) => why,
            HeadError::UriTooLong => "request target too long",
            HeadError::HeadTooLarge => "request head too large",
            HeadError::VersionNotSupported => "HTTP version not supported",
            HeadError::ExpectationFailed => "unsupported expectation",
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HeadError {}

/// A parsed and validated request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request target as sent (origin, absolute, authority or asterisk form).
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1 (a higher 1.x minor version is treated as 1.1, RFC 9110 §2.5).
    pub version: Version,
    /// The header fields.
    pub headers: HeaderMap,
    /// How the body that follows the head is delimited.
    pub framing: BodyFraming,
    /// Whether the client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub expect_continue: bool,
}

/// Tries to parse a request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or `Ok(Some((head, len)))` where `len`
/// is the number of bytes the head took; body bytes start at `buf[len..]`.
///
/// ```
/// use spindle::h1::head::{parse_request_head, HeadLimits};
/// let (head, len) = parse_request_head(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n", &HeadLimits::default())
///     .unwrap()
///     .unwrap();
/// assert_eq!(head.uri.path(), "/a");
/// assert_eq!(len, 30);
/// assert!(parse_request_head(b"GET / HTTP/1.1\r\nHo", &HeadLimits::default()).unwrap().is_none());
/// ```
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    const STACK_HEADERS: usize = 64;
    if limits.max_headers <= STACK_HEADERS {
        let mut storage = [httparse::EMPTY_HEADER; STACK_HEADERS];
        parse_with(buf, limits, &mut storage[..limits.max_headers])
    } else {
        let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
        parse_with(buf, limits, &mut storage)
    }
}

fn parse_with<'b>(
    buf: &'b [u8],
    limits: &HeadLimits,
    storage: &mut [httparse::Header<'b>],
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut req = httparse::Request::new(storage);
    let status = req.parse(buf);
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
        Err(httparse::Error::Version) => return parse_other_version(buf, limits),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadTooLarge),
        Err(err) => {
            // A request line that is still arriving cannot be judged yet; report the
            // length problem first when the target alone is over the limit.
            check_partial(buf, limits)?;
            return Err(HeadError::BadRequest(match err {
                httparse::Error::HeaderName => "invalid header field name",
                httparse::Error::HeaderValue => "invalid header field value",
                httparse::Error::NewLine => "invalid line ending",
                httparse::Error::Status | httparse::Error::Token => "malformed request line",
                _ => "malformed request",
            }));
        }
    };
    if len > limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    if target.len() > limits.max_uri_len {
        return Err(HeadError::UriTooLong);
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HeadError::BadRequest("invalid method"))?;
    let uri = parse_target(&method, target)?;

    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::BadRequest("invalid header field name"))?;
        let value = HeaderValue::from_bytes(trim_ows(h.value))
            .map_err(|_| HeadError::BadRequest("invalid header field value"))?;
        headers.append(name, value);
    }
    let head = validate(method, uri, version, headers)?;
    Ok(Some((head, len)))
}

/// While a head is incomplete: is it already over a limit?
fn check_partial(buf: &[u8], limits: &HeadLimits) -> Result<(), HeadError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let request_line = &buf[..line_end.unwrap_or(buf.len())];
    // The target runs from the first space to the next (or to the end of what arrived).
    if let Some(sp) = request_line.iter().position(|&b| b == b' ') {
        let rest = &request_line[sp + 1..];
        let target_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        if target_len > limits.max_uri_len {
            return Err(HeadError::UriTooLong);
        }
    }
    if buf.len() >= limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    Ok(())
}

/// httparse only knows HTTP/1.0 and 1.1. A later 1.x minor version is processed as
/// HTTP/1.1 (RFC 9110 §2.5); any other major version gets 505.
fn parse_other_version(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let line_end = match buf.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
    };
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let version = match line.iter().rposition(|&b| b == b' ') {
        Some(sp) => &line[sp + 1..],
        None => return Err(HeadError::BadRequest("malformed request line")),
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                return Err(HeadError::VersionNotSupported);
            }
            let at = line.len() - 1;
            let mut copy = buf.to_vec();
            copy[at] = b'1';
            match parse_request_head(&copy, limits)? {
                Some((head, len)) => Ok(Some((head, len))),
                None => Ok(None),
            }
        }
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() && *major != b'1' => {
            Err(HeadError::VersionNotSupported)
        }
        _ => Err(HeadError::BadRequest("malformed HTTP version")),
    }
}

/// RFC 9112 §3.2: the four forms of request target, each only where it is allowed.
fn parse_target(method: &Method, target: &str) -> Result<Uri, HeadError> {
    let bad = |why| HeadError::BadRequest(why);
    if target.is_empty() {
        return Err(bad("empty request target"));
    }
    if target == "*" {
        return if method == Method::OPTIONS {
            Ok(Uri::from_static("*"))
        } else {
            Err(bad("asterisk-form target is only for OPTIONS"))
        };
    }
    let uri: Uri = target.parse().map_err(|_| bad("invalid request target"))?;
    if method == Method::CONNECT {
        // authority-form: uri-host ":" port, nothing else.
        let authority = uri
            .authority()
            .filter(|_| uri.scheme().is_none() && !target.starts_with('/'))
            .ok_or(bad("CONNECT needs an authority-form target"))?;
        if authority.port_u16().is_none() || authority.as_str().contains('@') {
            return Err(bad("CONNECT target needs host:port"));
        }
        return Ok(uri);
    }
    if target.starts_with('/') {
        if uri.scheme().is_some() || uri.authority().is_some() {
            return Err(bad("invalid origin-form target"));
        }
        return Ok(uri);
    }
    // absolute-form
    match (uri.scheme(), uri.authority()) {
        (Some(_), Some(authority)) if !authority.as_str().contains('@') => Ok(uri),
        _ => Err(bad("invalid request target")),
    }
}

fn validate(
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
) -> Result<RequestHead, HeadError> {
    // Host: exactly one on HTTP/1.1, at most one on 1.0, and a valid uri-host [":" port].
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(HeadError::BadRequest("more than one Host field")),
        (None, None) if version == Version::HTTP_11 => {
            return Err(HeadError::BadRequest("missing Host field"))
        }
        (Some(host), None) if !valid_host(host.as_bytes()) => {
            return Err(HeadError::BadRequest("invalid Host field"))
        }
        _ => {}
    }

    let framing = framing::request_framing(&headers, version)?;

    let mut close = false;
    let mut keep_alive_token = false;
    for value in headers.get_all(header::CONNECTION) {
        for token in comma_tokens(value.as_bytes()) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive_token = true;
            }
        }
    }
    let keep_alive = !close
        && (version == Version::HTTP_11 || keep_alive_token)
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding is faulty framing.
        && !(version == Version::HTTP_10 && headers.contains_key(header::TRANSFER_ENCODING));

    let mut expect_continue = false;
    for value in headers.get_all(header::EXPECT) {
        for token in comma_tokens(value.as_bytes()) {
            if token.eq_ignore_ascii_case(b"100-continue") {
                // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
                expect_continue = version == Version::HTTP_11;
            } else {
                return Err(HeadError::ExpectationFailed);
            }
        }
    }

    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// uri-host [ ":" port ] with no userinfo; empty is allowed (RFC 9112 §3.2).
fn valid_host(host: &[u8]) -> bool {
    if host.is_empty() {
        return true;
    }
    if host.contains(&b'@') || host.contains(&b'/') || host.contains(&b'?') || host.contains(&b'#')
    {
        return false;
    }
    match http::uri::Authority::try_from(host) {
        Ok(authority) => {
            // A trailing ":" with no port, or a port that is not a number, is invalid.
            let s = authority.as_str();
            match s.rfind(':') {
                Some(i) if !s.ends_with(']') => {
                    let port = &s[i + 1..];
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                }
                _ => true,
            }
        }
        Err(_) => false,
    }
}

/// Splits a comma-separated field value into trimmed, non-empty members.
pub fn comma_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Trims optional whitespace (SP and HTAB) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_request_head(bytes, &HeadLimits::default())
    }

    fn ok(bytes: &[u8]) -> RequestHead {
        let (head, len) = parse(bytes).unwrap().unwrap();
        assert_eq!(len, bytes.len());
        head
    }

    fn err(bytes: &[u8]) -> StatusCode {
        parse(bytes).unwrap_err().status()
    }

    #[test]
    fn origin_form() {
        let head = ok(b"GET /where?q=now HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri.path(), "/where");
        assert_eq!(head.uri.query(), Some("q=now"));
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers["host"], "www.example.com");
        assert_eq!(head.framing, BodyFraming::Empty);
        assert!(head.keep_alive);
    }

    #[test]
    fn absolute_authority_asterisk_forms() {
        let head = ok(b"GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n");
        assert_eq!(head.uri.host(), Some("www.example.org"));
        let head = ok(b"CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n");
        assert_eq!(head.uri.port_u16(), Some(80));
        let head = ok(b"OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n");
        assert_eq!(head.uri, "*");
        assert_eq!(
            err(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET example.com HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn partial_heads_need_more() {
        let full = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..full.len() - 3 {
            assert!(parse(&full[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (head, len) = parse(full).unwrap().unwrap();
        assert_eq!(len, full.len() - 3);
        assert_eq!(head.framing, BodyFraming::Length(3));
    }

    #[test]
    fn http10_keep_alive_rules() {
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n").keep_alive);
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a:x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        ok(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
        ok(b"GET / HTTP/1.1\r\nHost: \r\n\r\n");
        ok(b"GET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn versions() {
        assert_eq!(
            err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            err(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            err(b"GET / HTTP/3\r\nHost: a\r\n\r\n"),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            err(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"GET / FTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        let head = ok(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n");
        assert_eq!(head.version, Version::HTTP_11);
    }

    #[test]
    fn malformed_lines_and_fields() {
        for bad in [
            &b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
            b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn limits() {
        let limits = HeadLimits {
            max_head_bytes: 200,
            max_headers: 4,
            max_uri_len: 50,
        };
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(60));
        assert_eq!(
            parse_request_head(long_uri.as_bytes(), &limits).unwrap_err(),
            HeadError::UriTooLong
        );
        // Still arriving, but already too long.
        assert_eq!(
            parse_request_head(&long_uri.as_bytes()[..58], &limits).unwrap_err(),
            HeadError::UriTooLong
        );
        let many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(
            parse_request_head(many, &limits).unwrap_err(),
            HeadError::HeadTooLarge
        );
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "b".repeat(300));
        assert_eq!(
            parse_request_head(big.as_bytes(), &limits).unwrap_err(),
            HeadError::HeadTooLarge
        );
    }

    #[test]
    fn expectations() {
        assert!(
            ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(
            !ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert_eq!(
            err(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n"),
            StatusCode::EXPECTATION_FAILED
        );
    }

    #[test]
    fn leading_empty_line_ignored() {
        ok(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }
}
