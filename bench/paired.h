/* What the paired-timing bench programs share (bench/gemm-ab.c, bench/q4k-k256.c): a monotonic
 * clock and the median of a run's timings. */
#ifndef TERN_BENCH_PAIRED_H
#define TERN_BENCH_PAIRED_H
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int byValue(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The median of v[0..n), n <= 64; v is left as it was. */
static double median(const double *v, int n) {
    double s[64];
    n = n < 64 ? n : 64;
    memcpy(s, v, sizeof(double) * n);
    qsort(s, n, sizeof(double), byValue);
    return s[n / 2];
}
#endif
