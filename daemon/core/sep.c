/* SPDX-License-Identifier: MIT */
/*
 * Privilege separation, the daemon's side (docs/architecture.md, "The trust
 * boundary").
 *
 * At start-up, before its own seccomp filter and before any thread, the
 * daemon forks the *spawner*: a process that drops every capability, sets
 * no_new_privs, keeps nothing but its socket to the daemon (and stderr),
 * and puts a seccomp filter on itself that allows little more than fork.
 * Whenever the daemon needs an analysis process -- the first snapshot to
 * name, or after one died -- it writes a byte to the spawner, which forks
 * one (analysis/child.c) and passes the daemon its end of a fresh
 * socketpair.  The daemon itself can fork nothing (its filter), so this is
 * how a crashed analysis process is replaced.
 *
 * sep_name() hands the analysis process a snapshot -- registers, the stack
 * copy, the maps copy of a first report, the frames found while held --
 * and serves its requests until the named frames come back:
 *
 *   MEM_READ  bytes of *the snapshot's* process (whatever pid it names),
 *             through snapshot_read(): the copy first, the live process
 *             only while it is still the registered one (s->gone);
 *             at most SEP_READ_MAX at once and JOB_READ_BUDGET a job
 *   MAPS      that process's /proc/PID/maps, or the snapshot's copy
 *   OPEN      a module: only a path that process maps (its maps say so);
 *             a debug file: only under /usr/lib/debug, no "..", ".debug";
 *             opened read-only here, a regular file, the descriptor passed
 *
 * Everything it answers is decoded by sep_result_decode() as hostile.  A
 * process that breaks the protocol, stays silent past JOB_TIMEOUT_NS or
 * dies is dropped (its socket closed), the snapshot is reported without
 * names, saying why, and the next snapshot gets a new process.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "analysis.h"
#include "capture.h"
#include "core.h"
#include "util.h"

#define JOB_TIMEOUT_NS    (150 * NSEC_PER_SEC) /* longer than the child's own alarm */
#define SPAWN_TIMEOUT_NS  (5 * NSEC_PER_SEC)
#define JOB_READ_BUDGET   (64u << 20)          /* bytes of memory served per job */
#define BUF_KEEP          (1u << 20)           /* message buffers kept between jobs */

static int spawner = -1; /* socket to the spawner; -1: privsep off */
static pid_t spawner_pid;
/*
 * One analysis process per user whose workers it names: one that a worker's
 * crafted file took over gets only the snapshots of that user's processes
 * from then on (and may ask only for their memory and files).  At most
 * PROCS_MAX at once; beyond that the least recently used one is ended.
 */
#define PROCS_MAX 16
struct proc {
    uid_t uid;
    int chan; /* socket to it; -1: slot free */
    pid_t pid;
    uint64_t used; /* jobs counter at its last job, for least-recently-used */
    unsigned nforget;
    uint64_t forget[SEP_FORGET_MAX];
};
/*
 * Two sets of them, each one per user: the naming processes (sep_name, on
 * the analysis thread, jobs of up to seconds), and the Python processes,
 * which the loop waits for (sep_py_find, sep_py_name: a few milliseconds
 * each), so that the loop never waits behind a long naming job.
 */
struct pool {
    struct proc procs[PROCS_MAX];
    bool ready;
};
static struct pool naming, python;
static struct pool *const pools[] = {&naming, &python}; /* [1]: the Python ones */

/* A conversation with one process of a pool: under its lock. */
struct chan {
    struct pool *pool;
    struct proc *cur; /* the process it works with */
    struct sep_buf in, out;
};
static struct chan name_chan = {.pool = &naming}, py_chan = {.pool = &python};
static pthread_mutex_t chan_lock = PTHREAD_MUTEX_INITIALIZER; /* name_chan */
static pthread_mutex_t py_lock = PTHREAD_MUTEX_INITIALIZER;   /* py_chan */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER; /* the spawner's socket */

static pthread_mutex_t forget_lock = PTHREAD_MUTEX_INITIALIZER; /* procs' forget lists */

static bool confine; /* seccomp filters on the spawner and analysis processes */
static unsigned long stat_jobs, stat_py_jobs, stat_restarts, stat_refused;
static uint64_t stat_seq; /* jobs of any kind, for least-recently-used */

