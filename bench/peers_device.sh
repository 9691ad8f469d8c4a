#!/usr/bin/env bash
# On the GPU machine (staged as in bench/device_prep.sh, with MINILM=1 for `embed`): the peers evidence of
# docs/results.md (issue 22), in order of what it settles, each run resumable (carry its folder back in):
#   1. runs/peers-general-s0: the rare-skill pool without its planted problems, overlap and rds at the top,
#      middle and bottom 3 % (--bins), random x 2: does closeness predict gain? (training seed 0)
#   2. runs/peers-planted: the planted pool, overlap, rds, overlap-max, embed, random x 2 at 3 %
#   3. runs/peers-general-s1: run 1 with training seed 1
#   run(command="DEADLINE=520 bash bench/peers_device.sh", carry=[".devC", "runs/peers-general-s0", ...])
set -u
T0=$SECONDS
source "$(dirname "$0")/device_env.sh"
mkdir -p runs/rare-pool-4000-general
grep -v '"planted": true' runs/rare-pool-4000/pool.jsonl > runs/rare-pool-4000-general/pool.jsonl
COMMON="--target gsm8k --no-full --epochs 2 --batch-size 4 --max-length 384 --feature-size 64 --heldout-size 100
  --split-seed 0 --gen-limit 100 --gen-batch-size 100 --max-new-tokens 256 --device cuda --dtype float32
  --checkpoint-minutes 0.5"
GENERAL="--candidates runs/rare-pool-4000-general/pool.jsonl --ratio 0.0309 --methods overlap,rds,random
  --random-seeds 0,1 --bins top,middle,bottom"
PLANTED="--candidates runs/rare-pool-4000/pool.jsonl --ratio 0.03 --methods overlap,rds,overlap-max,embed,random
  --random-seeds 0,1"
for RUN in general-s0 planted general-s1; do
  case $RUN in general-s0) A="$GENERAL --seed 0";; planted) A="$PLANTED";; general-s1) A="$GENERAL --seed 1";; esac
  LEFT=$(( ${DEADLINE:-520} - (SECONDS - T0) ))
  [ $LEFT -lt 40 ] && { echo "no time left for $RUN"; break; }
  # shellcheck disable=SC2086  # A and COMMON hold several options
  timeout -k 3 $LEFT python3 -m nait_core eval $A $COMMON --out runs/peers-$RUN > $OUT/$RUN.log 2>&1
  echo "$RUN rc=$? after $((SECONDS - T0)) s (124: stopped at the deadline; rerun to resume)"
  tail -c 1500 $OUT/$RUN.log | tr '\r' '\n' | tail -6
  mkdir -p $OUT/peers-$RUN && cp runs/peers-$RUN/results.json runs/peers-$RUN/results.md $OUT/peers-$RUN/ 2>/dev/null
  [ -d runs/peers-$RUN/checkpoints ] && tar cf - -C runs/peers-$RUN checkpoints | split -b 15M - $OUT/peers-$RUN/ckpt.tar.part-
done
echo "done after $((SECONDS - T0)) s"
