//! The [`Handler`] trait: what the server calls for every request.
use std::sync::Arc;

use http::StatusCode;

use super::{Fresh, Request, Response};

/// Handles requests. One value serves every connection on every worker thread at once,
/// so it must be `Send + Sync`; shared mutable state goes behind atomics or locks.
///
/// Closures implement it:
///
/// ```no_run
/// use spindle::server::{Request, Response, Server};
/// Server::http("127.0.0.1:0")?.handle(|_req: Request, res: Response| {
///     res.send(b"hi").ok();
/// })?;
/// # Ok::<(), spindle::Error>(())
/// ```
///
/// and so can your own types:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use spindle::server::{Handler, Request, Response};
///
/// struct Counter(AtomicU64);
///
/// impl Handler for Counter {
///     fn handle(&self, _req: Request, res: Response) {
///         let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
///         res.send(n.to_string().as_bytes()).ok();
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. The response is finished when it is dropped (or sent, or
    /// ended); a panic here costs only this response (500, or a closed connection if
    /// part of it was already sent).
    fn handle(&self, req: Request<'_>, res: Response<'_, Fresh>);

    /// Decides a request that carries `Expect: 100-continue`, before its body is read.
    ///
    /// Return [`StatusCode::CONTINUE`] (the default) to let the client send the body: the
    /// interim `100 Continue` goes out when the handler first reads the body. Any other
    /// status (say 417 or 413) is sent at once as the final answer, without calling
    /// [`handle`](Handler::handle) and without reading the body.
    ///
    /// ```
    /// use spindle::server::{Handler, Request, Response};
    /// use spindle::http::StatusCode;
    ///
    /// struct SmallUploads;
    /// impl Handler for SmallUploads {
    ///     fn handle(&self, _req: Request, res: Response) { res.send(b"ok").ok(); }
    ///     fn check_continue(&self, req: &Request) -> StatusCode {
    ///         match req.content_length() {
    ///             Some(n) if n > 1 << 20 => StatusCode::PAYLOAD_TOO_LARGE,
    ///             _ => StatusCode::CONTINUE,
    ///         }
    ///     }
    /// }
    /// ```
    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        let _ = req;
        StatusCode::CONTINUE
    }
}

impl<F> Handler for F
where
    F: Fn(Request<'_>, Response<'_, Fresh>) + Send + Sync + 'static,
{
    fn handle(&self, req: Request<'_>, res: Response<'_, Fresh>) {
        self(req, res)
    }
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(&self, req: Request<'_>, res: Response<'_, Fresh>) {
        (**self).handle(req, res)
    }
    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        (**self).check_continue(req)
    }
}
