#include "tern_kernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

/* Zen 3 is AMD family 0x19 models 0x00-0x0F (Milan), 0x20-0x2F (Vermeer), 0x40-0x5F (Rembrandt,
 * Cezanne); Zen 4 shares the family (0x10-0x1F, 0x60-0x7F, 0xA0-0xAF). Zen 5 is family 0x1A. */
ptrdiff_t tern_amd_prefetch_default(unsigned family, unsigned model) {
    if (family >= 0x1A) return 4096;
    const int zen3 = family == 0x19 &&
                     (model <= 0x0F || (model >= 0x20 && model <= 0x2F) || (model >= 0x40 && model <= 0x5F));
    return zen3 ? 2048 : 0;
}

#if defined(__x86_64__) || defined(__i386__)
int tern_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
int tern_cpu_has_avx512vnni(void) {
    __builtin_cpu_init();
    return tern_cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
int tern_cpu_has_gfni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("gfni");
}
int tern_cpu_has_neon_dotprod(void) { return 0; }
int tern_cpu_has_neon(void) { return 0; }

/* The x86 family and model from cpuid leaf 1 (0 and 0 without it): the base family, plus the
 * extended family when the base is 15; the base model, plus the extended model as its high nibble
 * when the base family is 6 or 15 (Intel SDM vol. 2A, CPUID; AMD's CPUID specification,
 * Fn0000_0001_EAX). */
static void x86_family_model(unsigned *family, unsigned *model) {
    unsigned eax, ebx, ecx, edx;
    *family = *model = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
    const unsigned base = (eax >> 8) & 0xF;
    *family = base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
    *model = ((eax >> 4) & 0xF) + (base == 0xF || base == 6 ? ((eax >> 16) & 0xF) << 4 : 0);
}

ptrdiff_t tern_cpu_prefetch_default(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel")) return 4096;
    if (!__builtin_cpu_is("amd")) return 0;
    unsigned family, model;
    x86_family_model(&family, &model);
    return tern_amd_prefetch_default(family, model);
}

__attribute__((target("avx2")))
uint64_t tern_read_probe(const uint64_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a = _mm256_xor_si256(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
    }
    a = _mm256_xor_si256(a, b);
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    uint64_t s = out[0] ^ out[1] ^ out[2] ^ out[3];
    for (; i < n; i++) s ^= p[i];
    return s;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
int tern_cpu_has_avx2(void) { return 0; }
int tern_cpu_has_avx512vnni(void) { return 0; }
int tern_cpu_has_gfni(void) { return 0; }
int tern_set_gfni(int on) { (void)on; return 0; }
ptrdiff_t tern_cpu_prefetch_default(void) { return 0; }
int tern_cpu_has_neon_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
int tern_cpu_has_neon(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0; }
uint64_t tern_read_probe(const uint64_t *p, size_t n) {
    uint64_t a = 0, b = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) { a ^= p[i]; b ^= p[i + 1]; }
    for (; i < n; i++) a ^= p[i];
    return a ^ b;
}
#else
int tern_cpu_has_avx2(void) { return 0; }
int tern_cpu_has_avx512vnni(void) { return 0; }
int tern_cpu_has_gfni(void) { return 0; }
int tern_set_gfni(int on) { (void)on; return 0; }
ptrdiff_t tern_cpu_prefetch_default(void) { return 0; }
int tern_cpu_has_neon_dotprod(void) { return 0; }
int tern_cpu_has_neon(void) { return 0; }
uint64_t tern_read_probe(const uint64_t *p, size_t n) {
    uint64_t a = 0;
    for (size_t i = 0; i < n; i++) a ^= p[i];
    return a;
}
#endif

/* Read by the x86 GEMM kernels (prefetch.h). Hidden: not part of the library's interface, and
 * code built without -fPIC (Debian's aarch64 Swift) may not address a preemptible global. */
__attribute__((visibility("hidden"))) ptrdiff_t tern_prefetch_distance;

ptrdiff_t tern_set_prefetch(ptrdiff_t bytes) {
    const ptrdiff_t d = bytes < 0 ? 0 : bytes > (64 << 10) ? (64 << 10) : bytes / 64 * 64;
    return __atomic_exchange_n(&tern_prefetch_distance, d, __ATOMIC_RELAXED);
}

ptrdiff_t tern_get_prefetch(void) { return __atomic_load_n(&tern_prefetch_distance, __ATOMIC_RELAXED); }

void tern_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
