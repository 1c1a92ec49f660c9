//! The HPACK encoder (RFC 7541 §6).
use std::collections::VecDeque;

use super::huffman;
use super::static_table::{name_range, STATIC_TABLE};
use super::{DEFAULT_TABLE_SIZE, ENTRY_OVERHEAD};

/// When string literals are Huffman-coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuffmanPolicy {
    /// Never.
    Never,
    /// Always.
    Always,
    /// When the Huffman form is strictly shorter (the default).
    Shorter,
}

/// Which fields the encoder adds to the dynamic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexPolicy {
    /// The default: never index `authorization`, `proxy-authorization`, `cookie` and
    /// `set-cookie` (sent as never-indexed literals), and do not index fields whose values
    /// rarely repeat (`:path`, `content-length`, `etag`, `if-none-match`,
    /// `if-modified-since`, `last-modified`, `location`, `age`, `link`).
    Default,
    /// Index every field that is not marked sensitive (as the RFC 7541 Appendix C examples do).
    All,
    /// Never add anything to the dynamic table.
    None,
}

/// How to represent one field, for [`Encoder::encode_field_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Representation {
    /// Literal with incremental indexing (§6.2.1), or an indexed field on a full match.
    IncrementalIndexing,
    /// Literal without indexing (§6.2.2), or an indexed field on a full match.
    WithoutIndexing,
    /// Literal never indexed (§6.2.3); also used on a full match.
    NeverIndexed,
}

struct Entry {
    /// Name followed by value.
    buf: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.buf[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.buf[self.name_len..]
    }
    fn size(&self) -> usize {
        self.buf.len() + ENTRY_OVERHEAD
    }
}

