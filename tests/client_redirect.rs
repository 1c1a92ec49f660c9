//! Redirect policies and semantics, against spindle's server.
mod client_support;

use std::io::Read;

use client_support::Counted;
use spindle::client::{Redirect, RedirectAction};
use spindle::http::{header, StatusCode};
use spindle::server::{Request, Response};
use spindle::{Client, ErrorKind};

/// `/r/<code>/<target...>` redirects with that code to the rest of the path;
/// `/loop/a` ↔ `/loop/b`; anything else echoes method, body length and selected headers.
fn server(other_origin: Option<String>) -> Counted {
    Counted::start(move |mut req: Request, res: Response| {
        let mut body = Vec::new();
        req.read_to_end(&mut body).ok();
        let path = req.path().to_owned();
        let redirect = |mut res: Response, code: u16, to: &str| {
            *res.status_mut() = StatusCode::from_u16(code).unwrap();
            res.headers_mut()
                .insert(header::LOCATION, to.parse().unwrap());
            res.send(b"moving").ok();
        };
        if let Some(rest) = path.strip_prefix("/r/") {
            let (code, to) = rest.split_once('/').unwrap();
            let to = match to.strip_prefix("other") {
                Some(rest) => format!("{}{rest}", other_origin.clone().unwrap()),
                None => format!("/{to}"),
            };
            return redirect(res, code.parse().unwrap(), &to);
        }
        match path.as_str() {
            "/loop/a" => return redirect(res, 302, "/loop/b"),
            "/loop/b" => return redirect(res, 302, "/loop/a"),
            "/chain" => return redirect(res, 301, "/r/302/r/303/done"),
            _ => {}
        }
        let auth = req.headers().contains_key(header::AUTHORIZATION);
        let cookie = req.headers().contains_key(header::COOKIE);
        res.send(
            format!(
                "{} {} {} auth={auth} cookie={cookie}",
                req.method(),
                path,
                body.len()
            )
            .as_bytes(),
        )
        .ok();
    })
}

#[test]
fn status_codes_and_methods() {
    let s = server(None);
    let client = Client::new();
    let post = |code: u16| {
        let res = client
            .post(s.url(&format!("/r/{code}/done")))
            .body("payload")
            .send()
            .unwrap();
        assert_eq!(res.url().path(), "/done");
        res.text().unwrap()
    };
    assert_eq!(post(301), "GET /done 0 auth=false cookie=false");
    assert_eq!(post(302), "GET /done 0 auth=false cookie=false");
    assert_eq!(post(303), "GET /done 0 auth=false cookie=false");
    assert_eq!(post(307), "POST /done 7 auth=false cookie=false");
    assert_eq!(post(308), "POST /done 7 auth=false cookie=false");
    let res = client.get(s.url("/chain")).send().unwrap();
    assert_eq!(res.url().path(), "/done");
    assert_eq!(res.text().unwrap(), "GET /done 0 auth=false cookie=false");
    // All on one connection: redirect bodies were drained.
    assert_eq!(s.connections(), 1);
}

#[test]
fn streamed_body_is_not_replayed() {
    let s = server(None);
    let data = b"streamed".to_vec();
    let res = Client::new()
        .put(s.url("/r/307/done"))
        .body(spindle::client::Body::reader(&data[..]))
        .send()
        .unwrap();
    assert_eq!(
        res.status(),
        307,
        "the redirect is handed back, not followed without its body"
    );
}

#[test]
fn credentials_dropped_across_hosts() {
    let other = server(None);
    let s = server(Some(other.url("")));
    let client = Client::new();
    let same = client
        .get(s.url("/r/302/done"))
        .header("authorization", "Bearer x")
        .header("cookie", "a=b")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(same, "GET /done 0 auth=true cookie=true");
    let cross = client
        .get(s.url("/r/302/other/done"))
        .header("authorization", "Bearer x")
        .header("cookie", "a=b")
        .send()
        .unwrap();
    assert_eq!(
        cross.url().port(),
        Some(other.listening.local_addr().port())
    );
    assert_eq!(cross.text().unwrap(), "GET /done 0 auth=false cookie=false");
}

#[test]
fn loops_and_limits() {
    let s = server(None);
    let err = Client::new().get(s.url("/loop/a")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    let msg = err.to_string();
    assert!(
        msg.contains("loop") && msg.contains("/loop/a -> ") && msg.contains("/loop/b"),
        "{msg}"
    );
    let limited = Client::builder().redirect(Redirect::limit(1)).build();
    let err = limited.get(s.url("/chain")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert!(err.to_string().contains("more than 1 redirects"), "{err}");
    let none = Client::builder().redirect(Redirect::none()).build();
    let res = none.get(s.url("/chain")).send().unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(res.header("location"), Some("/r/302/r/303/done"));
}

#[test]
fn custom_policy() {
    let s = server(None);
    let stop_at_303 = Client::builder()
        .redirect(Redirect::custom(|a| {
            if a.status() == 303 {
                RedirectAction::Stop
            } else {
                RedirectAction::Follow
            }
        }))
        .build();
    let res = stop_at_303.get(s.url("/chain")).send().unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.url().path(), "/r/303/done");
    let refuse = Client::builder()
        .redirect(Redirect::custom(|a| {
            RedirectAction::Error(format!("no thanks: {}", a.next()))
        }))
        .build();
    let err = refuse.get(s.url("/chain")).send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert!(err.to_string().contains("no thanks"));
}
