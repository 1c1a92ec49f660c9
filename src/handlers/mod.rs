//! What you compose on top of [`Handler`]: middleware layers, a router, a file server
//! and in-process test helpers, all in the blocking model.
//!
//! A [`Layer`] takes a handler and returns a handler, like tower's `Layer` around a
//! `Service`; layers stack, and a stack is itself a `Handler` that
//! [`Server::handle`](crate::server::Server::handle) accepts. Everything is statically
//! dispatched: a layer that is not used costs nothing, and the built-in layers
//! allocate nothing per request on their common paths.
//!
//! ```no_run
//! use spindle::handlers::{AccessLogLayer, BodyLimitLayer, CompressionLayer, Layers, Router};
//! use spindle::handlers::RequestExt;
//! use spindle::server::{Request, Response, Server};
//!
//! let router = Router::builder()
//!     .route("GET /hello/{name}", |req: Request, res: Response| {
//!         let name = req.path_value("name").unwrap_or("world").to_owned();
//!         res.send(format!("hello, {name}").as_bytes()).ok();
//!     })
//!     .build()?;
//! let app = Layers::new()
//!     .layer(AccessLogLayer::new())          // outermost: sees every request
//!     .layer(CompressionLayer::new())
//!     .layer(BodyLimitLayer::new(1 << 20))
//!     .service(router);
//! Server::http("127.0.0.1:3000")?.handle(app)?.join();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Writing a middleware is writing a `Handler` that holds its inner handler. It can
//! read and change the request head, answer by itself, wrap the request body
//! ([`Request::take_head`] + [`Request::from_parts`] over a [`BodyReader`]), wrap the
//! response ([`Response::from_sink`] over a [`ResponseSink`], usually built on
//! [`Forward`]), and act after the inner handler returns.
use std::io::{self, Read};

use http::header::{HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::server::{Fresh, Handler, Request, Response, Streaming, Upgraded};

mod access_log;
mod body_limit;
mod catch_panic;
pub(crate) mod compression;
mod concurrency;
pub mod fs;
mod request_id;
pub mod router;
pub mod testing;
pub(crate) mod util;

pub use crate::server::ResponseSink;
pub use access_log::{AccessLog, AccessLogLayer, LogFormat};
pub use body_limit::{BodyLimit, BodyLimitLayer, BodyTooLarge};
pub use catch_panic::{CatchPanic, CatchPanicLayer};
pub use compression::{Compression, CompressionLayer};
pub use concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
pub use fs::FileServer;
pub use request_id::{RequestId, RequestIdLayer};
pub use router::{Params, RouteError, Router, RouterBuilder, StripPrefix};

/// Turns a handler into another handler that wraps it: the blocking counterpart of
/// tower's `Layer`.
///
/// ```
/// use spindle::handlers::Layer;
/// use spindle::server::{Handler, Request, Response};
///
/// /// Adds `Server: spindle` to every response.
/// struct ServerName<H>(H);
/// impl<H: Handler> Handler for ServerName<H> {
///     fn handle(&self, req: Request, mut res: Response) {
///         res.headers_mut().insert("server", "spindle".parse().unwrap());
///         self.0.handle(req, res)
///     }
/// }
///
/// struct ServerNameLayer;
/// impl<H: Handler> Layer<H> for ServerNameLayer {
///     type Handler = ServerName<H>;
///     fn layer(&self, inner: H) -> ServerName<H> { ServerName(inner) }
/// }
///
/// let rec = spindle::handlers::testing::TestRequest::get("/")
///     .run(&ServerNameLayer.layer(|_req: Request, res: Response| { res.send(b"hi").ok(); }));
/// assert_eq!(rec.header("server"), Some("spindle"));
/// ```
pub trait Layer<H> {
    /// The handler this layer makes.
    type Handler: Handler;
    /// Wraps `inner`.
    fn layer(&self, inner: H) -> Self::Handler;
}

/// The layer that changes nothing: the start of a [`Layers`] stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<H: Handler> Layer<H> for Identity {
    type Handler = H;
    fn layer(&self, inner: H) -> H {
        inner
    }
}

/// Two layers in sequence: `outer` wraps what `inner` makes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<H, Inner, Outer> Layer<H> for Stack<Inner, Outer>
where
    Inner: Layer<H>,
    Outer: Layer<Inner::Handler>,
{
    type Handler = Outer::Handler;
    fn layer(&self, handler: H) -> Self::Handler {
        self.outer.layer(self.inner.layer(handler))
    }
}

/// A stack of layers, built outermost first (like tower's `ServiceBuilder`): the first
/// layer added sees the request first and the response last.
///
/// ```
/// use spindle::handlers::{CatchPanicLayer, Layers, RequestIdLayer};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = Layers::new()
///     .layer(RequestIdLayer::new())
///     .layer(CatchPanicLayer::new())
///     .service(|_req: Request, _res: Response| panic!("boom"));
/// let rec = TestRequest::get("/").run(&app);
/// assert_eq!(rec.status(), 500);
/// assert!(rec.header("x-request-id").is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Layers<L = Identity> {
    layer: L,
}

