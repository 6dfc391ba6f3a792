/* aarch64 NEON: the GEMMs with the dot-product extension (sdot, ARMv8.2+), and the attention and
 * conversion kernels, which use only ARMv8.0 Advanced SIMD (FCVTL/FCVTN for f16) and so serve
 * both the sdot path and the ARMv8.0 one (arm_neon_v8.c). Checked under qemu-aarch64 by
 * Tests/arm/run.sh against a scalar reference, with and without the dot-product extension. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include "tern_kernels.h"
#include "arm_exp.h"

#define TN __attribute__((target("arch=armv8.2-a+dotprod+fp16")))

static inline float f16(const uint8_t *p) {
    __fp16 h;
    __builtin_memcpy(&h, p, 2);
    return (float)h;
}

static inline float32x4_t f16x4(const uint8_t *p) {
    uint16x4_t h;
    __builtin_memcpy(&h, p, 8);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* The four rows' integer dots with the 8n activations of n weight chunks (n = 4: a block; 2: a
 * 16-column half): each chunk c holds rows 0,1 (w01) and rows 2,3 (w23) x 8 columns; sdot against
 * the 8 activations duplicated gives two lanes per row, pairwise-added into [r0 r1 r2 r3]. The lanes
 * start at init01, so its lanes 0 + 1 and 2 + 3 (the same sum) are added to every row. */
TN static inline __attribute__((always_inline)) int32x4_t dotn_from_neon(const int32x4_t init01, const int8x16_t *w01,
                                                                         const int8x16_t *w23, const int8_t *aq, const int n) {
    int32x4_t s01 = init01, s23 = init01;
    for (int c = 0; c < n; c++) {
        int64_t a8; /* the 8 activations in both halves: one load-and-replicate (LD1R) */
        __builtin_memcpy(&a8, aq + 8 * c, 8);
        const int8x16_t a16 = vreinterpretq_s8_s64(vdupq_n_s64(a8));
        s01 = vdotq_s32(s01, w01[c], a16);
        s23 = vdotq_s32(s23, w23[c], a16);
    }
    return vpaddq_s32(s01, s23);
}
#define dotn_neon(w01, w23, aq, n) dotn_from_neon(vdupq_n_s32(0), w01, w23, aq, n)

#define dot4_neon(w01, w23, aq) vcvtq_f32_s32(dotn_neon(w01, w23, aq, 4))
#define dot2_neon(w01, w23, aq) dotn_neon(w01, w23, aq, 2)

#define ARM_ATTR TN
#define ARM_NAME(x) x##_neon
#define ARM_DOT4_Q8 dot4_neon
#define ARM_DOT4_Q4 dot4_neon
#define ARM_DOT4I_Q4(w01, w23, aq) dotn_neon(w01, w23, aq, 4)
#define ARM_DOT4I_Q4_PAIR(p, w01, w23, aq) dotn_from_neon(vshrq_n_s32(p, 1), w01, w23, aq, 4)
#define ARM_DOT2_OFF(o4, w01, w23, aq) dotn_from_neon(vshrq_n_s32(o4, 1), w01, w23, aq, 2)
#define ARM_DOT2 dot2_neon
#include "arm_groups.inc"
#include "arm_sb_groups.inc"

#include "gemm_body.h"

GEMM_FN(TN, tern_gemm_q8_neon, ARM_NAME(q8_group))
GEMM_FN(TN, tern_gemm_q4_neon, ARM_NAME(q4_group))
GEMM_FN(TN, tern_gemm_q5_neon, ARM_NAME(q5_group))
GEMM_FN(TN, tern_gemm_q6_neon, ARM_NAME(q6_group))
GEMM_FN(TN, tern_gemm_q4k_neon, ARM_NAME(q4k_group))
GEMM_FN(TN, tern_gemm_q5k_neon, ARM_NAME(q5k_group))
GEMM_FN(TN, tern_gemm_q5_1_neon, ARM_NAME(q5_1_group))

