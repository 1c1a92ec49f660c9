//! The HPACK decoder (RFC 7541 §3, §6).
use std::collections::VecDeque;
use std::fmt;

use super::huffman::{self, HuffmanError};
use super::static_table::STATIC_FIELDS;
use super::{Field, Name, Value, DEFAULT_TABLE_SIZE, ENTRY_OVERHEAD};

/// Default bound on the decoded header list size (name + value + 32 per field): 64 KiB.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 64 * 1024;

/// Default bound on one decoded name or value: 16 KiB.
pub const DEFAULT_MAX_STRING_LEN: usize = 16 * 1024;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecoderError {
    /// An index of 0 or beyond the static and dynamic tables (§2.3.3).
    InvalidIndex,
    /// An integer larger than 2^32-1 or longer than 5 continuation bytes (§5.1).
    IntegerOverflow,
    /// The block ends in the middle of a representation.
    Truncated,
    /// A Huffman string containing EOS, or with padding longer than 7 bits or not all ones
    /// (§5.2).
    InvalidHuffman,
    /// A dynamic table size update after the first field of a block (§4.2).
    SizeUpdateNotFirst,
    /// A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE limit (§6.3).
    SizeUpdateTooLarge,
    /// The block did not start with the size update required after the local
    /// SETTINGS_HEADER_TABLE_SIZE was lowered (§4.2).
    SizeUpdateRequired,
    /// The decoded header list exceeds the size limit. The whole block was still processed,
    /// so the compression context is intact: this is not a COMPRESSION_ERROR.
    HeaderListTooLarge,
    /// A single name or value exceeds the string limit. As for `HeaderListTooLarge`, the
    /// compression context is intact.
    StringTooLong,
}

impl DecoderError {
    /// True when the compression context is lost: a connection error of type
    /// COMPRESSION_ERROR. False for the two limit errors, after which the connection can go
    /// on (the request is refused, e.g. with 431 or RST_STREAM).
    pub fn is_compression_error(self) -> bool {
        !matches!(
            self,
            DecoderError::HeaderListTooLarge | DecoderError::StringTooLong
        )
    }
}

impl fmt::Display for DecoderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for DecoderError {}

struct Entry {
    name: Name,
    value: Value,
}

