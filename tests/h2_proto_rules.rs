//! Byte-vector tests of the HTTP/2 connection state machine (RFC 9113), server role driven
//! by hand-built frames, plus the attack limits.
mod h2_proto_support;

use std::time::{Duration, Instant};

use h2_proto_support::*;
use spindle::h2::frame::{SettingId, StreamId};
use spindle::h2::proto::{Config, Connection, Event, StreamState};
use spindle::h2::Reason;

fn res200() -> http::Response<()> {
    http::Response::builder().status(200).body(()).unwrap()
}

#[test]
fn server_preface_settings_and_window() {
    let mut s = Connection::server(Config::default(), Instant::now());
    let fs = frames(&s.take_output());
    match &fs[0] {
        F::Settings { ack: false, values } => {
            assert!(values.contains(&(SettingId::InitialWindowSize, 1 << 20)));
            assert!(values.contains(&(SettingId::MaxConcurrentStreams, 128)));
            assert!(values.contains(&(SettingId::EnablePush, 0)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fs[1],
        F::WindowUpdate {
            id: 0,
            inc: (4 << 20) - 65535
        }
    );
    // The client's preface one byte at a time, then our ACK of its SETTINGS.
    let mut c = RawClient::new();
    let b = c.preface().settings_ack().headers(1, "/a", true).take();
    for i in 0..b.len() {
        // Present the unconsumed tail each time, one more byte at a time.
        let _ = i;
    }
    let mut pending: Vec<u8> = Vec::new();
    for &byte in &b {
        pending.push(byte);
        let n = s.recv(&pending).unwrap();
        pending.drain(..n);
    }
    assert!(pending.is_empty());
    let evs = events(&mut s);
    assert!(evs.contains(&E::SettingsReceived));
    assert!(evs.contains(&E::SettingsAcked));
    assert!(evs.iter().any(|e| matches!(
        e,
        E::Request {
            id: 1,
            end_stream: true,
            ..
        }
    )));
    assert_eq!(
        frames(&s.take_output()),
        vec![F::Settings {
            ack: true,
            values: vec![]
        }]
    );
}

#[test]
fn bad_preface_and_first_frame_not_settings() {
    let mut s = Connection::server(Config::default(), Instant::now());
    s.take_output();
    let e = s.recv(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(e.reason(), Reason::ProtocolError);
    assert_eq!(
        goaway_reason(&frames(&s.take_output())),
        Some(Reason::ProtocolError)
    );

    let mut s = Connection::server(Config::default(), Instant::now());
    s.take_output();
    let mut c = RawClient::new();
    let b = c
        .raw(spindle::h2::preface::CLIENT_MAGIC)
        .ping([0; 8], false)
        .take();
    assert!(s.recv(&b).is_err());
    assert!(s.is_closed());
}

#[test]
fn settings_ack_timeout() {
    let now = Instant::now();
    let mut s = Connection::server(Config::default(), now);
    assert_eq!(s.next_timeout(), Some(now + Duration::from_secs(10)));
    let mut c = RawClient::new();
    s.recv(&c.preface().take()).unwrap();
    s.take_output();
    s.tick(now + Duration::from_secs(5)).unwrap();
    let e = s.tick(now + Duration::from_secs(11)).unwrap_err();
    assert_eq!(e.reason(), Reason::SettingsTimeout);
    assert_eq!(
        goaway_reason(&frames(&s.take_output())),
        Some(Reason::SettingsTimeout)
    );
    // Acked in time: no timeout.
    let (mut s, _, now) = server();
    assert_eq!(s.next_timeout(), None);
    s.tick(now + Duration::from_secs(60)).unwrap();
}

#[test]
fn ping_is_answered_and_acked() {
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.ping(*b"abcdefgh", false).take());
    assert_eq!(
        fs,
        vec![F::Ping {
            ack: true,
            payload: *b"abcdefgh"
        }]
    );
    s.ping(*b"12345678").unwrap();
    assert_eq!(
        frames(&s.take_output()),
        vec![F::Ping {
            ack: false,
            payload: *b"12345678"
        }]
    );
    let (_, evs) = feed(&mut s, &c.ping(*b"12345678", true).take());
    assert_eq!(evs, vec![E::PingAck(*b"12345678")]);
}

#[test]
fn stream_id_rules() {
    // Even id from a client.
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.headers(2, "/", true).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
    // Decreasing id.
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(
        &mut s,
        &c.headers(5, "/", true).headers(3, "/", true).take(),
    );
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
    // DATA on an idle stream.
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.data(1, b"x", true).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
    // WINDOW_UPDATE and RST_STREAM on idle streams.
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.window_update(7, 1).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.rst(7, Reason::Cancel).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
    // PRIORITY on an idle stream is fine and does not open it (§5.1, §6.3).
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.priority(9, 0).headers(3, "/", true).take());
    assert!(fs.is_empty(), "{fs:?}");
    assert_eq!(s.stream_state(StreamId::new(9)), StreamState::Idle);
    assert_eq!(
        s.stream_state(StreamId::new(3)),
        StreamState::HalfClosedRemote
    );
}

#[test]
fn half_closed_remote_and_closed_streams() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    // DATA after END_STREAM: stream error STREAM_CLOSED (§5.1 half-closed (remote)).
    let (fs, evs) = feed(&mut s, &c.data(1, b"x", false).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::StreamClosed));
    assert!(evs.contains(&E::Reset {
        id: 1,
        reason: Reason::StreamClosed,
        remote: false
    }));
    // The stream we reset: frames after it are ignored.
    let (fs, evs) = feed(&mut s, &c.data(1, b"y", true).window_update(1, 5).take());
    assert!(fs.is_empty() && evs.is_empty(), "{fs:?} {evs:?}");

    // A stream closed normally: DATA is STREAM_CLOSED, HEADERS a connection error.
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    s.send_response(StreamId::new(1), &res200(), true).unwrap();
    assert_eq!(s.stream_state(StreamId::new(1)), StreamState::Closed);
    s.take_output();
    let (fs, _) = feed(&mut s, &c.window_update(1, 10).priority(1, 0).take());
    assert!(
        fs.is_empty(),
        "WINDOW_UPDATE/PRIORITY on closed are ignored: {fs:?}"
    );
    let (fs, _) = feed(&mut s, &c.data(1, b"x", false).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::StreamClosed));
    let (fs, _) = feed(&mut s, &c.headers(1, "/", true).take());
    // Stream 1 is now remembered as reset by us: ignored. A fresh closed stream:
    assert!(goaway_reason(&fs).is_none());
    feed(&mut s, &c.headers(3, "/", true).take());
    s.send_response(StreamId::new(3), &res200(), true).unwrap();
    s.take_output();
    let (fs, _) = feed(&mut s, &c.headers(3, "/", true).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::StreamClosed));
}

