//! Entry points for the fuzz targets under `fuzz/`, compiled only under `--cfg fuzzing`
//! (which `cargo fuzz` sets): crate-private decoders and policies that peer bytes reach,
//! reachable from the fuzz crate without widening the public API. Nothing here is part
//! of spindle's interface; a normal build does not contain this module.
pub mod client;
pub mod h1;
pub mod h2;
pub mod handlers;
pub mod server;
