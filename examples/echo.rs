//! Streams every request body back as the response body, chunked.
//!
//! `cargo run --example echo -- 127.0.0.1:3000`, then
//! `curl -T somefile localhost:3000/`.
use std::io;

use spindle::server::{Request, Response, Server};

fn echo(mut req: Request, mut res: Response) {
    if let Some(content_type) = req.headers().get("content-type").cloned() {
        res.headers_mut().insert("content-type", content_type);
    }
    let mut res = match res.start() {
        Ok(res) => res,
        Err(e) => return log::warn!("starting the response: {e}"),
    };
    if let Err(e) = io::copy(&mut req, &mut res) {
        log::warn!("echoing the body: {e}");
    }
}

fn main() -> spindle::Result<()> {
    env_logger::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listening = Server::http(&addr)?.handle(echo)?;
    println!("listening on http://{}", listening.local_addr());
    listening.join();
    Ok(())
}
