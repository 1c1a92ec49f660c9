//! Server settings, with defaults chosen for a service on the open internet.
use std::time::{Duration, Instant};

use crate::h1::head::HeadLimits;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub keep_alive: bool,
    pub idle_timeout: Option<Duration>,
    pub head_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub limits: HeadLimits,
    pub drain_limit: u64,
    /// Request body bytes the event loop reads before the handler runs (0: none).
    pub body_buffer: usize,
    /// The slowest a request body may arrive, once the handler streams it or the loop
    /// waits for it.
    pub min_body_rate: Option<MinRate>,
    /// The longest a whole request body may take, from the end of its head.
    pub body_timeout: Option<Duration>,
    /// Response bytes a connection may hold that the socket did not take yet: the loop
    /// writes them out after the handler returns; a handler that writes more waits.
    pub write_buffer: usize,
    /// The slowest a client may take a response the handler waits to write.
    pub min_write_rate: Option<MinRate>,
    pub max_connections: usize,
    pub overload: Overload,
    /// HTTPS: the TLS configuration every accepted connection is wrapped in.
    pub tls: Option<crate::tls::Acceptor>,
    /// How long a TLS handshake may take, from accept to its last message.
    pub tls_handshake_timeout: Duration,
}

/// A minimum data rate: a transfer must move at least `bytes_per_second × window` bytes
/// in every `window` (a new window begins once that much has moved), or it is cut. Like
/// Apache's `mod_reqtimeout` `MinRate` and nginx's body and send timeouts, it stops a
/// peer that trickles a byte now and then; unlike a rate averaged from the start, an
/// early burst (which socket buffers swallow at once) buys no credit for later.
///
/// ```
/// use std::time::Duration;
/// use spindle::server::MinRate;
/// let rate = MinRate::new(1000, Duration::from_secs(5));
/// assert_eq!(rate.bytes_per_second(), 1000);
/// assert_eq!(rate.window(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    bytes_per_second: u64,
    window: Duration,
}

impl MinRate {
    /// The default for request bodies and for responses: 500 bytes a second, checked
    /// over 10 s windows (Apache's `MinRate=500`; its initial 10 s for heads).
    pub const DEFAULT: MinRate = MinRate {
        bytes_per_second: 500,
        window: Duration::from_secs(10),
    };

    /// At least `bytes_per_second` (at least 1) in every `window` (at least 1 ms).
    pub fn new(bytes_per_second: u64, window: Duration) -> MinRate {
        MinRate {
            bytes_per_second: bytes_per_second.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// The average rate required.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// The span over which the rate is checked.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Bytes that must move in one window.
    fn per_window(&self) -> u64 {
        let bytes = self.bytes_per_second as f64 * self.window.as_secs_f64();
        (bytes.ceil() as u64).max(1)
    }
}

/// Where a transfer stands against a [`MinRate`]: the current window and what has moved
/// in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateWindow {
    since: Instant,
    moved: u64,
}

impl RateWindow {
    pub(crate) fn start(now: Instant) -> RateWindow {
        RateWindow {
            since: now,
            moved: 0,
        }
    }

    /// Records `n` bytes moved at `now`; a window that has seen its due begins anew.
    pub(crate) fn moved(&mut self, rate: &MinRate, n: u64, now: Instant) {
        self.moved += n;
        if self.moved >= rate.per_window() {
            *self = RateWindow::start(now);
        }
    }

    /// Moves the window's start on by `d`, a time in which nobody waited for the peer.
    pub(crate) fn pause(&mut self, d: Duration) {
        self.since += d;
    }

    /// When the current window ends; a transfer still waiting then is too slow.
    pub(crate) fn deadline(&self, rate: &MinRate) -> Instant {
        self.since + rate.window
    }
}

/// What the server does with new connections when every thread is busy in a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overload {
    /// Stop accepting: new connections wait in the kernel's listen backlog until a
    /// thread frees up (back-pressure; the default).
    #[default]
    Backpressure,
    /// Accept them and answer `503 Service Unavailable` with `Retry-After`, then close.
    Reject,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keep_alive: true,
            idle_timeout: Some(Duration::from_secs(60)),
            head_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            limits: HeadLimits::default(),
            drain_limit: 256 * 1024,
            body_buffer: 64 * 1024,
            min_body_rate: Some(MinRate::DEFAULT),
            body_timeout: None,
            write_buffer: 256 * 1024,
            min_write_rate: Some(MinRate::DEFAULT),
            max_connections: 100_000,
            overload: Overload::Backpressure,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    pub fn max_head_bytes(&self) -> usize {
        self.limits.max_head_bytes
    }
}
