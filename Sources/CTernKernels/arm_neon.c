/* aarch64 NEON: the GEMMs with the dot-product extension (sdot, ARMv8.2+), and the attention and
 * conversion kernels, which use only ARMv8.0 Advanced SIMD (FCVTL/FCVTN for f16) and so serve
 * both the sdot path and the ARMv8.0 one (arm_neon_v8.c). Checked under qemu-aarch64 by
 * Tests/arm/run.sh against a scalar reference, with and without the dot-product extension. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include "tern_kernels.h"

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

/* The four rows' integer dots with 32 activations, as floats: each weight chunk c holds rows
 * 0,1 (w01) and rows 2,3 (w23) x 8 columns; sdot against the 8 activations duplicated gives two
 * lanes per row, pairwise-added into [r0 r1 r2 r3]. */
TN static inline __attribute__((always_inline)) float32x4_t dot4_neon(const int8x16_t w01[4], const int8x16_t w23[4], const int8_t *aq) {
    int32x4_t s01 = vdupq_n_s32(0), s23 = vdupq_n_s32(0);
    for (int c = 0; c < 4; c++) {
        const int8x8_t a8 = vld1_s8(aq + 8 * c);
        const int8x16_t a16 = vcombine_s8(a8, a8);
        s01 = vdotq_s32(s01, w01[c], a16);
        s23 = vdotq_s32(s23, w23[c], a16);
    }
    return vcvtq_f32_s32(vpaddq_s32(s01, s23));
}

/* One four-row q8 group: each 32-byte chunk holds rows 0,1 (first 16 bytes) and rows 2,3
 * (last 16) x 8 columns; sdot against the 8 activations duplicated gives two lanes per row. */
TN static inline __attribute__((always_inline)) void q8_group_neon(const uint8_t *grp, ptrdiff_t blocks, const tern_acts *a,
                                                                   int b0, const int nb, float *out, ptrdiff_t os, int valid) {
    float32x4_t acc[4];
    for (int j = 0; j < nb; j++) acc[j] = vdupq_n_f32(0);
    for (ptrdiff_t k = 0; k < blocks; k++) {
        const uint8_t *gb = grp + k * 136;
        const float32x4_t dw = f16x4(gb);
        int8x16_t w01[4], w23[4];
        for (int c = 0; c < 4; c++) {
            w01[c] = vld1q_s8((const int8_t *)(gb + 8 + 32 * c));
            w23[c] = vld1q_s8((const int8_t *)(gb + 24 + 32 * c));
        }
        for (int j = 0; j < nb; j++) {
            const ptrdiff_t g = (b0 + j) * a->s_stride + k;
            const float32x4_t r = dot4_neon(w01, w23, a->q + (b0 + j) * a->q_stride + k * 32);
            acc[j] = vfmaq_f32(acc[j], vmulq_n_f32(dw, a->scale[g]), r);
        }
    }
    for (int j = 0; j < nb; j++) {
        float t[4];
        vst1q_f32(t, acc[j]);
        for (int r = 0; r < valid; r++) out[(b0 + j) * os + r] = t[r];
    }
}

TN static inline __attribute__((always_inline)) void q4_group_neon(const uint8_t *grp, ptrdiff_t blocks, const tern_acts *a,
                                                                   int b0, const int nb, float *out, ptrdiff_t os, int valid) {
    float32x4_t acc[4];
    for (int j = 0; j < nb; j++) acc[j] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (ptrdiff_t k = 0; k < blocks; k++) {
        const uint8_t *gb = grp + k * 80;
        const float32x4_t dw = f16x4(gb), mw = f16x4(gb + 8);
        int8x16_t w01[4], w23[4];
        for (int h = 0; h < 2; h++) {
            const uint8x16_t x01 = vld1q_u8(gb + 16 + 32 * h), x23 = vld1q_u8(gb + 32 + 32 * h);
            w01[2 * h] = vreinterpretq_s8_u8(vandq_u8(x01, m4));
            w01[2 * h + 1] = vreinterpretq_s8_u8(vshrq_n_u8(x01, 4));
            w23[2 * h] = vreinterpretq_s8_u8(vandq_u8(x23, m4));
            w23[2 * h + 1] = vreinterpretq_s8_u8(vshrq_n_u8(x23, 4));
        }
        for (int j = 0; j < nb; j++) {
            const ptrdiff_t g = (b0 + j) * a->s_stride + k;
            const float32x4_t r = dot4_neon(w01, w23, a->q + (b0 + j) * a->q_stride + k * 32);
            acc[j] = vfmaq_f32(acc[j], vmulq_n_f32(dw, a->scale[g]), r);
            acc[j] = vfmaq_n_f32(acc[j], mw, a->ssum[g]);
        }
    }
    for (int j = 0; j < nb; j++) {
        float t[4];
        vst1q_f32(t, acc[j]);
        for (int r = 0; r < valid; r++) out[(b0 + j) * os + r] = t[r];
    }
}

