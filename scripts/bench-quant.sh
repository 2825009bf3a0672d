#!/usr/bin/env bash
# Calibration time of every quantization method on the full-size CIFAR-10 UNet (random weights:
# PyTorch's default initialisation, seed 0; speed does not depend on the values) with a reduced
# budget, and UNet step / sampling latency of the FP and the fake-quantized models, on this machine.
# Writes one JSON per run to ${OUT:-bench-quant}/ and prints a summary. The projection of the full
# budgets is in README.md ("Quantization: cost on this CPU").
# Usage: scripts/bench-quant.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/bin/dmeval
OUT=${OUT:-bench-quant}
mkdir -p "$OUT"
export DMEVAL_CALIBRATION_DIR=$OUT/store
M="--model cifar10 --random-weights 0"
TRAJ="--calib traj_images=8 --calib traj_steps=10 --calib traj_batch=8"
declare -A CAL=(
  [baseline]="$TRAJ --calib cali_n=8 --calib cali_st=5 --calib act_init_batch=16"
  [qdiffusion]="$TRAJ --calib cali_n=8 --calib cali_st=5 --calib iters_w=20 --calib iters_a=10 --calib batch_size=8 --calib act_init_batch=16"
  [ptq4dm]="$TRAJ --calib act_batch=8"
  [ptqd]="$TRAJ --calib cali_pairs=32 --calib iters_w=20 --calib iters_a=10 --calib weight_init_batch=8 --calib act_init_batch=16 --calib batch_size_w=8 --calib batch_size_a=8"
)
for method in baseline qdiffusion ptq4dm ptqd; do
  /usr/bin/time -f "%e s, %M KB" "$BIN" quantize $M --method "$method" --bits 4/8 ${CAL[$method]} --eval-images 0 --json \
    > "$OUT/quantize-$method.json" 2> "$OUT/quantize-$method.log"
  echo "$method: $(tail -1 "$OUT/quantize-$method.log") (wall, peak RSS)"
done
"$BIN" bench latency $M --batch 8 --steps 10 --repeats 5 --e2e-repeats 2 --json > "$OUT/latency-fp.json"
for method in baseline qdiffusion; do
  "$BIN" bench latency $M --method "$method" --bits 4/8 ${CAL[$method]} --batch 8 --steps 10 --repeats 5 --e2e-repeats 2 \
    --json > "$OUT/latency-$method.json"
done
python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
for f in sorted(glob.glob(os.path.join(out, "latency-*.json"))):
    d = json.load(open(f)); r = d["results"][0]
    print(f"{os.path.basename(f)}: UNet step {r['unet_step_ms']['median']:.0f} ms at batch {r['batch']}, "
          f"{r['image_ms']:.0f} ms per image ({r['sample_batch_ms']['steps']} steps)")
PY
