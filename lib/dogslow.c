/* SPDX-License-Identifier: MIT */
/*
 * libdogslow: the worker side.
 *
 * State is per process (struct client) and per thread (a pointer to the
 * thread's scoreboard slot).  The hot path, dogslow_begin()/dogslow_end(),
 * reads the clock through the vDSO and writes the thread's slot: no system
 * call, no lock, no allocation.  Everything slow (connecting, claiming a slot
 * on a thread's first request, re-registering after a daemon restart or a
 * fork) happens at most once per event, and never blocks a request: when the
 * daemon has to be (re)contacted from the hot path, the library sends its
 * hello without waiting and picks up the answer on a later call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "dogslow.h"
#include "proto.h"
#include "scoreboard.h"
#include "util.h"

#define DSL_EXPORT __attribute__((visibility("default")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* The daemon refreshes the heartbeat at least every 100 ms; after this long
 * without one the library assumes it restarted and registers again. */
#define HEARTBEAT_STALE_NS (3 * NSEC_PER_SEC)
/* Pause between attempts to reach a daemon that is not there. */
#define RETRY_INTERVAL_NS (5 * NSEC_PER_SEC)
/* How long a hello sent from the hot path may wait for its answer. */
#define PENDING_TIMEOUT_NS (5 * NSEC_PER_SEC)
/* How long dogslow_register() waits for the daemon. */
#define REGISTER_TIMEOUT_MS 2000
/* A full listen backlog (connect() says EAGAIN) is the daemon's to drain,
 * within milliseconds even under a flood of connections: try again soon
 * rather than after RETRY_INTERVAL_NS. */
#define BACKLOG_RETRY_NS (20 * NSEC_PER_MSEC)

struct client {
    /* The scoreboard in use, or NULL; read lock-free by the hot path. */
    struct dsl_sb_header *sb;
    uint32_t nslots;
    /* Bumped whenever sb changes, so threads re-claim a slot. */
    uint32_t epoch;

    /* Everything below is touched only by the thread holding 'busy'. */
    int busy;
    bool wanted; /* dogslow_register() was called and not undone */
    bool queue_full; /* the last connect() found the daemon's queue full */
    int memfd;   /* kept so a restarted daemon can adopt the scoreboard */
    struct dsl_sb_header *map; /* our mapping of memfd; outlives registrations */
    size_t sb_size;
    int conn; /* the registered connection; the daemon sees it close */
    int last_err;
    int pending; /* socket with a hello sent, answer not yet read */
    uint64_t pending_since;
    uint64_t next_try_ns;
    int32_t ptracer; /* pid given to PR_SET_PTRACER */
    int32_t sb_daemon_pid; /* the scoreboard's daemon_pid when we set it */
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint32_t timer_ms;
    uint32_t max_threads;
    char program[DSL_STR_MAX + 1];
    char ignore_urls[DSL_IGNORE_MAX + 1];
    char last_error[256];
};

static struct client g = {.memfd = -1, .pending = -1, .conn = -1};

/* The calling thread's slot and the epoch it was claimed in.  initial-exec:
 * a plain %fs-relative access instead of a __tls_get_addr call per use; the
 * 16 bytes fit the static TLS that glibc keeps for dlopen'ed libraries (as
 * when Python's ctypes loads us). */
static __thread struct dsl_slot *t_slot __attribute__((tls_model("initial-exec")));
static __thread uint32_t t_epoch __attribute__((tls_model("initial-exec")));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;