/// An HPACK encoder: one per connection, producing every header block in order.
///
/// ```
/// use spindle::h2::hpack::{Decoder, Encoder};
/// let mut enc = Encoder::new();
/// let mut dec = Decoder::new();
/// for _ in 0..2 {
///     let mut block = Vec::new();
///     enc.encode([(&b"x-trace"[..], &b"abc"[..], false)], &mut block);
///     let f = dec.decode_to_vec(&block).unwrap();
///     assert_eq!(f[0].value.as_bytes(), b"abc");
/// }
/// // The second block referenced the dynamic table: one byte.
/// let mut block = Vec::new();
/// enc.encode([(&b"x-trace"[..], &b"abc"[..], false)], &mut block);
/// assert_eq!(block, [0xbe]);
/// ```
pub struct Encoder {
    entries: VecDeque<Entry>,
    size: usize,
    capacity: usize,
    /// The most this encoder will use, whatever the peer allows.
    preferred_max: usize,
    /// The peer's SETTINGS_HEADER_TABLE_SIZE: the most it allows.
    peer_max: usize,
    /// Size updates to announce at the start of the next block: (smallest, final).
    pending: Option<(usize, usize)>,
    huffman: HuffmanPolicy,
    policy: IndexPolicy,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("table_entries", &self.entries.len())
            .field("table_size", &self.size)
            .field("capacity", &self.capacity)
            .field("huffman", &self.huffman)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

/// Append an integer with an `n`-bit prefix; `first` holds the representation bits.
#[inline]
pub(crate) fn encode_int(dst: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        dst.push(first | v as u8);
        return;
    }
    dst.push(first | mask as u8);
    v -= mask;
    while v >= 128 {
        dst.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

impl Encoder {
    /// An encoder with the default 4096-byte table, Huffman when shorter and the default
    /// indexing policy.
    pub fn new() -> Encoder {
        Encoder {
            entries: VecDeque::new(),
            size: 0,
            capacity: DEFAULT_TABLE_SIZE,
            preferred_max: DEFAULT_TABLE_SIZE,
            peer_max: DEFAULT_TABLE_SIZE,
            pending: None,
            huffman: HuffmanPolicy::Shorter,
            policy: IndexPolicy::Default,
        }
    }

    /// An encoder whose table starts at `max` bytes, for a peer whose
    /// SETTINGS_HEADER_TABLE_SIZE is known to be `max` before the first block (no size
    /// update is sent for it).
    pub fn with_max_table_size(max: usize) -> Encoder {
        Encoder {
            capacity: max,
            preferred_max: max,
            peer_max: max,
            ..Encoder::new()
        }
    }

    /// Set when string literals are Huffman-coded.
    pub fn set_huffman(&mut self, p: HuffmanPolicy) {
        self.huffman = p;
    }

    /// Set which fields are added to the dynamic table.
    pub fn set_index_policy(&mut self, p: IndexPolicy) {
        self.policy = p;
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: use `min(max, preferred)` bytes from
    /// now on, announcing it at the start of the next block (RFC 7541 §4.2, §6.3).
    pub fn set_max_table_size(&mut self, max: usize) {
        self.peer_max = max;
        self.retarget(max.min(self.preferred_max));
    }

    /// Cap how much table this encoder uses whatever the peer allows (default 4096). A
    /// cap below the size in use is announced at the start of the next block; never more
    /// than the peer allows (RFC 7541 §6.3).
    pub fn set_preferred_max_table_size(&mut self, max: usize) {
        self.preferred_max = max;
        let new = max.min(self.peer_max);
        let target = self.pending.map_or(self.capacity, |(_, last)| last);
        if new < target {
            self.retarget(new);
        }
    }

    /// Announce `new` as the table size at the next block, after the smallest size the
    /// table went through meanwhile (RFC 7541 §4.2).
    fn retarget(&mut self, new: usize) {
        let smallest = match self.pending {
            Some((s, _)) => s.min(new),
            None => new.min(self.capacity),
        };
        self.pending = Some((smallest, new));
    }

    /// The current dynamic table size (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Dynamic table entry `i` (0 = newest) as `(name, value)`.
    pub fn table_entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(|e| (e.name(), e.value()))
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size(),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Emit pending size updates. Called by [`Encoder::encode`]; call it yourself at the
    /// start of a block built with [`Encoder::encode_field_as`].
    pub fn begin_block(&mut self, dst: &mut Vec<u8>) {
        if let Some((smallest, last)) = self.pending.take() {
            if smallest < last {
                encode_int(dst, 0x20, 5, smallest);
                self.capacity = smallest;
                self.evict_to(smallest);
            }
            encode_int(dst, 0x20, 5, last);
            self.capacity = last;
            self.evict_to(last);
        }
    }

    /// Encode a whole header block: `(name, value, sensitive)` triples, pseudo-headers
    /// first. Names must already be lowercase. A sensitive field is sent never-indexed.
    pub fn encode<'a, I>(&mut self, fields: I, dst: &mut Vec<u8>)
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
    {
        self.begin_block(dst);
        for (name, value, sensitive) in fields {
            self.encode_field(name, value, sensitive, dst);
        }
    }

    /// Encode one field following the indexing policy.
    #[inline]
    pub fn encode_field(&mut self, name: &[u8], value: &[u8], sensitive: bool, dst: &mut Vec<u8>) {
        let rep = if sensitive || (self.policy == IndexPolicy::Default && never_index(name)) {
            Representation::NeverIndexed
        } else if self.policy == IndexPolicy::None
            || (self.policy == IndexPolicy::Default && skip_index(name))
        {
            Representation::WithoutIndexing
        } else {
            Representation::IncrementalIndexing
        };
        self.encode_field_as(name, value, rep, dst);
    }

    /// Encode one field with an explicit representation. A field that fully matches a
    /// table entry is sent as an index unless `rep` is `NeverIndexed`.
    pub fn encode_field_as(
        &mut self,
        name: &[u8],
        value: &[u8],
        rep: Representation,
        dst: &mut Vec<u8>,
    ) {
        let (full, name_idx) = self.find(name, value);
        if rep != Representation::NeverIndexed {
            if let Some(i) = full {
                encode_int(dst, 0x80, 7, i);
                return;
            }
        }
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        let (first, prefix) = match rep {
            Representation::IncrementalIndexing if size <= self.capacity => (0x40, 6),
            Representation::NeverIndexed => (0x10, 4),
            _ => (0x00, 4),
        };
        match name_idx {
            Some(i) => encode_int(dst, first, prefix, i),
            None => {
                dst.push(first);
                self.encode_str(name, dst);
            }
        }
        self.encode_str(value, dst);
        if first == 0x40 {
            self.evict_to(self.capacity - size);
            let mut buf = Vec::with_capacity(name.len() + value.len());
            buf.extend_from_slice(name);
            buf.extend_from_slice(value);
            self.entries.push_front(Entry {
                buf: buf.into_boxed_slice(),
                name_len: name.len(),
            });
            self.size += size;
        }
    }

    /// Find a full match and a name match: static table first, then dynamic.
    #[inline]
    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_idx = None;
        if let Some((first, last)) = name_range(name) {
            for i in first..=last {
                if STATIC_TABLE[i - 1].1.as_bytes() == value {
                    return (Some(i), Some(first));
                }
            }
            name_idx = Some(first);
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.name_len == name.len() && e.name() == name {
                if e.value() == value {
                    return (Some(i + 1 + STATIC_TABLE.len()), name_idx);
                }
                if name_idx.is_none() {
                    name_idx = Some(i + 1 + STATIC_TABLE.len());
                }
            }
        }
        (None, name_idx)
    }

    #[inline]
    fn encode_str(&self, s: &[u8], dst: &mut Vec<u8>) {
        let huff = match self.huffman {
            HuffmanPolicy::Never => None,
            HuffmanPolicy::Always => Some(huffman::encoded_len(s)),
            HuffmanPolicy::Shorter => Some(huffman::encoded_len(s)).filter(|&n| n < s.len()),
        };
        match huff {
            Some(n) => {
                encode_int(dst, 0x80, 7, n);
                huffman::encode(s, dst);
            }
            None => {
                encode_int(dst, 0x00, 7, s.len());
                dst.extend_from_slice(s);
            }
        }
    }
}

/// Fields whose values are secrets: never indexed by default.
fn never_index(name: &[u8]) -> bool {
    matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

/// Fields whose values rarely repeat: not worth a table entry.
fn skip_index(name: &[u8]) -> bool {
    matches!(
        name,
        b":path"
            | b"content-length"
            | b"etag"
            | b"if-none-match"
            | b"if-modified-since"
            | b"last-modified"
            | b"location"
            | b"age"
            | b"link"
    )
}
