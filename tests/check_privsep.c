/* SPDX-License-Identifier: MIT */
/*
 * Privilege separation (daemon/core/sep.c, sepmsg.c, daemon/analysis/child.c).
 *
 * - The protocol: jobs and results survive a round trip; every bound the
 *   daemon checks in what the analysis process sends is refused when
 *   broken (too many frames or variables, strings too long, unknown notes,
 *   short or long payloads); the corpus seeds decode (so the fuzzer starts
 *   from valid messages).
 * - What the daemon opens for it: only a file the process maps, by its
 *   exact path, with that mapping's device and inode; a debug file only
 *   under /usr/lib/debug by a plain path.
 * - The real daemon: frames are named in an analysis process that holds no
 *   capability, runs under two seccomp filters (the spawner's and its
 *   own) and holds no descriptor but sockets and the vDSO copy; a killed
 *   analysis process is replaced and the next report is named all the same;
 *   privsep = false names frames in the daemon, with no such process.
 */
#include "config.h"

#include <check.h>

#include "run_suite.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "analysis.h"
#include "core.h"
#include "harness.h"
#include "util.h"

/* ---- the protocol -------------------------------------------------------- */

static void sample_job(struct sep_job *j, uint8_t *stack, size_t stack_len, const char *maps)
{
    memset(j, 0, sizeof(*j));
    j->worker_id = 42;
    j->pid = 1000;
    j->tid = 1001;
    j->err = 5;
    snprintf(j->note, sizeof(j->note), "read without stopping it");
    j->with_locals = j->needs_unwind = j->have_regs = true;
    j->regs_known = (1u << DSL_NREGS) - 1;
    for (unsigned i = 0; i < DSL_NREGS; i++)
        j->regs[i] = 0x1000u * i + 7;
    j->max_frames = 256;
    j->max_value_bytes = 2048;
    snprintf(j->redact, sizeof(j->redact), "password, token");
    for (size_t i = 0; i < stack_len; i++)
        stack[i] = (uint8_t)(i * 7);
    j->stack_addr = 0x7ffc0000;
    j->stack = stack;
    j->stack_len = (uint32_t)stack_len;
    j->maps = maps;
    j->maps_len = (uint32_t)strlen(maps);
    j->nforget = 2;
    j->forget[0] = 3;
    j->forget[1] = 9;
    j->nframes = 2;
    j->frames[0].ip = 0x401000;
    j->frames[0].activation = true;
    j->frames[0].regs_known = 1u << DSL_REG_RSP;
    j->frames[0].regs[DSL_REG_RSP] = 0x7ffc0010;
    j->frames[1].ip = 0x401234;
}

START_TEST(job_round_trip)
{
    static struct sep_job j, back;
    static uint8_t stack[70000];
    struct sep_buf b = {0};
    const char *maps = "00400000-00401000 r-xp 00000000 fe:00 12 /usr/bin/worker\n";

    sample_job(&j, stack, sizeof(stack), maps);
    ck_assert_int_eq(sep_job_encode(&b, &j), 0);
    ck_assert_int_eq(sep_job_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back), 0);
    ck_assert_uint_eq(back.worker_id, 42);
    ck_assert_int_eq(back.pid, 1000);
    ck_assert_int_eq(back.tid, 1001);
    ck_assert_int_eq(back.err, 5);
    ck_assert_str_eq(back.note, "read without stopping it");
    ck_assert(back.with_locals && back.needs_unwind && back.have_regs && !back.gone);
    ck_assert_mem_eq(back.regs, j.regs, sizeof(j.regs));
    ck_assert_str_eq(back.redact, "password, token");
    ck_assert_uint_eq(back.stack_len, sizeof(stack));
    ck_assert_mem_eq(back.stack, stack, sizeof(stack));
    ck_assert_uint_eq(back.maps_len, strlen(maps));
    ck_assert_mem_eq(back.maps, maps, strlen(maps));
    ck_assert_uint_eq(back.nforget, 2);
    ck_assert_uint_eq(back.forget[1], 9);
    ck_assert_uint_eq(back.nframes, 2);
    ck_assert_uint_eq(back.frames[1].ip, 0x401234);
    ck_assert(back.frames[0].activation);
    ck_assert_uint_eq(back.frames[0].regs[DSL_REG_RSP], 0x7ffc0010);

    /* One byte short, one byte more, a bad pid, an unknown flag. */
    ck_assert_int_eq(sep_job_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE - 1, &back),
                     -EBADMSG);
    uint8_t *longer = malloc(b.len + 1);
    memcpy(longer, b.p, b.len);
    longer[b.len] = 0;
    ck_assert_int_eq(sep_job_decode(longer + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE + 1, &back),
                     -EBADMSG);
    free(longer);
    j.pid = 0;
    ck_assert_int_eq(sep_job_encode(&b, &j), 0);
    ck_assert_int_eq(sep_job_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back), -EBADMSG);
    j.pid = 1000;
    ck_assert_int_eq(sep_job_encode(&b, &j), 0);
    /* flags, after worker_id, pid, tid, err and the note: an unknown bit */
    b.p[SEP_HDR_SIZE + 8 + 4 + 4 + 4 + 2 + strlen(j.note)] |= 0x80;
    ck_assert_int_eq(sep_job_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back), -EBADMSG);
    sep_buf_free(&b);
}
END_TEST

static struct var vars[SEP_VARS_PER_FRAME + 1];
static char long_name[400], long_value[SEP_VAR_VALUE_MAX + 100];

