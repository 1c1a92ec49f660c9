//! Field blocks: reassembly across HEADERS + CONTINUATION, the HTTP/2 field rules
//! (RFC 9113 §8.2, §8.3) and mapping to and from `http` crate types.
//!
//! ```
//! use spindle::h2::headers::{decode_request, encode_request};
//! use spindle::h2::hpack::{Decoder, Encoder};
//! use spindle::h2::StreamId;
//!
//! let req = http::Request::get("https://example.com/search?q=1")
//!     .header("accept", "text/html")
//!     .body(())
//!     .unwrap();
//! let mut block = Vec::new();
//! encode_request(&mut Encoder::new(), &req, &mut block);
//!
//! let got = decode_request(&mut Decoder::new(), StreamId::new(1), &block).unwrap();
//! assert_eq!(got.method(), http::Method::GET);
//! assert_eq!(got.uri(), "https://example.com/search?q=1");
//! assert_eq!(got.headers()["accept"], "text/html");
//! assert_eq!(got.version(), http::Version::HTTP_2);
//! ```
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

use super::error::{H2Error, Malformed, Violation};
use super::frame::{Frame, StreamId};
use super::hpack::{self, Decoder, DecoderError, Encoder, Field, Name, Pseudo, Value};
use super::Reason;

/// Default bound on a reassembled field block (HEADERS + CONTINUATION payloads): 64 KiB.
pub const DEFAULT_MAX_BLOCK_SIZE: usize = 64 * 1024;

/// Default bound on the number of CONTINUATION frames in one block.
pub const DEFAULT_MAX_CONTINUATIONS: usize = 64;

/// A complete field block, ready for HPACK decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBlock<'a> {
    /// The stream of the HEADERS or PUSH_PROMISE frame.
    pub stream_id: StreamId,
    /// The promised stream when the block came from PUSH_PROMISE.
    pub promised_id: Option<StreamId>,
    /// END_STREAM of the HEADERS frame.
    pub end_stream: bool,
    /// The HPACK-encoded block.
    pub block: &'a [u8],
}

/// What [`BlockAssembler::push`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assembled<'a> {
    /// Not a field-block frame: the caller handles it.
    NotHeaders,
    /// Part of a block; CONTINUATION frames must follow.
    Incomplete,
    /// A complete block.
    Complete(HeaderBlock<'a>),
}

#[derive(Debug, Clone, Copy)]
struct Open {
    stream_id: StreamId,
    promised_id: Option<StreamId>,
    end_stream: bool,
    continuations: usize,
}

/// Reassembles field blocks split over HEADERS (or PUSH_PROMISE) and CONTINUATION frames,
/// enforcing RFC 9113 §6.10 and a bound on the total size and the number of frames.
/// A block that fits one frame is returned without copying.
///
/// Feed it every frame, in order, before handling the frame yourself.
///
/// ```
/// use spindle::h2::frame::{Continuation, Frame, Headers, StreamId};
/// use spindle::h2::headers::{Assembled, BlockAssembler};
/// let id = StreamId::new(1);
/// let mut asm = BlockAssembler::new();
/// let h = Headers { stream_id: id, fragment: &[0x82], end_stream: true, end_headers: false,
///                   priority: None, pad_len: None };
/// assert_eq!(asm.push(&Frame::Headers(h)).unwrap(), Assembled::Incomplete);
/// let c = Continuation { stream_id: id, fragment: &[0x84], end_headers: true };
/// match asm.push(&Frame::Continuation(c)).unwrap() {
///     Assembled::Complete(b) => assert_eq!(b.block, [0x82, 0x84]),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
pub struct BlockAssembler {
    buf: Vec<u8>,
    open: Option<Open>,
    max_size: usize,
    max_continuations: usize,
}

impl Default for BlockAssembler {
    fn default() -> BlockAssembler {
        BlockAssembler::new()
    }
}

