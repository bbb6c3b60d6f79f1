/* SPDX-License-Identifier: MIT */
/*
 * The privilege-separation protocol: messages between the daemon (which
 * holds CAP_SYS_PTRACE) and its analysis process (which holds nothing and
 * parses the workers' ELF and DWARF).  See sep.c for who sends what, and
 * docs/architecture.md, "The trust boundary".
 *
 * A message is a 16-byte header {magic, type, flags 0, len, 0} and len
 * bytes of payload, over a SOCK_STREAM socketpair (a stack copy is up to
 * 1 MiB, a maps text up to 8 MiB: more than one datagram may carry).  The
 * payloads are decoded with common/proto.c's bounds-checked cursor, which
 * must consume exactly everything.  Each side treats what the other sends
 * as hostile: the daemon because the analysis process may have been taken
 * over by a worker's crafted file, the analysis process because it checks
 * cheaply.  fuzz/ runs every decoder (check_fuzz replays the corpus).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "analysis.h"
#include "core.h"
#include "util.h"

/* ---- a growable message under construction ------------------------------- */

static void put(struct sep_buf *b, const void *p, size_t n)
{
    if (b->err || n == 0) /* p may be NULL then */
        return;
    if (n > SEP_MSG_MAX + SEP_HDR_SIZE - b->len) {
        b->err = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->err = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u8(struct sep_buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_u16(struct sep_buf *b, uint16_t v)
{
    put(b, &v, 2);
}

static void put_u32(struct sep_buf *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_u64(struct sep_buf *b, uint64_t v)
{
    put(b, &v, 8);
}

/* A u16 length and the bytes, cut at max (never inside the buffer's NUL). */
static void put_str(struct sep_buf *b, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;

    put_u16(b, (uint16_t)n);
    put(b, s, n);
}

static void put_blob(struct sep_buf *b, const void *p, uint32_t n)
{
    put_u32(b, n);
    put(b, p, n);
}

void sep_begin(struct sep_buf *b, enum sep_type type)
{
    struct sep_hdr h = {.magic = SEP_MAGIC, .type = (uint16_t)type};

    b->len = 0;
    b->err = false;
    put(b, &h, sizeof(h));
}

void sep_put_bytes(struct sep_buf *b, const void *p, size_t n)
{
    put(b, p, n);
}

void sep_buf_free(struct sep_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- sending and receiving ----------------------------------------------- */

int sep_send(int fd, struct sep_buf *b, int pass_fd)
{
    struct sep_hdr h;
    size_t off = 0;

    if (b->err || b->len < SEP_HDR_SIZE)
        return -EMSGSIZE;
    memcpy(&h, b->p, sizeof(h));
    h.len = (uint32_t)(b->len - SEP_HDR_SIZE);
    memcpy(b->p, &h, sizeof(h));
    if (pass_fd >= 0) {
        /* The descriptor rides on the header's bytes. */
        ssize_t n;
        do
            n = dsl_send_fd(fd, b->p, SEP_HDR_SIZE, pass_fd, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        off = (size_t)n;
    }
    while (off < b->len) {
        ssize_t n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == ECONNRESET ? -EPIPE : -errno; /* the peer is gone */
        }
        off += (size_t)n;
    }
    return 0;
}

/* Wait until fd is readable, at most until deadline (CLOCK_MONOTONIC ns; 0:
 * no limit). */
static int wait_readable(int fd, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = -1;

        if (deadline) {
            uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
            if (now >= deadline)
                return -ETIMEDOUT;
            ms = (int)((deadline - now + 999999) / 1000000);
        }
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int read_full(int fd, void *buf, size_t len, uint64_t deadline, int *ret_fd)
{
    uint8_t *p = buf;
    size_t off = 0;

    while (off < len) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * 4)];
        } cbuf;
        struct iovec iov = {.iov_base = p + off, .iov_len = len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int r = wait_readable(fd, deadline);
        ssize_t n;

        if (r < 0)
            return r;
        if (ret_fd) {
            mh.msg_control = cbuf.buf;
            mh.msg_controllen = sizeof(cbuf.buf);
        }
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return errno == ECONNRESET ? -EPIPE : -errno; /* the peer is gone */
        }
        if (n == 0)
            return -EPIPE;
        if (ret_fd)
            (void)dsl_take_fds(&mh, ret_fd); /* one per message, at most */
        off += (size_t)n;
    }
    return 0;
}

int sep_recv(int fd, struct sep_buf *b, struct sep_hdr *ret_hdr, int *ret_fd, uint64_t deadline)
{
    int passed = -1;
    int r = read_full(fd, ret_hdr, sizeof(*ret_hdr), deadline, &passed);

    if (ret_fd)
        *ret_fd = -1;
    if (r == 0 && (ret_hdr->magic != SEP_MAGIC || ret_hdr->flags || ret_hdr->reserved ||
                   ret_hdr->type == 0 || ret_hdr->type >= SEP_TYPE_END ||
                   ret_hdr->len > SEP_MSG_MAX))
        r = -EBADMSG;
    if (r == 0 && ret_hdr->len > b->cap) {
        uint8_t *q = realloc(b->p, ret_hdr->len);
        if (!q)
            r = -ENOMEM;
        else {
            b->p = q;
            b->cap = ret_hdr->len;
        }
    }
    if (r == 0)
        r = read_full(fd, b->p, ret_hdr->len, deadline, NULL);
    b->len = r == 0 ? ret_hdr->len : 0;
    b->err = false;
    if (passed >= 0) {
        if (r == 0 && ret_fd)
            *ret_fd = passed;
        else
            close(passed);
    }
    return r;
}

/* ---- frames (both directions) -------------------------------------------- */

static void put_frame(struct sep_buf *b, const struct frame *f)
{
    put_u64(b, f->ip);
    put_u8(b, f->activation);
    put_u32(b, f->regs_known);
    for (unsigned i = 0; i < DSL_NREGS; i++)
        put_u64(b, f->regs[i]);
}

static void get_frame(struct dsl_cursor *c, struct frame *f)
{
    uint8_t act;

    f->ip = dsl_get_u64(c);
    act = dsl_get_u8(c);
    f->regs_known = dsl_get_u32(c);
    for (unsigned i = 0; i < DSL_NREGS; i++)
        f->regs[i] = dsl_get_u64(c);
    if (act > 1 || f->regs_known >> DSL_NREGS)
        c->err = true;
    f->activation = act == 1;
}

/* A u32 length and that many bytes, left where they are (*ret points into
 * the message). */
static uint32_t get_blob(struct dsl_cursor *c, const uint8_t **ret, uint32_t max)
{
    uint32_t n = dsl_get_u32(c);

    *ret = NULL;
    if (c->err)
        return 0;
    if (n > max || c->len - c->off < n) {
        c->err = true;
        return 0;
    }
    *ret = c->p + c->off;
    c->off += n;
    return n;
}

/* ---- the job: parent -> analysis ----------------------------------------- */

#define JOB_LOCALS  0x1u
#define JOB_GONE    0x2u
#define JOB_UNWIND  0x4u
#define JOB_REGS    0x8u
#define JOB_KNOWN   0xfu

int sep_job_encode(struct sep_buf *b, const struct sep_job *j)
{
    uint32_t flags = (j->with_locals ? JOB_LOCALS : 0) | (j->gone ? JOB_GONE : 0) |
                     (j->needs_unwind ? JOB_UNWIND : 0) | (j->have_regs ? JOB_REGS : 0);

    if (j->nframes > DSL_FRAMES_MAX || j->nforget > SEP_FORGET_MAX ||
        j->stack_len > SEP_STACK_MAX || j->maps_len > DSL_MAPS_MAX)
        return -EINVAL;
    sep_begin(b, SEP_JOB);
    put_u64(b, j->worker_id);
    put_u32(b, (uint32_t)j->pid);
    put_u32(b, (uint32_t)j->tid);
    put_u32(b, (uint32_t)j->err);
    put_str(b, j->note, sizeof(j->note) - 1);
    put_u32(b, flags);
    put_u32(b, j->regs_known);
    for (unsigned i = 0; i < DSL_NREGS; i++)
        put_u64(b, j->regs[i]);
    put_u32(b, j->max_frames);
    put_u32(b, j->max_value_bytes);
    put_str(b, j->redact, sizeof(j->redact) - 1);
    put_u32(b, j->nframes);
    for (unsigned i = 0; i < j->nframes; i++)
        put_frame(b, &j->frames[i]);
    put_u64(b, j->stack_addr);
    put_blob(b, j->stack, j->stack_len);
    put_blob(b, j->maps, j->maps_len);
    put_u32(b, j->nforget);
    for (unsigned i = 0; i < j->nforget; i++)
        put_u64(b, j->forget[i]);
    return b->err ? -EMSGSIZE : 0;
}

int sep_job_decode(const uint8_t *p, size_t len, struct sep_job *j)
{
    struct dsl_cursor c;
    uint32_t flags;
    const uint8_t *maps;

    memset(j, 0, offsetof(struct sep_job, frames));
    dsl_cursor_init(&c, p, len);
    j->worker_id = dsl_get_u64(&c);
    j->pid = (pid_t)dsl_get_u32(&c);
    j->tid = (pid_t)dsl_get_u32(&c);
    j->err = (int)dsl_get_u32(&c);
    dsl_get_str_max(&c, j->note, sizeof(j->note) - 1);
    flags = dsl_get_u32(&c);
    j->regs_known = dsl_get_u32(&c);
    for (unsigned i = 0; i < DSL_NREGS; i++)
        j->regs[i] = dsl_get_u64(&c);
    j->max_frames = dsl_get_u32(&c);
    j->max_value_bytes = dsl_get_u32(&c);
    dsl_get_str_max(&c, j->redact, sizeof(j->redact) - 1);
    j->nframes = dsl_get_u32(&c);
    if (j->nframes > DSL_FRAMES_MAX)
        return -EBADMSG;
    for (unsigned i = 0; i < j->nframes && !c.err; i++)
        get_frame(&c, &j->frames[i]);
    j->stack_addr = dsl_get_u64(&c);
    j->stack_len = get_blob(&c, &j->stack, SEP_STACK_MAX);
    j->maps_len = get_blob(&c, &maps, DSL_MAPS_MAX);
    j->maps = (const char *)maps;
    j->nforget = dsl_get_u32(&c);
    if (j->nforget > SEP_FORGET_MAX)
        return -EBADMSG;
    for (unsigned i = 0; i < j->nforget; i++)
        j->forget[i] = dsl_get_u64(&c);
    if (dsl_cursor_finish(&c) < 0 || (flags & ~JOB_KNOWN) || j->pid <= 0 || j->tid <= 0 ||
        j->err < 0 || j->err > 4095 ||
        j->regs_known >> DSL_NREGS || j->max_frames == 0 || j->max_frames > DSL_FRAMES_MAX ||
        j->stack_addr + j->stack_len < j->stack_addr)
        return -EBADMSG;
    j->with_locals = flags & JOB_LOCALS;
    j->gone = flags & JOB_GONE;
    j->needs_unwind = flags & JOB_UNWIND;
    j->have_regs = flags & JOB_REGS;
    return 0;
}

/* ---- the result: analysis -> parent -------------------------------------- */

/* The notes a frame's locals may carry (struct symframe.vars_note: static
 * text), by number; an unknown one travels as the first. */
static const char *const vars_notes[] = {
    "locals not shown",
    "more locals not shown",
    "no module at this address",
    "no debug info",
};

static uint8_t note_code(const char *note)
{
    if (!note)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(vars_notes); i++)
        if (!strcmp(note, vars_notes[i]))
            return (uint8_t)(i + 1);
    return 1;
}

int sep_result_encode(struct sep_buf *b, const struct sep_result *r)
{
    if (r->nframes > DSL_FRAMES_MAX || r->nsym > DSL_SYMFRAMES_MAX)
        return -EINVAL;
    sep_begin(b, SEP_RESULT);
    put_u32(b, (uint32_t)r->err);
    put_str(b, r->note, sizeof(r->note) - 1);
    put_u64(b, r->unwind_ns);
    put_u32(b, r->nframes);
    for (unsigned i = 0; i < r->nframes; i++)
        put_frame(b, &r->frames[i]);
    put_u32(b, r->nsym);
    for (unsigned i = 0; i < r->nsym; i++) {
        const struct symframe *f = &r->sym[i];
        unsigned nvars = f->nvars < SEP_VARS_PER_FRAME ? f->nvars : SEP_VARS_PER_FRAME;

        put_u64(b, f->ip);
        put_u64(b, f->offset);
        put_u32(b, (uint32_t)f->line);
        put_u8(b, f->inlined);
        put_str(b, f->module, sizeof(f->module) - 1);
        put_str(b, f->function, sizeof(f->function) - 1);
        put_str(b, f->file, sizeof(f->file) - 1);
        put_u8(b, note_code(f->vars_note));
        put_u16(b, (uint16_t)nvars);
        for (unsigned k = 0; k < nvars; k++) {
            put_str(b, f->vars[k].name, SEP_VAR_NAME_MAX);
            put_str(b, f->vars[k].value, SEP_VAR_VALUE_MAX);
        }
    }
    return b->err ? -EMSGSIZE : 0;
}

/* A string as dsl_get_str_max() reads it (checked the same way), malloc'd;
 * max <= SEP_VAR_VALUE_MAX. */
static char *get_dup(struct dsl_cursor *c, size_t max)
{
    char tmp[SEP_VAR_VALUE_MAX + 1];
    char *s;

    dsl_get_str_max(c, tmp, max);
    if (c->err)
        return NULL;
    dsl_unctrl(tmp);
    s = strdup(tmp);
    if (!s)
        c->err = true;
    return s;
}

int sep_result_decode(const uint8_t *p, size_t len, struct sep_result *r, unsigned max_sym)
{
    struct dsl_cursor c;
    unsigned total_vars = 0;
    uint32_t nsym;

    r->nsym = 0;
    dsl_cursor_init(&c, p, len);
    r->err = (int)dsl_get_u32(&c);
    dsl_get_str_max(&c, r->note, sizeof(r->note) - 1);
    dsl_unctrl(r->note);
    r->unwind_ns = dsl_get_u64(&c);
    r->nframes = dsl_get_u32(&c);
    if (c.err || r->nframes > DSL_FRAMES_MAX || r->err < 0 || r->err > 4095)
        return -EBADMSG;
    for (unsigned i = 0; i < r->nframes && !c.err; i++)
        get_frame(&c, &r->frames[i]);
    nsym = dsl_get_u32(&c);
    if (c.err || nsym > max_sym || nsym > DSL_SYMFRAMES_MAX)
        return -EBADMSG;
    for (unsigned i = 0; i < nsym && !c.err; i++) {
        struct symframe *f = &r->sym[i];
        uint32_t line;
        uint8_t inl, note;
        uint16_t nvars;

        memset(f, 0, sizeof(*f));
        r->nsym = i + 1; /* what symframes_free() must see on an error */
        f->ip = dsl_get_u64(&c);
        f->offset = dsl_get_u64(&c);
        line = dsl_get_u32(&c);
        inl = dsl_get_u8(&c);
        dsl_get_str_max(&c, f->module, sizeof(f->module) - 1);
        dsl_get_str_max(&c, f->function, sizeof(f->function) - 1);
        dsl_get_str_max(&c, f->file, sizeof(f->file) - 1);
        dsl_unctrl(f->module);
        dsl_unctrl(f->function);
        dsl_unctrl(f->file);
        note = dsl_get_u8(&c);
        nvars = dsl_get_u16(&c);
        if (c.err || line > INT32_MAX || inl > 1 || note > ARRAY_SIZE(vars_notes) ||
            nvars > SEP_VARS_PER_FRAME || total_vars + nvars > SEP_VARS_PER_RESULT) {
            c.err = true;
            break;
        }
        f->line = (int)line;
        f->inlined = inl == 1;
        f->vars_note = note ? vars_notes[note - 1] : NULL;
        if (nvars) {
            f->vars = calloc(nvars, sizeof(*f->vars));
            if (!f->vars) {
                c.err = true;
                break;
            }
        }
        for (unsigned k = 0; k < nvars && !c.err; k++) {
            f->vars[k].name = get_dup(&c, SEP_VAR_NAME_MAX);
            f->vars[k].value = c.err ? NULL : get_dup(&c, SEP_VAR_VALUE_MAX);
            f->nvars = k + 1;
        }
        total_vars += nvars;
    }
    if (dsl_cursor_finish(&c) < 0) {
        symframes_free(r->sym, r->nsym);
        r->nsym = 0;
        return -EBADMSG;
    }
    return 0;
}

/* ---- the requests: analysis -> parent, and their answers ----------------- */

int sep_mem_read_decode(const uint8_t *p, size_t len, uint64_t *ret_addr, uint32_t *ret_len)
{
    struct dsl_cursor c;

    dsl_cursor_init(&c, p, len);
    *ret_addr = dsl_get_u64(&c);
    *ret_len = dsl_get_u32(&c);
    if (dsl_cursor_finish(&c) < 0 || *ret_len == 0 || *ret_len > SEP_READ_MAX ||
        *ret_addr + *ret_len < *ret_addr)
        return -EBADMSG;
    return 0;
}

void sep_mem_read_encode(struct sep_buf *b, uint64_t addr, uint32_t len)
{
    sep_begin(b, SEP_MEM_READ);
    put_u64(b, addr);
    put_u32(b, len);
}

int sep_mem_readv_encode(struct sep_buf *b, const uint64_t *addr, const uint32_t *len,
                         unsigned n)
{
    uint64_t total = 0;

    if (n == 0 || n > SEP_READV_MAX)
        return -EINVAL;
    sep_begin(b, SEP_MEM_READV);
    put_u32(b, n);
    for (unsigned i = 0; i < n; i++) {
        total += len[i];
        put_u64(b, addr[i]);
        put_u32(b, len[i]);
    }
    return total > SEP_READ_MAX || b->err ? -EINVAL : 0;
}

int sep_mem_readv_decode(const uint8_t *p, size_t len, uint64_t *ret_addr, uint32_t *ret_len,
                         unsigned *ret_n)
{
    struct dsl_cursor c;
    uint64_t total = 0;
    uint32_t n;

    dsl_cursor_init(&c, p, len);
    n = dsl_get_u32(&c);
    if (c.err || n == 0 || n > SEP_READV_MAX)
        return -EBADMSG;
    for (unsigned i = 0; i < n; i++) {
        ret_addr[i] = dsl_get_u64(&c);
        ret_len[i] = dsl_get_u32(&c);
        total += ret_len[i];
        if (ret_len[i] == 0 || ret_addr[i] + ret_len[i] < ret_addr[i])
            return -EBADMSG;
    }
    if (dsl_cursor_finish(&c) < 0 || total > SEP_READ_MAX)
        return -EBADMSG;
    *ret_n = n;
    return 0;
}

/* An answer: an errno (0: done) and, when 0, the bytes. */
void sep_answer_encode(struct sep_buf *b, enum sep_type type, int err, const void *p, size_t n)
{
    sep_begin(b, type);
    put_u32(b, (uint32_t)err);
    if (!err)
        put(b, p, n);
}

int sep_answer_decode(const uint8_t *p, size_t len, int *ret_err, const uint8_t **ret_data,
                      size_t *ret_len)
{
    int32_t err;

    if (len < 4)
        return -EBADMSG;
    memcpy(&err, p, 4);
    if (err < 0 || err > 4095 || (err && len != 4))
        return -EBADMSG;
    *ret_err = err;
    *ret_data = p + 4;
    *ret_len = len - 4;
    return 0;
}

void sep_open_encode(struct sep_buf *b, enum sep_open_kind kind, const char *path)
{
    sep_begin(b, SEP_OPEN);
    put_u8(b, (uint8_t)kind);
    put_str(b, path, PATH_MAX - 1);
}

int sep_open_decode(const uint8_t *p, size_t len, enum sep_open_kind *ret_kind, char *path,
                    size_t size)
{
    struct dsl_cursor c;
    uint8_t kind;

    dsl_cursor_init(&c, p, len);
    kind = dsl_get_u8(&c);
    dsl_get_str_max(&c, path, size - 1);
    if (dsl_cursor_finish(&c) < 0 || (kind != SEP_OPEN_MODULE && kind != SEP_OPEN_DEBUGINFO) ||
        path[0] != '/')
        return -EBADMSG;
    *ret_kind = (enum sep_open_kind)kind;
    return 0;
}

/* ---- the CPython reader's halves ------------------------------------------ */

/* A rendered value: a u32 length and the bytes (no NUL), up to this. */
#define PY_VALUE_MAX (65536u + 4096u)

static void put_text(struct sep_buf *b, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;

    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* The reader escapes every control character a worker's data holds, so
 * its names and values have none -- but the type marks of a value not yet
 * named (marks).  One that does was not made by the reader: it would be a
 * line of its own in a report or the log. */
static bool plain_text(const uint8_t *p, size_t n, bool marks)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 || p[i] == 0x7f) && !(marks && (p[i] == 1 || p[i] == 2)))
            return false;
    return true;
}

