/* The per-thread last-error buffer behind tern_last_error(). A pthread key rather than
 * _Thread_local: SwiftPM may compile this file without -fPIC, and the initial-/local-exec TLS
 * that gives cannot be linked into libternc.so on every target (aarch64:
 * R_AARCH64_TLSLE_ADD_TPREL_HI12 cannot be used with -shared). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "tern.h"

enum { capacity = 1024 };
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;

static void make_key(void) { key_ok = pthread_key_create(&key, free) == 0; }

/* This thread's buffer (allocated on first use), or NULL if that fails. */
static char *buffer(void) {
    pthread_once(&once, make_key);
    if (!key_ok) return NULL;
    char *b = pthread_getspecific(key);
    if (!b && (b = calloc(1, capacity)) != NULL && pthread_setspecific(key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

void tern_internal_set_error(const char *message, size_t len);

void tern_internal_set_error(const char *message, size_t len) {
    char *b = buffer();
    if (!b) return;
    if (len >= capacity) len = capacity - 1;
    if (message && len) memcpy(b, message, len);
    b[len] = 0;
}

const char *tern_last_error(void) {
    const char *b = buffer();
    return b ? b : "";
}
