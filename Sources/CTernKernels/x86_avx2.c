/* x86 AVX2 + FMA + F16C paths. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include "tern_kernels.h"
#include "x86_exp.h"

#define TK __attribute__((target("avx2,fma,f16c")))
#define NAME(x) x##_avx2
TK static inline __m256i dot_us_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
/* Signed q8 x signed int8 by the sign trick (|w| as u8 times sign(a, w)), as llama.cpp's x86
 * Q8_0 kernels do: maddubs cannot take w + 128 without saturating its int16 pair sums. */
TK static inline __m256i q8_dot_avx2(__m256i acc, __m256i w, __m256i a) {
    return _mm256_add_epi32(acc, dot_us_avx2(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)));
}
#define Q8_PREP(w) (w)
#define Q8_INIT(g) _mm256_setzero_si256()
#define Q8_DOT(acc, w, a) q8_dot_avx2(acc, w, a)
#define Q4_DOT(acc, w, a) _mm256_add_epi32(acc, dot_us_avx2(w, a))
/* Without VNNI every 8-column chunk costs a maddubs and a madd. Unsigned values 0..31 (q4, q5,
 * q5_1, q4k, q5k) against int8 activations (|a| <= 128) keep four chunks' maddubs pair sums
 * within int16 (4 * 2 * 31 * 128 = 31744 < 32768), so they add as int16 and widen with one madd;
 * q6's values 0..63 allow two (2 * 2 * 63 * 128 = 32256). Exact, as before: the same integers.
 * pairs2: two chunks' u8 x s8 pair sums (activations aq[0..15]) added as int16; widen: int16
 * pair sums into an int32 accumulator. */
TK static inline __m256i pairs2_avx2(__m256i w0, __m256i w1, const int8_t *aq) {
    return _mm256_add_epi16(_mm256_maddubs_epi16(w0, _mm256_set1_epi64x(*(const int64_t *)aq)),
                            _mm256_maddubs_epi16(w1, _mm256_set1_epi64x(*(const int64_t *)(aq + 8))));
}
TK static inline __m256i widen_avx2(__m256i acc, __m256i p) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
#define Q4_DOT4(acc, w, aq) \
    widen_avx2(acc, _mm256_add_epi16(pairs2_avx2((w)[0], (w)[1], aq), pairs2_avx2((w)[2], (w)[3], (aq) + 16)))
#define Q6_DOT2(acc, w0, w1, aq) widen_avx2(acc, pairs2_avx2(w0, w1, aq))
/* 16 registers: k_group (q4k per-32, q5k) unrolled spills from two vectors on (x86_gemm.inc) */
#define Q4K_UNROLLED_MAX 1

/* x86_gemm.inc q4k_sb_group's hooks: a block's scale vector (row r's 6-bit scale in the int16
 * lanes 4r..4r+3 where the madd pairs of row r lie) and its four chunks' pair sums (4 maddubs)
 * widened by the one madd that multiplies them by the scales. Bounds: four chunks' pair sums
 * <= 4 * 2 * 15 * 127 = 15240 fit int16; a lane's madd <= 2 * 15240 * 63 per block.
 * The plane doubled into both 128-bit halves once per super-block (Q4K_SB_PLANE), then one in-lane
 * vpshufb per block whose indexes 0x80 zero each int16's high byte. Widening row_bytes' 16 bytes
 * with vpmovzxbw, a lane-crossing op, took three shuffles per block; one gave 1.04-1.06x in cache
 * at batch 1 on a Zen 3 core (bench/gemm-ab.c; bench/README.md). */
