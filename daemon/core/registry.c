/* SPDX-License-Identifier: MIT */
/*
 * The registry: connections from workers, their registration, and the
 * scoreboards and pidfds that come with it.
 *
 * A connection is a 'struct worker' from accept() on; it becomes registered
 * when a valid HELLO arrives.  Who the peer is comes from the kernel
 * (SO_PEERCRED, SO_PEERPIDFD), never from the message.  Anything malformed
 * closes that one connection with a logged reason.
 *
 * Any local user may connect (the socket is 0666 by default), so what one
 * user holds is capped per uid: connections that have not registered
 * (max_connections_per_uid, under max_connections for everyone) and
 * registered processes (max_workers_per_uid, under max_workers).  A
 * connection over a cap is closed as soon as it is accepted, and the log
 * lines a peer can cause per connection are rate-limited, so a flood from
 * one user neither locks the others out nor fills the disk.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL   0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#endif
#define SB_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW)

/* Connections taken from the backlog per wakeup: more than the backlog
 * holds (listen(2) in main.c: 128), so one wakeup empties it even when
 * every one is refused, and few enough (~1 ms of refusals) that the other
 * events of the loop wait little. */
#define ACCEPT_BATCH 256

/*
 * Lines a peer can cause at will, one connection each: one kind each, at
 * most one line a second (ratelimit.h).  Registrations and their end are
 * worth a line each, but a user cycling them must not flood the log
 * either: a generous burst.
 */
static struct ratelimit rl_refused = RATELIMIT_INIT("refused connections", 1000, 1);
static struct ratelimit rl_accept = RATELIMIT_INIT("accept errors", 1000, 1);
static struct ratelimit rl_closed =
    RATELIMIT_INIT("connections closed before registering", 1000, 1);
static struct ratelimit rl_hello = RATELIMIT_INIT("connections without a hello in time", 1000, 1);
static struct ratelimit rl_proto = RATELIMIT_INIT("protocol errors", 1000, 1);
static struct ratelimit rl_denied = RATELIMIT_INIT("refused registrations", 1000, 1);
static struct ratelimit rl_other = RATELIMIT_INIT("unregistered connections closed", 1000, 1);
static struct ratelimit rl_adopt = RATELIMIT_INIT("unusable scoreboards offered", 1000, 1);
static struct ratelimit rl_registered = RATELIMIT_INIT("registrations", 1000, 100);
static struct ratelimit rl_forgotten = RATELIMIT_INIT("registrations ended", 1000, 100);

/* ---- what each user holds ----------------------------------------------- */

static void uid_release(struct daemon *d, struct worker *w)
{
    struct uid_use *u;

    if (w->charged == CHARGE_NONE)
        return;
    u = uids_find(&d->uids, w->uid, false);
    if (u) {
        if (w->charged == CHARGE_CONN) {
            u->conns--;
            d->npending--;
        } else {
            u->workers--;
        }
        uids_forget_if_unused(&d->uids, u);
    }
    w->charged = CHARGE_NONE;
}

/* Count w as kind for its user instead of what it counted as before.
 * Fails only when the table is full and w's user has no entry. */
static bool uid_charge(struct daemon *d, struct worker *w, enum uid_charge kind)
{
    struct uid_use *u;

    uid_release(d, w);
    u = uids_find(&d->uids, w->uid, true);
    if (!u)
        return false;
    if (kind == CHARGE_CONN) {
        u->conns++;
        d->npending++;
    } else {
        u->workers++;
    }
    w->charged = kind;
    return true;
}

/* Why a new connection of uid is refused, or NULL when it may stay. */
static const char *conn_refusal(struct daemon *d, uid_t uid, char *buf, size_t size)
{
    const struct uid_use *u = uids_find(&d->uids, uid, false);

    if (u && u->conns >= d->cfg.max_connections_per_uid)
        snprintf(buf, size,
                 "%u connections of this user have not registered (max_connections_per_uid)",
                 u->conns);
    else if (d->npending >= d->cfg.max_connections)
        snprintf(buf, size, "%u connections have not registered (max_connections)", d->npending);
    else if (!u && d->uids.n >= UIDS_MAX)
        snprintf(buf, size, "%u users hold connections or registrations already", d->uids.n);
    else
        return NULL;
    return buf;
}

