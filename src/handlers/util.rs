//! Small helpers shared by the handlers: a stack text buffer, percent-coding, the one
//! reading of a request path that the router, `StripPrefix` and the file server share,
//! safe `Location` values, dates.
use std::borrow::Cow;
use std::fmt;

use http::HeaderValue;

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

/// Percent-decodes `s` (RFC 3986 §2.1); `None` when a `%` is not followed by two hex
/// digits. The output is never longer than the input.
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

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escape(b: u8, out: &mut String) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Percent-encodes every byte of `s` but RFC 3986's unreserved characters
/// (`ALPHA / DIGIT / "-" / "." / "_" / "~"`, §2.3): the inverse of [`percent_decode`]
/// (for the tests and the fuzz targets; the handlers encode with `push_location_text`).
#[cfg(any(test, fuzzing))]
pub(crate) fn percent_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            push_escape(b, &mut out);
        }
    }
    out
}

// ---- request paths ----
//
// The router, `StripPrefix` and the file server read a request path by one rule, so
// that they can never disagree about what a path names (Go 1.22's ServeMux rule):
//
// 1. every `%` starts a valid escape, and no segment decodes to a dot segment (`.` or
//    `..`), also counting a decoded `/` as a separator (`%2e%2e`, `a%2F..%2Fb`):
//    otherwise 400 (`check_path`);
// 2. the path is clean (`is_clean`: no empty, `.` or `..` segment but a final empty one
//    for a trailing slash): otherwise the answer is a redirect to `clean_path`;
// 3. what is matched or opened is the sequence of percent-decoded segments; an encoded
//    `/` stays inside its segment (`match_key`).

/// Why a request path is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPath(pub(crate) &'static str);

fn is_dot(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// Step 1 of the rule above: the escapes of `path` are valid and none of its segments
/// decodes to a dot segment. Literal `.` and `..` segments are left to cleaning.
pub(crate) fn check_path(path: &str) -> Result<(), BadPath> {
    for seg in path.split('/') {
        if !seg.contains('%') {
            continue;
        }
        let decoded = percent_decode(seg.as_bytes()).ok_or(BadPath("invalid percent-encoding"))?;
        if decoded.split(|&b| b == b'/').any(is_dot) {
            return Err(BadPath("a segment decodes to . or .."));
        }
    }
    Ok(())
}

/// Whether a path starting with `/` is clean: no empty, `.` or `..` segment, except an
/// empty last one (a trailing slash). `clean_path` leaves a clean path as it is.
pub(crate) fn is_clean(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if is_dot(seg.as_bytes()) || (seg.is_empty() && !last) {
            return false;
        }
    }
    true
}

/// Go's `cleanPath`: `path.Clean` (repeated slashes collapsed, `.` removed, `..` removes
/// the segment before it and never climbs above the root), on the escaped path, with a
/// trailing slash kept. The result is clean, starts with `/`, and is a fixed point.
pub(crate) fn clean_path(path: &str) -> Cow<'_, str> {
    if is_clean(path) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 1);
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            seg => {
                out.push('/');
                out.push_str(seg);
            }
        }
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Step 3: the form the router matches, with every segment percent-decoded and then
/// written back with only `%`, `/`, `{`, `}` and bytes that are not UTF-8 escaped
/// again, so an encoded `/` stays inside its segment and `%70rivate` reads `private`.
/// Call it on a path `check_path` accepted (an invalid escape is kept as it is).
pub(crate) fn match_key(path: &str) -> Cow<'_, str> {
    if !path.bytes().any(|b| matches!(b, b'%' | b'{' | b'}')) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match percent_decode(seg.as_bytes()) {
            Some(decoded) => canonical_segment(&decoded, &mut out),
            None => out.push_str(seg),
        }
    }
    Cow::Owned(out)
}

/// Writes one decoded segment in [`match_key`]'s form.
pub(crate) fn canonical_segment(decoded: &[u8], out: &mut String) {
    for chunk in decoded.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '%' | '/' | '{' | '}' => push_escape(c as u8, out),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_escape(b, out);
        }
    }
}

