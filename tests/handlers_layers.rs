//! In-process tests of the layers and the router, through the test recorder.
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use spindle::handlers::testing::TestRequest;
use spindle::handlers::{
    AccessLogLayer, BodyLimitLayer, BodyTooLarge, CatchPanicLayer, CompressionLayer, HandlerExt,
    Layers, LogFormat, RequestExt, RequestIdLayer, Router,
};
use spindle::server::{Handler, Request, Response};

fn text(body: &'static str, ctype: &'static str) -> impl Handler {
    move |_req: Request, mut res: Response| {
        res.headers_mut()
            .insert("content-type", ctype.parse().unwrap());
        res.send(body.as_bytes()).ok();
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

const LONG: &str = "the quick brown fox jumps over the lazy dog. ";

fn long() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| LONG.repeat(50))
}

// ---- layers compose ----

#[test]
fn layers_run_outermost_first() {
    let order = Arc::new(Mutex::new(Vec::new()));
    struct Tag<H>(&'static str, Arc<Mutex<Vec<&'static str>>>, H);
    impl<H: Handler> Handler for Tag<H> {
        fn handle(&self, req: Request, res: Response) {
            self.1.lock().unwrap().push(self.0);
            self.2.handle(req, res);
            self.1.lock().unwrap().push(self.0);
        }
    }
    struct TagLayer(&'static str, Arc<Mutex<Vec<&'static str>>>);
    impl<H: Handler> spindle::handlers::Layer<H> for TagLayer {
        type Handler = Tag<H>;
        fn layer(&self, inner: H) -> Tag<H> {
            Tag(self.0, self.1.clone(), inner)
        }
    }
    let app = Layers::new()
        .layer(TagLayer("a", order.clone()))
        .layer(TagLayer("b", order.clone()))
        .service(text("x", "text/plain"));
    TestRequest::get("/").run(&app);
    assert_eq!(*order.lock().unwrap(), ["a", "b", "b", "a"]);
}

// ---- body limit ----

#[test]
fn body_limit_refuses_declared_length_without_calling_inner() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = (move |_req: Request, res: Response| {
        c.fetch_add(1, Ordering::SeqCst);
        res.send(b"ok").ok();
    })
    .with(BodyLimitLayer::new(10));
    let rec = TestRequest::post("/").body(vec![1u8; 11]).run(&app);
    assert_eq!(rec.status(), 413);
    assert_eq!(rec.header("connection"), Some("close"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let rec = TestRequest::post("/").body(vec![1u8; 10]).run(&app);
    assert_eq!(rec.status(), 200);
    // With Expect: 100-continue the refusal comes before the body.
    let rec = TestRequest::post("/")
        .header("expect", "100-continue")
        .body(vec![1u8; 11])
        .run(&app);
    assert_eq!(rec.status(), 413);
}

#[test]
fn body_limit_cuts_chunked_body_at_the_limit() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let app = (move |mut req: Request, res: Response| {
        let mut body = Vec::new();
        let err = req.read_to_end(&mut body).err();
        *s.lock().unwrap() = Some((
            body.len(),
            err.as_ref().and_then(BodyTooLarge::find).copied(),
        ));
        res.send(b"handler answer").ok();
    })
    .with(BodyLimitLayer::new(100));
    let rec = TestRequest::post("/")
        .chunked_body(vec![7u8; 101])
        .run(&app);
    assert_eq!(rec.status(), 413);
    let (read, err) = seen.lock().unwrap().take().unwrap();
    assert!(read <= 100);
    assert_eq!(err, Some(BodyTooLarge { limit: 100 }));
    let rec = TestRequest::post("/")
        .chunked_body(vec![7u8; 100])
        .run(&app);
    assert_eq!(
        (rec.status().as_u16(), rec.text().as_str()),
        (200, "handler answer")
    );
    assert_eq!(seen.lock().unwrap().take().unwrap(), (100, None));
}

