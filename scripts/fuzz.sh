#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time on a copy of its seed
# corpus (tests/fuzz/corpus/<target>). Fails on any crash, leak, timeout or out-of-memory.
# Usage: scripts/fuzz.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
BUILD_DIR=${DMEVAL_FUZZ_BUILD_DIR:-build-fuzz}
cmake -S tests/fuzz -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in checkpoint npy png model_config ldm_config cifar10; do
  mkdir -p "$work/$target" "$work/artifacts-$target"
  cp tests/fuzz/corpus/$target/* "$work/$target/"
  echo "fuzz_$target: ${SECONDS_PER_TARGET}s"
  if ! "$BUILD_DIR/fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/artifacts-$target/" "$work/$target" \
      >"$work/$target.log" 2>&1; then
    echo "fuzz_$target FAILED:"; tail -40 "$work/$target.log"
    mkdir -p fuzz-artifacts && cp "$work/artifacts-$target"/* fuzz-artifacts/ 2>/dev/null || true
    status=1
  else
    grep -E "stat::number_of_executed_units" "$work/$target.log" | sed "s/^/  /"
  fi
done
exit $status
