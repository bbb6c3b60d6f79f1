/* SPDX-License-Identifier: MIT */
/*
 * The analysis process: where a snapshot's copy is unwound and its frames
 * named (libdwfl, our DWARF evaluator, the value formatter), away from the
 * daemon's capabilities.  It is forked by the spawner (core/sep.c), holds
 * no capability, has no_new_privs and a seccomp filter of its own that
 * allows no open(), no socket, no ptrace and no process_vm_readv: what it
 * needs of a worker -- memory beyond the stack copy, the maps, the ELF and
 * debug files -- it asks the daemon for over its one socket (sepmsg.c),
 * and the daemon checks each request against the snapshot it handed over.
 *
 * It keeps a libdwfl session per worker across jobs (the daemon says when
 * a worker is gone), as the daemon did in-process, so a worker's second
 * report is named from warm caches.  A job that runs longer than
 * JOB_ALARM_S (a pathological file) ends the process by SIGALRM; the daemon
 * sees the socket close and starts another.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "analysis.h"
#include "capture.h"
#include "core.h"
#include "util.h"

#define JOB_ALARM_S 120

static int sock = -1;
/* in: the job (its stack copy stays there while it runs); ans: answers. */
static struct sep_buf in, ans, out;

/* The workers it has sessions for: a short list, looked up by id. */
struct mirror {
    struct mirror *next;
    struct worker w;
    struct py_runtime *py; /* its CPython runtime, as the last Python job gave it */
};
static struct mirror *mirrors;

static struct mirror *mirror_of(uint64_t worker_id, pid_t pid)
{
    struct mirror *m;

    for (m = mirrors; m; m = m->next)
        if (m->w.id == worker_id)
            break;
    if (m && m->w.pid != pid) { /* cannot be: ids are never reused */
        symbolize_release_worker(&m->w);
        m->w.modules_ns = 0;
        free(m->py);
        m->py = NULL;
    }
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return NULL;
        m->w.id = worker_id;
        m->w.pidfd = m->w.conn = m->w.memfd = -1;
        pthread_mutex_init(&m->w.dwfl_lock, NULL);
        m->next = mirrors;
        mirrors = m;
    }
    m->w.pid = pid;
    snprintf(m->w.program, sizeof(m->w.program), "pid %d", (int)pid);
    return m;
}

static void forget(uint64_t id)
{
    for (struct mirror **p = &mirrors; *p; p = &(*p)->next) {
        if ((*p)->w.id == id) {
            struct mirror *m = *p;
            *p = m->next;
            symbolize_release_worker(&m->w);
            pthread_mutex_destroy(&m->w.dwfl_lock);
            free(m->py);
            free(m);
            return;
        }
    }
}

/* ---- asking the daemon --------------------------------------------------- */

/* Send the request in out, wait for its answer (type want) in in. */
static int ask(enum sep_type want, int *ret_fd, const uint8_t **ret_data, size_t *ret_len)
{
    struct sep_hdr h;
    int err, r = sep_send(sock, &out, -1);

    if (r == 0)
        r = sep_recv(sock, &ans, &h, ret_fd, 0);
    if (r == 0 && h.type != want)
        r = -EBADMSG;
    if (r == 0)
        r = sep_answer_decode(ans.p, ans.len, &err, ret_data, ret_len);
    if (r < 0) {
        /* The daemon went away or spoke nonsense: nothing to do but go. */
        fprintf(stderr, "dogslowd (analysis): lost the daemon: %s\n", strerror(-r));
        _exit(1);
    }
    if (err && ret_fd && *ret_fd >= 0) {
        close(*ret_fd);
        *ret_fd = -1;
    }
    return -err;
}

static int live_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    const uint8_t *data;
    size_t n;
    int r;

    (void)pid; /* the daemon reads the job's process, whatever is asked */
    if (len == 0 || len > SEP_READ_MAX)
        return -E2BIG;
    sep_mem_read_encode(&out, addr, (uint32_t)len);
    r = ask(SEP_MEM_DATA, NULL, &data, &n);
    if (r < 0)
        return r;
    if (n != len)
        return -EFAULT;
    memcpy(buf, data, len);
    return 0;
}