/* A string of at most max bytes into s's arena; NULL (and c->err) when it
 * is malformed, holds a control character (but marks, if allowed) or the
 * arena is full. */
static const char *get_text(struct dsl_cursor *c, struct py_stack *s, bool wide, size_t max,
                            bool marks)
{
    uint32_t n = wide ? dsl_get_u32(c) : dsl_get_u16(c);
    const char *t;

    if (c->err)
        return NULL;
    if (n > max || c->len - c->off < n || !plain_text(c->p + c->off, n, marks)) {
        c->err = true;
        return NULL;
    }
    t = py_stack_add_text(s, (const char *)c->p + c->off, n);
    if (!t)
        c->err = true;
    c->off += n;
    return t;
}

static void put_types(struct sep_buf *b, const struct py_types *t)
{
    const uint64_t v[] = {t->code, t->cell, t->none, t->boolean, t->integer, t->floating, t->str,
                          t->bytes, t->tuple, t->list, t->dict, t->set, t->frozenset};

    _Static_assert(sizeof(v) == sizeof(*t), "every type is sent");
    for (size_t i = 0; i < ARRAY_SIZE(v); i++)
        put_u64(b, v[i]);
}

static void get_types(struct dsl_cursor *c, struct py_types *t)
{
    uint64_t *v[] = {&t->code, &t->cell, &t->none, &t->boolean, &t->integer, &t->floating, &t->str,
                     &t->bytes, &t->tuple, &t->list, &t->dict, &t->set, &t->frozenset};

    for (size_t i = 0; i < ARRAY_SIZE(v); i++)
        *v[i] = dsl_get_u64(c);
}

