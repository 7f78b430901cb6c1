#!/usr/bin/env bash
# From a fresh machine to a chat: installs the packages, builds edgelm (release), fetches the
# default model (SmolLM2-135M-Instruct) and starts the assistant. Extra arguments go to
# `edgelm chat` (e.g. --system "You are terse.").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target edgelm_cli -j "$(nproc)"
bash scripts/fetch-models.sh smollm2
exec ./build/src/cli/edgelm chat -m smollm2 "$@"
