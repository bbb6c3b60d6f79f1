/* SPDX-License-Identifier: MIT */
/*
 * DWARF location expressions: a small stack machine that runs a variable's
 * DW_OP_* program against one frame's registers (all of them in the
 * innermost frame, the callee-saved ones and the stack pointer in outer
 * frames, as the unwinder recovered them) and the CFA (the caller's stack
 * pointer).  The result is a memory address, a register's value, or a
 * computed value (struct loc); locals.c reads and shows the bytes by type.
 *
 * The program is the worker's: its length, the evaluation stack and the
 * memory it dereferences (through the budgeted reader of struct
 * locals_ctx) are bounded, and anything this machine does not know ends the
 * evaluation as "unavailable", never the report.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dwarf.h>

#include "dwarf_expr.h"
#include "util.h"

/* ---- the evaluator ------------------------------------------------------ */

#define EVAL_STACK 64
#define EVAL_OPS   256

static bool reg_value(const struct eval_env *e, unsigned r, uint64_t *ret)
{
    if (r >= DSL_NREGS || !(e->fr->regs_known & (1u << r)))
        return false;
    *ret = e->fr->regs[r];
    return true;
}

static bool cfa(const struct eval_env *e, uint64_t *ret)
{
    /* The CFA is the stack pointer of the caller just after the call
     * returns; the unwinder computed exactly that for the caller's frame. */
    if (!e->caller || !(e->caller->regs_known & (1u << DSL_REG_RSP)))
        return false;
    *ret = e->caller->regs[DSL_REG_RSP];
    return true;
}

static bool frame_base(struct eval_env *e, uint64_t *ret)
{
    Dwarf_Attribute attr;
    Dwarf_Op *ops;
    size_t n;
    struct loc l = {0};

    if (!e->subprogram || e->depth > 0 ||
        !dwarf_attr_integrate(e->subprogram, DW_AT_frame_base, &attr))
        return false;
    if (dwarf_getlocation_addr(&attr, e->pc, &ops, &n, 1) != 1)
        return false;
    e->depth++;
    eval_expr(e, &attr, ops, n, &l);
    e->depth--;
    /* A frame base is an address: a memory location result is that
     * address; a register location means the register's contents. */
    if (l.kind == LOC_MEM) {
        *ret = l.addr;
        return true;
    }
    if (l.kind == LOC_VALUE && l.len == 8) {
        memcpy(ret, l.bytes, 8);
        return true;
    }
    return false;
}

static void set_unavailable(struct loc *out, const char *why)
{
    out->kind = LOC_UNAVAILABLE;
    out->why = why;
}

void eval_expr(struct eval_env *e, Dwarf_Attribute *attr, const Dwarf_Op *ops, size_t n,
               struct loc *out)
{
    uint64_t st[EVAL_STACK];
    int sp = 0;
    bool stack_value = false;
    struct loc pieces = {.kind = LOC_NONE};
    size_t pieces_len = 0;
    bool pieced = false;
    int reg_result = -1;
    uint64_t v, a, b;

#define PUSH(x)                                                                                    \
    do {                                                                                           \
        uint64_t push_v_ = (x);                                                                    \
        if (sp >= EVAL_STACK) {                                                                    \
            set_unavailable(out, "expression too deep");                                           \
            return;                                                                                \
        }                                                                                          \
        st[sp++] = push_v_;                                                                        \
    } while (0)
#define POP(x)                                                                                     \
    do {                                                                                           \
        if (sp <= 0) {                                                                             \
            set_unavailable(out, "bad expression");                                                \
            return;                                                                                \
        }                                                                                          \
        (x) = st[--sp];                                                                            \
    } while (0)

