/* SPDX-License-Identifier: MIT */
/*
 * The CPython reader's private header: what its files (py_*.c) share and
 * nothing else may use.  The reader's interface is in analysis.h, its data
 * types (struct py_runtime, py_stack, ...) in core.h; docs/pyframes.md says
 * how it fits the snapshot.
 *
 *   py_offsets.c   the struct offsets of each version, _Py_DebugOffsets
 *   py_runtime.c   finding the runtime in a process (ELF, /proc/PID/maps)
 *   py_objects.c   reading and rendering objects (values, names, types)
 *   py_linetable.c line numbers from a code object's location table
 *   py_walk.c      the stack walk: py_capture(), py_finish()
 *   py_fuzz.c      the fuzz entry point
 *
 * Everything here reads hostile memory: each pointer is read through
 * remote_read() (a short read is a failure), each count is capped before
 * it sizes anything, each type is compared with the address of the real
 * type object before the object is interpreted, and every walk has a hard
 * bound.  The worst a corrupt or malicious worker gets is a short or odd
 * report about itself.
 *
 * Reads go through capture's page cache (remote.c): one per daemon thread,
 * kept from py_capture() to py_finish().
 */
#ifndef DOGSLOWD_PY_H
#define DOGSLOWD_PY_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"
#include "textbuf.h"

/* An offset the version does not have. */
#define NONE32 UINT32_MAX

/* A type's name, read from the worker (and its room once escaped). */
#define TYPE_NAME_MAX 96

/* ------------------------------------------------------------------------
 * Reading objects
 * ------------------------------------------------------------------------ */

enum kind {
    K_OTHER, K_CODE, K_CELL, K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES,
    K_TUPLE, K_LIST, K_DICT, K_SET, K_FROZENSET,
};

/* One read of a stack (py_walk.c's ctx_init). */
struct ctx {
    const struct py_runtime *rt;
    const struct py_offsets *o;
    struct remote_mem mem; /* through the page cache */
    struct remote_cache *pc;
    const struct py_limits *lim;
    bool defer_types;      /* held: types' names are marked, named later */
};

static inline int rd(struct ctx *c, uint64_t addr, void *buf, size_t len)
{
    return remote_read(&c->mem, addr, buf, len);
}

static inline int rd_ptr(struct ctx *c, uint64_t addr, uint64_t *ret)
{
    return rd(c, addr, ret, sizeof(*ret));
}

/* Objects are 8-byte aligned; anything else is not an object pointer. */
static inline bool plausible(uint64_t addr)
{
    return addr >= 4096 && (addr & 7) == 0 && addr < ((uint64_t)1 << 56);
}

static inline enum kind kind_of_type(const struct ctx *c, uint64_t type)
{
    const struct py_types *t = &c->rt->types;

    if (!type)
        return K_OTHER;
#define K(field, k)       \
    if (type == t->field) \
        return k
    K(str, K_STR);
    K(integer, K_INT);
    K(none, K_NONE);
    K(boolean, K_BOOL);
    K(floating, K_FLOAT);
    K(list, K_LIST);
    K(dict, K_DICT);
    K(tuple, K_TUPLE);
    K(bytes, K_BYTES);
    K(set, K_SET);
    K(frozenset, K_FROZENSET);
    K(code, K_CODE);
    K(cell, K_CELL);
#undef K
    return K_OTHER;
}

static inline int type_of(struct ctx *c, uint64_t obj, uint64_t *ret_type)
{
    if (!plausible(obj))
        return -EFAULT;
    return rd_ptr(c, obj + c->o->ob_type, ret_type);
}

/* Copy text into the stack's arena; NULL when it is full. */
static inline const char *arena_add(struct py_stack *s, const char *text, size_t len)
{
    char *p;

    if (s->text_len + len + 1 > s->text_cap)
        return NULL;
    p = s->text + s->text_len;
    memcpy(p, text, len);
    p[len] = '\0';
    s->text_len += len + 1;
    return p;
}

/* ---- py_objects.c --------------------------------------------------------- */

/* Render obj the way repr() would, bounded by c->lim and DEPTH_MAX (depth
 * is how deep in containers it is); what cannot be read says so.  While
 * held (c->defer_types), a type's name is a mark named by
 * py_name_types(). */
void py_put_value(struct ctx *c, struct dsl_text *w, uint64_t obj, unsigned depth);

/* A str object (a name) as plain text in s's arena; dflt when it is not a
 * readable str or the arena is full. */
const char *py_arena_str(struct py_stack *s, struct ctx *c, uint64_t obj, const char *dflt);

/* After the thread is let go: value (rendered while held) with its type
 * marks replaced by the types' names, in s's arena (buf, size: room to
 * build it); value itself when it has no mark; NULL when the arena is
 * full. */
const char *py_name_types(struct ctx *c, struct py_stack *s, const char *value, char *buf,
                          size_t size);

/* The types value's marks name (at most max of them, in order): what
 * py_name_types() will read, for a prefetch. */
size_t py_marked_types(const char *value, uint64_t *out, size_t max);

/* ---- py_linetable.c ------------------------------------------------------- */

/* The line of code unit 'unit' (an index into co_code_adaptive) from the
 * location table of size bytes at table; 0 when unknown. */
int py_decode_line(struct ctx *c, uint64_t table, uint64_t size, int firstlineno, int64_t unit);

#endif
