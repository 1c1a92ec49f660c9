//! The edges: listeners, sockets, the event loops and the threads that run handlers.
pub(crate) mod engine;
pub(crate) mod listener;
pub(crate) mod log_limit;
pub(crate) mod socket;
pub(crate) mod sys;
pub(crate) mod transport;
