#!/usr/bin/env bash
# Run HERE (Debian 12): downloads the Debian -dev packages dmeval needs besides libtorch into
# .deps/debs, for a GPU machine that has CUDA, PyTorch 2.x, CMake and ninja but no network.
# Then pass `carry: [".deps"]` to the device run and execute scripts/gpu/build-on-device.sh there.
# .deps/ is git-ignored. OpenCV is left out (DMEVAL_OPENCV=OFF there: PNG only) to stay small.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps/debs
cd .deps/debs
apt-get download \
  libpng-dev libpng16-16 zlib1g-dev libzip-dev libzip4 libbz2-dev liblzma-dev libzstd-dev libgnutls28-dev \
  libssl-dev libssl3 nlohmann-json3-dev libfmt-dev libfmt9 libcli11-dev \
  libgtest-dev libbenchmark-dev libbenchmark1debian libsqlite3-dev libsqlite3-0 \
  libyaml-cpp-dev libyaml-cpp0.7
du -sh .
