//! Fuzz the chunked-coding decoder (RFC 9112 §7.1), fed in fuzz-chosen splits, sometimes
//! reading chunk data directly as the server does. Asserts:
//!
//! - the outcome (body, trailers, bytes consumed, error) is the same for every split;
//! - the body is never longer than the input, and the framing bytes beyond it stay
//!   within the extension/trailer limit plus the few uncounted bytes of each chunk line;
//! - no field that must not be a trailer (RFC 9110 §6.5.1) comes out of `take_trailers`;
//! - a body written with `write_chunk_size`, leading zeros, arbitrary extensions and
//!   trailers decodes back to the same body and the allowed trailers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h1::framing::{is_forbidden_trailer, write_chunk_size, ChunkedDecoder, ChunkedError};
use spindle::http::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, PartialEq)]
enum Outcome {
    Done {
        body: Vec<u8>,
        trailers: Option<HeaderMap>,
        consumed: usize,
    },
    Failed {
        body: Vec<u8>,
        error: ChunkedError,
    },
    /// The input ended first.
    Incomplete {
        body: Vec<u8>,
    },
}

/// Bytes the decoder never counts against its limit, at most, per chunk line: the first
/// digit and 16 significant ones, one SP, the `;`, CR, LF, and the CRLF after the data.
const UNCOUNTED_PER_CHUNK: usize = 17 + 1 + 1 + 2 + 2;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, input) = data.split_at(4);
    let limit = 16 + usize::from(ctl[0]) * 8;
    let (whole, runs) = decode(input, limit, &[], false);
    if let Outcome::Done {
        body,
        trailers,
        consumed,
    } = &whole
    {
        assert!(*consumed <= input.len());
        assert!(body.len() <= *consumed);
        let framing = consumed - body.len();
        assert!(
            framing <= limit + UNCOUNTED_PER_CHUNK * (runs + 1),
            "{framing} framing bytes for {runs} chunks, limit {limit}"
        );
        if let Some(t) = trailers {
            assert!(t.keys().all(|k| !is_forbidden_trailer(k)), "{t:?}");
        }
    }
    let body_len = match &whole {
        Outcome::Done { body, .. }
        | Outcome::Failed { body, .. }
        | Outcome::Incomplete { body } => body.len(),
    };
    assert!(body_len <= input.len());
    // The same outcome whatever the split, with and without direct data reads.
    let pieces = &ctl[1..];
    for direct in [false, true] {
        let (split, _) = decode(input, limit, pieces, direct);
        assert_eq!(split, whole, "pieces {pieces:?}, direct {direct}");
    }

    round_trip(ctl, input);
});

/// Feeds `input` in pieces whose sizes cycle through `pieces` (1 + each byte), keeping
/// unconsumed bytes as a connection's buffer does. Returns the outcome and the number
/// of data runs the decoder handed out.
fn decode(input: &[u8], limit: usize, pieces: &[u8], direct: bool) -> (Outcome, usize) {
    let mut dec = ChunkedDecoder::new(limit);
    let mut body = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    let mut runs = 0;
    let mut piece = 0;
    loop {
        if dec.is_done() {
            let trailers = dec.take_trailers();
            return (
                Outcome::Done {
                    body,
                    trailers,
                    consumed,
                },
                runs,
            );
        }
        if buf.is_empty() {
            if fed == input.len() {
                return (Outcome::Incomplete { body }, runs);
            }
            let size = match pieces {
                [] => input.len(),
                _ => 1 + usize::from(pieces[piece % pieces.len()]),
            };
            piece += 1;
            let end = (fed + size).min(input.len());
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
        }
        // As the server does for large reads: take chunk data straight from the input.
        let remaining = dec.data_remaining();
        if direct && remaining > 0 {
            let n = buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            body.extend_from_slice(&buf[..n]);
            buf.drain(..n);
            dec.data_read(n);
            consumed += n;
            continue;
        }
        match dec.decode(&buf) {
            Ok(step) => {
                assert!(step.consumed <= buf.len());
                assert!(step.data.end <= step.consumed);
                if !step.data.is_empty() {
                    runs += 1;
                }
                // Progress: bytes used, or done.
                assert!(step.consumed > 0 || dec.is_done() || buf.is_empty());
                body.extend_from_slice(&buf[step.data.clone()]);
                buf.drain(..step.consumed);
                consumed += step.consumed;
            }
            Err(error) => return (Outcome::Failed { body, error }, runs),
        }
    }
}

/// Encodes part of `input` as a chunked body the way spindle writes one, plus leading
/// zeros, extensions and trailers chosen by the input, and decodes it back.
fn round_trip(ctl: &[u8], input: &[u8]) {
    let body = input;
    let mut wire = Vec::new();
    let mut overhead = 0;
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let size = 1 + usize::from(ctl[1 + i % 3]) % 97;
        let end = (at + size).min(body.len());
        let zeros = usize::from(ctl[0] % 5);
        wire.extend(std::iter::repeat_n(b'0', zeros));
        overhead += zeros;
        let mut line = Vec::new();
        write_chunk_size(&mut line, end - at);
        line.truncate(line.len() - 2);
        wire.extend_from_slice(&line);
        if ctl[2] & 1 != 0 {
            // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
            let ext = format!(" ; e{i} = \"{}\"", body[at] % 100);
            overhead += ext.len();
            wire.extend_from_slice(ext.as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&body[at..end]);
        wire.extend_from_slice(b"\r\n");
        at = end;
        i += 1;
    }
    wire.extend_from_slice(b"0\r\n");
    let mut want = HeaderMap::new();
    let mut trailer = Vec::new();
    for (j, field) in body.chunks(7).take(usize::from(ctl[3] % 6)).enumerate() {
        let value: String = field.iter().map(|&b| char::from(b'!' + b % 94)).collect();
        let name = if j == 1 {
            // One field that must not be a trailer: it goes, the rest stay.
            "content-length".to_owned()
        } else {
            format!("x-t{j}")
        };
        trailer.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        if !is_forbidden_trailer(&name) {
            want.append(name, HeaderValue::from_str(&value).unwrap());
        }
    }
    trailer.extend_from_slice(b"\r\n");
    overhead += trailer.len();
    wire.extend_from_slice(&trailer);
    let (got, _) = decode(&wire, overhead, &ctl[1..], ctl[0] & 1 != 0);
    let Outcome::Done {
        body: decoded,
        trailers,
        consumed,
    } = got
    else {
        panic!("our own encoding did not decode: {got:?}");
    };
    assert_eq!(decoded, body);
    assert_eq!(consumed, wire.len());
    if trailer.len() > 2 {
        assert_eq!(trailers.unwrap_or_default(), want);
    } else {
        assert!(trailers.is_none());
    }
}