/* Two named frames; the first with nvars variables. */
static void sample_result(struct sep_result *r, struct symframe *sym, unsigned nvars)
{
    memset(r, 0, sizeof(*r));
    memset(sym, 0, 2 * sizeof(*sym));
    r->err = 0;
    snprintf(r->note, sizeof(r->note), "stack truncated at 2 frames");
    r->unwind_ns = 12345;
    r->nframes = 1;
    r->frames[0].ip = 0x401000;
    r->nsym = 2;
    r->sym = sym;
    sym[0].ip = 0x401000;
    snprintf(sym[0].module, sizeof(sym[0].module), "/usr/bin/worker");
    snprintf(sym[0].function, sizeof(sym[0].function), "handle_request");
    snprintf(sym[0].file, sizeof(sym[0].file), "worker.c");
    sym[0].line = 42;
    sym[0].offset = 16;
    sym[0].nvars = nvars;
    sym[0].vars = vars;
    for (unsigned k = 0; k < nvars && k <= SEP_VARS_PER_FRAME; k++) {
        vars[k].name = (char *)"argc";
        vars[k].value = (char *)"1";
    }
    sym[1].inlined = true;
    snprintf(sym[1].function, sizeof(sym[1].function), "wait_inlined");
    sym[1].vars_note = "no debug info";
}

START_TEST(result_round_trip_and_bounds)
{
    static struct sep_result r, back;
    static struct symframe sym[2], out[DSL_SYMFRAMES_MAX];
    struct sep_buf b = {0};

    sample_result(&r, sym, 3);
    memset(long_name, 'n', sizeof(long_name) - 1);
    memset(long_value, 'v', sizeof(long_value) - 1);
    vars[1].name = long_name;   /* cut at SEP_VAR_NAME_MAX */
    vars[2].value = long_value; /* cut at SEP_VAR_VALUE_MAX */
    ck_assert_int_eq(sep_result_encode(&b, &r), 0);
    back.sym = out;
    ck_assert_int_eq(sep_result_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back, 8), 0);
    ck_assert_str_eq(back.note, "stack truncated at 2 frames");
    ck_assert_uint_eq(back.unwind_ns, 12345);
    ck_assert_uint_eq(back.nframes, 1);
    ck_assert_uint_eq(back.nsym, 2);
    ck_assert_str_eq(out[0].function, "handle_request");
    ck_assert_str_eq(out[0].file, "worker.c");
    ck_assert_int_eq(out[0].line, 42);
    ck_assert_uint_eq(out[0].nvars, 3);
    ck_assert_str_eq(out[0].vars[0].name, "argc");
    ck_assert_uint_eq(strlen(out[0].vars[1].name), SEP_VAR_NAME_MAX);
    ck_assert_uint_eq(strlen(out[0].vars[2].value), SEP_VAR_VALUE_MAX);
    ck_assert(out[1].inlined);
    ck_assert_str_eq(out[1].vars_note, "no debug info");
    symframes_free(out, back.nsym);

    /* A name with a line break (a worker's DWARF, or a process taken over
     * by it) stays one line. */
    snprintf(sym[0].function, sizeof(sym[0].function), "handle\n  File \"forged.c\"");
    vars[0].value = (char *)"1\r\n";
    ck_assert_int_eq(sep_result_encode(&b, &r), 0);
    ck_assert_int_eq(sep_result_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back, 8), 0);
    ck_assert_str_eq(out[0].function, "handle?  File \"forged.c\"");
    ck_assert_str_eq(out[0].vars[0].value, "1??");
    symframes_free(out, back.nsym);
    snprintf(sym[0].function, sizeof(sym[0].function), "handle_request");
    vars[0].value = (char *)"1";
    ck_assert_int_eq(sep_result_encode(&b, &r), 0);

    /* More frames than the caller has room for. */
    ck_assert_int_eq(sep_result_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back, 1),
                     -EBADMSG);
    /* Short by one byte: refused, and nothing left allocated (ASan). */
    ck_assert_int_eq(sep_result_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE - 1, &back, 8),
                     -EBADMSG);
    ck_assert_uint_eq(back.nsym, 0);
    /* Frame 2 ends with its note code and a variable count of 0: an
     * unknown note code is refused. */
    b.p[b.len - 3] = 77;
    ck_assert_int_eq(sep_result_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back, 8),
                     -EBADMSG);
    sep_buf_free(&b);
}
END_TEST

START_TEST(result_refuses_a_forged_variable_count)
{
    /* Built by hand: no frames, one named frame with 65 variables. */
    static struct symframe out[4];
    static struct sep_result back;
    uint8_t msg[512];
    size_t n = 0;
    uint32_t u32;
    uint64_t u64 = 0;
    uint16_t u16;

#define PUT(v)                                                                                     \
    do {                                                                                           \
        memcpy(msg + n, &(v), sizeof(v));                                                          \
        n += sizeof(v);                                                                            \
    } while (0)
    u32 = 0;
    PUT(u32); /* err */
    u16 = 0;
    PUT(u16); /* note */
    PUT(u64); /* unwind_ns */
    PUT(u32); /* nframes */
    u32 = 1;
    PUT(u32); /* nsym */
    PUT(u64); /* ip */
    PUT(u64); /* offset */
    u32 = 1;
    PUT(u32); /* line */
    msg[n++] = 0; /* inlined */
    u16 = 0;
    PUT(u16); /* module */
    PUT(u16); /* function */
    PUT(u16); /* file */
    msg[n++] = 0; /* note */
    u16 = SEP_VARS_PER_FRAME + 1;
    PUT(u16);
#undef PUT
    back.sym = out;
    ck_assert_int_eq(sep_result_decode(msg, n, &back, 4), -EBADMSG);
    ck_assert_uint_eq(back.nsym, 0);
    /* The same with an acceptable count but no variables behind it. */
    msg[n - 2] = 2;
    msg[n - 1] = 0;
    ck_assert_int_eq(sep_result_decode(msg, n, &back, 4), -EBADMSG);
    ck_assert_uint_eq(back.nsym, 0);
}
END_TEST

