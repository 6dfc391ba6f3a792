#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "tern_kernels.h"
/* Calls one of Tern's aarch64 GEMMs REPS times on a ROWS x 2048 matrix of arbitrary bytes and BATCH
 * activation vectors, for bench/arm/insn-count.sh (instruction counts do not depend on the values).
 * Usage: tern_driver KIND ROWS BATCH v8|dot [sb] REPS, KIND one of q8 q4 q5 q5_1 q6 q4k q5k; sb: the
 * activations also in the per-256 form, which the q4k and q6 kernels then read. */
typedef struct { const char *name; int bytes, cols; tern_gemm_fn dot, v8; } kind;
static const kind kinds[] = {
    {"q8", 136, 32, tern_gemm_q8_neon, tern_gemm_q8_neon_v8},       {"q4", 80, 32, tern_gemm_q4_neon, tern_gemm_q4_neon_v8},
    {"q5", 88, 32, tern_gemm_q5_neon, tern_gemm_q5_neon_v8},        {"q5_1", 96, 32, tern_gemm_q5_1_neon, tern_gemm_q5_1_neon_v8},
    {"q6", 840, 256, tern_gemm_q6_neon, tern_gemm_q6_neon_v8},      {"q4k", 576, 256, tern_gemm_q4k_neon, tern_gemm_q4k_neon_v8},
    {"q5k", 704, 256, tern_gemm_q5k_neon, tern_gemm_q5k_neon_v8},
};
int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) return 2;
    const int sb = argc == 7;
    const kind *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(argv[1], kinds[i].name) == 0) k = &kinds[i];
    if (!k) return 2;
    const int rows = atoi(argv[2]), batch = atoi(argv[3]), reps = atoi(argv[argc - 1]), dot = argv[4][0] == 'd';
    const int cols = 2048, blocks = cols / 32, groups = (rows + 3) / 4, gb = cols / k->cols * k->bytes;
    uint8_t *w = calloc((size_t)groups, gb);
    for (long i = 0; i < (long)groups * gb; i++) w[i] = (uint8_t)(i * 7 % 251 % 60); /* finite f16 factors */
    int8_t *q = calloc((size_t)batch, cols);
    float *sc = calloc((size_t)batch * blocks, 4), *ss = calloc((size_t)batch * blocks, 4), *out = calloc((size_t)batch * rows, 4);
    int32_t *bias = calloc((size_t)batch * blocks * 2, 4), *hoff = calloc((size_t)batch * blocks * 2, 4);
    for (int i = 0; i < batch * cols; i++) q[i] = (int8_t)(i % 200 - 100);
    int16_t *bsum = calloc((size_t)batch * blocks, 2), *hsum = calloc((size_t)batch * blocks * 2, 2);
    tern_acts a = {.q = q, .scale = sc, .ssum = ss, .bias = bias, .hoff = hoff, .q_stride = cols, .s_stride = blocks};
    if (sb) { a.sb_q = q; a.sb_scale = sc; a.sb_ssum = ss; a.sb_bsum = bsum; a.sb_hsum = hsum; }
    float t = 0;
    for (int r = 0; r < reps; r++) {
        (dot ? k->dot : k->v8)(w, gb, 0, groups, rows, blocks, &a, batch, out, rows);
        t += out[0];
    }
    printf("%g\n", t);
    return 0;
}
