/* The loop shared by every ISA's GEMM: four-row groups outer, the batch in fours inner, so a
 * group's weights are read from memory once and stay in L1 while every activation vector uses
 * them. GROUP(grp, blocks, a, b0, nb, out, out_stride, valid) is the ISA's group kernel; with
 * GEMM_PREFETCH defined (x86) it takes a ninth argument, the prefetch distance (prefetch.h), and
 * the loop runs in two copies, one with the GEMM's distance and one with 0, so that the distance
 * is a constant inside each. */
#define GEMM_LOOP(GROUP, PF)                                                                        \
    for (ptrdiff_t g = g0; g < g1; g++) {                                                           \
        const uint8_t *grp = w + g * group_bytes;                                                   \
        const int valid = rows - 4 * g < 4 ? (int)(rows - 4 * g) : 4;                               \
        float *o = out + 4 * g;                                                                     \
        int b0 = 0;                                                                                 \
        for (; b0 + 4 <= batch; b0 += 4) GEMM_GROUP(GROUP, b0, 4, PF);                              \
        switch (batch - b0) {                                                                       \
        case 3: GEMM_GROUP(GROUP, b0, 3, PF); break;                                                \
        case 2: GEMM_GROUP(GROUP, b0, 2, PF); break;                                                \
        case 1: GEMM_GROUP(GROUP, b0, 1, PF); break;                                                \
        default: break;                                                                             \
        }                                                                                           \
    }
#ifdef GEMM_PREFETCH
#define GEMM_GROUP(GROUP, b0, nb, PF) GROUP(grp, blocks, a, b0, nb, o, out_stride, valid, PF)
#define GEMM_BODY(GROUP)                                                                            \
    const ptrdiff_t pf_ = PF_FOR_BATCH(batch);                                                      \
    PF_TWO_COPIES(pf_, GEMM_LOOP, GROUP)
#else
#define GEMM_GROUP(GROUP, b0, nb, PF) GROUP(grp, blocks, a, b0, nb, o, out_stride, valid)
#define GEMM_BODY(GROUP) GEMM_LOOP(GROUP, 0)
#endif

/* One exported GEMM (tern_gemm_fn's signature) running GROUP under the target attribute ATTR. */
#define GEMM_FN(ATTR, FN, GROUP)                                                                      \
    ATTR void FN(const uint8_t *w, ptrdiff_t group_bytes, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t rows, \
                 ptrdiff_t blocks, const tern_acts *a, int batch, float *out, ptrdiff_t out_stride) { \
        GEMM_BODY(GROUP)                                                                              \
    }
