/* SPDX-License-Identifier: MIT */
/*
 * The daemon's seccomp filter (daemon/sandbox.c).
 *
 * - The running daemon is confined (Seccomp: 2, NoNewPrivs: 1 in its
 *   /proc status) and still reports a slow request; dogslowctl status says
 *   so; seccomp = no leaves it unconfined.
 * - The filter itself, put on a child of this test: every call it must
 *   refuse fails with EPERM (or EAFNOSUPPORT, ENOSYS) where the same call
 *   without the filter succeeds or fails differently, and is logged; what
 *   the daemon needs (threads, files, AF_UNIX sockets, process_vm_readv,
 *   signals to itself) still works; another ABI's system call kills.
 * - The analysis process's and the spawner's filters (privsep), the same
 *   way: no file opened, no path resolved or stat'ed, no socket made, no
 *   process_vm_readv, no executable memory, no fork but the spawner's.
 *
 * Every other suite runs the real daemon with the filter on, and the
 * harness fails any test whose daemon log shows a denied call: that is the
 * test that the allow-list is complete.
 */
#include "config.h"

#include <check.h>

#include "run_suite.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core.h"
#include "harness.h"
#include "util.h"

static long status_field(pid_t pid, const char *key)
{
    long v = -1;
    ck_assert_int_eq(dsl_proc_status_field(pid, 0, key, &v), 0);
    return v;
}

/* The daemon's own account: still confined, nothing denied; then stop it. */
static void stop_confined(struct tdaemon *d)
{
    char out[8192];

    ck_assert_int_eq(run_capture((const char *const[]){env_or_die("DOGSLOWCTL"), "--socket",
                                                       d->sock, "status", NULL},
                                 NULL, out, sizeof(out), 30000),
                     0);
    ck_assert_msg(strstr(out, "seccomp filter: on, nothing denied"), "%s", out);
    ck_assert_int_eq(td_stop(d), 0);
    td_cleanup(d);
}

START_TEST(daemon_runs_confined_and_still_reports)
{
    struct tdaemon d;
    struct tworker w;

    td_start(&d, "0.3", NULL);
    ck_assert_int_eq(status_field(d.pid, "Seccomp"), 2);
    ck_assert_int_eq(status_field(d.pid, "NoNewPrivs"), 1);
    ck_assert_int_eq(status_field(d.pid, "Seccomp_filters"), 1);

    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "2", "GET", "/confined", NULL});
    ck_assert_int_eq(td_wait_reports(&d, 1, 10000), 1);
    char *r = td_find_report_with(&d, "/confined");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "handle_slow_request") && strstr(r, "test_worker.c\", line "), r,
           "the report lacks the worker's frames and lines");
    free(r);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);

    stop_confined(&d);
}
END_TEST

/* The scheduling policy and real-time priority of each of pid's threads:
 * how many run at SCHED_FIFO 1, and how many at anything but SCHED_OTHER. */
static void policies(pid_t pid, int *ret_fifo1, int *ret_other_than_normal)
{
    char path[64];
    DIR *dir;
    struct dirent *e;

    *ret_fifo1 = *ret_other_than_normal = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (!dir)
        return;
    while ((e = readdir(dir)) != NULL) {
        char line[1024], sp[300];
        if (e->d_name[0] == '.')
            continue;
        snprintf(sp, sizeof(sp), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        if (!f)
            continue;
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = '\0';
        char *p = strrchr(line, ')');
        if (!p)
            continue;
        /* Fields 3.. after the name: rt_priority is field 40, policy 41. */
        long field[48] = {0};
        int k = 3;
        for (char *tok = strtok(p + 1, " "); tok && k < 48; tok = strtok(NULL, " "))
            field[k++] = strtol(tok, NULL, 10);
        if (field[41] == 1 /* SCHED_FIFO */ && field[40] == 1)
            (*ret_fifo1)++;
        if (field[41] != 0)
            (*ret_other_than_normal)++;
    }
    closedir(dir);
}

/* While it holds a thread the confined daemon's loop runs at SCHED_FIFO 1
 * (a busy machine cannot stretch the worker's pause), and at no other
 * time: the hold is stretched to 1 s here to see it. */
START_TEST(holds_at_realtime_priority_and_only_then)
{
    struct tdaemon d;
    struct tworker w;
    int fifo = 0, other = 0, seen_fifo = 0;

    setenv("DOGSLOWD_TEST_HOLD_MS", "1000", 1);
    td_start(&d, "0.3", NULL);
    unsetenv("DOGSLOWD_TEST_HOLD_MS");
    policies(d.pid, &fifo, &other);
    ck_assert_int_eq(other, 0);
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "2", "GET", "/held", NULL});
    for (long long end = now_ms() + 5000; now_ms() < end && !seen_fifo; sleep_ms(20)) {
        policies(d.pid, &fifo, &other);
        seen_fifo = fifo;
    }
    ck_assert_msg(seen_fifo == 1, "no daemon thread at SCHED_FIFO 1 while it held one\n%s",
                  td_log(&d));
    ck_assert_int_eq(td_wait_reports(&d, 1, 10000), 1);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    policies(d.pid, &fifo, &other);
    ck_assert_msg(other == 0, "%d daemon threads left at a real-time policy", other);
    ck_assert_msg(!strstr(td_log(&d), "SCHED_FIFO refused"), "%s", td_log(&d));
    stop_confined(&d);
}
END_TEST