impl Layers<Identity> {
    /// An empty stack.
    pub fn new() -> Self {
        Layers { layer: Identity }
    }
}

impl<L> Layers<L> {
    /// Adds `layer` inside the layers already added.
    pub fn layer<T>(self, layer: T) -> Layers<Stack<T, L>> {
        Layers {
            layer: Stack {
                inner: layer,
                outer: self.layer,
            },
        }
    }

    /// Wraps `handler` in the whole stack.
    pub fn service<H>(&self, handler: H) -> L::Handler
    where
        L: Layer<H>,
    {
        self.layer.layer(handler)
    }
}

impl<H, L: Layer<H>> Layer<H> for Layers<L> {
    type Handler = L::Handler;
    fn layer(&self, inner: H) -> Self::Handler {
        self.layer.layer(inner)
    }
}

/// `handler.with(layer)`: wrapping in method-call style, innermost first.
///
/// ```
/// use spindle::handlers::{AccessLogLayer, CompressionLayer, HandlerExt};
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, res: Response| { res.send(b"hi").ok(); })
///     .with(CompressionLayer::new())
///     .with(AccessLogLayer::new()); // outermost
/// # let _ = app;
/// ```
pub trait HandlerExt: Handler + Sized {
    /// Wraps `self` in `layer`.
    fn with<L: Layer<Self>>(self, layer: L) -> L::Handler {
        layer.layer(self)
    }
}

impl<H: Handler> HandlerExt for H {}

/// A request body as a middleware or a test supplies it: any `Read + Send`, with the
/// trailer fields it may have once read to its end.
///
/// ```
/// use std::io::Cursor;
/// use spindle::handlers::BodyReader;
/// let body = Cursor::new(b"abc".to_vec());
/// assert!(body.trailers().is_none());
/// ```
pub trait BodyReader: Read + Send {
    /// The trailer fields, once the body has been read to its end; none by default.
    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }
}

impl BodyReader for Request<'_> {
    fn trailers(&self) -> Option<&HeaderMap> {
        Request::trailers(self)
    }
}
impl<T: AsRef<[u8]> + Send> BodyReader for io::Cursor<T> {}
impl BodyReader for io::Empty {}
impl BodyReader for &[u8] {}
impl<R: BodyReader + ?Sized> BodyReader for &mut R {
    fn trailers(&self) -> Option<&HeaderMap> {
        (**self).trailers()
    }
}

enum ForwardState<'r> {
    Fresh(Response<'r, Fresh>),
    Streaming(Response<'r, Streaming>),
    Done,
}

/// A [`ResponseSink`] that passes everything on to an outer [`Response`], tracking
/// where the exchange stands. The building block of response-wrapping middleware.
///
/// ```
/// use std::io::Write;
/// use spindle::handlers::Forward;
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Handler, Request, Response};
///
/// /// Counts the body bytes its inner handler writes.
/// struct Count<H>(H);
/// impl<H: Handler> Handler for Count<H> {
///     fn handle(&self, req: Request, res: Response) {
///         let mut fwd = Forward::new(res);
///         self.0.handle(req, Response::from_sink(&mut fwd));
///         println!("{} sent {} bytes", fwd.status(), fwd.bytes_written());
///     }
/// }
/// let rec = TestRequest::get("/").run(&Count(|_req: Request, res: Response| {
///     let mut res = res.start().unwrap();
///     res.write_all(b"streamed").unwrap();
/// }));
/// assert_eq!(rec.body(), b"streamed");
/// ```
pub struct Forward<'r> {
    state: ForwardState<'r>,
    status: StatusCode,
    bytes: u64,
    version: Version,
    spare: HeaderMap,
    abandoned: bool,
}

impl<'r> Forward<'r> {
    /// Forwards to `res`.
    pub fn new(res: Response<'r, Fresh>) -> Self {
        Forward {
            version: res.version(),
            status: res.status(),
            state: ForwardState::Fresh(res),
            bytes: 0,
            spare: HeaderMap::new(),
            abandoned: false,
        }
    }

    /// The status sent (or to be sent: the outer response's status until the head goes).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Body bytes written so far (before any transformation by the sink's user).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Whether the head has gone out.
    pub fn head_sent(&self) -> bool {
        !matches!(self.state, ForwardState::Fresh(_))
    }

    /// Whether the inner handler gave up on the response (or panicked).
    pub fn abandoned(&self) -> bool {
        self.abandoned
    }

    /// The outer response while its head has not gone out, taking it over: for a
    /// middleware that answers in place of its inner handler.
    pub fn take_fresh(&mut self) -> Option<Response<'r, Fresh>> {
        match std::mem::replace(&mut self.state, ForwardState::Done) {
            ForwardState::Fresh(res) => Some(res),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Replaces the outer response after [`take_fresh`](Forward::take_fresh), by one
    /// that was started: writes then go to it.
    pub fn put_streaming(&mut self, res: Response<'r, Streaming>) {
        self.status = res.status();
        self.state = ForwardState::Streaming(res);
    }

    /// The outer streaming response, if the body is being written.
    pub fn streaming_mut(&mut self) -> Option<&mut Response<'r, Streaming>> {
        match &mut self.state {
            ForwardState::Streaming(res) => Some(res),
            _ => None,
        }
    }

