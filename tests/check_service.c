/* SPDX-License-Identifier: MIT */
/*
 * dogslowd as a service: the real daemon talking sd_notify to a datagram
 * socket of the test's (READY, STATUS, WATCHDOG at the asked rate,
 * STOPPING), taking a listening socket from "systemd" (LISTEN_FDS), dropping
 * from root to a user with exactly CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
 * and still reporting a root worker, an unprivileged daemon serving its own
 * user's worker and refusing another's, and the shipped unit files and man
 * pages checked with systemd-analyze and mandoc.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "harness.h"

#define CAP_SYS_PTRACE_BIT      19
#define CAP_DAC_READ_SEARCH_BIT 2
#define SETPRIV                 "/usr/bin/setpriv"
#define ANALYZE                 "/usr/bin/systemd-analyze"
#define MANDOC                  "/usr/bin/mandoc"

static void parse_ready(const char *line, int *pid, int *tid)
{
    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d", pid, tid) == 2,
                  "worker did not report ready: %s", line ? line : "(nothing)");
}

/* ---- a NOTIFY_SOCKET of our own ------------------------------------------ */

struct notify {
    int fd;
    char path[320];
    char env[340];
    char all[65536]; /* every message received, each followed by "\n--\n" */
    size_t len;
    int watchdogs;
    long long first_watchdog_ms, last_watchdog_ms;
};

static void notify_open(struct notify *n, const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(n, 0, sizeof(*n));
    snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->path);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(n->fd, 0);
    ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* A daemon that dropped to another user must still be able to send. */
    ck_assert_int_eq(chmod(n->path, 0666), 0);
    snprintf(n->env, sizeof(n->env), "NOTIFY_SOCKET=%s", n->path);
}

/* Receive messages for up to timeout_ms, or until one contains until
 * (NULL: for the whole time).  Returns true if until was seen. */
static bool notify_recv(struct notify *n, const char *until, int timeout_ms)
{
    for (long long end = now_ms() + timeout_ms;;) {
        struct pollfd p = {.fd = n->fd, .events = POLLIN};
        long long left = end - now_ms();
        char buf[4096];
        ssize_t k;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        k = recv(n->fd, buf, sizeof(buf) - 1, 0);
        if (k <= 0)
            continue;
        buf[k] = '\0';
        if (!strcmp(buf, "WATCHDOG=1")) {
            if (!n->watchdogs++)
                n->first_watchdog_ms = now_ms();
            n->last_watchdog_ms = now_ms();
        }
        if (n->len + (size_t)k + 5 < sizeof(n->all)) {
            memcpy(n->all + n->len, buf, (size_t)k);
            n->len += (size_t)k;
            memcpy(n->all + n->len, "\n--\n", 5);
            n->len += 4;
        }
        if (until && strstr(buf, until))
            return true;
    }
}

