#!/usr/bin/env bash
# Instructions executed per 32 weights (one row, 32 columns) and activation vector by Tern's aarch64
# GEMMs and by llama.cpp's kernels for the same GGUF types, counted under qemu-aarch64 by
# bench/arm/count.py (qemu's per-block execution log: independent of the host's speed, and not a
# timing). Each cell: all instructions, then the vector ones (Advanced SIMD, including sdot), which a
# Cortex-A76 (Pi 5) issues on two pipes and an A72 (Pi 4) on two narrower ones.
# - Tern `neon` (sdot, -cpu max) against llama.cpp built with +dotprod, on the path it takes on such a
#   CPU: ggml_vec_dot_* for Q8_0, Q4_1, Q5_0, Q5_1; the repacked GEMVs (ggml_gemv_*_8x4_q8_K: rows
#   interleaved by 8 at load) for Q4_K and Q6_K.
# - Tern `neon-v8` (-cpu cortex-a72) against llama.cpp built for ARMv8.0 (ggml_vec_dot_*; no repacking).
# Tern: 64 rows x 2048 columns, batches of 1 and 4 (per vector), q4k also against the activations'
# per-256 form. Both built with the Swift toolchain's clang -O2 (llama.cpp's repack.cpp, C++, with
# aarch64-linux-gnu-g++). Usage: bench/arm/insn-count.sh    env: LLAMA_SRC (default: the peer build's)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
apt_install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
if [ -z "${LLAMA_SRC:-}" ]; then require_llama_bin; LLAMA_SRC="$(cd "$LLAMA_BIN/../.." && pwd)"; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sysroot=/usr/aarch64-linux-gnu
cc=(clang --target=aarch64-linux-gnu --sysroot="$sysroot" -O2 -std=gnu11)
S=Sources/CTernKernels
for f in $S/arm_neon.c $S/arm_neon_v8.c $S/cpu.c bench/arm/tern_driver.c; do
  "${cc[@]}" -march=armv8-a -I $S/include -c "$f" -o "$work/$(basename "$f" .c).o"
done
aarch64-linux-gnu-gcc "$work"/{tern_driver,arm_neon,arm_neon_v8,cpu}.o -lm -o "$work/tern"
inc=(-DGGML_USE_CPU -I "$LLAMA_SRC/ggml/include" -I "$LLAMA_SRC/ggml/src" -I "$LLAMA_SRC/ggml/src/ggml-cpu")
arm="$LLAMA_SRC/ggml/src/ggml-cpu/arch/arm"
"${cc[@]}" -march=armv8.2-a+dotprod+fp16 "${inc[@]}" -c "$arm/quants.c" -o "$work/quants_dot.o" 2>/dev/null
aarch64-linux-gnu-g++ -O2 -march=armv8.2-a+dotprod+fp16 -std=c++17 "${inc[@]}" -c "$arm/repack.cpp" -o "$work/repack_dot.o" 2>/dev/null
"${cc[@]}" -march=armv8-a "${inc[@]}" -c "$arm/quants.c" -o "$work/quants_v8.o" 2>/dev/null
"${cc[@]}" -march=armv8-a -c bench/arm/llama_driver.c -o "$work/llama_driver.o"
"${cc[@]}" -march=armv8-a -c bench/arm/llama_stubs.c -o "$work/stubs.o"
"${cc[@]}" -march=armv8-a -DGEMV_STUBS -c bench/arm/llama_stubs.c -o "$work/stubs_v8.o"
aarch64-linux-gnu-g++ "$work"/{llama_driver,quants_dot,repack_dot,stubs}.o -lm -o "$work/llama_dot"
aarch64-linux-gnu-gcc "$work"/{llama_driver,quants_v8,stubs_v8}.o -lm -o "$work/llama_v8"

cell() { python3 bench/arm/count.py "$@" | awk '{printf "%s (%s)", $2, $3}'; }
tern() {  # CPU PATH KIND BATCH [sb]
  cell "$1" "$sysroot" $((64 * 64 * $4)) "$work/tern" "$3" 64 "$4" "$2" ${5:-} 1
}
llama() {  # CPU BINARY KIND ROWS
  cell "$1" "$sysroot" $((64 * $4)) "$work/$2" "$3" 1
}
echo "Instructions per 32 weights and vector, all (vector) (qemu-aarch64, $(clang --version | head -n 1 | cut -d'(' -f1| xargs)):"
echo
echo "| type | Tern neon, batch 1 | batch 4 | llama.cpp +dotprod | Tern neon-v8, batch 1 | batch 4 | llama.cpp ARMv8.0 |"
echo "|---|---|---|---|---|---|---|"
while read -r type kind dot_kind dot_rows v8_kind sb; do
  echo "| $type | $(tern max dot "$kind" 1 $sb) | $(tern max dot "$kind" 4 $sb) | $(llama max llama_dot "$dot_kind" "$dot_rows")" \
       "| $(tern cortex-a72 v8 "$kind" 1 $sb) | $(tern cortex-a72 v8 "$kind" 4 $sb) | $(llama cortex-a72 llama_v8 "$v8_kind" 1) |"
done <<'KINDS'
Q8_0 q8 q8_0 1 q8_0
Q4_1 q4 q4_1 1 q4_1
Q5_0 q5 q5_0 1 q5_0
Q5_1 q5_1 q5_1 1 q5_1
Q6_K q6 q6_Kx8 8 q6_K
Q4_K q4k q4_Kx8 8 q4_K
Q4_K,per-256 q4k q4_Kx8 8 q4_K sb
KINDS
