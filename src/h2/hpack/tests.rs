//! RFC 7541 Appendix C examples, decoded and encoded, plus decoder edge cases.
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

type List = &'static [(&'static str, &'static str)];

fn check_decode(dec: &mut Decoder, block: &[u8], list: List, table: List, size: usize) {
    let got = dec.decode_to_vec(block).unwrap();
    let got: Vec<(&[u8], &[u8])> = got
        .iter()
        .map(|f| (f.name.as_bytes(), f.value.as_bytes()))
        .collect();
    let want: Vec<(&[u8], &[u8])> = list
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(dec.table_len(), table.len());
    for (i, (n, v)) in table.iter().enumerate() {
        assert_eq!(dec.table_entry(i).unwrap(), (n.as_bytes(), v.as_bytes()));
    }
    assert_eq!(dec.table_size(), size);
}

fn check_encode(enc: &mut Encoder, list: List, block: &[u8], size: usize) {
    let mut out = Vec::new();
    enc.encode(
        list.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
        &mut out,
    );
    assert_eq!(out, block, "\n got {out:02x?}\nwant {block:02x?}");
    assert_eq!(enc.table_size(), size);
}

// ---- C.2: single representations ----

#[test]
fn c2_1_literal_with_indexing() {
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    let mut dec = Decoder::new();
    check_decode(
        &mut dec,
        &block,
        &[("custom-key", "custom-header")],
        &[("custom-key", "custom-header")],
        55,
    );
    let mut enc = Encoder::new();
    enc.set_huffman(HuffmanPolicy::Never);
    let mut out = Vec::new();
    enc.encode_field_as(
        b"custom-key",
        b"custom-header",
        Representation::IncrementalIndexing,
        &mut out,
    );
    assert_eq!(out, block);
    assert_eq!(enc.table_size(), 55);
}

#[test]
fn c2_2_literal_without_indexing() {
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    let mut dec = Decoder::new();
    check_decode(&mut dec, &block, &[(":path", "/sample/path")], &[], 0);
    let mut enc = Encoder::new();
    enc.set_huffman(HuffmanPolicy::Never);
    let mut out = Vec::new();
    enc.encode_field_as(
        b":path",
        b"/sample/path",
        Representation::WithoutIndexing,
        &mut out,
    );
    assert_eq!(out, block);
}

#[test]
fn c2_3_literal_never_indexed() {
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let mut dec = Decoder::new();
    let f = dec.decode_to_vec(&block).unwrap();
    assert!(f[0].never_indexed);
    check_decode(
        &mut Decoder::new(),
        &block,
        &[("password", "secret")],
        &[],
        0,
    );
    let mut enc = Encoder::new();
    enc.set_huffman(HuffmanPolicy::Never);
    let mut out = Vec::new();
    enc.encode(
        std::iter::once((&b"password"[..], &b"secret"[..], true)),
        &mut out,
    );
    assert_eq!(out, block);
}

#[test]
fn c2_4_indexed() {
    check_decode(&mut Decoder::new(), &[0x82], &[(":method", "GET")], &[], 0);
    let mut out = Vec::new();
    Encoder::new().encode(
        std::iter::once((&b":method"[..], &b"GET"[..], false)),
        &mut out,
    );
    assert_eq!(out, [0x82]);
}

// ---- C.3 / C.4: requests ----

const REQ1: List = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: List = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: List = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const T1: List = &[(":authority", "www.example.com")];
const T2: List = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const T3: List = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

fn requests(blocks: [&str; 3], huffman: HuffmanPolicy) {
    let blocks = blocks.map(hex);
    let mut dec = Decoder::new();
    check_decode(&mut dec, &blocks[0], REQ1, T1, 57);
    check_decode(&mut dec, &blocks[1], REQ2, T2, 110);
    check_decode(&mut dec, &blocks[2], REQ3, T3, 164);
    let mut enc = Encoder::new();
    enc.set_index_policy(IndexPolicy::All);
    enc.set_huffman(huffman);
    check_encode(&mut enc, REQ1, &blocks[0], 57);
    check_encode(&mut enc, REQ2, &blocks[1], 110);
    check_encode(&mut enc, REQ3, &blocks[2], 164);
}

