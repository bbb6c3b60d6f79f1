/* SPDX-License-Identifier: MIT */
/*
 * Report lateness: from a slow request's deadline (its start + the timer)
 * to the moment its report can be read, for dogslowd and, in the same run,
 * for PHP-FPM's slowlog with request_slowlog_timeout set to the same timer.
 *
 *     bench_late DOGSLOWD TIMER_SECONDS SAMPLES [--privsep-compare]
 *
 * Both get the same schedule: SAMPLES requests of 1.5 TIMER + 0.5 s, started
 * TIMER/3 + 71 ms apart (so they fall at every phase of PHP-FPM's
 * heartbeat, which is a third of the timeout).
 *
 *   dogslowd: each request is a thread of this process that reads
 *   CLOCK_MONOTONIC just before dogslow_begin(); the report is there when
 *   inotify says its file was renamed into the report directory.  A thread
 *   making requests of TIMER/2 runs alongside and must never be reported.
 *
 *   PHP-FPM: php-fpm8.2 with a pool of our own on 127.0.0.1, driven by
 *   cgi-fcgi; the script prints $_SERVER['REQUEST_TIME_FLOAT'] and its pid
 *   and sleeps.  The entry is there when inotify says slow.log grew with
 *   a "pid N" header for that child (CLOCK_REALTIME on both sides).
 *
 * --privsep-compare: a second dogslowd, with privsep = false (frames named
 * in the daemon rather than in its analysis process), gets the same
 * schedule at the same time, half a stagger later, from a process of its
 * own; two more rows compare the two (issue 16: what the split costs).
 * Side by side rather than one after the other, so that both meet the
 * same load on this machine.
 *
 * Prints two markdown rows (median, max), four with --privsep-compare;
 * exit 1 if dogslowd did not report every slow request exactly once, or
 * reported a request that was not slow.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bench_util.h"
#include "dogslow.h"

#define MAX_SAMPLES 256

struct sample {
    uint64_t at_ns;    /* when to start (CLOCK_MONOTONIC) */
    uint64_t start_ns; /* dogslowd: CLOCK_MONOTONIC before begin; php: REQUEST_TIME_FLOAT */
    int pid, tid;
    uint64_t seen_ns; /* 0: no report/entry */
    int nseen;
};

/* The run at hand's samples: dogslowd's are in shared memory, filled by a
 * process of their own (one per daemon). */
static struct sample *samples;
static int nsamples;
static uint64_t timer_ns, hold_ns;
static _Atomic bool stop_control;
static _Atomic int control_tid, begin_failed;

/* A sorted copy of the lateness values in ns of v[from..]; returns how
 * many. */
static size_t lateness_from(const struct sample *v, int from, int64_t *out)
{
    size_t n = 0;
    for (int i = from; i < nsamples; i++)
        if (v[i].nseen == 1)
            out[n++] = (int64_t)v[i].seen_ns - (int64_t)(v[i].start_ns + timer_ns);
    qsort(out, n, sizeof(*out), bench_cmp_i64);
    return n;
}

static size_t lateness(const struct sample *v, int64_t *out)
{
    return lateness_from(v, 0, out);
}

/* The lateness of a process's first report, in ms (0 if it had none). */
static double first_ms(const struct sample *v)
{
    return v[0].nseen == 1 ? ((double)v[0].seen_ns - (double)(v[0].start_ns + timer_ns)) / 1e6 : 0;
}

/* ---- dogslowd ------------------------------------------------------------- */

static void *slow_request(void *p)
{
    struct sample *s = p;

    s->tid = (int)syscall(SYS_gettid);
    bench_sleep_until(s->at_ns);
    s->start_ns = bench_now_ns(CLOCK_MONOTONIC);
    if (dogslow_begin("GET", "/bench/late") < 0)
        atomic_fetch_add(&begin_failed, 1);
    bench_sleep_until(s->start_ns + hold_ns);
    dogslow_end();
    return NULL;
}

/* Requests of half the timer, back to back: never to be reported. */
static void *control(void *unused)
{
    (void)unused;
    atomic_store(&control_tid, (int)syscall(SYS_gettid));
    while (!atomic_load(&stop_control)) {
        uint64_t t = bench_now_ns(CLOCK_MONOTONIC);
        if (dogslow_begin("GET", "/bench/fast") < 0)
            atomic_fetch_add(&begin_failed, 1);
        bench_sleep_until(t + timer_ns / 2);
        dogslow_end();
    }
    return NULL;
}

/* One dogslowd (privsep: NULL for its default, "true", "false") and this
 * process's slow requests, the first at t0.  Fills samples[]. */
