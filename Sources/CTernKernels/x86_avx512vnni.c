/* x86 AVX-512 VNNI path (vpdpbusd on 256-bit registers via AVX512VL). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "tern_kernels.h"

#define TK __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define NAME(x) x##_avx512vnni
#define DOT_US(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#include "x86_gemm.inc"
#endif