static struct ratelimit rl_sep = RATELIMIT_INIT("analysis process", 1000, 5);

/* ---- the spawner --------------------------------------------------------- */

static int drop_all_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];

    memset(d, 0, sizeof(d));
    if (syscall(SYS_capset, &h, d) < 0)
        return -errno;
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/* Close every descriptor but 0-2 and keep. */
static void close_others(int keep)
{
#ifdef SYS_close_range
    if ((keep <= 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return;
#endif
    for (int fd = 3; fd < 65536; fd++)
        if (fd != keep && fcntl(fd, F_GETFD) >= 0)
            close(fd);
}

static void __attribute__((noreturn)) spawner_main(int ctl, pid_t daemon_pid)
{
    /* Test hook (DOGSLOWD_TEST_ANALYSIS_GARBAGE): the first analysis
     * process answers its first job with a malformed result, as one taken
     * over by a crafted file might.  =python: the first two Python ones,
     * their first stack to name (a worker's first is the unheld warm-up
     * read's, its second its first report's). */
    const char *garbage = getenv("DOGSLOWD_TEST_ANALYSIS_GARBAGE");
    bool test_garbage = garbage != NULL, garbage_py = garbage && !strcmp(garbage, "python");
    unsigned spawned = 0;

    (void)prctl(PR_SET_NAME, "dogslowd-spawn", 0, 0, 0);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != daemon_pid)
        _exit(0);
    close_others(ctl);
    /* The daemon's signals are blocked for its signalfd: not here (a
     * SIGTERM to the service's cgroup ends these processes too). */
    sigset_t unblocked;
    sigemptyset(&unblocked);
    sigprocmask(SIG_SETMASK, &unblocked, NULL);
    signal(SIGCHLD, SIG_IGN); /* analysis processes are reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    if (drop_all_caps() < 0) {
        fprintf(stderr, "dogslowd (spawner): cannot drop its capabilities\n");
        _exit(1);
    }
    analysis_child_prepare(); /* inherited by every analysis process */
    if (confine && sandbox_enter_spawner() < 0) {
        fprintf(stderr, "dogslowd (spawner): cannot install its seccomp filter\n");
        _exit(1);
    }
    for (;;) {
        char c;
        int sv[2];
        ssize_t n = read(ctl, &c, 1);

        if (n == 0) {
            close(ctl);
            _exit(0);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        pid_t pid = -1;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            int32_t none = -1;
            (void)dsl_send_fd(ctl, &none, sizeof(none), -1, MSG_NOSIGNAL);
            continue;
        }
        pid = fork();
        if (pid == 0) {
            close(ctl);
            close(sv[0]);
            (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            analysis_child_main(sv[1], confine,
                                test_garbage && spawned < (garbage_py ? 2u : 1u) &&
                                    garbage_py == (c == 'p'),
                                c == 'p');
        }
        spawned += pid > 0 && garbage_py == (c == 'p');
        close(sv[1]);
        int32_t p = pid > 0 ? (int32_t)pid : -1;
        (void)dsl_send_fd(ctl, &p, sizeof(p), pid > 0 ? sv[0] : -1, MSG_NOSIGNAL);
        close(sv[0]);
    }
}

int sep_start(const struct config *cfg)
{
    int sv[2];
    pid_t self = getpid(), pid;

    if (!cfg->privsep)
        return 0;
    confine = cfg->seccomp;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return -e;
    }
    if (pid == 0)
        spawner_main(sv[1], self);
    close(sv[1]);
    spawner = sv[0];
    spawner_pid = pid;
    log_info("privilege separation: frames are named in a process without capabilities "
             "(spawner pid %d)",
             (int)pid);
    return 0;
}

bool sep_active(void)
{
    return spawner >= 0;
}

static void init_procs(struct pool *pool)
{
    if (pool->ready)
        return;
    for (unsigned i = 0; i < PROCS_MAX; i++)
        pool->procs[i].chan = -1;
    pool->ready = true;
}

/* A new analysis process from the spawner, into p (a Python one for the
 * python pool); 0 or -errno. */
static int spawn(struct proc *p, bool py)
{
    int32_t pid = -1;
    int fd = -1, nfds = 0;
    bool ctrunc = false;
    ssize_t n;
    struct pollfd pf = {.fd = spawner, .events = POLLIN};

    pthread_mutex_lock(&spawn_lock);
    if (send(spawner, py ? "p" : "s", 1, MSG_NOSIGNAL) != 1) {
        pthread_mutex_unlock(&spawn_lock);
        return -EPIPE;
    }
    if (poll(&pf, 1, (int)(SPAWN_TIMEOUT_NS / NSEC_PER_MSEC)) != 1) {
        pthread_mutex_unlock(&spawn_lock);
        return -ETIMEDOUT;
    }
    n = dsl_recv_fd(spawner, &pid, sizeof(pid), &fd, &nfds, &ctrunc);
    pthread_mutex_unlock(&spawn_lock);
    if (n != sizeof(pid) || fd < 0 || pid <= 0) {
        if (fd >= 0)
            close(fd);
        return n == 0 ? -EPIPE : -EAGAIN;
    }
    pthread_mutex_lock(&forget_lock);
    p->chan = fd;
    p->pid = pid;
    p->nforget = 0; /* a new process knows no worker */
    pthread_mutex_unlock(&forget_lock);
    return 0;
}

static void drop_proc(struct proc *p, const char *why)
{
    if (p->chan >= 0) {
        close(p->chan); /* it sees the end of its stream, or its alarm ends it */
        p->chan = -1;
        if (why) {
            stat_restarts++;
            log_ratelimited(&rl_sep, LOG_LVL_WARN,
                            "analysis process %d (for uid %u) dropped: %s; the next snapshot "
                            "gets a new one",
                            (int)p->pid, (unsigned)p->uid, why);
        }
    }
    p->pid = 0;
}

/* The analysis process for uid's workers: its slot, a free one, or the
 * least recently used one, ended (never NULL). */
static struct proc *proc_for(struct pool *pool, uid_t uid)
{
    struct proc *free_slot = NULL, *lru = &pool->procs[0];

    init_procs(pool);
    for (unsigned i = 0; i < PROCS_MAX; i++) {
        struct proc *p = &pool->procs[i];
        if (p->chan >= 0 && p->uid == uid)
            return p;
        if (p->chan < 0 && !free_slot)
            free_slot = p;
        if (p->chan >= 0 && p->used < lru->used)
            lru = p;
    }
    pthread_mutex_lock(&forget_lock);
    if (!free_slot) {
        drop_proc(lru, NULL);
        free_slot = lru;
    }
    free_slot->uid = uid;
    pthread_mutex_unlock(&forget_lock);
    return free_slot;
}

void sep_stop(void)
{
    struct chan *chans[] = {&name_chan, &py_chan};

    /* They see the end of their streams and exit. */
    for (size_t k = 0; k < ARRAY_SIZE(chans); k++) {
        for (unsigned i = 0; chans[k]->pool->ready && i < PROCS_MAX; i++)
            drop_proc(&chans[k]->pool->procs[i], NULL);
        sep_buf_free(&chans[k]->in);
        sep_buf_free(&chans[k]->out);
    }
    if (spawner >= 0)
        close(spawner);
    spawner = -1;
}

void sep_lock(void)
{
    pthread_mutex_lock(&chan_lock);
}

bool sep_trylock(void)
{
    return pthread_mutex_trylock(&chan_lock) == 0;
}

void sep_unlock(void)
{
    pthread_mutex_unlock(&chan_lock);
}

void sep_forget(const struct worker *w)
{
    if (!sep_active())
        return;
    pthread_mutex_lock(&forget_lock);
    for (size_t k = 0; k < ARRAY_SIZE(pools); k++) {
        for (unsigned i = 0; pools[k]->ready && i < PROCS_MAX; i++) {
            struct proc *p = &pools[k]->procs[i];
            /* More than that between two jobs: the oldest sessions stay
             * until the process is replaced; harmless. */
            if (p->chan >= 0 && p->uid == w->uid && p->nforget < SEP_FORGET_MAX)
                p->forget[p->nforget++] = w->id;
        }
    }
    pthread_mutex_unlock(&forget_lock);
}

/* End the processes of pool whose user has no registered worker left. */
static void sweep_pool(struct daemon *d, struct pool *pool, const char *what)
{
    pthread_mutex_lock(&forget_lock);
    for (unsigned i = 0; pool->ready && i < PROCS_MAX; i++) {
        struct proc *p = &pool->procs[i];
        const struct uid_use *u;

        if (p->chan < 0)
            continue;
        u = uids_find(&d->uids, p->uid, false);
        if (!u || u->workers == 0) {
            /* Its user has no worker left: its sessions go with it. */
            log_info("%s process %d (for uid %u) ended: no worker of that user is "
                     "registered any more",
                     what, (int)p->pid, (unsigned)p->uid);
            drop_proc(p, NULL);
        }
    }
    pthread_mutex_unlock(&forget_lock);
}

void sep_sweep(struct daemon *d)
{
    if (!sep_active())
        return;
    /* The Python processes are the loop's, and this is the loop. */
    pthread_mutex_lock(&py_lock);
    sweep_pool(d, &python, "Python analysis");
    pthread_mutex_unlock(&py_lock);
    /* Not while snapshots wait to be named: one of a worker that has just
     * exited still needs its process (and its warm sessions). */
    if (watch_pending() || !sep_trylock())
        return; /* next time */
    sweep_pool(d, &naming, "analysis");
    sep_unlock();
}

void sep_get_stats(struct sep_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    pthread_mutex_lock(&forget_lock);
    for (size_t k = 0; k < ARRAY_SIZE(pools); k++) {
        unsigned *n = k ? &ret->py_nprocs : &ret->nprocs;
        pid_t *pids = k ? ret->py_pids : ret->pids;

        for (unsigned i = 0; pools[k]->ready && i < PROCS_MAX; i++) {
            if (pools[k]->procs[i].chan >= 0) {
                if (*n < ARRAY_SIZE(ret->pids))
                    pids[*n] = pools[k]->procs[i].pid;
                (*n)++;
            }
        }
    }
    pthread_mutex_unlock(&forget_lock);
    ret->jobs = stat_jobs;
    ret->py_jobs = stat_py_jobs;
    ret->restarts = stat_restarts;
    ret->refused = stat_refused;
}

/* ---- serving one job's requests ----------------------------------------- */

struct serving {
    const struct worker *w;
    const struct snapshot *s;
    char *maps; /* the maps text answered or read for checks (malloc'd), or NULL */
    size_t maps_len;
    bool maps_owned;
    size_t read_bytes;
};

static const char *maps_of(struct serving *v)
{
    if (!v->maps) {
        if (!v->s->gone) {
            v->maps = snapshot_read_maps(v->s->pid, &v->maps_len);
            v->maps_owned = v->maps != NULL;
        }
        if (!v->maps && v->s->maps) {
            v->maps = (char *)(uintptr_t)v->s->maps;
            v->maps_len = v->s->maps_len;
        }
    }
    return v->maps;
}

static int open_checked(struct serving *v, enum sep_open_kind kind, const char *path, int *ret_fd)
{
    const char *maps = kind == SEP_OPEN_MODULE ? maps_of(v) : NULL;
    struct stat st;
    dev_t dev;
    uint64_t ino;
    int fd;

    if (!sep_open_allowed(kind, path, maps, maps ? v->maps_len : 0, &dev, &ino))
        return -EACCES;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EACCES;
    }
    /* A module must be the very file the process maps, not whatever its
     * path leads to now (a symlink put in its place).  Where the device
     * and inode cannot tell (an overlay file system shows the layer's in
     * the maps), the file is opened as the worker's own user would: then
     * it is nothing the worker could not read itself. */
    if (kind == SEP_OPEN_MODULE && (st.st_dev != dev || (uint64_t)st.st_ino != ino)) {
        close(fd);
        fd = ident_open_as(&v->w->ident, path);
        if (fd < 0)
            return -EACCES;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return -EACCES;
        }
    }
    *ret_fd = fd;
    return 0;
}

