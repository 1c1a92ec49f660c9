//! Redirect policies, and where a redirect leads (RFC 9110 §10.2.2, §15.4).
use std::fmt;
use std::sync::Arc;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use url::Url;

use crate::{Error, ErrorKind, Result};

/// What to do with redirect responses (301, 302, 303, 307, 308).
///
/// Whatever the policy, a redirect back to a URL already visited with the same method is
/// an error of kind [`Redirect`](crate::ErrorKind::Redirect) naming the chain.
///
/// ```
/// use spindle::client::{Redirect, RedirectAction};
/// let none = Redirect::none();
/// let five = Redirect::limit(5);
/// let same_host = Redirect::custom(|attempt| {
///     if attempt.next().host_str() == attempt.previous().last().and_then(|u| u.host_str()) {
///         RedirectAction::Follow
///     } else {
///         RedirectAction::Stop
///     }
/// });
/// # drop((none, five, same_host));
/// ```
#[derive(Clone)]
pub struct Redirect {
    pub(crate) policy: Policy,
}

#[derive(Clone)]
pub(crate) enum Policy {
    None,
    Limit(usize),
    Custom(Arc<dyn Fn(&Attempt<'_>) -> RedirectAction + Send + Sync>),
}

impl Redirect {
    /// Never follow: the redirect response is returned as it is.
    pub fn none() -> Redirect {
        Redirect {
            policy: Policy::None,
        }
    }

    /// Follow up to `max` redirects; one more is an error.
    pub fn limit(max: usize) -> Redirect {
        Redirect {
            policy: Policy::Limit(max),
        }
    }

    /// Let `decide` choose for each redirect.
    pub fn custom(
        decide: impl Fn(&Attempt<'_>) -> RedirectAction + Send + Sync + 'static,
    ) -> Redirect {
        Redirect {
            policy: Policy::Custom(Arc::new(decide)),
        }
    }
}

impl Default for Redirect {
    /// Follow up to 10 redirects.
    fn default() -> Self {
        Redirect::limit(10)
    }
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Policy::None => f.write_str("Redirect::none()"),
            Policy::Limit(n) => write!(f, "Redirect::limit({n})"),
            Policy::Custom(_) => f.write_str("Redirect::custom(..)"),
        }
    }
}

/// What a custom policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAction {
    /// Follow the redirect.
    Follow,
    /// Return the redirect response as the final response.
    Stop,
    /// Fail with an error of kind [`Redirect`](crate::ErrorKind::Redirect) and this message.
    Error(String),
}

/// A redirect about to be followed, shown to a custom policy.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub(crate) status: StatusCode,
    pub(crate) next: &'a Url,
    pub(crate) previous: &'a [Url],
}

impl Attempt<'_> {
    /// The redirect's status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Where the redirect points.
    pub fn next(&self) -> &Url {
        self.next
    }

    /// The URLs requested so far, the first one first; the last one answered with this
    /// redirect.
    pub fn previous(&self) -> &[Url] {
        self.previous
    }
}

/// Whether `status` is a redirect the client knows how to follow.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The request a redirect asks for: where, with which method, and whether the body goes
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hop {
    /// An absolute `http` or `https` URL with a host.
    pub(crate) url: Url,
    pub(crate) method: Method,
    /// True for 307 and 308, which repeat the request as it was, body included.
    pub(crate) keep_body: bool,
}

