/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the benchmarks: clocks, medians, starting a
 * private dogslowd, reading a process's CPU time and RSS, and the names of
 * report files.  Header-only so each benchmark stays one compile.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

static inline uint64_t bench_now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_until(uint64_t when_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(when_ns / NS_PER_S),
                          .tv_nsec = (long)(when_ns % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static inline int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v; the median (0 for an empty set). */
static inline int64_t bench_median_i64(int64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), bench_cmp_i64);
    return v[n / 2];
}

/* utime+stime of a process, in clock ticks; -1 if it cannot be read. */
static inline long long bench_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut, st;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* A "VmRSS:"-style field of /proc/PID/status, in KiB; -1 if absent. */
static inline long bench_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, flen) && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* pid and tid from a report file name, slow_request_<stamp>_<pid>_<tid>[_<n>].log;
 * 0 on success, -1 for any other name (temporary files, JSON twins). */
static inline int bench_report_name(const char *name, int *ret_pid, int *ret_tid)
{
    int pid, tid, used = 0;
    size_t len = strlen(name);

    if (len < 4 || strcmp(name + len - 4, ".log") != 0)
        return -1;
    if (sscanf(name, "slow_request_%*[0-9TZ]_%d_%d%n", &pid, &tid, &used) != 2 || used == 0)
        return -1;
    *ret_pid = pid;
    *ret_tid = tid;
    return 0;
}

/* The next report file an inotify buffer [*p, end) announces (events of
 * other files skipped): 1 with its tid, *p moved past it; 0 at the end.
 * *overflow (if not NULL) is set when the kernel's queue overflowed. */
static inline int bench_next_report(const char **p, const char *end, int *ret_tid, bool *overflow)
{
    while (*p < end) {
        const struct inotify_event *ev = (const struct inotify_event *)(const void *)*p;
        int pid;

        *p += sizeof(*ev) + ev->len;
        if (overflow && (ev->mask & IN_Q_OVERFLOW))
            *overflow = true;
        if (ev->len && bench_report_name(ev->name, &pid, ret_tid) == 0)
            return 1;
    }
    return 0;
}

/*
 * Start a private dogslowd: socket sock, reports in out, timer seconds,
 * no follow-up sampling, no retention limit (a benchmark counts every
 * report).  Its log goes to log.  privsep: NULL for the daemon's default,
 * else "true" or "false" (--set privsep=..., so that one run can compare
 * naming in the analysis process with naming in the daemon).  Returns its
 * pid once the socket exists, or -1.
 */
static inline pid_t bench_start_daemon_privsep(const char *dogslowd, const char *sock,
                                               const char *out, const char *timer, const char *log,
                                               const char *privsep)
{
    char ps[32];
    const char *argv[] = {"dogslowd",
                          "--socket",
                          sock,
                          "--output",
                          out,
                          "--timer",
                          timer,
                          "--timer-min",
                          "0.1",
                          "--follow",
                          "0",
                          "--set",
                          "retention_max_files=0",
                          "--set",
                          "retention_max_bytes=0",
                          "--set",
                          getuid() == 0 ? "user=root" : "enabled=true",
                          privsep ? "--set" : NULL,
                          ps,
                          NULL};
    pid_t pid;

    snprintf(ps, sizeof(ps), "privsep=%s", privsep ? privsep : "");
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!freopen(log, "a", stderr) || !freopen("/dev/null", "r", stdin))
            _exit(127);
        execv(dogslowd, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (access(sock, F_OK) == 0)
            return pid;
        usleep(10000);
    }
    return -1;
}

static inline pid_t bench_start_daemon(const char *dogslowd, const char *sock, const char *out,
                                       const char *timer, const char *log)
{
    return bench_start_daemon_privsep(dogslowd, sock, out, timer, log, NULL);
}

/*
 * Which way did the daemon that logged to log name frames?  1: in an
 * analysis process (it logs "privilege separation: ..." once that runs),
 * 0: in itself, -1: the log cannot be read.  A comparison of privsep on
 * and off is only one if each daemon really ran that way.
 */
static inline int bench_log_privsep(const char *log)
{
    char line[1024];
    int r = 0;
    FILE *f = fopen(log, "re");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "privilege separation: frames are named in a process")) {
            r = 1;
            break;
        }
    fclose(f);
    return r;
}

/* "privsep=true"-style label of what bench_log_privsep() found. */
static inline const char *bench_privsep_name(int found)
{
    return found == 1 ? "privsep=true" : found == 0 ? "privsep=false" : "unknown (no log)";
}

#endif
