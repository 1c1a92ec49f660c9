#!/usr/bin/env bash
# CI install steps for the HTTP/2 codec tests (spindle issue 5).
set -euo pipefail
# tests/h2_python_interop.rs cross-checks against these (fails under CI=true without them).
python3 -m pip install --quiet hpack==4.2.0 hyperframe==6.1.0