START_TEST(seccomp_no_leaves_it_unconfined)
{
    struct tdaemon d;
    char out[8192];

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nseccomp = no\n");
    td_launch(&d, "0.3", NULL);
    ck_assert_int_eq(status_field(d.pid, "Seccomp"), 0);
    ck_assert_int_eq(run_capture((const char *const[]){env_or_die("DOGSLOWCTL"), "--socket",
                                                       d.sock, "status", NULL},
                                 NULL, out, sizeof(out), 30000),
                     0);
    ck_assert_msg(strstr(out, "seccomp filter: off"), "%s", out);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* ---- the filter in a child ---------------------------------------------- */

/* Each probe: what it does, and the errno the filter must give (0: the call
 * must succeed).  Run twice: without the filter (where the call succeeds or
 * fails with something else, so the test can tell) and with it. */
struct probe {
    const char *name;
    int want; /* errno under the filter; 0 = must work */
    int (*run)(void);
    bool root; /* succeeds without the filter only as root */
};

/* Sanitizer builds let LeakSanitizer's tracer be created (sandbox.c). */
#if defined(__SANITIZE_ADDRESS__)
#define FORK_WANT     0
#define DUMPABLE_WANT 0
#else
#define FORK_WANT     EPERM
#define DUMPABLE_WANT EPERM
#endif

static int fail_errno(long r)
{
    return r < 0 ? errno : 0;
}

static int p_execve(void)
{
    char *argv[] = {(char *)"true", NULL};
    /* Without the filter: ENOENT (the filter refuses before the lookup). */
    execve("/nonexistent/dogslow-sandbox-probe", argv, environ);
    return errno;
}

static int p_fork(void)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid < 0 ? errno : 0;
}

static void *thread_main(void *arg)
{
    return arg;
}

static int p_thread(void)
{
    pthread_t t;
    void *ret = NULL;
    int r = pthread_create(&t, NULL, thread_main, (void *)1);

    if (r)
        return r;
    pthread_join(t, &ret);
    return ret == (void *)1 ? 0 : EIO;
}

static int p_process_vm_writev(void)
{
    static char target[8], src[8] = "written";
    struct iovec l = {src, sizeof(src)}, rmt = {target, sizeof(target)};
    return fail_errno(process_vm_writev(getpid(), &l, 1, &rmt, 1, 0));
}

static int p_process_vm_readv(void)
{
    static char target[8], src[8] = "readme";
    struct iovec l = {target, sizeof(target)}, rmt = {src, sizeof(src)};
    long n = process_vm_readv(getpid(), &l, 1, &rmt, 1, 0);
    return n < 0 ? errno : strcmp(target, "readme") ? EIO : 0;
}

static int p_ptrace_poke(void)
{
    /* Without the filter: ESRCH (the parent is not our tracee). */
    return fail_errno(ptrace(PTRACE_POKEDATA, getppid(), (void *)0x1000, (void *)0));
}

static int p_open_by_handle(void)
{
    struct {
        struct file_handle fh;
        unsigned char bytes[128];
    } h;
    memset(&h, 0, sizeof(h));
    h.fh.handle_bytes = 8;
    return fail_errno(syscall(SYS_open_by_handle_at, AT_FDCWD, &h.fh, O_RDONLY));
}

static int p_listen(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r;

    if (s < 0)
        return errno;
    r = fail_errno(listen(s, 1));
    close(s);
    return r;
}

