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
  cargo fuzz run --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1
done
echo "fuzz: ${#targets[@]} target(s), ${secs}s each: no crash, no mismatch"
