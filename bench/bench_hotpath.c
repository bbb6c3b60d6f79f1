/* SPDX-License-Identifier: MIT */
/*
 * Hot-path benchmark: nanoseconds per dogslow_begin()+dogslow_end() pair in
 * a registered worker, against a baseline that tells a watcher about each
 * event the obvious way: one sendmsg() per event over a Unix datagram socket
 * (a receiver thread drains it).  Both run in this process, in this run.
 *
 *     DOGSLOWD=daemon/dogslowd bench/bench_hotpath [--raw] [PAIRS]
 *
 * Prints the median of 7 runs of each, and the ratio; with --raw, one line
 * "pair_ns X sendmsg_ns Y" for bench/run.
 *
 *     DOGSLOW_SOCKET=PATH bench/bench_hotpath --only-pairs N
 *
 * registers with a daemon that is already running, makes N pairs and
 * exits: bench/run counts its system calls with strace for two values of N
 * (a daemon started from here would be traced too).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

#define RUNS 7

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof(*v), cmp);
    return v[RUNS / 2];
}

static void *drain(void *arg)
{
    int fd = *(int *)arg;
    char buf[2048];

    while (recv(fd, buf, sizeof(buf), 0) > 0)
        ;
    return NULL;
}

struct event {
    int kind;
    unsigned long long t;
    char method[16];
    char url[64];
};

/* Register, make n pairs, exit: nothing else, so strace counts the hot path. */
static int only_pairs(long n)
{
    struct dogslow_options o = {.socket_path = getenv("DOGSLOW_SOCKET")};

    if (dogslow_register(&o) < 0) {
        fprintf(stderr, "bench: cannot register: %s\n", dogslow_last_error());
        return 1;
    }
    for (long i = 0; i < n; i++) {
        dogslow_begin("GET", "/orders/42");
        dogslow_end();
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool raw = argc > 1 && !strcmp(argv[1], "--raw");
    if (argc > 2 && !strcmp(argv[1], "--only-pairs"))
        return only_pairs(strtol(argv[2], NULL, 10));
    if (raw) {
        argc--;
        argv++;
    }
    long pairs = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    const char *daemon = getenv("DOGSLOWD");
    char dir[] = "/tmp/dogslow-bench-XXXXXX", sock[128], out[128];
    double ours[RUNS], base[RUNS];
    pid_t dpid;
    int sv[2];
    pthread_t t;

    if (!daemon || pairs <= 0) {
        fprintf(stderr, "usage: DOGSLOWD=path/to/dogslowd bench_hotpath [PAIRS]\n");
        return 2;
    }
    if (!mkdtemp(dir))
        return 2;
    snprintf(sock, sizeof(sock), "%s/dogslow.sock", dir);
    snprintf(out, sizeof(out), "%s/reports", dir);
    dpid = fork();
    if (dpid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(daemon, "dogslowd", "--socket", sock, "--output", out, (char *)NULL);
        _exit(127);
    }
    struct dogslow_options o = {.socket_path = sock};
    int r = -1;
    for (int i = 0; i < 200 && r < 0; i++) {
        r = dogslow_register(&o);
        if (r < 0)
            usleep(20000);
    }
    if (r < 0) {
        fprintf(stderr, "bench: cannot register: %s\n", dogslow_last_error());
        kill(dpid, SIGTERM);
        return 1;
    }

    /* Warm up: claim the slot, fault in the page. */
    for (int i = 0; i < 1000; i++) {
        dogslow_begin("GET", "/orders/42");
        dogslow_end();
    }
    for (int run = 0; run < RUNS; run++) {
        double t0 = now_s();
        for (long i = 0; i < pairs; i++) {
            dogslow_begin("GET", "/orders/42");
            dogslow_end();
        }
        ours[run] = (now_s() - t0) / (double)pairs * 1e9;
    }

    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 1;
    pthread_create(&t, NULL, drain, &sv[1]);
    long bpairs = pairs / 20 > 0 ? pairs / 20 : 1;
    for (int run = 0; run < RUNS; run++) {
        struct event ev = {.method = "GET", .url = "/orders/42"};
        struct iovec iov = {.iov_base = &ev, .iov_len = sizeof(ev)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        double t0 = now_s();
        for (long i = 0; i < bpairs; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ev.kind = 1;
            ev.t = (unsigned long long)ts.tv_nsec;
            sendmsg(sv[0], &mh, 0);
            ev.kind = 2;
            sendmsg(sv[0], &mh, 0);
        }
        base[run] = (now_s() - t0) / (double)bpairs * 1e9;
    }
    shutdown(sv[0], SHUT_RDWR);
    close(sv[0]);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(t, NULL);

    double m_ours = median(ours), m_base = median(base);
    if (raw)
        printf("pair_ns %.2f sendmsg_ns %.2f\n", m_ours, m_base);
    else
        printf("| figure (median of %d runs) | dogslowd | baseline: sendmsg per event | ratio |\n",
               RUNS);
    if (!raw) {
        printf("|---|---|---|---|\n");
        printf("| begin+end pair, ns | %.1f | %.1f | %.0fx faster |\n", m_ours, m_base,
               m_base / m_ours);
    }

    dogslow_unregister();
    kill(dpid, SIGTERM);
    waitpid(dpid, NULL, 0);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
    return 0;
}
