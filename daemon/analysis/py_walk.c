/* SPDX-License-Identifier: MIT */
/*
 * The stack walk: a thread's Python frames, read in two halves so that the
 * thread is held only for what changes as it runs (py_capture) and the
 * rest is read after it is let go (py_finish); py_read_stack does both.
 * Finding the thread's state, the frame chain, each frame's locals, the
 * code objects (file, function, line, the locals' names) and the
 * worker's code cache (struct py_runtime's code_cache), which spares the
 * next capture its code object reads.  Objects are rendered by
 * py_objects.c, lines come from py_linetable.c, and every read goes
 * through the thread's page cache (remote.c).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "py.h"

/* Hard caps on what a worker can make us walk or allocate. */
#define INTERPS_MAX      64     /* interpreters in the runtime's list */
#define TSTATES_MAX      16384  /* thread states per interpreter */
#define FRAMES_CAP       1024   /* max_frames ceiling */
#define LOCALS_CAP       1024   /* max_locals ceiling */
#define NLOCALSPLUS_MAX  65536  /* co_nlocalsplus of any sane code object */
#define LINETABLE_MAX    (16u << 20)
#define CODE_CACHE       16     /* code objects finish_frames() keeps at hand */

struct code_info {
    uint64_t addr;
    const char *filename, *function;
    int firstlineno;
    uint64_t linetable, linetable_size;
    uint64_t names, kinds;
    int64_t nlocalsplus;
    bool ok;
};

static void py_limits_fix(struct py_limits *l)
{
    if (l->max_frames == 0 || l->max_frames > FRAMES_CAP)
        l->max_frames = l->max_frames ? FRAMES_CAP : 128;
    if (l->max_locals > LOCALS_CAP)
        l->max_locals = LOCALS_CAP;
    if (l->max_value_bytes < 16)
        l->max_value_bytes = 16;
    if (l->max_value_bytes > 65536)
        l->max_value_bytes = 65536;
    if (l->max_items > 64)
        l->max_items = 64;
    if (l->max_text_bytes < 1024)
        l->max_text_bytes = 1024;
    if (l->max_text_bytes > (64u << 20))
        l->max_text_bytes = 64u << 20;
    if (l->max_read_bytes == 0)
        l->max_read_bytes = 4u << 20;
}

void py_limits_default(struct py_limits *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->max_frames = 128;
    ret->max_locals = 32;
    ret->max_value_bytes = 2048;
    ret->max_items = 5;
    ret->max_text_bytes = 256 * 1024;
    ret->max_read_bytes = 4u << 20;
}

static int load_code(struct ctx *c, struct py_stack *s, uint64_t code, struct code_info *ci)
{
    const struct py_offsets *o = c->o;
    uint8_t hdr[512];
    uint64_t type, filename, name, qualname, table;
    int32_t first;
    int64_t tsize;
    int r;

    memset(ci, 0, sizeof(*ci));
    ci->addr = code;
    if (o->code_size > sizeof(hdr))
        return -EPROTO;
    r = type_of(c, code, &type);
    if (r < 0)
        return r;
    if (kind_of_type(c, type) != K_CODE)
        return -EBADMSG;
    r = rd(c, code, hdr, o->code_size);
    if (r < 0)
        return r;
    memcpy(&filename, hdr + o->code_filename, 8);
    memcpy(&name, hdr + o->code_name, 8);
    memcpy(&qualname, hdr + o->code_qualname, 8);
    memcpy(&table, hdr + o->code_linetable, 8);
    memcpy(&first, hdr + o->code_firstlineno, 4);
    memcpy(&ci->names, hdr + o->code_localsplusnames, 8);
    memcpy(&ci->kinds, hdr + o->code_localspluskinds, 8);
    ci->firstlineno = first > 0 ? first : 0;
    ci->filename = py_arena_str(s, c, filename, "?");
    ci->function = py_arena_str(s, c, qualname, NULL);
    if (!ci->function)
        ci->function = py_arena_str(s, c, name, "?");
    /* co_linetable is a bytes object: ob_size, ob_shash, then the data. */
    if (plausible(table) && type_of(c, table, &type) == 0 && kind_of_type(c, type) == K_BYTES &&
        rd(c, table + o->head, &tsize, 8) == 0 && tsize >= 0 && (uint64_t)tsize <= LINETABLE_MAX) {
        ci->linetable = table + o->head + 16;
        ci->linetable_size = (uint64_t)tsize;
    }
    /* The names tuple's length is co_nlocalsplus. */
    ci->nlocalsplus = -1;
    if (plausible(ci->names) && type_of(c, ci->names, &type) == 0 &&
        kind_of_type(c, type) == K_TUPLE) {
        int64_t n;
        if (rd(c, ci->names + o->head, &n, 8) == 0 && n >= 0 && n <= NLOCALSPLUS_MAX)
            ci->nlocalsplus = n;
    }
    /* co_localspluskinds: bytes of the same length, or none at all. */
    if (ci->nlocalsplus > 0) {
        int64_t kn;
        if (!plausible(ci->kinds) || type_of(c, ci->kinds, &type) < 0 ||
            kind_of_type(c, type) != K_BYTES || rd(c, ci->kinds + o->head, &kn, 8) < 0 ||
            kn != ci->nlocalsplus)
            ci->kinds = 0;
    }
    ci->ok = true;
    return 0;
}

