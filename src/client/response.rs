//! The response of the pooled client.
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap};
use http::{StatusCode, Version};
use url::Url;

use super::conn::http2::RecvBody;
use super::conn::ResponseBody;
use super::pool::{Conn, Pool, PoolKey, Pooled};
use super::stream::Timed;
use crate::{Error, ErrorKind, Result};

/// The default limit of [`Response::bytes`] and [`Response::text`]: 10 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 10 * 1024 * 1024;

/// How much of an unread body dropping a response will read to save the connection.
const DRAIN_LIMIT: u64 = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_millis(200);

/// A response from [`Client`](crate::Client): status, headers, the final URL, and the
/// body as [`io::Read`].
///
/// The response looks the same whether it came over HTTP/1.1 or HTTP/2
/// ([`version`](Response::version) tells which).
///
/// HTTP/1.1: reading the body to its end puts the connection back in the pool. Dropping
/// a response whose body was not read to the end reads and discards up to 64 KiB of it
/// (to save the connection), or closes the connection. HTTP/2: the connection is shared
/// all along; dropping an unfinished body cancels its stream (RST_STREAM CANCEL) and
/// leaves the connection to the other requests.
///
/// Body read errors are `io::Error`s that carry a [`spindle::Error`](crate::Error)
/// (truncated bodies are [`ErrorKind::Closed`], timeouts [`ErrorKind::Timeout`]).
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    url: Url,
    body: Option<ResponseBody<Timed>>,
    h2: Option<RecvBody>,
    trailers: Option<HeaderMap>,
    key: Arc<PoolKey>,
    pool: Arc<Pool>,
    alpn: Option<Vec<u8>>,
}

impl Response {
    pub(crate) fn new(
        head: crate::h1::response_head::ResponseHead,
        url: Url,
        body: ResponseBody<Timed>,
        key: Arc<PoolKey>,
        pool: Arc<Pool>,
        alpn: Option<Vec<u8>>,
    ) -> Response {
        let mut res = Response {
            status: head.status,
            version: head.version,
            headers: head.headers,
            url,
            body: Some(body),
            h2: None,
            trailers: None,
            key,
            pool,
            alpn,
        };
        res.release_if_done();
        res
    }

    pub(crate) fn new_h2(
        head: http::Response<()>,
        url: Url,
        body: RecvBody,
        key: Arc<PoolKey>,
        pool: Arc<Pool>,
        alpn: Option<Vec<u8>>,
    ) -> Response {
        let (parts, ()) = head.into_parts();
        Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            url,
            body: None,
            h2: Some(body),
            trailers: None,
            key,
            pool,
            alpn,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header field's value as text, if present and visible ASCII.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ALPN protocol the server chose in the TLS handshake of the connection this
    /// response came on (`b"http/1.1"`), or `None` for plain HTTP or a server that
    /// chose none. `Some(b"h2")` means the response came over HTTP/2.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The URL that answered, after redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The parsed `Content-Type`, if present and valid.
    pub fn content_type(&self) -> Option<mime::Mime> {
        self.header(header::CONTENT_TYPE)?.parse().ok()
    }

    /// The declared `Content-Length`, if any.
    pub fn content_length(&self) -> Option<u64> {
        crate::h1::framing::content_length(&self.headers)
            .ok()
            .flatten()
    }

    /// The trailer fields of a chunked (HTTP/1.1) or HTTP/2 body, once the body has been
    /// read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers
            .as_ref()
            .or_else(|| self.body.as_ref().and_then(|b| b.trailers()))
            .or_else(|| self.h2.as_ref().and_then(|b| b.trailers()))
    }

    /// Reads the whole body, failing with [`ErrorKind::Limit`] beyond `limit` bytes.
    pub fn bytes_limited(mut self, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(n) = self.content_length() {
            if n > limit {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!("response body of {n} bytes exceeds the limit of {limit}"),
                )
                .with_url(&self.url));
            }
            out.reserve_exact(n as usize);
        }
        let url = self.url.clone();
        match (&mut self).take(limit + 1).read_to_end(&mut out) {
            Ok(_) if out.len() as u64 > limit => Err(Error::new(
                ErrorKind::Limit,
                format!("response body exceeds the limit of {limit} bytes"),
            )
            .with_url(url)),
            Ok(_) => Ok(out),
            Err(e) => Err(from_io(e, "reading the response body").with_url(url)),
        }
    }

    /// Reads the whole body (up to [`DEFAULT_BODY_LIMIT`]).
    ///
    /// ```
    /// use spindle::server::{Request, Response, Server};
    /// let server = Server::http("127.0.0.1:0")?
    ///     .handle(|_req: Request, res: Response| { res.send(b"hello").ok(); })?;
    /// let url = format!("http://{}/", server.local_addr());
    /// let body = spindle::Client::new().get(&url).send()?.bytes()?;
    /// assert_eq!(body, b"hello");
    /// # server.close();
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn bytes(self) -> Result<Vec<u8>> {
        self.bytes_limited(DEFAULT_BODY_LIMIT)
    }

    /// Reads the whole body as UTF-8 text, failing beyond `limit` bytes.
    pub fn text_limited(self, limit: u64) -> Result<String> {
        let url = self.url.clone();
        String::from_utf8(self.bytes_limited(limit)?).map_err(|e| {
            Error::new(ErrorKind::Parse, "response body is not UTF-8")
                .with_source(e)
                .with_url(url)
        })
    }

    /// Reads the whole body as UTF-8 text (up to [`DEFAULT_BODY_LIMIT`]).
    pub fn text(self) -> Result<String> {
        self.text_limited(DEFAULT_BODY_LIMIT)
    }

    /// Returns the connection to the pool once the body is finished and reusable.
    fn release_if_done(&mut self) {
        if self.body.as_ref().is_some_and(|b| b.is_finished()) {
            if let Some(body) = self.body.take() {
                self.trailers = body.trailers().cloned();
                self.release(body);
            }
        }
    }

    fn release(&self, body: ResponseBody<Timed>) {
        if let Ok(mut sender) = body.into_sender() {
            sender.io_mut().deadline = None;
            self.pool.put(Pooled {
                key: self.key.clone(),
                conn: Conn::H1(sender),
            });
        }
    }
}

pub(crate) fn from_io(e: io::Error, context: &str) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::new(ErrorKind::Io, context.to_owned());
    }
    Error::io(context.to_owned(), e)
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(h2) = self.h2.as_mut() {
            return h2.read(buf);
        }
        let Some(body) = self.body.as_mut() else {
            // Finished (connection released) or empty from the start.
            return Ok(0);
        };
        let n = body.read(buf)?;
        if n == 0 || body.is_finished() {
            self.release_if_done();
        }
        Ok(n)
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        let worth_draining = match body.remaining_length() {
            Some(n) => n <= DRAIN_LIMIT,
            None => body.is_chunked(),
        };
        if !worth_draining {
            return;
        }
        let deadline = Instant::now() + DRAIN_TIME;
        let io = body.io_mut();
        io.deadline = Some(io.deadline.map_or(deadline, |d| d.min(deadline)));
        if body.drain(DRAIN_LIMIT) {
            self.release(body);
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("url", &self.url.as_str())
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}
