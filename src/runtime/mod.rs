//! The edges: transports, listeners and the threads that run connections.
pub(crate) mod pool;
pub mod transport;