static int p_bind(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int r;

    if (s < 0)
        return errno;
    /* Abstract name: nothing to clean up. */
    snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "dogslow-sandbox-%d", (int)getpid());
    r = fail_errno(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    close(s);
    return r;
}

static int p_socket_unix(void)
{
    int sv[2];
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return errno;
    close(s);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return errno;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static int p_socket_netlink(void)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s >= 0)
        close(s);
    return s < 0 ? errno : 0;
}

static int p_mmap_wx(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p != MAP_FAILED)
        munmap(p, 4096);
    return p == MAP_FAILED ? errno : 0;
}

static int p_mprotect_x(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int r;

    if (p == MAP_FAILED)
        return EIO; /* a plain mapping must work */
    r = fail_errno(mprotect(p, 4096, PROT_READ | PROT_EXEC));
    munmap(p, 4096);
    return r;
}

static int p_files(void)
{
    char path[] = "/tmp/dogslow-sandbox-XXXXXX", buf[8] = "";
    int fd = mkstemp(path), r = 0;

    if (fd < 0)
        return errno;
    if (write(fd, "abc", 3) != 3 || pread(fd, buf, 3, 0) != 3 || strcmp(buf, "abc") ||
        fsync(fd) < 0 || fchown(fd, (uid_t)-1, getgid()) < 0)
        r = errno ? errno : EIO;
    close(fd);
    if (unlink(path) < 0 && !r)
        r = errno;
    return r;
}

static int p_fchown_owner(void)
{
    char path[] = "/tmp/dogslow-sandbox-XXXXXX";
    int fd = mkstemp(path), r;

    if (fd < 0)
        return EIO;
    r = fail_errno(fchown(fd, getuid(), (gid_t)-1));
    close(fd);
    unlink(path);
    return r;
}

static int p_kill_other(void)
{
    return fail_errno(kill(getppid(), 0));
}

static int p_kill_self(void)
{
    return fail_errno(kill(getpid(), 0));
}

static int p_setuid(void)
{
    return fail_errno(setresuid(getuid(), getuid(), getuid()));
}

static int p_dumpable(void)
{
    return fail_errno(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
}

static int p_tiocsti(void)
{
    char c = 'x';
    /* Without the filter: ENOTTY (a pipe is no terminal). */
    int fds[2], r;

    if (pipe(fds) < 0)
        return EIO;
    r = fail_errno(ioctl(fds[0], TIOCSTI, &c));
    close(fds[0]);
    close(fds[1]);
    return r;
}

static int p_unshare(void)
{
    return fail_errno(unshare(CLONE_NEWNS));
}

static const struct probe probes[] = {
    {"execve", EPERM, p_execve},
    {"fork", FORK_WANT, p_fork},
    {"thread", 0, p_thread},
    {"process_vm_writev", EPERM, p_process_vm_writev},
    {"process_vm_readv", 0, p_process_vm_readv},
    {"ptrace POKEDATA", EPERM, p_ptrace_poke},
    {"open_by_handle_at", EPERM, p_open_by_handle},
    {"listen", EPERM, p_listen},
    {"bind", EPERM, p_bind},
    {"AF_UNIX sockets", 0, p_socket_unix},
    {"AF_NETLINK socket", EAFNOSUPPORT, p_socket_netlink},
    {"mmap W+X", EPERM, p_mmap_wx},
    {"mprotect +X", EPERM, p_mprotect_x},
    {"files, fchown of the group", 0, p_files},
    {"fchown of the owner", EPERM, p_fchown_owner},
    {"kill another process", EPERM, p_kill_other},
    {"kill itself", 0, p_kill_self},
    {"setresuid", EPERM, p_setuid},
    {"PR_SET_DUMPABLE", DUMPABLE_WANT, p_dumpable},
    {"TIOCSTI", EPERM, p_tiocsti},
    {"unshare", EPERM, p_unshare, true},
};

typedef int (*probe_fn)(void);

/* In a child whose stderr goes to errpath: put a filter on (enter, unless
 * NULL), run fns, write one errno each and then the count of denials
 * sandbox_denied() saw into res[0..n]. */
static void run_in_child(int (*enter)(void), const probe_fn *fns, size_t n, int *res,
                         const char *errpath)
{
    int p[2], st;
    pid_t pid;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (e < 0 || dup2(e, 2) < 0)
            _exit(5);
        close(p[0]);
        if (enter && enter() < 0)
            _exit(3);
        for (size_t i = 0; i < n; i++)
            res[i] = fns[i]();
        res[n] = (int)sandbox_denied(NULL);
        _exit(write(p[1], res, sizeof(int) * (n + 1)) == (ssize_t)(sizeof(int) * (n + 1)) ? 0 : 4);
    }
    close(p[1]);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe child (%s): status %#x",
                  enter ? "with a filter" : "without a filter", st);
    ck_assert_int_eq(read(p[0], res, sizeof(int) * (n + 1)), (ssize_t)(sizeof(int) * (n + 1)));
    close(p[0]);
}

