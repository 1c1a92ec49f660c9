//! A request router in the style of Go 1.22's `ServeMux`: method and path patterns
//! with named segments and a trailing wildcard, matched by a radix tree.
//!
//! Patterns are `[METHOD ]PATH`:
//!
//! | pattern | matches |
//! | --- | --- |
//! | `GET /items/{id}` | GET (and HEAD) of `/items/7`, with `id` = `7` |
//! | `/static/{path...}` | any method on `/static/` and everything under it, `path` = the rest |
//! | `/docs/` | like `/docs/{_...}`: the subtree, without a named capture |
//! | `/docs/{$}` | only `/docs/` itself |
//! | `POST /items` | exactly `/items`, by POST |
//!
//! A wildcard is a whole path segment; its value is percent-decoded, so
//! `/items/a%2Fb` gives `id` = `a/b`. Among the routes that take the request's method,
//! static segments beat wildcards (so `GET /items/new` does not hide `POST
//! /items/{id}` from a POST), and at the same path a route with the method beats one
//! without. When a path matches but no route takes the
//! method, the answer is `405 Method Not Allowed` with an `Allow` header; when no path
//! matches, `404` (or the fallback handler). A GET route answers HEAD too (the server
//! drops the body).
//!
//! # How a request path is read
//!
//! The router, [`StripPrefix`] and the [`FileServer`](super::FileServer) read a path by
//! one rule, Go 1.22 ServeMux's, so a route and a fallback file server never disagree
//! about what a path names:
//!
//! 1. **Refused** with `400`: an invalid escape (`%zz`), or a segment that decodes to
//!    `.` or `..`, also counting an encoded `/` as a separator (`/%2e%2e/x`,
//!    `/files/a%2F..%2Fb`). So no captured value ever holds a `..` segment.
//! 2. **Cleaned**: a path with an empty, `.` or `..` segment (`//private/x`,
//!    `/./private/x`, `/a/../private/x`) is redirected to its clean form (`/private/x`;
//!    Go's `cleanPath`: repeated slashes collapsed, dot segments resolved, never above
//!    the root, a trailing slash kept) with the query kept: `301` for GET and HEAD, as
//!    Go does, and `307` for other methods, which keeps the method and body (RFC 9110
//!    §15.4.8; a 301 lets a user agent turn a POST into a GET, and Go 1.26 answers 307
//!    for that reason). `CONNECT` is not cleaned, as in Go; its dot segments are
//!    refused.
//! 3. **Matched on decoded segments**: `/%70rivate/x` matches `/private/{p}` (with `p`
//!    = `x`) without a redirect, and an encoded slash stays inside its segment
//!    (`/items/a%2Fb` is one segment).
//!
//! A request for `/docs` that only matches `/docs/` is redirected there, with the same
//! statuses. Every `Location` is relative (`docs/`) or a clean absolute path with `\`
//! encoded, never `//host` or `/\host`: it stays on this origin, and under a prefix
//! that a [`StripPrefix`] removed or [`nest`](RouterBuilder::nest) added.
//!
//! Routes that would match the same requests (`GET /a/{x}` and `GET /a/{y}`), or that
//! the radix tree cannot order (a `{x}` and a `{rest...}` at the same position), are an
//! error from [`RouterBuilder::build`], never a surprise at run time.
//!
//! Matching costs the same with ten routes or ten thousand: the paths live in a radix
//! tree (the `matchit` crate), looked up once per request.
use std::collections::HashMap;
use std::fmt;

use http::header::{self, HeaderValue};
use http::{Method, StatusCode, Uri};

use super::util::{
    canonical_segment, check_path, clean_location, clean_path, decode_value, is_clean, match_key,
    percent_decode, slash_location,
};
use crate::server::{Handler, Request, Response};

/// The values a route captured from the path, in the request's extensions; read them
/// with [`RequestExt::path_value`](super::RequestExt::path_value) or
/// `req.extensions().get::<Params>()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All captures, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many values were captured.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Why a router could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// A pattern does not parse.
    Invalid {
        /// The pattern, as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two patterns would match the same requests, or the radix tree cannot order them.
    Conflict {
        /// The pattern being added.
        pattern: String,
        /// The pattern already there.
        existing: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Invalid { pattern, reason } => {
                write!(f, "invalid route pattern {pattern:?}: {reason}")
            }
            RouteError::Conflict { pattern, existing } => {
                write!(f, "route pattern {pattern:?} conflicts with {existing:?}")
            }
        }
    }
}

