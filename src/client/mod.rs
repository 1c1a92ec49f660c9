//! The blocking HTTP client: [`Client`] with a keep-alive pool, redirects, timeouts and
//! proxies, built on the low-level [`conn`] API.
//!
//! ```
//! use spindle::server::{Request, Response, Server};
//!
//! let server = Server::http("127.0.0.1:0")?
//!     .handle(|req: Request, res: Response| {
//!         res.send(format!("you asked for {}", req.uri()).as_bytes()).ok();
//!     })?;
//! let client = spindle::Client::new();
//! let res = client
//!     .get(format!("http://{}/search", server.local_addr()))
//!     .query("q", "blocking io")
//!     .header("accept", "text/plain")
//!     .send()?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.text()?, "you asked for /search?q=blocking+io");
//! # server.close();
//! # Ok::<(), spindle::Error>(())
//! ```
pub mod body;
pub mod conn;
mod pool;
mod proxy;
pub(crate) mod redirect;
mod response;
mod stream;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use url::{Position, Url};

pub use body::Body;
pub use proxy::Proxy;
pub use redirect::{Attempt, Redirect, RedirectAction};
pub use response::{Response, DEFAULT_BODY_LIMIT};
pub use stream::{Connector, Stream, TcpConnector};

use crate::tls::TlsConnector;
use crate::{Error, ErrorKind, Result};
use conn::http2 as h2;
use conn::{Outgoing, SendFailure};
use pool::{Conn, H2Checkout, Pool, PoolKey, Pooled};
use proxy::Proxies;
use stream::Timed;

/// A blocking HTTP client with a keep-alive connection pool.
///
/// `Client` is `Clone + Send + Sync`; clones share one pool, so make one and pass it (or
/// clones of it) around. HTTP/1.1 connections are checked out for one exchange at a
/// time; an HTTP/2 connection (ALPN `h2` for `https://`, or
/// [`http2_prior_knowledge`](ClientBuilder::http2_prior_knowledge) for `http://`) is
/// shared: the requests of all threads to one destination are multiplexed over it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    connector: Box<dyn Connector>,
    conn: conn::Builder,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    timeout: Option<Duration>,
    redirect: Redirect,
    proxies: Proxies,
    default_headers: HeaderMap,
    tls: TlsSetting,
    h2: h2::Builder,
    http2_prior_knowledge: bool,
    tls_offers_h2: bool,
}