static int epoll_add(struct daemon *d, int fd, uint32_t events, struct ev *ev)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

struct worker *registry_find(struct daemon *d, uint64_t id)
{
    for (struct worker *w = d->workers; w; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static void unlink_worker(struct daemon *d, struct worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        d->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void close_conn(struct daemon *d, struct worker *w)
{
    if (w->conn < 0)
        return;
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->conn, NULL);
    close(w->conn);
    w->conn = -1;
    d->nconns--;
}

/*
 * Each registration is written down in the state directory, so a daemon
 * that restarts (crash, upgrade) can take the workers back without their
 * help -- even one whose only thread is stuck in the very request we must
 * report.  One small file per process:
 * "2 PID STARTTIME TIMER_MS IDENTITY PROGRAM", the identity as
 * ident_format() writes it (uids, gids, address space), so that the next
 * daemon takes back only the very process that registered.
 */
static void state_save(struct daemon *d, const struct worker *w)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40], line[640], id[256];
    _cleanup_close_ int fd = -1;
    int n;

    if (!d->cfg.state_dir[0] || w->starttime == 0 || ident_format(&w->ident, id, sizeof(id)) < 0)
        return;
    n = snprintf(line, sizeof(line), "2 %d %llu %llu %s %s\n", (int)w->pid,
                 (unsigned long long)w->starttime,
                 (unsigned long long)(w->timer_ns / NSEC_PER_MSEC), id, w->program);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    snprintf(path, sizeof(path), "%s/%d", d->cfg.state_dir, (int)w->pid);
    snprintf(tmp, sizeof(tmp), "%s/.%d.tmp", d->cfg.state_dir, (int)w->pid);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n || rename(tmp, path) < 0) {
        log_warn("cannot record pid %d in %s", (int)w->pid, d->cfg.state_dir);
        unlink(tmp);
    }
}

static void state_forget(struct daemon *d, const struct worker *w)
{
    char path[PATH_MAX + 32];

    if (!d->cfg.state_dir[0] || !w->registered)
        return;
    snprintf(path, sizeof(path), "%s/%d", d->cfg.state_dir, (int)w->pid);
    unlink(path);
}

/* Slots of an adopted scoreboard: requests already reported stay reported. */
static void init_slot_states(struct worker *w)
{
    for (uint32_t i = 0; i < w->nslots; i++) {
        uint32_t r = __atomic_load_n(&dsl_sb_slot(w->sb, i)->reported_seq, __ATOMIC_RELAXED);
        w->slots[i].armed_seq = (r & 1u) ? r : 0;
    }
}

void registry_remove_changed(struct daemon *d, struct worker *w, const char *what,
                             const char *why)
{
    char line[200];

    log_warnx("pid %d (%s): %s: %s", (int)w->pid, w->program, what, why);
    snprintf(line, sizeof(line), "is not the process that registered any more (%s)", why);
    registry_remove(d, w, line);
}

void registry_remove(struct daemon *d, struct worker *w, const char *why)
{
    if (w->registered) {
        if (why)
            log_ratelimited(&rl_forgotten, LOG_LVL_INFO, "pid %d (%s) %s; forgotten", (int)w->pid,
                            w->program, why);
        /* At shutdown (why == NULL) the record stays for the next daemon. */
        if (why)
            state_forget(d, w);
        d->nworkers--;
    } else if (why) {
        log_ratelimited(&rl_other, LOG_LVL_INFO, "connection from pid %d (uid %u) closed: %s",
                        (int)w->pid, (unsigned)w->uid, why);
    }
    if (w->registered)
        d->events.leaving(d, w);
    uid_release(d, w);
    close_conn(d, w);
    if (w->pidfd >= 0) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
        close(w->pidfd);
    }
    if (w->sb)
        munmap(w->sb, w->sb_size);
    if (w->memfd >= 0)
        close(w->memfd);
    heap_remove_worker(&d->heap, w->id);
    d->events.removed(d, w);
    unlink_worker(d, w);
    free(w->slots);
    free(w->framer);
    free(w->ignore_urls);
    w->slots = NULL;
    w->framer = NULL;
    w->ignore_urls = NULL;
    w->sb = NULL;
    w->memfd = w->pidfd = -1;
    /* Other events of the same epoll batch may still point at w; the
     * analysis thread reads it too. */
    __atomic_store_n(&w->dead, true, __ATOMIC_RELEASE);
    w->next = d->graveyard;
    d->graveyard = w;
}

