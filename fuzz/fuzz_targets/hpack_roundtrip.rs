//! HPACK encode → decode round trips of arbitrary header lists. The input builds several
//! blocks for one encoder / decoder pair (the dynamic table carries over): per block an
//! optional table-size change (SETTINGS_HEADER_TABLE_SIZE, applied to both ends as an
//! acknowledged setting would be, and sometimes a smaller preferred size on the encoder),
//! the encoder's Huffman and indexing policies, and fields whose names and values are
//! either common ones (static-table names, pseudo-headers, repeated customs, so that the
//! dynamic table is used) or arbitrary bytes, each with a sensitive flag.
//!
//! Asserted: every block decodes, to the same list in the same order (names, values, and
//! never-indexed for the sensitive fields); a block of sensitive fields leaves the table
//! as it was; after every block both dynamic tables hold the same entries, within the
//! size in force.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::hpack::{Decoder, Encoder, HuffmanPolicy, IndexPolicy};

/// Names picked by index: the static table's, pseudo-headers, sensitive ones, customs.
const NAMES: &[&[u8]] = &[
    b":method",
    b":path",
    b":authority",
    b":status",
    b":scheme",
    b"content-type",
    b"content-length",
    b"cookie",
    b"authorization",
    b"set-cookie",
    b"user-agent",
    b"accept-encoding",
    b"x-custom",
    b"x-request-id",
    b"",
    b"Upper-Case",
];
const VALUES: &[&[u8]] = &[b"", b"GET", b"/", b"200", b"gzip, deflate", b"a=b", b"x"];

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// A name or value: a common one, or up to 63 arbitrary bytes.
    fn string(&mut self, common: &[&'static [u8]]) -> Option<Vec<u8>> {
        let b = self.byte()?;
        Some(if b & 0x80 == 0 {
            common[usize::from(b) % common.len()].to_vec()
        } else {
            self.bytes(usize::from(b & 0x3f)).to_vec()
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let mut enc = Encoder::new();
    let mut dec = Decoder::new();
    dec.set_max_header_list_size(1 << 20);
    let mut size = 4096usize;
    let mut blocks = 0;
    while let Some(ctl) = input.byte() {
        blocks += 1;
        if blocks > 64 {
            break;
        }
        if ctl & 0x01 != 0 {
            // A new SETTINGS_HEADER_TABLE_SIZE, up to 8 KiB, acknowledged by both ends.
            let hi = input.byte().unwrap_or(0);
            let lo = input.byte().unwrap_or(0);
            size = (usize::from(hi) << 8 | usize::from(lo)) % 8193;
            dec.set_max_table_size(size);
            enc.set_max_table_size(size);
        }
        if ctl & 0x02 != 0 {
            enc.set_preferred_max_table_size(usize::from(input.byte().unwrap_or(0)) * 32);
        }
        enc.set_huffman(match (ctl >> 2) % 3 {
            0 => HuffmanPolicy::Shorter,
            1 => HuffmanPolicy::Always,
            _ => HuffmanPolicy::Never,
        });
        enc.set_index_policy(match (ctl >> 4) % 3 {
            0 => IndexPolicy::Default,
            1 => IndexPolicy::All,
            _ => IndexPolicy::None,
        });
        let count = usize::from(input.byte().unwrap_or(0) % 24);
        let mut fields: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(name) = input.string(NAMES) else {
                break;
            };
            let value = input.string(VALUES).unwrap_or_default();
            let sensitive = input.byte().unwrap_or(0) & 0x07 == 0;
            fields.push((name, value, sensitive));
        }
        let before: Vec<(Vec<u8>, Vec<u8>)> = (0..dec.table_len())
            .filter_map(|i| dec.table_entry(i))
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        let mut block = Vec::new();
        enc.encode(
            fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)),
            &mut block,
        );
        let got = dec
            .decode_to_vec(&block)
            .unwrap_or_else(|e| panic!("block {blocks} of {fields:?} fails to decode: {e:?}"));
        assert_eq!(got.len(), fields.len(), "{fields:?} -> {got:?}");
        for (g, (n, v, s)) in got.iter().zip(&fields) {
            assert_eq!(g.name.as_bytes(), &n[..]);
            assert_eq!(g.value.as_bytes(), &v[..]);
            // Sensitive fields are sent never-indexed (RFC 7541 §7.1.3); the default
            // policy adds its own never-indexed names, the others only on request.
            if *s {
                assert!(g.never_indexed, "{g:?}");
            }
        }
        // Both ends keep the same table (RFC 7541 §2.3.2), within the size in force.
        assert_eq!(enc.table_size(), dec.table_size());
        assert!(dec.table_size() <= size);
        let mut i = 0;
        loop {
            let (a, b) = (enc.table_entry(i), dec.table_entry(i));
            assert_eq!(a, b, "table entry {i}");
            if a.is_none() {
                break;
            }
            i += 1;
        }
        assert_eq!(i, dec.table_len());
        if ctl & 0x03 == 0 && fields.iter().all(|f| f.2) {
            // Only sensitive fields: nothing entered the table (RFC 7541 §7.1.3).
            let after: Vec<(Vec<u8>, Vec<u8>)> = (0..dec.table_len())
                .filter_map(|i| dec.table_entry(i))
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(before, after, "a sensitive field was indexed");
        }
    }
});
