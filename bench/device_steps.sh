#!/usr/bin/env bash
# On the GPU machine (staged as in bench/device_prep.sh): is `full`'s lead over `overlap` on the rare-skill
# pool a matter of steps? overlap's 120 records (runs/rare-overlap120/overlap.jsonl, carried) trained as a
# subset arm for 2 epochs (= the overlap arm: a check), 16 and 8; same split, LoRA and measurement.
set -u
T0=$SECONDS
source "$(dirname "$0")/device_env.sh"
for E in 2 16 8; do
  LEFT=$(( ${DEADLINE:-300} - (SECONDS - T0) ))
  [ $LEFT -lt 30 ] && { echo "no time left for epochs $E"; break; }
  timeout $LEFT python3 -m nait_core eval --candidates runs/rare-pool-4000/pool.jsonl --target gsm8k \
      --methods "" --no-base --no-full --subset runs/rare-overlap120/overlap.jsonl \
      --epochs $E --batch-size 4 --max-length 384 --feature-size 64 --heldout-size 100 --split-seed 0 \
      --gen-limit 100 --gen-batch-size 100 --max-new-tokens 256 --device cuda --dtype float32 \
      --checkpoint-minutes 0 --out runs/rare-overlap120-e$E > $OUT/e$E.log 2>&1
  echo "epochs $E rc=$? after $((SECONDS - T0)) s"
  tail -c 600 $OUT/e$E.log | tr '\r' '\n' | tail -4
  cp runs/rare-overlap120-e$E/results.json $OUT/results-e$E.json 2>/dev/null
done
echo "done after $((SECONDS - T0)) s"
