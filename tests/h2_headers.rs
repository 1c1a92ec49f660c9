//! Header blocks: the RFC 9113 field rules, round trips through HPACK and the http mapping,
//! arbitrary bytes into the HPACK decoder, and block reassembly rules.
use proptest::prelude::*;
use spindle::h2::frame::{Continuation, Data, Frame, Headers};
use spindle::h2::headers::*;
use spindle::h2::hpack::{Decoder, Encoder, HuffmanPolicy, IndexPolicy};
use spindle::h2::{Malformed, Reason, Scope, StreamId, Violation};

const ID: StreamId = StreamId::new(1);

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
        &mut out,
    );
    out
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/"),
    (":authority", "a.example"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = GET.to_vec();
    v.extend_from_slice(extra);
    v
}

type Fields = Vec<(&'static str, &'static str)>;

#[test]
fn malformed_requests() {
    use Malformed::*;
    let cases: Vec<(&str, Fields, Malformed)> = vec![
        ("uppercase name", with(&[("Accept", "x")]), UppercaseName),
        ("invalid name char", with(&[("a b", "x")]), InvalidName),
        ("empty name", with(&[("", "x")]), InvalidName),
        (
            "value with leading space",
            with(&[("x", " v")]),
            InvalidValue,
        ),
        (
            "value with trailing tab",
            with(&[("x", "v\t")]),
            InvalidValue,
        ),
        ("value with CR LF", with(&[("x", "a\r\nb")]), InvalidValue),
        ("value with NUL", with(&[("x", "a\0b")]), InvalidValue),
        ("unknown pseudo", with(&[(":foo", "x")]), UnknownPseudo),
        (
            "response pseudo in request",
            with(&[(":status", "200")]),
            UnknownPseudo,
        ),
        (
            "pseudo after regular",
            vec![
                (":method", "GET"),
                ("accept", "x"),
                (":path", "/"),
                (":scheme", "http"),
            ],
            PseudoAfterRegular,
        ),
        ("duplicate :path", with(&[(":path", "/x")]), DuplicatePseudo),
        (
            "missing :method",
            vec![(":scheme", "https"), (":path", "/")],
            MissingPseudo,
        ),
        (
            "missing :path",
            vec![(":method", "GET"), (":scheme", "https")],
            MissingPseudo,
        ),
        (
            "missing :scheme",
            vec![(":method", "GET"), (":path", "/")],
            MissingPseudo,
        ),
        (
            "connection",
            with(&[("connection", "close")]),
            ConnectionSpecific,
        ),
        (
            "keep-alive",
            with(&[("keep-alive", "5")]),
            ConnectionSpecific,
        ),
        (
            "proxy-connection",
            with(&[("proxy-connection", "x")]),
            ConnectionSpecific,
        ),
        (
            "transfer-encoding",
            with(&[("transfer-encoding", "chunked")]),
            ConnectionSpecific,
        ),
        ("upgrade", with(&[("upgrade", "h2c")]), ConnectionSpecific),
        ("te: gzip", with(&[("te", "gzip")]), InvalidTe),
        (
            "bad method",
            vec![(":method", "G@T"), (":scheme", "https"), (":path", "/")],
            InvalidMethod,
        ),
        (
            "empty :path",
            vec![(":method", "GET"), (":scheme", "https"), (":path", "")],
            InvalidPath,
        ),
        (
            "* path on GET",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "*"),
                (":authority", "a"),
            ],
            InvalidPath,
        ),
        (
            "CONNECT with :path",
            vec![
                (":method", "CONNECT"),
                (":authority", "a:443"),
                (":path", "/"),
            ],
            InvalidConnect,
        ),
        (
            "CONNECT without :authority",
            vec![(":method", "CONNECT")],
            InvalidConnect,
        ),
        (
            "host differs from :authority",
            with(&[("host", "b.example")]),
            InvalidUri,
        ),
        (
            "bad authority",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/"),
                (":authority", "a b"),
            ],
            InvalidUri,
        ),
        (
            ":protocol without CONNECT",
            with(&[(":protocol", "websocket")]),
            InvalidProtocol,
        ),
    ];
    for (what, fields, want) in cases {
        let mut dec = Decoder::new();
        let err = decode_request(&mut dec, ID, &block(&fields)).expect_err(what);
        assert_eq!(err.reason(), Reason::ProtocolError, "{what}");
        assert_eq!(err.scope(), Scope::Stream(ID), "{what}");
        assert_eq!(err.violation(), Violation::Malformed(want), "{what}");
    }
}

