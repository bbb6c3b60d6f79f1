/* SPDX-License-Identifier: MIT */
/*
 * A worker with a deep stack and known local variables of every kind, for
 * the native snapshot tests.  Built at -O0 and at -O2 -g (and a copy with
 * the debug info stripped).
 *
 *   deep_worker sleep SECONDS     one request stuck in nanosleep, 30 frames deep
 *   deep_worker spin N SECONDS    N requests, each spinning on clock_gettime
 *                                 (a vDSO call) for SECONDS
 *   deep_worker signal SECONDS    a request stuck inside a signal handler
 *   deep_worker thread SECONDS    a second thread stuck; it exits afterwards
 *   deep_worker forged SECONDS    stuck in a function whose file name (in the
 *                                 DWARF, by #line) holds a line break and
 *                                 a forged report line
 *
 * Prints "ready pid=P tid=T" when the request has begun.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

#define DEPTH 27

enum color { RED, GREEN, BLUE };

struct point {
    int x;
    int y;
    const char *label;
};

union number {
    int i;
    float f;
};

static const char *mode = "sleep";
static void forged(double s);
static double seconds = 1.0;
static volatile unsigned long sink;

static void ready(void)
{
    printf("ready pid=%d tid=%d\n", (int)getpid(), (int)gettid());
    fflush(stdout);
}

static void __attribute__((noinline)) spin_on_clock(double s)
{
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b); /* the vDSO: where snapshots land */
        sink++;
    } while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < s);
}

static void __attribute__((noinline)) sleep_for(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Always inlined, even at -O0: the report must show it as a frame. */
static inline __attribute__((always_inline)) void wait_inlined(int rounds)
{
    volatile int inlined_rounds = rounds;

    if (!strcmp(mode, "spin"))
        spin_on_clock(seconds);
    else
        sleep_for(seconds);
    sink += (unsigned long)inlined_rounds;
}

static void __attribute__((noinline)) stuck_here(int depth_param, double ratio, const char *name)
{
    volatile int counter = 42;
    volatile long big = -1234567890123L;
    volatile unsigned short small = 65535;
    volatile float f = 1.5f;
    volatile double d = 2.25;
    volatile bool flag = true;
    volatile enum color c = BLUE;
    const char *volatile greeting = "hello, dogslow";
    volatile char buf[16] = "abc";
    volatile struct point p = {3, 4, "origin"};
    volatile union number u = {.i = 7};
    volatile int arr[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    int *volatile ptr = (int *)&arr[0];
    const char *volatile password = "hunter2";
    const char *volatile card = "4111 1111 1111 1111"; /* a test card number */

    wait_inlined(3);
    sink += (unsigned long)(counter + big + small + f + d + flag + c + greeting[0] + buf[0] +
                            p.x + u.i + arr[0] + *ptr + password[0] + card[0] + depth_param + ratio +
                            name[0]);
}

static void __attribute__((noinline)) descend(int level)
{
    volatile int here = level * 10;

    if (level < DEPTH)
        descend(level + 1);
    else
        stuck_here(level, 0.5, "bottom");
    sink += (unsigned long)here; /* no tail call: every level keeps its frame */
}

static void handler(int sig)
{
    volatile int in_handler = sig;

    descend(DEPTH - 2);
    sink += (unsigned long)in_handler;
}

static void *thread_main(void *arg)
{
    dogslow_begin("GET", "/deep/thread");
    ready();
    descend(1);
    dogslow_end();
    return arg;
}

int main(int argc, char **argv)
{
    int requests = 1;

    if (argc > 1)
        mode = argv[1];
    if (!strcmp(mode, "spin")) {
        requests = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1;
        seconds = argc > 3 ? strtod(argv[3], NULL) : 0.2;
    } else {
        seconds = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    }
    if (dogslow_register(NULL) < 0) {
        printf("register-failed %s\n", dogslow_last_error());
        return 2;
    }
    if (!strcmp(mode, "signal")) {
        signal(SIGUSR1, handler);
        dogslow_begin("GET", "/deep/signal");
        ready();
        raise(SIGUSR1);
        dogslow_end();
    } else if (!strcmp(mode, "forged")) {
        dogslow_begin("GET", "/deep/forged");
        ready();
        forged(seconds);
        dogslow_end();
    } else if (!strcmp(mode, "thread")) {
        pthread_t t;
        pthread_create(&t, NULL, thread_main, NULL);
        pthread_join(t, NULL);
    } else {
        for (int i = 0; i < requests; i++) {
            dogslow_begin("GET", "/deep");
            if (i == 0)
                ready();
            descend(1);
            dogslow_end();
        }
    }
    printf("done\n");
    return 0;
}

/* Last in the file: everything after the #line is attributed to a file
 * whose name is two report lines. */
#line 1 "forged\n  File \"/etc/shadow\", line 1, in root_only"
static void __attribute__((noinline)) forged(double s)
{
    /* Not sleep_for()'s code: -O2 would fold the two into one. */
    for (int i = 0; i < (int)(s * 100); i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        sink++;
    }
}