/* Run the daemon's probes in a child, with or without its filter. */
static void run_probes(bool filtered, int *res, const char *errpath)
{
    probe_fn fns[ARRAY_SIZE(probes)];

    for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
        fns[i] = probes[i].run;
    run_in_child(filtered ? sandbox_enter : NULL, fns, ARRAY_SIZE(probes), res, errpath);
}

static char *slurp(const char *path)
{
    static char buf[16384];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

START_TEST(filter_refuses_what_the_daemon_must_not_do)
{
    int free_run[ARRAY_SIZE(probes) + 1], caged[ARRAY_SIZE(probes) + 1];
    char errpath[] = "/tmp/dogslow-sandbox-err-XXXXXX";
    int fd = mkstemp(errpath);
    unsigned expected_denials = 0;
    const char *err;

    ck_assert_int_ge(fd, 0);
    close(fd);
    run_probes(false, free_run, errpath);
    run_probes(true, caged, errpath);
    err = slurp(errpath);
    unlink(errpath);
    for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
        const struct probe *p = &probes[i];

        if (p->want == 0) {
            ck_assert_msg(free_run[i] == 0 && caged[i] == 0,
                          "%s must work: %s without the filter, %s with it", p->name,
                          strerror(free_run[i]), strerror(caged[i]));
            continue;
        }
        /* The filter's answer, and proof that it is the filter's. */
        ck_assert_msg(caged[i] == p->want, "%s under the filter: %s, not %s", p->name,
                      strerror(caged[i]), strerror(p->want));
        ck_assert_msg(free_run[i] != p->want || (p->root && geteuid() != 0),
                      "%s fails with %s even without the filter: the probe proves nothing",
                      p->name, strerror(free_run[i]));
        if (p->want == EPERM)
            expected_denials++;
    }
    /* Every EPERM came from the trap handler, which counts and logs it
     * (fork may be two calls deep in glibc: at least one each). */
    ck_assert_msg(caged[ARRAY_SIZE(probes)] >= (int)expected_denials, "%d denials counted, want %u",
                  caged[ARRAY_SIZE(probes)], expected_denials);
    ck_assert_msg(strstr(err, "seccomp: denied system call execve ("), "%s", err);
    ck_assert_msg(strstr(err, "seccomp: denied system call process_vm_writev ("), "%s", err);
    ck_assert_msg(strstr(err, "seccomp: denied system call open_by_handle_at ("), "%s", err);
    ck_assert_msg(strstr(err, "it failed with EPERM"), "%s", err);
}
END_TEST

/* ---- the analysis process's and the spawner's filters (privsep) -------- */

static int p_open_file(void)
{
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);

    if (fd >= 0)
        close(fd);
    return fail_errno(fd);
}

static int p_readlink(void)
{
    char b[64];
    return fail_errno(readlink("/proc/self/exe", b, sizeof(b)));
}

static int p_stat_path(void)
{
    struct stat st;
    return fail_errno(stat("/etc/passwd", &st));
}

static int p_fstat(void)
{
    struct stat st;
    return fail_errno(fstat(2, &st));
}

static int p_memory(void)
{
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *q;

    if (p == MAP_FAILED)
        return errno;
    memset(p, 1, 1 << 20);
    munmap(p, 1 << 20);
    q = malloc(10 << 20);
    if (!q)
        return ENOMEM;
    free(q);
    return 0;
}

/* Each probe and the errno under each filter (0: must work). */
struct cprobe {
    const char *name;
    probe_fn run;
    int analysis, spawner;
};

