/* Shared by the attention kernels of every ISA (x86_attend.inc, arm_attend.c): positions per
 * block, and the switch of the exported kernels that makes the head count a constant, so every
 * per-head array is registers. No include guard: x86_attend.inc undefines both after use. */
#define ATT_BLOCK 32

#define ATT_DISPATCH(BODY, ...)                                                                     \
    switch (heads) {                                                                                \
    case 1: BODY(1, __VA_ARGS__); break;                                                            \
    case 2: BODY(2, __VA_ARGS__); break;                                                            \
    case 3: BODY(3, __VA_ARGS__); break;                                                            \
    case 4: BODY(4, __VA_ARGS__); break;                                                            \
    case 5: BODY(5, __VA_ARGS__); break;                                                            \
    case 6: BODY(6, __VA_ARGS__); break;                                                            \
    case 7: BODY(7, __VA_ARGS__); break;                                                            \
    case 8: BODY(8, __VA_ARGS__); break;                                                            \
    default: break;                                                                                 \
    }
