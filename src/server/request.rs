//! The incoming request: its head, and its body as `io::Read`.
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;

use http::header::{self, HeaderMap};
use http::{Extensions, Method, Uri, Version};

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