/* One read the process asked for, within the job's budget. */
static int budgeted_read(struct serving *v, uint64_t addr, void *buf, uint32_t len)
{
    if (v->read_bytes + len > JOB_READ_BUDGET) {
        stat_refused++;
        return -E2BIG;
    }
    v->read_bytes += len;
    return snapshot_read(v->s, addr, buf, len);
}

/* Answer the request in ch->in (header h).  0, or -errno: the process
 * broke the protocol. */
static int serve(struct chan *ch, struct serving *v, const struct sep_hdr *h)
{
    static uint8_t buf[SEP_READ_MAX + 4];
    int r;

    switch (h->type) {
    case SEP_MEM_READ: {
        uint64_t addr;
        uint32_t len;

        if (sep_mem_read_decode(ch->in.p, ch->in.len, &addr, &len) < 0)
            return -EBADMSG;
        r = budgeted_read(v, addr, buf, len);
        sep_answer_encode(&ch->out, SEP_MEM_DATA, -r, buf, len);
        return sep_send(ch->cur->chan, &ch->out, -1);
    }
    case SEP_MEM_READV: {
        static uint64_t addr[SEP_READV_MAX];
        static uint32_t len[SEP_READV_MAX];
        uint32_t done = 0;
        size_t at = 0;
        unsigned n;

        if (sep_mem_readv_decode(ch->in.p, ch->in.len, addr, len, &n) < 0)
            return -EBADMSG;
        /* Whole ranges in order, up to the first that cannot be read; the
         * bytes follow the count. */
        for (; done < n && budgeted_read(v, addr[done], buf + 4 + at, len[done]) == 0; done++)
            at += len[done];
        memcpy(buf, &done, 4);
        sep_answer_encode(&ch->out, SEP_MEM_DATAV, 0, buf, 4 + at);
        return sep_send(ch->cur->chan, &ch->out, -1);
    }
    case SEP_MAPS: {
        const char *maps;

        if (ch->in.len != 0)
            return -EBADMSG;
        maps = maps_of(v);
        sep_answer_encode(&ch->out, SEP_MAPS_TEXT, maps ? 0 : ESRCH, maps,
                          maps ? v->maps_len : 0);
        return sep_send(ch->cur->chan, &ch->out, -1);
    }
    case SEP_OPEN: {
        static char path[PATH_MAX];
        enum sep_open_kind kind;
        int fd = -1;

        if (sep_open_decode(ch->in.p, ch->in.len, &kind, path, sizeof(path)) < 0)
            return -EBADMSG;
        r = open_checked(v, kind, path, &fd);
        if (r == -EACCES) {
            stat_refused++;
            log_ratelimited(&rl_sep, LOG_LVL_WARN,
                            "analysis process %d asked for %s: not a file pid %d maps; refused",
                            (int)ch->cur->pid, path, (int)v->s->pid);
        }
        sep_answer_encode(&ch->out, SEP_OPENED, -r, NULL, 0);
        r = sep_send(ch->cur->chan, &ch->out, fd);
        if (fd >= 0)
            close(fd);
        return r;
    }
    default:
        return -EBADMSG;
    }
}

