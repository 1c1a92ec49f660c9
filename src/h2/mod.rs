//! HTTP/2 protocol engine.