/* The ranges read whole, in order (as process_vm_readv's count says). */
static int live_readv(pid_t pid, const struct remote_range *rr, unsigned n)
{
    uint64_t addr[SEP_READV_MAX];
    uint32_t len[SEP_READV_MAX];
    const uint8_t *data;
    uint32_t done;
    size_t got, at = 4;
    int r;

    (void)pid; /* the daemon reads the job's process, whatever is asked */
    if (n == 0 || n > SEP_READV_MAX)
        return n ? -EINVAL : 0;
    for (unsigned i = 0; i < n; i++) {
        addr[i] = rr[i].addr;
        len[i] = (uint32_t)rr[i].len;
    }
    if (sep_mem_readv_encode(&out, addr, len, n) < 0)
        return -E2BIG;
    r = ask(SEP_MEM_DATAV, NULL, &data, &got);
    if (r < 0)
        return r;
    if (got < 4)
        return -EFAULT;
    memcpy(&done, data, 4);
    if (done > n)
        return -EFAULT;
    for (unsigned i = 0; i < done; i++) {
        if (got - at < rr[i].len)
            return -EFAULT;
        memcpy(rr[i].buf, data + at, rr[i].len);
        at += rr[i].len;
    }
    return at == got ? (int)done : -EFAULT;
}

static char *read_maps(pid_t pid, size_t *ret_len)
{
    const uint8_t *data;
    size_t n;
    char *text;

    (void)pid;
    sep_begin(&out, SEP_MAPS);
    if (ask(SEP_MAPS_TEXT, NULL, &data, &n) < 0 || n > DSL_MAPS_MAX)
        return NULL;
    text = malloc(n + 1);
    if (!text)
        return NULL;
    memcpy(text, data, n);
    text[n] = '\0';
    *ret_len = n;
    return text;
}

static int open_file(enum sep_open_kind kind, const char *path)
{
    const uint8_t *data;
    size_t n;
    int fd = -1, r;

    sep_open_encode(&out, kind, path);
    r = ask(SEP_OPENED, &fd, &data, &n);
    if (r < 0)
        return r;
    return fd >= 0 ? fd : -EBADF;
}

static const struct analysis_io child_io = {
    .read_maps = read_maps,
    .open_file = open_file,
};

/* ---- one job --------------------------------------------------------------- */

static void run(const struct sep_job *j)
{
    static struct snapshot s;
    static struct symframe sym[DSL_SYMFRAMES_MAX];
    static struct sep_result res;
    struct config cfg;
    struct mirror *m = mirror_of(j->worker_id, j->pid);
    struct worker *w = m ? &m->w : NULL;
    int n = 0;

    /* What analysis reads of a configuration (config_defaults() would look
     * up the default user: a file this process cannot open). */
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_frames = j->max_frames;
    cfg.max_value_bytes = j->max_value_bytes;
    cfg.stack_vars = j->with_locals;
    dsl_strlcpy(cfg.redact, j->redact, sizeof(cfg.redact));

    /* Everything but the frames, whose count is set below. */
    memset(&s, 0, offsetof(struct snapshot, frames));
    memset(&s.nframes, 0, sizeof(s) - offsetof(struct snapshot, nframes));
    s.err = j->err;
    memcpy(s.note, j->note, sizeof(s.note));
    s.pid = j->pid;
    s.tid = j->tid;
    s.have_regs = j->have_regs;
    s.regs_known = j->regs_known;
    memcpy(s.regs, j->regs, sizeof(s.regs));
    s.peeked_syscall = -1;
    s.gone = j->gone;
    s.stack = (uint8_t *)(uintptr_t)j->stack; /* only read */
    s.stack_len = s.stack_cap = j->stack_len;
    s.stack_addr = j->stack_addr;
    s.maps = j->maps_len ? j->maps : NULL;
    s.maps_len = j->maps_len;
    s.nframes = 0;
    if (j->needs_unwind && j->stack_len) {
        s.needs_unwind = true;
    } else if (j->nframes) {
        memcpy(s.frames, j->frames, j->nframes * sizeof(*j->frames));
        s.nframes = j->nframes;
    }
    alarm(JOB_ALARM_S);
    if (w) {
        snapshot_finish(&cfg, w, &s);
        if (s.nframes > 0)
            n = symbolize(&cfg, w, &s, j->with_locals, sym, DSL_SYMFRAMES_MAX);
    } else {
        s.err = ENOMEM;
        snprintf(s.note, sizeof(s.note), "the analysis process is out of memory");
    }
    alarm(0);
    res.err = s.err;
    memcpy(res.note, s.note, sizeof(res.note));
    res.unwind_ns = s.unwind_ns;
    res.nframes = s.nframes;
    memcpy(res.frames, s.frames, s.nframes * sizeof(*s.frames));
    res.nsym = n > 0 ? (unsigned)n : 0;
    res.sym = sym;
    if (sep_result_encode(&out, &res) < 0 || sep_send(sock, &out, -1) < 0) {
        fprintf(stderr, "dogslowd (analysis): cannot send a result\n");
        _exit(1);
    }
    symframes_free(sym, res.nsym);
}

