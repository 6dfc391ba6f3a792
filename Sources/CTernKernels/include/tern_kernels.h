/* Tern's ISA-specific inner loops. Every function carries its own target attribute, so one
 * binary holds every path and Swift picks one at run time from the CPU's features.
 * Tiling, threading and layouts stay in Swift (TernKernels); these are only the inner loops.
 *
 * Weight layouts (docs/format.md): rows interleaved in groups of four. Per group and block of
 * 32 columns, q8: [d0..d3: f16][chunk c = 0..3: rows 0..3 x 8 int8] (136 bytes);
 * q4: [d0..d3: f16][m0..m3: f16][two 32-byte halves h: byte 8r + j = row r's column 16h + j
 * (low nibble) and 16h + 8 + j (high nibble)] (80 bytes); q5 (ggml Q5_0's bits): [d0..d3][qh: 16
 * bytes][the q4 nibble halves] (88 bytes), x = d * (q - 16); q6 (ggml Q6_K's bits): per
 * super-block of 256 columns [d0..d3][64 int8 scales][8 blocks x (nibble halves, 32 bytes of
 * high-bit pairs)] (840 bytes), x = d * sc * (q - 32); q4k (ggml Q4_K's bits): per super-block
 * [d0..d3][dmin0..dmin3][3 planes of 16 packed scale bytes][8 x the q4 nibble halves] (576
 * bytes), x = d * sc * q - dmin * m. Bit positions: docs/format.md. */
#ifndef TERN_KERNELS_H
#define TERN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Query heads one attention call serves (see tern_attend_f16_*). */
#define TERN_ATTEND_MAX_HEADS 8

/* The smallest batch the AVX-512 pair kernels (x86_avx512_pairs.inc) run on groups next to each
 * other; the set kernels (tern_gemm_set_*) take batches of 2 up to one less. Swift's MatMul reads it. */
#define TERN_PAIR_MIN_BATCH 8

/* Batch of int8-quantized activation vectors, 32 per group with a float scale,
 * scale * sum(q) per group (the q4 min term) and two int32 biases per group (at bias + 2g):
 * -128 times the sum of the activations each of a row's two int32 lanes multiplies (bytes
 * 0-3 and 4-7 of every 8-column chunk). They turn a u8 x s8 product of (w + 128) into w x a
 * exactly, lane by lane. hoff: per group two int32 at hoff + 2g, {-32 h0, -32 h1} with h0, h1
 * the sums of q over columns 0-15 and 16-31: one 64-bit broadcast starts an accumulator at the
 * offset term of q6 weights (q - 32) of either half in each row's two lanes (q5 starts from
 * bias / 8). q6_q: the same q with each group's 4-byte pieces in the order of the x86 q6 kernels'
 * lanes, columns 0-3, 16-19, 4-7, 20-23, 8-11, 24-27, 12-15, 28-31 (NULL where no kernel of the
 * CPU reads it, as where sb_q is given, which the q6 kernels read instead; at q6_q + b * q_stride).
 * Vector b starts at q + b * q_stride and its group values at scale/ssum + b * s_stride
 * (bias + 2 * b * s_stride, hoff + 2 * b * s_stride).
 * The same vectors quantized again per super-block of 256 columns, as llama.cpp's Q8_K quantizes
 * activations for its K-quant dot products (ggml-quants.c, quantize_row_q8_K): NULL where no
 * kernel of the CPU reads them, or the width is no multiple of 256. One scale D = max|x| / 127 per
 * super-block, stored once per 32 columns in sb_scale (eight equal values, so a per-32 reader such
 * as the scalar reference takes the form as it is); sb_q = round-half-even(x / D); sb_ssum =
 * D * sum(sb_q) and sb_bsum = sum(sb_q) (int16, |sum| <= 32 * 127) per 32 columns (at sb_scale,
 * sb_ssum, sb_bsum + b * s_stride; sb_q + b * q_stride), and sb_hsum = sum(sb_q) per 16 columns
 * (int16, at sb_hsum + 2 * b * s_stride). With one scale per super-block the q4k and q6 kernels
 * (tern_gemm_q4k_avx2, tern_gemm_q6_avx2, their AVX-512 twins and the aarch64 ones) sum a
 * super-block's eight blocks in int32 with the rows' scales as integers, and convert to float once:
 * AVX2 and AVX-512 hold the same int32 sums and give the same bits (the aarch64 kernels add each
 * row's two lanes before converting, so their bits differ from x86's). */
