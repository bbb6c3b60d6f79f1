/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <link.h>
static int find_runtime(struct dl_phdr_info *info, size_t size, void *data)
{
    char *out = data;
    const char *base = strrchr(info->dlpi_name, '/');

    (void)size;
    if (base && (!strncmp(base, "/libasan.so", 11) || !strncmp(base, "/libubsan.so", 12))) {
        size_t n = strlen(out);
        snprintf(out + n, 1024 - n, "%s%s", n ? ":" : "", info->dlpi_name);
    }
    return 0;
}
#endif

const char *sanitizer_runtimes(void)
{
    static char runtimes[1024];
#if defined(__SANITIZE_ADDRESS__)
    if (!runtimes[0])
        dl_iterate_phdr(find_runtime, runtimes);
#endif
    return runtimes;
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v && *v, "%s is not set (run the tests with 'make check')", name);
    return v;
}

static bool can_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ok = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

/*
 * In the daemon's child, before exec: a mount namespace of its own where
 * /dev/log (a tmpfs /dev with the usual null, zero and urandom) and/or
 * /run/systemd/journal/socket (a tmpfs /run) lead to the test's sockets.
 * The namespace goes away with the daemon; the machine is not touched.
 */
static void private_mounts(struct tdaemon *d)
{
    static const struct {
        const char *path;
        unsigned maj, min;
    } nodes[] = {{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/urandom", 1, 9}};

    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        _exit(126);
    if (d->devlog[0]) {
        if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755") < 0)
            _exit(126);
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
            (void)mknod(nodes[i].path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min));
        if (symlink(d->devlog, "/dev/log") < 0)
            _exit(126);
    }
    if (d->journal[0]) {
        if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID, "mode=0755") < 0 ||
            mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0 ||
            symlink(d->journal, "/run/systemd/journal/socket") < 0)
            _exit(126);
    }
}

/* Does any line of the file, from byte `from` on, contain needle?  (The
 * whole file: td_log() keeps only the end of a long log.) */
static bool file_has_line_with(const char *path, off_t from, const char *needle)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t size = 0;
    bool found = false;

    if (!f)
        return false;
    if (from > 0 && fseeko(f, from, SEEK_SET) < 0) {
        fclose(f);
        return false;
    }
    while (!found && getline(&line, &size, f) >= 0)
        found = strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return found;
}

