/* SPDX-License-Identifier: MIT */
/* libFuzzer entry point for fuzz_config (see fuzz/fuzz.h); 'make fuzz'. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_config(data, size);
}