/* ---- the CPython reader's unheld halves ----------------------------------- */

static void send_or_exit(void)
{
    if (sep_send(sock, &out, -1) < 0) {
        fprintf(stderr, "dogslowd (analysis): cannot send a result\n");
        _exit(1);
    }
}

/* Is the worker a CPython process?  The ELF files are read here. */
static void py_find(const struct sep_py_find *f)
{
    static struct sep_py_found res;
    struct mirror *m = mirror_of(f->worker_id, f->pid);
    struct py_runtime *rt = calloc(1, sizeof(*rt));

    memset(&res, 0, sizeof(res));
    alarm(JOB_ALARM_S);
    res.r = rt ? py_runtime_find_exe(f->pid, f->exe, rt, res.why, sizeof(res.why)) : -ENOMEM;
    alarm(0);
    if (res.r == 0) {
        res.version_hex = rt->version_hex;
        res.runtime_addr = rt->runtime_addr;
        res.types = rt->types;
        dsl_strlcpy(res.path, rt->path, sizeof(res.path));
    }
    if (m && res.r == 0) {
        free(m->py);
        m->py = rt;
    } else {
        free(rt);
    }
    if (sep_py_found_encode(&out, &res) < 0)
        _exit(1);
    send_or_exit();
}

/* The worker's runtime as the job describes it: the one found here, or
 * one set up from the version and address (this process was replaced
 * since, or the daemon found it itself). */
static struct py_runtime *py_runtime_of(struct mirror *m, const struct sep_py_job *j)
{
    struct remote_mem mem;
    struct remote_proc p;

    if (m->py && m->py->version_hex == j->version_hex && m->py->runtime_addr == j->runtime_addr)
        return m->py;
    free(m->py);
    m->py = calloc(1, sizeof(*m->py));
    if (!m->py)
        return NULL;
    remote_mem_proc(&mem, &p, j->pid);
    if (py_runtime_setup(m->py, j->version_hex, j->runtime_addr, &mem, NULL, 0) < 0) {
        free(m->py);
        m->py = NULL;
        return NULL;
    }
    m->py->pid = j->pid;
    m->py->types = j->types;
    return m->py;
}