/* ---- the CPython reader's halves ----------------------------------------- */

/* A stack as py_capture() leaves it: 3 frames, the middle one with two
 * locals (values only, one with a type mark), no names. */
static void sample_capture(struct py_stack *s)
{
    ck_assert_int_eq(py_stack_alloc(s, NULL, 0), 0);
    s->version_hex = 0x030b07f0;
    s->nframes = 3;
    s->held_bytes = s->bytes_read = 8192;
    s->held_reads = s->reads = 3;
    s->code_misses = 1;
    for (unsigned i = 0; i < 3; i++) {
        struct py_frame *f = &s->frames[i];
        memset(f, 0x5a, sizeof(*f)); /* as malloc leaves the names */
        f->nlocals = 0;
        f->locals = py_stack_locals(s, i);
        f->frame_addr = 0x7f0000001000 + 0x100 * i;
        f->code_addr = 0x7f0000100000 + 0x1000 * i;
        f->instr = f->code_addr + 0x60;
        f->tlbc_index = 0;
        f->names_seen = 0x7f0000200000 + i;
        f->nslots_seen = 4;
        f->entry = i == 2;
        f->locals_truncated = false;
    }
    struct py_frame *f = &s->frames[1];
    f->locals[0].slot = 0;
    f->locals[0].value = py_stack_add_text(s, "4242", 4);
    f->locals[1].slot = 3;
    static const char marked[] = "<\x01" "00007f0000300000\x02 object>";
    f->locals[1].value = py_stack_add_text(s, marked, sizeof(marked) - 1);
    f->nlocals = 2;
}

/* py_finish()'s doing on it: names, lines, one local left out. */
static void sample_named(struct py_stack *s)
{
    sample_capture(s);
    for (unsigned i = 0; i < 3; i++) {
        s->frames[i].filename = "/srv/app/views.py";
        s->frames[i].function = i ? "handler" : "<module>";
        s->frames[i].line = 10 + (int)i;
    }
    s->frames[1].locals[0].name = "order_id";
    s->frames[1].locals[1].name = "conn";
    s->frames[1].locals[1].value = "<Connection object>";
    s->finished = true;
}

static int decode_result(struct sep_buf *b, const struct py_stack *job, struct sep_py_result *r)
{
    return sep_py_result_decode(b->p + SEP_HDR_SIZE, b->len - SEP_HDR_SIZE, job, r);
}

START_TEST(python_job_and_result_round_trip_and_checks)
{
    static struct sep_py_job j, back;
    static struct sep_py_result res, got;
    struct sep_buf b = {0};

    /* The job: the capture crosses whole, without the unset names. */
    memset(&j, 0, sizeof(j));
    j.worker_id = 7;
    j.pid = 100;
    j.tid = 101;
    j.version_hex = 0x030b07f0;
    j.runtime_addr = 0x7f0000000000;
    j.types.str = 0x7f0000400000;
    sample_capture(&j.stack);
    ck_assert_int_eq(sep_py_job_encode(&b, &j), 0);
    ck_assert_int_eq(sep_py_job_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &back), 0);
    ck_assert_uint_eq(back.stack.nframes, 3);
    ck_assert_uint_eq(back.types.str, 0x7f0000400000);
    ck_assert_uint_eq(back.stack.frames[1].nlocals, 2);
    ck_assert_str_eq(back.stack.frames[1].locals[1].value, j.stack.frames[1].locals[1].value);
    ck_assert_ptr_null(back.stack.frames[1].locals[1].name);
    ck_assert_ptr_null(back.stack.frames[0].filename);
    ck_assert_uint_eq(back.stack.frames[2].entry, 1);
    ck_assert_int_eq(back.stack.frames[1].nslots_seen, 4);
    ck_assert(memcmp(&back.stack.lim, &j.stack.lim, sizeof(j.stack.lim)) == 0);
    py_stack_free(&back.stack);
    /* Every shorter payload is refused. */
    for (size_t cut = 1; cut < b.len - SEP_HDR_SIZE; cut += 7)
        ck_assert_int_eq(sep_py_job_decode(b.p + SEP_HDR_SIZE, cut, &back), -EBADMSG);

    /* The result, against the job. */
    memset(&res, 0, sizeof(res));
    sample_named(&res.stack);
    res.ncache = 2;
    res.cache[0] = (struct py_code_slot){.code = j.stack.frames[0].code_addr, .names = 1, .n = 4};
    res.cache[1] = (struct py_code_slot){.code = j.stack.frames[1].code_addr, .names = 2, .n = 9};
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), 0);
    ck_assert_str_eq(got.stack.frames[1].function, "handler");
    ck_assert_str_eq(got.stack.frames[1].locals[0].name, "order_id");
    ck_assert_str_eq(got.stack.frames[1].locals[1].value, "<Connection object>");
    ck_assert_int_eq(got.stack.frames[2].line, 12);
    ck_assert_uint_eq(got.ncache, 2);
    ck_assert_int_eq(got.cache[1].n, 9);
    py_stack_free(&got.stack);
    for (size_t cut = 1; cut < b.len - SEP_HDR_SIZE; cut += 5)
        ck_assert_int_eq(sep_py_result_decode(b.p + SEP_HDR_SIZE, cut, &j.stack, &got), -EBADMSG);

    /* What a taken-over process might send instead, each refused: */
    struct py_stack *n = &res.stack;
    /* a code cache entry for a code object the job did not have (the
     * held read would trust its slot count), */
    res.cache[1].code = 0x7f0000999000;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    res.cache[1].code = j.stack.frames[1].code_addr;
    /* or a slot count no code object has, */
    res.cache[1].n = 1 << 20;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    res.cache[1].n = 9;
    /* a frame moved to another code object, */
    n->frames[1].code_addr += 8;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->frames[1].code_addr -= 8;
    /* a local the capture did not have, */
    n->frames[0].nlocals = 1;
    n->frames[0].locals[0] = n->frames[1].locals[0];
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->frames[0].nlocals = 0;
    /* a local without a name, */
    n->frames[1].locals[1].name = NULL;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->frames[1].locals[1].name = "conn";
    /* other limits (the stack would be laid out differently), */
    n->lim.max_locals++;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->lim.max_locals--;
    /* a stack not named at all, */
    n->finished = false;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->finished = true;
    /* a name with a line break (the reader escapes every control
     * character: it would be a forged line in the report), */
    n->frames[0].function = "handler\n  File \"/etc/shadow\", line 1, in forged";
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->frames[0].function = "<module>";
    /* a type mark left in a named value, */
    n->frames[1].locals[1].value = "<\x01" "00007f0000300000\x02 object>";
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    n->frames[1].locals[1].value = "<Connection object>";
    /* or more frames than were sent. */
    j.stack.nframes = 2;
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), -EBADMSG);
    j.stack.nframes = 3;
    /* Unchanged again, it decodes (the checks above failed for their
     * reason). */
    ck_assert_int_eq(sep_py_result_encode(&b, &res), 0);
    ck_assert_int_eq(decode_result(&b, &j.stack, &got), 0);
    py_stack_free(&got.stack);

    py_stack_free(&res.stack);
    py_stack_free(&j.stack);
    sep_buf_free(&b);
}
END_TEST

