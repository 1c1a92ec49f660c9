//! The request-id layer.
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;

use super::Layer;
use crate::server::{Handler, Request, Response};

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent id kept; longer (or non-printable) ones are replaced.
const MAX_LEN: usize = 128;

/// Makes [`RequestId`] handlers: every request gets an `X-Request-Id` — the client's,
/// if it sent a sane one (1 to 128 visible ASCII characters), else a fresh
/// process-unique one — set on the request (read it with
/// [`RequestExt::request_id`](super::RequestExt::request_id)) and on the response.
///
/// ```
/// use spindle::handlers::{HandlerExt, RequestExt, RequestIdLayer};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let app = (|req: Request, res: Response| {
///     let id = req.request_id().unwrap_or("").to_owned();
///     res.send(id.as_bytes()).ok();
/// })
/// .with(RequestIdLayer::new());
/// let rec = TestRequest::get("/").header("x-request-id", "abc-123").run(&app);
/// assert_eq!((rec.text().as_str(), rec.header("x-request-id")), ("abc-123", Some("abc-123")));
/// let rec = TestRequest::get("/").run(&app);
/// assert_eq!(rec.header("x-request-id").map(str::len), Some(16));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer {
    _priv: (),
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        RequestIdLayer::default()
    }
}

impl<H: Handler> Layer<H> for RequestIdLayer {
    type Handler = RequestId<H>;
    fn layer(&self, inner: H) -> RequestId<H> {
        RequestId { inner }
    }
}

/// A handler that gives each request an id; made by [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestId<H> {
    inner: H,
}

impl<H: Handler> RequestId<H> {
    /// Wraps `inner`.
    pub fn new(inner: H) -> Self {
        RequestId { inner }
    }
}

fn acceptable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| c.is_ascii_graphic())
}

fn fresh_id() -> HeaderValue {
    static BASE: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // A bijective mix of the counter, so ids do not look sequential yet never repeat
    // within a process.
    let mut x = n.wrapping_add(base);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let mut buf = [0u8; 16];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[(x >> (60 - 4 * i) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("0"))
}

impl<H: Handler> Handler for RequestId<H> {
    fn handle(&self, mut req: Request<'_>, mut res: Response<'_>) {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(v) if acceptable(v) => v.clone(),
            _ => {
                let id = fresh_id();
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        res.headers_mut().insert(X_REQUEST_ID, id);
        self.inner.handle(req, res)
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        self.inner.check_continue(req)
    }
}
