//! Fuzzing entry points for `crate::handlers`: the path rule the router, `StripPrefix`
//! and the file server share, percent-coding, the file server's path resolution and
//! `Range` parsing, and `Accept-Encoding` negotiation. Each calls the real code.
use std::path::{Path, PathBuf};

use http::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING};

use crate::handlers::compression::{choose, Coding};
use crate::handlers::fs::{parse_range as fs_parse_range, RangeSpec};
use crate::handlers::util;
use crate::handlers::FileServer;

/// `handlers::util::percent_decode`: `None` for an invalid escape.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    util::percent_decode(s)
}

/// Percent-encodes every byte but RFC 3986's unreserved ones.
pub fn percent_encode(s: &[u8]) -> String {
    util::percent_encode(s)
}

/// Whether the path passes step 1 of the path rule (valid escapes, no encoded dot
/// segment).
pub fn check_path(path: &str) -> bool {
    util::check_path(path).is_ok()
}

/// Whether a path is clean.
pub fn is_clean(path: &str) -> bool {
    util::is_clean(path)
}

/// Go's `cleanPath`, as the router redirects to it.
pub fn clean_path(path: &str) -> String {
    util::clean_path(path).into_owned()
}

/// The decoded-segment form the router matches.
pub fn match_key(path: &str) -> String {
    util::match_key(path).into_owned()
}

/// Whether a `Location` value can only lead to this origin.
pub fn same_origin_location(location: &str) -> bool {
    util::same_origin_location(location)
}

/// The file server's lexical mapping of a request path under its root (`Err` is the
/// status it answers).
pub fn fs_resolve(fs: &FileServer, path: &str) -> Result<PathBuf, u16> {
    fs.resolve(path).map_err(|s| s.as_u16())
}

/// Where a resolved path really leads, if the file server would open it.
pub fn fs_confine(fs: &FileServer, path: &Path) -> Result<PathBuf, u16> {
    fs.confine(path).map_err(|s| s.as_u16())
}

/// What the file server makes of a `Range` value for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The whole file.
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// `handlers::fs::parse_range`.
pub fn parse_range(value: &[u8], len: u64) -> Range {
    match fs_parse_range(value, len) {
        RangeSpec::Whole => Range::Whole,
        RangeSpec::Part(a, b) => Range::Part(a, b),
        RangeSpec::Unsatisfiable => Range::Unsatisfiable,
    }
}

/// The compression layer's reading of `Accept-Encoding` field values (those that are
/// not valid field values are left out, as a parser would): the coding it would use
/// (`"gzip"`, `"deflate"`) and whether `identity` is refused.
pub fn accept_encoding(values: &[&[u8]], deflate_ok: bool) -> (Option<&'static str>, bool) {
    let mut headers = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(ACCEPT_ENCODING, v);
        }
    }
    let choice = choose(&headers, deflate_ok);
    let coding = choice.coding.map(|c| match c {
        Coding::Gzip => "gzip",
        Coding::Deflate => "deflate",
    });
    (coding, choice.identity_refused)
}
