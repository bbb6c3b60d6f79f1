/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: hold exactly one thread for as short a time as possible.
 *
 *   1. check the tid belongs to the registered process and that the
 *      process is still the one that registered (core.h, ident.c: credentials,
 *      dumpable, no exec since), PTRACE_SEIZE it (never SIGSTOP);
 *   2. PTRACE_INTERRUPT and wait for the stop with a short spin (2 ms at
 *      most); a thread that does not stop by then is left to stop on its
 *      own time (d->stopping): the loop never waits for it, and it is let
 *      go -- or its snapshot finished -- when its stop is reported (SIGCHLD,
 *      snapshot_reap);
 *   3. held, check again that it is the registered process's;
 *   4. read the registers and copy the live stack, from the stack pointer
 *      up, with one process_vm_readv (it stops at the end of the mapping);
 *   5. PTRACE_DETACH, re-injecting a signal if the stop we got was a
 *      signal-delivery stop, so the worker loses nothing.
 *
 * Unwinding the copy (unwind.c, libdwfl), naming frames and reading locals
 * (symbolize.c, locals.c) and formatting (report.c) happen after the thread
 * runs again.  Only if the stack cannot be copied does the old way run while
 * the thread is held: libunwind-ptrace reading the thread directly.  Every error path detaches.  If the daemon dies in the
 * middle, the kernel detaches for us and the thread simply goes on (we never
 * set PTRACE_O_EXITKILL).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libunwind-ptrace.h>

#include "capture.h"
#include "core.h"
#include "util.h"

/* How long the loop spins for an interrupted thread's stop.  It normally
 * comes within microseconds; a thread in an uninterruptible sleep (vfork,
 * disk I/O) stops only when it leaves it, and is not waited for (see
 * d->stopping). */
#define STOP_SPIN_NS (2 * NSEC_PER_MSEC)

static bool pid_alive(const struct worker *w)
{
    /* A pidfd becomes readable when its process exits.  (Not
     * pidfd_send_signal(0): that also checks kill permission, which a
     * daemon that dropped root lacks for other users' processes, and
     * valgrind does not know it.) */
    struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
    return w->pidfd >= 0 && poll(&p, 1, 0) == 0;
}

/*
 * Is tid a thread of w's process right now, and is the process still the
 * one that registered?  Checked before the attach, while the thread is
 * held and after the reads; together with the pidfd this rules out a
 * reused pid or tid, and a program executed since (core.h, ident.c).  On failure
 * the note says why; s->changed is set when the registration must go.
 */
/* The process is another program, or has other credentials, now. */
static void note_changed(struct snapshot *s, const char *why)
{
    s->changed = true;
    s->err = EPERM;
    snprintf(s->note, sizeof(s->note), "not read: %s", why);
}

static int check_same(const struct worker *w, pid_t tid, struct snapshot *s,
                      struct ident *ret_cur)
{
    char why[128] = "";
    int r = ident_verify(&w->ident, w->pid, tid, ret_cur, why, sizeof(why));

    if (r == 0 && !pid_alive(w))
        r = -ESRCH;
    if (r == 0)
        return 0;
    if (r == -EPERM) {
        note_changed(s, why);
        return r;
    }
    s->err = ESRCH;
    snprintf(s->note, sizeof(s->note), "thread %d is not (or no longer) in process %d", (int)tid,
             (int)w->pid);
    return -ESRCH;
}

static pid_t tracer_of(pid_t tid)
{
    long v;
    return dsl_proc_status_field(tid, 0, "TracerPid", &v) == 0 ? (pid_t)v : 0;
}

static struct stopping *find_stopping(struct daemon *d, pid_t tid)
{
    for (unsigned i = 0; i < d->nstopping; i++)
        if (d->stopping[i].tid == tid)
            return &d->stopping[i];
    return NULL;
}

unsigned snapshot_stopping(const struct daemon *d, uid_t uid)
{
    unsigned n = 0;

    for (unsigned i = 0; i < d->nstopping; i++)
        n += d->stopping[i].uid == uid;
    return n;
}

