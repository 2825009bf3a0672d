#!/usr/bin/env bash
# The BinaryDM sweep of the embedded shapes profile (profiles/shapes/README.md, "BinaryDM"): FP,
# binary-baseline W1A4, lsq W2A4, binarydm W1A4 and W1A32, each trained with the profile's CPU budget
# (profile.json "calib": 1,500 steps at batch 16 on shapes:20000:0) and scored on 500 samples, recorded
# in one database; then the table in the paper's layout, the plots (training curves included) and a
# grid of the first 16 samples of every cell (same noise per image, so columns compare directly).
# Usage: scripts/sweep-shapes-binarydm.sh [OUT] [BIN]. Resumable: trainings continue from the
# calibration store's .fit folders, sampling from the run folders' chunks.
# Measured (2 cores, one CPU): ~12 min per trained cell at 2 threads, ~60 min in all.
set -euo pipefail
OUT="${1:-runs/shapes-binarydm}"
BIN="${2:-build/bin/dmeval}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
DB="$OUT/shapes-binarydm.db"
mkdir -p "$OUT"
run() { "$BIN" run --profile shapes --db "$DB" --tag shapes-binarydm --latency-repeats 0 --e2e-repeats 1 "$@"; }
run --method fp
run --method binary-baseline --bits 1/4
run --method lsq --bits 2/4
run --method binarydm --bits 1/4
run --method binarydm --bits 1/32
"$BIN" report table --db "$DB" --tag shapes-binarydm --layout binarydm
"$BIN" report plots --db "$DB" --tag shapes-binarydm --out-dir "$OUT/plots"
# The first 16 samples of each cell: `dmeval sample` with the profile's options (the trained models
# come from the store).
grid=()
for cell in fp:32/32 binary-baseline:1/4 lsq:2/4 binarydm:1/4 binarydm:1/32; do
  m="${cell%%:*}" b="${cell##*:}"
  dir="$OUT/grid/$m-${b/\//-}"
  calib=()
  [ "$m" = fp ] || calib=(--calib data=shapes:20000:0 --calib steps=1500 --calib batch=16
                          --calib checkpoint_every=250 --calib log_every=50)
  [ -d "$dir" ] || "$BIN" sample --model shapes --checkpoint "$SRC/profiles/shapes/shapes-unet.safetensors" \
    --sampler ddim --skip-type quad --steps 50 --eta 1 --samples 16 --method "$m" --bits "$b" \
    "${calib[@]}" --out "$dir" --quiet
  grid+=("$dir=$m W${b%%/*}A${b##*/}")
done
"$BIN" report grid "${grid[@]}" -o "$OUT/binarydm-samples.png" --count 16 --columns 16 --zoom 2
