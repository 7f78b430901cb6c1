# Sourced by the bench scripts: builds llama.cpp's llama-bench and llama-quantize once, from the
# pinned llama-cpp-python source package (pip download --no-binary; its sdist vendors llama.cpp),
# into a cache outside the repository ($EDGELM_BENCH_CACHE, default ~/.cache/edgelm/llamacpp).
# GGML_NATIVE=ON uses the best code paths this CPU has, except AMX: a CPU can report AMX tiles
# that the kernel does not grant to the process, and llama.cpp built for them dies on such a host.
# After `build_llamacpp`, $llama_bench, $llama_quantize, $llama_speculative (a draft model) and
# $llama_lookup (prompt lookup) name the tools. `check_llamacpp MODEL` runs a tiny llama-bench on
# MODEL and stops with an error when the baseline dies (a signal, a non-zero exit) instead of
# handing back numbers from a broken build; `llamacpp_host` describes the CPU and its AMX state.
llama_version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
llama_cache="${EDGELM_BENCH_CACHE:-$HOME/.cache/edgelm/llamacpp}"
llama_build="$llama_cache/build-$llama_version"
llama_bench="$llama_build/bin/llama-bench"
llama_quantize="$llama_build/bin/llama-quantize"
llama_speculative="$llama_build/bin/llama-speculative"
llama_lookup="$llama_build/bin/llama-lookup"

build_llamacpp() {
  local jobs="${EDGELM_JOBS:-2}" src="$llama_cache/llama_cpp_python-$llama_version"
  [ -x "$llama_bench" ] && [ -x "$llama_quantize" ] && [ -x "$llama_speculative" ] && [ -x "$llama_lookup" ] && return 0
  command -v cmake >/dev/null || { echo "error: cmake is missing: run scripts/install-deps.sh" >&2; return 1; }
  mkdir -p "$llama_cache"
  if [ ! -d "$src/vendor/llama.cpp" ]; then
    echo "=== downloading llama-cpp-python $llama_version (source package)" >&2
    python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$llama_version" -d "$llama_cache" >&2
    tar -xzf "$llama_cache/llama_cpp_python-$llama_version.tar.gz" -C "$llama_cache"
  fi
  echo "=== building llama-bench, llama-quantize, llama-speculative and llama-lookup (GGML_NATIVE=ON, no AMX) in $llama_build" >&2
  cmake -S "$src/vendor/llama.cpp" -B "$llama_build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF \
    -DBUILD_SHARED_LIBS=OFF >"$llama_cache/configure.log" 2>&1 || { tail -30 "$llama_cache/configure.log" >&2; return 1; }
  cmake --build "$llama_build" -j "$jobs" --target llama-bench llama-quantize llama-speculative llama-lookup >"$llama_cache/build.log" 2>&1 ||
    { tail -30 "$llama_cache/build.log" >&2; return 1; }
}

# One line: the CPU model, and whether it reports AMX and whether the kernel grants it to
# processes (arch_prctl; AMX needs ARCH_REQ_XCOMP_PERM before its first use).
llamacpp_host() {
  local cpu amx="no AMX reported"
  cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  if grep -qw amx_tile /proc/cpuinfo; then
    amx="AMX reported by the CPU"
    python3 -c 'import ctypes,sys; l=ctypes.CDLL(None); sys.exit(0 if l.syscall(158, 0x1023, 18) == 0 else 1)' 2>/dev/null &&
      amx="$amx and granted by the kernel" || amx="$amx but not granted by the kernel"
  fi
  echo "${cpu:-unknown CPU}, $(nproc) logical cores, $amx; llama.cpp built without AMX"
}

check_llamacpp() {
  local model="$1" rc=0
  "$llama_bench" -m "$model" -p 8 -n 2 -t 1 -r 1 -o jsonl >"$llama_cache/check.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -5 "$llama_cache/check.log" >&2
    echo "error: llama.cpp's llama-bench failed on $(basename "$model") (exit status $rc; above 128: killed by signal $((rc - 128)))" >&2
    echo "  on this host: $(llamacpp_host)" >&2
    echo "  remove $llama_build and run again to rebuild it (bench/llamacpp.sh builds without AMX)" >&2
    return 1
  fi
}