#ifdef HAVE_LIBSYSTEMD
START_TEST(notify_ready_status_watchdog_stopping)
{
    struct tdaemon d;
    struct notify n;
    struct tworker w;
    const char *env[3];
    int pid, tid;

    td_init(&d);
    notify_open(&n, d.dir);
    env[0] = n.env;
    env[1] = "WATCHDOG_USEC=400000"; /* WATCHDOG=1 every 200 ms */
    env[2] = NULL;
    d.env = env;
    td_launch(&d, "0.3", NULL);

    /* READY=1 once it listens (td_launch returned: it accepts), with the
     * counts. */
    ck_assert_msg(notify_recv(&n, "READY=1", 5000), "no READY=1; got:\n%s\nlog:\n%s", n.all,
                  td_log(&d));
    ck_assert_msg(strstr(n.all, "READY=1\nSTATUS=0 processes registered, 0 requests in flight, "
                                "0 reports written"),
                  "%s", n.all);

    /* STATUS= follows the counts: a request in flight, then a report. */
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "2.0", "GET", "/service/status", NULL});
    parse_ready(tw_expect(&w, "ready", 15000), &pid, &tid);
    ck_assert_msg(notify_recv(&n, "STATUS=1 processes registered, 1 requests in flight", 5000),
                  "%s", n.all);
    ck_assert_msg(notify_recv(&n, "1 reports written", 5000), "%s", n.all);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);

    /* WATCHDOG=1 at half of WATCHDOG_USEC: about 10 in 2 s (at the full
     * interval it would be 5).  Never more; fewer only when the machine is
     * so loaded that the loop lags, so the best of three windows counts. */
    int best = 0;
    for (int round = 0; round < 3 && best < 7; round++) {
        n.watchdogs = 0;
        notify_recv(&n, NULL, 2000);
        ck_assert_msg(n.watchdogs <= 13, "%d WATCHDOG=1 in 2 s (expected ~10)", n.watchdogs);
        if (n.watchdogs > best)
            best = n.watchdogs;
    }
    ck_assert_msg(best >= 7, "%d WATCHDOG=1 in 2 s at best (expected ~10)", best);

    /* STOPPING=1 on SIGTERM. */
    td_signal(&d, SIGTERM);
    ck_assert_msg(notify_recv(&n, "STOPPING=1", 5000), "no STOPPING=1; got:\n%s", n.all);
    ck_assert_int_eq(td_stop(&d), 0);
    close(n.fd);
    td_cleanup(&d);
}
END_TEST

/* Without WATCHDOG_USEC there is no WATCHDOG=1; with WATCHDOG_PID naming
 * another process neither (it is not for us). */
