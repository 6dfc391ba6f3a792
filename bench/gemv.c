// The matrix products of one decode step alone, on one thread, against a plain read of the same
// bytes: how close Tern's GEMM kernels stream to the read bandwidth, apart from everything else a
// step does (norms, attention, activation quantization, dispatch). The shapes are SmolLM2 135M's
// (30 layers of width 576, 9 query and 3 KV heads of 64, FFN 1536; Q4_1 layers, a 49152-row Q8_0
// head), or LAYERS WIDTH KV FFN VOCAB given; weights are synthetic (any bytes, valid f16 scales),
// laid out as the converter lays them out (four-row groups), in the order a step reads them.
// Each figure is the best of 8 passes. With -t N (N > 1), N threads share each product as Tern's
// pool does (one part per thread, Q/K/V and gate/up as one dispatch each, the pool's own
// synchronisation words from pool.c), against N threads reading their shares of the bytes.
// Build: clang -O2 -march=native -I Sources/CTernKernels/include bench/gemv.c Sources/CTernKernels/x86_avx2.c
//          Sources/CTernKernels/x86_avx512vnni.c Sources/CTernKernels/cpu.c Sources/CTernKernels/pool.c
//          -o gemv -lm -lpthread   (one line)
// Run:   ./gemv [-t THREADS] [LAYERS WIDTH KV FFN VOCAB]
//        e.g. Qwen2.5-Coder 0.5B's shapes: ./gemv 24 896 128 4864 151936
//        (its layers as q4 here, not its Q5_0/Q6_K/Q4_K mix)
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "tern_kernels.h"
#include "tern_pool.h"
#include <pthread.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    int rows, cols, q8;
    const uint8_t *w;
    ptrdiff_t group_bytes;
} matrix;

// The pool: the current dispatch (n matrices from m, their row groups one range; or with n = 0, a
// plain read of read_n words from read_p) and its job number.
static tern_pool_sync *pool;
static const matrix *volatile job_m;
static volatile int job_n;
static const uint64_t *read_p;
static size_t read_n;
static uint64_t read_sink[64];
static uint32_t job_gen;
static int threads = 1;
static tern_gemm_fn q4, q8;
static tern_acts acts;
static float *out;

// Part `part` of `parts` of n matrices' row groups taken as one range (n = 0: of the plain read).
static void run_part(const matrix *m, int n, int part, int parts) {
    if (n == 0) {
        const size_t lo = read_n * part / parts, hi = read_n * (part + 1) / parts;
        read_sink[part] = tern_read_probe(read_p + lo, hi - lo);
        return;
    }
    int groups = 0, first = 0;
    for (int i = 0; i < n; i++) groups += (m[i].rows + 3) / 4;
    const int lo = (int)((long)groups * part / parts), hi = (int)((long)groups * (part + 1) / parts);
    for (int i = 0; i < n; i++) {
        const int g = (m[i].rows + 3) / 4, a = lo > first ? lo : first, b = hi < first + g ? hi : first + g;
        if (a < b) (m[i].q8 ? q8 : q4)(m[i].w, m[i].group_bytes, a - first, b - first, m[i].rows, m[i].cols / 32, &acts, 1, out, 0);
        first += g;
    }
}

static void claim_parts(uint32_t gen) {
    int64_t p;
    while ((p = tern_pool_claim(pool, gen)) >= 0) {
        run_part(job_m, job_n, (int)p, threads);
        tern_pool_finish(pool, threads);
    }
}

static void *worker(void *arg) {
    (void)arg;
    uint32_t seen = 0;
    int slept;
    for (;;) {
        const uint32_t gen = tern_pool_wait_job(pool, seen, 1u << 15, &slept);
        if (tern_pool_stopping(pool)) return NULL;
        claim_parts(seen = gen);
    }
}

static void dispatch(const matrix *m, int n) {
    if (threads == 1) { run_part(m, n, 0, 1); return; }
    job_m = m, job_n = n;
    tern_pool_publish(pool, ++job_gen, threads);
    claim_parts(job_gen);
    tern_pool_wait_done(pool, threads, 1u << 15);
}

// The plain read of n words, each of the pool's threads reading a contiguous share.
static uint64_t read_all(const uint64_t *p, size_t n) {
    read_p = p, read_n = n;
    dispatch(NULL, 0);
    uint64_t s = 0;
    for (int i = 0; i < threads; i++) s ^= read_sink[i];
    return s;
}

