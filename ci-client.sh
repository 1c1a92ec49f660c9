#!/usr/bin/env bash
# Tools the client tests run against for real (tests/client_real_servers.rs).
# Without them plain `cargo test` prints a loud SKIP; with CI=true it fails.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends nginx-light python3