impl std::error::Error for RouteError {}

struct RouteDef {
    pattern: String,
    method: Option<Method>,
    path: String,
    handler: Box<dyn Handler>,
}

/// Collects routes; [`build`](RouterBuilder::build) checks them and makes the
/// [`Router`].
///
/// ```
/// use spindle::handlers::Router;
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let api = Router::builder()
///     .route("GET /users/{id}", |_req: Request, res: Response| { res.send(b"user").ok(); })
///     .route("DELETE /users/{id}", |_req: Request, res: Response| { res.send(b"gone").ok(); });
/// let router = Router::builder()
///     .route("GET /{$}", |_req: Request, res: Response| { res.send(b"home").ok(); })
///     .nest("/api/v1", api)
///     .build()
///     .unwrap();
/// assert_eq!(TestRequest::get("/api/v1/users/3").run(&router).text(), "user");
/// assert_eq!(TestRequest::get("/").run(&router).text(), "home");
/// let rec = TestRequest::new("PUT", "/api/v1/users/3").run(&router);
/// assert_eq!((rec.status().as_u16(), rec.header("allow")), (405, Some("GET, HEAD, DELETE")));
/// assert_eq!(TestRequest::get("/nowhere").run(&router).status(), 404);
///
/// let clash = Router::builder()
///     .route("GET /a/{x}", |_req: Request, _res: Response| {})
///     .route("GET /a/{y}", |_req: Request, _res: Response| {})
///     .build();
/// assert!(clash.is_err());
/// ```
#[derive(Default)]
pub struct RouterBuilder {
    routes: Vec<RouteDef>,
    fallback: Option<Box<dyn Handler>>,
}