#[test]
fn stream_states_both_ways() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", false).take());
    let id = StreamId::new(1);
    assert_eq!(s.stream_state(id), StreamState::Open);
    s.send_response(id, &res200(), true).unwrap();
    assert_eq!(s.stream_state(id), StreamState::HalfClosedLocal);
    assert!(s.send_data(id, b"x", false).is_err());
    let (_, evs) = feed(&mut s, &c.data(1, b"abc", true).take());
    assert_eq!(
        evs,
        vec![E::Data {
            id: 1,
            data: b"abc".to_vec(),
            end_stream: true
        }]
    );
    // Closed, but kept until the application releases what it was given.
    assert_eq!(s.stream_state(id), StreamState::Closed);
    s.release_capacity(id, 3);
    assert_eq!(s.stream_state(id), StreamState::Closed);
    assert_eq!(s.active_streams(), 0);
}

#[test]
fn receive_flow_control() {
    let cfg = Config {
        initial_stream_window: 100,
        ..Config::default()
    };
    let (mut s, mut c, _) = server_with(cfg);
    feed(&mut s, &c.headers(1, "/", false).take());
    let (fs, evs) = feed(&mut s, &c.data(1, &[0; 101], false).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::FlowControlError));
    assert!(evs.contains(&E::Reset {
        id: 1,
        reason: Reason::FlowControlError,
        remote: false
    }));
}

#[test]
fn connection_window_exceeded_is_connection_error() {
    let (mut s, mut c, _) = server_with(Config {
        initial_connection_window: 65535,
        ..Config::default()
    });
    for id in (1..=9).step_by(2) {
        c.headers(id, "/", false);
    }
    // 5 x 16384 > 65535 on the connection while every stream is under its 1 MiB.
    for id in (1..=9).step_by(2) {
        c.data(id, &[0; 16384], false);
    }
    let (fs, evs) = feed(&mut s, &c.take());
    assert_eq!(goaway_reason(&fs), Some(Reason::FlowControlError));
    assert!(evs.contains(&E::Error(Reason::FlowControlError)));
}

#[test]
fn window_update_policy_half_window() {
    let cfg = Config {
        initial_stream_window: 1000,
        initial_connection_window: 65535,
        ..Config::default()
    };
    let (mut s, mut c, _) = server_with(cfg);
    feed(&mut s, &c.headers(1, "/", false).take());
    feed(&mut s, &c.data(1, &[0; 400], false).take());
    s.release_capacity(StreamId::new(1), 400);
    assert!(
        frames(&s.take_output()).is_empty(),
        "below half a window: no update"
    );
    feed(&mut s, &c.data(1, &[0; 200], false).take());
    s.release_capacity(StreamId::new(1), 200);
    assert_eq!(
        frames(&s.take_output()),
        vec![F::WindowUpdate { id: 1, inc: 600 }]
    );
    // Padding is credited back by itself.
    feed(&mut s, &c.padded(1, &[0; 10], 89, false).take());
    s.release_capacity(StreamId::new(1), 10);
    let fs = frames(&s.take_output());
    assert!(fs.is_empty(), "{fs:?}");
}

#[test]
fn window_overflow() {
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(&mut s, &c.window_update(0, 0x7fff_ffff).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::FlowControlError));
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", false).take());
    let (fs, _) = feed(&mut s, &c.window_update(1, 0x7fff_ffff).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::FlowControlError));
    assert!(goaway_reason(&fs).is_none());
    // INITIAL_WINDOW_SIZE pushing an open stream's window past 2^31-1.
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.headers(1, "/", false)
            .window_update(1, 0x7fff_0000)
            .take(),
    );
    let (fs, _) = feed(
        &mut s,
        &c.settings(&[(SettingId::InitialWindowSize, 0x7fff_ffff)])
            .take(),
    );
    assert_eq!(goaway_reason(&fs), Some(Reason::FlowControlError));
}

