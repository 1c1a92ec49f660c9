//! The low-level `client::conn` API over streams the caller opened.
use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;

use spindle::client::{conn, Body};
use spindle::http::Request;
use spindle::ErrorKind;

/// An in-memory stream: reads come from a script, one segment (one response) per
/// read at most, as from a server that answers each request after it arrives; writes
/// are recorded.
struct Memory {
    input: io::Cursor<Vec<u8>>,
    written: Vec<u8>,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input.get_ref()[self.input.position() as usize..];
        let segment = rest
            .windows(5)
            .skip(1)
            .position(|w| w == b"HTTP/")
            .map_or(rest.len(), |p| p + 1);
        let n = segment.min(buf.len());
        self.input.read(&mut buf[..n])
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn in_memory_keep_alive_sequence() {
    let script = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n\
HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    let memory = Memory {
        input: io::Cursor::new(script.to_vec()),
        written: Vec::new(),
    };
    let mut sender = conn::handshake(memory).unwrap();
    for expect in ["one", "two"] {
        let req = Request::get("http://example.com/x").body(()).unwrap();
        let res = sender.send_request(req).unwrap();
        let mut body = res.into_body();
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(text, expect);
        assert!(body.is_reusable());
        sender = body.into_sender().unwrap();
    }
    let req = Request::post("/upload")
        .header("host", "h")
        .body("data")
        .unwrap();
    let res = sender.send_request(req).unwrap();
    assert_eq!(res.status(), 204);
    let body = res.into_body();
    assert!(body.is_finished());
    let err = body.into_sender().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Closed,
        "Connection: close ends the connection"
    );
}

#[test]
fn request_encoding() {
    let memory = Memory {
        input: io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        written: Vec::new(),
    };
    let sender = conn::handshake(memory).unwrap();
    let req = Request::put("http://example.com:8080/p?q")
        .header("x-a", "1")
        .body(Body::reader(&b"abc"[..]))
        .unwrap();
    let res = sender.send_request(req).unwrap();
    let (memory, rest) = res.into_body().into_parts();
    assert!(rest.is_empty());
    assert_eq!(
        String::from_utf8(memory.written).unwrap(),
        "PUT /p?q HTTP/1.1\r\nhost: example.com:8080\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    );
}

/// Unix only: `std` has Unix domain sockets only there.
#[cfg(unix)]
#[test]
fn over_a_unix_socket() {
    let (client_end, mut server_end) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        for i in 0..2 {
            // One request head per read is enough for this tiny test.
            let n = server_end.read(&mut buf).unwrap();
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let body = format!("reply {i}");
            write!(
                server_end,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        seen
    });
    let mut sender = conn::handshake(client_end).unwrap();
    for i in 0..2 {
        let req = Request::get("/").header("host", "unix").body(()).unwrap();
        let mut body = sender.send_request(req).unwrap().into_body();
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("reply {i}"));
        sender = body.into_sender().unwrap();
    }
    let seen = server.join().unwrap();
    assert!(seen[1].starts_with("GET / HTTP/1.1\r\nhost: unix\r\n"));
}

#[test]
fn unfinished_body_cannot_give_back_the_connection() {
    let memory = Memory {
        input: io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345".to_vec()),
        written: Vec::new(),
    };
    let sender = conn::handshake(memory).unwrap();
    let res = sender
        .send_request(Request::get("/").body(()).unwrap())
        .unwrap();
    let mut body = res.into_body();
    let mut five = [0u8; 5];
    body.read_exact(&mut five).unwrap();
    assert_eq!(body.remaining_length(), Some(5));
    let err = body.read(&mut five).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(body.into_sender().unwrap_err().kind(), ErrorKind::Usage);
}
