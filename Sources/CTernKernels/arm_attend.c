/* aarch64 attention over the KV cache, ARMv8.0 Advanced SIMD (FCVTL for f16), used by both
 * aarch64 paths. The scheme of x86_attend.inc, four lanes wide: one call serves the `heads` query
 * heads that share one KV head, so each K and V element is widened once for all of them, and
 * positions go a block at a time (blocked online softmax: Milakov & Gimelshein 2018, taken a
 * block at a time as FlashAttention, Dao et al. 2022, does): the block's scores are independent
 * dot products, each head's maximum and running sum move at most once per block, the weights
 * exp(s - max) come four at a time (exp_neon), and each output vector stays in a register
 * while the block's values are added. Checked under qemu-aarch64 by Tests/arm/run.sh. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include "tern_kernels.h"
#include "arm_exp.h"
#include "attend_common.h"

static inline float32x4_t ph4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

/* 4 int8 values of a q8 row at byte offset i (the values start at dim / 8), times `sc`. */
static inline float32x4_t i8x4(const uint8_t *p, float sc) {
    uint32_t w;
    __builtin_memcpy(&w, p, 4);
    const int8x8_t b = vreinterpret_s8_u32(vdup_n_u32(w));
    return vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(b)))), sc);
}

/* One head's block: scores s[0..n) become the weights exp(s - max) after the head's running
 * state (m, l, out) is brought to the block's maximum; l gains their sum. s has room for
 * ATT_BLOCK + 3 values. */
static inline void att_weights(float *s, ptrdiff_t n, float *m, float *l, float *out, ptrdiff_t dim) {
    float bm = s[0];
    for (ptrdiff_t j = 1; j < n; j++) bm = s[j] > bm ? s[j] : bm;
    if (bm > *m) {
        const float c = *m == -INFINITY ? 0.0f : expf(*m - bm);
        for (ptrdiff_t i = 0; i < dim; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(out + i), c));
        *l *= c;
        *m = bm;
    }
    for (ptrdiff_t j = n; j % 4; j++) s[j] = -INFINITY; /* padding: weight 0 */
    float32x4_t sum = vdupq_n_f32(0);
    const float32x4_t vm = vdupq_n_f32(*m);
    for (ptrdiff_t j = 0; j < n; j += 4) {
        const float32x4_t p = exp_neon(vsubq_f32(vld1q_f32(s + j), vm));
        /* exp_neon clamps at -87: zero the padding lanes explicitly */
        const uint32x4_t live = vcltq_u32((uint32x4_t){0, 1, 2, 3}, vdupq_n_u32((uint32_t)(n - j)));
        const float32x4_t pz = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(p), live));
        vst1q_f32(s + j, pz);
        sum = vaddq_f32(sum, pz);
    }
    *l += vaddvq_f32(sum);
}

/* K/V element access: f16 rows `stride` elements apart, or q8 rows of `stride` bytes
 * ([dim/32 f32 scales][dim int8]). LOAD4(row, i) gives 4 floats at i. */
#define F16_ROW(base, t) ((const uint16_t *)(base) + (t) * stride)
#define F16_LOAD4(row, i) ph4((row) + (i))
#define Q8_ROW(base, t) ((const uint8_t *)(base) + (t) * stride)
#define Q8_LOAD4(row, i) i8x4((row) + dim / 8 + (i), ((const float *)(const void *)(row))[(i) / 32])

#define ATT_BODY(G, ROW, LOAD4)                                                                     \
    float s[TERN_ATTEND_MAX_HEADS][ATT_BLOCK + 4];                                                  \
    for (ptrdiff_t t0 = 0; t0 < count; t0 += ATT_BLOCK) {                                           \
        const ptrdiff_t n = count - t0 < ATT_BLOCK ? count - t0 : ATT_BLOCK;                        \
        for (ptrdiff_t j = 0; j < n; j++) {                                                         \
            const __typeof__(ROW(k, 0)) kt = ROW(k, t0 + j);                                        \
            float32x4_t acc[TERN_ATTEND_MAX_HEADS];                                                 \
            for (int g = 0; g < G; g++) acc[g] = vdupq_n_f32(0);                                    \
            for (ptrdiff_t i = 0; i < dim; i += 4) {                                                \
                const float32x4_t kx = LOAD4(kt, i);                                                \
                for (int g = 0; g < G; g++) acc[g] = vfmaq_f32(acc[g], vld1q_f32(q + g * dim + i), kx); \
            }                                                                                       \
            for (int g = 0; g < G; g++) s[g][j] = vaddvq_f32(acc[g]) * scale;                       \
        }                                                                                           \
        for (int g = 0; g < G; g++) att_weights(s[g], n, &state[2 * g], &state[2 * g + 1], out + g * dim, dim); \
        for (ptrdiff_t i = 0; i < dim; i += 4) {                                                    \
            float32x4_t o[TERN_ATTEND_MAX_HEADS];                                                   \
            for (int g = 0; g < G; g++) o[g] = vld1q_f32(out + g * dim + i);                        \
            for (ptrdiff_t j = 0; j < n; j++) {                                                     \
                const float32x4_t vx = LOAD4(ROW(v, t0 + j), i);                                    \
                for (int g = 0; g < G; g++) o[g] = vfmaq_n_f32(o[g], vx, s[g][j]);                  \
            }                                                                                       \
            for (int g = 0; g < G; g++) vst1q_f32(out + g * dim + i, o[g]);                         \
        }                                                                                           \
    }

static inline __attribute__((always_inline)) void att_f16(const int G, const float *q, const uint16_t *k, const uint16_t *v,
                                                          ptrdiff_t stride, ptrdiff_t count, ptrdiff_t dim, float scale,
                                                          float *out, float *state) {
    ATT_BODY(G, F16_ROW, F16_LOAD4)
}

static inline __attribute__((always_inline)) void att_q8(const int G, const float *q, const uint8_t *k, const uint8_t *v,
                                                         ptrdiff_t stride, ptrdiff_t count, ptrdiff_t dim, float scale,
                                                         float *out, float *state) {
    ATT_BODY(G, Q8_ROW, Q8_LOAD4)
}

/* The exported kernels (ATT_DISPATCH: attend_common.h). */
void tern_attend_f16_neon(const float *q, ptrdiff_t heads, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                          ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state) {
    ATT_DISPATCH(att_f16, q, k, v, kv_stride, count, dim, scale, out, state)
}

void tern_attend_q8_neon(const float *q, ptrdiff_t heads, const uint8_t *k, const uint8_t *v, ptrdiff_t row_bytes,
                         ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state) {
    ATT_DISPATCH(att_q8, q, k, v, row_bytes, count, dim, scale, out, state)
}
#endif
