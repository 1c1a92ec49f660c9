//! Client throughput: sequential keep-alive GETs, and 8 threads sharing one client, for
//! spindle's `Client`, ureq 3 and reqwest's blocking client, against the same spindle
//! hello server in one run. Prints requests/s and ratios to ureq.
//!
//! HTTP/2: 8 threads sharing one client that multiplexes over one h2c connection (prior
//! knowledge), spindle's `Client` against reqwest's blocking client, both against the
//! same neutral server: hyper 1.x's HTTP/2 server on a one-thread tokio runtime, pinned
//! to the last core when there are several. Prints requests/s and the ratio to reqwest.
//!
//! `cargo bench --bench client_bench` (env `BENCH_SECS`, default 3 per measurement;
//! `BENCH_ROUNDS` for the HTTP/2 comparison, default 3; `BENCH_ONLY=h2` for it alone)
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

fn spindle_h2_get() -> Get {
    let client = spindle::Client::builder()
        .env_proxy(false)
        .http2_prior_knowledge()
        .build();
    Arc::new(move |url, buf| {
        let mut res = client.get(url).send().unwrap();
        assert_eq!(res.version(), spindle::http::Version::HTTP_2);
        buf.clear();
        res.read_to_end(buf).unwrap();
    })
}

fn reqwest_h2_get() -> Get {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    Arc::new(move |url, buf| {
        let mut res = client.get(url).send().unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        buf.clear();
        res.read_to_end(buf).unwrap();
    })
}

/// hyper's HTTP/2 server (h2c prior knowledge), on one tokio thread pinned to the last
/// core; returns its address.
fn hyper_h2c_server() -> std::net::SocketAddr {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        pin_to_last_core();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            bytes::Bytes::from_static(b"Hello, World!"),
                        )))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

fn pin_to_last_core() {
    #[cfg(target_os = "linux")]
    {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus > 1 {
            // SAFETY: a zeroed cpu_set_t we own, passed by pointer with its size.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpus - 1, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
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
    // BENCH_ONLY=h2 runs only the HTTP/2 comparison.
    let only_h2 = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "h2");
    for threads in [1usize, 8] {
        if only_h2 {
            break;
        }
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

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let h2 = hyper_h2c_server();
    let url = format!("http://{h2}/");
    let clients: [(&str, Get); 2] = [
        ("spindle h2c", spindle_h2_get()),
        ("reqwest h2c", reqwest_h2_get()),
    ];
    println!(
        "\nHTTP/2: 8 threads, one shared client, one h2c connection \
         ({secs} s each, {rounds} interleaved rounds, median; hyper h2c server, 1 pinned thread)"
    );
    let mut samples = [Vec::new(), Vec::new()];
    for _round in 0..rounds {
        for (i, (_, get)) in clients.iter().enumerate() {
            samples[i].push(run(get, &url, 8, secs));
        }
    }
    let med: Vec<f64> = samples.iter().map(|s| median(s.clone())).collect();
    for (i, (name, _)) in clients.iter().enumerate() {
        println!(
            "  {name:<18} {:>10.0} req/s   {:.2}x reqwest   (rounds: {})",
            med[i],
            med[i] / med[1],
            samples[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
