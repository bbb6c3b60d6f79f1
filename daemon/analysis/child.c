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
};
static struct mirror *mirrors;

static struct worker *mirror_of(const struct sep_job *j)
{
    struct mirror *m;

    for (m = mirrors; m; m = m->next)
        if (m->w.id == j->worker_id)
            break;
    if (m && m->w.pid != j->pid) { /* cannot be: ids are never reused */
        symbolize_release_worker(&m->w);
        m->w.modules_ns = 0;
    }
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return NULL;
        m->w.id = j->worker_id;
        m->w.pidfd = m->w.conn = m->w.memfd = -1;
        pthread_mutex_init(&m->w.dwfl_lock, NULL);
        m->next = mirrors;
        mirrors = m;
    }
    m->w.pid = j->pid;
    snprintf(m->w.program, sizeof(m->w.program), "pid %d", (int)j->pid);
    return &m->w;
}

static void forget(uint64_t id)
{
    for (struct mirror **p = &mirrors; *p; p = &(*p)->next) {
        if ((*p)->w.id == id) {
            struct mirror *m = *p;
            *p = m->next;
            symbolize_release_worker(&m->w);
            pthread_mutex_destroy(&m->w.dwfl_lock);
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
    struct worker *w = mirror_of(j);
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

void analysis_child_prepare(void)
{
    symbolize_init();
}

void analysis_child_main(int fd, bool confine, bool test_garbage)
{
    static struct sep_job job;

    sock = fd;
    (void)prctl(PR_SET_NAME, "dogslowd-analys", 0, 0, 0);
    signal(SIGALRM, SIG_DFL);
    if (confine && sandbox_enter_analysis() < 0) {
        fprintf(stderr, "dogslowd (analysis): cannot install its seccomp filter\n");
        _exit(1);
    }
    remote_set_live(live_read);
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
