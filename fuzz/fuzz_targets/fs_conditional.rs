//! `Range`, `If-Range`, `If-None-Match` and `If-Modified-Since` values against a file of
//! a fuzz-chosen length, through the file server (`TestRequest`), and `Range` parsing
//! alone against lengths up to `u64::MAX`:
//!
//! - 200 carries the whole file, 206 exactly the slice its `Content-Range` names (inside
//!   the file, with a matching `Content-Length`), 416 `Content-Range: bytes */len` and
//!   no file bytes, 304 no body, and nothing else is answered;
//! - a parsed range is inside the file; no panic or overflow on any value.
//!
//! Input: byte 0 picks GET or HEAD and which fields are sent, bytes 1-2 the length (up
//! to 1500), then the four values separated by `\n`. `ETAG` and `DATE` in a value are
//! replaced by the file's real `ETag` and `Last-Modified`, so matches are reachable.
#![no_main]
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::handlers::{parse_range, Range};
use spindle::handlers::testing::TestRequest;
use spindle::handlers::FileServer;

struct Fixture {
    root: PathBuf,
    fs: FileServer,
    made: Mutex<HashSet<usize>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("spindle-fuzz-cond-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Fixture {
            fs: FileServer::new(&root).unwrap(),
            root,
            made: Mutex::new(HashSet::new()),
        }
    })
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + len) % 251) as u8).collect()
}

/// `/f{len}.bin`, written once.
fn file(f: &Fixture, len: usize) -> String {
    let name = format!("f{len}.bin");
    let mut made = f.made.lock().unwrap();
    if made.insert(len) {
        std::fs::write(f.root.join(&name), content(len)).unwrap();
    }
    format!("/{name}")
}

fn check_parse(value: &[u8], len: u64) {
    match parse_range(value, len) {
        Range::Whole => {}
        Range::Part(a, b) => assert!(a <= b && b < len, "{value:?} / {len}: {a}-{b}"),
        Range::Unsatisfiable => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    let len = usize::from(u16::from_le_bytes([data[1], data[2]])) % 1501;
    let mut values = data[3..].split(|&b| b == b'\n');
    let mut next = || values.next().unwrap_or(b"");
    let (range, if_range, inm, ims) = (next(), next(), next(), next());

    for l in [len as u64, 0, 1, u64::MAX, u64::MAX - 1, 1 << 63] {
        check_parse(range, l);
    }

    let f = fixture();
    let target = file(f, len);
    let body = content(len);
    let probe = TestRequest::get(&target).run(&f.fs);
    assert_eq!(
        (probe.status().as_u16(), probe.body()),
        (200, body.as_slice())
    );
    let etag = probe.header("etag").unwrap_or("").to_owned();
    let date = probe.header("last-modified").unwrap_or("").to_owned();

    let head = flags & 1 == 1;
    let mut req = if head {
        TestRequest::head(&target)
    } else {
        TestRequest::get(&target)
    };
    let mut sent = [false; 4];
    for (i, (name, value)) in [
        ("range", range),
        ("if-range", if_range),
        ("if-none-match", inm),
        ("if-modified-since", ims),
    ]
    .into_iter()
    .enumerate()
    {
        if flags & (2 << i) == 0 {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let value = value.replace("ETAG", &etag).replace("DATE", &date);
        if spindle::http::HeaderValue::from_str(&value).is_err() {
            continue;
        }
        req = req.header(name, &value);
        sent[i] = true;
    }
    let rec = req.run(&f.fs);
    let got: &[u8] = rec.body();
    let length = rec
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    match rec.status().as_u16() {
        200 => {
            assert_eq!(length, Some(len));
            assert_eq!(got, if head { &[][..] } else { &body[..] });
            assert!(rec.header("content-range").is_none());
        }
        206 => {
            assert!(sent[0], "206 without a Range");
            let cr = rec.header("content-range").expect("206 has Content-Range");
            let spec = cr.strip_prefix("bytes ").expect("bytes unit");
            let (span, total) = spec.split_once('/').expect("a complete length");
            let (a, b) = span.split_once('-').expect("first-last");
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(total.parse::<usize>().unwrap(), len);
            assert!(a <= b && b < len, "{cr} for {len} bytes");
            assert_eq!(length, Some(b - a + 1), "{cr}");
            if !head {
                assert_eq!(got, &body[a..=b], "{cr}");
            }
        }
        416 => {
            assert!(sent[0], "416 without a Range");
            assert_eq!(
                rec.header("content-range"),
                Some(format!("bytes */{len}").as_str())
            );
            assert!(len == 0 || !contains_file_bytes(got, &body));
        }
        304 => {
            assert!(sent[2] || sent[3], "304 without a condition");
            assert!(got.is_empty());
        }
        other => panic!("{other} for {target}"),
    }
});

/// Whether an error body could be file content (it is a short plain-text page).
fn contains_file_bytes(got: &[u8], body: &[u8]) -> bool {
    !got.is_empty() && body.windows(got.len()).any(|w| w == got)
}
