#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, fetches the test models, builds the
# release and the sanitizer (ASan+UBSan) configurations, runs every test in both, builds the
# anomaly detector for a Cortex-M4F and runs it under qemu-system-arm, cross-builds the kernels
# for ARM64 and runs their tests under qemu-aarch64, and ends with one summary line
# "tests: N passed, N failed". The release build also makes the Python package
# (build/python/edgelm) and its ctest run includes the pytest files of tests/python (python.*),
# imported from there. Exit status is non-zero if anything failed. The models come from a test
# cache of its own (see below).
#   scripts/test.sh              # everything
#   scripts/test.sh --quick      # release build only
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${EDGELM_JOBS:-$(nproc)}"
quick=0; [ "${1:-}" = "--quick" ] && quick=1

bash scripts/install-deps.sh || { echo "error: installing dependencies failed"; exit 1; }
# The tests read models from a cache of their own that holds exactly what fetch-models.sh installs
# (--exact removes anything else), so that a file made by hand or by a benchmark can never hide a
# missing step. EDGELM_TEST_MODELS moves it; the user's own cache is not touched.
export EDGELM_MODELS="${EDGELM_TEST_MODELS:-$root/.cache/test-models}"
bash scripts/fetch-models.sh --exact smollm2 gemma3 || { echo "error: fetching the test models failed"; exit 1; }

passed=0; failed=0; status=0
run_suite() {  # name, build dir, build target ("" for all), ctest exclude regex ("" for none), cmake args...
  local name="$1" dir="$2" target="$3" exclude="$4"; shift 4
  echo "=== $name: configure and build ($dir)"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"; echo "error: $name: configure failed"; failed=$((failed + 1)); status=1; return
  fi
  local tg=(); [ -n "$target" ] && tg=(--target "$target")
  if ! cmake --build "$dir" -j "$jobs" "${tg[@]}" >"$dir.build.log" 2>&1; then
    tail -n 60 "$dir.build.log"; echo "error: $name: build failed"; failed=$((failed + 1)); status=1; return
  fi
  echo "=== $name: ctest"
  local log="$dir.ctest.log"
  local ex=(); [ -n "$exclude" ] && ex=(-E "$exclude")
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 0 "${ex[@]}") 2>&1 | tee "$log"
  local rc="${PIPESTATUS[0]}"
  # CMake's regular expressions allow 9 groups; beyond that ctest only prints an error and runs
  # every test, so a broken exclusion must fail the run.
  if grep -q "RegularExpression::compile" "$log"; then
    echo "error: $name: the ctest exclusion pattern does not compile"; failed=$((failed + 1)); status=1
  fi
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -n 1)
  if [ -n "$line" ]; then
    local f t; f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + t - f)); failed=$((failed + f))
  elif [ "$rc" != 0 ]; then failed=$((failed + 1)); fi
  [ "$rc" = 0 ] || status=1
}

