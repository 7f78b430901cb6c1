#!/usr/bin/env bash
# The edge table: parameters, memory at INT8 (weights + 8-bit KV) and peak RSS, time to first
# token and ms per token at one thread, perplexity, CLINC150 accuracy with a head trained for each
# file, joules per token with its source — and llama.cpp's latency and memory on the same files
# in the same run. Markdown table and a PNG chart.
#
#   bench/edge-table.sh                       # SmolLM2-135M F16/Q8_0/Q4_1/Q4_0, Gemma 3 270M F16/Q8_0/Q4_K_M
#   bench/edge-table.sh --model smollm2:Q8_0,input --reps 5 --out DIR
#   bench/edge-table.sh --no-llamacpp ...     # edgelm's columns only (no llama.cpp build)
#
# Options are bench/edge_table.py's (--help lists them); the F16 and Q8_0 rows are requantized from
# the weights the model packages ship (SmolLM2: Q4_1, Gemma 3: Q4_K_M). llama-bench is built once
# by bench/llamacpp.sh. By default the table goes to bench/results/<date>-edge-table.md and the
# chart to docs/edge-chart.png. Takes about an hour on 2 cores with the default models (mostly the
# CLINC150 heads); --render RESULTS.jsonl redraws the table and chart from an earlier run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
llama=1 args=()
for a in "$@"; do
  if [ "$a" = --no-llamacpp ]; then llama=0; else args+=("$a"); fi
done
defaults=()
case " ${args[*]-} " in *" --md"*) ;; *) defaults+=(--md "$root/bench/results/$(date +%Y-%m-%d)-edge-table.md") ;; esac
case " ${args[*]-} " in *" --chart"*) ;; *) defaults+=(--chart "$root/docs/edge-chart.png") ;; esac
case " ${args[*]-} " in *" --bin"*) ;; *) defaults+=(--bin "${EDGELM_BIN:-$root/build/src/cli/edgelm}") ;; esac
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing: run scripts/install-deps.sh (Debian package 'time')" >&2; exit 1; }
if [ "$llama" = 1 ]; then
  # shellcheck source=bench/llamacpp.sh
  source "$root/bench/llamacpp.sh"
  build_llamacpp
  defaults+=(--llama-bench "$llama_bench")
fi
py=/usr/bin/python3; [ -x "$py" ] || py=python3
exec "$py" "$root/bench/edge_table.py" "${defaults[@]}" "${args[@]}"