/*
 * How a stack is read.  The thread is held only for what changes as it
 * runs (py_capture): the frame chain, each frame's position and its local
 * variables' values.  Everything that a code object says -- file, function,
 * line table, the locals' names -- and the names of types cannot change
 * while the frames that use them exist, and is read after the thread is let
 * go (py_finish).  While held, the pages of one step (all code objects,
 * all names tuples, all locals arrays, all values) come in one vectored
 * read each: a few dozen system calls where the naive walk made hundreds.
 *
 * Two things cross from one phase to the other in the text: a value that
 * shows a type's name holds "\x01" + 16 hex digits of the type + "\x02"
 * there (rendering escapes every control character a worker's data could
 * hold, so these bytes come from nothing else), and each local carries the
 * index of its slot, named in py_finish.
 */

/* A reader for one half of a stack's read: through the thread's page
 * cache, emptied for a capture (fresh) or when another read used it since
 * the one whose cache generation is *gen, and the budget counted afresh.
 * -ENOMEM when the cache has no pages. */
static int ctx_init(struct ctx *c, const struct py_runtime *rt, const struct py_limits *lim,
                    struct remote_mem *m, bool fresh, uint64_t *gen)
{
    memset(c, 0, sizeof(*c));
    c->rt = rt;
    c->o = &rt->off;
    c->lim = lim;
    c->pc = remote_cache_open(&c->mem, m, lim->max_read_bytes, fresh, gen);
    return c->pc ? 0 : -ENOMEM;
}

static void note(struct py_stack *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct py_stack *s, int err, const char *fmt, ...)
{
    va_list ap;

    if (s->err == 0)
        s->err = err;
    if (s->note[0])
        return;
    va_start(ap, fmt);
    vsnprintf(s->note, sizeof(s->note), fmt, ap);
    va_end(ap);
}

