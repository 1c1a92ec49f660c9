//! Client throughput: sequential keep-alive GETs, and 8 threads sharing one client, for
//! spindle's `Client`, ureq 3 and reqwest's blocking client, against the same spindle
//! hello server in one run. Prints requests/s and ratios to ureq.
//!
//! `cargo bench --bench client_bench` (env `BENCH_SECS`, default 3 per measurement)
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::server::{Request, Response, Server};

type Get = Arc<dyn Fn(&str, &mut Vec<u8>) + Send + Sync>;

fn spindle_get() -> Get {
    let client = spindle::Client::builder().env_proxy(false).build();
    Arc::new(move |url, buf| {
        let mut res = client.get(url).send().unwrap();
        buf.clear();
        res.read_to_end(buf).unwrap();
    })
}

fn ureq_get() -> Get {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_idle_connections_per_host(16)
        .build()
        .into();
    Arc::new(move |url, buf| {
        let mut res = agent.get(url).call().unwrap();
        buf.clear();
        res.body_mut().as_reader().read_to_end(buf).unwrap();
    })
}

fn reqwest_get() -> Get {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    Arc::new(move |url, buf| {
        let mut res = client.get(url).send().unwrap();
        buf.clear();
        res.read_to_end(buf).unwrap();
    })
}

fn run(get: &Get, url: &str, threads: usize, secs: f64) -> f64 {
    // Warm up the pool.
    let mut buf = Vec::new();
    for _ in 0..200 {
        get(url, &mut buf);
    }
    assert_eq!(buf, b"Hello, World!");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (get, url, stop, count) =
                (get.clone(), url.to_owned(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::with_capacity(64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    get(&url, &mut buf);
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let listening = Server::http("127.0.0.1:0")
        .unwrap()
        .handle(|_req: Request, res: Response| {
            res.send(b"Hello, World!").ok();
        })
        .unwrap();
    let url = format!("http://{}/", listening.local_addr());
    let clients: [(&str, Get); 3] = [
        ("spindle", spindle_get()),
        ("ureq 3", ureq_get()),
        ("reqwest blocking", reqwest_get()),
    ];
    for threads in [1usize, 8] {
        let label = if threads == 1 {
            "sequential keep-alive GETs"
        } else {
            "8 threads, one shared client"
        };
        println!("\n{label} ({secs} s each, spindle hello server in-process)");
        let mut results = Vec::new();
        // Two rounds, interleaved, to even out noise on a shared machine; keep the best.
        let mut best = [0f64; 3];
        for _round in 0..2 {
            for (i, (_, get)) in clients.iter().enumerate() {
                best[i] = best[i].max(run(get, &url, threads, secs));
            }
        }
        for (i, (name, _)) in clients.iter().enumerate() {
            results.push((name, best[i]));
        }
        let ureq = results[1].1;
        for (name, rps) in &results {
            println!("  {name:<18} {rps:>10.0} req/s   {:.2}x ureq", rps / ureq);
        }
    }
    listening.close();
}
