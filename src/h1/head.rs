//! Parsing an HTTP/1 request head (RFC 9112 §2–§3, §5, §6): bytes in, a validated
//! [`RequestHead`] and its body framing out. Sans-IO: the caller owns the buffer.
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::framing::{self, BodyFraming};

/// Bounds on what a peer may send in a request head, and how strictly it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes a request head (request line, fields and the empty line) may take.
    pub max_head_bytes: usize,
    /// Most header field lines a request head may carry.
    pub max_headers: usize,
    /// Longest request target, in bytes.
    pub max_uri_len: usize,
    /// Accept a head whose every line ends in a bare LF. Off by default.
    ///
    /// RFC 9112 §2.2 lets a recipient recognise a single LF as a line terminator; we do
    /// not by default, because a bare LF inside a head that otherwise uses CRLF is a
    /// request-smuggling vector: a front end that splits lines only on CRLF reads
    /// `X: y\nTransfer-Encoding: chunked\r\n` as one field where a lenient parser reads
    /// two. When off, a bare LF anywhere in the head (empty lines before the request line
    /// included) gets 400. When on, a head that uses LF alone is accepted, but a head that
    /// mixes CRLF and bare LF is still 400.
    pub allow_lf_line_endings: bool,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_uri_len: 8 * 1024,
            allow_lf_line_endings: false,
        }
    }
}

/// Most empty lines accepted before a request line. RFC 9112 §2.2: a server SHOULD
/// ignore at least one (old clients send a CRLF after a POST body); more than a few is
/// not a client's slip, and each one would otherwise be scanned again on every parse.
pub const MAX_LEADING_EMPTY_LINES: usize = 8;

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
    /// The header fields. When the target has an authority (absolute or authority
    /// form), `Host` holds that authority, whatever the client sent in `Host`
    /// (RFC 9112 §3.2.2), so `uri` and `Host` never name different hosts.
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
/// is the number of bytes the head took (up to [`MAX_LEADING_EMPTY_LINES`] empty lines
/// before the request line included); body bytes start at `buf[len..]`. A head is
/// never refused while it is still arriving if it would be accepted once complete, and
/// what follows it does not change it. Each call parses `buf` from its start, in place
/// (no copy of the buffer, no recursion), in time linear in `buf.len()`.
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
    let start = match skip_empty_lines(buf, limits)? {
        Some(start) => start,
        None => {
            check_partial(buf, buf.len(), limits)?;
            return Ok(None);
        }
    };
    let lines = match parse_lines(buf, start, limits, storage)? {
        Some(lines) => lines,
        None => {
            // Everything that arrived belongs to the head: judge its line endings now, so
            // a bare LF is refused as soon as it is seen.
            check_line_endings(&buf[start..], limits)?;
            check_partial(buf, start, limits)?;
            return Ok(None);
        }
    };
    let len = lines.len;
    if len > limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    check_line_endings(&buf[start..len], limits)?;
    if lines.target.len() > limits.max_uri_len {
        return Err(HeadError::UriTooLong);
    }
    let method = Method::from_bytes(lines.method.as_bytes())
        .map_err(|_| HeadError::BadRequest("invalid method"))?;
    let uri = parse_target(&method, lines.target)?;

    let mut headers = HeaderMap::with_capacity(lines.fields.len());
    for h in lines.fields {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::BadRequest("invalid header field name"))?;
        let value = HeaderValue::from_bytes(trim_ows(h.value))
            .map_err(|_| HeadError::BadRequest("invalid header field value"))?;
        headers.append(name, value);
    }
    let head = validate(method, uri, lines.version, headers)?;
    Ok(Some((head, len)))
}

/// The pieces of a complete head, borrowed from the buffer.
struct Lines<'b, 'h> {
    method: &'b str,
    target: &'b str,
    version: Version,
    fields: &'h [httparse::Header<'b>],
    /// Bytes the head took from the start of the buffer, leading empty lines included.
    len: usize,
}

