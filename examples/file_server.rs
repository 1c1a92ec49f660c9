//! Serves a directory with the access-log and compression layers on.
//!
//! ```text
//! cargo run --example file_server -- 127.0.0.1:3000 ./public
//! curl -i --compressed localhost:3000/index.html
//! curl -i -r 0-99 localhost:3000/big.bin
//! ```
use spindle::handlers::{AccessLogLayer, CompressionLayer, FileServer, Layers, LogFormat};
use spindle::server::Server;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let dir = args.next().unwrap_or_else(|| ".".into());
    let app = Layers::new()
        .layer(AccessLogLayer::new().format(LogFormat::Common))
        .layer(CompressionLayer::new())
        .service(FileServer::new(&dir)?);
    let listening = Server::http(&addr)?.handle(app)?;
    println!("serving {dir} on http://{}", listening.local_addr());
    listening.join();
    Ok(())
}
