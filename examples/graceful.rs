//! A backend that stops gracefully: the deployment recipe in README.md.
//!
//! `cargo run --release --example graceful -- 127.0.0.1:3000 NAME`
//!
//! Answers every request with `NAME PATH`. Binds with SO_REUSEPORT (on Unix), so a
//! replacement process can start on the same port before this one stops; on SIGTERM or
//! SIGINT (Ctrl-C on Windows) it stops accepting, finishes what is in flight (up to
//! 10 s) and exits.
use std::time::{Duration, Instant};

use spindle::server::{ListenOptions, Request, Response, Server};

fn main() -> spindle::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let name = args.next().unwrap_or_else(|| "spindle".into());
    let options = ListenOptions {
        // Windows has no SO_REUSEPORT (binding with it fails with
        // ErrorKind::Unsupported): there a replacement must wait for this one to stop.
        reuse_port: cfg!(unix),
        ..ListenOptions::default()
    };
    let answer_name = name.clone();
    let listening = Server::bind(&addr, options)?.handle(move |req: Request, res: Response| {
        res.send(format!("{answer_name} {}", req.uri()).as_bytes())
            .ok();
    })?;
    println!("{name} listening on http://{}", listening.local_addr());
    let signal = spindle::server::wait_for_shutdown_signal()?;
    eprintln!("{name}: signal {signal}, shutting down gracefully");
    let report = listening.shutdown(Instant::now() + Duration::from_secs(10));
    eprintln!(
        "{name}: {} connections finished, {} cut, {} requests served",
        report.finished,
        report.cut,
        listening.served_requests()
    );
    Ok(())
}