/* A thread attached and interrupted that has not stopped: it goes on the
 * list, which grows as needed.  (Should even that fail, snapshot_reap()
 * still lets go of any stopped thread it finds, listed or not.) */
static void add_stopping(struct daemon *d, pid_t pid, pid_t tid, uid_t uid)
{
    if (d->nstopping == d->stopping_cap) {
        unsigned cap = d->stopping_cap ? d->stopping_cap * 2 : 16;
        struct stopping *p = realloc(d->stopping, cap * sizeof(*p));

        if (!p) {
            log_warnx("out of memory: thread %d is let go when it stops, unlisted", (int)tid);
            return;
        }
        d->stopping = p;
        d->stopping_cap = cap;
    }
    d->stopping[d->nstopping++] = (struct stopping){
        .pid = pid,
        .tid = tid,
        .uid = uid,
        .since_ns = dsl_now_ns(CLOCK_MONOTONIC),
    };
}

void snapshot_claim(struct daemon *d, pid_t tid, void *owner)
{
    struct stopping *e = find_stopping(d, tid);

    if (e)
        e->owner = owner;
}

void snapshot_stopping_free(struct daemon *d)
{
    free(d->stopping);
    d->stopping = NULL;
    d->nstopping = d->stopping_cap = 0;
}

/* The signal a stop carries, to be delivered when we let go: a
 * signal-delivery stop (event 0) has one; an interrupt or group stop not. */
static int stop_signal(int status)
{
    return WIFSTOPPED(status) && (status >> 16) == 0 ? WSTOPSIG(status) : 0;
}

void snapshot_let_go(struct daemon *d, pid_t tid, int status)
{
    (void)d;
    if (WIFSTOPPED(status) && ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)stop_signal(status)) < 0 &&
        errno != ESRCH)
        log_warn("PTRACE_DETACH %d", (int)tid);
}

/*
 * Collect every stop and exit of the threads we trace (the daemon has no
 * children of its own: every status is a tracee's).  A thread on the list
 * with an owner goes to it; any other stopped thread is let go at once.
 * Then owners that waited too long hear so, and their threads stay listed
 * until they stop.
 */
void snapshot_reap(struct daemon *d, uint64_t now, snapshot_stopped_fn fn)
{
    for (;;) {
        int st;
        pid_t tid = waitpid(-1, &st, __WALL | WNOHANG);
        struct stopping *e;
        void *owner = NULL;

        if (tid <= 0) {
            if (tid < 0 && errno == EINTR)
                continue;
            break;
        }
        e = find_stopping(d, tid);
        if (e) {
            owner = e->owner;
            *e = d->stopping[--d->nstopping];
        }
        if (owner) {
            fn(d, owner, tid, st, WIFSTOPPED(st) ? 0 : -ESRCH);
            continue;
        }
        if (WIFSTOPPED(st)) {
            snapshot_let_go(d, tid, st);
            if (e)
                log_info("thread %d stopped at last and was let go", (int)tid);
        }
    }
    for (unsigned i = 0; i < d->nstopping; i++) {
        struct stopping *e = &d->stopping[i];

        if (e->owner && now - e->since_ns > SNAPSHOT_STOP_TIMEOUT_NS) {
            void *owner = e->owner;

            e->owner = NULL;
            fn(d, owner, e->tid, 0, -ETIMEDOUT);
        }
    }
}

/*
 * Let go of tid.  If it died while we held it, the detach fails and the
 * kernel keeps it as our zombie: reap it, or its real parent would never see
 * it exit.  If it cannot be reaped yet, it is listed and reaped later.
 */
static void release(struct daemon *d, struct worker *w, pid_t tid, int sig)
{
    int st;

    if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) == 0)
        return;
    if (errno != ESRCH) {
        log_warn("PTRACE_DETACH %d", (int)tid);
        return;
    }
    pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
    if (r == tid && WIFSTOPPED(st)) {
        ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig);
        return;
    }
    if (r == 0 && !find_stopping(d, tid))
        add_stopping(d, w->pid, tid, w->uid);
}