/* ARMv8.0 from here on (attention: arm_attend.c). */
void tern_f32_to_f16_neon(const float *x, uint16_t *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) {
        __fp16 h = (__fp16)x[i];
        __builtin_memcpy(y + i, &h, 2);
    }
}
/* tanh(x) as a rational function, odd numerator of degree 13 over even denominator of degree 6,
 * x clamped to +-7.905 (the approximation Eigen uses for float): the same constants and fused
 * multiply-adds in the same order as Ops.tanhRational and the AVX2 kernel, so GELUs are
 * bit-identical on every path. */
static inline float32x4_t tanh_neon(float32x4_t x) {
    const float32x4_t lim = vdupq_n_f32(7.90531110763549805f);
    x = vmaxq_f32(vminq_f32(x, lim), vnegq_f32(lim));
    const float32x4_t x2 = vmulq_f32(x, x);
    float32x4_t p = vdupq_n_f32(-2.76076847742355e-16f);
    p = vfmaq_f32(vdupq_n_f32(2.00018790482477e-13f), x2, p);
    p = vfmaq_f32(vdupq_n_f32(-8.60467152213735e-11f), x2, p);
    p = vfmaq_f32(vdupq_n_f32(5.12229709037114e-08f), x2, p);
    p = vfmaq_f32(vdupq_n_f32(1.48572235717979e-05f), x2, p);
    p = vfmaq_f32(vdupq_n_f32(6.37261928875436e-04f), x2, p);
    p = vfmaq_f32(vdupq_n_f32(4.89352455891786e-03f), x2, p);
    p = vmulq_f32(x, p);
    float32x4_t q = vdupq_n_f32(1.19825839466702e-06f);
    q = vfmaq_f32(vdupq_n_f32(1.18534705686654e-04f), x2, q);
    q = vfmaq_f32(vdupq_n_f32(2.26843463243900e-03f), x2, q);
    q = vfmaq_f32(vdupq_n_f32(4.89352518554385e-03f), x2, q);
    return vdivq_f32(p, q);
}

static inline float32x4_t gelu_mul4(float32x4_t x, float32x4_t u) {
    const float32x4_t inner = vmulq_n_f32(vfmaq_f32(x, vmulq_n_f32(x, 0.044715f), vmulq_f32(x, x)), 0.7978845608f);
    return vmulq_f32(vmulq_f32(vmulq_n_f32(x, 0.5f), vaddq_f32(vdupq_n_f32(1), tanh_neon(inner))), u);
}

/* g[i] = OP(g[i], u[i]) over n floats, 4 at a time; the tail goes through the same vector code,
 * zero-padded, so every element gets the same operations. */
#define TERN_GATED_MUL_NEON(NAME, OP)                                                              \
    void NAME(float *g, const float *u, ptrdiff_t n) {                                             \
        ptrdiff_t i = 0;                                                                           \
        for (; i + 4 <= n; i += 4) vst1q_f32(g + i, OP(vld1q_f32(g + i), vld1q_f32(u + i)));      \
        if (i < n) {                                                                               \
            float x[4] = {0}, y[4] = {0};                                                          \
            for (ptrdiff_t j = 0; j < n - i; j++) { x[j] = g[i + j]; y[j] = u[i + j]; }            \
            vst1q_f32(x, OP(vld1q_f32(x), vld1q_f32(y)));                                          \
            for (ptrdiff_t j = 0; j < n - i; j++) g[i + j] = x[j];                                 \
        }                                                                                          \
    }

TERN_GATED_MUL_NEON(tern_gelu_mul_neon, gelu_mul4)

static inline float32x4_t silu_mul4(float32x4_t x, float32x4_t u) {
    const float32x4_t e = exp_neon(vnegq_f32(x));
    return vmulq_f32(vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e)), u);
}

TERN_GATED_MUL_NEON(tern_silu_mul_neon, silu_mul4)

