#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "tern_kernels.h"
/* Calls one of Tern's aarch64 GEMMs REPS times on a ROWS x 2048 matrix and BATCH activation
 * vectors, for bench/arm/insn-count.sh. Usage: tern_driver q8|q4 ROWS BATCH v8|dot REPS */
int main(int argc, char **argv) {
    if (argc != 6) return 2;
    const int q4 = argv[1][1] == '4', rows = atoi(argv[2]), batch = atoi(argv[3]), reps = atoi(argv[5]);
    const int dot = argv[4][0] == 'd', cols = 2048, blocks = cols / 32, groups = (rows + 3) / 4, gb = blocks * (q4 ? 80 : 136);
    uint8_t *w = calloc((size_t)groups, gb);
    for (long i = 0; i < (long)groups * gb; i++) w[i] = (uint8_t)(i * 7 % 251);
    int8_t *q = calloc((size_t)batch, cols);
    float *sc = calloc((size_t)batch * blocks, 4), *ss = calloc((size_t)batch * blocks, 4), *out = calloc((size_t)batch * rows, 4);
    int32_t *bias = calloc((size_t)batch * blocks * 2, 4);
    for (int i = 0; i < batch * cols; i++) q[i] = (int8_t)(i % 200 - 100);
    tern_acts a = {q, sc, ss, bias, cols, blocks};
    float t = 0;
    for (int r = 0; r < reps; r++) {
        if (dot) (q4 ? tern_gemm_q4_neon : tern_gemm_q8_neon)(w, gb, 0, groups, rows, blocks, &a, batch, out, rows);
        else (q4 ? tern_gemm_q4_neon_v8 : tern_gemm_q8_neon_v8)(w, gb, 0, groups, rows, blocks, &a, batch, out, rows);
        t += out[0];
    }
    printf("%g\n", t);
    return 0;
}
