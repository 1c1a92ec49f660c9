//! The HTTP/2 connection preface (RFC 9113 §3.4).
//!
//! A client opens with the 24-byte magic [`CLIENT_MAGIC`] followed by a SETTINGS frame.
//! [`sniff`] tells, from however many bytes have arrived, whether a connection on an
//! HTTP/1.1 port is speaking HTTP/2 with prior knowledge; [`parse_client_preface`] checks
//! the magic and the first SETTINGS frame.
//!
//! ```
//! use spindle::h2::preface::{sniff, Sniff, CLIENT_MAGIC};
//! assert_eq!(sniff(b"PRI * HT"), Sniff::NeedMore);
//! assert_eq!(sniff(CLIENT_MAGIC), Sniff::H2);
//! assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::NotH2);
//! ```
use super::error::{H2Error, Violation};
use super::frame::{DecodeError, Decoded, Frame, FrameDecoder, Settings, HEAD_LEN};
use super::Reason;

/// The client connection preface magic: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
pub const CLIENT_MAGIC: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniff {
    /// The buffer starts with the whole client magic.
    H2,
    /// The buffer cannot be the start of the client magic.
    NotH2,
    /// The buffer is a (possibly empty) proper prefix of the magic: read more.
    NeedMore,
}

/// Classify the start of a connection.
pub fn sniff(buf: &[u8]) -> Sniff {
    let n = buf.len().min(CLIENT_MAGIC.len());
    if buf[..n] != CLIENT_MAGIC[..n] {
        Sniff::NotH2
    } else if n == CLIENT_MAGIC.len() {
        Sniff::H2
    } else {
        Sniff::NeedMore
    }
}

/// The result of [`parse_client_preface`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface<'a> {
    /// At least this many more bytes are needed.
    NeedMore(usize),
    /// The magic and the client's first SETTINGS frame.
    Complete {
        /// The client's SETTINGS (validated, not an ACK).
        settings: Settings<'a>,
        /// Bytes consumed (24 + the SETTINGS frame).
        consumed: usize,
    },
}

/// Check the client preface: the magic, then a SETTINGS frame without ACK. Anything else is
/// a connection error `PROTOCOL_ERROR` (§3.4); a bad SETTINGS frame reports its own error.
///
/// ```
/// use spindle::h2::frame::{SettingId, Settings};
/// use spindle::h2::preface::{parse_client_preface, Preface, CLIENT_MAGIC};
/// let mut buf = CLIENT_MAGIC.to_vec();
/// Settings::encode_values(&[(SettingId::EnablePush, 0)], &mut buf);
/// match parse_client_preface(&buf, 16_384).unwrap() {
///     Preface::Complete { settings, consumed } => {
///         assert_eq!(consumed, buf.len());
///         assert_eq!(settings.iter().count(), 1);
///     }
///     Preface::NeedMore(_) => unreachable!(),
/// }
/// ```
pub fn parse_client_preface(buf: &[u8], max_frame_size: u32) -> Result<Preface<'_>, DecodeError> {
    let bad = DecodeError {
        error: H2Error::connection(Reason::ProtocolError, Violation::BadPreface),
        consumed: 0,
    };
    match sniff(buf) {
        Sniff::NotH2 => return Err(bad),
        Sniff::NeedMore => return Ok(Preface::NeedMore(CLIENT_MAGIC.len() - buf.len() + HEAD_LEN)),
        Sniff::H2 => {}
    }
    let rest = &buf[CLIENT_MAGIC.len()..];
    // Look at the type before the length so that a non-SETTINGS first frame is reported as
    // a bad preface even when it is large.
    if rest.len() >= HEAD_LEN && (rest[3] != 4 || rest[4] & 1 != 0) {
        return Err(bad);
    }
    let mut dec = FrameDecoder::new();
    dec.set_max_frame_size(max_frame_size);
    match dec.decode(rest)? {
        Decoded::NeedMore(n) => Ok(Preface::NeedMore(n)),
        Decoded::Frame {
            frame: Frame::Settings(settings),
            consumed,
        } => Ok(Preface::Complete {
            settings,
            consumed: CLIENT_MAGIC.len() + consumed,
        }),
        Decoded::Frame { .. } => Err(bad),
    }
}