/// The client's TLS backend for `https://` URLs.
enum TlsSetting {
    Ready(Arc<dyn TlsConnector>),
    /// The builder's TLS options could not be turned into a backend: why.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Invalid(String),
    #[cfg_attr(feature = "tls", allow(dead_code))]
    Unavailable,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("idle_connections", &self.inner.pool.idle_count())
            .field("redirect", &self.inner.redirect)
            .finish_non_exhaustive()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with default settings (see [`ClientBuilder`]).
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// Configures a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Starts a GET request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder<'static> {
        self.request(Method::GET, url)
    }

    /// Starts a POST request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder<'static> {
        self.request(Method::POST, url)
    }

    /// Starts a PUT request.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder<'static> {
        self.request(Method::PUT, url)
    }

    /// Starts a DELETE request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder<'static> {
        self.request(Method::DELETE, url)
    }

    /// Starts a HEAD request.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder<'static> {
        self.request(Method::HEAD, url)
    }

    /// Starts a request with any method.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder<'static> {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.into_url(),
            headers: HeaderMap::new(),
            body: Body::empty(),
            timeout: None,
            error: None,
        }
    }

    /// How many idle connections the pool holds now.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// Closes every idle pooled connection.
    pub fn clear_idle(&self) {
        self.inner.pool.clear()
    }

    fn execute(&self, req: RequestBuilder<'_>) -> Result<Response> {
        let RequestBuilder {
            method,
            url,
            mut headers,
            mut body,
            timeout,
            error,
            ..
        } = req;
        let mut url = url?;
        if let Some(e) = error {
            return Err(e.with_url(&url));
        }
        let deadline = timeout.or(self.inner.timeout).map(|t| Instant::now() + t);
        let mut method = method;
        let mut chain: Vec<(Method, Url)> = Vec::new();
        loop {
            let res = self.send_once(&method, &url, &headers, &mut body, deadline)?;
            if !redirect::is_redirect(res.status()) {
                return Ok(res);
            }
            let Some(location) = res.headers().get(header::LOCATION) else {
                return Ok(res);
            };
            if matches!(self.inner.redirect.policy, redirect::Policy::None) {
                return Ok(res);
            }
            let status = res.status();
            let hop = redirect::next_hop(status, &method, &url, location.as_bytes())?;
            let next = hop.url.clone();
            let (next_method, keep_body) = (hop.method.clone(), hop.keep_body);
            if keep_body && !body.is_replayable() {
                // The body was streamed and is gone: hand the redirect to the caller.
                return Ok(res);
            }
            chain.push((method.clone(), url.clone()));
            let urls: Vec<Url> = chain.iter().map(|(_, u)| u.clone()).collect();
            let describe = |last: &Url| {
                let mut s: Vec<&str> = urls.iter().map(|u| u.as_str()).collect();
                s.push(last.as_str());
                s.join(" -> ")
            };
            if chain.iter().any(|(m, u)| *m == next_method && *u == next) {
                return Err(Error::new(
                    ErrorKind::Redirect,
                    format!("redirect loop: {}", describe(&next)),
                )
                .with_url(&next));
            }
            match &self.inner.redirect.policy {
                redirect::Policy::None => return Ok(res),
                redirect::Policy::Limit(max) => {
                    if chain.len() > *max {
                        return Err(Error::new(
                            ErrorKind::Redirect,
                            format!("more than {max} redirects: {}", describe(&next)),
                        )
                        .with_url(&next));
                    }
                }
                redirect::Policy::Custom(decide) => {
                    let attempt = Attempt {
                        status,
                        next: &next,
                        previous: &urls,
                    };
                    match decide(&attempt) {
                        RedirectAction::Follow => {}
                        RedirectAction::Stop => return Ok(res),
                        RedirectAction::Error(msg) => {
                            return Err(Error::new(ErrorKind::Redirect, msg).with_url(&next))
                        }
                    }
                }
            }
            drop(res); // drains a small body so the connection can be reused
            if !keep_body {
                body = Body::empty();
            }
            hop.rewrite_headers(&url, &mut headers);
            method = next_method;
            url = next;
        }
    }

    /// One exchange, with one retry on a fresh connection for idempotent requests whose
    /// pooled connection turned out to be dead.
    fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: &mut Body<'_>,
        deadline: Option<Instant>,
    ) -> Result<Response> {
        let inner = &*self.inner;
        let scheme: &'static str = match url.scheme() {
            "http" => "http",
            "https" => "https",
            other => {
                return Err(
                    Error::new(ErrorKind::Url, format!("unsupported URL scheme {other:?}"))
                        .with_url(url),
                )
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::new(ErrorKind::Url, "URL has no host").with_url(url))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::new(ErrorKind::Url, "URL has no port").with_url(url))?;
        let proxy = inner.proxies.for_url(url);
        let tunnel = proxy.filter(|p| scheme == "https" || p.tunnel_http);
        let forward = proxy.filter(|_| tunnel.is_none());
        let tls = match scheme {
            "https" => Some(self.tls_connector().map_err(|e| e.with_url(url))?),
            _ => None,
        };
        let route = match (tunnel, forward) {
            (Some(p), _) => Some(p.route_connect.as_str()),
            (_, Some(p)) => Some(p.route_http.as_str()),
            _ => None,
        };
        // Absolute form for a forwarding proxy, without the URL's userinfo, which is
        // never part of a request target (RFC 9110 §4.2.4).
        let absolute;
        let target = match forward {
            Some(_) => {
                absolute = format!(
                    "{}{}",
                    &url[..Position::BeforeUsername],
                    &url[Position::BeforeHost..Position::AfterQuery]
                );
                absolute.as_str()
            }
            None => &url[Position::BeforePath..Position::AfterQuery],
        };
        let target = if target.is_empty() { "/" } else { target };
        let host_header = &url[Position::BeforeHost..Position::AfterPort];
        let mut proxy_headers;
        let mut headers = headers;
        if let Some(auth) = forward.and_then(|p| p.auth.as_ref()) {
            if !headers.contains_key(header::PROXY_AUTHORIZATION) {
                proxy_headers = headers.clone();
                proxy_headers.insert(header::PROXY_AUTHORIZATION, auth.clone());
                headers = &proxy_headers;
            }
        }
        let out = Outgoing {
            method,
            target,
            host: Some(host_header),
            headers,
            defaults: Some(&inner.default_headers),
        };
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        let key = Arc::new(PoolKey {
            scheme,
            host: host.to_owned(),
            port,
            route: route.map(str::to_owned),
        });
        // HTTP/2 is spoken with prior knowledge on plain connections when asked, and on
        // TLS when ALPN picks it; never through a forwarding HTTP proxy.
        let may_h2 = forward.is_none()
            && match scheme {
                "http" => inner.http2_prior_knowledge,
                _ => inner.tls_offers_h2 && inner.pool.may_be_h2(&key),
            };
        let mut fresh_only = false;
        // One retry on a fresh connection, for a request the server provably did not
        // process (HTTP/1.1: a dead pooled connection; HTTP/2: REFUSED_STREAM or above
        // GOAWAY's last-stream-id). Only bodies held in memory can be sent again.
        let mut retried = false;
        let mut busy = 0u32;
        loop {
            // The right to connect, taken when no shared connection had room.
            let mut connecting = None;
            if may_h2 && !fresh_only {
                let h2 = match inner.pool.h2_checkout(&key, deadline) {
                    H2Checkout::Use(h2) => Some(h2),
                    H2Checkout::Connect(guard) => {
                        connecting = Some(guard);
                        None
                    }
                };
                if let Some(h2) = h2 {
                    match self.send_h2(
                        &h2,
                        method,
                        url,
                        scheme,
                        host_header,
                        target,
                        headers,
                        body,
                        deadline,
                    ) {
                        Ok((head, recv)) => {
                            let key = key.clone();
                            let alpn = (scheme == "https").then(|| crate::tls::ALPN_H2.to_vec());
                            return Ok(Response::new_h2(
                                head,
                                url.clone(),
                                recv,
                                key,
                                inner.pool.clone(),
                                alpn,
                            ));
                        }
                        Err(h2::Failed::Busy) => {
                            busy += 1;
                            if busy > 64 {
                                fresh_only = true;
                            }
                            continue;
                        }
                        Err(h2::Failed::Error { error, unprocessed }) => {
                            if unprocessed && !retried && body.is_replayable() {
                                log::debug!(
                                    "retrying {method} {url} on a fresh HTTP/2 connection: {error}"
                                );
                                retried = true;
                                fresh_only = true;
                                continue;
                            }
                            return Err(error.with_url(url));
                        }
                    }
                }
            }
            let pooled = if fresh_only {
                None
            } else {
                inner.pool.take(scheme, host, port, route)
            };
            let pooled = match pooled {
                Some(p) => p,
                None => {
                    fresh_only = true;
                    let pool_key = key.clone();
                    // Others wanting this destination wait for this connection, which
                    // they can share if it turns out to be HTTP/2.
                    if may_h2 && connecting.is_none() {
                        connecting = Some(inner.pool.h2_connecting(pool_key.clone()));
                    }
                    let stream = match tunnel {
                        Some(p) => self
                            .open_tunnel(p, host, port, deadline)
                            .map_err(|e| e.with_url(url))?,
                        None => {
                            let (h, p) = match forward {
                                Some(p) => (p.host.as_str(), p.port),
                                None => (host, port),
                            };
                            self.connect(h, p, deadline).map_err(|e| e.with_url(url))?
                        }
                    };
                    let stream = match tls {
                        Some(tls) => self
                            .tls_handshake(tls, host, stream, deadline)
                            .map_err(|e| e.with_url(url))?,
                        None => stream,
                    };
                    let alpn_h2 = stream.negotiated_alpn() == Some(crate::tls::ALPN_H2);
                    let use_h2 = match scheme {
                        "http" => may_h2,
                        _ => alpn_h2,
                    };
                    if alpn_h2 && !use_h2 {
                        return Err(Error::new(
                            ErrorKind::Http2,
                            format!("{host} chose HTTP/2 through ALPN, which is not available through an HTTP proxy"),
                        )
                        .with_url(url));
                    }
                    if use_h2 {
                        let sender = self.start_h2(stream).map_err(|e| e.with_url(url))?;
                        inner.pool.h2_insert(pool_key.clone(), sender.clone());
                        drop(connecting.take());
                        match self.send_h2(
                            &sender,
                            method,
                            url,
                            scheme,
                            host_header,
                            target,
                            headers,
                            body,
                            deadline,
                        ) {
                            Ok((head, recv)) => {
                                let alpn = alpn_h2.then(|| crate::tls::ALPN_H2.to_vec());
                                return Ok(Response::new_h2(
                                    head,
                                    url.clone(),
                                    recv,
                                    pool_key,
                                    inner.pool.clone(),
                                    alpn,
                                ));
                            }
                            Err(h2::Failed::Busy) => {
                                // Others took its streams first: look again.
                                fresh_only = false;
                                continue;
                            }
                            Err(h2::Failed::Error { error, unprocessed }) => {
                                if unprocessed && !retried && body.is_replayable() {
                                    log::debug!("retrying {method} {url} on a fresh HTTP/2 connection: {error}");
                                    retried = true;
                                    continue;
                                }
                                return Err(error.with_url(url));
                            }
                        }
                    }
                    if scheme == "https" && inner.tls_offers_h2 {
                        inner.pool.mark_h1_only(&pool_key);
                    }
                    drop(connecting.take());
                    let timed = self.timed(stream, deadline);
                    Pooled {
                        key: pool_key,
                        conn: Conn::H1(inner.conn.handshake(timed)?),
                    }
                }
            };
            // An HTTP/1.1 exchange: nobody should wait for it.
            drop(connecting);
            let Pooled {
                key: pooled_key,
                conn,
            } = pooled;
            let Conn::H1(mut sender) = conn;
            let alpn = sender.io().inner().negotiated_alpn().map(<[u8]>::to_vec);
            {
                let io = sender.io_mut();
                io.read_timeout = inner.read_timeout;
                io.write_timeout = inner.write_timeout;
                io.deadline = deadline;
            }
            match sender.send(&out, body) {
                Ok((head, res_body)) => {
                    return Ok(Response::new(
                        head,
                        url.clone(),
                        res_body,
                        pooled_key,
                        inner.pool.clone(),
                        alpn,
                    ))
                }
                Err(SendFailure { error, retryable }) => {
                    if retryable && idempotent && !fresh_only {
                        log::debug!("retrying {method} {url} on a fresh connection: {error}");
                        fresh_only = true;
                        continue;
                    }
                    return Err(error.with_url(url));
                }
            }
        }
    }

    /// Starts an HTTP/2 connection over `stream`, its driver on a thread of its own.
    fn start_h2(&self, stream: Box<dyn Stream>) -> Result<h2::SendRequest> {
        let (sender, connection) = self.inner.h2.handshake_boxed(stream)?;
        std::thread::Builder::new()
            .name("spindle-h2-client".into())
            .spawn(move || {
                if let Err(e) = connection.run() {
                    log::debug!("HTTP/2 client connection ended: {e}");
                }
            })
            .map_err(|e| Error::io("starting the HTTP/2 connection thread", e))?;
        Ok(sender)
    }

    /// One exchange over a shared HTTP/2 connection.
    #[allow(clippy::too_many_arguments)]
    fn send_h2(
        &self,
        sender: &h2::SendRequest,
        method: &Method,
        url: &Url,
        scheme: &str,
        authority: &str,
        target: &str,
        headers: &HeaderMap,
        body: &mut Body<'_>,
        deadline: Option<Instant>,
    ) -> std::result::Result<(http::Response<()>, h2::RecvBody), h2::Failed> {
        let inner = &*self.inner;
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(target)
            .build()
            .map_err(|e| h2::Failed::Error {
                error: Error::new(ErrorKind::Url, "URL cannot be sent over HTTP/2")
                    .with_source(e)
                    .with_url(url),
                unprocessed: false,
            })?;
        let mut head = http::Request::new(());
        *head.method_mut() = method.clone();
        *head.uri_mut() = uri;
        let map = head.headers_mut();
        map.reserve(headers.len() + inner.default_headers.len());
        for (k, v) in headers {
            map.append(k, v.clone());
        }
        for (k, v) in &inner.default_headers {
            if !headers.contains_key(k) {
                map.append(k, v.clone());
            }
        }
        let opts = h2::SendOptions {
            deadline,
            read_timeout: inner.read_timeout,
            write_timeout: inner.write_timeout,
            wait_for_stream: false,
        };
        sender.send(head, body, &opts)
    }

    /// The TLS backend for an `https://` URL, or why there is none.
    fn tls_connector(&self) -> Result<&dyn TlsConnector> {
        match &self.inner.tls {
            TlsSetting::Ready(tls) => Ok(&**tls),
            TlsSetting::Invalid(msg) => Err(Error::new(ErrorKind::Tls, msg.clone())),
            TlsSetting::Unavailable => Err(Error::new(
                ErrorKind::Tls,
                "https needs TLS, but this build of spindle has no TLS backend \
                 (enable the `tls` feature, or set ClientBuilder::tls_connector)",
            )),
        }
    }

    /// Runs the TLS handshake over a fresh stream, bounded by the connect timeout (or
    /// else the read timeout) and the request deadline.
    fn tls_handshake(
        &self,
        tls: &dyn TlsConnector,
        host: &str,
        stream: Box<dyn Stream>,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Stream>> {
        let inner = &*self.inner;
        let mut bound = inner.connect_timeout.or(inner.read_timeout);
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Tls,
                    format!("TLS handshake with {host} timed out (request deadline passed)"),
                ));
            }
            bound = Some(bound.map_or(left, |t| t.min(left)));
        }
        let bound = bound.map(|t| t.max(Duration::from_millis(1)));
        let io =
            |e: std::io::Error| Error::io(format!("preparing the TLS handshake with {host}"), e);
        stream.set_read_timeout(bound).map_err(io)?;
        stream
            .set_write_timeout(bound.or(inner.write_timeout))
            .map_err(io)?;
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let stream = tls.connect(name, stream)?;
        // `Timed` applies its own timeouts and assumes none are set.
        stream.set_read_timeout(None).map_err(io)?;
        stream.set_write_timeout(None).map_err(io)?;
        Ok(stream)
    }

    fn timed(&self, stream: Box<dyn Stream>, deadline: Option<Instant>) -> Timed {
        let mut timed = Timed::new(stream);
        timed.deadline = deadline;
        timed
    }

    fn connect_timeout(&self, deadline: Option<Instant>) -> Result<Option<Duration>> {
        let mut t = self.inner.connect_timeout;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "request deadline passed before connecting",
                ));
            }
            t = Some(t.map_or(left, |t| t.min(left)));
        }
        Ok(t)
    }

    fn connect(&self, host: &str, port: u16, deadline: Option<Instant>) -> Result<Box<dyn Stream>> {
        let timeout = self.connect_timeout(deadline)?;
        self.inner.connector.connect(host, port, timeout)
    }

    /// Opens a `CONNECT` tunnel through `proxy` to `host:port`.
    fn open_tunnel(
        &self,
        proxy: &Proxy,
        host: &str,
        port: u16,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Stream>> {
        let stream = self.connect(&proxy.host, proxy.port, deadline)?;
        let mut timed = self.timed(stream, deadline);
        timed.read_timeout = self.inner.read_timeout;
        timed.write_timeout = self.inner.write_timeout;
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut headers = HeaderMap::new();
        if let Some(auth) = &proxy.auth {
            headers.insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        let out = Outgoing {
            method: &Method::CONNECT,
            target: &authority,
            host: Some(&authority),
            headers: &headers,
            defaults: Some(&self.inner.default_headers),
        };
        let sender = conn::handshake(timed)?;
        let (head, body) = sender.send(&out, &mut Body::empty()).map_err(|f| f.error)?;
        if !head.status.is_success() {
            let kind = ErrorKind::Connect;
            return Err(Error::new(
                kind,
                format!(
                    "proxy {}:{} refused CONNECT {authority}: {}",
                    proxy.host, proxy.port, head.status
                ),
            ));
        }
        let (timed, rest) = body.into_parts();
        if !rest.is_empty() {
            return Err(Error::new(
                ErrorKind::Parse,
                "proxy sent bytes after its CONNECT response before the tunnel was used",
            ));
        }
        Ok(timed.into_inner())
    }
}

/// Configures a [`Client`].
///
/// Defaults: no timeouts (connect, read, write, overall), redirects followed up to 10,
/// up to 32 idle connections per host and 256 in total, kept 90 s, proxies from the
/// environment (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`; never for
/// loopback targets), `User-Agent: spindle/<version>`, ALPN offering `h2` and
/// `http/1.1` for `https://`, HTTP/1.1 for `http://` (HTTP/2 with prior knowledge is
/// opt-in).
///
/// ```
/// use std::time::Duration;
/// use spindle::client::Redirect;
/// let client = spindle::Client::builder()
///     .connect_timeout(Duration::from_secs(5))
///     .timeout(Duration::from_secs(30))
///     .redirect(Redirect::limit(3))
///     .max_idle_per_host(8)
///     .build();
/// # drop(client);
/// ```
pub struct ClientBuilder {
    connector: Box<dyn Connector>,
    conn: conn::Builder,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    timeout: Option<Duration>,
    redirect: Redirect,
    proxies: Vec<Proxy>,
    env_proxy: bool,
    default_headers: HeaderMap,
    max_idle_per_host: usize,
    max_idle: usize,
    idle_timeout: Option<Duration>,
    tls_connector: Option<Arc<dyn TlsConnector>>,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsOptions,
    h2: h2::Builder,
    http2_prior_knowledge: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("spindle/", env!("CARGO_PKG_VERSION"))),
        );
        default_headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        ClientBuilder {
            connector: Box::new(TcpConnector),
            conn: conn::Builder::default(),
            connect_timeout: None,
            read_timeout: None,
            write_timeout: None,
            timeout: None,
            redirect: Redirect::default(),
            proxies: Vec::new(),
            env_proxy: true,
            default_headers,
            max_idle_per_host: 32,
            max_idle: 256,
            idle_timeout: Some(Duration::from_secs(90)),
            tls_connector: None,
            #[cfg(feature = "tls")]
            tls: crate::tls::TlsOptions {
                offer_h2: true,
                ..Default::default()
            },
            h2: h2::Builder::default(),
            http2_prior_knowledge: false,
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Bounds connecting (per address tried, and overall).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// Bounds each read from the connection (the response head and each body read).
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = Some(t);
        self
    }

    /// Bounds each write to the connection.
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = Some(t);
        self
    }

    /// An overall deadline per request: connecting, sending, redirects, and reading the
    /// response body all happen within it.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The redirect policy (default: follow up to 10).
    pub fn redirect(mut self, policy: Redirect) -> Self {
        self.redirect = policy;
        self
    }

    /// Uses `proxy` (several may be given; the first that serves a URL is used).
    /// Configured proxies replace those from the environment.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// Whether to read proxies from the environment (default true).
    pub fn env_proxy(mut self, enabled: bool) -> Self {
        self.env_proxy = enabled;
        self
    }

    /// Adds a header sent with every request that does not set it.
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.default_headers.insert(name, value);
        self
    }

    /// The `User-Agent` sent by default.
    pub fn user_agent(self, value: HeaderValue) -> Self {
        self.default_header(header::USER_AGENT, value)
    }

    /// Most idle connections kept per destination (0 disables pooling).
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = n;
        self
    }

    /// Most idle connections kept in total.
    pub fn max_idle(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// How long an idle connection is kept (`None`: until the server closes it).
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// Limits on HTTP/1.1 response heads, interim (1xx) responses and trailers (see
    /// [`conn::Builder`]).
    pub fn conn_builder(mut self, conn: conn::Builder) -> Self {
        self.conn = conn;
        self
    }

    /// Opens connections with `connector` instead of plain TCP.
    pub fn connector(mut self, connector: impl Connector) -> Self {
        self.connector = Box::new(connector);
        self
    }

    /// Uses `connector` for `https://` URLs instead of the built-in native-tls backend
    /// (whose options on this builder are then ignored). This is how a TLS library
    /// other than native-tls plugs in, also in builds without the `tls` feature.
    pub fn tls_connector(mut self, connector: impl TlsConnector) -> Self {
        self.tls_connector = Some(Arc::new(connector));
        self
    }

    /// Trusts `cert` as a root certificate authority, in addition to the system's
    /// (see [`tls_built_in_root_certs`](ClientBuilder::tls_built_in_root_certs)).
    ///
    /// ```no_run
    /// use spindle::tls::Certificate;
    /// let ca = Certificate::from_pem(&std::fs::read("ca.pem")?)?;
    /// let client = spindle::Client::builder().add_root_certificate(ca).try_build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn add_root_certificate(mut self, cert: crate::tls::Certificate) -> Self {
        self.tls.roots.push(cert);
        self
    }

    /// Whether the system's root certificates are trusted (default true). With
    /// `false`, only those given to
    /// [`add_root_certificate`](ClientBuilder::add_root_certificate) are.
    #[cfg(feature = "tls")]
    pub fn tls_built_in_root_certs(mut self, enabled: bool) -> Self {
        self.tls.no_built_in_roots = !enabled;
        self
    }

    /// Presents `identity` (a client certificate and its key) to servers that ask for
    /// one.
    #[cfg(feature = "tls")]
    pub fn identity(mut self, identity: crate::tls::Identity) -> Self {
        self.tls.identity = Some(identity);
        self
    }

    /// **Dangerous**: accepts any server certificate, expired, self-signed or for
    /// another host, so anyone on the path can read and change the traffic. For tests
    /// against throwaway certificates only.
    #[cfg(feature = "tls")]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.accept_invalid_certs = accept;
        self
    }

    /// **Dangerous**: accepts a trusted certificate even if it was issued for another
    /// host name, so any holder of a certificate from a trusted CA can impersonate the
    /// server. For tests only.
    #[cfg(feature = "tls")]
    pub fn danger_accept_invalid_hostnames(mut self, accept: bool) -> Self {
        self.tls.accept_invalid_hostnames = accept;
        self
    }

    /// Offers `h2` besides `http/1.1` through ALPN (default true). A server that
    /// chooses `h2` gets one shared HTTP/2 connection per destination, multiplexing
    /// the requests of all threads (another is opened only at the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS); `false` offers only `http/1.1`.
    /// [`Response::alpn`] reports what was chosen. Not for `https://` through a
    /// forwarding proxy (tunnels are fine).
    #[cfg(feature = "tls")]
    pub fn tls_offer_h2(mut self, offer: bool) -> Self {
        self.tls.offer_h2 = offer;
        self
    }

    /// Speaks HTTP/2 to `http://` URLs without asking first ("prior knowledge", h2c):
    /// the connection starts with the HTTP/2 preface. Only for servers known to accept
    /// it (spindle's server does, on its HTTP/1.1 port); default false. Requests of
    /// all threads then share one connection per destination, as with ALPN `h2`.
    /// Not used through a forwarding HTTP proxy.
    ///
    /// ```
    /// use spindle::server::{Request, Response, Server};
    /// let server = Server::http("127.0.0.1:0")?
    ///     .handle(|req: Request, res: Response| {
    ///         res.send(format!("{:?}", req.version()).as_bytes()).ok();
    ///     })?;
    /// let client = spindle::Client::builder().http2_prior_knowledge().build();
    /// let res = client.get(format!("http://{}/", server.local_addr())).send()?;
    /// assert_eq!(res.version(), spindle::http::Version::HTTP_2);
    /// assert_eq!(res.text()?, "HTTP/2.0");
    /// # server.close();
    /// # Ok::<(), spindle::Error>(())
    /// ```
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2_prior_knowledge = true;
        self
    }

    /// HTTP/2 connection settings (windows, header list size).
    pub fn http2_builder(mut self, builder: h2::Builder) -> Self {
        self.h2 = builder;
        self
    }

    /// Builds the client, failing with [`ErrorKind::Tls`] if the TLS options are
    /// invalid (for example a client identity the TLS library rejects).
    /// [`build`](ClientBuilder::build) reports such a problem on each `https://`
    /// request instead.
    pub fn try_build(self) -> Result<Client> {
        let client = self.build();
        if let TlsSetting::Invalid(msg) = &client.inner.tls {
            return Err(Error::new(ErrorKind::Tls, msg.clone()));
        }
        Ok(client)
    }

    fn tls_setting(&self) -> TlsSetting {
        if let Some(c) = &self.tls_connector {
            return TlsSetting::Ready(c.clone());
        }
        #[cfg(feature = "tls")]
        {
            match self.tls.build() {
                Ok(c) => TlsSetting::Ready(Arc::new(c)),
                Err(e) => TlsSetting::Invalid(format!("invalid TLS settings: {e}")),
            }
        }
        #[cfg(not(feature = "tls"))]
        TlsSetting::Unavailable
    }

    /// Builds the client.
    pub fn build(self) -> Client {
        let tls = self.tls_setting();
        #[cfg(feature = "tls")]
        let tls_offers_h2 = self.tls_connector.is_some() || self.tls.offer_h2;
        #[cfg(not(feature = "tls"))]
        let tls_offers_h2 = true;
        let proxies = if !self.proxies.is_empty() {
            Proxies::new(self.proxies)
        } else if self.env_proxy {
            Proxies::from_env_with(|k| std::env::var(k).ok())
        } else {
            Proxies::default()
        };
        Client {
            inner: Arc::new(Inner {
                pool: Arc::new(Pool::new(
                    self.max_idle_per_host,
                    self.max_idle,
                    self.idle_timeout,
                )),
                connector: self.connector,
                conn: self.conn,
                connect_timeout: self.connect_timeout,
                read_timeout: self.read_timeout,
                write_timeout: self.write_timeout,
                timeout: self.timeout,
                redirect: self.redirect,
                proxies,
                default_headers: self.default_headers,
                tls,
                h2: self.h2,
                http2_prior_knowledge: self.http2_prior_knowledge,
                tls_offers_h2,
            }),
        }
    }
}

