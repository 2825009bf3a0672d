#!/usr/bin/env bash
# Reproduces the embedded `shapes-ldm` profile's model (profiles/shapes-ldm/README.md), in two stages:
#   1. the VQ-f4 first stage (`dmeval train-vq`, the preset shapes-ldm's first_stage_config: 32x32 images
#      -> 8x8x3 latents, 512 codes) on 20,000 shapes images (v2, seed 0): L1 + codebook + 0.25 x
#      commitment, AdamW 1e-3 (100 warm-up steps, clip 1), batch 32, 2,000 steps, the rate decayed
#      linearly to 0 from step 1,400; it prints the latents' std — the preset's scale_factor is
#      1 / that figure (LatentDiffusion's scale_by_std rule), fixed in generators/ldm/ldm_config.cpp;
#   2. the class-conditional LDM UNet and class embedder (`dmeval train --model shapes-ldm`) on the
#      latents of the same images with their shape classes, label dropout 0.1 (classifier-free
#      guidance), AdamW 5e-4 (500 warm-up steps, clip 1), batch 64, EMA 0.999, 6,000 steps (LDM_STEPS), the
#      rate decayed linearly to 0 from step 4,500 (LDM_DECAY); 58 minutes on 2 cores.
# Resumable: run it again after an interruption and each stage continues from its last checkpoint.
# Float sums depend on the thread count (DMEVAL_THREADS): weights are bit-identical only on the same
# machine and thread count.
# Usage: scripts/train-shapes-ldm.sh [build dir] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/bin/dmeval
OUT=${2:-.train/shapes-ldm}
LDM_STEPS=${LDM_STEPS:-6000}
LDM_DECAY=${LDM_DECAY:-4500}
"$BIN" train-vq --model shapes-ldm --data shapes:20000:0 --steps 2000 --decay-from 1400 --batch 32 \
  --lr 1e-3 --warmup 100 --seed 0 --checkpoint-every 250 --log-every 100 --out "$OUT/vq"
"$BIN" train --model shapes-ldm --first-stage "$OUT/vq/vq.safetensors" --data shapes:20000:0 \
  --label-dropout 0.1 --steps "$LDM_STEPS" --decay-from "$LDM_DECAY" --batch 64 --lr 5e-4 --warmup 500 \
  --ema 0.999 --seed 0 --checkpoint-every 500 --log-every 100 --out "$OUT/unet"
echo "then: cp $OUT/unet/ema.safetensors profiles/shapes-ldm/shapes-ldm.safetensors"
