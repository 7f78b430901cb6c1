#!/usr/bin/env bash
# Runs the streaming anomaly detector over every file of a NAB-style folder (data/ + labels/)
# and prints the three normalised NAB scores, per-category scores, time per sample and the
# detector's state size. --robustness adds the mean and worst case over block alignments and
# over +-20 % of each tuned constant, and leave-one-category-out scores (about 10 s). Usage:
#   bench/nab.sh [NAB_FOLDER] [--files] [--phases N] [--robustness] [--config FILE] [field=value ...]
# NAB_FOLDER defaults to data/nab in the repository. The bench program is built
# in $EDGELM_BUILD_DIR (default: build/ in the repository) if it is missing or stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EDGELM_BUILD_DIR:-$root/build}"
data="$root/data/nab"
if [[ $# -gt 0 && "$1" != -* && "$1" != *=* ]]; then data="$1"; shift; fi
if [[ ! -d "$data/data" || ! -f "$data/labels/combined_windows.json" ]]; then
  echo "error: '$data' is not a NAB-style folder (needs data/ and labels/combined_windows.json)" >&2
  exit 1
fi
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target anomaly_nab_bench -j2 >/dev/null
exec "$build/src/apps/anomaly/anomaly_nab_bench" "$data" "$@"