/* While held: the frame chain, innermost first, without its code objects. */
static void walk_frames(struct ctx *c, struct py_stack *s, uint64_t frame)
{
    const struct py_offsets *o = c->o;
    const struct py_limits *lim = c->lim;
    unsigned walked = 0;
    /* Shim frames do not count, but they still bound the walk. */
    unsigned walk_max = lim->max_frames * 2 + 16;
    uint64_t *seen;

    seen = calloc(walk_max, sizeof(*seen));
    if (!seen) {
        note(s, -ENOMEM, "out of memory");
        return;
    }
    while (frame) {
        uint8_t hdr[128];
        uint64_t code, previous, instr;
        uint8_t owner;

        if (!plausible(frame)) {
            note(s, -EFAULT, "bad frame pointer 0x%llx", (unsigned long long)frame);
            break;
        }
        for (unsigned i = 0; i < walked; i++) {
            if (seen[i] == frame) {
                note(s, -ELOOP, "frame chain loops at 0x%llx", (unsigned long long)frame);
                goto out;
            }
        }
        if (walked == walk_max) {
            note(s, -E2BIG, "frame chain longer than %u", walk_max);
            break;
        }
        if (s->nframes == lim->max_frames) {
            s->truncated = true;
            note(s, 0, "only the innermost %u Python frames are shown", lim->max_frames);
            break;
        }
        seen[walked++] = frame;
        if (o->frame_localsplus > sizeof(hdr) || rd(c, frame, hdr, o->frame_localsplus) < 0) {
            note(s, -EFAULT, "cannot read frame at 0x%llx", (unsigned long long)frame);
            break;
        }
        memcpy(&code, hdr + o->frame_code, 8);
        memcpy(&previous, hdr + o->frame_previous, 8);
        memcpy(&instr, hdr + o->frame_instr, 8);
        owner = hdr[o->frame_owner];
        if (o->stackref)
            code &= ~(uint64_t)3;

        if (owner > o->owner_max) {
            note(s, -EBADMSG, "corrupt frame at 0x%llx", (unsigned long long)frame);
            break;
        }
        if (owner >= o->owner_cstack) {
            /* A shim the eval loop pushes on entry: the frame inside it
             * (the one we emitted last) is the oldest of its activation. */
            if (s->nframes)
                s->frames[s->nframes - 1].entry = true;
            frame = previous;
            continue;
        }
        if (!plausible(code)) {
            note(s, -EBADMSG, "frame at 0x%llx has no readable code object",
                 (unsigned long long)frame);
            break;
        }
        struct py_frame *f = &s->frames[s->nframes++];
        memset(f, 0, sizeof(*f));
        f->frame_addr = frame;
        f->code_addr = code;
        f->instr = instr;
        if (o->frame_tlbc_index != NONE32)
            memcpy(&f->tlbc_index, hdr + o->frame_tlbc_index, 4);
        if (o->frame_is_entry != NONE32)
            f->entry = hdr[o->frame_is_entry] != 0;
        if (!previous)
            f->entry = true;
        frame = previous;
    }
out:
    free(seen);
}

static struct py_code_slot *code_slot(const struct py_runtime *rt, uint64_t code)
{
    unsigned i = (unsigned)(((code >> 4) * 0x9e3779b97f4a7c15ull) >> 56) % PY_CODE_CACHE;
    return (struct py_code_slot *)&rt->code_cache[i];
}

/*
 * While held: how many local slots each frame's code has (the length of
 * its co_localsplusnames tuple; -1 when unknown), from the worker's code
 * cache where it has the code, else read: all code objects missing, then
 * all their names tuples, one vectored read each.  Each frame records what
 * was used (names_seen, nslots_seen), for the capture and for py_finish()
 * to check.
 */
static void count_slots(struct ctx *c, struct py_stack *s)
{
    const struct py_offsets *o = c->o;
    unsigned nf = s->nframes, nmiss = 0;
    struct remote_span *pr = calloc(nf ? nf : 1, sizeof(*pr));
    unsigned *miss = calloc(nf ? nf : 1, sizeof(*miss));

    for (unsigned i = 0; i < nf; i++) {
        s->frames[i].names_seen = 0;
        s->frames[i].nslots_seen = -1;
    }
    if (!pr || !miss)
        goto out;
    for (unsigned i = 0; i < nf; i++) {
        struct py_frame *f = &s->frames[i];
        const struct py_code_slot *e = code_slot(c->rt, f->code_addr);
        if (e->code == f->code_addr) {
            f->names_seen = e->names;
            f->nslots_seen = e->n;
        } else {
            pr[nmiss] = (struct remote_span){f->code_addr, o->code_size};
            miss[nmiss++] = i;
        }
    }
    s->code_misses = nmiss;
    remote_cache_prefetch(c->pc, pr, nmiss);
    for (unsigned k = 0; k < nmiss; k++) {
        struct py_frame *f = &s->frames[miss[k]];
        uint64_t type;
        if (type_of(c, f->code_addr, &type) < 0 || kind_of_type(c, type) != K_CODE ||
            rd_ptr(c, f->code_addr + o->code_localsplusnames, &f->names_seen) < 0 ||
            !plausible(f->names_seen))
            f->names_seen = 0;
        pr[k] = (struct remote_span){f->names_seen, o->head + 8};
    }
    remote_cache_prefetch(c->pc, pr, nmiss);
    for (unsigned k = 0; k < nmiss; k++) {
        struct py_frame *f = &s->frames[miss[k]];
        uint64_t type;
        int64_t n;
        if (f->names_seen && type_of(c, f->names_seen, &type) == 0 &&
            kind_of_type(c, type) == K_TUPLE && rd(c, f->names_seen + o->head, &n, 8) == 0 &&
            n >= 0 && n <= NLOCALSPLUS_MAX)
            f->nslots_seen = n;
    }
out:
    free(pr);
    free(miss);
}

