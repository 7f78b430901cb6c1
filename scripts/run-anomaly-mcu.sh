#!/usr/bin/env bash
# Runs the anomaly detector's Cortex-M4F image under emulation and checks it against the host:
# builds the image (scripts/build-anomaly-mcu.sh: sizes and budget), feeds it one series over
# Arm semihosting in qemu-system-arm (board mps2-an386: a Cortex-M4 with its FPU), and requires
# its scores to be bit-identical to the host build's (anomaly_mcu_check). Prints instructions
# per sample inside the detector, counted with -icount shift=0 (one instruction per virtual
# nanosecond; the image reads SysTick, which runs at the board's 25 MHz: 40 instructions a tick).
# Exit status 1 on any mismatch. Needs qemu-system-arm (scripts/install-deps.sh).
#   scripts/run-anomaly-mcu.sh [SERIES.csv]   (default: NAB's realKnownCause/nyc_taxi.csv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EDGELM_BUILD_DIR:-$root/build}"
series="$(realpath "${1:-$root/data/nab/data/realKnownCause/nyc_taxi.csv}")"
out="${EDGELM_MCU_DIR:-$root/build-mcu}"
command -v qemu-system-arm >/dev/null || { echo "error: qemu-system-arm not found — apt-get install qemu-system-arm" >&2; exit 1; }
[ -f "$series" ] || { echo "error: no series '$series'" >&2; exit 1; }
bash "$root/scripts/build-anomaly-mcu.sh" "$out"
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target anomaly_mcu_check -j2 >/dev/null
check="$build/src/apps/anomaly/anomaly_mcu_check"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$check" encode "$series" "$work/series.bin"
# The image reads series.bin and writes scores.bin in the emulator's working directory. The
# timeout only guards against a hung emulator (the run takes about a second). QEMU writes the
# semihosting console to stderr.
line=$(cd "$work" && timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none \
  -serial none -semihosting-config enable=on,target=native -icount shift=0 -kernel "$out/anomaly-mcu.elf" 2>&1 </dev/null) || {
  echo "$line"; echo "error: the Cortex-M4F image failed under qemu-system-arm" >&2; exit 1; }
echo "$line"
read -r samples ticks < <(sed -nE 's/^anomaly-mcu: samples ([0-9]+) systick_ticks ([0-9]+)$/\1 \2/p' <<<"$line")
[ -n "${samples:-}" ] || { echo "error: the image printed no sample count" >&2; exit 1; }
awk -v s="$samples" -v t="$ticks" -v f="$(basename "$series")" \
  'BEGIN { printf "Cortex-M4F (qemu mps2-an386, -icount): %s, %d samples, %.0f instructions per sample in the detector\n", f, s, 40 * t / s }'
"$check" compare "$series" "$work/scores.bin"
