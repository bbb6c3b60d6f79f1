/* SPDX-License-Identifier: MIT */
/*
 * Watching requests: scan the scoreboards for requests that started, keep
 * their deadlines in a min-heap armed on a timerfd, and when one fires while
 * the same request is still running, snapshot the thread and report.
 *
 * Scanning only discovers requests; the report time comes from the heap, so
 * it is the deadline itself, not the next scan.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "analysis.h"
#include "capture.h"
#include "core.h"
#include "output.h"
#include "util.h"

void watch_rearm(struct daemon *d)
{
    struct deadline e;
    struct itimerspec its = {0};
    uint64_t when = 0;

    if (heap_peek(&d->heap, &e))
        when = e.when_ns ? e.when_ns : 1;
    if (when == d->armed_ns)
        return;
    its.it_value.tv_sec = (time_t)(when / NSEC_PER_SEC);
    its.it_value.tv_nsec = (long)(when % NSEC_PER_SEC);
    if (timerfd_settime(d->deadline_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        log_warn("timerfd_settime");
        return;
    }
    d->armed_ns = when;
}

static void scan_worker(struct daemon *d, struct worker *w, uint64_t now)
{
    struct dsl_sb_header *sb = w->sb;
    uint32_t hwm;

    /* The heartbeat tells clients the daemon is alive (see lib/dogslow.c). */
    __atomic_store_n(&sb->heartbeat_ns, now, __ATOMIC_RELAXED);
    __atomic_store_n(&sb->daemon_pid, d->pid, __ATOMIC_RELAXED);

    hwm = __atomic_load_n(&sb->hwm, __ATOMIC_ACQUIRE);
    if (hwm > w->nslots)
        hwm = w->nslots;
    for (uint32_t i = 0; i < hwm; i++) {
        const struct dsl_slot *s = dsl_sb_slot(sb, i);
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        struct dsl_request req;
        struct deadline e;
        int r;

        if (!(seq & 1u) || seq == w->slots[i].armed_seq)
            continue;
        r = dsl_sb_read_slot(sb, w->nslots, i, &req);
        if (r == -EAGAIN || r == 0)
            continue; /* changed under us: the next scan sees it */
        if (r < 0 || req.start_ns > now + NSEC_PER_SEC) {
            /* Garbage in the worker's page: ignore this request. */
            w->slots[i].armed_seq = seq;
            log_debug("pid %d slot %u holds an impossible request; ignored", (int)w->pid, i);
            continue;
        }
        if (ignore_request(d, w, &req)) {
            w->slots[i].armed_seq = req.seq; /* ignore_urls, or enabled = false */
            continue;
        }
        e = (struct deadline){
            .when_ns = req.start_ns + w->timer_ns,
            .worker_id = w->id,
            .slot = i,
            .seq = req.seq,
            .pos = &w->slots[i].heap_pos,
        };
        /* The slot's previous request has ended: its entry serves this one. */
        r = 0;
        if (w->slots[i].heap_pos)
            heap_update(&d->heap, w->slots[i].heap_pos - 1, &e);
        else
            r = heap_push(&d->heap, &e);
        if (r < 0) {
            log_warnx("deadline queue full (%zu); request on pid %d tid %d not watched",
                      d->heap.n, (int)w->pid, (int)req.tid);
        }
        w->slots[i].armed_seq = req.seq;
    }
}

void watch_scan(struct daemon *d, uint64_t now)
{
    for (struct worker *w = d->workers; w; w = w->next)
        if (w->registered && !w->dead)
            scan_worker(d, w, now);
    follow_scan(d, now);
    watch_rearm(d);
}

/*
 * Undead requests are handled in two phases, so that a storm (the database
 * is down and a thousand requests hang at once) neither delays the next
 * snapshot behind the naming and writing of the previous ones, nor loses a
 * request that ends while the daemon is busy:
 *
 *   1. at the deadline: hold the thread, copy registers and stack, let go
 *      (~0.2 ms), and queue the copy;
 *   2. then, a bounded slice of work at a time between events: unwind the
 *      copy, name frames, read locals, write the report, run the outputs.
 *
 * The queue is capped in entries and in bytes of stack copies; what does not
 * fit is counted and logged, and the request is still reported, without a
 * stack.
 */