/*
 * Wait, briefly, for tid's next stop.  *ret_seen_running: the time of the
 * last look that found it not stopped yet (or t0): it stopped after that,
 * so the time it is held counts from there.  A sleeping thread must first
 * be woken and scheduled before it can stop; until then it is not held --
 * it was asleep anyway, and the sleep goes on with its time left once it
 * is let go.
 */
static int wait_stop(pid_t tid, uint64_t t0, int *ret_status, uint64_t *ret_seen_running)
{
    uint64_t deadline = t0 + STOP_SPIN_NS, look = t0;
    unsigned spins = 0;

    for (;;) {
        int st;
        pid_t r = waitpid(tid, &st, __WALL | WNOHANG);

        if (r == tid) {
            *ret_status = st;
            *ret_seen_running = look;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (dsl_now_ns(CLOCK_MONOTONIC) > deadline)
            return -ETIMEDOUT;
        /* A running thread stops within microseconds: look twice.  A
         * sleeping one must first be scheduled to enter its stop -- often
         * on this very CPU (it last ran here, or the other one is busy),
         * which spinning would keep from it for as long as we spin: sleep
         * instead, briefly (the daemon's timer slack is 1 us, see
         * main()). */
        if (++spins > 2) {
            struct timespec ts = {0, 5000};
            nanosleep(&ts, NULL);
        }
        look = dsl_now_ns(CLOCK_MONOTONIC);
    }
}

void snapshot_release_worker(struct worker *w)
{
    free(w->py);
    w->py = NULL;
    w->py_state = 0;
    if (w->unwind_as) {
        unw_destroy_addr_space(w->unwind_as);
        w->unwind_as = NULL;
    }
}

static void unwind_live(struct daemon *d, struct worker *w, pid_t tid, struct snapshot *s)
{
    unw_cursor_t cur;
    void *upt;
    int r;

    if (!w->unwind_as) {
        w->unwind_as = unw_create_addr_space(&_UPT_accessors, 0);
        if (!w->unwind_as) {
            s->err = ENOMEM;
            snprintf(s->note, sizeof(s->note), "cannot create an unwinder");
            return;
        }
        /* Without a cache libunwind re-reads unwind tables word by word on
         * every snapshot. */
        unw_set_caching_policy(w->unwind_as, UNW_CACHE_GLOBAL);
    }
    upt = _UPT_create(tid);
    if (!upt) {
        s->err = ENOMEM;
        snprintf(s->note, sizeof(s->note), "cannot create an unwinder");
        return;
    }
    r = unw_init_remote(&cur, w->unwind_as, upt);
    if (r < 0) {
        s->err = EIO;
        snprintf(s->note, sizeof(s->note), "cannot start unwinding (libunwind error %d)", r);
        _UPT_destroy(upt);
        return;
    }
    unsigned max = d->cfg.max_frames < DSL_FRAMES_MAX ? d->cfg.max_frames : DSL_FRAMES_MAX;
    bool prev_signal = false;
    do {
        unw_word_t ip = 0, sp = 0;

        if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        unw_get_reg(&cur, UNW_REG_SP, &sp);
        struct frame *f = &s->frames[s->nframes];
        f->ip = ip;
        /* Exact for the innermost frame and the one a signal interrupted;
         * otherwise a return address. */
        f->activation = s->nframes == 0 || prev_signal;
        f->regs_known = 1u << DSL_REG_RSP;
        f->regs[DSL_REG_RSP] = sp;
        prev_signal = unw_is_signal_frame(&cur) > 0;
        s->nframes++;
        if (s->nframes >= max) {
            snprintf(s->note, sizeof(s->note), "stack truncated at %u frames", max);
            break;
        }
        r = unw_step(&cur);
    } while (r > 0);
    if (r < 0 && s->nframes < max) {
        s->err = EIO;
        snprintf(s->note, sizeof(s->note), "stack may be incomplete (unwinder stopped: error %d)",
                 r);
    }
    _UPT_destroy(upt);
}

/* user_regs_struct in DWARF register order. */
static void dwarf_regs(const struct user_regs_struct *u, uint64_t *r)
{
    r[0] = u->rax;
    r[1] = u->rdx;
    r[2] = u->rcx;
    r[3] = u->rbx;
    r[4] = u->rsi;
    r[5] = u->rdi;
    r[6] = u->rbp;
    r[7] = u->rsp;
    r[8] = u->r8;
    r[9] = u->r9;
    r[10] = u->r10;
    r[11] = u->r11;
    r[12] = u->r12;
    r[13] = u->r13;
    r[14] = u->r14;
    r[15] = u->r15;
    r[16] = u->rip;
}

/* The x86_64 ABI lets a function use 128 bytes below its stack pointer. */
#define RED_ZONE 128

/*
 * Copy [sp - red zone, sp + max) into s->stack.  process_vm_readv stops at
 * the first unmapped byte, which is how we find the end of the stack without
 * reading /proc/PID/maps while the thread waits.
 *
 * top, when not 0, ends the copy sooner: for a thread other than the main
 * one it is the thread pointer (fs_base).  glibc puts a thread's TCB and
 * static TLS at the top of its stack mapping, so every frame of the thread
 * lies below it -- and what lies above is whatever was mapped next (often
 * a malloc arena, readable), which the copy would otherwise drag along up
 * to max_stack_bytes while the thread waits (a gunicorn gthread worker's
 * thread: 1 MiB copied for 11 KiB of stack).  A thread on a stack of its own making
 * (fs_base below sp, or farther than max) is copied the old way.
 */
static int copy_stack(struct daemon *d, struct snapshot *s, uint64_t top)
{
    size_t want = d->cfg.max_stack_bytes + RED_ZONE;
    uint64_t from = s->regs[DSL_REG_RSP] - RED_ZONE;
    ssize_t n;

    if (top > s->regs[DSL_REG_RSP] && top - from < want)
        want = (size_t)(top - from);

    if (s->stack_cap < want) {
        uint8_t *p = realloc(s->stack, want);
        if (!p)
            return -ENOMEM;
        s->stack = p;
        s->stack_cap = want;
    }
    struct iovec local = {.iov_base = s->stack, .iov_len = want};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)from, .iov_len = want};
    /* Through the thread's id, not the process's: a thread other than the
     * main one dies before another thread's exec replaces the address
     * space, so this can never read a program executed since. */
    n = process_vm_readv(s->tid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EFAULT) {
        /* The red zone may start on an unmapped page: try from sp. */
        from += RED_ZONE;
        remote.iov_base = (void *)(uintptr_t)from;
        n = process_vm_readv(s->tid, &local, 1, &remote, 1, 0);
    }
    if (n <= 0)
        return n < 0 ? -errno : -EFAULT;
    s->stack_addr = from;
    s->stack_len = (size_t)n;
    return 0;
}

