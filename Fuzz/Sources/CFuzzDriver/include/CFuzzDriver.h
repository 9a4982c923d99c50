// libFuzzer's entry point for programs that keep their own `main` (LLVM LibFuzzer docs,
// "Using libFuzzer as a library"): runs the fuzzing loop with `callback` as the target.
#ifndef BYST_CFUZZDRIVER_H
#define BYST_CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
