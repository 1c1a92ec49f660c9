//! Interop: Python's `h2` package (PyPI) as the client of our server role, purely through
//! byte exchange with tests/py/h2_proto_client.py over its stdin/stdout (length-prefixed
//! messages in lockstep). Covers a 1-byte initial window, trailers both ways, RST_STREAM
//! mid-body, 100 concurrent streams and SETTINGS changes mid-connection.
//!
//! Needs `python3 -m pip install h2==4.*` (see ci-h2proto.sh). Without it the test fails
//! under `CI=true` and prints a loud SKIP otherwise.
mod h2_proto_support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use h2_proto_support::EchoApp;
use spindle::h2::proto::{Config, Connection};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/h2_proto_client.py");

fn python() -> Option<&'static str> {
    for py in ["python3", "python"] {
        let ok = Command::new(py)
            .args(["-c", "import h2.connection"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Some(py);
        }
    }
    let msg = "python3 with the `h2` module is required (python3 -m pip install h2==4.*; see ci-h2proto.sh)";
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("CI=true and {msg}");
    }
    eprintln!(
        "\n{0}\n!!! SKIP h2_proto_python: {msg}\n{0}\n",
        "!".repeat(78)
    );
    None
}

fn scenario(name: &str, cfg: Config) {
    let Some(py) = python() else { return };
    let mut child = Command::new(py)
        .arg(SCRIPT)
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python");
    let mut to_py = child.stdin.take().unwrap();
    let mut from_py = child.stdout.take().unwrap();
    let mut server = Connection::server(cfg, Instant::now());
    let mut app = EchoApp::default();
    let mut pending = Vec::new();
    let mut ok = false;
    loop {
        let mut hdr = [0u8; 4];
        if from_py.read_exact(&mut hdr).is_err() {
            break;
        }
        let n = u32::from_be_bytes(hdr);
        if n == u32::MAX {
            ok = true;
            break;
        }
        let mut msg = vec![0; n as usize];
        from_py.read_exact(&mut msg).unwrap();
        pending.extend_from_slice(&msg);
        loop {
            let used = server
                .recv(&pending)
                .unwrap_or_else(|e| panic!("{name}: server connection error: {e}"));
            pending.drain(..used);
            app.handle(&mut server);
            if used == 0 || pending.is_empty() {
                break;
            }
        }
        let out = server.take_output();
        to_py.write_all(&(out.len() as u32).to_be_bytes()).unwrap();
        to_py.write_all(&out).unwrap();
        to_py.flush().unwrap();
    }
    drop(to_py);
    let status = child.wait().unwrap();
    assert!(
        ok && status.success(),
        "scenario {name}: python client failed ({status})"
    );
}

#[test]
fn python_h2_one_byte_window() {
    scenario(
        "window1",
        Config {
            initial_stream_window: 1,
            ..Config::default()
        },
    );
}

#[test]
fn python_h2_trailers_both_ways() {
    scenario("trailers", Config::default());
}

#[test]
fn python_h2_rst_stream_mid_body() {
    scenario("reset", Config::default());
}

#[test]
fn python_h2_100_concurrent_streams() {
    scenario(
        "concurrent",
        Config {
            max_concurrent_streams: 100,
            ..Config::default()
        },
    );
}

#[test]
fn python_h2_settings_changes_mid_connection() {
    scenario("settings", Config::default());
}