/*
 * System calls that a ptrace stop interrupts for good: the kernel returns
 * EINTR from them instead of restarting them (signal(7), "Interruption of
 * system calls and library functions by stop signals").  A thread blocked in
 * one is not stopped at all (see peek()).
 */
static bool nonrestartable(long nr)
{
    switch (nr) {
    case 232: /* epoll_wait */
    case 281: /* epoll_pwait */
    case 441: /* epoll_pwait2 */
    case 65:  /* semop */
    case 220: /* semtimedop */
    case 128: /* rt_sigtimedwait */
    case 208: /* io_getevents */
    case 333: /* io_pgetevents */
        return true;
    default:
        return false;
    }
}

/* /proc/PID/task/TID/syscall: "NR ARG1..ARG6 SP PC" for a thread blocked in
 * a system call, "running" for a running one. */
static int blocked_in(pid_t pid, pid_t tid, long *ret_nr, uint64_t *ret_sp, uint64_t *ret_pc)
{
    char path[80], buf[256];
    unsigned long long v[9];
    long nr;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    n = dsl_read_text(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    if (sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx %llx %llx", &nr, &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]) != 9)
        return -EBUSY; /* running, or not in a system call */
    *ret_nr = nr;
    *ret_sp = v[6];
    *ret_pc = v[7];
    return 0;
}

static const char *syscall_name(long nr)
{
    switch (nr) {
    case 56: return "clone";
    case 58: return "vfork";
    case 435: return "clone3";
    case 232: return "epoll_wait";
    case 281: return "epoll_pwait";
    case 441: return "epoll_pwait2";
    case 65: return "semop";
    case 220: return "semtimedop";
    case 128: return "rt_sigtimedwait";
    case 208: return "io_getevents";
    case 333: return "io_pgetevents";
    default: return "a system call";
    }
}

static int copy_stack(struct daemon *d, struct snapshot *s, uint64_t top);

/*
 * Without CAP_DAC_READ_SEARCH another user's syscall file (0400) cannot be
 * read, but its wchan can (0444, behind the ptrace access check that
 * CAP_SYS_PTRACE passes): enough to tell a wait that a stop would cut short
 * with EINTR.  Returns the call's name, or NULL.
 */
static const char *eintr_wait_of(pid_t pid, pid_t tid)
{
    static const struct {
        const char *wchan, *call;
    } waits[] = {
        {"do_epoll_wait", "epoll_wait"}, {"ep_poll", "epoll_wait"},
        {"do_semtimedop", "semop"},      {"do_sigtimedwait", "rt_sigtimedwait"},
        {"read_events", "io_getevents"}, {"do_io_getevents", "io_getevents"},
    };
    char path[80], buf[64];

    snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
    if (dsl_read_text(path, buf, sizeof(buf)) < 0)
        return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(waits); i++)
        if (!strcmp(buf, waits[i].wchan))
            return waits[i].call;
    return NULL;
}

/*
 * Read a thread that sits in a non-restartable system call without stopping
 * it: its user registers cannot change while it is blocked, and the kernel
 * shows its stack and instruction pointers.  The stack is copied, and the
 * system call read again: if the thread is still blocked at the same place,
 * the copy is consistent.  Only sp and pc are known, so unwinding relies on
 * CFI that does not need other registers (the usual case for optimised code).
 * A thread in an uninterruptible sleep (state D: vfork() waiting for its
 * child, disk or NFS I/O) is read the same way: it would not stop before it
 * wakes, and the loop must not wait for that.
 * Returns 0 when peeked, 1 when the thread is not in such a call, 2 when it
 * is but its registers cannot be read without a stop (no
 * CAP_DAC_READ_SEARCH for another user's thread): it is left alone.
 */
static int peek(struct daemon *d, struct worker *w, pid_t tid, char state, struct snapshot *s)
{
    long nr, nr2;
    uint64_t sp, pc, sp2, pc2;
    int r;

    /* Test hook: every thread is stopped the usual way, so that tests
     * reach the asynchronous stops with threads that will not stop. */
    static int no_peek = -1;

    if (no_peek < 0)
        no_peek = getenv("DOGSLOWD_TEST_NO_PEEK") != NULL;
    if (no_peek)
        return 1;
    r = blocked_in(w->pid, tid, &nr, &sp, &pc);

    if (r == -EACCES || r == -EPERM) {
        /* Not readable: left alone if a stop would break its wait. */
        const char *call = eintr_wait_of(w->pid, tid);

        if (!call)
            return 1;
        s->err = EPERM;
        snprintf(s->note, sizeof(s->note),
                 "thread blocked in %s: not stopped (a stop would make the call fail with "
                 "EINTR); its native stack needs CAP_DAC_READ_SEARCH to be read without one",
                 call);
        return 2;
    }
    if (r < 0 || (!nonrestartable(nr) && state != 'D'))
        return 1;
    memset(s->regs, 0, sizeof(s->regs));
    s->regs[DSL_REG_RSP] = sp;
    s->regs[DSL_REG_RIP] = pc;
    s->regs_known = (1u << DSL_REG_RSP) | (1u << DSL_REG_RIP);
    s->have_regs = true;
    if (copy_stack(d, s, 0) < 0)
        return 1;
    if (blocked_in(w->pid, tid, &nr2, &sp2, &pc2) < 0 || nr2 != nr || sp2 != sp || pc2 != pc)
        return 1; /* it woke up meanwhile: stop it the usual way */
    s->peeked_syscall = nr;
    if (nonrestartable(nr))
        snprintf(s->note, sizeof(s->note),
                 "thread blocked in %s: read without stopping it (a stop would make the call "
                 "fail with EINTR)",
                 syscall_name(nr));
    else
        snprintf(s->note, sizeof(s->note),
                 "thread in an uninterruptible sleep in %s (system call %ld): read without "
                 "stopping it (it would not stop before it wakes)",
                 syscall_name(nr), nr);
    return 0;
}

/* Test hook: hold the thread this long after stopping it (DOGSLOWD_TEST_HOLD_MS),
 * so tests can kill the daemon or the worker mid-snapshot. */
static unsigned test_hold_ms(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DOGSLOWD_TEST_HOLD_MS");
        v = e ? (int)strtol(e, NULL, 10) : 0;
        if (v < 0 || v > 60000)
            v = 0;
    }
    return (unsigned)v;
}