#[test]
fn send_flow_control_and_capacity() {
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.settings(&[(SettingId::InitialWindowSize, 10)])
            .headers(1, "/", true)
            .take(),
    );
    let id = StreamId::new(1);
    s.send_response(id, &res200(), false).unwrap();
    assert_eq!(s.send_capacity(id), 10);
    assert_eq!(s.send_data(id, &[7; 25], true).unwrap(), 10);
    assert_eq!(s.send_data(id, &[7; 15], true).unwrap(), 0);
    let fs = frames(&s.take_output());
    assert!(matches!(&fs[1], F::Data { id: 1, data, end_stream: false } if data.len() == 10));
    // SETTINGS_INITIAL_WINDOW_SIZE change applies to the open stream (§6.9.2): 10 -> 14.
    let (_, evs) = feed(
        &mut s,
        &c.settings(&[(SettingId::InitialWindowSize, 14)]).take(),
    );
    assert!(evs.contains(&E::Capacity { id: 1 }), "{evs:?}");
    assert_eq!(s.send_capacity(id), 4);
    // It may also go negative.
    feed(
        &mut s,
        &c.settings(&[(SettingId::InitialWindowSize, 0)]).take(),
    );
    assert_eq!(s.send_capacity(id), 0);
    // 0 sent, -10 after the change; +100. Not blocked (nothing offered): no event.
    let (_, evs) = feed(&mut s, &c.window_update(1, 100).take());
    assert!(evs.is_empty(), "{evs:?}");
    assert_eq!(s.send_capacity(id), 90);
    assert_eq!(s.send_data(id, &[7; 15], true).unwrap(), 15);
    assert_eq!(s.stream_state(id), StreamState::Closed);
}

#[test]
fn data_split_by_peer_max_frame_size_and_connection_window() {
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.settings(&[(SettingId::InitialWindowSize, 1 << 20)])
            .take(),
    );
    feed(
        &mut s,
        &c.headers(1, "/", true).headers(3, "/", true).take(),
    );
    s.send_response(StreamId::new(1), &res200(), false).unwrap();
    s.send_response(StreamId::new(3), &res200(), false).unwrap();
    s.take_output();
    // Connection window 65535 shared by both streams.
    assert_eq!(
        s.send_data(StreamId::new(1), &[1; 50_000], false).unwrap(),
        50_000
    );
    assert_eq!(
        s.send_data(StreamId::new(3), &[1; 50_000], false).unwrap(),
        15_535
    );
    let fs = frames(&s.take_output());
    let sizes: Vec<usize> = fs
        .iter()
        .map(|f| match f {
            F::Data { data, .. } => data.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![16384, 16384, 16384, 848, 15535]);
    let (_, evs) = feed(&mut s, &c.window_update(0, 1000).take());
    assert_eq!(evs, vec![E::Capacity { id: 3 }]);
}

#[test]
fn rst_stream_from_peer() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", false).take());
    let (fs, evs) = feed(
        &mut s,
        &c.data(1, b"abc", false).rst(1, Reason::Cancel).take(),
    );
    assert!(fs.is_empty());
    assert_eq!(
        evs[1],
        E::Reset {
            id: 1,
            reason: Reason::Cancel,
            remote: true
        }
    );
    assert_eq!(
        s.send_response(StreamId::new(1), &res200(), true),
        Err(spindle::h2::proto::SendError::UnknownStream)
    );
    // The peer knows the stream is closed: DATA or HEADERS on it afterwards are stream
    // errors STREAM_CLOSED (RFC 9113 §5.1 "closed"; h2spec 5.1/8, 5.1/9), not a
    // connection error, and the application hears nothing more of stream 1.
    let (fs, evs) = feed(&mut s, &c.data(1, b"late", true).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::StreamClosed), "{fs:?}");
    assert!(
        goaway_reason(&fs).is_none() && evs.is_empty(),
        "{fs:?} {evs:?}"
    );
    // Having reset it ourselves now, what is still in flight is ignored.
    let (fs, evs) = feed(&mut s, &c.data(1, b"later", true).take());
    assert!(fs.is_empty() && evs.is_empty(), "{fs:?} {evs:?}");

    // HEADERS after the peer's reset: decoded (the HPACK context stays in step), then
    // RST_STREAM STREAM_CLOSED; the next stream is served normally.
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.headers(1, "/", false).rst(1, Reason::Cancel).take(),
    );
    let extra = [("x-dynamic", "indexed")];
    let bytes = c
        .headers_with(1, "GET", "/again", &extra, true)
        .headers_with(3, "GET", "/next", &extra, true)
        .take();
    let (fs, evs) = feed(&mut s, &bytes);
    assert_eq!(rst_reason(&fs, 1), Some(Reason::StreamClosed), "{fs:?}");
    assert!(goaway_reason(&fs).is_none(), "{fs:?}");
    assert!(
        matches!(&evs[..], [E::Request { id: 3, .. }]),
        "stream 3 decodes with the table stream 1's block left: {evs:?}"
    );
    // A WINDOW_UPDATE or RST_STREAM crossing the peer's reset is not an error.
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.headers(1, "/", false).rst(1, Reason::Cancel).take(),
    );
    let (fs, _) = feed(&mut s, &c.window_update(1, 5).rst(1, Reason::Cancel).take());
    assert!(fs.is_empty(), "{fs:?}");
}

