//! Fuzzing entry points for `crate::client`.
use http::header::HeaderMap;
use http::{Method, StatusCode};

/// The URL type of the client (the `url` crate's), so that targets can build bases.
pub use url::Url;

/// Where a redirect leads, as the client would follow it.
#[derive(Debug)]
pub struct Hop {
    /// The next URL.
    pub url: Url,
    /// The next method.
    pub method: Method,
    /// Whether the request body is sent again.
    pub keep_body: bool,
}

/// Resolves a redirect's `Location` (`client::redirect::next_hop`) and, when it is
/// followed, rewrites the previous request's `headers` for the hop
/// (`Hop::rewrite_headers`), exactly as `Client` does between two requests.
pub fn redirect(
    status: StatusCode,
    method: &Method,
    base: &Url,
    location: &[u8],
    headers: &mut HeaderMap,
) -> crate::Result<Hop> {
    let hop = crate::client::redirect::next_hop(status, method, base, location)?;
    hop.rewrite_headers(base, headers);
    Ok(Hop {
        url: hop.url,
        method: hop.method,
        keep_body: hop.keep_body,
    })
}
