//! A struct implementing `Handler`, with state shared by every worker thread.
//!
//! `cargo run --example counter -- 127.0.0.1:3000`, then `curl localhost:3000/`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use spindle::server::{Handler, Request, Response, Server};

/// Counts requests overall and remembers the last path asked for.
struct Counter {
    hits: AtomicU64,
    last_path: Mutex<String>,
}

impl Handler for Counter {
    fn handle(&self, req: Request, res: Response) {
        let n = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        let previous = {
            let mut last = self.last_path.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *last, req.path().to_string())
        };
        let body = format!("request #{n}; the one before asked for {previous:?}\n");
        res.send(body.as_bytes()).ok();
    }
}

fn main() -> spindle::Result<()> {
    env_logger::init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listening = Server::http(&addr)?.handle(Counter {
        hits: AtomicU64::new(0),
        last_path: Mutex::new(String::new()),
    })?;
    println!("listening on http://{}", listening.local_addr());
    listening.join();
    Ok(())
}