static void spawn_daemon(struct tdaemon *d, const char *timer, const char *const *extra)
{
    const char *argv[32];
    struct stat st_log;
    off_t log_from = stat(d->log, &st_log) == 0 ? st_log.st_size : 0;
    int n = 0;

    argv[n++] = env_or_die("DOGSLOWD");
    argv[n++] = "--foreground";
    argv[n++] = "--socket";
    argv[n++] = d->sock;
    argv[n++] = "--output";
    argv[n++] = d->out;
    /* Always a config file of the test's own: never the machine's. */
    argv[n++] = "--config";
    argv[n++] = d->conf;
    if (!d->switch_user) {
        argv[n++] = "--user";
        argv[n++] = "root";
    }
    if (timer) {
        argv[n++] = "--timer";
        argv[n++] = timer;
        argv[n++] = "--timer-min";
        argv[n++] = "0.1";
    }
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        if (d->devlog[0] || d->journal[0])
            private_mounts(d);
        for (int i = 0; d->env && d->env[i]; i++)
            putenv((char *)d->env[i]);
        if (d->activate) {
            char pid[32];

            /* fd 3 without FD_CLOEXEC, as systemd passes it. */
            if (d->listen_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(d->listen_fd, 3) < 0)
                _exit(126);
            snprintf(pid, sizeof(pid), "%d", (int)getpid());
            setenv("LISTEN_PID", pid, 1);
            setenv("LISTEN_FDS", "1", 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    /* Started = the socket takes connections and the daemon has logged its
     * "listening on ...; reports in ..." line, which it writes only once the
     * privileges are dropped and the seccomp filter is on: a test that looks
     * at the daemon's credentials or filter must not see it half-way (the
     * socket listens before both).  The log is appended across restarts:
     * only what this start wrote counts. */
    for (long long end = now_ms() + 10000; now_ms() < end; sleep_ms(10)) {
        if (can_connect(d->sock) && file_has_line_with(d->log, log_from, "; reports in "))
            return;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            ck_abort_msg("dogslowd exited at start-up:\n%s", td_log(d));
    }
    ck_abort_msg("dogslowd did not start listening within 10 s:\n%s", td_log(d));
}

void td_init(struct tdaemon *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/dogslow-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/dogslow.sock", d->dir);
    snprintf(d->out, sizeof(d->out), "%s/reports", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
    snprintf(d->conf, sizeof(d->conf), "%s/dogslow.conf", d->dir);
}

void td_write_conf(struct tdaemon *d, const char *text)
{
    char tmp[320];
    FILE *f;

    /* Replaced whole, as an editor would: a reload never sees half a file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->conf);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, d->conf), 0);
}

void td_launch(struct tdaemon *d, const char *timer, const char *const *extra)
{
    if (access(d->conf, F_OK) != 0)
        td_write_conf(d, "");
    spawn_daemon(d, timer, extra);
}

void td_start(struct tdaemon *d, const char *timer, const char *const *extra)
{
    td_init(d);
    td_launch(d, timer, extra);
}

void td_restart(struct tdaemon *d, const char *timer)
{
    spawn_daemon(d, timer, NULL);
}

bool td_alive(struct tdaemon *d)
{
    int st;
    return d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == 0;
}

int td_stop(struct tdaemon *d)
{
    int st;

    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    for (long long end = now_ms() + 10000; now_ms() < end; sleep_ms(10)) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

void td_kill(struct tdaemon *d)
{
    int st;

    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
}

void td_cleanup(struct tdaemon *d)
{
    char cmd[400];

    if (d->pid > 0)
        td_kill(d);
    if (d->dir[0] && !d->seccomp_denials_ok && file_has_line_with(d->log, 0, "seccomp: ")) {
        fprintf(stderr, "---- the daemon's seccomp filter denied a call:\n%s\n", td_log(d));
        ck_abort_msg("the daemon's seccomp filter denied a system call (log above)");
    }
    if (d->dir[0] && !getenv("KEEP_TEST_DIRS")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        (void)!system(cmd);
    }
}

const char *td_log(struct tdaemon *d)
{
    static char buf[65536];
    int fd = open(d->log, O_RDONLY | O_CLOEXEC);
    ssize_t n = 0;

    buf[0] = '\0';
    if (fd >= 0) {
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
        n = pread(fd, buf, sizeof(buf) - 1, from);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

void tw_start(struct tworker *w, struct tdaemon *d, const char *prog, const char *const *argv)
{
    tw_start_env(w, d, prog, argv, NULL);
}

void tw_start_env(struct tworker *w, struct tdaemon *d, const char *prog,
                  const char *const *argv, const char *const *env)
{
    int p[2];
    const char *args[16];
    int n = 0;

    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    args[n++] = prog;
    for (int i = 0; argv && argv[i] && n < 15; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    w->pid = fork();
    ck_assert_int_ge(w->pid, 0);
    if (w->pid == 0) {
        dup2(p[1], 1);
        if (d)
            setenv("DOGSLOW_SOCKET", d->sock, 1);
        else
            setenv("DOGSLOW_SOCKET", "/nonexistent/dogslow.sock", 1);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(prog, (char *const *)args);
        _exit(127);
    }
    close(p[1]);
    w->out = p[0];
}

const char *tw_expect(struct tworker *w, const char *prefix, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    size_t len = 0;

    for (;;) {
        struct pollfd pfd = {.fd = w->out, .events = POLLIN};
        long long left = end - now_ms();
        char c;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return NULL;
        if (read(w->out, &c, 1) != 1)
            return NULL;
        if (c != '\n') {
            if (len < sizeof(w->line) - 1)
                w->line[len++] = c;
            continue;
        }
        w->line[len] = '\0';
        if (!strncmp(w->line, prefix, strlen(prefix)))
            return w->line;
        len = 0;
    }
}

int tw_wait(struct tworker *w, int timeout_ms)
{
    int st;

    for (long long end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(10)) {
        if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
            close(w->out);
            w->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    tw_kill(w);
    return -1;
}

void tw_kill(struct tworker *w)
{
    int st;

    if (w->pid <= 0)
        return;
    kill(w->pid, SIGKILL);
    waitpid(w->pid, &st, 0);
    close(w->out);
    w->pid = 0;
}

static bool is_report(const char *name)
{
    size_t n = strlen(name);
    return !strncmp(name, "slow_request_", 13) && n > 4 && !strcmp(name + n - 4, ".log");
}

int td_count_reports(struct tdaemon *d)
{
    DIR *dir = opendir(d->out);
    struct dirent *e;
    int n = 0;

    if (!dir)
        return 0;
    while ((e = readdir(dir)))
        if (is_report(e->d_name))
            n++;
    closedir(dir);
    return n;
}

int td_wait_reports(struct tdaemon *d, int n, int timeout_ms)
{
    int have = 0;

    for (long long end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(10)) {
        have = td_count_reports(d);
        if (have >= n)
            break;
    }
    return have;
}

char *td_read_report(struct tdaemon *d, const char *needle)
{
    DIR *dir = opendir(d->out);
    struct dirent *e;
    char path[600], *buf = NULL;

    if (!dir)
        return NULL;
    while ((e = readdir(dir))) {
        if (!is_report(e->d_name) || (needle && !strstr(e->d_name, needle)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->out, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        buf = calloc(1, 1 << 20);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
        break;
    }
    closedir(dir);
    return buf;
}

/* Read the reports containing needle: the first one (ret_count NULL), or
 * just how many there are. */
static char *scan_reports(struct tdaemon *d, const char *needle, int *ret_count)
{
    DIR *dir = opendir(d->out);
    struct dirent *e;
    char path[600], *found = NULL;
    int count = 0;

    if (!dir)
        return NULL;
    while ((e = readdir(dir))) {
        if (!is_report(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->out, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *buf = calloc(1, 1 << 20);
        size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
        fclose(f);
        if (!buf)
            break;
        buf[n] = '\0';
        if (strstr(buf, needle)) {
            count++;
            if (!found && !ret_count) {
                found = buf;
                break;
            }
        }
        free(buf);
    }
    closedir(dir);
    if (ret_count)
        *ret_count = count;
    return found;
}

char *td_find_report_with(struct tdaemon *d, const char *needle)
{
    return scan_reports(d, needle, NULL);
}

char *td_wait_report_text(struct tdaemon *d, const char *text, int timeout_ms)
{
    char *r = NULL;

    for (long long end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(50)) {
        free(r);
        r = td_read_report(d, NULL);
        if (r && strstr(r, text))
            break;
    }
    return r;
}

int td_count_reports_with(struct tdaemon *d, const char *needle)
{
    int n = 0;
    scan_reports(d, needle, &n);
    return n;
}

void td_signal(struct tdaemon *d, int sig)
{
    ck_assert_int_gt(d->pid, 0);
    ck_assert_int_eq(kill(d->pid, sig), 0);
}

bool td_wait_log(struct tdaemon *d, const char *needle, int timeout_ms)
{
    for (long long end = now_ms() + timeout_ms;; sleep_ms(20)) {
        if (strstr(td_log(d), needle))
            return true;
        if (now_ms() >= end)
            return false;
    }
}

int td_count_files(struct tdaemon *d, const char *suffix)
{
    DIR *dir = opendir(d->out);
    struct dirent *e;
    size_t sl = strlen(suffix);
    int n = 0;

    if (!dir)
        return 0;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "slow_request_", 13) && len > sl &&
            !strcmp(e->d_name + len - sl, suffix))
            n++;
    }
    closedir(dir);
    return n;
}

int run_capture(const char *const *argv, const char *const *env, char *out, size_t size,
                int timeout_ms)
{
    int p[2], st;
    size_t len = 0;
    pid_t pid;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    out[0] = '\0';
    for (long long end = now_ms() + timeout_ms;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        long long left = end - now_ms();
        char buf[4096];
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            close(p[0]);
            return -1;
        }
        n = read(p[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        if (len + 1 < size) {
            size_t k = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
            memcpy(out + len, buf, k);
            len += k;
            out[len] = '\0';
        }
    }
    close(p[0]);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void td_copy_file(const char *from, const char *to, mode_t mode, uid_t owner)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    ssize_t n;

    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    ck_assert_int_eq(fchown(out, owner, (gid_t)owner), 0);
    ck_assert_int_eq(fchmod(out, mode), 0);
    ck_assert_int_eq(close(out), 0);
}

/* ---- processes, from /proc ------------------------------------------------ */

char *td_proc_text(pid_t pid, const char *file)
{
    static char buf[8192];
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    if (dsl_read_text(path, buf, sizeof(buf)) < 0)
        buf[0] = '\0';
    return buf;
}

long td_proc_status_field(pid_t pid, const char *key)
{
    long v;

    return dsl_proc_status_field(pid, 0, key, &v) == 0 ? v : -1;
}

pid_t td_child_named(pid_t parent, const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && !found) {
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid <= 0 || td_proc_status_field(pid, "PPid") != parent)
            continue;
        if (!strncmp(td_proc_text(pid, "comm"), comm, strlen(comm)))
            found = pid;
    }
    closedir(d);
    return found;
}

void td_assert_holds_nothing(pid_t pid, int filters)
{
    const char *st = td_proc_text(pid, "status");

    ck_assert_msg(strstr(st, "CapEff:\t0000000000000000") && strstr(st, "CapPrm:\t0000000000000000"),
                  "pid %d has capabilities:\n%s", (int)pid, st);
    ck_assert_int_eq(td_proc_status_field(pid, "NoNewPrivs"), 1);
    ck_assert_int_eq(td_proc_status_field(pid, "Seccomp"), 2);
    ck_assert_int_eq(td_proc_status_field(pid, "Seccomp_filters"), filters);
}