impl Entry {
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The decoder's dynamic table; index 0 is the newest entry.
struct Table {
    entries: VecDeque<Entry>,
    size: usize,
    capacity: usize,
}

impl Table {
    fn set_capacity(&mut self, cap: usize) {
        self.capacity = cap;
        self.evict_to(cap);
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

    fn insert(&mut self, name: Name, value: Value) {
        let e = Entry { name, value };
        let sz = e.size();
        if sz > self.capacity {
            // §4.4: an entry larger than the table empties it and is not added.
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.capacity - sz);
        self.size += sz;
        self.entries.push_front(e);
    }
}

/// An HPACK decoder: one per connection, fed every header block in order.
///
/// ```
/// use spindle::h2::hpack::Decoder;
/// // RFC 7541 C.2.4: an indexed field, :method GET.
/// let fields = Decoder::new().decode_to_vec(&[0x82]).unwrap();
/// assert_eq!(fields[0].name.as_bytes(), b":method");
/// assert_eq!(fields[0].value.as_bytes(), b"GET");
/// ```
pub struct Decoder {
    table: Table,
    max_table_size: usize,
    update_required: bool,
    max_list_size: usize,
    max_string_len: usize,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("table_entries", &self.table.entries.len())
            .field("table_size", &self.table.size)
            .field("table_capacity", &self.table.capacity)
            .field("max_table_size", &self.max_table_size)
            .field("max_list_size", &self.max_list_size)
            .field("max_string_len", &self.max_string_len)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

/// A string literal located in the block, not yet decoded.
#[derive(Clone, Copy)]
struct RawStr<'a> {
    huffman: bool,
    bytes: &'a [u8],
}

/// Decode an integer with an `n`-bit prefix at `src[*pos]` (RFC 7541 §5.1).
#[inline]
pub(crate) fn decode_int(src: &[u8], pos: &mut usize, n: u32) -> Result<usize, DecoderError> {
    let mask = (1u32 << n) - 1;
    let first = *src.get(*pos).ok_or(DecoderError::Truncated)?;
    *pos += 1;
    let mut v = (first as u32 & mask) as u64;
    if v < mask as u64 {
        return Ok(v as usize);
    }
    let mut shift = 0u32;
    loop {
        let b = *src.get(*pos).ok_or(DecoderError::Truncated)?;
        *pos += 1;
        v += ((b & 0x7f) as u64) << shift;
        if v > u32::MAX as u64 {
            return Err(DecoderError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(v as usize);
        }
        shift += 7;
        if shift > 28 {
            return Err(DecoderError::IntegerOverflow);
        }
    }
}

#[inline]
fn read_str<'a>(src: &'a [u8], pos: &mut usize) -> Result<RawStr<'a>, DecoderError> {
    let huffman = src.get(*pos).ok_or(DecoderError::Truncated)? & 0x80 != 0;
    let len = decode_int(src, pos, 7)?;
    // The length is checked against the bytes actually present before anything is done
    // with it: no allocation is sized from a peer's number.
    let end = pos.checked_add(len).ok_or(DecoderError::Truncated)?;
    let bytes = src.get(*pos..end).ok_or(DecoderError::Truncated)?;
    *pos = end;
    Ok(RawStr { huffman, bytes })
}

/// Decode a string into a fresh vector of at most `max` bytes; `Ok(None)` if longer.
#[inline]
fn materialize(s: RawStr<'_>, max: usize) -> Result<Option<Vec<u8>>, DecoderError> {
    if !s.huffman {
        if s.bytes.len() > max {
            return Ok(None);
        }
        return Ok(Some(s.bytes.to_vec()));
    }
    // Huffman codes are at least 5 bits long, so the output is at most 8/5 of the input.
    let cap = (s.bytes.len() * 8 / 5 + 1).min(max);
    let mut v = Vec::with_capacity(cap);
    match huffman::decode(s.bytes, &mut v, max) {
        Ok(()) => Ok(Some(v)),
        Err(HuffmanError::TooLong) => Ok(None),
        Err(HuffmanError::Invalid) => Err(DecoderError::InvalidHuffman),
    }
}

impl Decoder {
    /// A decoder with the default 4096-byte table limit and default list and string limits.
    pub fn new() -> Decoder {
        Decoder::with_max_table_size(DEFAULT_TABLE_SIZE)
    }

    /// A decoder whose dynamic table may grow to `max` bytes (the SETTINGS_HEADER_TABLE_SIZE
    /// this endpoint advertises).
    pub fn with_max_table_size(max: usize) -> Decoder {
        Decoder {
            table: Table {
                entries: VecDeque::new(),
                size: 0,
                capacity: max,
            },
            max_table_size: max,
            update_required: false,
            max_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            max_string_len: DEFAULT_MAX_STRING_LEN,
        }
    }

    /// Change the limit the peer's encoder must respect (our SETTINGS_HEADER_TABLE_SIZE, once
    /// acknowledged). When lowered below the current table size, the next block must begin
    /// with a size update (RFC 7541 §4.2).
    pub fn set_max_table_size(&mut self, max: usize) {
        if max < self.table.capacity {
            self.update_required = true;
        }
        self.max_table_size = max;
    }

    /// Bound the decoded header list size (our SETTINGS_MAX_HEADER_LIST_SIZE).
    pub fn set_max_header_list_size(&mut self, max: usize) {
        self.max_list_size = max;
    }

    /// Bound the length of any single decoded name or value.
    pub fn set_max_string_len(&mut self, max: usize) {
        self.max_string_len = max;
    }

    /// The current size of the dynamic table (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.table.size
    }

