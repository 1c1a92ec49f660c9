//! HTTP/2: the sans-IO protocol codec (RFC 9113, RFC 7541).
//!
//! - [`frame`]: decode frames from bytes (zero-copy, partial input aware) and encode them.
//! - [`preface`]: recognise the client connection preface, also to sniff prior-knowledge
//!   HTTP/2 on an HTTP/1.1 port.
//! - [`hpack`]: header compression, bounded against HPACK bombs.
//! - [`headers`]: field-block reassembly (HEADERS + CONTINUATION), the HTTP/2 field and
//!   pseudo-header rules, and mapping to and from `http` crate request and response heads.
//!
//! Errors are [`H2Error`]: an RFC 9113 error code ([`Reason`]), a [`Scope`] (connection or
//! stream) and the [`Violation`] that caused it.

mod error;
pub mod frame;
pub mod headers;
pub mod hpack;
pub mod preface;
pub mod proto;

pub use error::{H2Error, Malformed, Reason, Scope, Violation};
pub use frame::StreamId;
