//! The HTTP/1 protocol engine, sans-IO: parsing request heads, deciding body framing,
//! the chunked coding, and encoding response heads. Sockets live in [`crate::server`].
pub mod date;
pub mod encode;
pub mod framing;
pub mod head;
pub mod request_encode;
pub mod response_head;
