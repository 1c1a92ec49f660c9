//! The response-compression layer.
use std::io::{self, Write};

use flate2::write::{GzEncoder, ZlibEncoder};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use super::{Forward, Layer, ResponseSink};
use crate::server::{Handler, Request, Response, Streaming};

/// A content coding the layer can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
}

/// Makes [`Compression`] handlers: responses are compressed with gzip or deflate
/// (through `flate2`), whichever the request's `Accept-Encoding` prefers by q-value
/// (gzip on a tie). Bodies are compressed as they are written, never buffered whole
/// (a flush of the response flushes the compressor too), and `Vary: Accept-Encoding`
/// is added to every response whose type could be compressed.
///
/// `Accept-Encoding` is read as RFC 9110 §12.5.3 says: a coding with `q=0` is never
/// used, `*` stands for every coding not named, an element whose q-value does not
/// parse is ignored, and a coding named twice gets its lower weight. `identity` (no
/// coding) is acceptable unless refused by `identity;q=0`, or by `*;q=0` without an
/// `identity` entry; when it is refused and gzip or deflate is acceptable, the body is
/// compressed even if it is small or of a type that does not compress. An explicit
/// `identity;q=` higher than every coding's keeps the body as it is. When nothing
/// acceptable is available the body goes as it is (the header is disregarded, which
/// §12.5.3 allows).
///
/// Left alone: answers to HEAD, 1xx/204/304 and 206 responses, bodies that already
/// have a `Content-Encoding`, `Cache-Control: no-transform`, and, unless `identity` is
/// refused, bodies under the minimum size (when their length is known) and content
/// types that do not compress (anything but text, JSON, JavaScript, XML, SVG,
/// WebAssembly and the like).
///
/// ```
/// use std::io::Read;
/// use spindle::handlers::{CompressionLayer, HandlerExt};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, mut res: Response| {
///     res.headers_mut().insert("content-type", "text/plain".parse().unwrap());
///     res.send("spindle ".repeat(100).as_bytes()).ok();
/// })
/// .with(CompressionLayer::new());
/// let rec = TestRequest::get("/").header("accept-encoding", "br;q=1, gzip;q=0.8").run(&app);
/// assert_eq!(rec.header("content-encoding"), Some("gzip"));
/// assert_eq!(rec.header("vary"), Some("accept-encoding"));
/// let mut text = String::new();
/// flate2::read::GzDecoder::new(rec.body()).read_to_string(&mut text).unwrap();
/// assert_eq!(text, "spindle ".repeat(100));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CompressionLayer {
    level: u32,
    min_size: u64,
    deflate: bool,
}

impl Default for CompressionLayer {
    fn default() -> Self {
        CompressionLayer {
            level: 6,
            min_size: 256,
            deflate: true,
        }
    }
}

impl CompressionLayer {
    /// Level 6, bodies of 256 bytes and more, gzip and deflate.
    pub fn new() -> Self {
        CompressionLayer::default()
    }

    /// The compression level, 0 (none) to 9 (best); clamped.
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Bodies known to be shorter than this are sent as they are.
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = bytes;
        self
    }

    /// Whether `deflate` may be chosen (gzip always may).
    pub fn deflate(mut self, enabled: bool) -> Self {
        self.deflate = enabled;
        self
    }
}

impl<H: Handler> Layer<H> for CompressionLayer {
    type Handler = Compression<H>;
    fn layer(&self, inner: H) -> Compression<H> {
        Compression {
            inner,
            config: *self,
        }
    }
}

/// A handler whose responses are compressed; made by [`CompressionLayer`].
#[derive(Debug, Clone)]
pub struct Compression<H> {
    inner: H,
    config: CompressionLayer,
}

impl<H: Handler> Compression<H> {
    /// Wraps `inner` with the defaults of [`CompressionLayer::new`].
    pub fn new(inner: H) -> Self {
        CompressionLayer::new().layer(inner)
    }
}