/* While held: the values of each frame's bound locals, rendered; names
 * come later (py_finish).  Cells and free variables are dereferenced. */
static void capture_locals(struct ctx *c, struct py_stack *s, struct py_local *locals)
{
    const struct py_offsets *o = c->o;
    unsigned nf = s->nframes, max = c->lim->max_locals;
    /* per frame, the first max slots that hold something: slot, value */
    uint32_t *slot = calloc((size_t)(nf ? nf : 1) * max, sizeof(*slot));
    uint64_t *val = calloc((size_t)(nf ? nf : 1) * max, sizeof(*val));
    unsigned *count = calloc(nf ? nf : 1, sizeof(*count));
    struct remote_span *pr = calloc((size_t)(nf ? nf : 1) * max, sizeof(*pr));
    uint64_t ptrs[64];
    char *vbuf = malloc(c->lim->max_value_bytes + 1);
    size_t npr = 0;

    if (!slot || !val || !count || !pr || !vbuf) {
        note(s, -ENOMEM, "out of memory");
        goto out;
    }
    count_slots(c, s);
    for (unsigned i = 0; i < nf; i++)
        if (s->frames[i].nslots_seen > 0)
            pr[npr++] = (struct remote_span){s->frames[i].frame_addr + o->frame_localsplus,
                                             (size_t)s->frames[i].nslots_seen * 8};
    remote_cache_prefetch(c->pc, pr, npr);
    npr = 0;
    /* The slots' contents, 64 at a time; the first max bound ones kept. */
    for (unsigned i = 0; i < nf; i++) {
        uint64_t base = s->frames[i].frame_addr + o->frame_localsplus;
        int64_t n = s->frames[i].nslots_seen;
        for (int64_t k = 0; k < n && count[i] < max; k += 64) {
            size_t chunk = n - k < 64 ? (size_t)(n - k) : 64;
            if (rd(c, base + (uint64_t)k * 8, ptrs, chunk * 8) < 0) {
                s->frames[i].locals_truncated = true;
                break;
            }
            for (size_t j = 0; j < chunk && count[i] < max; j++) {
                uint64_t v = ptrs[j];
                if (o->stackref && (v & 3) != 3)
                    v &= ~(uint64_t)3;
                if (!v)
                    continue; /* unbound */
                slot[(size_t)i * max + count[i]] = (uint32_t)(k + (int64_t)j);
                val[(size_t)i * max + count[i]] = v;
                count[i]++;
                if (plausible(v))
                    pr[npr++] = (struct remote_span){v, 64};
            }
        }
        if (count[i] == max && (int64_t)max < n)
            s->frames[i].locals_truncated = true;
    }
    remote_cache_prefetch(c->pc, pr, npr);
    for (unsigned i = 0; i < nf; i++) {
        struct py_frame *f = &s->frames[i];
        struct py_local *out = locals + (size_t)i * max;
        for (unsigned k = 0; k < count[i]; k++) {
            uint64_t value = val[(size_t)i * max + k], type;
            struct dsl_text w;
            dsl_text_init_fixed(&w, vbuf, c->lim->max_value_bytes + 1, DSL_TEXT_CUT);
            /* A _PyStackRef whose low bits are 11 is an int kept in the
             * reference itself (3.14). */
            if (o->stackref && (value & 3) == 3) {
                dsl_text_printf(&w, "%lld", (long long)((int64_t)value >> 2));
            } else {
                if (type_of(c, value, &type) == 0 && kind_of_type(c, type) == K_CELL) {
                    if (rd_ptr(c, value + o->head, &value) < 0) {
                        f->locals_truncated = true;
                        break;
                    }
                    if (!value)
                        continue; /* empty cell */
                }
                py_put_value(c, &w, value, 0);
            }
            dsl_text_mark_cut(&w, "...");
            const char *text = arena_add(s, vbuf, w.len);
            if (!text) {
                f->locals_truncated = true; /* text budget spent */
                break;
            }
            out[f->nlocals].slot = slot[(size_t)i * max + k];
            out[f->nlocals].value = text;
            f->nlocals++;
        }
        f->locals = out;
    }
out:
    free(slot);
    free(val);
    free(count);
    free(pr);
    free(vbuf);
}