static const struct cprobe cprobes[] = {
    {"open a file", p_open_file, EACCES, EACCES},
    {"readlink", p_readlink, EINVAL, EINVAL},
    {"stat a path", p_stat_path, EPERM, EPERM},
    {"fstat a descriptor", p_fstat, 0, 0},
    {"make a socket", p_socket_unix, EPERM, EPERM},
    {"process_vm_readv", p_process_vm_readv, EPERM, EPERM},
    {"fork", p_fork, EPERM, 0},
    {"executable memory", p_mmap_wx, EPERM, EPERM},
    {"memory", p_memory, 0, 0},
};

/* What the analysis process and the spawner cannot do, each refusal next
 * to the same call without a filter (so that it is the filter's). */
START_TEST(confined_filters_refuse_files_sockets_and_tracing)
{
    int free_run[ARRAY_SIZE(cprobes) + 1], analysis[ARRAY_SIZE(cprobes) + 1],
        spawner[ARRAY_SIZE(cprobes) + 1];
    probe_fn fns[ARRAY_SIZE(cprobes)];
    char errpath[] = "/tmp/dogslow-sandbox-err-XXXXXX";
    int fd = mkstemp(errpath);

    ck_assert_int_ge(fd, 0);
    close(fd);
    for (size_t i = 0; i < ARRAY_SIZE(cprobes); i++)
        fns[i] = cprobes[i].run;
    run_in_child(NULL, fns, ARRAY_SIZE(cprobes), free_run, errpath);
    run_in_child(sandbox_enter_analysis, fns, ARRAY_SIZE(cprobes), analysis, errpath);
    run_in_child(sandbox_enter_spawner, fns, ARRAY_SIZE(cprobes), spawner, errpath);
    unlink(errpath);
    for (size_t i = 0; i < ARRAY_SIZE(cprobes); i++) {
        const struct cprobe *c = &cprobes[i];
        ck_assert_msg(free_run[i] == 0, "%s fails without a filter: %s", c->name,
                      strerror(free_run[i]));
        ck_assert_msg(analysis[i] == c->analysis, "%s in the analysis process: %s, not %s",
                      c->name, strerror(analysis[i]), strerror(c->analysis));
        ck_assert_msg(spawner[i] == c->spawner, "%s in the spawner: %s, not %s", c->name,
                      strerror(spawner[i]), strerror(c->spawner));
    }
}
END_TEST

#ifdef __x86_64__
/* getpid through the i386 entry, without any filter: does this kernel
 * have the 32-bit system call ABI at all?  Built without IA32 emulation,
 * or booted with ia32_emulation=0, it has no entry for int $0x80, and the
 * instruction faults (SIGSEGV; under ASan, its handler aborts). */
static bool kernel_has_i386_abi(void)
{
    int st;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        long r;

        signal(SIGSEGV, SIG_DFL); /* a plain fault, not a sanitizer's report */
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        _exit(r == (long)getpid() ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

START_TEST(another_abi_is_killed)
{
    int st;
    pid_t pid;

    if (!kernel_has_i386_abi()) {
        fprintf(stderr, "check_sandbox: another_abi_is_killed skipped: this kernel has no i386 "
                        "system call ABI (int $0x80 faults without any filter), so there is no "
                        "way around the filter to close\n");
        return;
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        long r;

        if (sandbox_enter() < 0)
            _exit(3);
        /* getpid through the i386 entry: a way around an x86-64 filter
         * unless the filter checks the ABI. */
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        (void)r;
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x: not killed by SIGSYS",
                  st);
}
END_TEST
#endif

START_TEST(program_fits_and_names_calls)
{
    struct sock_fprog p;

    ck_assert_int_eq(sandbox_build(&p), 0);
    ck_assert_uint_gt(p.len, 100);
    ck_assert_uint_le(p.len, 4096); /* BPF_MAXINSNS */
    ck_assert_str_eq(sandbox_syscall_name(SYS_execve), "execve");
    ck_assert_str_eq(sandbox_syscall_name(SYS_read), "read");
    ck_assert_str_eq(sandbox_syscall_name(-1), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("filter");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, program_fits_and_names_calls);
    tcase_add_test(tc, filter_refuses_what_the_daemon_must_not_do);
    tcase_add_test(tc, confined_filters_refuse_files_sockets_and_tracing);
#ifdef __x86_64__
    tcase_add_test(tc, another_abi_is_killed);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, daemon_runs_confined_and_still_reports);
    tcase_add_test(tc, seccomp_no_leaves_it_unconfined);
    tcase_add_test(tc, holds_at_realtime_priority_and_only_then);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
