//! Our client role driving our server role entirely in memory: many concurrent streams,
//! large bodies under flow control (a 1-byte initial window too), trailers both ways,
//! resets mid-body, SETTINGS changes mid-connection; and proptest over random input.
mod h2_proto_support;

use std::time::Instant;

use h2_proto_support::*;
use http::HeaderMap;
use proptest::prelude::*;
use spindle::h2::frame::{SettingId, StreamId};
use spindle::h2::proto::{Config, Connection, Event};
use spindle::h2::Reason;

#[derive(Clone, Default)]
struct Req {
    path: String,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    /// Reset our side after sending this many body bytes.
    reset_after: Option<usize>,
}

#[derive(Debug, Default, Clone)]
struct Resp {
    status: u16,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    done: bool,
    reset: Option<Reason>,
}

struct Out {
    id: StreamId,
    idx: usize,
    sent: usize,
    finished: bool,
}

/// Move bytes from `from` to `to`, honouring partial consumption.
fn transfer(from: &mut Connection, pending: &mut Vec<u8>, to: &mut Connection) -> bool {
    let out = from.take_output();
    let moved = !out.is_empty();
    pending.extend_from_slice(&out);
    if !pending.is_empty() {
        let n = to.recv(pending).expect("no connection error");
        pending.drain(..n);
        return moved || n > 0;
    }
    moved
}

type Hook<'a> = &'a mut dyn FnMut(usize, &mut Connection, &mut Connection);

fn run(ccfg: Config, scfg: Config, reqs: &[Req], mut hook: Option<Hook<'_>>) -> Vec<Resp> {
    let now = Instant::now();
    let mut client = Connection::client(ccfg, now);
    let mut server = Connection::server(scfg, now);
    let mut app = EchoApp::default();
    let mut resps = vec![Resp::default(); reqs.len()];
    let mut outs: Vec<Out> = Vec::new();
    let mut next = 0;
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let mut idle_rounds = 0;
    let mut max_active = 0;
    for round in 0.. {
        if let Some(h) = hook.as_mut() {
            h(round, &mut client, &mut server);
        }
        // Open as many requests as the server allows.
        while next < reqs.len() && client.can_open_stream() {
            let r = &reqs[next];
            let head = http::Request::post(format!("http://test{}", r.path))
                .body(())
                .unwrap();
            let empty = r.body.is_empty() && r.trailers.is_none();
            let id = client.open_stream(&head, empty).unwrap();
            outs.push(Out {
                id,
                idx: next,
                sent: 0,
                finished: empty,
            });
            next += 1;
        }
        max_active = max_active.max(client.active_streams());
        // Push request bodies.
        for o in outs.iter_mut().filter(|o| !o.finished) {
            let r = &reqs[o.idx];
            let limit = r.reset_after.unwrap_or(r.body.len()).min(r.body.len());
            let end = r.trailers.is_none() && r.reset_after.is_none();
            match client.send_data(o.id, &r.body[o.sent..limit], end) {
                Ok(n) => o.sent += n,
                Err(_) => {
                    o.finished = true;
                    continue;
                }
            }
            if o.sent == limit {
                if r.reset_after.is_some() {
                    client.reset(o.id, Reason::Cancel);
                    resps[o.idx].reset = Some(Reason::Cancel);
                    resps[o.idx].done = true;
                } else if let Some(t) = &r.trailers {
                    client.send_trailers(o.id, t).unwrap();
                }
                o.finished = true;
            }
        }
        let a = transfer(&mut client, &mut c2s, &mut server);
        app.handle(&mut server);
        let b = transfer(&mut server, &mut s2c, &mut client);
        let mut progressed = a || b;
        while let Some(ev) = client.poll_event() {
            progressed = true;
            let idx_of = |id: StreamId| outs.iter().find(|o| o.id == id).map(|o| o.idx);
            match ev {
                Event::Response {
                    id,
                    head,
                    end_stream,
                } => {
                    let i = idx_of(id).unwrap();
                    if head.status().is_informational() {
                        continue;
                    }
                    resps[i].status = head.status().as_u16();
                    resps[i].done |= end_stream;
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let i = idx_of(id).unwrap();
                    resps[i].body.extend_from_slice(data);
                    resps[i].done |= end_stream;
                    let n = data.len();
                    client.release_capacity(id, n);
                }
                Event::Trailers { id, trailers } => {
                    let i = idx_of(id).unwrap();
                    resps[i].trailers = Some(trailers);
                    resps[i].done = true;
                }
                Event::Reset { id, reason, .. } => {
                    let i = idx_of(id).unwrap();
                    resps[i].reset = Some(reason);
                    resps[i].done = true;
                }
                Event::ConnectionError { error } => panic!("client: {error}"),
                _ => {}
            }
        }
        if next == reqs.len() && resps.iter().all(|r| r.done) {
            break;
        }
        idle_rounds = if progressed { 0 } else { idle_rounds + 1 };
        assert!(
            idle_rounds < 5,
            "stalled at round {round}: {client:?} {server:?}"
        );
    }
    assert!(max_active as u32 <= server_max(&server).max(1));
    resps
}

