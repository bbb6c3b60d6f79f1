/* SPDX-License-Identifier: MIT */
/*
 * A snapshot from start to end, as core puts it together: capture holds
 * the thread (capture/snapshot.c), analysis unwinds the copy and reads the
 * Python frames (analysis/), and the hooks below are how the Python reader
 * runs inside capture's hold without capture calling analysis.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis.h"
#include "capture.h"
#include "core.h"
#include "util.h"

/* Unwind what snapshot_take() copied (after the thread runs again). */
void snapshot_finish(const struct config *cfg, struct worker *w, struct snapshot *s)
{
    uint64_t t = dsl_now_ns(CLOCK_MONOTONIC);
    int r;

    if (!s->needs_unwind)
        return;
    s->needs_unwind = false;
    r = unwind_snapshot(cfg, w, s);
    s->unwind_ns = dsl_now_ns(CLOCK_MONOTONIC) - t;
    if (r < 0 && s->nframes == 0 && !s->err) {
        s->err = -r;
        snprintf(s->note, sizeof(s->note), "cannot unwind the stack: %s", strerror(-r));
    }
}

/* The naming of one worker's snapshots is one at a time: its Dwfl session
 * (in-process), and the analysis process's channel (privsep), in that
 * order. */
void namer_lock(struct worker *w)
{
    pthread_mutex_lock(&w->dwfl_lock);
    if (sep_active())
        sep_lock();
}

bool namer_trylock(struct worker *w)
{
    if (pthread_mutex_trylock(&w->dwfl_lock) != 0)
        return false;
    if (sep_active() && !sep_trylock()) {
        pthread_mutex_unlock(&w->dwfl_lock);
        return false;
    }
    return true;
}

void namer_unlock(struct worker *w)
{
    if (sep_active())
        sep_unlock();
    pthread_mutex_unlock(&w->dwfl_lock);
}

int snapshot_name(const struct config *cfg, struct worker *w, struct snapshot *s,
                  bool with_locals, struct symframe *out, unsigned max)
{
    if (!s->needs_unwind && s->nframes == 0)
        return 0;
    if (sep_active())
        return sep_name(cfg, w, s, with_locals, out, max);
    snapshot_finish(cfg, w, s);
    return s->nframes ? symbolize(cfg, w, s, with_locals, out, max) : 0;
}

static pid_t parent_of(pid_t pid)
{
    long v;
    return dsl_proc_status_field(pid, 0, "PPid", &v) == 0 ? (pid_t)v : 0;
}

/* Is w a CPython process?  Looked up once per worker (a few ms, before
 * any thread is held). */
static void find_python(struct worker *w)
{
    struct py_runtime *rt;
    int r;

    if (w->py_state != 0)
        return;
    rt = calloc(1, sizeof(*rt));
    if (!rt)
        return;
    w->py_why[0] = '\0';
    /* With privsep, the ELF files are read in the analysis process. */
    if (sep_active())
        r = sep_py_find(w, rt, w->py_why, sizeof(w->py_why));
    else
        r = py_runtime_find(w->pid, rt, w->py_why, sizeof(w->py_why));
    if (r == 0) {
        w->py = rt;
        w->py_state = 1;
        w->py_cold = true;
        w->py_ppid = parent_of(w->pid);
        char v[32];
        py_version_string(rt->version_hex, v, sizeof(v));
        log_info("pid %d (%s) runs Python %s: reports show its Python frames", (int)w->pid,
                 w->program, v);
        return;
    }
    free(rt);
    w->py_state = r == -EPROTONOSUPPORT ? -2 : -1;
    if (r != -EPROTONOSUPPORT && r != -ENOENT)
        log_info("pid %d: cannot read its Python runtime: %s", (int)w->pid, w->py_why);
}

/* py_capture() of tid.  A pre-fork server that forks without telling the
 * interpreter (PyOS_AfterFork_Child: uWSGI does not, without
 * --enable-threads) leaves the child's main thread state with the parent's
 * thread id, which for a main thread is the parent's pid. */
static int capture_python(struct worker *w, struct remote_mem *m, pid_t tid,
                          const struct py_limits *lim, struct py_stack *ret)
{
    int r = py_capture(w->py, m, tid, lim, ret);

    if (r == -ESRCH && tid == w->pid && w->py_ppid > 0)
        r = py_capture(w->py, m, w->py_ppid, lim, ret);
    return r;
}

