#!/usr/bin/env bash
# Runs the fuzz targets for a bounded time each, one fuzzing process at a time.
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 25 s, every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Builds with `--sanitizer none`,
# which works on the stable toolchain; libFuzzer's coverage instrumentation is still on.
# The corpus grows in fuzz/corpus/TARGET (not committed), seeded from fixtures/ and
# fuzz/seeds/TARGET; a crash or mismatch is saved in fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-25}
# FUZZ_DEV=1 builds the targets in the dev profile (no optimisation, debug assertions and
# overflow checks on): a much cheaper first build of the whole dependency tree, fewer inputs
# per second. CI uses it for its short runs; long runs by hand keep the release build.
profile=()
[ "${FUZZ_DEV:-0}" = 1 ] && profile=(--dev)
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse edit canonical declarative trailers merge)
for t in "${targets[@]}"; do
  seeds=("seeds/$t")
  case $t in
    parse | edit | canonical | merge)
      seeds+=(../fixtures/samples ../fixtures/format ../fixtures/styles ../fixtures/broken) ;;
  esac
  mkdir -p "corpus/$t" "seeds/$t"
  echo "fuzz: $t for ${secs}s"
  cargo fuzz run "${profile[@]}" --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1
done
echo "fuzz: ${#targets[@]} target(s), ${secs}s each: no crash, no mismatch"
