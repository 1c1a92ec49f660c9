//! The outgoing response, in two typestates: [`Fresh`] (head still mutable) and
//! [`Streaming`] (head sent, body being written).
use std::fmt;
use std::io::{self, Write};
use std::marker::PhantomData;

use http::header::HeaderMap;
use http::{StatusCode, Version};

use super::upgrade::{unsupported, Upgraded};

/// Where a [`Response`] goes: an HTTP/1 connection, an HTTP/2 stream, the test
/// [`Recorder`](crate::handlers::testing::Recorder), or a middleware standing between a
/// handler and the real response (build one with [`Response::from_sink`];
/// [`Forward`](crate::handlers::Forward) passes everything on to an outer response, so a
/// middleware wraps a `Forward` and changes only what it needs). The sink chooses the
/// framing; [`Response`] enforces the order of calls: head fields, then `send_whole` or
/// `start`, then `write_body`/`flush_body`, then `end`.
pub trait ResponseSink: Send {
    /// The version of the request being answered.
    fn version(&self) -> Version;
    /// The response header fields, still mutable.
    fn headers(&self) -> &HeaderMap;
    /// Mutable access to the response header fields (only called before the head goes).
    fn headers_mut(&mut self) -> &mut HeaderMap;
    /// Sends the head with `status` and `body` as the whole body; the length is known.
    fn send_whole(&mut self, status: StatusCode, body: &[u8]) -> io::Result<()>;
    /// Sends the head of a body that will be streamed through `write_body`.
    fn start(&mut self, status: StatusCode) -> io::Result<()>;
    /// Writes body bytes after [`start`](ResponseSink::start).
    fn write_body(&mut self, data: &[u8]) -> io::Result<usize>;
    /// Pushes buffered body bytes towards the peer.
    fn flush_body(&mut self) -> io::Result<()>;
    /// Ends the body (and sends trailers if any were set).
    fn end(&mut self) -> io::Result<()>;
    /// The handler gave up on the response ([`Response::abort`]) or is unwinding from a
    /// panic: leave the exchange unfinished so the server can answer 500 or cut the
    /// connection; it must not look complete.
    fn abandon(&mut self);
    /// Sets trailer fields to send after a streamed body, where the protocol can.
    fn set_trailers(&mut self, trailers: HeaderMap);
    /// Sends the head with `status` (101, or 2xx to a CONNECT), flushes it and hands the
    /// connection over (see [`Response::upgrade`]). On an error before the head went out,
    /// the sink must stay as it was. The default refuses with
    /// [`io::ErrorKind::Unsupported`]; a wrapper built on `Forward` passes it on to the
    /// `Forward` so upgrades work through it.
    fn upgrade(&mut self, status: StatusCode) -> io::Result<Upgraded> {
        let _ = status;
        Err(unsupported(
            "this response cannot hand its connection over (HTTP/2 streams and sinks that do not forward upgrades cannot)",
        ))
    }
}

/// Marker: the response head can still be changed; nothing has been sent.
#[derive(Debug)]
pub enum Fresh {}

/// Marker: the head has been sent; the response is now an [`io::Write`] for the body.
#[derive(Debug)]
pub enum Streaming {}

/// The write status of a [`Response`]: [`Fresh`] or [`Streaming`]. Sealed.
pub trait WriteStatus: private::Sealed {
    #[doc(hidden)]
    const STREAMING: bool;
}
impl WriteStatus for Fresh {
    const STREAMING: bool = false;
}
impl WriteStatus for Streaming {
    const STREAMING: bool = true;
}
mod private {
    pub trait Sealed {}
    impl Sealed for super::Fresh {}
    impl Sealed for super::Streaming {}
}