    memset(out, 0, sizeof(*out));
    if (n == 0 || n > EVAL_OPS) {
        out->kind = LOC_OPTIMIZED;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Dwarf_Op *op = &ops[i];
        uint8_t atom = op->atom;

        if (atom >= DW_OP_lit0 && atom <= DW_OP_lit31) {
            PUSH((uint64_t)(atom - DW_OP_lit0));
            continue;
        }
        if (atom >= DW_OP_reg0 && atom <= DW_OP_reg31) {
            reg_result = atom - DW_OP_reg0;
            goto piece_or_end;
        }
        if (atom >= DW_OP_breg0 && atom <= DW_OP_breg31) {
            if (!reg_value(e, atom - DW_OP_breg0, &v)) {
                set_unavailable(out, "register not saved in this frame");
                return;
            }
            PUSH(v + (uint64_t)(int64_t)op->number);
            continue;
        }
        switch (atom) {
        case DW_OP_regx:
            reg_result = (int)(op->number > 255 ? 255 : op->number);
            goto piece_or_end;
        case DW_OP_bregx:
            if (!reg_value(e, (unsigned)(op->number > 255 ? 255 : op->number), &v)) {
                set_unavailable(out, "register not saved in this frame");
                return;
            }
            PUSH(v + (uint64_t)(int64_t)op->number2);
            break;
        case DW_OP_addr:
            PUSH(op->number + e->bias);
            break;
        case DW_OP_const1u: case DW_OP_const2u: case DW_OP_const4u: case DW_OP_const8u:
        case DW_OP_constu:
        case DW_OP_const1s: case DW_OP_const2s: case DW_OP_const4s: case DW_OP_const8s:
        case DW_OP_consts:
            PUSH(op->number);
            break;
        case DW_OP_fbreg:
            if (!frame_base(e, &v)) {
                set_unavailable(out, "frame base unknown");
                return;
            }
            PUSH(v + (uint64_t)(int64_t)op->number);
            break;
        case DW_OP_call_frame_cfa:
            if (!cfa(e, &v)) {
                set_unavailable(out, "frame address unknown");
                return;
            }
            PUSH(v);
            break;
        case DW_OP_dup:
            POP(a);
            PUSH(a);
            PUSH(a);
            break;
        case DW_OP_drop:
            POP(a);
            break;
        case DW_OP_over:
            if (sp < 2) {
                set_unavailable(out, "bad expression");
                return;
            }
            PUSH(st[sp - 2]);
            break;
        case DW_OP_pick:
            if (op->number >= (uint64_t)sp) {
                set_unavailable(out, "bad expression");
                return;
            }
            PUSH(st[sp - 1 - (int)op->number]);
            break;
        case DW_OP_swap:
            POP(a);
            POP(b);
            PUSH(a);
            PUSH(b);
            break;
        case DW_OP_deref: {
            POP(a);
            if (remote_read_type(&e->lc->mem, a, &v) < 0) {
                set_unavailable(out, "unreadable");
                return;
            }
            PUSH(v);
            break;
        }
        case DW_OP_deref_size: {
            uint64_t x = 0;
            size_t k = op->number > 8 ? 8 : (size_t)op->number;
            POP(a);
            if (k == 0 || remote_read(&e->lc->mem, a, &x, k) < 0) {
                set_unavailable(out, "unreadable");
                return;
            }
            PUSH(x);
            break;
        }
        case DW_OP_plus_uconst:
            POP(a);
            PUSH(a + op->number);
            break;
        case DW_OP_plus: POP(b); POP(a); PUSH(a + b); break;
        case DW_OP_minus: POP(b); POP(a); PUSH(a - b); break;
        case DW_OP_mul: POP(b); POP(a); PUSH(a * b); break;
        case DW_OP_and: POP(b); POP(a); PUSH(a & b); break;
        case DW_OP_or: POP(b); POP(a); PUSH(a | b); break;
        case DW_OP_xor: POP(b); POP(a); PUSH(a ^ b); break;
        case DW_OP_shl: POP(b); POP(a); PUSH(b < 64 ? a << b : 0); break;
        case DW_OP_shr: POP(b); POP(a); PUSH(b < 64 ? a >> b : 0); break;
        case DW_OP_shra: POP(b); POP(a); PUSH(b < 64 ? (uint64_t)((int64_t)a >> b) : 0); break;
        case DW_OP_neg: POP(a); PUSH((uint64_t)(-(int64_t)a)); break;
        case DW_OP_not: POP(a); PUSH(~a); break;
        case DW_OP_abs: POP(a); PUSH((int64_t)a < 0 ? (uint64_t)(-(int64_t)a) : a); break;
        case DW_OP_div:
            POP(b);
            POP(a);
            if (b == 0 || ((int64_t)b == -1 && (int64_t)a == INT64_MIN)) {
                set_unavailable(out, "bad expression");
                return;
            }
            PUSH((uint64_t)((int64_t)a / (int64_t)b));
            break;
        case DW_OP_mod:
            POP(b);
            POP(a);
            if (b == 0) {
                set_unavailable(out, "bad expression");
                return;
            }
            PUSH(a % b);
            break;
        case DW_OP_stack_value:
            stack_value = true;
            goto piece_or_end;
        case DW_OP_implicit_value: {
            Dwarf_Block blk;
            if (!attr || dwarf_getlocation_implicit_value(attr, op, &blk) != 0) {
                set_unavailable(out, "bad expression");
                return;
            }
            out->kind = LOC_VALUE;
            out->len = blk.length > sizeof(out->bytes) ? sizeof(out->bytes) : blk.length;
            memcpy(out->bytes, blk.data, out->len);
            if (i + 1 < n && ops[i + 1].atom == DW_OP_piece && !pieced)
                return; /* a single piece of an implicit value: good enough */
            return;
        }
        case DW_OP_implicit_pointer:
        case DW_OP_GNU_implicit_pointer:
            out->kind = LOC_SYNTHETIC;
            return;
        case DW_OP_entry_value:
        case DW_OP_GNU_entry_value:
        case DW_OP_GNU_parameter_ref:
            out->kind = LOC_OPTIMIZED;
            return;
        case DW_OP_piece:
            /* A piece with nothing before it is a part that is gone. */
            pieced = true;
            if (op->number == 0 || pieces_len + op->number > sizeof(pieces.bytes)) {
                set_unavailable(out, "value in pieces");
                return;
            }
            memset(pieces.bytes + pieces_len, 0, op->number);
            pieces_len += op->number;
            break;
        case DW_OP_nop:
            break;
        default:
            set_unavailable(out, "unsupported expression");
            return;
        }
        continue;

    piece_or_end:
        /* A register or stack value ends a simple location or one piece. */
        if (i + 1 < n && ops[i + 1].atom == DW_OP_piece) {
            size_t k = ops[i + 1].number;
            pieced = true;
            if (k == 0 || pieces_len + k > sizeof(pieces.bytes)) {
                set_unavailable(out, "value in pieces");
                return;
            }
            if (reg_result >= 0) {
                if (!reg_value(e, (unsigned)reg_result, &v)) {
                    set_unavailable(out, "register not saved in this frame");
                    return;
                }
            } else if (stack_value) {
                POP(v);
            } else {
                set_unavailable(out, "value in pieces");
                return;
            }
            memcpy(pieces.bytes + pieces_len, &v, k > 8 ? 8 : k);
            pieces_len += k;
            reg_result = -1;
            stack_value = false;
            i++;
            continue;
        }
        break;
    }
#undef PUSH
#undef POP

