#!/usr/bin/env bash
# Cross-compiles Tern's aarch64 NEON kernels with a small test program and runs it under
# qemu-aarch64 against a scalar reference (no aarch64 Swift toolchain is needed for this).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -std=c11 -Wall -Werror -march=armv8-a -I Sources/CTernKernels/include \
  Sources/CTernKernels/arm_neon.c Sources/CTernKernels/cpu.c Tests/arm/neon_test.c -lm -o "$out/neon_test"
qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$out/neon_test"