#[test]
fn body_limit_keeps_trailers_visible() {
    let app = (|mut req: Request, res: Response| {
        std::io::copy(&mut req, &mut std::io::sink()).unwrap();
        let t = req
            .trailers()
            .and_then(|t| t.get("x-sum"))
            .map(|v| v.to_str().unwrap().to_owned());
        res.send(t.unwrap_or_default().as_bytes()).ok();
    })
    .with(BodyLimitLayer::new(100));
    let rec = TestRequest::post("/")
        .chunked_body("abc")
        .trailer("x-sum", "42")
        .run(&app);
    assert_eq!(rec.text(), "42");
}

// ---- catch panic, request id ----

#[test]
fn catch_panic_answers_500_and_keeps_outer_headers() {
    let app = Layers::new()
        .layer(RequestIdLayer::new())
        .layer(CatchPanicLayer::new())
        .service(|_req: Request, mut res: Response| {
            res.headers_mut()
                .insert("content-type", "image/png".parse().unwrap());
            panic!("handler bug");
        });
    let rec = TestRequest::get("/").run(&app);
    assert_eq!(rec.status(), 500);
    assert!(!rec.panicked());
    assert!(rec.header("x-request-id").is_some());
    assert_eq!(
        rec.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn catch_panic_mid_body_cuts_the_response() {
    let app = (|_req: Request, res: Response| {
        let mut res = res.start().unwrap();
        res.write_all(b"half").unwrap();
        panic!("late bug");
    })
    .with(CatchPanicLayer::new());
    let rec = TestRequest::get("/").run(&app);
    assert_eq!(rec.status(), 200);
    assert!(rec.aborted(), "a half-sent body must not look complete");
    assert!(!rec.finished());
}

#[test]
fn request_id_replaces_insane_ids_and_is_unique() {
    let app = (|req: Request, res: Response| {
        let id = req.request_id().unwrap().to_owned();
        res.send(id.as_bytes()).ok();
    })
    .with(RequestIdLayer::new());
    let bad = "x".repeat(300);
    let rec = TestRequest::get("/").header("x-request-id", &bad).run(&app);
    assert_eq!(rec.text().len(), 16);
    let a = TestRequest::get("/").run(&app).text();
    let b = TestRequest::get("/").run(&app).text();
    assert_ne!(a, b);
}

// ---- compression ----

fn gz() -> CompressionLayer {
    CompressionLayer::new()
}

#[test]
fn compresses_whole_bodies_by_q_value() {
    let app = text(long(), "text/plain").with(gz());
    let rec = TestRequest::get("/")
        .header("accept-encoding", "deflate;q=0.5, gzip")
        .run(&app);
    assert_eq!(rec.header("content-encoding"), Some("gzip"));
    assert_eq!(rec.header("vary"), Some("accept-encoding"));
    assert!(rec.body().len() < long().len() / 5);
    assert_eq!(gunzip(rec.body()), long());

    let rec = TestRequest::get("/")
        .header("accept-encoding", "gzip;q=0.2, deflate")
        .run(&app);
    assert_eq!(rec.header("content-encoding"), Some("deflate"));
    let mut s = String::new();
    flate2::read::ZlibDecoder::new(rec.body())
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, long());

    let rec = TestRequest::get("/")
        .header("accept-encoding", "gzip;q=0")
        .run(&app);
    assert_eq!(rec.header("content-encoding"), None);
    assert_eq!(rec.header("vary"), Some("accept-encoding"));
    assert_eq!(rec.text(), long());
}

#[test]
fn compression_streams_and_flushes() {
    let app = (|_req: Request, mut res: Response| {
        res.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        let mut res = res.start().unwrap();
        for i in 0..200 {
            writeln!(res, "data: event {i}").unwrap();
            if i == 0 {
                res.flush().unwrap();
            }
        }
        res.end().unwrap();
    })
    .with(gz());
    let rec = TestRequest::get("/")
        .header("accept-encoding", "gzip")
        .run(&app);
    assert!(rec.streamed());
    assert!(rec.flushes() >= 1);
    assert_eq!(rec.header("content-encoding"), Some("gzip"));
    assert_eq!(rec.header("content-length"), None);
    let out = gunzip(rec.body());
    assert!(out.starts_with("data: event 0\n") && out.ends_with("data: event 199\n"));
}

#[test]
fn compression_skips_what_it_should() {
    let ae = |r: TestRequest| r.header("accept-encoding", "gzip");
    // Small bodies.
    let rec = ae(TestRequest::get("/")).run(&text("tiny", "text/plain").with(gz()));
    assert_eq!(rec.header("content-encoding"), None);
    // Types that do not compress.
    let rec = ae(TestRequest::get("/")).run(&text(long(), "image/png").with(gz()));
    assert_eq!(
        (rec.header("content-encoding"), rec.header("vary")),
        (None, None)
    );
    // HEAD.
    let rec = ae(TestRequest::head("/")).run(&text(long(), "text/plain").with(gz()));
    assert_eq!(rec.header("content-encoding"), None);
    // Already encoded.
    let pre = (|_req: Request, mut res: Response| {
        res.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        res.headers_mut()
            .insert("content-encoding", "br".parse().unwrap());
        res.send(long().as_bytes()).ok();
    })
    .with(gz());
    let rec = ae(TestRequest::get("/")).run(&pre);
    assert_eq!(
        (rec.header("content-encoding"), rec.text().as_str()),
        (Some("br"), long())
    );
    // 204 and 304.
    for status in [204u16, 304] {
        let h = (move |_req: Request, mut res: Response| {
            res.headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            *res.status_mut() = status.try_into().unwrap();
            res.send(b"").ok();
        })
        .with(gz());
        let rec = ae(TestRequest::get("/")).run(&h);
        assert_eq!(rec.header("content-encoding"), None, "{status}");
    }
}

// ---- access log ----

struct Capture(Mutex<Vec<String>>);
impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target() == "spindle::access"
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn captured() -> &'static Capture {
    static LOGGER: OnceLock<&'static Capture> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let l: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(l).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        l
    })
}

