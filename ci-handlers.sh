#!/usr/bin/env bash
# Tools the handler tests use with real peers: curl (ranges, conditionals,
# --compressed) and python3 with its stdlib gzip module; wrk for the router benchmark.
set -euo pipefail
if ! command -v curl >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq curl wrk
fi
command -v python3 >/dev/null || { apt-get update -qq; apt-get install -y -qq python3; }
python3 -c "import gzip" # stdlib; nothing to pip install