impl BlockAssembler {
    /// An assembler with the default bounds.
    pub fn new() -> BlockAssembler {
        BlockAssembler {
            buf: Vec::new(),
            open: None,
            max_size: DEFAULT_MAX_BLOCK_SIZE,
            max_continuations: DEFAULT_MAX_CONTINUATIONS,
        }
    }

    /// Bound the total size of a block.
    pub fn set_max_block_size(&mut self, max: usize) {
        self.max_size = max;
    }

    /// Bound the number of CONTINUATION frames per block (against CONTINUATION floods of
    /// empty frames).
    pub fn set_max_continuations(&mut self, max: usize) {
        self.max_continuations = max;
    }

    /// True while a block is open and only CONTINUATION frames on its stream may arrive.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    fn too_large() -> H2Error {
        H2Error::connection(Reason::EnhanceYourCalm, Violation::HeaderBlockTooLarge)
    }

    /// Feed one frame. Errors are connection errors: a frame other than CONTINUATION on the
    /// same stream while a block is open, a CONTINUATION with no open block (both
    /// PROTOCOL_ERROR), or a block over the bounds (ENHANCE_YOUR_CALM; the block cannot be
    /// skipped without losing the HPACK context).
    pub fn push<'s, 'f: 's>(&'s mut self, frame: &Frame<'f>) -> Result<Assembled<'s>, H2Error> {
        let unexpected =
            || H2Error::connection(Reason::ProtocolError, Violation::ExpectedContinuation);
        if let Some(mut open) = self.open {
            let c = match frame {
                Frame::Continuation(c) if c.stream_id == open.stream_id => c,
                _ => return Err(unexpected()),
            };
            open.continuations += 1;
            if open.continuations > self.max_continuations
                || self.buf.len() + c.fragment.len() > self.max_size
            {
                self.open = None;
                return Err(Self::too_large());
            }
            self.buf.extend_from_slice(c.fragment);
            if !c.end_headers {
                self.open = Some(open);
                return Ok(Assembled::Incomplete);
            }
            self.open = None;
            return Ok(Assembled::Complete(HeaderBlock {
                stream_id: open.stream_id,
                promised_id: open.promised_id,
                end_stream: open.end_stream,
                block: &self.buf,
            }));
        }
        let (stream_id, promised_id, end_stream, end_headers, fragment) = match frame {
            Frame::Headers(h) => (h.stream_id, None, h.end_stream, h.end_headers, h.fragment),
            Frame::PushPromise(p) => (
                p.stream_id,
                Some(p.promised_id),
                false,
                p.end_headers,
                p.fragment,
            ),
            Frame::Continuation(_) => return Err(unexpected()),
            _ => return Ok(Assembled::NotHeaders),
        };
        if fragment.len() > self.max_size {
            return Err(Self::too_large());
        }
        if end_headers {
            return Ok(Assembled::Complete(HeaderBlock {
                stream_id,
                promised_id,
                end_stream,
                block: fragment,
            }));
        }
        self.buf.clear();
        self.buf.extend_from_slice(fragment);
        self.open = Some(Open {
            stream_id,
            promised_id,
            end_stream,
            continuations: 0,
        });
        Ok(Assembled::Incomplete)
    }
}

/// The `:protocol` pseudo-header of an extended CONNECT request (RFC 8441), stored in the
/// request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol(pub HeaderValue);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
    Trailers,
}

struct Collect {
    kind: Kind,
    err: Option<Malformed>,
    seen_regular: bool,
    method: Option<HeaderValue>,
    scheme: Option<HeaderValue>,
    authority: Option<HeaderValue>,
    path: Option<HeaderValue>,
    protocol: Option<HeaderValue>,
    status: Option<HeaderValue>,
    headers: HeaderMap,
}

/// True for the connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2).
fn is_connection_specific(h: &HeaderName) -> bool {
    h == header::CONNECTION
        || h == header::TRANSFER_ENCODING
        || h == header::UPGRADE
        || h.as_str() == "keep-alive"
        || h.as_str() == "proxy-connection"
}

