#!/usr/bin/env bash
# On the GPU machine, after bench/bench_7b_prep.sh here: bench/bench_7b.py on random-weight LLaMA-2-7B
# and Llama-3-8B, 2,000 GPTeacher records (RECORDS), arms started by DEADLINE seconds (default 420), the
# whole run killed at DEADLINE + 90; figures in $OUT/bench_7b.json and the log in $OUT/bench_7b.log.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, platform; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name(0), platform.python_version())"
timeout -k 5 $(( ${DEADLINE:-420} + 90 )) python3 bench/bench_7b.py --shape "${SHAPES:-7b,8b}" --device cuda \
    --records "${RECORDS:-2000}" --tokenizer .bench7b/tokenizer \
    --data .bench7b/gpteacher-roleplay.json --data .bench7b/gpteacher-toolformer.json \
    --deadline "${DEADLINE:-420}" --store-dir /tmp --json "$OUT/bench_7b.json" 2>&1 | tee "$OUT/bench_7b.log"
echo "rc=${PIPESTATUS[0]} (124: killed at the deadline)"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
