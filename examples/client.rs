//! A small `curl -i`: prints the status line, the headers and the body of a GET (or of
//! `-X METHOD` with `-d DATA`).
//!
//! `cargo run --example client -- [-X METHOD] [-d DATA] [-H 'Name: value']... URL`
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
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" => method = args.next(),
            "-d" => data = args.next(),
            "-H" => headers.extend(args.next()),
            _ => url = Some(arg),
        }
    }
    let Some(url) = url else {
        eprintln!("usage: client [-X METHOD] [-d DATA] [-H 'Name: value']... URL");
        std::process::exit(2);
    };
    let method = match (method, &data) {
        (Some(m), _) => m.parse().map_err(|e| {
            spindle::Error::new(spindle::ErrorKind::Usage, "bad method").with_source(e)
        })?,
        (None, Some(_)) => spindle::http::Method::POST,
        (None, None) => spindle::http::Method::GET,
    };
    let client = Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build();
    let mut req = client.request(method, url.as_str());
    for h in &headers {
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        req = req.header(name.trim(), value.trim());
    }
    if let Some(data) = data {
        req = req.body(data);
    }
    let mut res = req.send()?;
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