impl fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBuilder")
            .field(
                "routes",
                &self.routes.iter().map(|r| &r.pattern).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// Adds a route. The pattern is checked by [`build`](RouterBuilder::build): its
    /// path must be clean (no empty, `.` or `..` segment but a trailing slash), and
    /// its literal segments are percent-decoded, as request paths are.
    pub fn route<H: Handler>(mut self, pattern: &str, handler: H) -> Self {
        let (method, path) = match pattern.split_once(' ') {
            Some((m, p)) => (Method::from_bytes(m.as_bytes()).ok(), p.trim_start()),
            None => (None, pattern),
        };
        // A method that does not parse is reported by `build` through the path check.
        let path = if method.is_none() && pattern.contains(' ') {
            " invalid method".to_owned()
        } else {
            path.to_owned()
        };
        self.routes.push(RouteDef {
            pattern: pattern.to_owned(),
            method,
            path,
            handler: Box::new(handler),
        });
        self
    }

    /// Adds every route of `routes` under `prefix` (`/api` turns `GET /users` into
    /// `GET /api/users`). The nested builder's fallback is not used.
    pub fn nest(mut self, prefix: &str, routes: RouterBuilder) -> Self {
        let prefix = prefix.trim_end_matches('/');
        for mut route in routes.routes {
            route.path = format!("{prefix}{}", route.path);
            route.pattern = match &route.method {
                Some(m) => format!("{m} {}", route.path),
                None => route.path.clone(),
            };
            self.routes.push(route);
        }
        self
    }

    /// Answers requests no path matches (instead of the plain 404).
    pub fn fallback<H: Handler>(mut self, handler: H) -> Self {
        self.fallback = Some(Box::new(handler));
        self
    }

    /// Checks every pattern and builds the router.
    pub fn build(self) -> Result<Router, RouteError> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut handlers: Vec<Box<dyn Handler>> = Vec::with_capacity(self.routes.len());
        for def in self.routes {
            let parsed = parse_path(&def.path).map_err(|reason| RouteError::Invalid {
                pattern: def.pattern.clone(),
                reason,
            })?;
            let handler = handlers.len();
            handlers.push(def.handler);
            let mut add = |key: String, implicit: bool| -> Result<(), RouteError> {
                let slot = *keys.entry(key.clone()).or_insert_with(|| {
                    slots.push(Slot {
                        key,
                        entries: Vec::new(),
                    });
                    slots.len() - 1
                });
                let slot = &mut slots[slot];
                let entry = Entry {
                    method: def.method.clone(),
                    handler,
                    names: parsed.names.clone(),
                    implicit,
                    pattern: def.pattern.clone(),
                };
                match slot.entries.iter().position(|e| e.method == entry.method) {
                    None => slot.entries.push(entry),
                    Some(i) if slot.entries[i].implicit && !implicit => slot.entries[i] = entry,
                    Some(_) if implicit => {}
                    Some(i) => {
                        return Err(RouteError::Conflict {
                            pattern: def.pattern.clone(),
                            existing: slot.entries[i].pattern.clone(),
                        })
                    }
                }
                Ok(())
            };
            add(parsed.key.clone(), false)?;
            if let Some(empty) = parsed.empty_rest_key {
                add(empty, true)?;
            }
        }
        // Every method a route names, in order, HEAD right after GET.
        let mut methods: Vec<Method> = Vec::new();
        for entry in slots.iter().flat_map(|s| &s.entries) {
            if let Some(m) = &entry.method {
                if !methods.contains(m) {
                    methods.push(m.clone());
                }
                if m == Method::GET && !methods.contains(&Method::HEAD) {
                    methods.push(Method::HEAD);
                }
            }
        }
        let tree_of = |take: &dyn Fn(&Entry) -> bool| -> Result<_, RouteError> {
            let mut tree = matchit::Router::new();
            for (i, slot) in slots.iter().enumerate() {
                if !slot.entries.iter().any(take) {
                    continue;
                }
                if let Err(err) = tree.insert(slot.key.clone(), i) {
                    let pattern = slot.entries[0].pattern.clone();
                    let existing = match err {
                        matchit::InsertError::Conflict { with } => keys
                            .get(&with)
                            .map(|&j| slots[j].entries[0].pattern.clone())
                            .unwrap_or(with),
                        other => other.to_string(),
                    };
                    return Err(RouteError::Conflict { pattern, existing });
                }
            }
            Ok(tree)
        };
        let all = tree_of(&|_| true)?;
        let others = tree_of(&|e| e.method.is_none())?;
        let mut by_method = Vec::with_capacity(methods.len());
        for method in methods {
            let tree = tree_of(&|e| takes(e, &method))?;
            by_method.push((method, tree));
        }
        Ok(Router {
            all,
            by_method,
            others,
            slots,
            handlers,
            fallback: self.fallback,
        })
    }
}

struct Entry {
    method: Option<Method>,
    handler: usize,
    /// Capture names, in order; the last is the rest wildcard's when the pattern has one.
    names: Vec<String>,
    implicit: bool,
    pattern: String,
}

struct Slot {
    key: String,
    entries: Vec<Entry>,
}

struct ParsedPath {
    key: String,
    empty_rest_key: Option<String>,
    names: Vec<String>,
}

const ANONYMOUS_REST: &str = "";

