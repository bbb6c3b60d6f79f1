/* SPDX-License-Identifier: MIT */
/*
 * How long is a worker stopped per snapshot?  Measured from inside the
 * worker -- the largest gap between consecutive clock reads in a busy loop
 * 30 frames deep -- and, for dogslowd, also from the daemon side (the
 * "Paused:" line of each report).  Side by side, in the same run:
 *
 *   control        the same loop with nobody looking (the noise floor)
 *   dogslowd       one snapshot per request, without and with locals; and
 *                  without locals once more with privsep = false (frames
 *                  named in the daemon, not in its analysis process): the
 *                  hold is the same code either way, so the pause must be
 *                  too (issue 16: "the held time must not grow")
 *   gdb            gdb -batch -p PID -ex 'thread apply all bt full'
 *   eu-stack       eu-stack -p PID -s -i (elfutils; source lines, inlines)
 *
 *     DOGSLOWD=daemon/dogslowd bench/bench_pause [--quick] [--rows]
 *
 * --rows prints rows of bench/run's table (figure | dogslowd | peer | ratio)
 * instead of this program's own table.
 *
 * Tools that are not installed are skipped and say so.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "dogslow.h"

#define DEPTH   28
#define MAXRUNS 64

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return v[n / 2];
}

/* ---- the worker ----------------------------------------------------------- */

static volatile unsigned long sink;

/* Busy loop for ms milliseconds; the largest gap between two clock reads. */
static double __attribute__((noinline)) busy(double ms)
{
    volatile int local_a = 1;
    volatile double local_b = 2.5;
    const char *volatile local_c = "a string";
    double start = now_us(), prev = start, gap = 0;

    for (;;) {
        double t = now_us();
        if (t - prev > gap)
            gap = t - prev;
        prev = t;
        sink += (unsigned long)local_a;
        if (t - start > ms * 1000)
            break;
    }
    sink += (unsigned long)local_b + (unsigned long)local_c[0];
    return gap;
}

static double __attribute__((noinline)) deep(int level, double ms)
{
    volatile int here = level;
    double g = level < DEPTH ? deep(level + 1, ms) : busy(ms);
    sink += (unsigned long)here;
    return g;
}

/* Runs `windows` windows of `ms` each; prints each window's largest gap.
 * With `watched`, each window is a request.  With turn >= 0, each window
 * waits for a byte from it (the parent's go). */
static int worker(int windows, double ms, int watched, int out, int turn)
{
    if (watched && dogslow_register(NULL) < 0) {
        fprintf(stderr, "bench worker: %s\n", dogslow_last_error());
        return 1;
    }
    for (int i = 0; i < windows; i++) {
        char line[64], go;
        if (turn >= 0 && read(turn, &go, 1) != 1)
            return 1;
        if (watched)
            dogslow_begin("GET", "/bench");
        double g = deep(1, ms);
        if (watched)
            dogslow_end();
        int n = snprintf(line, sizeof(line), "%.1f\n", g);
        if (write(out, line, (size_t)n) != n)
            return 1;
    }
    return 0;
}

/* ---- orchestration -------------------------------------------------------- */

struct child {
    pid_t pid;
    FILE *out;
    int turn; /* write end of its go pipe, or -1: it runs all windows at once */
};

static void start_worker_paced(struct child *c, int windows, double ms, int watched,
                               const char *sock, bool paced)
{
    int p[2], t[2] = {-1, -1};

    if (pipe(p) < 0 || (paced && pipe(t) < 0))
        exit(1);
    c->pid = fork();
    if (c->pid == 0) {
        close(p[0]);
        if (paced)
            close(t[1]);
        if (sock)
            setenv("DOGSLOW_SOCKET", sock, 1);
        _exit(worker(windows, ms, watched, p[1], t[0]));
    }
    close(p[1]);
    if (paced)
        close(t[0]);
    c->out = fdopen(p[0], "r");
    c->turn = t[1];
}

static void start_worker(struct child *c, int windows, double ms, int watched, const char *sock)
{
    start_worker_paced(c, windows, ms, watched, sock, false);
}

/* A paced worker's next window: 0 with its gap in v[(*n)++], or -1. */
static int step(struct child *c, double *v, int *n)
{
    char line[64];

    if (write(c->turn, "g", 1) != 1 || !fgets(line, sizeof(line), c->out))
        return -1;
    v[(*n)++] = strtod(line, NULL);
    return 0;
}

