# Cross-compiling for 64-bit Arm (AArch64) Linux with Debian's g++-aarch64-linux-gnu and the
# arm64 multiarch packages (libhwy-dev:arm64, libgtest-dev:arm64). Tests run under
# qemu-aarch64, so the NEON kernels are exercised on an x86 host. Used by scripts/test-arm64.sh:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-toolchain.cmake -DEDGELM_KERNELS_ONLY=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: arm64 libraries and their CMake packages live in /usr/lib/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# ctest (and gtest_discover_tests) run the test binaries through the emulator. -L lets qemu
# find the arm64 dynamic loader and C/C++ runtime installed by the cross toolchain.
find_program(EDGELM_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGELM_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
