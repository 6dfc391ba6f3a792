/* Software prefetch for the x86 GEMM kernels (tern_set_prefetch). Each exported GEMM takes the
 * distance at entry (PF_FOR_BATCH), for batches of up to PF_MAX_BATCH vectors only: decoding and
 * verification, which stream the weights. A prefill batch uses each group's weights for many
 * vectors from cache, and prefetched lines evicted its activations from L1 (the 1.5B model's
 * pp128 ran 30% slower with them on an Intel Xeon). For each block of weights a group kernel
 * reads at p (n bytes), it asks for the lines n bytes long at p + distance. Blocks follow each
 * other in memory, so every line of a read stream is asked for once or twice, about `distance`
 * bytes before the kernel gets to it. Measured (bench/README.md): on an Intel Xeon VM (AVX-512,
 * 9-11 GB/s at one thread) 4 KB ahead read one thread's decode weights 16-34% faster than the
 * hardware prefetchers alone. On an AMD Zen 5 VM, batches of 8 and 16 (a verification pass of
 * 7-15 drafted tokens) ran 1.6-1.8x and 1.1-1.3x faster with it (Qwen2.5-Coder 0.5B and 1.5B,
 * `tern bench -p 8|16 -n 0`, 1 and 2 threads); from 32 on the difference was within the noise.
 * Up to 7 vectors only, as before, left verification passes of 8 tokens costing 1.45x those of 7.
 *
 * The distance reaches the group kernels as an argument, and each GEMM runs its loop in two
 * copies, one with the distance and one with 0 (PF_TWO_COPIES, used by gemm_body.h and
 * x86_avx512_pairs.inc), so no kernel tests it inside its loops. A test there split an unrolled super-block into a basic
 * block per block, and clang then loaded every block's weights and activation broadcasts ahead and
 * spilled them to the stack: with AVX2's 16 registers 100 spills and reloads per super-block (its
 * kernels prefetched without the test until then, asking for the lines being read when the
 * distance was 0), with AVX-512's 32 still 72 in the q4k pair kernel at one vector, which the two
 * copies took to 22 and 1.2x the speed on one Zen 4 core (bench/README.md). A call's later
 * vectors (batches of 5-16 taken in fours or eights) prefetch too, where only the first did: the
 * lines are in cache by then, so those prefetches cost an instruction each and nothing else. */
#ifndef TERN_PREFETCH_H
#define TERN_PREFETCH_H
#include <immintrin.h>
#include <stddef.h>

extern __attribute__((visibility("hidden"))) ptrdiff_t tern_prefetch_distance;
#define PF_MAX_BATCH 16
/* The prefetch distance for a GEMM of `batch` vectors (0: none). */
#define PF_FOR_BATCH(batch) ((batch) <= PF_MAX_BATCH ? __atomic_load_n(&tern_prefetch_distance, __ATOMIC_RELAXED) : 0)
/* A GEMM's loop LOOP(..., distance) in its two copies: with the distance `pf` when it is nonzero,
 * else with a literal 0, so the kernels inlined into each copy see a constant. */
#define PF_TWO_COPIES(pf, LOOP, ...)                                                              \
    if (pf) {                                                                                     \
        LOOP(__VA_ARGS__, pf)                                                                     \
    } else {                                                                                      \
        LOOP(__VA_ARGS__, 0)                                                                      \
    }
/* The activation lines a kernel reads for its next super-block (n bytes at p), asked into L1 at
 * every distance, when decoding (one vector: with more, the instructions cost 3-9% of the pair
 * kernels' speed and the lines are reused within each call anyway). On long rows a pair call
 * streams more weights than L1 holds between two uses of an activation line (Qwen2.5-Coder-1.5B's
 * ffn_down: 2 x 20 KB a call against 9 KB of int8 activations), so the weights evicted the
 * activations and the broadcasts waited on L2. Asked one super-block ahead, one Zen 4 core read
 * 1536 x 8960 out of memory 1.01-1.05x faster (q4k, q6); other shapes within 1% (bench/README.md).
 * On such rows one vector now runs in quads (x86_avx512_quads.inc), which halve those reads.
 * Prefetches never fault: past the end they are dropped. */
#define PF_ACTS(p, n)                                                                             \
    do {                                                                                          \
        for (int o_ = 0; o_ < (n); o_ += 64) _mm_prefetch((const char *)(p) + o_, _MM_HINT_T0);   \
    } while (0)
#define PF_SPAN(pf, p, n)                                                                         \
    do {                                                                                          \
        if (pf)                                                                                   \
            for (int o_ = 0; o_ < (n); o_ += 64) _mm_prefetch((const char *)(p) + (pf) + o_, _MM_HINT_T0); \
    } while (0)
#endif
