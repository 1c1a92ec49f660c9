//! HPACK Huffman coding (RFC 7541 §5.2, Appendix B).
//!
//! Decoding is table-driven: a finite-state machine over the 256 internal nodes of the code
//! tree, consuming 4 bits per step. The table is built at compile time by a `const fn`.
use super::huffman_codes::CODES;

const EMIT: u32 = 1 << 16;
const ACCEPT: u32 = 1 << 17;
const FAIL: u32 = 1 << 18;

/// Transition table: `DECODE[state][nibble]` = next state (bits 0..8), symbol (8..16) and
/// the EMIT / ACCEPT / FAIL flags.
static DECODE: [[u32; 16]; 256] = build_decode_table();

const fn build_decode_table() -> [[u32; 16]; 256] {
    const UNSET: i32 = i32::MIN;
    let mut tree = [[UNSET; 2]; 256];
    let mut next = 1i32;
    let mut s = 0;
    while s < 257 {
        let (code, len) = CODES[s];
        let mut node = 0usize;
        let mut i = len as u32;
        while i > 1 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            if tree[node][bit] == UNSET {
                tree[node][bit] = next;
                next += 1;
            }
            node = tree[node][bit] as usize;
        }
        tree[node][(code & 1) as usize] = -(s as i32) - 1;
        s += 1;
    }
    // For each internal node: the length of its path from the root if that path is all
    // ones and at most 7 bits long (valid padding, RFC 7541 §5.2), else 255.
    let mut ones = [255u8; 256];
    ones[0] = 0;
    let mut n = 0;
    while n < 256 {
        let mut bit = 0;
        while bit < 2 {
            let child = tree[n][bit];
            if child >= 0 {
                ones[child as usize] = if bit == 1 && ones[n] < 7 {
                    ones[n] + 1
                } else {
                    255
                };
            }
            bit += 1;
        }
        n += 1;
    }
    let mut table = [[0u32; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nib = 0;
        while nib < 16 {
            let mut node = state;
            let mut flags = 0u32;
            let mut sym = 0u32;
            let mut i = 4;
            while i > 0 {
                i -= 1;
                let bit = (nib >> i) & 1;
                let child = tree[node][bit];
                if child < 0 {
                    let s = (-(child + 1)) as u32;
                    if s == 256 {
                        flags |= FAIL;
                        break;
                    }
                    flags |= EMIT;
                    sym = s;
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            if ones[node] != 255 {
                flags |= ACCEPT;
            }
            table[state][nib] = node as u32 | (sym << 8) | flags;
            nib += 1;
        }
        state += 1;
    }
    table
}

/// Why a Huffman string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// EOS, bad padding (longer than 7 bits or not all ones).
    Invalid,
    /// The decoded string would exceed the caller's limit.
    TooLong,
}

/// Decode `src`, appending to `dst`, failing if more than `max_len` bytes would be appended.
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>, max_len: usize) -> Result<(), HuffmanError> {
    let limit = dst.len().saturating_add(max_len);
    let mut state = 0usize;
    let mut accept = true;
    for &b in src {
        for nib in [b >> 4, b & 0xf] {
            let e = DECODE[state][nib as usize];
            if e & FAIL != 0 {
                return Err(HuffmanError::Invalid);
            }
            if e & EMIT != 0 {
                if dst.len() >= limit {
                    return Err(HuffmanError::TooLong);
                }
                dst.push((e >> 8) as u8);
            }
            state = (e & 0xff) as usize;
            accept = e & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(HuffmanError::Invalid)
    }
}

/// The length in bytes of the Huffman encoding of `src`.
#[inline]
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| CODES[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Huffman-encode `src`, appending to `dst` (padding with the EOS prefix).
///
/// ```
/// let mut out = Vec::new();
/// spindle::h2::hpack::huffman_encode(b"www.example.com", &mut out);
/// assert_eq!(out, [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]);
/// ```
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | code as u64;
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            dst.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.push(((acc << pad) as u8) | ((1u16 << pad) - 1) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut v = Vec::new();
        decode(src, &mut v, usize::MAX).map(|_| v)
    }

    #[test]
    fn round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        assert_eq!(enc.len(), encoded_len(&all));
        assert_eq!(dec(&enc).unwrap(), all);
    }

    #[test]
    fn rejects_eos_and_bad_padding() {
        // EOS: 30 ones.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xfc]), Err(HuffmanError::Invalid));
        // 8 bits of padding (a whole byte of ones) is too long.
        let mut enc = Vec::new();
        encode(b"a", &mut enc); // 'a' = 00011 + 111 padding
        assert_eq!(enc, [0x1f]);
        assert_eq!(dec(&[0x1f, 0xff]), Err(HuffmanError::Invalid));
        // Padding not all ones: 00011 000.
        assert_eq!(dec(&[0x18]), Err(HuffmanError::Invalid));
        // Empty input is the empty string.
        assert_eq!(dec(&[]).unwrap(), b"");
        // A limit is enforced while decoding.
        let mut v = Vec::new();
        let mut enc = Vec::new();
        encode(b"aaaa", &mut enc);
        assert_eq!(decode(&enc, &mut v, 3), Err(HuffmanError::TooLong));
    }
}
