//! HPACK encode/decode of a realistic browser request, and frame decode throughput.
//! Compared with the `hpack` crate (0.3) in the same run.
//!
//! Run: `cargo bench --bench h2_hpack`. Results are recorded in benches/h2_RESULTS.md.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spindle::h2::frame::{Data, Decoded, FrameDecoder, Headers, Ping, StreamId, WindowUpdate};
use spindle::h2::headers::decode_request;
use spindle::h2::hpack::{Decoder, Encoder};

/// What Chrome sends for a top-level navigation.
const BROWSER_REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":authority", "www.example.com"),
    (":scheme", "https"),
    (":path", "/products/list?category=books&page=2"),
    ("sec-ch-ua", "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\""),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", "\"Linux\""),
    ("upgrade-insecure-requests", "1"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    ),
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-user", "?1"),
    ("sec-fetch-dest", "document"),
    ("referer", "https://www.example.com/products"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "en-US,en;q=0.9,fr;q=0.8"),
    ("cookie", "session=8f2a9c4e1b7d6f3a; theme=dark; _ga=GA1.2.1234567890.1700000000"),
];

fn fields() -> impl Iterator<Item = (&'static [u8], &'static [u8], bool)> {
    BROWSER_REQUEST
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false))
}

fn pairs() -> Vec<(&'static [u8], &'static [u8])> {
    BROWSER_REQUEST
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

fn hpack_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("hpack_encode_browser_request");
    g.bench_function("spindle/cold", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            let mut enc = Encoder::new();
            out.clear();
            enc.encode(fields(), &mut out);
            black_box(&out);
        })
    });
    g.bench_function("hpack-crate/cold", |b| {
        b.iter(|| {
            let mut enc = hpack::Encoder::new();
            black_box(enc.encode(pairs()));
        })
    });
    // Steady state on one connection: the table already holds the repeated fields.
    g.bench_function("spindle/warm", |b| {
        let mut enc = Encoder::new();
        let mut out = Vec::with_capacity(1024);
        enc.encode(fields(), &mut out);
        b.iter(|| {
            out.clear();
            enc.encode(fields(), &mut out);
            black_box(&out);
        })
    });
    g.bench_function("hpack-crate/warm", |b| {
        let mut enc = hpack::Encoder::new();
        enc.encode(pairs());
        b.iter(|| black_box(enc.encode(pairs())))
    });
    g.finish();
}

fn hpack_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("hpack_decode_browser_request");
    // Each decoder gets its own encoder's output (spindle Huffman-codes, the hpack crate
    // does not), and the same header list.
    let mut enc = Encoder::new();
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    enc.encode(fields(), &mut s1);
    enc.encode(fields(), &mut s2);
    let mut henc = hpack::Encoder::new();
    let h1 = henc.encode(pairs());
    let h2 = henc.encode(pairs());
    g.bench_function("spindle/cold", |b| {
        b.iter(|| {
            let mut dec = Decoder::new();
            black_box(dec.decode_to_vec(&s1).unwrap());
        })
    });
    g.bench_function("spindle-on-hpack-crate-bytes/cold", |b| {
        b.iter(|| {
            let mut dec = Decoder::new();
            black_box(dec.decode_to_vec(&h1).unwrap());
        })
    });
    g.bench_function("hpack-crate/cold", |b| {
        b.iter(|| {
            let mut dec = hpack::Decoder::new();
            black_box(dec.decode(&h1).unwrap());
        })
    });
    g.bench_function("spindle/warm", |b| {
        let mut dec = Decoder::new();
        dec.decode_to_vec(&s1).unwrap();
        b.iter(|| black_box(dec.decode_to_vec(&s2).unwrap()))
    });
    g.bench_function("hpack-crate/warm", |b| {
        let mut dec = hpack::Decoder::new();
        dec.decode(&h1).unwrap();
        b.iter(|| black_box(dec.decode(&h2).unwrap()))
    });
    g.bench_function("spindle-to-http-Request/warm", |b| {
        let mut dec = Decoder::new();
        dec.decode_to_vec(&s1).unwrap();
        b.iter(|| black_box(decode_request(&mut dec, StreamId::new(1), &s2).unwrap()))
    });
    g.finish();
}

fn frame_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_decode");
    // A mix like a busy connection: HEADERS, DATA of assorted sizes, WINDOW_UPDATE, PING.
    let mut wire = Vec::new();
    let body = vec![0x61u8; 16_384];
    let block = [0x82u8, 0x87, 0x84, 0xbe];
    let mut frames = 0u64;
    for i in 0..1000u32 {
        let id = StreamId::new(2 * i + 1);
        Headers {
            stream_id: id,
            fragment: &block,
            end_stream: false,
            end_headers: true,
            priority: None,
            pad_len: None,
        }
        .encode(&mut wire);
        let n = [16, 512, 4096, 16_384][i as usize % 4];
        Data {
            stream_id: id,
            data: &body[..n],
            end_stream: true,
            pad_len: None,
        }
        .encode(&mut wire);
        WindowUpdate {
            stream_id: StreamId::ZERO,
            increment: n as u32,
        }
        .encode(&mut wire);
        Ping {
            ack: false,
            payload: [1; 8],
        }
        .encode(&mut wire);
        frames += 4;
    }
    let dec = FrameDecoder::new();
    let run = |wire: &[u8]| {
        let mut pos = 0;
        let mut n = 0u64;
        while let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&wire[pos..]) {
            black_box(&frame);
            pos += consumed;
            n += 1;
        }
        n
    };
    assert_eq!(run(&wire), frames);
    g.throughput(Throughput::Elements(frames));
    g.bench_function("mixed_4000_frames/elements", |b| {
        b.iter(|| run(black_box(&wire)))
    });
    // Small frames only: the per-frame cost.
    let mut small = Vec::new();
    for _ in 0..4000 {
        WindowUpdate {
            stream_id: StreamId::new(1),
            increment: 1,
        }
        .encode(&mut small);
    }
    g.throughput(Throughput::Elements(4000));
    g.bench_function("window_update_4000_frames", |b| {
        b.iter(|| run(black_box(&small)))
    });
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("mixed_4000_frames/bytes", |b| {
        b.iter(|| run(black_box(&wire)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = hpack_encode, hpack_decode, frame_decode
}
criterion_main!(benches);
