/* x86 AVX-512 VNNI path (vpdpbusd on 256-bit registers via AVX512VL, pairs of groups on 512-bit
 * ones) and 512-bit attention. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include "tern_kernels.h"
#include "x86_exp.h"

#define TK __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
/* The same with GFNI (gf2p8affine), for the q5 pairs on CPUs that have it. */
#define TKG __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,gfni")))
#define NAME(x) x##_avx512vnni
/* q8 with vpdpbusd: weights flipped to u8 (w ^ 0x80 = w + 128), each lane's accumulator
 * started at -128 times the sum of the activations it multiplies, so every lane holds its exact
 * partial dot (no large offsets to cancel after scaling), one instruction per 8 columns of 4 rows. */
#define Q8_PREP(w) _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80))
#define Q8_INIT(g) _mm256_set1_epi64x(*(const int64_t *)(a->bias + 2 * (g)))
#define Q8_DOT(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
#define Q4_DOT(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
/* q4 (Q4_1) at one or two vectors: the high nibbles masked in place (x & 0xF0, 16 x the value) rather
 * than shifted down, their chain's sum shifted instead: one shift per vector for two per block. Exact:
 * that sum is 16 x an int32 whose products (<= 240 x 128 x 8 per lane) cannot overflow. More vectors
 * pay more shifts than they save (batch 4: 0.97-0.98x). AVX2's maddubs would saturate on 240 x 128. */
#define Q4_HIGH16(nb) ((nb) <= 2)
#define DOT2_FROM0_256(w0, a0, w1, a1) Q4_DOT(Q4_DOT(_mm256_setzero_si256(), w0, a0), w1, a1)
#define Q4_DOT4_HIGH16(w, aq)                                                                 \
    _mm256_add_epi32(DOT2_FROM0_256((w)[0], ABCAST(aq, 0), (w)[2], ABCAST(aq, 2)),            \
                     _mm256_srai_epi32(DOT2_FROM0_256((w)[1], ABCAST(aq, 1), (w)[3], ABCAST(aq, 3)), 4))
/* 32 registers: the four-row q4k groups stay unrolled for every batch (x86_gemm.inc) */
#define Q4K_UNROLLED_MAX 4
/* x86_gemm.inc q4k_sb_group's hooks: row r's scale in the int32 lanes 2r, 2r + 1 (zero-extended,
 * so each lane's high 16 bits are 0) and each lane's four-chunk dot (<= 16 * 15 * 127 = 30480: an
 * int16 whose sign fills the lane's high half) times it by one vpdpwssd: lo * sc + hi * 0. Each
 * lane's dot covers the columns of AVX2's madd pair, so the int32 sums, and the results, are
 * AVX2's bit for bit. */
TK static inline __m256i q4k_sb_scales_avx512(__m128i plane, int k) {
    const __m128i pairs = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm256_cvtepu8_epi32(_mm_shuffle_epi8(plane, _mm_add_epi8(pairs, _mm_set1_epi8((char)(4 * k)))));
}
#define Q4K_SB_PLANE(plane) (plane)
#define Q4K_SB_SCALES(plane, k) q4k_sb_scales_avx512(plane, k)
#define Q4K_SB_DOT(sum, w, aq, sc) _mm256_dpwssd_epi32(sum, Q4_DOT4(_mm256_setzero_si256(), w, aq), sc)
/* x86_gemm.inc q6_sb_group's: AVX2's madd and add in one vpdpwssd (the same int32 sums). */
#define Q6_SB_WIDEN(sum, p, sc) _mm256_dpwssd_epi32(sum, p, sc)
/* The four-row GEMMs stay internal (kind##_single): the exported ones run groups in pairs. */
#define GEMM_LINKAGE static
#define GEMM_NAME(kind) kind##_single
#include "x86_gemm.inc"
#include "x86_avx512_pairs.inc"
#include "x86_avx512_quads.inc"
#include "x86_avx512_gemms.inc"
/* Attention (sixteen lanes): x86_attend.inc. */
#define AV_BITS 512
#include "x86_attend.inc"
#endif