/* While the thread is held: its Python frames and their locals' values
 * (in the worker's heap, they change as soon as it runs).  Their names are
 * read after it is let go (finish_python). */
static void read_python(const struct config *cfg, struct worker *w, pid_t tid,
                        struct snapshot *s)
{
    struct remote_mem m;
    struct remote_proc p;
    struct py_limits lim;

    if (w->py_state != 1)
        return;
    remote_mem_proc(&m, &p, tid); /* by the thread's id: see copy_stack() */
    py_limits_default(&lim);
    lim.max_locals = cfg->stack_vars ? 32 : 0;
    if (cfg->max_value_bytes)
        lim.max_value_bytes = cfg->max_value_bytes;
    int r = capture_python(w, &m, tid, &lim, &s->py);
    s->py_captured = r == 0;
    if (r == 0)
        w->py_cold = s->py.code_misses > 2;
}

/* py_finish(): in the Python analysis process with privsep (which sends
 * back what it learnt for the code cache), else here. */
static void name_python(struct worker *w, pid_t tid, struct remote_mem *m, struct py_stack *st)
{
    if (sep_active())
        sep_py_name(w, tid, st);
    else
        py_finish(w->py, m, st);
}

/*
 * Before the first hold of a Python worker, and after a hold that met code
 * objects its code cache did not have: read the thread's stack once without
 * holding it, for the code objects it runs.  What this reads of the frames
 * is thrown away (the thread ran on meanwhile); the code cache it fills
 * (py_finish()) spares the held read those code objects (py_capture()), so
 * a worker's first report holds its thread as briefly as the next.  It
 * costs the loop about a held read's time, once per worker.
 */
static void warm_python(struct worker *w, pid_t tid)
{
    struct remote_mem m;
    struct remote_proc p;
    struct py_limits lim;
    struct py_stack tmp;

    if (w->py_state != 1 || !w->py_cold)
        return;
    remote_mem_proc(&m, &p, tid);
    py_limits_default(&lim);
    lim.max_locals = 0; /* the code objects are what it is for */
    if (capture_python(w, &m, tid, &lim, &tmp) == 0) {
        name_python(w, tid, &m, &tmp);
        py_stack_free(&tmp);
    }
}

/* After the thread is let go: the Python frames' files, functions, lines
 * and locals' names, from code objects (which do not change while the
 * frames exist).  Read through the thread's id, like the capture; an exec
 * by the main thread since the capture would make these reads another
 * program's, so the identity is checked once more after them. */
static void finish_python(const struct config *cfg, struct worker *w, struct snapshot *s)
{
    struct remote_mem m;
    struct remote_proc p;
    char why[128] = "";

    if (!s->py_captured)
        return;
    s->py_captured = false;
    uint64_t t = dsl_now_ns(CLOCK_MONOTONIC);
    remote_mem_proc(&m, &p, s->tid);
    name_python(w, s->tid, &m, &s->py);
    s->py_name_ns = dsl_now_ns(CLOCK_MONOTONIC) - t;
    if (s->tid == w->pid && ident_verify(&w->ident, w->pid, 0, NULL, why, sizeof(why)) != 0) {
        py_stack_free(&s->py);
        return;
    }
    s->have_py = true;
    /* Secrets are redacted here, once, for every output that shows
     * Python locals (text, JSON, Sentry). */
    for (unsigned i = 0; i < s->py.nframes; i++) {
        struct py_frame *f = &s->py.frames[i];
        for (unsigned k = 0; k < f->nlocals; k++) {
            const char *name = f->locals[k].name ? f->locals[k].name : "";
            const char *value = f->locals[k].value ? f->locals[k].value : "";
            if (redact_name(cfg, name) || redact_card_number(value))
                f->locals[k].value = "[redacted]";
        }
    }
}

static void before_hold(const struct config *cfg, struct worker *w, pid_t tid)
{
    (void)cfg;
    find_python(w);
    warm_python(w, tid);
}

void take_init(void)
{
    static const struct snapshot_hooks h = {
        .before = before_hold,
        .held = read_python,
        .after = finish_python,
    };
    snapshot_set_hooks(&h);
}
