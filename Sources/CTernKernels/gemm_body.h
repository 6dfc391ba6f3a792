/* The loop shared by every ISA's GEMM: four-row groups outer, the batch in fours inner, so a
 * group's weights are read from memory once and stay in L1 while every activation vector uses
 * them. GROUP(grp, blocks, a, b0, nb, out, out_stride, valid) is the ISA's group kernel;
 * GEMM_ENTER(batch), if the ISA defines it, runs first. */
#ifndef GEMM_ENTER
#define GEMM_ENTER(batch) ((void)0)
#endif
#define GEMM_BODY(GROUP)                                                                           \
    GEMM_ENTER(batch);                                                                             \
    for (ptrdiff_t g = g0; g < g1; g++) {                                                          \
        const uint8_t *grp = w + g * group_bytes;                                                  \
        const int valid = rows - 4 * g < 4 ? (int)(rows - 4 * g) : 4;                             \
        float *o = out + 4 * g;                                                                    \
        int b0 = 0;                                                                                \
        for (; b0 + 4 <= batch; b0 += 4) GROUP(grp, blocks, a, b0, 4, o, out_stride, valid);       \
        switch (batch - b0) {                                                                      \
        case 3: GROUP(grp, blocks, a, b0, 3, o, out_stride, valid); break;                         \
        case 2: GROUP(grp, blocks, a, b0, 2, o, out_stride, valid); break;                         \
        case 1: GROUP(grp, blocks, a, b0, 1, o, out_stride, valid); break;                         \
        default: break;                                                                            \
        }                                                                                          \
    }

/* One exported GEMM (tern_gemm_fn's signature) running GROUP under the target attribute ATTR. */
#define GEMM_FN(ATTR, FN, GROUP)                                                                   \
    ATTR void FN(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows, \
                 ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) { \
        GEMM_BODY(GROUP)                                                                           \
    }
