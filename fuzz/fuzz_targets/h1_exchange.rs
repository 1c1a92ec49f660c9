//! Whole HTTP/1.1 server exchanges: arbitrary peer bytes, in pieces, through the real
//! connection code (`server::h1conn` over an in-memory transport, see
//! `spindle::fuzz_api::server`) to a handler that records every request it sees and
//! answers in one of several ways chosen by the request's path. The output must parse as
//! a sequence of valid HTTP/1.1 responses:
//! - the handler's answers come one per request it saw, in order (each carries its
//!   sequence number in `x-seq`), each with the status and body the handler gave;
//! - at most one answer of the server's own (400, 408, 413, 431, 500, 501, 505, ...)
//!   follows them, with `connection: close`, and nothing after a `connection: close`;
//! - no framing fields where RFC 9110/9112 forbid them (1xx, 204, 304, a 2xx to
//!   CONNECT), never Content-Length and Transfer-Encoding together, no body for HEAD;
//! - only the last answer may be cut short, and only where the handler saw its request
//!   body fail; a started response whose request body failed is never complete-looking;
//! - a handler panic costs only its own answer (a 500, or a cut), never earlier ones;
//! - whenever the server waits for the peer, everything the handlers wrote so far (and
//!   every answer they finished) is on the wire: a client may be waiting for it;
//! - the output stays within a small multiple of the input (no amplification).
//!
//! Input layout: byte 0 = settings flags (keep-alive, small limits, small drain limit,
//! body read-ahead default/off/16 bytes), byte 1 = number of pauses (low 3 bits), then
//! two bytes per pause offset, then the connection's bytes.
#![no_main]
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::{Mutex, Once};

use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::server::{serve, Ending, Settings, MAX_OUTPUT};
use spindle::h1::head::HeadLimits;
use spindle::http::{HeaderValue, Method, StatusCode};
use spindle::server::{Handler, Request, Response};

thread_local! {
    /// The handler is about to panic on purpose: the server must catch it.
    static EXPECTED_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// libfuzzer-sys aborts on every panic; a handler's deliberate panic is the server's to
/// catch, so the hook lets those through (and only those).
fn allow_handler_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTED_PANIC.with(|p| p.get()) {
                abort_hook(info);
            }
        }));
    });
}

/// What the handler saw and sent for one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: Option<Method>,
    status: u16,
    /// The body bytes it handed to the response so far (before HEAD/204/304 rules).
    body: Vec<u8>,
    /// The response head was handed over (send or start).
    started: bool,
    /// It streamed (start) rather than sending a whole body.
    streamed: bool,
    /// Its request body failed to read.
    body_failed: bool,
    /// It gave up on the response.
    aborted: bool,
    /// It panicked.
    panicked: bool,
    /// It returned.
    done: bool,
}

impl Seen {
    /// The body a client must see for it.
    fn visible(&self) -> &[u8] {
        if self.method == Some(Method::HEAD) || self.status == 204 || self.status == 304 {
            b""
        } else {
            &self.body
        }
    }
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
}

impl Recorder {
    fn with<R>(&self, seq: usize, f: impl FnOnce(&mut Seen) -> R) -> R {
        f(&mut self.seen.lock().unwrap()[seq])
    }
}

fn read_all(req: &mut Request) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let failed = req.read_to_end(&mut body).is_err();
    (body, failed)
}

