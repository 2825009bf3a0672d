#!/usr/bin/env bash
# Runs the number-comparing tests (every golden_* test, and the integration tests that compare
# outputs: cli_sample, cli_quant, cli_run) again under arithmetic other than this machine's default,
# standing in for another CPU:
#   1. libtorch's and oneDNN's CPU dispatch capped (ATEN_CPU_CAPABILITY=default: ATen's scalar
#      kernels; DNNL_MAX_CPU_ISA=SSE41: oneDNN's SSE4.1 convolutions), one thread per test;
#   2. the default dispatch with two intra-op threads per test (another partition of every parallel
#      reduction), one test at a time.
# (Both at once were also run and pass, but the scalar kernels make that pass 35 min long on 2 cores.)
# Expects a build from scripts/test.sh. `dmeval version` names the CPU and the kernel sets in use.
# Usage: scripts/test-dispatch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DMEVAL_BUILD_DIR:-build}
NUMERIC='^(golden_.*|cli_sample|cli_quant|cli_run)$'
# golden_ldm_run compares dmeval's own runs with each other (resumed, sharded) on one machine: nothing in
# it depends on which kernels run, so it is not repeated here.
SELF_COMPARING='^golden_ldm_run$'
dmeval="$BUILD_DIR/bin/dmeval"
[ -x "$dmeval" ] || { echo "test-dispatch: no $dmeval (run scripts/test.sh first)" >&2; exit 1; }
"$dmeval" version

echo "== test-dispatch 1/2: capped dispatch (ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41)"
ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 "$dmeval" version | grep -E '^kernels'
(cd "$BUILD_DIR" && ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 \
  ctest --output-on-failure -j "$(nproc)" -R "$NUMERIC" -E "$SELF_COMPARING")

echo "== test-dispatch 2/2: two intra-op threads per test"
restore() { cmake -S . -B "$BUILD_DIR" -DDMEVAL_TEST_THREADS=1 > /dev/null; }
trap restore EXIT
cmake -S . -B "$BUILD_DIR" -DDMEVAL_TEST_THREADS=2 > /dev/null
(cd "$BUILD_DIR" && ctest --output-on-failure -j 1 -R "$NUMERIC" -E "$SELF_COMPARING")
echo "test-dispatch: the number-comparing tests pass under capped dispatch and with two threads per test"