/// The response to one request.
///
/// A `Response<Fresh>` has a mutable status and header fields; [`send`](Response::send)
/// writes a whole response at once, [`start`](Response::start) sends the head and gives
/// a `Response<Streaming>`, which is [`io::Write`] for the body. Framing
/// (Content-Length, chunked, close-delimited, HTTP/2 DATA) is chosen by the server.
///
/// Dropping a `Response<Fresh>` sends it with an empty body; dropping a
/// `Response<Streaming>` ends the body.
///
/// The typestate is checked at compile time: once started, the head cannot be touched.
///
/// ```compile_fail
/// use spindle::server::Response;
/// fn late_header(res: Response) {
///     let mut res = res.start().unwrap();
///     res.headers_mut().insert("x-late", "1".parse().unwrap()); // no such method
/// }
/// ```
///
/// ```compile_fail
/// use spindle::server::Response;
/// fn late_status(res: Response) {
///     let mut res = res.start().unwrap();
///     *res.status_mut() = spindle::http::StatusCode::NOT_FOUND; // no such method
/// }
/// ```
///
/// ```compile_fail
/// use std::io::Write;
/// use spindle::server::Response;
/// fn early_body(mut res: Response) {
///     res.write_all(b"body before head"); // Response<Fresh> is not io::Write
/// }
/// ```
///
/// Streaming a body:
///
/// ```no_run
/// use std::io::Write;
/// use spindle::server::{Request, Response, Server};
///
/// Server::http("127.0.0.1:0")?.handle(|_req: Request, mut res: Response| {
///     res.headers_mut().insert("content-type", "text/plain".parse().unwrap());
///     let mut res = match res.start() { Ok(res) => res, Err(_) => return };
///     for i in 0..3 {
///         writeln!(res, "line {i}").ok();
///     }
///     res.end().ok();
/// })?;
/// # Ok::<(), spindle::Error>(())
/// ```
pub struct Response<'a, S: WriteStatus = Fresh> {
    status: StatusCode,
    sink: Option<&'a mut (dyn ResponseSink + 'a)>,
    _status: PhantomData<S>,
}

impl<'a> Response<'a, Fresh> {
    pub(crate) fn new(sink: &'a mut (dyn ResponseSink + 'a)) -> Self {
        Response {
            status: StatusCode::OK,
            sink: Some(sink),
            _status: PhantomData,
        }
    }

    /// A response that goes to `sink` instead of a connection: what a middleware gives
    /// its inner handler to see (and change) what it sends, and what the
    /// [test recorder](crate::handlers::testing::Recorder) captures.
    ///
    /// ```
    /// use spindle::handlers::testing::Recorder;
    /// use spindle::server::Response;
    ///
    /// let mut rec = Recorder::new();
    /// Response::from_sink(&mut rec).send(b"hi").unwrap();
    /// assert_eq!(rec.body(), b"hi");
    /// ```
    pub fn from_sink<T: ResponseSink + 'a>(sink: &'a mut T) -> Self {
        Response::new(sink)
    }

    /// The status that will be sent (200 unless changed).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Mutable access to the status.
    pub fn status_mut(&mut self) -> &mut StatusCode {
        &mut self.status
    }

    /// Sets the status, builder style.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The response header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.sink().headers()
    }

    /// Mutable access to the response header fields.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.sink_mut().headers_mut()
    }

    /// Sends the response with `body` as its whole body, setting `Content-Length`.
    pub fn send(mut self, body: &[u8]) -> io::Result<()> {
        let status = self.status;
        let sink = self.sink.take().ok_or_else(finished)?;
        sink.send_whole(status, body)
    }

    /// Sends the head and returns the response as a writer for the body.
    ///
    /// With no `Content-Length` set, the body goes chunked on HTTP/1.1 and
    /// close-delimited on HTTP/1.0. With one set, writing more than it is an error and
    /// writing fewer closes the connection.
    pub fn start(mut self) -> io::Result<Response<'a, Streaming>> {
        let status = self.status;
        let sink = self.sink.take().ok_or_else(finished)?;
        sink.start(status)?;
        Ok(Response {
            status,
            sink: Some(sink),
            _status: PhantomData,
        })
    }

    /// Sends the head as set (the status must be `101 Switching Protocols`, or a 2xx
    /// answering a `CONNECT`), flushes it, and takes the connection off the server: the
    /// blocking counterpart of Go's `http.Hijacker`.
    ///
    /// The returned [`Upgraded`] is an owned, blocking `Read + Write` stream with no
    /// timeouts; its reads first yield whatever the server had already read past the
    /// request head. From here on the server forgets the connection: it no longer counts
    /// it in [`open_connections`](crate::server::Listening::open_connections) once the
    /// handler returns, never times it out, reuses, drains or closes it, and a graceful
    /// shutdown leaves it alone. Hand it to a thread of your own and return, so the
    /// server thread is free again (while the handler still runs, the exchange is in
    /// flight as far as the server knows, and a shutdown that reaches its deadline cuts
    /// it).
    ///
    /// No framing fields are sent: `Content-Length` and `Transfer-Encoding` are removed.
    /// Set `Upgrade` and `Connection: upgrade` yourself for a 101.
    ///
    /// # Errors
    ///
    /// - `InvalidInput`: the status is neither 101 nor 2xx, a 101 answers a request
    ///   without an `Upgrade` field or an HTTP/1.0 one, or a 2xx answers anything but
    ///   `CONNECT`;
    /// - `Unsupported`: the response cannot take its connection over: a
    ///   [test recorder](crate::handlers::testing::Recorder), a custom sink that does not
    ///   forward [`ResponseSink::upgrade`](ResponseSink::upgrade), and HTTP/2 (which has
    ///   no connection-wide upgrade; RFC 8441's extended CONNECT would be separate).
    ///   HTTPS connections are handed over with their TLS session
    ///   ([`UpgradedStream::Tls`](super::UpgradedStream::Tls));
    /// - the I/O error of sending the head.
    ///
    /// When nothing could be sent, the server answers `500` and closes the connection.
    ///
    /// ```
    /// use spindle::handlers::testing::TestRequest;
    /// use spindle::http::StatusCode;
    /// use spindle::server::{Request, Response};
    ///
    /// let rec = TestRequest::get("/chat")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "chat")
    ///     .run(&|_req: Request, res: Response| {
    ///         let err = res.with_status(StatusCode::SWITCHING_PROTOCOLS).upgrade().unwrap_err();
    ///         assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    ///     });
    /// assert_eq!(rec.status(), 500);
    /// ```
    pub fn upgrade(mut self) -> io::Result<Upgraded> {
        let status = self.status;
        let sink = self.sink.take().ok_or_else(finished)?;
        let result = if status == StatusCode::SWITCHING_PROTOCOLS || status.is_success() {
            sink.upgrade(status)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upgrade needs status 101 (or 2xx for CONNECT), not {status}"),
            ))
        };
        if result.is_err() {
            // Errs with "head already sent" when it went out; nothing to do then.
            let _ = sink.send_whole(StatusCode::INTERNAL_SERVER_ERROR, b"");
        }
        result
    }
}

