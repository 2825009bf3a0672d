#!/usr/bin/env bash
# Run ON the GPU machine, in the repository root, with .deps carried: unpacks the carried Debian
# packages into .deps/root (never into /), then builds dmeval against the machine's CUDA-enabled
# libtorch (from its PyTorch install) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps/root
for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
ROOT=$PWD/.deps/root
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
export PKG_CONFIG_PATH=$ROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$ROOT/usr/share/pkgconfig
export LD_LIBRARY_PATH=$ROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
# Debian's .pc and CMake files name /usr; point them at the unpacked tree.
sed -i "s|^prefix=/usr|prefix=$ROOT/usr|" $ROOT/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc 2>/dev/null || true
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/usr;$ROOT/usr/lib/x86_64-linux-gnu/cmake" \
  -DCMAKE_FIND_ROOT_PATH="$ROOT" -DDMEVAL_OPENCV=OFF -DDMEVAL_PLOTS=OFF -DDMEVAL_BUILD_BENCH=OFF
cmake --build build-gpu -j "$(nproc)"
build-gpu/bin/dmeval version
(cd build-gpu && ctest --output-on-failure -j 8)