/// Splits the head that starts at `buf[start..]` into request line and fields, or says
/// more bytes are needed. Never copies the buffer and never recurses.
fn parse_lines<'b, 'h>(
    buf: &'b [u8],
    start: usize,
    limits: &HeadLimits,
    storage: &'h mut [httparse::Header<'b>],
) -> Result<Option<Lines<'b, 'h>>, HeadError> {
    let line_buf = &buf[start..];
    let mut req = httparse::Request::new(storage);
    match req.parse(line_buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(Lines {
            method: req.method.unwrap_or(""),
            target: req.path.unwrap_or(""),
            version: match req.version {
                Some(0) => Version::HTTP_10,
                _ => Version::HTTP_11,
            },
            fields: req.headers,
            len: start + n,
        })),
        Ok(httparse::Status::Partial) => Ok(None),
        // httparse knows only HTTP/1.0 and HTTP/1.1; it has read the method and the
        // target (each followed by one SP) before it looked at the version.
        Err(httparse::Error::Version) => {
            let (Some(method), Some(target)) = (req.method, req.path) else {
                return Err(HeadError::BadRequest("malformed request line"));
            };
            let storage = req.headers;
            other_version(buf, start, method, target, limits, storage)
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::HeadTooLarge),
        Err(err) => {
            // A request line that is still arriving cannot be judged yet; report the
            // length problem first when the target alone is over the limit.
            check_partial(buf, start, limits)?;
            Err(httparse_error(err))
        }
    }
}

fn httparse_error(err: httparse::Error) -> HeadError {
    HeadError::BadRequest(match err {
        httparse::Error::HeaderName => "invalid header field name",
        httparse::Error::HeaderValue => "invalid header field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status | httparse::Error::Token => "malformed request line",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "malformed HTTP version",
    })
}

/// A version token other than `HTTP/1.0` and `HTTP/1.1`. A later 1.x minor version is
/// processed as HTTP/1.1 (RFC 9110 §2.5); another major version gets 505; anything that
/// is not `HTTP/` DIGIT `.` DIGIT (RFC 9112 §2.3) is a 400. The fields after the line
/// are parsed in place: no copy of the buffer, no second parse of the request line.
fn other_version<'b, 'h>(
    buf: &'b [u8],
    start: usize,
    method: &'b str,
    target: &'b str,
    limits: &HeadLimits,
    storage: &'h mut [httparse::Header<'b>],
) -> Result<Option<Lines<'b, 'h>>, HeadError> {
    if target.len() > limits.max_uri_len {
        return Err(HeadError::UriTooLong);
    }
    // method SP target SP: httparse accepts exactly one SP after each.
    let version_at = start + method.len() + 1 + target.len() + 1;
    let rest = buf
        .get(version_at..)
        .ok_or(HeadError::BadRequest("malformed request line"))?;
    let (version, line_len) = match version_line(rest)? {
        Some(VersionLine::Http1x { version, len }) => (version, len),
        Some(VersionLine::OtherMajor) => return Err(HeadError::VersionNotSupported),
        // parse_with judges what has arrived so far.
        None => return Ok(None),
    };
    let fields_at = version_at + line_len;
    let fields = buf
        .get(fields_at..)
        .ok_or(HeadError::BadRequest("malformed request line"))?;
    match httparse::parse_headers(fields, storage) {
        Ok(httparse::Status::Complete((n, fields))) => Ok(Some(Lines {
            method,
            target,
            version,
            fields,
            len: fields_at + n,
        })),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::HeadTooLarge),
        Err(err) => {
            check_partial(buf, start, limits)?;
            Err(httparse_error(err))
        }
    }
}

