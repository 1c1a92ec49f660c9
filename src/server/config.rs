//! Server settings, with defaults chosen for a service on the open internet.
use std::time::Duration;

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
    pub max_connections: usize,
    pub overload: Overload,
    /// HTTPS: the TLS configuration every accepted connection is wrapped in.
    pub tls: Option<crate::tls::Acceptor>,
    /// How long a TLS handshake may take, from accept to its last message.
    pub tls_handshake_timeout: Duration,
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
