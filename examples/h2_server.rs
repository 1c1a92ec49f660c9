//! HTTP/1.1 and HTTP/2 on one port, and every answer says which protocol carried it.
//!
//! ```sh
//! cargo run --example h2_server -- 127.0.0.1:3000
//! curl --http2-prior-knowledge http://127.0.0.1:3000/    # "... over HTTP/2.0"
//! curl --http1.1 http://127.0.0.1:3000/                  # "... over HTTP/1.1"
//! nghttp -v http://127.0.0.1:3000/                        # frame by frame
//! curl --http2-prior-knowledge -T somefile http://127.0.0.1:3000/echo
//! ```
//!
//! There is nothing HTTP/2-specific to set up: a plaintext connection that opens with
//! the HTTP/2 client preface is served as HTTP/2 with prior knowledge (h2c), any other
//! as HTTP/1.x, through the same handler. The handler below only looks at
//! `req.version()` to report it; the body reading and streaming code is the same for
//! both protocols (chunked on HTTP/1.1, DATA frames on HTTP/2).
//!
//! `GET` any path: a line naming the path and the protocol, plus an `X-Protocol` field.
//! `POST`/`PUT /echo`: the request body streamed back, never held whole.
#![allow(dead_code)] // tests/examples_h2.rs includes this file for its handler

use std::io;

use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::http::{Method, StatusCode, Version};
use spindle::server::{Listening, Request, Response, Server};

/// The protocol's name as clients print it (`HTTP/1.1`, `HTTP/2.0`, ...).
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

/// Answers one request, HTTP/1.x or HTTP/2 alike.
pub fn handle(mut req: Request, mut res: Response) {
    let proto = protocol(req.version());
    // A response field as well as the body text, so that scripts (and tests) can check
    // it without parsing the body.
    res.headers_mut()
        .insert("x-protocol", HeaderValue::from_static(proto));
    match (req.method(), req.path()) {
        (&Method::POST | &Method::PUT, "/echo") => {
            if let Some(ct) = req.headers().get(CONTENT_TYPE).cloned() {
                res.headers_mut().insert(CONTENT_TYPE, ct);
            }
            // Without a Content-Length the library frames the streamed body itself:
            // chunked on HTTP/1.1, DATA frames ended by END_STREAM on HTTP/2.
            let mut res = match res.start() {
                Ok(res) => res,
                Err(e) => return log::warn!("starting the response: {e}"),
            };
            if let Err(e) = io::copy(&mut req, &mut res) {
                log::warn!("echoing the body over {proto}: {e}");
            }
        }
        (&Method::GET | &Method::HEAD, path) => {
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            let text = format!("{} {path} over {proto}\n", req.method());
            res.send(text.as_bytes()).ok();
        }
        _ => {
            res.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, HEAD, POST, PUT"));
            res.with_status(StatusCode::METHOD_NOT_ALLOWED)
                .send(b"GET any path, or POST/PUT /echo\n")
                .ok();
        }
    }
}

/// Starts the server on `addr` (`127.0.0.1:0` picks a free port).
pub fn serve(addr: &str) -> spindle::Result<Listening> {
    Server::http(addr)?.handle(handle)
}

fn main() -> spindle::Result<()> {
    env_logger::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listening = serve(&addr)?;
    println!(
        "listening on http://{} (HTTP/1.1, and HTTP/2 with prior knowledge)",
        listening.local_addr()
    );
    listening.join();
    Ok(())
}