/// What a version token and its line ending say.
#[derive(Debug, PartialEq, Eq)]
enum VersionLine {
    /// `HTTP/1.` DIGIT and a line ending, `len` bytes with the line ending. A minor
    /// version above 1 is processed as HTTP/1.1.
    Http1x {
        /// HTTP/1.0 or HTTP/1.1.
        version: Version,
        /// Bytes of the token and its line ending.
        len: usize,
    },
    /// `HTTP/` DIGIT [`.` DIGIT] with a major version other than 1.
    OtherMajor,
}

/// Reads `HTTP/` DIGIT `.` DIGIT followed by CRLF or LF (which one is judged with the
/// rest of the head) from the start of `rest`. `Ok(None)`: it may still become one.
fn version_line(rest: &[u8]) -> Result<Option<VersionLine>, HeadError> {
    let bad = HeadError::BadRequest("malformed HTTP version");
    const NAME: &[u8] = b"HTTP/";
    let have = rest.len().min(NAME.len());
    if rest[..have] != NAME[..have] {
        return Err(bad);
    }
    let Some(tail) = rest.get(NAME.len()..) else {
        return Ok(None);
    };
    match *tail {
        [] => Ok(None),
        [major, ..] if !major.is_ascii_digit() => Err(bad),
        [b'1'] | [b'1', b'.'] => Ok(None),
        [b'1', b'.', minor, ref end @ ..] if minor.is_ascii_digit() => {
            let version = if minor == b'0' {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            };
            let token = NAME.len() + 3;
            match *end {
                [] | [b'\r'] => Ok(None),
                [b'\r', b'\n', ..] => Ok(Some(VersionLine::Http1x {
                    version,
                    len: token + 2,
                })),
                [b'\n', ..] => Ok(Some(VersionLine::Http1x {
                    version,
                    len: token + 1,
                })),
                [b'\r', ..] => Err(HeadError::BadRequest("invalid line ending")),
                _ => Err(bad),
            }
        }
        [b'1', ..] => Err(bad),
        // A major version other than 1, alone (`HTTP/2`, as HTTP/2 and HTTP/3 name
        // themselves) or with a minor: 505 once the token has ended.
        [_] => Ok(None),
        [_, b'\r' | b'\n', ..] => Ok(Some(VersionLine::OtherMajor)),
        [_, b'.'] => Ok(None),
        [_, b'.', minor] if minor.is_ascii_digit() => Ok(None),
        [_, b'.', minor, b'\r' | b'\n', ..] if minor.is_ascii_digit() => {
            Ok(Some(VersionLine::OtherMajor))
        }
        _ => Err(bad),
    }
}

/// RFC 9112 §2.2: empty lines before the request line are ignored, up to
/// [`MAX_LEADING_EMPTY_LINES`]. Returns where the request line starts, or `None` when
/// nothing but (the start of) empty lines has arrived.
fn skip_empty_lines(buf: &[u8], limits: &HeadLimits) -> Result<Option<usize>, HeadError> {
    let mut at = 0;
    let mut lines = 0;
    loop {
        let step = match buf.get(at..).unwrap_or_default() {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] if limits.allow_lf_line_endings => 1,
            [b'\n', ..] => return Err(HeadError::BadRequest("bare LF in request head")),
            [] | [b'\r'] => return Ok(None),
            _ => return Ok(Some(at)),
        };
        lines += 1;
        if lines > MAX_LEADING_EMPTY_LINES {
            return Err(HeadError::BadRequest(
                "too many empty lines before the request line",
            ));
        }
        at += step;
    }
}

/// Which line endings a message head uses. One that mixes CRLF and a bare LF is read
/// differently by recipients that split lines on LF and those that split on CRLF: the
/// smuggling vector RFC 9112 §2.2 warns about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineEnds {
    /// Some line ends in CRLF.
    pub crlf: bool,
    /// Some line ends in an LF without CR.
    pub bare_lf: bool,
}

