//! A handler serving the files of a directory.
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use super::util::{
    check_path, clean_location, clean_path, is_clean, percent_decode, slash_location, StackText,
};
use crate::h1::date::{format_http_date, parse_http_date};
use crate::server::{Handler, Request, Response};
use crate::{Error, ErrorKind};

/// Serves the files under a root directory, for GET and HEAD:
///
/// - `Content-Type` from the file extension (`mime_guess`), `Last-Modified`, a strong
///   `ETag` (from size and modification time) and `Accept-Ranges: bytes`;
/// - conditional requests: `If-None-Match` (or, without it, `If-Modified-Since`) that
///   matches gives `304 Not Modified`;
/// - a single `Range` (honouring `If-Range`) gives `206` with `Content-Range`, or `416`
///   when it is past the end; several ranges get the whole file;
/// - files are streamed in chunks, never read whole;
/// - a directory is served by its `index.html` (unless turned off), and a directory
///   path without its trailing `/` is redirected to it with a relative `Location`
///   (`css/`), which stays right under a [`StripPrefix`](super::StripPrefix); there are
///   no listings.
///
/// The request path is read as the [`Router`](super::Router) reads it (see [its
/// rule](super::router#how-a-request-path-is-read)), so a router and a fallback file
/// server answer any path alike: an invalid escape or a segment that decodes to `.` or
/// `..` is a `400`; a path that is not clean (`//a`, `/./a`, `/x/../a`) is redirected
/// to its clean form (`/a`; never `//host`); then each decoded segment must be a plain
/// name: an encoded `/`, a backslash, or a NUL byte gives `400`, so no path leaves the
/// root. A symlink that resolves outside the root is treated as absent (404) unless
/// [`follow_symlinks`](FileServer::follow_symlinks) allows it; symlinks within the root
/// are fine.
///
/// The server sees the whole request path; under a router, strip the route's prefix:
///
/// ```no_run
/// use spindle::handlers::{FileServer, Router, StripPrefix};
///
/// let router = Router::builder()
///     .route("GET /static/{path...}", StripPrefix::new("/static", FileServer::new("./public")?))
///     .build()?;
/// spindle::server::Server::http("127.0.0.1:3000")?.handle(router)?.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileServer {
    root: PathBuf,
    index: bool,
    follow_symlinks: bool,
    chunk: usize,
}

const CHUNK: usize = 64 * 1024;

impl FileServer {
    /// Serves `root`, which must be a directory.
    pub fn new(root: impl AsRef<Path>) -> crate::Result<FileServer> {
        let root = root.as_ref();
        let canonical = root.canonicalize().map_err(|e| {
            Error::io(
                format!("opening the file server root {}", root.display()),
                e,
            )
        })?;
        if !canonical.is_dir() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("file server root {} is not a directory", root.display()),
            ));
        }
        Ok(FileServer {
            root: canonical,
            index: true,
            follow_symlinks: false,
            chunk: CHUNK,
        })
    }

    /// Whether a directory is served by its `index.html` (default true).
    pub fn index(mut self, enabled: bool) -> Self {
        self.index = enabled;
        self
    }

    /// Whether symlinks that lead outside the root are followed (default false).
    pub fn follow_symlinks(mut self, allowed: bool) -> Self {
        self.follow_symlinks = allowed;
        self
    }

    /// The root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a request path to a file system path under the root: only plain names are
    /// pushed onto the root, so the result never leaves it lexically.
    pub(crate) fn resolve(&self, path: &str) -> Result<PathBuf, StatusCode> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(StatusCode::BAD_REQUEST);
        };
        let mut out = self.root.clone();
        for seg in rest.split('/') {
            if seg.is_empty() {
                continue;
            }
            let name = percent_decode(seg.as_bytes()).ok_or(StatusCode::BAD_REQUEST)?;
            if name.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
                return Err(StatusCode::BAD_REQUEST);
            }
            if name == b"." || name == b".." {
                // `handle` redirects literal dot segments to the clean path first; an
                // encoded one is refused there too.
                return Err(StatusCode::BAD_REQUEST);
            }
            out.push(os_name(name)?);
        }
        Ok(out)
    }

    /// Checks where `path` really leads: inside the root, or allowed out of it.
    pub(crate) fn confine(&self, path: &Path) -> Result<PathBuf, StatusCode> {
        let real = path.canonicalize().map_err(|e| status_of(&e))?;
        if real.starts_with(&self.root) || self.follow_symlinks {
            Ok(real)
        } else {
            log::warn!(
                "refused {}: it leads outside the served root",
                path.display()
            );
            Err(StatusCode::NOT_FOUND)
        }
    }
}