#[test]
fn goaway_graceful_two_step() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    s.goaway_graceful();
    let fs = frames(&s.take_output());
    assert_eq!(
        fs[0],
        F::GoAway {
            last: 0x7fff_ffff,
            reason: Reason::NoError
        }
    );
    let payload = match fs[1] {
        F::Ping {
            ack: false,
            payload,
        } => payload,
        ref f => panic!("{f:?}"),
    };
    // A stream opened before the PING answer is still accepted.
    let (fs, evs) = feed(&mut s, &c.headers(3, "/", true).ping(payload, true).take());
    assert!(evs.iter().any(|e| matches!(e, E::Request { id: 3, .. })));
    assert!(!evs.iter().any(|e| matches!(e, E::PingAck(_))));
    assert_eq!(
        fs,
        vec![F::GoAway {
            last: 3,
            reason: Reason::NoError
        }]
    );
    // Streams above it are ignored; open ones finish; then the connection is done.
    let (fs, evs) = feed(&mut s, &c.headers(5, "/", true).take());
    assert!(fs.is_empty() && evs.is_empty());
    assert!(!s.is_closed());
    s.send_response(StreamId::new(1), &res200(), true).unwrap();
    s.send_response(StreamId::new(3), &res200(), true).unwrap();
    assert!(s.is_closed());
}

#[test]
fn goaway_graceful_times_out_without_ping_answer() {
    let (mut s, _c, now) = server();
    s.goaway_graceful();
    s.take_output();
    s.tick(now + Duration::from_secs(11)).unwrap();
    assert_eq!(
        frames(&s.take_output()),
        vec![F::GoAway {
            last: 0,
            reason: Reason::NoError
        }]
    );
    assert!(s.is_closed());
}

#[test]
fn goaway_received_by_server() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    let mut g = Vec::new();
    spindle::h2::frame::GoAway {
        last_stream_id: StreamId::ZERO,
        error_code: Reason::NoError,
        debug_data: b"bye",
    }
    .encode(&mut g);
    let (_, evs) = feed(&mut s, &g);
    assert_eq!(
        evs,
        vec![E::GoAway {
            last: 0,
            reason: Reason::NoError
        }]
    );
    assert!(!s.is_closed());
    s.send_response(StreamId::new(1), &res200(), true).unwrap();
    assert!(s.is_closed());
}

#[test]
fn max_concurrent_streams_refused() {
    let (mut s, mut c, _) = server_with(Config {
        max_concurrent_streams: 2,
        ..Config::default()
    });
    let (fs, evs) = feed(
        &mut s,
        &c.headers(1, "/", false)
            .headers(3, "/", false)
            .headers(5, "/", false)
            .take(),
    );
    assert_eq!(rst_reason(&fs, 5), Some(Reason::RefusedStream));
    assert_eq!(evs.len(), 2);
    // DATA the client already sent on the refused stream is ignored; the HPACK context
    // survived (stream 7 decodes after 3 is done).
    s.reset(StreamId::new(3), Reason::Cancel);
    let (fs, evs) = feed(
        &mut s,
        &c.data(5, b"x", true).headers(7, "/seven", true).take(),
    );
    assert!(rst_reason(&fs, 5).is_none());
    assert!(matches!(&evs[..], [E::Request { id: 7, path, .. }] if path == "/seven"));
}

#[test]
fn frame_size_limits() {
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(
        &mut s,
        &c.headers(1, "/", false).data(1, &[0; 16385], false).take(),
    );
    assert_eq!(goaway_reason(&fs), Some(Reason::FrameSizeError));
    // Our larger MAX_FRAME_SIZE, once acknowledged.
    let (mut s, mut c, _) = server_with(Config {
        max_frame_size: 1 << 16,
        ..Config::default()
    });
    let (fs, evs) = feed(
        &mut s,
        &c.headers(1, "/", false).data(1, &[0; 40000], true).take(),
    );
    assert!(fs.is_empty());
    assert!(matches!(&evs[1], E::Data { data, .. } if data.len() == 40000));
    // The peer's MAX_FRAME_SIZE bounds our HEADERS: big heads use CONTINUATION.
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    let big = "v".repeat(16000);
    let res = http::Response::builder()
        .status(200)
        .header("a", &big)
        .header("b", &big)
        .body(())
        .unwrap();
    s.send_response(StreamId::new(1), &res, true).unwrap();
    let fs = frames(&s.take_output());
    assert!(matches!(
        fs[0],
        F::Headers {
            end_headers: false,
            end_stream: true,
            ..
        }
    ));
    assert!(matches!(
        fs[1],
        F::Continuation {
            end_headers: true,
            ..
        }
    ));
}

#[test]
fn header_list_too_large_gives_431_event() {
    let (mut s, mut c, _) = server_with(Config {
        max_header_list_size: 200,
        ..Config::default()
    });
    let v = "x".repeat(300);
    let (_, evs) = feed(
        &mut s,
        &c.headers_with(1, "GET", "/", &[("big", &v)], true).take(),
    );
    assert_eq!(evs, vec![E::TooLarge { id: 1 }]);
    let res = http::Response::builder().status(431).body(()).unwrap();
    s.send_response(StreamId::new(1), &res, true).unwrap();
    // The HPACK context is intact: the next request decodes.
    let (_, evs) = feed(&mut s, &c.headers(3, "/ok", true).take());
    assert!(matches!(&evs[..], [E::Request { id: 3, .. }]));
    // The peer's limit is honoured when sending.
    let (mut s, mut c, _) = server();
    feed(
        &mut s,
        &c.settings(&[(SettingId::MaxHeaderListSize, 100)])
            .headers(1, "/", true)
            .take(),
    );
    let res = http::Response::builder()
        .status(200)
        .header("x", "y".repeat(200))
        .body(())
        .unwrap();
    assert_eq!(
        s.send_response(StreamId::new(1), &res, true),
        Err(spindle::h2::proto::SendError::HeaderListTooLarge)
    );
}

