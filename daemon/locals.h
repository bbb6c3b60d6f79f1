/* SPDX-License-Identifier: MIT */
/*
 * Local variables and parameters of native frames, from DWARF location
 * expressions evaluated against the unwound registers and the copied stack.
 * See locals.c.
 */
#ifndef DOGSLOWD_LOCALS_H
#define DOGSLOWD_LOCALS_H

#include <elfutils/libdw.h>

#include "dogslowd.h"
#include "remote.h"

/* Bounds for one report. */
#define LOCALS_VARS_PER_FRAME 64
#define LOCALS_VARS_PER_REPORT 2048
#define LOCALS_READ_BUDGET (512u * 1024u) /* bytes read from the worker */
#define LOCALS_ARRAY_ITEMS 8
#define LOCALS_STRUCT_MEMBERS 16

struct locals_ctx {
    const struct config *cfg;
    struct worker *w;
    const struct snapshot *s;
    struct remote_mem mem; /* the stack copy first, then the live process */
    unsigned vars_total;
    size_t value_max; /* characters per value */
};

void locals_begin(struct locals_ctx *lc, const struct config *cfg, struct worker *w,
                  const struct snapshot *s);
void locals_end(struct locals_ctx *lc);

/*
 * Collect the variables visible in scopes[from..to] (to is the function or
 * inlined-function scope, lower indexes are lexical blocks inside it) at
 * the CU-relative address pc, into out->vars.  subprogram gives the frame
 * base; fr holds this frame's registers, caller the caller's (for the CFA).
 */
void locals_collect(struct locals_ctx *lc, Dwarf_Die *cu, Dwarf_Die *scopes, int from, int to,
                    Dwarf_Die *subprogram, Dwarf_Addr pc, Dwarf_Addr bias,
                    const struct frame *fr, const struct frame *caller, struct symframe *out);

/* True when a variable of this name must not be shown: its name contains
 * one of the words of c->redact (any case; the built-in list if c is
 * NULL). */
bool locals_redacted(const struct config *c, const char *name);
/* True when a shown value holds what looks like a payment card number
 * (13 to 19 digits, spaces or dashes between, passing the Luhn check). */
bool locals_card_number(const char *value);

/* Fuzzing entry (fuzz/): evaluate a DWARF expression, registers and a
 * memory image all taken from data.  Never crashes; returns 0. */
int locals_fuzz_eval(const uint8_t *data, size_t size);

#endif
