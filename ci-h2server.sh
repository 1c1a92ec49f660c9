#!/usr/bin/env bash
# What the h2-server branch (HTTP/2 prior knowledge on the HTTP/1.1 port) needs in CI;
# the same line is in .ci/run. tests/server_h2.rs drives the server with nghttp.
set -euo pipefail
command -v nghttp >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null
}
