#!/usr/bin/env bash
# Reproduces the embedded `shapes` profile's network: a DDPM on 20,000 procedural shapes images
# (`dmeval shapes`, seed 0), trained by `dmeval train` on the CPU. Resumable: run it again after an
# interruption and it continues from the last checkpoint (every 500 steps) to the same weights.
# Usage: scripts/train-shapes.sh [build dir] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/bin/dmeval
OUT=${2:-.train/shapes-unet}
"$BIN" train --model shapes --data shapes:20000:0 --steps ${DMEVAL_SHAPES_STEPS:-24000} --batch 32 --lr 5e-4 --warmup 500 \
  --seed 0 --checkpoint-every 500 --log-every 100 --out "$OUT"