void registry_drop(struct daemon *d, struct worker *w, struct ratelimit *rl, const char *why)
{
    if (w->registered) {
        registry_remove(d, w, why);
        return;
    }
    log_ratelimited(rl, LOG_LVL_INFO, "connection from pid %d (uid %u) closed: %s", (int)w->pid,
                    (unsigned)w->uid, why);
    registry_remove(d, w, NULL);
}

int registry_hand_over(struct daemon *d, struct worker *w)
{
    int fd = w->conn;

    uid_release(d, w);
    w->conn = -1;
    d->nconns--;
    return fd;
}

void registry_bury(struct daemon *d)
{
    struct worker **pp = &d->graveyard;

    /* Records with snapshots in flight stay until those are reported. */
    while (*pp) {
        struct worker *w = *pp;

        if (w->busy) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        pthread_mutex_destroy(&w->dwfl_lock);
        free(w);
    }
}

/*
 * One connection from the backlog.  Returns 0 when one was taken (kept, or
 * refused and closed), -EAGAIN when the backlog is empty, another -errno
 * when accept() failed (-EMFILE: out of descriptors).
 */
static int accept_one(struct daemon *d)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct worker *w;
    char why[128];
    int fd, pidfd;

    fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        int r = -errno;

        if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR)
            return -EAGAIN;
        /* The peer gave up while it waited in the backlog: take the next. */
        if (r == -ECONNABORTED)
            return 0;
        log_ratelimited(&rl_accept, LOG_LVL_WARN, "accept: %s", strerror(-r));
        return r;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        log_ratelimited(&rl_accept, LOG_LVL_WARN, "SO_PEERCRED: %s", strerror(errno));
        close(fd);
        return 0;
    }
    if (cred.pid <= 0) {
        log_ratelimited(&rl_accept, LOG_LVL_WARN, "SO_PEERCRED: no peer process");
        close(fd);
        return 0;
    }
    /* Over a cap: closed before anything is spent on it (no pidfd, no
     * record), so a flood costs three system calls a connection and no
     * other user notices. */
    if (conn_refusal(d, cred.uid, why, sizeof(why))) {
        d->conns_refused++;
        log_ratelimited(&rl_refused, LOG_LVL_WARN, "refusing connection from pid %d, uid %u: %s",
                        (int)cred.pid, (unsigned)cred.uid, why);
        close(fd);
        return 0;
    }
    /* The kernel's pidfd for the peer (Linux 6.5+) cannot race with pid
     * reuse; older kernels fall back to pidfd_open(). */
    len = sizeof(pidfd);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
        pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
        if (pidfd < 0) {
            int r = -errno;

            /* The peer may simply have exited already: its doing. */
            log_ratelimited(&rl_accept, LOG_LVL_WARN, "pidfd_open(%d): %s", (int)cred.pid,
                            strerror(-r));
            close(fd);
            return r == -EMFILE || r == -ENFILE ? r : 0;
        }
    }
    if (fcntl(pidfd, F_SETFD, FD_CLOEXEC) < 0) {
        close(pidfd);
        close(fd);
        return 0;
    }
    w = calloc(1, sizeof(*w));
    if (w)
        w->framer = calloc(1, sizeof(*w->framer));
    if (!w || !w->framer) {
        free(w);
        close(pidfd);
        close(fd);
        return -ENOMEM;
    }
    w->id = ++d->next_worker_id;
    pthread_mutex_init(&w->dwfl_lock, NULL);
    w->pid = cred.pid;
    w->uid = cred.uid;
    w->gid = cred.gid;
    w->conn = fd;
    w->pidfd = pidfd;
    w->memfd = -1;
    w->conn_ev = (struct ev){EV_CONN, w};
    w->pid_ev = (struct ev){EV_PIDFD, w};
    w->hello_deadline_ns = dsl_now_ns(CLOCK_MONOTONIC) + d->cfg.hello_timeout_ms * NSEC_PER_MSEC;
    w->next = d->workers;
    if (d->workers)
        d->workers->prev = w;
    d->workers = w;
    d->nconns++;
    /* Cannot fail: conn_refusal() found room for the user. */
    (void)uid_charge(d, w, CHARGE_CONN);
    if (epoll_add(d, fd, EPOLLIN | EPOLLRDHUP, &w->conn_ev) < 0) {
        log_warn("epoll_ctl");
        registry_remove(d, w, "internal error");
        return 0;
    }
    /* A client sends its hello right after connect(), so it is usually
     * there already: answered now, the connection never waits for another
     * turn of the loop, and does not count as waiting meanwhile. */
    registry_conn_event(d, w, EPOLLIN);
    return 0;
}