impl<H: Handler> Handler for Compression<H> {
    fn handle(&self, req: Request<'_>, res: Response<'_>) {
        if req.method() == Method::HEAD {
            return self.inner.handle(req, res);
        }
        let choice = choose(req.headers(), self.config.deflate);
        let mut sink = CompressSink {
            fwd: Forward::new(res),
            choice,
            config: self.config,
            encoder: None,
        };
        self.inner.handle(req, Response::from_sink(&mut sink));
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        self.inner.check_continue(req)
    }
}

/// What a request's `Accept-Encoding` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The coding to use when the response is compressed at all.
    pub(crate) coding: Option<Coding>,
    /// `identity;q=0`, or `*;q=0` with no `identity` entry: the body must not go out
    /// as it is if a coding is acceptable.
    pub(crate) identity_refused: bool,
}

/// Reads `Accept-Encoding` (RFC 9110 §12.5.3): the highest q-value above zero among
/// gzip and deflate (gzip on a tie), `*` standing for any coding not named, unless an
/// explicit `identity` (or `*` standing for it) weighs more.
pub(crate) fn choose(headers: &HeaderMap, deflate_ok: bool) -> Choice {
    let mut gzip: Option<u16> = None;
    let mut deflate: Option<u16> = None;
    let mut star: Option<u16> = None;
    let mut identity: Option<u16> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut q = Some(1000);
            for param in parts {
                if let Some((name, v)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_q(v.trim());
                    }
                }
            }
            // A weight that does not parse makes the element invalid: ignore it rather
            // than read it as a refusal (or an acceptance) the client did not send.
            let Some(q) = q else { continue };
            let slot =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if coding.eq_ignore_ascii_case("deflate") {
                    &mut deflate
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut identity
                } else if coding == "*" {
                    &mut star
                } else {
                    continue;
                };
            // Named twice: the lower weight, so a refusal is never overridden.
            *slot = Some(slot.map_or(q, |old| old.min(q)));
        }
    }
    let gzip = gzip.or(star).unwrap_or(0);
    let deflate = if deflate_ok {
        deflate.or(star).unwrap_or(0)
    } else {
        0
    };
    // Identity is acceptable by default but only ranked when the header weighs it.
    let identity = identity.or(star);
    let (best, q) = if gzip >= deflate {
        (Coding::Gzip, gzip)
    } else {
        (Coding::Deflate, deflate)
    };
    Choice {
        coding: (q > 0 && identity.is_none_or(|iq| q >= iq)).then_some(best),
        identity_refused: identity == Some(0),
    }
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a media type is worth compressing.
fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    if ty.eq_ignore_ascii_case("text") {
        return true;
    }
    let ends = |s: &str| sub.len() >= s.len() && sub[sub.len() - s.len()..].eq_ignore_ascii_case(s);
    if ends("+json") || ends("+xml") {
        return true;
    }
    if ty.eq_ignore_ascii_case("application") {
        return [
            "json",
            "javascript",
            "x-javascript",
            "ecmascript",
            "xml",
            "wasm",
            "x-www-form-urlencoded",
            "graphql",
        ]
        .iter()
        .any(|s| sub.eq_ignore_ascii_case(s));
    }
    ty.eq_ignore_ascii_case("image") && sub.eq_ignore_ascii_case("svg+xml")
}

/// The streamed response under the compressor, taken out of the [`Forward`].
struct Out<'a>(Option<Response<'a, Streaming>>);

impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(res) => res.write(buf),
            None => Err(io::Error::other("response aborted")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(res) => res.flush(),
            None => Ok(()),
        }
    }
}

enum Encoder<'a> {
    Gzip(GzEncoder<Out<'a>>),
    Deflate(ZlibEncoder<Out<'a>>),
}

impl<'a> Encoder<'a> {
    fn out(&mut self) -> &mut Out<'a> {
        match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Deflate(e) => e.get_mut(),
        }
    }
    fn finish(self) -> io::Result<Out<'a>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Deflate(e) => e.finish(),
        }
    }
}

impl Write for Encoder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Deflate(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Deflate(e) => e.flush(),
        }
    }
}

