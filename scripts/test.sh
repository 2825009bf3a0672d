#!/usr/bin/env bash
# The whole test suite: build (with tests and benchmarks), run every ctest test (unit, golden,
# integration), then the fuzz targets for a bounded time. Golden tests read ../shared/golden or
# $DMEVAL_GOLDEN_DIR and skip with a message if it is absent.
# Usage: scripts/test.sh [fuzz seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DMEVAL_BUILD_DIR:-build}
scripts/build.sh -DDMEVAL_BUILD_TESTS=ON -DDMEVAL_BUILD_BENCH=ON
"$BUILD_DIR"/bin/dmeval version  # names the CPU and kernel sets, so a numeric failure names the machine
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)")
scripts/fuzz.sh "${1:-30}"
echo "test.sh: all tests passed"
