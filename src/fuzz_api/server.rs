//! The real HTTP/1 server connection code (`server::http1`) over an in-memory
//! transport, for the `h1_exchange` fuzz target: the peer's bytes go in, in pieces with
//! "would block" pauses between them, and what the server wrote comes out.
use std::io;
use std::net::Shutdown;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::h1::head::HeadLimits;
use crate::runtime::transport::Transport;
use crate::server::config::Config;
use crate::server::http1::{self as h1conn, H1Conn, Next, Scratch};
use crate::server::Handler;

/// Most bytes the in-memory peer takes before its writes fail: bounds the memory a run
/// may use, and a server that writes more than this for a fuzz input is a finding.
pub const MAX_OUTPUT: usize = 8 << 20;

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it, for this reason (the `Fate`, as text).
    Closed(String),
    /// The first bytes were the HTTP/2 preface: HTTP/2 would take over.
    Http2,
    /// An `Upgrade: h2c` request was answered 101: HTTP/2 would take over.
    H2cUpgrade,
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    /// Every byte the server wrote, in order.
    pub output: Vec<u8>,
    /// How the connection ended.
    pub ending: Ending,
    /// The server shut down its writing side.
    pub shut_down: bool,
}

/// Server settings a run may change.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Request head limits.
    pub limits: HeadLimits,
    /// The unread-body drain limit.
    pub drain_limit: u64,
    /// Keep-alive on or off.
    pub keep_alive: bool,
    /// Request body bytes the loop reads ahead before the handler runs.
    pub body_buffer: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let cfg = Config::default();
        Settings {
            limits: cfg.limits,
            drain_limit: cfg.drain_limit,
            keep_alive: cfg.keep_alive,
            body_buffer: cfg.body_buffer,
        }
    }
}

struct Peer<'a> {
    state: Mutex<PeerState<'a>>,
    /// Called with the output so far whenever the server waits for the peer.
    at_wait: &'a (dyn Fn(&[u8]) + Sync),
}

struct PeerState<'a> {
    input: &'a [u8],
    /// Where the input pauses ("would block" once), ascending.
    pauses: Vec<usize>,
    pos: usize,
    paused_at: Option<usize>,
    output: Vec<u8>,
    shut_down: bool,
}

impl PeerState<'_> {
    /// Bytes from here to the next pause (or the end).
    fn available(&self) -> usize {
        let next = self
            .pauses
            .iter()
            .copied()
            .find(|&p| p > self.pos)
            .unwrap_or(self.input.len());
        next.min(self.input.len()).saturating_sub(self.pos)
    }

    fn take(&mut self, buf: &mut [u8], limit: usize) -> usize {
        let n = limit.min(buf.len());
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

fn lock<'g, T>(m: &'g Mutex<T>) -> std::sync::MutexGuard<'g, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transport for Peer<'_> {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A blocking read waits through a pause: the next piece "arrives" once the
        // peer has seen what the server wrote so far.
        let mut st = lock(&self.state);
        if st.pos < st.input.len() && st.pauses.binary_search(&st.pos).is_ok() {
            (self.at_wait)(&st.output);
        }
        let available = st.available();
        Ok(st.take(buf, available))
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = lock(&self.state);
        let at = st.pos;
        if at < st.input.len() && st.paused_at != Some(at) && st.pauses.binary_search(&at).is_ok() {
            st.paused_at = Some(at);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let available = st.available();
        Ok(st.take(buf, available))
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = lock(&self.state);
        if st.shut_down {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if st.output.len() + buf.len() > MAX_OUTPUT {
            return Err(io::Error::other("the in-memory peer's output bound"));
        }
        st.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            lock(&self.state).shut_down = true;
        }
        Ok(())
    }
}

/// Serves `input` as one HTTP/1 connection through `handler`, the way the engine drives
/// a connection: `serve_ready` until it parks (at each pause in the input) or closes,
/// then `finish`. `pauses` are offsets into `input` where the peer pauses: a
/// non-blocking read says "would block" once, a blocking read waits. Each time the
/// server would wait for the peer (it parks, or a blocking read reaches a pause),
/// `at_wait` sees everything written so far: a peer may be waiting for it.
pub fn serve<H: Handler>(
    input: &[u8],
    pauses: &[usize],
    handler: &H,
    settings: Settings,
    at_wait: &(dyn Fn(&[u8]) + Sync),
) -> Run {
    let mut pauses = pauses.to_vec();
    pauses.sort_unstable();
    let peer = Peer {
        state: Mutex::new(PeerState {
            input,
            pauses,
            pos: 0,
            paused_at: None,
            output: Vec::new(),
            shut_down: false,
        }),
        at_wait,
    };
    let cfg = Config {
        limits: settings.limits,
        drain_limit: settings.drain_limit,
        keep_alive: settings.keep_alive,
        body_buffer: settings.body_buffer,
        ..Config::default()
    };
    let mut conn = H1Conn::new(Instant::now());
    conn.give_buffer(Vec::new());
    let mut scratch = Scratch::default();
    let stopping = AtomicBool::new(false);
    // Each round consumes input or ends; the bound only guards against a loop bug.
    let mut rounds = 0;
    let ending = loop {
        rounds += 1;
        conn.readable();
        match h1conn::serve_ready(
            &mut conn,
            &peer,
            None,
            handler,
            &cfg,
            &mut scratch,
            &stopping,
        ) {
            Next::Park(_) => {
                let st = lock(&peer.state);
                at_wait(&st.output);
                let stuck = st.pos >= st.input.len() || rounds > input.len() + 2;
                drop(st);
                if stuck {
                    // Nothing more will come: the head timeout would fire.
                    let fate = h1conn::on_timeout(&mut conn, &mut scratch);
                    h1conn::finish(&mut conn, &peer, &mut scratch, fate);
                    break Ending::Closed(format!("{fate:?} (timed out)"));
                }
            }
            Next::Close(fate) => {
                h1conn::finish(&mut conn, &peer, &mut scratch, fate);
                break Ending::Closed(format!("{fate:?}"));
            }
            Next::Http2 => break Ending::Http2,
            Next::H2cUpgrade(_) => break Ending::H2cUpgrade,
        }
    };
    let st = peer.state.into_inner().unwrap_or_else(|p| p.into_inner());
    Run {
        output: st.output,
        ending,
        shut_down: st.shut_down,
    }
}
