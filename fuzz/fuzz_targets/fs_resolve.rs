//! Arbitrary request paths against the file server over a temporary root (made once per
//! process) that has a secret file next to it and symlinks leading out of it:
//!
//! - white box: a path `FileServer` resolves is under the root with only plain names
//!   after it, and once confined (symlinks followed) it is still under the canonical
//!   root;
//! - black box, through `TestRequest`, for a bare `FileServer` and one under
//!   `Router` + `StripPrefix`: no answer carries the secret's bytes, and every redirect
//!   stays on this origin (no `//host`, `/\host` or scheme).
#![no_main]
use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spindle::fuzz_api::handlers::{fs_confine, fs_resolve, same_origin_location};
use spindle::handlers::testing::TestRequest;
use spindle::handlers::{FileServer, Router, StripPrefix};

const SECRET: &[u8] = b"FUZZ-SECRET-7f3a9c";

struct Fixture {
    root: PathBuf,
    fs: FileServer,
    routed: Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spindle-fuzz-fs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        for d in ["sub/deeper", "evil.com", "a:b", "%2e%2e"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        std::fs::write(root.join("a.txt"), b"public a").unwrap();
        std::fs::write(root.join("sub/index.html"), b"<h1>sub</h1>").unwrap();
        std::fs::write(root.join("sub/deeper/b.txt"), b"public b").unwrap();
        std::fs::write(root.join("evil.com/index.html"), b"evil").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(dir.join("secret.txt"), root.join("escape.txt")).unwrap();
            symlink(&dir, root.join("up")).unwrap();
            symlink(root.join("a.txt"), root.join("inside.txt")).unwrap();
        }
        let fs = FileServer::new(&root).unwrap();
        let routed = Router::builder()
            .route(
                "GET /static/{path...}",
                StripPrefix::new("/static", fs.clone()),
            )
            .fallback(fs.clone())
            .build()
            .unwrap();
        Fixture {
            root: fs.root().to_owned(),
            fs,
            routed,
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn black_box(f: &Fixture, target: &str) {
    let Ok(uri) = target.parse::<spindle::http::Uri>() else {
        return;
    };
    if uri.scheme().is_some() || uri.authority().is_some() {
        return;
    }
    for method in ["GET", "HEAD"] {
        for rec in [
            TestRequest::new(method, target).run(&f.fs),
            TestRequest::new(method, target).run(&f.routed),
        ] {
            assert!(!contains(rec.body(), SECRET), "{target} leaked the secret");
            let status = rec.status().as_u16();
            assert!(
                matches!(status, 200 | 301 | 400 | 403 | 404),
                "{method} {target}: {status}"
            );
            if status == 301 {
                let location = rec.header("location").expect("a redirect has a Location");
                assert!(
                    same_origin_location(location)
                        && !location.starts_with("//")
                        && !location.contains('\\'),
                    "{target} → {location}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let path = String::from_utf8_lossy(data);
    if let Ok(resolved) = fs_resolve(&f.fs, &path) {
        let rest = resolved
            .strip_prefix(&f.root)
            .unwrap_or_else(|_| panic!("{path:?} resolved outside the root: {resolved:?}"));
        assert!(
            rest.components().all(|c| matches!(c, Component::Normal(_))),
            "{path:?} resolved to {resolved:?}"
        );
        if let Ok(real) = fs_confine(&f.fs, &resolved) {
            assert!(
                real.starts_with(&f.root),
                "{path:?} confined to {real:?}, outside the root"
            );
            let canonical = real.canonicalize().unwrap_or(real.clone());
            assert!(
                canonical.starts_with(&f.root),
                "{path:?} leads to {canonical:?}"
            );
        }
    }
    black_box(f, &path);
    // The same path under the StripPrefix route.
    if path.starts_with('/') {
        black_box(f, &format!("/static{path}"));
    }
});
