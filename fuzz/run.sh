#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECS each, default 20) on the stable
# toolchain, starting from the committed seeds in fuzz/corpus/<target>/. New inputs go
# to a scratch directory, so the committed corpus only changes when someone adds seeds.
# A crash, leak, timeout or out-of-memory fails the run and prints the input's path.
# Usage: fuzz/run.sh [target ...]   (default: every target `cargo fuzz list` names)
set -euo pipefail
cd "$(dirname "$0")"
secs=${FUZZ_SECS:-20}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
targets=("$@")
if [ ${#targets[@]} -gt 0 ]; then
  for t in "${targets[@]}"; do cargo fuzz build "$t"; done
else
  mapfile -t targets < <(cargo fuzz list)
  cargo fuzz build
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "$scratch/$t"
  echo "== fuzz $t (${secs}s, $(ls "corpus/$t" | wc -l) seeds)"
  if ! cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      >"$scratch/$t.log" 2>&1; then
    grep -v "^\s*#[0-9]" "$scratch/$t.log" | tail -n 40 | cut -c1-300
    failed+=("$t")
  else
    grep -E '^stat::number_of_executed_units|Done [0-9]+ runs' "$scratch/$t.log" | tail -n 1
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
