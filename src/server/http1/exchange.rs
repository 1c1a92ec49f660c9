//! One request through the handler: its body reader and response writer over the
//! connection, 100-continue, a panic caught, and the connection settled afterwards;
//! and the switch to HTTP/2 for `Upgrade: h2c`.
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Version};

use super::body::{BodyLimits, BodyProgress, BodyState, H1Body};
use super::output::{Output, Shared, WriteLimits};
use super::sink::{H1Sink, SinkState};
use super::{lock, write_error, Fate, ReadSide, Scratch};
use crate::h1::framing::{BodyFraming, ChunkedDecoder};
use crate::h1::head::{comma_tokens, RequestHead};
use crate::runtime::log_limit::{and_more, RateLimitedLog};
use crate::runtime::transport::Transport;
use crate::server::config::Config;
use crate::server::h2c_upgrade::{self, H2cUpgrade};
use crate::server::request::{Body, Request};
use crate::server::response::Response;
use crate::server::Handler;

/// How a connection stands after an exchange that keeps it.
pub(super) enum Settled {
    /// Ready for the next request.
    Done,
    /// The handler left some of its body unread: the loop drains it first.
    Drain,
}

/// Sets up the reading of a request body whose head has just been parsed.
pub(super) fn begin_body(side: &mut ReadSide, framing: BodyFraming, cfg: &Config) {
    side.body = match framing {
        BodyFraming::Empty => BodyState::Done,
        BodyFraming::Length(n) => BodyState::Length(n),
        BodyFraming::Chunked => {
            BodyState::Chunked(Box::new(ChunkedDecoder::new(cfg.max_head_bytes())))
        }
        // Requests are never close-delimited (RFC 9112 §6.3).
        BodyFraming::CloseDelimited => BodyState::Done,
    };
    side.trailers = None;
    let has_body = !matches!(side.body, BodyState::Done);
    side.progress = has_body.then(|| Box::new(BodyProgress::start(cfg)));
}

/// Asks the handler whether it wants the body of a request that expects `100 Continue`
/// (RFC 9110 §10.1.1), before anything of it is read: [`Handler::check_continue`]. The
/// head's fields lend themselves to the request the hook sees and come back after.
pub(super) fn check_continue<H: Handler + ?Sized>(
    handler: &H,
    head: &mut RequestHead,
    peer: Option<SocketAddr>,
) -> StatusCode {
    let mut request = Request::new(
        std::mem::take(&mut head.method),
        std::mem::take(&mut head.uri),
        head.version,
        std::mem::take(&mut head.headers),
        peer,
        Body::Empty,
    );
    let verdict = catch_unwind(AssertUnwindSafe(|| handler.check_continue(&request)))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let parts = request.take_head();
    head.method = parts.method;
    head.uri = parts.uri;
    head.headers = parts.headers;
    verdict
}

