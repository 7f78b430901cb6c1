#!/usr/bin/env bash
# Installs what edgelm needs to build and test, from Debian's packages. Safe to re-run: it asks
# apt only for packages that are missing. Pass --oracle to also install the Python packages
# that regenerate test fixtures (llama-cpp-python compiles llama.cpp: several minutes; torch,
# transformers and peft for the training oracle; the fortunes corpus of bench/distill.py).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang  # libFuzzer: the fuzzers (scripts/fuzz.sh)
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev libpng-dev
  python3 python3-pip unzip python3-matplotlib time
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
  chromium chromium-driver
  # speech for `edgelm car --audio/--speak`: PocketSphinx (library + US English acoustic model),
  # eSpeak NG (library + voices), sox (noise for bench/speech/make-set.sh)
  libpocketsphinx-dev pocketsphinx-en-us libespeak-ng-dev espeak-ng sox
)

source "$(dirname "$0")/lib/apt.sh"
apt_install_missing "${packages[@]}"

# Test clients for `edgelm serve`: the official OpenAI client and Selenium (drives chromium).
python3 -c 'import openai, selenium, jsonschema' 2>/dev/null || python3 -m pip install -q openai selenium jsonschema
# The Python package: nanobind (the bindings; the release build makes the extension when it is
# installed), scikit-build-core (pip install .), numpy and pytest (its tests).
python3 -c 'import nanobind, scikit_build_core, numpy, pytest' 2>/dev/null ||
  python3 -m pip install -q nanobind scikit-build-core numpy pytest

if [ "${1:-}" = "--oracle" ]; then
  # llama-cpp-python compiles llama.cpp for this CPU, but without AMX: a CPU can report AMX tiles
  # that the kernel does not grant (common in VMs), and a build that uses them crashes there.
  # (GCC and clang let an explicit -mno-* win over -march=native.)
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  CFLAGS="$noamx" CXXFLAGS="$noamx" CMAKE_ARGS="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    python3 -m pip install -q numpy gguf jinja2 llama-cpp-python
  # PyTorch and transformers for the training oracle (tests/oracle/gen_train_fixtures.py), on the CPU.
  # PyPI's Linux torch wheel is built for CUDA: its dependencies are several GB of nvidia-* wheels,
  # and its libraries need CUDA's at load time even when no GPU is used. So: the wheel without its
  # dependencies, its pure-Python ones, then only the CUDA libraries (at torch's pinned versions)
  # that the machine's CUDA toolkit lacks (pip then warns about the others: expected); where torch
  # still does not import, the full install.
  if ! python3 -c 'import torch' 2>/dev/null; then
    python3 -m pip install -q --no-deps torch==2.15.0
    python3 -m pip install -q filelock 'typing-extensions>=4.13' 'setuptools>=77.0.3' 'sympy>=1.13.3' \
      'networkx>=2.5.1' jinja2 'fsspec>=0.8.5'
    python3 -c 'import torch' 2>/dev/null || python3 -m pip install -q --no-deps 'nvidia-cufile==1.17.1.22.*' \
      nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2
    python3 -c 'import torch' 2>/dev/null || python3 -m pip install -q torch==2.15.0
  fi
  # accelerate: transformers loads GGUF with it (bench); peft: the LoRA oracle and bench/train_vs_pytorch.py --lora
  python3 -m pip install -q transformers==5.25.0 accelerate peft==0.21.2
  # Debian's fortune-cookie texts: the English corpus of bench/distill.py
  apt_install_missing fortunes
fi
