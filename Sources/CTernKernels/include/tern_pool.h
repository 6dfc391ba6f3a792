/* Synchronisation words of Tern's thread pool (TernKernels/ThreadPool.swift): C11-style atomics
 * on one cache-line-padded struct, and Linux futexes to sleep on them, so a waiting thread
 * leaves its core to whoever can use it (another worker, another program).
 *
 * A job is split into parts that threads claim one at a time: `state` holds the job's
 * generation (high 32 bits) and the number of parts not yet claimed (low 32 bits), so a thread
 * that arrives late for a job (descheduled, or woken after the others finished) claims nothing
 * and does no harm; the caller never waits for a thread that has not started. */
#ifndef TERN_POOL_H
#define TERN_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_pool_sync tern_pool_sync;

tern_pool_sync *tern_pool_sync_create(void);
void tern_pool_sync_destroy(tern_pool_sync *s);

/* Publishes job `gen` (> every earlier one) with `parts` parts and wakes sleeping workers. */
void tern_pool_publish(tern_pool_sync *s, uint32_t gen, uint32_t parts);
/* Claims one part of job `gen`: its index (parts are handed out from the last down), or -1 when
 * the job has no unclaimed part left or is not the current one. */
int64_t tern_pool_claim(tern_pool_sync *s, uint32_t gen);
/* Reports one claimed part finished; wakes the caller if it sleeps and this was the last. */
void tern_pool_finish(tern_pool_sync *s, uint32_t parts);
/* Waits until `parts` parts are finished: spins `spin` times, then sleeps. Returns 1 if it slept. */
int tern_pool_wait_done(tern_pool_sync *s, uint32_t parts, uint32_t spin);
/* Waits for a job newer than `seen` or for the stop flag: spins `spin` times, then sleeps.
 * Returns the current generation (== seen only when stopping); *slept tells whether it slept. */
uint32_t tern_pool_wait_job(tern_pool_sync *s, uint32_t seen, uint32_t spin, int *slept);
/* Tells workers spinning for a job to sleep now: the caller will not publish one for a while.
 * The next tern_pool_publish clears it (and wakes them). */
void tern_pool_rest(tern_pool_sync *s);
/* Sets the stop flag and wakes every worker. */
void tern_pool_stop(tern_pool_sync *s);
int tern_pool_stopping(const tern_pool_sync *s);

/* Logical CPUs this process may run on (sched_getaffinity), at least 1. */
int tern_available_cpus(void);

#ifdef __cplusplus
}
#endif
#endif