/* The thread state whose native_thread_id is tid; its newest frame. */
static int find_thread(struct ctx *c, pid_t tid, uint64_t *ret_frame)
{
    const struct py_offsets *o = c->o;
    uint64_t interp, ts;
    int r;

    r = rd_ptr(c, c->rt->runtime_addr + o->runtime_interp_head, &interp);
    if (r < 0)
        return r;
    for (unsigned i = 0; interp && i < INTERPS_MAX; i++) {
        if (!plausible(interp))
            return -EFAULT;
        r = rd_ptr(c, interp + o->interp_threads_head, &ts);
        if (r < 0)
            return r;
        for (unsigned k = 0; ts && k < TSTATES_MAX; k++) {
            uint64_t ntid;
            if (!plausible(ts))
                return -EFAULT;
            r = rd_ptr(c, ts + o->tstate_native_thread_id, &ntid);
            if (r < 0)
                return r;
            if (ntid == (uint64_t)tid) {
                uint64_t frame = 0;
                if (o->tstate_current_frame != NONE32) {
                    r = rd_ptr(c, ts + o->tstate_current_frame, &frame);
                } else {
                    uint64_t cframe;
                    r = rd_ptr(c, ts + o->tstate_cframe, &cframe);
                    if (r == 0 && cframe)
                        r = rd_ptr(c, cframe + o->cframe_current_frame, &frame);
                }
                if (r < 0)
                    return r;
                *ret_frame = frame;
                return 0;
            }
            r = rd_ptr(c, ts + o->tstate_next, &ts);
            if (r < 0)
                return r;
        }
        r = rd_ptr(c, interp + o->interp_next, &interp);
        if (r < 0)
            return r;
    }
    return -ESRCH;
}

/*
 * Free-threaded 3.14: a thread may run its own copy of a code object's
 * bytecode, entries[frame->tlbc_index] of the code's co_tlbc array (size,
 * then pointers); index 0 is co_code_adaptive itself.  The base the frame's
 * instr_ptr counts from, or 0 when the array cannot be read.
 */
static uint64_t tlbc_base(struct ctx *c, uint64_t code, int32_t idx, uint64_t adaptive)
{
    int64_t size;
    uint64_t arr, entry;

    if (idx == 0)
        return adaptive;
    if (idx < 0 || rd_ptr(c, code + c->o->code_tlbc, &arr) < 0 || !plausible(arr) ||
        rd(c, arr, &size, 8) < 0 || idx >= size ||
        rd_ptr(c, arr + 8 + 8 * (uint64_t)idx, &entry) < 0 || !plausible(entry))
        return 0;
    return entry;
}
/*
 * After the thread is let go, before finish_frames(): the pages it will
 * read, in as few vectored reads as the objects' links allow -- the code
 * objects; then their file and function names, line tables, names tuples;
 * then the line tables' bytes and the names tuples' slots in use; then
 * those names.  In the analysis process each vectored read is one request
 * to the daemon, where a page read alone would be one each.  Best effort:
 * what finish_frames() then reads is the same, cached or not.
 */
