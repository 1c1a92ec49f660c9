//! Message body length (RFC 9112 §6) and the chunked transfer coding (§7.1), sans-IO.
use http::header::{self, HeaderMap};
use http::Version;

use super::head::{comma_tokens, HeadError};

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// The body runs until the peer closes the connection (responses only).
    CloseDelimited,
}

/// Decides how a request body is delimited, refusing every ambiguity that could let a
/// request be smuggled past another HTTP/1 hop (RFC 9112 §6.1–§6.3).
pub fn request_framing(headers: &HeaderMap, version: Version) -> Result<BodyFraming, HeadError> {
    let has_te = headers.contains_key(header::TRANSFER_ENCODING);
    let content_length = content_length(headers)?;
    if has_te {
        if content_length.is_some() {
            return Err(HeadError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(HeadError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        return transfer_coding_is_chunked(headers).map(|()| BodyFraming::Chunked);
    }
    Ok(match content_length {
        None | Some(0) => BodyFraming::Empty,
        Some(n) => BodyFraming::Length(n),
    })
}

/// Transfer-Encoding must end in exactly one `chunked`; anything else we cannot decode.
fn transfer_coding_is_chunked(headers: &HeaderMap) -> Result<(), HeadError> {
    let mut chunked_seen = false;
    let mut last_is_chunked = false;
    let mut unknown = false;
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let mut any = false;
        for coding in comma_tokens(value.as_bytes()) {
            any = true;
            // Parameters (";q=..") are not allowed on chunked; treat the name only.
            let name = coding.split(|&b| b == b';').next().unwrap_or(coding);
            let name = super::head::trim_ows(name);
            if name.eq_ignore_ascii_case(b"chunked") {
                if chunked_seen || name.len() != coding.len() {
                    return Err(HeadError::BadRequest("chunked applied more than once"));
                }
                chunked_seen = true;
                last_is_chunked = true;
            } else {
                if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                    return Err(HeadError::BadRequest("invalid transfer coding"));
                }
                unknown = true;
                last_is_chunked = false;
            }
        }
        if !any {
            return Err(HeadError::BadRequest("empty Transfer-Encoding"));
        }
    }
    if chunked_seen && !last_is_chunked {
        return Err(HeadError::BadRequest(
            "chunked is not the final transfer coding",
        ));
    }
    if unknown {
        return Err(HeadError::NotImplemented("unsupported transfer coding"));
    }
    if !chunked_seen {
        return Err(HeadError::BadRequest(
            "chunked is not the final transfer coding",
        ));
    }
    Ok(())
}

/// The Content-Length, if any. Several fields or list members are accepted only when
/// they are all the same valid number (RFC 9110 §8.6).
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let mut any = false;
        for member in value.as_bytes().split(|&b| b == b',') {
            let member = super::head::trim_ows(member);
            any = true;
            let n = parse_decimal(member).ok_or(HeadError::BadRequest("invalid Content-Length"))?;
            match found {
                Some(prev) if prev != n => {
                    return Err(HeadError::BadRequest("conflicting Content-Length values"))
                }
                _ => found = Some(n),
            }
        }
        if !any {
            return Err(HeadError::BadRequest("invalid Content-Length"));
        }
    }
    Ok(found)
}

/// 1*DIGIT as a u64; no sign, no spaces, no overflow.
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// RFC 9110 §5.6.2: a byte allowed in a token.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// A chunk size that is not hex, overflows, or a malformed line.
    BadChunk(&'static str),
    /// Chunk extensions or trailers larger than the bound.
    TooLarge,
}

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkedError::BadChunk(why) => write!(f, "bad chunked encoding: {why}"),
            ChunkedError::TooLarge => f.write_str("chunk extensions or trailers too large"),
        }
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    SizeBws,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailers,
    Done,
}

/// One step of progress made by [`ChunkedDecoder::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that were used.
    pub consumed: usize,
    /// Where in the input the body data of this step lies (possibly empty).
    pub data: std::ops::Range<usize>,
}