/// Turns a Go-style path pattern into a matchit route with positional parameter names.
fn parse_path(path: &str) -> Result<ParsedPath, &'static str> {
    if path == " invalid method" {
        return Err("the method is not a valid token");
    }
    if !path.starts_with('/') {
        return Err("the path must start with '/' (host patterns are not supported)");
    }
    if !is_clean(path) {
        // A request path that is not clean is redirected before matching, so such a
        // pattern could never match.
        return Err("the path must be clean: no empty, . or .. segments");
    }
    let mut key = String::with_capacity(path.len() + 8);
    let mut names: Vec<String> = Vec::new();
    let mut empty_rest_key = None;
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        key.push('/');
        if let Some(inner) = seg.strip_prefix('{') {
            let Some(name) = inner.strip_suffix('}') else {
                return Err("a wildcard must be a whole segment: {name}");
            };
            if name == "$" {
                if i != last {
                    return Err("{$} may only end a pattern");
                }
                // `/a/{$}`: exactly `/a/`.
                key.pop();
                if !key.ends_with('/') {
                    key.push('/');
                }
                continue;
            }
            if let Some(rest) = name.strip_suffix("...") {
                if i != last {
                    return Err("a {name...} wildcard may only end a pattern");
                }
                check_name(rest, &names)?;
                empty_rest_key = Some(key.clone());
                key.push_str("{*rest}");
                names.push(rest.to_owned());
            } else {
                check_name(name, &names)?;
                key.push_str(&format!("{{p{}}}", names.len()));
                names.push(name.to_owned());
            }
        } else if seg.contains(['{', '}']) {
            return Err("a wildcard must be a whole segment: {name}");
        } else if seg.is_empty() && i == last && i != 0 {
            // A trailing slash: the whole subtree, as in Go.
            empty_rest_key = Some(key.clone());
            key.push_str("{*rest}");
            names.push(ANONYMOUS_REST.to_owned());
        } else if seg.is_empty() && i == 0 && last == 0 {
            // The pattern `/`: everything.
            empty_rest_key = Some("/".to_owned());
            key.push_str("{*rest}");
            names.push(ANONYMOUS_REST.to_owned());
        } else {
            // A literal matches the decoded request segment: decode it the same way.
            let decoded = percent_decode(seg.as_bytes())
                .ok_or("a literal segment has an invalid percent-encoding")?;
            if decoded
                .split(|&b| b == b'/')
                .any(|s| s == b"." || s == b"..")
            {
                return Err("a literal segment decodes to . or ..");
            }
            canonical_segment(&decoded, &mut key);
        }
    }
    Ok(ParsedPath {
        key,
        empty_rest_key,
        names,
    })
}

fn check_name(name: &str, seen: &[String]) -> Result<(), &'static str> {
    let ident = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !ident {
        return Err("a wildcard name must be an identifier");
    }
    if seen.iter().any(|s| s == name) {
        return Err("a wildcard name is used twice");
    }
    Ok(())
}

/// Whether a route entry answers `method`: its own, any (no method), or GET for HEAD.
fn takes(entry: &Entry, method: &Method) -> bool {
    match &entry.method {
        None => true,
        Some(m) => m == method || (*method == Method::HEAD && *m == Method::GET),
    }
}

/// Dispatches requests to handlers by method and path; made by
/// [`Router::builder`]. See the [module docs](self) for the pattern syntax.
pub struct Router {
    /// Every path, to tell 405 from 404.
    all: matchit::Router<usize>,
    /// Per method a route names, the paths of the routes that take it, so the most
    /// specific route *for the request's method* wins, as in Go (a `GET /items/new`
    /// does not hide `POST /items/{id}` from a POST).
    by_method: Vec<(Method, matchit::Router<usize>)>,
    /// The paths of method-less routes, for the methods no route names.
    others: matchit::Router<usize>,
    slots: Vec<Slot>,
    handlers: Vec<Box<dyn Handler>>,
    fallback: Option<Box<dyn Handler>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field(
                "paths",
                &self.slots.iter().map(|s| &s.key).collect::<Vec<_>>(),
            )
            .field(
                "methods",
                &self.by_method.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Starts a router.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Reads `path` by the rule in the module docs and finds what answers it.
    fn lookup(&self, method: &Method, path: &str, query: Option<&str>) -> Lookup<'_> {
        if !path.starts_with('/') {
            // `*` (OPTIONS) or an authority-form CONNECT target: no route has it.
            return Lookup::NoPath;
        }
        if let Err(bad) = check_path(path) {
            return Lookup::BadPath(bad.0);
        }
        if method == Method::CONNECT {
            // Not cleaned, as in Go; dot segments are refused instead.
            if path.split('/').any(|s| s == "." || s == "..") {
                return Lookup::BadPath("a CONNECT path has dot segments");
            }
        } else if !is_clean(path) {
            return match clean_location(&clean_path(path), query) {
                Some(location) => Lookup::Redirect(location),
                None => Lookup::BadPath("no safe Location for the clean path"),
            };
        }
        let key = match_key(path);
        match self.find(method, &key) {
            Lookup::NoPath if !key.ends_with('/') => {
                let with_slash = format!("{key}/");
                if matches!(self.find(method, &with_slash), Lookup::Found(..)) {
                    if let Some(location) = slash_location(path, query) {
                        return Lookup::Redirect(location);
                    }
                }
                Lookup::NoPath
            }
            other => other,
        }
    }

