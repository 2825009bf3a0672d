#!/usr/bin/env bash
# The BinaryDM sweep of the embedded shapes profile (profiles/shapes/README.md, "BinaryDM"): FP,
# binary-baseline W1A4, lsq W2A4, binarydm W1A4 and W1A32, each trained with the profile's CPU budget
# (profile.json "calib": 1,500 steps at batch 16 on shapes:20000:0) and scored on 500 samples, recorded
# in one database, then the table in the paper's layout with the training curves.
# Usage: scripts/sweep-shapes-binarydm.sh [DB] [BIN]. Resumable: trainings continue from the calibration
# store's .fit folders, sampling from the run folders' chunks.
# Measured (2 cores, one CPU): ~12 min per trained cell, ~50 min in all.
set -euo pipefail
DB="${1:-runs/shapes-binarydm.db}"
BIN="${2:-build/bin/dmeval}"
mkdir -p "$(dirname "$DB")"
run() { "$BIN" run --profile shapes --db "$DB" --tag shapes-binarydm --latency-repeats 0 --e2e-repeats 1 "$@"; }
run --method fp
run --method binary-baseline --bits 1/4
run --method lsq --bits 2/4
run --method binarydm --bits 1/4
run --method binarydm --bits 1/32
"$BIN" report table --db "$DB" --tag shapes-binarydm --layout binarydm