/// A sans-IO decoder of the chunked transfer coding.
///
/// Feed it the bytes that follow the head; it reports which of them are body data.
/// Chunk extensions are skipped (bounded); trailers are kept for
/// [`take_trailers`](ChunkedDecoder::take_trailers), without the fields that must not
/// be trailers ([`is_forbidden_trailer`]).
///
/// ```
/// use spindle::h1::framing::ChunkedDecoder;
/// let input = b"5;ext=1\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n";
/// let mut dec = ChunkedDecoder::new(4096);
/// let mut body = Vec::new();
/// let mut at = 0;
/// while !dec.is_done() {
///     let step = dec.decode(&input[at..]).unwrap();
///     body.extend_from_slice(&input[at..][step.data.clone()]);
///     at += step.consumed;
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(dec.take_trailers().unwrap()["x-sum"], "5");
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    /// At least one digit of the current chunk size has been read.
    size_digits: bool,
    /// Bytes of extensions and trailers seen so far, against `limit`.
    overhead: usize,
    limit: usize,
    trailer_bytes: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl ChunkedDecoder {
    /// A decoder allowing `limit` bytes of chunk extensions plus trailers per body.
    pub fn new(limit: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            size_digits: false,
            overhead: 0,
            limit,
            trailer_bytes: Vec::new(),
            trailers: None,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes still owed by the current chunk (zero outside chunk data). A caller may
    /// read up to this many bytes straight into its own buffer and report them with
    /// [`data_read`](ChunkedDecoder::data_read).
    pub fn data_remaining(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    /// Records `n` bytes of chunk data that the caller read directly.
    pub fn data_read(&mut self, n: usize) {
        debug_assert!(self.state == State::Data && n as u64 <= self.size);
        self.size -= n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
    }

    /// The trailer fields, once [`is_done`](ChunkedDecoder::is_done).
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Consumes framing bytes from `input` up to and including at most one run of body
    /// data, and says which bytes of `input` were data.
    pub fn decode(&mut self, input: &[u8]) -> Result<Progress, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size => match hex_value(b) {
                    Some(v) => {
                        // RFC 9112 §7.1: chunk-size = 1*HEXDIG, so leading zeros are
                        // valid and the digit count is not a bound. A zero that adds no
                        // value counts against the overhead limit, which bounds the
                        // line; a value past 64 bits is refused.
                        if v == 0 && self.size == 0 && self.size_digits {
                            self.count_overhead(1)?;
                        }
                        if self.size > u64::MAX >> 4 {
                            return Err(ChunkedError::BadChunk("chunk size overflows"));
                        }
                        self.size = (self.size << 4) | u64::from(v);
                        self.size_digits = true;
                    }
                    None if !self.size_digits => {
                        return Err(ChunkedError::BadChunk("chunk size is not hex"))
                    }
                    None => match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' => self.state = State::Extension,
                        b' ' | b'\t' => self.state = State::SizeBws,
                        _ => return Err(ChunkedError::BadChunk("invalid chunk size line")),
                    },
                },
                State::SizeBws => match b {
                    b' ' | b'\t' => self.count_overhead(1)?,
                    b';' => self.state = State::Extension,
                    _ => return Err(ChunkedError::BadChunk("invalid chunk size line")),
                },
                State::Extension => match b {
                    b'\r' => self.state = State::SizeLf,
                    // A bare LF or other control byte here is how requests get smuggled
                    // past lenient parsers: refuse it.
                    b'\t' | 0x20..=0x7e | 0x80..=0xff => self.count_overhead(1)?,
                    _ => return Err(ChunkedError::BadChunk("invalid chunk extension")),
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::BadChunk("chunk size line not ended by CRLF"));
                    }
                    self.size_digits = false;
                    self.state = if self.size == 0 {
                        State::Trailers
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let n = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.data_read(n);
                    return Ok(Progress {
                        consumed: i + n,
                        data: i..i + n,
                    });
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkedError::BadChunk("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::BadChunk("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size;
                }
                State::Trailers => {
                    self.count_overhead(1)?;
                    self.trailer_bytes.push(b);
                    if self.trailer_bytes.ends_with(b"\n") {
                        let t = &self.trailer_bytes;
                        if t == b"\r\n" || t.ends_with(b"\r\n\r\n") {
                            self.finish_trailers()?;
                            return Ok(Progress {
                                consumed: i + 1,
                                data: 0..0,
                            });
                        }
                        if !t.ends_with(b"\r\n") {
                            return Err(ChunkedError::BadChunk("bare LF in trailers"));
                        }
                    }
                }
                State::Done => {
                    return Ok(Progress {
                        consumed: i,
                        data: 0..0,
                    })
                }
            }
            i += 1;
        }
        Ok(Progress {
            consumed: i,
            data: 0..0,
        })
    }

    fn count_overhead(&mut self, n: usize) -> Result<(), ChunkedError> {
        self.overhead += n;
        if self.overhead > self.limit {
            return Err(ChunkedError::TooLarge);
        }
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), ChunkedError> {
        self.state = State::Done;
        let bytes = std::mem::take(&mut self.trailer_bytes);
        if bytes == b"\r\n" {
            return Ok(());
        }
        let mut storage = [httparse::EMPTY_HEADER; 32];
        let parsed = match httparse::parse_headers(&bytes, &mut storage) {
            Ok(httparse::Status::Complete((_, fields))) => fields,
            Err(httparse::Error::TooManyHeaders) => return Err(ChunkedError::TooLarge),
            _ => return Err(ChunkedError::BadChunk("malformed trailer section")),
        };
        let mut map = HeaderMap::with_capacity(parsed.len());
        for field in parsed {
            let name = http::HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| ChunkedError::BadChunk("invalid trailer name"))?;
            let value = http::HeaderValue::from_bytes(super::head::trim_ows(field.value))
                .map_err(|_| ChunkedError::BadChunk("invalid trailer value"))?;
            // RFC 9110 §6.5.2 lets a recipient discard a trailer field; one that must not
            // be a trailer (§6.5.1) is discarded here, so no handler, client caller or
            // proxy acts on it or forwards it. Refusing the message instead would fail a
            // body that has already been handed out in full.
            if is_forbidden_trailer(&name) {
                log::debug!("dropped a {name} field sent as a trailer");
                continue;
            }
            map.append(name, value);
        }
        self.trailers = Some(map);
        Ok(())
    }
}