impl Handler for Recorder {
    fn handle(&self, mut req: Request, mut res: Response) {
        EXPECTED_PANIC.with(|p| p.set(false));
        let seq = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(Seen {
                method: Some(req.method().clone()),
                status: 200,
                ..Seen::default()
            });
            seen.len() - 1
        };
        // The mode comes from the last byte of the whole target, so that CONNECT's
        // authority form chooses too.
        let mode = req
            .uri()
            .to_string()
            .bytes()
            .last()
            .unwrap_or(b'0')
            .wrapping_sub(b'0')
            % 10;
        res.headers_mut()
            .insert("x-seq", HeaderValue::from(seq as u64));
        match mode {
            0 | 7 => {
                let (body, failed) = read_all(&mut req);
                if mode == 7 {
                    res.headers_mut()
                        .insert("connection", HeaderValue::from_static("close"));
                }
                self.with(seq, |s| {
                    s.body_failed = failed;
                    s.body = body.clone();
                    s.started = true;
                });
                let _ = res.send(&body);
            }
            1 | 8 => {
                // Streams: a prefix first (flushed in mode 8), then the body read in
                // small pieces and echoed as it comes.
                self.with(seq, |s| {
                    s.started = true;
                    s.streamed = true;
                });
                let Ok(mut res) = res.start() else { return };
                if res.write_all(b"seq:").is_ok() {
                    self.with(seq, |s| s.body.extend_from_slice(b"seq:"));
                }
                if mode == 8 {
                    let _ = res.flush();
                }
                let mut piece = [0u8; 7];
                loop {
                    match req.read(&mut piece) {
                        Ok(0) => break,
                        Ok(n) => {
                            if res.write_all(&piece[..n]).is_err() {
                                break;
                            }
                            self.with(seq, |s| s.body.extend_from_slice(&piece[..n]));
                        }
                        Err(_) => {
                            self.with(seq, |s| s.body_failed = true);
                            break;
                        }
                    }
                }
            }
            2 | 3 => {
                let status = if mode == 2 {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::NOT_MODIFIED
                };
                *res.status_mut() = status;
                self.with(seq, |s| {
                    s.status = status.as_u16();
                    s.body = b"must not be sent".to_vec();
                    s.started = true;
                });
                let _ = res.send(b"must not be sent");
            }
            4 => {
                let (body, failed) = read_all(&mut req);
                res.headers_mut()
                    .insert("content-length", HeaderValue::from(body.len() as u64));
                self.with(seq, |s| {
                    s.body_failed = failed;
                    s.started = true;
                    s.streamed = true;
                });
                let Ok(mut res) = res.start() else { return };
                if res.write_all(&body).is_ok() {
                    self.with(seq, |s| s.body = body);
                }
            }
            5 => {
                // Leaves the body unread: the server drains it or closes.
                self.with(seq, |s| {
                    s.body = b"skip".to_vec();
                    s.started = true;
                });
                let _ = res.send(b"skip");
            }
            6 => {
                self.with(seq, |s| s.aborted = true);
                res.abort();
            }
            _ => {
                self.with(seq, |s| s.panicked = true);
                EXPECTED_PANIC.with(|p| p.set(true));
                panic!("a handler panic the server must survive");
            }
        }
        self.with(seq, |s| s.done = true);
    }
}

/// One response read off the output.
struct Parsed {
    status: u16,
    seq: Option<usize>,
    close: bool,
    body: Vec<u8>,
    /// The body ended as its framing says (false: the output ended first).
    complete: bool,
    /// Its body was chunked.
    chunked: bool,
}

fn field<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

/// Decodes a chunked body strictly (the server's own output must be exact). Returns
/// the data of the whole chunks present, the bytes used, and whether the body ended.
fn dechunk(out: &[u8]) -> (Vec<u8>, usize, bool) {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(line_end) = out[pos..].windows(2).position(|w| w == b"\r\n") else {
            return (body, out.len(), false);
        };
        let line_end = line_end + pos;
        let size = std::str::from_utf8(&out[pos..line_end]).expect("chunk size line is ASCII");
        let size = usize::from_str_radix(size, 16).expect("chunk size is hex, no extension");
        pos = line_end + 2;
        if size == 0 {
            // No trailers from this handler: the empty line ends the body.
            if out.len() < pos + 2 {
                return (body, out.len(), false);
            }
            assert_eq!(&out[pos..pos + 2], b"\r\n", "last chunk not ended by CRLF");
            return (body, pos + 2, true);
        }
        if out.len() < pos + size + 2 {
            return (body, out.len(), false);
        }
        body.extend_from_slice(&out[pos..pos + size]);
        assert_eq!(
            &out[pos + size..pos + size + 2],
            b"\r\n",
            "chunk data not ended by CRLF"
        );
        pos += size + 2;
    }
}