static int run_dogslowd(const char *dogslowd, const char *dir, const char *timer_arg,
                        const char *privsep, uint64_t t0, char *why, size_t whysize)
{
    char sock[256], out[256], log[256],
        buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    pthread_t th[MAX_SAMPLES], ct;
    int ifd, extra = 0, r = 0;

    snprintf(sock, sizeof(sock), "%s/s", dir);
    snprintf(out, sizeof(out), "%s/r", dir);
    snprintf(log, sizeof(log), "%s/dogslowd.log", dir);
    if (mkdir(out, 0750) < 0)
        return -errno;
    ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0 || inotify_add_watch(ifd, out, IN_MOVED_TO | IN_CREATE) < 0)
        return -errno;
    pid_t dpid = bench_start_daemon_privsep(dogslowd, sock, out, timer_arg, log, privsep);
    struct dogslow_options o = {.socket_path = sock};
    if (dpid < 0 || dogslow_register(&o) < 0) {
        snprintf(why, whysize, "dogslowd did not start or refused us (%.200s)", log);
        return -EIO;
    }
    uint64_t stagger = timer_ns / 3 + 71000000ull;
    for (int i = 0; i < nsamples; i++) {
        samples[i] = (struct sample){.at_ns = t0 + (uint64_t)i * stagger};
        pthread_create(&th[i], NULL, slow_request, &samples[i]);
    }
    pthread_create(&ct, NULL, control, NULL);
    uint64_t end = samples[nsamples - 1].at_ns + hold_ns + 500000000ull;
    while (bench_now_ns(CLOCK_MONOTONIC) < end) {
        ssize_t len = read(ifd, buf, sizeof(buf));
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC);
        if (len <= 0) {
            usleep(200);
            continue;
        }
        int tid;
        for (const char *p = buf; bench_next_report(&p, buf + len, &tid, NULL);) {
            int hit = 0;
            for (int i = 0; i < nsamples; i++)
                if (samples[i].tid == tid) {
                    if (samples[i].nseen++ == 0)
                        samples[i].seen_ns = now;
                    hit = 1;
                }
            extra += !hit;
        }
    }
    atomic_store(&stop_control, true);
    for (int i = 0; i < nsamples; i++)
        pthread_join(th[i], NULL);
    pthread_join(ct, NULL);
    dogslow_unregister();
    kill(dpid, SIGTERM);
    waitpid(dpid, NULL, 0);
    close(ifd);

    int bad = 0;
    for (int i = 0; i < nsamples; i++)
        bad += samples[i].nseen != 1;
    if (bad || extra || atomic_load(&begin_failed)) {
        snprintf(why, whysize,
                 "dogslowd: %d of %d slow requests not reported exactly once, %d reports of "
                 "requests that were not slow, %d begins failed (files kept in %s)",
                 bad, nsamples, extra, atomic_load(&begin_failed), dir);
        r = -EPROTO;
    }
    /* A comparison needs each daemon to have named frames the way asked. */
    int mode = bench_log_privsep(log);
    if (r == 0 && privsep && mode != !strcmp(privsep, "true")) {
        snprintf(why, whysize, "dogslowd was asked for privsep=%s but ran with %s (log: %s)",
                 privsep, bench_privsep_name(mode), log);
        r = -EPROTO;
    }
    return r;
}

/* What a dogslowd run leaves for the parent, in shared memory. */
struct run {
    struct sample samples[MAX_SAMPLES];
    int r;
    char why[512];
    pid_t pid;
};

/* run_dogslowd() in a process of its own (a process registers once, and
 * each run's first report must be a process's first). */
static void start_run(struct run *run, const char *dogslowd, const char *dir, const char *timer_arg,
                      const char *privsep, uint64_t t0)
{
    /* The mapping is shared: only the parent writes pid. */
    pid_t pid;

    run->r = -ECHILD;
    pid = fork();
    if (pid == 0) {
        samples = run->samples;
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
            run->r = -errno;
        else
            run->r =
                run_dogslowd(dogslowd, dir, timer_arg, privsep, t0, run->why, sizeof(run->why));
        _exit(0);
    }
    run->pid = pid;
    if (pid < 0)
        run->r = -errno;
}

static void finish_run(struct run *run)
{
    if (run->pid > 0)
        waitpid(run->pid, NULL, 0);
}

/* ---- PHP-FPM -------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* Runs php-fpm; fills samples[] (start, pid, seen).  Returns 0, or a
 * negative errno with why set. */