#[test]
fn trailers_in_and_out() {
    let (mut s, mut c, _) = server();
    let (_, evs) = feed(
        &mut s,
        &c.headers(1, "/", false)
            .data(1, b"body", false)
            .trailers(1, &[("x-sum", "42")], true)
            .take(),
    );
    match &evs[2] {
        E::Trailers { id: 1, trailers } => assert_eq!(trailers["x-sum"], "42"),
        e => panic!("{e:?}"),
    }
    let id = StreamId::new(1);
    s.send_response(id, &res200(), false).unwrap();
    s.send_data(id, b"abc", false).unwrap();
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", "0".parse().unwrap());
    s.send_trailers(id, &t).unwrap();
    let fs = frames(&s.take_output());
    assert!(matches!(
        fs.last(),
        Some(F::Headers {
            end_stream: true,
            ..
        })
    ));
    assert_eq!(s.stream_state(id), StreamState::Closed);
    // A second header block without END_STREAM is malformed.
    let (mut s, mut c, _) = server();
    let (fs, _) = feed(
        &mut s,
        &c.headers(1, "/", false)
            .trailers(1, &[("x", "1")], false)
            .take(),
    );
    assert_eq!(rst_reason(&fs, 1), Some(Reason::ProtocolError));
}

#[test]
fn content_length_checked() {
    let (mut s, mut c, _) = server();
    let (fs, evs) = feed(
        &mut s,
        &c.headers_with(1, "POST", "/", &[("content-length", "5")], false)
            .data(1, b"abc", true)
            .take(),
    );
    assert_eq!(rst_reason(&fs, 1), Some(Reason::ProtocolError));
    assert!(evs.contains(&E::Reset {
        id: 1,
        reason: Reason::ProtocolError,
        remote: false
    }));
    let (fs, _) = feed(
        &mut s,
        &c.headers_with(3, "POST", "/", &[("content-length", "2")], false)
            .data(3, b"abc", false)
            .take(),
    );
    assert_eq!(rst_reason(&fs, 3), Some(Reason::ProtocolError));
    let (fs, _) = feed(
        &mut s,
        &c.headers_with(5, "POST", "/", &[("content-length", "3")], true)
            .take(),
    );
    assert_eq!(rst_reason(&fs, 5), Some(Reason::ProtocolError));
    let (fs, evs) = feed(
        &mut s,
        &c.headers_with(7, "POST", "/", &[("content-length", "3")], false)
            .data(7, b"abc", true)
            .take(),
    );
    assert!(fs.is_empty(), "{fs:?}");
    assert_eq!(evs.len(), 2);
}

#[test]
fn push_promise_to_server_is_protocol_error() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", false).take());
    let mut b = Vec::new();
    spindle::h2::frame::PushPromise {
        stream_id: StreamId::new(1),
        promised_id: StreamId::new(2),
        fragment: &[0x82],
        end_headers: true,
        pad_len: None,
    }
    .encode(&mut b);
    let (fs, _) = feed(&mut s, &b);
    assert_eq!(goaway_reason(&fs), Some(Reason::ProtocolError));
}

#[test]
fn malformed_request_is_stream_error() {
    let (mut s, mut c, _) = server();
    let (fs, evs) = feed(
        &mut s,
        &c.headers_with(1, "GET", "/", &[("connection", "close")], true)
            .take(),
    );
    // `encode_request` drops connection-specific headers; craft one by hand instead.
    let _ = (fs, evs);
    let mut block = Vec::new();
    spindle::h2::hpack::Encoder::new().encode(
        [
            (&b":method"[..], &b"GET"[..], false),
            (b":path", b"/", false),
        ],
        &mut block,
    );
    let mut b = Vec::new();
    spindle::h2::frame::encode_header_block(StreamId::new(3), &block, true, 16384, &mut b);
    let (mut s, _c, _) = server();
    let (fs, evs) = feed(&mut s, &b);
    assert_eq!(rst_reason(&fs, 3), Some(Reason::ProtocolError));
    assert!(evs.is_empty());
}

// ------------------------------------------------------------------ attack limits

