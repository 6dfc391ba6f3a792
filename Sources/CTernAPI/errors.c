/* The per-thread last-error buffer behind tern_last_error(). */
#include <string.h>
#include "tern.h"

static _Thread_local char last_error[1024];

void tern_internal_set_error(const char *message, size_t len);

void tern_internal_set_error(const char *message, size_t len) {
    if (len >= sizeof last_error) len = sizeof last_error - 1;
    if (message && len) memcpy(last_error, message, len);
    last_error[len] = 0;
}

const char *tern_last_error(void) { return last_error; }
