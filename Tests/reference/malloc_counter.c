/* LD_PRELOAD malloc counter for the allocation-free decode test: prints "mallocs: N" at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
static atomic_size_t n;
extern void *__libc_malloc(size_t);
void *malloc(size_t s) { atomic_fetch_add(&n, 1); return __libc_malloc(s); }
__attribute__((destructor)) static void fin(void) { fprintf(stderr, "mallocs: %zu\n", (size_t)n); }