/* uid's process of ch's pool, started if need be: 0, or -errno. */
static int take_proc(struct chan *ch, uid_t uid)
{
    int r;

    ch->cur = proc_for(ch->pool, uid);
    if (ch->cur->chan >= 0)
        return 0;
    r = spawn(ch->cur, ch == &py_chan);
    if (r < 0)
        log_ratelimited(&rl_sep, LOG_LVL_ERR,
                        "cannot start an analysis process: %s (the spawner's own line above "
                        "says why it is gone); frames are not named; privsep = false names "
                        "them in the daemon",
                        strerror(-r));
    return r;
}

/* The workers ch's process is to forget, handed over with a job. */
static unsigned take_forget(struct chan *ch, uint64_t *forget)
{
    unsigned n;

    pthread_mutex_lock(&forget_lock);
    n = ch->cur->nforget;
    memcpy(forget, ch->cur->forget, n * sizeof(*forget));
    ch->cur->nforget = 0;
    pthread_mutex_unlock(&forget_lock);
    return n;
}

/* Send the job in ch->out and serve the process's requests until its
 * answer, of type want, is in ch->in.  0, or -errno with *why set (then
 * the process is to be dropped). */
static int exchange(struct chan *ch, struct serving *v, enum sep_type want, uint64_t timeout_ns,
                    const char **why)
{
    uint64_t deadline;
    int r = sep_send(ch->cur->chan, &ch->out, -1);

    if (r < 0) {
        *why = "could not be given the job";
        return r;
    }
    ch->cur->used = ++stat_seq;
    deadline = dsl_now_ns(CLOCK_MONOTONIC) + timeout_ns;
    for (;;) {
        struct sep_hdr h;

        r = sep_recv(ch->cur->chan, &ch->in, &h, NULL, deadline);
        if (r < 0 || h.type == want)
            break;
        r = serve(ch, v, &h);
        if (r < 0)
            break;
    }
    if (v->maps_owned)
        free(v->maps);
    v->maps = NULL;
    v->maps_owned = false;
    *why = r == -EPIPE ? "exited" : r == -ETIMEDOUT ? "took too long" : "broke the protocol";
    return r;
}