#define Q4K_SB_PLANE(plane) _mm256_broadcastsi128_si256(plane)
TK static inline __m256i q4k_sb_scales_avx2(__m256i plane2, int k) {
    const short z = (short)0x8000; /* low byte: the index (row r of block k at 4k + r); high: 0x80, a zero */
    const __m256i idx = _mm256_setr_epi16(z, z, z, z, z + 1, z + 1, z + 1, z + 1,
                                          z + 2, z + 2, z + 2, z + 2, z + 3, z + 3, z + 3, z + 3);
    return _mm256_shuffle_epi8(plane2, _mm256_add_epi16(idx, _mm256_set1_epi16((short)(4 * k))));
}
#define Q4K_SB_SCALES(plane2, k) q4k_sb_scales_avx2(plane2, k)
TK static inline __m256i q4k_sb_dot_avx2(__m256i sum, const __m256i w[4], const int8_t *aq, __m256i sc) {
    const __m256i p = _mm256_add_epi16(pairs2_avx2(w[0], w[1], aq), pairs2_avx2(w[2], w[3], aq + 16));
    return _mm256_add_epi32(sum, _mm256_madd_epi16(p, sc));
}
#define Q4K_SB_DOT(sum, w, aq, sc) q4k_sb_dot_avx2(sum, w, aq, sc)
/* x86_gemm.inc q6_sb_group's: int16 pair sums times the rows' scales into int32 (the madd). */
#define Q6_SB_WIDEN(sum, p, sc) _mm256_add_epi32(sum, _mm256_madd_epi16(p, sc))
#include "x86_gemm.inc"

#undef GEMM_BODY
#undef GEMM_FN
#undef GEMM_LOOP
#undef GEMM_GROUP
#undef GEMM_PREFETCH
#undef GROUP_PARAMS
#undef GROUP_ARGS

TK void tern_f32_to_f16_avx2(const float *x, uint16_t *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}


/* tanh(x) as a rational function, odd numerator of degree 13 over even denominator of degree 6,
 * with x clamped to +-7.905 (the approximation Eigen uses for float; error a few ulp). */
TK static inline __m256 tanh_avx2(__m256 x) {
    const __m256 lim = _mm256_set1_ps(7.90531110763549805f);
    x = _mm256_max_ps(_mm256_min_ps(x, lim), _mm256_sub_ps(_mm256_setzero_ps(), lim));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(4.89352455891786e-03f));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(4.89352518554385e-03f));
    return _mm256_div_ps(p, q);
}

TK static inline __m256 gelu_mul8(__m256 x, __m256 u) {
    const __m256 c = _mm256_set1_ps(0.7978845608f), k = _mm256_set1_ps(0.044715f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1);
    const __m256 inner = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, x), _mm256_mul_ps(x, x), x));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, tanh_avx2(inner))), u);
}

/* g[i] = OP(g[i], u[i]) over n floats, 8 at a time; the tail goes through the same vector code,
 * zero-padded, so every element gets the same operations. */
#define TERN_GATED_MUL_AVX2(NAME, OP)                                                              \
    TK void NAME(float *g, const float *u, ptrdiff_t n) {                                          \
        ptrdiff_t i = 0;                                                                           \
        for (; i + 8 <= n; i += 8)                                                                 \
            _mm256_storeu_ps(g + i, OP(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));          \
        if (i < n) {                                                                               \
            float x[8] = {0}, y[8] = {0};                                                          \
            for (ptrdiff_t j = 0; j < n - i; j++) { x[j] = g[i + j]; y[j] = u[i + j]; }            \
            _mm256_storeu_ps(x, OP(_mm256_loadu_ps(x), _mm256_loadu_ps(y)));                       \
            for (ptrdiff_t j = 0; j < n - i; j++) g[i + j] = x[j];                                 \
        }                                                                                          \
    }

TERN_GATED_MUL_AVX2(tern_gelu_mul_avx2, gelu_mul8)

TK static inline __m256 silu_mul8(__m256 x, __m256 u) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

TERN_GATED_MUL_AVX2(tern_silu_mul_avx2, silu_mul8)

/* The sum of four int32 lanes. */
TK static inline int32_t hsum4_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