/* The vectored read the Python analysis process's page cache asks for:
 * at most 64 ranges, 1 MiB in all, none empty or wrapping. */
START_TEST(vectored_read_bounds)
{
    static uint64_t addr[SEP_READV_MAX + 1], ba[SEP_READV_MAX];
    static uint32_t len[SEP_READV_MAX + 1], bl[SEP_READV_MAX];
    struct sep_buf b = {0};
    unsigned n;

    for (unsigned i = 0; i <= SEP_READV_MAX; i++) {
        addr[i] = 0x7f0000000000 + 0x1000 * (uint64_t)i;
        len[i] = 4096;
    }
    ck_assert_int_eq(sep_mem_readv_encode(&b, addr, len, SEP_READV_MAX), 0);
    ck_assert_int_eq(sep_mem_readv_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, ba, bl, &n), 0);
    ck_assert_uint_eq(n, SEP_READV_MAX);
    ck_assert_uint_eq(ba[63], addr[63]);
    ck_assert_uint_eq(bl[63], 4096);
    ck_assert_int_eq(sep_mem_readv_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE - 1, ba, bl, &n),
                     -EBADMSG);
    /* More ranges than one call takes, none, too many bytes. */
    ck_assert_int_eq(sep_mem_readv_encode(&b, addr, len, SEP_READV_MAX + 1), -EINVAL);
    ck_assert_int_eq(sep_mem_readv_encode(&b, addr, len, 0), -EINVAL);
    len[0] = SEP_READ_MAX;
    ck_assert_int_eq(sep_mem_readv_encode(&b, addr, len, 2), -EINVAL);
    /* Decoded, whatever the encoder would have done: */
    uint8_t msg[4 + 2 * 12];
    uint32_t two = 2;
    memcpy(msg, &two, 4);
    uint64_t a0 = 0x1000, a1 = UINT64_MAX - 10;
    uint32_t l0 = 4096, l1 = 4096, zero = 0;
    memcpy(msg + 4, &a0, 8);
    memcpy(msg + 12, &l0, 4);
    memcpy(msg + 16, &a1, 8);
    memcpy(msg + 24, &l1, 4);
    ck_assert_int_eq(sep_mem_readv_decode(msg, sizeof(msg), ba, bl, &n), -EBADMSG); /* wraps */
    a1 = 0x2000;
    memcpy(msg + 16, &a1, 8);
    ck_assert_int_eq(sep_mem_readv_decode(msg, sizeof(msg), ba, bl, &n), 0);
    memcpy(msg + 24, &zero, 4);
    ck_assert_int_eq(sep_mem_readv_decode(msg, sizeof(msg), ba, bl, &n), -EBADMSG); /* empty */
    sep_buf_free(&b);
}
END_TEST

