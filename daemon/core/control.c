/* SPDX-License-Identifier: MIT */
/*
 * dogslowctl's side of the daemon: access, the four commands, and writing
 * the answer out without ever blocking (see control.h).
 *
 * Who may ask: root, the daemon's own user, and members of the socket's
 * group (socket_group, else the daemon's group) -- primary group from
 * SO_PEERCRED, supplementary groups from SO_PEERGROUPS.  A 'dump' makes the
 * daemon ptrace a worker on request, so it is not for everyone who may
 * register.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis.h"
#include "capture.h"
#include "conf.h"
#include "core.h"
#include "output.h"
#include "textbuf.h"
#include "util.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define CTL_TIMEOUT_NS  (60 * NSEC_PER_SEC) /* to read the whole answer */
#define DUMP_THREADS_MAX 32                 /* threads in one dump */
#define STATUS_REQS_MAX  64                 /* requests listed per process */

/* Anyone who may connect can cause these lines, one a connection: at most
 * one a second of each kind (ratelimit.h). */
static struct ratelimit rl_busy = RATELIMIT_INIT("dogslowctl connections refused", 1000, 1);
static struct ratelimit rl_malformed = RATELIMIT_INIT("malformed dogslowctl commands", 1000, 1);
static struct ratelimit rl_denied = RATELIMIT_INIT("dogslowctl commands refused", 1000, 1);

struct ctl_conn {
    struct ctl_conn *next;
    int fd;
    struct ev ev;
    uint64_t deadline_ns;
    uint8_t *out; /* the whole answer, framed */
    size_t len, off;
};

static char config_source[PATH_MAX + 32];
static uint64_t started_mono;

void control_init(struct daemon *d, const char *source)
{
    (void)d;
    dsl_strlcpy(config_source, source, sizeof(config_source));
    if (!started_mono)
        started_mono = dsl_now_ns(CLOCK_MONOTONIC);
}

/* A line of the answer, at most 2047 bytes of it (one with a very long
 * path is cut there). */