fn parse_responses(out: &[u8], seen: &[Seen]) -> Vec<Parsed> {
    let mut responses = Vec::new();
    let mut pos = 0;
    while pos < out.len() {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut storage);
        let len = match res.parse(&out[pos..]) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!(
                "the server wrote something that is not a whole response head ({other:?}): {:?}",
                String::from_utf8_lossy(&out[pos..out.len().min(pos + 200)])
            ),
        };
        assert_eq!(res.version, Some(1), "responses are HTTP/1.1");
        let status = res.code.expect("status");
        let headers = res.headers;
        let cl = field(headers, "content-length");
        let te = field(headers, "transfer-encoding");
        assert!(
            cl.is_empty() || te.is_empty(),
            "both Content-Length and Transfer-Encoding"
        );
        assert!(cl.len() <= 1 && te.len() <= 1, "framing fields repeated");
        pos += len;
        if (100..200).contains(&status) {
            assert_eq!(
                status, 100,
                "only 100 Continue is sent as an interim answer"
            );
            assert!(cl.is_empty() && te.is_empty(), "framing fields on a 1xx");
            continue;
        }
        if status == 204 {
            assert!(cl.is_empty() && te.is_empty(), "framing fields on a 204");
        }
        if status == 304 {
            assert!(te.is_empty(), "Transfer-Encoding on a 304");
        }
        assert_eq!(field(headers, "date").len(), 1, "one Date field");
        let seq = field(headers, "x-seq")
            .first()
            .map(|v| std::str::from_utf8(v).unwrap().parse::<usize>().unwrap());
        let close = field(headers, "connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"close"));
        let method = seq.and_then(|i| seen.get(i)).and_then(|s| s.method.clone());
        let tunnel = method == Some(Method::CONNECT) && (200..300).contains(&status);
        if tunnel {
            assert!(
                cl.is_empty() && te.is_empty(),
                "framing fields on a 2xx to CONNECT"
            );
        }
        let no_body = method == Some(Method::HEAD) || status == 204 || status == 304;
        let (body, complete) = if no_body {
            (Vec::new(), true)
        } else if tunnel || (cl.is_empty() && te.is_empty()) {
            // Close-delimited (or the tunnel): the rest of the output.
            assert!(
                tunnel || close,
                "a close-delimited body without connection: close"
            );
            let b = out[pos..].to_vec();
            pos = out.len();
            (b, true)
        } else if let Some(te) = te.first() {
            assert!(te.eq_ignore_ascii_case(b"chunked"), "only chunked is sent");
            let (b, used, complete) = dechunk(&out[pos..]);
            pos += used;
            (b, complete)
        } else {
            let n: usize = std::str::from_utf8(cl[0]).unwrap().parse().unwrap();
            let have = n.min(out.len() - pos);
            pos += have;
            (out[pos - have..pos].to_vec(), have == n)
        };
        responses.push(Parsed {
            status,
            seq,
            close,
            body,
            complete,
            chunked: !no_body && !te.is_empty(),
        });
    }
    responses
}

/// Whenever the server waits for the peer, what the handlers wrote is on the wire.
fn check_at_wait(out: &[u8], recorder: &Recorder) {
    if out.len() + 65536 >= MAX_OUTPUT {
        return;
    }
    let seen = recorder.seen.lock().unwrap().clone();
    let responses = parse_responses(out, &seen);
    for (seq, s) in seen.iter().enumerate() {
        if !s.started || s.aborted || s.panicked || s.body_failed {
            continue;
        }
        let Some(r) = responses.iter().find(|r| r.seq == Some(seq)) else {
            panic!("the server waits for the peer while the answer to request {seq} is held back: {s:?}");
        };
        assert_eq!(
            r.body.as_slice(),
            s.visible(),
            "the server waits for the peer while bytes of answer {seq} are held back"
        );
    }
}

fn settings(flags: u8) -> Settings {
    let mut s = Settings::default();
    if flags & 1 != 0 {
        s.keep_alive = false;
    }
    if flags & 2 != 0 {
        s.limits = HeadLimits {
            max_head_bytes: 256,
            max_headers: 8,
            max_uri_len: 64,
            ..HeadLimits::default()
        };
    }
    if flags & 4 != 0 {
        s.drain_limit = 16;
    }
    // The loop's read-ahead of request bodies: the default, off, or a few bytes.
    match (flags >> 3) & 3 {
        1 => s.body_buffer = 0,
        2 => s.body_buffer = 16,
        _ => {}
    }
    s
}

