#!/usr/bin/env bash
# Installs everything dmeval needs to build and test, from Debian 12 packages only.
# Usage: scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ccache
  # fuzzing (libFuzzer ships in clang's runtime package)
  clang libclang-rt-14-dev
  # libraries
  libtorch-dev            # libtorch 1.13 (CPU)
  # libtorch calls whatever libblas.so.3 the alternatives system provides; Debian's default is the
  # netlib reference BLAS (2048^3 float64 GEMM: 10.6 s on 2 cores). OpenBLAS (OpenMP build, so
  # libtorch's thread setting also governs it): 0.26 s.
  libopenblas0-openmp liblapack-dev   # LAPACK dgees/trsyl for the scipy sqrtm emulation
  libopencv-core-dev libopencv-imgcodecs-dev libopencv-imgproc-dev   # JPEG/BMP/TIFF/WebP decoding
  libpng-dev libzip-dev libssl-dev libsqlite3-dev libeigen3-dev
  nlohmann-json3-dev libfmt-dev libspdlog-dev libcli11-dev
  libyaml-cpp-dev                     # ddim .yml model configs
  libplplot-dev plplot-driver-cairo   # report plots (PNG through PLplot's cairo driver)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium                            # renders the HTML report in a headless browser test
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
