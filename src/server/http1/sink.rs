//! The response writer of one exchange: the head (status, fields, the framing the
//! library chooses), the body in that framing, trailers, and taking the connection
//! over (upgrade, CONNECT tunnels).
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Version};

use super::body::BodyState;
use super::lock;
use super::output::{broken_pipe, Shared, WRITE_BUFFER};
use crate::h1::date::with_http_date;
use crate::h1::encode::{write_decimal, write_header, write_headers, write_status_line};
use crate::h1::framing::write_chunk_size;
use crate::h1::head::comma_tokens;
use crate::runtime::transport::Transport;
use crate::server::response::ResponseSink;
use crate::server::upgrade::Upgraded;

pub(super) enum SinkState {
    Fresh,
    Streaming(Encoder),
    Done,
    Abandoned,
    /// The handler took the connection ([`Response::upgrade`]).
    Hijacked,
}

#[derive(Clone, Copy)]
pub(super) enum Encoder {
    Length(u64),
    Chunked,
    /// Written as is until the connection closes: an HTTP/1.0 body of unknown length,
    /// or the tunnel after a 2xx answer to CONNECT.
    CloseDelimited,
    /// HEAD, 204, 304: the body is dropped.
    Discard,
}

/// The response writer of the current exchange.
pub(super) struct H1Sink<'c, 's> {
    pub(super) io: &'c dyn Transport,
    pub(super) shared: &'c Mutex<Shared<'s>>,
    /// The request is a CONNECT (a 2xx answer may take the connection).
    pub(super) connect: bool,
    /// The request offers to switch protocols (`Connection: upgrade` and `Upgrade`).
    pub(super) upgrade_offered: bool,
    pub(super) headers: &'c mut HeaderMap,
    pub(super) version: Version,
    pub(super) is_head: bool,
    pub(super) keep_alive: bool,
    pub(super) state: SinkState,
    pub(super) trailers: Option<HeaderMap>,
    /// The connection must close after this response (unfinished or close-delimited body).
    pub(super) close: bool,
    /// The server is shutting down gracefully.
    pub(super) stopping: &'c AtomicBool,
    /// Another request already waits behind this one.
    pub(super) pipelined: bool,
}