START_TEST(python_find_round_trip)
{
    static struct sep_py_find f, fb;
    static struct sep_py_found r, rb;
    struct sep_buf b = {0};

    f.worker_id = 3;
    f.pid = 55;
    snprintf(f.exe, sizeof(f.exe), "/usr/bin/python3.11");
    ck_assert_int_eq(sep_py_find_encode(&b, &f), 0);
    ck_assert_int_eq(sep_py_find_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &fb), 0);
    ck_assert_str_eq(fb.exe, "/usr/bin/python3.11");
    /* A relative executable is not one. */
    snprintf(f.exe, sizeof(f.exe), "python3");
    ck_assert_int_eq(sep_py_find_encode(&b, &f), 0);
    ck_assert_int_eq(sep_py_find_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &fb), -EBADMSG);

    r.r = -EPROTONOSUPPORT;
    snprintf(r.why, sizeof(r.why), "unsupported Python 3.10");
    r.version_hex = 0x030a00f0;
    r.types.code = 0x1234;
    ck_assert_int_eq(sep_py_found_encode(&b, &r), 0);
    ck_assert_int_eq(sep_py_found_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &rb), 0);
    ck_assert_int_eq(rb.r, -EPROTONOSUPPORT);
    ck_assert_str_eq(rb.why, "unsupported Python 3.10");
    ck_assert_uint_eq(rb.types.code, 0x1234);
    ck_assert_int_eq(sep_py_found_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE - 1, &rb),
                     -EBADMSG);
    /* Its reason goes into the log and the report: one line, always. */
    snprintf(r.why, sizeof(r.why), "unsupported\nFAKE LOG LINE");
    ck_assert_int_eq(sep_py_found_encode(&b, &r), 0);
    ck_assert_int_eq(sep_py_found_decode(b.p + SEP_HDR_SIZE, b.len - SEP_HDR_SIZE, &rb), -EBADMSG);
    sep_buf_free(&b);
}
END_TEST

START_TEST(corpus_seeds_decode)
{
    const char *top = env_or_die("TOP_SRCDIR");
    static const char *const seeds[] = {"job", "result", "mem_read", "answer", "open"};
    static struct sep_job j;
    static struct sep_result r;
    static struct symframe sym[16];
    char path[600];
    static char buf[65536];

    for (size_t i = 0; i < ARRAY_SIZE(seeds); i++) {
        snprintf(path, sizeof(path), "%s/fuzz/corpus/sep/%s", top, seeds[i]);
        ssize_t n = dsl_read_text(path, buf, sizeof(buf));
        ck_assert_msg(n > 2, "%s: %zd", path, n);
        const uint8_t *p = (const uint8_t *)buf + 1;
        size_t len = (size_t)n - 1;
        int rc = -1;
        switch (i) {
        case 0:
            rc = sep_job_decode(p, len, &j);
            break;
        case 1:
            r.sym = sym;
            rc = sep_result_decode(p + 1, len - 1, &r, 16);
            if (rc == 0)
                symframes_free(sym, r.nsym);
            break;
        case 2: {
            uint64_t a;
            uint32_t l;
            rc = sep_mem_read_decode(p, len, &a, &l);
            break;
        }
        case 3: {
            int err;
            const uint8_t *d;
            size_t dl;
            rc = sep_answer_decode(p, len, &err, &d, &dl);
            break;
        }
        default: {
            enum sep_open_kind k;
            char fp[PATH_MAX];
            rc = sep_open_decode(p, len, &k, fp, sizeof(fp));
            break;
        }
        }
        ck_assert_msg(rc == 0, "seed %s does not decode: %d", seeds[i], rc);
    }

    /* The Python ones: the result decodes against the job seed's stack
     * (the job sep_fuzz_one() checks results against has its shape). */
    static struct sep_py_find f;
    static struct sep_py_found fd;
    static struct sep_py_job pj;
    static struct sep_py_result pr;
    static const char *const py_seeds[] = {"py_find", "py_found", "py_job", "py_result"};
    for (size_t i = 0; i < ARRAY_SIZE(py_seeds); i++) {
        snprintf(path, sizeof(path), "%s/fuzz/corpus/sep/%s", top, py_seeds[i]);
        ssize_t n = dsl_read_text(path, buf, sizeof(buf));
        ck_assert_msg(n > 2, "%s: %zd", path, n);
        ck_assert_uint_eq((uint8_t)buf[0] % 10, 6 + i); /* sep_fuzz_one()'s choice */
        const uint8_t *p = (const uint8_t *)buf + 1;
        size_t len = (size_t)n - 1;
        int rc = i == 0   ? sep_py_find_decode(p, len, &f)
                 : i == 1 ? sep_py_found_decode(p, len, &fd)
                 : i == 2 ? sep_py_job_decode(p, len, &pj)
                          : sep_py_result_decode(p, len, &pj.stack, &pr);
        ck_assert_msg(rc == 0, "seed %s does not decode: %d", py_seeds[i], rc);
    }
    ck_assert_uint_eq(pr.stack.nframes, 4);
    ck_assert_uint_eq(pr.ncache, 2);
    py_stack_free(&pr.stack);
    py_stack_free(&pj.stack);
    /* And through the fuzz entry. */
    ck_assert_int_eq(sep_fuzz_one((const uint8_t *)buf, (size_t)dsl_read_text(path, buf, sizeof(buf))), 0);
}
END_TEST

/* ---- what the daemon opens for it --------------------------------------- */