#[test]
fn rapid_reset_is_enhance_your_calm() {
    let (mut s, mut c, _) = server_with(Config {
        reset_burst: 50,
        reset_rate: 1,
        ..Config::default()
    });
    for i in 0..100u32 {
        let id = 1 + 2 * i;
        c.headers(id, "/", false).rst(id, Reason::Cancel);
    }
    let (fs, evs) = feed(&mut s, &c.take());
    assert_eq!(goaway_reason(&fs), Some(Reason::EnhanceYourCalm));
    assert!(evs.contains(&E::Error(Reason::EnhanceYourCalm)));
    // The budget refills with time: 50 resets, 30 s later 30 more are fine.
    let (mut s, mut c, now) = server_with(Config {
        reset_burst: 50,
        reset_rate: 1,
        ..Config::default()
    });
    for i in 0..50u32 {
        c.headers(1 + 2 * i, "/", false)
            .rst(1 + 2 * i, Reason::Cancel);
    }
    let (fs, _) = feed(&mut s, &c.take());
    assert!(goaway_reason(&fs).is_none());
    s.tick(now + Duration::from_secs(30)).unwrap();
    for i in 50..80u32 {
        c.headers(1 + 2 * i, "/", false)
            .rst(1 + 2 * i, Reason::Cancel);
    }
    let (fs, _) = feed(&mut s, &c.take());
    assert!(goaway_reason(&fs).is_none());
}

#[test]
fn continuation_flood_is_bounded() {
    let (mut s, mut c, _) = server();
    let block = c.block("GET", "/", &[]);
    let mut b = Vec::new();
    spindle::h2::frame::Headers {
        stream_id: StreamId::new(1),
        fragment: &block,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
    }
    .encode(&mut b);
    for _ in 0..100_000 {
        spindle::h2::frame::Continuation {
            stream_id: StreamId::new(1),
            fragment: &[],
            end_headers: false,
        }
        .encode(&mut b);
    }
    let (fs, _) = feed(&mut s, &b);
    assert_eq!(goaway_reason(&fs), Some(Reason::EnhanceYourCalm));
}

#[test]
fn hpack_bomb_is_refused_cheaply() {
    // One large header inserted in the table, then referenced many times.
    let (mut s, _c, _) = server_with(Config {
        max_header_list_size: 16 * 1024,
        ..Config::default()
    });
    let mut enc = spindle::h2::hpack::Encoder::new();
    let v = vec![b'a'; 3000];
    let mut block = Vec::new();
    let mut fields: Vec<(&[u8], &[u8], bool)> = vec![
        (b":method", b"GET", false),
        (b":scheme", b"http", false),
        (b":path", b"/", false),
    ];
    for _ in 0..1000 {
        fields.push((b"bomb", &v, false));
    }
    enc.encode(fields, &mut block);
    assert!(block.len() < 8000, "{}", block.len());
    let mut b = Vec::new();
    spindle::h2::frame::encode_header_block(StreamId::new(1), &block, true, 16384, &mut b);
    let (_, evs) = feed(&mut s, &b);
    assert_eq!(evs, vec![E::TooLarge { id: 1 }]);
}

#[test]
fn settings_and_ping_floods_from_a_peer_that_does_not_read() {
    let (mut s, mut c, _) = server();
    for _ in 0..2000 {
        c.settings(&[]);
    }
    let _ = s.recv(&c.take());
    let evs = events(&mut s);
    assert!(evs.contains(&E::Error(Reason::EnhanceYourCalm)));
    let (mut s, mut c, _) = server();
    for _ in 0..2000 {
        c.ping([1; 8], false);
    }
    let _ = s.recv(&c.take());
    assert!(events(&mut s).contains(&E::Error(Reason::EnhanceYourCalm)));
    // The same pings read as they come are fine.
    let (mut s, mut c, _) = server();
    for _ in 0..2000 {
        let b = c.ping([1; 8], false).take();
        s.recv(&b).unwrap();
        s.take_output();
    }
    // Too many settings in one frame.
    let (mut s, mut c, _) = server();
    let many: Vec<_> = (0..100)
        .map(|i| (SettingId::Unknown(0x100 + i), 1))
        .collect();
    let (fs, _) = feed(&mut s, &c.settings(&many).take());
    assert_eq!(goaway_reason(&fs), Some(Reason::EnhanceYourCalm));
}

#[test]
fn empty_frame_flood() {
    let (mut s, mut c, _) = server();
    c.headers(1, "/", false);
    for _ in 0..5000 {
        c.data(1, b"", false);
    }
    let (fs, _) = feed(&mut s, &c.take());
    assert_eq!(goaway_reason(&fs), Some(Reason::EnhanceYourCalm));
    let (mut s, mut c, _) = server();
    for _ in 0..5000 {
        c.priority(3, 0);
    }
    let (fs, _) = feed(&mut s, &c.take());
    assert_eq!(goaway_reason(&fs), Some(Reason::EnhanceYourCalm));
}

#[test]
fn output_backpressure_stops_input() {
    let (mut s, mut c, _) = server_with(Config {
        max_output_buffer: 64 * 1024,
        max_queued_control_frames: 1_000_000,
        ..Config::default()
    });
    for _ in 0..20_000 {
        c.ping([2; 8], false);
    }
    let b = c.take();
    let n = s.recv(&b).unwrap();
    assert!(n < b.len(), "input must stop while the output is full");
    assert!(!s.wants_read());
    assert!(s.output_len() > 64 * 1024);
    let out = s.take_output();
    assert!(s.wants_read());
    let n2 = s.recv(&b[n..]).unwrap();
    assert!(n2 > 0);
    assert_eq!(frames(&out).len(), out.len() / 17);
    // send_data accepts nothing while the output is full, and wakes the stream after.
    let (mut s, mut c, _) = server_with(Config {
        max_output_buffer: 20_000,
        ..Config::default()
    });
    feed(&mut s, &c.headers(1, "/", true).take());
    let id = StreamId::new(1);
    s.send_response(id, &res200(), false).unwrap();
    let n = s.send_data(id, &[0; 60_000], false).unwrap();
    assert!(n < 21_000, "{n}");
    assert_eq!(s.send_data(id, &[0; 10], false).unwrap(), 0);
    s.take_output();
    assert_eq!(events(&mut s), vec![E::Capacity { id: 1 }]);
}