static void __attribute__((format(printf, 2, 3))) tprintf(struct dsl_text *t, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    dsl_text_add(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* ---- the commands ------------------------------------------------------- */

static void fmt_age(uint64_t ns, char *buf, size_t size)
{
    uint64_t s = ns / NSEC_PER_SEC;

    if (s < 60)
        snprintf(buf, size, "%.3f s", (double)ns / 1e9);
    else if (s < 3600)
        snprintf(buf, size, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, size, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60));
}


/* "P1, P2, P3" of the first n pids, of at most max known. */
static void pid_list(char *buf, size_t size, const pid_t *pids, unsigned n, size_t max)
{
    size_t len = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < n && i < max && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? ", " : "", (int)pids[i]);
}
static void cmd_status(struct daemon *d, struct dsl_text *t)
{
    const struct config *c = &d->cfg;
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
    unsigned threads = 0, inflight = 0;
    char age[32];

    for (struct worker *w = d->workers; w; w = w->next) {
        if (!w->registered || w->dead || !w->sb)
            continue;
        uint32_t hwm = __atomic_load_n(&w->sb->hwm, __ATOMIC_ACQUIRE);
        if (hwm > w->nslots)
            hwm = w->nslots;
        for (uint32_t i = 0; i < hwm; i++) {
            struct dsl_request req;
            if (__atomic_load_n(&dsl_sb_slot(w->sb, i)->tid, __ATOMIC_RELAXED) > 0)
                threads++;
            if (dsl_sb_read_slot(w->sb, w->nslots, i, &req) == 1)
                inflight++;
        }
    }
    fmt_age(now - started_mono, age, sizeof(age));
    tprintf(t, "dogslowd %s, pid %d, up %s\n", PACKAGE_VERSION, (int)d->pid, age);
    tprintf(t, "configuration: %s\n", config_source);
    tprintf(t, "socket: %s\n", c->socket_path);
    tprintf(t, "reports: %s%s\n", c->log_to_file ? c->output_dir : "not written to files",
            c->log_to_file && c->json ? " (with JSON twins)" : "");
    tprintf(t, "watching: %s\n",
            c->enabled ? "yes" : "no (enabled = false: nothing is reported)");
    if (c->seccomp) {
        int last;
        unsigned long n = sandbox_denied(&last);

        if (n)
            tprintf(t, "seccomp filter: on, %lu calls denied (the last: %s)\n", n,
                    sandbox_syscall_name(last));
        else
            tprintf(t, "seccomp filter: on, nothing denied\n");
    } else {
        tprintf(t, "seccomp filter: off (seccomp = no)\n");
    }
    if (sep_active()) {
        struct sep_stats ss;
        char pids[64] = "";

        sep_get_stats(&ss);
        pid_list(pids, sizeof(pids), ss.pids, ss.nprocs, ARRAY_SIZE(ss.pids));
        tprintf(t,
                "analysis processes: %u%s%s%s (one per user of the workers, no capabilities); "
                "%lu snapshots named there, %lu replaced, %lu requests refused\n",
                ss.nprocs, ss.nprocs ? ", pid " : "", pids,
                ss.nprocs > ARRAY_SIZE(ss.pids) ? ", ..." : "", ss.jobs, ss.restarts, ss.refused);
        pid_list(pids, sizeof(pids), ss.py_pids, ss.py_nprocs, ARRAY_SIZE(ss.py_pids));
        tprintf(t,
                "Python analysis processes: %u%s%s%s (one per user of Python workers); "
                "%lu Python stacks named or runtimes looked for there\n",
                ss.py_nprocs, ss.py_nprocs ? ", pid " : "", pids,
                ss.py_nprocs > ARRAY_SIZE(ss.py_pids) ? ", ..." : "", ss.py_jobs);
    } else {
        tprintf(t, "analysis processes: none: frames are named in the daemon (privsep = false)\n");
    }
    tprintf(t, "registered processes: %u\n", d->nworkers);
    tprintf(t, "threads with a slot: %u\n", threads);
    tprintf(t, "requests in flight: %u\n", inflight);
    tprintf(t, "snapshots awaiting their report: %u\n", watch_pending());
    tprintf(t, "reports written: %llu\n", (unsigned long long)d->reports_written);
    tprintf(t, "requests ignored: %llu\n", (unsigned long long)d->requests_ignored);
    {
        struct delivery_stats ds;
        delivery_get_stats(&ds);
        tprintf(t, "deliveries pending: %llu (%llu bytes in the spool)\n",
                (unsigned long long)ds.pending, (unsigned long long)ds.pending_bytes);
        tprintf(t, "delivered: %llu e-mail (%llu digests), %llu Sentry; retries %llu; "
                   "dropped at the spool cap %llu; rejected by a peer %llu\n",
                (unsigned long long)ds.delivered_email, (unsigned long long)ds.digests,
                (unsigned long long)ds.delivered_sentry, (unsigned long long)ds.retries,
                (unsigned long long)ds.dropped, (unsigned long long)ds.rejected);
        if (ds.last_error[0])
            tprintf(t, "last delivery error: %s\n", ds.last_error);
    }
    tprintf(t, "control connections: %u\n", d->nctls);
    tprintf(t, "connections waiting to register: %u (at most %u, %u per user); %llu refused\n",
            d->npending, c->max_connections, c->max_connections_per_uid,
            (unsigned long long)d->conns_refused);
    tprintf(t, "users with connections or registrations: %u\n", d->uids.n);
    {
        struct follow_info fi[16];
        unsigned nf = follow_list(fi, ARRAY_SIZE(fi));

        tprintf(t, "requests followed: %u (at %u samples a second)\n", follow_count(),
                c->follow_hz);
        for (unsigned i = 0; i < nf; i++) {
            fmt_age(now > fi[i].start_ns ? now - fi[i].start_ns : 0, age, sizeof(age));
            tprintf(t, "    pid %d tid %d running %s, %u samples, %.1f ms paused: %s %s\n",
                    (int)fi[i].pid, (int)fi[i].tid, age, fi[i].samples,
                    (double)fi[i].pause_ns / 1e6, fi[i].method, fi[i].url);
        }
    }
    if (!d->nworkers)
        return;
    tprintf(t, "\n%-8s %-6s %-6s %-10s %-8s %s\n", "PID", "UID", "SLOTS", "TIMER", "REPORTS",
            "PROGRAM");
    for (struct worker *w = d->workers; w; w = w->next) {
        unsigned listed = 0;

        if (!w->registered || w->dead || !w->sb)
            continue;
        fmt_age(w->timer_ns, age, sizeof(age));
        tprintf(t, "%-8d %-6u %-6u %-10s %-8llu %s\n", (int)w->pid, (unsigned)w->uid, w->nslots,
                age, (unsigned long long)w->reports, w->program);
        uint32_t hwm = __atomic_load_n(&w->sb->hwm, __ATOMIC_ACQUIRE);
        if (hwm > w->nslots)
            hwm = w->nslots;
        for (uint32_t i = 0; i < hwm; i++) {
            struct dsl_request req;
            if (dsl_sb_read_slot(w->sb, w->nslots, i, &req) != 1)
                continue;
            if (++listed > STATUS_REQS_MAX) {
                tprintf(t, "    ... more requests not listed\n");
                break;
            }
            fmt_age(now > req.start_ns ? now - req.start_ns : 0, age, sizeof(age));
            tprintf(t, "    tid %-8d running %-10s %s %s\n", (int)req.tid, age, req.method,
                    req.url);
        }
    }
}

