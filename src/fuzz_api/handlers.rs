//! Fuzzing entry points for `crate::handlers`.
