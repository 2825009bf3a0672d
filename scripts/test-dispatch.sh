#!/usr/bin/env bash
# Runs the number-comparing tests (every golden_* test, and the integration tests that compare
# outputs: cli_sample, cli_quant, cli_run) again under arithmetic other than this machine's default,
# standing in for another CPU: libtorch's and oneDNN's CPU dispatch capped (ATEN_CPU_CAPABILITY=default:
# ATen's scalar kernels; DNNL_MAX_CPU_ISA=SSE41: oneDNN's SSE4.1 convolutions) and two intra-op threads
# per test (another partition of every parallel reduction), one test at a time. Expects a build from
# scripts/test.sh. `dmeval version` names the CPU and the kernel sets before and after capping.
# Usage: scripts/test-dispatch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DMEVAL_BUILD_DIR:-build}
NUMERIC='^(golden_.*|cli_sample|cli_quant|cli_run)$'
dmeval="$BUILD_DIR/bin/dmeval"
[ -x "$dmeval" ] || { echo "test-dispatch: no $dmeval (run scripts/test.sh first)" >&2; exit 1; }

echo "== test-dispatch: this machine, default dispatch"
"$dmeval" version
export ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41
echo "== test-dispatch: capped dispatch (ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA), two threads per test"
"$dmeval" version | grep -E '^kernels'
restore() { cmake -S . -B "$BUILD_DIR" -DDMEVAL_TEST_THREADS=1 > /dev/null; }
trap restore EXIT
cmake -S . -B "$BUILD_DIR" -DDMEVAL_TEST_THREADS=2 > /dev/null
(cd "$BUILD_DIR" && ctest --output-on-failure -j 1 -R "$NUMERIC")
echo "test-dispatch: the number-comparing tests pass under capped dispatch with two threads per test"
