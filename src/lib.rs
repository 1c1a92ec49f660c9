//! spindle: a synchronous, thread-pool HTTP server and client.
#![warn(missing_docs)]

mod error;
pub mod h1;
pub mod h2;
pub mod server;

pub use error::{Error, ErrorKind, Result};
