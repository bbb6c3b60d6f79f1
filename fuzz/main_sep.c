/* SPDX-License-Identifier: MIT */
/* libFuzzer entry point for fuzz_sep (see fuzz/fuzz.h): every decoder of
 * the daemon <-> analysis process protocol (daemon/core/sepmsg.c) and the
 * check of the files the daemon opens for it; 'make fuzz'. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_sep(data, size);
}