static void prefetch_finish(struct ctx *c, const struct py_stack *s)
{
    const struct py_offsets *o = c->o;
    unsigned nf = s->nframes;
    size_t cap = (size_t)nf * 8 + 1, n = 0, nt = 0;
    struct remote_span *sp;
    uint64_t *words, *table, *names, *types;
    uint8_t hdr[512];

    for (unsigned i = 0; i < nf; i++)
        cap += s->frames[i].nlocals;
    if (o->code_size > sizeof(hdr))
        return;
    sp = calloc(cap, sizeof(*sp));
    /* Per frame its line table and names tuple (0: unknown); the types
     * named in values. */
    words = calloc(2 * (size_t)nf + cap, sizeof(*words));
    if (!sp || !words)
        goto out;
    table = words;
    names = words + nf;
    types = words + 2 * (size_t)nf;
    for (unsigned i = 0; i < nf; i++)
        sp[n++] = (struct remote_span){s->frames[i].code_addr, o->code_size};
    remote_cache_prefetch(c->pc, sp, n);
    n = 0;
    for (unsigned i = 0; i < nf; i++) {
        const uint32_t at[] = {o->code_filename, o->code_qualname, o->code_name,
                               o->code_linetable, o->code_localsplusnames,
                               o->code_localspluskinds};
        if (rd(c, s->frames[i].code_addr, hdr, o->code_size) < 0)
            continue;
        memcpy(&table[i], hdr + o->code_linetable, 8);
        memcpy(&names[i], hdr + o->code_localsplusnames, 8);
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            uint64_t p;
            memcpy(&p, hdr + at[k], 8);
            if (plausible(p))
                sp[n++] = (struct remote_span){p, 128};
        }
    }
    remote_cache_prefetch(c->pc, sp, n);
    n = 0;
    for (unsigned i = 0; i < nf; i++) {
        const struct py_frame *f = &s->frames[i];
        int64_t size;
        if (plausible(table[i]) && rd(c, table[i] + o->head, &size, 8) == 0 && size > 0 &&
            size <= (int64_t)LINETABLE_MAX)
            sp[n++] = (struct remote_span){table[i] + o->head + 16,
                                           (size_t)(size < 65536 ? size : 65536)};
        for (unsigned k = 0; plausible(names[i]) && k < f->nlocals; k++)
            sp[n++] = (struct remote_span){names[i] + o->tuple_item + (uint64_t)f->locals[k].slot * 8,
                                           8};
    }
    remote_cache_prefetch(c->pc, sp, n);
    n = 0;
    for (unsigned i = 0; i < nf; i++) {
        const struct py_frame *f = &s->frames[i];
        uint64_t name;
        for (unsigned k = 0; plausible(names[i]) && k < f->nlocals; k++)
            if (rd_ptr(c, names[i] + o->tuple_item + (uint64_t)f->locals[k].slot * 8, &name) == 0 &&
                plausible(name))
                sp[n++] = (struct remote_span){name, 128};
    }
    remote_cache_prefetch(c->pc, sp, n);
    /* The types named in values (one a value, the first: the rest are
     * read alone), then their names. */
    for (unsigned i = 0; i < nf; i++)
        for (unsigned k = 0; k < s->frames[i].nlocals && nt < cap; k++)
            nt += py_marked_types(s->frames[i].locals[k].value, types + nt, 1);
    n = 0;
    for (size_t k = 0; k < nt; k++)
        if (plausible(types[k]))
            sp[n++] = (struct remote_span){types[k], o->type_name + 8};
    remote_cache_prefetch(c->pc, sp, n);
    n = 0;
    for (size_t k = 0; k < nt; k++) {
        uint64_t name;
        if (plausible(types[k]) && rd_ptr(c, types[k] + o->type_name, &name) == 0 && name)
            sp[n++] = (struct remote_span){name, 64};
    }
    remote_cache_prefetch(c->pc, sp, n);
