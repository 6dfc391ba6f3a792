/* Symbols llama.cpp's quants.o and repack.o refer to from functions not measured here; with GEMV_STUBS
 * (the ARMv8.0 build, which leaves repack.o out: llama.cpp repacks only on CPUs with the dot product)
 * also the repacked GEMVs the driver names. */
#include <stddef.h>
float ggml_table_f32_ue4m3[256];
void quantize_row_q8_K_ref(const float *x, void *y, long k) { (void)x; (void)y; (void)k; }
#define STUB(f) void f(void) {}
STUB(ggml_gemm_q1_0_4x8_q8_0_generic) STUB(ggml_gemm_q4_0_4x8_q8_0_generic) STUB(ggml_gemm_q4_0_8x8_q8_0_generic)
STUB(ggml_gemm_q4_K_8x8_q8_K_generic) STUB(ggml_gemm_q5_K_8x8_q8_K_generic) STUB(ggml_gemm_q6_K_8x8_q8_K_generic)
STUB(ggml_gemm_q8_0_4x8_q8_0_generic) STUB(ggml_gemv_q4_0_8x8_q8_0_generic)
#ifdef GEMV_STUBS
STUB(ggml_gemv_q4_K_8x4_q8_K) STUB(ggml_gemv_q6_K_8x4_q8_K)
#endif