/*
 * Two phases.  At the deadline (phase 1, on the loop) the thread is held
 * only to copy its registers, its stack and its Python frames.  Naming the
 * frames is the long part: unwinding the copy, loading the debug
 * information of everything the process maps (0.3-0.5 s for a Python
 * worker the first time, seconds on a loaded machine, in one piece that
 * cannot be cut), DWARF locals.  That runs on the analysis thread (phase 2),
 * so the loop goes on taking snapshots at their deadlines, scanning and
 * answering registrations meanwhile; the loop then writes the report
 * (phase 3: file, JSON, syslog, spool, follow-up) when the thread hands the
 * job back through an eventfd.
 *
 * What the thread touches: the job (its own), the configuration as of the
 * snapshot (a counted copy), and the worker's Dwfl session under
 * w->dwfl_lock (follow samples and dogslowctl dump use it too, from the
 * loop).  The worker record itself stays alive while w->busy counts jobs
 * in flight (the loop alone changes busy and frees workers).
 *
 * The queue is capped (jobs and bytes of stack copies); beyond that a
 * request is still reported, without a stack.
 */
#define JOBS_MAX 4096
#define JOBS_BYTES_MAX (128u * 1024 * 1024)
#define WORK_SLICE_NS (20 * NSEC_PER_MSEC)
/* A deadline served this late whose request had ended is logged. */
#define LATE_NS (100 * NSEC_PER_MSEC)

/* Logged at most once a second, with how many since the last line: a
 * storm must not turn into a flood of log lines. */
static void late_deadline(const struct worker *w, uint64_t now, uint64_t late_ns)
{
    static uint64_t count, logged_ns;

    count++;
    if (logged_ns && now - logged_ns < NSEC_PER_SEC)
        return;
    log_warnx("pid %d (%s): a deadline was served %.0f ms late (the daemon was busy) and its "
              "request had ended meanwhile: not reported (%llu such since the last line)",
              (int)w->pid, w->program, (double)late_ns / 1e6, (unsigned long long)count);
    count = 0;
    logged_ns = now;
}

/* The configuration a job is analysed and written with: a copy, counted by
 * the loop. */
struct cfg_ref {
    struct config c;
    char hostname[256];
    unsigned refs; /* jobs holding it, plus one while current */
};

struct job {
    struct job *next;
    struct worker *w; /* held: w->busy */
    struct cfg_ref *cfg;
    uint32_t slot;
    struct dsl_request req;
    uint64_t now_mono, now_real;
    /* The snapshot, without its frame array (filled in phase 2). */
    pid_t pid, tid;
    uint64_t regs[DSL_NREGS];
    uint32_t regs_known;
    bool have_regs, needs_unwind, taken;
    /* Found in phase 2 to be another program since its snapshot, which
     * was taken of the registered one (core.h, ident.c): named from the copies
     * alone, as if it had exited, and its registration dropped (phase 3). */
    bool exec_since;
    char exec_why[128];
    long peeked_syscall;
    uint8_t *stack;
    size_t stack_len;
    uint64_t stack_addr;
    struct frame *frames; /* only from the live (fallback) unwinder */
    char *maps;           /* /proc/PID/maps, for a process not yet named */
    size_t maps_len;
    struct py_stack py;   /* owned when have_py */
    bool have_py;
    unsigned nframes;
    int err;
    char note[160];
    uint64_t pause_ns, py_name_ns;
    /* What the report shows of the worker, copied at the snapshot: the
     * record is the loop's (a reload changes its timer, its removal resets
     * its Python state) and the report file is written on the thread. */
    struct worker wview;
    /* Phase 2's result. */
    struct snapshot *snap;
    struct symframe *sym;
    unsigned nsym;
    struct report_item *items; /* the merged stack (report_merge) */
    unsigned nitems;
    bool written;             /* the report file's write was tried (path, write_err) */
    int write_err;
    char path[PATH_MAX];
    struct outputs_pre pre; /* its JSON twin */
};

/* Loop only. */
static struct cfg_ref *cur_cfg;
static unsigned njobs;
static size_t job_bytes;
static uint64_t jobs_dropped;
static struct job *ready_head, *ready_tail; /* analysed, to be written */

/* Shared with the analysis thread, under qlock. */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static struct job *in_head, *in_tail, *out_head, *out_tail;
static bool qstop;
/* Named, to be written by the writer thread (wcond), which stops once
 * wstop is set and nothing is left. */
