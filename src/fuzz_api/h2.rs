//! Fuzzing entry points for `crate::h2`.
