// One core's read bandwidth for one sequential stream against two streams read side by side, the
// access pattern of the AVX-512 kernels' group pairs (Sources/CTernKernels/x86_avx512_pairs.inc):
// blocks of BLOCK bytes taken alternately from group A and from group B, DISTANCE bytes apart.
// On a Zen 4 VM two streams 1-32 KB apart read at half the bandwidth of one stream, 128 KB and
// more apart at the full bandwidth, which is why the kernels pair the first half of a range of
// groups with its second half (PAIR_MIN_DISTANCE).
// Build: cc -O2 -mavx2 bench/streams.c -o streams ; run: ./streams DISTANCE [BLOCK]  (bytes)
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DISTANCE [BLOCK]   (bytes; BLOCK a multiple of 32, default 128)\n", argv[0]);
        return 2;
    }
    const size_t dist = strtoul(argv[1], 0, 10), block = argc > 2 ? strtoul(argv[2], 0, 10) : 128;
    if (dist < block || block < 32 || block % 32) {
        fprintf(stderr, "streams: need BLOCK a multiple of 32 and DISTANCE >= BLOCK\n");
        return 2;
    }
    size_t n = (size_t)512 << 20;
    n -= n % (2 * dist);
    uint8_t *buf = aligned_alloc(4096, n);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7);
    __m256i x = _mm256_setzero_si256();
    for (int pairs = 0; pairs < 2; pairs++) {
        double best = 0;
        for (int pass = 0; pass < 5; pass++) {
            const double t0 = now();
            if (!pairs) {
                for (size_t i = 0; i < n; i += 32) x = _mm256_xor_si256(x, _mm256_loadu_si256((const __m256i *)(buf + i)));
            } else {
                for (size_t g = 0; g < n; g += 2 * dist)
                    for (size_t k = 0; k + block <= dist; k += block)
                        for (size_t o = 0; o < block; o += 32) {
                            x = _mm256_xor_si256(x, _mm256_loadu_si256((const __m256i *)(buf + g + k + o)));
                            x = _mm256_xor_si256(x, _mm256_loadu_si256((const __m256i *)(buf + g + dist + k + o)));
                        }
            }
            const double gbs = n / (now() - t0) / 1e9;
            if (gbs > best) best = gbs;
        }
        printf("%s: %.1f GB/s\n", pairs ? "two streams" : "one stream ", best);
    }
    // The loads' result is printed to stderr, so the compiler cannot drop them.
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, x);
    fprintf(stderr, "(checksum %llx)\n", (unsigned long long)(lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3]));
    free(buf);
    return 0;
}