#define PYF_ENTRY     0x1u
#define PYF_LTRUNC    0x2u
#define PYF_NAMED     0x4u
#define PYF_KNOWN     0x7u
#define PYS_TRUNC     0x1u
#define PYS_FINISHED  0x2u
#define PYS_KNOWN     0x3u

static void put_py_stack(struct sep_buf *b, const struct py_stack *s)
{
    const struct py_limits *l = &s->lim;
    int err = s->err < 0 && s->err > -4096 ? -s->err : 0;

    put_u32(b, l->max_frames);
    put_u32(b, l->max_locals);
    put_u32(b, l->max_value_bytes);
    put_u32(b, l->max_items);
    put_u64(b, l->max_text_bytes);
    put_u64(b, l->max_read_bytes);
    put_u32(b, (s->truncated ? PYS_TRUNC : 0) | (s->finished ? PYS_FINISHED : 0));
    put_u32(b, (uint32_t)err);
    put_str(b, s->note, sizeof(s->note) - 1);
    put_u32(b, s->version_hex);
    put_u64(b, s->bytes_read);
    put_u32(b, s->reads);
    put_u64(b, s->held_bytes);
    put_u32(b, s->held_reads);
    put_u32(b, s->code_misses);
    put_u32(b, s->nframes);
    for (unsigned i = 0; i < s->nframes; i++) {
        const struct py_frame *f = &s->frames[i];
        /* Names exist once py_finish() ran: before, they are not set. */
        bool named = s->finished && f->filename && f->function;

        put_u32(b, (f->entry ? PYF_ENTRY : 0) | (f->locals_truncated ? PYF_LTRUNC : 0) |
                       (named ? PYF_NAMED : 0));
        if (named) {
            put_str(b, f->filename, SEP_PY_NAME_MAX);
            put_str(b, f->function, SEP_PY_NAME_MAX);
        }
        put_u32(b, f->line > 0 ? (uint32_t)f->line : 0);
        put_u64(b, f->frame_addr);
        put_u64(b, f->code_addr);
        put_u64(b, f->instr);
        put_u32(b, (uint32_t)f->tlbc_index);
        put_u64(b, f->names_seen);
        put_u64(b, (uint64_t)f->nslots_seen);
        put_u32(b, f->nlocals);
        for (unsigned k = 0; k < f->nlocals; k++) {
            const struct py_local *lo = &f->locals[k];

            put_u32(b, lo->slot);
            put_u8(b, s->finished && lo->name);
            if (s->finished && lo->name)
                put_str(b, lo->name, SEP_PY_NAME_MAX);
            put_text(b, lo->value, PY_VALUE_MAX);
        }
    }
}