struct CompressSink<'a> {
    fwd: Forward<'a>,
    choice: Choice,
    config: CompressionLayer,
    encoder: Option<Encoder<'a>>,
}

impl CompressSink<'_> {
    /// Decides, at the moment the head goes, whether this response is compressed;
    /// `len` is its length when known. Adds `Vary` when the type could be.
    fn decide(&mut self, status: StatusCode, len: Option<u64>) -> Option<Coding> {
        let headers = self.fwd.headers_mut();
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
            || headers.contains_key(header::CONTENT_RANGE)
            || headers.contains_key(header::CONTENT_ENCODING)
        {
            return None;
        }
        // The client refused the body as it is: compress whatever it is.
        let must = self.choice.identity_refused && self.choice.coding.is_some();
        let type_ok = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(compressible);
        if !type_ok && !must {
            return None;
        }
        add_vary(headers);
        let no_transform = headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
            })
        });
        if no_transform {
            return None;
        }
        let len = len.or_else(|| crate::h1::framing::content_length(headers).ok().flatten());
        if len.is_some_and(|n| n < self.config.min_size) && !must {
            return None;
        }
        let coding = self.choice.coding?;
        headers.remove(header::CONTENT_LENGTH);
        // Ranges would refer to the compressed bytes, which are not stable.
        headers.remove(header::ACCEPT_RANGES);
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(match coding {
                Coding::Gzip => "gzip",
                Coding::Deflate => "deflate",
            }),
        );
        // The compressed bytes are a different representation: a strong validator
        // of the identity body no longer applies byte for byte.
        if let Some(etag) = headers.get(header::ETAG) {
            if !etag.as_bytes().starts_with(b"W/") {
                let mut weak = Vec::with_capacity(etag.len() + 2);
                weak.extend_from_slice(b"W/");
                weak.extend_from_slice(etag.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&weak) {
                    headers.insert(header::ETAG, v);
                }
            }
        }
        Some(coding)
    }
}

fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

