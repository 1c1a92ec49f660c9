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
//!   body fail or gave up on the response;
//! - the output stays within a small multiple of the input (no amplification).
//!
//! Input layout: byte 0 = settings flags, byte 1 = number of pauses (low 3 bits), then
//! two bytes per pause offset, then the connection's bytes.
#![no_main]
use std::io::{Read, Write};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::server::{serve, Ending, Settings};
use spindle::h1::head::HeadLimits;
use spindle::http::{HeaderValue, Method, StatusCode};
use spindle::server::{Handler, Request, Response};

/// What the handler saw and sent for one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    status: u16,
    /// The body it sent (before HEAD/204/304 rules drop it).
    body: Vec<u8>,
    /// Its request body failed to read.
    body_failed: bool,
    /// It gave up on the response.
    aborted: bool,
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
}

fn read_all(req: &mut Request) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let failed = req.read_to_end(&mut body).is_err();
    (body, failed)
}

impl Handler for Recorder {
    fn handle(&self, mut req: Request, mut res: Response) {
        let seq = {
            let seen = self.seen.lock().unwrap();
            seen.len()
        };
        let method = req.method().clone();
        let mode = req.path().bytes().last().unwrap_or(b'0') % 9;
        res.headers_mut()
            .insert("x-seq", HeaderValue::from(seq as u64));
        let mut seen = Seen {
            method,
            status: 200,
            body: Vec::new(),
            body_failed: false,
            aborted: false,
        };
        match mode {
            0 | 7 => {
                let (body, failed) = read_all(&mut req);
                seen.body_failed = failed;
                if mode == 7 {
                    res.headers_mut()
                        .insert("connection", HeaderValue::from_static("close"));
                }
                seen.body = body;
                self.record(seen.clone());
                let _ = res.send(&seen.body);
            }
            1 | 8 => {
                // Streams: a prefix first (flushed in mode 8), then the body read in
                // small pieces and echoed as it comes.
                self.record(seen.clone());
                let Ok(mut res) = res.start() else { return };
                let _ = res.write_all(b"seq:");
                seen.body.extend_from_slice(b"seq:");
                if mode == 8 {
                    let _ = res.flush();
                }
                let mut piece = [0u8; 7];
                loop {
                    match req.read(&mut piece) {
                        Ok(0) => break,
                        Ok(n) => {
                            seen.body.extend_from_slice(&piece[..n]);
                            if res.write_all(&piece[..n]).is_err() {
                                break;
                            }
                        }
                        Err(_) => {
                            seen.body_failed = true;
                            break;
                        }
                    }
                }
                self.update(seq, seen);
            }
            2 | 3 => {
                let status = if mode == 2 {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::NOT_MODIFIED
                };
                *res.status_mut() = status;
                seen.status = status.as_u16();
                seen.body = b"must not be sent".to_vec();
                self.record(seen.clone());
                let _ = res.send(&seen.body);
            }
            4 => {
                let (body, failed) = read_all(&mut req);
                seen.body_failed = failed;
                res.headers_mut()
                    .insert("content-length", HeaderValue::from(body.len() as u64));
                seen.body = body;
                self.record(seen.clone());
                let Ok(mut res) = res.start() else { return };
                let _ = res.write_all(&seen.body);
            }
            5 => {
                // Leaves the body unread: the server drains it or closes.
                seen.body = b"skip".to_vec();
                self.record(seen.clone());
                let _ = res.send(b"skip");
            }
            _ => {
                seen.aborted = true;
                self.record(seen);
                res.abort();
            }
        }
    }
}

impl Recorder {
    fn record(&self, seen: Seen) {
        self.seen.lock().unwrap().push(seen);
    }

    fn update(&self, seq: usize, seen: Seen) {
        self.seen.lock().unwrap()[seq] = seen;
    }
}

/// One response read off the output.
struct Parsed {
    status: u16,
    seq: Option<usize>,
    close: bool,
    /// None when the output ended before the body did.
    body: Option<Vec<u8>>,
}

fn field<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