/* Into a new stack laid out for the limits the message carries (the
 * caller compares them with what it expects); extra text room for the
 * files and functions, which the sender's arena may have shared between
 * frames. */
static int get_py_stack(struct dsl_cursor *c, struct py_stack *s)
{
    struct py_limits l;
    uint32_t flags, err, nframes;

    memset(s, 0, sizeof(*s));
    memset(&l, 0, sizeof(l));
    l.max_frames = dsl_get_u32(c);
    l.max_locals = dsl_get_u32(c);
    l.max_value_bytes = dsl_get_u32(c);
    l.max_items = dsl_get_u32(c);
    l.max_text_bytes = dsl_get_u64(c);
    l.max_read_bytes = dsl_get_u64(c);
    if (c->err || l.max_frames == 0 || l.max_frames > SEP_PY_FRAMES_MAX ||
        l.max_locals > SEP_PY_LOCALS_MAX || l.max_value_bytes < 16 || l.max_value_bytes > 65536 ||
        l.max_items > 64 || l.max_text_bytes < 1024 || l.max_text_bytes > (64u << 20) ||
        l.max_read_bytes == 0 || l.max_read_bytes > (64u << 20))
        return -EBADMSG;
    if (py_stack_alloc(s, &l, (size_t)l.max_frames * 2 * (SEP_PY_NAME_MAX + 1)) < 0)
        return -ENOMEM;
    if (memcmp(&s->lim, &l, sizeof(l)) != 0)
        goto bad; /* bounded differently than py_capture() bounds them */
    flags = dsl_get_u32(c);
    err = dsl_get_u32(c);
    dsl_get_str_max(c, s->note, sizeof(s->note) - 1);
    s->version_hex = dsl_get_u32(c);
    s->bytes_read = dsl_get_u64(c);
    s->reads = dsl_get_u32(c);
    s->held_bytes = dsl_get_u64(c);
    s->held_reads = dsl_get_u32(c);
    s->code_misses = dsl_get_u32(c);
    nframes = dsl_get_u32(c);
    if (c->err || (flags & ~PYS_KNOWN) || err > 4095 || nframes > l.max_frames ||
        !plain_text((const uint8_t *)s->note, strlen(s->note), false))
        goto bad;
    s->truncated = flags & PYS_TRUNC;
    s->finished = flags & PYS_FINISHED;
    s->err = -(int)err;
    for (unsigned i = 0; i < nframes && !c->err; i++) {
        struct py_frame *f = &s->frames[i];
        uint32_t ff = dsl_get_u32(c), line, nlocals;

        memset(f, 0, sizeof(*f));
        s->nframes = i + 1;
        if (ff & ~PYF_KNOWN) {
            c->err = true;
            break;
        }
        f->entry = ff & PYF_ENTRY;
        f->locals_truncated = ff & PYF_LTRUNC;
        if (ff & PYF_NAMED) {
            f->filename = get_text(c, s, false, SEP_PY_NAME_MAX, false);
            f->function = get_text(c, s, false, SEP_PY_NAME_MAX, false);
        }
        line = dsl_get_u32(c);
        f->frame_addr = dsl_get_u64(c);
        f->code_addr = dsl_get_u64(c);
        f->instr = dsl_get_u64(c);
        f->tlbc_index = (int32_t)dsl_get_u32(c);
        f->names_seen = dsl_get_u64(c);
        f->nslots_seen = (int64_t)dsl_get_u64(c);
        nlocals = dsl_get_u32(c);
        if (c->err || line > INT32_MAX || nlocals > l.max_locals || f->nslots_seen < -1 ||
            f->nslots_seen > 65536) {
            c->err = true;
            break;
        }
        f->line = (int)line;
        f->locals = py_stack_locals(s, i);
        for (unsigned k = 0; k < nlocals && !c->err; k++) {
            struct py_local *lo = &f->locals[k];

            lo->slot = dsl_get_u32(c);
            uint8_t has_name = dsl_get_u8(c);
            if (has_name > 1) {
                c->err = true;
                break;
            }
            lo->name = has_name ? get_text(c, s, false, SEP_PY_NAME_MAX, false) : NULL;
            /* Marks only in a stack not yet named. */
            lo->value = get_text(c, s, true, PY_VALUE_MAX, !s->finished);
            f->nlocals = k + 1;
        }
    }
    if (c->err)
        goto bad;
    return 0;
bad:
    py_stack_free(s);
    return -EBADMSG;
}