run_suite release build "" "" -DCMAKE_BUILD_TYPE=Release -DEDGELM_TEST_OPT=-O1
if [ "$quick" = 0 ]; then
  # Under the sanitizers the whole-model runs are 5-10x slower and add no new code paths: keep
  # one oracle prompt, leave the end-to-end CLI runs, the whole-model quantization and
  # perplexity oracles and the 8-bit cache's real-text run to the release build (the
  # quantizers' and the 8-bit cache's unit tests still run). The fine-tuned-block classifier run
  # (two trainings of a real backbone block, over 3 minutes under ASan, the longest test by far)
  # stays in release too; its kernels' finite-difference tests and the block checks still run.
  # So do the training engine's runs over Gemma's 262k-word vocabulary (also peft's LoRA check), its ten-step AdamW runs
  # and the checks that repeat a code path another family covers; llama, qwen2 (biases), phi3
  # (fused tensors) and gemma3 still run forward and backward under the sanitizers (stablelm's
  # LayerNorm backward through its kernel's finite-difference test); the llama.cpp checks of
  # the Gemma families' forward passes stay in release (PyTorch's gemma3 check runs the pass).
  # LoRA runs there on llama (its llama.cpp check, which makes a 540 MB F32 copy of SmolLM2,
  # stays in release); its adapters replace the seam's own low-rank test, which stays in
  # release too. Also left to release: the checks that repeat one code path many times over
  # (the context shift's and the full context's long generations, the engine's batched-vs-
  # single runs and stop strings, batched embeddings, every family's configuration, the
  # template step budget's endless loops), and
  # gemma3's taped forward (its PyTorch check runs the same pass), and the distilled student's
  # llama.cpp check (a whole distillation run; the loss, pruning and cache tests still run),
  # speculative decoding's whole-model runs (greedy equality, the rejection rule's 2000 draws,
  # the cache after rejections, the stopping rules, the server's speculative slots; the lookup
  # and error tests still run), the car assistant's scripted conversation with SmolLM2 and its
  # speech engines' runs (PocketSphinx loading its dictionary and decoding, eSpeak NG; the WAV,
  # resampler and segmenter tests still run).
  # -O1 -g1 (line tables): the sanitizer build was half of CI's time at -O2 -g (773 s of ~29 min
  # on 2 cores); -O1 -g1 compiles the heaviest file in 25 s instead of 47, and reports still
  # carry file:line; the tests' own code is compiled at -O0 (EDGELM_TEST_OPT). Only the
  # GoogleTest binaries are built: the tool itself would be compiled
  # for the end-to-end tests, which stay in the release run.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite sanitize build-sanitize edgelm_unit_tests '^cli[.]|SmolLM2Oracle[.].*/([1-9]|1[0-9])$|Types/Model(Quant|QuantImatrix|Perplexity|Greedy)[.]|Gemma3LlamaCpp|KvQ8[.]PredictsAsTheF16CacheDoesOnRealText|Unfreeze[.]LearnsReproduciblyAndClassifies|TenAdamWStepsGiveTheSameLosses|LoraGradientsMatchPeft/gemma3|LoraOracle[.]|DistilledStudent[.]|ForwardSeam[.]AdapterBesideAProductEqualsTheFoldedWeight|Generate[.]ContextShiftKeepsThePrefix|FamilyTable[.]ConfigurationOfEachFamily|ChatTemplateLimitsTest[.]EndlessLoopsRunOutOfSteps|Engine[.]BatchedRequestsMatch|Generate[.]StopsAtAFullContext|Embed[.]BatchedTextsEqualOneAtATime|Speculative[.](GreedyOutputIsPlain|SampledTokens|RejectedDrafts|StopsWhere)|Engine[.]SpeculativeSlots|CarAssistantModel[.]|SpeechEnginesBuilt[.]|Engine[.]StopStringEndsTheReply|(FiniteDifferences[.].*/(gemma2?|qwen2_yarn|stablelm)|TapedForwardGivesTheInferenceLogits/gemma[23]?|RecomputedBlocksGiveTheSameGradients/(gemma[23]?|qwen2_yarn|phi3|stablelm)|Lora[.].*/(qwen2|gemma3)|^Synthetic/Families[.].*/gemma[23]?)( |$)' \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGELM_SANITIZE=ON -DEDGELM_TEST_OPT=-O0 \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"

  # The freestanding Cortex-M4F image, run under qemu-system-arm on one NAB series: its scores
  # must equal the release build's bit for bit; prints instructions per sample and flash / RAM.
  echo "=== anomaly detector: Cortex-M4F image under emulation"
  if bash scripts/run-anomaly-mcu.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi

  # The NEON path: the kernel tests cross-built for AArch64 and run under qemu-aarch64.
  arm_log="$(mktemp)"
  bash scripts/test-arm64.sh 2>&1 | tee "$arm_log"
  arm_rc="${PIPESTATUS[0]}"
  arm_line=$(grep -E "^arm64 tests: [0-9]+ passed, [0-9]+ failed" "$arm_log" | tail -n 1)
  rm -f "$arm_log"
  if [ -n "$arm_line" ]; then
    passed=$((passed + $(sed -E 's/arm64 tests: ([0-9]+) passed.*/\1/' <<<"$arm_line")))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$arm_line")))
  else failed=$((failed + 1)); fi
  [ "$arm_rc" = 0 ] || status=1

  # Every parser's libFuzzer harness (clang, ASan + UBSan; docs/fuzzing.md): built in
  # build-fuzz/ from only the libraries they use, then 10 s each, two at a time, from the
  # committed corpus. A crash, leak, hang or broken property fails the run.
  echo "=== fuzzers: build and 10 s each"
  fuzz_log="$(mktemp)"
  bash scripts/fuzz.sh -t 10 -j 2 2>&1 | tee "$fuzz_log"
  fuzz_rc="${PIPESTATUS[0]}"
  fuzz_ok=$(grep -cE ' ok$' "$fuzz_log"); fuzz_bad=$(grep -c 'FAILED' "$fuzz_log")
  rm -f "$fuzz_log"
  passed=$((passed + fuzz_ok)); failed=$((failed + fuzz_bad))
  if [ "$fuzz_rc" != 0 ]; then status=1; [ "$fuzz_bad" = 0 ] && failed=$((failed + 1)); fi
fi

echo "tests: $passed passed, $failed failed"
exit "$status"
