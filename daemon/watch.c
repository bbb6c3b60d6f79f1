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

void watch_scan(struct daemon *d, uint64_t now)
{
    for (struct worker *w = d->workers; w; w = w->next)
        if (w->registered && !w->dead)
            scan_worker(d, w, now);
    follow_scan(d, now);
    watch_rearm(d);
}

static void undead(struct daemon *d, struct worker *w, uint32_t slot,
                   const struct dsl_request *req)
{
    static struct snapshot snap;
    static struct symframe frames[DSL_SYMFRAMES_MAX];
    struct report_info ri;
    char path[PATH_MAX];
    uint64_t now_mono, now_real;
    unsigned nframes = 0;
    int r;

    now_mono = dsl_now_ns(CLOCK_MONOTONIC);
    now_real = dsl_now_ns(CLOCK_REALTIME);
    r = snapshot_thread(d, w, req->tid, &snap);
    if (r == 0 && snap.nframes > 0) {
        int n = symbolize(d, w, &snap, d->cfg.stack_vars, frames, ARRAY_SIZE(frames));
        if (n > 0)
            nframes = (unsigned)n;
    }
    ri = (struct report_info){
        .req = req,
        .w = w,
        .now_real_ns = now_real,
        .start_real_ns = now_real - (now_mono - req->start_ns),
        .snap = &snap,
        .frames = frames,
        .nframes = nframes,
    };
    path[0] = '\0';
    if (d->cfg.log_to_file) {
        r = report_write(d, &ri, path, sizeof(path));
        if (r < 0) {
            errno = -r;
            log_warn("cannot write the report for pid %d tid %d to %s", (int)w->pid,
                     (int)req->tid, d->cfg.output_dir);
        }
    }
    d->reports_written++;
    w->reports++;
    log_notice("undead request: %s %s on pid %d (%s) tid %d, running %.3f s%s%s%s",
               req->method, req->url, (int)w->pid, w->program, (int)req->tid,
               (double)(now_mono - req->start_ns) / 1e9, snap.err ? " [" : "",
               snap.err ? snap.note : "", snap.err ? "]" : "");
    if (path[0])
        log_notice("report written to %s (thread held %.0f us)", path,
                   (double)snap.pause_ns / 1e3);
    outputs_undead(d, &ri, path, NULL); /* JSON twin, retention, syslog (outputs.c) */
    if (path[0])
        follow_start(d, w, slot, req, path, &snap, frames, nframes);
    symframes_free(frames, nframes);
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
        if (r != 1 || req.seq != e.seq)
            continue;
        __atomic_store_n(&dsl_sb_slot(w->sb, e.slot)->reported_seq, req.seq, __ATOMIC_RELAXED);
        undead(d, w, e.slot, &req);
        /* Snapshots take time; take the clock again for what follows. */
        now = dsl_now_ns(CLOCK_MONOTONIC);
    }
    watch_rearm(d);
}