/* Name the frames the daemon read while the thread was held. */
static void py_name(struct sep_py_job *j)
{
    static struct sep_py_result res;
    struct mirror *m = mirror_of(j->worker_id, j->pid);
    struct py_runtime *rt = m ? py_runtime_of(m, j) : NULL;
    struct remote_mem mem;
    struct remote_proc p;

    res.ncache = 0;
    if (!rt) {
        /* Nothing to name them with: no frames, saying why. */
        j->stack.nframes = 0;
        j->stack.err = -EPROTO;
        snprintf(j->stack.note, sizeof(j->stack.note), "the Python runtime could not be read");
        j->stack.finished = true;
    } else {
        remote_mem_proc(&mem, &p, j->tid);
        alarm(JOB_ALARM_S);
        py_finish(rt, &mem, &j->stack);
        alarm(0);
        /* What it learnt of the code objects, for the daemon's code cache. */
        for (unsigned i = 0; i < j->stack.nframes; i++) {
            struct py_code_slot e;
            bool dup = false;

            if (!py_code_cache_get(rt, j->stack.frames[i].code_addr, &e))
                continue;
            for (unsigned k = 0; k < res.ncache && !dup; k++)
                dup = res.cache[k].code == e.code;
            if (!dup)
                res.cache[res.ncache++] = e;
        }
    }
    res.stack = j->stack;
    if (sep_py_result_encode(&out, &res) < 0)
        _exit(1);
    send_or_exit();
}

void analysis_child_prepare(void)
{
    symbolize_init();
}

void analysis_child_main(int fd, bool confine, bool test_garbage, bool python)
{
    static struct sep_job job;

    sock = fd;
    (void)prctl(PR_SET_NAME, python ? "dogslowd-python" : "dogslowd-analys", 0, 0, 0);
    signal(SIGALRM, SIG_DFL);
    if (confine && sandbox_enter_analysis() < 0) {
        fprintf(stderr, "dogslowd (analysis): cannot install its seccomp filter\n");
        _exit(1);
    }
    remote_set_live(live_read, live_readv);
    analysis_set_io(&child_io);
    for (;;) {
        struct sep_hdr h;
        int r = sep_recv(sock, &in, &h, NULL, 0);

        if (r == -EPIPE) {
            /* The daemon is done with this process: its sessions go,
             * with the descriptors they hold. */
            while (mirrors)
                forget(mirrors->w.id);
            close(sock);
            _exit(0);
        }
        if (r == 0 && h.type == SEP_PY_FIND) {
            static struct sep_py_find f;

            if (sep_py_find_decode(in.p, in.len, &f) < 0) {
                fprintf(stderr, "dogslowd (analysis): a bad job: malformed\n");
                _exit(1);
            }
            py_find(&f);
            continue;
        }
        if (r == 0 && h.type == SEP_PY_JOB) {
            static struct sep_py_job pj;

            if (sep_py_job_decode(in.p, in.len, &pj) < 0) {
                fprintf(stderr, "dogslowd (analysis): a bad job: malformed\n");
                _exit(1);
            }
            if (test_garbage) {
                /* Named frames where the job sent none: more than it may. */
                pj.stack.nframes = 0;
                pj.stack.finished = true;
                static struct sep_py_result bad;
                bad.stack = pj.stack;
                bad.ncache = 1;
                bad.cache[0] = (struct py_code_slot){.code = 0x1000, .names = 8, .n = 1};
                if (sep_py_result_encode(&out, &bad) < 0 || sep_send(sock, &out, -1) < 0)
                    _exit(1);
                py_stack_free(&pj.stack);
                test_garbage = false;
                continue;
            }
            for (unsigned i = 0; i < pj.nforget; i++)
                forget(pj.forget[i]);
            py_name(&pj);
            py_stack_free(&pj.stack);
            continue;
        }
        if (r < 0 || h.type != SEP_JOB || sep_job_decode(in.p, in.len, &job) < 0) {
            fprintf(stderr, "dogslowd (analysis): a bad job: %s\n",
                    r < 0 ? strerror(-r) : "malformed");
            _exit(1);
        }
        for (unsigned i = 0; i < job.nforget; i++)
            forget(job.forget[i]);
        if (test_garbage) {
            /* A result claiming more named frames than it carries. */
            static const uint8_t bad[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0xff, 0xff, 0, 0};
            sep_begin(&out, SEP_RESULT);
            sep_put_bytes(&out, bad, sizeof(bad));
            if (sep_send(sock, &out, -1) < 0)
                _exit(1);
            test_garbage = false;
            continue;
        }
        run(&job);
    }
}
