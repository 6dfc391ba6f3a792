// Two or more builds of the x86 GEMM kernels, timed against each other on one matrix shape in one
// process: each build's kernel runs in turn, pass after pass, and the report gives each one's
// median GMAC/s and the median of its per-pass time ratio to the first build. On a shared,
// noisy machine, where the same binary run twice can differ by 50%, paired passes in one
// process are what tells a 5% change from noise. The outputs are compared bit for bit (a build
// whose q4k or q6 kernel reads the per-256 form, which shares q but not the rounding, differs from
// one that reads the per-32 form; builds before the form's per-16 sums, sb_hsum, never read it).
// Build each variant as a shared library from a copy of Sources/CTernKernels (one line):
//   clang -O2 -shared -fPIC -I DIR/include DIR/x86_avx2.c DIR/x86_avx512vnni.c DIR/cpu.c -o DIR.so -lm
// and this program once:
//   clang -O2 -I Sources/CTernKernels/include bench/gemm-ab.c -o gemm-ab -ldl
// Run: ./gemm-ab ROWS COLS BATCH KIND ./a.so ./b.so ...   (KIND: q8 q4 q5 q5_1 q6 q4k; ISA=avx2 for
// the AVX2 kernels, else the AVX-512 ones). E.g. Qwen2.5-Coder-1.5B's ffn_down at prefill:
//   ./gemm-ab 1536 8960 128 q4k ./base.so ./new.so
// Weights are synthetic bytes with small finite f16 factors; one thread; no software prefetch
// unless PF=BYTES gives its distance (as tern_set_prefetch; Tern's default: 4096 on Intel and Zen 5, 2048 on Zen 3, else 0).
// The weights lie on 2 MiB pages where Linux gives them, as Tern's do. COPIES=N keeps N copies of
// the matrix and each call reads the next one, so with enough copies (N x the matrix beyond the
// last-level cache) every call reads its weights from memory, as decoding does. Then each pass
// also reads the same copies with the bandwidth probe Tern measures its roofline with
// (tern_read_probe, from the first build), and a line gives the first build's read rate as a share
// of the probe's on the same memory in the same passes. NOSB=1: the q4k and q6 kernels read the
// per-32 activations (as the per-256 form's absence makes them do).
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "paired.h"
#include "tern_kernels.h"

enum { maxLibs = 8, passes = 21 };

