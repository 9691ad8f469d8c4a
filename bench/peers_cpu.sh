#!/usr/bin/env bash
# The peers evidence of docs/results.md (issue 22) at the scale a 2-core CPU finishes in one session: the
# rare-skill pool of docs/results.md built at 1,000 records (970 general GPTeacher records, 30 GSM8K problems
# planted), every selection at 3 %, loss only (a 135M model solves 0-4 of 100 GSM8K problems: exact match
# cannot separate the arms, and generation is most of a CPU arm's time). Each run resumes where it stopped:
#   bash bench/peers_cpu.sh                 (runs/peers-cpu-*; rerun the same command to resume)
#   1. general-s0: the pool without its planted problems; overlap and rds at the top, middle and bottom 3 %
#      (--bins), random x 2, base: does closeness predict gain? (training seed 0)
#   2. general-embed-s0: embed on the general pool (top 3 %, training seed 0; pairs with run 1)
#   3. retrieval: how many planted problems each score puts in its top 3 % (bench/peers_retrieval.py; no training)
#   4. general-s1: overlap, rds, embed, random x 2 with training seed 1 (the general pool's differences are small)
#   5. planted: overlap, rds, embed, overlap-max, random x 2 at 3 %, trained
# bench/peers_device.sh runs the same at 4,000 records on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAIT=${NAIT:-.venv/bin/nait}
SIZE=${SIZE:-1000}
POOL=runs/rare-pool-$SIZE/pool.jsonl
GENERAL_POOL=runs/rare-pool-$SIZE-general/pool.jsonl
if [ ! -f "$POOL" ]; then
  "$PY" bench/make_rare_pool.py --size "$SIZE" --planted-share 0.03 --plant gsm8k \
      --feature-size 64 --heldout-size 100 --split-seed 0 --seed 0 --out "$POOL"
fi
mkdir -p "$(dirname "$GENERAL_POOL")"
grep -v '"planted": true' "$POOL" > "$GENERAL_POOL"
GENERAL_RATIO=$("$PY" -c "import sys; n = sum(1 for _ in open('$GENERAL_POOL')); print(round(0.03 * $SIZE / n, 4))")
COMMON="--target gsm8k --no-full --epochs 2 --batch-size 4 --max-length 384 --feature-size 64 --heldout-size 100
  --split-seed 0 --gen-limit 0 --device cpu --dtype float32 --checkpoint-minutes 5"
GENERAL="--candidates $GENERAL_POOL --ratio $GENERAL_RATIO"
for RUN in ${RUNS:-general-s0 general-embed-s0 retrieval general-s1 planted}; do
  if [ "$RUN" = retrieval ]; then
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" bench/peers_retrieval.py "$POOL" | tee runs/peers-cpu-retrieval.md
    continue
  fi
  case $RUN in
    general-s0) A="$GENERAL --methods overlap,rds,random --random-seeds 0,1 --bins top,middle,bottom --seed 0";;
    planted) A="--candidates $POOL --ratio 0.03 --methods overlap,rds,embed,overlap-max,random --random-seeds 0,1
      --no-base";;
    general-embed-s0) A="$GENERAL --methods embed --no-base --seed 0";;
    general-s1) A="$GENERAL --methods overlap,rds,embed,random --random-seeds 0,1 --no-base --seed 1";;
  esac
  mkdir -p "runs/peers-cpu-$RUN"
  # shellcheck disable=SC2086  # A and COMMON hold several options
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} /usr/bin/time -v -o "runs/peers-cpu-$RUN/time.txt" \
      $NAIT eval $A $COMMON --out "runs/peers-cpu-$RUN"
  grep -E "Elapsed|Maximum resident" "runs/peers-cpu-$RUN/time.txt"
done
