#!/usr/bin/env bash
# Installs what edgelm needs to build and test, from Debian's packages. Safe to re-run: it asks
# apt only for packages that are missing. Pass --oracle to also install the Python packages
# that regenerate test fixtures (llama-cpp-python compiles llama.cpp: several minutes).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev
  python3 python3-pip unzip python3-matplotlib time
  gcc-arm-none-eabi libnewlib-arm-none-eabi
  chromium chromium-driver
)

source "$(dirname "$0")/lib/apt.sh"
apt_install_missing "${packages[@]}"

# Test clients for `edgelm serve`: the official OpenAI client and Selenium (drives chromium).
python3 -c 'import openai, selenium' 2>/dev/null || python3 -m pip install -q openai selenium

if [ "${1:-}" = "--oracle" ]; then
  # llama-cpp-python compiles llama.cpp for this CPU, but without AMX: a CPU can report AMX tiles
  # that the kernel does not grant (common in VMs), and a build that uses them crashes there.
  # (GCC and clang let an explicit -mno-* win over -march=native.)
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  CFLAGS="$noamx" CXXFLAGS="$noamx" CMAKE_ARGS="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    python3 -m pip install -q numpy gguf jinja2 llama-cpp-python
fi