static void drop_cur(struct chan *ch, const char *why)
{
    pthread_mutex_lock(&forget_lock);
    drop_proc(ch->cur, why);
    pthread_mutex_unlock(&forget_lock);
}

/* A big job (a stack of 1 MiB, the maps of a process with thousands of
 * threads) does not keep its buffers for the daemon's life. */
static void trim(struct chan *ch)
{
    if (ch->in.cap > BUF_KEEP)
        sep_buf_free(&ch->in);
    if (ch->out.cap > BUF_KEEP)
        sep_buf_free(&ch->out);
}

/* ---- naming a snapshot there --------------------------------------------- */

static void fill_job(struct sep_job *j, const struct config *cfg, const struct worker *w,
                     const struct snapshot *s, bool with_locals)
{
    memset(j, 0, offsetof(struct sep_job, frames));
    j->worker_id = w->id;
    j->pid = s->pid;
    j->tid = s->tid;
    j->err = s->err > 0 && s->err < 4096 ? s->err : 0;
    memcpy(j->note, s->note, sizeof(j->note));
    j->note[sizeof(j->note) - 1] = '\0';
    j->with_locals = with_locals;
    j->gone = s->gone;
    j->needs_unwind = s->needs_unwind && s->stack && s->stack_len;
    j->have_regs = s->have_regs;
    j->regs_known = s->regs_known;
    memcpy(j->regs, s->regs, sizeof(j->regs));
    j->max_frames = cfg->max_frames < DSL_FRAMES_MAX ? cfg->max_frames : DSL_FRAMES_MAX;
    if (!j->max_frames)
        j->max_frames = 1;
    j->max_value_bytes = cfg->max_value_bytes;
    dsl_strlcpy(j->redact, cfg->redact, sizeof(j->redact));
    j->stack_addr = s->stack_addr;
    j->stack = j->needs_unwind ? s->stack : NULL;
    j->stack_len = j->needs_unwind ? (uint32_t)s->stack_len : 0;
    j->maps = s->maps;
    j->maps_len = s->maps ? (uint32_t)s->maps_len : 0;
    if (!j->needs_unwind) {
        j->nframes = s->nframes;
        memcpy(j->frames, s->frames, s->nframes * sizeof(*s->frames));
    }
    j->nforget = take_forget(&name_chan, j->forget);
}

