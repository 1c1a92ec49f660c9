//! A WebSocket echo server (RFC 6455) on [`Response::upgrade`], with the `tungstenite`
//! crate doing the framing; plain HTTP keeps being served on the same port.
//!
//! ```text
//! cargo run --example websocket_echo -- 127.0.0.1:3000
//! # then open http://127.0.0.1:3000/ in a browser, or:
//! python3 -m websockets ws://127.0.0.1:3000/ws
//! ```
//!
//! `GET /` answers a small page whose script talks to `/ws`; `GET /ws` with a valid
//! WebSocket handshake is answered `101 Switching Protocols`, and the connection is then
//! served on a thread of its own: text and binary messages are echoed, pings answered
//! with pongs (by tungstenite), and a close from the client is answered and ends it.
use std::io;
use std::thread;

use spindle::handlers::{AccessLogLayer, Layers, Router};
use spindle::http::header::{self, HeaderMap, HeaderValue};
use spindle::http::{Method, StatusCode, Version};
use spindle::server::{Handler, Request, Response, Server, Upgraded};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>spindle websocket echo</title>
<input id="msg" value="hello"> <button id="send">send</button>
<pre id="log"></pre>
<script>
const log = (s) => document.getElementById("log").textContent += s + "\n";
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onopen = () => log("open");
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = () => log("closed");
document.getElementById("send").onclick = () => ws.send(document.getElementById("msg").value);
</script>
"#;

/// The whole application: `/` (a page) and `/ws` (the echo), behind an access log.
pub fn app() -> impl Handler {
    let router = Router::builder()
        .route("GET /", |_req: Request, mut res: Response| {
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res.send(PAGE.as_bytes()).ok();
        })
        .route("GET /ws", websocket)
        .build()
        .expect("routes are valid");
    Layers::new().layer(AccessLogLayer::new()).service(router)
}

/// Why a request is not a WebSocket handshake we accept (RFC 6455 §4.2.1).
fn check_handshake(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET || version != Version::HTTP_11 {
        return Err("a WebSocket handshake is an HTTP/1.1 GET");
    }
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err("expected Connection: upgrade and Upgrade: websocket");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("missing Sec-WebSocket-Key")?
        .as_bytes();
    // The key is 16 random bytes in base64: 22 characters and "==".
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    if key.len() != 24 || !key[..22].iter().all(b64) || &key[22..] != b"==" {
        return Err("Sec-WebSocket-Key is not 16 bytes in base64");
    }
    Ok(())
}

/// `GET /ws`: validates the handshake, answers 101 and echoes on a thread of its own.
fn websocket(req: Request, mut res: Response) {
    if let Err(why) = check_handshake(req.method(), req.version(), req.headers()) {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res.with_status(StatusCode::BAD_REQUEST)
            .send(format!("{why}\n").as_bytes())
            .ok();
        return;
    }
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        res.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        res.with_status(StatusCode::UPGRADE_REQUIRED).send(b"").ok();
        return;
    }
    let key = req.headers()[header::SEC_WEBSOCKET_KEY].as_bytes();
    let accept = derive_accept_key(key);
    let headers = res.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    let upgraded = match res.with_status(StatusCode::SWITCHING_PROTOCOLS).upgrade() {
        Ok(upgraded) => upgraded,
        Err(e) => {
            log::warn!("websocket upgrade failed: {e}");
            return;
        }
    };
    // The server thread goes back to HTTP; the connection lives on this one.
    let spawned = thread::Builder::new()
        .name("websocket".into())
        .spawn(move || {
            if let Err(e) = echo(upgraded) {
                log::debug!("websocket ended: {e}");
            }
        });
    if let Err(e) = spawned {
        log::warn!("no thread for a websocket: {e}");
    }
}

/// Echoes text and binary messages until the peer closes.
pub fn echo(upgraded: Upgraded) -> tungstenite::Result<()> {
    // Bytes the client sent right behind its handshake are frames already.
    let (stream, early) = upgraded.into_parts();
    let mut ws = WebSocket::from_partially_read(stream, early, Role::Server, None);
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg)?,
            // tungstenite queued the pong: send it now.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => ws.flush()?,
            // tungstenite queued the close reply; once it is out, the exchange is over.
            Ok(Message::Close(_)) => {
                return match ws.flush() {
                    Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
    }
}

#[allow(dead_code)] // the tests include this file as a module for `app`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listening = Server::http(&addr)?.handle(app())?;
    println!("listening on http://{}", listening.local_addr());
    println!("websocket echo at ws://{}/ws", listening.local_addr());
    listening.join();
    Ok(())
}