// Block size in bytes of a four-row group, and where each block's (super-block's) f16 factors lie.
static int blockBytes(const char *kind) {
    if (!strcmp(kind, "q8")) return 136;
    if (!strcmp(kind, "q4")) return 80;
    if (!strcmp(kind, "q5_1")) return 96;
    if (!strcmp(kind, "q5")) return 88;
    if (!strcmp(kind, "q6")) return 105;
    if (!strcmp(kind, "q4k")) return 72;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc - 5 > maxLibs) {
        fprintf(stderr, "usage: %s ROWS COLS BATCH KIND LIB.so... (up to %d)\n", argv[0], maxLibs);
        return 2;
    }
    const int rows = atoi(argv[1]), cols = atoi(argv[2]), batch = atoi(argv[3]), libs = argc - 5;
    const char *kind = argv[4], *isa = getenv("ISA") ? getenv("ISA") : "avx512vnni";
    const int bb = blockBytes(kind), superBlocks = !strcmp(kind, "q6") || !strcmp(kind, "q4k");
    const int copies = getenv("COPIES") ? atoi(getenv("COPIES")) : 1;
    if (!bb || rows < 4 || rows > 1 << 18 || cols < 32 || cols % (superBlocks ? 256 : 32) || cols > 1 << 16 ||
        batch < 1 || batch > 512 || copies < 1 || copies > 100000) {
        fprintf(stderr, "gemm-ab: KIND one of q8 q4 q5 q5_1 q6 q4k; 4 <= ROWS <= 2^18, COLS up to 65536 and a multiple of "
                        "256 (q6, q4k) or 32, 1 <= BATCH <= 512, 1 <= COPIES <= 100000\n");
        return 2;
    }
    char sym[64];
    snprintf(sym, sizeof sym, "tern_gemm_%s_%s", kind, isa);
    tern_gemm_fn fn[maxLibs];
    void *lib0 = NULL;
    for (int i = 0; i < libs; i++) {
        void *h = dlopen(argv[5 + i], RTLD_NOW | RTLD_LOCAL);
        if (i == 0) lib0 = h;
        ptrdiff_t (*setPrefetch)(ptrdiff_t) = h ? (ptrdiff_t (*)(ptrdiff_t))dlsym(h, "tern_set_prefetch") : NULL;
        fn[i] = h ? (tern_gemm_fn)dlsym(h, sym) : NULL;
        if (!fn[i] || !setPrefetch) {
            fprintf(stderr, "gemm-ab: %s: %s\n", argv[5 + i], h ? "no such kernel" : dlerror());
            return 1;
        }
        setPrefetch(getenv("PF") ? atol(getenv("PF")) : 0);
    }
    const int blocks = cols / 32, groups = (rows + 3) / 4;
    const ptrdiff_t groupBytes = (ptrdiff_t)blocks * bb;
    // One copy's bytes; all copies on 2 MiB pages (aligned_alloc wants a multiple of the alignment).
    const size_t one = (size_t)groups * groupBytes, huge = 2u << 20;
    const size_t all = (one * copies + huge - 1) / huge * huge;
    uint8_t *w = aligned_alloc(huge, all);
    if (w) madvise(w, all, MADV_HUGEPAGE);
    int8_t *q = malloc((size_t)batch * cols);
    float *scale = malloc(sizeof(float) * batch * blocks), *ssum = malloc(sizeof(float) * batch * blocks);
    int32_t *bias = malloc(sizeof(int32_t) * 2 * batch * blocks), *hoff = malloc(sizeof(int32_t) * 4 * batch * blocks);
    float *out[maxLibs];
    for (int i = 0; i < libs; i++) out[i] = calloc((size_t)batch * rows, sizeof(float));
    if (!w || !q || !scale || !ssum || !bias || !hoff) return 1;
    for (size_t i = 0; i < one * copies; i++) w[i] = (uint8_t)((i * 2654435761u) >> 13);
    // Small finite f16 factors (1/16): the leading halves of each block, or of each super-block
    // (q6: the rows' d; q4k: d and dmin), as the layouts in docs/format.md put them.
    const int unit = superBlocks ? (strcmp(kind, "q6") ? 576 : 840) : bb;
    const int halves = !strcmp(kind, "q6") || !strcmp(kind, "q8") || !strcmp(kind, "q5") ? 4 : 8;
    for (size_t off = 0; off < one * copies; off += unit)
        for (int j = 0; j < halves; j++) memcpy(w + off + 2 * j, &(uint16_t){0x2C00}, 2);
    for (size_t i = 0; i < (size_t)batch * cols; i++) q[i] = (int8_t)(i * 7);
    for (int i = 0; i < batch * blocks; i++) {
        scale[i] = 0.01f, ssum[i] = 1;
        bias[2 * i] = bias[2 * i + 1] = -100;
        for (int j = 0; j < 4; j++) hoff[4 * i + j] = -7;  // builds before 2 per group read 4
    }
    // The per-256 form (the x86 q4k and AVX2 q6 kernels') shares q and the factors; its int16
    // sums per 32 and per 16.
    int16_t *bsum = malloc(sizeof(int16_t) * batch * blocks), *hsum = malloc(sizeof(int16_t) * 2 * batch * blocks);
    if (!bsum || !hsum) return 1;
    for (int i = 0; i < batch * blocks; i++) bsum[i] = (int16_t)(i % 200 - 100);
    for (int i = 0; i < 2 * batch * blocks; i++) hsum[i] = (int16_t)(i % 100 - 50);
    // The q6 kernels' copy of q (q6_q) is synthetic bytes too: q itself.
    const int nosb = getenv("NOSB") != NULL;
    const tern_acts a = {q, scale, ssum, bias, hoff, cols, blocks, nosb ? NULL : q, scale, ssum, bsum, q, nosb ? NULL : hsum};
    const double macs = (double)rows * cols * batch;
    // At least ~2e8 MACs a pass; with copies, each copy once.
    const int calls = copies > 1 ? copies : macs < 2e8 ? (int)(2e8 / macs) + 1 : 1;
    uint64_t (*probe)(const uint64_t *, size_t) = (uint64_t (*)(const uint64_t *, size_t))dlsym(lib0, "tern_read_probe");
    if (copies > 1 && !probe) {
        fprintf(stderr, "gemm-ab: %s: no tern_read_probe\n", argv[5]);
        return 1;
    }
    double t[maxLibs][passes], tProbe[passes];
    volatile uint64_t sink = 0;
    for (int p = 0; p < passes; p++) {
        if (copies > 1) {
            const double t0 = now();
            for (int c = 0; c < calls; c++) sink ^= probe((const uint64_t *)(w + (size_t)c * one), one / 8);
            tProbe[p] = now() - t0;
        }
        for (int i = 0; i < libs; i++) {
            const double t0 = now();
            for (int c = 0; c < calls; c++)
                fn[i](w + (size_t)(c % copies) * one, groupBytes, 0, groups, rows, blocks, &a, batch, out[i], rows);
            t[i][p] = now() - t0;
        }
    }
    if (copies > 1) {
        double share[passes];
        for (int p = 0; p < passes; p++) share[p] = tProbe[p] / t[0][p];
        printf("%d copies of %.1f MB: probe %.1f GB/s, %s %.1f GB/s (medians), %s / probe %.3f (median of the passes)\n",
               copies, one / 1e6, one * (double)calls / median(tProbe, passes) / 1e9, argv[5],
               one * (double)calls / median(t[0], passes) / 1e9, argv[5], median(share, passes));
    }
    for (int i = 0; i < libs; i++) {
        double ratio[passes];
        for (int p = 0; p < passes; p++) ratio[p] = t[0][p] / t[i][p];
        const int same = !memcmp(out[0], out[i], sizeof(float) * batch * rows);
        printf("%s %s %dx%d batch %d  %s: %.1f GMAC/s (median of %d), %.3fx %s (median ratio)%s\n", isa, kind, rows,
               cols, batch, argv[5 + i], macs * calls / median(t[i], passes) / 1e9, passes, median(ratio, passes),
               argv[5], same ? "" : "  DIFFERENT BITS");
    }
    return 0;
}