/// Whether a field must not be sent, and is never accepted, as a trailer field.
///
/// RFC 9110 §6.5.1: many fields cannot be processed outside the header section, because
/// their evaluation is needed before the content arrives: those that describe message
/// framing, routing, request modifiers, authentication, response control data, or how
/// to process the content. By those categories:
///
/// - framing and connection control: `Content-Length`, `Transfer-Encoding`, `Trailer`
///   (§6.6.2), `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`;
/// - routing: `Host`;
/// - request modifiers, controls (§7.6, §10.1) and conditionals (§13.1):
///   `Cache-Control`, `Expect`, `Max-Forwards`, `Pragma`, `Range`, `If-Match`,
///   `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`, `If-Range`;
/// - authentication (§11, RFC 6265): `Authorization`, `Proxy-Authorization`,
///   `WWW-Authenticate`, `Proxy-Authenticate`, `Cookie`, `Set-Cookie`;
/// - response control data (§10.2, RFC 9111): `Age`, `Date`, `Expires`, `Location`,
///   `Retry-After`, `Vary`, `Warning`;
/// - how to process the content (§8): `Content-Encoding`, `Content-Type`,
///   `Content-Range`.
///
/// [`ChunkedDecoder`] drops such fields from the trailers it hands out.
///
/// ```
/// use spindle::h1::framing::is_forbidden_trailer;
/// use spindle::http::HeaderName;
/// assert!(is_forbidden_trailer(&HeaderName::from_static("content-length")));
/// assert!(!is_forbidden_trailer(&HeaderName::from_static("x-checksum")));
/// ```
pub fn is_forbidden_trailer(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length"
            | "transfer-encoding"
            | "trailer"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "upgrade"
            | "host"
            | "cache-control"
            | "expect"
            | "max-forwards"
            | "pragma"
            | "range"
            | "if-match"
            | "if-none-match"
            | "if-modified-since"
            | "if-unmodified-since"
            | "if-range"
            | "authorization"
            | "proxy-authorization"
            | "www-authenticate"
            | "proxy-authenticate"
            | "cookie"
            | "set-cookie"
            | "age"
            | "date"
            | "expires"
            | "location"
            | "retry-after"
            | "vary"
            | "warning"
            | "content-encoding"
            | "content-type"
            | "content-range"
    )
}