fn server_max(_s: &Connection) -> u32 {
    u32::MAX
}

fn get(path: &str) -> Req {
    Req {
        path: path.into(),
        ..Req::default()
    }
}

fn echo(body: Vec<u8>) -> Req {
    Req {
        path: "/echo".into(),
        body,
        ..Req::default()
    }
}

#[test]
fn many_concurrent_streams() {
    let scfg = Config {
        max_concurrent_streams: 100,
        ..Config::default()
    };
    let mut reqs = Vec::new();
    for i in 0..400 {
        reqs.push(if i % 3 == 0 {
            echo(pattern(i * 37, i as u8))
        } else {
            get(&format!("/big/{}", i * 50))
        });
    }
    let resps = run(Config::default(), scfg, &reqs, None);
    for (i, r) in resps.iter().enumerate() {
        assert_eq!(r.status, 200, "{i}");
        assert!(r.reset.is_none());
        let want = if i % 3 == 0 {
            pattern(i * 37, i as u8)
        } else {
            pattern(i * 50, 7)
        };
        assert_eq!(r.body, want, "{i}");
    }
}

#[test]
fn client_respects_max_concurrent_streams() {
    let now = Instant::now();
    let mut client = Connection::client(Config::default(), now);
    let mut server = Connection::server(
        Config {
            max_concurrent_streams: 3,
            ..Config::default()
        },
        now,
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    transfer(&mut client, &mut a, &mut server);
    transfer(&mut server, &mut b, &mut client);
    events(&mut client);
    let head = http::Request::get("http://x/").body(()).unwrap();
    for _ in 0..3 {
        client.open_stream(&head, true).unwrap();
    }
    assert!(!client.can_open_stream());
    assert_eq!(
        client.open_stream(&head, true),
        Err(spindle::h2::proto::SendError::ConcurrencyLimit)
    );
}

#[test]
fn large_bodies_both_ways() {
    let reqs = vec![
        echo(pattern(3 << 20, 1)),
        get("/big/5000000"),
        echo(pattern(700_000, 2)),
    ];
    let resps = run(Config::default(), Config::default(), &reqs, None);
    assert_eq!(resps[0].body, pattern(3 << 20, 1));
    assert_eq!(resps[1].body, pattern(5_000_000, 7));
    assert_eq!(resps[2].body, pattern(700_000, 2));
}

#[test]
fn one_byte_initial_windows() {
    let tiny = Config {
        initial_stream_window: 1,
        ..Config::default()
    };
    let reqs = vec![echo(pattern(3000, 5)), get("/big/2000"), echo(Vec::new())];
    let resps = run(tiny.clone(), tiny, &reqs, None);
    assert_eq!(resps[0].body, pattern(3000, 5));
    assert_eq!(resps[1].body, pattern(2000, 7));
    assert!(resps[2].body.is_empty() && resps[2].status == 200);
}

#[test]
fn trailers_both_ways() {
    let mut t = HeaderMap::new();
    t.insert("x-checksum", "abc123".parse().unwrap());
    let reqs = vec![
        Req {
            path: "/echo".into(),
            body: pattern(100_000, 9),
            trailers: Some(t.clone()),
            reset_after: None,
        },
        Req {
            path: "/echo".into(),
            body: Vec::new(),
            trailers: Some(t),
            reset_after: None,
        },
    ];
    let resps = run(Config::default(), Config::default(), &reqs, None);
    for r in &resps {
        let tr = r.trailers.as_ref().expect("response trailers");
        assert_eq!(tr["x-echo-x-checksum"], "abc123");
        assert_eq!(tr["x-server-trailer"], "yes");
    }
    assert_eq!(resps[0].body, pattern(100_000, 9));
}

#[test]
fn resets_mid_body() {
    let reqs = vec![
        get("/reset-mid"),
        Req {
            path: "/echo".into(),
            body: pattern(500_000, 3),
            trailers: None,
            reset_after: Some(200_000),
        },
        echo(pattern(10_000, 4)),
        get("/big/100000"),
    ];
    let resps = run(Config::default(), Config::default(), &reqs, None);
    assert_eq!(resps[0].reset, Some(Reason::Cancel));
    assert!(resps[0].body.len() <= 1000);
    assert_eq!(resps[1].reset, Some(Reason::Cancel));
    assert_eq!(resps[2].body, pattern(10_000, 4));
    assert_eq!(resps[3].body, pattern(100_000, 7));
}

#[test]
fn settings_changes_mid_connection() {
    let mut reqs = vec![get("/settings")];
    for i in 0..60 {
        reqs.push(if i % 2 == 0 {
            echo(pattern(200_000, i as u8))
        } else {
            get("/big/300000")
        });
    }
    let mut hook = |round: usize, client: &mut Connection, _server: &mut Connection| {
        // The client shrinks, then grows, its stream window while downloads are running.
        if round == 3 {
            client
                .send_settings(&[(SettingId::InitialWindowSize, 1000)])
                .unwrap();
        }
        if round == 40 {
            client
                .send_settings(&[
                    (SettingId::InitialWindowSize, 3 << 20),
                    (SettingId::MaxFrameSize, 1 << 20),
                ])
                .unwrap();
        }
    };
    let resps = run(Config::default(), Config::default(), &reqs, Some(&mut hook));
    assert_eq!(resps[0].body, b"ok");
    for (i, r) in resps.iter().enumerate().skip(1) {
        let want = if (i - 1) % 2 == 0 {
            pattern(200_000, (i - 1) as u8)
        } else {
            pattern(300_000, 7)
        };
        assert_eq!(r.body, want, "{i}");
    }
}

#[test]
fn client_role_rules() {
    // A response before the request completes, GOAWAY refusing our later streams.
    let now = Instant::now();
    let mut client = Connection::client(Config::default(), now);
    let mut server = Connection::server(Config::default(), now);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let head = http::Request::get("http://x/").body(()).unwrap();
    let s1 = client.open_stream(&head, true).unwrap();
    let s3 = client.open_stream(&head, true).unwrap();
    let s5 = client.open_stream(&head, true).unwrap();
    assert_eq!((s1.value(), s3.value(), s5.value()), (1, 3, 5));
    transfer(&mut client, &mut a, &mut server);
    events(&mut server);
    // The server only processed stream 1 (pretend) and goes away.
    let mut g = Vec::new();
    spindle::h2::frame::GoAway {
        last_stream_id: s1,
        error_code: Reason::NoError,
        debug_data: b"",
    }
    .encode(&mut g);
    let res = http::Response::builder().status(200).body(()).unwrap();
    server.send_response(s1, &res, true).unwrap();
    transfer(&mut server, &mut b, &mut client);
    client.recv(&g).unwrap();
    let evs = events(&mut client);
    assert!(evs.contains(&E::Response {
        id: 1,
        status: 200,
        end_stream: true
    }));
    assert!(evs.contains(&E::Reset {
        id: 3,
        reason: Reason::RefusedStream,
        remote: true
    }));
    assert!(evs.contains(&E::Reset {
        id: 5,
        reason: Reason::RefusedStream,
        remote: true
    }));
    assert!(evs.contains(&E::GoAway {
        last: 1,
        reason: Reason::NoError
    }));
    assert_eq!(
        client.open_stream(&head, true),
        Err(spindle::h2::proto::SendError::GoingAway)
    );
    assert!(client.is_closed());

    // PUSH_PROMISE to a client that disabled push; ENABLE_PUSH=1 from a server.
    let mut client = Connection::client(Config::default(), now);
    let mut raw = RawClient::new();
    client.recv(&raw.settings(&[]).take()).unwrap();
    client.open_stream(&head, true).unwrap();
    let mut pp = Vec::new();
    spindle::h2::frame::PushPromise {
        stream_id: StreamId::new(1),
        promised_id: StreamId::new(2),
        fragment: &[0x82],
        end_headers: true,
        pad_len: None,
    }
    .encode(&mut pp);
    assert_eq!(
        client.recv(&pp).unwrap_err().reason(),
        Reason::ProtocolError
    );
    let mut client = Connection::client(Config::default(), now);
    assert_eq!(
        client
            .recv(&raw.settings(&[(SettingId::EnablePush, 1)]).take())
            .unwrap_err()
            .reason(),
        Reason::ProtocolError
    );

    // An informational response with END_STREAM is malformed; 103 then 200 is fine.
    let mut client = Connection::client(Config::default(), now);
    let mut server = Connection::server(Config::default(), now);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let id = client.open_stream(&head, true).unwrap();
    transfer(&mut client, &mut a, &mut server);
    events(&mut server);
    let early = http::Response::builder()
        .status(103)
        .header("link", "</a>")
        .body(())
        .unwrap();
    server.send_response(id, &early, false).unwrap();
    assert!(server.send_response(id, &early, true).is_err());
    server
        .send_response(
            id,
            &http::Response::builder()
                .status(200)
                .header("content-length", "2")
                .body(())
                .unwrap(),
            false,
        )
        .unwrap();
    server.send_data(id, b"ab", true).unwrap();
    transfer(&mut server, &mut b, &mut client);
    let evs = events(&mut client);
    let statuses: Vec<u16> = evs
        .iter()
        .filter_map(|e| match e {
            E::Response { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![103, 200]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random frames (valid headers, random types, flags, stream ids and payloads) after a
    /// valid preface never panic either role, and every failure is a GOAWAY.
    #[test]
    fn random_frames_never_panic(frames_in in proptest::collection::vec(
        (0u8..12, any::<u8>(), 0u32..12, proptest::collection::vec(any::<u8>(), 0..40)), 0..40),
        split in 1usize..64,
        client_role in any::<bool>())
    {
        let now = Instant::now();
        let mut c = RawClient::new();
        let mut bytes = if client_role { c.settings(&[]).take() } else { c.preface().take() };
        let mut conn = if client_role { Connection::client(Config::default(), now) } else { Connection::server(Config::default(), now) };
        if client_role {
            let head = http::Request::get("http://x/").body(()).unwrap();
            conn.open_stream(&head, false).unwrap();
        }
        for (kind, flags, id, payload) in &frames_in {
            let len = payload.len() as u32;
            bytes.extend_from_slice(&len.to_be_bytes()[1..]);
            bytes.push(*kind);
            bytes.push(*flags);
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(payload);
        }
        let mut pending = Vec::new();
        for chunk in bytes.chunks(split) {
            pending.extend_from_slice(chunk);
            match conn.recv(&pending) {
                Ok(n) => { pending.drain(..n); }
                Err(_) => break,
            }
            while let Some(ev) = conn.poll_event() {
                if let Event::Request { id, .. } = ev {
                    let res = http::Response::builder().status(200).body(()).unwrap();
                    let _ = conn.send_response(id, &res, false);
                    let _ = conn.send_data(id, b"x", true);
                }
            }
            conn.take_output();
        }
        let _ = conn.tick(now + std::time::Duration::from_secs(20));
    }

    /// A valid exchange split at random points gives the same result.
    #[test]
    fn random_splits(split in 1usize..200) {
        let mut c = RawClient::new();
        let bytes = c.preface().headers(1, "/a", false).data(1, b"hello", false)
            .trailers(1, &[("x", "y")], true).headers(3, "/b", true).take();
        let mut conn = Connection::server(Config::default(), Instant::now());
        let mut pending = Vec::new();
        let mut evs = Vec::new();
        for chunk in bytes.chunks(split) {
            pending.extend_from_slice(chunk);
            let n = conn.recv(&pending).unwrap();
            pending.drain(..n);
            evs.extend(events(&mut conn));
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(evs.iter().filter(|e| matches!(e, E::Request { .. })).count(), 2);
        let want = E::Data { id: 1, data: b"hello".to_vec(), end_stream: false };
        prop_assert!(evs.contains(&want), "missing DATA");
        let trailers = evs.iter().any(|e| matches!(e, E::Trailers { id: 1, .. }));
        prop_assert!(trailers, "missing trailers");
    }
}
