#!/usr/bin/env bash
# What the TLS build and tests need: OpenSSL headers and pkg-config for native-tls /
# openssl (feature `tls`, on by default; `openssl-alpn`), and nginx with its SSL module
# for tests/tls_nginx.rs (a loud SKIP in plain `cargo test`, a failure with CI=true).
# Certificates are made at test time with the openssl crate; no openssl CLI needed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends pkg-config libssl-dev nginx-light
# Then, for example:
#   cargo test                                   # tls (default)
#   cargo test --features openssl-alpn
#   cargo test --no-default-features             # no TLS at all
