//! The edges: listeners, sockets, readiness, the event loops and the threads that run
//! handlers.
pub(crate) mod engine;
pub(crate) mod listener;
pub(crate) mod log_limit;
pub(crate) mod parker;
pub(crate) mod poll;
pub(crate) mod socket;
#[cfg(unix)]
pub(crate) mod sys;
pub(crate) mod transport;
