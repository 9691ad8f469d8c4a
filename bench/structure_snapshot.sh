#!/usr/bin/env bash
# Behaviour snapshot for refactors (issue 12): exports, scores and an eval results file on a small demo.
#   bash bench/structure_snapshot.sh OUT_DIR     (run before and after; then `bash bench/structure_snapshot.sh --diff A B`)
# Uses its own store folder so nothing cached from another version is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--diff" ]; then
  # results.json holds timings and dates: compare everything else.
  strip='import json,sys
def clean(x):  # timings and dates differ run to run: *_seconds, *_at
    if isinstance(x, dict): return {k: clean(v) for k, v in x.items() if not k.endswith(("_seconds", "_at"))}
    if isinstance(x, list): return [clean(v) for v in x]
    return x
print(json.dumps(clean(json.load(open(sys.argv[1]))), indent=1, sort_keys=True))'
  rc=0
  for f in $(cd "$2" && ls); do
    [ -f "$2/$f" ] || continue  # eval/ holds the results.json copied beside it, and charts with random ids
    case $f in
      *.json) diff <(.venv/bin/python -c "$strip" "$2/$f") <(.venv/bin/python -c "$strip" "$3/$f") >/dev/null || { echo "DIFFERS: $f"; rc=1; } ;;
      *) cmp -s "$2/$f" "$3/$f" || { echo "DIFFERS: $f"; rc=1; } ;;
    esac
  done
  [ $rc = 0 ] && echo "same: $(find "$2" -maxdepth 1 -type f | wc -l) files"
  exit $rc
fi
OUT=${1:?output folder}
mkdir -p "$OUT"
export NAIT_DEMO_SIZE=120 NAIT_STORE_DIR="$OUT/.store" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
NAIT=${NAIT:-.venv/bin/python -m nait_core}
for m in overlap jaccard nait-pca ifd length random; do
  tgt=(--target gsm8k --target-size 16); case $m in ifd|length|random) tgt=();; esac
  $NAIT select --candidates demo "${tgt[@]}" --method $m --ratio 0.1 --out "$OUT/select-$m.jsonl" \
      --scores "$OUT/scores-$m.jsonl" --force >/dev/null
done
$NAIT select --candidates demo --target gsm8k --target humaneval --target-size 16 --merge intersection --ratio 0.2 \
    --out "$OUT/select-merge.jsonl" --scores "$OUT/scores-merge.jsonl" --force >/dev/null
$NAIT eval --candidates demo --target gsm8k --methods overlap,random --ratio 0.1 --epochs 1 --batch-size 4 \
    --max-length 128 --feature-size 16 --heldout-size 8 --gen-limit 2 --max-new-tokens 16 --out "$OUT/eval" >/dev/null
cp "$OUT/eval/results.json" "$OUT/eval-results.json"
cp "$OUT/eval/results.md" "$OUT/eval-results.md"
echo "snapshot in $OUT"
