#!/usr/bin/env bash
# README command 1: install the dependencies, build dmeval and run it. The embedded default job
# (`dmeval run --method tinydm --bits 4/8` on the `shapes` profile) is not built yet; until it is,
# this prints what the binary is and the commands it has.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DDMEVAL_BUILD_TESTS=OFF -DDMEVAL_BUILD_BENCH=OFF
build/bin/dmeval version
build/bin/dmeval --help