int main(int argc, char **argv) {
    int layers = 30, width = 576, kv = 192, ffn = 1536, vocab = 49152;
    if (argc >= 3 && !strcmp(argv[1], "-t")) {
        threads = atoi(argv[2]);
        argc -= 2, argv += 2;
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "gemv: -t takes 1 to 64 threads\n");
            return 2;
        }
    }
    if (argc == 6) {
        layers = atoi(argv[1]), width = atoi(argv[2]), kv = atoi(argv[3]), ffn = atoi(argv[4]), vocab = atoi(argv[5]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [LAYERS WIDTH KV FFN VOCAB]\n", argv[0]);
        return 2;
    }
    if (layers < 1 || layers > 1000 || width < 32 || width % 32 || kv < 4 || ffn < 32 || ffn % 32 || vocab < 4 ||
        width > 1 << 16 || kv > 1 << 16 || ffn > 1 << 17 || vocab > 1 << 20) {
        fprintf(stderr, "gemv: shapes out of range (WIDTH and FFN multiples of 32)\n");
        return 2;
    }
    const int avx512 = tern_cpu_has_avx512vnni();
    if (!avx512 && !tern_cpu_has_avx2()) {
        fprintf(stderr, "gemv: needs AVX2\n");
        return 2;
    }
    q4 = avx512 ? tern_gemm_q4_avx512vnni : tern_gemm_q4_avx2;
    q8 = avx512 ? tern_gemm_q8_avx512vnni : tern_gemm_q8_avx2;
    // q, k, v, o, gate, up, down (rows x cols), then the head
    const int shapes[7][2] = {{width, width}, {kv, width}, {kv, width}, {width, width}, {ffn, width}, {ffn, width}, {width, ffn}};
    const int count = 7 * layers + 1;
    matrix *m = calloc(count, sizeof(matrix));
    for (int i = 0; i < count; i++) {
        const int head = i == count - 1;
        m[i].rows = head ? vocab : shapes[i % 7][0];
        m[i].cols = head ? width : shapes[i % 7][1];
        m[i].q8 = head;
        m[i].group_bytes = m[i].cols / 32 * (head ? 136 : 80);
    }
    size_t total = 0;
    for (int i = 0; i < count; i++) total += (size_t)((m[i].rows + 3) / 4) * m[i].group_bytes;
    const size_t alloc = (total + (2 << 20) - 1) / (2 << 20) * (2 << 20);
    uint8_t *buf = aligned_alloc(2 << 20, alloc);
    if (!buf) return 1;
    madvise(buf, alloc, MADV_HUGEPAGE);  // as Tern maps its weights where Linux gives 2 MiB pages
    for (size_t i = 0; i < total; i++) buf[i] = (uint8_t)((i * 2654435761u) >> 13);
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        uint8_t *w = buf + off;
        m[i].w = w;
        const int blocks = m[i].cols / 32, bb = m[i].q8 ? 136 : 80, halves = m[i].q8 ? 4 : 8;
        for (int g = 0; g < (m[i].rows + 3) / 4; g++)
            for (int k = 0; k < blocks; k++)
                for (int j = 0; j < halves; j++) {
                    const uint16_t h = 0x2C00;  // 1/16: each block's factors (and q4 mins) finite
                    memcpy(w + g * m[i].group_bytes + k * bb + 2 * j, &h, 2);
                }
        off += (size_t)((m[i].rows + 3) / 4) * m[i].group_bytes;
    }
    const int cols = ffn > width ? ffn : width;
    int8_t *aq = aligned_alloc(64, (cols + 63) / 64 * 64);
    float *scale = calloc(cols / 32, 4), *ssum = calloc(cols / 32, 4);
    int32_t *bias = calloc(2 * (cols / 32), 4), *hoff = calloc(2 * (cols / 32), 4);
    out = calloc(vocab > ffn ? vocab : ffn, 4);
    for (int i = 0; i < cols; i++) aq[i] = (int8_t)(i * 7 % 200 - 100);
    for (int i = 0; i < cols / 32; i++) scale[i] = 0.01f, ssum[i] = 1;
    int16_t *bsum = calloc(cols / 32, 2);  // the per-256 form (AVX2 q4k) shares q and the factors
    acts = (tern_acts){aq, scale, ssum, bias, hoff, cols, cols / 32, aq, scale, ssum, bsum, aq};  // q6_q: the same bytes
    pool = tern_pool_sync_create();
    pthread_t workers[64];
    for (int i = 1; i < threads; i++) pthread_create(&workers[i], NULL, worker, NULL);
    double read = 1e9, gemv = 1e9;
    long sink = 0;
    for (int pass = 0; pass < 8; pass++) {
        double t0 = now();
        sink += (long)read_all((const uint64_t *)buf, total / 8);  // tern bench's roofline loop
        double t1 = now();
        if (t1 - t0 < read) read = t1 - t0;
        t0 = now();
        for (int l = 0; l < layers; l++) {  // Q/K/V, O, gate/up, down: Tern's four dispatches a layer
            const matrix *L = m + 7 * l;
            dispatch(L, 3), dispatch(L + 3, 1), dispatch(L + 4, 2), dispatch(L + 6, 1);
        }
        dispatch(m + count - 1, 1);
        t1 = now();
        if (t1 - t0 < gemv) gemv = t1 - t0;
    }
    tern_pool_stop(pool);
    for (int i = 1; i < threads; i++) pthread_join(workers[i], NULL);
    printf("%s, %d thread(s), %d layers (width %d, kv %d, ffn %d, vocab %d): %.1f MB of weights\n",
           avx512 ? "avx512vnni" : "avx2", threads, layers, width, kv, ffn, vocab, total / 1e6);
    printf("plain read %.1f GB/s; matrix products %.1f GB/s (%.2f ms a step): %.0f%% of the read%s\n", total / read / 1e9,
           total / gemv / 1e9, gemv * 1e3, 100 * read / gemv, sink == 42 ? " " : "");  // sink: the read is used
    return 0;
}