static bool try_lock(void)
{
    int expected = 0;
    return __atomic_compare_exchange_n(&g.busy, &expected, 1, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/* For the rare calls that may wait (register/unregister): the lock is only
 * ever held for a bounded, short time by the hot path's upkeep. */
static bool lock_wait(void)
{
    for (int i = 0; i < 3000; i++) {
        if (try_lock())
            return true;
        usleep(1000);
    }
    return false;
}

static void unlock(void)
{
    __atomic_store_n(&g.busy, 0, __ATOMIC_RELEASE);
}

/* Remember why the last registration attempt failed: "what: strerror". */
static void __attribute__((format(printf, 2, 3))) set_error(int err, const char *fmt, ...)
{
    va_list ap;
    int n;

    g.last_err = err;
    va_start(ap, fmt);
    n = vsnprintf(g.last_error, sizeof(g.last_error), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(g.last_error))
        snprintf(g.last_error + n, sizeof(g.last_error) - (size_t)n, ": %s", strerror(err));
}

/* Thread exit: give the slot back so another thread can use it. */
static void release_slot(void *p)
{
    struct dsl_slot *s = p;
    uint32_t seq;

    if (!s || t_epoch != __atomic_load_n(&g.epoch, __ATOMIC_ACQUIRE) || s != t_slot)
        return;
    seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if (seq & 1u)
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE);
    t_slot = NULL;
}

static void drop_scoreboard_after_fork(void);

static void init_once(void)
{
    pthread_key_create(&slot_key, release_slot);
    pthread_atfork(NULL, NULL, drop_scoreboard_after_fork);
}

/*
 * In a forked child the inherited mapping is the parent's scoreboard: writing
 * it would report the parent's threads.  Drop it (the child has one thread,
 * so nothing else can be using it) and register afresh on first use.
 */
static void drop_scoreboard_after_fork(void)
{
    g.sb = NULL;
    g.epoch++;
    t_slot = NULL;
    if (g.map)
        munmap(g.map, g.sb_size);
    g.map = NULL;
    if (g.memfd >= 0)
        close(g.memfd);
    if (g.pending >= 0)
        close(g.pending);
    if (g.conn >= 0)
        close(g.conn);
    g.memfd = g.pending = g.conn = -1;
    g.ptracer = 0;
    g.next_try_ns = 0;
    g.busy = 0;
}

/*
 * Connect to path.  With wait_ms > 0 a full queue of connections is waited
 * for, in line with the other connecting processes, at most that long; else
 * connect() says EAGAIN at once.  The socket is non-blocking afterwards.
 */
static int connect_socket(const char *path, int *ret_fd, int wait_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    _cleanup_close_ int fd = -1;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    dsl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (wait_ms > 0 ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0)
        return -errno;
    if (wait_ms > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
        return errno == EINTR ? -EAGAIN : -errno;
    if (wait_ms > 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    *ret_fd = dsl_take_fd(&fd);
    return 0;
}

/* Connect to the configured socket, or to the first default that answers. */
static int connect_daemon(int *ret_fd, char *ret_path, size_t size, int wait_ms)
{
    char path[sizeof(g.socket_path)];
    int r = -ENOENT;

    if (g.socket_path[0]) {
        dsl_strlcpy(ret_path, g.socket_path, size);
        return connect_socket(g.socket_path, ret_fd, wait_ms);
    }
    for (int i = 0; i < 2; i++) {
        if (dsl_socket_path_candidate(i, path, sizeof(path)) < 0)
            continue;
        dsl_strlcpy(ret_path, path, size);
        r = connect_socket(path, ret_fd, wait_ms);
        if (r == 0)
            return 0;
    }
    return r;
}

static int send_hello(int fd)
{
    struct dsl_writer w;
    struct dsl_hello h = {
        .timer_ms = g.timer_ms,
        .nslots = g.max_threads,
    };
    int n;

    dsl_strlcpy(h.program, g.program, sizeof(h.program));
    dsl_strlcpy(h.ignore_urls, g.ignore_urls, sizeof(h.ignore_urls));
    if (g.memfd >= 0)
        h.flags |= DSL_HELLO_ADOPT;
    n = dsl_hello_encode(&w, &h);
    if (n < 0)
        return n;
    /* An adopted scoreboard goes back with it (DSL_HELLO_ADOPT). */
    if (dsl_send_fd(fd, w.buf, (size_t)n, g.memfd, MSG_NOSIGNAL) != n)
        return errno ? -errno : -EIO;
    return 0;
}

/*
 * Read the daemon's answer.  Returns 0 and the memfd on WELCOME, -EAGAIN if
 * nothing has arrived yet, another negative errno on refusal or error.
 */
static int recv_answer(int fd, struct dsl_welcome *ret_w, int *ret_memfd)
{
    uint8_t buf[DSL_HDR_SIZE + DSL_PAYLOAD_MAX];
    struct dsl_hdr h;
    int memfd, nfds;
    bool ctrunc;
    ssize_t n;

    n = dsl_recv_fd(fd, buf, sizeof(buf), &memfd, &nfds, &ctrunc);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
    /* The daemon sends one small message in one piece; anything else is a
     * daemon we do not understand. */
    if (n < (ssize_t)DSL_HDR_SIZE)
        goto proto;
    memcpy(&h, buf, sizeof(h));
    if (dsl_hdr_check(&h) < 0 || (size_t)n != DSL_HDR_SIZE + h.len)
        goto proto;
    if (h.type == DSL_MSG_ERROR) {
        struct dsl_error e;
        if (memfd >= 0)
            close(memfd);
        if (dsl_error_decode(buf + DSL_HDR_SIZE, h.len, &e) < 0)
            return -EPROTO;
        snprintf(g.last_error, sizeof(g.last_error), "dogslowd refused registration: %s",
                 e.message);
        g.last_err = e.err;
        return -e.err;
    }
    if (h.type != DSL_MSG_WELCOME || memfd < 0 ||
        dsl_welcome_decode(buf + DSL_HDR_SIZE, h.len, ret_w) < 0)
        goto proto;
    *ret_memfd = memfd;
    return 0;
proto:
    if (memfd >= 0)
        close(memfd);
    snprintf(g.last_error, sizeof(g.last_error),
             "dogslowd sent a message this library does not understand");
    g.last_err = EPROTO;
    return -EPROTO;
}

/* Map the scoreboard the daemon sent and make it the one in use. */
static int install(int sock, const struct dsl_welcome *w, int memfd)
{
    struct stat st, old;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    size_t size = dsl_sb_size(w->nslots);
    void *p;

    if (fstat(memfd, &st) < 0 || (size_t)st.st_size != size) {
        close(memfd);
        return -EPROTO;
    }
    if (g.map && g.memfd >= 0 && fstat(g.memfd, &old) == 0 && old.st_ino == st.st_ino &&
        old.st_dev == st.st_dev) {
        /* The daemon adopted the scoreboard we already have: threads keep
         * their slots, and requests in flight stay visible. */
        close(memfd);
    } else {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (p == MAP_FAILED) {
            int r = -errno;
            close(memfd);
            return r;
        }
        if (dsl_sb_check_header(p, size) < 0) {
            munmap(p, size);
            close(memfd);
            return -EPROTO;
        }
        /* A previous mapping, if any, stays mapped: another thread may still
         * be writing to it.  This happens only when a daemon refuses to
         * adopt our scoreboard, so at most rarely. */
        if (g.memfd >= 0)
            close(g.memfd);
        g.memfd = memfd;
        g.map = p;
        g.sb_size = size;
        g.nslots = w->nslots;
        __atomic_add_fetch(&g.epoch, 1, __ATOMIC_RELEASE);
    }
    g.sb_daemon_pid = __atomic_load_n(&g.map->daemon_pid, __ATOMIC_RELAXED);
    __atomic_store_n(&g.sb, g.map, __ATOMIC_RELEASE);
    /* Under Yama ptrace_scope 1 only a declared tracer may attach.  Name the
     * daemon as the kernel sees it from our pid namespace. */
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
        (void)prctl(PR_SET_PTRACER, (unsigned long)cred.pid, 0, 0, 0);
        g.ptracer = cred.pid;
    }
    g.last_error[0] = '\0';
    g.last_err = 0;
    return 0;
}

/*
 * One step towards being registered; called with 'busy' held.  Non-blocking
 * from the hot path (wait_ms 0); dogslow_register() lets connect() wait.
 */
static void reconnect_step(uint64_t now, int wait_ms)
{
    struct dsl_welcome w;
    char path[sizeof(g.socket_path)];
    int memfd = -1, r;

    if (g.pending < 0) {
        if (now < g.next_try_ns)
            return;
        g.next_try_ns = now + RETRY_INTERVAL_NS;
        r = connect_daemon(&g.pending, path, sizeof(path), wait_ms);
        g.queue_full = r == -EAGAIN;
        if (r == -EAGAIN) {
            g.next_try_ns = now + BACKLOG_RETRY_NS;
            set_error(EAGAIN, "dogslowd's socket %s has a full queue of connections", path);
            return;
        }
        if (r < 0) {
            set_error(-r, "cannot connect to dogslowd at %s", path);
            return;
        }
        r = send_hello(g.pending);
        if (r < 0) {
            set_error(-r, "cannot send to dogslowd at %s", path);
            close(g.pending);
            g.pending = -1;
            return;
        }
        g.pending_since = now;
        /* The daemon answers in microseconds; a short wait here lets the
         * request that noticed the need be watched already. */
        struct pollfd pfd = {.fd = g.pending, .events = POLLIN};
        (void)poll(&pfd, 1, 50);
    }
    r = recv_answer(g.pending, &w, &memfd);
    if (r == -EAGAIN) {
        if (now - g.pending_since < PENDING_TIMEOUT_NS)
            return;
        snprintf(g.last_error, sizeof(g.last_error), "dogslowd did not answer");
        g.last_err = ETIMEDOUT;
    } else if (r < 0 && r != -EPROTO && g.last_err != -r) {
        set_error(-r, "cannot read from dogslowd at %s", g.socket_path[0] ? g.socket_path : "the default socket");
    } else if (r == 0) {
        r = install(g.pending, &w, memfd);
    }
    /* The connection stays open while registered: the daemon sees it close
     * when we unregister or exit. */
    if (r < 0) {
        close(g.pending);
    } else {
        if (g.conn >= 0)
            close(g.conn);
        g.conn = g.pending;
    }
    g.pending = -1;
}

DSL_EXPORT int dogslow_register(const struct dogslow_options *opts)
{
    const char *env;
    uint64_t deadline;
    int r = 0;

    if (pthread_once(&once, init_once) != 0)
        return -EAGAIN;
    if (!lock_wait())
        return -EBUSY;
    if (g.sb && g.wanted) {
        unlock();
        return 0;
    }

    g.socket_path[0] = '\0';
    g.timer_ms = 0;
    g.max_threads = 0;
    dsl_strlcpy(g.program, program_invocation_short_name, sizeof(g.program));
    if (opts && opts->socket_path) {
        if (strlen(opts->socket_path) >= sizeof(g.socket_path)) {
            unlock();
            return -ENAMETOOLONG;
        }
        dsl_strlcpy(g.socket_path, opts->socket_path, sizeof(g.socket_path));
    } else if ((env = getenv("DOGSLOW_SOCKET")) && *env) {
        if (strlen(env) >= sizeof(g.socket_path)) {
            unlock();
            return -ENAMETOOLONG;
        }
        dsl_strlcpy(g.socket_path, env, sizeof(g.socket_path));
    }
    if (opts && opts->timer_ms) {
        g.timer_ms = opts->timer_ms;
    } else if ((env = getenv("DOGSLOW_TIMER")) && *env) {
        if (dsl_parse_seconds_ms(env, &g.timer_ms) < 0 || g.timer_ms == 0) {
            snprintf(g.last_error, sizeof(g.last_error),
                     "DOGSLOW_TIMER=%.64s is not a number of seconds", env);
            unlock();
            return -EINVAL;
        }
    }
    if (opts && opts->max_threads)
        g.max_threads = opts->max_threads > DSL_SLOTS_MAX ? DSL_SLOTS_MAX : opts->max_threads;
    if (opts && opts->program)
        dsl_strlcpy(g.program, opts->program, sizeof(g.program));
    g.ignore_urls[0] = '\0';
    env = (opts && opts->ignore_urls) ? opts->ignore_urls : getenv("DOGSLOW_IGNORE_URLS");
    if (env && *env) {
        /* The daemon checks the patterns themselves; what can be told here
         * is told here, so a typo does not pass silently. */
        bool printable = true;
        for (const char *q = env; *q; q++)
            printable &= (unsigned char)*q >= 0x20 && (unsigned char)*q <= 0x7e;
        if (strlen(env) > DSL_IGNORE_MAX || !printable) {
            snprintf(g.last_error, sizeof(g.last_error),
                     "ignore_urls: more than %u bytes or not printable ASCII", DSL_IGNORE_MAX);
            unlock();
            return -EINVAL;
        }
        dsl_strlcpy(g.ignore_urls, env, sizeof(g.ignore_urls));
    }
    g.wanted = true;

    /* Registering is done once, at start-up: here we wait for the answer. */
    if (g.pending >= 0) {
        close(g.pending);
        g.pending = -1;
    }
    g.next_try_ns = 0;
    deadline = dsl_now_ns(CLOCK_MONOTONIC) + REGISTER_TIMEOUT_MS * NSEC_PER_MSEC;
    reconnect_step(dsl_now_ns(CLOCK_MONOTONIC), REGISTER_TIMEOUT_MS);
    /* Wait for the answer.  connect() waited in the queue of connections;
     * interrupted there, it is tried again. */
    while (g.pending >= 0 || g.queue_full) {
        struct pollfd pfd = {.fd = g.pending, .events = POLLIN};
        uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
        int left_ms = now < deadline ? (int)((deadline - now) / NSEC_PER_MSEC) + 1 : 0;

        if (!left_ms && g.pending < 0)
            break; /* still full: last_error says so */
        if (!left_ms) {
            snprintf(g.last_error, sizeof(g.last_error), "dogslowd did not answer in %d ms",
                     REGISTER_TIMEOUT_MS);
            close(g.pending);
            g.pending = -1;
            r = -ETIMEDOUT;
            break;
        }
        if (g.pending >= 0)
            (void)poll(&pfd, 1, left_ms);
        else
            g.next_try_ns = 0;
        reconnect_step(dsl_now_ns(CLOCK_MONOTONIC), left_ms);
    }
    if (r == 0 && !g.sb)
        r = g.last_err > 0 ? -g.last_err : -ENOTCONN;
    unlock();
    return r;
}

DSL_EXPORT int dogslow_unregister(void)
{
    if (!lock_wait())
        return -EBUSY;
    g.wanted = false;
    /* The mapping and the memfd stay: other threads may be inside
     * begin/end right now, and a later dogslow_register() offers the same
     * scoreboard again.  Closing the connection tells the daemon. */
    __atomic_store_n(&g.sb, NULL, __ATOMIC_RELEASE);
    if (g.pending >= 0)
        close(g.pending);
    if (g.conn >= 0)
        close(g.conn);
    g.pending = g.conn = -1;
    unlock();
    return 0;
}

DSL_EXPORT const char *dogslow_last_error(void)
{
    return g.last_error;
}

/* Slow path of begin: registration upkeep, at most one thread at a time. */
static __attribute__((noinline)) void upkeep(uint64_t now)
{
    if (!g.wanted || !try_lock())
        return;
    if (g.wanted)
        reconnect_step(now, 0);
    unlock();
}

/* A restarted daemon took our scoreboard over by itself (see the daemon's
 * registry.c): name it as our tracer for Yama's sake.  Once per restart. */
static __attribute__((noinline)) void follow_daemon(struct dsl_sb_header *sb)
{
    int32_t pid;

    if (!try_lock())
        return;
    pid = __atomic_load_n(&sb->daemon_pid, __ATOMIC_RELAXED);
    if (pid > 0 && pid != g.sb_daemon_pid) {
        (void)prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0);
        g.ptracer = pid;
    }
    g.sb_daemon_pid = pid;
    unlock();
}

/* First request on this thread (or first since the scoreboard changed). */
static __attribute__((noinline)) struct dsl_slot *claim_slot(struct dsl_sb_header *sb,
                                                             uint32_t epoch)
{
    uint32_t n = g.nslots;
    int32_t tid = gettid();

    for (uint32_t i = 0; i < n; i++) {
        struct dsl_slot *s = dsl_sb_slot(sb, i);
        int32_t zero = 0;

        if (__atomic_load_n(&s->tid, __ATOMIC_RELAXED) != 0)
            continue;
        if (!__atomic_compare_exchange_n(&s->tid, &zero, tid, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED))
            continue;
        uint32_t hwm = __atomic_load_n(&sb->hwm, __ATOMIC_RELAXED);
        while (hwm < i + 1 &&
               !__atomic_compare_exchange_n(&sb->hwm, &hwm, i + 1, true, __ATOMIC_RELEASE,
                                            __ATOMIC_RELAXED))
            ;
        t_slot = s;
        t_epoch = epoch;
        pthread_setspecific(slot_key, s);
        return s;
    }
    __atomic_add_fetch(&sb->overflow, 1, __ATOMIC_RELAXED);
    return NULL;
}


/* Copy n bytes of a short string: word by word, then the tail.  For the
 * few dozen bytes of a typical URL this beats the rep-movs sequence the
 * compiler emits for a variable-length memcpy. */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i];
}

