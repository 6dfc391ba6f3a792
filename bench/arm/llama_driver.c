#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stddef.h>
/* Calls one of llama.cpp's aarch64 dot products or GEMVs REPS times over 2048 columns of arbitrary
 * bytes, one activation vector, for bench/arm/insn-count.sh. Usage: llama_driver KIND REPS, KIND one of
 * q8_0 q4_1 q5_0 q5_1 q4_K q6_K (ggml_vec_dot_*: one row), q4_Kx8 q6_Kx8 (ggml_gemv_*_8x4_q8_K: 8
 * interleaved rows, llama.cpp's repacked layouts on a CPU with the dot product; the ARMv8.0 build
 * links stubs for these). */
typedef void vec_dot(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc);
typedef void gemv(int n, float *s, size_t bs, const void *vx, const void *vy, int nr, int nc);
vec_dot ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_1_q8_1, ggml_vec_dot_q5_0_q8_0, ggml_vec_dot_q5_1_q8_1,
    ggml_vec_dot_q4_K_q8_K, ggml_vec_dot_q6_K_q8_K;
gemv ggml_gemv_q4_K_8x4_q8_K, ggml_gemv_q6_K_8x4_q8_K;
typedef struct { const char *name; vec_dot *dot; gemv *gv; int rows, xbytes, ybytes, cols; } kind;
static const kind kinds[] = {
    {"q8_0", ggml_vec_dot_q8_0_q8_0, 0, 1, 34, 34, 32},        {"q4_1", ggml_vec_dot_q4_1_q8_1, 0, 1, 20, 36, 32},
    {"q5_0", ggml_vec_dot_q5_0_q8_0, 0, 1, 22, 34, 32},        {"q5_1", ggml_vec_dot_q5_1_q8_1, 0, 1, 24, 36, 32},
    {"q4_K", ggml_vec_dot_q4_K_q8_K, 0, 1, 144, 292, 256},     {"q6_K", ggml_vec_dot_q6_K_q8_K, 0, 1, 210, 292, 256},
    {"q4_Kx8", 0, ggml_gemv_q4_K_8x4_q8_K, 8, 144, 292, 256},  {"q6_Kx8", 0, ggml_gemv_q6_K_8x4_q8_K, 8, 210, 292, 256},
};
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const kind *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(argv[1], kinds[i].name) == 0) k = &kinds[i];
    if (!k) return 2;
    const int reps = atoi(argv[2]), n = 2048, nb = n / k->cols;
    const size_t xn = (size_t)k->rows * nb * k->xbytes, yn = (size_t)nb * k->ybytes;
    uint8_t *x = calloc(xn, 1), *y = calloc(yn, 1);
    for (size_t i = 0; i < xn; i++) x[i] = (uint8_t)(i * 7 % 251 % 60);
    for (size_t i = 0; i < yn; i++) y[i] = (uint8_t)(i * 13 % 251 % 60);
    float s[8] = {0}, t = 0;
    for (int r = 0; r < reps; r++) {
        if (k->dot) k->dot(n, s, 0, x, 0, y, 0, 1); else k->gv(n, s, 0, x, y, 1, k->rows);
        t += s[0];
    }
    printf("%g\n", t);
    return 0;
}