/// A decoded request segment as a file name. Unix: the bytes as they are (a name is
/// any bytes but `/` and NUL, both refused by `resolve`).
#[cfg(unix)]
fn os_name(name: Vec<u8>) -> Result<std::ffi::OsString, StatusCode> {
    use std::os::unix::ffi::OsStringExt;
    Ok(std::ffi::OsString::from_vec(name))
}

/// A decoded request segment as a file name. Windows: UTF-8 (names are UTF-16 there)
/// that passes [`windows_name_ok`].
#[cfg(not(unix))]
fn os_name(name: Vec<u8>) -> Result<std::ffi::OsString, StatusCode> {
    let name = String::from_utf8(name).map_err(|_| StatusCode::BAD_REQUEST)?;
    if !windows_name_ok(&name) {
        log::debug!("refused the path segment {name:?}: not a plain Windows file name");
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(name.into())
}

/// Whether one decoded path segment is a plain file name on Windows, one that names
/// an entry of the directory it is pushed onto and nothing else (Microsoft's "Naming
/// Files, Paths, and Namespaces"). Refused:
///
/// - `\` and `/` (separators), `:` (a drive, `C:` — which would make `PathBuf::push`
///   replace the root —, an alternate data stream `file.txt:secret`, or a device
///   `CON:`), the wildcards and reserved `<>"|?*`, and control characters;
/// - a trailing `.` or space, which Win32 strips (`secret.txt.` opens `secret.txt`, so a
///   name could dodge a check made on its spelling);
/// - the device names `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9` (also
///   with the superscript digits `¹²³`), `CONIN$`, `CONOUT$`, in any case and with any
///   extension (`nul.txt` is the null device in every directory).
///
/// Compiled everywhere so that its tests run on Linux; used on Windows.
#[cfg_attr(unix, allow(dead_code))]
fn windows_name_ok(name: &str) -> bool {
    if name.is_empty() || name.ends_with(['.', ' ']) {
        return false;
    }
    if name.chars().any(|c| {
        c.is_control() || matches!(c, '\\' | '/' | ':' | '<' | '>' | '"' | '|' | '?' | '*')
    }) {
        return false;
    }
    // The device check looks at the part before the first dot, without trailing
    // spaces (`CON .txt` is the console too).
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let device = match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => match upper
            .strip_prefix("COM")
            .or_else(|| upper.strip_prefix("LPT"))
        {
            Some(n) => {
                let mut digits = n.chars();
                matches!(
                    (digits.next(), digits.next()),
                    (Some('0'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'), None)
                )
            }
            None => false,
        },
    };
    !device
}

/// The answer for a failed file system call on a request path. A path that names no
/// file is a 404 however the OS says so: missing, a file used as a directory (ENOTDIR;
/// Windows ERROR_DIRECTORY, or ERROR_PATH_NOT_FOUND, which is `NotFound`), a name or
/// path too long or invalid for the file system (ENAMETOOLONG; Windows
/// ERROR_FILENAME_EXCED_RANGE, ERROR_INVALID_NAME, ERROR_BAD_PATHNAME; a peer chooses
/// these by sending a long segment), or a symlink loop (ELOOP; Windows
/// ERROR_CANT_RESOLVE_FILENAME).
fn status_of(err: &io::Error) -> StatusCode {
    // `io::ErrorKind::FilesystemLoop` cannot be named on stable Rust: the raw codes.
    #[cfg(unix)]
    let absent = matches!(
        err.raw_os_error(),
        Some(libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP)
    );
    #[cfg(windows)]
    let absent = matches!(err.raw_os_error(), Some(3 | 123 | 161 | 206 | 267 | 1921));
    #[cfg(not(any(unix, windows)))]
    let absent = false;
    match err.kind() {
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename => StatusCode::NOT_FOUND,
        _ if absent => StatusCode::NOT_FOUND,
        _ => {
            log::warn!("file server: {err}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn error_page(res: Response<'_>, status: StatusCode) {
    super::status_page(res, status)
}

impl Handler for FileServer {
    fn handle(&self, req: Request<'_>, mut res: Response<'_>) {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return error_page(res, StatusCode::METHOD_NOT_ALLOWED);
        }
        if let Err(bad) = check_path(req.path()) {
            log::debug!("refused the request path {:?}: {}", req.path(), bad.0);
            return error_page(res, StatusCode::BAD_REQUEST);
        }
        if req.path().starts_with('/') && !is_clean(req.path()) {
            // The same redirect the router sends, so both read the path alike.
            return match clean_location(&clean_path(req.path()), req.query()) {
                Some(location) => super::redirect(res, req.method(), location),
                None => error_page(res, StatusCode::BAD_REQUEST),
            };
        }
        let path = match self.resolve(req.path()).and_then(|p| self.confine(&p)) {
            Ok(p) => p,
            Err(status) => return error_page(res, status),
        };
        let meta = match path.metadata() {
            Ok(m) => m,
            Err(e) => return error_page(res, status_of(&e)),
        };
        if meta.is_dir() {
            if !req.path().ends_with('/') {
                // Relative (`css/`): the path this server sees may lack a prefix that
                // a StripPrefix removed, and `//evil.com/` would name another host.
                return match slash_location(req.path(), req.query()) {
                    Some(location) => super::redirect(res, req.method(), location),
                    None => error_page(res, StatusCode::BAD_REQUEST),
                };
            }
            if !self.index {
                return error_page(res, StatusCode::NOT_FOUND);
            }
            let index = match self.confine(&path.join("index.html")) {
                Ok(p) => p,
                Err(status) => return error_page(res, status),
            };
            return match index.metadata() {
                Ok(m) if m.is_file() => self.serve_file(&req, res, &index, &m),
                Ok(_) => error_page(res, StatusCode::NOT_FOUND),
                Err(e) => error_page(res, status_of(&e)),
            };
        }
        if !meta.is_file() {
            return error_page(res, StatusCode::NOT_FOUND);
        }
        self.serve_file(&req, res, &path, &meta)
    }
}

/// A parsed `Range` header against a file of some length.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// Serve the whole file (no range, or one we ignore).
    Whole,
    /// Serve bytes `start..=end`.
    Part(u64, u64),
    /// No byte of the range exists.
    Unsatisfiable,
}

pub(crate) fn parse_range(value: &[u8], len: u64) -> RangeSpec {
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeSpec::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        // Several ranges: the whole file is a valid answer (RFC 9110 §14.2).
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // A suffix: the last `b` bytes.
        return match num(b) {
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Part(len.saturating_sub(n), len - 1),
            None => RangeSpec::Whole,
        };
    }
    let Some(start) = num(a) else {
        return RangeSpec::Whole;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(e) if e >= start => e,
            _ => return RangeSpec::Whole,
        }
    };
    if start >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(start, end.min(len - 1))
}

/// Whether an `If-None-Match` list matches `etag` (weak comparison).
fn none_match(list: &HeaderMap, etag: &str) -> Option<bool> {
    let mut present = false;
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = strip(etag);
    for value in list.get_all(header::IF_NONE_MATCH) {
        present = true;
        let Ok(value) = value.to_str() else { continue };
        for tag in value.split(',') {
            if tag.trim() == "*" || strip(tag) == ours {
                return Some(true);
            }
        }
    }
    present.then_some(false)
}

impl FileServer {
    fn serve_file(&self, req: &Request<'_>, mut res: Response<'_>, path: &Path, meta: &Metadata) {
        let len = meta.len();
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let mtime_secs = modified.map_or(0, |d| d.as_secs());
        let mtime_nanos = modified.map_or(0, |d| d.as_nanos());
        let mut etag = StackText::<64>::new();
        let _ = std::fmt::Write::write_fmt(&mut etag, format_args!("\"{mtime_nanos:x}-{len:x}\""));
        let etag = etag.as_str();
        let last_modified = format_http_date(mtime_secs);

        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(etag) {
            headers.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_bytes(&last_modified) {
            headers.insert(header::LAST_MODIFIED, v);
        }

        // Conditional requests (RFC 9110 §13.2.2): If-None-Match wins over
        // If-Modified-Since.
        let not_modified = match none_match(req.headers(), etag) {
            Some(matched) => matched,
            None => req
                .headers()
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| parse_http_date(v.as_bytes()))
                .is_some_and(|since| mtime_secs <= since),
        };
        if not_modified {
            return res
                .with_status(StatusCode::NOT_MODIFIED)
                .send(b"")
                .unwrap_or(());
        }

        let mime = mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
            HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
        } else {
            Ok(HeaderValue::from_static(mime))
        };
        let headers = res.headers_mut();
        if let Ok(v) = content_type {
            headers.insert(header::CONTENT_TYPE, v);
        }
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

        let if_range_ok = match req.headers().get(header::IF_RANGE) {
            None => true,
            Some(v) if v.as_bytes().starts_with(b"\"") => v.as_bytes() == etag.as_bytes(),
            Some(v) => parse_http_date(v.as_bytes()) == Some(mtime_secs),
        };
        let range = match req.headers().get(header::RANGE) {
            Some(v) if if_range_ok => parse_range(v.as_bytes(), len),
            _ => RangeSpec::Whole,
        };
        let (start, count) = match range {
            RangeSpec::Whole => (0, len),
            RangeSpec::Part(start, end) => {
                let mut cr = StackText::<80>::new();
                let _ =
                    std::fmt::Write::write_fmt(&mut cr, format_args!("bytes {start}-{end}/{len}"));
                if let Ok(v) = HeaderValue::from_str(cr.as_str()) {
                    res.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                *res.status_mut() = StatusCode::PARTIAL_CONTENT;
                (start, end - start + 1)
            }
            RangeSpec::Unsatisfiable => {
                let mut cr = StackText::<40>::new();
                let _ = std::fmt::Write::write_fmt(&mut cr, format_args!("bytes */{len}"));
                if let Ok(v) = HeaderValue::from_str(cr.as_str()) {
                    res.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                res.headers_mut().remove(header::CONTENT_TYPE);
                return error_page(res, StatusCode::RANGE_NOT_SATISFIABLE);
            }
        };
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
        if req.method() == Method::HEAD {
            return res.send(b"").unwrap_or(());
        }
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                res.headers_mut().remove(header::CONTENT_LENGTH);
                return error_page(res, status_of(&e));
            }
        };
        if start > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(start)) {
                res.headers_mut().remove(header::CONTENT_LENGTH);
                log::warn!("seeking {} failed: {e}", path.display());
                return error_page(res, StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        let Ok(mut out) = res.start() else { return };
        let mut buf = vec![0u8; self.chunk.min(count.max(1) as usize)];
        let mut left = count;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    log::warn!("{} shrank while being served", path.display());
                    return out.abort();
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("reading {} failed: {e}", path.display());
                    return out.abort();
                }
            };
            if out.write_all(&buf[..n]).is_err() {
                return; // the peer went away
            }
            left -= n as u64;
        }
        if let Err(e) = out.end() {
            log::debug!("ending a file response failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeSpec::Part(0, 9));
        assert_eq!(parse_range(b"bytes=90-", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range(b"bytes=90-1000", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range(b"bytes=-10", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range(b"bytes=-1000", 100), RangeSpec::Part(0, 99));
        assert_eq!(parse_range(b"bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=5-1", 100), RangeSpec::Whole);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeSpec::Whole);
        assert_eq!(parse_range(b"items=0-1", 100), RangeSpec::Whole);
        assert_eq!(parse_range(b"bytes=x-1", 100), RangeSpec::Whole);
    }

    #[test]
    fn traversal_is_refused() {
        let dir = std::env::temp_dir();
        let fs = FileServer::new(&dir).unwrap();
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2E%2E/x",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(fs.resolve(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
        }
        assert_eq!(
            fs.resolve("//etc/passwd").unwrap(),
            fs.root().join("etc/passwd")
        );
        // `handle` redirects these to the clean path before resolving.
        assert_eq!(fs.resolve("/./a/b"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(fs.resolve("/a/%2e/b"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(fs.resolve("/a/b/").unwrap(), fs.root().join("a/b"));
    }

    /// The Windows segment rule, checked here on every platform: nothing that names a
    /// drive, a stream, a device, or a name Win32 rewrites gets through; plain names do.
    #[test]
    fn windows_names_refuse_what_leaves_the_directory() {
        for bad in [
            "C:",
            "c:secret",
            "file.txt:stream",
            "file.txt::$DATA",
            "CON",
            "con",
            "Con.txt",
            "nul.tar.gz",
            "CON .txt",
            "AUX",
            "prn.log",
            "COM1",
            "com9.txt",
            "LPT1",
            "lpt\u{b9}",
            "COM\u{b3}.x",
            "CONIN$",
            "conout$.txt",
            "secret.txt.",
            "secret.txt ",
            "...",
            "a\\b",
            "a/b",
            "a*b",
            "a?b",
            "a<b",
            "a>b",
            "a|b",
            "a\"b",
            "a\u{1}b",
            "",
        ] {
            assert!(!windows_name_ok(bad), "{bad:?} was accepted");
        }
        for good in [
            "index.html",
            "a",
            ".hidden",
            "console.log",
            "CONFIG",
            "nullable.txt",
            "COM10",
            "LPT",
            "com",
            "auxiliary.md",
            "r\u{e9}sum\u{e9}.pdf",
            "a b.txt",
            "x.tar.gz",
        ] {
            assert!(windows_name_ok(good), "{good:?} was refused");
        }
    }

    /// On Windows the rule applies to every request segment (a 400, as for `..`).
    #[cfg(not(unix))]
    #[test]
    fn windows_paths_cannot_name_a_drive_stream_or_device() {
        let fs = FileServer::new(std::env::temp_dir()).unwrap();
        for bad in [
            "/C:/Windows/win.ini",
            "/c%3a",
            "/a.txt:s",
            "/nul",
            "/a/CON.txt",
            "/x.",
        ] {
            assert_eq!(fs.resolve(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
        }
    }

    /// A path that names nothing is a 404 however the OS says it, not a 500 (a peer
    /// picks these failures by what it sends).
    #[test]
    fn failures_that_name_no_file_are_404() {
        use std::io::{Error as E, ErrorKind as K};
        assert_eq!(status_of(&E::from(K::NotFound)), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&E::from(K::NotADirectory)), StatusCode::NOT_FOUND);
        assert_eq!(
            status_of(&E::from(K::InvalidFilename)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(&E::from(K::PermissionDenied)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(&E::from(K::Other)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        #[cfg(unix)]
        for errno in [libc::ENOTDIR, libc::ENAMETOOLONG, libc::ELOOP] {
            assert_eq!(
                status_of(&E::from_raw_os_error(errno)),
                StatusCode::NOT_FOUND,
                "errno {errno}"
            );
        }
        #[cfg(windows)]
        for code in [3, 123, 161, 206, 267, 1921] {
            assert_eq!(
                status_of(&E::from_raw_os_error(code)),
                StatusCode::NOT_FOUND,
                "error {code}"
            );
        }
    }
}
