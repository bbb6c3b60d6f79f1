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
#include <sys/timerfd.h>

#include "dogslowd.h"
#include "follow.h"
#include "ignore.h"
#include "outputs.h"
#include "util.h"

void watch_rearm(struct daemon *d)
{
    struct deadline e;
    struct itimerspec its = {0};
    uint64_t when = 0;

    if (heap_peek(&d->heap, &e))
        when = e.when_ns ? e.when_ns : 1;
    /* Queued snapshots to work off: come back at once (after other events). */
    if (watch_busy())
        when = 1;
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
        };
        r = heap_push(&d->heap, &e);
        if (r < 0) {
            log_warnx("deadline queue full (%zu); request on pid %d tid %d not watched",
                      d->heap.n, (int)w->pid, (int)req.tid);
        }
        w->slots[i].armed_seq = req.seq;
    }
}

static void scan_workers(struct daemon *d, uint64_t now)
{
    for (struct worker *w = d->workers; w; w = w->next)
        if (w->registered && !w->dead)
            scan_worker(d, w, now);
}

void watch_scan(struct daemon *d, uint64_t now)
{
    scan_workers(d, now);
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

struct job {
    struct job *next;
    uint64_t worker_id;
    uint32_t slot;
    struct dsl_request req;
    uint64_t now_mono, now_real;
    /* The snapshot, without its frame array (filled in phase 2). */
    pid_t pid, tid;
    uint64_t regs[DSL_NREGS];
    uint32_t regs_known;
    bool have_regs, needs_unwind, taken;
    long peeked_syscall;
    uint8_t *stack;
    size_t stack_len;
    uint64_t stack_addr;
    struct frame *frames; /* only from the live (fallback) unwinder */
    struct py_stack py;   /* owned when have_py */
    bool have_py;
    unsigned nframes;
    int err;
    char note[160];
    uint64_t pause_ns;
};

static struct job *jobs_head, *jobs_tail;
static unsigned njobs;
static size_t job_bytes;
static uint64_t jobs_dropped;

bool watch_busy(void)
{
    return njobs > 0;
}

static void job_free(struct job *j)
{
    if (j->have_py)
        py_stack_free(&j->py);
    job_bytes -= j->stack_len;
    free(j->stack);
    free(j->frames);
    free(j);
}

/* Phase 1: take the snapshot now and queue it. */
static void take(struct daemon *d, struct worker *w, uint32_t slot, const struct dsl_request *req)
{
    static struct snapshot snap;
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
    j->worker_id = w->id;
    j->slot = slot;
    j->req = *req;
    j->pid = w->pid;
    j->tid = req->tid;
    j->now_mono = dsl_now_ns(CLOCK_MONOTONIC);
    j->now_real = dsl_now_ns(CLOCK_REALTIME);
    if (j->taken) {
        snapshot_take(d, w, req->tid, &snap);
        memcpy(j->regs, snap.regs, sizeof(j->regs));
        j->regs_known = snap.regs_known;
        j->have_regs = snap.have_regs;
        j->needs_unwind = snap.needs_unwind;
        j->peeked_syscall = snap.peeked_syscall;
        j->err = snap.err;
        memcpy(j->note, snap.note, sizeof(j->note));
        j->pause_ns = snap.pause_ns;
        /* The Python frames move to the job. */
        j->py = snap.py;
        j->have_py = snap.have_py;
        snap.have_py = false;
        if (snap.needs_unwind && snap.stack_len) {
            j->stack = malloc(snap.stack_len);
            if (j->stack) {
                memcpy(j->stack, snap.stack, snap.stack_len);
                j->stack_len = snap.stack_len;
                j->stack_addr = snap.stack_addr;
                job_bytes += snap.stack_len;
            } else {
                j->needs_unwind = false;
            }
        }
        if (!snap.needs_unwind && snap.nframes) {
            j->frames = malloc(snap.nframes * sizeof(*j->frames));
            if (j->frames) {
                memcpy(j->frames, snap.frames, snap.nframes * sizeof(*j->frames));
                j->nframes = snap.nframes;
            }
        }
    }
    if (jobs_tail)
        jobs_tail->next = j;
    else
        jobs_head = j;
    jobs_tail = j;
    njobs++;
}

/* Phase 2: name, write and send one queued snapshot. */
static void finish(struct daemon *d, struct job *j)
{
    static struct snapshot snap;
    static struct symframe frames[DSL_SYMFRAMES_MAX];
    struct worker *w = registry_find(d, j->worker_id), gone;
    struct report_info ri;
    char path[PATH_MAX];
    unsigned nframes = 0;
    int r;

    if (!w || w->dead) {
        /* The process went away after its snapshot: report what we have. */
        memset(&gone, 0, sizeof(gone));
        gone.pid = j->pid;
        gone.id = j->worker_id;
        gone.memfd = gone.pidfd = gone.conn = -1;
        dsl_strlcpy(gone.program, "(exited)", sizeof(gone.program));
        w = &gone;
    }
    snap.pid = j->pid;
    snap.tid = j->tid;
    memcpy(snap.regs, j->regs, sizeof(snap.regs));
    snap.regs_known = j->regs_known;
    snap.have_regs = j->have_regs;
    snap.needs_unwind = j->needs_unwind && j->stack_len && w != &gone;
    snap.peeked_syscall = j->peeked_syscall;
    snap.err = j->err;
    memcpy(snap.note, j->note, sizeof(snap.note));
    snap.pause_ns = j->pause_ns;
    snap.unwind_ns = 0;
    if (snap.have_py)
        py_stack_free(&snap.py);
    snap.py = j->py;
    snap.have_py = j->have_py;
    j->have_py = false;
    snap.nframes = 0;
    if (snap.needs_unwind) {
        if (snap.stack_cap < j->stack_len) {
            uint8_t *p = realloc(snap.stack, j->stack_len);
            if (p) {
                snap.stack = p;
                snap.stack_cap = j->stack_len;
            }
        }
        if (snap.stack_cap >= j->stack_len) {
            memcpy(snap.stack, j->stack, j->stack_len);
            snap.stack_len = j->stack_len;
            snap.stack_addr = j->stack_addr;
            snapshot_finish(d, w, &snap);
        }
    } else if (j->nframes) {
        memcpy(snap.frames, j->frames, j->nframes * sizeof(*j->frames));
        snap.nframes = j->nframes;
    }
    if (snap.nframes > 0 && w != &gone) {
        int n = symbolize(d, w, &snap, d->cfg.stack_vars, frames, ARRAY_SIZE(frames));
        if (n > 0)
            nframes = (unsigned)n;
    }
    static struct report_item items[REPORT_ITEMS_MAX];
    unsigned unplaced, nitems = report_merge(&snap, frames, nframes, items, &unplaced);
    ri = (struct report_info){
        .req = &j->req,
        .w = w,
        .now_real_ns = j->now_real,
        .start_real_ns = j->now_real - (j->now_mono - j->req.start_ns),
        .snap = &snap,
        .frames = frames,
        .nframes = nframes,
        .items = items,
        .nitems = nitems,
    };
    path[0] = '\0';
    if (d->cfg.log_to_file) {
        r = report_write(d, &ri, path, sizeof(path));
        if (r < 0) {
            errno = -r;
            log_warn("cannot write the report for pid %d tid %d to %s", (int)j->pid,
                     (int)j->tid, d->cfg.output_dir);
        }
    }
    d->reports_written++;
    w->reports++;
    log_notice("undead request: %s %s on pid %d (%s) tid %d, running %.3f s%s%s%s",
               j->req.method, j->req.url, (int)j->pid, w->program, (int)j->tid,
               (double)(j->now_mono - j->req.start_ns) / 1e9, snap.err ? " [" : "",
               snap.err ? snap.note : "", snap.err ? "]" : "");
    if (path[0])
        log_notice("report written to %s (thread held %.0f us)", path,
                   (double)snap.pause_ns / 1e3);
    outputs_undead(d, &ri, path, NULL); /* JSON twin, retention, syslog (outputs.c) */
    if (path[0] && w != &gone)
        follow_start(d, w, j->slot, &j->req, path, &snap, frames, nframes);
    symframes_free(frames, nframes);
}

/* Work off queued snapshots for at most one slice; stop early when a
 * deadline is due, so the next snapshot is never kept waiting behind the
 * naming and writing of earlier ones. */
static void work(struct daemon *d)
{
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC), until = now + WORK_SLICE_NS;
    struct deadline e;

    for (; jobs_head && now < until; now = dsl_now_ns(CLOCK_MONOTONIC)) {
        struct job *j = jobs_head;

        if (heap_peek(&d->heap, &e) && e.when_ns <= now)
            break; /* watch_rearm() brings us back at once */
        jobs_head = j->next;
        if (!jobs_head)
            jobs_tail = NULL;
        njobs--;
        finish(d, j);
        job_free(j);
        /* After a long one, find the requests that began meanwhile, so
         * that their deadlines count before the next job starts. */
        if (dsl_now_ns(CLOCK_MONOTONIC) - now > WORK_SLICE_NS)
            scan_workers(d, dsl_now_ns(CLOCK_MONOTONIC));
    }
}

void watch_drain(struct daemon *d)
{
    while (jobs_head) {
        struct job *j = jobs_head;
        jobs_head = j->next;
        if (!jobs_head)
            jobs_tail = NULL;
        njobs--;
        finish(d, j);
        job_free(j);
    }
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
    work(d);
    watch_rearm(d);
}
