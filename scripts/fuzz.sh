#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan, in build-fuzz/) and runs each for a given
# time, starting from the committed corpus (tests/fuzz/corpus/<harness>/, never written to: new
# inputs go to build-fuzz/corpus/<harness>/). Prints one line per harness: executions,
# executions per second, coverage (edges, features) and the result. Exit status is non-zero if
# a harness crashed, leaked, timed out on an input or hit a property check; the input is kept in
# build-fuzz/crashes/ (add it to the harness's corpus with the fix: ctest replays it).
#   scripts/fuzz.sh                       # every harness, 60 s each, two at a time
#   scripts/fuzz.sh -t 3600 -j 4          # an hour each, four at a time
#   scripts/fuzz.sh -t 600 grammar gguf   # only these
#   scripts/fuzz.sh -n 10000000 -j 2      # each until ten million executions (no time limit)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds=60
runs=-1
parallel=2
usage="usage: scripts/fuzz.sh [-t SECONDS_EACH | -n EXECUTIONS_EACH] [-j AT_ONCE] [HARNESS...]"
while getopts "t:n:j:" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    n) runs="$OPTARG"; seconds=0 ;;
    j) parallel="$OPTARG" ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
for v in "$seconds" "$runs" "$parallel"; do
  [[ "$v" =~ ^-?[0-9]+$ ]] || { echo "error: '$v' is not a whole number; $usage" >&2; exit 2; }
done
shift $((OPTIND - 1))
all=(gguf tokenizer chat_template api_request grammar lora safetensors)
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  [ -d "tests/fuzz/corpus/$h" ] || { echo "error: unknown harness '$h' (one of: ${all[*]})" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "error: clang++ not found: run scripts/install-deps.sh" >&2; exit 2; }
export EDGELM_MODELS="${EDGELM_MODELS:-$HOME/.cache/edgelm/models}"

dir=build-fuzz
launcher=(); command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DEDGELM_FUZZ=ON -DEDGELM_BUILD_TESTS=OFF \
    -DEDGELM_PCH=OFF "${launcher[@]}" >"$dir.configure.log" 2>&1; then
  cat "$dir.configure.log"; echo "error: configuring the fuzzers failed" >&2; exit 1
fi
targets=(); for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
if ! cmake --build "$dir" -j "${EDGELM_JOBS:-$(nproc)}" --target "${targets[@]}" >"$dir.build.log" 2>&1; then
  tail -n 60 "$dir.build.log"; echo "error: building the fuzzers failed" >&2; exit 1
fi
echo "fuzzers built in $(( $(date +%s) - start )) s"

declare -A max_len=([gguf]=65536 [lora]=65536 [tokenizer]=4096 [chat_template]=8192 [api_request]=16384 [grammar]=8192 [safetensors]=8192)
mkdir -p "$dir/crashes" "$dir/logs"
run_one() {
  local h="$1" work="$dir/corpus/$1" log="$dir/logs/$1.log"
  mkdir -p "$work"
  # -timeout: one input running longer is a finding (a hang); -rss_limit_mb: so is runaway memory.
  # malloc_context_size: 8 frames of allocation stack in a report instead of 30 (unwinding on
  # every allocation took a sixth of the chat-template harness's time).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:malloc_context_size=8 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/fuzz_$h" "$work" "tests/fuzz/corpus/$h" -max_total_time="$seconds" -runs="$runs" -timeout=10 \
      -rss_limit_mb=4096 -max_len="${max_len[$h]}" -print_final_stats=1 \
      -artifact_prefix="$dir/crashes/$h-" >"$log" 2>&1
  local rc=$? runs rate cov ft
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  rate=$(grep -oE '^stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
  local result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc; $log; input in $dir/crashes/)"
  fi
  printf '%-14s %12s execs %8s exec/s  cov %6s  ft %7s  %s\n' "$h" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
  [ "$rc" = 0 ]
}

status=0
for h in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || status=1; done
  run_one "$h" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
echo "fuzzing: $(( $(date +%s) - start )) s in all"
exit "$status"
