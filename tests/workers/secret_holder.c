/* SPDX-License-Identifier: MIT */
/*
 * The confused-deputy tests' programs (check_deputy, issue 14), in one
 * binary built like deep_worker (no libtool, no sanitizers: the test makes
 * a set-uid-root copy of it, and a set-uid program must not depend on
 * LD_LIBRARY_PATH or a sanitizer's runtime):
 *
 *   hold FILE SECONDS
 *       What an attacker would exec: read FILE (a 0600 root file, when this
 *       is the set-uid-root copy) into a local 'secret' and keep it on the
 *       stack, burning CPU, for SECONDS.  Meanwhile /proc/self/status is
 *       sampled: it prints "hold euid=E secret=N traced=T stopped=S" at the
 *       end, T being the samples with a TracerPid, S the times the wall
 *       clock jumped by more than 50 ms between samples (held by a tracer).
 *
 *   deputy UID HOW PROG ARG...
 *       The attack: become UID (from root), register with the daemon,
 *       begin a request, and exec PROG in the same process so that the
 *       daemon's deadline comes while PROG runs.  HOW says how the daemon's
 *       connection and scoreboard survive the exec: "keep" clears
 *       FD_CLOEXEC on them, "child" leaves them to a forked child that
 *       outlives the exec (and exits with PROG's process).
 *
 *   worker UID SECONDS
 *       An honest worker as UID: one request burning CPU for SECONDS in
 *       compute_quietly() (the source-line test).
 *
 *   undumpable UID SECONDS
 *       The same without PR_SET_DUMPABLE after switching to UID: the
 *       registration is refused (it prints "register-failed MESSAGE").
 *
 * Each prints "ready pid=P" once its request has begun.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

static volatile unsigned long sink;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long tracer_pid(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    const char *p;

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    p = strstr(buf, "\nTracerPid:");
    return p ? strtol(p + 11, NULL, 10) : -1;
}

/* The secret stays in this frame while it runs, in a local whose name is
 * not on the daemon's redaction list (a program names its variables as it
 * likes: redaction is no defence here). */
static void __attribute__((noinline)) guard_secret(const char *file, double seconds)
{
    char contents[64];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, contents, sizeof(contents) - 1) : -1;
    double end, last;
    int traced = 0, stopped = 0;

    if (fd >= 0)
        close(fd);
    contents[n > 0 ? n : 0] = '\0';
    contents[strcspn(contents, "\n")] = '\0';
    end = now_s() + seconds;
    last = now_s();
    while (now_s() < end) {
        double t;

        for (int i = 0; i < 20000; i++)
            sink += (unsigned long)i * (unsigned char)contents[i % 8];
        if (tracer_pid() > 0)
            traced++;
        t = now_s();
        if (t - last > 0.05)
            stopped++;
        last = t;
    }
    printf("hold euid=%d secret=%zu traced=%d stopped=%d\n", (int)geteuid(), strlen(contents),
           traced, stopped);
    fflush(stdout);
    __asm__ volatile("" ::"r"(contents) : "memory");
}

static int become(uid_t uid, bool dumpable)
{
    if (uid == getuid())
        return 0;
    if (setgroups(0, NULL) < 0 || setgid((gid_t)uid) < 0 || setuid(uid) < 0) {
        printf("cannot become uid %u: %s\n", (unsigned)uid, strerror(errno));
        return -1;
    }
    /* A process that changed its credentials is not dumpable; an honest
     * worker that drops privileges says it may be traced again. */
    if (dumpable)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    return 0;
}

static void __attribute__((noinline)) compute_quietly(double seconds)
{
    double end = now_s() + seconds;

    while (now_s() < end)
        for (int i = 0; i < 20000; i++)
            sink += (unsigned long)i * 3;
    __asm__ volatile("");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "hold") && argc == 4) {
        printf("ready pid=%d euid=%d\n", (int)getpid(), (int)geteuid());
        guard_secret(argv[2], strtod(argv[3], NULL));
        return 0;
    }
    if ((!strcmp(mode, "worker") || !strcmp(mode, "undumpable")) && argc == 4) {
        if (become((uid_t)strtoul(argv[2], NULL, 10), !strcmp(mode, "worker")) < 0 ||
            dogslow_register(NULL) < 0 ||
            dogslow_begin("GET", "/honest/compute") < 0) {
            printf("register-failed %s\n", dogslow_last_error());
            return 2;
        }
        printf("ready pid=%d\n", (int)getpid());
        compute_quietly(strtod(argv[3], NULL));
        dogslow_end();
        return 0;
    }
    if (!strcmp(mode, "deputy") && argc >= 5) {
        const char *how = argv[3];

        if (become((uid_t)strtoul(argv[2], NULL, 10), true) < 0)
            return 2;
        if (dogslow_register(NULL) < 0 || dogslow_begin("POST", "/deputy/exec") < 0) {
            printf("register-failed %s\n", dogslow_last_error());
            return 2;
        }
        if (!strcmp(how, "keep")) {
            /* Everything the library opened (its socket, the scoreboard's
             * memfd) survives the exec. */
            for (int fd = 3; fd < 1024; fd++) {
                int fl = fcntl(fd, F_GETFD);

                if (fl >= 0)
                    fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
            }
        } else if (!strcmp(how, "child")) {
            pid_t parent = getpid();
            int dups[64], ndups = 0;
            pid_t c;

            /* Copies of the library's descriptors (a dup has no
             * FD_CLOEXEC) that the child keeps: the library closes its
             * own in a forked child. */
            for (int fd = 3; fd < 100 && ndups < 64; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                    dups[ndups++] = fcntl(fd, F_DUPFD, 100);
            c = fork();
            if (c < 0)
                return 2;
            if (c != 0) {
                for (int i = 0; i < ndups; i++)
                    if (dups[i] >= 0)
                        close(dups[i]);
            } else {
                /* Hold the descriptors until the exec'd parent is gone. */
                prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                while (getppid() == parent)
                    usleep(20 * 1000);
                _exit(0);
            }
        } else {
            return 2;
        }
        printf("ready pid=%d\n", (int)getpid());
        execv(argv[4], argv + 4);
        printf("exec %s: %s\n", argv[4], strerror(errno));
        return 3;
    }
    fprintf(stderr, "usage: secret_holder hold FILE SECONDS | deputy UID keep|child PROG ARG... | "
                    "worker UID SECONDS\n");
    return 2;
}