#include "gemm_body.h"

TN void tern_gemm_q8_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
                          ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) {
    GEMM_BODY(q8_group_neon)
}

TN void tern_gemm_q4_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
                          ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) {
    GEMM_BODY(q4_group_neon)
}

/* One online-softmax step for score s: rescales out and the running sum when the maximum grows,
 * and returns the weight exp(s - max) of this position's value. ARMv8.0 from here on. */
static inline float online_step(float s, float *m, float *l, float *out, ptrdiff_t dim) {
    if (s > *m) {
        const float c = expf(*m - s);
        for (ptrdiff_t i = 0; i < dim; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(out + i), c));
        *l *= c;
        *m = s;
    }
    const float p = expf(s - *m);
    *l += p;
    return p;
}

void tern_attend_f16_neon(const float *q, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                             ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state) {
    float m = state[0], l = state[1];
    for (ptrdiff_t t = 0; t < count; t++) {
        const uint16_t *kt = k + t * kv_stride, *vt = v + t * kv_stride;
        float32x4_t a = vdupq_n_f32(0);
        for (ptrdiff_t i = 0; i < dim; i += 4) a = vfmaq_f32(a, vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(kt + i))));
        const float p = online_step(vaddvq_f32(a) * scale, &m, &l, out, dim);
        for (ptrdiff_t i = 0; i < dim; i += 4)
            vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(vt + i))), p));
    }
    state[0] = m;
    state[1] = l;
}

static inline float32x4_t q8row4(const uint8_t *row, ptrdiff_t dim, ptrdiff_t i, int high) {
    const float sc = ((const float *)row)[i / 32];
    const int16x8_t w = vmovl_s8(vld1_s8((const int8_t *)(row + dim / 32 * 4 + i)));
    const int32x4_t x = high ? vmovl_s16(vget_high_s16(w)) : vmovl_s16(vget_low_s16(w));
    return vmulq_n_f32(vcvtq_f32_s32(x), sc);
}

void tern_attend_q8_neon(const float *q, const uint8_t *k, const uint8_t *v, ptrdiff_t row_bytes,
                            ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state) {
    float m = state[0], l = state[1];
    for (ptrdiff_t t = 0; t < count; t++) {
        const uint8_t *kt = k + t * row_bytes, *vt = v + t * row_bytes;
        float32x4_t a = vdupq_n_f32(0);
        for (ptrdiff_t i = 0; i < dim; i += 8) {
            a = vfmaq_f32(a, vld1q_f32(q + i), q8row4(kt, dim, i, 0));
            a = vfmaq_f32(a, vld1q_f32(q + i + 4), q8row4(kt, dim, i, 1));
        }
        const float p = online_step(vaddvq_f32(a) * scale, &m, &l, out, dim);
        for (ptrdiff_t i = 0; i < dim; i += 8) {
            vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), q8row4(vt, dim, i, 0), p));
            vst1q_f32(out + i + 4, vfmaq_n_f32(vld1q_f32(out + i + 4), q8row4(vt, dim, i, 1), p));
        }
    }
    state[0] = m;
    state[1] = l;
}

void tern_f32_to_f16_neon(const float *x, uint16_t *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) {
        __fp16 h = (__fp16)x[i];
        __builtin_memcpy(y + i, &h, 2);
    }
}
#endif