/// The value of one hexadecimal digit (either case).
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Writes a chunk-size line (`<hex>\r\n`) for `len` bytes of chunk data.
pub fn write_chunk_size(out: &mut Vec<u8>, len: usize) {
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in fields {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn framing(fields: &[(&str, &str)]) -> Result<BodyFraming, HeadError> {
        request_framing(&headers(fields), Version::HTTP_11)
    }

    #[test]
    fn body_length_rules() {
        assert_eq!(framing(&[]), Ok(BodyFraming::Empty));
        assert_eq!(
            framing(&[("content-length", "10")]),
            Ok(BodyFraming::Length(10))
        );
        assert_eq!(framing(&[("content-length", "0")]), Ok(BodyFraming::Empty));
        assert_eq!(
            framing(&[("content-length", "5, 5")]),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing(&[("content-length", "5"), ("content-length", "5")]),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing(&[("transfer-encoding", "chunked")]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(&[("transfer-encoding", "Chunked")]),
            Ok(BodyFraming::Chunked)
        );
    }

    #[test]
    fn smuggling_attempts_refused() {
        let bad = |fields: &[(&str, &str)]| framing(fields).unwrap_err().status().as_u16();
        assert_eq!(
            bad(&[("content-length", "5"), ("content-length", "6")]),
            400
        );
        assert_eq!(bad(&[("content-length", "5, 6")]), 400);
        assert_eq!(bad(&[("content-length", "+5")]), 400);
        assert_eq!(bad(&[("content-length", "-1")]), 400);
        assert_eq!(bad(&[("content-length", "0x5")]), 400);
        assert_eq!(bad(&[("content-length", "")]), 400);
        assert_eq!(bad(&[("content-length", "99999999999999999999")]), 400);
        assert_eq!(
            bad(&[("transfer-encoding", "chunked"), ("content-length", "5")]),
            400
        );
        assert_eq!(bad(&[("transfer-encoding", "chunked, gzip")]), 400);
        assert_eq!(bad(&[("transfer-encoding", "chunked, chunked")]), 400);
        assert_eq!(
            bad(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]),
            400
        );
        assert_eq!(bad(&[("transfer-encoding", "")]), 400);
        assert_eq!(bad(&[("transfer-encoding", "xchunked")]), 501);
        assert_eq!(bad(&[("transfer-encoding", "gzip, chunked")]), 501);
        assert_eq!(bad(&[("transfer-encoding", "identity")]), 501);
        assert_eq!(
            request_framing(
                &headers(&[("transfer-encoding", "chunked")]),
                Version::HTTP_10
            )
            .unwrap_err()
            .status()
            .as_u16(),
            400
        );
    }

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), ChunkedError> {
        let mut dec = ChunkedDecoder::new(1024);
        let mut body = Vec::new();
        let mut fed = 0;
        let mut buf: Vec<u8> = Vec::new();
        while !dec.is_done() {
            if buf.is_empty() {
                if fed == input.len() {
                    panic!("decoder wants more than the input");
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            let p = dec.decode(&buf)?;
            body.extend_from_slice(&buf[p.data.clone()]);
            buf.drain(..p.consumed);
        }
        Ok((body, dec.take_trailers()))
    }

    #[test]
    fn decodes_chunks_in_any_split() {
        let input = b"4\r\nWiki\r\n5;name=value;x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        for step in 1..input.len() {
            let (body, trailers) = decode_all(input, step).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert!(trailers.is_none());
        }
    }

    #[test]
    fn trailers_are_kept() {
        let input = b"1\r\na\r\n0\r\nX-Checksum: never\r\nX-A: b\r\n\r\n";
        for step in 1..input.len() {
            let (body, trailers) = decode_all(input, step).unwrap();
            assert_eq!(body, b"a");
            let trailers = trailers.unwrap();
            assert_eq!(trailers["x-checksum"], "never");
            assert_eq!(trailers["x-a"], "b");
        }
    }

    // Issue 13 (h): fields that must not be trailers (RFC 9110 §6.5.1) are dropped.
    #[test]
    fn forbidden_trailer_fields_are_dropped() {
        let input = b"1\r\na\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nTrailer: x-a\r\nAuthorization: x\r\nSet-Cookie: a=b\r\nContent-Type: text/html\r\nExpires: never\r\nX-A: b\r\nCONTENT-ENCODING: gzip\r\nX-A: c\r\n\r\n";
        for step in 1..input.len() {
            let (body, trailers) = decode_all(input, step).unwrap();
            assert_eq!(body, b"a");
            let trailers = trailers.unwrap();
            let names: Vec<&str> = trailers.keys().map(|k| k.as_str()).collect();
            assert_eq!(names, ["x-a"]);
            let values: Vec<_> = trailers.get_all("x-a").iter().collect();
            assert_eq!(values, ["b", "c"]);
        }
        // Only forbidden fields: an empty map, the body still complete.
        let (body, trailers) = decode_all(b"0\r\nHost: a\r\n\r\n", 64).unwrap();
        assert!(body.is_empty());
        assert!(trailers.unwrap().is_empty());
        for name in [
            "content-length",
            "host",
            "te",
            "if-none-match",
            "www-authenticate",
            "age",
        ] {
            assert!(
                is_forbidden_trailer(&http::HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in [
            "x-checksum",
            "server-timing",
            "grpc-status",
            "digest",
            "etag",
        ] {
            assert!(
                !is_forbidden_trailer(&http::HeaderName::from_static(name)),
                "{name}"
            );
        }
    }

    // Issue 13 (g): leading zeros are valid in a chunk size (1*HEXDIG); the value may
    // not overflow, and the zeros count against the overhead limit.
    #[test]
    fn chunk_sizes_with_leading_zeros() {
        for input in [
            &b"00000000000000003\r\nabc\r\n0\r\n\r\n"[..],
            b"0000000000000000000000000000000003\r\nabc\r\n0000000000000000000\r\n\r\n",
            b"03;x=1\r\nabc\r\n00\r\n\r\n",
        ] {
            for step in 1..input.len() {
                assert_eq!(decode_all(input, step).unwrap().0, b"abc");
            }
        }
        // 16 significant digits fit in 64 bits; 17 do not, however many zeros lead.
        let mut dec = ChunkedDecoder::new(1024);
        let step = dec.decode(b"000ffffffffffffffff\r\nab").unwrap();
        assert_eq!(step.data, 21..23);
        assert_eq!(dec.data_remaining(), u64::MAX - 2);
        for bad in [&b"10000000000000000\r\n"[..], b"000100000000000000000\r\n"] {
            assert_eq!(
                decode_all(bad, 64),
                Err(ChunkedError::BadChunk("chunk size overflows"))
            );
        }
        let zeros = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(1100));
        assert_eq!(
            decode_all(zeros.as_bytes(), 64),
            Err(ChunkedError::TooLarge)
        );
        let zeros = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(1000));
        assert_eq!(decode_all(zeros.as_bytes(), 64).unwrap().0, b"a");
    }

    #[test]
    fn bad_chunks_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"-5\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"0\r\nX: a\nY: b\r\n\r\n",
        ] {
            assert!(
                matches!(decode_all(bad, 64), Err(ChunkedError::BadChunk(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            decode_all(b"5 ;x\r\nhello\r\n0\r\n\r\n", 64).unwrap().0,
            b"hello"
        );
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(2000));
        assert_eq!(
            decode_all(long_ext.as_bytes(), 64),
            Err(ChunkedError::TooLarge)
        );
        let many_exts = "1;e\r\na\r\n".repeat(1200) + "0\r\n\r\n";
        assert_eq!(
            decode_all(many_exts.as_bytes(), 64),
            Err(ChunkedError::TooLarge)
        );
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "t".repeat(2000));
        assert_eq!(
            decode_all(long_trailer.as_bytes(), 64),
            Err(ChunkedError::TooLarge)
        );
    }

    #[test]
    fn chunk_size_lines() {
        let mut out = Vec::new();
        write_chunk_size(&mut out, 0);
        write_chunk_size(&mut out, 255);
        write_chunk_size(&mut out, 0x10000);
        assert_eq!(out, b"0\r\nff\r\n10000\r\n");
    }
}