static bool is_thread_of(pid_t pid, pid_t tid)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
    return stat(path, &st) == 0;
}

/* Snapshot one thread of w now and add the rendered report to t. */
static int dump_thread(struct daemon *d, struct worker *w, const struct dsl_request *req,
                       struct dsl_text *t)
{
    static struct snapshot snap;
    static struct symframe frames[DSL_SYMFRAMES_MAX];
    struct report_info ri;
    uint64_t now_mono = dsl_now_ns(CLOCK_MONOTONIC), now_real = dsl_now_ns(CLOCK_REALTIME);
    unsigned nframes = 0;
    char *text = NULL;
    size_t len = 0;
    int r;

    /* An operator's request: waits if the analysis thread is naming a
     * report of this process. */
    namer_lock(w);
    r = snapshot_take(d, w, req->tid, &snap);
    if (r == 0) {
        int n = snapshot_name(&d->cfg, w, &snap, d->cfg.stack_vars, frames, ARRAY_SIZE(frames));
        if (n > 0)
            nframes = (unsigned)n;
    }
    /* Unwinding and naming read the process too (locals). */
    if (r == 0 && !snapshot_still_same(w, &snap)) {
        symframes_free(frames, nframes);
        nframes = 0;
    }
    namer_unlock(w);
    if (snap.changed) {
        tprintf(t, "==== pid %d tid %d ====\n%s\n", (int)w->pid, (int)req->tid, snap.note);
        registry_remove_changed(d, w, "not traced", snap.note);
        return -EPERM;
    }
    ri = (struct report_info){
        /* Not an undead request: a look an operator asked for, whatever
         * the thread is doing and however long it has run. */
        .heading = "Snapshot taken with dogslowctl dump at",
        .req = req,
        .w = w,
        .now_real_ns = now_real,
        .start_real_ns = now_real - (now_mono > req->start_ns ? now_mono - req->start_ns : 0),
        .snap = &snap,
        .frames = frames,
        .nframes = nframes,
    };
    tprintf(t, "==== pid %d tid %d%s ====\n", (int)w->pid, (int)req->tid,
            req->seq ? "" : " (not in a request)");
    r = report_render(d, &ri, &text, &len);
    if (r < 0)
        tprintf(t, "cannot render: %s\n", strerror(-r));
    else
        dsl_text_add(t, text, len);
    free(text);
    symframes_free(frames, nframes);
    return 0;
}

