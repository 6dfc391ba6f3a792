/* aarch64 NEON for ARMv8.0 cores without the dot-product extension (Cortex-A53 in the Pi 3 and
 * Pi Zero 2 W, Cortex-A72 in the Pi 4): the q8 and q4 GEMMs with widening multiplies. The
 * attention and f16 kernels in arm_neon.c are ARMv8.0 already and serve this path too. Same
 * layouts and same results as the scalar reference (integer sums are exact). Checked under
 * qemu-aarch64 -cpu cortex-a72 by Tests/arm/run.sh.
 *
 * Per 32-column block of a four-row group, each row's 32 products are formed with SMULL/SMLAL
 * into 16-bit lanes and widened once with SADDLP/SADALP into 32-bit lanes: activations are
 * within +-127 (Activations.swift), so |w * a| <= 128 * 127 and two q8 products (or four q4
 * ones, weights 0..15) cannot overflow 16 bits. llama.cpp's ARMv8.0 fallback for sdot
 * (ggml_vdotq_s32) widens after every SMULL instead; sharing each activation load across
 * the group's four rows is what the interleaved layout adds. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include "tern_kernels.h"

static inline float32x4_t f16x4(const uint8_t *p) {
    uint16x4_t h;
    __builtin_memcpy(&h, p, 8);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* Row r's 32-bit partial sums: chunk c of w holds 8 columns of this row (low or high half of a
 * 16-byte pair vector), a[c] the 8 activations. `pairs` = 2: widen after every two chunks
 * (q8); 4: after all four (q4). */
static inline __attribute__((always_inline)) int32x4_t row_sums(const int8x8_t w[4], const int8x8_t a[4], const int pairs) {
    if (pairs == 4) {
        int16x8_t p = vmull_s8(w[0], a[0]);
        p = vmlal_s8(p, w[1], a[1]);
        p = vmlal_s8(p, w[2], a[2]);
        p = vmlal_s8(p, w[3], a[3]);
        return vpaddlq_s16(p);
    }
    const int16x8_t p0 = vmlal_s8(vmull_s8(w[0], a[0]), w[1], a[1]);
    const int16x8_t p1 = vmlal_s8(vmull_s8(w[2], a[2]), w[3], a[3]);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
}

/* The four rows' integer dots with 32 activations [r0 r1 r2 r3]. */
static inline __attribute__((always_inline)) int32x4_t dot4i_v8(const int8x16_t w01[4], const int8x16_t w23[4], const int8_t *aq,
                                                                const int pairs) {
    const int8x16_t alo = vld1q_s8(aq), ahi = vld1q_s8(aq + 16);
    const int8x8_t a[4] = {vget_low_s8(alo), vget_high_s8(alo), vget_low_s8(ahi), vget_high_s8(ahi)};
    const int8x8_t r0[4] = {vget_low_s8(w01[0]), vget_low_s8(w01[1]), vget_low_s8(w01[2]), vget_low_s8(w01[3])};
    const int8x8_t r1[4] = {vget_high_s8(w01[0]), vget_high_s8(w01[1]), vget_high_s8(w01[2]), vget_high_s8(w01[3])};
    const int8x8_t r2[4] = {vget_low_s8(w23[0]), vget_low_s8(w23[1]), vget_low_s8(w23[2]), vget_low_s8(w23[3])};
    const int8x8_t r3[4] = {vget_high_s8(w23[0]), vget_high_s8(w23[1]), vget_high_s8(w23[2]), vget_high_s8(w23[3])};
    const int32x4_t s01 = vpaddq_s32(row_sums(r0, a, pairs), row_sums(r1, a, pairs));
    const int32x4_t s23 = vpaddq_s32(row_sums(r2, a, pairs), row_sums(r3, a, pairs));
    return vpaddq_s32(s01, s23);
}
#define dot4_v8(w01, w23, aq, pairs) vcvtq_f32_s32(dot4i_v8(w01, w23, aq, pairs))

/* The four rows' integer dots with 16 activations (chunks 0 and 1): q6 values 0..63 (the offset
 * of 32 is added apart), so |q * a| <= 63 * 128 and two products fit int16 before the widening add. */
static inline __attribute__((always_inline)) int32x4_t dot2_v8(const int8x16_t w01[2], const int8x16_t w23[2], const int8_t *aq) {
    const int8x16_t a = vld1q_s8(aq);
    const int8x8_t a0 = vget_low_s8(a), a1 = vget_high_s8(a);
    const int32x4_t r0 = vpaddlq_s16(vmlal_s8(vmull_s8(vget_low_s8(w01[0]), a0), vget_low_s8(w01[1]), a1));
    const int32x4_t r1 = vpaddlq_s16(vmlal_s8(vmull_s8(vget_high_s8(w01[0]), a0), vget_high_s8(w01[1]), a1));
    const int32x4_t r2 = vpaddlq_s16(vmlal_s8(vmull_s8(vget_low_s8(w23[0]), a0), vget_low_s8(w23[1]), a1));
    const int32x4_t r3 = vpaddlq_s16(vmlal_s8(vmull_s8(vget_high_s8(w23[0]), a0), vget_high_s8(w23[1]), a1));
    return vpaddq_s32(vpaddq_s32(r0, r1), vpaddq_s32(r2, r3));
}

#define ARM_ATTR
#define ARM_NAME(x) x##_v8
#define ARM_DOT4_Q8(w01, w23, aq) dot4_v8(w01, w23, aq, 2)
#define ARM_DOT4_Q4(w01, w23, aq) dot4_v8(w01, w23, aq, 4)
#define ARM_DOT4I_Q4(w01, w23, aq) dot4i_v8(w01, w23, aq, 4)
#define ARM_DOT4I_Q4_PAIR(p, w01, w23, aq) vaddq_s32(dot4i_v8(w01, w23, aq, 4), vshrq_n_s32(vpaddq_s32(p, p), 1))
#define ARM_DOT2_OFF(o4, w01, w23, aq) vaddq_s32(dot2_v8(w01, w23, aq), o4)
#define ARM_DOT2 dot2_v8
#include "arm_groups.inc"
#include "arm_sb_groups.inc"

#include "gemm_body.h"

GEMM_FN(, tern_gemm_q8_neon_v8, ARM_NAME(q8_group))
GEMM_FN(, tern_gemm_q4_neon_v8, ARM_NAME(q4_group))
GEMM_FN(, tern_gemm_q5_neon_v8, ARM_NAME(q5_group))
GEMM_FN(, tern_gemm_q6_neon_v8, ARM_NAME(q6_group))
GEMM_FN(, tern_gemm_q4k_neon_v8, ARM_NAME(q4k_group))
GEMM_FN(, tern_gemm_q5k_neon_v8, ARM_NAME(q5k_group))
GEMM_FN(, tern_gemm_q5_1_neon_v8, ARM_NAME(q5_1_group))
#endif