static struct snapshot_hooks hooks;

void snapshot_set_hooks(const struct snapshot_hooks *h)
{
    hooks = *h;
}

/* Everything read of the process goes (it was another program's, or a
 * new snapshot begins). */
static void forget(struct snapshot *s)
{
    if (s->have_py || s->py_captured)
        py_stack_free(&s->py);
    s->have_py = false;
    s->py_captured = false;
    s->have_regs = false;
    s->needs_unwind = false;
    s->regs_known = 0;
    s->stack_len = 0;
    s->stack_addr = 0;
    s->nframes = 0;
}

static void reset(struct snapshot *s, const struct worker *w, pid_t tid)
{
    forget(s);
    s->peeked_syscall = -1;
    s->err = 0;
    s->changed = false;
    s->pause_ns = s->unwind_ns = s->py_name_ns = 0;
    s->note[0] = '\0';
    s->pid = w->pid;
    s->tid = tid;
}

bool snapshot_still_same(const struct worker *w, struct snapshot *s)
{
    char why[128] = "";
    int r = ident_verify(&w->ident, w->pid, s->tid, NULL, why, sizeof(why));

    /* The thread may have ended since; then the process decides.  Reads
     * through another thread's id cannot have reached a program executed
     * since (copy_stack()); reads through the main thread's id, of a
     * process gone meanwhile, might: dropped. */
    if (r == -ESRCH && s->tid != w->pid)
        r = ident_verify(&w->ident, w->pid, 0, NULL, why, sizeof(why));
    if (r == 0 || (r == -ESRCH && s->tid != w->pid))
        return true;
    forget(s);
    if (r == -EPERM) {
        note_changed(s, why);
    } else {
        s->err = ESRCH;
        snprintf(s->note, sizeof(s->note), "the process exited during the snapshot");
    }
    return false;
}