#[test]
fn c3_requests_without_huffman() {
    requests(
        [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ],
        HuffmanPolicy::Never,
    );
}

#[test]
fn c4_requests_with_huffman() {
    for policy in [HuffmanPolicy::Always, HuffmanPolicy::Shorter] {
        requests(
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
            policy,
        );
    }
}

// ---- C.5 / C.6: responses with a 256-byte table ----

const RES1: List = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RES2: List = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RES3: List = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RT1: List = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RT2: List = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RT3: List = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

fn responses(blocks: [&str; 3], huffman: HuffmanPolicy) {
    let blocks = blocks.map(hex);
    let mut dec = Decoder::with_max_table_size(256);
    check_decode(&mut dec, &blocks[0], RES1, RT1, 222);
    check_decode(&mut dec, &blocks[1], RES2, RT2, 222);
    check_decode(&mut dec, &blocks[2], RES3, RT3, 215);
    let mut enc = Encoder::with_max_table_size(256);
    enc.set_index_policy(IndexPolicy::All);
    enc.set_huffman(huffman);
    check_encode(&mut enc, RES1, &blocks[0], 222);
    check_encode(&mut enc, RES2, &blocks[1], 222);
    check_encode(&mut enc, RES3, &blocks[2], 215);
}

#[test]
fn c5_responses_without_huffman() {
    responses(
        [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ],
        HuffmanPolicy::Never,
    );
}