static pthread_cond_t wcond = PTHREAD_COND_INITIALIZER;
static struct job *mid_head, *mid_tail;
static bool wstop;
static pthread_t wthread;
static bool wthread_up;
/* Named but not yet reported.  A named job holds its frames and locals
 * (~100 KiB); the thread waits while this many are, so that in a storm the
 * queue holds stack copies only, as before. */
#define NAMED_MAX 32
static unsigned named_pending;
static pthread_t athread;
static bool athread_up;
static int done_fd = -1;
/* Test hook: naming takes this much longer (DOGSLOWD_TEST_NAMING_DELAY_MS),
 * as a process's first report does on a loaded machine. */
static unsigned naming_delay_ms;


static void cfg_put(struct cfg_ref *c)
{
    if (c && --c->refs == 0)
        free(c);
}

/* The current configuration, copied once per reload. */
static struct cfg_ref *cfg_get(struct daemon *d)
{
    if (!cur_cfg) {
        cur_cfg = malloc(sizeof(*cur_cfg));
        if (!cur_cfg)
            return NULL;
        cur_cfg->c = d->cfg;
        dsl_strlcpy(cur_cfg->hostname, d->hostname, sizeof(cur_cfg->hostname));
        cur_cfg->refs = 1;
    }
    cur_cfg->refs++;
    return cur_cfg;
}

unsigned watch_pending(void)
{
    return njobs;
}

void watch_reconfigured(void)
{
    cfg_put(cur_cfg);
    cur_cfg = NULL;
}