    /// Looks up a key made by `match_key`.
    fn find(&self, method: &Method, path: &str) -> Lookup<'_> {
        let tree = self
            .by_method
            .iter()
            .find(|(m, _)| m == method)
            .map_or(&self.others, |(_, t)| t);
        let Ok(m) = tree.at(path) else {
            if self.all.at(path).is_err() {
                return Lookup::NoPath;
            }
            // 405: the methods whose routes do match the path (RFC 9110 §15.5.6).
            let allow: Vec<&str> = self
                .by_method
                .iter()
                .filter(|(_, t)| t.at(path).is_ok())
                .map(|(m, _)| m.as_str())
                .collect();
            return Lookup::NoMethod(HeaderValue::from_str(&allow.join(", ")).ok());
        };
        let slot = &self.slots[*m.value];
        let pick = |want: &Method| {
            slot.entries
                .iter()
                .find(|e| e.method.as_ref() == Some(want))
        };
        let entry = pick(method)
            .or_else(|| {
                (*method == Method::HEAD)
                    .then(|| pick(&Method::GET))
                    .flatten()
            })
            .or_else(|| slot.entries.iter().find(|e| e.method.is_none()));
        match entry {
            // The tree holds only slots with an entry that takes the method.
            None => Lookup::NoMethod(None),
            Some(entry) => {
                let params = if entry.names.iter().all(|n| n == ANONYMOUS_REST) {
                    None
                } else {
                    let mut pairs = Vec::with_capacity(entry.names.len());
                    // On the `prefix/` key of a rest wildcard, the rest is empty.
                    let mut values = m.params.iter().map(|(_, v)| v);
                    for name in &entry.names {
                        let raw = values.next().unwrap_or("");
                        if name == ANONYMOUS_REST {
                            continue;
                        }
                        pairs.push((name.clone(), decode_value(raw)));
                    }
                    Some(Params { pairs })
                };
                Lookup::Found(&*self.handlers[entry.handler], params)
            }
        }
    }
}

