#!/usr/bin/env bash
# Cross-compiles Tern's aarch64 NEON kernels (baseline -march=armv8-a; the sdot kernels carry
# their own target attribute) with a small test program and runs it under qemu-aarch64 against
# a scalar reference, on a CPU with the dot-product extension (-cpu max: both GEMM paths) and on
# the Pi 4's Cortex-A72 (ARMv8.0: the sdot path must not be detected, the ARMv8.0 path runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -std=c11 -Wall -Werror -march=armv8-a -I Sources/CTernKernels/include \
  Sources/CTernKernels/arm_neon.c Sources/CTernKernels/arm_attend.c Sources/CTernKernels/arm_neon_v8.c Sources/CTernKernels/cpu.c Tests/arm/neon_test.c \
  -lm -o "$out/neon_test"
status=0
echo "qemu-aarch64 -cpu max (ARMv8.x with sdot):"
EXPECT_DOTPROD=1 qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$out/neon_test" || status=1
echo "qemu-aarch64 -cpu cortex-a72 (ARMv8.0, Raspberry Pi 4):"
EXPECT_DOTPROD=0 qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$out/neon_test" || status=1
exit "$status"