out:
    free(words);
    free(sp);
}

/* After the thread is let go: file, function and line of each frame, and
 * its locals' names (hidden slots left out, as f_locals does). */
static void finish_frames(struct ctx *c, struct py_stack *s)
{
    const struct py_offsets *o = c->o;
    struct code_info cache[CODE_CACHE];
    unsigned ncache = 0;
    size_t vsize = c->lim->max_value_bytes + TYPE_NAME_MAX * 4 + 1;
    char *vbuf = malloc(vsize);

    memset(cache, 0, sizeof(cache));
    for (unsigned i = 0; i < s->nframes; i++) {
        struct py_frame *f = &s->frames[i];
        struct code_info *ci = NULL;
        uint64_t code = f->code_addr;

        for (unsigned k = 0; k < ncache; k++)
            if (cache[k].addr == code)
                ci = &cache[k];
        if (!ci) {
            ci = &cache[ncache < CODE_CACHE ? ncache++ : (i % CODE_CACHE)];
            if (load_code(c, s, code, ci) < 0) {
                note(s, -EBADMSG, "frame at 0x%llx has no readable code object",
                     (unsigned long long)f->frame_addr);
                ci->addr = 0;
                s->nframes = i;
                break;
            }
        }
        f->filename = ci->filename;
        f->function = ci->function;
        /* The locals were read with the layout the cache gave (or the one
         * read then): if the code object says otherwise, they are not what
         * their slots suggest, and go. */
        if (f->nlocals && (f->names_seen != ci->names || f->nslots_seen != ci->nlocalsplus)) {
            f->nlocals = 0;
            f->locals_truncated = true;
        }
        /* Without co_localspluskinds there is no telling hidden slots from
         * the rest: no locals, as before the reader was split. */
        if (f->nlocals && !ci->kinds) {
            f->nlocals = 0;
            f->locals_truncated = true;
        }
        if (ci->nlocalsplus >= 0) {
            struct py_code_slot *e = code_slot(c->rt, code);
            *e = (struct py_code_slot){.code = code, .names = ci->names, .n = ci->nlocalsplus};
        }
        if (ci->linetable) {
            /* The code unit now running: prev_instr is the one before
             * the next (3.11, 3.12), instr_ptr the current one (3.13). */
            uint64_t base = code + o->code_adaptive;
            if (o->frame_tlbc_index != NONE32)
                base = tlbc_base(c, code, f->tlbc_index, base);
            int64_t unit = f->instr >= base ? (int64_t)((f->instr - base) / 2)
                                            : (f->instr + 2 == base ? -1 : INT64_MIN);
            if (unit == INT64_MIN || unit > ((int64_t)1 << 30))
                f->line = 0;
            else
                f->line =
                    py_decode_line(c, ci->linetable, ci->linetable_size, ci->firstlineno, unit);
        }
        unsigned kept = 0;
        for (unsigned k = 0; k < f->nlocals; k++) {
            struct py_local *l = &f->locals[k];
            uint64_t name;
            uint8_t kind = 0;

            if (l->slot >= (uint64_t)(ci->nlocalsplus > 0 ? ci->nlocalsplus : 0) ||
                rd_ptr(c, ci->names + o->tuple_item + (uint64_t)l->slot * 8, &name) < 0) {
                f->locals_truncated = true;
                continue;
            }
            if (ci->kinds && rd(c, ci->kinds + o->head + 16 + l->slot, &kind, 1) == 0 &&
                o->fast_hidden && (kind & o->fast_hidden))
                continue;
            const char *nm = py_arena_str(s, c, name, NULL);
            const char *val = vbuf ? py_name_types(c, s, l->value, vbuf, vsize) : NULL;
            if (!nm || !val) {
                f->locals_truncated = true; /* text budget spent */
                break;
            }
            f->locals[kept].name = nm;
            f->locals[kept].value = val;
            f->locals[kept].slot = l->slot;
            kept++;
        }
        f->nlocals = kept;
    }
    free(vbuf);
}

