//! Fuzzing entry points for `crate::client`.