static bool hold_refused; /* SCHED_FIFO was refused once: not tried again */
static bool hold_is_on;   /* what the loop thread runs at now */

/* The cpu controller's cgroup of this process (cgroup v1) and its
 * cpu.rt_runtime_us: 0 when it could be read. */
static int cgroup_rt_runtime(char *path, size_t size, long *ret_us)
{
    static const char *const roots[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
    char buf[4096], file[1024], val[64];
    char *line, *save = NULL;

    if (dsl_read_text("/proc/self/cgroup", buf, sizeof(buf)) < 0)
        return -ENOENT;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
        if (!cg)
            continue;
        *cg++ = '\0';
        ctl++;
        /* "cpu" alone or in a list: "cpu,cpuacct", "cpuacct,cpu". */
        bool cpu = false;
        for (char *t = ctl; *t;) {
            size_t n = strcspn(t, ",");
            cpu |= n == 3 && strncmp(t, "cpu", 3) == 0;
            t += n + (t[n] == ',');
        }
        if (!cpu)
            continue;
        snprintf(path, size, "%s", cg);
        for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
            snprintf(file, sizeof(file), "%s%s/cpu.rt_runtime_us", roots[i],
                     strcmp(cg, "/") ? cg : "");
            if (dsl_read_text(file, val, sizeof(val)) > 0) {
                *ret_us = strtol(val, NULL, 10);
                return 0;
            }
        }
    }
    return -ENOENT;
}

