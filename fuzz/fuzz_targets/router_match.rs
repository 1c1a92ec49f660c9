//! Arbitrary request paths (and methods) through a `Router` with a fixed route set and a
//! fallback, in-process through `TestRequest`. Besides "no panic", checks every answer
//! against a model of the path rule written here independently of the router:
//!
//! - an invalid escape or a segment decoding to `.`/`..` is a 400 and reaches no handler;
//! - a path that is not clean is redirected (301 for GET/HEAD, else 307) to a clean,
//!   same-origin path with the same decoded segments as the model's clean path, and
//!   that path is a fixed point: asking for it is never redirected to a clean path again;
//! - a route that answers really matches the (clean) path by the model, with the same
//!   values, none of which holds a `.` or `..` segment;
//! - the fallback answers only paths no route matches, 405 only paths some route matches
//!   with another method, and a relative `dir/` redirect only when `path/` matches.
#![no_main]
use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spindle::handlers::testing::{Recorder, TestRequest};
use spindle::handlers::{Params, Router};
use spindle::server::{Request, Response};

const ROUTES: &[&str] = &[
    "GET /private/{p...}",
    "GET /items/{id}",
    "GET /items/new",
    "POST /items",
    "/static/{path...}",
    "GET /docs/",
    "GET /docs/{$}",
    "/a/{x}/b/{y}",
    "GET /caf%C3%A9",
    "GET /{$}",
    "DELETE /items/{id}/parts/{part}",
    "PUT /u/{name}/",
    "POST /items/{id}",
    "GET /items/new/edit",
];

const FALLBACK: usize = usize::MAX;

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "BREW",
];

thread_local! {
    /// What the last handler saw: its route index and the captured values.
    static SEEN: RefCell<Option<(usize, Vec<(String, String)>)>> = const { RefCell::new(None) };
}

fn record(route: usize, req: &Request) {
    let params = req
        .extensions()
        .get::<Params>()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    SEEN.with(|s| *s.borrow_mut() = Some((route, params)));
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut b = Router::builder();
        for (i, pattern) in ROUTES.iter().enumerate() {
            b = b.route(pattern, move |req: Request, res: Response| {
                record(i, &req);
                res.send(b"route").ok();
            });
        }
        b.fallback(|req: Request, res: Response| {
            record(FALLBACK, &req);
            res.send(b"fallback").ok();
        })
        .build()
        .expect("the fixed route set builds")
    })
}

// ---- the model ----

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn dotty(decoded: &[u8]) -> bool {
    decoded
        .split(|&b| b == b'/')
        .any(|p| p == b"." || p == b"..")
}

/// Step 1: every escape valid, no segment decoding to a dot segment.
fn refused(path: &str) -> bool {
    path.split('/').any(|seg| match decode(seg) {
        None => true,
        Some(d) => seg.contains('%') && dotty(&d),
    })
}

/// Go's path.Clean plus the kept trailing slash, by a stack of segments.
fn model_clean(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = String::new();
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    out
}

fn segments(path: &str) -> Vec<&str> {
    path[1..].split('/').collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `pattern`'s path matches the clean `path`, and the values it captures.
fn model_match(pattern_path: &str, path: &str) -> Option<Vec<(String, String)>> {
    let pat = segments(pattern_path);
    let req = segments(path);
    let mut values = Vec::new();
    for (i, p) in pat.iter().enumerate() {
        let last = i == pat.len() - 1;
        if *p == "{$}" {
            return (req.len() == i + 1 && req[i].is_empty()).then_some(values);
        }
        let rest = p
            .strip_prefix('{')
            .and_then(|n| n.strip_suffix("...}"))
            .or((p.is_empty() && last && !(i == 0 && pat.len() == 1)).then_some(""))
            .or((p.is_empty() && i == 0 && pat.len() == 1).then_some(""));
        if let Some(name) = rest {
            // The rest of the path, possibly empty, but the segment must exist.
            if req.len() <= i {
                return None;
            }
            let joined = req[i..].join("/");
            if !name.is_empty() {
                values.push((name.to_owned(), lossy(&decode(&joined)?)));
            }
            return Some(values);
        }
        let seg = req.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            values.push((name.to_owned(), lossy(&decode(seg)?)));
        } else if decode(seg)? != decode(p)? {
            return None;
        }
    }
    (req.len() == pat.len()).then_some(values)
}

fn split_pattern(pattern: &str) -> (Option<&str>, &str) {
    match pattern.split_once(' ') {
        Some((m, p)) => (Some(m), p),
        None => (None, pattern),
    }
}

fn method_ok(route: Option<&str>, method: &str) -> bool {
    match route {
        None => true,
        Some(m) => m == method || (m == "GET" && method == "HEAD"),
    }
}

/// Routes whose path matches `path`: (index, takes this method).
fn matching(path: &str, method: &str) -> Vec<(usize, bool)> {
    ROUTES
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let (m, p) = split_pattern(r);
            model_match(p, path).map(|_| (i, method_ok(m, method)))
        })
        .collect()
}