/// A request being built; [`send`](RequestBuilder::send) runs it.
///
/// The lifetime is that of a streamed body ([`Body::reader`]), so a request body can
/// borrow, for example, a server request being forwarded.
pub struct RequestBuilder<'a> {
    client: Client,
    method: Method,
    url: Result<Url>,
    headers: HeaderMap,
    body: Body<'a>,
    timeout: Option<Duration>,
    error: Option<Error>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url.as_ref().map(|u| u.as_str()))
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

impl<'a> RequestBuilder<'a> {
    /// Adds a header field (several with one name are all sent). An invalid name or
    /// value makes [`send`](RequestBuilder::send) fail with [`ErrorKind::Usage`].
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(k), Ok(v)) => {
                self.headers.append(k, v);
            }
            (Err(e), _) => self.set_error(e.into()),
            (_, Err(e)) => self.set_error(e.into()),
        }
        self
    }

    /// Adds all of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        for (k, v) in headers.iter() {
            self.headers.append(k, v.clone());
        }
        self
    }

    /// Appends `name=value` to the URL's query, percent-encoded.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        if let Ok(url) = &mut self.url {
            url.query_pairs_mut().append_pair(name, value);
        }
        self
    }

    /// Sets the body: bytes, a string, or [`Body::reader`] for any `io::Read`.
    pub fn body<'b>(self, body: impl Into<Body<'b>>) -> RequestBuilder<'b> {
        RequestBuilder {
            client: self.client,
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: body.into(),
            timeout: self.timeout,
            error: self.error,
        }
    }

    /// An overall deadline for this request, replacing the client's.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    fn set_error(&mut self, e: http::Error) {
        if self.error.is_none() {
            self.error = Some(Error::new(ErrorKind::Usage, "invalid header").with_source(e));
        }
    }

    /// Sends the request and reads the response head, following redirects as the
    /// client's policy says.
    pub fn send(self) -> Result<Response> {
        let client = self.client.clone();
        client.execute(self)
    }
}

/// What [`Client::get`] and friends accept as a URL: `&str`, `String` or [`Url`].
pub trait IntoUrl: private::Sealed {
    /// Parses (or takes) the URL.
    fn into_url(self) -> Result<Url>;
}

mod private {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
    impl Sealed for url::Url {}
    impl Sealed for &url::Url {}
}

fn parse_url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| {
        Error::new(ErrorKind::Url, "invalid URL")
            .with_source(e)
            .with_url(s)
    })
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url> {
        parse_url(self)
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url> {
        parse_url(&self)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url> {
        parse_url(self)
    }
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url> {
        Ok(self.clone())
    }
}