/// RFC 9113 §8.2.1: no leading or trailing whitespace (NUL, CR, LF are already excluded by
/// `HeaderValue`).
fn value_ok(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => !matches!(f, b' ' | b'\t') && !matches!(l, b' ' | b'\t'),
        _ => true,
    }
}

impl Collect {
    fn new(kind: Kind) -> Collect {
        Collect {
            kind,
            err: None,
            seen_regular: false,
            method: None,
            scheme: None,
            authority: None,
            path: None,
            protocol: None,
            status: None,
            headers: HeaderMap::new(),
        }
    }

    fn field(&mut self, f: Field) {
        if self.err.is_none() {
            if let Err(e) = self.check(f) {
                self.err = Some(e);
            }
        }
    }

    fn check(&mut self, f: Field) -> Result<(), Malformed> {
        let value = match f.value {
            Value::Valid(v) if value_ok(&v) => v,
            _ => return Err(Malformed::InvalidValue),
        };
        match f.name {
            Name::Pseudo(p) => {
                if self.kind == Kind::Trailers {
                    return Err(Malformed::PseudoInTrailers);
                }
                if self.seen_regular {
                    return Err(Malformed::PseudoAfterRegular);
                }
                let slot = match (self.kind, p) {
                    (Kind::Request, Pseudo::Method) => &mut self.method,
                    (Kind::Request, Pseudo::Scheme) => &mut self.scheme,
                    (Kind::Request, Pseudo::Authority) => &mut self.authority,
                    (Kind::Request, Pseudo::Path) => &mut self.path,
                    (Kind::Request, Pseudo::Protocol) => &mut self.protocol,
                    (Kind::Response, Pseudo::Status) => &mut self.status,
                    _ => return Err(Malformed::UnknownPseudo),
                };
                if slot.is_some() {
                    return Err(Malformed::DuplicatePseudo);
                }
                *slot = Some(value);
            }
            Name::Header(h) => {
                self.seen_regular = true;
                if is_connection_specific(&h) {
                    return Err(Malformed::ConnectionSpecific);
                }
                if h == header::TE && !value.as_bytes().eq_ignore_ascii_case(b"trailers") {
                    return Err(Malformed::InvalidTe);
                }
                self.headers.append(h, value);
            }
            Name::Other(b) => {
                return Err(if b.first() == Some(&b':') {
                    if self.kind == Kind::Trailers {
                        Malformed::PseudoInTrailers
                    } else {
                        Malformed::UnknownPseudo
                    }
                } else if b.iter().any(u8::is_ascii_uppercase) {
                    Malformed::UppercaseName
                } else {
                    Malformed::InvalidName
                });
            }
        }
        Ok(())
    }
}

fn decode_block(
    dec: &mut Decoder,
    id: StreamId,
    block: &[u8],
    kind: Kind,
) -> Result<Collect, H2Error> {
    let mut c = Collect::new(kind);
    match dec.decode(block, |f| c.field(f)) {
        Ok(()) => {}
        Err(e @ (DecoderError::HeaderListTooLarge | DecoderError::StringTooLong)) => {
            let _ = e;
            return Err(H2Error::stream(
                id,
                Reason::ProtocolError,
                Violation::HeaderListTooLarge,
            ));
        }
        Err(e) => {
            return Err(H2Error::connection(
                Reason::CompressionError,
                Violation::Compression(e),
            ));
        }
    }
    match c.err {
        Some(m) => Err(malformed(id, m)),
        None => Ok(c),
    }
}

fn malformed(id: StreamId, m: Malformed) -> H2Error {
    H2Error::stream(id, Reason::ProtocolError, Violation::Malformed(m))
}

