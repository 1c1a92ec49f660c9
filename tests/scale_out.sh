#!/usr/bin/env bash
# Scale-out, tested for real: nginx in front of two spindle backends as an HTTP/1.1
# keep-alive upstream on loopback. A bounded load checks every answer while one backend
# is restarted (a replacement starts on the same port with SO_REUSEPORT, then the old
# one gets SIGTERM and shuts down gracefully): no request may be lost.
#
# Run from the repository root: tests/scale_out.sh   (CI runs it from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null; then
  if [ "${CI:-}" = true ]; then echo "nginx is required in CI" >&2; exit 1; fi
  echo "!!!!! SKIPPED scale_out.sh: nginx is not installed !!!!!"; exit 0
fi

cargo build --release --example graceful -q
bin="${CARGO_TARGET_DIR:-target}/release/examples/graceful"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2; return 1
}

p1=$(free_port); p2=$(free_port); pn=$(free_port)
"$bin" "127.0.0.1:$p1" a1 >"$work/a1.log" 2>&1 & a1=$!; pids+=("$a1")
"$bin" "127.0.0.1:$p2" b >"$work/b.log" 2>&1 & b=$!; pids+=("$b")
wait_port "$p1"; wait_port "$p2"

mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp_body;
  proxy_temp_path $work/tmp_proxy;
  fastcgi_temp_path $work/tmp_fastcgi;
  uwsgi_temp_path $work/tmp_uwsgi;
  scgi_temp_path $work/tmp_scgi;
  upstream backends {
    server 127.0.0.1:$p1 max_fails=0;
    server 127.0.0.1:$p2 max_fails=0;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$pn;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
    }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
wait_port "$pn"

python3 tests/py/scale_load.py "$pn" 8 1500 >"$work/load.out" 2>&1 & load=$!
sleep 1
# Rolling restart of backend a: the replacement first, then the old one drains.
"$bin" "127.0.0.1:$p1" a2 >"$work/a2.log" 2>&1 & a2=$!; pids+=("$a2")
wait_port "$p1"
kill -TERM "$a1"
wait "$a1" || { echo "backend a1 did not exit cleanly" >&2; cat "$work/a1.log"; exit 1; }
status=0
wait "$load" || status=$?
cat "$work/load.out"
echo "--- a1 (restarted):"; cat "$work/a1.log"
if [ "$status" -ne 0 ]; then echo "FAILED: requests were lost or wrong" >&2; cat "$work/logs/error.log" >&2; exit 1; fi
grep -q '^a1 ' "$work/load.out" || { echo "FAILED: a1 served nothing" >&2; exit 1; }
grep -q '^a2 ' "$work/load.out" || { echo "FAILED: the replacement a2 served nothing" >&2; exit 1; }
grep -q '^b ' "$work/load.out" || { echo "FAILED: b served nothing" >&2; exit 1; }
echo "scale_out: 1 passed, 0 failed"
