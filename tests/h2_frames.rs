//! Frame codec: a table of malformed frames with the expected error for each RFC 9113 rule,
//! round-trip property tests, and arbitrary bytes into the decoder.
use proptest::prelude::*;
use spindle::h2::frame::*;
use spindle::h2::{Reason, Scope, StreamId, Violation};

fn frame(len: usize, kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn raw(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    frame(payload.len(), kind, flags, id, payload)
}

fn setting(id: u16, v: u32) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&v.to_be_bytes());
    p
}

const CONN: Option<u32> = None;

/// (description, bytes, reason, None = connection error / Some(id) = stream error, rule)
type Case = (&'static str, Vec<u8>, Reason, Option<u32>, Violation);

#[test]
fn malformed_frames() {
    use Reason::*;
    use Violation::*;
    let big = vec![0u8; 16_385];
    // (description, bytes, reason, scope: None = connection / Some(id) = stream, violation)
    let cases: Vec<Case> = vec![
        (
            "DATA larger than MAX_FRAME_SIZE",
            raw(0, 0, 1, &big),
            FrameSizeError,
            CONN,
            FrameTooLarge,
        ),
        (
            "HEADERS larger than MAX_FRAME_SIZE",
            raw(1, 4, 1, &big),
            FrameSizeError,
            CONN,
            FrameTooLarge,
        ),
        (
            "DATA on stream 0",
            raw(0, 0, 0, b"x"),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "HEADERS on stream 0",
            raw(1, 4, 0, &[0x82]),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "PRIORITY on stream 0",
            raw(2, 0, 0, &[0, 0, 0, 1, 0]),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "RST_STREAM on stream 0",
            raw(3, 0, 0, &[0, 0, 0, 8]),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "SETTINGS on stream 1",
            raw(4, 0, 1, &[]),
            ProtocolError,
            CONN,
            StreamIdNotZero,
        ),
        (
            "PUSH_PROMISE on stream 0",
            raw(5, 4, 0, &[0, 0, 0, 2]),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "PING on stream 1",
            raw(6, 0, 1, &[0; 8]),
            ProtocolError,
            CONN,
            StreamIdNotZero,
        ),
        (
            "GOAWAY on stream 1",
            raw(7, 0, 1, &[0; 8]),
            ProtocolError,
            CONN,
            StreamIdNotZero,
        ),
        (
            "CONTINUATION on stream 0",
            raw(9, 4, 0, &[0x82]),
            ProtocolError,
            CONN,
            StreamIdZero,
        ),
        (
            "DATA padding = payload length",
            raw(0, 8, 1, &[4, 1, 2, 3]),
            ProtocolError,
            CONN,
            PaddingTooLong,
        ),
        (
            "DATA padded, empty payload",
            raw(0, 8, 1, &[]),
            FrameSizeError,
            CONN,
            PayloadTooShort,
        ),
        (
            "HEADERS padding too long",
            raw(1, 0xc, 1, &[2, 0x82]),
            ProtocolError,
            CONN,
            PaddingTooLong,
        ),
        (
            "HEADERS padding eats priority",
            raw(1, 0x2c, 1, &[2, 0, 0, 0, 3, 16, 0x82]),
            ProtocolError,
            CONN,
            PaddingTooLong,
        ),
        (
            "HEADERS priority too short",
            raw(1, 0x24, 1, &[0, 0, 0]),
            FrameSizeError,
            CONN,
            PayloadTooShort,
        ),
        (
            "HEADERS depends on itself",
            raw(1, 0x24, 3, &[0, 0, 0, 3, 16]),
            ProtocolError,
            Some(3),
            SelfDependency,
        ),
        (
            "PRIORITY length 4",
            raw(2, 0, 1, &[0, 0, 0, 3]),
            FrameSizeError,
            Some(1),
            BadLength,
        ),
        (
            "PRIORITY length 6",
            raw(2, 0, 5, &[0, 0, 0, 3, 0, 0]),
            FrameSizeError,
            Some(5),
            BadLength,
        ),
        (
            "PRIORITY depends on itself",
            raw(2, 0, 5, &[0x80, 0, 0, 5, 0]),
            ProtocolError,
            Some(5),
            SelfDependency,
        ),
        (
            "RST_STREAM length 3",
            raw(3, 0, 1, &[0, 0, 8]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "RST_STREAM length 5",
            raw(3, 0, 1, &[0, 0, 0, 8, 0]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "SETTINGS length 5",
            raw(4, 0, 0, &[0, 1, 0, 0, 0]),
            FrameSizeError,
            CONN,
            SettingsLength,
        ),
        (
            "SETTINGS ACK with payload",
            raw(4, 1, 0, &setting(1, 0)),
            FrameSizeError,
            CONN,
            SettingsAckWithPayload,
        ),
        (
            "SETTINGS_ENABLE_PUSH = 2",
            raw(4, 0, 0, &setting(2, 2)),
            ProtocolError,
            CONN,
            InvalidEnablePush,
        ),
        (
            "SETTINGS_INITIAL_WINDOW_SIZE = 2^31",
            raw(4, 0, 0, &setting(4, 1 << 31)),
            FlowControlError,
            CONN,
            InvalidInitialWindowSize,
        ),
        (
            "SETTINGS_MAX_FRAME_SIZE = 2^14-1",
            raw(4, 0, 0, &setting(5, 16_383)),
            ProtocolError,
            CONN,
            InvalidMaxFrameSize,
        ),
        (
            "SETTINGS_MAX_FRAME_SIZE = 2^24",
            raw(4, 0, 0, &setting(5, 1 << 24)),
            ProtocolError,
            CONN,
            InvalidMaxFrameSize,
        ),
        (
            "SETTINGS_ENABLE_CONNECT_PROTOCOL = 2",
            raw(4, 0, 0, &setting(8, 2)),
            ProtocolError,
            CONN,
            InvalidBooleanSetting,
        ),
        (
            "PUSH_PROMISE too short",
            raw(5, 4, 1, &[0, 0, 2]),
            FrameSizeError,
            CONN,
            PayloadTooShort,
        ),
        (
            "PUSH_PROMISE padding too long",
            raw(5, 0xc, 1, &[1, 0, 0, 0, 2]),
            ProtocolError,
            CONN,
            PaddingTooLong,
        ),
        (
            "PUSH_PROMISE promising stream 0",
            raw(5, 4, 1, &[0, 0, 0, 0]),
            ProtocolError,
            CONN,
            InvalidPromisedId,
        ),
        (
            "PING length 7",
            raw(6, 0, 0, &[0; 7]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "PING length 9",
            raw(6, 0, 0, &[0; 9]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "GOAWAY length 7",
            raw(7, 0, 0, &[0; 7]),
            FrameSizeError,
            CONN,
            PayloadTooShort,
        ),
        (
            "WINDOW_UPDATE length 3",
            raw(8, 0, 1, &[0, 0, 1]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "WINDOW_UPDATE length 5",
            raw(8, 0, 0, &[0, 0, 0, 1, 0]),
            FrameSizeError,
            CONN,
            BadLength,
        ),
        (
            "WINDOW_UPDATE 0 on a stream",
            raw(8, 0, 7, &[0, 0, 0, 0]),
            ProtocolError,
            Some(7),
            ZeroWindowIncrement,
        ),
        (
            "WINDOW_UPDATE 0 on the connection",
            raw(8, 0, 0, &[0, 0, 0, 0]),
            ProtocolError,
            CONN,
            ZeroWindowIncrement,
        ),
        (
            "WINDOW_UPDATE 0 with the reserved bit set",
            raw(8, 0, 7, &[0x80, 0, 0, 0]),
            ProtocolError,
            Some(7),
            ZeroWindowIncrement,
        ),
    ];
    let dec = FrameDecoder::new();
    for (what, bytes, reason, scope, violation) in cases {
        let err = match dec.decode(&bytes) {
            Err(e) => e,
            Ok(other) => panic!("{what}: accepted as {other:?}"),
        };
        assert_eq!(err.error.reason(), reason, "{what}");
        let want_scope = scope.map_or(Scope::Connection, |id| Scope::Stream(StreamId::new(id)));
        assert_eq!(err.error.scope(), want_scope, "{what}");
        assert_eq!(err.error.violation(), violation, "{what}");
        if let Scope::Stream(_) = want_scope {
            assert_eq!(
                err.consumed,
                bytes.len(),
                "{what}: a stream error lets the frame be skipped"
            );
        }
    }
}

#[test]
fn lenient_where_the_rfc_says_ignore() {
    let dec = FrameDecoder::new();
    // Reserved bit on the stream id is ignored; unknown flags are ignored.
    let b = raw(0, 0xf6, 0x8000_0001, b"hi");
    let Decoded::Frame {
        frame: Frame::Data(d),
        ..
    } = dec.decode(&b).unwrap()
    else {
        panic!()
    };
    assert_eq!(d.stream_id, StreamId::new(1));
    assert!(!d.end_stream && d.pad_len.is_none());
    // Unknown frame types are surfaced for discarding, whatever their stream.
    let b = raw(0xfa, 0xff, 0, b"whatever");
    let Decoded::Frame {
        frame: Frame::Unknown(u),
        consumed,
    } = dec.decode(&b).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (u.head.kind, u.payload, consumed),
        (FrameType::Unknown(0xfa), &b"whatever"[..], b.len())
    );
    // Unknown settings are kept and ignorable; padding exactly filling the payload is fine.
    let b = raw(4, 0, 0, &setting(0x99, 7));
    assert!(dec.decode(&b).is_ok());
    let b = raw(0, 8, 1, &[2, 0, 0]);
    let Decoded::Frame {
        frame: Frame::Data(d),
        ..
    } = dec.decode(&b).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (d.data, d.pad_len, d.flow_controlled_len()),
        (&b""[..], Some(2), 3)
    );
    // A larger local MAX_FRAME_SIZE accepts larger frames.
    let mut big = FrameDecoder::new();
    big.set_max_frame_size(1 << 20);
    assert!(big.decode(&raw(0, 0, 1, &[0; 100_000])).is_ok());
    // Writing: the reserved bit is zero even if asked otherwise.
    let mut out = Vec::new();
    WindowUpdate {
        stream_id: StreamId::new(1),
        increment: 0xffff_ffff,
    }
    .encode(&mut out);
    assert_eq!(&out[9..], [0x7f, 0xff, 0xff, 0xff]);
}

#[test]
fn need_more_on_every_prefix() {
    let mut buf = Vec::new();
    Data {
        stream_id: StreamId::new(3),
        data: b"hello world",
        end_stream: true,
        pad_len: Some(4),
    }
    .encode(&mut buf);
    let dec = FrameDecoder::new();
    for i in 0..buf.len() {
        match dec.decode(&buf[..i]).unwrap() {
            Decoded::NeedMore(n) => assert!(n >= 1 && i + n <= buf.len(), "prefix {i}: need {n}"),
            other => panic!("prefix {i}: {other:?}"),
        }
    }
    // Trailing bytes of the next frame are left alone.
    buf.extend_from_slice(&[0, 0]);
    let Decoded::Frame { consumed, .. } = dec.decode(&buf).unwrap() else {
        panic!()
    };
    assert_eq!(consumed, buf.len() - 2);
}

fn arb_id() -> impl Strategy<Value = StreamId> {
    (1u32..=0x7fff_ffff).prop_map(StreamId::new)
}

fn arb_reason() -> impl Strategy<Value = Reason> {
    any::<u32>().prop_map(Reason::from)
}

/// An owned description of a frame, to build a borrowed `Frame` from.
#[derive(Debug, Clone)]
enum Spec {
    Data(StreamId, Vec<u8>, bool, Option<u8>),
    Headers(
        StreamId,
        Vec<u8>,
        bool,
        bool,
        Option<PrioritySpec>,
        Option<u8>,
    ),
    Priority(StreamId, PrioritySpec),
    Rst(StreamId, Reason),
    Settings(Vec<(SettingId, u32)>),
    SettingsAck,
    Push(StreamId, StreamId, Vec<u8>, bool, Option<u8>),
    Ping(bool, [u8; 8]),
    GoAway(StreamId, Reason, Vec<u8>),
    Window(StreamId, u32),
    Cont(StreamId, Vec<u8>, bool),
    Unknown(u8, u8, StreamId, Vec<u8>),
}

fn arb_prio(id: StreamId) -> impl Strategy<Value = PrioritySpec> {
    (0u32..=0x7fff_ffff, any::<bool>(), any::<u8>())
        .prop_filter("no self-dependency", move |(d, _, _)| *d != id.value())
        .prop_map(|(d, exclusive, weight)| PrioritySpec {
            dependency: StreamId::new(d),
            exclusive,
            weight,
        })
}

fn arb_setting() -> impl Strategy<Value = (SettingId, u32)> {
    prop_oneof![
        any::<u32>().prop_map(|v| (SettingId::HeaderTableSize, v)),
        (0u32..=1).prop_map(|v| (SettingId::EnablePush, v)),
        any::<u32>().prop_map(|v| (SettingId::MaxConcurrentStreams, v)),
        (0u32..=MAX_WINDOW_SIZE).prop_map(|v| (SettingId::InitialWindowSize, v)),
        (DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).prop_map(|v| (SettingId::MaxFrameSize, v)),
        any::<u32>().prop_map(|v| (SettingId::MaxHeaderListSize, v)),
        (0u32..=1).prop_map(|v| (SettingId::EnableConnectProtocol, v)),
        (10u16..).prop_flat_map(|id| any::<u32>().prop_map(move |v| (SettingId::Unknown(id), v))),
    ]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (arb_id(), bytes(), any::<bool>(), any::<Option<u8>>())
            .prop_map(|(i, d, e, p)| Spec::Data(i, d, e, p)),
        arb_id()
            .prop_flat_map(move |i| (
                Just(i),
                bytes(),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(arb_prio(i)),
                any::<Option<u8>>()
            ))
            .prop_map(|(i, f, es, eh, pr, p)| Spec::Headers(i, f, es, eh, pr, p)),
        arb_id()
            .prop_flat_map(|i| (Just(i), arb_prio(i)))
            .prop_map(|(i, p)| Spec::Priority(i, p)),
        (arb_id(), arb_reason()).prop_map(|(i, r)| Spec::Rst(i, r)),
        proptest::collection::vec(arb_setting(), 0..8).prop_map(Spec::Settings),
        Just(Spec::SettingsAck),
        (
            arb_id(),
            arb_id(),
            bytes(),
            any::<bool>(),
            any::<Option<u8>>()
        )
            .prop_map(|(i, p, f, e, pad)| Spec::Push(i, p, f, e, pad)),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(a, p)| Spec::Ping(a, p)),
        (0u32..=0x7fff_ffff, arb_reason(), bytes()).prop_map(|(l, r, d)| Spec::GoAway(
            StreamId::new(l),
            r,
            d
        )),
        (0u32..=0x7fff_ffff, 1u32..=0x7fff_ffff)
            .prop_map(|(i, n)| Spec::Window(StreamId::new(i), n)),
        (arb_id(), bytes(), any::<bool>()).prop_map(|(i, f, e)| Spec::Cont(i, f, e)),
        (10u8.., any::<u8>(), 0u32..=0x7fff_ffff, bytes()).prop_map(|(k, fl, i, p)| Spec::Unknown(
            k,
            fl,
            StreamId::new(i),
            p
        )),
    ]
}

fn build<'a>(s: &'a Spec, settings_buf: &'a mut Vec<u8>) -> Frame<'a> {
    match s {
        Spec::Data(i, d, e, p) => Frame::Data(Data {
            stream_id: *i,
            data: d,
            end_stream: *e,
            pad_len: *p,
        }),
        Spec::Headers(i, f, es, eh, pr, p) => Frame::Headers(Headers {
            stream_id: *i,
            fragment: f,
            end_stream: *es,
            end_headers: *eh,
            priority: *pr,
            pad_len: *p,
        }),
        Spec::Priority(i, p) => Frame::Priority(Priority {
            stream_id: *i,
            spec: *p,
        }),
        Spec::Rst(i, r) => Frame::RstStream(RstStream {
            stream_id: *i,
            error_code: *r,
        }),
        Spec::Settings(v) => {
            Settings::encode_values(v, settings_buf);
            let Decoded::Frame { frame, .. } = FrameDecoder::new().decode(settings_buf).unwrap()
            else {
                unreachable!()
            };
            frame
        }
        Spec::SettingsAck => Frame::Settings(Settings::ack()),
        Spec::Push(i, p, f, e, pad) => Frame::PushPromise(PushPromise {
            stream_id: *i,
            promised_id: *p,
            fragment: f,
            end_headers: *e,
            pad_len: *pad,
        }),
        Spec::Ping(a, p) => Frame::Ping(Ping {
            ack: *a,
            payload: *p,
        }),
        Spec::GoAway(l, r, d) => Frame::GoAway(GoAway {
            last_stream_id: *l,
            error_code: *r,
            debug_data: d,
        }),
        Spec::Window(i, n) => Frame::WindowUpdate(WindowUpdate {
            stream_id: *i,
            increment: *n,
        }),
        Spec::Cont(i, f, e) => Frame::Continuation(Continuation {
            stream_id: *i,
            fragment: f,
            end_headers: *e,
        }),
        Spec::Unknown(k, fl, i, p) => Frame::Unknown(Unknown {
            head: FrameHead {
                length: p.len() as u32,
                kind: FrameType::from(*k),
                flags: *fl,
                stream_id: *i,
            },
            payload: p,
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip(specs in proptest::collection::vec(arb_spec(), 1..6)) {
        let mut bufs: Vec<Vec<u8>> = specs.iter().map(|_| Vec::new()).collect();
        let frames: Vec<Frame<'_>> = specs.iter().zip(bufs.iter_mut()).map(|(s, b)| build(s, b)).collect();
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let dec = FrameDecoder::new();
        let mut pos = 0;
        for f in &frames {
            match dec.decode(&wire[pos..]) {
                Ok(Decoded::Frame { frame, consumed }) => {
                    prop_assert_eq!(&frame, f);
                    pos += consumed;
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert_eq!(pos, wire.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dec = FrameDecoder::new();
        let mut pos = 0;
        // Every call either consumes bytes, asks for more, or errors: no infinite loop.
        loop {
            match dec.decode(&bytes[pos..]) {
                Ok(Decoded::Frame { consumed, .. }) => { prop_assert!(consumed >= 9); pos += consumed; }
                Ok(Decoded::NeedMore(n)) => { prop_assert!(n > 0); break; }
                Err(e) => { prop_assert!(e.consumed == 0 || e.consumed >= 9); break; }
            }
        }
    }

    #[test]
    fn header_block_split_reassembles(block in proptest::collection::vec(any::<u8>(), 0..5000), max in 1u32..600) {
        use spindle::h2::headers::{Assembled, BlockAssembler};
        let mut wire = Vec::new();
        encode_header_block(StreamId::new(5), &block, true, max, &mut wire);
        let mut dec = FrameDecoder::new();
        dec.set_max_frame_size(1 << 14);
        let mut asm = BlockAssembler::new();
        asm.set_max_continuations(usize::MAX);
        let mut pos = 0;
        let mut done = None;
        while pos < wire.len() {
            let Ok(Decoded::Frame { frame, consumed }) = dec.decode(&wire[pos..]) else { panic!() };
            pos += consumed;
            if let Assembled::Complete(b) = asm.push(&frame).unwrap() {
                prop_assert!(b.end_stream);
                done = Some(b.block.to_vec());
            }
        }
        prop_assert_eq!(done, Some(block));
    }
}