int sep_py_find_encode(struct sep_buf *b, const struct sep_py_find *f)
{
    sep_begin(b, SEP_PY_FIND);
    put_u64(b, f->worker_id);
    put_u32(b, (uint32_t)f->pid);
    put_str(b, f->exe, sizeof(f->exe) - 1);
    return b->err ? -EMSGSIZE : 0;
}

int sep_py_find_decode(const uint8_t *p, size_t len, struct sep_py_find *f)
{
    struct dsl_cursor c;

    dsl_cursor_init(&c, p, len);
    f->worker_id = dsl_get_u64(&c);
    f->pid = (pid_t)dsl_get_u32(&c);
    dsl_get_str_max(&c, f->exe, sizeof(f->exe) - 1);
    if (dsl_cursor_finish(&c) < 0 || f->pid <= 0 || (f->exe[0] && f->exe[0] != '/'))
        return -EBADMSG;
    return 0;
}

int sep_py_found_encode(struct sep_buf *b, const struct sep_py_found *f)
{
    sep_begin(b, SEP_PY_FOUND);
    put_u32(b, (uint32_t)(f->r < 0 && f->r > -4096 ? -f->r : f->r ? EIO : 0));
    put_str(b, f->why, sizeof(f->why) - 1);
    put_u32(b, f->version_hex);
    put_u64(b, f->runtime_addr);
    put_types(b, &f->types);
    put_str(b, f->path, sizeof(f->path) - 1);
    return b->err ? -EMSGSIZE : 0;
}