static int cmd_dump(struct daemon *d, pid_t pid, pid_t tid, struct dsl_text *t, char *msg,
                    size_t msize)
{
    struct dsl_request reqs[DUMP_THREADS_MAX];
    unsigned n = 0;
    struct worker *w;

    for (w = d->workers; w; w = w->next)
        if (w->registered && !w->dead && w->pid == pid && w->sb)
            break;
    if (!w) {
        snprintf(msg, msize, "pid %d is not registered with this daemon", (int)pid);
        return ESRCH;
    }
    /* The requests running now, and which thread each is on. */
    uint32_t hwm = __atomic_load_n(&w->sb->hwm, __ATOMIC_ACQUIRE);
    if (hwm > w->nslots)
        hwm = w->nslots;
    for (uint32_t i = 0; i < hwm && n < DUMP_THREADS_MAX; i++) {
        if (dsl_sb_read_slot(w->sb, w->nslots, i, &reqs[n]) != 1)
            continue;
        if (!tid || reqs[n].tid == tid)
            n++;
    }
    if (tid && n == 0) {
        if (!is_thread_of(pid, tid)) {
            snprintf(msg, msize, "%d is not a thread of pid %d", (int)tid, (int)pid);
            return ESRCH;
        }
    }
    if (n == 0) {
        /* Not in a request: the thread asked for, or the main thread. */
        memset(&reqs[0], 0, sizeof(reqs[0]));
        reqs[0].tid = tid ? tid : pid;
        reqs[0].start_ns = dsl_now_ns(CLOCK_MONOTONIC);
        dsl_strlcpy(reqs[0].method, "-", sizeof(reqs[0].method));
        dsl_strlcpy(reqs[0].url, "(no request)", sizeof(reqs[0].url));
        n = 1;
    }
    for (unsigned i = 0; i < n; i++) {
        if (dump_thread(d, w, &reqs[i], t) < 0) {
            snprintf(msg, msize, "pid %d is not the process that registered any more",
                     (int)pid);
            return EPERM;
        }
    }
    snprintf(msg, msize, "%u thread%s of pid %d", n, n == 1 ? "" : "s", (int)pid);
    log_info("dogslowctl dump: %s", msg);
    return 0;
}

static int cmd_config(struct daemon *d, struct dsl_text *t, char *msg, size_t msize)
{
    char *dump = NULL;
    int r = config_dump(&d->cfg, config_source, &dump);

    if (r < 0) {
        snprintf(msg, msize, "cannot show the configuration: %s", strerror(-r));
        return -r;
    }
    dsl_text_puts(t, dump);
    free(dump);
    return 0;
}

static int cmd_test_alert(struct daemon *d, uid_t uid, struct dsl_text *t, char *msg, size_t msize)
{
    static struct worker fake;
    static struct snapshot snap;
    const struct config *c = &d->cfg;
    struct outputs_result res;
    struct dsl_request req;
    struct report_info ri;
    char path[PATH_MAX];
    uint64_t now_mono = dsl_now_ns(CLOCK_MONOTONIC), now_real = dsl_now_ns(CLOCK_REALTIME);
    bool failed = false;
    int r;

    /* A report about the daemon itself, marked as a test throughout. */
    memset(&fake, 0, sizeof(fake));
    fake.pid = d->pid;
    fake.uid = geteuid();
    fake.gid = getegid();
    fake.pidfd = fake.conn = fake.memfd = -1;
    fake.timer_ns = (uint64_t)c->timer_ms * NSEC_PER_MSEC;
    dsl_strlcpy(fake.program, "dogslowctl test-alert", sizeof(fake.program));
    memset(&req, 0, sizeof(req));
    req.tid = d->pid;
    req.start_ns = now_mono - fake.timer_ns;
    dsl_strlcpy(req.method, "TEST", sizeof(req.method));
    dsl_strlcpy(req.url, "/dogslow/test-alert", sizeof(req.url));
    snap.pid = snap.tid = d->pid;
    snap.err = 0;
    snap.nframes = 0;
    snprintf(snap.note, sizeof(snap.note),
             "test alert sent with dogslowctl by uid %u: no request is stuck", (unsigned)uid);
    ri = (struct report_info){
        .req = &req,
        .w = &fake,
        .now_real_ns = now_real,
        .start_real_ns = now_real - fake.timer_ns,
        .snap = &snap,
        .frames = NULL,
        .nframes = 0,
    };
    path[0] = '\0';
    if (c->log_to_file) {
        r = report_write(d, &ri, path, sizeof(path));
        if (r < 0) {
            failed = true;
            path[0] = '\0';
            tprintf(t, "file:      FAILED to write to %s: %s\n", c->output_dir, strerror(-r));
        } else {
            tprintf(t, "file:      written to %s\n", path);
        }
    } else {
        tprintf(t, "file:      off (log_to_file = false)\n");
    }
    outputs_undead(d, &ri, path, NULL, &res);
    tprintf(t, "json:      %s\n", res.json);
    tprintf(t, "retention: %s\n", res.retention);
    tprintf(t, "syslog:    %s\n", res.syslog);
    failed |= !strncmp(res.json, "FAILED", 6) || !strncmp(res.retention, "FAILED", 6) ||
              strstr(res.syslog, "FAILED") != NULL;
    /* Queued, not sent: the delivery thread sends, with retries; status
     * shows what is pending and the last error. */
    tprintf(t, "email:     %s\n", res.email);
    tprintf(t, "sentry:    %s\n", res.sentry);
    failed |= !strncmp(res.email, "FAILED", 6) || !strncmp(res.email, "DROPPED", 7) ||
              !strncmp(res.sentry, "FAILED", 6) || !strncmp(res.sentry, "DROPPED", 7);
    log_notice("dogslowctl test-alert by uid %u%s", (unsigned)uid,
               failed ? ": some outputs failed" : "");
    snprintf(msg, msize, failed ? "some outputs failed" : "");
    return failed ? EIO : 0;
}