static int fail(struct snapshot *s, int err, const char *why)
{
    drop_cur(&name_chan, why);
    s->nframes = 0;
    s->err = -err;
    snprintf(s->note, sizeof(s->note), "frames not named: the analysis process %s", why);
    return err;
}

/* One attempt: -EPIPE when the process was found dead (before or while
 * naming), other -errno for what is not worth another try. */
static int attempt(const struct config *cfg, struct worker *w, struct snapshot *s,
                   bool with_locals, struct symframe *out_sym, unsigned max)
{
    static struct sep_job job;
    static struct sep_result res;
    struct chan *ch = &name_chan;
    struct serving v = {.w = w, .s = s};
    const char *why;
    int r;

    r = take_proc(ch, w->uid);
    if (r < 0)
        return fail(s, r, "could not be started");
    fill_job(&job, cfg, w, s, with_locals);
    r = sep_job_encode(&ch->out, &job);
    if (r < 0)
        return fail(s, r, "could not be given the snapshot");
    stat_jobs++;
    r = exchange(ch, &v, SEP_RESULT, JOB_TIMEOUT_NS, &why);
    if (r < 0)
        return fail(s, r, why);
    res.sym = out_sym;
    if (sep_result_decode(ch->in.p, ch->in.len, &res, max) < 0)
        return fail(s, -EBADMSG, "sent a malformed result");
    s->needs_unwind = false;
    s->err = res.err;
    memcpy(s->note, res.note, sizeof(s->note));
    s->unwind_ns = res.unwind_ns;
    s->nframes = res.nframes;
    memcpy(s->frames, res.frames, res.nframes * sizeof(*res.frames));
    return (int)res.nsym;
}

