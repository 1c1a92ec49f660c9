//! HTTP proxies: absolute-form requests for `http://` targets, `CONNECT` tunnels for
//! `https://` targets, configured on the builder or from `http_proxy`, `https_proxy`,
//! `all_proxy` and `no_proxy`.
use http::HeaderValue;
use url::Url;

use crate::{Error, ErrorKind, Result};

/// Which target URLs a proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Http,
    Https,
    All,
}

/// An HTTP proxy.
///
/// ```
/// use spindle::client::Proxy;
/// let proxy = Proxy::all("http://user:secret@proxy.internal:3128")?;
/// let client = spindle::Client::builder().proxy(proxy).build();
/// # drop(client);
/// # Ok::<(), spindle::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Proxy {
    scope: Scope,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) auth: Option<HeaderValue>,
    pub(crate) tunnel_http: bool,
    pub(crate) route_http: String,
    pub(crate) route_connect: String,
    no_proxy: Option<NoProxy>,
}

impl Proxy {
    /// A proxy for `http://` targets only (sent as absolute-form requests).
    pub fn http(proxy_url: &str) -> Result<Proxy> {
        Proxy::new(proxy_url, Scope::Http)
    }

    /// A proxy for `https://` targets only (reached through `CONNECT` tunnels).
    pub fn https(proxy_url: &str) -> Result<Proxy> {
        Proxy::new(proxy_url, Scope::Https)
    }

    /// A proxy for every target.
    pub fn all(proxy_url: &str) -> Result<Proxy> {
        Proxy::new(proxy_url, Scope::All)
    }

    /// Use `CONNECT` tunnels for `http://` targets too, instead of absolute-form requests.
    pub fn tunnel_http(mut self, yes: bool) -> Proxy {
        self.tunnel_http = yes;
        self
    }

    /// Hosts to reach directly, in `no_proxy` syntax (`"localhost,.internal,10.0.0.1"`).
    pub fn no_proxy(mut self, list: &str) -> Proxy {
        self.no_proxy = Some(NoProxy::parse(list));
        self
    }

    fn new(proxy_url: &str, scope: Scope) -> Result<Proxy> {
        // "host:port" without a scheme is common in environment variables.
        let with_scheme;
        let text = if proxy_url.contains("://") {
            proxy_url
        } else {
            with_scheme = format!("http://{proxy_url}");
            &with_scheme
        };
        let url = Url::parse(text).map_err(|e| {
            Error::new(ErrorKind::Url, "invalid proxy URL")
                .with_source(e)
                .with_url(redact(proxy_url))
        })?;
        if url.scheme() != "http" {
            return Err(Error::new(
                ErrorKind::Url,
                format!(
                    "unsupported proxy scheme {:?} (only http:// proxies)",
                    url.scheme()
                ),
            )
            .with_url(redact(proxy_url)));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Error::new(ErrorKind::Url, "proxy URL has no host"))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let auth = if url.username().is_empty() {
            None
        } else {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            let mut raw = user.into_bytes();
            raw.push(b':');
            raw.extend_from_slice(pass.as_bytes());
            let mut value = b"Basic ".to_vec();
            base64_encode(&raw, &mut value);
            let mut value = HeaderValue::from_bytes(&value)
                .map_err(|e| Error::new(ErrorKind::Url, "bad proxy credentials").with_source(e))?;
            value.set_sensitive(true);
            Some(value)
        };
        Ok(Proxy {
            scope,
            route_http: format!("http://{host}:{port}"),
            route_connect: format!("connect://{host}:{port}"),
            host,
            port,
            auth,
            tunnel_http: false,
            no_proxy: None,
        })
    }

    fn serves(&self, target: &Url) -> bool {
        let scheme_ok = match self.scope {
            Scope::All => true,
            Scope::Http => target.scheme() == "http",
            Scope::Https => target.scheme() == "https",
        };
        scheme_ok
            && !self
                .no_proxy
                .as_ref()
                .is_some_and(|n| n.matches(target.host_str().unwrap_or("")))
    }
}

/// A parsed `no_proxy` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoProxy {
    all: bool,
    entries: Vec<String>,
}