fn run(method: &str, target: &str) -> Option<(Recorder, Option<(usize, Vec<(String, String)>)>)> {
    let uri: spindle::http::Uri = target.parse().ok()?;
    if uri.scheme().is_some() || uri.authority().is_some() {
        return None;
    }
    SEEN.with(|s| *s.borrow_mut() = None);
    let rec = TestRequest::new(method, target).run(router());
    let seen = SEEN.with(|s| s.borrow_mut().take());
    Some((rec, seen))
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[m as usize % METHODS.len()];
    let Ok(target) = std::str::from_utf8(rest) else {
        return;
    };
    let Some((rec, seen)) = run(method, target) else {
        return;
    };
    let uri: spindle::http::Uri = target.parse().unwrap();
    let path = uri.path();
    let status = rec.status().as_u16();
    let location = rec.header("location").map(str::to_owned);
    let redirect = if method == "GET" || method == "HEAD" {
        301
    } else {
        307
    };

    if !path.starts_with('/') {
        assert!(matches!(seen, None | Some((FALLBACK, _))), "{target}");
        return;
    }
    if refused(path) || (method == "CONNECT" && path.split('/').any(|s| s == "." || s == "..")) {
        assert_eq!(status, 400, "{method} {target}");
        assert!(seen.is_none(), "{method} {target} reached a handler");
        return;
    }
    let clean = model_clean(path);
    if method != "CONNECT" && clean != path {
        assert_eq!(status, redirect, "{method} {target}");
        assert!(seen.is_none(), "{method} {target} reached a handler");
        let location = location.expect("a redirect has a Location");
        let (loc_path, loc_query) = match location.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (location.as_str(), None),
        };
        assert!(
            loc_path.starts_with('/')
                && !loc_path.starts_with("//")
                && !loc_path.starts_with("/\\"),
            "{target} → {location}"
        );
        assert!(!location.contains('\\'), "{target} → {location}");
        assert_eq!(
            model_clean(loc_path),
            loc_path,
            "{target} → {location} is not clean"
        );
        let ours: Vec<_> = segments(&clean).iter().map(|s| decode(s)).collect();
        let theirs: Vec<_> = segments(loc_path).iter().map(|s| decode(s)).collect();
        assert_eq!(ours, theirs, "{target} → {location}: other segments");
        assert_eq!(
            loc_query.is_some(),
            uri.query().is_some(),
            "{target} → {location}"
        );
        // The clean path is a fixed point: no second clean-path redirect.
        if let Some((again, _)) = run(method, &location) {
            if matches!(again.status().as_u16(), 301 | 307) {
                let l = again.header("location").unwrap_or("");
                assert!(!l.starts_with('/'), "{location} redirected again to {l}");
            }
        }
        return;
    }

    let found = matching(path, method);
    let takes: Vec<usize> = found
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(i, _)| *i)
        .collect();
    match seen {
        Some((FALLBACK, values)) => {
            assert!(values.is_empty());
            assert!(
                found.is_empty(),
                "{method} {target}: fallback, but {found:?} match"
            );
            if !path.ends_with('/') {
                let slash = format!("{path}/");
                let again = matching(&slash, method);
                assert!(
                    !again.iter().any(|(_, ok)| *ok),
                    "{method} {target}: fallback, but {slash} matches"
                );
            }
        }
        Some((route, values)) => {
            assert_eq!(status, 200);
            let (m, p) = split_pattern(ROUTES[route]);
            assert!(
                method_ok(m, method),
                "{method} {target} reached {}",
                ROUTES[route]
            );
            let model = model_match(p, path)
                .unwrap_or_else(|| panic!("{method} {target} reached {}", ROUTES[route]));
            assert_eq!(values, model, "{method} {target} via {}", ROUTES[route]);
            for (name, v) in &values {
                assert!(!dotty(v.as_bytes()), "{target}: {name} = {v:?}");
            }
        }
        None => match status {
            405 => {
                assert!(
                    !found.is_empty() && takes.is_empty(),
                    "{method} {target}: 405"
                );
                assert!(rec.header("allow").is_some());
            }
            301 | 307 => {
                assert_eq!(status, redirect);
                let location = location.expect("a redirect has a Location");
                let last = path.rsplit('/').next().unwrap_or("");
                assert!(
                    !path.ends_with('/') && found.is_empty(),
                    "{target} → {location}"
                );
                let rel = location.split('?').next().unwrap_or("");
                let rel = rel.strip_prefix("./").unwrap_or(rel);
                assert!(
                    !rel.starts_with('/') && !rel.contains('\\'),
                    "{target} → {location}"
                );
                assert!(
                    !rel.split('/').next().unwrap_or("").contains(':')
                        || location.starts_with("./"),
                    "{target} → {location} reads as a scheme"
                );
                assert_eq!(
                    decode(rel.strip_suffix('/').unwrap_or("")),
                    decode(last),
                    "{target} → {location}"
                );
                let slash = format!("{path}/");
                assert!(
                    matching(&slash, method).iter().any(|(_, ok)| *ok),
                    "{target} → {location}, but {slash} matches nothing"
                );
            }
            other => panic!("{method} {target}: {other} without a handler"),
        },
    }
});