int sep_name(const struct config *cfg, struct worker *w, struct snapshot *s, bool with_locals,
             struct symframe *out_sym, unsigned max)
{
    bool unwind = s->needs_unwind;
    unsigned nframes = s->nframes;
    int r = attempt(cfg, w, s, with_locals, out_sym, max);

    /* A process that had died (killed, or crashed on an earlier job):
     * once more with a new one.  One that dies on this very snapshot dies
     * again, and the snapshot goes unnamed. */
    if (r == -EPIPE) {
        s->needs_unwind = unwind;
        s->nframes = nframes;
        s->err = 0;
        s->note[0] = '\0';
        r = attempt(cfg, w, s, with_locals, out_sym, max);
    }
    trim(&name_chan);
    return r;
}

/* ---- the CPython reader's unheld halves there ---------------------------- */

/*
 * The loop waits for these: they read a few dozen objects (a naming: about
 * half a millisecond) or one ELF symbol table (a find, once per worker),
 * and a process that takes longer than PY_NAME_TIMEOUT_NS or
 * PY_FIND_TIMEOUT_NS is dropped: what a process taken over by a worker's
 * crafted objects can cost the loop.  Reads are of the worker's live memory only while it is the
 * registered process (the loop's own thread; the identity is checked by
 * take.c after), maps and files as for naming.
 */
#define PY_NAME_TIMEOUT_NS (2 * NSEC_PER_SEC)
#define PY_FIND_TIMEOUT_NS (5 * NSEC_PER_SEC)

/* A snapshot with no copy: reads go to the live process pid. */
static struct snapshot py_view;

/* Send the job encode() builds to uid's Python process and wait for its
 * answer (want): 0, or -errno with *why.  A dead process is replaced and
 * the job sent once more. */
static int py_exchange(const struct worker *w, pid_t read_pid, enum sep_type want,
                       int (*encode)(struct chan *ch, const void *arg), const void *arg,
                       const char **why)
{
    struct chan *ch = &py_chan;
    struct serving v = {.w = w, .s = &py_view};
    int r = 0;

    memset(&py_view, 0, offsetof(struct snapshot, frames));
    py_view.pid = read_pid;
    py_view.tid = read_pid;
    for (int tries = 0; tries < 2; tries++) {
        r = take_proc(ch, w->uid);
        if (r < 0) {
            *why = "could not be started";
            return r;
        }
        r = encode(ch, arg);
        if (r < 0) {
            *why = "could not be given the job";
            return r;
        }
        stat_py_jobs++;
        r = exchange(ch, &v, want, want == SEP_PY_FOUND ? PY_FIND_TIMEOUT_NS : PY_NAME_TIMEOUT_NS,
                     why);
        if (r == 0)
            return 0;
        drop_cur(ch, *why);
        if (r != -EPIPE)
            break;
    }
    return r;
}

/* The whole of a Python job, under the loop's lock: the exchange, then
 * decode() of the answer (as hostile: a failure drops the process); 0, or
 * -errno with *why. */
