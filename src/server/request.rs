//! The incoming request: its head, and its body as `io::Read`.
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;

use http::header::{self, HeaderMap};
use http::{Extensions, Method, Uri, Version};

use crate::handlers::BodyReader;

/// Where a request body comes from: an HTTP/1 connection, an HTTP/2 stream, or bytes
/// in memory. Implemented inside spindle; the [`Request`] hides which one it is.
pub(crate) trait BodySource: Send {
    /// Reads body bytes; 0 means the body has ended (and stays ended).
    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// The trailer fields, available once the body has been read to its end.
    fn trailers(&self) -> Option<&HeaderMap>;
}

pub(crate) enum Body<'a> {
    Empty,
    Source(&'a mut (dyn BodySource + 'a)),
    /// A reader given through the public API: a middleware wrapping a body, or a test.
    Reader(&'a mut (dyn BodyReader + 'a)),
}

/// A request received by the server.
///
/// The head (method, target, version, fields) is available at once; the body is read
/// through [`io::Read`], whatever its framing on the wire (Content-Length, chunked, or
/// HTTP/2 DATA frames). Reading past the end returns 0 and never waits for more.
///
/// ```no_run
/// use std::io::Read;
/// use spindle::server::{Request, Response, Server};
///
/// Server::http("127.0.0.1:0")?.handle(|mut req: Request, res: Response| {
///     let mut body = String::new();
///     if req.read_to_string(&mut body).is_ok() {
///         res.send(format!("{} {} sent {} bytes", req.method(), req.uri(), body.len()).as_bytes()).ok();
///     }
/// })?;
/// # Ok::<(), spindle::Error>(())
/// ```
pub struct Request<'a> {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
    extensions: Extensions,
    body: Body<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        method: Method,
        uri: Uri,
        version: Version,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
        body: Body<'a>,
    ) -> Self {
        Request {
            method,
            uri,
            version,
            headers,
            remote_addr,
            extensions: Extensions::new(),
            body,
        }
    }

    /// Builds a request from a head and a body reader, with no socket behind it: for
    /// middleware that wraps the body of the request it was given (see
    /// [`take_head`](Request::take_head)) and for tests (see
    /// [`handlers::testing`](crate::handlers::testing)).
    ///
    /// ```
    /// use std::io::{Cursor, Read};
    /// use spindle::server::Request;
    ///
    /// let (parts, ()) = spindle::http::Request::put("/kv/a").body(()).unwrap().into_parts();
    /// let mut body = Cursor::new(b"hello".to_vec());
    /// let mut req = Request::from_parts(parts, &mut body);
    /// let mut text = String::new();
    /// req.read_to_string(&mut text).unwrap();
    /// assert_eq!((req.method().as_str(), text.as_str()), ("PUT", "hello"));
    /// ```
    pub fn from_parts(parts: http::request::Parts, body: &'a mut (dyn BodyReader + 'a)) -> Self {
        Request {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            remote_addr: None,
            extensions: parts.extensions,
            body: Body::Reader(body),
        }
    }

    /// Builds a request with an empty body from a head, with no socket behind it.
    pub fn without_body(parts: http::request::Parts) -> Self {
        let mut req = Request::new(
            parts.method,
            parts.uri,
            parts.version,
            parts.headers,
            None,
            Body::Empty,
        );
        req.extensions = parts.extensions;
        req
    }

    /// Moves the head (method, target, version, header fields, extensions) out of this
    /// request, leaving defaults behind and the body in place. With
    /// [`from_parts`](Request::from_parts) this lets a middleware hand its inner
    /// handler a request whose body reads through a wrapper over this one, without
    /// allocating:
    ///
    /// ```
    /// use std::io::Read;
    /// use spindle::server::{Handler, Request, Response};
    ///
    /// struct Upper<H>(H);
    /// struct UpperBody<'r, 'a>(&'r mut Request<'a>);
    /// impl Read for UpperBody<'_, '_> {
    ///     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
    ///         let n = self.0.read(buf)?;
    ///         buf[..n].make_ascii_uppercase();
    ///         Ok(n)
    ///     }
    /// }
    /// impl spindle::handlers::BodyReader for UpperBody<'_, '_> {}
    ///
    /// impl<H: Handler> Handler for Upper<H> {
    ///     fn handle(&self, mut req: Request, res: Response) {
    ///         let head = req.take_head();
    ///         let peer = req.remote_addr();
    ///         let mut body = UpperBody(&mut req);
    ///         let mut inner = Request::from_parts(head, &mut body);
    ///         *inner.remote_addr_mut() = peer;
    ///         self.0.handle(inner, res)
    ///     }
    /// }
    /// ```
    pub fn take_head(&mut self) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = std::mem::take(&mut self.method);
        parts.uri = std::mem::take(&mut self.uri);
        parts.version = self.version;
        parts.headers = std::mem::take(&mut self.headers);
        parts.extensions = std::mem::take(&mut self.extensions);
        parts
    }

    /// Mutable access to the peer's address, for middleware (a trusted proxy's
    /// `Forwarded` header) and tests.
    pub fn remote_addr_mut(&mut self) -> &mut Option<SocketAddr> {
        &mut self.remote_addr
    }

    /// Mutable access to the version, for middleware and tests.
    pub fn version_mut(&mut self) -> &mut Version {
        &mut self.version
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target, as sent: usually a path and query (`/a?b`), the absolute URI
    /// a proxy receives, `host:port` for CONNECT, or `*` for `OPTIONS *`.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The path of the target (`/` for `*` and authority-form targets).
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string of the target, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The protocol version that carried the request.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The peer's address, when the transport has one (TCP does; a Unix socket or an
    /// in-memory test request may not).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The `Content-Type`, parsed; `None` if absent or not a valid media type.
    pub fn content_type(&self) -> Option<mime::Mime> {
        self.headers
            .get(header::CONTENT_TYPE)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// The declared body length (`Content-Length`), if the client gave one.
    pub fn content_length(&self) -> Option<u64> {
        crate::h1::framing::content_length(&self.headers)
            .ok()
            .flatten()
    }

    /// The trailer fields sent after a chunked (or HTTP/2) body; `None` until the body
    /// has been read to its end, or if there were none.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        match &self.body {
            Body::Empty => None,
            Body::Source(src) => src.trailers(),
            Body::Reader(reader) => reader.trailers(),
        }
    }

    /// Typed values attached to the request by middleware (a router's captures, a
    /// request id, ...).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable access to the extensions.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Mutable access to the method, for middleware that rewrites requests.
    pub fn method_mut(&mut self) -> &mut Method {
        &mut self.method
    }

    /// Mutable access to the target, for middleware that rewrites requests.
    pub fn uri_mut(&mut self) -> &mut Uri {
        &mut self.uri
    }

    /// Mutable access to the header fields, for middleware.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

impl Read for Request<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.body {
            Body::Empty => Ok(0),
            Body::Source(src) => src.read_body(buf),
            Body::Reader(reader) => reader.read(buf),
        }
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}
