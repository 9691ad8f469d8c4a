#!/usr/bin/env bash
# The rare-skill experiment of docs/results.md ("Rare-skill pool"), as one command:
#   bash bench/rare_skill.sh [out-folder]        (default runs/rare-gsm8k; rerun the same command to resume)
# Builds the pool (500 general GPTeacher records from ../shared/data with 15 GSM8K problems planted, 3 %)
# unless it exists, then runs every arm with `nait eval` under /usr/bin/time -v (wall time and peak memory
# in <out>/time.txt). Planned for a 2-core CPU with nothing else running: about an hour (docs/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/rare-gsm8k}
POOL=${POOL:-runs/rare-pool/pool.jsonl}
PY=${PY:-.venv/bin/python}
NAIT=${NAIT:-.venv/bin/nait}
mkdir -p "$OUT"
if [ ! -f "$POOL" ]; then
  "$PY" bench/make_rare_pool.py --size 500 --planted-share 0.03 --plant gsm8k \
      --feature-size 64 --heldout-size 100 --split-seed 0 --seed 0 --out "$POOL"
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} /usr/bin/time -v -o "$OUT/time.txt" "$NAIT" eval \
    --candidates "$POOL" --target gsm8k \
    --methods overlap,nait-pca,jaccard,ifd,length,random --random-seeds 0,1,2 --ratio 0.03 \
    --full-steps both --epochs 1 --batch-size 4 --max-length 384 \
    --feature-size 64 --heldout-size 100 --split-seed 0 \
    --gen-limit 20 --gen-batch-size 20 --max-new-tokens 128 --out "$OUT"
grep -E "Elapsed|Maximum resident|Percent of CPU" "$OUT/time.txt"
