#!/usr/bin/env bash
# On the GPU machine (see bench/device_prep.sh): run, or resume, the rare-skill experiment
# (docs/results.md). It stops itself DEADLINE seconds in (default 520), so that what it has (results,
# the latest training checkpoint, in 15 MB parts) comes back in $OUT within the call's limit.
set -u
T0=$SECONDS
source "$(dirname "$0")/device_env.sh"
python3 -c "import torch, transformers, peft, platform; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, torch.cuda.get_device_name(0), platform.python_version())"
OUTDIR=runs/rare-gsm8k-gpu
timeout -k 3 $(( ${DEADLINE:-520} - (SECONDS - T0) )) python3 -m nait_core eval \
    --candidates runs/rare-pool-4000/pool.jsonl --target gsm8k \
    --methods overlap,nait-pca,jaccard,ifd,length,random --random-seeds 0,1,2 --ratio 0.03 \
    --full-steps both --epochs 2 --batch-size 4 --max-length 384 \
    --feature-size 64 --heldout-size 100 --split-seed 0 \
    --gen-limit 100 --gen-batch-size 100 --max-new-tokens 256 \
    --device cuda --dtype float32 --checkpoint-minutes 0.5 --out $OUTDIR > $OUT/eval.log 2>&1
echo "eval rc=$? after $((SECONDS - T0)) s (124: stopped at the deadline)"
tail -c 3000 $OUT/eval.log | tr '\r' '\n' | tail -15
cp $OUTDIR/results.json $OUTDIR/results.md $OUT/ 2>/dev/null
# files come back at most 16 MiB each: the checkpoints (about 30 MB) in parts; here: cat parts | tar x
[ -d $OUTDIR/checkpoints ] && tar cf - -C $OUTDIR checkpoints | split -b 15M - $OUT/ckpt.tar.part-
ls -la $OUT; echo "done after $((SECONDS - T0)) s"
