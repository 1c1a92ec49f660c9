#!/usr/bin/env bash
# HTTP/2 conformance, tested for real: h2spec 2.0.0 (../shared/tools/h2spec) against
# - the shared HTTP/1.1 + h2c port of examples/h2_server (prior knowledge): 146 cases,
# - the same port with -S (strict): 147 cases,
# - examples/https_server over TLS with ALPN h2 (--tls -k, a throwaway certificate).
# Each run's summary line is printed; the script fails unless all three pass every case
# (h2spec's last line: `N tests, P passed, S skipped, F failed`, with P = N).
#
# Run from anywhere: tests/h2spec.sh   (H2SPEC=path overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."

h2spec=${H2SPEC:-../shared/tools/h2spec}
if [ ! -x "$h2spec" ]; then
  if [ "${CI:-}" = true ]; then echo "h2spec is required in CI ($h2spec)" >&2; exit 1; fi
  echo "!!!!! SKIPPED h2spec.sh: $h2spec is missing !!!!!"; exit 0
fi
command -v openssl >/dev/null || { echo "openssl is required for the TLS run" >&2; exit 1; }

cargo build --release --example h2_server --example https_server -q
bin="${CARGO_TARGET_DIR:-target}/release/examples"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a server on 127.0.0.1:0 and waits (10 s at most) for the port it prints in its
# `listening on <scheme>://127.0.0.1:PORT` line.
port=""
start() {
  local log=$1; shift
  "$@" >"$log" 2>"$log.err" &
  pids+=("$!")
  for _ in $(seq 1 200); do
    port=$(grep -oE '127\.0\.0\.1:[0-9]+' "$log" | head -n 1 | cut -d: -f2 || true)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "server $* printed no address; its stderr:" >&2
  cat "$log.err" >&2
  return 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

start "$work/h2c.log" "$bin/h2_server" 127.0.0.1:0
h2c_port=$port
start "$work/tls.log" "$bin/https_server" 127.0.0.1:0 "$work/cert.pem" "$work/key.pem"
tls_port=$port

failed=0
# run NAME ARGS...: one h2spec invocation (bounded in time), its summary line, and the
# failing cases when there are any.
run() {
  local name=$1; shift
  local out="$work/$name.out"
  timeout 300 "$h2spec" -o 2 -h 127.0.0.1 "$@" >"$out" 2>&1 || true
  local summary
  summary=$(grep -E '^[0-9]+ tests, [0-9]+ passed, [0-9]+ skipped, [0-9]+ failed$' "$out" | tail -n 1 || true)
  echo "h2spec $name: ${summary:-no summary line}"
  if [[ "$summary" =~ ^([0-9]+)\ tests,\ ([0-9]+)\ passed,\ ([0-9]+)\ skipped,\ ([0-9]+)\ failed$ ]] &&
    [ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[1]}" ] &&
    [ "${BASH_REMATCH[4]}" = 0 ]; then
    return 0
  fi
  # The failures section comes after the last "Failures:" line.
  sed -n '/^Failures:/,$p' "$out" | head -n 80
  [ -s "$out" ] || echo "(no output)"
  failed=1
}

run "h2c" -p "$h2c_port"
run "h2c-strict" -S -p "$h2c_port"
run "tls" --tls -k -p "$tls_port"

if [ "$failed" != 0 ]; then
  echo "h2spec: not every case passed (server logs: h2c, tls below)" >&2
  tail -n 20 "$work/h2c.log.err" "$work/tls.log.err" >&2 || true
  exit 1
fi
echo "h2spec: all cases passed"