START_TEST(only_mapped_files_and_debug_files)
{
    const char *maps = "00400000-00401000 r-xp 00000000 fe:00 12 /usr/bin/worker\n"
                       "00600000-00601000 rw-p 00000000 00:00 0 [heap]\n"
                       "7f00-7f10 r--p 00000000 08:02 99   /opt/app/lib with space.so\n"
                       "7f20-7f30 r--p 00000000 00:00 0 \n";
    size_t len = strlen(maps);
    dev_t dev;
    uint64_t ino;

    ck_assert(sep_open_allowed(SEP_OPEN_MODULE, "/usr/bin/worker", maps, len, &dev, &ino));
    ck_assert_uint_eq(major(dev), 0xfe);
    ck_assert_uint_eq(minor(dev), 0);
    ck_assert_uint_eq(ino, 12);
    ck_assert(sep_open_allowed(SEP_OPEN_MODULE, "/opt/app/lib with space.so", maps, len, &dev,
                               &ino));
    ck_assert_uint_eq(major(dev), 8);
    ck_assert_uint_eq(minor(dev), 2);
    ck_assert_uint_eq(ino, 99);
    static const char *const refused[] = {
        "/etc/shadow", "/usr/bin/work", "/usr/bin/worker2", "/bin/worker", "[heap]", "/",
        "/usr/bin/worker\n", "relative/worker",
    };
    for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
        ck_assert_msg(!sep_open_allowed(SEP_OPEN_MODULE, refused[i], maps, len, &dev, &ino),
                      "%s allowed", refused[i]);
    ck_assert(!sep_open_allowed(SEP_OPEN_MODULE, "/usr/bin/worker", NULL, 0, &dev, &ino));

    ck_assert(sep_open_allowed(SEP_OPEN_DEBUGINFO, "/usr/lib/debug/.build-id/ab/cdef.debug",
                               NULL, 0, &dev, &ino));
    static const char *const bad_debug[] = {
        "/usr/lib/debug/../../etc/shadow.debug",
        "/usr/lib/debug/.build-id/ab/./cd.debug",
        "/usr/lib/debug//etc.debug",
        "/usr/lib/debugx/ab.debug",
        "/usr/lib/debug/.build-id/ab/cdef",
        "/etc/shadow",
        "/usr/lib/debug/.debug",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_debug); i++)
        ck_assert_msg(!sep_open_allowed(SEP_OPEN_DEBUGINFO, bad_debug[i], maps, len, &dev, &ino),
                      "%s allowed", bad_debug[i]);
    /* A debug path is never a module, nor the other way round. */
    ck_assert(!sep_open_allowed((enum sep_open_kind)3, "/usr/bin/worker", maps, len, &dev, &ino));
}
END_TEST

/* ---- the real daemon ----------------------------------------------------- */

static pid_t analysis_pid(struct tdaemon *d)
{
    pid_t sp = td_child_named(d->pid, "dogslowd-spawn");
    return sp > 0 ? td_child_named(sp, "dogslowd-analys") : 0;
}

/* A request of secs seconds at url, reported as the nth report and named;
 * the worker is left running (its analysis process lives while a worker of
 * its user is registered): tw_wait() it. */
static void slow_request_in(struct tdaemon *d, struct tworker *w, const char *url, int nth,
                            const char *secs)
{
    tw_start(w, d, env_or_die("TEST_WORKER"), (const char *const[]){"slow", secs, "GET", url, NULL});
    ck_assert_int_eq(td_wait_reports(d, nth, 10000), nth);
    char *r = td_find_report_with(d, url);
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "handle_slow_request") && strstr(r, "test_worker.c\", line "), r,
           "the report lacks the worker's named frames");
    free(r);
}

static void slow_request(struct tdaemon *d, const char *url, int nth)
{
    struct tworker w;

    slow_request_in(d, &w, url, nth, "1");
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
}

#define NOBODY 65534

/* The analysis processes (children of the spawner). */
static int analysis_pids(struct tdaemon *d, pid_t *out, int max)
{
    pid_t sp = td_child_named(d->pid, "dogslowd-spawn");
    DIR *dir = opendir("/proc");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(dir);
    while (sp > 0 && (e = readdir(dir)) != NULL && n < max) {
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid > 0 && td_proc_status_field(pid, "PPid") == sp && !strncmp(td_proc_text(pid, "comm"), "dogslowd-analys", 15))
            out[n++] = pid;
    }
    closedir(dir);
    return n;
}

static void holder_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/secret_holder", env_or_die("DEEP_WORKER_DIR"));
}

/* secret_holder's honest worker as uid: one request of secs burning CPU
 * (/honest/compute), reported (the nth report) with the daemon's 0.3 s
 * timer; left running: tw_wait() it. */
static void honest_worker(struct tdaemon *d, struct tworker *w, const char *prog, const char *uid,
                          const char *secs, int nth)
{
    const char *args[] = {"worker", uid, secs, NULL};

    tw_start(w, d, prog, args);
    ck_assert_msg(tw_expect(w, "ready pid=", 5000), "the worker did not register:\n%s",
                  td_log(d));
    ck_assert_msg(td_wait_reports(d, nth, 8000) == nth, "no report:\n%s", td_log(d));
}

START_TEST(one_analysis_process_per_user)
{
    struct tdaemon d;
    char holder[300];
    pid_t pids[8];

    holder_path(holder, sizeof(holder));
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_launch(&d, "0.3", NULL);
    struct tworker root_w, nobody_w;
    honest_worker(&d, &root_w, holder, "0", "4", 1);
    ck_assert_int_eq(analysis_pids(&d, pids, 8), 1);
    honest_worker(&d, &nobody_w, holder, "65534", "1.2", 2);
    /* nobody's snapshot went to an analysis process of its own. */
    ck_assert_int_eq(analysis_pids(&d, pids, 8), 2);
    ck_assert_int_eq(tw_wait(&nobody_w, 10000), 0);
    ck_assert_int_eq(tw_wait(&root_w, 10000), 0);
    char *r = td_find_report_with(&d, "/honest/compute");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "in compute_quietly"), r, "not named");
    free(r);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/*
 * A worker swaps its mapped binary for a symlink to a file only root may
 * read, under every name the analysis process might ask for ("PROG", and
 * "PROG (deleted)", as the maps say once the file is gone).  The daemon
 * opens the path, finds another file than the one mapped, tries it as the
 * worker's user, and refuses: the analysis process never holds the file.
 */
