//! The HTTP/1 server driven by a real client: curl.
mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::*;
use spindle::server::{Request, Response};

fn echo(mut req: Request, res: Response) {
    let mut body = Vec::new();
    req.read_to_end(&mut body).unwrap();
    let mut res = res.start().unwrap();
    res.write_all(&body).unwrap();
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_reuses_the_connection() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(|req: Request, res: Response| {
        res.send(format!("path={}\n", req.path()).as_bytes()).ok();
    });
    let a = format!("http://{}/one", server.local_addr());
    let b = format!("http://{}/two", server.local_addr());
    let (stdout, stderr) = curl(&["-v", &a, &b]);
    assert_eq!(stdout, "path=/one\npath=/two\n");
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
}

#[test]
fn curl_chunked_upload_and_download() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(echo);
    let dir = std::env::temp_dir().join(format!("spindle-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::File::create(&file)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let out_file = dir.join("download.bin");
    let url = format!("http://{}/echo", server.local_addr());
    let (_, stderr) = curl(&[
        "-v",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        "-o",
        out_file.to_str().unwrap(),
        &url,
    ]);
    assert!(stderr.contains("transfer-encoding: chunked"), "{stderr}");
    let mut echoed = Vec::new();
    std::fs::File::open(&out_file)
        .unwrap()
        .read_to_end(&mut echoed)
        .unwrap();
    assert!(
        echoed == data,
        "echoed body differs ({} bytes)",
        echoed.len()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn curl_expect_continue_head_and_http10() {
    if !tool_available("curl") {
        return;
    }
    let server = serve(echo);
    let url = format!("http://{}/", server.local_addr());
    let (stdout, stderr) = curl(&["-v", "-H", "Expect: 100-continue", "-d", "hello", &url]);
    assert_eq!(stdout, "hello");
    assert!(stderr.contains("HTTP/1.1 100 Continue"), "{stderr}");

    let (stdout, _) = curl(&["-I", &url]);
    assert!(stdout.starts_with("HTTP/1.1 200 OK"), "{stdout}");

    let (stdout, stderr) = curl(&["-v", "-0", "-d", "old", &url]);
    assert_eq!(stdout, "old");
    assert!(stderr.contains("connection: close"), "{stderr}");
}
