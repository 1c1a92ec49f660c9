//! A small `curl -i`: prints the status line, the headers and the body of a GET (or of
//! `-X METHOD` with `-d DATA`), over http:// or https://.
//!
//! `cargo run --example client -- [-X METHOD] [-d DATA] [-H 'Name: value']...
//!  [--cacert CA.pem] [--cert CERT.pem --key KEY.pem] [-k|--insecure]
//!  [--http2-prior-knowledge] [-v] URL`
//!
//! `--cacert` trusts another root certificate, `--cert`/`--key` present a client
//! certificate (PEM chain, PKCS#8 key), `--insecure` accepts any server certificate
//! (testing only), `--http2-prior-knowledge` speaks HTTP/2 to an `http://` URL (h2c;
//! `https://` uses it whenever the server picks it), `-v` prints the negotiated ALPN
//! protocol to stderr.
use std::io::{self, Write};
use std::time::Duration;

use spindle::Client;

fn main() {
    env_logger::init();
    if let Err(err) = run() {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run() -> spindle::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut method = None;
    let mut data = None;
    let mut headers = Vec::new();
    let mut url = None;
    let mut tls = Tls::default();
    let mut verbose = false;
    let mut h2c = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" => method = args.next(),
            "-d" => data = args.next(),
            "-H" => headers.extend(args.next()),
            "--cacert" => tls.cacert = args.next(),
            "--cert" => tls.cert = args.next(),
            "--key" => tls.key = args.next(),
            "-k" | "--insecure" => tls.insecure = true,
            "-v" => verbose = true,
            "--http2-prior-knowledge" => h2c = true,
            _ => url = Some(arg),
        }
    }
    let Some(url) = url else {
        eprintln!(
            "usage: client [-X METHOD] [-d DATA] [-H 'Name: value']... [--cacert CA.pem] \
             [--cert CERT.pem --key KEY.pem] [-k|--insecure] [--http2-prior-knowledge] [-v] URL"
        );
        std::process::exit(2);
    };
    let method = match (method, &data) {
        (Some(m), _) => m.parse().map_err(|e| {
            spindle::Error::new(spindle::ErrorKind::Usage, "bad method").with_source(e)
        })?,
        (None, Some(_)) => spindle::http::Method::POST,
        (None, None) => spindle::http::Method::GET,
    };
    let mut builder = Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300));
    if h2c {
        builder = builder.http2_prior_knowledge();
    }
    let client = tls.apply(builder)?.try_build()?;
    let mut req = client.request(method, url.as_str());
    for h in &headers {
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        req = req.header(name.trim(), value.trim());
    }
    if let Some(data) = data {
        req = req.body(data);
    }
    let mut res = req.send()?;
    if verbose {
        match res.alpn() {
            Some(p) => eprintln!("* ALPN: {}", String::from_utf8_lossy(p)),
            None => eprintln!("* no ALPN"),
        }
    }
    let mut out = io::stdout().lock();
    let version = format!("{:?}", res.version());
    let reason = res.status().canonical_reason().unwrap_or("");
    writeln!(out, "{version} {} {reason}", res.status().as_u16())?;
    for (name, value) in res.headers() {
        writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
    }
    writeln!(out)?;
    io::copy(&mut res, &mut out).map_err(|e| spindle::Error::io("reading the body", e))?;
    out.flush()?;
    Ok(())
}

#[derive(Default)]
struct Tls {
    cacert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    insecure: bool,
}

impl Tls {
    #[cfg(feature = "tls")]
    fn apply(
        self,
        mut builder: spindle::client::ClientBuilder,
    ) -> spindle::Result<spindle::client::ClientBuilder> {
        use spindle::tls::{Certificate, Identity};
        let read =
            |p: &str| std::fs::read(p).map_err(|e| spindle::Error::io(format!("reading {p}"), e));
        if let Some(ca) = &self.cacert {
            for cert in Certificate::bundle_from_pem(&read(ca)?)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                builder = builder.identity(Identity::from_pem(&read(cert)?, &read(key)?)?);
            }
            (None, None) => {}
            _ => {
                return Err(spindle::Error::new(
                    spindle::ErrorKind::Usage,
                    "--cert and --key go together",
                ))
            }
        }
        if self.insecure {
            eprintln!("* warning: --insecure: server certificates are not checked");
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }

    #[cfg(not(feature = "tls"))]
    fn apply(
        self,
        builder: spindle::client::ClientBuilder,
    ) -> spindle::Result<spindle::client::ClientBuilder> {
        if self.cacert.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure {
            return Err(spindle::Error::new(
                spindle::ErrorKind::Usage,
                "TLS options need spindle's `tls` feature",
            ));
        }
        Ok(builder)
    }
}
