#!/usr/bin/env bash
# Cross-builds the tensor and kernel layers for ARM64 (AArch64) and runs their tests under
# qemu-aarch64, so the NEON kernels are checked against the scalar references on an x86 host.
# Installs what it needs from Debian: the cross compiler, qemu-user, and the arm64 multiarch
# builds of Highway and GoogleTest.
#   scripts/test-arm64.sh            # configure, build, run; ends with "arm64 tests: N passed, N failed"
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${EDGELM_JOBS:-$(nproc)}"
dir="${EDGELM_ARM64_BUILD:-build-arm64}"

sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "adding the arm64 package architecture (multiarch)"
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
  "${sudo_cmd[@]}" apt-get update -qq
fi
packages=(g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libgtest-dev:arm64 cmake ninja-build)
source "$root/scripts/lib/apt.sh"
apt_install_missing "${packages[@]}" || { echo "error: installing ${packages[*]} failed"; exit 1; }

echo "=== arm64: configure and build ($dir)"
if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGELM_KERNELS_ONLY=ON \
     -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" >"$dir.configure.log" 2>&1; then
  cat "$dir.configure.log"; echo "error: arm64 configure failed"; exit 1
fi
if ! cmake --build "$dir" -j "$jobs" --target kernel_tests >"$dir.build.log" 2>&1; then
  tail -n 60 "$dir.build.log"; echo "error: arm64 build failed"; exit 1
fi

# The kernel tests once, under the emulator (ctest would start it once per test case, and
# qemu's start-up dominates). The kernel sets listed are those qemu's CPU supports.
# The thread-pool tests are left out: Debian's qemu-user 7.2 never returns from the arm64
# glibc's pthread_create in a dynamically linked program on recent host kernels (a static
# binary works, but Debian ships Highway for arm64 only as a shared library), and an x86 host
# would not exercise Arm's weaker memory ordering anyway. Every SIMD and reference kernel test
# runs.
echo "=== arm64: kernel tests under qemu-aarch64 (all but the thread pool's)"
log="$dir.test.log"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$dir/tests/kernel_tests" --gtest_brief=1 \
  --gtest_filter='-ThreadPool*:ThreadPoolLatency*' 2>&1 | tee "$log"
rc="${PIPESTATUS[0]}"
passed=$(grep -oE '\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
failed=$(grep -oE '[0-9]+ FAILED TESTS?' "$log" | grep -oE '^[0-9]+' || echo 0)
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
echo "arm64 tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