    /// Aborts the outer response (see [`Response::abort`]).
    pub fn abort(&mut self) {
        match std::mem::replace(&mut self.state, ForwardState::Done) {
            ForwardState::Fresh(res) => res.abort(),
            ForwardState::Streaming(res) => res.abort(),
            ForwardState::Done => {}
        }
    }
}

fn out_of_order() -> io::Error {
    io::Error::other("response used out of order")
}

impl ResponseSink for Forward<'_> {
    fn version(&self) -> Version {
        self.version
    }

    fn headers(&self) -> &HeaderMap {
        match &self.state {
            ForwardState::Fresh(res) => res.headers(),
            ForwardState::Streaming(res) => res.headers(),
            ForwardState::Done => &self.spare,
        }
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        match &mut self.state {
            ForwardState::Fresh(res) => res.headers_mut(),
            _ => &mut self.spare,
        }
    }

    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        let res = self.take_fresh().ok_or_else(out_of_order)?;
        self.status = status;
        self.bytes += body.len() as u64;
        res.with_status(status).send(body)
    }

    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        let res = self.take_fresh().ok_or_else(out_of_order)?;
        self.status = status;
        let res = res.with_status(status).start()?;
        self.state = ForwardState::Streaming(res);
        Ok(())
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        let res = self.streaming_mut().ok_or_else(out_of_order)?;
        let n = io::Write::write(res, data)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush_body(&mut self) -> io::Result<()> {
        io::Write::flush(self.streaming_mut().ok_or_else(out_of_order)?)
    }

    fn end(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.state, ForwardState::Done) {
            ForwardState::Streaming(res) => res.end(),
            ForwardState::Done => Ok(()),
            other => {
                self.state = other;
                Err(out_of_order())
            }
        }
    }

    fn abandon(&mut self) {
        self.abandoned = true;
        self.abort();
    }

    fn set_trailers(&mut self, trailers: HeaderMap) {
        if let Some(res) = self.streaming_mut() {
            res.set_trailers(trailers);
        }
    }

    fn upgrade(&mut self, status: StatusCode) -> io::Result<Upgraded> {
        let res = self.take_fresh().ok_or_else(out_of_order)?;
        self.status = status;
        // The outer response answers 500 itself if the upgrade fails before the head.
        res.with_status(status).upgrade()
    }
}

/// Convenience readers for values that layers and the router attach to a request.
///
/// ```
/// use spindle::handlers::{RequestExt, Router};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let router = Router::builder()
///     .route("GET /items/{id}", |req: Request, res: Response| {
///         let id = req.path_value("id").unwrap_or_default().to_owned();
///         res.send(id.as_bytes()).ok();
///     })
///     .build()
///     .unwrap();
/// assert_eq!(TestRequest::get("/items/42").run(&router).text(), "42");
/// ```
pub trait RequestExt {
    /// A value the [`Router`] captured from the path (`{name}` or `{name...}`),
    /// percent-decoded.
    fn path_value(&self, name: &str) -> Option<&str>;
    /// The request id set by the [`RequestId`] layer (or sent by the client).
    fn request_id(&self) -> Option<&str>;
}

impl RequestExt for Request<'_> {
    fn path_value(&self, name: &str) -> Option<&str> {
        self.extensions().get::<Params>()?.get(name)
    }

    fn request_id(&self) -> Option<&str> {
        self.headers().get(request_id::X_REQUEST_ID)?.to_str().ok()
    }
}

/// Writes a short plain-text answer: the status and a body like `404 page not found`.
pub(crate) fn plain(mut res: Response<'_, Fresh>, status: StatusCode, body: &str) {
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.headers_mut().remove(http::header::CONTENT_ENCODING);
    if let Err(err) = res.with_status(status).send(body.as_bytes()) {
        log::debug!("sending a {status} failed: {err}");
    }
}

/// Writes `{code} {reason}\n` as a plain-text answer with `status`.
pub(crate) fn status_page(res: Response<'_, Fresh>, status: StatusCode) {
    let mut text = util::StackText::<64>::new();
    let _ = std::fmt::Write::write_fmt(
        &mut text,
        format_args!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    );
    plain(res, status, text.as_str())
}

/// Redirects to `location` (made by `util::clean_location` or `util::slash_location`,
/// so it cannot lead to another origin): `301 Moved Permanently` for GET and HEAD, as
/// Go's ServeMux does, and `307 Temporary Redirect` for every other method, which a
/// user agent must repeat with the same method and body (RFC 9110 §15.4.8), where a 301
/// lets it turn a POST into a GET (§15.4.2); Go 1.26 answers 307 for the same reason.
pub(crate) fn redirect(mut res: Response<'_, Fresh>, method: &Method, location: HeaderValue) {
    let status = if method == Method::GET || method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    res.headers_mut().insert(http::header::LOCATION, location);
    status_page(res, status)
}
