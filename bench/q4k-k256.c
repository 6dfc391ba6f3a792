// The measurement that led to the AVX2 q4k kernel (x86_avx2.c): q4k (Q4_K) four-row groups
// against activations quantized with one scale per 256 columns (a super-block) and int16 sums per
// 32, the way llama.cpp's Q8_K quantizes activations for its K-quant dot products (ggml-quants.c,
// quantize_row_q8_K_ref).
//
// Tern quantizes activations with one scale per 32 columns (tern_quantize_avx2), so every block of
// 32 needs its own float work per vector: convert the int32 sums, multiply by the activation's
// scale, add with the rows' d * sc (cvt + mul + fma and a broadcast, x86_gemm.inc q4k_block). With
// one scale per super-block, the rows' 6-bit scales go into the madd that widens the int16 pair
// sums (a madd by ones in the per-32 kernel), the eight blocks add up in int32, and floats are touched once per
// super-block (the mins from the int16 sums, one madd per four blocks). Per vector and block this
// is 5 multiply-port operations instead of 7 on AVX2 without VNNI.
//
// The program checks the proposal against a double-precision evaluation of the same arithmetic,
// reports both schemes' error against unquantized activations (uniform random; real activations
// have outliers, which a 32-column scale follows more closely), and times it against Tern's
// per-32 kernel, loaded from a shared library built as bench/gemm-ab.c describes (tern_gemm_q4k_avx2
// takes the per-32 form when, as here, the activations carry no per-256 form), pass after pass in
// one process. One thread, no software prefetch, synthetic weights with small f16 factors.
//   clang -O2 -I Sources/CTernKernels/include bench/q4k-k256.c -o q4k-k256 -ldl -lm
//   ./q4k-k256 ROWS COLS BATCH ./base.so      (e.g. 1536 8960 128: Qwen2.5-Coder-1.5B's ffn_down)
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "paired.h"
#include "tern_kernels.h"

enum { passes = 21 };

/* Activations per 256 columns: q as today, D one scale per super-block, bsum the int16 sum of each
 * 32 columns (eight per super-block). */
typedef struct {
    const int8_t *q;
    const float *D;
    const int16_t *bsum;
    ptrdiff_t q_stride, sb_stride;
} acts256;

#define TK __attribute__((target("avx2,fma,f16c")))

TK static inline __m256i bcast8(const int8_t *p) { return _mm256_set1_epi64x(*(const int64_t *)p); }

/* Row r's byte of a 16-byte [block][row] plane, for block k (0..3 of the plane), as int16 in lanes
 * 4r..4r+3: the lanes the madd pairs of row r occupy. */
TK static inline __m256i rowScales(__m128i plane, int k) {
    const char o = (char)(4 * k);
    const __m128i idx = _mm_setr_epi8(o, o, o, o, o + 1, o + 1, o + 1, o + 1, o + 2, o + 2, o + 2, o + 2,
                                      o + 3, o + 3, o + 3, o + 3);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(plane, idx));
}