static int run_php(const char *dir, int timer_s, char *why, size_t whysize)
{
    char conf[256], script[256], slowlog[256], text[4096], addr[64];
    char outs[MAX_SAMPLES][256];
    pid_t kids[MAX_SAMPLES];
    int port = free_port();

    if (port < 0)
        return -EADDRINUSE;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(conf, sizeof(conf), "%s/php-fpm.conf", dir);
    snprintf(script, sizeof(script), "%s/sleep.php", dir);
    snprintf(slowlog, sizeof(slowlog), "%s/slow.log", dir);
    snprintf(text, sizeof(text),
             "[global]\npid = %s/fpm.pid\nerror_log = %s/fpm.log\ndaemonize = no\n"
             "[bench]\nlisten = %s\npm = static\npm.max_children = 8\n"
             "request_slowlog_timeout = %d\nslowlog = %s\n",
             dir, dir, addr, timer_s, slowlog);
    if (write_file(conf, text) < 0)
        return -EIO;
    snprintf(text, sizeof(text),
             "<?php\nprintf(\"start %%.6f pid %%d\\n\", $_SERVER['REQUEST_TIME_FLOAT'], "
             "getmypid());\nusleep(%llu);\n",
             (unsigned long long)(hold_ns / 1000));
    if (write_file(script, text) < 0 || write_file(slowlog, "") < 0)
        return -EIO;

    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), lfd = open(slowlog, O_RDONLY | O_CLOEXEC);
    if (ifd < 0 || lfd < 0 || inotify_add_watch(ifd, slowlog, IN_MODIFY) < 0)
        return -errno;
    pid_t fpm = fork();
    if (fpm == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        if (getuid() == 0)
            execl("/usr/sbin/php-fpm8.2", "php-fpm8.2", "-R", "-n", "-y", conf, (char *)NULL);
        else
            execl("/usr/sbin/php-fpm8.2", "php-fpm8.2", "-n", "-y", conf, (char *)NULL);
        _exit(127);
    }
    /* Ready when it accepts connections. */
    bool up = false;
    for (int i = 0; i < 300 && !up; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (!up)
            usleep(10000);
    }
    if (!up) {
        snprintf(why, whysize, "php-fpm did not start (see %s/fpm.log)", dir);
        kill(fpm, SIGTERM);
        waitpid(fpm, NULL, 0);
        close(ifd);
        close(lfd);
        return -EIO;
    }

    /* Entries seen: child pid and when. */
    struct {
        int pid;
        uint64_t when;
    } seen[MAX_SAMPLES * 2];
    int nseen = 0, launched = 0;
    char pending[8192];
    size_t plen = 0;
    uint64_t t0 = bench_now_ns(CLOCK_MONOTONIC) + 300000000ull;
    uint64_t stagger = timer_ns / 3 + 71000000ull;
    uint64_t end = t0 + (uint64_t)(nsamples - 1) * stagger + hold_ns + 1000000000ull;

    for (;;) {
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC);
        if (now >= end)
            break;
        if (launched < nsamples && now >= t0 + (uint64_t)launched * stagger) {
            snprintf(outs[launched], sizeof(outs[0]), "%s/out.%d", dir, launched);
            kids[launched] = fork();
            if (kids[launched] == 0) {
                if (!freopen(outs[launched], "w", stdout) || !freopen("/dev/null", "w", stderr))
                    _exit(127);
                setenv("SCRIPT_FILENAME", script, 1);
                setenv("SCRIPT_NAME", "/sleep.php", 1);
                setenv("REQUEST_METHOD", "GET", 1);
                setenv("QUERY_STRING", "", 1);
                execlp("cgi-fcgi", "cgi-fcgi", "-bind", "-connect", addr, (char *)NULL);
                _exit(127);
            }
            launched++;
        }
        char ebuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len = read(ifd, ebuf, sizeof(ebuf));
        if (len <= 0) {
            usleep(200);
            continue;
        }
        uint64_t when = bench_now_ns(CLOCK_REALTIME);
        ssize_t n;
        while (plen < sizeof(pending) - 1 &&
               (n = read(lfd, pending + plen, sizeof(pending) - 1 - plen)) > 0)
            plen += (size_t)n;
        pending[plen] = '\0';
        /* Complete lines only; a header line is "[date]  [pool bench] pid N". */
        char *nl;
        while ((nl = strchr(pending, '\n'))) {
            *nl = '\0';
            char *p = strstr(pending, "] pid ");
            if (p && nseen < (int)(sizeof(seen) / sizeof(seen[0]))) {
                seen[nseen].pid = (int)strtol(p + 6, NULL, 10);
                seen[nseen++].when = when;
            }
            size_t used = (size_t)(nl + 1 - pending);
            memmove(pending, nl + 1, plen - used + 1);
            plen -= used;
        }
    }
    for (int i = 0; i < launched; i++)
        waitpid(kids[i], NULL, 0);
    kill(fpm, SIGQUIT);
    waitpid(fpm, NULL, 0);
    close(ifd);
    close(lfd);

    /* Pair each request with the first entry for its child after it began. */
    for (int i = 0; i < launched; i++) {
        char line[256] = "";
        double start = 0;
        int pid = 0;
        FILE *f = fopen(outs[i], "re");
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "start %lf pid %d", &start, &pid) == 2)
                break;
        if (f)
            fclose(f);
        samples[i].start_ns = (uint64_t)(start * 1e9);
        samples[i].pid = pid;
        for (int k = 0; pid && k < nseen; k++)
            if (seen[k].pid == pid && seen[k].when > samples[i].start_ns &&
                seen[k].when < samples[i].start_ns + hold_ns + timer_ns) {
                if (samples[i].nseen++ == 0)
                    samples[i].seen_ns = seen[k].when;
            }
    }
    return 0;
}

