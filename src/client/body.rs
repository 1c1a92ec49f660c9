//! Request bodies.
use std::fmt;
use std::io::Read;

/// A request body: nothing, bytes held in memory (which can be sent again, for a retry
/// or a 307/308 redirect), or any [`Read`] (sent once; chunked when its length is not
/// known).
///
/// ```
/// use spindle::client::Body;
/// let a: Body = "text".into();
/// let b: Body = vec![1u8, 2, 3].into();
/// let c = Body::reader(std::io::Cursor::new(b"streamed".to_vec()));
/// let d = Body::sized_reader(std::io::empty(), 0);
/// assert_eq!(a.len(), Some(4));
/// assert_eq!(b.len(), Some(3));
/// assert_eq!(c.len(), None);
/// assert_eq!(d.len(), Some(0));
/// ```
pub struct Body<'a> {
    pub(crate) kind: BodyKind<'a>,
}

pub(crate) enum BodyKind<'a> {
    Empty,
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    Reader(Box<dyn Read + 'a>, Option<u64>),
}

impl<'a> Body<'a> {
    /// No body.
    pub fn empty() -> Body<'static> {
        Body {
            kind: BodyKind::Empty,
        }
    }

    /// A body read from `reader` until its end, sent with the chunked coding.
    pub fn reader(reader: impl Read + 'a) -> Body<'a> {
        Body {
            kind: BodyKind::Reader(Box::new(reader), None),
        }
    }

    /// A body of exactly `len` bytes read from `reader`, sent with `Content-Length`.
    /// A reader that ends early makes the request fail.
    pub fn sized_reader(reader: impl Read + 'a, len: u64) -> Body<'a> {
        Body {
            kind: BodyKind::Reader(Box::new(reader), Some(len)),
        }
    }

    /// The length, when it is known up front.
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            BodyKind::Empty => Some(0),
            BodyKind::Bytes(b) => Some(b.len() as u64),
            BodyKind::Static(b) => Some(b.len() as u64),
            BodyKind::Reader(_, len) => *len,
        }
    }

    /// True for a body known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the body can be sent again (it is held in memory).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, BodyKind::Reader(..))
    }

    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            BodyKind::Empty => Some(&[]),
            BodyKind::Bytes(b) => Some(b),
            BodyKind::Static(b) => Some(b),
            BodyKind::Reader(..) => None,
        }
    }
}

impl Default for Body<'_> {
    fn default() -> Self {
        Body {
            kind: BodyKind::Empty,
        }
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Empty => f.write_str("Body::Empty"),
            BodyKind::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            BodyKind::Static(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            BodyKind::Reader(_, len) => write!(f, "Body::Reader(len: {len:?})"),
        }
    }
}

impl From<Vec<u8>> for Body<'_> {
    fn from(b: Vec<u8>) -> Self {
        Body {
            kind: BodyKind::Bytes(b),
        }
    }
}

impl From<String> for Body<'_> {
    fn from(s: String) -> Self {
        s.into_bytes().into()
    }
}

impl From<&'static str> for Body<'_> {
    fn from(s: &'static str) -> Self {
        Body {
            kind: BodyKind::Static(s.as_bytes()),
        }
    }
}

impl From<&'static [u8]> for Body<'_> {
    fn from(b: &'static [u8]) -> Self {
        Body {
            kind: BodyKind::Static(b),
        }
    }
}

impl<const N: usize> From<&'static [u8; N]> for Body<'_> {
    fn from(b: &'static [u8; N]) -> Self {
        Body {
            kind: BodyKind::Static(b),
        }
    }
}

impl From<()> for Body<'_> {
    fn from(_: ()) -> Self {
        Body::default()
    }
}