typedef struct tern_acts {
    const int8_t *q;
    const float *scale;
    const float *ssum;
    const int32_t *bias;
    const int32_t *hoff;
    ptrdiff_t q_stride;
    ptrdiff_t s_stride;
    const int8_t *sb_q;
    const float *sb_scale;
    const float *sb_ssum;
    const int16_t *sb_bsum;
    const int8_t *q6_q;
    const int16_t *sb_hsum;
} tern_acts;

/* out[b * out_stride + r] = row r of W . vector b, for the rows of groups g0 <= g < g1
 * (rows 4g ..< min(4g + 4, rows)), b < batch. `blocks` is the number of 32-column blocks,
 * `group_bytes` the stride of a four-row group. */
typedef void (*tern_gemm_fn)(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
                             ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);

int tern_cpu_has_avx2(void);          /* AVX2 + FMA + F16C */
int tern_cpu_has_avx512vnni(void);    /* AVX-512 F/BW/VL + VNNI */
int tern_cpu_has_gfni(void);          /* GFNI (gf2p8affine): the AVX-512 q5 kernel uses it when present */
/* Whether the AVX-512 q5 kernel uses GFNI (only where the CPU has it; the results are the same
 * bits either way; 0 on other CPUs). Returns the previous setting. For tests of both paths. */
int tern_set_gfni(int on);
/* Software prefetch in the x86 GEMM kernels: while reading a block of weights, each read stream
 * asks for the bytes `bytes` further on (0: none; rounded down to a multiple of 64, at most 64 KB).
 * The results are the same bits either way. Returns the previous setting; 0 until set (Tern sets
 * it at start-up: TERN_PREFETCH, else its per-CPU default). The NEON kernels do not prefetch. */
ptrdiff_t tern_set_prefetch(ptrdiff_t bytes);
ptrdiff_t tern_get_prefetch(void);    /* the distance the kernels use now */
/* The prefetch distance Tern starts with when TERN_PREFETCH is not set (TernKernels/ISA.swift:
 * why): 4096 on Intel CPUs and on AMD's from family 0x1A (Zen 5) on, 2048 on AMD Zen 3, 0
 * elsewhere. */
ptrdiff_t tern_cpu_prefetch_default(void);
/* Its rule for an AMD CPU of this cpuid family and model (display values: extended parts added). */
ptrdiff_t tern_amd_prefetch_default(unsigned family, unsigned model);
int tern_cpu_has_neon_dotprod(void);  /* aarch64 ASIMD dot product */
int tern_cpu_has_neon(void);          /* aarch64 Advanced SIMD (every ARMv8-A core) */

/* One matrix of a set multiplied by the same activations (tern_gemm_set_fn): its four-row groups
 * at w (group_bytes apart, ceil(rows / 4) of them), its outputs at out as tern_gemm_fn's. */
typedef struct tern_gemm_part {
    const uint8_t *w;
    ptrdiff_t rows;
    float *out;
    ptrdiff_t out_stride;
} tern_gemm_part;
/* The products of n (1-3) matrices of one kind and width with the same activations (Q, K and V;
 * gate and up), whose groups in order form one range: groups g0 ..< g1 of it, each row's result
 * the bits tern_gemm_fn gives, for a batch of 2-7 vectors, with the groups paired across the
 * range's two halves whatever matrix each lies in. Returns 0 having computed nothing where it
 * does not apply: another batch, halves under 64 KB apart, a matrix other than the last with
 * rows not a multiple of 4, or a range outside the set. */
typedef int (*tern_gemm_set_fn)(const tern_gemm_part *m, int n, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1,
                                ptrdiff_t blocks, const tern_acts *a, int batch);

#if defined(__x86_64__) || defined(__i386__)
void tern_gemm_q8_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q6_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4k_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5k_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_1_avx2(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
#define TERN_GEMM_SET(kind) int tern_gemm_set_##kind##_avx512vnni(const tern_gemm_part *m, int n, ptrdiff_t group_bytes, \
    ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t blocks, const tern_acts *a, int batch);
