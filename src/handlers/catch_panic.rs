//! The catch-unwind layer.
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use http::header::HeaderMap;
use http::{StatusCode, Version};

use super::{Forward, Layer, ResponseSink};
use crate::server::{Handler, Request, Response};

/// Makes [`CatchPanic`] handlers: a panic in the inner handler becomes a
/// `500 Internal Server Error` answered by this layer, so the layers outside it (an
/// access log, say) see a normal response. If the panic came after the response head
/// was sent, the panic goes on to the server, which cuts the exchange (a half-sent
/// body must not look complete). The server's own panic handling stays the last net.
///
/// ```
/// use spindle::handlers::{CatchPanicLayer, HandlerExt};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, _res: Response| panic!("bug")).with(CatchPanicLayer::new());
/// let rec = TestRequest::get("/").run(&app);
/// assert_eq!(rec.status(), 500);
/// assert!(!rec.panicked());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer {
    _priv: (),
}

impl CatchPanicLayer {
    /// The layer.
    pub fn new() -> Self {
        CatchPanicLayer::default()
    }
}

impl<H: Handler> Layer<H> for CatchPanicLayer {
    type Handler = CatchPanic<H>;
    fn layer(&self, inner: H) -> CatchPanic<H> {
        CatchPanic { inner }
    }
}

/// A handler that turns its inner handler's panics into 500s; made by
/// [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<H> {
    inner: H,
}

impl<H: Handler> CatchPanic<H> {
    /// Wraps `inner`.
    pub fn new(inner: H) -> Self {
        CatchPanic { inner }
    }
}

/// Like [`Forward`], except that an abandon while the head is unsent keeps the outer
/// response, for the 500.
struct Guard<'a> {
    fwd: Forward<'a>,
}

impl ResponseSink for Guard<'_> {
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
        self.fwd.send_whole(status, body)
    }
    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        self.fwd.start(status)
    }
    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        self.fwd.write_body(data)
    }
    fn flush_body(&mut self) -> io::Result<()> {
        self.fwd.flush_body()
    }
    fn end(&mut self) -> io::Result<()> {
        self.fwd.end()
    }
    fn abandon(&mut self) {
        if self.fwd.head_sent() || !std::thread::panicking() {
            self.fwd.abandon();
        }
    }
    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.fwd.set_trailers(trailers)
    }
    fn upgrade(&mut self, status: StatusCode) -> io::Result<crate::server::Upgraded> {
        self.fwd.upgrade(status)
    }
}

impl<H: Handler> Handler for CatchPanic<H> {
    fn handle(&self, req: Request<'_>, res: Response<'_>) {
        let mut guard = Guard {
            fwd: Forward::new(res),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.inner.handle(req, Response::from_sink(&mut guard));
        }));
        let Err(panic) = outcome else { return };
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        match guard.fwd.take_fresh() {
            Some(mut res) => {
                log::error!("handler panicked: {message}; answering 500");
                let headers = res.headers_mut();
                for name in [
                    http::header::CONTENT_LENGTH,
                    http::header::CONTENT_TYPE,
                    http::header::CONTENT_ENCODING,
                    http::header::CONTENT_RANGE,
                    http::header::TRANSFER_ENCODING,
                    http::header::ETAG,
                    http::header::LAST_MODIFIED,
                ] {
                    headers.remove(name);
                }
                super::plain(
                    res,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 internal server error\n",
                );
            }
            None if guard.fwd.head_sent() && !guard.fwd.abandoned() => {
                // Mid-body: let the server cut the exchange.
                drop(guard);
                resume_unwind(panic);
            }
            None => log::error!("handler panicked after its response: {message}"),
        }
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        catch_unwind(AssertUnwindSafe(|| self.inner.check_continue(req)))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}
