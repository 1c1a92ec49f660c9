//! Fuzzing entry points for `crate::h1`.