static void pause_accept(struct daemon *d)
{
    struct epoll_event e = {.events = 0, .data.ptr = &d->listen_ev};

    /* The listening socket stays readable while the backlog is full: left
     * in the set, the loop would spin on it.  Connections wait in the
     * backlog until descriptors are free again. */
    if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->listen_fd, &e) == 0)
        d->accept_paused = true;
}

void registry_resume_accept(struct daemon *d)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &d->listen_ev};

    if (d->accept_paused && epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->listen_fd, &e) == 0)
        d->accept_paused = false;
}

void registry_accept_backlog(struct daemon *d)
{
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int r = accept_one(d);

        if (r == 0)
            continue;
        if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM)
            pause_accept(d);
        /* -EAGAIN: the backlog is empty; anything else: next wakeup. */
        return;
    }
}

static int send_msg(int fd, const struct dsl_writer *wr, int n, int pass_fd)
{
    /* A fresh socket's buffer always has room for one small message; if it
     * does not, the peer is not a client we want. */
    if (dsl_send_fd(fd, wr->buf, (size_t)n, pass_fd, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
        return -errno;
    return 0;
}

static void refuse(struct daemon *d, struct worker *w, int err, const char *reason)
{
    struct dsl_writer wr;
    struct dsl_error e = {.err = err};
    int n;

    dsl_strlcpy(e.message, reason, sizeof(e.message));
    n = dsl_error_encode(&wr, &e);
    if (n > 0)
        (void)send_msg(w->conn, &wr, n, -1);
    registry_drop(d, w, &rl_denied, reason);
}

/* Create a fresh scoreboard: a sealed memfd, so the worker can neither
 * shrink it (which would crash us with SIGBUS) nor grow it. */
static int scoreboard_create(struct worker *w, uint32_t nslots)
{
    size_t size = dsl_sb_size(nslots);
    _cleanup_close_ int fd = -1;
    void *p;

    fd = memfd_create("dogslow-scoreboard", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0)
        return -errno;
    if (fcntl(fd, F_ADD_SEALS, SB_SEALS) < 0)
        return -errno;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    dsl_sb_init(p, nslots);
    w->sb = p;
    w->sb_size = size;
    w->nslots = nslots;
    w->memfd = dsl_take_fd(&fd);
    return 0;
}

/* Take over a scoreboard a worker offers back (it was registered with a
 * daemon that restarted).  It is hostile input until proven otherwise. */
static int scoreboard_adopt(struct worker *w, int fd)
{
    struct stat st;
    struct dsl_sb_header *p;
    int seals;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct dsl_sb_header) ||
        st.st_size > (off_t)dsl_sb_size(DSL_SLOTS_MAX))
        return -EINVAL;
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & SB_SEALS) != SB_SEALS)
        return -EPERM;
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    if (dsl_sb_check_header(p, (size_t)st.st_size) < 0) {
        munmap(p, (size_t)st.st_size);
        return -EINVAL;
    }
    w->sb = p;
    w->sb_size = (size_t)st.st_size;
    w->nslots = p->nslots; /* validated against the size just above */
    w->memfd = fd;
    return 0;
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static void handle_hello(struct daemon *d, struct worker *w, const struct dsl_hello *h, int fd)
{
    _cleanup_close_ int passed = fd;
    struct dsl_welcome wel;
    struct dsl_writer wr;
    struct worker *old = NULL;
    const struct uid_use *u;
    uint32_t nslots, timer_ms, mine;
    int n, r;

    if ((h->flags & DSL_HELLO_ADOPT) != (passed >= 0 ? DSL_HELLO_ADOPT : 0)) {
        refuse(d, w, EPROTO, "scoreboard flag and passed descriptor disagree");
        return;
    }
    /* A daemon without CAP_SYS_PTRACE (privs.c) can only trace its own
     * user's processes. */
    if (!privs_can_trace_any() && w->uid != geteuid()) {
        refuse(d, w, EACCES, "dogslowd runs as another user and cannot watch this process");
        return;
    }
    /* One registration per process: a new one replaces the old, so the old
     * one does not count against the caps it is about to leave. */
    for (struct worker *o = d->workers; o; o = o->next) {
        if (o != w && o->registered && o->pid == w->pid) {
            old = o;
            break;
        }
    }
    if (d->nworkers - (old ? 1u : 0u) >= d->cfg.max_workers) {
        refuse(d, w, EAGAIN, "too many registered processes");
        return;
    }
    u = uids_find(&d->uids, w->uid, false);
    mine = u ? u->workers : 0;
    if (old && old->uid == w->uid && old->charged == CHARGE_WORKER && mine)
        mine--;
    if (mine >= d->cfg.max_workers_per_uid) {
        refuse(d, w, EAGAIN, "too many registered processes of this user (max_workers_per_uid)");
        return;
    }
    if (!access_worker_allowed(d, w)) {
        refuse(d, w, EACCES, "this user or group may not register (allowed_users, allowed_groups)");
        return;
    }
    {
        char why[160];
        if (ignore_worker_set(w, h->ignore_urls, why, sizeof(why)) < 0) {
            refuse(d, w, EINVAL, why);
            return;
        }
    }
    /* Who registers: the process as it is now must be the one that
     * connected (SO_PEERCRED holds the credentials of connect() time), and
     * one that may be traced at all (a set-uid program is not dumpable).
     * Every later read of it checks this identity again (core.h, ident.c). */
    {
        struct ident id;
        char why[160];

        r = ident_read(w->pid, 0, &id);
        if (r < 0 || id.tgid != w->pid) {
            snprintf(why, sizeof(why), "cannot read the process's credentials (%s)",
                     strerror(r < 0 ? -r : ESRCH));
            refuse(d, w, r < 0 ? -r : ESRCH, why);
            return;
        }
        if (id.uid[1] != w->uid || id.gid[1] != w->gid) {
            refuse(d, w, EPERM, "the process's credentials changed since it connected");
            return;
        }
        if (!id.dumpable) {
            refuse(d, w, EPERM,
                   "the process is not dumpable (a set-uid program, or one that changed its "
                   "user: it may call prctl(PR_SET_DUMPABLE, 1) first): it is not traced");
            return;
        }
        if (!id.mm[0] && !id.mm[2]) {
            refuse(d, w, EPERM, "the process's memory layout cannot be read");
            return;
        }
        w->ident = id;
        w->starttime = id.starttime;
    }
    if (old)
        registry_remove(d, old, "registered again");

    timer_ms = h->timer_ms ? h->timer_ms : d->cfg.timer_ms;
    if (timer_ms < d->cfg.timer_min_ms)
        timer_ms = d->cfg.timer_min_ms;
    if (timer_ms > d->cfg.timer_max_ms)
        timer_ms = d->cfg.timer_max_ms;
    nslots = h->nslots ? h->nslots : DSL_SLOTS_DEFAULT;
    if (nslots > DSL_SLOTS_MAX)
        nslots = DSL_SLOTS_MAX;

    if (passed >= 0) {
        r = scoreboard_adopt(w, passed);
        if (r == 0) {
            passed = -1; /* now w->memfd */
        } else {
            log_ratelimited(&rl_adopt, LOG_LVL_WARN,
                            "pid %d offered a scoreboard that cannot be used (%s); giving it a "
                            "new one",
                            (int)w->pid, strerror(-r));
            r = scoreboard_create(w, nslots);
        }
    } else {
        r = scoreboard_create(w, nslots);
    }
    if (r < 0) {
        errno = -r;
        log_warn("cannot create a scoreboard for pid %d", (int)w->pid);
        refuse(d, w, -r, "daemon could not create a scoreboard");
        return;
    }
    w->slots = calloc(w->nslots, sizeof(*w->slots));
    if (!w->slots) {
        refuse(d, w, ENOMEM, "out of memory");
        return;
    }
    init_slot_states(w);
    w->timer_ns = (uint64_t)timer_ms * NSEC_PER_MSEC;
    w->timer_asked_ms = h->timer_ms;
    dsl_strlcpy(w->program, h->program, sizeof(w->program));
    sanitize(w->program);
    __atomic_store_n(&w->sb->daemon_pid, d->pid, __ATOMIC_RELAXED);
    __atomic_store_n(&w->sb->generation, d->generation, __ATOMIC_RELAXED);
    __atomic_store_n(&w->sb->heartbeat_ns, dsl_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);

    wel = (struct dsl_welcome){
        .daemon_pid = d->pid,
        .nslots = w->nslots,
        .timer_ms = timer_ms,
        .generation = d->generation,
    };
    if (epoll_add(d, w->pidfd, EPOLLIN, &w->pid_ev) < 0) {
        log_warn("epoll_ctl(pidfd)");
        registry_remove(d, w, "internal error");
        return;
    }
    free(w->framer);
    w->framer = NULL;
    w->registered = true;
    d->nworkers++;
    /* No longer a connection waiting: a registration (the user's entry is
     * there, so this cannot fail). */
    (void)uid_charge(d, w, CHARGE_WORKER);
    /* Written down before the worker hears back, so a daemon that dies
     * right after still hands the worker on to the next one. */
    state_save(d, w);
    n = dsl_welcome_encode(&wr, &wel);
    if (n < 0 || send_msg(w->conn, &wr, n, w->memfd) < 0) {
        registry_remove(d, w, "could not answer");
        return;
    }
    log_ratelimited(&rl_registered, LOG_LVL_INFO,
                    "registered pid %d (%s), uid %u, %u thread slots, timer %u.%03u s%s",
                    (int)w->pid, w->program, (unsigned)w->uid, w->nslots, timer_ms / 1000,
                    timer_ms % 1000, (h->flags & DSL_HELLO_ADOPT) ? ", scoreboard adopted" : "");
    /* Requests already running in an adopted scoreboard are armed now. */
    d->events.registered(d);
}