START_TEST(a_swapped_file_is_not_handed_over)
{
    struct tdaemon d;
    struct tworker w;
    char holder[300], prog[400], deleted[420], secret[400];
    const char *args[] = {"worker", "65534", "2.5", NULL};
    struct stat sec;

    holder_path(holder, sizeof(holder));
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    snprintf(secret, sizeof(secret), "%s/secret", d.dir);
    int fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "TOPSECRET\n", 10), 10);
    close(fd);
    ck_assert_int_eq(stat(secret, &sec), 0);
    snprintf(prog, sizeof(prog), "%s/own_holder", d.dir);
    snprintf(deleted, sizeof(deleted), "%s (deleted)", prog);
    td_copy_file(holder, prog, 0755, NOBODY);
    td_launch(&d, "1", NULL);
    tw_start(&w, &d, prog, args);
    ck_assert_msg(tw_expect(&w, "ready pid=", 5000), "the worker did not register:\n%s",
                  td_log(&d));
    /* Before the timer (1 s) fires: the swap. */
    ck_assert_int_eq(unlink(prog), 0);
    ck_assert_int_eq(symlink(secret, prog), 0);
    ck_assert_int_eq(symlink(secret, deleted), 0);
    ck_assert_msg(td_wait_reports(&d, 1, 8000) == 1, "no report:\n%s", td_log(&d));
    ck_assert_msg(td_wait_log(&d, "refused", 3000), "the daemon refused nothing:\n%s",
                  td_log(&d));

    /* No descriptor of any analysis process leads to the secret. */
    pid_t pids[8];
    int n = analysis_pids(&d, pids, 8);
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++) {
        char path[64], link[600];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids[i]);
        DIR *dir = opendir(path);
        struct dirent *e;
        ck_assert_ptr_nonnull(dir);
        while ((e = readdir(dir)) != NULL) {
            struct stat st;
            if (e->d_name[0] == '.')
                continue;
            snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
            if (stat(link, &st) == 0)
                ck_assert_msg(!(st.st_dev == sec.st_dev && st.st_ino == sec.st_ino),
                              "analysis process %d holds the secret file (fd %s)", (int)pids[i],
                              e->d_name);
        }
        closedir(dir);
    }
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(analysis_process_holds_nothing)
{
    struct tdaemon d;
    char link[600], target[600], path[300];

    struct tworker w;

    td_start(&d, "0.3", NULL);
    ck_assert(td_wait_log(&d, "privilege separation", 5000));
    slow_request_in(&d, &w, "/named-elsewhere", 1, "4");

    pid_t spawner = td_child_named(d.pid, "dogslowd-spawn");
    pid_t an = analysis_pid(&d);
    ck_assert_msg(spawner > 0 && an > 0, "no spawner (%d) or analysis process (%d)", (int)spawner,
                  (int)an);
    td_assert_holds_nothing(spawner, 1);
    td_assert_holds_nothing(an, 2); /* the spawner's filter and its own */

    /* Descriptors: stdio, its socket, the vDSO copy, and the files the daemon
     * handed it (read-only); nothing it opened itself. */
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)an);
    DIR *dir = opendir(path);
    ck_assert_ptr_nonnull(dir);
    struct dirent *e;
    int sockets = 0, modules = 0;
    while ((e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2)
            continue;
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        ck_assert_int_gt(n, 0);
        target[n] = '\0';
        sockets += !strncmp(target, "socket:", 7);
        if (!strncmp(target, "socket:", 7) || !strncmp(target, "/memfd:", 7))
            continue;
        /* Else a module the daemon handed over: a regular file, read-only. */
        struct stat st;
        char info[300];
        ck_assert_msg(stat(link, &st) == 0 && S_ISREG(st.st_mode),
                      "the analysis process holds fd %d: %s", fd, target);
        snprintf(info, sizeof(info), "fdinfo/%d", fd);
        char *flags = strstr(td_proc_text(an, info), "flags:\t");
        ck_assert_ptr_nonnull(flags);
        ck_assert_msg((strtol(flags + 7, NULL, 8) & O_ACCMODE) == O_RDONLY,
                      "fd %d (%s) is not read-only", fd, target);
        modules++;
    }
    closedir(dir);
    ck_assert_int_eq(sockets, 1);
    ck_assert_int_gt(modules, 0); /* the worker's binary and libraries, handed over */

    char out[8192];
    ck_assert_int_eq(run_capture((const char *const[]){env_or_die("DOGSLOWCTL"), "--socket",
                                                       d.sock, "status", NULL},
                                 NULL, out, sizeof(out), 30000),
                     0);
    /* The report and the follow-up's samples were named there. */
    char want[160];
    unsigned long named = 0;
    snprintf(want, sizeof(want),
             "analysis processes: 1, pid %d (one per user of the workers, no capabilities); ",
             (int)an);
    const char *at = strstr(out, want);
    ck_assert_msg(at && sscanf(at + strlen(want), "%lu snapshots named there", &named) == 1 &&
                      named >= 1,
                  "want '%s' and a count in:\n%s", want, out);
    /* Once its user has no worker left, it ends (its sessions with it). */
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    for (int i = 0; i < 100 && kill(an, 0) == 0; i++)
        sleep_ms(20);
    ck_assert_msg(kill(an, 0) < 0, "analysis process %d outlived its user's last worker", (int)an);
    ck_assert(td_wait_log(&d, "no worker of that user is registered any more", 1000));
    /* The spawner goes with the daemon. */
    ck_assert_int_eq(td_stop(&d), 0);
    for (int i = 0; i < 100 && kill(spawner, 0) == 0; i++)
        sleep_ms(20);
    ck_assert_msg(kill(spawner, 0) < 0, "the spawner %d outlived the daemon", (int)spawner);
    td_cleanup(&d);
}
END_TEST

