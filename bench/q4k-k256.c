// Tern's q4k kernel against its two activation forms, from one build of the kernels: one scale per
// 32 columns (tern_quantize_avx2) and one per 256 columns (a super-block) with int16 sums per 32
// (tern_quantize_sb_avx2), the way llama.cpp's Q8_K quantizes activations for its K-quant dot
// products (ggml-quants.c, quantize_row_q8_K_ref). This program first measured the per-256 kernel
// as a proposal (bench/README.md); that kernel is now x86_gemm.inc's q4k_sb_group, and the
// AVX-512 one reads the same form.
//
// With per-32 scales every block of 32 needs its own float work per vector: convert the int32 sums,
// multiply by the activation's scale, add with the rows' d * sc (x86_gemm.inc q4k_block). With one
// scale per super-block, AVX2 puts the rows' 6-bit scales into the madd that widens the int16 pair
// sums, the eight blocks add up in int32, and floats are touched once per super-block: per vector
// and block 5 multiply-port operations instead of 7 on AVX2 without VNNI.
//
// The program checks the per-256 result against a double-precision evaluation of the same
// arithmetic, reports both forms' error against unquantized activations (uniform random; real
// activations have outliers, which a 32-column scale follows more closely), and times the two
// forms pass after pass in one process. LIB.so is a build of Tern's kernels as bench/gemm-ab.c
// describes (one since the per-16 sums, sb_hsum: 47c4491); ISA=avx512vnni times the AVX-512 kernel instead
// of AVX2's. One thread, no software prefetch, synthetic weights with small f16 factors.
//   clang -O2 -I Sources/CTernKernels/include bench/q4k-k256.c -o q4k-k256 -ldl -lm
//   ./q4k-k256 ROWS COLS BATCH ./lib.so      (e.g. 1536 8960 128: Qwen2.5-Coder-1.5B's ffn_down)
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

#define TK __attribute__((target("avx2,fma,f16c")))

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
    char sym[64];
    snprintf(sym, sizeof sym, "tern_gemm_q4k_%s", getenv("ISA") ? getenv("ISA") : "avx2");
    tern_gemm_fn gemm = lib ? (tern_gemm_fn)dlsym(lib, sym) : NULL;
    ptrdiff_t (*setPrefetch)(ptrdiff_t) = lib ? (ptrdiff_t (*)(ptrdiff_t))dlsym(lib, "tern_set_prefetch") : NULL;
    typedef void (*quantize_fn)(const float *, ptrdiff_t, int8_t *, float *, float *, int32_t *, int32_t *, int8_t *);
    quantize_fn quantize32 = lib ? (quantize_fn)dlsym(lib, "tern_quantize_avx2") : NULL;
    typedef void (*quantize_sb_fn)(const float *, ptrdiff_t, int8_t *, float *, float *, int16_t *, int16_t *);
    quantize_sb_fn quantize256 = lib ? (quantize_sb_fn)dlsym(lib, "tern_quantize_sb_avx2") : NULL;
    if (!gemm || !setPrefetch || !quantize32 || !quantize256) {
        fprintf(stderr, "q4k-k256: %s: %s\n", argv[4], lib ? "not a build of Tern's kernels with the per-256 form" : dlerror());
        return 1;
    }
    setPrefetch(0);
    const int sbs = cols / 256, blocks = cols / 32, groups = rows / 4;
    const ptrdiff_t groupBytes = (ptrdiff_t)sbs * 576;
    uint8_t *w = malloc((size_t)groups * groupBytes);
    float *x = malloc(sizeof(float) * batch * cols);
    int8_t *q32 = malloc((size_t)batch * cols), *q256 = malloc((size_t)batch * cols);
    float *scale = malloc(sizeof(float) * batch * blocks), *ssum = malloc(sizeof(float) * batch * blocks);
    int32_t *bias = malloc(sizeof(int32_t) * 2 * batch * blocks), *hoff = malloc(sizeof(int32_t) * 2 * batch * blocks);
    float *D = malloc(sizeof(float) * batch * blocks), *Dsum = malloc(sizeof(float) * batch * blocks);
    int16_t *bsum = malloc(sizeof(int16_t) * batch * blocks), *hsum = malloc(sizeof(int16_t) * 2 * batch * blocks);
    float *out256 = calloc((size_t)batch * rows, sizeof(float)), *out32 = calloc((size_t)batch * rows, sizeof(float));
    if (!w || !x || !q32 || !q256 || !scale || !ssum || !bias || !hoff || !D || !Dsum || !bsum || !hsum || !out256 || !out32) return 1;
    for (size_t i = 0; i < (size_t)groups * groupBytes; i++) w[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (size_t off = 0; off < (size_t)groups * groupBytes; off += 576) /* d, dmin: small finite f16 */
        for (int j = 0; j < 8; j++) memcpy(w + off + 2 * j, &(uint16_t){(uint16_t)(0x2C00 + 37 * j)}, 2);
    srand(1);
    for (int i = 0; i < batch * cols; i++) x[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
    for (int b = 0; b < batch; b++) {
        quantize32(x + b * cols, cols, q32 + b * cols, scale + b * blocks, ssum + b * blocks, bias + 2 * b * blocks,
                   hoff + 2 * b * blocks, NULL);
        quantize256(x + b * cols, cols, q256 + b * cols, D + b * blocks, Dsum + b * blocks, bsum + b * blocks, hsum + 2 * b * blocks);
    }
    /* The same kernel: without the per-256 form it reads the per-32 one. */
    const tern_acts a32 = {q32, scale, ssum, bias, hoff, cols, blocks, NULL, NULL, NULL, NULL};
    const tern_acts a256 = {q32, scale, ssum, bias, hoff, cols, blocks, q256, D, Dsum, bsum, NULL, hsum};
    gemm(w, groupBytes, 0, groups, rows, blocks, &a256, batch, out256, rows);
    gemm(w, groupBytes, 0, groups, rows, blocks, &a32, batch, out32, rows);
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
                            same += v * D[b * blocks + 8 * s] * q256[b * cols + col];
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
    printf("error vs unquantized activations (rms relative, 3 vectors): per-32 %.3g, per-256 %.3g\n",
           sqrt(e32 / norm), sqrt(e256 / norm));
    const double macs = (double)rows * cols * batch;
    const int calls = macs < 2e8 ? (int)(2e8 / macs) + 1 : 1;
    double t32[passes], t256[passes], ratio[passes];
    for (int p = 0; p < passes; p++) {
        double t0 = now();
        for (int c = 0; c < calls; c++) gemm(w, groupBytes, 0, groups, rows, blocks, &a32, batch, out32, rows);
        t32[p] = now() - t0;
        t0 = now();
        for (int c = 0; c < calls; c++) gemm(w, groupBytes, 0, groups, rows, blocks, &a256, batch, out256, rows);
        t256[p] = now() - t0;
        ratio[p] = t32[p] / t256[p];
    }
    printf("%s q4k %dx%d batch %d: per-32 activations %.1f GMAC/s, per-256 %.1f GMAC/s, %.3fx (median paired ratio of %d)\n",
           sym, rows, cols, batch, macs * calls / median(t32, passes) / 1e9, macs * calls / median(t256, passes) / 1e9,
           median(ratio, passes), passes);
    return worst > 1e-5 * largest;
}