void registry_conn_event(struct daemon *d, struct worker *w, uint32_t events)
{
    uint8_t buf[DSL_HDR_SIZE + DSL_PAYLOAD_MAX];
    int passed, nfds;
    bool ctrunc;
    ssize_t n;
    size_t off = 0;

    n = dsl_recv_fd(w->conn, buf, sizeof(buf), &passed, &nfds, &ctrunc);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        if (w->registered)
            registry_remove(d, w, "disconnected");
        else
            registry_drop(d, w, &rl_closed, strerror(errno));
        return;
    }
    if (n == 0) {
        if (passed >= 0)
            close(passed);
        if (w->registered)
            registry_remove(d, w, "unregistered");
        else
            registry_drop(d, w, &rl_closed, "closed before registering");
        return;
    }
    if (w->registered) {
        /* Nothing is defined after the hello yet. */
        if (passed >= 0)
            close(passed);
        registry_remove(d, w, "protocol error: unexpected message after registration");
        return;
    }
    if (ctrunc || nfds > 1) {
        if (passed >= 0)
            close(passed);
        registry_drop(d, w, &rl_proto, "protocol error: unexpected descriptors");
        return;
    }
    while (off < (size_t)n) {
        size_t used;
        int r = dsl_framer_push(w->framer, buf + off, (size_t)n - off, &used);
        char why[96];

        off += used;
        if (r < 0) {
            snprintf(why, sizeof(why), "protocol error: bad header (%s)", strerror(-r));
            if (passed >= 0)
                close(passed);
            registry_drop(d, w, &rl_proto, why);
            return;
        }
        if (r == 0)
            break;
        if (w->framer->hdr.type == DSL_MSG_CTL_REQUEST && off == (size_t)n && passed < 0) {
            d->events.control(d, w); /* dogslowctl, not a worker: see control.c */
            return;
        }
        if (w->framer->hdr.type != DSL_MSG_HELLO || off != (size_t)n) {
            if (passed >= 0)
                close(passed);
            registry_drop(d, w, &rl_proto, "protocol error: expected a single hello");
            return;
        }
        struct dsl_hello h;
        if (dsl_hello_decode(w->framer->payload, w->framer->hdr.len, &h) < 0) {
            if (passed >= 0)
                close(passed);
            registry_drop(d, w, &rl_proto, "protocol error: malformed hello");
            return;
        }
        handle_hello(d, w, &h, passed);
        return;
    }
    /* A partial hello: wait for the rest, but no descriptor may come with a
     * fragment (it would have to be remembered). */
    if (passed >= 0) {
        close(passed);
        registry_drop(d, w, &rl_proto, "protocol error: descriptor with a partial message");
    }
    (void)events;
}