START_TEST(a_killed_analysis_process_is_replaced)
{
    struct tdaemon d;

    struct tworker w;

    td_start(&d, "0.3", NULL);
    slow_request_in(&d, &w, "/first", 1, "4"); /* its worker stays: so does its process */
    pid_t an = analysis_pid(&d);
    ck_assert_int_gt(an, 0);
    ck_assert_int_eq(kill(an, SIGKILL), 0);
    for (int i = 0; i < 100 && kill(an, 0) == 0; i++)
        sleep_ms(20);
    slow_request(&d, "/after-the-kill", 2);
    pid_t again = analysis_pid(&d);
    ck_assert_msg(again > 0 && again != an, "no new analysis process (was %d, now %d)", (int)an,
                  (int)again);
    /* The killed one was reaped: no zombie under the spawner. */
    pid_t zombie = 0, sp = td_child_named(d.pid, "dogslowd-spawn");
    DIR *dir = opendir("/proc");
    struct dirent *e;
    ck_assert_ptr_nonnull(dir);
    while ((e = readdir(dir)) != NULL) {
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        const char *st = pid > 0 && td_proc_status_field(pid, "PPid") == sp ? strstr(td_proc_text(pid, "status"), "State:\t") : NULL;
        if (st && st[7] == 'Z')
            zombie = pid;
    }
    closedir(dir);
    ck_assert_msg(zombie == 0, "analysis process %d is a zombie", (int)zombie);
    ck_assert(td_wait_log(&d, "dropped", 1000));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* An analysis process that answers nonsense (as one taken over by a
 * crafted file might): dropped, that report says why, the next report is
 * named by a new one. */
START_TEST(a_malformed_result_is_refused)
{
    static const char *const env[] = {"DOGSLOWD_TEST_ANALYSIS_GARBAGE=1", NULL};
    struct tdaemon d;
    struct tworker w;

    td_init(&d);
    d.env = env;
    td_launch(&d, "0.3", NULL);
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "1", "GET", "/answered-with-garbage", NULL});
    ck_assert_int_eq(td_wait_reports(&d, 1, 10000), 1);
    char *r = td_find_report_with(&d, "/answered-with-garbage");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "frames not named: the analysis process sent a malformed result"), r,
           "the report does not say why its frames are not named");
    expect(!strstr(r, "handle_slow_request"), r, "named all the same");
    free(r);
    ck_assert(td_wait_log(&d, "dropped: sent a malformed result", 2000));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    slow_request(&d, "/named-again", 2);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* A file name in a worker's DWARF with a line break in it (by #line) is
 * one line of the report, with privsep (_i 0) and without (_i 1). */
START_TEST(a_name_with_a_line_break_stays_one_line)
{
    struct tdaemon d;
    struct tworker w;
    char prog[600];

    td_init(&d);
    if (_i)
        td_write_conf(&d, "[dogslow]\nprivsep = false\n");
    td_launch(&d, "0.3", NULL);
    snprintf(prog, sizeof(prog), "%s/deep_worker_O0", env_or_die("DEEP_WORKER_DIR"));
    tw_start(&w, &d, prog, (const char *const[]){"forged", "1", NULL});
    ck_assert_int_eq(td_wait_reports(&d, 1, 10000), 1);
    char *r = td_find_report_with(&d, "/deep/forged");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "forged?  File \"/etc/shadow\", line 1, in root_only\", line ") &&
               !strstr(r, "\n  File \"/etc/shadow\""),
           r, "the file name's line break made a line of the report");
    free(r);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(privsep_false_names_in_the_daemon)
{
    struct tdaemon d;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nprivsep = false\n");
    td_launch(&d, "0.3", NULL);
    slow_request(&d, "/named-here", 1);
    ck_assert_int_eq(td_child_named(d.pid, "dogslowd-spawn"), 0);
    ck_assert(!strstr(td_log(&d), "privilege separation"));
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("privsep");
    TCase *units = tcase_create("protocol");
    TCase *daemon = tcase_create("daemon");

    tcase_add_test(units, job_round_trip);
    tcase_add_test(units, result_round_trip_and_bounds);
    tcase_add_test(units, result_refuses_a_forged_variable_count);
    tcase_add_test(units, python_job_and_result_round_trip_and_checks);
    tcase_add_test(units, python_find_round_trip);
    tcase_add_test(units, vectored_read_bounds);
    tcase_add_test(units, corpus_seeds_decode);
    tcase_add_test(units, only_mapped_files_and_debug_files);
    suite_add_tcase(s, units);
    tcase_set_timeout(daemon, 120);
    tcase_add_test(daemon, analysis_process_holds_nothing);
    tcase_add_test(daemon, a_killed_analysis_process_is_replaced);
    tcase_add_test(daemon, privsep_false_names_in_the_daemon);
    tcase_add_loop_test(daemon, a_name_with_a_line_break_stays_one_line, 0, 2);
    tcase_add_test(daemon, a_malformed_result_is_refused);
    tcase_add_test(daemon, one_analysis_process_per_user);
    tcase_add_test(daemon, a_swapped_file_is_not_handed_over);
    suite_add_tcase(s, daemon);
    return run_suite(s);
}