#[test]
fn access_log_lines() {
    let cap = captured();
    let app = text("hello", "text/plain").with(AccessLogLayer::new());
    TestRequest::get("/short?x=1").run(&app);
    let app = text("hello", "text/plain").with(AccessLogLayer::new().format(LogFormat::Common));
    TestRequest::new("PUT", "/clf").run(&app);
    let lines = cap.0.lock().unwrap().clone();
    let short = lines
        .iter()
        .find(|l| l.contains("/short"))
        .expect("short line");
    assert!(short.starts_with("GET /short?x=1 200 5B "), "{short}");
    let clf = lines.iter().find(|l| l.contains("/clf")).expect("clf line");
    assert!(clf.starts_with("127.0.0.1 - - ["), "{clf}");
    assert!(clf.ends_with("+0000] \"PUT /clf HTTP/1.1\" 200 5"), "{clf}");
}

// ---- router ----

fn echo_params() -> impl Handler {
    |req: Request, res: Response| {
        let p = req
            .extensions()
            .get::<spindle::handlers::Params>()
            .cloned()
            .unwrap_or_default();
        let s: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
        res.send(s.join("&").as_bytes()).ok();
    }
}

fn named(name: &'static str) -> impl Handler {
    move |_req: Request, res: Response| {
        res.send(name.as_bytes()).ok();
    }
}