/// Decodes a chunked body strictly (the server's own output must be exact); None when
/// the output ends first.
fn dechunk(out: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let line_end = out[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let size = std::str::from_utf8(&out[pos..line_end]).expect("chunk size line is ASCII");
        let size = usize::from_str_radix(size, 16).expect("chunk size is hex, no extension");
        pos = line_end + 2;
        if size == 0 {
            // No trailers from this handler: the empty line ends the body.
            if out.len() < pos + 2 {
                return None;
            }
            assert_eq!(&out[pos..pos + 2], b"\r\n", "last chunk not ended by CRLF");
            return Some((body, pos + 2));
        }
        assert!(size > 0);
        if out.len() < pos + size + 2 {
            return None;
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
                "the server wrote something that is not a response head ({other:?}): {:?}",
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
        let method = seq.and_then(|i| seen.get(i)).map(|s| s.method.clone());
        let tunnel = method == Some(Method::CONNECT) && (200..300).contains(&status);
        if tunnel {
            assert!(
                cl.is_empty() && te.is_empty(),
                "framing fields on a 2xx to CONNECT"
            );
        }
        let no_body = method == Some(Method::HEAD) || status == 204 || status == 304;
        let body = if no_body {
            Some(Vec::new())
        } else if tunnel {
            let b = out[pos..].to_vec();
            pos = out.len();
            Some(b)
        } else if let Some(te) = te.first() {
            assert!(te.eq_ignore_ascii_case(b"chunked"), "only chunked is sent");
            match dechunk(&out[pos..]) {
                Some((b, used)) => {
                    pos += used;
                    Some(b)
                }
                None => {
                    pos = out.len();
                    None
                }
            }
        } else if let Some(cl) = cl.first() {
            let n: usize = std::str::from_utf8(cl).unwrap().parse().unwrap();
            if out.len() - pos >= n {
                pos += n;
                Some(out[pos - n..pos].to_vec())
            } else {
                pos = out.len();
                None
            }
        } else {
            // Close-delimited: the rest of the output.
            assert!(close, "a close-delimited body without connection: close");
            let b = out[pos..].to_vec();
            pos = out.len();
            Some(b)
        };
        responses.push(Parsed {
            status,
            seq,
            close,
            body,
        });
    }
    responses
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
    s
}

fuzz_target!(|data: &[u8]| {
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
    let run = serve(input, &pauses, &recorder, settings(*flags));
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
        // After the 101, the bytes are HTTP/2's; the HTTP/1 answers before it are
        // checked no further here.
        return;
    }

    let responses = parse_responses(&run.output, &seen);
    let mut next_seq = 0;
    for (i, r) in responses.iter().enumerate() {
        let last = i + 1 == responses.len();
        if !last {
            assert!(!r.close, "a response follows one with connection: close");
        }
        match r.seq {
            Some(seq) => {
                assert_eq!(seq, next_seq, "answers out of order or one missing");
                next_seq += 1;
                let s = &seen[seq];
                assert!(!s.aborted, "an aborted response was sent");
                assert_eq!(r.status, s.status, "the status the handler set");
                match &r.body {
                    Some(body) => {
                        let expect: &[u8] =
                            if s.method == Method::HEAD || s.status == 204 || s.status == 304 {
                                b""
                            } else {
                                &s.body
                            };
                        assert_eq!(body.as_slice(), expect, "the body the handler sent");
                    }
                    None => {
                        assert!(last, "only the last answer may be cut");
                        assert!(
                            s.body_failed,
                            "a response was cut though its exchange was fine"
                        );
                    }
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
                assert!(r.body.is_some(), "the server's own answer was cut");
            }
        }
    }
    // One answer per request the handler saw, except a last one that was given up or
    // whose body failed before anything of it went out.
    if next_seq < seen.len() {
        assert_eq!(
            next_seq + 1,
            seen.len(),
            "more than one request went unanswered"
        );
        let s = &seen[next_seq];
        assert!(
            s.aborted
                || s.body_failed
                || run.output.len() >= spindle::fuzz_api::server::MAX_OUTPUT - 65536,
            "request {next_seq} went unanswered: {s:?}"
        );
    }
});