void registry_pidfd_event(struct daemon *d, struct worker *w)
{
    registry_remove(d, w, "exited");
}

void registry_expire_hellos(struct daemon *d, uint64_t now)
{
    struct worker *w = d->workers, *next;

    for (; w; w = next) {
        next = w->next;
        if (!w->registered && now > w->hello_deadline_ns)
            registry_drop(d, w, &rl_hello, "no hello in time");
    }
}

/* The scoreboard memfd among PID's descriptors, fetched with pidfd_getfd(). */
static int fetch_scoreboard(struct worker *w)
{
    char dirpath[64], path[128], target[128];
    DIR *dir;
    struct dirent *e;
    int r = -ENOENT;

    snprintf(dirpath, sizeof(dirpath), "/proc/%d/fd", (int)w->pid);
    dir = opendir(dirpath);
    if (!dir)
        return -errno;
    while ((e = readdir(dir)) && r < 0) {
        char *end;
        long fdnum = strtol(e->d_name, &end, 10);
        ssize_t n;

        if (*end || end == e->d_name || fdnum < 0 || fdnum > INT32_MAX)
            continue;
        snprintf(path, sizeof(path), "%s/%ld", dirpath, fdnum);
        n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, "/memfd:dogslow-scoreboard", 25) != 0)
            continue;
        int fd = (int)syscall(SYS_pidfd_getfd, w->pidfd, (int)fdnum, 0);
        if (fd < 0) {
            r = -errno; /* e.g. EPERM: a seccomp filter without pidfd_getfd */
            if (r == -ENOENT)
                r = -EBADF;
            continue;
        }
        r = scoreboard_adopt(w, fd);
        if (r < 0)
            close(fd);
    }
    closedir(dir);
    return r;
}

