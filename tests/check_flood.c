/* SPDX-License-Identifier: MIT */
/*
 * A connection flood from one local user (issue 14): the socket is 0666, so
 * any user may connect.  One who opens thousands of connections and never
 * says hello must not lock the other users out, nor fill the disk with log
 * lines; and what it held must be released when it lets go.
 *
 * The daemon runs as root with its defaults (td_start); the flooder is a
 * child that drops to nobody.  Registrations here are made by hand, as
 * libdogslow makes them (connect, HELLO, WELCOME with the scoreboard), so
 * that the time from connect() to WELCOME can be measured; a real worker
 * (tests/workers/test_worker) registers and is reported during the flood as
 * well.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "core.h"
#include "harness.h"
#include "proto.h"
#include "run_suite.h"
#include "util.h"

#define NOBODY 65534
/* More than the cap the daemon had before per-user caps (max_workers + 16
 * = 4112 with the defaults), as in the report. */
#define FLOOD_CONNS  4200
#define FLOOD_NOFILE 5000

/* The answer to a registration must come within this, while one user
 * floods; a sanitizer build is several times slower. */
static double answer_limit_ms(void)
{
    return getenv("DOGSLOW_SANITIZERS") ? 500.0 : 100.0;
}

static double ms_since(const struct timespec *a)
{
    struct timespec b;

    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* A connection to the daemon; connect() waits at most timeout_ms (a unix
 * socket's connect() blocks while the backlog is full). */
static int connect_to(const char *sock, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    dsl_strlcpy(sa.sun_path, sock, sizeof(sa.sun_path));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* Wait for one message and return its length, or -errno (-ECONNRESET: the
 * daemon closed the connection without a word). */
static ssize_t recv_one(int fd, uint8_t *buf, size_t size, int *ret_fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int nfds, r;
    bool ctrunc;
    ssize_t n;

    r = poll(&pfd, 1, timeout_ms);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    n = dsl_recv_fd(fd, buf, size, ret_fd, &nfds, &ctrunc);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ECONNRESET;
    return n;
}

/*
 * Register this process the way libdogslow does.  Returns the connection
 * (the registration lasts while it is open) or -errno, with the daemon's
 * reason in why; *ret_ms is the time from connect() to WELCOME.
 */
static int register_raw(const char *sock, const char *program, double *ret_ms, char *why,
                        size_t size)
{
    uint8_t buf[DSL_HDR_SIZE + DSL_PAYLOAD_MAX];
    struct dsl_hello h = {.nslots = 4};
    struct dsl_writer wr;
    struct dsl_hdr hdr;
    struct timespec t0;
    int fd, memfd = -1, n;
    ssize_t got;

    why[0] = '\0';
    dsl_strlcpy(h.program, program, sizeof(h.program));
    n = dsl_hello_encode(&wr, &h);
    if (n < 0)
        return n;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fd = connect_to(sock, 5000);
    if (fd < 0) {
        snprintf(why, size, "connect: %s", strerror(-fd));
        return fd;
    }
    if (send(fd, wr.buf, (size_t)n, MSG_NOSIGNAL) != n) {
        int r = -errno;
        snprintf(why, size, "send: %s", strerror(errno));
        close(fd);
        return r;
    }
    got = recv_one(fd, buf, sizeof(buf), &memfd, 5000);
    *ret_ms = ms_since(&t0);
    if (memfd >= 0)
        close(memfd);
    if (got < 0) {
        snprintf(why, size, "%s",
                 got == -ECONNRESET ? "the daemon closed the connection without an answer"
                                    : strerror((int)-got));
        close(fd);
        return (int)got;
    }
    memcpy(&hdr, buf, sizeof(hdr));
    if (got < (ssize_t)DSL_HDR_SIZE || dsl_hdr_check(&hdr) < 0) {
        snprintf(why, size, "an answer that is not a message");
        close(fd);
        return -EPROTO;
    }
    if (hdr.type == DSL_MSG_ERROR) {
        struct dsl_error e;

        if (dsl_error_decode(buf + DSL_HDR_SIZE, hdr.len, &e) < 0)
            e = (struct dsl_error){.err = EPROTO, .message = "malformed refusal"};
        snprintf(why, size, "refused: %s", e.message);
        close(fd);
        return -(e.err > 0 ? e.err : EPROTO);
    }
    if (hdr.type != DSL_MSG_WELCOME || memfd < 0) {
        snprintf(why, size, "unexpected answer (type %u)", (unsigned)hdr.type);
        close(fd);
        return -EPROTO;
    }
    return fd;
}

/* Closed by the daemon within timeout_ms? (A refused connection is closed
 * at once; one that waits for its hello is not.) */
static bool closed_by_daemon(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};

    return poll(&pfd, 1, timeout_ms) == 1;
}

/*
 * A dogslowctl status request, as dogslowctl sends it.  Returns the CTL_END
 * status (0 or an errno) when the daemon answered, -ECONNRESET when it
 * closed the connection without a word, another -errno on failure.
 */
static int ctl_request_raw(const char *sock)
{
    struct dsl_ctl_request req = {.cmd = DSL_CTL_STATUS};
    uint8_t buf[DSL_HDR_SIZE + DSL_PAYLOAD_MAX];
    struct dsl_writer wr;
    int fd, n, r = -EPROTO;

    n = dsl_ctl_request_encode(&wr, &req);
    if (n < 0)
        return n;
    fd = connect_to(sock, 2000);
    if (fd < 0)
        return fd;
    if (send(fd, wr.buf, (size_t)n, MSG_NOSIGNAL) != n) {
        /* Closed at once: the request had nowhere to go. */
        r = errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
        close(fd);
        return r;
    }
    for (;;) {
        struct dsl_hdr hdr;
        int passed = -1;
        ssize_t got = recv_one(fd, buf, sizeof(buf), &passed, 5000);

        if (passed >= 0)
            close(passed);
        if (got < 0) {
            r = (int)got;
            break;
        }
        memcpy(&hdr, buf, sizeof(hdr));
        if (got < (ssize_t)DSL_HDR_SIZE || dsl_hdr_check(&hdr) < 0)
            break;
        if (hdr.type == DSL_MSG_CTL_END) {
            struct dsl_ctl_end end;

            r = dsl_ctl_end_decode(buf + DSL_HDR_SIZE, hdr.len, &end) == 0 ? end.err : -EPROTO;
            break;
        }
    }
    close(fd);
    return r;
}

/* ---- a child running as nobody, driven over two pipes -------------------- */

struct nobody {
    pid_t pid;
    int to;   /* commands to the child, one line each */
    int from; /* the child's report lines */
    char line[512];
};

/* In the child: credentials of nobody, after raising the descriptor limit
 * (which nobody could not).  0 or -errno. */
static int become_nobody(rlim_t nofile)
{
    struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};

    if (nofile && setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
        return -errno;
    if (getuid() != NOBODY || geteuid() != NOBODY)
        return -EPERM;
    /* After the switch: a credential change clears both.  The child must
     * not outlive a test that failed half-way, and a process that is not
     * dumpable is not registered. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_DUMPABLE, 1);
    return 0;
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)!write(fd, buf, (size_t)n);
}

/* A line from fd within timeout_ms, without its newline; false if none. */
static bool read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    size_t len = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = end - now_ms();
        char c;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || read(fd, &c, 1) != 1)
            return false;
        if (c == '\n') {
            buf[len] = '\0';
            return true;
        }
        if (len < size - 1)
            buf[len++] = c;
    }
}