#[test]
fn good_requests() {
    let mut dec = Decoder::new();
    let r = decode_request(
        &mut dec,
        ID,
        &block(&with(&[
            ("te", "trailers"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ])),
    )
    .unwrap();
    assert_eq!(r.uri(), "https://a.example/");
    assert_eq!(r.headers().get_all("cookie").iter().count(), 2);
    let r = decode_request(
        &mut dec,
        ID,
        &block(&[(":method", "CONNECT"), (":authority", "proxy.example:443")]),
    )
    .unwrap();
    assert_eq!(r.uri().authority().unwrap(), "proxy.example:443");
    let r = decode_request(
        &mut dec,
        ID,
        &block(&[
            (":method", "OPTIONS"),
            (":scheme", "https"),
            (":path", "*"),
            (":authority", "a"),
        ]),
    )
    .unwrap();
    assert_eq!(r.uri().path(), "*");
    // Host stands in for :authority.
    let r = decode_request(
        &mut dec,
        ID,
        &block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/p?q"),
            ("host", "h.example"),
        ]),
    )
    .unwrap();
    assert_eq!(r.uri(), "http://h.example/p?q");
    // Extended CONNECT (RFC 8441).
    let r = decode_request(
        &mut dec,
        ID,
        &block(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/chat"),
            (":authority", "a"),
        ]),
    )
    .unwrap();
    assert_eq!(r.extensions().get::<Protocol>().unwrap().0, "websocket");
}

#[test]
fn responses_and_trailers() {
    let mut dec = Decoder::new();
    let r = decode_response(
        &mut dec,
        ID,
        &block(&[(":status", "204"), ("server", "spindle")]),
    )
    .unwrap();
    assert_eq!(r.status(), 204);
    for (fields, want) in [
        (vec![("server", "x")], Malformed::InvalidStatus),
        (vec![(":status", "2000")], Malformed::InvalidStatus),
        (vec![(":status", "abc")], Malformed::InvalidStatus),
        (
            vec![(":status", "200"), (":status", "200")],
            Malformed::DuplicatePseudo,
        ),
        (
            vec![(":status", "200"), (":path", "/")],
            Malformed::UnknownPseudo,
        ),
    ] {
        let e = decode_response(&mut dec, ID, &block(&fields)).unwrap_err();
        assert_eq!(e.violation(), Violation::Malformed(want), "{fields:?}");
    }
    let t = decode_trailers(&mut dec, ID, &block(&[("grpc-status", "0")])).unwrap();
    assert_eq!(t["grpc-status"], "0");
    let e = decode_trailers(&mut dec, ID, &block(&[(":status", "200")])).unwrap_err();
    assert_eq!(
        e.violation(),
        Violation::Malformed(Malformed::PseudoInTrailers)
    );
}

#[test]
fn hpack_errors_are_connection_errors_limits_are_stream_errors() {
    let e = decode_request(&mut Decoder::new(), ID, &[0x80]).unwrap_err();
    assert_eq!(
        (e.reason(), e.scope()),
        (Reason::CompressionError, Scope::Connection)
    );
    let mut dec = Decoder::new();
    dec.set_max_header_list_size(100);
    let big = "x".repeat(200);
    let fields = with(&[("x-big", Box::leak(big.into_boxed_str()))]);
    let e = decode_request(&mut dec, ID, &block(&fields)).unwrap_err();
    assert_eq!(
        (e.scope(), e.violation()),
        (Scope::Stream(ID), Violation::HeaderListTooLarge)
    );
}

#[test]
fn assembler_rules() {
    let h = |id: u32, end: bool| {
        Frame::Headers(Headers {
            stream_id: StreamId::new(id),
            fragment: &[0x82],
            end_stream: false,
            end_headers: end,
            priority: None,
            pad_len: None,
        })
    };
    let c = |id: u32, end: bool| {
        Frame::Continuation(Continuation {
            stream_id: StreamId::new(id),
            fragment: &[0x84],
            end_headers: end,
        })
    };
    let conn_err = |e: spindle::h2::H2Error| (e.reason(), e.scope(), e.violation());
    let expected = (
        Reason::ProtocolError,
        Scope::Connection,
        Violation::ExpectedContinuation,
    );
    // CONTINUATION with nothing open.
    assert_eq!(
        conn_err(BlockAssembler::new().push(&c(1, true)).unwrap_err()),
        expected
    );
    // Another frame in the middle of a block.
    let mut a = BlockAssembler::new();
    assert_eq!(a.push(&h(1, false)).unwrap(), Assembled::Incomplete);
    let d = Frame::Data(Data {
        stream_id: StreamId::new(1),
        data: b"",
        end_stream: false,
        pad_len: None,
    });
    assert_eq!(conn_err(a.push(&d).unwrap_err()), expected);
    // CONTINUATION on another stream.
    let mut a = BlockAssembler::new();
    a.push(&h(1, false)).unwrap();
    assert_eq!(conn_err(a.push(&c(3, true)).unwrap_err()), expected);
    // Too many CONTINUATION frames.
    let mut a = BlockAssembler::new();
    a.set_max_continuations(3);
    a.push(&h(1, false)).unwrap();
    for _ in 0..3 {
        assert_eq!(a.push(&c(1, false)).unwrap(), Assembled::Incomplete);
    }
    let e = a.push(&c(1, false)).unwrap_err();
    assert_eq!(
        (e.reason(), e.violation()),
        (Reason::EnhanceYourCalm, Violation::HeaderBlockTooLarge)
    );
    // Too many bytes.
    let mut a = BlockAssembler::new();
    a.set_max_block_size(1);
    a.push(&h(1, false)).unwrap();
    assert!(a.push(&c(1, true)).is_err());
    // Non-header frames pass through when nothing is open.
    assert_eq!(
        BlockAssembler::new().push(&d).unwrap(),
        Assembled::NotHeaders
    );
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("accept".to_string()),
        Just("user-agent".to_string()),
        Just("cookie".to_string()),
        Just("authorization".to_string()),
        Just("content-type".to_string()),
        "[a-z][a-z0-9-]{0,20}",
    ]
}

