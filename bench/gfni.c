// The AVX-512 q5 kernel with GFNI against without it, alternating in one process (tern_set_gfni),
// so a noisy machine's drift falls on both: ROWS x COLS q5 matrices (synthetic bytes, valid f16
// factors) repeated to 256 MB on 2 MiB pages, multiplied by BATCH vectors, 16 passes; read
// bandwidth of the weights (mean and best pass) either way. Needs AVX-512 VNNI; GFNI for a
// difference (without it both ways run the shifts).
// Build: clang -O2 -march=native -I Sources/CTernKernels/include bench/gfni.c
//          Sources/CTernKernels/x86_avx512vnni.c Sources/CTernKernels/cpu.c -o gfni -lm   (one line)
// Run:   ./gfni ROWS COLS [BATCH]    e.g. Qwen2.5-Coder 0.5B's FFN: ./gfni 4864 896 ; ./gfni 896 4864
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "tern_kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ROWS COLS [BATCH]\n", argv[0]);
        return 2;
    }
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), batch = argc > 3 ? atoi(argv[3]) : 1;
    if (rows < 4 || rows % 4 || rows > 1 << 20 || cols < 32 || cols % 32 || cols > 1 << 16 || batch < 1 || batch > 64) {
        fprintf(stderr, "gfni: ROWS a multiple of 4, COLS of 32, BATCH 1-64\n");
        return 2;
    }
    if (!tern_cpu_has_avx512vnni()) {
        fprintf(stderr, "gfni: needs AVX-512 VNNI\n");
        return 2;
    }
    const int blocks = cols / 32;
    const ptrdiff_t group_bytes = (ptrdiff_t)blocks * 88;  // a q5 block of four rows: 8 + 16 + 64 bytes
    const size_t matrix = (size_t)(rows / 4) * group_bytes;
    const int copies = matrix >= (256u << 20) ? 1 : (int)((256u << 20) / matrix);
    const size_t total = matrix * copies, alloc = (total + (2 << 20)) / (2 << 20) * (2 << 20);
    uint8_t *w = aligned_alloc(2 << 20, alloc);
    if (!w) return 1;
    madvise(w, alloc, MADV_HUGEPAGE);
    for (size_t i = 0; i + 2 <= total; i += 2) {
        // every 8-byte run starts with a small f16 (1/16); the rest is any bytes
        const uint16_t h = (i / 2) % 4 == 0 ? 0x2C00 : (uint16_t)((i * 2654435761u) >> 7);
        memcpy(w + i, &h, 2);
    }
    int8_t *aq = aligned_alloc(64, (size_t)batch * cols + 64);
    float *scale = calloc((size_t)batch * blocks, 4), *ssum = calloc((size_t)batch * blocks, 4);
    int32_t *bias = calloc(2 * (size_t)batch * blocks, 4), *hoff = calloc(4 * (size_t)batch * blocks, 4);
    float *out = calloc((size_t)batch * rows, 4);
    for (int i = 0; i < batch * cols; i++) aq[i] = (int8_t)(i * 7 % 200 - 100);
    for (int i = 0; i < batch * blocks; i++) scale[i] = 1e-6f, ssum[i] = 1;
    const tern_acts a = {aq, scale, ssum, bias, hoff, cols, blocks};
    double sum[2] = {0, 0}, best[2] = {1e9, 1e9};
    for (int pass = 0; pass < 16; pass++) {
        const int g = pass % 2;
        tern_set_gfni(g);
        const double t0 = now();
        for (int c = 0; c < copies; c++)
            tern_gemm_q5_avx512vnni(w + c * matrix, group_bytes, 0, rows / 4, rows, blocks, &a, batch, out, rows);
        const double t = now() - t0;
        sum[g] += t;
        if (t < best[g]) best[g] = t;
    }
    printf("q5 %dx%d, batch %d, %.0f MB%s: shifts %.1f GB/s (best %.1f), gfni %.1f GB/s (best %.1f): %+.1f%%\n", rows,
           cols, batch, total / 1e6, tern_cpu_has_gfni() ? "" : " (no GFNI: both ways are the shifts)", 8 * total / sum[0] / 1e9,
           total / best[0] / 1e9, 8 * total / sum[1] / 1e9, total / best[1] / 1e9, 100 * (sum[0] / sum[1] - 1));
    return 0;
}