enum Lookup<'r> {
    Found(&'r dyn Handler, Option<Params>),
    NoMethod(Option<HeaderValue>),
    NoPath,
    /// To the clean path, or from `/dir` to `dir/`.
    Redirect(HeaderValue),
    BadPath(&'static str),
}

impl Handler for Router {
    fn handle(&self, mut req: Request<'_>, mut res: Response<'_>) {
        match self.lookup(req.method(), req.path(), req.query()) {
            Lookup::Found(handler, params) => {
                if let Some(params) = params {
                    req.extensions_mut().insert(params);
                }
                handler.handle(req, res)
            }
            Lookup::NoMethod(allow) => {
                if let Some(allow) = allow {
                    res.headers_mut().insert(header::ALLOW, allow);
                }
                super::plain(
                    res,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "405 method not allowed\n",
                )
            }
            Lookup::Redirect(location) => super::redirect(res, req.method(), location),
            Lookup::BadPath(why) => {
                log::debug!("refused the request path {:?}: {why}", req.path());
                super::status_page(res, StatusCode::BAD_REQUEST)
            }
            Lookup::NoPath => match &self.fallback {
                Some(fallback) => fallback.handle(req, res),
                None => super::plain(res, StatusCode::NOT_FOUND, "404 page not found\n"),
            },
        }
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        match self.lookup(req.method(), req.path(), req.query()) {
            Lookup::Found(handler, _) => handler.check_continue(req),
            Lookup::NoMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            Lookup::BadPath(_) => StatusCode::BAD_REQUEST,
            // `handle` sends the redirect without reading the body, so no 100 goes out.
            Lookup::Redirect(_) => StatusCode::CONTINUE,
            Lookup::NoPath => match &self.fallback {
                Some(fallback) => fallback.check_continue(req),
                None => StatusCode::NOT_FOUND,
            },
        }
    }
}

/// Serves `inner` with `prefix` removed from the request path (like Go's
/// `http.StripPrefix`); requests outside the prefix get 404.
///
/// The path is read as the [`Router`] reads it (see the [module docs](self)): an
/// invalid escape or an encoded dot segment is a 400, a path that is not clean is
/// redirected to its clean form before anything is stripped (so `inner` only sees clean
/// paths, and needs no redirect of its own that would lose the prefix), and the prefix
/// is compared with the decoded segments (`/st%61tic/a` is under `/static`). What
/// `inner` sees is the rest of the path as it was sent.
///
/// ```
/// use spindle::handlers::{RequestExt, Router, StripPrefix};
/// use spindle::handlers::testing::TestRequest;
/// use spindle::server::{Request, Response};
///
/// let show = |req: Request, res: Response| { res.send(req.path().as_bytes()).ok(); };
/// let router = Router::builder()
///     .route("GET /static/{path...}", StripPrefix::new("/static", show))
///     .build()
///     .unwrap();
/// assert_eq!(TestRequest::get("/static/css/a.css").run(&router).text(), "/css/a.css");
/// assert_eq!(TestRequest::get("/st%61tic/a%20b").run(&router).text(), "/a%20b");
/// ```
#[derive(Debug, Clone)]
pub struct StripPrefix<H> {
    /// The prefix's segments, decoded.
    segments: Vec<Vec<u8>>,
    inner: H,
}

impl<H: Handler> StripPrefix<H> {
    /// Strips `prefix` (a trailing `/` is ignored) before calling `inner`.
    pub fn new(prefix: &str, inner: H) -> Self {
        let segments = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s.as_bytes()).unwrap_or_else(|| s.as_bytes().to_vec()))
            .collect();
        StripPrefix { segments, inner }
    }

    /// The rest of `path` after the prefix (`""` or starting with `/`), when `path`'s
    /// decoded segments start with the prefix's.
    fn rest<'p>(&self, path: &'p str) -> Option<&'p str> {
        let mut at = 0; // `path[at..]` is `""` or starts with `/`
        for want in &self.segments {
            let seg_start = at + 1;
            if seg_start > path.len() {
                return None;
            }
            let seg_end = path[seg_start..]
                .find('/')
                .map_or(path.len(), |i| seg_start + i);
            let seg = &path[seg_start..seg_end];
            if percent_decode(seg.as_bytes()).as_deref() != Some(want.as_slice()) {
                return None;
            }
            at = seg_end;
        }
        Some(&path[at..])
    }
}