/// Where the redirect `status` with `Location` bytes `location`, answering `method` on
/// `base`, leads.
///
/// The Location is a URI reference resolved against `base` (RFC 9110 §10.2.2, RFC 3986
/// §5); a fragment of `base` carries over when the Location has none. Anything but an
/// absolute `http`/`https` URL with a host is an error of kind
/// [`Redirect`](ErrorKind::Redirect): the client speaks no other scheme, and a redirect
/// must not make it try (`file:`, `data:`, `javascript:` and the like).
///
/// Method and body (RFC 9110 §15.4): 307 and 308 keep both; 303 becomes GET without a
/// body (HEAD stays HEAD); 301 and 302 become GET without a body too, except HEAD, as
/// browsers and other clients do for POST, and in practice for every method.
pub(crate) fn next_hop(
    status: StatusCode,
    method: &Method,
    base: &Url,
    location: &[u8],
) -> Result<Hop> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::Redirect,
            format!("invalid Location in a redirect: {why}"),
        )
        .with_url(base)
    };
    let text = std::str::from_utf8(location).map_err(|_| invalid("not UTF-8"))?;
    let mut url = base.join(text).map_err(|e| invalid(&format!("{e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!("unsupported scheme {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.fragment().is_none() {
        if let Some(fragment) = base.fragment() {
            url.set_fragment(Some(fragment));
        }
    }
    let (method, keep_body) = match status.as_u16() {
        307 | 308 => (method.clone(), true),
        _ if method == Method::HEAD => (Method::HEAD, false),
        _ => (Method::GET, false),
    };
    Ok(Hop {
        url,
        method,
        keep_body,
    })
}

impl Hop {
    /// Whether the hop leaves the origin (scheme, host, port) of `from`.
    pub(crate) fn crosses_origin(&self, from: &Url) -> bool {
        self.url.scheme() != from.scheme()
            || self.url.host_str() != from.host_str()
            || self.url.port_or_known_default() != from.port_or_known_default()
    }

    /// Rewrites the request fields of the previous request for this hop (RFC 9110
    /// §15.4): without a body, no content-specific fields (§6.4.1); to another origin,
    /// no credentials (Authorization, Cookie, Proxy-Authorization), which were meant
    /// for `from` alone; and `Host` comes from the new URL.
    pub(crate) fn rewrite_headers(&self, from: &Url, headers: &mut HeaderMap) {
        if !self.keep_body {
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::TRANSFER_ENCODING,
                header::CONTENT_ENCODING,
                header::CONTENT_LANGUAGE,
                header::CONTENT_LOCATION,
            ] {
                headers.remove(name);
            }
        }
        if self.crosses_origin(from) {
            headers.remove(header::AUTHORIZATION);
            headers.remove(header::COOKIE);
            headers.remove(header::PROXY_AUTHORIZATION);
        }
        headers.remove(header::HOST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, method: Method, base: &str, location: &[u8]) -> Result<Hop> {
        next_hop(
            StatusCode::from_u16(status).unwrap(),
            &method,
            &Url::parse(base).unwrap(),
            location,
        )
    }

    #[test]
    fn locations_resolve_against_the_base() {
        let url =
            |loc: &[u8]| hop(302, Method::GET, "http://a.example/d/e?q#f", loc).map(|h| h.url);
        assert_eq!(url(b"x").unwrap().as_str(), "http://a.example/d/x#f");
        assert_eq!(url(b"/x#g").unwrap().as_str(), "http://a.example/x#g");
        assert_eq!(
            url(b"//b.example/y").unwrap().as_str(),
            "http://b.example/y#f"
        );
        assert_eq!(
            url(b"https://b.example").unwrap().as_str(),
            "https://b.example/#f"
        );
        assert_eq!(url(b"?r").unwrap().as_str(), "http://a.example/d/e?r#f");
        for bad in [
            &b"file:///etc/passwd"[..],
            b"javascript:alert(1)",
            b"data:text/plain,x",
            b"ftp://b.example/",
            b"http://",
            b"http://[::1",
            b"\xff",
        ] {
            let err = url(bad).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::Redirect,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn method_and_body_rules() {
        let rule = |status, method| {
            let h = hop(status, method, "http://a/", b"/n").unwrap();
            (h.method, h.keep_body)
        };
        for status in [301, 302, 303] {
            assert_eq!(rule(status, Method::POST), (Method::GET, false));
            assert_eq!(rule(status, Method::PUT), (Method::GET, false));
            assert_eq!(rule(status, Method::HEAD), (Method::HEAD, false));
        }
        for status in [307, 308] {
            assert_eq!(rule(status, Method::POST), (Method::POST, true));
            assert_eq!(rule(status, Method::DELETE), (Method::DELETE, true));
        }
    }

    #[test]
    fn headers_rewritten_per_hop() {
        let base = Url::parse("http://a.example/").unwrap();
        let mut fields = HeaderMap::new();
        for name in ["authorization", "cookie", "content-type", "host", "x-keep"] {
            fields.insert(http::HeaderName::from_static(name), "v".parse().unwrap());
        }
        let same = hop(307, Method::POST, "http://a.example/", b"/n").unwrap();
        let mut h = fields.clone();
        same.rewrite_headers(&base, &mut h);
        assert!(h.contains_key("authorization") && h.contains_key("content-type"));
        assert!(!h.contains_key("host"));
        let other = hop(
            302,
            Method::POST,
            "http://a.example/",
            b"http://a.example:81/",
        )
        .unwrap();
        let mut h = fields.clone();
        other.rewrite_headers(&base, &mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-keep"]);
    }
}