static int py_job(const struct worker *w, pid_t read_pid, enum sep_type want,
                  int (*encode)(struct chan *ch, const void *arg),
                  int (*decode)(const uint8_t *p, size_t len, void *arg), const void *arg,
                  void *out, const char **why)
{
    int r;

    pthread_mutex_lock(&py_lock);
    r = py_exchange(w, read_pid, want, encode, arg, why);
    if (r == 0 && decode(py_chan.in.p, py_chan.in.len, out) < 0) {
        *why = "sent a malformed result";
        drop_cur(&py_chan, *why);
        r = -EBADMSG;
    }
    trim(&py_chan);
    pthread_mutex_unlock(&py_lock);
    return r;
}

static int encode_find(struct chan *ch, const void *arg)
{
    const struct worker *w = arg;
    static struct sep_py_find f;
    char link[64];
    ssize_t n;

    memset(&f, 0, sizeof(f));
    f.worker_id = w->id;
    f.pid = w->pid;
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)w->pid);
    n = readlink(link, f.exe, sizeof(f.exe) - 1);
    f.exe[n > 0 ? n : 0] = '\0';
    if (f.exe[0] != '/')
        f.exe[0] = '\0';
    return sep_py_find_encode(&ch->out, &f);
}

static int decode_found(const uint8_t *p, size_t len, void *out)
{
    return sep_py_found_decode(p, len, out);
}

int sep_py_find(struct worker *w, struct py_runtime *ret, char *why, size_t why_size)
{
    static struct sep_py_found found;
    struct remote_mem m;
    struct remote_proc p;
    const char *how;
    struct py_runtime rt;
    int r;

    r = py_job(w, w->pid, SEP_PY_FOUND, encode_find, decode_found, w, &found, &how);
    if (r < 0) {
        snprintf(why, why_size, "the Python analysis process %s", how);
        return r;
    }
    if (found.r < 0) {
        dsl_strlcpy(why, found.why, why_size);
        return found.r;
    }
    /* The offsets the held read uses are the daemon's own: the built-in
     * table for the version it names, or (3.13+) the runtime's table,
     * read and checked here. */
    remote_mem_proc(&m, &p, w->pid);
    r = py_runtime_setup(&rt, found.version_hex, found.runtime_addr, &m, why, why_size);
    if (r < 0)
        return r;
    rt.pid = w->pid;
    rt.types = found.types;
    dsl_strlcpy(rt.path, found.path, sizeof(rt.path));
    *ret = rt;
    return 0;
}

struct py_name_arg {
    const struct worker *w;
    pid_t tid;
    const struct py_stack *stack;
};

static int encode_py_job(struct chan *ch, const void *arg)
{
    const struct py_name_arg *a = arg;
    static struct sep_py_job j;

    memset(&j, 0, offsetof(struct sep_py_job, stack));
    j.worker_id = a->w->id;
    j.pid = a->w->pid;
    j.tid = a->tid;
    j.version_hex = a->w->py->version_hex;
    j.runtime_addr = a->w->py->runtime_addr;
    j.types = a->w->py->types;
    j.nforget = take_forget(ch, j.forget);
    j.stack = *a->stack;
    return sep_py_job_encode(&ch->out, &j);
}

/* A naming's answer, checked against the job's stack. */
struct py_result_out {
    const struct py_stack *job;
    struct sep_py_result *res;
};

static int decode_py_result(const uint8_t *p, size_t len, void *out)
{
    struct py_result_out *o = out;

    return sep_py_result_decode(p, len, o->job, o->res);
}

void sep_py_name(struct worker *w, pid_t tid, struct py_stack *s)
{
    static struct sep_py_result res;
    struct py_name_arg a = {.w = w, .tid = tid, .stack = s};
    struct py_result_out o = {.job = s, .res = &res};
    const char *how;
    int r;

    if (!s->mem || s->finished || !w->py)
        return;
    r = py_job(w, tid, SEP_PY_RESULT, encode_py_job, decode_py_result, &a, &o, &how);
    if (r < 0) {
        /* Captured values without names are shown to nobody. */
        s->nframes = 0;
        s->err = r;
        snprintf(s->note, sizeof(s->note), "Python frames not named: the analysis process %s",
                 how);
        s->finished = true;
        return;
    }
    for (unsigned i = 0; i < res.ncache; i++)
        py_code_cache_put(w->py, &res.cache[i]);
    py_stack_free(s);
    *s = res.stack;
}
