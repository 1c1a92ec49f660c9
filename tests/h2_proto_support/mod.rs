//! Shared by the h2_proto_* tests: a raw frame peer and an in-memory echo application
//! driving the server role.
#![allow(dead_code)]
use std::collections::HashMap;
use std::time::Instant;

use http::HeaderMap;
use spindle::h2::frame::*;
use spindle::h2::hpack::Encoder;
use spindle::h2::proto::{Config, Connection, Event};
use spindle::h2::{headers, Reason};

/// A frame from the connection's output, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum F {
    Settings {
        ack: bool,
        values: Vec<(SettingId, u32)>,
    },
    Headers {
        id: u32,
        end_stream: bool,
        end_headers: bool,
        block: Vec<u8>,
    },
    Continuation {
        id: u32,
        end_headers: bool,
        block: Vec<u8>,
    },
    Data {
        id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Rst {
        id: u32,
        reason: Reason,
    },
    GoAway {
        last: u32,
        reason: Reason,
    },
    WindowUpdate {
        id: u32,
        inc: u32,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    Other,
}

/// Decode every frame of `bytes` (which must hold whole frames).
pub fn frames(mut bytes: &[u8]) -> Vec<F> {
    let mut dec = FrameDecoder::new();
    dec.set_max_frame_size(MAX_MAX_FRAME_SIZE);
    if bytes.starts_with(spindle::h2::preface::CLIENT_MAGIC) {
        bytes = &bytes[24..];
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match dec.decode(bytes).expect("valid frame") {
            Decoded::NeedMore(_) => panic!("partial frame in output"),
            Decoded::Frame { frame, consumed } => {
                bytes = &bytes[consumed..];
                out.push(match frame {
                    Frame::Settings(s) => F::Settings {
                        ack: s.is_ack(),
                        values: s.iter().collect(),
                    },
                    Frame::Headers(h) => F::Headers {
                        id: h.stream_id.value(),
                        end_stream: h.end_stream,
                        end_headers: h.end_headers,
                        block: h.fragment.to_vec(),
                    },
                    Frame::Continuation(c) => F::Continuation {
                        id: c.stream_id.value(),
                        end_headers: c.end_headers,
                        block: c.fragment.to_vec(),
                    },
                    Frame::Data(d) => F::Data {
                        id: d.stream_id.value(),
                        data: d.data.to_vec(),
                        end_stream: d.end_stream,
                    },
                    Frame::RstStream(r) => F::Rst {
                        id: r.stream_id.value(),
                        reason: r.error_code,
                    },
                    Frame::GoAway(g) => F::GoAway {
                        last: g.last_stream_id.value(),
                        reason: g.error_code,
                    },
                    Frame::WindowUpdate(w) => F::WindowUpdate {
                        id: w.stream_id.value(),
                        inc: w.increment,
                    },
                    Frame::Ping(p) => F::Ping {
                        ack: p.ack,
                        payload: p.payload,
                    },
                    _ => F::Other,
                });
            }
        }
    }
    out
}

/// A hand-driven client: builds frames byte by byte.
pub struct RawClient {
    pub enc: Encoder,
    pub buf: Vec<u8>,
}

impl RawClient {
    pub fn new() -> RawClient {
        RawClient {
            enc: Encoder::new(),
            buf: Vec::new(),
        }
    }
    pub fn preface(&mut self) -> &mut Self {
        self.buf
            .extend_from_slice(spindle::h2::preface::CLIENT_MAGIC);
        self.settings(&[])
    }
    pub fn settings(&mut self, v: &[(SettingId, u32)]) -> &mut Self {
        Settings::encode_values(v, &mut self.buf);
        self
    }
    pub fn settings_ack(&mut self) -> &mut Self {
        Settings::ack().encode(&mut self.buf);
        self
    }
    pub fn block(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://x{path}"));
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = b.body(()).unwrap();
        let mut block = Vec::new();
        headers::encode_request(&mut self.enc, &req, &mut block);
        block
    }
    pub fn headers(&mut self, id: u32, path: &str, end_stream: bool) -> &mut Self {
        self.headers_with(id, "GET", path, &[], end_stream)
    }
    pub fn headers_with(
        &mut self,
        id: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end_stream: bool,
    ) -> &mut Self {
        let block = self.block(method, path, extra);
        encode_header_block(StreamId::new(id), &block, end_stream, 16384, &mut self.buf);
        self
    }
    pub fn trailers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) -> &mut Self {
        let mut m = HeaderMap::new();
        for (k, v) in fields {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let mut block = Vec::new();
        headers::encode_trailers(&mut self.enc, &m, &mut block);
        encode_header_block(StreamId::new(id), &block, end_stream, 16384, &mut self.buf);
        self
    }
    pub fn data(&mut self, id: u32, data: &[u8], end_stream: bool) -> &mut Self {
        Data {
            stream_id: StreamId::new(id),
            data,
            end_stream,
            pad_len: None,
        }
        .encode(&mut self.buf);
        self
    }
    pub fn padded(&mut self, id: u32, data: &[u8], pad: u8, end_stream: bool) -> &mut Self {
        Data {
            stream_id: StreamId::new(id),
            data,
            end_stream,
            pad_len: Some(pad),
        }
        .encode(&mut self.buf);
        self
    }
    pub fn rst(&mut self, id: u32, reason: Reason) -> &mut Self {
        RstStream {
            stream_id: StreamId::new(id),
            error_code: reason,
        }
        .encode(&mut self.buf);
        self
    }
    pub fn window_update(&mut self, id: u32, inc: u32) -> &mut Self {
        WindowUpdate {
            stream_id: StreamId::new(id),
            increment: inc,
        }
        .encode(&mut self.buf);
        self
    }
    pub fn ping(&mut self, payload: [u8; 8], ack: bool) -> &mut Self {
        Ping { ack, payload }.encode(&mut self.buf);
        self
    }
    pub fn priority(&mut self, id: u32, dep: u32) -> &mut Self {
        Priority {
            stream_id: StreamId::new(id),
            spec: PrioritySpec {
                dependency: StreamId::new(dep),
                exclusive: false,
                weight: 15,
            },
        }
        .encode(&mut self.buf);
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// An owned copy of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum E {
    Request {
        id: u32,
        path: String,
        end_stream: bool,
        headers: HeaderMap,
    },
    TooLarge {
        id: u32,
    },
    Response {
        id: u32,
        status: u16,
        end_stream: bool,
    },
    Data {
        id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Trailers {
        id: u32,
        trailers: HeaderMap,
    },
    Reset {
        id: u32,
        reason: Reason,
        remote: bool,
    },
    Capacity {
        id: u32,
    },
    GoAway {
        last: u32,
        reason: Reason,
    },
    SettingsReceived,
    SettingsAcked,
    PingAck([u8; 8]),
    Error(Reason),
}

pub fn own(ev: Event<'_>) -> E {
    match ev {
        Event::Request {
            id,
            head,
            end_stream,
        } => E::Request {
            id: id.value(),
            path: head.uri().path().to_string(),
            end_stream,
            headers: head.headers().clone(),
        },
        Event::HeadersTooLarge { id, .. } => E::TooLarge { id: id.value() },
        Event::Response {
            id,
            head,
            end_stream,
        } => E::Response {
            id: id.value(),
            status: head.status().as_u16(),
            end_stream,
        },
        Event::Data {
            id,
            data,
            end_stream,
        } => E::Data {
            id: id.value(),
            data: data.to_vec(),
            end_stream,
        },
        Event::Trailers { id, trailers } => E::Trailers {
            id: id.value(),
            trailers,
        },
        Event::Reset { id, reason, remote } => E::Reset {
            id: id.value(),
            reason,
            remote,
        },
        Event::Capacity { id } => E::Capacity { id: id.value() },
        Event::GoAway {
            last_stream_id,
            reason,
            ..
        } => E::GoAway {
            last: last_stream_id.value(),
            reason,
        },
        Event::SettingsReceived => E::SettingsReceived,
        Event::SettingsAcked => E::SettingsAcked,
        Event::PingAck { payload } => E::PingAck(payload),
        Event::ConnectionError { error } => E::Error(error.reason()),
        _ => panic!("unknown event"),
    }
}

pub fn events(c: &mut Connection) -> Vec<E> {
    let mut v = Vec::new();
    while let Some(e) = c.poll_event() {
        v.push(own(e));
    }
    v
}

/// A server that has completed the preface with a raw client (output drained).
pub fn server_with(cfg: Config) -> (Connection, RawClient, Instant) {
    let now = Instant::now();
    let mut s = Connection::server(cfg, now);
    let mut c = RawClient::new();
    let b = c.preface().settings_ack().take();
    assert_eq!(s.recv(&b).unwrap(), b.len());
    s.take_output();
    let evs = events(&mut s);
    assert!(evs.contains(&E::SettingsReceived), "{evs:?}");
    (s, c, now)
}

pub fn server() -> (Connection, RawClient, Instant) {
    server_with(Config::default())
}

/// Feed all of `b`, returning the frames written and the events.
pub fn feed(s: &mut Connection, b: &[u8]) -> (Vec<F>, Vec<E>) {
    let _ = s.recv(b);
    let evs = events(s);
    (frames(&s.take_output()), evs)
}

pub fn goaway_reason(fs: &[F]) -> Option<Reason> {
    fs.iter().find_map(|f| match f {
        F::GoAway { reason, .. } => Some(*reason),
        _ => None,
    })
}

pub fn rst_reason(fs: &[F], id: u32) -> Option<Reason> {
    fs.iter().find_map(|f| match f {
        F::Rst { id: i, reason } if *i == id => Some(*reason),
        _ => None,
    })
}

pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The server application used by the round-trip and Python tests.
///
/// - `/echo`: answers once the request is complete with the request body, and echoes
///   request trailers as `x-echo-<name>` response trailers (also `x-server-trailer: yes`
///   when the request had trailers).
/// - `/big/N`: N bytes of `pattern(N, 7)`.
/// - `/reset-mid`: a head, 1000 body bytes, then RST_STREAM(CANCEL).
/// - `/settings`: changes the server's SETTINGS (initial window 32768, max streams 50)
///   before answering 200 "ok".
#[derive(Default)]
pub struct EchoApp {
    pub streams: HashMap<u32, AppStream>,
    pub completed: usize,
    pub resets: usize,
}

#[derive(Default)]
pub struct AppStream {
    pub path: String,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    pub out: Vec<u8>,
    pub sent: usize,
    pub out_trailers: Option<HeaderMap>,
    pub responding: bool,
}

impl EchoApp {
    pub fn handle(&mut self, conn: &mut Connection) {
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Request {
                    id,
                    head,
                    end_stream,
                } => {
                    self.streams.insert(
                        id.value(),
                        AppStream {
                            path: head.uri().path().to_string(),
                            ..Default::default()
                        },
                    );
                    if end_stream {
                        self.respond(conn, id.value());
                    }
                }
                Event::HeadersTooLarge { id, end_stream } => {
                    let res = http::Response::builder().status(431).body(()).unwrap();
                    conn.send_response(id, &res, true).unwrap();
                    if !end_stream {
                        conn.reset(id, Reason::NoError);
                    }
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    if let Some(s) = self.streams.get_mut(&id.value()) {
                        s.body.extend_from_slice(data);
                    }
                    conn.release_capacity(id, n);
                    if end_stream {
                        self.respond(conn, id.value());
                    }
                }
                Event::Trailers { id, trailers } => {
                    if let Some(s) = self.streams.get_mut(&id.value()) {
                        s.trailers = Some(trailers);
                    }
                    self.respond(conn, id.value());
                }
                Event::Reset { id, .. } => {
                    self.resets += 1;
                    self.streams.remove(&id.value());
                }
                _ => {}
            }
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.push(conn, id);
        }
    }

    fn respond(&mut self, conn: &mut Connection, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let sid = StreamId::new(id);
        s.responding = true;
        let mut res = http::Response::builder().status(200);
        if s.path == "/echo" {
            s.out = std::mem::take(&mut s.body);
            if let Some(t) = &s.trailers {
                let mut m = HeaderMap::new();
                for (k, v) in t {
                    m.append(
                        http::HeaderName::from_bytes(format!("x-echo-{k}").as_bytes()).unwrap(),
                        v.clone(),
                    );
                }
                m.insert("x-server-trailer", "yes".parse().unwrap());
                s.out_trailers = Some(m);
            }
        } else if let Some(n) = s.path.strip_prefix("/big/") {
            let n: usize = n.parse().unwrap();
            s.out = pattern(n, 7);
            res = res.header("content-length", n);
        } else if s.path == "/reset-mid" {
            s.out = pattern(1000, 1);
        } else if s.path == "/settings" {
            conn.send_settings(&[
                (SettingId::InitialWindowSize, 32768),
                (SettingId::MaxConcurrentStreams, 50),
            ])
            .unwrap();
            s.out = b"ok".to_vec();
        } else {
            res = res.status(404);
        }
        conn.send_response(sid, &res.body(()).unwrap(), false)
            .unwrap();
        self.push(conn, id);
    }

    fn push(&mut self, conn: &mut Connection, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if !s.responding {
            return;
        }
        let sid = StreamId::new(id);
        if s.path == "/reset-mid" {
            conn.send_data(sid, &s.out, false).unwrap();
            conn.reset(sid, Reason::Cancel);
            self.streams.remove(&id);
            return;
        }
        let end = s.out_trailers.is_none();
        let n = match conn.send_data(sid, &s.out[s.sent..], end) {
            Ok(n) => n,
            Err(_) => {
                self.streams.remove(&id);
                return;
            }
        };
        s.sent += n;
        if s.sent == s.out.len() {
            if let Some(t) = s.out_trailers.take() {
                conn.send_trailers(sid, &t).unwrap();
            }
            self.streams.remove(&id);
            self.completed += 1;
        }
    }
}