START_TEST(watchdog_only_when_asked)
{
    static const char *const extras[][2] = {{NULL, NULL},
                                            {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1"}};

    for (int i = 0; i < 2; i++) {
        struct tdaemon d;
        struct notify n;
        const char *env[4] = {NULL};

        td_init(&d);
        notify_open(&n, d.dir);
        env[0] = n.env;
        env[1] = extras[i][0];
        env[2] = extras[i][1];
        d.env = env;
        td_launch(&d, "1", NULL);
        ck_assert_msg(notify_recv(&n, "READY=1", 5000), "no READY=1: %s", td_log(&d));
        notify_recv(&n, NULL, 1000);
        ck_assert_msg(n.watchdogs == 0, "case %d: %d WATCHDOG=1", i, n.watchdogs);
        ck_assert_int_eq(td_stop(&d), 0);
        ck_assert_msg(notify_recv(&n, "STOPPING=1", 2000), "%s", n.all);
        close(n.fd);
        td_cleanup(&d);
    }
}
END_TEST

/* A fatal error after start-up still says STOPPING=1 (atexit), and a
 * start-up failure exits 1. */
START_TEST(stopping_on_startup_failure)
{
    struct notify n;
    char dir[] = "/tmp/dogslow-test-XXXXXX", conf[300], sock[300], out[4096];
    const char *env[2];
    int rc;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    notify_open(&n, dir);
    snprintf(conf, sizeof(conf), "%s/empty.conf", dir);
    ck_assert_int_eq(close(open(conf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
    /* The socket's directory is a regular file: it cannot listen. */
    snprintf(sock, sizeof(sock), "%s/empty.conf/dogslow.sock", dir);
    env[0] = n.env;
    env[1] = NULL;
    rc = run_capture(
        (const char *const[]){env_or_die("DOGSLOWD"), "-f", "-c", conf, "--socket", sock, NULL},
        env, out, sizeof(out), 10000);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "cannot start"), "%s", out);
    notify_recv(&n, "STOPPING=1", 1000);
    ck_assert_msg(!strstr(n.all, "READY=1"), "READY=1 from a daemon that never listened: %s",
                  n.all);
    close(n.fd);
    snprintf(out, sizeof(out), "rm -rf '%s'", dir);
    (void)!system(out);
}
END_TEST

/* ---- socket activation ---------------------------------------------------- */

static int listening_socket(const char *path, int type)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(chmod(path, 0666), 0);
    if (type == SOCK_STREAM)
        ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

START_TEST(socket_activation_uses_the_passed_socket)
{
    struct tdaemon d;
    struct tworker w;
    struct stat before, after;
    int pid, tid;

    td_init(&d);
    d.listen_fd = listening_socket(d.sock, SOCK_STREAM);
    d.activate = true;
    ck_assert_int_eq(stat(d.sock, &before), 0);
    td_launch(&d, "0.3", NULL);
    ck_assert_msg(td_wait_log(&d, "(socket from systemd)", 3000), "%s", td_log(&d));
    /* Our socket, not a new one bound over it. */
    ck_assert_int_eq(stat(d.sock, &after), 0);
    ck_assert_msg(before.st_ino == after.st_ino, "the daemon replaced the passed socket");
    /* The test keeps its copy open, like systemd: connections still reach
     * the daemon, which is the only one calling accept(). */
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "1.0", "GET", "/activated", NULL});
    parse_ready(tw_expect(&w, "ready", 15000), &pid, &tid);
    ck_assert_msg(td_wait_reports(&d, 1, 15000) == 1, "no report: %s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    ck_assert_int_eq(td_stop(&d), 0);
    /* The socket is systemd's: it stays for the next daemon. */
    ck_assert_int_eq(stat(d.sock, &after), 0);
    ck_assert(before.st_ino == after.st_ino);
    close(d.listen_fd);
    td_cleanup(&d);
}
END_TEST

START_TEST(socket_activation_ignores_a_wrong_socket)
{
    struct tdaemon d;
    char other[320];

    td_init(&d);
    snprintf(other, sizeof(other), "%s/dgram.sock", d.dir);
    d.listen_fd = listening_socket(other, SOCK_DGRAM);
    d.activate = true;
    td_launch(&d, "1", NULL);
    ck_assert_msg(td_wait_log(&d, "not a listening Unix stream socket; ignoring it", 3000), "%s",
                  td_log(&d));
    ck_assert_msg(!strstr(td_log(&d), "(socket from systemd)"), "%s", td_log(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    /* Its own socket, removed at exit. */
    ck_assert_int_ne(access(d.sock, F_OK), 0);
    close(d.listen_fd);
    td_cleanup(&d);
}
END_TEST

#endif /* HAVE_LIBSYSTEMD */

/* ---- privileges ------------------------------------------------------------ */

/* "Key:\tvalue" of /proc/PID/status. */
static bool proc_status(pid_t pid, const char *key, char *ret, size_t size)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    FILE *f;
    bool found = false;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            snprintf(ret, size, "%s", line + kl + 1 + strspn(line + kl + 1, " \t"));
            ret[strcspn(ret, "\n")] = '\0';
            found = true;
            break;
        }
    fclose(f);
    return found;
}

static unsigned long long proc_caps(pid_t pid, const char *key)
{
    char v[64];

    ck_assert_msg(proc_status(pid, key, v, sizeof(v)), "no %s in /proc/%d/status", key, (int)pid);
    return strtoull(v, NULL, 16);
}

/* dac_read_search = false: started as root, it keeps exactly
 * CAP_SYS_PTRACE (effective, permitted, bounding), and still reports a root
 * worker's slow request with its stack (a stop, not a peek: nanosleep). */
START_TEST(root_drops_to_exactly_cap_sys_ptrace)
{
    struct tdaemon d;
    struct tworker w;
    const unsigned long long keep = 1ull << CAP_SYS_PTRACE_BIT;

    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_write_conf(&d, "[dogslow]\nuser = nobody\ndac_read_search = false\n");
    d.switch_user = true;
    td_launch(&d, "0.3", NULL);
    ck_assert_msg(td_wait_log(&d, "switched to user nobody", 5000), "%s", td_log(&d));
    ck_assert_msg(strstr(td_log(&d), "keeping CAP_SYS_PTRACE only"), "%s", td_log(&d));
    ck_assert_uint_eq(proc_caps(d.pid, "CapEff"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapPrm"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapBnd"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapInh"), 0);
    ck_assert_uint_eq(proc_caps(d.pid, "CapAmb"), 0);
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "1.0", "GET", "/exactly/ptrace", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 10000));
    ck_assert_msg(td_wait_reports(&d, 1, 10000) == 1, "no report: %s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    char *r = td_find_report_with(&d, "\nGET /exactly/ptrace\n");
    ck_assert_msg(r && strstr(r, "in handle_slow_request\n"), "%s", r ? r : td_log(&d));
    free(r);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(root_drops_to_user_with_ptrace_only)
{
    struct tdaemon d;
    struct tworker w;
    struct notify n;
    const char *env[2];
    char v[128], needle[64];
    const unsigned long long keep =
        (1ull << CAP_SYS_PTRACE_BIT) | (1ull << CAP_DAC_READ_SEARCH_BIT);
    int pid, tid;

    if (geteuid() != 0) {
        fprintf(stderr, "root_drops_to_user_with_ptrace_only: needs root, not run\n");
        return;
    }
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    notify_open(&n, d.dir);
    env[0] = n.env;
    env[1] = NULL;
    d.env = env;
    td_write_conf(&d, "[dogslow]\nuser = nobody\n");
    d.switch_user = true;
    td_launch(&d, "0.3", NULL);
#ifdef HAVE_LIBSYSTEMD
    ck_assert_msg(notify_recv(&n, "READY=1", 5000), "no READY=1: %s", td_log(&d));
#else
    ck_assert_msg(td_wait_log(&d, "switched to user nobody", 5000), "%s", td_log(&d));
    /* Built without libsystemd, it says nothing to systemd. */
    ck_assert_msg(!notify_recv(&n, "READY=1", 500), "%s", n.all);
#endif

    /* READY=1 came after the switch: the ids and capabilities now. */
    ck_assert(proc_status(d.pid, "Uid", v, sizeof(v)));
    ck_assert_str_eq(v, "65534\t65534\t65534\t65534");
    ck_assert(proc_status(d.pid, "Gid", v, sizeof(v)));
    ck_assert_str_eq(v, "65534\t65534\t65534\t65534");
    ck_assert(proc_status(d.pid, "Groups", v, sizeof(v)));
    ck_assert_str_eq(v, "");
    ck_assert_uint_eq(proc_caps(d.pid, "CapEff"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapPrm"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapBnd"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapInh"), 0);
    ck_assert_uint_eq(proc_caps(d.pid, "CapAmb"), 0);
    ck_assert_msg(td_wait_log(&d, "switched to user nobody", 1000), "%s", td_log(&d));

    /* A root worker is still watched: the capability suffices for the
     * snapshot, the report names its frames. */
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "1.5", "GET", "/root/worker", NULL});
    parse_ready(tw_expect(&w, "ready", 15000), &pid, &tid);
    ck_assert_msg(td_wait_reports(&d, 1, 15000) == 1, "no report: %s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "\nGET /root/worker\n"), "%s", r);
    ck_assert_msg(strstr(r, "in handle_slow_request\n") && strstr(r, "in wait_for_database\n"),
                  "%s", r);
    free(r);

    /* The directories it made as root are the user's; the report is
     * written by the user. */
    struct stat st;
    ck_assert_int_eq(stat(d.out, &st), 0);
    ck_assert_uint_eq(st.st_uid, 65534);
    ck_assert_int_eq(td_stop(&d), 0);
    close(n.fd);
    td_cleanup(&d);
}
END_TEST

/*
 * Why CAP_DAC_READ_SEARCH is kept: a root worker's thread blocked in
 * epoll_wait is read through /proc/PID/task/TID/syscall (mode 0400, root's)
 * without being stopped, so the worker sees no EINTR -- sampled many
 * times by a daemon that dropped to nobody.  With CAP_SYS_PTRACE alone the
 * thread is left alone instead (below), without its native stack.
 */
START_TEST(dropped_daemon_reads_epoll_thread_without_stopping_it)
{
    struct tdaemon d;
    struct tworker w;
    char prog[600];
    const char *line;
    int samples = 0;

    snprintf(prog, sizeof(prog), "%s/transparent_worker", env_or_die("DEEP_WORKER_DIR"));
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_write_conf(&d, "[dogslow]\nuser = nobody\n");
    d.switch_user = true;
    td_launch(&d, "0.1", (const char *const[]){"--follow", "200", NULL});
    ck_assert_msg(td_wait_log(&d, "switched to user nobody", 3000), "%s", td_log(&d));
    tw_start(&w, &d, prog, (const char *const[]){"epoll", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 15000));
    line = tw_expect(&w, "", 20000);
    ck_assert_msg(line && !strncmp(line, "ok ", 3), "worker: %s\nlog:\n%s", line ? line : "-",
                  td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    for (long long end = now_ms() + 10000; now_ms() < end && !samples; sleep_ms(50)) {
        char *r = td_read_report(&d, NULL);
        const char *p = r ? strstr(r, "(sampled ") : NULL;
        if (p)
            (void)!sscanf(p, "(sampled %d times", &samples);
        free(r);
    }
    /* Many samples, each a chance for EINTR (check_transparency asks for
     * more; this is about the capability, under any load). */
    ck_assert_msg(samples >= 20, "only %d samples\n%s", samples, td_log(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/*
 * Exactly CAP_SYS_PTRACE (a unit drop-in without CAP_DAC_READ_SEARCH): the
 * syscall file of a root worker's thread is not readable, so a thread
 * blocked in epoll_wait is recognised by its wchan and left alone -- its
 * report says why it has no native stack, and the worker sees no EINTR
 * although the daemon samples it over and over.
 */
static void launch_as_nobody(struct tdaemon *d, const char *caps, const char *conf);

START_TEST(ptrace_only_daemon_leaves_epoll_thread_alone)
{
    struct tdaemon d;
    struct tworker w;
    char prog[600];
    const char *line;
    char *r = NULL;

    snprintf(prog, sizeof(prog), "%s/transparent_worker", env_or_die("DEEP_WORKER_DIR"));
    td_init(&d);
    launch_as_nobody(&d, "--inh-caps=+sys_ptrace --ambient-caps=+sys_ptrace",
                     "[dogslow]\nfollow_hz = 200\n");
    ck_assert_uint_eq(proc_caps(d.pid, "CapEff"), 1ull << CAP_SYS_PTRACE_BIT);
    ck_assert_uint_eq(proc_caps(d.pid, "CapPrm"), 1ull << CAP_SYS_PTRACE_BIT);
    tw_start(&w, &d, prog, (const char *const[]){"epoll", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 15000));
    line = tw_expect(&w, "", 20000);
    ck_assert_msg(line && !strncmp(line, "ok ", 3), "worker: %s\nlog:\n%s", line ? line : "-",
                  td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    for (long long end = now_ms() + 10000; now_ms() < end && !r; sleep_ms(50))
        r = td_find_report_with(&d, "thread blocked in epoll_wait: not stopped");
    ck_assert_msg(r != NULL, "no report saying the thread was left alone:\n%s", td_log(&d));
    free(r);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* tmpfiles.d makes /run/dogslow the dogslow user's: a daemon started as
 * root that switches to that user accepts it as its socket directory (and
 * refuses one of some other user's). */
START_TEST(socket_dir_of_the_target_user_is_accepted)
{
    struct tdaemon d;
    char out[4096];
    int rc;

    td_init(&d);
    ck_assert_int_eq(chown(d.dir, 65534, 65534), 0);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_write_conf(&d, "[dogslow]\nuser = nobody\n");
    d.switch_user = true;
    td_launch(&d, "1", NULL);
    ck_assert_msg(td_wait_log(&d, "switched to user nobody", 3000), "%s", td_log(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    /* The same directory when staying root: not ours, refused. */
    rc = run_capture((const char *const[]){env_or_die("DOGSLOWD"), "-f", "-c", d.conf, "--user",
                                           "root", "--socket", d.sock, NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "cannot use the directory of"), "rc %d: %s", rc, out);
    td_cleanup(&d);
}
END_TEST

/* user = an unknown name is a configuration error, not a silent root. */
START_TEST(unknown_user_is_refused)
{
    struct tdaemon d;
    char out[4096];
    int rc;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nuser = no-such-user-dogslow\n");
    rc = run_capture((const char *const[]){env_or_die("DOGSLOWD"), "-n", "-c", d.conf, NULL}, NULL,
                     out, sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "user: unknown user 'no-such-user-dogslow'"), "rc %d: %s",
                  rc, out);
    td_cleanup(&d);
}
END_TEST

/* Start the daemon as nobody through setpriv with these capability
 * options, as systemd's User= and AmbientCapabilities= would. */
static void launch_as_nobody(struct tdaemon *d, const char *caps, const char *conf)
{
    char wrapper[320];
    const char *real = env_or_die("DOGSLOWD");
    FILE *f;

    /* Sticky and world-writable, like /tmp: the daemon (nobody) makes its
     * report and state directories here. */
    ck_assert_int_eq(chmod(d->dir, 01777), 0);
    snprintf(wrapper, sizeof(wrapper), "%s/as-nobody", d->dir);
    f = fopen(wrapper, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\nexec %s --reuid=nobody --regid=nogroup --clear-groups %s %s \"$@\"\n",
            SETPRIV, caps, real);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(wrapper, 0755), 0);
    td_write_conf(d, conf);
    ck_assert_int_eq(chmod(d->conf, 0644), 0);
    setenv("DOGSLOWD", wrapper, 1);
    td_launch(d, "0.3", NULL);
    setenv("DOGSLOWD", real, 1);
}

/*
 * As the service starts it: a non-root user with CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH as ambient capabilities.  It keeps the two, clears
 * the ambient set (it runs nothing), and watches a root worker.
 */
START_TEST(service_like_start_with_ambient_capabilities)
{
    struct tdaemon d;
    struct tworker w;
    const unsigned long long keep =
        (1ull << CAP_SYS_PTRACE_BIT) | (1ull << CAP_DAC_READ_SEARCH_BIT);
    int pid, tid;

    td_init(&d);
    launch_as_nobody(&d, "--inh-caps=+sys_ptrace,+dac_read_search,+net_admin "
                         "--ambient-caps=+sys_ptrace,+dac_read_search,+net_admin", "");
    ck_assert_msg(td_wait_log(&d, "with CAP_SYS_PTRACE: any user's processes may register", 3000),
                  "%s", td_log(&d));
    /* CAP_NET_ADMIN came along too, and is dropped. */
    ck_assert_uint_eq(proc_caps(d.pid, "CapEff"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapPrm"), keep);
    ck_assert_uint_eq(proc_caps(d.pid, "CapAmb"), 0);
    ck_assert_uint_eq(proc_caps(d.pid, "CapInh"), 0);
    tw_start(&w, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "1.5", "GET", "/root/under/service", NULL});
    parse_ready(tw_expect(&w, "ready", 15000), &pid, &tid);
    ck_assert_msg(td_wait_reports(&d, 1, 15000) == 1, "no report: %s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    char *r = td_find_report_with(&d, "\nGET /root/under/service\n");
    ck_assert_msg(r && strstr(r, "in handle_slow_request\n"), "%s", r ? r : td_log(&d));
    free(r);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/*
 * Started as an ordinary user (nobody, no capabilities: as in a container
 * without extra capabilities): that user's worker is reported, a root
 * worker is refused with the reason.
 */
START_TEST(unprivileged_daemon_serves_its_own_user)
{
    struct tdaemon d;
    struct tworker mine, root;
    char line[1024];
    int pid, tid;

    if (geteuid() != 0 || access(SETPRIV, X_OK) != 0) {
        fprintf(stderr, "unprivileged_daemon_serves_its_own_user: needs root and setpriv\n");
        return;
    }
    td_init(&d);
    launch_as_nobody(&d, "--inh-caps=-all --bounding-set=-all", "");

    ck_assert_uint_eq(proc_caps(d.pid, "CapEff"), 0);
    ck_assert(proc_status(d.pid, "Uid", line, sizeof(line)));
    ck_assert_str_eq(line, "65534\t65534\t65534\t65534");

    tw_start(&mine, &d, SETPRIV,
             (const char *const[]){"--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   env_or_die("TEST_WORKER"), "slow", "1.5", "GET", "/mine", NULL});
    parse_ready(tw_expect(&mine, "ready", 15000), &pid, &tid);
    tw_start(&root, &d, env_or_die("TEST_WORKER"),
             (const char *const[]){"slow", "0.5", "GET", "/root", NULL});
    ck_assert_msg(tw_expect(&root, "register-failed", 5000), "root worker was not refused");
    ck_assert_msg(strstr(root.line, "another user"), "%s", root.line);
    ck_assert_msg(td_wait_reports(&d, 1, 15000) == 1, "no report: %s", td_log(&d));
    ck_assert_int_eq(tw_wait(&mine, 10000), 0);
    tw_wait(&root, 10000);
    char *r = td_find_report_with(&d, "\nGET /mine\n");
    ck_assert_msg(r && strstr(r, "in handle_slow_request\n"), "%s", r ? r : td_log(&d));
    free(r);
    ck_assert_int_eq(td_count_reports(&d), 1);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* ---- unit files and man pages ------------------------------------------------ */

static const char *srcdir(void)
{
    return env_or_die("TOP_SRCDIR");
}

/* The service file with ExecStart= pointing at the built daemon, and the
 * socket unit, in dir. */
static void write_units(const char *dir, char *ret_service, size_t size)
{
    char path[600], line[1024], bindir[600];
    FILE *in, *out;

    snprintf(bindir, sizeof(bindir), "%s", env_or_die("DOGSLOWD"));
    dirname(bindir);
    snprintf(path, sizeof(path), "%s/systemd/dogslowd.service.in", srcdir());
    in = fopen(path, "r");
    ck_assert_msg(in != NULL, "%s: %s", path, strerror(errno));
    snprintf(ret_service, size, "%s/dogslowd.service", dir);
    out = fopen(ret_service, "w");
    ck_assert_ptr_nonnull(out);
    while (fgets(line, sizeof(line), in)) {
        char *at = strstr(line, "@sbindir@");
        if (at) {
            *at = '\0';
            fprintf(out, "%s%s%s", line, bindir, at + 9);
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    snprintf(line, sizeof(line), "cp '%s/systemd/dogslowd.socket' '%s/'", srcdir(), dir);
    ck_assert_int_eq(system(line), 0);
}

START_TEST(units_verify_and_security_score)
{
    char dir[] = "/tmp/dogslow-test-XXXXXX", service[700], sock[700], out[65536];
    const char *score;
    double exposure;
    int rc;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_units(dir, service, sizeof(service));
    snprintf(sock, sizeof(sock), "%s/dogslowd.socket", dir);
    rc = run_capture((const char *const[]){ANALYZE, "verify", "--man=no", service, sock, NULL},
                     NULL, out, sizeof(out), 60000);
    ck_assert_msg(rc == 0 && !out[0], "systemd-analyze verify: rc %d:\n%.3000s", rc, out);

    rc = run_capture((const char *const[]){ANALYZE, "security", "--offline=yes", service, NULL},
                     NULL, out, sizeof(out), 60000);
    score = strstr(out, "Overall exposure level for dogslowd.service: ");
    ck_assert_msg(score, "rc %d:\n%s", rc, out);
    exposure = strtod(score + strlen("Overall exposure level for dogslowd.service: "), NULL);
    ck_assert_msg(exposure > 0 && exposure <= 2.3, "exposure %.1f > 2.3:\n%.3000s", exposure, out);
    /* What the README says is left, and nothing more. */
    ck_assert_msg(strstr(out, "✓ User=/DynamicUser="), "%s", out);
    ck_assert_msg(strstr(out, "✓ CapabilityBoundingSet=~CAP_SYS_ADMIN"), "%s", out);
    ck_assert_msg(strstr(out, "✓ ProtectSystem="), "%s", out);
    snprintf(out, sizeof(out), "rm -rf '%s'", dir);
    (void)!system(out);
}
END_TEST

START_TEST(man_pages_lint_clean)
{
    static const char *const pages[] = {"dogslowd.8", "dogslow.conf.5", "dogslowctl.1",
                                        "libdogslow.3"};
    char path[600], out[16384];

    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        int rc;

        snprintf(path, sizeof(path), "%s/man/%s", srcdir(), pages[i]);
        rc = run_capture((const char *const[]){MANDOC, "-Tlint", "-Wwarning", path, NULL}, NULL,
                         out, sizeof(out), 30000);
        ck_assert_msg(rc == 0 && !out[0], "%s: rc %d\n%s", pages[i], rc, out);
        /* It renders, with a NAME section naming the page. */
        rc = run_capture((const char *const[]){MANDOC, "-Tmarkdown", path, NULL}, NULL, out,
                         sizeof(out), 30000);
        ck_assert_msg(rc == 0 && strstr(out, "NAME") && strstr(out, "DESCRIPTION"),
                      "%s: rc %d\n%.2000s", pages[i], rc, out);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service");
    TCase *tc;

#ifdef HAVE_LIBSYSTEMD
    tc = tcase_create("sd_notify");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, notify_ready_status_watchdog_stopping);
    tcase_add_test(tc, watchdog_only_when_asked);
    tcase_add_test(tc, stopping_on_startup_failure);
    tcase_add_test(tc, socket_activation_uses_the_passed_socket);
    tcase_add_test(tc, socket_activation_ignores_a_wrong_socket);
    suite_add_tcase(s, tc);
#else
    fprintf(stderr, "built without libsystemd: sd_notify and socket activation not tested\n");
#endif

    tc = tcase_create("privileges");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_user_is_refused);
    if (geteuid() == 0) {
        tcase_add_test(tc, root_drops_to_user_with_ptrace_only);
        tcase_add_test(tc, socket_dir_of_the_target_user_is_accepted);
        tcase_add_test(tc, dropped_daemon_reads_epoll_thread_without_stopping_it);
        tcase_add_test(tc, unprivileged_daemon_serves_its_own_user);
        tcase_add_test(tc, service_like_start_with_ambient_capabilities);
        tcase_add_test(tc, ptrace_only_daemon_leaves_epoll_thread_alone);
        tcase_add_test(tc, root_drops_to_exactly_cap_sys_ptrace);
    } else {
        fprintf(stderr, "not root: privilege drop tests not run\n");
    }
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 120);
    if (access(ANALYZE, X_OK) == 0)
        tcase_add_test(tc, units_verify_and_security_score);
    else
        fprintf(stderr, "no %s: unit files not checked\n", ANALYZE);
    tcase_add_test(tc, man_pages_lint_clean);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
