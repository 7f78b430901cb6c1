#!/usr/bin/env bash
# Size / quality / speed table for a model requantized to every type `edgelm quantize` offers,
# plus Q4_0 / Q3_K_M / Q2_K with an importance matrix: SmolLM2-135M (from its Q4_1 weights, the
# default) or Gemma 3 270M (from its Q4_K_M weights, the only ones its package ships).
#   bench/quant-table.sh [OUT_DIR] [smollm2|gemma3]   (env: EDGELM_BIN, CTX=256, CHUNKS=8, THREADS=2)
# Writes OUT_DIR/quant-table.md and docs/quant-chart.png (gemma3: docs/quant-chart-gemma3.png)
# via bench/quant_chart.py.
# Perplexity: edgelm perplexity on tests/fixtures/text/essays.txt; speed and peak RSS: edgelm
# bench (prompt 128 tokens, 32 generated) under /usr/bin/time -v. The imatrix is calibrated on
# the project's Markdown docs, a text disjoint from the one perplexity is measured on.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${EDGELM_BIN:-$ROOT/build/src/cli/edgelm}
WHICH=${2:-smollm2}
OUT=${1:-$ROOT/build/quant-table-$WHICH}
CTX=${CTX:-256}; CHUNKS=${CHUNKS:-8}; THREADS=${THREADS:-2}
MODELS=${EDGELM_MODELS:-$HOME/.cache/edgelm/models}
case "$WHICH" in
  smollm2) MODEL=$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf; INPUT="Q4_1 (input)"; CHART=$ROOT/docs/quant-chart.png
           TITLE="SmolLM2-135M requantized from Q4_1" ;;
  gemma3)  MODEL=$MODELS/gemma-3-270m-q4_k_m.gguf; INPUT="Q4_K_M (input)"; CHART=$ROOT/docs/quant-chart-gemma3.png
           TITLE="Gemma 3 270M requantized from Q4_K_M" ;;
  *) echo "error: unknown model '$WHICH' (use smollm2 or gemma3)" >&2; exit 2 ;;
esac
[ -f "$MODEL" ] || { echo "error: $MODEL is missing: run scripts/fetch-models.sh $WHICH" >&2; exit 1; }
TEXT=$ROOT/tests/fixtures/text/essays.txt
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl; : > "$RESULTS"

cat "$ROOT"/README.md "$ROOT"/*/README.md "$ROOT"/src/*/README.md 2>/dev/null > "$OUT/calibration.txt" || true
"$BIN" imatrix -m "$MODEL" -f "$OUT/calibration.txt" -o "$OUT/$WHICH.imatrix.gguf" -c 128 -t "$THREADS" >&2

measure() {  # name file
  local name=$1 file=$2
  local ppl; ppl=$("$BIN" perplexity -m "$file" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t "$THREADS" | grep "Final estimate")
  /usr/bin/time -v "$BIN" bench -m "$file" -p 128 -n 32 -t "$THREADS" -r 2 --json > "$OUT/$name.bench.json" 2> "$OUT/$name.time.txt"
  local rss; rss=$(grep "Maximum resident set size" "$OUT/$name.time.txt" | awk '{print $NF}')
  python3 - "$name" "$file" "$ppl" "$rss" "$OUT/$name.bench.json" >> "$RESULTS" <<'PY'
import json, os, sys
name, path, ppl, rss, bench = sys.argv[1:6]
rows = [json.loads(l) for l in open(bench) if l.strip().startswith("{")]
pp = next(r["median_ts"] for r in rows if r["n_prompt"] > 0)
tg = next(r["median_ts"] for r in rows if r["n_gen"] > 0)
p = ppl.split()
print(json.dumps({"type": name, "bytes": os.path.getsize(path), "ppl": float(p[4]), "ppl_err": float(p[6]),
                  "pp_ts": pp, "tg_ts": tg, "peak_rss_kb": int(rss)}))
PY
  echo "$name done" >&2
}

measure "$INPUT" "$MODEL"
for T in F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_0 Q4_K_M Q4_0 Q4_1 Q3_K_M Q2_K; do
  "$BIN" quantize "$MODEL" "$OUT/$T.gguf" "$T" -t "$THREADS" > /dev/null 2>&1
  measure "$T" "$OUT/$T.gguf"
done
for T in Q4_0 Q3_K_M Q2_K; do
  "$BIN" quantize "$MODEL" "$OUT/$T-imatrix.gguf" "$T" --imatrix "$OUT/$WHICH.imatrix.gguf" -t "$THREADS" > /dev/null 2>&1
  measure "$T+imatrix" "$OUT/$T-imatrix.gguf"
done
PYPLOT=/usr/bin/python3; [ -x "$PYPLOT" ] || PYPLOT=python3
"$PYPLOT" "$ROOT/bench/quant_chart.py" "$RESULTS" "$OUT/quant-table.md" "$CHART" "$CTX" "$CHUNKS" "$TITLE"
cat "$OUT/quant-table.md"