/// Decode a request field block into a request head (RFC 9113 §8.3.1).
///
/// HPACK failures are connection errors (COMPRESSION_ERROR). A malformed request or one
/// over the header-list limit is a stream error (PROTOCOL_ERROR, with
/// [`Violation::Malformed`] or [`Violation::HeaderListTooLarge`]; a server may answer the
/// latter with 431). The HPACK context stays valid after stream errors.
///
/// Without `:authority`, a `Host` header supplies the URI's authority; with neither, the
/// URI is the path alone. The version is `HTTP/2`. An extended CONNECT's `:protocol` is
/// stored as a [`Protocol`] extension.
pub fn decode_request(
    dec: &mut Decoder,
    id: StreamId,
    block: &[u8],
) -> Result<Request<()>, H2Error> {
    let c = decode_block(dec, id, block, Kind::Request)?;
    let bad = |m| malformed(id, m);
    let method_v = c.method.ok_or(bad(Malformed::MissingPseudo))?;
    let method =
        Method::from_bytes(method_v.as_bytes()).map_err(|_| bad(Malformed::InvalidMethod))?;
    if let (Some(a), Some(h)) = (&c.authority, c.headers.get(header::HOST)) {
        if !a.as_bytes().eq_ignore_ascii_case(h.as_bytes()) {
            return Err(bad(Malformed::InvalidUri));
        }
    }
    let uri = if method == Method::CONNECT && c.protocol.is_none() {
        // §8.5: only :authority.
        if c.scheme.is_some() || c.path.is_some() {
            return Err(bad(Malformed::InvalidConnect));
        }
        let a = c.authority.as_ref().ok_or(bad(Malformed::InvalidConnect))?;
        Uri::try_from(a.as_bytes()).map_err(|_| bad(Malformed::InvalidUri))?
    } else {
        if c.protocol.is_some() && method != Method::CONNECT {
            return Err(bad(Malformed::InvalidProtocol));
        }
        let scheme = c.scheme.as_ref().ok_or(bad(Malformed::MissingPseudo))?;
        let path = c.path.as_ref().ok_or(bad(Malformed::MissingPseudo))?;
        let p = path.as_bytes();
        if p.is_empty() || (p == b"*" && method != Method::OPTIONS) {
            return Err(bad(Malformed::InvalidPath));
        }
        if c.protocol.is_some() && c.authority.is_none() {
            return Err(bad(Malformed::InvalidConnect));
        }
        let authority = c.authority.as_ref().or_else(|| c.headers.get(header::HOST));
        let mut b = Uri::builder();
        if let Some(a) = authority {
            b = b.scheme(scheme.as_bytes()).authority(a.as_bytes());
        } else if p[0] != b'/' && p != b"*" {
            return Err(bad(Malformed::InvalidPath));
        }
        b.path_and_query(p)
            .build()
            .map_err(|_| bad(Malformed::InvalidUri))?
    };
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_2;
    *req.headers_mut() = c.headers;
    if let Some(p) = c.protocol {
        req.extensions_mut().insert(Protocol(p));
    }
    Ok(req)
}

/// Decode a response field block into a response head (RFC 9113 §8.3.2). Errors as for
/// [`decode_request`]. Informational (1xx) heads decode like any other.
pub fn decode_response(
    dec: &mut Decoder,
    id: StreamId,
    block: &[u8],
) -> Result<Response<()>, H2Error> {
    let c = decode_block(dec, id, block, Kind::Response)?;
    let status = c.status.ok_or(malformed(id, Malformed::InvalidStatus))?;
    let s = status.as_bytes();
    if s.len() != 3 {
        return Err(malformed(id, Malformed::InvalidStatus));
    }
    let status = StatusCode::from_bytes(s).map_err(|_| malformed(id, Malformed::InvalidStatus))?;
    let mut res = Response::new(());
    *res.status_mut() = status;
    *res.version_mut() = Version::HTTP_2;
    *res.headers_mut() = c.headers;
    Ok(res)
}

/// Decode a trailer field block (no pseudo-headers allowed, RFC 9113 §8.1).
pub fn decode_trailers(
    dec: &mut Decoder,
    id: StreamId,
    block: &[u8],
) -> Result<HeaderMap, H2Error> {
    Ok(decode_block(dec, id, block, Kind::Trailers)?.headers)
}

