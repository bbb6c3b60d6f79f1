/* SPDX-License-Identifier: MIT */
/*
 * A worker that checks, from the inside, that being snapshotted changes
 * nothing.  Each mode runs one request around a blocking call (or a CPU
 * loop) while the daemon samples the thread many times, and verifies that
 * the call returned exactly what it must: no EINTR, no short sleep, no lost
 * wake-up, every signal delivered once.
 *
 *   transparent_worker MODE [unwatched]
 *     nanosleep | read | poll | epoll | mutex | condvar | waitpid | cpu | signals
 *
 * With "unwatched" it does not register: the control run.
 *
 * Prints "ready pid=P tid=T", then "ok MODE ..." or "FAIL MODE ...".
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

#define PHASE_MS 2500

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int pipefd[2];

static void *pipe_writer(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        sleep_ms(PHASE_MS / n);
        char c = (char)('a' + i % 26);
        if (write(pipefd[1], &c, 1) != 1)
            break;
    }
    return NULL;
}

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready_flag, wakeups;

static void *holder(void *arg)
{
    pthread_mutex_lock(&m);
    __atomic_store_n(&ready_flag, 1, __ATOMIC_RELEASE);
    sleep_ms(PHASE_MS);
    pthread_mutex_unlock(&m);
    return arg;
}

static void *signaller(void *arg)
{
    sleep_ms(PHASE_MS);
    pthread_mutex_lock(&m);
    wakeups++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&m);
    return arg;
}

static volatile sig_atomic_t got_usr1, got_alrm, got_rt, got_chld;
static volatile long rt_sum;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGUSR1) {
        got_usr1++;
        /* Acknowledge each one, so the test never has two in flight
         * (standard signals merge; that would not be our doing). */
        (void)!write(1, "usr1\n", 5);
    }
    else if (sig == SIGALRM)
        got_alrm++;
    else if (sig == SIGCHLD) {
        got_chld++;
        (void)!write(1, "chld\n", 5);
    }
    else if (sig == SIGRTMIN) {
        got_rt++;
        rt_sum += si->si_value.sival_int;
    }
}