#[test]
fn events_borrow_data_without_copies_per_frame() {
    // Many DATA frames in one read: all delivered in order with correct bytes.
    let (mut s, mut c, _) = server();
    c.headers(1, "/", false);
    let body = pattern(100_000, 3);
    for chunk in body.chunks(1000) {
        c.data(1, chunk, false);
    }
    c.data(1, b"", true);
    s.recv(&c.take()).unwrap();
    let mut got = Vec::new();
    let mut ended = false;
    while let Some(ev) = s.poll_event() {
        if let Event::Data {
            data, end_stream, ..
        } = ev
        {
            got.extend_from_slice(data);
            ended |= end_stream;
        }
    }
    assert!(ended);
    assert_eq!(got, body);
}

/// Found by the h2_conn_server fuzz target: two SETTINGS in flight, the first tightening
/// a limit and the second loosening it again. Once both are acknowledged the peer may use
/// the second's value (RFC 9113 §6.5.3: each takes effect in order), so that is the one in
/// force; the first's ACK must not leave the stricter value behind.
#[test]
fn settings_in_flight_take_effect_in_order() {
    // HEADER_TABLE_SIZE 256 then 4096: the client's encoder announces 256 then 4096
    // (RFC 7541 §4.2, the smallest then the last) at the start of its next block.
    let (mut s, mut c, _) = server();
    s.send_settings(&[(SettingId::HeaderTableSize, 256)])
        .unwrap();
    s.send_settings(&[(SettingId::HeaderTableSize, 4096)])
        .unwrap();
    s.take_output();
    c.enc.set_max_table_size(256);
    c.enc.set_max_table_size(4096);
    let b = c
        .settings_ack()
        .settings_ack()
        .headers_with(1, "GET", "/", &[("x-table", "entry")], true)
        .take();
    let (fs, evs) = feed(&mut s, &b);
    assert!(goaway_reason(&fs).is_none(), "{fs:?} {evs:?}");
    assert!(
        evs.iter().any(|e| matches!(e, E::Request { id: 1, .. })),
        "{evs:?}"
    );

    // MAX_FRAME_SIZE 32768 acknowledged, then 16384 and 32768 again: a 20000-byte
    // frame after both ACKs is within the limit.
    let (mut s, mut c, _) = server();
    s.send_settings(&[(SettingId::MaxFrameSize, 32_768)])
        .unwrap();
    feed(&mut s, &c.settings_ack().take());
    s.send_settings(&[(SettingId::MaxFrameSize, 16_384)])
        .unwrap();
    s.send_settings(&[(SettingId::MaxFrameSize, 32_768)])
        .unwrap();
    s.take_output();
    feed(&mut s, &c.settings_ack().settings_ack().take());
    let (_, evs) = feed(&mut s, &c.headers(1, "/", false).take());
    assert!(matches!(&evs[..], [E::Request { id: 1, .. }]), "{evs:?}");
    s.grow_recv_window(StreamId::new(1), 1 << 20);
    let (fs, _) = feed(&mut s, &c.data(1, &pattern(20_000, 1), true).take());
    assert!(goaway_reason(&fs).is_none(), "{fs:?}");

    // INITIAL_WINDOW_SIZE 0 then 65535: the peer's streams open with 65535 again.
    let cfg = Config {
        initial_stream_window: 65_535,
        ..Config::default()
    };
    let (mut s, mut c, _) = server_with(cfg);
    s.send_settings(&[(SettingId::InitialWindowSize, 0)])
        .unwrap();
    s.send_settings(&[(SettingId::InitialWindowSize, 65_535)])
        .unwrap();
    s.take_output();
    feed(&mut s, &c.settings_ack().settings_ack().take());
    let b = c
        .headers(1, "/", false)
        .data(1, &pattern(16_384, 2), false)
        .data(1, &pattern(16_384, 3), false)
        .data(1, &pattern(16_384, 4), false)
        .data(1, &pattern(16_383, 5), true)
        .take();
    let (fs, evs) = feed(&mut s, &b);
    assert!(goaway_reason(&fs).is_none(), "{fs:?}");
    assert_eq!(rst_reason(&fs, 1), None, "{fs:?}");
    let body: usize = evs
        .iter()
        .map(|e| match e {
            E::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(body, 65_535);
}

/// Found by the h2_conn_server fuzz target: DATA after a 204 head (or on the answer to a
/// HEAD request) went out, and the client reset the stream (RFC 9113 §8.1.1: such a
/// response has no content). The state machine refuses the bytes; an empty END_STREAM or
/// trailers still end the stream.
#[test]
fn no_body_bytes_on_answers_without_content() {
    for (method, status) in [("HEAD", 200u16), ("GET", 204), ("GET", 304), ("HEAD", 404)] {
        let (mut s, mut c, _) = server();
        feed(&mut s, &c.headers_with(1, method, "/", &[], true).take());
        let id = StreamId::new(1);
        let res = http::Response::builder().status(status).body(()).unwrap();
        s.send_response(id, &res, false).unwrap();
        assert_eq!(
            s.send_data(id, b"body", false),
            Err(spindle::h2::proto::SendError::InvalidState),
            "{method} {status}"
        );
        assert_eq!(s.send_capacity(id), 0, "{method} {status}");
        assert_eq!(s.send_data(id, b"", true), Ok(0), "{method} {status}");
        assert_eq!(s.stream_state(id), StreamState::Closed);
    }
    // A GET answered 200 sends its body as before.
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    s.send_response(StreamId::new(1), &res200(), false).unwrap();
    assert_eq!(s.send_data(StreamId::new(1), b"body", true), Ok(4));
}

/// Found by the h2_conn_server fuzz target: a stream window grown with WINDOW_UPDATE, then
/// a SETTINGS_INITIAL_WINDOW_SIZE raise, took the window past 2^31-1; the peer must treat
/// that as a connection error FLOW_CONTROL_ERROR (RFC 9113 §6.9.2). Such a SETTINGS is
/// refused before anything is sent.
#[test]
fn an_initial_window_raise_that_overflows_a_grown_window_is_refused() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", false).take());
    let id = StreamId::new(1);
    s.grow_recv_window(id, 0x7000_0000);
    s.take_output();
    assert_eq!(
        s.send_settings(&[(SettingId::InitialWindowSize, 0x7fff_ffff)]),
        Err(spindle::h2::proto::SendError::InvalidSetting)
    );
    assert!(s.take_output().is_empty(), "nothing sent");
    // A raise that fits is sent.
    s.send_settings(&[(SettingId::InitialWindowSize, 0x0fff_ffff)])
        .unwrap();
    assert!(!s.take_output().is_empty());
}

/// Found by the h2_conn_server fuzz target: after our GOAWAY, a request in flight above its
/// last-stream-id is ignored (RFC 9113 §6.8), but the trailers that ended it were a
/// connection error PROTOCOL_ERROR; every frame of such a stream is ignored.
#[test]
fn frames_of_a_stream_above_our_goaway_are_all_ignored() {
    let (mut s, mut c, _) = server();
    feed(&mut s, &c.headers(1, "/", true).take());
    s.goaway(Reason::NoError, b"");
    s.take_output();
    let b = c
        .headers(3, "/up", false)
        .data(3, b"body", false)
        .trailers(3, &[("x-sum", "1")], true)
        .headers(5, "/", true)
        .take();
    let (fs, evs) = feed(&mut s, &b);
    assert!(fs.is_empty(), "{fs:?}");
    assert!(evs.is_empty(), "{evs:?}");
    // Stream 1, accepted before the GOAWAY, is still answered.
    s.send_response(StreamId::new(1), &res200(), true).unwrap();
}

/// Found by the h2_conn_server fuzz target: a request refused for its content-length came
/// out as a Reset event for a stream the application never saw a Request for.
#[test]
fn a_request_malformed_by_its_length_is_reset_without_events() {
    for (extra, end) in [
        ([("content-length", "x")], false),
        ([("content-length", "4")], true),
    ] {
        let (mut s, mut c, _) = server();
        let (fs, evs) = feed(&mut s, &c.headers_with(1, "POST", "/", &extra, end).take());
        assert_eq!(rst_reason(&fs, 1), Some(Reason::ProtocolError), "{fs:?}");
        assert!(evs.is_empty(), "{evs:?}");
        assert_eq!(s.active_streams(), 0);
        assert_eq!(s.stream_state(StreamId::new(1)), StreamState::Closed);
    }
}

/// Found by the h2_conn_server fuzz target: after a smaller SETTINGS_INITIAL_WINDOW_SIZE
/// took a stream's window below zero (RFC 9113 §6.9.2), an empty DATA frame that only
/// carries END_STREAM was a FLOW_CONTROL_ERROR, although it consumes no window.
#[test]
fn an_empty_end_stream_is_accepted_with_a_negative_window() {
    let cfg = Config {
        initial_stream_window: 65_535,
        ..Config::default()
    };
    let (mut s, mut c, _) = server_with(cfg);
    let b = c
        .headers(1, "/", false)
        .data(1, &pattern(16_384, 1), false)
        .data(1, &pattern(16_384, 2), false)
        .take();
    feed(&mut s, &b);
    s.send_settings(&[(SettingId::InitialWindowSize, 0)])
        .unwrap();
    s.take_output();
    feed(&mut s, &c.settings_ack().take());
    let (fs, evs) = feed(&mut s, &c.data(1, b"", true).take());
    assert_eq!(rst_reason(&fs, 1), None, "{fs:?}");
    assert!(
        evs.contains(&E::Data {
            id: 1,
            data: vec![],
            end_stream: true
        }),
        "{evs:?}"
    );
    // A byte more than the window is still refused.
    let (mut s, mut c, _) = server_with(Config {
        initial_stream_window: 65_535,
        ..Config::default()
    });
    feed(
        &mut s,
        &c.headers(1, "/", false)
            .data(1, &pattern(16_384, 1), false)
            .take(),
    );
    s.send_settings(&[(SettingId::InitialWindowSize, 0)])
        .unwrap();
    feed(&mut s, &c.settings_ack().take());
    let (fs, _) = feed(&mut s, &c.data(1, b"x", true).take());
    assert_eq!(rst_reason(&fs, 1), Some(Reason::FlowControlError), "{fs:?}");
}
