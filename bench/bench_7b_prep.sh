#!/usr/bin/env bash
# Prepare bench/bench_7b.py for one call on the workplace's GPU machine (device tool): the bundled
# tokenizer's files (no weights) and the GPTeacher pool, about 9 MB, into .bench7b/ (git-ignored). Run here:
#   bash bench/bench_7b_prep.sh
# then one call, under its 10-minute limit (the script stops its arms at DEADLINE seconds):
#   run(command="DEADLINE=420 bash bench/bench_7b_device.sh", carry=[".bench7b"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx "/.bench7b/" "$EXCLUDE" 2>/dev/null || echo "/.bench7b/" >> "$EXCLUDE"
rm -rf .bench7b && mkdir -p .bench7b
.venv/bin/python -c "from nait_testing.models import bundled_tokenizer; bundled_tokenizer().save_pretrained('.bench7b/tokenizer')"
cp ../shared/data/gpteacher-*.json .bench7b/
du -sh .bench7b
