#!/usr/bin/env bash
# What the upgrade/WebSocket tests need beyond .ci/run's peers: Python's `websockets`
# client (tests/upgrade.rs runs tests/py/ws_echo_client.py against the
# websocket_echo example). Merge this line into .ci/run's pip install.
set -euo pipefail
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null; }
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore websockets