/* Activations to int8 per group of 32 (scale = max|x| / 127, round half to even: FCVTNS), with
 * the group's scaled sum, the two -128 x sum biases and the half-sum offsets, byte for byte as
 * Activations.swift. */
void tern_quantize_neon(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int32_t *bias, int32_t *hoff) {
    for (ptrdiff_t g = 0; g < cols / 32; g++) {
        const float *p = x + g * 32;
        float32x4_t v[8], m = vdupq_n_f32(0);
        for (int j = 0; j < 8; j++) {
            v[j] = vld1q_f32(p + 4 * j);
            m = vmaxq_f32(m, vabsq_f32(v[j]));
        }
        const float d = vmaxvq_f32(m) / 127.0f;
        const float inv = d == 0 ? 0 : 1.0f / d;
        int32x4_t qi[8], sum = vdupq_n_s32(0), even = vdupq_n_s32(0), first = vdupq_n_s32(0);
        for (int j = 0; j < 8; j++) {
            qi[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], inv));
            sum = vaddq_s32(sum, qi[j]);
            if (j % 2 == 0) even = vaddq_s32(even, qi[j]); /* bytes 0-3 of each 8-column chunk */
            if (j < 4) first = vaddq_s32(first, qi[j]);    /* columns 0-15 */
        }
        for (int j = 0; j < 4; j++) {
            const int16x8_t h = vcombine_s16(vqmovn_s32(qi[2 * j]), vqmovn_s32(qi[2 * j + 1]));
            vst1_s8(q + g * 32 + 8 * j, vqmovn_s16(h));
        }
        const int32_t s = vaddvq_s32(sum), e = vaddvq_s32(even);
        scale[g] = d;
        ssum[g] = d * (float)s;
        bias[2 * g] = -128 * e;
        bias[2 * g + 1] = -128 * (s - e);
        const int32_t f = vaddvq_s32(first);
        hoff[2 * g] = -32 * f;
        hoff[2 * g + 1] = -32 * (s - f);
    }
}
/* The per-256 form (tern_kernels.h, tern_acts sb_*): per super-block of 256 columns the max |x|,
 * D = max / 127 and q = round-half-even(x / D) as tern_quantize_neon rounds; per 32 columns D times
 * the sum of q and that sum as int16, and per 16 columns the sums (hsum), byte for byte as
 * Activations.swift and tern_quantize_sb_avx2. */
void tern_quantize_sb_neon(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int16_t *bsum, int16_t *hsum) {
    for (ptrdiff_t s = 0; s < cols / 256; s++) {
        const float *p = x + s * 256;
        float32x4_t m = vdupq_n_f32(0);
        for (int j = 0; j < 64; j++) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(p + 4 * j)));
        const float d = vmaxvq_f32(m) / 127.0f;
        const float inv = d == 0 ? 0 : 1.0f / d;
        for (int g = 0; g < 8; g++) {
            int32x4_t qi[8], first = vdupq_n_s32(0), second = vdupq_n_s32(0);
            for (int j = 0; j < 8; j++) {
                qi[j] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(p + 32 * g + 4 * j), inv));
                if (j < 4) first = vaddq_s32(first, qi[j]); else second = vaddq_s32(second, qi[j]);
            }
            for (int j = 0; j < 4; j++) {
                const int16x8_t h = vcombine_s16(vqmovn_s32(qi[2 * j]), vqmovn_s32(qi[2 * j + 1]));
                vst1_s8(q + s * 256 + 32 * g + 8 * j, vqmovn_s16(h));
            }
            const int32_t f = vaddvq_s32(first), sum = f + vaddvq_s32(second);
            scale[8 * s + g] = d;
            ssum[8 * s + g] = d * (float)sum;
            bsum[8 * s + g] = (int16_t)sum;
            hsum[16 * s + 2 * g] = (int16_t)f;
            hsum[16 * s + 2 * g + 1] = (int16_t)(sum - f);
        }
    }
}
#endif
