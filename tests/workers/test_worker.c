/* SPDX-License-Identifier: MIT */
/*
 * A real worker process for the integration tests.  It links libdogslow
 * like any application and acts out one scenario:
 *
 *   slow SECONDS METHOD URL   one request stuck in nanosleep for SECONDS
 *   spin SECONDS METHOD URL   one request burning CPU for SECONDS
 *   fast COUNT                COUNT requests that end at once
 *   exitmid SECONDS           a request that is abandoned by _exit()
 *   fork SECONDS              parent registers and forks; the child's
 *                             request is slow, the parent's is fast
 *   forkbusy SECONDS          as fork, but the child's first request comes
 *                             while the daemon is busy holding the parent
 *                             (DOGSLOWD_TEST_HOLD_MS); its slow request
 *                             follows a few fast ones
 *   thread SECONDS            a second thread handles the slow request
 *   noregister SECONDS        begin/end without a daemon: must be no-ops
 *   restart SECONDS           a request that spans a daemon restart; a second
 *                             thread keeps making fast requests meanwhile
 *   threads SECONDS N         N threads, each in a request of SECONDS
 *   stagger SECONDS GAP N L   N threads; thread i begins a request of
 *                             SECONDS at i * GAP s (GET /stagger/i); the
 *                             process lives L s more (not in a request)
 *   cycles N                  register, one request, unregister; N times
 *   execmid SECONDS           a thread in a slow request, the main thread
 *                             execs /bin/sleep after SECONDS
 *   phases A B C              one request: A s asleep, B s on the CPU, C s
 *                             waiting for a mutex another thread holds
 *   vforks SECONDS N          N threads, each begins a request and vfork()s
 *                             a child that sleeps SECONDS: the threads wait
 *                             in an uninterruptible sleep, where a ptrace
 *                             stop cannot reach them; after the request
 *                             each waits 1 s more (not in a request)
 *
 * It prints "ready pid=P tid=T" when the interesting request has begun, and
 * "done rc=R" at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dogslow.h"

static double seconds;

static void say_ready(void)
{
    printf("ready pid=%d tid=%d\n", (int)getpid(), (int)gettid());
    fflush(stdout);
}

static void __attribute__((noinline)) wait_for_database(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void __attribute__((noinline)) handle_slow_request(const char *method, const char *url)
{
    if (dogslow_begin(method, url) == 0)
        say_ready();
    else {
        printf("ready-unwatched pid=%d tid=%d\n", (int)getpid(), (int)gettid());
        fflush(stdout);
    }
    wait_for_database(seconds);
    dogslow_end();
}

static volatile unsigned long sink;

static void __attribute__((noinline)) burn_cpu(double s)
{
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 100000; i++)
            sink += (unsigned long)i * 7;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < s);
}

static void __attribute__((noinline)) handle_spin_request(const char *method, const char *url)
{
    dogslow_begin(method, url);
    say_ready();
    burn_cpu(seconds);
    dogslow_end();
}

/* Three phases of known lengths, for the follow-up tests. */
/* The empty asm after each call keeps the compiler from turning it into a
 * tail call, which would take the phase's frame off the stack. */
static void __attribute__((noinline)) phase_sleep(double s)
{
    wait_for_database(s);
    __asm__ volatile("");
}

static void __attribute__((noinline)) phase_cpu(double s)
{
    burn_cpu(s);
    __asm__ volatile("");
}

static pthread_mutex_t phase_lock_m = PTHREAD_MUTEX_INITIALIZER;
static double phase_lock_s;

static void *lock_holder(void *arg)
{
    pthread_mutex_lock(&phase_lock_m);
    /* Tell the main thread we hold it, then keep it for the phase. */
    __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
    wait_for_database(phase_lock_s);
    pthread_mutex_unlock(&phase_lock_m);
    return NULL;
}

static void __attribute__((noinline)) phase_lock(double s)
{
    pthread_t t;
    int held = 0;

    phase_lock_s = s;
    pthread_create(&t, NULL, lock_holder, &held);
    while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE))
        ;
    pthread_mutex_lock(&phase_lock_m); /* waits for the holder */
    pthread_mutex_unlock(&phase_lock_m);
    pthread_join(t, NULL);
}

static void __attribute__((noinline)) handle_phased_request(double a, double b, double c)
{
    dogslow_begin("GET", "/phases");
    say_ready();
    phase_sleep(a);
    phase_cpu(b);
    phase_lock(c);
    dogslow_end();
}