impl H1Sink<'_, '_> {
    /// Writes the head into the output and decides the body's framing.
    pub(super) fn write_head(
        &mut self,
        shared: &mut Shared<'_>,
        status: StatusCode,
        whole_len: Option<u64>,
    ) -> io::Result<Encoder> {
        if !matches!(self.state, SinkState::Fresh) {
            return Err(io::Error::other("response head already sent"));
        }
        shared.head_written = true;
        let no_body_status = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        // RFC 9110 §9.3.6: a 2xx answer to CONNECT starts the tunnel; it has no body
        // and no framing fields, and what the handler writes after it is tunnel data.
        let tunnel = self.connect && status.is_success();
        let headers = &mut *self.headers;

        if no_body_status || tunnel {
            // RFC 9110 §8.6, RFC 9112 §6.1: never framing fields on 1xx and 204.
            if status != StatusCode::NOT_MODIFIED {
                headers.remove(header::CONTENT_LENGTH);
            }
            headers.remove(header::TRANSFER_ENCODING);
        }
        let user_length = if no_body_status || tunnel {
            None
        } else {
            match crate::h1::framing::content_length(headers) {
                Ok(n) => n,
                Err(_) => {
                    headers.remove(header::CONTENT_LENGTH);
                    log::warn!("handler set an invalid Content-Length; removed it");
                    None
                }
            }
        };
        if response_wants_close(headers)
            || (self.stopping.load(Ordering::Relaxed) && !self.pipelined)
        {
            // During a graceful shutdown the last answer says so.
            self.keep_alive = false;
        }

        let mut encoder = if no_body_status || (self.is_head && whole_len.is_none()) {
            Encoder::Discard
        } else if tunnel {
            self.keep_alive = false;
            Encoder::CloseDelimited
        } else if let Some(len) = whole_len {
            // `send`: the real length wins, except that a HEAD answer may keep the length
            // the handler declared for the GET it mirrors.
            if !(self.is_head && len == 0 && user_length.is_some()) {
                headers.remove(header::CONTENT_LENGTH);
                headers.remove(header::TRANSFER_ENCODING);
            }
            Encoder::Length(len)
        } else if let Some(len) = user_length {
            headers.remove(header::TRANSFER_ENCODING);
            Encoder::Length(len)
        } else if let Some(te) = headers.get(header::TRANSFER_ENCODING) {
            let last = comma_tokens(te.as_bytes()).last().unwrap_or(b"");
            if last.eq_ignore_ascii_case(b"chunked") && self.version == Version::HTTP_11 {
                Encoder::Chunked
            } else {
                headers.remove(header::TRANSFER_ENCODING);
                self.keep_alive = false;
                Encoder::CloseDelimited
            }
        } else if self.version == Version::HTTP_11 {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Encoder::Chunked
        } else {
            self.keep_alive = false;
            Encoder::CloseDelimited
        };
        if self.is_head {
            encoder = Encoder::Discard;
        }

        let out = &mut *shared.out.buf;
        write_status_line(out, Version::HTTP_11, status);
        if !headers.contains_key(header::DATE) {
            with_http_date(|date| write_header(out, b"date", date));
        }
        if let (Some(len), false) = (whole_len, headers.contains_key(header::CONTENT_LENGTH)) {
            if !no_body_status && !tunnel {
                out.extend_from_slice(b"content-length: ");
                write_decimal(out, len);
                out.extend_from_slice(b"\r\n");
            }
        }
        write_headers(out, headers);
        if !status.is_informational() {
            if !self.keep_alive {
                if !response_wants_close(headers) && !tunnel {
                    out.extend_from_slice(b"connection: close\r\n");
                }
            } else if self.version == Version::HTTP_10 {
                out.extend_from_slice(b"connection: keep-alive\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(encoder)
    }
}

pub(super) fn response_wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| comma_tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close")))
}

impl ResponseSink for H1Sink<'_, '_> {
    fn version(&self) -> Version {
        self.version
    }

    fn headers(&self) -> &HeaderMap {
        self.headers
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers
    }

    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()> {
        let shared = self.shared;
        let mut shared = lock(shared);
        let encoder = self.write_head(&mut shared, status, Some(body.len() as u64))?;
        if matches!(encoder, Encoder::Length(_) | Encoder::CloseDelimited) {
            let out = &mut shared.out;
            if body.len() >= WRITE_BUFFER {
                out.write_through(self.io, body)?;
            } else {
                out.buf.extend_from_slice(body);
            }
        }
        if let Encoder::CloseDelimited = encoder {
            self.close = true;
        }
        self.state = SinkState::Done;
        Ok(())
    }

    fn start(&mut self, status: StatusCode) -> io::Result<()> {
        let shared = self.shared;
        let encoder = self.write_head(&mut lock(shared), status, None)?;
        if let Encoder::CloseDelimited = encoder {
            self.close = true;
        }
        self.state = SinkState::Streaming(encoder);
        Ok(())
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        let SinkState::Streaming(encoder) = &mut self.state else {
            return Err(io::Error::other("response body written outside streaming"));
        };
        let mut shared = lock(self.shared);
        let out = &mut shared.out;
        if out.broken {
            return Err(broken_pipe());
        }
        let chunked = match encoder {
            Encoder::Discard => return Ok(data.len()),
            Encoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "body longer than the Content-Length sent",
                    ));
                }
                *remaining -= data.len() as u64;
                false
            }
            Encoder::Chunked => true,
            Encoder::CloseDelimited => false,
        };
        if data.is_empty() {
            return Ok(0);
        }
        if out.buf.len() + data.len() > WRITE_BUFFER {
            // The socket takes what it can now; the handler waits only past write_buffer.
            out.make_room(self.io, data.len())?;
            if data.len() >= WRITE_BUFFER {
                // Large writes go straight out instead of through the buffer.
                if chunked {
                    write_chunk_size(out.buf, data.len());
                }
                out.write_through(self.io, data)?;
                if chunked {
                    out.buf.extend_from_slice(b"\r\n");
                }
                return Ok(data.len());
            }
        }
        if chunked {
            out.chunk_start.get_or_insert(out.buf.len());
        }
        out.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush_body(&mut self) -> io::Result<()> {
        lock(self.shared).out.flush(self.io)
    }

    fn end(&mut self) -> io::Result<()> {
        let mut shared = lock(self.shared);
        if matches!(self.state, SinkState::Streaming(_))
            && matches!(shared.side.body, BodyState::Failed { .. })
        {
            // The exchange failed under a started response: cut it, as HTTP/2 resets
            // the stream, rather than end it as if it were whole.
            self.state = SinkState::Abandoned;
            return Err(io::Error::other(
                "the request body failed, so the response is cut",
            ));
        }
        match self.state {
            SinkState::Streaming(Encoder::Chunked) => {
                let out = &mut shared.out;
                out.close_chunk();
                self.state = SinkState::Done;
                out.buf.extend_from_slice(b"0\r\n");
                if let Some(trailers) = self.trailers.take() {
                    write_headers(out.buf, &trailers);
                }
                out.buf.extend_from_slice(b"\r\n");
                Ok(())
            }
            SinkState::Streaming(Encoder::Length(remaining)) if remaining > 0 => {
                // The peer was promised more: the only honest end is to close.
                self.state = SinkState::Done;
                self.close = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("response ended {remaining} bytes short of its Content-Length"),
                ))
            }
            SinkState::Streaming(_) => {
                self.state = SinkState::Done;
                Ok(())
            }
            SinkState::Fresh => Err(io::Error::other("response not started")),
            SinkState::Done | SinkState::Abandoned | SinkState::Hijacked => Ok(()),
        }
    }

    fn abandon(&mut self) {
        if !matches!(self.state, SinkState::Done | SinkState::Hijacked) {
            self.state = SinkState::Abandoned;
        }
    }

    fn set_trailers(&mut self, trailers: HeaderMap) {
        self.trailers = Some(trailers);
    }

    fn upgrade(&mut self, status: StatusCode) -> io::Result<Upgraded> {
        if !matches!(self.state, SinkState::Fresh) {
            return Err(io::Error::other("response head already sent"));
        }
        let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if self.version != Version::HTTP_11 {
                return refuse("101 Switching Protocols cannot answer an HTTP/1.0 request");
            }
            if !self.upgrade_offered {
                return refuse("101 Switching Protocols needs a request with an Upgrade field");
            }
        } else if !(status.is_success() && self.connect) {
            return refuse("only a CONNECT request may be taken over with a 2xx status");
        }
        let mut shared = lock(self.shared);
        if shared.out.broken {
            return Err(broken_pipe());
        }
        // Take the socket first: if it cannot be had, nothing has been sent yet.
        let mut stream = self.io.hijack()?;
        shared.head_written = true;
        // RFC 9110 §9.3.6 and §15.2: no framing fields on these.
        let headers = &mut *self.headers;
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        let out = &mut shared.out;
        write_status_line(out.buf, Version::HTTP_11, status);
        if status != StatusCode::SWITCHING_PROTOCOLS && !headers.contains_key(header::DATE) {
            with_http_date(|date| write_header(out.buf, b"date", date));
        }
        write_headers(out.buf, headers);
        out.buf.extend_from_slice(b"\r\n");
        // From here on the connection cannot go back to HTTP/1.
        self.state = SinkState::Done;
        self.close = true;
        // Through the duplicate, which is blocking now (the mode is shared with the
        // engine's descriptor); with earlier pipelined answers still buffered, if any.
        let written = io::Write::write_all(&mut stream, out.buf);
        out.buf.clear();
        out.mark = 0;
        if let Err(e) = written {
            out.broken = true;
            return Err(e);
        }
        let side = &mut *shared.side;
        let buffered = side.rbuf.data().to_vec();
        side.rbuf.consume(buffered.len());
        // Whatever body the request declared is now the new owner's business.
        side.body = BodyState::Done;
        drop(shared);
        self.state = SinkState::Hijacked;
        Ok(Upgraded::new(stream, buffered))
    }
}
