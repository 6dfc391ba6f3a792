/* Tern's ISA-specific inner loops. Every function carries its own target attribute, so one
 * binary holds every path and Swift picks one at run time from the CPU's features.
 * Tiling, threading and layouts stay in Swift (TernKernels); these are only the inner loops.
 *
 * Weight layouts (see docs/format.md): q8 blocks of 34 bytes [f16 d][32 x i8],
 * q4 blocks of 20 bytes [f16 d][f16 m][16 bytes: element j low nibble, j+16 high nibble]. */
#ifndef TERN_KERNELS_H
#define TERN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Batch of int8-quantized activation vectors, 32 per group with a float scale and
 * scale * sum(q) per group (the q4 min term). Vector b starts at q + b * q_stride and its
 * group values at scale/ssum + b * s_stride. */
typedef struct tern_acts {
    const int8_t *q;
    const float *scale;
    const float *ssum;
    ptrdiff_t q_stride;
    ptrdiff_t s_stride;
} tern_acts;

/* out[b * out_stride + r] = row r of W . vector b, for rows r0 <= r < r1, b < batch.
 * `blocks` is the number of 32-element groups per row, `row_bytes` the row stride of W. */
typedef void (*tern_gemm_fn)(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                             const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);

int tern_cpu_has_avx2(void);          /* AVX2 + FMA + F16C */
int tern_cpu_has_avx512vnni(void);    /* AVX-512 F/BW/VL + VNNI */
int tern_cpu_has_neon_dotprod(void);  /* aarch64 ASIMD dot product */

#if defined(__x86_64__) || defined(__i386__)
void tern_gemm_q8_avx2(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                       const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_avx2(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                       const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q8_avx512vnni(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                             const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_avx512vnni(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                             const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_f32_to_f16_avx2(const float *x, uint16_t *y, ptrdiff_t n);
void tern_attend_f16_avx2(const float *q, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                          ptrdiff_t count, ptrdiff_t dim, float scale, float *out);
void tern_gelu_mul_avx2(float *g, const float *u, ptrdiff_t n);
void tern_quantize_avx2(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum);
#endif

#if defined(__aarch64__)
void tern_gemm_q8_neon(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                       const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_neon(const uint8_t *w, ptrdiff_t row_bytes, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t blocks,
                       const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_f32_to_f16_neon(const float *x, uint16_t *y, ptrdiff_t n);
void tern_attend_f16_neon(const float *q, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                          ptrdiff_t count, ptrdiff_t dim, float scale, float *out);
#endif

/* Fused attention for one query head over `count` cached positions (online softmax, one pass
 * over K and V): out = sum_t softmax_t(scale * q.k_t) v_t. k/v point at the first position;
 * positions are kv_stride elements apart; dim is a multiple of 8.
 * GELU-gated product: g[i] = gelu_tanh(g[i]) * u[i], tanh by a rational approximation.
 * Activation quantization of one vector (cols a multiple of 32): per group of 32,
 * scale = max|x| / 127, q = round_half_even(x / scale), ssum = scale * sum(q). */

/* A pause for spin-wait loops. */
void tern_cpu_relax(void);

/* Sums `n` 64-bit words with wide loads: a read-bandwidth probe for the roofline. */
uint64_t tern_read_probe(const uint64_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