static bool have(const char *path)
{
    return access(path, X_OK) == 0;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/dogslow-bench-late-XXXXXX", sub[2][64], why[1100] = "";
    static struct sample php_samples[MAX_SAMPLES];
    int64_t ours[MAX_SAMPLES], php[MAX_SAMPLES];
    size_t nours, nphp = 0;
    int timer_s, r, php_logged = 0;
    const char *php_why = NULL;
    bool compare = argc == 5 && !strcmp(argv[4], "--privsep-compare");

    if ((argc != 4 && !compare) || (timer_s = (int)strtol(argv[2], NULL, 10)) <= 0 ||
        (nsamples = (int)strtol(argv[3], NULL, 10)) <= 0 || nsamples > MAX_SAMPLES) {
        fprintf(stderr, "usage: bench_late DOGSLOWD TIMER_SECONDS SAMPLES [--privsep-compare]\n");
        return 2;
    }
    if (!mkdtemp(dir))
        return 2;
    timer_ns = (uint64_t)timer_s * NS_PER_S;
    /* PHP-FPM looks every third of the timeout: a request must outlast
     * that, or it may end before it is noticed. */
    hold_ns = timer_ns + timer_ns / 2 + 500000000ull;

    /* runs[0]: the daemon as configured by default (privsep on); runs[1]
     * (--privsep-compare): privsep = false, its requests half a stagger
     * after runs[0]'s, so that the two daemons never work at once but
     * meet the same moments. */
    struct run *runs =
        mmap(NULL, 2 * sizeof(*runs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (runs == MAP_FAILED)
        return 2;
    uint64_t t0 = bench_now_ns(CLOCK_MONOTONIC) + 400000000ull;
    for (int k = 0; k < 1 + compare; k++) {
        snprintf(sub[k], sizeof(sub[k]), "%s/%s", dir, k ? "inproc" : "default");
        start_run(&runs[k], argv[1], sub[k], argv[2], compare ? (k ? "false" : "true") : NULL,
                  t0 + (uint64_t)k * (timer_ns / 3 + 71000000ull) / 2);
    }
    for (int k = 0; k < 1 + compare; k++)
        finish_run(&runs[k]);
    r = runs[0].r < 0 ? runs[0].r : compare ? runs[1].r : 0;
    snprintf(why, sizeof(why), "%s%s%s", runs[0].why, runs[0].why[0] && runs[1].why[0] ? "; " : "",
             compare ? runs[1].why : "");
    nours = lateness(runs[0].samples, ours);
    /* The first report of a process loads its debug information. */
    double first = first_ms(runs[0].samples);
    if (getenv("BENCH_VERBOSE"))
        for (int k = 0; k < 1 + compare; k++)
            for (int i = 0; i < nsamples; i++)
                fprintf(stderr, "bench_late: dogslowd%s sample %d: %.1f ms\n",
                        k ? " privsep=false" : "", i,
                        ((double)runs[k].samples[i].seen_ns -
                         (double)(runs[k].samples[i].start_ns + timer_ns)) /
                            1e6);
    samples = php_samples;

    if (!have("/usr/sbin/php-fpm8.2"))
        php_why = "skipped: php8.2-fpm not installed";
    else if (system("command -v cgi-fcgi >/dev/null 2>&1") != 0)
        php_why = "skipped: cgi-fcgi (libfcgi-bin) not installed";
    else {
        char pwhy[512] = "";
        for (int i = 0; i < nsamples; i++)
            samples[i] = (struct sample){0};
        if (run_php(dir, timer_s, pwhy, sizeof(pwhy)) < 0) {
            static char buf[600];
            snprintf(buf, sizeof(buf), "failed: %s", pwhy[0] ? pwhy : "php-fpm run failed");
            php_why = buf;
        } else {
            nphp = lateness(samples, php);
            for (int i = 0; i < nsamples; i++)
                php_logged += samples[i].nseen >= 1;
        }
    }

    double om = (double)bench_median_i64(ours, nours) / 1e6;
    double ox = nours ? (double)ours[nours - 1] / 1e6 : 0;
    if (php_why) {
        printf("| Report lateness, timer %d s, median (%zu samples; target < 10 ms) | %.1f ms | "
               "PHP-FPM slowlog: %s | %s |\n",
               timer_s, nours, om, php_why, om < 10 ? "target met" : "target **MISSED**");
        printf("| Report lateness, timer %d s, max (the first report of a process: %.1f ms) | "
               "%.1f ms | - | - |\n",
               timer_s, first, ox);
    } else if (nphp == 0) {
        printf(
            "| Report lateness, timer %d s, median (%zu samples; target < 10 ms: %s) | %.1f ms | "
            "PHP-FPM slowlog: none of %d slow requests logged | - |\n",
            timer_s, nours, om < 10 ? "met" : "**MISSED**", om, nsamples);
        printf("| Report lateness, timer %d s, max (the first report of a process: %.1f ms) | "
               "%.1f ms | - | - |\n",
               timer_s, first, ox);
    } else {
        double pm = (double)bench_median_i64(php, nphp) / 1e6;
        double px = nphp ? (double)php[nphp - 1] / 1e6 : 0;
        /* Below a millisecond (or early: the library stamps requests with
         * the coarse clock) a ratio means nothing: compare with 1 ms. */
        printf(
            "| Report lateness, timer %d s, median (%zu samples; target < 10 ms: %s) | %.1f ms | "
            "PHP-FPM slowlog: %.1f ms (%d of %d logged) | %s%.0fx sooner |\n",
            timer_s, nours, om < 10 ? "met" : "**MISSED**", om, pm, php_logged, nsamples,
            om < 1 ? "> " : "", pm / (om < 1 ? 1 : om));
        printf("| Report lateness, timer %d s, max (the first report of a process: %.1f ms) | "
               "%.1f ms | PHP-FPM slowlog: %.1f ms | %s%.1fx sooner |\n",
               timer_s, first, ox, px, ox < 1 ? "> " : "", px / (ox < 1 ? 1 : ox));
    }
    if (compare) {
        /* The reports after a process's first (its debug information
         * loaded), then the first, which privsep moves into the analysis
         * process.  Lateness is about a millisecond and may be a little
         * negative (the coarse clock): ratios are of values floored at
         * 1 ms, with the difference beside them. */
        int64_t on[MAX_SAMPLES], off[MAX_SAMPLES];
        size_t non = lateness_from(runs[0].samples, 1, on);
        size_t noff = lateness_from(runs[1].samples, 1, off);
        double nm = (double)bench_median_i64(on, non) / 1e6, nx = non ? on[non - 1] / 1e6 : 0;
        double fm = (double)bench_median_i64(off, noff) / 1e6, fx = noff ? off[noff - 1] / 1e6 : 0;
        double ff = first_ms(runs[1].samples);
#define FLOOR1(v) ((v) < 1 ? 1 : (v))
        printf("| Report lateness with privsep (vs in-process), timer %d s, median / max of the "
               "reports after a process's first (%zu and %zu, the two daemons side by side) | "
               "%.1f ms / %.1f ms | privsep=false: %.1f ms / %.1f ms | on/off: %.2f / %.2f "
               "(%+.1f ms / %+.1f ms) |\n",
               timer_s, non, noff, nm, nx, fm, fx, FLOOR1(nm) / FLOOR1(fm), FLOOR1(nx) / FLOOR1(fx),
               nm - fm, nx - fx);
        printf("| Report lateness with privsep (vs in-process), timer %d s, a process's first "
               "report (loads its debug information: in the analysis process with privsep) | "
               "%.1f ms | privsep=false: %.1f ms | on/off: %.2f (%+.1f ms) |\n",
               timer_s, first, ff, FLOOR1(first) / FLOOR1(ff), first - ff);
#undef FLOOR1
    }
    if (r < 0) {
        printf("FAILED: bench_late: %s\n", why[0] ? why : strerror(-r));
        return 1;
    }
    if (getenv("BENCH_KEEP")) {
        fprintf(stderr, "bench_late: files kept in %s\n", dir);
        return 0;
    }
    char cmd[256 + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
    return 0;
}