/// Whether a connection whose first bytes HTTP/1 could not parse is an HTTP/2 client with
/// a bad preface, to be answered with GOAWAY(PROTOCOL_ERROR) (RFC 9113 §3.4) rather than
/// an HTTP/1 `400`. Meant for a plaintext port that serves HTTP/1.1 and h2c with prior
/// knowledge, where a connection is HTTP/2 only if it starts with [`CLIENT_MAGIC`], and
/// to be asked only when parsing the connection's first request head failed.
///
/// The rule looks at the first line (the bytes before the first LF, after any empty
/// lines, which RFC 9112 §2.2 lets a server skip), with trailing whitespace and CR
/// removed:
///
/// - no line ended yet (a head limit was reached first): HTTP/1's answer (`false`);
/// - the line is the preface's own `PRI * HTTP/2.0`: an HTTP/2 client whose preface
///   goes wrong later (`true`);
/// - the last space-separated word starts with `HTTP/` (any case): a request line
///   naming an HTTP version (RFC 9112 §3), however malformed the rest: HTTP/1's answer
///   (400, or 505 for another version) (`false`);
/// - otherwise the peer speaks no HTTP/1.x at all (HTTP/0.9, which is not served,
///   another protocol, or an HTTP/2 client's garbled preface such as h2spec's
///   `INVALID CONNECTION PREFACE`): `true`.
///
/// So `GET /a b HTTP/1.1` and `GET / HTTP/1.1` followed by a bad field line keep their
/// 400, while bytes no HTTP/1 client sends get a frame an HTTP/2 client can read.
///
/// ```
/// use spindle::h2::preface::answer_with_goaway;
/// assert!(answer_with_goaway(b"INVALID CONNECTION PREFACE\r\n\r\n"));
/// assert!(answer_with_goaway(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"));
/// assert!(!answer_with_goaway(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"));
/// assert!(!answer_with_goaway(b"GET / HTTP/1.1\r\nBad Field\r\n\r\n"));
/// ```
pub fn answer_with_goaway(first_bytes: &[u8]) -> bool {
    let start = first_bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(first_bytes.len());
    let rest = &first_bytes[start..];
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let mut line = &rest[..end];
    while let [head @ .., b' ' | b'\t' | b'\r'] = line {
        line = head;
    }
    if line == &CLIENT_MAGIC[..14] {
        return true;
    }
    let last = line
        .rsplit(|&b| b == b' ' || b == b'\t')
        .next()
        .unwrap_or(line);
    !(last.len() >= 5 && last[..5].eq_ignore_ascii_case(b"HTTP/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_every_prefix() {
        for i in 0..CLIENT_MAGIC.len() {
            assert_eq!(sniff(&CLIENT_MAGIC[..i]), Sniff::NeedMore, "{i}");
        }
        let mut more = CLIENT_MAGIC.to_vec();
        more.extend_from_slice(b"\0\0\0\x04");
        assert_eq!(sniff(&more), Sniff::H2);
        assert_eq!(sniff(b"PRI * HTTP/1.1"), Sniff::NotH2);
        assert_eq!(sniff(b"POST"), Sniff::NotH2);
    }

    #[test]
    fn preface_requires_settings() {
        let mut buf = CLIENT_MAGIC.to_vec();
        assert_eq!(
            parse_client_preface(&buf, 16384).unwrap(),
            Preface::NeedMore(9)
        );
        // A PING instead of SETTINGS.
        buf.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&[0; 8]);
        let e = parse_client_preface(&buf, 16384).unwrap_err();
        assert_eq!(e.error.violation(), Violation::BadPreface);
        // SETTINGS ACK is not allowed as the first frame.
        let mut buf = CLIENT_MAGIC.to_vec();
        Settings::ack().encode(&mut buf);
        assert!(parse_client_preface(&buf, 16384).is_err());
    }

    #[test]
    fn goaway_for_first_lines_that_name_no_http_version() {
        for bytes in [
            &b"INVALID CONNECTION PREFACE\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
            b"PRI * HTTP/2.0 \r\n",
            b"PRI * HTTP/2.0\n",
            b"\r\n\r\nHELLO\r\n",
            b"GET /\r\n",
            b"GET / HTTPS\r\n",
            b"GET / HTTP\r\n",
            b"\x16\x03\x01\x02\x00\x01\n",
            b" \n",
        ] {
            assert!(
                answer_with_goaway(bytes),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn http1_answers_for_request_lines_with_a_version() {
        for bytes in [
            &b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nBad Field\r\n\r\n",
            b"GET / HTTP/1.1 \r\n",
            b"GET / HTTP/1.1\t\r\n",
            b"GET / http/1.1\r\n",
            b"GET / HTTP/2.0\r\n",
            b"GET / HTTP/\r\n",
            b"GET / HTTP/1.2\n",
            b"\r\nGET / HTTP/1.1\r\nHost a\r\n\r\n",
            b"PRI * HTTP/1.1\r\n",
            b"PRI * HTTP/2.0X\r\n",
            b"HTTP/1.1\r\n",
            // No line end yet: a head or line limit was reached, HTTP/1 says which.
            b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"INVALID CONNECTION PREFACE",
            b"",
            b"\n",
            b"\r\n\r\n",
        ] {
            assert!(
                !answer_with_goaway(bytes),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
