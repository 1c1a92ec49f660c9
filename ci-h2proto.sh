#!/bin/sh
# Python packages the h2::proto interop tests (tests/h2_proto_python.rs) need.
set -e
python3 -m pip install h2==4.*