static int many_done, many_go, many_watched, many_unwatched;

/* One of many threads: begin a request, report whether it got a slot, wait
 * for the go, then hold the request for SECONDS. */
static void *many_thread(void *arg)
{
    if (dogslow_begin("GET", "/many") == 0)
        __atomic_add_fetch(&many_watched, 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&many_unwatched, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&many_done, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&many_go, __ATOMIC_ACQUIRE))
        wait_for_database(0.01);
    wait_for_database(seconds);
    dogslow_end();
    return arg;
}

static double stagger_gap;

static void *stagger_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    char url[64];

    wait_for_database(i * stagger_gap);
    snprintf(url, sizeof(url), "/stagger/%d", i);
    if (dogslow_begin("GET", url) == 0) {
        wait_for_database(seconds);
        dogslow_end();
    }
    return NULL;
}

static double vfork_s;
static int vfork_begun, vfork_failed;

static void *vfork_thread(void *arg)
{
    pid_t c;
    int st;

    (void)arg;
    if (dogslow_begin("GET", "/vfork/wait") < 0)
        __atomic_add_fetch(&vfork_failed, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&vfork_begun, 1, __ATOMIC_RELEASE);
    c = vfork();
    if (c == 0) {
        /* Only async-signal-safe calls in a vfork child. */
        struct timespec ts = {.tv_sec = (time_t)vfork_s,
                              .tv_nsec = (long)((vfork_s - (time_t)vfork_s) * 1e9)};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    if (c < 0 || waitpid(c, &st, 0) != c)
        __atomic_add_fetch(&vfork_failed, 1, __ATOMIC_RELAXED);
    dogslow_end();
    wait_for_database(1.0);
    return NULL;
}

static void *slow_thread(void *arg)
{
    handle_slow_request("POST", "/thread/slow");
    return arg;
}

static volatile int stop_fast;

static void *fast_loop(void *arg)
{
    struct timespec ts = {0, 20 * 1000 * 1000};

    while (!stop_fast) {
        dogslow_begin("GET", "/fast");
        dogslow_end();
        nanosleep(&ts, NULL);
    }
    return arg;
}

static int reg(void)
{
    int r = dogslow_register(NULL);

    if (r < 0) {
        printf("register-failed r=%d err=%s msg=%s\n", r, strerror(-r), dogslow_last_error());
        fflush(stdout);
    }
    return r;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int rc = 0;

    seconds = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (!strcmp(mode, "slow") || !strcmp(mode, "spin")) {
        if (reg() < 0)
            return 2;
        const char *method = argc > 3 ? argv[3] : "GET";
        const char *url = argc > 4 ? argv[4] : "/slow";
        if (!strcmp(mode, "slow"))
            handle_slow_request(method, url);
        else
            handle_spin_request(method, url);
    } else if (!strcmp(mode, "fast")) {
        if (reg() < 0)
            return 2;
        say_ready();
        for (int i = 0; i < (int)seconds; i++) {
            dogslow_begin("GET", "/fast");
            dogslow_end();
        }
        /* Stay alive past any timer so a missed end would be noticed. */
        wait_for_database(1.0);
    } else if (!strcmp(mode, "exitmid")) {
        if (reg() < 0)
            return 2;
        dogslow_begin("GET", "/abandoned");
        say_ready();
        wait_for_database(seconds);
        _exit(0);
    } else if (!strcmp(mode, "fork")) {
        if (reg() < 0)
            return 2;
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            handle_slow_request("GET", "/child/slow");
            _exit(0);
        }
        dogslow_begin("GET", "/parent/fast");
        dogslow_end();
        int st;
        waitpid(child, &st, 0);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    } else if (!strcmp(mode, "forkbusy")) {
        if (reg() < 0)
            return 2;
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            /* By now the daemon holds the parent: this hello waits. */
            usleep(400 * 1000);
            dogslow_begin("GET", "/child/first");
            dogslow_end();
            for (int i = 0; i < 20; i++) {
                usleep(50 * 1000);
                dogslow_begin("GET", "/child/fast");
                dogslow_end();
            }
            handle_slow_request("GET", "/child/slow");
            _exit(0);
        }
        handle_slow_request("GET", "/parent/slow");
        int st;
        waitpid(child, &st, 0);
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    } else if (!strcmp(mode, "thread")) {
        pthread_t t;
        if (reg() < 0)
            return 2;
        dogslow_begin("GET", "/main/fast");
        dogslow_end();
        pthread_create(&t, NULL, slow_thread, NULL);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "noregister")) {
        int r1 = dogslow_register(NULL);
        int r2 = dogslow_begin("GET", "/x");
        int r3 = dogslow_end();
        printf("register=%d begin=%d end=%d msg=%s\n", r1, r2, r3, dogslow_last_error());
        rc = (r1 < 0 && r2 < 0) ? 0 : 1;
    } else if (!strcmp(mode, "threads")) {
        /* argv[3] threads, each in a request of SECONDS: more than the
         * scoreboard has slots. */
        int n = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 1000, started = 0;
        pthread_t *t = calloc((size_t)n, sizeof(*t));
        if (reg() < 0 || !t)
            return 2;
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, many_thread, NULL) == 0)
                started++;
        while (__atomic_load_n(&many_done, __ATOMIC_ACQUIRE) < started)
            wait_for_database(0.01);
        printf("ready pid=%d tid=%d watched=%d unwatched=%d\n", (int)getpid(), (int)gettid(),
               __atomic_load_n(&many_watched, __ATOMIC_RELAXED),
               __atomic_load_n(&many_unwatched, __ATOMIC_RELAXED));
        fflush(stdout);
        __atomic_store_n(&many_go, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        free(t);
    } else if (!strcmp(mode, "stagger")) {
        int n = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 3;
        pthread_t t[16];

        stagger_gap = argc > 3 ? strtod(argv[3], NULL) : 0.4;
        if (n < 1 || n > 16 || reg() < 0)
            return 2;
        printf("ready pid=%d tid=%d\n", (int)getpid(), (int)gettid());
        fflush(stdout);
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, stagger_thread, (void *)(intptr_t)i) != 0)
                return 2;
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        wait_for_database(argc > 5 ? strtod(argv[5], NULL) : 0);
    } else if (!strcmp(mode, "cycles")) {
        /* Register and unregister over and over (a request each time). */
        int n = (int)seconds, ok = 0;
        for (int i = 0; i < n; i++) {
            if (dogslow_register(NULL) == 0 && dogslow_begin("GET", "/cycle") == 0) {
                dogslow_end();
                ok++;
            }
            dogslow_unregister();
        }
        printf("cycles ok=%d of %d\n", ok, n);
        rc = ok == n ? 0 : 1;
    } else if (!strcmp(mode, "execmid")) {
        /* A thread in a slow request; the main thread execs meanwhile. */
        pthread_t t;
        if (reg() < 0)
            return 2;
        pthread_create(&t, NULL, slow_thread, NULL);
        wait_for_database(seconds);
        execl("/bin/sleep", "sleep", "1", (char *)NULL);
        return 3;
    } else if (!strcmp(mode, "phases")) {
        if (reg() < 0)
            return 2;
        handle_phased_request(seconds, argc > 3 ? strtod(argv[3], NULL) : 1.0,
                              argc > 4 ? strtod(argv[4], NULL) : 1.0);
    } else if (!strcmp(mode, "vforks")) {
        int n = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 100, started = 0;
        pthread_t *t = calloc((size_t)n, sizeof(*t));

        vfork_s = seconds;
        if (reg() < 0 || !t)
            return 2;
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, vfork_thread, NULL) == 0)
                started++;
        while (__atomic_load_n(&vfork_begun, __ATOMIC_ACQUIRE) < started)
            wait_for_database(0.01);
        printf("ready pid=%d tid=%d threads=%d\n", (int)getpid(), (int)gettid(), started);
        fflush(stdout);
        for (int i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        free(t);
        rc = started == n && vfork_failed == 0 ? 0 : 1;
    } else if (!strcmp(mode, "restart")) {
        pthread_t t;
        if (reg() < 0)
            return 2;
        pthread_create(&t, NULL, fast_loop, NULL);
        handle_slow_request("GET", "/across/restart");
        stop_fast = 1;
        pthread_join(t, NULL);
    } else {
        fprintf(stderr, "usage: test_worker slow|spin|fast|exitmid|fork|thread|noregister|restart ...\n");
        return 2;
    }
    printf("done rc=%d\n", rc);
    return rc;
}
