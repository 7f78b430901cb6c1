#!/usr/bin/env bash
# From a fresh machine to a chat: installs the packages, builds edgelm (release), fetches the
# default model (SmolLM2-135M-Instruct), links `edgelm` into /usr/local/bin and starts the assistant. Extra arguments go to
# `edgelm chat` (e.g. --system "You are terse.").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target edgelm_cli -j "$(nproc)"
# `edgelm` on the PATH: a link to this build (rebuilds show through it). `cmake --install build`
# installs the tool, the libraries and the headers instead.
if [ -w /usr/local/bin ]; then
  ln -sfn "$root/build/src/cli/edgelm" /usr/local/bin/edgelm
else
  echo "note: /usr/local/bin is not writable; run edgelm as $root/build/src/cli/edgelm" >&2
fi
bash scripts/fetch-models.sh smollm2
exec ./build/src/cli/edgelm chat -m smollm2 "$@"
