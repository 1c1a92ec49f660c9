//! # spindle
//!
//! A synchronous, thread-pool HTTP server (and, in time, client) for programs that have
//! no async runtime: the blocking model of the classic hyper 0.x, on today's
//! [`http`] types.
//!
//! ```no_run
//! use spindle::server::{Request, Response, Server};
//!
//! fn main() -> spindle::Result<()> {
//!     let listening = Server::http("127.0.0.1:3000")?
//!         .handle(|_req: Request, res: Response| {
//!             res.send(b"Hello, World!").ok();
//!         })?;
//!     println!("listening on {}", listening.local_addr());
//!     listening.join();
//!     Ok(())
//! }
//! ```
#![warn(missing_docs)]

pub mod client;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz_api;
pub mod h1;
pub mod h2;
pub mod handlers;
pub(crate) mod runtime;
pub mod server;
pub mod tls;

pub use client::Client;
pub use error::{Error, ErrorKind, Result};
pub use http;
pub use mime;