static int collect(struct child *c, double *v, int max)
{
    char line[64];
    int n = 0;

    if (c->turn >= 0)
        close(c->turn);
    while (n < max && fgets(line, sizeof(line), c->out))
        v[n++] = strtod(line, NULL);
    fclose(c->out);
    waitpid(c->pid, NULL, 0);
    return n;
}

static bool have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Run an external tool against a busy worker `runs` times; the worker's gap
 * in the window where the tool ran. */
static double tool_window_ms = 4000;

static int measure_tool(const char *before_pid, const char *after_pid, int runs, double *gaps)
{
    int n = 0;

    for (int i = 0; i < runs; i++) {
        struct child c;
        char cmd[256];
        double v[4];

        start_worker(&c, 1, tool_window_ms, 0, NULL);
        usleep(300000);
        snprintf(cmd, sizeof(cmd), "%s %d %s", before_pid, (int)c.pid, after_pid);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: '%s' failed\n", cmd);
        if (collect(&c, v, 4) == 1)
            gaps[n++] = v[0];
    }
    return n;
}

/* The daemon passes, by name: its reports go to dir/reports-NAME, its log
 * to dir/log-NAME. */
enum pass { PLAIN, INPROC, VARS, NPASSES };
static const char *const pass_name[NPASSES] = {"plain", "inproc", "vars"};

static pid_t start_daemon(const char *dogslowd, const char *dir, enum pass pass, char *sock,
                          size_t socksize)
{
    char out[256], log[256];
    const char *argv[] = {"dogslowd",
                          "--socket",
                          sock,
                          "--output",
                          out,
                          "--timer",
                          "0.1",
                          "--timer-min",
                          "0.05",
                          "--set",
                          pass == INPROC ? "privsep=false" : "privsep=true",
                          pass == VARS ? "--stack-vars" : NULL,
                          NULL};
    pid_t pid;

    snprintf(sock, socksize, "%s/dogslow-%s.sock", dir, pass_name[pass]);
    snprintf(out, sizeof(out), "%s/reports-%s", dir, pass_name[pass]);
    snprintf(log, sizeof(log), "%s/log-%s", dir, pass_name[pass]);
    pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(127);
        execv(dogslowd, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200 && access(sock, F_OK) != 0; i++)
        usleep(10000);
    usleep(50000);
    return pid;
}

