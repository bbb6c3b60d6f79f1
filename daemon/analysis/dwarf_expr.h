/* SPDX-License-Identifier: MIT */
/*
 * DWARF location expressions (dwarf_expr.c): where a variable lives at a
 * given pc, for locals.c, which then reads and formats it by its type.
 *
 * Private to the analysis layer: included by its own files and by the
 * tests and fuzz harnesses that need it; other layers see only analysis.h.
 */
#ifndef DOGSLOWD_DWARF_EXPR_H
#define DOGSLOWD_DWARF_EXPR_H

#include <elfutils/libdw.h>

#include "analysis.h"

/* What a location expression came to. */
enum loc_kind { LOC_NONE, LOC_MEM, LOC_VALUE, LOC_OPTIMIZED, LOC_UNAVAILABLE, LOC_SYNTHETIC };

struct loc {
    enum loc_kind kind;
    uint64_t addr;     /* LOC_MEM */
    uint8_t bytes[32]; /* LOC_VALUE */
    size_t len;
    const char *why; /* for LOC_UNAVAILABLE */
};

/* What an expression is evaluated against: one frame as the unwinder
 * recovered it, and its caller (whose stack pointer is the CFA). */
struct eval_env {
    struct locals_ctx *lc; /* its remote_mem serves DW_OP_deref */
    const struct frame *fr;
    const struct frame *caller;
    Dwarf_Die *subprogram; /* for DW_AT_frame_base (DW_OP_fbreg) */
    Dwarf_Addr pc, bias;
    int depth; /* frame-base recursion guard */
};

/*
 * Evaluate the n operations ops (of attr, which DW_OP_implicit_value needs;
 * may be NULL) into out.  Bounded whatever the worker's DWARF says: at most
 * EVAL_OPS operations, an evaluation stack of EVAL_STACK, reads through the
 * budgeted e->lc->mem.  A failure is a LOC_UNAVAILABLE with its reason.
 */
void eval_expr(struct eval_env *e, Dwarf_Attribute *attr, const Dwarf_Op *ops, size_t n,
               struct loc *out);

#endif
