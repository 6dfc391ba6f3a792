/* Software prefetch for the x86 GEMM kernels (tern_set_prefetch). Each exported GEMM takes the
 * distance at entry (PF_BEGIN), for batches of up to PF_MAX_BATCH vectors only: decoding and
 * verification, which stream the weights. A prefill batch uses each group's weights for many
 * vectors from cache, and prefetched lines evicted its activations from L1 (the 1.5B model's
 * pp128 ran 30% slower with them on an Intel Xeon). A group kernel prefetches for its first
 * activation vectors only (PF_DISTANCE(b0): the later ones find the weights in L1) and, for each
 * block of weights it reads at p (n bytes), asks for the lines n bytes long at p + distance.
 * Blocks follow each other in memory, so every line of a read stream is asked for once or twice,
 * about `distance` bytes before the kernel gets to it. Measured (bench/README.md): on an Intel
 * Xeon VM (AVX-512, 9-11 GB/s at one thread) 4 KB ahead read one thread's decode weights 16-34%
 * faster than the hardware prefetchers alone. On an AMD Zen 5 VM, batches of 8 and 16 (a
 * verification pass of 7-15 drafted tokens) ran 1.6-1.8x and 1.1-1.3x faster with it
 * (Qwen2.5-Coder 0.5B and 1.5B, `tern bench -p 8|16 -n 0`, 1 and 2 threads); from 32 on the
 * difference was within the noise. Up to 7 vectors only, as before, left verification passes of
 * 8 tokens costing 1.45x those of 7. */
#ifndef TERN_PREFETCH_H
#define TERN_PREFETCH_H
#include <immintrin.h>
#include <stddef.h>

extern __attribute__((visibility("hidden"))) ptrdiff_t tern_prefetch_distance;
/* The distance of the GEMM call running on this thread. */
static __thread ptrdiff_t pf_call;
#define PF_MAX_BATCH 16
#define PF_BEGIN(batch) (pf_call = (batch) <= PF_MAX_BATCH ? __atomic_load_n(&tern_prefetch_distance, __ATOMIC_RELAXED) : 0)
#define PF_DISTANCE(b0) ((b0) == 0 ? pf_call : 0)
/* PF_BRANCHLESS (the AVX2 kernels define it): prefetch without testing pf, so with it off (0)
 * the lines asked for are the ones being read. The test split q4k's unrolled super-block into a
 * basic block per block, and with AVX2's 16 registers clang then loaded all eight blocks'
 * activation broadcasts ahead and spilled them (100 spills and reloads per super-block): one
 * vector ran 1.35-1.48x faster without it on an AMD Zen 4 VM (bench/gemm-ab.c, 1024-65536 rows,
 * 768-1536 columns, prefetch off and 4096), other batches and formats within 2%. Not measured on
 * AVX-512 (32 registers), which keeps the test. */
#ifdef PF_BRANCHLESS
#define PF_ON(pf) 1
#else
#define PF_ON(pf) (pf)
#endif
#define PF_SPAN(pf, p, n)                                                                         \
    do {                                                                                          \
        if (PF_ON(pf))                                                                            \
            for (int o_ = 0; o_ < (n); o_ += 64) _mm_prefetch((const char *)(p) + (pf) + o_, _MM_HINT_T0); \
    } while (0)
#endif