/* Why SCHED_FIFO was refused, for the log: what to change, where known. */
static void why_no_realtime(int err, char *buf, size_t size)
{
    struct rlimit rl;
    char cg[512];
    long budget = -1;

    if (err == EPERM && getrlimit(RLIMIT_RTPRIO, &rl) == 0 && rl.rlim_cur < 1)
        snprintf(buf, size,
                 "RLIMIT_RTPRIO is 0 (hard limit %llu): allow it with LimitRTPRIO=1 in the "
                 "unit (the shipped one has it; a container's init may not be able to grant "
                 "it), or start the daemon as root",
                 (unsigned long long)rl.rlim_max);
    else if (err == EPERM && cgroup_rt_runtime(cg, sizeof(cg), &budget) == 0 && budget == 0)
        snprintf(buf, size,
                 "the kernel gives its cgroup %s no real-time time (cpu.rt_runtime_us = 0: "
                 "a kernel with CONFIG_RT_GROUP_SCHED and the cgroup v1 cpu controller)",
                 cg);
    else
        snprintf(buf, size, "%s", strerror(err));
}

/*
 * While a worker's thread is held, the loop thread runs at the lowest
 * real-time priority (SCHED_FIFO 1).  On a machine whose CPUs are busy --
 * the worker's other threads, other workers -- an ordinary thread can be
 * preempted in the middle of a snapshot, and the worker then waits for the
 * daemon's next time slice: milliseconds instead of the few hundred
 * microseconds of work.  Only interrupts and other real-time threads preempt
 * a FIFO thread.  The work is bounded (reads capped by max_read_bytes) and
 * the kernel's real-time throttling bounds it again.  Needs RLIMIT_RTPRIO
 * >= 1 (privs.c raises it while root; the service has LimitRTPRIO=1) or
 * CAP_SYS_NICE; without either, snapshots run at normal priority and the
 * log says so once.  SCHED_RESET_ON_FORK: nothing started meanwhile
 * inherits it.
 */
static void hold_priority(bool on)
{
    struct sched_param sp = {.sched_priority = on ? 1 : 0};

    if (hold_refused || on == hold_is_on)
        return;
    if (sched_setscheduler(0, (on ? SCHED_FIFO : SCHED_OTHER) | SCHED_RESET_ON_FORK, &sp) == 0) {
        hold_is_on = on;
        return;
    }
    if (on) {
        char why[700];
        why_no_realtime(errno, why, sizeof(why));
        log_notice("threads are held at normal priority (a busy machine can lengthen the "
                   "pause): SCHED_FIFO refused: %s",
                   why);
        hold_refused = true;
    }
}

void snapshot_priority_probe(void)
{
    hold_priority(true);
    hold_priority(false);
}

/* The thread is stopped: check it, copy it, let it go.  t0: when it was
 * last seen not stopped (wait_stop()), for the held time. */
static int held(struct daemon *d, struct worker *w, pid_t tid, int st, uint64_t t0,
                struct snapshot *s)
{
    struct user_regs_struct u;
    bool copied = false, same;
    int sig = stop_signal(st);