TERN_GEMM_SET(q8)
TERN_GEMM_SET(q4)
TERN_GEMM_SET(q5)
TERN_GEMM_SET(q6)
TERN_GEMM_SET(q4k)
TERN_GEMM_SET(q5k)
TERN_GEMM_SET(q5_1)
#undef TERN_GEMM_SET
void tern_gemm_q8_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q6_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4k_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5k_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_1_avx512vnni(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_f32_to_f16_avx2(const float *x, uint16_t *y, ptrdiff_t n);
void tern_attend_f16_avx2(const float *q, ptrdiff_t heads, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                          ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
void tern_attend_q8_avx2(const float *q, ptrdiff_t heads, const uint8_t *k, const uint8_t *v, ptrdiff_t row_bytes,
                         ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
void tern_attend_f16_avx512vnni(const float *q, ptrdiff_t heads, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                                ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
void tern_attend_q8_avx512vnni(const float *q, ptrdiff_t heads, const uint8_t *k, const uint8_t *v, ptrdiff_t row_bytes,
                               ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
void tern_gelu_mul_avx2(float *g, const float *u, ptrdiff_t n);
void tern_silu_mul_avx2(float *g, const float *u, ptrdiff_t n);
/* q6: the x86 q6 kernels' copy of q (tern_acts q6_q), or NULL for none. */
void tern_quantize_avx2(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int32_t *bias, int32_t *hoff,
                        int8_t *q6);
/* The per-256 form (tern_acts sb_*) of one vector, cols a multiple of 256: the same bytes as the
 * Swift reference (QuantizedActivations). */
void tern_quantize_sb_avx2(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int16_t *bsum,
                           int16_t *hsum);
#endif

#if defined(__aarch64__)
void tern_gemm_q8_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q6_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4k_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5k_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_1_neon(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
/* ARMv8.0 (no dot product): Pi 3, Pi Zero 2 W, Pi 4. */
void tern_gemm_q8_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q6_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q4k_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5k_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
void tern_gemm_q5_1_neon_v8(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows,
    ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride);
/* ARMv8.0 too, used by both aarch64 paths. */
void tern_f32_to_f16_neon(const float *x, uint16_t *y, ptrdiff_t n);
void tern_gelu_mul_neon(float *g, const float *u, ptrdiff_t n);
void tern_silu_mul_neon(float *g, const float *u, ptrdiff_t n);
void tern_quantize_neon(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int32_t *bias, int32_t *hoff);
void tern_quantize_sb_neon(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int16_t *bsum,
                           int16_t *hsum);
void tern_attend_q8_neon(const float *q, ptrdiff_t heads, const uint8_t *k, const uint8_t *v, ptrdiff_t row_bytes,
                         ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
void tern_attend_f16_neon(const float *q, ptrdiff_t heads, const uint16_t *k, const uint16_t *v, ptrdiff_t kv_stride,
                          ptrdiff_t count, ptrdiff_t dim, float scale, float *out, float *state);
#endif

/* Fused attention for `heads` (1..TERN_ATTEND_MAX_HEADS) query heads sharing one KV head, over
 * `count` cached positions (blocked online softmax, one pass over K and V). q and out hold the
 * heads' rows of `dim` floats one after another; k/v point at the first position; positions are
 * kv_stride elements apart; dim is a multiple of 32. Accumulates into an unnormalized `out` and a
 * running state per head, state[2h] = max score, state[2h + 1] = sum of exp(score - max): start
 * with out = 0, state = {-inf, 0}, call once per contiguous segment (a wrapped ring buffer is
 * two), then divide each head's out by its sum. The q8 variant reads K/V rows of [dim/32 f32
 * scales][dim int8] (value = scale * q), positions row_bytes apart.
 * GELU-gated product: g[i] = gelu_tanh(g[i]) * u[i], tanh by a rational approximation.
 * SiLU-gated product: g[i] = g[i] / (1 + exp(-g[i])) * u[i], exp by range reduction and a polynomial.
 * Activation quantization of one vector (cols a multiple of 32): per group of 32,
 * scale = max|x| / 127, q = round_half_even(x / scale), ssum = scale * sum(q), bias and hoff as above. */

/* A pause for spin-wait loops. */
void tern_cpu_relax(void);

#include "tern_pool.h"

/* Sums `n` 64-bit words with wide loads: a read-bandwidth probe for the roofline. */
uint64_t tern_read_probe(const uint64_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