/* The daemon's own account: "Paused: N us" of every report in dir. */
static int daemon_pauses(const char *dir, double *v, int max)
{
    char cmd[512], line[256];
    int n = 0;

    snprintf(cmd, sizeof(cmd), "grep -h '^Paused:' %s/*.log 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    while (p && n < max && fgets(line, sizeof(line), p))
        v[n++] = strtod(line + 7, NULL);
    if (p)
        pclose(p);
    return n;
}

int main(int argc, char **argv)
{
    bool quick = false, rows = false;
    const char *dogslowd = getenv("DOGSLOWD");
    char dir[] = "/tmp/dogslow-bench-pause-XXXXXX", sock[NPASSES][300], out[300];
    int windows, tool_runs;
    double ctl[MAXRUNS], gap[NPASSES][MAXRUNS], dpause[NPASSES][MAXRUNS];
    double gdb[MAXRUNS], eus[MAXRUNS];
    int nctl, ngap[NPASSES], ndpause[NPASSES], mode[NPASSES], ngdb = 0, neus = 0;
    struct child c;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--rows"))
            rows = true;
        else
            dogslowd = NULL;
    }
    windows = quick ? 6 : 20;
    tool_runs = quick ? 2 : 5;
    /* gdb needs a few hundred ms to attach and print; the worker's window
     * must outlast it. */
    tool_window_ms = quick ? 2000 : 4000;
    if (!dogslowd || !mkdtemp(dir)) {
        fprintf(stderr, "usage: DOGSLOWD=path/to/dogslowd bench_pause [--quick]\n");
        return 2;
    }

    /* Control: nobody looks. */
    start_worker(&c, windows, 150, 0, NULL);
    nctl = collect(&c, ctl, MAXRUNS);

    /*
     * PLAIN (privsep) and INPROC (privsep = false): two daemons, a worker
     * each, taking turns window by window.  Both meet the same moments of
     * this machine's load, so what differs between them is privsep alone,
     * and each worker's first snapshot (colder) is one of as many.
     */
    pid_t dp[NPASSES];
    struct child w[NPASSES];
    dp[PLAIN] = start_daemon(dogslowd, dir, PLAIN, sock[PLAIN], sizeof(sock[PLAIN]));
    dp[INPROC] = start_daemon(dogslowd, dir, INPROC, sock[INPROC], sizeof(sock[INPROC]));
    start_worker_paced(&w[PLAIN], windows, 250, 1, sock[PLAIN], true);
    start_worker_paced(&w[INPROC], windows, 250, 1, sock[INPROC], true);
    ngap[PLAIN] = ngap[INPROC] = 0;
    for (int i = 0; i < windows; i++) {
        enum pass first = i % 2 ? INPROC : PLAIN, second = i % 2 ? PLAIN : INPROC;
        if (step(&w[first], gap[first], &ngap[first]) < 0 ||
            step(&w[second], gap[second], &ngap[second]) < 0)
            break;
    }
    for (int pass = PLAIN; pass <= INPROC; pass++)
        collect(&w[pass], gap[pass] + ngap[pass], 0);
    if (getenv("BENCH_VERBOSE"))
        for (int i = 0; i < windows; i++)
            fprintf(stderr, "bench_pause: window %d: privsep %.0f us, in-process %.0f us\n", i,
                    gap[PLAIN][i], gap[INPROC][i]);
    dp[VARS] = start_daemon(dogslowd, dir, VARS, sock[VARS], sizeof(sock[VARS]));
    start_worker(&c, windows, 250, 1, sock[VARS]);
    ngap[VARS] = collect(&c, gap[VARS], MAXRUNS);
    for (int pass = 0; pass < NPASSES; pass++) {
        kill(dp[pass], SIGTERM);
        waitpid(dp[pass], NULL, 0);
        snprintf(out, sizeof(out), "%s/reports-%s", dir, pass_name[pass]);
        ndpause[pass] = daemon_pauses(out, dpause[pass], MAXRUNS);
        snprintf(out, sizeof(out), "%s/log-%s", dir, pass_name[pass]);
        mode[pass] = bench_log_privsep(out);
    }
    double *plain = gap[PLAIN], *vars = gap[VARS], *dplain = dpause[PLAIN], *dvars = dpause[VARS];
    int nplain = ngap[PLAIN], nvars = ngap[VARS], ndplain = ndpause[PLAIN], ndvars = ndpause[VARS];

    if (have("gdb"))
        ngdb = measure_tool("gdb -batch -nx -p", "-ex 'thread apply all bt full' >/dev/null 2>&1",
                            tool_runs, gdb);
    if (have("eu-stack"))
        neus = measure_tool("eu-stack -p", "-s -i >/dev/null 2>&1", tool_runs, eus);

    double m_ctl = median(ctl, nctl), m_plain = median(plain, nplain);
    double m_vars = median(vars, nvars);
    if (rows) {
        double m_d = median(dplain, ndplain);
        char peer[256] = "", ratio[128] = "";
        if (ngdb) {
            double g = median(gdb, ngdb);
            size_t l = strlen(peer);
            snprintf(peer + l, sizeof(peer) - l, "gdb -batch bt full: %.0f us", g);
            l = strlen(ratio);
            snprintf(ratio + l, sizeof(ratio) - l, "gdb: %.0fx", g / m_plain);
        } else {
            snprintf(peer, sizeof(peer), "gdb: skipped: not installed");
        }
        if (neus) {
            double e = median(eus, neus);
            size_t l = strlen(peer);
            snprintf(peer + l, sizeof(peer) - l, "; eu-stack -s -i: %.0f us", e);
            l = strlen(ratio);
            snprintf(ratio + l, sizeof(ratio) - l, "%seu-stack: %.1fx", ngdb ? "; " : "",
                     e / m_plain);
        } else {
            size_t l = strlen(peer);
            snprintf(peer + l, sizeof(peer) - l, "; eu-stack: skipped: not installed");
        }
        printf("| Worker pause per snapshot, %d frames, seen by the worker, median (%d "
               "snapshots; floor with nobody looking: %.0f us) | %.0f us | %s | %s |\n",
               DEPTH + 5, nplain, m_ctl, m_plain, peer, ratio[0] ? ratio : "-");
        printf("| Worker pause per snapshot, as the daemon measures it (stop to detach), "
               "median; with locals | %.0f us; %.0f us | - | target < 200 us: %s |\n",
               m_d, median(dvars, ndvars), m_d < 200 ? "met" : "**MISSED**");
        /* The held part does not depend on privsep: on/off should be 1
         * give or take this machine's noise, which 1.2 allows for. */
        double m_in = median(gap[INPROC], ngap[INPROC]);
        double m_din = median(dpause[INPROC], ndpause[INPROC]);
        /* Above the floor, the worker's figure is mostly the scheduler
         * giving its CPU away (other load), not the hold: say so. */
        printf("| Pause with privsep (vs in-process), seen by the worker, median (%d and %d "
               "snapshots; floor with nobody looking: %.0f us) | %.0f us | privsep=false: %.0f "
               "us | on/off: %.2f%s |\n",
               nplain, ngap[INPROC], m_ctl, m_plain, m_in, m_plain / m_in,
               m_ctl > 1000 ? " (a busy machine: mostly preemption)" : "");
        printf("| Pause with privsep (vs in-process), as the daemon measures it (stop to "
               "detach), median (%d and %d reports) | %.0f us | privsep=false: %.0f us | "
               "on/off: %.2f (must not grow: <= 1.2 with noise: %s) |\n",
               ndplain, ndpause[INPROC], m_d, m_din, m_d / m_din,
               m_d <= 1.2 * m_din ? "met" : "**MISSED**");
    } else {
        printf("\n| worker pause per snapshot, %d frames (median) | seen by the worker | seen by "
               "the daemon | vs dogslowd |\n",
               DEPTH + 5);
        printf("|---|---|---|---|\n");
        printf("| nobody looking (noise floor) | %.0f us | - | - |\n", m_ctl);
        printf("| dogslowd, no locals (%d snapshots) | %.0f us | %.0f us | 1x |\n", nplain, m_plain,
               median(dplain, ndplain));
        printf("| dogslowd, with locals (%d snapshots) | %.0f us | %.0f us | %.1fx |\n", nvars,
               m_vars, median(dvars, ndvars), m_vars / m_plain);
        printf("| dogslowd, no locals, privsep = false (%d snapshots) | %.0f us | %.0f us | "
               "%.2fx |\n",
               ngap[INPROC], median(gap[INPROC], ngap[INPROC]),
               median(dpause[INPROC], ndpause[INPROC]),
               median(gap[INPROC], ngap[INPROC]) / m_plain);
        if (ngdb)
            printf("| gdb -batch 'thread apply all bt full' (%d runs) | %.0f us | - | %.0fx |\n",
                   ngdb, median(gdb, ngdb), median(gdb, ngdb) / m_plain);
        else
            printf("| gdb | not installed | - | - |\n");
        if (neus)
            printf("| eu-stack -s -i (%d runs) | %.0f us | - | %.1fx |\n", neus, median(eus, neus),
                   median(eus, neus) / m_plain);
        else
            printf("| eu-stack | not installed | - | - |\n");
    }

    int bad = 0;
    for (int pass = 0; pass < NPASSES; pass++)
        bad |= ngap[pass] != windows || ndpause[pass] < windows;
    if (bad && rows)
        printf("FAILED: bench_pause: expected %d snapshots per pass, got %d/%d/%d reports\n",
               windows, ndplain, ndpause[INPROC], ndvars);
    if (bad)
        fprintf(stderr, "bench_pause: expected %d snapshots per pass, got %d/%d/%d reports\n",
                windows, ndplain, ndpause[INPROC], ndvars);
    /* A daemon that could not start its analysis process names frames in
     * itself: then on/off compares the same thing. */
    if (mode[PLAIN] != 1 || mode[VARS] != 1 || mode[INPROC] != 0) {
        if (rows)
            printf("FAILED: bench_pause: the daemons ran with %s/%s/%s, not privsep=true/false/"
                   "true (logs in %s)\n",
                   bench_privsep_name(mode[PLAIN]), bench_privsep_name(mode[INPROC]),
                   bench_privsep_name(mode[VARS]), dir);
        fprintf(stderr, "bench_pause: the daemons ran with %s/%s/%s, not privsep=true/false/true\n",
                bench_privsep_name(mode[PLAIN]), bench_privsep_name(mode[INPROC]),
                bench_privsep_name(mode[VARS]));
        return 1;
    }
    if (getenv("BENCH_KEEP"))
        return bad;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
    return bad;
}