    /* The identity was checked before the attach; it is checked again
     * after the reads (snapshot_still_same), which is what counts: an exec
     * cannot be undone, so a process that is still the registered one
     * after the reads was that one during them, and one that is not is
     * dropped with everything read. */
    hold_priority(true);
    if (ptrace(PTRACE_GETREGS, tid, NULL, &u) == 0) {
        dwarf_regs(&u, s->regs);
        s->have_regs = true;
        s->regs_known = (1u << DSL_NREGS) - 1;
        copied = copy_stack(d, s, tid != w->pid ? (uint64_t)u.fs_base : 0) == 0;
    }
    if (!copied)
        unwind_live(d, w, tid, s); /* the slow way, while held */
    if (hooks.held)
        hooks.held(&d->cfg, w, tid, s);
    /* Still the same process once the reads are done: then what they read
     * was its (an exec after this point cannot change what was copied). */
    s->needs_unwind = copied;
    same = snapshot_still_same(w, s);
    if (test_hold_ms()) {
        struct timespec ts = {test_hold_ms() / 1000, (long)(test_hold_ms() % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    release(d, w, tid, sig);
    s->pause_ns = dsl_now_ns(CLOCK_MONOTONIC) - t0;
    hold_priority(false);
    if (same && hooks.after)
        hooks.after(&d->cfg, w, s);
    return same ? 0 : -(s->err ? s->err : EPERM);
}

int snapshot_resume(struct daemon *d, struct worker *w, pid_t tid, int status,
                    struct snapshot *s)
{
    reset(s, w, tid);
    if (!WIFSTOPPED(status)) {
        s->err = ESRCH;
        snprintf(s->note, sizeof(s->note), "thread exited during the snapshot");
        return -ESRCH;
    }
    return held(d, w, tid, status, dsl_now_ns(CLOCK_MONOTONIC), s);
}

int snapshot_take(struct daemon *d, struct worker *w, pid_t tid, struct snapshot *s)
{
    struct ident cur;
    uint64_t t0, t_stopped = 0;
    int st, r;

    reset(s, w, tid);
    r = check_same(w, tid, s, &cur);
    if (r < 0)
        return r;
    if (find_stopping(d, tid)) {
        s->err = EBUSY;
        snprintf(s->note, sizeof(s->note),
                 "not stopped: the thread has not stopped yet for an earlier snapshot");
        return -EBUSY;
    }
    if (hooks.before)
        hooks.before(&d->cfg, w, tid);
    r = peek(d, w, tid, cur.state, s);
    if (r == 0 || r == 2) {
        s->needs_unwind = r == 0;
        if (hooks.held) /* blocked: its frames cannot change */
            hooks.held(&d->cfg, w, tid, s);
        if (hooks.after)
            hooks.after(&d->cfg, w, s);
        return snapshot_still_same(w, s) ? 0 : -(s->err ? s->err : EPERM);
    }
    s->have_regs = false;
    s->regs_known = 0;
    /* One user's threads that will not stop cannot take the loop's time
     * from everyone else's. */
    if (snapshot_stopping(d, w->uid) >= SNAPSHOT_STOPPING_PER_UID) {
        s->err = EBUSY;
        snprintf(s->note, sizeof(s->note),
                 "not stopped: %u threads of uid %u have not stopped yet for earlier snapshots",
                 SNAPSHOT_STOPPING_PER_UID, (unsigned)w->uid);
        return -EBUSY;
    }
    t0 = dsl_now_ns(CLOCK_MONOTONIC);
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
        r = -errno;
        pid_t tracer = tracer_of(tid);
        s->err = -r;
        if (tracer > 0)
            snprintf(s->note, sizeof(s->note),
                     "thread is being traced by another process (pid %d); not disturbed",
                     (int)tracer);
        else
            snprintf(s->note, sizeof(s->note), "cannot attach: %s", strerror(-r));
        return r;
    }
    /* Attached.  From here on, every path lets go of it, now or when it
     * stops. */
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
        r = -errno;
        release(d, w, tid, 0);
        s->err = -r;
        snprintf(s->note, sizeof(s->note), "cannot interrupt: %s", strerror(-r));
        return r;
    }
    /* At normal priority: a real-time thread waking every few
     * microseconds would keep the CPU from the thread that must run to
     * stop.  held() raises it (hold_priority()). */
    r = wait_stop(tid, t0, &st, &t_stopped);
    if (r == -ETIMEDOUT) {
        /* Not stopped (yet): the interrupt stays pending, and the loop
         * does not wait.  snapshot_reap() sees the stop. */
        add_stopping(d, w->pid, tid, w->uid);
        s->err = EINPROGRESS;
        snprintf(s->note, sizeof(s->note), "thread did not stop within %llu ms",
                 (unsigned long long)(STOP_SPIN_NS / NSEC_PER_MSEC));
        return -EINPROGRESS;
    }
    if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
        if (r < 0)
            release(d, w, tid, 0);
        s->err = ESRCH;
        snprintf(s->note, sizeof(s->note), "thread exited during the snapshot");
        return -ESRCH;
    }
    return held(d, w, tid, st, t_stopped, s);
}