fn arb_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,60}[!-~])?"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hpack_round_trip(
        blocks in proptest::collection::vec(proptest::collection::vec((arb_name(), arb_value(), any::<bool>()), 0..20), 1..6),
        table in 0usize..5000,
        huff in 0..3u8,
        policy in 0..3u8,
    ) {
        let mut enc = Encoder::new();
        enc.set_preferred_max_table_size(table);
        enc.set_huffman([HuffmanPolicy::Never, HuffmanPolicy::Always, HuffmanPolicy::Shorter][huff as usize]);
        enc.set_index_policy([IndexPolicy::Default, IndexPolicy::All, IndexPolicy::None][policy as usize]);
        let mut dec = Decoder::new();
        for fields in &blocks {
            let mut out = Vec::new();
            enc.encode(fields.iter().map(|(n, v, s)| (n.as_bytes(), v.as_bytes(), *s)), &mut out);
            let got = dec.decode_to_vec(&out).unwrap();
            prop_assert_eq!(got.len(), fields.len());
            for (g, (n, v, s)) in got.iter().zip(fields) {
                prop_assert_eq!(g.name.as_bytes(), n.as_bytes());
                prop_assert_eq!(g.value.as_bytes(), v.as_bytes());
                if *s { prop_assert!(g.never_indexed); }
            }
            prop_assert_eq!(dec.table_size(), enc.table_size());
        }
    }

    #[test]
    fn request_round_trip(
        path in "/[a-z0-9/._-]{0,30}(\\?[a-z0-9=&]{0,20})?",
        host in "[a-z]{1,10}\\.example(:[0-9]{2,5})?",
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")],
        headers in proptest::collection::vec((arb_name(), arb_value()), 0..10),
    ) {
        let mut b = http::Request::builder().method(method).uri(format!("https://{host}{path}"));
        for (n, v) in &headers {
            b = b.header(n.as_str(), v.as_str());
        }
        let req = b.body(()).unwrap();
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        encode_request(&mut enc, &req, &mut out);
        let got = decode_request(&mut Decoder::new(), ID, &out).unwrap();
        prop_assert_eq!(got.method(), req.method());
        prop_assert_eq!(got.uri(), req.uri());
        prop_assert_eq!(got.headers(), req.headers());
    }

    #[test]
    fn response_round_trip(status in 100u16..1000, headers in proptest::collection::vec((arb_name(), arb_value()), 0..10)) {
        let mut b = http::Response::builder().status(status);
        for (n, v) in &headers {
            b = b.header(n.as_str(), v.as_str());
        }
        let res = b.body(()).unwrap();
        let mut out = Vec::new();
        encode_response(&mut Encoder::new(), &res, &mut out);
        let got = decode_response(&mut Decoder::new(), ID, &out).unwrap();
        prop_assert_eq!(got.status(), res.status());
        prop_assert_eq!(got.headers(), res.headers());
    }

    #[test]
    fn hpack_arbitrary_bytes_never_panic(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..512), 1..4)) {
        let mut dec = Decoder::new();
        dec.set_max_header_list_size(8192);
        for b in &blocks {
            let mut total = 0usize;
            let _ = dec.decode(b, |f| total += f.size());
            prop_assert!(total <= 8192);
            prop_assert!(dec.table_size() <= 4096);
            let _ = decode_request(&mut dec, ID, b);
        }
    }
}