impl<H: Handler> Handler for StripPrefix<H> {
    fn handle(&self, mut req: Request<'_>, res: Response<'_>) {
        let path = req.path();
        if !path.starts_with('/') {
            return super::plain(res, StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if let Err(bad) = check_path(path) {
            log::debug!("refused the request path {path:?}: {}", bad.0);
            return super::status_page(res, StatusCode::BAD_REQUEST);
        }
        if req.method() != Method::CONNECT && !is_clean(path) {
            // Redirect here, where the whole path is known: `inner` could only name
            // the path without the prefix.
            return match clean_location(&clean_path(path), req.query()) {
                Some(location) => super::redirect(res, req.method(), location),
                None => super::status_page(res, StatusCode::BAD_REQUEST),
            };
        }
        let Some(rest) = self.rest(path) else {
            return super::plain(res, StatusCode::NOT_FOUND, "404 page not found\n");
        };
        let mut target = String::with_capacity(rest.len() + 1);
        if rest.is_empty() {
            target.push('/');
        } else {
            target.push_str(rest);
        }
        if let Some(q) = req.query() {
            target.push('?');
            target.push_str(q);
        }
        match target.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return super::status_page(res, StatusCode::BAD_REQUEST),
        }
        self.inner.handle(req, res)
    }

    fn check_continue(&self, req: &Request<'_>) -> StatusCode {
        self.inner.check_continue(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_matchit_routes() {
        let p = parse_path("/items/{id}/parts/{part}").unwrap();
        assert_eq!(p.key, "/items/{p0}/parts/{p1}");
        assert_eq!(p.names, ["id", "part"]);
        let p = parse_path("/static/{path...}").unwrap();
        assert_eq!(
            (p.key.as_str(), p.empty_rest_key.as_deref()),
            ("/static/{*rest}", Some("/static/"))
        );
        let p = parse_path("/docs/").unwrap();
        assert_eq!(p.key, "/docs/{*rest}");
        assert_eq!(parse_path("/docs/{$}").unwrap().key, "/docs/");
        assert_eq!(parse_path("/{$}").unwrap().key, "/");
        assert_eq!(parse_path("/").unwrap().key, "/{*rest}");
        for bad in [
            "items",
            "/a/{x",
            "/a/b{x}",
            "/{x...}/b",
            "/{x}/{x}",
            "/{1x}",
            "/{$}/a",
            "//a",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/a%zz",
            "/%2e%2e/a",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        // Literals are decoded as request segments are.
        assert_eq!(parse_path("/caf%C3%A9/%70").unwrap().key, "/café/p");
        assert_eq!(parse_path("/a%2Fb").unwrap().key, "/a%2Fb");
    }

    #[test]
    fn a_static_route_for_one_method_does_not_hide_a_wildcard_for_another() {
        use crate::handlers::testing::TestRequest;
        let named = |name: &'static str| {
            move |_req: Request, res: Response| {
                res.send(name.as_bytes()).ok();
            }
        };
        // Go's ServeMux: the most specific pattern among those that match the method.
        let r = Router::builder()
            .route("GET /items/new", named("new"))
            .route("POST /items/{id}", named("post"))
            .route("/items/{id}/x", named("any-x"))
            .route("DELETE /items/new/x", named("delete-x"))
            .build()
            .unwrap();
        assert_eq!(TestRequest::get("/items/new").run(&r).text(), "new");
        assert_eq!(TestRequest::head("/items/new").run(&r).status(), 200);
        assert_eq!(TestRequest::post("/items/new").run(&r).text(), "post");
        assert_eq!(TestRequest::post("/items/7").run(&r).text(), "post");
        assert_eq!(TestRequest::get("/items/new/x").run(&r).text(), "any-x");
        assert_eq!(
            TestRequest::delete("/items/new/x").run(&r).text(),
            "delete-x"
        );
        let rec = TestRequest::put("/items/new").run(&r);
        assert_eq!(
            (rec.status().as_u16(), rec.header("allow")),
            (405, Some("GET, HEAD, POST"))
        );
        let rec = TestRequest::get("/items/7").run(&r);
        assert_eq!(
            (rec.status().as_u16(), rec.header("allow")),
            (405, Some("POST"))
        );
    }

    #[test]
    fn lookups_read_paths_by_the_rule() {
        use crate::handlers::testing::TestRequest;
        let ok = |_req: Request, res: Response| {
            res.send(b"ok").ok();
        };
        let r = Router::builder()
            .route("GET /caf%C3%A9/{x}", ok)
            .route("/docs/", ok)
            .build()
            .unwrap();
        assert_eq!(TestRequest::get("/caf%c3%a9/1").run(&r).text(), "ok");
        let rec = TestRequest::put("/docs//x").run(&r);
        assert_eq!(
            (rec.status().as_u16(), rec.header("location")),
            (307, Some("/docs/x"))
        );
        let rec = TestRequest::get("/docs").run(&r);
        assert_eq!(
            (rec.status().as_u16(), rec.header("location")),
            (301, Some("docs/"))
        );
        assert_eq!(TestRequest::get("/docs/%2e%2e").run(&r).status(), 400);
        assert_eq!(TestRequest::get("/%zz").run(&r).status(), 400);
        // CONNECT is not cleaned, and its dot segments are refused.
        let rec = TestRequest::new("CONNECT", "/docs//x").run(&r);
        assert_eq!(rec.status(), 200);
        assert_eq!(
            TestRequest::new("CONNECT", "/docs/../x").run(&r).status(),
            400
        );
        let rec = TestRequest::new("OPTIONS", "*").run(&r);
        assert_eq!(rec.status(), 404);
    }
}