int sep_py_found_decode(const uint8_t *p, size_t len, struct sep_py_found *f)
{
    struct dsl_cursor c;
    uint32_t err;

    memset(f, 0, sizeof(*f));
    dsl_cursor_init(&c, p, len);
    err = dsl_get_u32(&c);
    dsl_get_str_max(&c, f->why, sizeof(f->why) - 1);
    f->version_hex = dsl_get_u32(&c);
    f->runtime_addr = dsl_get_u64(&c);
    get_types(&c, &f->types);
    dsl_get_str_max(&c, f->path, sizeof(f->path) - 1);
    if (dsl_cursor_finish(&c) < 0 || err > 4095 ||
        !plain_text((const uint8_t *)f->why, strlen(f->why), false) ||
        !plain_text((const uint8_t *)f->path, strlen(f->path), false))
        return -EBADMSG;
    f->r = -(int)err;
    return 0;
}

int sep_py_job_encode(struct sep_buf *b, const struct sep_py_job *j)
{
    if (j->nforget > SEP_FORGET_MAX || !j->stack.mem || j->stack.nframes > j->stack.lim.max_frames)
        return -EINVAL;
    sep_begin(b, SEP_PY_JOB);
    put_u64(b, j->worker_id);
    put_u32(b, (uint32_t)j->pid);
    put_u32(b, (uint32_t)j->tid);
    put_u32(b, j->version_hex);
    put_u64(b, j->runtime_addr);
    put_types(b, &j->types);
    put_u32(b, j->nforget);
    for (unsigned i = 0; i < j->nforget; i++)
        put_u64(b, j->forget[i]);
    put_py_stack(b, &j->stack);
    return b->err ? -EMSGSIZE : 0;
}

