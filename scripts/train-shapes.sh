#!/usr/bin/env bash
# Reproduces the embedded `shapes` profile's network: a DDPM on 20,000 procedural shapes images
# (`dmeval shapes` v2, seed 0), trained by `dmeval train` on the CPU in two phases, both AdamW 5e-4
# (500 warm-up steps, gradient clip 1), no dropout, EMA 0.999, batch 32:
#   1. steps 0–11,000: constant learning rate to step 8,500, then decayed linearly to 0 at 11,000;
#   2. a warm restart from that checkpoint (weights, EMA and AdamW moments kept): the learning rate
#      jumps back to 5e-4, constant to step 17,500, then decayed linearly to 0 at 20,000.
# (The first phase alone was the profile's model before; the second brought its samples closer to
# the data — see profiles/shapes/README.md.) Resumable: run it again after an interruption and it
# continues from the last checkpoint (every 500 steps) in whichever phase it stopped. Float sums
# depend on the thread count (DMEVAL_THREADS), so weights are bit-identical only on the same machine
# and thread count. About 3.5 hours on 2 cores.
# Usage: scripts/train-shapes.sh [build dir] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/bin/dmeval
OUT=${2:-.train/shapes-unet}
train() {  # train STEPS DECAY_FROM
  "$BIN" train --model shapes --data shapes:20000:0 --steps "$1" --decay-from "$2" --dropout 0 \
    --batch 32 --lr 5e-4 --warmup 500 --seed 0 --checkpoint-every 500 --log-every 100 --out "$OUT"
}
train 11000 8500
train 20000 17500
echo "then: cp $OUT/ema.safetensors profiles/shapes/shapes-unet.safetensors"
