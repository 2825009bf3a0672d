#!/usr/bin/env bash
# README command 1: install the dependencies (Debian packages), build dmeval, and run the main job on
# the embedded default profile: `dmeval run --method tinydm --bits 4/8` — TinyDM at W4A8 on dmeval's
# shapes UNet, 500 samples of 50-step DDIM scored with shapes-net against 10,000 reference images,
# the result recorded in ./dmeval.db and printed as a table row. Everything it needs is in the
# repository; nothing is downloaded. Extra arguments go to `dmeval run` (CI: --samples 200).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DDMEVAL_BUILD_TESTS=OFF -DDMEVAL_BUILD_BENCH=OFF
build/bin/dmeval version
build/bin/dmeval run --method tinydm --bits 4/8 "$@"
