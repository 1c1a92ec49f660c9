//! Answers every request with `200 Hello, World!` as text/plain.
//!
//! `cargo run --release --example hello -- 127.0.0.1:3000`
use spindle::http::header::{HeaderValue, CONTENT_TYPE};
use spindle::server::{Request, Response, Server};

fn main() -> spindle::Result<()> {
    env_logger::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let threads = std::env::var("SPINDLE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    let server = Server::http(&addr)?;
    let hello = |_req: Request, mut res: Response| {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res.send(b"Hello, World!").ok();
    };
    let listening = match threads {
        Some(n) => server.handle_threads(hello, n)?,
        None => server.handle(hello)?,
    };
    println!("listening on http://{}", listening.local_addr());
    listening.join();
    Ok(())
}