impl ResponseSink for CompressSink<'_> {
    fn version(&self) -> Version {
        self.fwd.version()
    }
    fn headers(&self) -> &HeaderMap {
        self.fwd.headers()
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.fwd.headers_mut()
    }

    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        let Some(coding) = self.decide(status, Some(body.len() as u64)) else {
            return self.fwd.send_whole(status, body);
        };
        let level = flate2::Compression::new(self.config.level);
        let out = Vec::with_capacity(body.len() / 3 + 64);
        let compressed = match coding {
            Coding::Gzip => {
                let mut e = GzEncoder::new(out, level);
                e.write_all(body)?;
                e.finish()?
            }
            Coding::Deflate => {
                let mut e = ZlibEncoder::new(out, level);
                e.write_all(body)?;
                e.finish()?
            }
        };
        self.fwd.send_whole(status, &compressed)
    }

    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        let Some(coding) = self.decide(status, None) else {
            return self.fwd.start(status);
        };
        let res = self
            .fwd
            .take_fresh()
            .ok_or_else(|| io::Error::other("response used out of order"))?;
        let out = Out(Some(res.with_status(status).start()?));
        let level = flate2::Compression::new(self.config.level);
        self.encoder = Some(match coding {
            Coding::Gzip => Encoder::Gzip(GzEncoder::new(out, level)),
            Coding::Deflate => Encoder::Deflate(ZlibEncoder::new(out, level)),
        });
        Ok(())
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Some(e) => e.write(data),
            None => self.fwd.write_body(data),
        }
    }

    fn flush_body(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Some(e) => e.flush(),
            None => self.fwd.flush_body(),
        }
    }

    fn end(&mut self) -> io::Result<()> {
        match self.encoder.take() {
            Some(e) => match e.finish()?.0.take() {
                Some(res) => res.end(),
                None => Ok(()),
            },
            None => self.fwd.end(),
        }
    }

    fn abandon(&mut self) {
        if let Some(mut e) = self.encoder.take() {
            if let Some(res) = e.out().0.take() {
                res.abort();
            }
        }
        self.fwd.abandon();
    }

    fn set_trailers(&mut self, trailers: HeaderMap) {
        match &mut self.encoder {
            Some(e) => {
                if let Some(res) = &mut e.out().0 {
                    res.set_trailers(trailers);
                }
            }
            None => self.fwd.set_trailers(trailers),
        }
    }
    fn upgrade(&mut self, status: StatusCode) -> io::Result<crate::server::Upgraded> {
        self.fwd.upgrade(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ae(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    fn coding(v: &str, deflate: bool) -> Option<Coding> {
        choose(&ae(v), deflate).coding
    }

    #[test]
    fn chooses_by_q_value() {
        assert_eq!(coding("gzip, deflate", true), Some(Coding::Gzip));
        assert_eq!(coding("gzip;q=0.5, deflate", true), Some(Coding::Deflate));
        assert_eq!(coding("gzip;q=0.5, deflate", false), Some(Coding::Gzip));
        assert_eq!(coding("gzip;q=0, deflate;q=0", true), None);
        assert_eq!(coding("br", true), None);
        assert_eq!(coding("*;q=0.1", true), Some(Coding::Gzip));
        assert_eq!(coding("gzip;q=0, *", true), Some(Coding::Deflate));
        assert_eq!(coding("identity", true), None);
        assert_eq!(coding("gzip;q=2", true), None);
        assert_eq!(choose(&HeaderMap::new(), true).coding, None);
        // Odd weights: ignored, not read as a refusal or an acceptance.
        assert_eq!(
            coding("gzip;q=, deflate;q=0.5", true),
            Some(Coding::Deflate)
        );
        assert_eq!(coding("gzip;q=0.5;q=x", true), None);
        assert_eq!(coding("gzip ; Q=0.3", true), Some(Coding::Gzip));
        assert_eq!(coding("gzip;q=1.0001, *;q=0", true), None);
        // Named twice: the lower weight.
        assert_eq!(coding("gzip;q=0.8, gzip;q=0", true), None);
        // An explicit identity weighs against the codings.
        assert_eq!(coding("gzip;q=0.5, identity", true), None);
        assert_eq!(
            coding("gzip;q=0.5, identity;q=0.5", true),
            Some(Coding::Gzip)
        );
        assert_eq!(coding("gzip;q=0.5, *;q=0.9", true), Some(Coding::Deflate));
    }

    #[test]
    fn identity_refusals() {
        // RFC 9110 §12.5.3: identity;q=0, or *;q=0 without an identity entry.
        for (v, refused) in [
            ("identity;q=0", true),
            ("gzip, identity;q=0", true),
            ("gzip, *;q=0", true),
            ("gzip, *;q=0, identity", false),
            ("gzip, *;q=0, identity;q=0.1", false),
            ("gzip", false),
            ("", false),
            ("identity;q=x", false),
        ] {
            assert_eq!(choose(&ae(v), true).identity_refused, refused, "{v:?}");
        }
        assert_eq!(coding("*;q=0", true), None);
        assert_eq!(coding("gzip;q=0.1, identity;q=0", true), Some(Coding::Gzip));
    }

    #[test]
    fn a_refused_identity_compresses_anything() {
        use crate::handlers::testing::TestRequest;
        let png = |_req: Request, mut res: Response| {
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            res.send(b"tiny").ok();
        };
        let app = Compression::new(png);
        let rec = TestRequest::get("/")
            .header("accept-encoding", "gzip;q=0.5, identity;q=0")
            .run(&app);
        assert_eq!(rec.header("content-encoding"), Some("gzip"));
        assert_eq!(rec.header("vary"), Some("accept-encoding"));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(rec.body()), &mut out)
            .unwrap();
        assert_eq!(out, b"tiny");
        // Without the refusal the small PNG goes as it is.
        let rec = TestRequest::get("/")
            .header("accept-encoding", "gzip")
            .run(&app);
        assert_eq!(
            (rec.header("content-encoding"), rec.body()),
            (None, &b"tiny"[..])
        );
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "application/ld+json",
            "image/svg+xml",
            "TEXT/CSS",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "application/zip",
            "application/octet-stream",
            "video/mp4",
            "garbage",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }
}