static bool adopt_one(struct daemon *d, const char *line)
{
    int pid, fields;
    unsigned long long starttime, timer_ms;
    uint64_t now_start;
    char program[DSL_STR_MAX + 1];
    struct worker *w;
    int pidfd;

    struct ident recorded, cur;
    char changed[160];
    int consumed = 0, n;

    program[0] = '\0';
    fields = sscanf(line, "2 %d %llu %llu %n", &pid, &starttime, &timer_ms, &consumed);
    if (fields < 3 || consumed == 0 || pid <= 0 || timer_ms == 0) {
        if (line[0] == '1' && line[1] == ' ')
            log_notice("a registration recorded by an older dogslowd (without its credentials) "
                       "is not taken over: that worker registers again on its next request");
        return false;
    }
    n = ident_parse_record(line + consumed, &recorded);
    if (n < 0)
        return false;
    sscanf(line + consumed + n, " %255[^\n]", program);
    for (w = d->workers; w; w = w->next)
        if (w->pid == pid)
            return false;
    /* Same process as recorded?  Checked again after the pidfd is open
     * (ident_verify() compares the start time too), so the pidfd cannot
     * belong to a newcomer that reused the pid. */
    if (dsl_proc_stat(pid, &now_start, NULL) < 0 || now_start != starttime)
        return false;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return false;
    /* And still the program, and the credentials, that registered. */
    recorded.starttime = starttime;
    changed[0] = '\0';
    if (ident_verify(&recorded, pid, 0, &cur, changed, sizeof(changed)) < 0) {
        if (changed[0])
            log_warnx("pid %d is not taken over from the previous daemon: %s", pid, changed);
        close(pidfd);
        return false;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        close(pidfd);
        return false;
    }
    w->id = ++d->next_worker_id;
    pthread_mutex_init(&w->dwfl_lock, NULL);
    w->pid = pid;
    w->pidfd = pidfd;
    w->conn = -1;
    w->memfd = -1;
    w->starttime = starttime;
    w->conn_ev = (struct ev){EV_CONN, w};
    w->pid_ev = (struct ev){EV_PIDFD, w};
    dsl_strlcpy(w->program, program[0] ? program : "?", sizeof(w->program));
    sanitize(w->program);
    if (timer_ms < d->cfg.timer_min_ms)
        timer_ms = d->cfg.timer_min_ms;
    if (timer_ms > d->cfg.timer_max_ms)
        timer_ms = d->cfg.timer_max_ms;
    w->timer_ns = timer_ms * NSEC_PER_MSEC;
    w->timer_asked_ms = (uint32_t)timer_ms; /* unknown whether asked: keep it across reloads */
    w->ident = cur;
    w->uid = cur.uid[1];
    w->gid = cur.gid[1];
    w->next = d->workers;
    if (d->workers)
        d->workers->prev = w;
    d->workers = w;
    {
        const char *why = NULL;
        int r = 0;

        if (!privs_can_trace_any() && w->uid != geteuid())
            why = "it belongs to another user and this daemon may not trace it";
        else if ((r = fetch_scoreboard(w)) < 0)
            why = r == -ENOENT ? "its scoreboard is gone" : "cannot fetch its scoreboard";
        else if (!(w->slots = calloc(w->nslots, sizeof(*w->slots))))
            why = "out of memory", r = -ENOMEM;
        else if (epoll_add(d, w->pidfd, EPOLLIN, &w->pid_ev) < 0)
            why = "epoll", r = -errno;
        if (why) {
            /* The worker goes on unwatched until it registers again (its
             * library re-offers the scoreboard when it sees a new daemon). */
            log_warnx("cannot take pid %d (%s) over from the previous daemon: %s%s%s", pid,
                      w->program, why, r ? ": " : "", r ? strerror(-r) : "");
            registry_remove(d, w, NULL);
            return false;
        }
    }
    init_slot_states(w);
    w->registered = true;
    d->nworkers++;
    /* Counted for its user like any registration, even over a cap (it was
     * registered before), unless the table is full: then not at all. */
    (void)uid_charge(d, w, CHARGE_WORKER);
    __atomic_store_n(&w->sb->daemon_pid, d->pid, __ATOMIC_RELAXED);
    __atomic_store_n(&w->sb->generation, d->generation, __ATOMIC_RELAXED);
    __atomic_store_n(&w->sb->heartbeat_ns, dsl_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
    state_save(d, w);
    log_info("adopted pid %d (%s) from the previous daemon, %u thread slots", pid, w->program,
             w->nslots);
    return true;
}

void registry_adopt_previous(struct daemon *d)
{
    DIR *dir;
    struct dirent *e;
    unsigned adopted = 0;

    if (!d->cfg.state_dir[0])
        return;
    if (mkdir(d->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
        log_warn("cannot create %s; registrations will not survive a restart",
                 d->cfg.state_dir);
        d->cfg.state_dir[0] = '\0';
        return;
    }
    dir = opendir(d->cfg.state_dir);
    if (!dir)
        return;
    while ((e = readdir(dir))) {
        char path[PATH_MAX + 300], line[512];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        if (e->d_name[0] == '.' )
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->cfg.state_dir, e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
        unlink(path); /* rewritten below if the process is still there */
        if (n <= 0)
            continue;
        line[n] = '\0';
        if (adopt_one(d, line))
            adopted++;
    }
    closedir(dir);
    if (adopted)
        log_notice("took over %u registered processes from the previous daemon", adopted);
    d->events.registered(d);
}
