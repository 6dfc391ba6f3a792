#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stddef.h>
void ggml_vec_dot_q8_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc);
void ggml_vec_dot_q4_0_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc);
/* Calls llama.cpp's ggml_vec_dot_q8_0_q8_0 or _q4_0_q8_0 REPS times on 2048 columns (one row,
 * one activation vector), for bench/arm/insn-count.sh. Usage: llama_driver q8|q4 REPS */
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int reps = atoi(argv[2]), n = 2048;
    uint8_t *x = calloc(n / 32, 34), *y = calloc(n / 32, 34);
    for (int i = 0; i < n / 32 * 34; i++) { x[i] = (uint8_t)(i * 7); y[i] = (uint8_t)(i * 13); }
    float s = 0, t = 0;
    for (int r = 0; r < reps; r++) {
        if (argv[1][1] == '8') ggml_vec_dot_q8_0_q8_0(n, &s, 0, x, 0, y, 0, 1); else ggml_vec_dot_q4_0_q8_0(n, &s, 0, x, 0, y, 0, 1);
        t += s;
    }
    printf("%g\n", t);
    return 0;
}