/* The largest of eight lanes. */
TK static inline float hmax8_avx2(__m256 m) {
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* 32 columns at p times inv, rounded half to even, stored as int8 at q; their int32 values in qi
 * (|q| <= 127, so packing does not saturate). */
TK static inline void round32_avx2(const float *p, __m256 inv, int8_t *q, __m256i qi[4], int8_t *q6) {
    for (int j = 0; j < 4; j++)
        qi[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(p + 8 * j), inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    /* Pack 32 x i32 -> 32 x i8 in order (packs interleave 128-bit lanes: fix with a permute). */
    const __m256i c = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
    _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    /* q6 order, dwords 0 4 1 5 2 6 3 7 of the ordered ones: that permute applied twice */
    if (q6) _mm256_storeu_si256((__m256i *)q6, _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
}

TK void tern_quantize_avx2(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int32_t *bias, int32_t *hoff,
                           int8_t *q6) {
    const __m256 signMask = _mm256_set1_ps(-0.0f);
    for (ptrdiff_t g = 0; g < cols / 32; g++) {
        const float *p = x + g * 32;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) m = _mm256_max_ps(m, _mm256_andnot_ps(signMask, _mm256_loadu_ps(p + 8 * j)));
        const float d = hmax8_avx2(m) / 127.0f;
        __m256i qi[4];
        round32_avx2(p, _mm256_set1_ps(d == 0 ? 0 : 1.0f / d), q + g * 32, qi, q6 ? q6 + g * 32 : NULL);
        /* The sums from the int32 values: columns 0-15 are qi[0] and qi[1]; the "even" bytes (0-3
         * of each 8-column chunk) are the low 128-bit halves of the four. (Summing the stored bytes
         * back one by one took 1.5% of a SmolLM2 decode step at one thread.) */
        const __m256i s01 = _mm256_add_epi32(qi[0], qi[1]), s = _mm256_add_epi32(s01, _mm256_add_epi32(qi[2], qi[3]));
        const int32_t even = hsum4_epi32(_mm256_castsi256_si128(s)), odd = hsum4_epi32(_mm256_extracti128_si256(s, 1));
        const int32_t sum = even + odd;
        const int32_t first = hsum4_epi32(_mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1)));
        scale[g] = d;
        ssum[g] = d * (float)sum;
        bias[2 * g] = -128 * even;
        bias[2 * g + 1] = -128 * (sum - even);
        hoff[2 * g] = -32 * first;
        hoff[2 * g + 1] = -32 * (sum - first);
    }
}
/* The per-256 form (tern_kernels.h): per super-block the max |x|, D = max / 127 and q by the same
 * rounding as tern_quantize_avx2; per 32 columns the sum of q, and per 16 (hsum). */
TK void tern_quantize_sb_avx2(const float *x, ptrdiff_t cols, int8_t *q, float *scale, float *ssum, int16_t *bsum,
                              int16_t *hsum) {
    const __m256 signMask = _mm256_set1_ps(-0.0f);
    for (ptrdiff_t s = 0; s < cols / 256; s++) {
        const float *p = x + s * 256;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 32; j++) m = _mm256_max_ps(m, _mm256_andnot_ps(signMask, _mm256_loadu_ps(p + 8 * j)));
        const float d = hmax8_avx2(m) / 127.0f;
        const __m256 inv = _mm256_set1_ps(d == 0 ? 0 : 1.0f / d);
        for (int g = 0; g < 8; g++) {
            __m256i qi[4];
            round32_avx2(p + 32 * g, inv, q + s * 256 + 32 * g, qi, NULL);
            /* columns 0-15 are qi[0] and qi[1] (tern_quantize_avx2) */
            const __m256i s01 = _mm256_add_epi32(qi[0], qi[1]), v = _mm256_add_epi32(s01, _mm256_add_epi32(qi[2], qi[3]));
            const int32_t sum = hsum4_epi32(_mm256_castsi256_si128(v)) + hsum4_epi32(_mm256_extracti128_si256(v, 1));
            const int32_t first = hsum4_epi32(_mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1)));
            scale[8 * s + g] = d;
            ssum[8 * s + g] = d * (float)sum;
            bsum[8 * s + g] = (int16_t)sum;
            hsum[16 * s + 2 * g] = (int16_t)first;
            hsum[16 * s + 2 * g + 1] = (int16_t)(sum - first);
        }
    }
}
/* Attention (AVX2, eight lanes): x86_attend.inc. */
#define AV_BITS 256
#include "x86_attend.inc"
#endif
