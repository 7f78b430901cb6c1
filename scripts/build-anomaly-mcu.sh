#!/usr/bin/env bash
# Builds the anomaly detector core freestanding for a Cortex-M4F (no libc, no heap, no
# exceptions, no RTTI, no OS) into a minimal bare-metal image and prints its code (text) and
# RAM (data + bss) size; scripts/run-anomaly-mcu.sh runs the image under qemu-system-arm.
# No floating-point contraction (-ffp-contract=off, as in the host build): the scores are the
# same bits as on the host. Needs the Debian packages gcc-arm-none-eabi (and
# libnewlib-arm-none-eabi for the compiler's own headers). The linker script enforces the
# budget: 32 KB flash, 8 KB RAM including a 2 KB stack.
#   scripts/build-anomaly-mcu.sh [OUT_DIR]      (default: build-mcu/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build-mcu}"
cxx="${ARM_CXX:-arm-none-eabi-g++}"
size="${ARM_SIZE:-arm-none-eabi-size}"
nm="${ARM_NM:-arm-none-eabi-nm}"
command -v "$cxx" >/dev/null || { echo "error: $cxx not found — apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" >&2; exit 1; }
mkdir -p "$out"
flags=(-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os -std=c++20
       -fno-exceptions -fno-rtti -ffreestanding -fno-threadsafe-statics -fno-math-errno -ffp-contract=off
       -ffunction-sections -fdata-sections -fstack-usage -Wall -Wextra -Werror -I"$root/include")
objs=()
for src in "$root"/src/apps/anomaly/core/*.cpp "$root"/src/apps/anomaly/mcu/firmware.cpp; do
  obj="$out/$(basename "${src%.cpp}").o"
  "$cxx" "${flags[@]}" -c "$src" -o "$obj"
  objs+=("$obj")
done
# -nostdlib: nothing from libc or libstdc++ may be needed; libgcc only supplies compiler helpers
# (64-bit division for the timestamp).
"$cxx" "${flags[@]}" -nostdlib -nostartfiles -T "$root/src/apps/anomaly/mcu/cortex_m4.ld" \
  -Wl,--gc-sections -Wl,-Map="$out/anomaly-mcu.map" "${objs[@]}" -lgcc -o "$out/anomaly-mcu.elf"
"$size" "$out/anomaly-mcu.elf"
read -r text data bss _ < <("$size" "$out/anomaly-mcu.elf" | tail -1)
state=$((16#$("$nm" -S "$out/anomaly-mcu.elf" | awk '/g_detector_storage/ {print $2}')))
stack=$(cat "$out"/*.su | awk '{print $(NF-1)}' | sort -n | tail -1)
printf 'code (text): %d bytes of 32768\nRAM (data+bss): %d bytes of 8192 (detector state %d bytes; largest stack frame %d bytes)\n' \
  "$text" "$((data + bss))" "$state" "$stack"
(( text <= 32768 && data + bss <= 8192 && state <= 4096 )) || { echo "error: over budget" >&2; exit 1; }
