//! HTTP/1 protocol engine.