/* The one allocation of a stack: frames, then max_locals locals for each,
 * then the text arena. */
static size_t frames_size(const struct py_limits *lim)
{
    return (size_t)lim->max_frames * sizeof(struct py_frame);
}

int py_stack_alloc(struct py_stack *s, const struct py_limits *lim, size_t extra_text)
{
    size_t locals_size;

    memset(s, 0, sizeof(*s));
    if (lim)
        s->lim = *lim;
    else
        py_limits_default(&s->lim);
    py_limits_fix(&s->lim);
    if (extra_text > (64u << 20))
        return -E2BIG;
    locals_size = (size_t)s->lim.max_frames * s->lim.max_locals * sizeof(struct py_local);
    s->text_cap = s->lim.max_text_bytes + extra_text;
    s->mem = malloc(frames_size(&s->lim) + locals_size + s->text_cap);
    if (!s->mem)
        return -ENOMEM;
    s->frames = s->mem;
    s->text = (char *)s->mem + frames_size(&s->lim) + locals_size;
    return 0;
}

struct py_local *py_stack_locals(struct py_stack *s, unsigned frame)
{
    return (struct py_local *)((char *)s->mem + frames_size(&s->lim)) +
           (size_t)frame * s->lim.max_locals;
}

const char *py_stack_add_text(struct py_stack *s, const char *text, size_t len)
{
    return arena_add(s, text, len);
}

void py_code_cache_put(struct py_runtime *rt, const struct py_code_slot *e)
{
    *code_slot(rt, e->code) = *e;
}

bool py_code_cache_get(const struct py_runtime *rt, uint64_t code, struct py_code_slot *ret)
{
    const struct py_code_slot *e = code_slot(rt, code);

    if (!code || e->code != code)
        return false;
    *ret = *e;
    return true;
}

int py_capture(const struct py_runtime *rt, struct remote_mem *m, pid_t tid,
               const struct py_limits *lim_in, struct py_stack *ret)
{
    struct ctx c;
    struct py_stack s;
    struct py_limits lim;
    uint64_t frame = 0, gen = 0;
    int r;

    if (!rt || !m || !ret || tid <= 0)
        return -EINVAL;
    if (lim_in)
        lim = *lim_in;
    else
        py_limits_default(&lim);
    py_limits_fix(&lim);
    if (ctx_init(&c, rt, &lim, m, true, &gen) < 0)
        return -ENOMEM;
    c.defer_types = true;

    r = find_thread(&c, tid, &frame);
    if (r < 0)
        return r;
    r = py_stack_alloc(&s, &lim, 0);
    if (r < 0)
        return r;
    c.lim = &s.lim;
    s.generation = gen;
    s.version_hex = rt->version_hex;
    walk_frames(&c, &s, frame);
    if (s.lim.max_locals)
        capture_locals(&c, &s, py_stack_locals(&s, 0));
    s.bytes_read = s.held_bytes = remote_cache_bytes(c.pc);
    s.reads = s.held_reads = remote_cache_reads(c.pc);
    *ret = s;
    return 0;
}

void py_finish(struct py_runtime *rt, struct remote_mem *m, struct py_stack *s)
{
    struct ctx c;

    if (!rt || !m || !s || !s->mem || s->finished)
        return;
    if (ctx_init(&c, rt, &s->lim, m, false, &s->generation) < 0) {
        note(s, -ENOMEM, "out of memory");
        s->nframes = 0;
        s->finished = true;
        return;
    }
    prefetch_finish(&c, s);
    finish_frames(&c, s);
    s->bytes_read += remote_cache_bytes(c.pc);
    s->reads += remote_cache_reads(c.pc);
    s->finished = true;
}

int py_read_stack(struct py_runtime *rt, struct remote_mem *m, pid_t tid,
                  const struct py_limits *lim, struct py_stack *ret)
{
    int r = py_capture(rt, m, tid, lim, ret);

    if (r == 0)
        py_finish(rt, m, ret);
    return r;
}