/// Decodes a value captured from a [`match_key`] (lossy on bytes that are not UTF-8).
pub(crate) fn decode_value(raw: &str) -> String {
    match percent_decode(raw.as_bytes()) {
        Some(v) => match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
        None => raw.to_owned(),
    }
}

// ---- Location values ----

/// Writes `s` with every byte that is not allowed unencoded in a path (RFC 3986 §3.3:
/// unreserved, sub-delims, `:`, `@`, `/`) or, with `query`, in a query (`?` as well)
/// percent-encoded; existing escapes are kept. A browser reads `\` as `/` (WHATWG URL),
/// so it is always encoded, as are controls, spaces and non-ASCII bytes.
fn push_location_text(s: &str, query: bool, out: &mut String) {
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            )
            || (query && b == b'?');
        if keep {
            out.push(char::from(b));
        } else {
            push_escape(b, out);
        }
    }
}

/// Whether a `Location` value can only lead to this origin: a relative reference with
/// no scheme (`:` before the first `/`, RFC 3986 §4.2), or an absolute path that does
/// not start with `//` or `/\` (a network-path reference to another host, RFC 3986
/// §4.2, or one to a browser).
pub(crate) fn same_origin_location(location: &str) -> bool {
    let path_end = location.find(['?', '#']).unwrap_or(location.len());
    let path = &location[..path_end];
    if let Some(rest) = path.strip_prefix('/') {
        return !rest.starts_with(['/', '\\']);
    }
    let first = path.split('/').next().unwrap_or("");
    !first.contains(':') && !path.starts_with('\\') && !path.is_empty()
}

fn finish_location(mut out: String, query: Option<&str>) -> Option<HeaderValue> {
    if let Some(q) = query {
        out.push('?');
        push_location_text(q, true, &mut out);
    }
    if !same_origin_location(&out) {
        log::warn!("refused to send an unsafe Location {out:?}");
        return None;
    }
    HeaderValue::from_str(&out).ok()
}

/// The `Location` of a redirect to the clean absolute path `clean` (and the request's
/// query): same-origin by construction, since a clean path has no `//` and `\` is sent
/// encoded. `None` only for a path that is not clean.
pub(crate) fn clean_location(clean: &str, query: Option<&str>) -> Option<HeaderValue> {
    if !is_clean(clean) {
        return None;
    }
    let mut out = String::with_capacity(clean.len() + query.map_or(0, |q| q.len() + 1));
    push_location_text(clean, false, &mut out);
    finish_location(out, query)
}