int sep_py_job_decode(const uint8_t *p, size_t len, struct sep_py_job *j)
{
    struct dsl_cursor c;

    memset(j, 0, sizeof(*j));
    dsl_cursor_init(&c, p, len);
    j->worker_id = dsl_get_u64(&c);
    j->pid = (pid_t)dsl_get_u32(&c);
    j->tid = (pid_t)dsl_get_u32(&c);
    j->version_hex = dsl_get_u32(&c);
    j->runtime_addr = dsl_get_u64(&c);
    get_types(&c, &j->types);
    j->nforget = dsl_get_u32(&c);
    if (c.err || j->nforget > SEP_FORGET_MAX || j->pid <= 0 || j->tid <= 0)
        return -EBADMSG;
    for (unsigned i = 0; i < j->nforget; i++)
        j->forget[i] = dsl_get_u64(&c);
    if (c.err || get_py_stack(&c, &j->stack) < 0)
        return -EBADMSG;
    if (dsl_cursor_finish(&c) < 0) {
        py_stack_free(&j->stack);
        return -EBADMSG;
    }
    return 0;
}

int sep_py_result_encode(struct sep_buf *b, const struct sep_py_result *r)
{
    if (!r->stack.mem || r->ncache > SEP_PY_FRAMES_MAX)
        return -EINVAL;
    sep_begin(b, SEP_PY_RESULT);
    put_py_stack(b, &r->stack);
    put_u32(b, r->ncache);
    for (unsigned i = 0; i < r->ncache; i++) {
        put_u64(b, r->cache[i].code);
        put_u64(b, r->cache[i].names);
        put_u64(b, (uint64_t)r->cache[i].n);
    }
    return b->err ? -EMSGSIZE : 0;
}

int sep_py_result_decode(const uint8_t *p, size_t len, const struct py_stack *job,
                         struct sep_py_result *r)
{
    struct dsl_cursor c;
    struct py_stack *s = &r->stack;

    r->ncache = 0;
    dsl_cursor_init(&c, p, len);
    if (get_py_stack(&c, s) < 0)
        return -EBADMSG;
    /* Naming only names and leaves out: the same limits, no frame or
     * local that was not sent, each frame where it was. */
    if (memcmp(&s->lim, &job->lim, sizeof(s->lim)) != 0 || s->nframes > job->nframes ||
        !s->finished)
        goto bad;
    for (unsigned i = 0; i < s->nframes; i++) {
        const struct py_frame *f = &s->frames[i], *g = &job->frames[i];

        if (f->code_addr != g->code_addr || f->frame_addr != g->frame_addr ||
            f->nlocals > g->nlocals || !f->filename || !f->function)
            goto bad;
        for (unsigned k = 0; k < f->nlocals; k++)
            if (!f->locals[k].name)
                goto bad;
    }
    r->ncache = dsl_get_u32(&c);
    if (c.err || r->ncache > job->nframes) {
        r->ncache = 0;
        goto bad;
    }
    for (unsigned i = 0; i < r->ncache && !c.err; i++) {
        struct py_code_slot *e = &r->cache[i];
        bool known = false;

        e->code = dsl_get_u64(&c);
        e->names = dsl_get_u64(&c);
        e->n = (int64_t)dsl_get_u64(&c);
        for (unsigned k = 0; k < job->nframes && !known; k++)
            known = job->frames[k].code_addr == e->code;
        if (!known || !e->code || e->n < 0 || e->n > 65536)
            c.err = true;
    }
    if (dsl_cursor_finish(&c) < 0)
        goto bad;
    return 0;
bad:
    r->ncache = 0;
    py_stack_free(s);
    return -EBADMSG;
}