impl LineEnds {
    pub(crate) fn of(head: &[u8]) -> LineEnds {
        let mut ends = LineEnds {
            crlf: false,
            bare_lf: false,
        };
        let mut prev = 0u8;
        for &b in head {
            if b == b'\n' {
                if prev == b'\r' {
                    ends.crlf = true;
                } else {
                    ends.bare_lf = true;
                }
            }
            prev = b;
        }
        ends
    }
}

/// Every line of `head` must end in CRLF; with
/// [`allow_lf_line_endings`](HeadLimits::allow_lf_line_endings), every line may instead
/// end in a bare LF, but one head may not mix the two (see that setting for why).
fn check_line_endings(head: &[u8], limits: &HeadLimits) -> Result<(), HeadError> {
    let LineEnds { crlf, bare_lf } = LineEnds::of(head);
    if bare_lf && (crlf || !limits.allow_lf_line_endings) {
        return Err(HeadError::BadRequest("bare LF in request head"));
    }
    Ok(())
}

/// While a head is incomplete (or broken): is it already over a limit? The request line
/// starts at `buf[start..]`.
fn check_partial(buf: &[u8], start: usize, limits: &HeadLimits) -> Result<(), HeadError> {
    let line = buf.get(start..).unwrap_or_default();
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    // The target starts after the method's SP and runs while its bytes may be part of
    // one (what httparse accepts); a method that is not a token has no target to judge.
    if let Some(sp) = line.iter().position(|&b| b == b' ') {
        if sp > 0 && line[..sp].iter().all(|&b| framing::is_tchar(b)) {
            let target_len = line[sp + 1..]
                .iter()
                .take_while(|&&b| matches!(b, 0x21..=0x7e | 0x80..=0xff))
                .count();
            if target_len > limits.max_uri_len {
                return Err(HeadError::UriTooLong);
            }
        }
    }
    if buf.len() >= limits.max_head_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    Ok(())
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
    mut headers: HeaderMap,
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
    // RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host and use
    // the target's host; §3.3: an authority-form target is the target URI's authority.
    // Host is rewritten to it, so handlers, `headers()["host"]` and a proxy that forwards
    // the fields all see one host, the one `uri()` names.
    if let Some(authority) = uri.authority() {
        let authority = authority.as_str();
        if !valid_host(authority.as_bytes()) {
            return Err(HeadError::BadRequest("invalid authority in request target"));
        }
        let value = HeaderValue::from_str(authority)
            .map_err(|_| HeadError::BadRequest("invalid authority in request target"))?;
        headers.insert(header::HOST, value);
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
            ..HeadLimits::default()
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

    fn lenient() -> HeadLimits {
        HeadLimits {
            allow_lf_line_endings: true,
            ..HeadLimits::default()
        }
    }

    /// Every prefix of a head that parses is `Ok(None)`: a head arriving byte by byte is
    /// never refused early.
    fn assert_prefixes_need_more(bytes: &[u8], limits: &HeadLimits) {
        let (_, len) = parse_request_head(bytes, limits).unwrap().unwrap();
        for cut in 0..len {
            assert!(
                matches!(parse_request_head(&bytes[..cut], limits), Ok(None)),
                "{:?} cut at {cut}: {:?}",
                String::from_utf8_lossy(bytes),
                parse_request_head(&bytes[..cut], limits).map(|r| r.map(|(_, n)| n))
            );
        }
    }

    // Issue 13 (a): every version token shape gets a status; none may recurse (the old
    // code rewrote a digit in a copy of the buffer and parsed again, forever, on
    // `GET /a b HTTP/1.1`).
    #[test]
    fn version_tokens_get_a_status_without_recursion() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /a b HTTP/1.2\r\nHost: a\r\n\r\n", 400),
            (b"GET /a b c HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /a  HTTP/1.2\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.2 x\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.2 \r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.2.3\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.a\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/\r\nHost: a\r\n\r\n", 400),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.2\rx\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/22\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/2.0x\r\nHost: a\r\n\r\n", 400),
            (b"GET / XTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.9\r\n\r\n", 400),
            (b"GET / HTTP/1.2\r\nHost: a\r\nX: \x01\r\n\r\n", 400),
            (b"GET / HTTP/1.2\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
            (b"GET / HTTP/1.2\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/2\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/2.0\rx", 505),
            (b"PUT / HTTP/1.2\r\nHost: a\r\nExpect: tea\r\n\r\n", 417),
            (
                b"PUT / HTTP/1.2\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                501,
            ),
        ];
        for &(bytes, want) in cases {
            for limits in [HeadLimits::default(), lenient()] {
                let got = parse_request_head(bytes, &limits);
                assert_eq!(
                    got.as_ref().map_err(|e| e.status().as_u16()).err(),
                    Some(want),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    #[test]
    fn later_minor_versions_parse_in_place() {
        let bytes = b"POST /p HTTP/1.7\r\nHost: a\r\nContent-Length: 3\r\nX: y\r\n\r\nabc";
        let (head, len) = parse(bytes).unwrap().unwrap();
        assert_eq!(len, bytes.len() - 3);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.framing, BodyFraming::Length(3));
        assert_eq!(head.headers["x"], "y");
        assert!(head.keep_alive);
        assert_prefixes_need_more(bytes, &HeadLimits::default());
        // After empty lines, too (issue 13 (i)).
        let bytes = b"\r\n\r\nGET /q HTTP/1.9\r\nHost: a\r\n\r\n";
        let head = ok(bytes);
        assert_eq!(head.uri, "/q");
        assert_prefixes_need_more(bytes, &HeadLimits::default());
        // The field count and the target length are still bounded.
        let limits = HeadLimits {
            max_headers: 2,
            max_uri_len: 4,
            ..HeadLimits::default()
        };
        assert_eq!(
            parse_request_head(
                b"GET / HTTP/1.2\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
                &limits
            )
            .unwrap_err(),
            HeadError::HeadTooLarge
        );
        assert_eq!(
            parse_request_head(b"GET /abcd HTTP/1.2\r\nHost: a\r\n\r\n", &limits)
                .map(|r| r.is_some()),
            Err(HeadError::UriTooLong)
        );
        let limits = HeadLimits {
            max_head_bytes: 40,
            ..HeadLimits::default()
        };
        let big = b"GET / HTTP/1.2\r\nHost: a\r\nX: 0123456789012345\r\n\r\n";
        assert_eq!(
            parse_request_head(big, &limits).map(|r| r.is_some()),
            Err(HeadError::HeadTooLarge)
        );
        assert_eq!(
            parse_request_head(&big[..40], &limits).map(|r| r.is_some()),
            Err(HeadError::HeadTooLarge)
        );
    }

    // Issue 13 (d): a bare LF ends no line by default; with the setting, LF-only heads
    // are read, but never a head that mixes LF and CRLF.
    #[test]
    fn bare_lf_refused_unless_the_head_uses_lf_only() {
        let mixed: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.2\r\nHost: a\r\nX: y\nZ: w\r\n\r\n",
            b"GET / HTTP/1.2\nHost: a\r\n\r\n",
            // Still arriving: refused as soon as the bare LF is there.
            b"GET / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n",
            b"GET / HTTP/1.2\nHost: a\r\n",
        ];
        for &bytes in mixed {
            for limits in [HeadLimits::default(), lenient()] {
                assert_eq!(
                    parse_request_head(bytes, &limits).map(|r| r.is_some()),
                    Err(HeadError::BadRequest("bare LF in request head")),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        let lf_only: &[&[u8]] = &[
            b"GET / HTTP/1.1\nHost: a\nX: y\n\n",
            b"GET / HTTP/1.2\nHost: a\nX: y\n\n",
            b"GET / HTTP/1.0\n\n",
            b"\nGET / HTTP/1.1\nHost: a\nX: y\n\n",
        ];
        for &bytes in lf_only {
            assert_eq!(
                err(bytes),
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            let (head, len) = parse_request_head(bytes, &lenient()).unwrap().unwrap();
            assert_eq!(len, bytes.len());
            assert!(head.headers.contains_key("host") || head.version == Version::HTTP_10);
            assert_prefixes_need_more(bytes, &lenient());
        }
        // A bare LF in the body is the body's business.
        let bytes = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\na\n";
        let (_, len) = parse(bytes).unwrap().unwrap();
        assert_eq!(len, bytes.len() - 2);
    }

    // Issue 13 (i): empty lines before the request line, for any version, up to a bound.
    #[test]
    fn leading_empty_lines_are_bounded() {
        for version in ["HTTP/1.1", "HTTP/1.2", "HTTP/1.0"] {
            for lines in 1..=MAX_LEADING_EMPTY_LINES {
                let bytes = format!("{}GET / {version}\r\nHost: a\r\n\r\n", "\r\n".repeat(lines));
                let (head, len) = parse(bytes.as_bytes()).unwrap().unwrap();
                assert_eq!(len, bytes.len());
                assert_eq!(head.uri, "/");
            }
            let bytes = format!(
                "{}GET / {version}\r\nHost: a\r\n\r\n",
                "\r\n".repeat(MAX_LEADING_EMPTY_LINES + 1)
            );
            assert_eq!(err(bytes.as_bytes()), StatusCode::BAD_REQUEST);
            // Refused before the request line arrives.
            let only = "\r\n".repeat(MAX_LEADING_EMPTY_LINES + 1);
            assert_eq!(err(only.as_bytes()), StatusCode::BAD_REQUEST);
        }
        assert!(parse(b"\r\n\r").unwrap().is_none());
        assert_eq!(
            err(b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            err(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        let (_, len) = parse_request_head(b"\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &lenient())
            .unwrap()
            .unwrap();
        assert_eq!(len, 3 + 27);
    }

    // Issue 13 (j): the target's authority is the host (RFC 9112 §3.2.2, §3.3).
    #[test]
    fn target_authority_replaces_host() {
        let head = ok(b"GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n");
        assert_eq!(head.headers.get_all("host").iter().count(), 1);
        assert_eq!(head.headers["host"], "b.example");
        assert_eq!(head.uri.host(), Some("b.example"));
        let head = ok(b"GET https://b.example:8443/x HTTP/1.1\r\nHost: b.example\r\n\r\n");
        assert_eq!(head.headers["host"], "b.example:8443");
        let head = ok(b"GET http://[::1]:80/x HTTP/1.0\r\n\r\n");
        assert_eq!(head.headers["host"], "[::1]:80");
        let head = ok(b"CONNECT b.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n");
        assert_eq!(head.headers["host"], "b.example:443");
        // Origin form keeps Host as sent.
        assert_eq!(
            ok(b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n").headers["host"],
            "a.example"
        );
        // Host is still required and still checked on HTTP/1.1 (RFC 9112 §3.2).
        for bad in [
            &b"GET http://b.example/x HTTP/1.1\r\n\r\n"[..],
            b"GET http://b.example/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET http://b.example/x HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET http://b.example:/x HTTP/1.1\r\nHost: b.example\r\n\r\n",
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
    fn valid_heads_are_never_refused_early() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"\r\nPOST /x?y HTTP/1.0\r\nContent-Length: 1\r\n\r\n",
            b"OPTIONS * HTTP/1.3\r\nHost: a\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
            b"PUT http://a/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_prefixes_need_more(bytes, &HeadLimits::default());
            assert_prefixes_need_more(bytes, &lenient());
            let mut more = bytes.to_vec();
            more.extend_from_slice(b"GET / HTTP/9.9\n\r\x00");
            let (a, n) = parse(bytes).unwrap().unwrap();
            let (b, m) = parse(&more).unwrap().unwrap();
            assert_eq!((n, &a.uri, &a.headers), (m, &b.uri, &b.headers));
        }
    }
}
