//! Encoding HTTP/1 message heads into a caller's buffer.
use http::header::HeaderMap;
use http::{StatusCode, Version};

/// Appends the status line, e.g. `HTTP/1.1 404 Not Found\r\n`.
pub fn write_status_line(out: &mut Vec<u8>, version: Version, status: StatusCode) {
    out.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one field line.
pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends every field of `headers`. `HeaderMap` already forbids CR, LF and NUL in values,
/// so nothing here can split the head.
pub fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        write_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Appends a decimal number.
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let mut out = Vec::new();
        write_status_line(&mut out, Version::HTTP_11, StatusCode::NOT_FOUND);
        write_status_line(&mut out, Version::HTTP_10, StatusCode::OK);
        write_status_line(
            &mut out,
            Version::HTTP_11,
            StatusCode::from_u16(599).unwrap(),
        );
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nHTTP/1.0 200 OK\r\nHTTP/1.1 599 \r\n"
        );
    }

    #[test]
    fn headers_and_numbers() {
        let mut out = Vec::new();
        let mut map = HeaderMap::new();
        map.insert("x-a", "1".parse().unwrap());
        map.append("x-a", "2".parse().unwrap());
        write_headers(&mut out, &map);
        write_decimal(&mut out, 0);
        write_decimal(&mut out, u64::MAX);
        assert_eq!(out, b"x-a: 1\r\nx-a: 2\r\n018446744073709551615");
    }
}