impl NoProxy {
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut n = NoProxy::default();
        for entry in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                n.all = true;
                continue;
            }
            // Drop a port ("host:80"), but not from a bare IPv6 address.
            let host = match entry.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
                _ => entry,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = host
                .strip_prefix("*.")
                .map(|h| format!(".{h}"))
                .unwrap_or_else(|| host.to_owned());
            n.entries.push(host.to_ascii_lowercase());
        }
        n
    }

    pub(crate) fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.entries.iter().any(|e| {
            if let Some(suffix) = e.strip_prefix('.') {
                host == suffix || host.ends_with(e.as_str())
            } else {
                host == *e
                    || (host.len() > e.len()
                        && host.ends_with(e.as_str())
                        && host.as_bytes()[host.len() - e.len() - 1] == b'.')
            }
        })
    }
}

/// The proxies a client uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proxies {
    list: Vec<Proxy>,
    /// From the environment: never applied to loopback targets.
    from_env: bool,
}

impl Proxies {
    pub(crate) fn new(list: Vec<Proxy>) -> Proxies {
        Proxies {
            list,
            from_env: false,
        }
    }

    /// Proxies from environment variables, looked up through `var` (lower case first).
    pub(crate) fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Proxies {
        let get = |name: &str| {
            var(name)
                .or_else(|| var(&name.to_ascii_uppercase()))
                .filter(|v| !v.trim().is_empty())
        };
        let no_proxy = get("no_proxy").map(|v| NoProxy::parse(&v));
        let mut list = Vec::new();
        let mut add = |value: Option<String>, make: fn(&str) -> Result<Proxy>| {
            if let Some(value) = value {
                match make(value.trim()) {
                    Ok(mut p) => {
                        p.no_proxy = no_proxy.clone();
                        list.push(p);
                    }
                    Err(e) => log::warn!("ignoring proxy from the environment: {e}"),
                }
            }
        };
        add(get("http_proxy"), Proxy::http);
        add(get("https_proxy"), Proxy::https);
        add(get("all_proxy"), Proxy::all);
        Proxies {
            list,
            from_env: true,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn for_url(&self, url: &Url) -> Option<&Proxy> {
        if self.list.is_empty() {
            return None;
        }
        if self.from_env && is_loopback(url) {
            return None;
        }
        self.list.iter().find(|p| p.serves(url))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            u.set_password(Some("***")).ok();
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(input: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        let enc = |s: &str| {
            let mut out = Vec::new();
            base64_encode(s.as_bytes(), &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(enc(""), "");
        assert_eq!(enc("f"), "Zg==");
        assert_eq!(enc("fo"), "Zm8=");
        assert_eq!(enc("foo"), "Zm9v");
        assert_eq!(enc("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn credentials_from_url() {
        let p = Proxy::all("http://us%40er:p%3Ass@proxy:3128").unwrap();
        assert_eq!(p.host, "proxy");
        assert_eq!(p.port, 3128);
        let mut expect = b"Basic ".to_vec();
        base64_encode(b"us@er:p:ss", &mut expect);
        assert_eq!(p.auth.unwrap().as_bytes(), &expect[..]);
        let bare = Proxy::http("proxy.example").unwrap();
        assert_eq!(bare.port, 80);
        assert!(bare.auth.is_none());
        assert_eq!(
            Proxy::all("socks5://x:1").unwrap_err().kind(),
            ErrorKind::Url
        );
    }

    #[test]
    fn no_proxy_matching() {
        let n = NoProxy::parse("localhost, .internal,example.com:8080 *.corp [::1] 10.0.0.1");
        assert!(n.matches("localhost"));
        assert!(n.matches("a.internal"));
        assert!(n.matches("internal"));
        assert!(n.matches("example.com"));
        assert!(n.matches("www.example.com"));
        assert!(!n.matches("badexample.com"));
        assert!(n.matches("x.corp"));
        assert!(n.matches("[::1]"));
        assert!(n.matches("10.0.0.1"));
        assert!(!n.matches("10.0.0.2"));
        assert!(NoProxy::parse("*").matches("anything"));
    }

    #[test]
    fn environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = Proxies::from_env_with(env(&[
            ("HTTP_PROXY", "http://up:1"),
            ("https_proxy", "lower:2"),
            ("NO_PROXY", "skip.me"),
        ]));
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(p.for_url(&url("http://a.b/")).unwrap().port, 1);
        assert_eq!(p.for_url(&url("https://a.b/")).unwrap().port, 2);
        assert!(p.for_url(&url("http://skip.me/")).is_none());
        assert!(p.for_url(&url("http://127.0.0.1:9/")).is_none());
        assert!(p.for_url(&url("http://localhost:9/")).is_none());
        assert!(Proxies::from_env_with(|_| None).is_empty());
    }
}
