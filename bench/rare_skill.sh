#!/usr/bin/env bash
# The rare-skill experiment of docs/results.md ("Rare-skill pool"), as one command:
#   bash bench/rare_skill.sh [out-folder]        (default runs/rare-gsm8k; rerun the same command to resume)
# Builds the pool (SIZE general GPTeacher records from ../shared/data with 3 % GSM8K problems planted)
# unless it exists, then runs every arm with `nait eval` under /usr/bin/time -v (wall time and peak memory
# in <out>/time.txt). Settings come from the environment; the run in docs/results.md used one GPU:
#   SIZE=4000 EPOCHS=2 GEN_LIMIT=100 MAX_NEW_TOKENS=256 DEVICE="--device cuda --dtype float32" \
#     bash bench/rare_skill.sh runs/rare-gsm8k-gpu
# The defaults (SIZE=500, EPOCHS=1, 20 generated answers of 128 tokens, CPU) fit a 2-core CPU in about an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/rare-gsm8k}
SIZE=${SIZE:-500}
EPOCHS=${EPOCHS:-1}
GEN_LIMIT=${GEN_LIMIT:-20}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-128}
DEVICE=${DEVICE:-}
POOL=${POOL:-runs/rare-pool-$SIZE/pool.jsonl}
PY=${PY:-.venv/bin/python}
NAIT=${NAIT:-.venv/bin/nait}
mkdir -p "$OUT"
if [ ! -f "$POOL" ]; then
  "$PY" bench/make_rare_pool.py --size "$SIZE" --planted-share 0.03 --plant gsm8k \
      --feature-size 64 --heldout-size 100 --split-seed 0 --seed 0 --out "$POOL"
fi
# shellcheck disable=SC2086  # DEVICE holds several options
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} /usr/bin/time -v -o "$OUT/time.txt" $NAIT eval \
    --candidates "$POOL" --target gsm8k \
    --methods overlap,nait-pca,jaccard,ifd,length,random --random-seeds 0,1,2 --ratio 0.03 \
    --full-steps both --epochs "$EPOCHS" --batch-size 4 --max-length 384 \
    --feature-size 64 --heldout-size 100 --split-seed 0 \
    --gen-limit "$GEN_LIMIT" --gen-batch-size "$GEN_LIMIT" --max-new-tokens "$MAX_NEW_TOKENS" $DEVICE --out "$OUT"
grep -E "Elapsed|Maximum resident|Percent of CPU" "$OUT/time.txt"
