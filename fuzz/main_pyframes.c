/* SPDX-License-Identifier: MIT */
/* libFuzzer entry point for the CPython frame reader (analysis.h:
 * pyframes_fuzz_one, in daemon/analysis/py_fuzz.c: a fake address space in
 * the 3.11/3.12/3.13 layouts; replayed in make check by
 * tests/check_pyframes); 'make fuzz'. */
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return pyframes_fuzz_one(data, size);
}