    if (pieced) {
        out->kind = LOC_VALUE;
        memcpy(out->bytes, pieces.bytes, pieces_len);
        out->len = pieces_len;
        return;
    }
    if (reg_result >= 0) {
        if (!reg_value(e, (unsigned)reg_result, &v)) {
            set_unavailable(out, "register not saved in this frame");
            return;
        }
        out->kind = LOC_VALUE;
        memcpy(out->bytes, &v, 8);
        out->len = 8;
        return;
    }
    if (sp == 0) {
        out->kind = LOC_OPTIMIZED;
        return;
    }
    if (stack_value) {
        out->kind = LOC_VALUE;
        memcpy(out->bytes, &st[sp - 1], 8);
        out->len = 8;
        return;
    }
    out->kind = LOC_MEM;
    out->addr = st[sp - 1];
}

/* ---- fuzzing entry ------------------------------------------------------ */

struct blob {
    const uint8_t *p;
    size_t len;
    uint64_t base;
};

static int blob_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct blob *b = ctx;

    if (addr < b->base || addr - b->base > b->len || len > b->len - (addr - b->base))
        return -EFAULT;
    memcpy(buf, b->p + (addr - b->base), len);
    return 0;
}

int locals_fuzz_eval(const uint8_t *data, size_t size)
{
    struct frame fr = {0}, caller = {0};
    struct locals_ctx lc = {0};
    struct eval_env env = {.lc = &lc, .fr = &fr, .caller = &caller};
    struct blob mem;
    Dwarf_Op ops[EVAL_OPS + 1];
    struct loc out;
    size_t n = 0, off = 0;

    /* Registers and which of them are known, for this frame and the
     * caller; then a memory image at 0x1000; then the operations. */
    if (size < 2 * (sizeof(fr.regs) + 4) + 2)
        return 0;
    memcpy(fr.regs, data, sizeof(fr.regs));
    off += sizeof(fr.regs);
    memcpy(&fr.regs_known, data + off, 4);
    off += 4;
    memcpy(caller.regs, data + off, sizeof(caller.regs));
    off += sizeof(caller.regs);
    memcpy(&caller.regs_known, data + off, 4);
    off += 4;
    size_t memlen = data[off] | (size_t)data[off + 1] << 8;
    off += 2;
    if (memlen > size - off)
        memlen = size - off;
    mem = (struct blob){.p = data + off, .len = memlen, .base = 0x1000};
    off += memlen;
    lc.mem.read = blob_read;
    lc.mem.ctx = &mem;
    lc.mem.budget = LOCALS_READ_BUDGET;
    lc.value_max = 256;
    while (n < ARRAY_SIZE(ops) && size - off >= 17) {
        ops[n].atom = data[off];
        memcpy(&ops[n].number, data + off + 1, 8);
        memcpy(&ops[n].number2, data + off + 9, 8);
        ops[n].offset = off;
        off += 17;
        n++;
    }
    eval_expr(&env, NULL, ops, n, &out);
    /* Strings through the same memory: bounded, terminated. */
    if (out.kind == LOC_MEM) {
        char buf[300];
        int r = remote_read_cstr(&lc.mem, out.addr, buf, sizeof(buf));
        if (r >= 0 && (size_t)r >= sizeof(buf))
            abort();
    }
    return 0;
}