    /// The number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.entries.len()
    }

    /// Dynamic table entry `i` (0 = newest) as `(name, value)` bytes.
    pub fn table_entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.table
            .entries
            .get(i)
            .map(|e| (e.name.as_bytes(), e.value.as_bytes()))
    }

    fn lookup(&self, idx: usize) -> Result<(&Name, &Value), DecoderError> {
        if idx == 0 {
            return Err(DecoderError::InvalidIndex);
        }
        if let Some((n, v)) = STATIC_FIELDS.get(idx - 1) {
            return Ok((n, v));
        }
        self.table
            .entries
            .get(idx - 1 - STATIC_FIELDS.len())
            .map(|e| (&e.name, &e.value))
            .ok_or(DecoderError::InvalidIndex)
    }

    /// Decode a complete header block, calling `emit` for every field in order.
    ///
    /// On [`DecoderError::HeaderListTooLarge`] or [`DecoderError::StringTooLong`] the block
    /// was still fully processed (the table stays in step with the peer's encoder) but the
    /// fields after the limit were not emitted: discard what was emitted. On any other error
    /// the compression context is lost and the connection must be closed with
    /// COMPRESSION_ERROR.
    pub fn decode<F: FnMut(Field)>(&mut self, src: &[u8], mut emit: F) -> Result<(), DecoderError> {
        if self.update_required && src.first().is_none_or(|b| b & 0xe0 != 0x20) {
            return Err(DecoderError::SizeUpdateRequired);
        }
        let mut pos = 0;
        let mut at_start = true;
        let mut list_size = 0usize;
        let mut over: Option<DecoderError> = None;
        while let Some(&b) = src.get(pos) {
            if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let idx = decode_int(src, &mut pos, 7)?;
                let (name, value) = self.lookup(idx)?;
                list_size = list_size.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
                if list_size > self.max_list_size && over.is_none() {
                    over = Some(DecoderError::HeaderListTooLarge);
                }
                if over.is_none() {
                    emit(Field {
                        name: name.clone(),
                        value: value.clone(),
                        never_indexed: false,
                    });
                }
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                if !at_start {
                    return Err(DecoderError::SizeUpdateNotFirst);
                }
                let size = decode_int(src, &mut pos, 5)?;
                if size > self.max_table_size {
                    return Err(DecoderError::SizeUpdateTooLarge);
                }
                self.table.set_capacity(size);
                self.update_required = false;
                continue;
            } else {
                let (prefix, indexing, never) = if b & 0xc0 == 0x40 {
                    (6, true, false)
                } else {
                    (4, false, b & 0x10 != 0)
                };
                let idx = decode_int(src, &mut pos, prefix)?;
                let name_ref = if idx == 0 {
                    Some(read_str(src, &mut pos)?)
                } else {
                    // Validate the index now; the name is cloned below if needed.
                    self.lookup(idx)?;
                    None
                };
                let value_ref = read_str(src, &mut pos)?;
                let emitting = over.is_none();
                if !emitting && !indexing {
                    // Past a limit and not needed for the table: skip without decoding.
                    at_start = false;
                    continue;
                }
                let limit = match (emitting, indexing) {
                    (true, true) => self.max_string_len.max(self.table.capacity),
                    (true, false) => self.max_string_len,
                    _ => self.table.capacity,
                };
                let name = match name_ref {
                    None => Some(self.lookup(idx)?.0.clone()),
                    Some(raw) => materialize(raw, limit)?.map(|v| Name::from_bytes(&v)),
                };
                let value = match name {
                    Some(_) => materialize(value_ref, limit)?.map(Value::from_vec),
                    None => None,
                };
                let (name, value) = match (name, value) {
                    (Some(n), Some(v)) => (n, v),
                    _ => {
                        // Longer than any table entry can be: inserting it would empty the
                        // table (§4.4), so do exactly that without building it.
                        if indexing {
                            self.table.entries.clear();
                            self.table.size = 0;
                        }
                        over.get_or_insert(DecoderError::StringTooLong);
                        at_start = false;
                        continue;
                    }
                };
                if emitting
                    && (name.len() > self.max_string_len || value.len() > self.max_string_len)
                {
                    over = Some(DecoderError::StringTooLong);
                }
                list_size = list_size.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
                if list_size > self.max_list_size && over.is_none() {
                    over = Some(DecoderError::HeaderListTooLarge);
                }
                let emit_now = over.is_none();
                match (indexing, emit_now) {
                    (true, true) => {
                        self.table.insert(name.clone(), value.clone());
                        emit(Field {
                            name,
                            value,
                            never_indexed: false,
                        });
                    }
                    (true, false) => self.table.insert(name, value),
                    (false, true) => emit(Field {
                        name,
                        value,
                        never_indexed: never,
                    }),
                    (false, false) => {}
                }
            }
            at_start = false;
        }
        match over {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Decode a complete header block into a vector of fields.
    pub fn decode_to_vec(&mut self, src: &[u8]) -> Result<Vec<Field>, DecoderError> {
        let mut out = Vec::with_capacity(16);
        self.decode(src, |f| out.push(f))?;
        Ok(out)
    }
}
