//! The HPACK static table (RFC 7541 Appendix A).

/// `(name, value)` for indices 1..=61 (index 0 of this array is index 1).
pub(crate) const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

use super::{Name, Pseudo, Value};
use http::{HeaderName, HeaderValue};

/// The static table as decoded fields, index 1 at position 0.
pub(crate) static STATIC_FIELDS: [(Name, Value); 61] = [
    (
        Name::Pseudo(Pseudo::Authority),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Pseudo(Pseudo::Method),
        Value::Valid(HeaderValue::from_static("GET")),
    ),
    (
        Name::Pseudo(Pseudo::Method),
        Value::Valid(HeaderValue::from_static("POST")),
    ),
    (
        Name::Pseudo(Pseudo::Path),
        Value::Valid(HeaderValue::from_static("/")),
    ),
    (
        Name::Pseudo(Pseudo::Path),
        Value::Valid(HeaderValue::from_static("/index.html")),
    ),
    (
        Name::Pseudo(Pseudo::Scheme),
        Value::Valid(HeaderValue::from_static("http")),
    ),
    (
        Name::Pseudo(Pseudo::Scheme),
        Value::Valid(HeaderValue::from_static("https")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("200")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("204")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("206")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("304")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("400")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("404")),
    ),
    (
        Name::Pseudo(Pseudo::Status),
        Value::Valid(HeaderValue::from_static("500")),
    ),
    (
        Name::Header(HeaderName::from_static("accept-charset")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("accept-encoding")),
        Value::Valid(HeaderValue::from_static("gzip, deflate")),
    ),
    (
        Name::Header(HeaderName::from_static("accept-language")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("accept-ranges")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("accept")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("access-control-allow-origin")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("age")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("allow")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("authorization")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("cache-control")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-disposition")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-encoding")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-language")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-length")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-location")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-range")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("content-type")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("cookie")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("date")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("etag")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("expect")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("expires")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("from")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("host")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("if-match")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("if-modified-since")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("if-none-match")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("if-range")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("if-unmodified-since")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("last-modified")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("link")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("location")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("max-forwards")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("proxy-authenticate")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("proxy-authorization")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("range")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("referer")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("refresh")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("retry-after")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("server")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("set-cookie")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("strict-transport-security")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("transfer-encoding")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("user-agent")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("vary")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("via")),
        Value::Valid(HeaderValue::from_static("")),
    ),
    (
        Name::Header(HeaderName::from_static("www-authenticate")),
        Value::Valid(HeaderValue::from_static("")),
    ),
];

/// The range of static indices `first..=last` whose name is `name`.
#[inline]
pub(crate) fn name_range(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name {
        b":authority" => (1, 1),
        b":method" => (2, 3),
        b":path" => (4, 5),
        b":scheme" => (6, 7),
        b":status" => (8, 14),
        b"accept-charset" => (15, 15),
        b"accept-encoding" => (16, 16),
        b"accept-language" => (17, 17),
        b"accept-ranges" => (18, 18),
        b"accept" => (19, 19),
        b"access-control-allow-origin" => (20, 20),
        b"age" => (21, 21),
        b"allow" => (22, 22),
        b"authorization" => (23, 23),
        b"cache-control" => (24, 24),
        b"content-disposition" => (25, 25),
        b"content-encoding" => (26, 26),
        b"content-language" => (27, 27),
        b"content-length" => (28, 28),
        b"content-location" => (29, 29),
        b"content-range" => (30, 30),
        b"content-type" => (31, 31),
        b"cookie" => (32, 32),
        b"date" => (33, 33),
        b"etag" => (34, 34),
        b"expect" => (35, 35),
        b"expires" => (36, 36),
        b"from" => (37, 37),
        b"host" => (38, 38),
        b"if-match" => (39, 39),
        b"if-modified-since" => (40, 40),
        b"if-none-match" => (41, 41),
        b"if-range" => (42, 42),
        b"if-unmodified-since" => (43, 43),
        b"last-modified" => (44, 44),
        b"link" => (45, 45),
        b"location" => (46, 46),
        b"max-forwards" => (47, 47),
        b"proxy-authenticate" => (48, 48),
        b"proxy-authorization" => (49, 49),
        b"range" => (50, 50),
        b"referer" => (51, 51),
        b"refresh" => (52, 52),
        b"retry-after" => (53, 53),
        b"server" => (54, 54),
        b"set-cookie" => (55, 55),
        b"strict-transport-security" => (56, 56),
        b"transfer-encoding" => (57, 57),
        b"user-agent" => (58, 58),
        b"vary" => (59, 59),
        b"via" => (60, 60),
        b"www-authenticate" => (61, 61),
        _ => return None,
    })
}
