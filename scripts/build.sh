#!/usr/bin/env bash
# Configures and builds dmeval (Release, Ninja) into build/ (or $DMEVAL_BUILD_DIR).
# Extra arguments go to CMake, e.g. scripts/build.sh -DDMEVAL_BUILD_TESTS=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DMEVAL_BUILD_DIR:-build}
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