#[test]
fn c6_responses_with_huffman() {
    // Only `Always`: with `Shorter`, "307" (3 bytes either way) is sent raw.
    {
        let policy = HuffmanPolicy::Always;
        responses(
            [
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
            policy,
        );
    }
}

// ---- decoder rules ----

#[test]
fn size_update_rules() {
    // Clearing the table with a size update at the start is fine.
    let mut dec = Decoder::new();
    dec.decode_to_vec(&hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"))
        .unwrap();
    assert_eq!(dec.table_len(), 1);
    dec.decode_to_vec(&[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap();
    assert_eq!(dec.table_len(), 0);
    // After a field it is an error.
    assert_eq!(
        dec.decode_to_vec(&[0x82, 0x20]),
        Err(DecoderError::SizeUpdateNotFirst)
    );
    // Above the SETTINGS limit it is an error: 4097 = 0x3f 0xe2 0x1f.
    assert_eq!(
        dec.decode_to_vec(&[0x3f, 0xe2, 0x1f]),
        Err(DecoderError::SizeUpdateTooLarge)
    );
    // Lowering our setting makes an update mandatory in the next block.
    let mut dec = Decoder::new();
    dec.set_max_table_size(100);
    assert_eq!(
        dec.decode_to_vec(&[0x82]),
        Err(DecoderError::SizeUpdateRequired)
    );
    dec.decode_to_vec(&[0x3f, 0x45, 0x82]).unwrap(); // size 100
    dec.decode_to_vec(&[0x82]).unwrap();
}

#[test]
fn index_and_integer_errors() {
    let mut dec = Decoder::new();
    assert_eq!(dec.decode_to_vec(&[0x80]), Err(DecoderError::InvalidIndex));
    assert_eq!(dec.decode_to_vec(&[0xbe]), Err(DecoderError::InvalidIndex));
    assert_eq!(
        dec.decode_to_vec(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        Err(DecoderError::IntegerOverflow)
    );
    assert_eq!(
        dec.decode_to_vec(&[0xff, 0x80]),
        Err(DecoderError::Truncated)
    );
    assert_eq!(
        dec.decode_to_vec(&[0x40, 0x0a, b'a']),
        Err(DecoderError::Truncated)
    );
    // Invalid Huffman padding (from the C.4.1 block with its last byte changed).
    assert_eq!(
        dec.decode_to_vec(&hex("828684418cf1e3c2e5f23a6ba0ab90f4fe")),
        Err(DecoderError::InvalidHuffman)
    );
}

#[test]
fn hpack_bomb_is_bounded() {
    // One 4000-byte entry, then 1000 one-byte references to it: 4 MB if expanded.
    let mut enc = Encoder::new();
    enc.set_index_policy(IndexPolicy::All);
    enc.set_huffman(HuffmanPolicy::Never);
    let big = vec![b'a'; 4000];
    let mut block = Vec::new();
    enc.encode_field_as(b"x", &big, Representation::IncrementalIndexing, &mut block);
    block.extend(std::iter::repeat_n(0xbe, 1000));
    let mut dec = Decoder::new();
    dec.set_max_header_list_size(16 * 1024);
    let mut n = 0;
    assert_eq!(
        dec.decode(&block, |_| n += 1),
        Err(DecoderError::HeaderListTooLarge)
    );
    assert!(n <= 4);
    // The table is intact: the next block still decodes.
    assert_eq!(dec.decode_to_vec(&[0xbe]).unwrap()[0].value.len(), 4000);
    // A single string above the string limit.
    let mut dec = Decoder::new();
    dec.set_max_string_len(100);
    let mut block = vec![0x00, 0x01, b'x', 0x7f, 0x49];
    block.extend(std::iter::repeat_n(b'a', 200));
    assert_eq!(dec.decode_to_vec(&block), Err(DecoderError::StringTooLong));
}

#[test]
fn encoder_never_indexes_secrets_and_signals_size_updates() {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(
        [
            (&b"authorization"[..], &b"Bearer x"[..], false),
            (b"cookie", b"a=b", false),
            (b"set-cookie", b"c=d", false),
        ],
        &mut out,
    );
    assert_eq!(enc.table_size(), 0);
    let f = Decoder::new().decode_to_vec(&out).unwrap();
    assert!(f.iter().all(|f| f.never_indexed));
    // Lower then raise: both updates are sent, smallest first.
    enc.set_max_table_size(0);
    enc.set_max_table_size(4096);
    let mut out = Vec::new();
    enc.encode(
        std::iter::once((&b":method"[..], &b"GET"[..], false)),
        &mut out,
    );
    assert_eq!(out, [0x20, 0x3f, 0xe1, 0x1f, 0x82]);
}

/// Found by the hpack_roundtrip fuzz target: a preferred size set after the peer lowered
/// its SETTINGS_HEADER_TABLE_SIZE was announced as if the peer allowed it, a size update
/// above the peer's limit (RFC 7541 §6.3: COMPRESSION_ERROR at the decoder).
#[test]
fn a_preferred_size_never_exceeds_what_the_peer_allows() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new();
    enc.set_max_table_size(256);
    dec.set_max_table_size(256);
    enc.set_preferred_max_table_size(1504);
    let mut out = Vec::new();
    enc.encode(std::iter::empty(), &mut out);
    // One update, to 256 (0x3f 0xe1 0x01).
    assert_eq!(out, [0x3f, 0xe1, 0x01]);
    assert!(dec.decode_to_vec(&out).unwrap().is_empty());
    // A smaller preference applies; a larger one never goes past the peer's limit.
    enc.set_preferred_max_table_size(100);
    let mut out = Vec::new();
    enc.encode(std::iter::empty(), &mut out);
    assert_eq!(out, [0x3f, 0x45]);
    enc.set_max_table_size(4096);
    let mut out = Vec::new();
    enc.encode(std::iter::empty(), &mut out);
    assert_eq!(out, [0x3f, 0x45], "still the preferred 100");
    assert!(dec.decode_to_vec(&out).is_ok());
}
