//! The access-log layer.
use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::StatusCode;

use super::util::{clf_time, StackText};
use super::{Forward, Layer};
use crate::server::{Handler, Request, Response};

/// The `log` target access lines go to.
pub const TARGET: &str = "spindle::access";

/// How an access line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// `GET /path 200 1234B 1.2ms` (and ` id=...` when a request id is set).
    #[default]
    Short,
    /// The Common Log Format of Apache and nginx:
    /// `127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] "GET /path HTTP/1.1" 200 1234`.
    Common,
}

/// Makes [`AccessLog`] handlers: one `info` line per request on the `log` target
/// `spindle::access`, with method, target, status, body bytes and duration.
///
/// When that target is disabled the layer does nothing at all; when enabled it
/// allocates nothing (the line is formatted on the stack, long targets truncated).
///
/// ```
/// use spindle::handlers::{AccessLogLayer, HandlerExt, LogFormat};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = (|_req: Request, res: Response| { res.send(b"hi").ok(); })
///     .with(AccessLogLayer::new().format(LogFormat::Common));
/// assert_eq!(TestRequest::get("/").run(&app).status(), 200);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer {
    format: LogFormat,
}

impl AccessLogLayer {
    /// The short format.
    pub fn new() -> Self {
        AccessLogLayer::default()
    }

    /// Chooses the line format.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }
}

impl<H: Handler> Layer<H> for AccessLogLayer {
    type Handler = AccessLog<H>;
    fn layer(&self, inner: H) -> AccessLog<H> {
        AccessLog {
            inner,
            format: self.format,
        }
    }
}

/// A handler that logs each request its inner handler answers; made by
/// [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<H> {
    inner: H,
    format: LogFormat,
}

impl AccessLog<()> {
    /// The layer, in the short format: `AccessLog::layer()` is `AccessLogLayer::new()`.
    pub fn layer() -> AccessLogLayer {
        AccessLogLayer::new()
    }
}

impl<H: Handler> AccessLog<H> {
    /// Wraps `inner`, in the short format.
    pub fn new(inner: H) -> Self {
        AccessLog {
            inner,
            format: LogFormat::Short,
        }
    }
}

impl<H: Handler> Handler for AccessLog<H> {
    fn handle(&self, req: Request<'_>, res: Response<'_>) {
        if !log::log_enabled!(target: TARGET, log::Level::Info) {
            return self.inner.handle(req, res);
        }
        let started = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let method = req.method().clone();
        let version = req.version();
        let peer = req.remote_addr();
        let mut target = StackText::<512>::new();
        let _ = write!(target, "{}", req.uri());
        let mut id = StackText::<64>::new();
        if let Some(v) = req.headers().get(super::request_id::X_REQUEST_ID) {
            let _ = id.write_str(v.to_str().unwrap_or("-"));
        }

        let mut fwd = Forward::new(res);
        self.inner.handle(req, Response::from_sink(&mut fwd));
        let status = if fwd.head_sent() {
            fwd.status()
        } else {
            StatusCode::OK
        };
        let bytes = fwd.bytes_written();
        drop(fwd);
        let elapsed = started.elapsed();

        match self.format {
            LogFormat::Short => {
                if id.as_str().is_empty() {
                    log::info!(target: TARGET, "{method} {target} {} {bytes}B {elapsed:.1?}", status.as_u16());
                } else {
                    log::info!(target: TARGET, "{method} {target} {} {bytes}B {elapsed:.1?} id={id}", status.as_u16());
                }
            }
            LogFormat::Common => {
                let time = clf_time(wall);
                let time = std::str::from_utf8(&time).unwrap_or("-");
                let mut host = StackText::<48>::new();
                match peer {
                    Some(addr) => {
                        let _ = write!(host, "{}", addr.ip());
                    }
                    None => {
                        let _ = host.write_str("-");
                    }
                }
                let mut size = StackText::<24>::new();
                if bytes == 0 {
                    let _ = size.write_str("-");
                } else {
                    let _ = write!(size, "{bytes}");
                }
                log::info!(
                    target: TARGET,
                    "{host} - - [{time}] \"{method} {target} {version:?}\" {} {size}",
                    status.as_u16()
                );
            }
        }
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        self.inner.check_continue(req)
    }
}
