#!/usr/bin/env bash
# Instructions executed per 32-column block of one weight row and one activation vector, Tern's
# aarch64 GEMMs against llama.cpp's ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0, both compiled the same way
# (the Swift toolchain's clang, -O2 -march=armv8-a, so llama.cpp takes its no-dot-product path;
# Tern's `neon` kernels carry their own sdot target) and counted under qemu-aarch64 with
# bench/arm/count.py (qemu's per-block execution log; independent of the host's speed).
# Usage: bench/arm/insn-count.sh    env: LLAMA_SRC (llama.cpp source; default: the peer build's)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
if [ -z "${LLAMA_SRC:-}" ]; then require_llama_bin; LLAMA_SRC="$(cd "$LLAMA_BIN/../.." && pwd)"; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sysroot=/usr/aarch64-linux-gnu
cc=(clang --target=aarch64-linux-gnu --sysroot="$sysroot" -O2 -march=armv8-a -std=gnu11)
S=Sources/CTernKernels
for f in $S/arm_neon.c $S/arm_neon_v8.c $S/cpu.c bench/arm/tern_driver.c; do "${cc[@]}" -I $S/include -c "$f" -o "$work/$(basename "$f" .c).o"; done
"${cc[@]}" -DGGML_USE_CPU -I "$LLAMA_SRC/ggml/include" -I "$LLAMA_SRC/ggml/src" -I "$LLAMA_SRC/ggml/src/ggml-cpu" \
  -c "$LLAMA_SRC/ggml/src/ggml-cpu/arch/arm/quants.c" -o "$work/quants.o" 2>/dev/null
"${cc[@]}" -c bench/arm/llama_driver.c -o "$work/llama_driver.o"
aarch64-linux-gnu-gcc "$work"/{tern_driver,arm_neon,arm_neon_v8,cpu}.o -lm -o "$work/tern"
aarch64-linux-gnu-gcc "$work"/{llama_driver,quants}.o bench/arm/llama_stubs.c -lm -o "$work/llama"
count() { python3 bench/arm/count.py "$@" | cut -d' ' -f2; }
echo "Instructions per 32-column block of one row and one activation vector (qemu-aarch64, $(clang --version | head -n 1 | cut -d'(' -f1)):"
echo
echo "| kernel | q8 | q4 |"
echo "|---|---|---|"
echo "| llama.cpp ggml_vec_dot_q{8,4}_0_q8_0, ARMv8.0 path (cortex-a72) | $(count cortex-a72 $sysroot 64 "$work/llama" q8 1) | $(count cortex-a72 $sysroot 64 "$work/llama" q4 1) |"
for rb in "64 1" "64 4"; do
  set -- $rb
  echo "| Tern neon-v8 (cortex-a72), 64 rows, batch $2 | $(count cortex-a72 $sysroot $((64 * 64 * $2)) "$work/tern" q8 "$1" "$2" v8 1) | $(count cortex-a72 $sysroot $((64 * 64 * $2)) "$work/tern" q4 "$1" "$2" v8 1) |"
  echo "| Tern neon (sdot; -cpu max), 64 rows, batch $2 | $(count max $sysroot $((64 * 64 * $2)) "$work/tern" q8 "$1" "$2" dot 1) | $(count max $sysroot $((64 * 64 * $2)) "$work/tern" q4 "$1" "$2" dot 1) |"
done