/* ---- what the daemon opens for it ----------------------------------------- */

/* Does a line of the maps text name path as its file, exactly?  The mapped
 * file's device and inode in *ret_dev, *ret_ino. */
static bool maps_names(const char *maps, size_t len, const char *path, dev_t *ret_dev,
                       uint64_t *ret_ino)
{
    struct dsl_mapping m;
    const char *end = maps + len;

    for (const char *line = maps; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *stop = eol ? eol : end;

        if (dsl_maps_line(line, (size_t)(stop - line), &m) && m.inode && !strcmp(m.path, path)) {
            *ret_dev = makedev(m.major, m.minor);
            *ret_ino = m.inode;
            return true;
        }
        line = stop + 1;
    }
    return false;
}

bool sep_open_allowed(enum sep_open_kind kind, const char *path, const char *maps,
                      size_t maps_len, dev_t *ret_dev, uint64_t *ret_ino)
{
    static const char debug_dir[] = "/usr/lib/debug/";
    size_t n = strlen(path);

    *ret_dev = 0;
    *ret_ino = 0;
    if (path[0] != '/' || n >= PATH_MAX)
        return false;
    if (kind == SEP_OPEN_MODULE)
        return maps && maps_names(maps, maps_len, path, ret_dev, ret_ino);
    /* A debug file: under the one directory, by a plain path. */
    return kind == SEP_OPEN_DEBUGINFO && !strncmp(path, debug_dir, sizeof(debug_dir) - 1) &&
           n > sizeof(debug_dir) + 6 && !strcmp(path + n - 6, ".debug") && !strstr(path, "/../") &&
           !strstr(path, "/./") && !strstr(path, "//");
}

/* ---- fuzzing ------------------------------------------------------------- */

int sep_fuzz_one(const uint8_t *data, size_t size)
{
    static struct sep_job job;
    static struct sep_result res;
    static struct symframe sym[DSL_SYMFRAMES_MAX];
    static char path[PATH_MAX];
    const uint8_t *d;
    size_t n;
    uint64_t addr;
    uint32_t len;
    int err;
    enum sep_open_kind kind;
    dev_t dev;
    uint64_t ino;

    if (size < 2)
        return 0;
    switch (data[0] % 10) {
    case 0:
        (void)sep_job_decode(data + 1, size - 1, &job);
        break;
    case 1:
        res.sym = sym;
        if (sep_result_decode(data + 2, size - 2, &res, data[1] % (DSL_SYMFRAMES_MAX + 1)) == 0)
            symframes_free(sym, res.nsym);
        break;
    case 2: {
        static uint64_t va[SEP_READV_MAX];
        static uint32_t vl[SEP_READV_MAX];
        unsigned vn;
        (void)sep_mem_read_decode(data + 1, size - 1, &addr, &len);
        (void)sep_mem_readv_decode(data + 1, size - 1, va, vl, &vn);
        break;
    }
    case 3:
        (void)sep_answer_decode(data + 1, size - 1, &err, &d, &n);
        break;
    case 4:
        if (sep_open_decode(data + 1, size - 1, &kind, path, sizeof(path)) == 0)
            (void)sep_open_allowed(kind, path, NULL, 0, &dev, &ino);
        break;
    case 6: {
        static struct sep_py_find f;
        (void)sep_py_find_decode(data + 1, size - 1, &f);
        break;
    }
    case 7: {
        static struct sep_py_found f;
        (void)sep_py_found_decode(data + 1, size - 1, &f);
        break;
    }
    case 8: {
        static struct sep_py_job j;
        if (sep_py_job_decode(data + 1, size - 1, &j) == 0)
            py_stack_free(&j.stack);
        break;
    }
    case 9: {
        /* A result against a job of 4 frames at code objects 0x10000,
         * 0x20000, ... (default limits), each with 2 locals. */
        static struct py_stack pyjob;
        static struct sep_py_result r;
        if (!pyjob.mem) {
            if (py_stack_alloc(&pyjob, NULL, 0) < 0)
                break;
            pyjob.nframes = 4;
            for (unsigned i = 0; i < 4; i++) {
                memset(&pyjob.frames[i], 0, sizeof(pyjob.frames[i]));
                pyjob.frames[i].code_addr = 0x10000 * (i + 1);
                pyjob.frames[i].frame_addr = 0x1000 * (i + 1);
                pyjob.frames[i].nlocals = 2;
                pyjob.frames[i].locals = py_stack_locals(&pyjob, i);
            }
        }
        if (sep_py_result_decode(data + 1, size - 1, &pyjob, &r) == 0)
            py_stack_free(&r.stack);
        break;
    }
    default: {
        /* A maps text, a NUL, and a path. */
        const uint8_t *nul = memchr(data + 1, '\0', size - 1);
        size_t plen;

        if (!nul)
            break;
        plen = size - (size_t)(nul + 1 - data);
        if (plen >= sizeof(path))
            break;
        memcpy(path, nul + 1, plen);
        path[plen] = '\0';
        (void)sep_open_allowed(SEP_OPEN_MODULE, path, (const char *)data + 1,
                               (size_t)(nul - data - 1), &dev, &ino);
        (void)sep_open_allowed(SEP_OPEN_DEBUGINFO, path, NULL, 0, &dev, &ino);
        break;
    }
    }
    return 0;
}