/* One four-row q4k group (super-blocks of 576 bytes, docs/format.md) against nb vectors. */
TK static inline __attribute__((always_inline)) void group256(const uint8_t *grp, ptrdiff_t sbs, const acts256 *a,
                                                              int b0, const int nb, float *out, ptrdiff_t os) {
    __m256 acc[4], accm[4];
    for (int j = 0; j < nb; j++) acc[j] = accm[j] = _mm256_setzero_ps();
    const __m128i m63 = _mm_set1_epi8(63), m0f = _mm_set1_epi8(0x0F), m30 = _mm_set1_epi8(0x30);
    const __m256i lowMask = _mm256_set1_epi8(0x0F);
    /* [block][row] bytes -> per row the pair (block 2i, 2i + 1): blocks 0-1 | 2-3 of a plane */
    const __m128i pairs = _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    for (ptrdiff_t sbi = 0; sbi < sbs; sbi++) {
        const uint8_t *sb = grp + sbi * 576;
        const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)sb));
        const __m128 m4 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(sb + 8)));
        const __m256 dPairs = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d4),
                                                       _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        const __m256 mRows = _mm256_set_m128(m4, m4);
        const __m128i p0 = _mm_loadu_si128((const __m128i *)(sb + 16)), p1 = _mm_loadu_si128((const __m128i *)(sb + 32));
        const __m128i p2 = _mm_loadu_si128((const __m128i *)(sb + 48));
        const __m128i scLo = _mm_and_si128(p0, m63), mnLo = _mm_and_si128(p1, m63);
        const __m128i scHi = _mm_or_si128(_mm_and_si128(p2, m0f), _mm_and_si128(_mm_srli_epi16(p0, 2), m30));
        const __m128i mnHi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(p2, 4), m0f),
                                          _mm_and_si128(_mm_srli_epi16(p1, 2), m30));
        const __m256i minLo = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(mnLo, pairs));
        const __m256i minHi = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(mnHi, pairs));
        __m256i sum[4];
        for (int j = 0; j < nb; j++) sum[j] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
        for (int k8 = 0; k8 < 8; k8++) {
            const __m256i sc = rowScales(k8 < 4 ? scLo : scHi, k8 & 3);
            const uint8_t *gb = sb + 64 + 64 * k8;
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)gb), x1 = _mm256_loadu_si256((const __m256i *)(gb + 32));
            const __m256i w0 = _mm256_and_si256(x0, lowMask), w1 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), lowMask);
            const __m256i w2 = _mm256_and_si256(x1, lowMask), w3 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), lowMask);
#pragma clang loop unroll(full)
            for (int j = 0; j < nb; j++) {
                const int8_t *aq = a->q + (b0 + j) * a->q_stride + sbi * 256 + 32 * k8;
                /* four chunks' pair sums fit int16 (4 * 2 * 15 * 127); times sc <= 63 over 8 blocks fits int32 */
                const __m256i p = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast8(aq)),
                                                                    _mm256_maddubs_epi16(w1, bcast8(aq + 8))),
                                                   _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast8(aq + 16)),
                                                                    _mm256_maddubs_epi16(w3, bcast8(aq + 24))));
                sum[j] = _mm256_add_epi32(sum[j], _mm256_madd_epi16(p, sc));
            }
        }
#pragma clang loop unroll(full)
        for (int j = 0; j < nb; j++) {
            const ptrdiff_t s = (b0 + j) * a->sb_stride + sbi;
            const __m256 D = _mm256_set1_ps(a->D[s]);
            acc[j] = _mm256_fmadd_ps(dPairs, _mm256_mul_ps(_mm256_cvtepi32_ps(sum[j]), D), acc[j]);
            const __m256i bs = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a->bsum + 8 * s)));
            const __m256i bLo = _mm256_permutevar8x32_epi32(bs, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
            const __m256i bHi = _mm256_permutevar8x32_epi32(bs, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3));
            const __m256i mins = _mm256_add_epi32(_mm256_madd_epi16(minLo, bLo), _mm256_madd_epi16(minHi, bHi));
            accm[j] = _mm256_fmadd_ps(mRows, _mm256_mul_ps(_mm256_cvtepi32_ps(mins), D), accm[j]);
        }
    }
    for (int j = 0; j < nb; j++) {
        const __m256 h = _mm256_hadd_ps(acc[j], acc[j]); /* [r0 r1 r0 r1 | r2 r3 r2 r3] */
        const __m128 m = _mm_add_ps(_mm256_castps256_ps128(accm[j]), _mm256_extractf128_ps(accm[j], 1));
        float t[8], mm[4];
        _mm256_storeu_ps(t, h);
        _mm_storeu_ps(mm, m);
        float *o = out + (b0 + j) * os;
        o[0] = t[0] - mm[0], o[1] = t[1] - mm[1], o[2] = t[4] - mm[2], o[3] = t[5] - mm[3];
    }
}

TK static void gemm256(const uint8_t *w, ptrdiff_t groupBytes, ptrdiff_t groups, ptrdiff_t sbs, const acts256 *a,
                       int batch, float *out, ptrdiff_t os) {
    for (ptrdiff_t g = 0; g < groups; g++) {
        const uint8_t *grp = w + g * groupBytes;
        int b0 = 0;
        for (; b0 + 4 <= batch; b0 += 4) group256(grp, sbs, a, b0, 4, out + 4 * g, os);
        switch (batch - b0) {
        case 3: group256(grp, sbs, a, b0, 3, out + 4 * g, os); break;
        case 2: group256(grp, sbs, a, b0, 2, out + 4 * g, os); break;
        case 1: group256(grp, sbs, a, b0, 1, out + 4 * g, os); break;
        default: break;
        }
    }
}

