//! HPACK header compression (RFC 7541).
//!
//! [`Decoder`] turns a complete header block into [`Field`]s, decoding names directly into
//! `http::HeaderName` (static-table names cost nothing) and values into
//! `http::HeaderValue`. It is bounded: a limit on the decoded header-list size and on the
//! length of a single string, both checked before the memory is spent, so a small block
//! that references a large table entry again and again (an "HPACK bomb") is refused
//! cheaply. [`Encoder`] uses the dynamic table, never indexes values marked sensitive or, by
//! default, `authorization`, `proxy-authorization`, `cookie` and `set-cookie`.
//!
//! ```
//! use spindle::h2::hpack::{Decoder, Encoder};
//! let mut enc = Encoder::new();
//! let mut block = Vec::new();
//! enc.encode(
//!     [(&b":method"[..], &b"GET"[..], false), (b"cookie", b"secret=1", false)],
//!     &mut block,
//! );
//! let fields = Decoder::new().decode_to_vec(&block).unwrap();
//! assert_eq!(fields[0].name.as_bytes(), b":method");
//! assert_eq!(fields[1].value.as_bytes(), b"secret=1");
//! assert!(fields[1].never_indexed);
//! ```

mod decoder;
mod encoder;
mod huffman;
mod huffman_codes;
mod static_table;
#[cfg(test)]
mod tests;

pub use decoder::{Decoder, DecoderError, DEFAULT_MAX_HEADER_LIST_SIZE, DEFAULT_MAX_STRING_LEN};
pub use encoder::{Encoder, HuffmanPolicy, IndexPolicy, Representation};
pub use huffman::{encode as huffman_encode, encoded_len as huffman_encoded_len};

use http::{HeaderName, HeaderValue};

/// The default SETTINGS_HEADER_TABLE_SIZE (4096).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// The per-entry overhead of RFC 7541 §4.1 (and of RFC 9113 §6.5.2 list size).
pub const ENTRY_OVERHEAD: usize = 32;

/// A pseudo-header field name (RFC 9113 §8.3, RFC 8441).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pseudo {
    /// `:method`
    Method,
    /// `:scheme`
    Scheme,
    /// `:authority`
    Authority,
    /// `:path`
    Path,
    /// `:status`
    Status,
    /// `:protocol` (extended CONNECT, RFC 8441)
    Protocol,
}

impl Pseudo {
    /// The name with its colon, e.g. `":method"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pseudo::Method => ":method",
            Pseudo::Scheme => ":scheme",
            Pseudo::Authority => ":authority",
            Pseudo::Path => ":path",
            Pseudo::Status => ":status",
            Pseudo::Protocol => ":protocol",
        }
    }

    /// Recognise a pseudo-header name.
    pub fn from_bytes(b: &[u8]) -> Option<Pseudo> {
        Some(match b {
            b":method" => Pseudo::Method,
            b":scheme" => Pseudo::Scheme,
            b":authority" => Pseudo::Authority,
            b":path" => Pseudo::Path,
            b":status" => Pseudo::Status,
            b":protocol" => Pseudo::Protocol,
            _ => return None,
        })
    }
}

/// A decoded field name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Name {
    /// A known pseudo-header.
    Pseudo(Pseudo),
    /// A valid, lowercase regular field name.
    Header(HeaderName),
    /// Anything else HPACK can carry but HTTP/2 does not allow as a name (uppercase,
    /// unknown pseudo-header, invalid characters, empty); kept as received.
    Other(Box<[u8]>),
}

impl Name {
    /// Classify raw name bytes.
    pub fn from_bytes(b: &[u8]) -> Name {
        if b.first() == Some(&b':') {
            return match Pseudo::from_bytes(b) {
                Some(p) => Name::Pseudo(p),
                None => Name::Other(b.into()),
            };
        }
        if b.iter().any(u8::is_ascii_uppercase) {
            return Name::Other(b.into());
        }
        match HeaderName::from_bytes(b) {
            Ok(h) => Name::Header(h),
            Err(_) => Name::Other(b.into()),
        }
    }

    /// The name as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Pseudo(p) => p.as_str().as_bytes(),
            Name::Header(h) => h.as_str().as_bytes(),
            Name::Other(b) => b,
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for the empty name (which is malformed in HTTP/2).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded field value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A value `http::HeaderValue` accepts (no control characters other than tab).
    Valid(HeaderValue),
    /// A value with other control characters (NUL, CR, LF, ...), kept as received; the
    /// HTTP/2 layer treats such a field as malformed.
    Invalid(Box<[u8]>),
}

impl Value {
    /// Take ownership of decoded bytes without copying when they form a valid value.
    pub fn from_vec(v: Vec<u8>) -> Value {
        if v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t') {
            match HeaderValue::try_from(v) {
                Ok(h) => Value::Valid(h),
                // Unreachable in practice: the bytes were checked above.
                Err(_) => Value::Invalid(Box::new([])),
            }
        } else {
            Value::Invalid(v.into_boxed_slice())
        }
    }

    /// The value as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Valid(h) => h.as_bytes(),
            Value::Invalid(b) => b,
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name.
    pub name: Name,
    /// The value.
    pub value: Value,
    /// True when the field was sent as "never indexed" (RFC 7541 §6.2.3): an intermediary
    /// must re-encode it the same way.
    pub never_indexed: bool,
}

impl Field {
    /// The size RFC 7541 §4.1 and RFC 9113 §6.5.2 count: name + value + 32.
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}