/* Has a command come (without waiting)?  It is read into buf. */
static bool command_waiting(int fd, char *buf, size_t size)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, 0) == 1 && read_line(fd, buf, size, 1000);
}

static void nobody_start(struct nobody *n, const char *sock, rlim_t nofile,
                         void (*fn)(const char *sock, int in, int out))
{
    int to[2], from[2];

    ck_assert_int_eq(pipe2(to, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(from, O_CLOEXEC), 0);
    n->pid = fork();
    ck_assert_int_ge(n->pid, 0);
    if (n->pid == 0) {
        int r;

        close(to[1]);
        close(from[0]);
        r = become_nobody(nofile);
        if (r < 0) {
            say(from[1], "cannot become nobody: %s", strerror(-r));
            _exit(1);
        }
        fn(sock, to[0], from[1]);
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    n->to = to[1];
    n->from = from[0];
}

/* The child's next line, which must start with prefix. */
static const char *nobody_expect(struct nobody *n, const char *prefix, int timeout_ms)
{
    if (!read_line(n->from, n->line, sizeof(n->line), timeout_ms))
        ck_abort_msg("the child running as nobody said nothing within %d ms (waiting for '%s')",
                     timeout_ms, prefix);
    ck_assert_msg(!strncmp(n->line, prefix, strlen(prefix)), "nobody: '%s', expected '%s...'",
                  n->line, prefix);
    return n->line;
}

static void nobody_tell(struct nobody *n, const char *cmd)
{
    say(n->to, "%s", cmd);
}

static int nobody_wait(struct nobody *n)
{
    int st;

    close(n->to);
    for (long long end = now_ms() + 10000; now_ms() < end; sleep_ms(10)) {
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            close(n->from);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, &st, 0);
    close(n->from);
    return -1;
}

/* Register as nobody again and again until the daemon takes it (what the
 * flood held is released as the daemon notices each close), within 3 s. */
static void register_until_welcome(const char *sock, int out, int *ret_fd)
{
    char why[300] = "";
    double ms = 0;
    int tries = 0, fd = -1;

    for (long long end = now_ms() + 3000; now_ms() < end; sleep_ms(20)) {
        tries++;
        fd = register_raw(sock, "nobody-legit", &ms, why, sizeof(why));
        if (fd >= 0)
            break;
    }
    if (fd >= 0)
        say(out, "registered in %.1f ms after %d tries", ms, tries);
    else
        say(out, "not registered after %d tries: %s", tries, why);
    *ret_fd = fd;
}

/*
 * The flooder: FLOOD_CONNS connections that never say hello.  Any the
 * daemon closes is opened again at once, as an attacker would, so the flood
 * goes on for as long as the test wants ("stop").  Then it closes them all
 * and registers one legitimate process, held until "exit".
 */
static void flooder(const char *sock, int in, int out)
{
    static struct pollfd pfd[FLOOD_CONNS];
    unsigned long reopened = 0, failed = 0;
    char cmd[64];
    int opened = 0, fd;

    for (int i = 0; i < FLOOD_CONNS; i++) {
        pfd[i].fd = connect_to(sock, 2000);
        pfd[i].events = POLLIN | POLLRDHUP;
        if (pfd[i].fd >= 0)
            opened++;
        else
            failed++;
    }
    say(out, "flooding with %d connections (%lu failed to connect)", opened, failed);
    while (!command_waiting(in, cmd, sizeof(cmd))) {
        int n = poll(pfd, FLOOD_CONNS, 20);

        for (int i = 0; n > 0 && i < FLOOD_CONNS; i++) {
            if (pfd[i].fd >= 0 && !pfd[i].revents)
                continue;
            if (pfd[i].fd >= 0)
                close(pfd[i].fd);
            /* Not waiting long: a full backlog is the daemon's to drain. */
            pfd[i].fd = connect_to(sock, 100);
            reopened++;
        }
    }
    for (int i = 0; i < FLOOD_CONNS; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    say(out, "stopped after %lu connections opened again", reopened);
    register_until_welcome(sock, out, &fd);
    (void)read_line(in, cmd, sizeof(cmd), 10000); /* "exit" */
    if (fd >= 0)
        close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* dogslowctl status, as root. */
static void ctl_status(struct tdaemon *d, char *out, size_t size)
{
    const char *argv[] = {env_or_die("DOGSLOWCTL"), "--socket", d->sock, "status", NULL};
    int rc = run_capture(argv, NULL, out, size, 10000);

    ck_assert_msg(rc == 0, "dogslowctl status: rc %d: %s", rc, out);
}

/* The number after needle in text, or -1. */
static long number_after(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);

    return p ? strtol(p + strlen(needle), NULL, 10) : -1;
}

START_TEST(flood_of_half_open_connections_locks_nobody_out)
{
    struct tdaemon d;
    struct nobody fl;
    struct tworker w;
    const char *wargs[] = {"slow", "1.0", "GET", "/during-the-flood", NULL};
    char why[300], status[16384];
    double ms, worst = 0;
    off_t log_before, grown;
    long waiting, refused;

    td_init(&d);
    /* nobody must reach the socket (0666) in the test's directory. */
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_launch(&d, "0.3", NULL);
    log_before = file_size(d.log);

    nobody_start(&fl, d.sock, FLOOD_NOFILE, flooder);
    fprintf(stderr, "flood: %s\n", nobody_expect(&fl, "flooding with ", 60000));
    /* Let the re-opening get going: the daemon refuses as fast as it can. */
    sleep_ms(300);

    /* Another user (root) registers, a few times over the flood: each answer
     * comes at once. */
    for (int i = 0; i < 5; i++) {
        int fd = register_raw(d.sock, "root-during-flood", &ms, why, sizeof(why));

        ck_assert_msg(fd >= 0, "root's registration %d during the flood failed after %.1f ms: %s",
                      i + 1, ms, why);
        fprintf(stderr, "flood: root's registration %d: WELCOME %.2f ms after connect()\n", i + 1,
                ms);
        if (ms > worst)
            worst = ms;
        close(fd);
        sleep_ms(100);
    }
    fprintf(stderr, "flood: worst time from connect to WELCOME: %.2f ms (limit %.0f ms)\n", worst,
            answer_limit_ms());
    ck_assert_msg(worst < answer_limit_ms(),
                  "a registration waited %.1f ms for its WELCOME during the flood (limit %.0f ms)",
                  worst, answer_limit_ms());

    /* A real worker (libdogslow) registers and is reported meanwhile. */
    tw_start(&w, &d, getenv("TEST_WORKER"), wargs);
    /* Its first line: "ready", or why it could not register. */
    const char *line = tw_expect(&w, "", 5000);
    ck_assert_msg(line && !strncmp(line, "ready pid=", 10), "the worker did not register: %s",
                  line ? line : "(nothing)");
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "no report during the flood:\n%s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);

    /* nobody holds its cap's worth of connections, no more; the rest were
     * refused (and counted). */
    ctl_status(&d, status, sizeof(status));
    waiting = number_after(status, "connections waiting to register: ");
    refused = number_after(strstr(status, "connections waiting to register: ") ?: "", "; ");
    fprintf(stderr, "flood: %ld connections waiting to register, %ld refused so far\n", waiting,
            refused);
    ck_assert_msg(waiting > 0 && waiting <= 256, "%s", status);
    ck_assert_msg(refused >= FLOOD_CONNS - 256, "%s", status);

    /* Refusals are logged at most once a second, saying how many were not. */
    ck_assert_msg(td_wait_log(&d, " more suppressed", 5000), "%s", td_log(&d));

    /* nobody lets go: what it held is released, and one legitimate process
     * of its own registers. */
    nobody_tell(&fl, "stop");
    fprintf(stderr, "flood: %s\n", nobody_expect(&fl, "stopped after ", 10000));
    fprintf(stderr, "flood: nobody %s\n", nobody_expect(&fl, "registered in ", 10000));
    nobody_tell(&fl, "exit");
    ck_assert_int_eq(nobody_wait(&fl), 0);

    grown = file_size(d.log) - log_before;
    fprintf(stderr, "flood: the daemon's log grew by %lld bytes\n", (long long)grown);
    ck_assert_msg(grown < 64 * 1024, "the log grew by %lld bytes during the flood:\n%s",
                  (long long)grown, td_log(&d));
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/*
 * The caps one at a time, small: max_connections_per_uid = 3 (a dogslowctl
 * that has not sent its command counts too) and max_workers_per_uid = 2,
 * and both are released when nobody lets go.
 */
static void capped_user(const char *sock, int in, int out)
{
    int silent[4], reg[3] = {-1, -1, -1}, r;
    pid_t holder[3];
    char cmd[64], why[300];
    double ms;

    /* Three silent connections are kept (waiting for their hello); the
     * fourth is closed at once. */
    for (int i = 0; i < 4; i++)
        silent[i] = connect_to(sock, 2000);
    say(out, "silent kept=%d,%d,%d fourth closed=%d",
        silent[0] >= 0 && !closed_by_daemon(silent[0], 200),
        silent[1] >= 0 && !closed_by_daemon(silent[1], 0),
        silent[2] >= 0 && !closed_by_daemon(silent[2], 0),
        silent[3] >= 0 && closed_by_daemon(silent[3], 2000));
    /* So is a dogslowctl's: until its command is read, it is a connection
     * like any other. */
    r = ctl_request_raw(sock);
    say(out, "ctl at the cap: %s",
        r == -ECONNRESET ? "closed without an answer" : strerror(abs(r)));
    (void)read_line(in, cmd, sizeof(cmd), 10000); /* "release" */
    for (int i = 0; i < 4; i++)
        close(silent[i]);
    /* Below the cap it is answered (nobody may not use dogslowctl) and
     * closed: it holds nothing. */
    for (long long end = now_ms() + 3000; now_ms() < end; sleep_ms(20)) {
        r = ctl_request_raw(sock);
        if (r != -ECONNRESET)
            break;
    }
    say(out, "ctl below the cap: %s",
        r == -ECONNRESET ? "closed without an answer" : strerror(abs(r)));

    /* Two registered processes; a third is refused; when one goes, the
     * third gets in.  (One registration per process: each holder is a
     * process of its own, reporting through out.) */
    for (int i = 0; i < 3; i++) {
        holder[i] = fork();
        if (holder[i] == 0) {
            int fd = -1;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (i < 2) {
                /* The silent ones may take a moment to be forgotten. */
                register_until_welcome(sock, out, &fd);
            } else {
                fd = register_raw(sock, "third", &ms, why, sizeof(why));
                if (fd >= 0)
                    say(out, "third registered");
                else
                    say(out, "third %s", why);
            }
            pause();
            _exit(0);
        }
        sleep_ms(300);
    }
    (void)read_line(in, cmd, sizeof(cmd), 10000); /* "free one" */
    kill(holder[0], SIGKILL);
    waitpid(holder[0], NULL, 0);
    register_until_welcome(sock, out, &reg[0]);
    (void)read_line(in, cmd, sizeof(cmd), 10000); /* "exit" */
    for (int i = 1; i < 3; i++) {
        kill(holder[i], SIGKILL);
        waitpid(holder[i], NULL, 0);
    }
    if (reg[0] >= 0)
        close(reg[0]);
}

/*
 * A worker that starts while the daemon's queue of connections is full (the
 * daemon was busy: here, stopped) is not refused: libdogslow tries again
 * until the daemon drains the queue, within dogslow_register()'s wait.
 */
START_TEST(full_queue_delays_a_registration_but_does_not_fail_it)
{
    struct tdaemon d;
    struct tworker w;
    const char *wargs[] = {"slow", "1.0", "GET", "/after-the-queue", NULL};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fill[1024], nfill = 0;

    td_init(&d);
    td_launch(&d, "0.3", NULL);
    dsl_strlcpy(sa.sun_path, d.sock, sizeof(sa.sun_path));
    ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
    while (nfill < (int)(sizeof(fill) / sizeof(fill[0]))) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        ck_assert_int_ge(fd, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            ck_assert_msg(errno == EAGAIN, "connect: %s", strerror(errno));
            close(fd);
            break;
        }
        fill[nfill++] = fd;
    }
    fprintf(stderr, "flood: the queue was full after %d connections\n", nfill);
    ck_assert_int_lt(nfill, (int)(sizeof(fill) / sizeof(fill[0])));

    tw_start(&w, &d, getenv("TEST_WORKER"), wargs);
    sleep_ms(300);
    ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
    /* Its first line: "ready", or why it could not register. */
    const char *line = tw_expect(&w, "", 5000);
    ck_assert_msg(line && !strncmp(line, "ready pid=", 10), "the worker did not register: %s",
                  line ? line : "(nothing)");
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "no report:\n%s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(per_user_caps_hold_and_are_released)
{
    struct tdaemon d;
    struct nobody n;
    char why[300];
    double ms;
    int fd;

    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_write_conf(&d, "[dogslow]\nmax_connections_per_uid = 3\nmax_connections = 8\n"
                      "max_workers_per_uid = 2\n");
    td_launch(&d, "5", NULL);
    nobody_start(&n, d.sock, 0, capped_user);

    nobody_expect(&n, "silent kept=1,1,1 fourth closed=1", 10000);
    nobody_expect(&n, "ctl at the cap: closed without an answer", 10000);
    /* Meanwhile root is not affected by nobody's cap. */
    fd = register_raw(d.sock, "root", &ms, why, sizeof(why));
    ck_assert_msg(fd >= 0, "root refused while nobody is at its cap: %s", why);
    close(fd);
    ck_assert_msg(td_wait_log(&d, "max_connections_per_uid", 2000), "%s", td_log(&d));

    nobody_tell(&n, "release");
    nobody_expect(&n, "ctl below the cap: Permission denied", 10000);
    nobody_expect(&n, "registered in ", 10000);
    nobody_expect(&n, "registered in ", 10000);
    nobody_expect(&n, "third refused: too many registered processes of this user", 10000);
    fd = register_raw(d.sock, "root", &ms, why, sizeof(why));
    ck_assert_msg(fd >= 0, "root refused while nobody is at its cap: %s", why);
    close(fd);
    nobody_tell(&n, "free one");
    nobody_expect(&n, "registered in ", 10000);
    nobody_tell(&n, "exit");
    ck_assert_int_eq(nobody_wait(&n), 0);
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* uids.c's home slot, to pick uids that collide. */
static size_t home_of(uid_t uid)
{
    return (size_t)(((uint32_t)uid * 2654435761u) >> (32 - 13));
}

/*
 * The per-user table against a plain array, through many collisions and
 * deletions (a deletion moves entries back: one moved wrongly would be
 * lost, and its user's count with it), then full.
 */
START_TEST(uid_table_keeps_every_count)
{
    static struct uid_table t;
    enum { N = 96 };
    uid_t uids[N];
    uint32_t model[N] = {0};
    unsigned n = 0, seed = 1;

    /* A third of the uids share one home slot, a third the next one, a
     * third are ordinary: long runs that wrap around the table's end too. */
    for (uid_t u = 0; n < N; u++) {
        size_t h = home_of(u);
        if ((n < N / 3 && h == UIDS_SLOTS - 1) || (n >= N / 3 && n < 2 * N / 3 && h == 0) ||
            (n >= 2 * N / 3 && u % 7919 == 0))
            uids[n++] = u;
    }
    for (int op = 0; op < 200000; op++) {
        unsigned i;
        struct uid_use *u;

        seed = seed * 1103515245u + 12345u;
        i = (seed >> 8) % N;
        if (model[i] && (seed >> 20) % 2) {
            u = uids_find(&t, uids[i], false);
            ck_assert_ptr_nonnull(u);
            u->conns--;
            model[i]--;
            uids_forget_if_unused(&t, u);
        } else {
            u = uids_find(&t, uids[i], true);
            ck_assert_ptr_nonnull(u);
            u->conns++;
            model[i]++;
        }
        if (op % 97 == 0 || op > 199000) {
            unsigned used = 0;

            for (unsigned k = 0; k < N; k++) {
                u = uids_find(&t, uids[k], false);
                ck_assert_msg(model[k] ? u && u->conns == model[k] : !u,
                              "op %d: uid %u counts %u, the table %d", op, (unsigned)uids[k],
                              model[k], u ? (int)u->conns : -1);
                used += model[k] != 0;
            }
            ck_assert_uint_eq(t.n, used);
        }
    }
    /* Full: a new user is turned away, a known one is not; a user that goes
     * makes room. */
    memset(&t, 0, sizeof(t));
    for (uid_t u = 0; u < UIDS_MAX; u++)
        uids_find(&t, 100000 + u, true)->workers = 1;
    ck_assert_uint_eq(t.n, UIDS_MAX);
    ck_assert_ptr_null(uids_find(&t, 1, true));
    ck_assert_ptr_nonnull(uids_find(&t, 100000 + 17, true));
    struct uid_use *u = uids_find(&t, 100000 + 17, false);
    u->workers = 0;
    uids_forget_if_unused(&t, u);
    ck_assert_ptr_nonnull(uids_find(&t, 1, true));
}
END_TEST

/* The helper itself, on a clock of the test's own. */
START_TEST(ratelimit_lets_a_burst_through_and_counts_the_rest)
{
    static struct ratelimit rl = RATELIMIT_INIT("test lines", 1000, 2);
    const uint64_t t = 5 * NSEC_PER_SEC;
    unsigned long dropped = 99;

    ck_assert(ratelimit_allow(&rl, t, &dropped));
    ck_assert_uint_eq(dropped, 0);
    ck_assert(ratelimit_allow(&rl, t + 1, &dropped));
    for (int i = 0; i < 1000; i++)
        ck_assert(!ratelimit_allow(&rl, t + 2 + (uint64_t)i, &dropped));
    /* Not before the interval is over. */
    ck_assert(!ratelimit_allow(&rl, t + NSEC_PER_SEC - 1, &dropped));
    ck_assert_uint_eq(ratelimit_flush(t + NSEC_PER_SEC - 1), 0);
    /* The next interval's first line carries the count, and only it. */
    ck_assert(ratelimit_allow(&rl, t + NSEC_PER_SEC, &dropped));
    ck_assert_uint_eq(dropped, 1001);
    ck_assert(ratelimit_allow(&rl, t + NSEC_PER_SEC + 1, &dropped));
    ck_assert_uint_eq(dropped, 0);
    /* When no line follows, the scan timer's flush says it, once. */
    ck_assert(!ratelimit_allow(&rl, t + NSEC_PER_SEC + 2, &dropped));
    ck_assert_uint_eq(ratelimit_flush(t + NSEC_PER_SEC + 3), 0);
    ck_assert_uint_eq(ratelimit_flush(t + 2 * NSEC_PER_SEC), 1);
    ck_assert_uint_eq(ratelimit_flush(t + 4 * NSEC_PER_SEC), 0);
    /* The flush line was that interval's first: one more goes. */
    ck_assert(ratelimit_allow(&rl, t + 2 * NSEC_PER_SEC + 1, &dropped));
    ck_assert_uint_eq(dropped, 0);
    ck_assert(!ratelimit_allow(&rl, t + 2 * NSEC_PER_SEC + 2, &dropped));
}
END_TEST

/* log_ratelimited() on the real clock: the line after a burst says how many
 * were left out. */
START_TEST(ratelimited_lines_say_how_many_were_suppressed)
{
    static struct ratelimit rl = RATELIMIT_INIT("flood lines", 50, 1);
    char path[] = "/tmp/dogslow-ratelimit-XXXXXX", text[4096];
    int fd = mkstemp(path), saved = dup(2);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    for (int i = 0; i < 1000; i++)
        log_ratelimited(&rl, LOG_LVL_WARN, "refusing connection %d", i);
    sleep_ms(60);
    log_ratelimited(&rl, LOG_LVL_WARN, "refusing connection %d", 1000);
    for (int i = 0; i < 10; i++)
        log_ratelimited(&rl, LOG_LVL_WARN, "refusing connection %d", 1001 + i);
    sleep_ms(60);
    ck_assert_uint_eq(ratelimit_flush(dsl_now_ns(CLOCK_MONOTONIC)), 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(strstr(text, "refusing connection 0\n"), "%s", text);
    ck_assert_msg(!strstr(text, "refusing connection 1\n"), "%s", text);
    ck_assert_msg(strstr(text, "refusing connection 1000 (999 more suppressed)\n"), "%s", text);
    ck_assert_msg(strstr(text, "flood lines: 10 more suppressed\n"), "%s", text);
    ck_assert_msg(!strstr(text, "refusing connection 1001"), "%s", text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flood");
    TCase *tc = tcase_create("flood");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, uid_table_keeps_every_count);
    tcase_add_test(tc, ratelimit_lets_a_burst_through_and_counts_the_rest);
    tcase_add_test(tc, ratelimited_lines_say_how_many_were_suppressed);
    tcase_add_test(tc, full_queue_delays_a_registration_but_does_not_fail_it);
    tcase_add_test(tc, per_user_caps_hold_and_are_released);
    tcase_add_test(tc, flood_of_half_open_connections_locks_nobody_out);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
