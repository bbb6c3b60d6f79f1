/* SPDX-License-Identifier: MIT */
/*
 * Fuzz targets for every parser of hostile input.  Each is a plain function
 * so the same code runs under libFuzzer ('make fuzz', clang) and as an
 * ordinary Check test that replays a corpus and generated inputs
 * (tests/check_fuzz.c, part of 'make check').
 */
#ifndef DOGSLOW_FUZZ_H
#define DOGSLOW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int fuzz_proto(const uint8_t *data, size_t size);      /* socket protocol */
int fuzz_scoreboard(const uint8_t *data, size_t size); /* the shared page */
int fuzz_cstr(const uint8_t *data, size_t size);       /* remote strings */
int fuzz_dwarf_expr(const uint8_t *data, size_t size); /* DWARF locations */
int fuzz_config(const uint8_t *data, size_t size);     /* dogslow.conf */
int fuzz_sep(const uint8_t *data, size_t size);        /* the analysis process's protocol */

#endif