#[test]
fn router_matches_captures_and_wildcards() {
    let r = Router::builder()
        .route("GET /items/{id}", echo_params())
        .route("GET /items/new", named("new"))
        .route("/static/{path...}", echo_params())
        .route("GET /docs/", named("docs-subtree"))
        .route("GET /docs/{$}", named("docs-index"))
        .route("GET /a/{x}/b/{y}", echo_params())
        .build()
        .unwrap();
    assert_eq!(TestRequest::get("/items/42").run(&r).text(), "id=42");
    assert_eq!(TestRequest::get("/items/new").run(&r).text(), "new");
    assert_eq!(
        TestRequest::get("/items/a%2Fb%20c").run(&r).text(),
        "id=a/b c"
    );
    assert_eq!(
        TestRequest::get("/static/css/x.css").run(&r).text(),
        "path=css/x.css"
    );
    assert_eq!(TestRequest::get("/static/").run(&r).text(), "path=");
    assert_eq!(TestRequest::post("/static/any").run(&r).text(), "path=any");
    assert_eq!(TestRequest::get("/docs/").run(&r).text(), "docs-index");
    assert_eq!(
        TestRequest::get("/docs/deep/page").run(&r).text(),
        "docs-subtree"
    );
    assert_eq!(TestRequest::get("/a/1/b/2").run(&r).text(), "x=1&y=2");
    // Relative, so it stays right under a prefix (issue 13, defect m).
    let rec = TestRequest::get("/docs?q=1").run(&r);
    assert_eq!(
        (rec.status().as_u16(), rec.header("location")),
        (301, Some("docs/?q=1"))
    );
    assert_eq!(TestRequest::get("/items").run(&r).status(), 404);
    assert_eq!(TestRequest::get("/items/1/2").run(&r).status(), 404);
}

#[test]
fn router_405_allow_and_head() {
    let r = Router::builder()
        .route("GET /kv/{key}", named("get"))
        .route("PUT /kv/{key}", named("put"))
        .route("DELETE /kv/{key}", named("delete"))
        .route("/any", named("any"))
        .route("POST /any", named("post-any"))
        .build()
        .unwrap();
    let rec = TestRequest::post("/kv/a").run(&r);
    assert_eq!(rec.status(), 405);
    assert_eq!(rec.header("allow"), Some("GET, HEAD, PUT, DELETE"));
    let rec = TestRequest::head("/kv/a").run(&r);
    assert_eq!((rec.status().as_u16(), rec.body()), (200, &b""[..]));
    assert_eq!(TestRequest::put("/kv/a").run(&r).text(), "put");
    assert_eq!(TestRequest::post("/any").run(&r).text(), "post-any");
    assert_eq!(TestRequest::new("PATCH", "/any").run(&r).text(), "any");
}

#[test]
fn router_conflicts_fail_the_build() {
    let conflict = |a: &str, b: &str| {
        Router::builder()
            .route(a, named("a"))
            .route(b, named("b"))
            .build()
            .err()
    };
    assert!(conflict("GET /a/{x}", "GET /a/{y}").is_some());
    assert!(conflict("/a", "/a").is_some());
    assert!(conflict("GET /x/{rest...}", "GET /x/{id}").is_some());
    assert!(conflict("GET /a/{x}", "POST /a/{y}").is_none());
    assert!(conflict("GET /a", "/a").is_none());
    let err = conflict("GET /a/{x}", "GET /a/{y}").unwrap();
    assert!(err.to_string().contains("GET /a/{x}"), "{err}");
    for bad in [
        "items",
        "GET items",
        "/a/{b",
        "/x{y}",
        "/{a}/{a}",
        "BAD METHOD /x",
    ] {
        let e = Router::builder().route(bad, named("x")).build();
        assert!(e.is_err(), "{bad} should not build");
    }
}

#[test]
fn routers_nest_under_a_prefix() {
    let users = Router::builder().route("GET /users/{id}", echo_params());
    let r = Router::builder()
        .nest("/api/v1/", users)
        .fallback(named("fallback"))
        .build()
        .unwrap();
    assert_eq!(TestRequest::get("/api/v1/users/9").run(&r).text(), "id=9");
    assert_eq!(TestRequest::get("/users/9").run(&r).text(), "fallback");
}

#[test]
fn router_scales_to_many_routes() {
    let mut b = Router::builder();
    for i in 0..1000 {
        b = b.route(&format!("GET /r{i}/items/{{id}}"), echo_params());
    }
    let r = b.build().unwrap();
    assert_eq!(TestRequest::get("/r999/items/5").run(&r).text(), "id=5");
}
