//! HTTPS: answers every request with `200 Hello, World!` as text/plain, like the hello
//! example, over TLS.
//!
//! `cargo run --release --example https_server -- 127.0.0.1:8443 cert.pem key.pem`
//!
//! `cert.pem` is the PEM certificate chain (the server's certificate first), `key.pem`
//! its PKCS#8 private key in PEM. A self-signed pair for trying it out:
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//!     -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -keyout key.pem -out cert.pem
//! curl --cacert cert.pem https://localhost:8443/
//! ```
use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::server::{Request, Response, Server};
use spindle::tls::Acceptor;

fn main() -> spindle::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(cert), Some(key)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: https_server ADDR CERT.pem KEY.pem");
        std::process::exit(2);
    };
    let threads = std::env::var("SPINDLE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    let server = Server::https(&addr, Acceptor::from_pem_files(&cert, &key)?)?;
    let hello = |_req: Request, mut res: Response| {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res.send(b"Hello, World!").ok();
    };
    let listening = match threads {
        Some(n) => server.handle_threads(hello, n)?,
        None => server.handle(hello)?,
    };
    println!("listening on https://{}", listening.local_addr());
    listening.join();
    Ok(())
}