fuzz_target!(|data: &[u8]| {
    allow_handler_panics();
    let [flags, npauses, rest @ ..] = data else {
        return;
    };
    let npauses = (*npauses & 7) as usize;
    if rest.len() < npauses * 2 {
        return;
    }
    let (pause_bytes, input) = rest.split_at(npauses * 2);
    let pauses: Vec<usize> = pause_bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
        .collect();
    let recorder = Recorder::default();
    let run = serve(input, &pauses, &recorder, settings(*flags), &|out| {
        check_at_wait(out, &recorder)
    });
    EXPECTED_PANIC.with(|p| p.set(false));
    let seen = recorder.seen.into_inner().unwrap();

    // No amplification: answers are echoes of what came in, plus small heads.
    let bound = 3 * input.len() + 512 * (seen.len() + 2);
    assert!(
        run.output.len() <= bound,
        "{} bytes out for {} in ({} requests)",
        run.output.len(),
        input.len(),
        seen.len()
    );
    if run.ending != Ending::Http2 && run.ending != Ending::H2cUpgrade {
        assert!(
            run.shut_down,
            "the connection ended without a shutdown: {:?}",
            run.ending
        );
    }
    if matches!(run.ending, Ending::H2cUpgrade) {
        // After the 101 the bytes are HTTP/2's; not checked here.
        return;
    }

    let responses = parse_responses(&run.output, &seen);
    let mut next_seq = 0;
    for (i, r) in responses.iter().enumerate() {
        let last = i + 1 == responses.len();
        if !last {
            assert!(!r.close, "a response follows one with connection: close");
            assert!(r.complete, "only the last answer may be cut");
        }
        match r.seq {
            Some(seq) => {
                assert_eq!(seq, next_seq, "answers out of order or one missing");
                next_seq += 1;
                let s = &seen[seq];
                assert!(!s.aborted, "an aborted response was sent");
                assert_eq!(r.status, s.status, "the status the handler set");
                if r.complete {
                    assert_eq!(r.body.as_slice(), s.visible(), "the body the handler sent");
                    // A chunked answer can always be cut; one framed by a length that
                    // was all written already cannot, nor can one without a body.
                    assert!(
                        !(s.streamed && s.body_failed && r.chunked),
                        "a started response whose request body failed looks complete: {s:?}"
                    );
                } else {
                    assert!(
                        s.body_failed || s.panicked,
                        "a response was cut though its exchange was fine: {} body bytes sent, \
                         {} seen; {:?}; output {} bytes; {:?}",
                        s.body.len(),
                        r.body.len(),
                        run.ending,
                        run.output.len(),
                        String::from_utf8_lossy(&run.output[..run.output.len().min(300)])
                    );
                    assert!(
                        s.visible().starts_with(&r.body),
                        "a cut body is a prefix of what was sent"
                    );
                }
            }
            None => {
                // The server's own answer: an error that ends the connection.
                assert!(last, "the server's own answer must be the last");
                assert!(r.close, "the server's own answer closes the connection");
                assert!(
                    r.status >= 400,
                    "the server's own answers are errors: {}",
                    r.status
                );
                assert!(r.complete, "the server's own answer was cut");
                if let Some(s) = seen.get(next_seq) {
                    if s.panicked {
                        assert_eq!(r.status, 500, "a panic is answered 500");
                    }
                }
            }
        }
    }
    // One answer per request the handler saw, except a last one that was given up, that
    // panicked, or whose body failed, before anything of it went out.
    if next_seq < seen.len() {
        assert_eq!(
            next_seq + 1,
            seen.len(),
            "more than one request went unanswered"
        );
        let s = &seen[next_seq];
        assert!(
            s.aborted || s.body_failed || s.panicked || run.output.len() + 65536 >= MAX_OUTPUT,
            "request {next_seq} went unanswered: {s:?}"
        );
    }
});