DSL_EXPORT int dogslow_begin(const char *method, const char *url)
{
    struct dsl_sb_header *sb = __atomic_load_n(&g.sb, __ATOMIC_ACQUIRE);
    uint32_t epoch = __atomic_load_n(&g.epoch, __ATOMIC_ACQUIRE);
    struct dsl_slot *s;
    uint64_t now;
    uint32_t seq;
    size_t ml, ul;

    if (unlikely(!method || !url))
        return -EINVAL;
    /* The coarse clock (the kernel tick, 1-4 ms) costs a fifth of the fine
     * one through the vDSO; a request's start needs no finer resolution
     * than that against timers of a tenth of a second and more.  It is the
     * same clock as CLOCK_MONOTONIC, only lagging by less than a tick. */
    now = dsl_now_ns(CLOCK_MONOTONIC_COARSE);
    if (unlikely(!sb)) {
        /* A hello already sent (after a fork, the first request's) is
         * answered on a later call: look for the answer at once, not only
         * at the next retry, or every request of the next 5 s would go
         * unwatched. */
        if (!__atomic_load_n(&g.wanted, __ATOMIC_RELAXED) ||
            (now < g.next_try_ns && __atomic_load_n(&g.pending, __ATOMIC_RELAXED) < 0))
            return -ENOTCONN;
        upkeep(now);
        sb = __atomic_load_n(&g.sb, __ATOMIC_ACQUIRE);
        epoch = __atomic_load_n(&g.epoch, __ATOMIC_ACQUIRE);
        if (!sb)
            return -ENOTCONN;
    } else if (unlikely((int64_t)(now - __atomic_load_n(&sb->heartbeat_ns, __ATOMIC_RELAXED)) >
                            (int64_t)HEARTBEAT_STALE_NS &&
                        now >= g.next_try_ns)) {
        /* (Signed: our coarse clock may read a little behind the daemon's.) */
        /* The daemon went away: offer our scoreboard to whoever listens
         * now.  This request is still recorded in the same scoreboard, so a
         * restarted daemon that adopts it sees the request too. */
        upkeep(now);
    } else if (unlikely(__atomic_load_n(&sb->daemon_pid, __ATOMIC_RELAXED) != g.sb_daemon_pid)) {
        follow_daemon(sb);
    }

    s = t_slot;
    if (unlikely(!s || t_epoch != epoch)) {
        s = claim_slot(sb, epoch);
        if (!s)
            return -ENOSPC;
    }
    seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if (unlikely(seq & 1u)) {
        /* begin without end: close the previous request first, so the daemon
         * never sees fields change under an odd sequence number. */
        seq++;
        __atomic_store_n(&s->seq, seq, __ATOMIC_RELEASE);
    }
    ml = strnlen(method, DSL_METHOD_MAX);
    ul = strnlen(url, DSL_URL_MAX);
    s->start_ns = now;
    s->method_len = (uint16_t)ml;
    s->url_len = (uint16_t)ul;
    copy_short(s->method, method, ml);
    copy_short(s->url, url, ul);
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
    return 0;
}

DSL_EXPORT int dogslow_end(void)
{
    struct dsl_slot *s = t_slot;
    uint32_t seq;

    if (unlikely(!s || t_epoch != __atomic_load_n(&g.epoch, __ATOMIC_ACQUIRE)))
        return -ENOTCONN;
    seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if (seq & 1u)
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
    return 0;
}