impl Response<'_, Streaming> {
    /// The status that was sent.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The header fields that were sent.
    pub fn headers(&self) -> &HeaderMap {
        self.sink().headers()
    }

    /// Sets trailer fields to send after the body (chunked HTTP/1.1 or HTTP/2). The
    /// client must have said it accepts them (`TE: trailers`) for them to matter; on
    /// HTTP/1.0 or a Content-Length body they are dropped.
    pub fn set_trailers(&mut self, trailers: HeaderMap) {
        self.sink_mut().set_trailers(trailers)
    }

    /// Ends the body, reporting any error in sending its last bytes.
    pub fn end(mut self) -> io::Result<()> {
        match self.sink.take() {
            Some(sink) => sink.end(),
            None => Err(finished()),
        }
    }
}

impl<'a, S: WriteStatus> Response<'a, S> {
    /// Gives up on the response: nothing more is sent, and the exchange is cut (the
    /// connection closed on HTTP/1, the stream reset on HTTP/2) instead of looking
    /// complete. For a body that failed halfway (a file read error), where ending it
    /// normally would pass a truncated body off as whole.
    pub fn abort(mut self) {
        if let Some(sink) = self.sink.take() {
            sink.abandon();
        }
    }

    /// The protocol version of the request being answered.
    pub fn version(&self) -> Version {
        self.sink().version()
    }

    fn sink(&self) -> &(dyn ResponseSink + 'a) {
        // The sink is only taken by methods that consume `self`.
        self.sink
            .as_deref()
            .expect("response sink present until consumed")
    }

    fn sink_mut(&mut self) -> &mut (dyn ResponseSink + 'a) {
        self.sink
            .as_deref_mut()
            .expect("response sink present until consumed")
    }
}

fn finished() -> io::Error {
    io::Error::other("response already finished")
}

impl Write for Response<'_, Streaming> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink_mut().write_body(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink_mut().flush_body()
    }
}

impl<S: WriteStatus> Drop for Response<'_, S> {
    fn drop(&mut self) {
        let Some(sink) = self.sink.take() else { return };
        if std::thread::panicking() {
            sink.abandon();
        } else if S::STREAMING {
            if let Err(err) = sink.end() {
                log::debug!("ending a dropped response failed: {err}");
            }
        } else if let Err(err) = sink.send_whole(self.status, b"") {
            log::debug!("sending a dropped response failed: {err}");
        }
    }
}

impl<S: WriteStatus> fmt::Debug for Response<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("streaming", &S::STREAMING)
            .finish_non_exhaustive()
    }
}
