/* aarch64 NEON with the dot-product extension (sdot). Checked under qemu-aarch64 by
 * Tests/arm/run.sh against a scalar reference. */
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

TN static inline __attribute__((always_inline)) void q8_row_neon(const uint8_t *row, ptrdiff_t blocks, const tern_acts *a,
                                                                 int b0, const int nb, float *out, ptrdiff_t os) {
    float32x4_t acc[4];
    for (int j = 0; j < nb; j++) acc[j] = vdupq_n_f32(0);
    for (ptrdiff_t k = 0; k < blocks; k++) {
        const uint8_t *blk = row + k * 34;
        const float dw = f16(blk);
        const int8x16_t w0 = vld1q_s8((const int8_t *)(blk + 2)), w1 = vld1q_s8((const int8_t *)(blk + 18));
        for (int j = 0; j < nb; j++) {
            const int8_t *aq = a->q + (b0 + j) * a->q_stride + k * 32;
            int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(aq)), w1, vld1q_s8(aq + 16));
            acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), dw * a->scale[(b0 + j) * a->s_stride + k]);
        }
    }
    for (int j = 0; j < nb; j++) out[(b0 + j) * os] = vaddvq_f32(acc[j]);
}

TN static inline __attribute__((always_inline)) void q4_row_neon(const uint8_t *row, ptrdiff_t blocks, const tern_acts *a,
                                                                 int b0, const int nb, float *out, ptrdiff_t os) {
    float32x4_t acc[4];
    float msum[4] = {0, 0, 0, 0};
    for (int j = 0; j < nb; j++) acc[j] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (ptrdiff_t k = 0; k < blocks; k++) {
        const uint8_t *blk = row + k * 20;
        const float dw = f16(blk), mw = f16(blk + 2);
        const uint8x16_t x = vld1q_u8(blk + 4);
        const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(x, m4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(x, 4));
        for (int j = 0; j < nb; j++) {
            const int8_t *aq = a->q + (b0 + j) * a->q_stride + k * 32;
            const ptrdiff_t g = (b0 + j) * a->s_stride + k;
            int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(aq)), hi, vld1q_s8(aq + 16));
            acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), dw * a->scale[g]);
            msum[j] += mw * a->ssum[g];
        }
    }
    for (int j = 0; j < nb; j++) out[(b0 + j) * os] = vaddvq_f32(acc[j]) + msum[j];
}

#define GEMM_BODY(ROW)                                                                  \
    for (ptrdiff_t r = r0; r < r1; r++) {                                               \
        const uint8_t *row = w + r * row_bytes;                                         \
        int b0 = 0;                                                                     \
        for (; b0 + 4 <= batch; b0 += 4) ROW(row, blocks, a, b0, 4, out + r, out_stride); \
        switch (batch - b0) {                                                           \
        case 3: ROW(row, blocks, a, b0, 3, out + r, out_stride); break;                 \
        case 2: ROW(row, blocks, a, b0, 2, out + r, out_stride); break;                 \
        case 1: ROW(row, blocks, a, b0, 1, out + r, out_stride); break;                 \
        default: break;                                                                 \
        }                                                                               \
    }

TN void tern_gemm_q8_neon(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                          const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) {
    GEMM_BODY(q8_row_neon)
}

TN void tern_gemm_q4_neon(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                          const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) {
    GEMM_BODY(q4_row_neon)
}

TN void tern_attend_f16_neon(const float *q, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                             ptrdiff_t count, ptrdiff_t dim, float scale, float *out) {
    float m = -INFINITY, l = 0;
    for (ptrdiff_t i = 0; i < dim; i++) out[i] = 0;
    for (ptrdiff_t t = 0; t < count; t++) {
        const uint16_t *kt = k + t * kv_stride, *vt = v + t * kv_stride;
        float32x4_t a = vdupq_n_f32(0);
        for (ptrdiff_t i = 0; i < dim; i += 4) a = vfmaq_f32(a, vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(kt + i))));
        const float s = vaddvq_f32(a) * scale;
        if (s > m) {
            const float c = expf(m - s);
            for (ptrdiff_t i = 0; i < dim; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(out + i), c));
            l *= c;
            m = s;
        }
        const float p = expf(s - m);
        l += p;
        for (ptrdiff_t i = 0; i < dim; i += 4)
            vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(vt + i))), p));
    }
    for (ptrdiff_t i = 0; i < dim; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(out + i), 1.0f / l));
}

TN void tern_f32_to_f16_neon(const float *x, uint16_t *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) {
        __fp16 h = (__fp16)x[i];
        __builtin_memcpy(y + i, &h, 2);
    }
}
#endif