/// The `Location` of the `/dir` → `/dir/` redirect for `path`, relative to it: the last
/// segment and a `/` (`css/`; `./a:b/` when the segment would read as a scheme), so it
/// stays right under any prefix a `StripPrefix` removed or a `nest` added.
pub(crate) fn slash_location(path: &str, query: Option<&str>) -> Option<HeaderValue> {
    let last = path.rsplit('/').next().unwrap_or("");
    if last.is_empty() || is_dot(last.as_bytes()) {
        return None;
    }
    let mut out = String::with_capacity(last.len() + 3 + query.map_or(0, |q| q.len() + 1));
    push_location_text(last, false, &mut out);
    if out.contains(':') {
        out.insert_str(0, "./");
    }
    out.push('/');
    finish_location(out, query)
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
    fn percent_round_trip() {
        for x in [
            &b""[..],
            b"a/b c",
            b"%",
            b"\x00\xff\xc3\xa9",
            b"..",
            b"~-._",
        ] {
            let e = percent_encode(x);
            assert_eq!(percent_decode(e.as_bytes()).as_deref(), Some(x), "{e}");
        }
        assert_eq!(percent_encode(b"a b/"), "a%20b%2F");
    }

    #[test]
    fn paths_are_checked() {
        for ok in [
            "/", "/a/b", "/a%20b", "/a%2Fb", "/./a", "/a/../b", "//x", "/%2e.x",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/%zz",
            "/a%2",
            "/%2e%2e/x",
            "/%2E",
            "/.%2e",
            "/a%2F..%2Fb",
            "/a%2F.",
            "/x/%2e%2e%2F",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        // Go's cleanPath (net/http), on the escaped path.
        for (raw, clean) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//evil.com", "/evil.com"),
            ("//evil.com/", "/evil.com/"),
            ("/./private/x", "/private/x"),
            ("//private/x", "/private/x"),
            ("/a/../private/x", "/private/x"),
            ("/../../x", "/x"),
            ("/a/..", "/"),
            ("/a/../", "/"),
            ("/a/.", "/a"),
            ("/a/./", "/a/"),
            ("/a/b/..", "/a"),
            ("///", "/"),
            ("/a//b//", "/a/b/"),
            ("/%2e/x", "/%2e/x"),
            (r"/\\evil.com", r"/\\evil.com"),
            (r"/.//\evil.com", r"/\evil.com"),
        ] {
            assert_eq!(clean_path(raw), clean, "{raw}");
            assert_eq!(is_clean(raw), raw == clean, "{raw}");
            assert!(is_clean(&clean_path(raw)), "{raw}");
            assert_eq!(clean_path(clean), clean, "{clean} is a fixed point");
        }
    }

    #[test]
    fn match_keys_decode_segments() {
        assert_eq!(match_key("/private/x"), "/private/x");
        assert!(matches!(match_key("/private/x"), Cow::Borrowed(_)));
        assert_eq!(match_key("/%70rivate/x"), "/private/x");
        assert_eq!(match_key("/a%2Fb/c"), "/a%2Fb/c");
        assert_eq!(match_key("/a%2fb"), "/a%2Fb");
        assert_eq!(match_key("/%25/%7B%7d"), "/%25/%7B%7D");
        assert_eq!(match_key("/{x}"), "/%7Bx%7D");
        assert_eq!(match_key("/caf%C3%A9"), "/café");
        assert_eq!(match_key("/%FF%20"), "/%FF ");
        assert_eq!(decode_value("a%2Fb%FF"), "a/b\u{fffd}");
    }

    #[test]
    fn locations_stay_on_this_origin() {
        let abs =
            |p: &str, q: Option<&str>| clean_location(p, q).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(abs("/evil.com", None).as_deref(), Some("/evil.com"));
        assert_eq!(
            abs(r"/\\evil.com", None).as_deref(),
            Some("/%5C%5Cevil.com")
        );
        assert_eq!(abs(r"/\x", Some(r"a=\")).as_deref(), Some("/%5Cx?a=%5C"));
        assert_eq!(abs("/a b", Some("q=1?2")).as_deref(), Some("/a%20b?q=1?2"));
        assert_eq!(abs("//evil.com", None), None);
        assert_eq!(abs("/./x", None), None);
        let rel =
            |p: &str, q: Option<&str>| slash_location(p, q).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(rel("/static/css", None).as_deref(), Some("css/"));
        assert_eq!(rel("/css", Some("v=1")).as_deref(), Some("css/?v=1"));
        assert_eq!(rel("/a:b", None).as_deref(), Some("./a:b/"));
        assert_eq!(
            rel(r"/u/\\evil.com", None).as_deref(),
            Some("%5C%5Cevil.com/")
        );
        assert_eq!(rel("/evil.com", None).as_deref(), Some("evil.com/"));
        assert_eq!(rel("/dir/", None), None);
        for unsafe_ in [
            "//evil.com/",
            r"/\evil.com",
            r"\\evil.com",
            r"\x",
            "http:x",
            "a:b/",
            "",
        ] {
            assert!(!same_origin_location(unsafe_), "{unsafe_}");
        }
        for safe in ["/a", "css/", "./a:b/", "/a?x=//y", "a/b:c", "%5C%5Cx/"] {
            assert!(same_origin_location(safe), "{safe}");
        }
    }

    #[test]
    fn clf_time_format() {
        assert_eq!(&clf_time(784_111_777), b"06/Nov/1994:08:49:37 +0000");
    }
}
