//! The request-body-limit layer.
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Version};

use super::{BodyReader, Forward, Layer, ResponseSink};
use crate::server::{Handler, Request, Response};

/// The error a limited body's reader returns once the body passes the limit; find it
/// with [`BodyTooLarge::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    /// The limit, in bytes.
    pub limit: u64,
}

impl BodyTooLarge {
    /// The `BodyTooLarge` inside an I/O error from reading a limited body, if that is
    /// what it is.
    ///
    /// ```
    /// use std::io::Read;
    /// use spindle::handlers::{BodyLimitLayer, BodyTooLarge, HandlerExt};
    /// use spindle::handlers::testing::TestRequest;
    /// use spindle::server::{Request, Response};
    ///
    /// let app = (|mut req: Request, res: Response| {
    ///     let mut body = Vec::new();
    ///     if let Err(e) = req.read_to_end(&mut body) {
    ///         assert_eq!(BodyTooLarge::find(&e), Some(&BodyTooLarge { limit: 4 }));
    ///     }
    ///     res.send(b"done").ok();
    /// })
    /// .with(BodyLimitLayer::new(4));
    /// let rec = TestRequest::post("/").chunked_body(b"too long").run(&app);
    /// assert_eq!(rec.status(), 413);
    /// ```
    pub fn find(err: &io::Error) -> Option<&BodyTooLarge> {
        err.get_ref()?.downcast_ref::<BodyTooLarge>()
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body larger than {} bytes", self.limit)
    }
}

impl std::error::Error for BodyTooLarge {}

/// Makes [`BodyLimit`] handlers: request bodies over `limit` bytes are refused with
/// `413 Content Too Large` — before a byte is read when `Content-Length` says so (and
/// in answer to `Expect: 100-continue`), or, for a chunked body, as soon as reading
/// passes the limit, like Go's `MaxBytesReader`: the read fails with
/// [`BodyTooLarge`] and the response, if the handler has not sent its head yet, becomes
/// the 413.
///
/// ```
/// use spindle::handlers::{BodyLimitLayer, HandlerExt};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, res: Response| { res.send(b"ok").ok(); })
///     .with(BodyLimitLayer::new(1024));
/// let rec = TestRequest::post("/").body(vec![b'x'; 2048]).run(&app);
/// assert_eq!(rec.status(), 413);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    limit: u64,
}

impl BodyLimitLayer {
    /// A limit of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        BodyLimitLayer { limit }
    }
}

impl<H: Handler> Layer<H> for BodyLimitLayer {
    type Handler = BodyLimit<H>;
    fn layer(&self, inner: H) -> BodyLimit<H> {
        BodyLimit::new(inner, self.limit)
    }
}

/// A handler whose inner handler sees request bodies of at most a limit; made by
/// [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<H> {
    inner: H,
    limit: u64,
}

impl<H: Handler> BodyLimit<H> {
    /// Wraps `inner` with a limit of `limit` bytes.
    pub fn new(inner: H, limit: u64) -> Self {
        BodyLimit { inner, limit }
    }
}

fn refuse(mut res: Response<'_>, limit: u64) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    let mut text = super::util::StackText::<64>::new();
    let _ = fmt::Write::write_fmt(&mut text, format_args!("{}\n", BodyTooLarge { limit }));
    super::plain(res, StatusCode::PAYLOAD_TOO_LARGE, text.as_str());
}

impl<H: Handler> Handler for BodyLimit<H> {
    fn handle(&self, mut req: Request<'_>, res: Response<'_>) {
        match req.content_length() {
            Some(n) if n > self.limit => return refuse(res, self.limit),
            // The framing already holds the body to its declared length.
            Some(_) => return self.inner.handle(req, res),
            None if req.version() < Version::HTTP_2
                && !req.headers().contains_key(header::TRANSFER_ENCODING) =>
            {
                // HTTP/1 without either field: no body at all.
                return self.inner.handle(req, res);
            }
            None => {}
        }
        let tripped = AtomicBool::new(false);
        let head = req.take_head();
        let peer = req.remote_addr();
        let mut body = Limited {
            inner: &mut req,
            remaining: self.limit,
            limit: self.limit,
            tripped: &tripped,
        };
        let mut inner_req = Request::from_parts(head, &mut body);
        *inner_req.remote_addr_mut() = peer;
        let mut sink = LimitSink {
            fwd: Forward::new(res),
            tripped: &tripped,
            limit: self.limit,
            refused: false,
        };
        self.inner.handle(inner_req, Response::from_sink(&mut sink));
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        match req.content_length() {
            Some(n) if n > self.limit => StatusCode::PAYLOAD_TOO_LARGE,
            _ => self.inner.check_continue(req),
        }
    }
}

struct Limited<'r, 'a> {
    inner: &'r mut Request<'a>,
    remaining: u64,
    limit: u64,
    tripped: &'r AtomicBool,
}

impl Read for Limited<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let too_large = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                BodyTooLarge { limit: self.limit },
            )
        };
        if self.tripped.load(Ordering::Relaxed) {
            return Err(too_large());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the limit is enough to know it was passed.
        let max = (buf.len() as u64).min(self.remaining.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..max])?;
        if n as u64 > self.remaining {
            self.tripped.store(true, Ordering::Relaxed);
            log::debug!("request body passed the {} byte limit", self.limit);
            return Err(too_large());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl BodyReader for Limited<'_, '_> {
    fn trailers(&self) -> Option<&HeaderMap> {
        self.inner.trailers()
    }
}

struct LimitSink<'r, 'a> {
    fwd: Forward<'a>,
    tripped: &'r AtomicBool,
    limit: u64,
    /// The 413 went out in place of the handler's answer; its body is dropped.
    refused: bool,
}

impl LimitSink<'_, '_> {
    /// Answers 413 instead of the handler, if the body passed the limit.
    fn refuse_instead(&mut self) -> bool {
        if !self.tripped.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(res) = self.fwd.take_fresh() {
            res_clear_and_refuse(res, self.limit);
        }
        self.refused = true;
        true
    }
}

fn res_clear_and_refuse(mut res: Response<'_>, limit: u64) {
    let headers = res.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONTENT_TYPE);
    refuse(res, limit)
}

impl ResponseSink for LimitSink<'_, '_> {
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
        if self.refuse_instead() {
            return Ok(());
        }
        self.fwd.send_whole(status, body)
    }
    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        if self.refuse_instead() {
            return Ok(());
        }
        self.fwd.start(status)
    }
    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.refused {
            return Ok(data.len());
        }
        self.fwd.write_body(data)
    }
    fn flush_body(&mut self) -> io::Result<()> {
        if self.refused {
            return Ok(());
        }
        self.fwd.flush_body()
    }
    fn end(&mut self) -> io::Result<()> {
        if self.refused {
            return Ok(());
        }
        self.fwd.end()
    }
    fn abandon(&mut self) {
        self.fwd.abandon()
    }
    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.fwd.set_trailers(trailers)
    }
    fn upgrade(&mut self, status: StatusCode) -> io::Result<crate::server::Upgraded> {
        if self.refuse_instead() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request body over the limit; answered 413 instead of upgrading",
            ));
        }
        self.fwd.upgrade(status)
    }
}
