/* libFuzzer's driver entry point (from libclang_rt.fuzzer_no_main): the harnesses' own main
 * calls it, so they build as ordinary executables with coverage instrumentation. */
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