fn encode_headers(enc: &mut Encoder, map: &HeaderMap, skip_host: bool, dst: &mut Vec<u8>) {
    for (name, value) in map {
        if is_connection_specific(name) || (skip_host && name == header::HOST) {
            continue;
        }
        if name == header::TE && !value.as_bytes().eq_ignore_ascii_case(b"trailers") {
            continue;
        }
        enc.encode_field(
            name.as_str().as_bytes(),
            value.as_bytes(),
            value.is_sensitive(),
            dst,
        );
    }
}

/// Encode a request head as a field block (the body is ignored).
///
/// `:scheme` comes from the URI (default `https`), `:authority` from the URI or else the
/// `Host` header (which is then not sent), `:path` from the URI (default `/`). A CONNECT
/// request carries only `:method` and `:authority`, unless it has a [`Protocol`] extension
/// (extended CONNECT). Connection-specific headers (`connection`, `keep-alive`,
/// `proxy-connection`, `transfer-encoding`, `upgrade`) and `te` other than `trailers` are
/// left out, as HTTP/2 forbids them. Values marked sensitive are never indexed.
pub fn encode_request<T>(enc: &mut Encoder, req: &Request<T>, dst: &mut Vec<u8>) {
    enc.begin_block(dst);
    let uri = req.uri();
    let method = req.method();
    enc.encode_field(b":method", method.as_str().as_bytes(), false, dst);
    let host = req.headers().get(header::HOST);
    let authority: Option<&[u8]> = uri
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or(host.map(|h| h.as_bytes()));
    let protocol = req.extensions().get::<Protocol>();
    if method != Method::CONNECT || protocol.is_some() {
        let scheme = uri.scheme_str().unwrap_or("https");
        enc.encode_field(b":scheme", scheme.as_bytes(), false, dst);
        if let Some(a) = authority {
            enc.encode_field(b":authority", a, false, dst);
        }
        let path = match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() => pq.as_str(),
            _ => "/",
        };
        enc.encode_field(b":path", path.as_bytes(), false, dst);
        if let Some(p) = protocol {
            enc.encode_field(b":protocol", p.0.as_bytes(), false, dst);
        }
    } else if let Some(a) = authority {
        enc.encode_field(b":authority", a, false, dst);
    }
    encode_headers(enc, req.headers(), authority.is_some(), dst);
}

/// Encode a response head as a field block (the body is ignored). Connection-specific
/// headers are left out as for [`encode_request`].
///
/// ```
/// use spindle::h2::headers::{decode_response, encode_response};
/// use spindle::h2::hpack::{Decoder, Encoder};
/// use spindle::h2::StreamId;
/// let res = http::Response::builder().status(404).header("content-type", "text/plain")
///     .header("connection", "close").body(()).unwrap();
/// let mut block = Vec::new();
/// encode_response(&mut Encoder::new(), &res, &mut block);
/// let got = decode_response(&mut Decoder::new(), StreamId::new(1), &block).unwrap();
/// assert_eq!(got.status(), 404);
/// assert_eq!(got.headers().len(), 1);
/// ```
pub fn encode_response<T>(enc: &mut Encoder, res: &Response<T>, dst: &mut Vec<u8>) {
    enc.begin_block(dst);
    enc.encode_field(b":status", res.status().as_str().as_bytes(), false, dst);
    encode_headers(enc, res.headers(), false, dst);
}

/// Encode trailers as a field block.
pub fn encode_trailers(enc: &mut Encoder, trailers: &HeaderMap, dst: &mut Vec<u8>) {
    enc.begin_block(dst);
    encode_headers(enc, trailers, false, dst);
}

/// The size of a header list as RFC 9113 §6.5.2 counts it (for SETTINGS_MAX_HEADER_LIST_SIZE).
pub fn header_list_size(map: &HeaderMap) -> usize {
    map.iter()
        .map(|(n, v)| n.as_str().len() + v.len() + hpack::ENTRY_OVERHEAD)
        .sum()
}
