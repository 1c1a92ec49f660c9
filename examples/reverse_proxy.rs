//! A reverse proxy: a spindle server whose handler forwards each request through the
//! pooled client to one upstream, streaming bodies both ways.
//!
//! `cargo run --release --example reverse_proxy -- 127.0.0.1:8080 http://127.0.0.1:3000`
//!
//! - request and response bodies are streamed, never buffered whole;
//! - hop-by-hop fields (RFC 9110 §7.6.1, and those named in `Connection`) are removed
//!   both ways; `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto` are added;
//! - an upstream that cannot be reached or answers garbage gives 502, one that is too
//!   slow gives 504;
//! - framing is re-chosen on each hop from what the client read: an upstream answer with
//!   both Content-Length and Transfer-Encoding reaches the client without its
//!   Content-Length (RFC 9112 §6.3: an intermediary must remove it), and obs-folded
//!   fields arrive unfolded (§5.2);
//! - clients may speak HTTP/1.x or HTTP/2 with prior knowledge (h2c) to the proxy; the
//!   upstream is always spoken to in HTTP/1.1. An HTTP/2 request body has no framing
//!   of its own (DATA frames until END_STREAM, usually without `Content-Length`), so it
//!   goes upstream chunked; `:authority` becomes `X-Forwarded-Host` as `Host` does for
//!   HTTP/1.x (split `Cookie` fields arrive joined: the server does that for HTTP/2).
//!
//! Try HTTP/2: `curl --http2-prior-knowledge -T bigfile http://127.0.0.1:8080/upload`.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::time::Duration;

use spindle::client::{Body, Redirect};
use spindle::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use spindle::http::{StatusCode, Version};
use spindle::server::{Request, Response, Server};
use spindle::{Client, ErrorKind};

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop fields, including those the `Connection` field names.
/// `Transfer-Encoding` is left to the caller (framing is re-chosen on each hop).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The proxy's handler state: the upstream origin (`http://host:port`, no path) and a
/// client whose pool is shared by all worker threads.
pub struct ReverseProxy {
    upstream: String,
    client: Client,
}

impl ReverseProxy {
    /// Forwards to `upstream` with a client that follows no redirects, ignores proxy
    /// environment variables, and gives up on an upstream after `timeout`.
    pub fn new(upstream: &str, timeout: Duration) -> ReverseProxy {
        let client = Client::builder()
            .redirect(Redirect::none())
            .env_proxy(false)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(timeout)
            .write_timeout(timeout)
            .build();
        ReverseProxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
        }
    }

    /// Answers one request by forwarding it.
    pub fn handle(&self, mut req: Request, mut res: Response) {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{}", self.upstream, target);
        let mut headers = req.headers().clone();
        strip_hop_by_hop(&mut headers);
        // The host the client asked for: `Host` on HTTP/1.x, `:authority` (kept in the
        // URI, and not a header field) on HTTP/2. The upstream gets its own `Host`
        // from the URL, as nginx's default `proxy_set_header Host $proxy_host` does.
        let host = headers.remove(header::HOST).or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        if let Some(host) = host {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
        if let Some(peer) = req.remote_addr() {
            let xff = HeaderName::from_static("x-forwarded-for");
            let value = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev}, {}", peer.ip()),
                None => peer.ip().to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(xff, value);
            }
        }
        let length = req.content_length();
        // A body of unknown length: HTTP/1.1 chunked, or any HTTP/2 request without
        // Content-Length (whether DATA frames follow the HEADERS is not in the head).
        let unknown_length = req.headers().contains_key(header::TRANSFER_ENCODING)
            || req.version() == Version::HTTP_2;
        let method = req.method().clone();
        let builder = self.client.request(method, url.as_str()).headers(headers);
        let result = match length {
            Some(n) => builder.body(Body::sized_reader(&mut req, n)).send(),
            None if unknown_length => {
                // Read the first piece before choosing the framing: an HTTP/2 GET
                // ends with its HEADERS and must not go upstream with an empty
                // chunked body (some servers refuse a GET with a body). Anything
                // else is forwarded chunked, streamed, never held whole.
                let mut first = vec![0u8; 16 * 1024];
                match read_some(&mut req, &mut first) {
                    Ok(0) => builder.send(),
                    Ok(n) => {
                        first.truncate(n);
                        let body = io::Cursor::new(first).chain(&mut req);
                        builder.body(Body::reader(body)).send()
                    }
                    Err(err) => {
                        log::warn!("reading the request body: {err}");
                        res.with_status(StatusCode::BAD_REQUEST)
                            .send(b"400 Bad Request: request body\n")
                            .ok();
                        return;
                    }
                }
            }
            None => builder.send(),
        };
        let mut upstream = match result {
            Ok(upstream) => upstream,
            Err(err) => {
                let status = match err.kind() {
                    ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::BAD_GATEWAY,
                };
                log::warn!("upstream failed: {err}");
                *res.status_mut() = status;
                res.send(format!("{status}\n").as_bytes()).ok();
                return;
            }
        };
        *res.status_mut() = upstream.status();
        let mut headers = upstream.headers().clone();
        strip_hop_by_hop(&mut headers);
        *res.headers_mut() = headers;
        let Ok(mut out) = res.start() else { return };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match upstream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).is_err() {
                        return; // the downstream client went away
                    }
                }
                Err(err) => {
                    // The head is out; the honest signal left is an incomplete body.
                    log::warn!("upstream body failed: {err}");
                    abort(out);
                    return;
                }
            }
        }
        if let Some(trailers) = upstream.trailers() {
            let mut trailers = trailers.clone();
            strip_hop_by_hop(&mut trailers);
            out.set_trailers(trailers);
        }
        out.end().ok();
    }
}

/// Reads at least one byte, or 0 at the end of the body.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Ends a streaming response so that the client sees it is incomplete: panicking is how
/// a spindle handler asks for the connection to be reset mid-response.
fn abort(out: Response<'_, spindle::server::Streaming>) {
    std::panic::resume_unwind(Box::new(out.status()));
}

fn main() -> spindle::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let upstream = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let proxy = ReverseProxy::new(&upstream, Duration::from_secs(30));
    let listening =
        Server::http(&listen)?.handle(move |req: Request, res: Response| proxy.handle(req, res))?;
    println!("proxying http://{} -> {upstream}", listening.local_addr());
    listening.join();
    Ok(())
}
