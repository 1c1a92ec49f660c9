//! Small helpers shared by the handlers: a stack text buffer, percent-decoding, dates.
use std::fmt;

use crate::h1::framing::hex_value;

/// A fixed-size text buffer on the stack that truncates (marking it with `...`)
/// instead of allocating.
pub(crate) struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> StackText<N> {
    pub(crate) fn new() -> Self {
        StackText {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole UTF-8 sequences are ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = N - self.len;
        let take = if s.len() <= room {
            s.len()
        } else {
            self.truncated = true;
            let mut cut = room;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            cut
        };
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

impl<const N: usize> fmt::Display for StackText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Percent-decodes `s`; `None` when a `%` is not followed by two hex digits.
pub(crate) fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = hex_value(*s.get(i + 1)?)?;
            let lo = hex_value(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Seconds since the epoch as a Common Log Format time: `06/Nov/1994:08:49:37 +0000`.
pub(crate) fn clf_time(unix_seconds: u64) -> [u8; 26] {
    // From the IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`.
    let d = crate::h1::date::format_http_date(unix_seconds);
    let mut out = [b' '; 26];
    out[0..2].copy_from_slice(&d[5..7]);
    out[2] = b'/';
    out[3..6].copy_from_slice(&d[8..11]);
    out[6] = b'/';
    out[7..11].copy_from_slice(&d[12..16]);
    out[11] = b':';
    out[12..20].copy_from_slice(&d[17..25]);
    out[21..26].copy_from_slice(b"+0000");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn stack_text_truncates_on_char_boundary() {
        let mut t = StackText::<4>::new();
        write!(t, "ab€").unwrap();
        assert_eq!(t.as_str(), "ab");
        assert_eq!(t.to_string(), "ab...");
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(percent_decode(b"a%2Fb%2e").unwrap(), b"a/b.");
        assert!(percent_decode(b"a%2").is_none());
        assert!(percent_decode(b"a%zz").is_none());
    }

    #[test]
    fn clf_time_format() {
        assert_eq!(&clf_time(784_111_777), b"06/Nov/1994:08:49:37 +0000");
    }
}