/// Runs the handler for one request (whose body reading [`begin_body`] set up) and
/// settles the exchange afterwards. `continued`: the `100 Continue` question was
/// already answered ([`check_continue`]). `Err` means the connection must close.
#[allow(clippy::too_many_arguments)]
pub(super) fn exchange<H: Handler + ?Sized>(
    io: &dyn Transport,
    peer: Option<SocketAddr>,
    handler: &H,
    cfg: &Config,
    side: &mut ReadSide,
    scratch: &mut Scratch,
    stopping: &AtomicBool,
    head: RequestHead,
    continued: bool,
) -> Result<Settled, Fate> {
    let RequestHead {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    } = head;
    // An upgrade request (RFC 9110 §7.8) or a CONNECT: what follows the request may be
    // another protocol, so the connection is never reused for HTTP/1 after it and an
    // unread body is not drained; the handler may take the connection over instead.
    let connect = method == Method::CONNECT;
    let upgrade_offered = is_upgrade_request(&headers);
    let keep_alive = keep_alive && cfg.keep_alive && !connect && !upgrade_offered;
    // Bytes beyond this request's body are already here: another request follows, which
    // a graceful shutdown must still answer.
    let pipelined = match framing {
        BodyFraming::Length(n) => side.rbuf.data().len() as u64 > n,
        BodyFraming::Empty => !side.rbuf.is_empty(),
        _ => false,
    };
    let is_head = method == Method::HEAD;
    scratch.headers.clear();

    let has_body = !matches!(side.body, BodyState::Done);
    let shared = Mutex::new(Shared {
        side,
        out: Output::new(&mut scratch.write, WriteLimits::of(cfg)),
        continue_pending: false,
        head_written: false,
    });
    let mut body = H1Body {
        io,
        shared: &shared,
        trailers: None,
        limits: BodyLimits::of(cfg),
        max_buffer: cfg.max_head_bytes(),
    };
    let request = Request::new(
        method,
        uri,
        version,
        headers,
        peer,
        if has_body {
            Body::Source(&mut body)
        } else {
            Body::Empty
        },
    );
    if expect_continue && has_body && !continued {
        let verdict = catch_unwind(AssertUnwindSafe(|| handler.check_continue(&request)))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if verdict != StatusCode::CONTINUE {
            drop(request);
            log::debug!("refused an expected body with {verdict}");
            write_error(lock(&shared).out.buf, verdict, "");
            return Err(Fate::BadRequest(verdict));
        }
        // The 100 goes out with the first body read, if no final answer came first.
        lock(&shared).continue_pending = true;
    }

    let mut sink = H1Sink {
        io,
        shared: &shared,
        connect,
        upgrade_offered,
        headers: &mut scratch.headers,
        version,
        is_head,
        keep_alive,
        state: SinkState::Fresh,
        trailers: None,
        close: false,
        stopping,
        pipelined,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        handler.handle(request, Response::new(&mut sink));
    }));
    let panicked = match outcome {
        Ok(()) => false,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            static PANICS: RateLimitedLog = RateLimitedLog::new(5);
            PANICS.hit(|n| log::error!("handler panicked: {message}{}", and_more(n)));
            true
        }
    };
    let H1Sink {
        state,
        close,
        keep_alive,
        ..
    } = sink;
    drop(body);
    let shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    let Shared {
        side,
        mut out,
        continue_pending,
        ..
    } = shared;
    let finished = match state {
        // Whatever became of the connection is the handler's business.
        SinkState::Hijacked => return Err(Fate::Hijacked),
        SinkState::Done => !panicked,
        SinkState::Abandoned => false,
        SinkState::Fresh | SinkState::Streaming(_) => {
            if !panicked {
                // The handler kept the response (mem::forget, or a leak).
                log::warn!("handler returned without finishing its response");
            }
            false
        }
    };
    if !finished {
        // A panic, an abort, or a body that failed under a started response: this
        // response must not look complete. Earlier pipelined answers still go out;
        // what this one buffered is dropped, and if none of it was sent, an error
        // answer takes its place.
        if out.retract() && !out.broken {
            let answer = match side.body {
                _ if panicked => Some(StatusCode::INTERNAL_SERVER_ERROR),
                BodyState::Failed { answer } => answer,
                _ => None,
            };
            if let Some(status) = answer {
                write_error(out.buf, status, "");
            }
        }
        return Err(if panicked {
            Fate::HandlerPanic
        } else {
            Fate::BodyError
        });
    }
    if out.broken {
        // A failed write: the connection is dead, nothing to flush or linger for.
        return Err(Fate::Io);
    }
    if close {
        return Err(Fate::BodyError);
    }
    if !keep_alive {
        return Err(Fate::NotKeepAlive);
    }
    // Whatever body the handler left unread must go before the next head: the event
    // loop drains it (what is owed goes out meanwhile).
    if !matches!(side.body, BodyState::Done) {
        if matches!(side.body, BodyState::Failed { .. }) {
            // Where the body ends is unknown: nothing after it can be read as HTTP.
            return Err(Fate::BodyError);
        }
        if continue_pending {
            // The client still waits for our go-ahead; it may never send the body.
            return Err(Fate::NotKeepAlive);
        }
        return Ok(Settled::Drain);
    }
    Ok(Settled::Done)
}

/// The client's SETTINGS when `head` asks for `Upgrade: h2c` and can have it: plain
/// TCP (h2c means cleartext), HTTP/1.1, a body the event loop reads whole before the
/// switch (at most `body_buffer` bytes) and no `Expect: 100-continue` (the client must
/// send the whole body first). Other requests are served over HTTP/1.1, which RFC 7540
/// §3.2 allows.
pub(super) fn h2c_settings(
    io: &dyn Transport,
    head: &RequestHead,
    cfg: &Config,
) -> Option<Vec<u8>> {
    let body_fits = match head.framing {
        BodyFraming::Empty => true,
        BodyFraming::Length(n) => n <= cfg.body_buffer as u64,
        BodyFraming::Chunked | BodyFraming::CloseDelimited => false,
    };
    if io.is_tls()
        || head.version != Version::HTTP_11
        || head.expect_continue
        || head.method == Method::CONNECT
        || !body_fits
    {
        return None;
    }
    h2c_upgrade::requested_settings(&head.headers)
}

/// Takes the upgrading request's body (all of it in the read buffer already: the loop
/// read it, see [`h2c_settings`]) and switches the connection: `101 Switching
/// Protocols` goes out (after any earlier pipelined answers).
pub(super) fn take_h2c_upgrade(
    io: &dyn Transport,
    side: &mut ReadSide,
    cfg: &Config,
    out: &mut Vec<u8>,
    head: RequestHead,
    settings: Vec<u8>,
) -> Result<H2cUpgrade, Fate> {
    let RequestHead {
        method,
        uri,
        headers,
        framing,
        ..
    } = head;
    let mut body = Vec::new();
    if let BodyFraming::Length(n) = framing {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let data = side.rbuf.data();
        if data.len() < n {
            // Not all here: the caller buffers first; a bug if it did not.
            log::warn!("h2c upgrade body incomplete ({} of {n} bytes)", data.len());
            return Err(Fate::BodyError);
        }
        body.extend_from_slice(&data[..n]);
        side.rbuf.consume(n);
    }
    side.body = BodyState::Done;
    let mut out = Output::new(out, WriteLimits::of(cfg));
    out.buf.extend_from_slice(h2c_upgrade::SWITCHING_PROTOCOLS);
    if let Err(e) = out.flush(io) {
        log::debug!("write failed: {e}");
        return Err(Fate::Io);
    }
    Ok(H2cUpgrade {
        head: h2c_upgrade::stream_head(method, uri, headers),
        body,
        settings,
    })
}

/// `Connection: upgrade` with an `Upgrade` field: the client offers to switch protocols.
pub(super) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"upgrade")))
}
