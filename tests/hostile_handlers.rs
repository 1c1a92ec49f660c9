//! Regression tests for the handler toolbox under hostile request paths (issue 13,
//! defects m and n): exact request bytes over a real socket to a `TestServer`, asserting
//! the status, `Location` and body a client sees.
//!
//! - m: no redirect the file server or the router sends may lead to another origin
//!   (`GET //evil.com` once answered `Location: //evil.com/`), and directory redirects
//!   stay under a `StripPrefix` / `nest` prefix (they are relative: `css/`).
//! - n: the router and the file server read a path the same way (cleaned, then matched
//!   on percent-decoded segments), so `/./private/x`, `//private/x` and `/%70rivate/x`
//!   reach the `GET /private/{p...}` route, never a fallback file server.
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use spindle::handlers::testing::{RawResponse, TestServer};
use spindle::handlers::{FileServer, RequestExt, Router, StripPrefix};
use spindle::server::{Request, Response};
use url::Url;

/// A scratch directory: `dir/secret.txt` next to the root, and `dir/root/` with the
/// directories the tests redirect through.
struct Tree {
    dir: PathBuf,
    root: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn tree(name: &str) -> Tree {
    let dir = std::env::temp_dir().join(format!("spindle-hostile-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let root = dir.join("root");
    for d in ["evil.com", "css", "a:b", "private", "pub"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(dir.join("secret.txt"), "TOP SECRET").unwrap();
    std::fs::write(root.join("evil.com/index.html"), "evil.com index").unwrap();
    std::fs::write(root.join("css/index.html"), "css index").unwrap();
    std::fs::write(root.join("a:b/index.html"), "colon index").unwrap();
    // What a fallback file server would leak if the private route were missed.
    std::fs::write(root.join("private/x"), "PUBLIC COPY OF PRIVATE").unwrap();
    std::fs::write(root.join("pub/a.txt"), "public a").unwrap();
    Tree { dir, root }
}

/// Sends `METHOD target` (with `Connection: close`, and `body` if any) and parses the
/// answer.
fn send(s: &TestServer, method: &str, target: &str, body: &str) -> RawResponse {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.send_raw(req.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

fn get(s: &TestServer, target: &str) -> RawResponse {
    send(s, "GET", target, "")
}

/// The URL a browser would have asked for with `target`.
fn base(s: &TestServer, target: &str) -> Url {
    Url::parse(&format!("http://{}{}", s.addr(), target)).unwrap()
}

/// Asserts `res` is a redirect whose `Location` stays on this origin, however a
/// browser (WHATWG URL rules, which treat `\` as `/`) or RFC 3986 resolves it, and
/// returns the origin-form target it leads to.
fn same_origin_redirect(s: &TestServer, target: &str, res: &RawResponse) -> String {
    assert!(
        matches!(res.status, 301 | 307 | 308),
        "{target}: expected a redirect, got {} {:?}",
        res.status,
        res.text()
    );
    let location = res
        .header("location")
        .unwrap_or_else(|| panic!("{target}: a redirect without Location"));
    assert!(
        !location.starts_with("//") && !location.starts_with("/\\") && !location.starts_with('\\'),
        "{target}: Location {location:?} names another host"
    );
    let first = location.split(['/', '?', '#']).next().unwrap_or("");
    assert!(
        !first.contains(':'),
        "{target}: Location {location:?} reads as a scheme"
    );
    let base = base(s, target);
    let next = base
        .join(location)
        .unwrap_or_else(|e| panic!("{target}: Location {location:?} does not resolve: {e}"));
    assert_eq!(
        (next.scheme(), next.host_str(), next.port()),
        (base.scheme(), base.host_str(), base.port()),
        "{target}: Location {location:?} leaves the origin ({next})"
    );
    match next.query() {
        Some(q) => format!("{}?{q}", next.path()),
        None => next.path().to_owned(),
    }
}

/// Follows redirects from `target` (at most 5) and returns the targets visited and the
/// final answer.
fn follow(s: &TestServer, target: &str) -> (Vec<String>, RawResponse) {
    let mut hops = vec![target.to_owned()];
    let mut res = get(s, target);
    while matches!(res.status, 301 | 307 | 308) {
        assert!(hops.len() <= 5, "redirect loop: {hops:?}");
        let next = same_origin_redirect(s, hops.last().unwrap(), &res);
        res = get(s, &next);
        hops.push(next);
    }
    (hops, res)
}

// ---- defect m: redirects never leave the origin, and keep the prefix ----

#[test]
fn m_double_slash_directory_is_not_an_open_redirect() {
    let t = tree("m-evil");
    let s = TestServer::start(FileServer::new(&t.root).unwrap()).unwrap();
    // The exact request of the report: a directory named like a host.
    let res = get(&s, "//evil.com");
    assert_eq!(res.status, 301);
    assert_eq!(res.header("location"), Some("/evil.com"));
    same_origin_redirect(&s, "//evil.com", &res);
    let (hops, res) = follow(&s, "//evil.com");
    assert_eq!(hops, ["//evil.com", "/evil.com", "/evil.com/"]);
    assert_eq!((res.status, res.text().as_str()), (200, "evil.com index"));
    // Other spellings of the same directory: each hop stays here.
    for target in [
        "//evil.com/",
        "///evil.com",
        "/.//evil.com",
        "/x/..//evil.com",
    ] {
        let (hops, res) = follow(&s, target);
        assert_eq!(
            (res.status, res.text().as_str()),
            (200, "evil.com index"),
            "{hops:?}"
        );
    }
    // The directory redirect itself is relative.
    let res = get(&s, "/evil.com");
    assert_eq!(
        (res.status, res.header("location")),
        (301, Some("evil.com/"))
    );
}

#[test]
fn m_directory_redirect_keeps_the_strip_prefix() {
    let t = tree("m-strip");
    let router = Router::builder()
        .route(
            "GET /static/{path...}",
            StripPrefix::new("/static", FileServer::new(&t.root).unwrap()),
        )
        .build()
        .unwrap();
    let s = TestServer::start(router).unwrap();
    let res = get(&s, "/static/css");
    assert_eq!((res.status, res.header("location")), (301, Some("css/")));
    assert_eq!(
        same_origin_redirect(&s, "/static/css", &res),
        "/static/css/"
    );
    let (hops, res) = follow(&s, "/static/css?v=2");
    assert_eq!(hops, ["/static/css?v=2", "/static/css/?v=2"]);
    assert_eq!((res.status, res.text().as_str()), (200, "css index"));
    // A path that is not clean is redirected whole, before the prefix is stripped.
    let (hops, res) = follow(&s, "/static//css");
    assert_eq!(hops, ["/static//css", "/static/css", "/static/css/"]);
    assert_eq!(res.text(), "css index");

    // StripPrefix as the whole service, with no router in front.
    let s = TestServer::start(StripPrefix::new(
        "/static",
        FileServer::new(&t.root).unwrap(),
    ))
    .unwrap();
    let (hops, res) = follow(&s, "/static/./css");
    assert_eq!(hops, ["/static/./css", "/static/css", "/static/css/"]);
    assert_eq!(res.text(), "css index");
}

#[test]
fn m_router_redirects_keep_nest_and_strip_prefix() {
    let docs = |req: Request, res: Response| {
        res.send(format!("docs at {}", req.path()).as_bytes()).ok();
    };
    // nest(): the router sees the whole path.
    let api = Router::builder().route("GET /docs/", docs);
    let nested = Router::builder().nest("/api", api).build().unwrap();
    let s = TestServer::start(nested).unwrap();
    let res = get(&s, "/api/docs");
    assert_eq!((res.status, res.header("location")), (301, Some("docs/")));
    let (hops, res) = follow(&s, "/api/docs");
    assert_eq!(hops, ["/api/docs", "/api/docs/"]);
    assert_eq!(res.text(), "docs at /api/docs/");

    // A router under StripPrefix sees `/docs`, but the client asked for `/app/docs`.
    let inner = Router::builder().route("GET /docs/", docs).build().unwrap();
    let s = TestServer::start(StripPrefix::new("/app", inner)).unwrap();
    let (hops, res) = follow(&s, "/app/docs?x=1");
    assert_eq!(hops, ["/app/docs?x=1", "/app/docs/?x=1"]);
    assert_eq!((res.status, res.text().as_str()), (200, "docs at /docs/"));
}

#[test]
fn m_locations_with_colons_and_backslashes_stay_same_origin() {
    let t = tree("m-colon");
    let s = TestServer::start(FileServer::new(&t.root).unwrap()).unwrap();
    // `a:b/` alone would read as the scheme `a:`.
    let res = get(&s, "/a:b");
    assert_eq!((res.status, res.header("location")), (301, Some("./a:b/")));
    let (hops, res) = follow(&s, "/a:b");
    assert_eq!(hops, ["/a:b", "/a:b/"]);
    assert_eq!(res.text(), "colon index");

    // A browser reads `\` as `/`: a Location made of a request's backslashes must
    // carry them encoded.
    let r = Router::builder()
        .route("GET /u/{name}/", |req: Request, res: Response| {
            let name = req.path_value("name").unwrap_or_default().to_owned();
            res.send(name.as_bytes()).ok();
        })
        .route("GET /{top}/{$}", |req: Request, res: Response| {
            let top = req.path_value("top").unwrap_or_default().to_owned();
            res.send(top.as_bytes()).ok();
        })
        .build()
        .unwrap();
    let s = TestServer::start(r).unwrap();
    let res = get(&s, "/u/%5C%5Cevil.com");
    assert_eq!(
        (res.status, res.header("location")),
        (301, Some("%5C%5Cevil.com/"))
    );
    let (_, res) = follow(&s, "/u/%5C%5Cevil.com");
    assert_eq!((res.status, res.text().as_str()), (200, "\\\\evil.com"));
    let mut redirects = 0;
    for target in ["/\\\\evil.com", "/.//\\evil.com", "/./\\/evil.com"] {
        let res = get(&s, target);
        if res.status == 400 {
            continue; // the request line parser refused the backslash: nothing to follow
        }
        redirects += 1;
        same_origin_redirect(&s, target, &res);
        let location = res.header("location").unwrap();
        assert!(!location.contains('\\'), "{target}: Location {location:?}");
    }
    assert!(redirects > 0, "no backslash target got through the parser");
}

// ---- defect n: the router and the file server agree about paths ----

/// `GET /private/{p...}` (counting its calls, echoing `p`) in front of a fallback file
/// server whose root has a `private/x` that must never be served.
fn private_app(root: &std::path::Path, calls: Arc<AtomicUsize>) -> Router {
    let seen = calls.clone();
    Router::builder()
        .route("GET /private/{p...}", move |req: Request, res: Response| {
            seen.fetch_add(1, Ordering::SeqCst);
            let p = req.path_value("p").unwrap_or_default().to_owned();
            res.send(format!("private handler: {p}").as_bytes()).ok();
        })
        .route(
            "POST /private/{p...}",
            move |mut req: Request, res: Response| {
                calls.fetch_add(1, Ordering::SeqCst);
                let mut body = String::new();
                std::io::Read::read_to_string(&mut req, &mut body).ok();
                let p = req.path_value("p").unwrap_or_default().to_owned();
                res.send(format!("private post: {p} {body}").as_bytes())
                    .ok();
            },
        )
        .fallback(FileServer::new(root).unwrap())
        .build()
        .unwrap()
}

#[test]
fn n_private_route_sees_every_spelling_of_its_path() {
    let t = tree("n-private");
    let calls = Arc::new(AtomicUsize::new(0));
    let s = TestServer::start(private_app(&t.root, calls.clone())).unwrap();
    // Not clean: one redirect to the clean path, which the private route answers.
    for target in [
        "/./private/x",
        "//private/x",
        "/pub/../private/x",
        "/private/./x",
        "/private//x",
        "///private/x",
        "/private/x/.",
        "/./%70rivate/x",
    ] {
        let res = get(&s, target);
        assert_eq!(res.status, 301, "{target}: {:?}", res.text());
        let clean = same_origin_redirect(&s, target, &res);
        assert!(
            clean == "/private/x" || clean == "/%70rivate/x",
            "{target} → {clean}"
        );
        assert!(!res.text().contains("PUBLIC COPY"), "{target}");
        let (hops, res) = follow(&s, target);
        assert_eq!(
            (res.status, res.text().as_str()),
            (200, "private handler: x"),
            "{hops:?}"
        );
    }
    // Clean already: matched on decoded segments, as Go's ServeMux does.
    for target in ["/%70rivate/x", "/priv%61te/x", "/%70%72%69%76%61%74%65/%78"] {
        let res = get(&s, target);
        assert_eq!(
            (res.status, res.text().as_str()),
            (200, "private handler: x"),
            "{target}"
        );
    }
    // Query strings survive the redirect.
    let res = get(&s, "//private/x?a=1&b=%2F");
    assert_eq!(res.header("location"), Some("/private/x?a=1&b=%2F"));
    // HEAD is redirected the same way, with no body.
    let res = s
        .send_raw(b"HEAD //private/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        (res.status, res.header("location"), res.body.len()),
        (301, Some("/private/x"), 0)
    );
    // The fallback file server still serves what no route takes.
    assert_eq!(get(&s, "/pub/a.txt").text(), "public a");
    assert!(calls.load(Ordering::SeqCst) >= 11);
}

#[test]
fn n_other_methods_are_redirected_with_307() {
    let t = tree("n-post");
    let calls = Arc::new(AtomicUsize::new(0));
    let s = TestServer::start(private_app(&t.root, calls.clone())).unwrap();
    // 301 lets a user agent turn POST into GET (RFC 9110 §15.4.2); 307 keeps the
    // method and body (§15.4.8).
    let res = send(&s, "POST", "//private/x", "hello");
    assert_eq!(
        (res.status, res.header("location")),
        (307, Some("/private/x"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let res = send(&s, "POST", "/private/x", "hello");
    assert_eq!(res.text(), "private post: x hello");
    let res = send(&s, "POST", "/%70rivate/./x", "again");
    assert_eq!(
        (res.status, res.header("location")),
        (307, Some("/%70rivate/x"))
    );
    let res = send(&s, "POST", "/%70rivate/x", "again");
    assert_eq!(res.text(), "private post: x again");
}

#[test]
fn n_dot_dot_in_decoded_segments_is_refused() {
    let t = tree("n-dotdot");
    let calls = Arc::new(AtomicUsize::new(0));
    let s = TestServer::start(private_app(&t.root, calls.clone())).unwrap();
    for target in [
        "/private/%2e%2e/secret.txt",
        "/private/%2E%2E",
        "/private/.%2e/x",
        "/private/a%2F..%2F..%2Fsecret.txt",
        "/private/..%2Fsecret.txt",
        "/private/x%2F%2E%2E",
        "/private/%2e",
        "/%2e%2e/secret.txt",
        "/pub/%2e%2e/private/x",
    ] {
        let res = get(&s, target);
        assert_eq!(res.status, 400, "{target}: {:?}", res.text());
        assert!(!res.text().contains("SECRET"), "{target}");
        assert!(!res.text().contains("PUBLIC COPY"), "{target}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the private handler saw one"
    );
    // An encoded slash is not a separator: it stays inside one segment.
    let res = get(&s, "/private/a%2Fb");
    assert_eq!(res.text(), "private handler: a/b");
}

#[test]
fn n_router_and_file_server_resolve_paths_alike() {
    let t = tree("n-agree");
    let calls = Arc::new(AtomicUsize::new(0));
    let routed = TestServer::start(private_app(&t.root, calls)).unwrap();
    let bare = TestServer::start(FileServer::new(&t.root).unwrap()).unwrap();
    for target in [
        "/pub/a.txt",
        "//pub/a.txt",
        "/./pub/a.txt",
        "/pub/./a.txt",
        "/x/../pub/a.txt",
        "/../pub/a.txt",
        "/%70ub/a.txt",
        "/pub/%61.txt",
        "/pub",
        "/pub//",
        "/pub/%2e%2e/a.txt",
        "/pub%2Fa.txt",
        "/pub/a.txt%00",
        "/%zz",
        "/css",
        "/./css/",
        "/nothing/here",
    ] {
        let a = get(&routed, target);
        let b = get(&bare, target);
        assert_eq!(
            (a.status, a.header("location"), a.text()),
            (b.status, b.header("location"), b.text()),
            "{target}: the router's fallback and the bare file server differ"
        );
    }
}

// ---- found by the fs_resolve fuzz target ----

/// A segment longer than a file name can be (ENAMETOOLONG) was a 500: it names no
/// file, so it is a 404, bare and under the router, over the wire as in-process.
#[test]
fn fuzz_fs_resolve_long_names_are_404_not_500() {
    let t = tree("long-name");
    let calls = Arc::new(AtomicUsize::new(0));
    let routed = TestServer::start(private_app(&t.root, calls)).unwrap();
    let bare = TestServer::start(FileServer::new(&t.root).unwrap()).unwrap();
    let long = "a".repeat(300);
    for target in [
        format!("/{long}"),
        format!("/pub/{long}"),
        format!("/pub/{long}/x"),
        format!("/{}", "%C3%A9".repeat(150)),
        format!("/{}", "b/".repeat(2100)),
    ] {
        for s in [&bare, &routed] {
            let res = get(s, &target);
            assert_eq!(res.status, 404, "{}...: {:?}", &target[..20], res.text());
        }
    }
}