static int run(const char *mode)
{
    char msg[200] = "";
    int ok = 0;
    double t0 = now_ms();

    if (!strcmp(mode, "nanosleep")) {
        struct timespec ts = {PHASE_MS / 1000, (long)(PHASE_MS % 1000) * 1000000L};
        int r = nanosleep(&ts, NULL);
        double took = now_ms() - t0;
        ok = r == 0 && took >= PHASE_MS;
        snprintf(msg, sizeof(msg), "r=%d errno=%d took=%.1f", r, r ? errno : 0, took);
    } else if (!strcmp(mode, "read")) {
        pthread_t t;
        int n = 30, got = 0, bad = 0;
        if (pipe(pipefd) < 0)
            return 1;
        pthread_create(&t, NULL, pipe_writer, &n);
        for (int i = 0; i < n; i++) {
            char c;
            ssize_t r = read(pipefd[0], &c, 1);
            if (r == 1 && c == 'a' + i % 26)
                got++;
            else
                bad++;
        }
        pthread_join(t, NULL);
        ok = got == n && bad == 0;
        snprintf(msg, sizeof(msg), "got=%d bad=%d", got, bad);
    } else if (!strcmp(mode, "poll") || !strcmp(mode, "epoll")) {
        pthread_t t;
        int n = 1, r;
        if (pipe(pipefd) < 0)
            return 1;
        pthread_create(&t, NULL, pipe_writer, &n);
        if (!strcmp(mode, "poll")) {
            struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
            r = poll(&pfd, 1, PHASE_MS * 3);
        } else {
            int ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN}, out;
            epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);
            r = epoll_wait(ep, &out, 1, PHASE_MS * 3);
        }
        double took = now_ms() - t0;
        pthread_join(t, NULL);
        /* Ready exactly when the writer wrote, not early, not timed out. */
        ok = r == 1 && took >= PHASE_MS - 5 && took < PHASE_MS * 3;
        snprintf(msg, sizeof(msg), "r=%d errno=%d took=%.1f", r, r < 0 ? errno : 0, took);
    } else if (!strcmp(mode, "mutex")) {
        pthread_t t;
        pthread_create(&t, NULL, holder, NULL);
        while (!__atomic_load_n(&ready_flag, __ATOMIC_ACQUIRE))
            ;
        int r = pthread_mutex_lock(&m);
        double took = now_ms() - t0;
        pthread_mutex_unlock(&m);
        pthread_join(t, NULL);
        ok = r == 0 && took >= PHASE_MS - 5;
        snprintf(msg, sizeof(msg), "r=%d took=%.1f", r, took);
    } else if (!strcmp(mode, "condvar")) {
        pthread_t t;
        int woke = 0, spurious = 0;
        pthread_mutex_lock(&m);
        pthread_create(&t, NULL, signaller, NULL);
        while (wakeups == 0) {
            int r = pthread_cond_wait(&cv, &m);
            if (r != 0)
                break;
            if (wakeups == 0)
                spurious++;
            else
                woke = 1;
        }
        pthread_mutex_unlock(&m);
        pthread_join(t, NULL);
        double took = now_ms() - t0;
        /* Spurious wake-ups are allowed by POSIX but must not come from us;
         * a lost one would hang here until the test's timeout. */
        ok = woke && took >= PHASE_MS - 5;
        snprintf(msg, sizeof(msg), "woke=%d spurious=%d took=%.1f", woke, spurious, took);
    } else if (!strcmp(mode, "waitpid")) {
        int st = 0;
        pid_t c = fork();
        if (c == 0) {
            sleep_ms(PHASE_MS);
            _exit(7);
        }
        pid_t r = waitpid(c, &st, 0);
        ok = r == c && WIFEXITED(st) && WEXITSTATUS(st) == 7;
        snprintf(msg, sizeof(msg), "r=%d child=%d status=%d errno=%d", (int)r, (int)c,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1, r < 0 ? errno : 0);
    } else if (!strcmp(mode, "cpu")) {
        /* A fixed computation: its result cannot depend on being sampled. */
        unsigned long x = 88172645463325252ul, sum = 0;
        for (long i = 0; i < 700000000L; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sum += x >> 60;
        }
        ok = 1; /* the test compares sum with a run nobody watched */
        snprintf(msg, sizeof(msg), "sum=%lu", sum);
    } else if (!strcmp(mode, "signals")) {
        /* Count what arrives while the daemon samples this thread, which
         * spins; the test sends the signals from outside. */
        struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGALRM, &sa, NULL);
        sigaction(SIGRTMIN, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        printf("armed\n");
        fflush(stdout);
        struct itimerval it = {.it_interval = {0, 50000}, .it_value = {0, 50000}};
        setitimer(ITIMER_REAL, &it, NULL);
        while (now_ms() - t0 < PHASE_MS)
            ;
        struct itimerval off = {0};
        setitimer(ITIMER_REAL, &off, NULL);
        /* Give signals still in flight a moment to land. */
        sleep_ms(100);
        ok = 1;
        snprintf(msg, sizeof(msg), "usr1=%d alrm=%d rt=%d rtsum=%ld chld=%d", (int)got_usr1,
                 (int)got_alrm, (int)got_rt, (long)rt_sum, (int)got_chld);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%s %s %s\n", ok ? "ok" : "FAIL", mode, msg);
    fflush(stdout);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "nanosleep";
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    bool watched = !(argc > 2 && !strcmp(argv[2], "unwatched"));

    if (watched && dogslow_register(NULL) < 0) {
        printf("register-failed %s\n", dogslow_last_error());
        return 2;
    }
    dogslow_begin("GET", mode);
    printf("ready pid=%d tid=%d\n", (int)getpid(), (int)gettid());
    fflush(stdout);
    rc = run(mode);
    dogslow_end();
    return rc;
}