TK static float half(const uint8_t *p) { return _cvtsh_ss(*(const uint16_t *)p); }

/* Row rr's 6-bit scale and min of block k in a super-block (ggml's get_scale_min_k4, planes by row). */
static void scaleMin(const uint8_t *sb, int rr, int k, int *sc, int *mn) {
    const uint8_t *p = sb + 16;
    if (k < 4) {
        *sc = p[4 * k + rr] & 63, *mn = p[16 + 4 * k + rr] & 63;
    } else {
        const int i = 4 * (k - 4) + rr;
        *sc = (p[32 + i] & 15) | (p[i] >> 6) << 4, *mn = (p[32 + i] >> 4) | (p[16 + i] >> 6) << 4;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s ROWS COLS BATCH LIB.so\n", argv[0]);
        return 2;
    }
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), batch = atoi(argv[3]);
    if (rows < 4 || rows % 4 || rows > 1 << 18 || cols < 256 || cols % 256 || cols > 1 << 16 || batch < 1 || batch > 512) {
        fprintf(stderr, "q4k-k256: ROWS a multiple of 4 up to 2^18, COLS a multiple of 256 up to 65536, "
                        "1 <= BATCH <= 512\n");
        return 2;
    }
    void *lib = dlopen(argv[4], RTLD_NOW | RTLD_LOCAL);
    tern_gemm_fn current = lib ? (tern_gemm_fn)dlsym(lib, "tern_gemm_q4k_avx2") : NULL;
    ptrdiff_t (*setPrefetch)(ptrdiff_t) = lib ? (ptrdiff_t (*)(ptrdiff_t))dlsym(lib, "tern_set_prefetch") : NULL;
    typedef void (*quantize_fn)(const float *, ptrdiff_t, int8_t *, float *, float *, int32_t *, int32_t *);
    quantize_fn quantize32 = lib ? (quantize_fn)dlsym(lib, "tern_quantize_avx2") : NULL;
    if (!current || !setPrefetch || !quantize32) {
        fprintf(stderr, "q4k-k256: %s: %s\n", argv[4], lib ? "not a build of Tern's kernels" : dlerror());
        return 1;
    }
    setPrefetch(0);
    const int sbs = cols / 256, blocks = cols / 32, groups = rows / 4;
    const ptrdiff_t groupBytes = (ptrdiff_t)sbs * 576;
    uint8_t *w = malloc((size_t)groups * groupBytes);
    float *x = malloc(sizeof(float) * batch * cols);
    int8_t *q32 = malloc((size_t)batch * cols), *q256 = malloc((size_t)batch * cols);
    float *scale = malloc(sizeof(float) * batch * blocks), *ssum = malloc(sizeof(float) * batch * blocks);
    int32_t *bias = malloc(sizeof(int32_t) * 2 * batch * blocks), *hoff = malloc(sizeof(int32_t) * 4 * batch * blocks);
    float *D = malloc(sizeof(float) * batch * sbs);
    int16_t *bsum = malloc(sizeof(int16_t) * batch * blocks);
    float *out256 = calloc((size_t)batch * rows, sizeof(float)), *out32 = calloc((size_t)batch * rows, sizeof(float));
    if (!w || !x || !q32 || !q256 || !scale || !ssum || !bias || !hoff || !D || !bsum || !out256 || !out32) return 1;
    for (size_t i = 0; i < (size_t)groups * groupBytes; i++) w[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (size_t off = 0; off < (size_t)groups * groupBytes; off += 576) /* d, dmin: small finite f16 */
        for (int j = 0; j < 8; j++) memcpy(w + off + 2 * j, &(uint16_t){(uint16_t)(0x2C00 + 37 * j)}, 2);
    srand(1);
    for (int i = 0; i < batch * cols; i++) x[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
    for (int b = 0; b < batch; b++) {
        quantize32(x + b * cols, cols, q32 + b * cols, scale + b * blocks, ssum + b * blocks, bias + 2 * b * blocks,
                   hoff + 4 * b * blocks);
        for (int s = 0; s < sbs; s++) {
            const float *p = x + b * cols + s * 256;
            float m = 0;
            for (int i = 0; i < 256; i++) m = fmaxf(m, fabsf(p[i]));
            const float d = m / 127, inv = d != 0 ? 1 / d : 0;
            D[b * sbs + s] = d;
            for (int k = 0; k < 8; k++) {
                int sum = 0;
                for (int i = 0; i < 32; i++) {
                    const int v = (int)nearbyintf(p[32 * k + i] * inv);
                    q256[b * cols + s * 256 + 32 * k + i] = (int8_t)v;
                    sum += v;
                }
                bsum[(b * sbs + s) * 8 + k] = (int16_t)sum;
            }
        }
    }
    const tern_acts a32 = {q32, scale, ssum, bias, hoff, cols, blocks};
    const acts256 a256 = {q256, D, bsum, cols, sbs};
    gemm256(w, groupBytes, groups, sbs, &a256, batch, out256, rows);
    current(w, groupBytes, 0, groups, rows, blocks, &a32, batch, out32, rows);
    double worst = 0, largest = 0, e256 = 0, e32 = 0, norm = 0;
    for (int b = 0; b < batch && b < 3; b++)
        for (int r = 0; r < rows; r++) {
            const uint8_t *grp = w + (r / 4) * groupBytes;
            const int rr = r % 4;
            double same = 0, exact = 0; /* the proposal's arithmetic in double; unquantized activations */
            for (int s = 0; s < sbs; s++) {
                const uint8_t *sb = grp + s * 576;
                const double d = half(sb + 2 * rr), dmin = half(sb + 8 + 2 * rr);
                for (int k = 0; k < 8; k++) {
                    int sc, mn;
                    scaleMin(sb, rr, k, &sc, &mn);
                    for (int c = 0; c < 4; c++)
                        for (int i = 0; i < 8; i++) {
                            const uint8_t byte = sb[64 + 64 * k + 32 * (c / 2) + 8 * rr + i];
                            const double v = d * sc * (c % 2 ? byte >> 4 : byte & 15) - dmin * mn;
                            const int col = s * 256 + 32 * k + 8 * c + i;
                            same += v * D[b * sbs + s] * q256[b * cols + col];
                            exact += v * x[b * cols + col];
                        }
                }
            }
            worst = fmax(worst, fabs(same - out256[b * rows + r]));
            largest = fmax(largest, fabs(same));
            e256 += (exact - out256[b * rows + r]) * (exact - out256[b * rows + r]);
            e32 += (exact - out32[b * rows + r]) * (exact - out32[b * rows + r]);
            norm += exact * exact;
        }
    printf("check: per-256 kernel vs its arithmetic in double: max error %.3g of max |result| %.3g%s\n", worst, largest,
           worst > 1e-5 * largest ? "  WRONG" : "");
    printf("error vs unquantized activations (rms relative, 3 vectors): per-32 (Tern) %.3g, per-256 %.3g\n",
           sqrt(e32 / norm), sqrt(e256 / norm));
    const double macs = (double)rows * cols * batch;
    const int calls = macs < 2e8 ? (int)(2e8 / macs) + 1 : 1;
    double t32[passes], t256[passes], ratio[passes];
    for (int p = 0; p < passes; p++) {
        double t0 = now();
        for (int c = 0; c < calls; c++) current(w, groupBytes, 0, groups, rows, blocks, &a32, batch, out32, rows);
        t32[p] = now() - t0;
        t0 = now();
        for (int c = 0; c < calls; c++) gemm256(w, groupBytes, groups, sbs, &a256, batch, out256, rows);
        t256[p] = now() - t0;
        ratio[p] = t32[p] / t256[p];
    }
    printf("q4k %dx%d batch %d: Tern %.1f GMAC/s, per-256 activations %.1f GMAC/s, %.3fx (median paired ratio of %d)\n",
           rows, cols, batch, macs * calls / median(t32, passes) / 1e9, macs * calls / median(t256, passes) / 1e9,
           median(ratio, passes), passes);
    return worst > 1e-5 * largest;
}
