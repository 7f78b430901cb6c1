#!/usr/bin/env bash
# Side-by-side speed and memory of edgelm and llama.cpp on the same GGUF files.
#
#   bench/compare-llamacpp.sh                      # SmolLM2 Q4_1 and a Q8_0 copy, -p 512 -n 128 -t 1,2
#   bench/compare-llamacpp.sh -r 9 -t 1,2,4 MODEL.gguf ...
#
# llama.cpp's llama-bench and llama-quantize are built once by bench/llamacpp.sh (from the pinned
# llama-cpp-python source package, GGML_NATIVE=ON without AMX) in a cache outside the repository.
#
# Both tools run the same tests (ppP: a P-token prompt into an empty context; tgN: N tokens one
# at a time from an empty context) at the same thread counts, one repetition per process,
# alternating edgelm and llama.cpp so that drift in machine load hits both alike. Peak RSS is
# read from /usr/bin/time -v, one process per tool and thread count. The result goes to
# bench/results/<date>-<model>.md with medians, spreads and edgelm / llama.cpp ratios.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

n_prompt=512 n_gen=128 threads=1,2 reps=5
jobs="${EDGELM_JOBS:-2}"
models_dir="${EDGELM_MODELS:-$HOME/.cache/edgelm/models}"
while getopts "p:n:t:r:h" opt; do
  case "$opt" in
    p) n_prompt="$OPTARG" ;;
    n) n_gen="$OPTARG" ;;
    t) threads="$OPTARG" ;;
    r) reps="$OPTARG" ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

need_root_apt() {
  local sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || need_root_apt time
command -v cmake >/dev/null || { echo "error: cmake is missing (scripts/install-deps.sh)"; exit 1; }

# --- llama.cpp: llama-bench and llama-quantize (bench/llamacpp.sh) ---
# shellcheck source=bench/llamacpp.sh
source "$root/bench/llamacpp.sh"
build_llamacpp

# --- edgelm (release build of the current tree) ---
edgelm_build="$root/build-bench"
echo "=== building edgelm in $edgelm_build"
cmake -S "$root" -B "$edgelm_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGELM_BUILD_TESTS=OFF >/dev/null
cmake --build "$edgelm_build" -j "$jobs" --target edgelm_cli >/dev/null
edgelm="$edgelm_build/src/cli/edgelm"

# --- models: SmolLM2 Q4_1 and its Q8_0 copy unless named on the command line ---
if [ "$#" -eq 0 ]; then
  bash "$root/scripts/fetch-models.sh" smollm2 >/dev/null
  q4="$models_dir/SmolLM2-135M-Instruct.Q4_1.gguf"
  q8="$models_dir/SmolLM2-135M-Instruct.Q8_0.gguf"
  if [ ! -f "$q8" ]; then
    echo "=== making a Q8_0 copy with llama-quantize --allow-requantize"
    "$llama_quantize" --allow-requantize "$q4" "$q8.tmp" Q8_0 >"$llama_cache/quantize.log" 2>&1 ||
      { tail -20 "$llama_cache/quantize.log"; exit 1; }
    mv "$q8.tmp" "$q8"
  fi
  set -- "$q4" "$q8"
fi

mkdir -p "$root/bench/results"
IFS=, read -r -a thread_list <<<"$threads"
host="$(llamacpp_host)"
echo "=== host: $host"
for model in "$@"; do
  [ -f "$model" ] || { echo "error: no such model file: $model"; exit 1; }
  check_llamacpp "$model" || exit 1
  name="$(basename "$model" .gguf)"
  raw="$(mktemp -d)"
  echo "=== $name: $reps alternating repetitions at threads $threads (-p $n_prompt -n $n_gen)"
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  for t in "${thread_list[@]}"; do
    for ((i = 1; i <= reps; i++)); do
      "$llama_bench" -m "$model" -p "$n_prompt" -n "$n_gen" -t "$t" -r 1 -o jsonl 2>/dev/null >>"$raw/llama.jsonl"
      "$edgelm" bench -m "$model" -p "$n_prompt" -n "$n_gen" -t "$t" -r 1 --json >>"$raw/edgelm.jsonl"
      printf '.'
    done
    # Peak resident memory: one process per tool, the same work as a repetition.
    for tool in llama edgelm; do
      if [ "$tool" = llama ]; then
        cmd=("$llama_bench" -m "$model" -p "$n_prompt" -n "$n_gen" -t "$t" -r 1 -o jsonl)
      else
        cmd=("$edgelm" bench -m "$model" -p "$n_prompt" -n "$n_gen" -t "$t" -r 1 --json)
      fi
      kib=$(/usr/bin/time -v "${cmd[@]}" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p')
      echo "{\"tool\": \"$tool\", \"threads\": $t, \"max_rss_kib\": $kib}" >>"$raw/rss.jsonl"
    done
  done
  echo
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  out="$root/bench/results/$(date +%Y-%m-%d)-$name.md"
  python3 "$root/bench/summarize.py" --model "$model" --llama "$raw/llama.jsonl" --edgelm "$raw/edgelm.jsonl" \
    --rss "$raw/rss.jsonl" --reps "$reps" --load-before "$load_before" --load-after "$load_after" \
    --llama-version "$llama_version" --host "$host" --edgelm-commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    >"$out"
  rm -rf "$raw"
  echo "=== wrote $out"
  cat "$out"
done
