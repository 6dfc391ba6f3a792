/* Thread-pool synchronisation words and futex waits (see tern_pool.h). */
#define _GNU_SOURCE
#include "tern_pool.h"
#include "tern_kernels.h"
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

struct tern_pool_sync {
    _Alignas(64) uint64_t state;  /* (generation << 32) | parts not yet claimed */
    _Alignas(64) uint32_t gen;    /* futex word workers sleep on: the newest generation */
    uint32_t sleepers;            /* workers asleep (or about to be) on `gen` */
    uint32_t stop;
    uint32_t rest;                /* tern_pool_rest: waiting workers sleep now instead of spinning */
    _Alignas(64) uint32_t done;   /* futex word the caller sleeps on: parts finished */
    uint32_t caller_waiting;
};

static void futex_wait(uint32_t *addr, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr; (void)expected;
    sched_yield();
#endif
}

static void futex_wake(uint32_t *addr, int n) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
#else
    (void)addr; (void)n;
#endif
}

tern_pool_sync *tern_pool_sync_create(void) {
    tern_pool_sync *s = aligned_alloc(64, sizeof(tern_pool_sync));
    if (s) {
        s->state = 0; s->gen = 0; s->sleepers = 0; s->stop = 0; s->rest = 0; s->done = 0; s->caller_waiting = 0;
    }
    return s;
}

void tern_pool_sync_destroy(tern_pool_sync *s) { free(s); }

void tern_pool_publish(tern_pool_sync *s, uint32_t gen, uint32_t parts) {
    __atomic_store_n(&s->rest, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->state, ((uint64_t)gen << 32) | parts, __ATOMIC_RELEASE);
    /* Sequentially consistent with the sleepers count: a worker increments `sleepers`, then
     * re-reads `gen` before sleeping, so either it sees this job or this sees it and wakes it. */
    __atomic_store_n(&s->gen, gen, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->sleepers, __ATOMIC_SEQ_CST) > 0) futex_wake(&s->gen, INT_MAX);
}

int64_t tern_pool_claim(tern_pool_sync *s, uint32_t gen) {
    uint64_t cur = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((uint32_t)(cur >> 32) != gen || (uint32_t)cur == 0) return -1;
        if (__atomic_compare_exchange_n(&s->state, &cur, cur - 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int64_t)(uint32_t)(cur - 1);
    }
}

void tern_pool_finish(tern_pool_sync *s, uint32_t parts) {
    uint32_t d = __atomic_add_fetch(&s->done, 1, __ATOMIC_SEQ_CST);
    if (d == parts && __atomic_load_n(&s->caller_waiting, __ATOMIC_SEQ_CST)) futex_wake(&s->done, 1);
}

int tern_pool_wait_done(tern_pool_sync *s, uint32_t parts, uint32_t spin) {
    for (uint32_t i = 0; i < spin; i++) {
        if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) == parts) return 0;
        tern_cpu_relax();
    }
    __atomic_store_n(&s->caller_waiting, 1, __ATOMIC_SEQ_CST);
    uint32_t d;
    while ((d = __atomic_load_n(&s->done, __ATOMIC_SEQ_CST)) != parts) futex_wait(&s->done, d);
    __atomic_store_n(&s->caller_waiting, 0, __ATOMIC_RELAXED);
    return 1;
}

uint32_t tern_pool_wait_job(tern_pool_sync *s, uint32_t seen, uint32_t spin, int *slept) {
    *slept = 0;
    uint32_t g;
    for (uint32_t i = 0; i < spin; i++) {
        if ((g = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE)) != seen) return g;
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) return seen;
        if (__atomic_load_n(&s->rest, __ATOMIC_RELAXED)) break;
        tern_cpu_relax();
    }
    *slept = 1;
    __atomic_add_fetch(&s->sleepers, 1, __ATOMIC_SEQ_CST);
    while ((g = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST)) == seen && !__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST))
        futex_wait(&s->gen, seen);
    __atomic_sub_fetch(&s->sleepers, 1, __ATOMIC_SEQ_CST);
    return g;
}

void tern_pool_rest(tern_pool_sync *s) { __atomic_store_n(&s->rest, 1, __ATOMIC_RELAXED); }

void tern_pool_stop(tern_pool_sync *s) {
    __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
    /* Bump the futex word too, so a worker between its check and its sleep cannot miss this. */
    __atomic_add_fetch(&s->gen, 0x80000000u, __ATOMIC_SEQ_CST);
    futex_wake(&s->gen, INT_MAX);
}

int tern_pool_stopping(const tern_pool_sync *s) { return (int)__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); }

int tern_available_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