static void append(struct job **head, struct job **tail, struct job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static struct job *pop(struct job **head, struct job **tail)
{
    struct job *j = *head;

    if (j) {
        *head = j->next;
        if (!*head)
            *tail = NULL;
    }
    return j;
}

static void job_free(struct job *j)
{
    if (j->have_py)
        py_stack_free(&j->py);
    job_bytes -= j->stack_len + j->maps_len;
    free(j->stack);
    free(j->maps);
    free(j->frames);
    if (j->snap) {
        if (j->snap->have_py)
            py_stack_free(&j->snap->py);
        free(j->snap->stack);
        free(j->snap);
    }
    if (j->sym) {
        symframes_free(j->sym, j->nsym);
        free(j->sym);
    }
    free(j->items);
    cfg_put(j->cfg);
    free(j);
}

/* ---- phase 2: on the analysis thread (or the loop, if it could not start) */

/* The report's view of a job: its snapshot (or, if phase 2 ran out of
 * memory, what the job knows), frames and merged stack. */
static void job_info(struct job *j, const struct worker *w, struct snapshot *empty,
                     struct report_info *ri)
{
    struct snapshot *snap = j->snap;
    unsigned unplaced;

    if (!snap) { /* out of memory in phase 2: what the job knows */
        memset(empty, 0, sizeof(*empty));
        empty->pid = j->pid;
        empty->tid = j->tid;
        empty->err = j->err ? j->err : ENOMEM;
        snprintf(empty->note, sizeof(empty->note), "%s", j->err ? j->note : "out of memory");
        snap = empty;
    }
    if (!j->items) {
        static __thread struct report_item scratch[REPORT_ITEMS_MAX];
        unsigned n = report_merge(snap, j->sym, j->nsym, scratch, &unplaced);

        j->items = n ? malloc(n * sizeof(*j->items)) : NULL;
        if (j->items) {
            memcpy(j->items, scratch, n * sizeof(*j->items));
            j->nitems = n;
        }
    }
    *ri = (struct report_info){
        .req = &j->req,
        .w = w,
        .now_real_ns = j->now_real,
        .start_real_ns = j->now_real - (j->now_mono - j->req.start_ns),
        .snap = snap,
        .frames = j->sym,
        .nframes = j->nsym,
        .items = j->items,
        .nitems = j->nitems,
    };
}

/* Write the report file and its JSON twin, off the loop: rendering reads
 * the worker's source files and each write ends with an fsync, and neither
 * may hold up the next deadline (a loaded disk takes tens of milliseconds,
 * or seconds). */
static void write_report(struct job *j, const struct config *cfg, const char *hostname)
{
    static __thread struct snapshot empty;
    struct report_info ri;

    j->written = true;
    j->path[0] = '\0';
    if (!cfg->log_to_file)
        return;
    job_info(j, &j->wview, &empty, &ri);
    j->write_err = report_write_cfg(cfg, hostname, &ri, j->path, sizeof(j->path));
    if (j->write_err < 0) {
        j->path[0] = '\0';
        return;
    }
    if (cfg->json) {
        j->pre.json_tried = true;
        j->pre.json_err = report_json_write_cfg(cfg, hostname, &ri, j->path, j->pre.json_path,
                                                sizeof(j->pre.json_path));
    }
}

/* A named job's files, with its own configuration copy (none: phase 2 did
 * not run, and report() writes on the loop). */
static void write_job(struct job *j)
{
    if (j->cfg && j->snap)
        write_report(j, &j->cfg->c, j->cfg->hostname);
}

/* Does the snapshot's process still run?  Not if the loop has seen it go,
 * nor if /proc/PID is gone, a zombie's, or another process's. */
static bool still_runs(const struct worker *w, pid_t pid)
{
    uint64_t start;
    char state;

    if (__atomic_load_n(&w->dead, __ATOMIC_ACQUIRE))
        return false;
    if (dsl_proc_stat(pid, &start, &state) < 0)
        return false;
    return state != 'Z' && state != 'X' && (!w->starttime || start == w->starttime);
}

/* Is the job's process still the one that registered (core.h, ident.c)?  If not
 * (it exited, or it is another program now), s->gone is set: nothing more
 * is read of it; and j->exec_since if it is another program. */
static bool same_process(struct job *j, struct snapshot *s)
{
    char why[128] = "";
    int r = ident_verify(&j->w->ident, j->pid, 0, NULL, why, sizeof(why));

    if (r == 0)
        return true;
    if (r == -EPERM) {
        j->exec_since = true;
        dsl_strlcpy(j->exec_why, why, sizeof(j->exec_why));
    }
    s->gone = true;
    return false;
}

static void drop_names(struct job *j)
{
    if (j->sym) {
        symframes_free(j->sym, j->nsym);
        free(j->sym);
    }
    j->sym = NULL;
    j->nsym = 0;
}

/* Unwind the copy (if there is one) and name the frames, with locals. */
static void name(struct job *j, struct snapshot *s, const struct config *cfg)
{
    static struct symframe scratch[DSL_SYMFRAMES_MAX]; /* this thread's */
    struct worker *w = j->w;
    int n;

    s->nframes = 0;
    if (j->needs_unwind && s->stack) {
        s->needs_unwind = true;
    } else if (j->nframes) {
        memcpy(s->frames, j->frames, j->nframes * sizeof(*j->frames));
        s->nframes = j->nframes;
    }
    n = snapshot_name(cfg, w, s, cfg->stack_vars, scratch, ARRAY_SIZE(scratch));
    if (s->nframes == 0 && s->gone && !s->err) {
        s->err = ESRCH;
        snprintf(s->note, sizeof(s->note),
                 "the process exited before its stack could be unwound");
    }
    if (n > 0) {
        j->sym = malloc((size_t)n * sizeof(*j->sym));
        if (j->sym) {
            /* The locals move with the frames. */
            memcpy(j->sym, scratch, (size_t)n * sizeof(*j->sym));
            j->nsym = (unsigned)n;
        } else {
            symframes_free(scratch, (unsigned)n);
        }
    }
}

static void analyse(struct job *j)
{
    struct worker *w = j->w;
    struct snapshot *s = calloc(1, sizeof(*s));
    const struct config *cfg = j->cfg ? &j->cfg->c : NULL;

    if (!s)
        return; /* reported without frames */
    s->pid = j->pid;
    s->tid = j->tid;
    memcpy(s->regs, j->regs, sizeof(s->regs));
    s->regs_known = j->regs_known;
    s->have_regs = j->have_regs;
    s->peeked_syscall = j->peeked_syscall;
    s->err = j->err;
    memcpy(s->note, j->note, sizeof(s->note));
    s->pause_ns = j->pause_ns;
    s->py_name_ns = j->py_name_ns;
    s->py = j->py;
    s->have_py = j->have_py;
    j->have_py = false;
    j->snap = s;
    if (!cfg)
        return;
    if (naming_delay_ms) {
        struct timespec ts = {naming_delay_ms / 1000, (long)(naming_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    /* A process that has exited is named from the copies alone: the stack,
     * and the module list read at the snapshot (or while it ran).  So is
     * one that executed another program since: the snapshot was checked to
     * be of the registered one, the live process is not read any more. */
    s->gone = !still_runs(w, j->pid);
    if (!s->gone)
        (void)same_process(j, s);
    s->maps = j->maps;
    s->maps_len = j->maps_len;
    namer_lock(w);
    if (j->needs_unwind && j->stack) {
        /* The copy moves to the snapshot; job_bytes still counts it. */
        s->stack = j->stack;
        s->stack_len = s->stack_cap = j->stack_len;
        s->stack_addr = j->stack_addr;
        j->stack = NULL;
    }
    name(j, s, cfg);
    /* Whatever was read of the live process while naming (locals, the
     * unwinder's reads beyond the copy) is true only if it is still the
     * process that registered. */
    if (!s->gone && !same_process(j, s)) {
        drop_names(j); /* gone or changed meanwhile: again, from the copies */
        name(j, s, cfg);
    }
    namer_unlock(w);
    /* The locals are read: the stack copy is not needed any more. */
    free(s->stack);
    s->stack = NULL;
    s->stack_len = s->stack_cap = 0;
    s->maps = NULL; /* the job's */
    s->maps_len = 0;
}

static void wake_loop(void)
{
    uint64_t one = 1;
    (void)!write(done_fd, &one, sizeof(one));
}

static void *analysis_main(void *arg)
{
    (void)arg;
    (void)prctl(PR_SET_NAME, "dogslowd-names", 0, 0, 0);
    for (;;) {
        struct job *j;

        pthread_mutex_lock(&qlock);
        /* Stopping (watch_drain() waits for the thread), the cap is off. */
        while (!qstop && (!in_head || named_pending >= NAMED_MAX))
            pthread_cond_wait(&qcond, &qlock);
        j = pop(&in_head, &in_tail);
        pthread_mutex_unlock(&qlock);
        if (!j) /* stopping, and nothing left */
            return NULL;

        analyse(j);
        if (!wthread_up)
            write_job(j);

        pthread_mutex_lock(&qlock);
        named_pending++;
        if (wthread_up) {
            append(&mid_head, &mid_tail, j);
            pthread_cond_signal(&wcond);
        } else {
            append(&out_head, &out_tail, j);
        }
        pthread_mutex_unlock(&qlock);
        if (!wthread_up)
            wake_loop();
    }
}

/*
 * The writer thread: report files (text, JSON twin) of named jobs, one
 * after another, while the analysis thread names the next ones -- a
 * pipeline, so that a storm's throughput is set by the slower of the two,
 * not their sum, and the loop never waits for the disk.
 */
static void *writer_main(void *arg)
{
    (void)arg;
    (void)prctl(PR_SET_NAME, "dogslowd-write", 0, 0, 0);
    for (;;) {
        struct job *j;

        pthread_mutex_lock(&qlock);
        while (!wstop && !mid_head)
            pthread_cond_wait(&wcond, &qlock);
        j = pop(&mid_head, &mid_tail);
        pthread_mutex_unlock(&qlock);
        if (!j) /* stopping, and nothing left */
            return NULL;

        write_job(j);

        pthread_mutex_lock(&qlock);
        append(&out_head, &out_tail, j);
        pthread_mutex_unlock(&qlock);
        wake_loop();
    }
}

int watch_init(struct daemon *d)
{
    const char *delay = getenv("DOGSLOWD_TEST_NAMING_DELAY_MS");
    int r;

    if (delay)
        naming_delay_ms = (unsigned)strtoul(delay, NULL, 10) % 60000u;
    delay = getenv("DOGSLOWD_TEST_WRITE_DELAY_MS");
    if (delay)
        report_set_test_write_delay((unsigned)strtoul(delay, NULL, 10) % 60000u);
    done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (done_fd < 0)
        return -errno;
    d->reports_ev = (struct ev){EV_REPORTS, NULL};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, done_fd,
                  &(struct epoll_event){.events = EPOLLIN, .data.ptr = &d->reports_ev}) < 0)
        return -errno;
    /* The writer first: the analysis thread reads wthread_up. */
    r = pthread_create(&wthread, NULL, writer_main, NULL);
    if (r)
        log_warnx("cannot start the writer thread (%s): report files are written by the "
                  "analysis thread", strerror(r));
    else
        wthread_up = true;
    r = pthread_create(&athread, NULL, analysis_main, NULL);
    if (r) {
        log_warnx("cannot start the analysis thread (%s): frames are named on the event loop",
                  strerror(r));
        return 0;
    }
    athread_up = true;
    return 0;
}

static void submit(struct job *j)
{
    if (!athread_up) {
        analyse(j);
        append(&ready_head, &ready_tail, j);
        wake_loop();
        return;
    }
    pthread_mutex_lock(&qlock);
    append(&in_head, &in_tail, j);
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qlock);
}

/* ---- phase 1: take the snapshot now and queue it ------------------------ */

/* What a report shows of a worker (see job.wview). */
static void view_of(struct worker *v, const struct worker *w)
{
    v->id = w->id;
    v->pid = w->pid;
    v->uid = w->uid;
    v->gid = w->gid;
    v->timer_ns = w->timer_ns;
    v->starttime = w->starttime;
    v->ident = w->ident;
    memcpy(v->program, w->program, sizeof(v->program));
    v->py_state = w->py_state;
    memcpy(v->py_why, w->py_why, sizeof(v->py_why));
    v->conn = v->pidfd = v->memfd = -1;
}

/* The loop's snapshot buffer (its stack copy is reused). */
static struct snapshot loop_snap;

/* A job's copy of what the snapshot read, and on to the analysis thread. */
static void fill_and_submit(struct worker *w, struct job *j, struct snapshot *sn)
{
    memcpy(j->regs, sn->regs, sizeof(j->regs));
    j->regs_known = sn->regs_known;
    j->have_regs = sn->have_regs;
    j->needs_unwind = sn->needs_unwind;
    j->peeked_syscall = sn->peeked_syscall;
    j->err = sn->err;
    memcpy(j->note, sn->note, sizeof(j->note));
    j->pause_ns = sn->pause_ns;
    j->py_name_ns = sn->py_name_ns;
    /* The Python frames move to the job. */
    j->py = sn->py;
    j->have_py = sn->have_py;
    sn->have_py = false;
    if (sn->needs_unwind && sn->stack_len) {
        j->stack = malloc(sn->stack_len);
        if (j->stack) {
            memcpy(j->stack, sn->stack, sn->stack_len);
            j->stack_len = sn->stack_len;
            j->stack_addr = sn->stack_addr;
            job_bytes += sn->stack_len;
        } else {
            j->needs_unwind = false;
        }
    }
    /* Until a report of the process has been named, its module list
     * may exist nowhere but in /proc/PID/maps: keep a copy, in case the
     * process exits before the analysis thread reads it.  One copy: the
     * thread takes jobs in order, and the later ones of the process
     * find the module list the first one made. */
    if (j->needs_unwind && w->reports == 0 && !w->maps_copied) {
        j->maps = snapshot_read_maps(w->pid, &j->maps_len);
        job_bytes += j->maps_len;
        w->maps_copied = j->maps != NULL;
    }
    if (!sn->needs_unwind && sn->nframes) {
        j->frames = malloc(sn->nframes * sizeof(*j->frames));
        if (j->frames) {
            memcpy(j->frames, sn->frames, sn->nframes * sizeof(*j->frames));
            j->nframes = sn->nframes;
        }
    }
    /* After the snapshot: the first one looks for the Python runtime. */
    view_of(&j->wview, w);
    submit(j);
}

/* Not the process that registered any more (core.h, ident.c): nothing of it is
 * reported, and it is not watched again. */
static void drop_changed(struct daemon *d, struct job *j, const struct snapshot *sn)
{
    struct worker *w = j->w;

    njobs--;
    job_free(j);
    w->busy--;
    if (w->dead) {
        if (w->busy == 0)
            symbolize_release_worker(w);
        return;
    }
    registry_remove_changed(d, w, "not traced", sn->note[0] ? sn->note : "changed");
}

/* The job's thread stopped at last, exited, or did not stop in time. */
static void stopped(struct daemon *d, void *owner, pid_t tid, int status, int err)
{
    struct job *j = owner;
    struct worker *w = j->w;

    if (err == -ETIMEDOUT || err == -ESRCH || w->dead) {
        if (!err)
            snapshot_let_go(d, tid, status);
        j->err = err == -ETIMEDOUT ? ETIMEDOUT : ESRCH;
        if (err == -ETIMEDOUT)
            snprintf(j->note, sizeof(j->note),
                     "thread did not stop within %llu ms (uninterruptible sleep?); it is let "
                     "go when it stops",
                     (unsigned long long)(SNAPSHOT_STOP_TIMEOUT_NS / NSEC_PER_MSEC));
        else
            snprintf(j->note, sizeof(j->note), "thread exited during the snapshot");
        view_of(&j->wview, w);
        submit(j);
        return;
    }
    snapshot_resume(d, w, tid, status, &loop_snap);
    if (loop_snap.changed) {
        drop_changed(d, j, &loop_snap);
        return;
    }
    fill_and_submit(w, j, &loop_snap);
}

void watch_stops(struct daemon *d, uint64_t now)
{
    snapshot_reap(d, now, stopped);
}

static void take(struct daemon *d, struct worker *w, uint32_t slot, const struct dsl_request *req)
{
    struct job *j = NULL;

    if (njobs >= JOBS_MAX || job_bytes >= JOBS_BYTES_MAX) {
        if (jobs_dropped++ % 100 == 0)
            log_warnx("snapshot queue full (%u waiting, %zu bytes): request on pid %d tid %d "
                      "reported without a stack (%llu so far)",
                      njobs, job_bytes, (int)w->pid, (int)req->tid,
                      (unsigned long long)jobs_dropped);
    } else {
        j = calloc(1, sizeof(*j));
    }
    if (!j) {
        /* Still report it, with what we know. */
        j = calloc(1, sizeof(*j));
        if (!j)
            return;
        snprintf(j->note, sizeof(j->note), "no snapshot: the daemon was too busy");
        j->err = EBUSY;
    } else {
        j->taken = true;
    }
    j->w = w;
    w->busy++;
    j->cfg = cfg_get(d);
    j->slot = slot;
    j->req = *req;
    j->pid = w->pid;
    j->tid = req->tid;
    j->now_mono = dsl_now_ns(CLOCK_MONOTONIC);
    j->now_real = dsl_now_ns(CLOCK_REALTIME);
    njobs++;
    if (!j->taken) {
        view_of(&j->wview, w);
        submit(j);
        return;
    }
    if (snapshot_take(d, w, req->tid, &loop_snap) == -EINPROGRESS) {
        /* Finished when the thread stops (stopped()), from SIGCHLD. */
        snapshot_claim(d, req->tid, j);
        return;
    }
    if (loop_snap.changed) {
        drop_changed(d, j, &loop_snap);
        return;
    }
    fill_and_submit(w, j, &loop_snap);
}

/* ---- phase 3: on the loop, write and send ------------------------------- */

static void report(struct daemon *d, struct job *j)
{
    static struct snapshot empty;
    struct worker *w = j->w;
    const struct snapshot *snap;
    struct report_info ri;
    const char *path = j->path;

    /* Written on the analysis thread; here only if phase 2 could not run
     * (out of memory). */
    if (!j->written)
        write_report(j, j->cfg ? &j->cfg->c : &d->cfg, j->cfg ? j->cfg->hostname : d->hostname);
    job_info(j, w, &empty, &ri);
    snap = ri.snap;
    if (j->written && j->write_err < 0) {
        errno = -j->write_err;
        log_warn("cannot write the report for pid %d tid %d to %s", (int)j->pid, (int)j->tid,
                 j->cfg ? j->cfg->c.output_dir : d->cfg.output_dir);
    }
    d->reports_written++;
    w->reports++;
    log_notice("undead request: %s %s on pid %d (%s%s) tid %d, running %.3f s%s%s%s",
               j->req.method, j->req.url, (int)j->pid, w->program, w->dead ? ", exited since" : "",
               (int)j->tid, (double)(j->now_mono - j->req.start_ns) / 1e9, snap->err ? " [" : "",
               snap->err ? snap->note : "", snap->err ? "]" : "");
    if (path[0]) {
        char py[64] = "";
        if (snap->have_py)
            snprintf(py, sizeof(py), "; Python frames named in %.2f ms",
                     (double)snap->py_name_ns / 1e6);
        log_notice("report written to %s (thread held %.0f us%s)", path,
                   (double)snap->pause_ns / 1e3, py);
    }
    /* JSON twin's result, retention, syslog, spool (outputs.c) */
    outputs_undead(d, &ri, path, &j->pre, NULL);
    if (j->exec_since && !w->dead)
        registry_remove_changed(d, w, "not traced any more", j->exec_why);
    else if (path[0] && !w->dead)
        follow_start(d, w, j->slot, &j->req, path, snap, j->sym, j->nsym);
}

/* Done with a job: let go of its worker (the last job of a dead one
 * releases its Dwfl session; registry_bury() then frees it). */
static void retire(struct job *j)
{
    struct worker *w = j->w;

    if (athread_up) {
        pthread_mutex_lock(&qlock);
        if (named_pending-- == NAMED_MAX)
            pthread_cond_signal(&qcond);
        pthread_mutex_unlock(&qlock);
    }
    njobs--;
    job_free(j);
    if (--w->busy == 0 && w->dead)
        symbolize_release_worker(w);
}

/* Move what the thread has named to the loop's ready list. */
static void collect_named(void)
{
    pthread_mutex_lock(&qlock);
    if (out_head) {
        if (ready_tail)
            ready_tail->next = out_head;
        else
            ready_head = out_head;
        ready_tail = out_tail;
        out_head = out_tail = NULL;
    }
    pthread_mutex_unlock(&qlock);
}

/* Write the report of the first ready job, and let it go. */
static void report_next(struct daemon *d)
{
    struct job *j = pop(&ready_head, &ready_tail);

    report(d, j);
    retire(j);
}

/* The eventfd said jobs came back: write their reports, for at most one
 * slice, and stop early when a deadline is due (the rest wait for the next
 * turn of the loop, which the eventfd brings at once). */
void watch_reports(struct daemon *d)
{
    uint64_t v, now = dsl_now_ns(CLOCK_MONOTONIC), until = now + WORK_SLICE_NS;
    struct deadline e;

    while (read(done_fd, &v, sizeof(v)) > 0)
        ;
    collect_named();
    for (; ready_head && now < until; now = dsl_now_ns(CLOCK_MONOTONIC)) {
        if (heap_peek(&d->heap, &e) && e.when_ns <= now)
            break;
        report_next(d);
    }
    if (ready_head)
        wake_loop();
}

/* At exit: every snapshot taken is reported. */
void watch_drain(struct daemon *d)
{
    /* Snapshots still waiting for their thread to stop are reported as
     * such (the threads are let go as the daemon exits). */
    snapshot_reap(d, UINT64_MAX, stopped);
    if (athread_up) {
        pthread_mutex_lock(&qlock);
        qstop = true;
        pthread_cond_broadcast(&qcond);
        pthread_mutex_unlock(&qlock);
        pthread_join(athread, NULL);
        athread_up = false;
    }
    if (wthread_up) { /* after the analysis thread: it hands over its last */
        pthread_mutex_lock(&qlock);
        wstop = true;
        pthread_cond_broadcast(&wcond);
        pthread_mutex_unlock(&qlock);
        pthread_join(wthread, NULL);
        wthread_up = false;
    }
    collect_named();
    while (ready_head)
        report_next(d);
    watch_reconfigured();
    if (done_fd >= 0)
        close(done_fd);
    done_fd = -1;
}

void watch_fire(struct daemon *d, uint64_t now)
{
    struct deadline e;

    while (heap_peek(&d->heap, &e) && e.when_ns <= now) {
        struct dsl_request req;
        struct worker *w;
        int r;

        heap_pop(&d->heap, &e);
        if (e.kind == DEADLINE_FOLLOW) {
            follow_fire(d, &e);
            now = dsl_now_ns(CLOCK_MONOTONIC);
            continue;
        }
        w = registry_find(d, e.worker_id);
        if (!w || w->dead || !w->registered || e.slot >= w->nslots)
            continue;
        /* Still the same request?  Retry a few times if the worker is
         * writing the slot right now. */
        for (int tries = 0; tries < 3; tries++) {
            r = dsl_sb_read_slot(w->sb, w->nslots, e.slot, &req);
            if (r != -EAGAIN)
                break;
        }
        if (r != 1 || req.seq != e.seq) {
            /* Over: on time, it ended before its deadline.  Late, it may
             * have outlived its timer while the daemon was busy. */
            if (now > e.when_ns + LATE_NS)
                late_deadline(w, now, now - e.when_ns);
            continue;
        }
        __atomic_store_n(&dsl_sb_slot(w->sb, e.slot)->reported_seq, req.seq, __ATOMIC_RELAXED);
        take(d, w, e.slot, &req);
        /* Snapshots take time; take the clock again for what follows. */
        now = dsl_now_ns(CLOCK_MONOTONIC);
    }
    watch_rearm(d);
}
