/* SPDX-License-Identifier: MIT */
/*
 * How long is a worker stopped per snapshot?  Measured from inside the
 * worker -- the largest gap between consecutive clock reads in a busy loop
 * 30 frames deep -- and, for dogslowd, also from the daemon side (the
 * "Paused:" line of each report).  Side by side, in the same run:
 *
 *   control        the same loop with nobody looking (the noise floor)
 *   dogslowd       one snapshot per request, without and with locals
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
 * With `watched`, each window is a request. */
static int worker(int windows, double ms, int watched, int out)
{
    if (watched && dogslow_register(NULL) < 0) {
        fprintf(stderr, "bench worker: %s\n", dogslow_last_error());
        return 1;
    }
    for (int i = 0; i < windows; i++) {
        char line[64];
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
};

static void start_worker(struct child *c, int windows, double ms, int watched, const char *sock)
{
    int p[2];

    if (pipe(p) < 0)
        exit(1);
    c->pid = fork();
    if (c->pid == 0) {
        close(p[0]);
        if (sock)
            setenv("DOGSLOW_SOCKET", sock, 1);
        _exit(worker(windows, ms, watched, p[1]));
    }
    close(p[1]);
    c->out = fdopen(p[0], "r");
}

static int collect(struct child *c, double *v, int max)
{
    char line[64];
    int n = 0;

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

static pid_t start_daemon(const char *dogslowd, const char *dir, bool vars)
{
    char sock[256], out[256];
    pid_t pid;

    snprintf(sock, sizeof(sock), "%s/dogslow.sock", dir);
    snprintf(out, sizeof(out), "%s/reports-%s", dir, vars ? "vars" : "plain");
    pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(dogslowd, "dogslowd", "--socket", sock, "--output", out, "--timer", "0.1",
              "--timer-min", "0.05", vars ? "--stack-vars" : "--timer-max", vars ? NULL : "3600",
              (char *)NULL);
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
    char dir[] = "/tmp/dogslow-bench-pause-XXXXXX", sock[300], out[300];
    int windows, tool_runs;
    double ctl[MAXRUNS], plain[MAXRUNS], vars[MAXRUNS], dplain[MAXRUNS], dvars[MAXRUNS];
    double gdb[MAXRUNS], eus[MAXRUNS];
    int nctl, nplain = 0, nvars = 0, ndplain, ndvars, ngdb = 0, neus = 0;
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
    snprintf(sock, sizeof(sock), "%s/dogslow.sock", dir);

    /* Control: nobody looks. */
    start_worker(&c, windows, 150, 0, NULL);
    nctl = collect(&c, ctl, MAXRUNS);

    for (int pass = 0; pass < 2; pass++) {
        pid_t d = start_daemon(dogslowd, dir, pass == 1);
        start_worker(&c, windows, 250, 1, sock);
        if (pass == 0)
            nplain = collect(&c, plain, MAXRUNS);
        else
            nvars = collect(&c, vars, MAXRUNS);
        kill(d, SIGTERM);
        waitpid(d, NULL, 0);
    }
    snprintf(out, sizeof(out), "%s/reports-plain", dir);
    ndplain = daemon_pauses(out, dplain, MAXRUNS);
    snprintf(out, sizeof(out), "%s/reports-vars", dir);
    ndvars = daemon_pauses(out, dvars, MAXRUNS);

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

    int bad = nplain != windows || nvars != windows || ndplain < windows || ndvars < windows;
    if (bad && rows)
        printf("FAILED: bench_pause: expected %d snapshots per pass, got %d/%d reports\n", windows,
               ndplain, ndvars);
    if (bad)
        fprintf(stderr, "bench_pause: expected %d snapshots per pass, got %d/%d reports\n", windows,
                ndplain, ndvars);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
    return bad;
}