/* ---- the connection ----------------------------------------------------- */

static void ctl_free(struct daemon *d, struct ctl_conn *c)
{
    for (struct ctl_conn **pp = &d->ctls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
    d->nctls--;
}

/* Frame the text as DATA messages and an END. */
static int frame_answer(struct ctl_conn *c, const struct dsl_text *t, int err, const char *msg)
{
    size_t chunks = (t->len + DSL_PAYLOAD_MAX - 1) / DSL_PAYLOAD_MAX;
    size_t cap = chunks * DSL_HDR_SIZE + t->len + DSL_HDR_SIZE + 8 + DSL_STR_MAX;
    struct dsl_ctl_end end = {.err = err};
    struct dsl_writer wr;
    int n;

    c->out = malloc(cap);
    if (!c->out)
        return -ENOMEM;
    for (size_t off = 0; off < t->len; off += DSL_PAYLOAD_MAX) {
        size_t k = t->len - off < DSL_PAYLOAD_MAX ? t->len - off : DSL_PAYLOAD_MAX;
        n = dsl_ctl_data_encode(&wr, t->p + off, k);
        if (n < 0)
            return n;
        memcpy(c->out + c->len, wr.buf, (size_t)n);
        c->len += (size_t)n;
    }
    dsl_strlcpy(end.message, msg, sizeof(end.message));
    n = dsl_ctl_end_encode(&wr, &end);
    if (n < 0)
        return n;
    memcpy(c->out + c->len, wr.buf, (size_t)n);
    c->len += (size_t)n;
    return 0;
}

static void flush(struct daemon *d, struct ctl_conn *c)
{
    while (c->off < c->len) {
        ssize_t k = send(c->fd, c->out + c->off, c->len - c->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return; /* EPOLLOUT tells us when there is room */
            ctl_free(d, c);
            return;
        }
        c->off += (size_t)k;
    }
    ctl_free(d, c);
}

static const char *cmd_name(uint32_t cmd)
{
    switch (cmd) {
    case DSL_CTL_STATUS: return "status";
    case DSL_CTL_DUMP: return "dump";
    case DSL_CTL_CONFIG: return "config";
    case DSL_CTL_TEST_ALERT: return "test-alert";
    }
    return "?";
}

void control_take(struct daemon *d, struct worker *w)
{
    struct dsl_ctl_request req;
    struct dsl_text t;
    char msg[DSL_STR_MAX + 1] = "";
    struct ctl_conn *c;
    int err = 0;
    bool ok_req, allowed;
    struct epoll_event ev;

    /* At most DSL_CTL_REPLY_MAX bytes, 64 of them kept back; whole appends
     * or none (a dumped report goes in whole or not at all). */
    dsl_text_init_growable(&t, DSL_CTL_REPLY_MAX, DSL_TEXT_WHOLE);
    t.reserve = 64;
    ok_req = dsl_ctl_request_decode(w->framer->payload, w->framer->hdr.len, &req) == 0;
    allowed = access_control_allowed(d, w);
    if (d->nctls >= CTL_CONNS_MAX) {
        registry_drop(d, w, &rl_busy, "too many dogslowctl connections");
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        registry_remove(d, w, "out of memory");
        return;
    }
    /* The connection is ours now; the worker record goes. */
    c->fd = w->conn;
    c->ev = (struct ev){EV_CTL, c};
    c->deadline_ns = dsl_now_ns(CLOCK_MONOTONIC) + CTL_TIMEOUT_NS;
    ev = (struct epoll_event){.events = EPOLLOUT, .data.ptr = &c->ev};
    if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        free(c);
        registry_remove(d, w, "internal error (epoll)");
        return;
    }
    /* From now on bounded by CTL_CONNS_MAX, and no longer counted among
     * the user's connections waiting to register. */
    (void)registry_hand_over(d, w);
    c->next = d->ctls;
    d->ctls = c;
    d->nctls++;

    if (!ok_req) {
        err = EBADMSG;
        snprintf(msg, sizeof(msg), "malformed command");
        log_ratelimited(&rl_malformed, LOG_LVL_WARN, "dogslowctl from pid %d: malformed command",
                        (int)w->pid);
    } else if (!allowed) {
        err = EACCES;
        snprintf(msg, sizeof(msg),
                 "permission denied: only root, uid %u and members of group %u may use "
                 "dogslowctl",
                 (unsigned)geteuid(), (unsigned)access_control_group(d));
        log_ratelimited(&rl_denied, LOG_LVL_WARN,
                        "dogslowctl %s from pid %d uid %u refused: not root nor in group %u",
                        cmd_name(req.cmd), (int)w->pid, (unsigned)w->uid,
                        (unsigned)access_control_group(d));
    } else {
        log_debug("dogslowctl %s from pid %d uid %u", cmd_name(req.cmd), (int)w->pid,
                  (unsigned)w->uid);
        switch (req.cmd) {
        case DSL_CTL_STATUS:
            cmd_status(d, &t);
            break;
        case DSL_CTL_DUMP:
            err = cmd_dump(d, req.pid, req.tid, &t, msg, sizeof(msg));
            break;
        case DSL_CTL_CONFIG:
            err = cmd_config(d, &t, msg, sizeof(msg));
            break;
        case DSL_CTL_TEST_ALERT:
            err = cmd_test_alert(d, w->uid, &t, msg, sizeof(msg));
            break;
        }
    }
    if (t.full) {
        /* The mark is held to the same limit: it goes in if there is room
         * for it before the 64 bytes kept back. */
        t.full = false;
        tprintf(&t, "\n[answer cut at %u bytes]\n", DSL_CTL_REPLY_MAX - 64);
    }
    registry_remove(d, w, NULL);
    if (frame_answer(c, &t, err, msg) < 0) {
        free(t.p);
        ctl_free(d, c);
        return;
    }
    free(t.p);
    flush(d, c);
}

void control_event(struct daemon *d, struct ctl_conn *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        ctl_free(d, c);
        return;
    }
    flush(d, c);
}

void control_expire(struct daemon *d, uint64_t now)
{
    struct ctl_conn *c = d->ctls, *next;

    for (; c; c = next) {
        next = c->next;
        if (now > c->deadline_ns) {
            log_info("dropping a dogslowctl connection that did not read its answer");
            ctl_free(d, c);
        }
    }
}

void control_close_all(struct daemon *d)
{
    while (d->ctls)
        ctl_free(d, d->ctls);
}
