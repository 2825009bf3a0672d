#!/usr/bin/env bash
# Reproduces the embedded `shapes` profile's network: a DDPM on 20,000 procedural shapes images
# (`dmeval shapes` v2, seed 0), trained by `dmeval train` on the CPU: AdamW 5e-4 (500 warm-up steps,
# gradient clip 1), no dropout, constant learning rate to step 8500, then decayed linearly to 0 at
# step 11000 (DMEVAL_SHAPES_DECAY_FROM, DMEVAL_SHAPES_STEPS); EMA 0.999. Resumable: run it again
# after an interruption and it continues from the last checkpoint (every 500 steps). Float sums
# depend on the thread count (DMEVAL_THREADS), so weights are bit-identical only on the same machine
# and thread count. About 2 hours on 2 cores.
# Usage: scripts/train-shapes.sh [build dir] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/bin/dmeval
OUT=${2:-.train/shapes-unet}
"$BIN" train --model shapes --data shapes:20000:0 --steps "${DMEVAL_SHAPES_STEPS:-11000}" \
  --decay-from "${DMEVAL_SHAPES_DECAY_FROM:-8500}" --dropout 0 --batch 32 --lr 5e-4 --warmup 500 \
  --seed 0 --checkpoint-every 500 --log-every 100 --out "$OUT"
echo "then: cp $OUT/ema.safetensors profiles/shapes/shapes-unet.safetensors"
