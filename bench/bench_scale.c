/* SPDX-License-Identifier: MIT */
/*
 * Scale: what does dogslowd cost when many threads make many requests?
 *
 *     bench_scale DOGSLOWD --procs M --threads N --rate R --seconds S
 *                 [--timer T] [--busy-ms D] [--slow-every K --slow-ms L]
 *                 [--privsep true|false]
 *
 * Starts a private dogslowd and M worker processes holding N registered
 * threads in all, which make R requests a second in total, paced with
 * clock_nanosleep(TIMER_ABSTIME) and spread evenly over the period.  Each
 * request is dogslow_begin(), D ms asleep (0: nothing), dogslow_end().
 * Over the window (the first second left out as warm-up) it reads the
 * daemon's utime+stime from /proc/PID/stat and its VmRSS/VmHWM.
 *
 * With --slow-every K, one request in K of each thread sleeps L ms instead:
 * with a timer T shorter than L each one must give exactly one report.
 * Reports are seen with inotify on the report directory; the lateness of
 * each is the time its file appeared minus (the worker's own clock read
 * just before dogslow_begin + T).  The check fails (exit 1) unless every
 * slow request got exactly one report and no other request got one.
 *
 * --privsep sets the daemon's privsep (default: its own default, true).
 *
 * Prints markdown table rows (figure | dogslowd | peer | ratio), and a
 * line starting with "FAILED:" for each check that did not hold.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bench_util.h"
#include "dogslow.h"

struct slow_rec {
    int32_t tid;
    int32_t pid;
    uint64_t start_ns; /* CLOCK_MONOTONIC, just before dogslow_begin() */
    bool planned;      /* false: a fast request that ran past the timer anyway */
};

/* Shared (MAP_SHARED) between the parent and the worker processes. */
struct shared {
    _Atomic uint64_t t_start; /* 0 until the parent says go */
    uint64_t t_stop, period_ns, busy_ns, slow_ns;
    uint32_t slow_every, threads_total, threads_per_proc;
    _Atomic uint32_t ready;       /* processes with all threads started */
    _Atomic uint32_t failed;      /* registrations or begins that failed */
    _Atomic uint32_t reg_retried; /* processes whose first registration failed */
    _Atomic uint64_t requests;    /* completed, in the window */
    _Atomic uint32_t nslow;       /* records in slow[] */
    _Atomic uint32_t nplanned;    /* of which requests made slow on purpose */
    uint64_t timer_ns;
    uint32_t slow_cap;
    struct slow_rec slow[];
};

static struct shared *sh;
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static bool go;
static const char *sockpath;

struct thread_arg {
    uint32_t index; /* over all processes */
};

static void *request_loop(void *p)
{
    const struct thread_arg *a = p;
    uint64_t start, next, done = 0, n = 0;
    pid_t tid = (pid_t)syscall(SYS_gettid);

    /* Wait for the start without polling: 10,000 pollers would starve the
     * daemon while the other processes register. */
    pthread_mutex_lock(&go_lock);
    while (!go)
        pthread_cond_wait(&go_cond, &go_lock);
    pthread_mutex_unlock(&go_lock);
    start = atomic_load(&sh->t_start);
    /* Spread the threads evenly over the period. */
    next = start + sh->period_ns * a->index / sh->threads_total;
    while (next < sh->t_stop) {
        bench_sleep_until(next);
        bool slow = sh->slow_every && (n + a->index) % sh->slow_every == 0;
        uint64_t t0 = bench_now_ns(CLOCK_MONOTONIC);
        if (dogslow_begin("GET", slow ? "/bench/slow" : "/bench/fast") < 0) {
            atomic_fetch_add(&sh->failed, 1);
            slow = false;
        }
        if (slow)
            atomic_fetch_add(&sh->nplanned, 1);
        uint64_t d = slow ? sh->slow_ns : sh->busy_ns;
        if (d) {
            struct timespec ts = {.tv_sec = (time_t)(d / NS_PER_S),
                                  .tv_nsec = (long)(d % NS_PER_S)};
            while (nanosleep(&ts, &ts) != 0)
                ;
        }
        dogslow_end();
        /* A fast request that a starved CPU kept past the timer (less the
         * coarse clock's tick) may rightly be reported: it is recorded too. */
        uint64_t took = bench_now_ns(CLOCK_MONOTONIC) - t0;
        if (slow || took + 10000000ull >= sh->timer_ns) {
            uint32_t i = atomic_fetch_add(&sh->nslow, 1);
            if (i < sh->slow_cap)
                sh->slow[i] =
                    (struct slow_rec){.tid = tid, .pid = getpid(), .start_ns = t0, .planned = slow};
        }
        n++;
        done++;
        /* Paced on an absolute schedule; a tick missed (after a slow
         * request) is skipped, not made up in a burst. */
        next += sh->period_ns;
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC);
        if (next < now)
            next += (now - next) / sh->period_ns * sh->period_ns + sh->period_ns;
    }
    atomic_fetch_add(&sh->requests, done);
    return NULL;
}

static int worker(uint32_t proc)
{
    struct dogslow_options o = {.socket_path = sockpath, .max_threads = sh->threads_per_proc + 8};
    uint32_t n = sh->threads_per_proc;
    pthread_t *t = calloc(n, sizeof(*t));
    struct thread_arg *a = calloc(n, sizeof(*a));
    pthread_attr_t attr;

    int r = -1;

    /* Many processes register at once: a first attempt may time out (the
     * library waits 2 s).  Try for up to 30 s, and count who had to. */
    for (int i = 0; t && a && r < 0 && i < 15; i++) {
        r = dogslow_register(&o);
        if (r < 0 && i == 0)
            atomic_fetch_add(&sh->reg_retried, 1);
    }
    if (r < 0) {
        fprintf(stderr, "bench_scale: worker %u: cannot register: %s\n", proc,
                dogslow_last_error());
        atomic_fetch_add(&sh->failed, 1);
        atomic_fetch_add(&sh->ready, 1);
        return 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (uint32_t i = 0; i < n; i++) {
        a[i].index = proc * n + i;
        if (pthread_create(&t[i], &attr, request_loop, &a[i]) != 0) {
            atomic_fetch_add(&sh->failed, 1);
            n = i;
            break;
        }
    }
    atomic_fetch_add(&sh->ready, 1);
    while (atomic_load(&sh->t_start) == 0)
        usleep(2000);
    pthread_mutex_lock(&go_lock);
    go = true;
    pthread_cond_broadcast(&go_cond);
    pthread_mutex_unlock(&go_lock);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* ---- the report watcher ---------------------------------------------------- */

struct seen {
    int32_t tid;
    uint64_t when_ns; /* CLOCK_MONOTONIC when the file appeared */
};

static struct {
    int fd;
    struct seen *v;
    size_t n, cap;
    _Atomic bool stop;
    _Atomic uint64_t last_ns;
    _Atomic size_t count;
    bool overflow;
} watch;

static void *watch_loop(void *unused)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

    (void)unused;
    while (!atomic_load(&watch.stop)) {
        ssize_t len = read(watch.fd, buf, sizeof(buf));
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC);
        if (len <= 0) {
            if (len < 0 && errno != EAGAIN && errno != EINTR)
                break;
            usleep(500);
            continue;
        }
        int tid;
        for (const char *p = buf; bench_next_report(&p, buf + len, &tid, &watch.overflow);) {
            if (watch.n == watch.cap) {
                size_t cap = watch.cap ? watch.cap * 2 : 4096;
                struct seen *v = realloc(watch.v, cap * sizeof(*v));
                if (!v)
                    abort();
                watch.v = v;
                watch.cap = cap;
            }
            watch.v[watch.n++] = (struct seen){.tid = tid, .when_ns = now};
            atomic_store(&watch.count, watch.n);
            atomic_store(&watch.last_ns, now);
        }
    }
    return NULL;
}

static int cmp_seen(const void *a, const void *b)
{
    const struct seen *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->when_ns < y->when_ns ? -1 : x->when_ns > y->when_ns;
}

static int cmp_slow(const void *a, const void *b)
{
    const struct slow_rec *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_scale DOGSLOWD --procs M --threads N --rate R --seconds S "
                    "[--timer T] [--busy-ms D] [--slow-every K --slow-ms L] "
                    "[--privsep true|false]\n");
    exit(2);
}

static char *fmt_count(char *buf, size_t size, double v)
{
    long long n = (long long)(v + 0.5);
    if (n >= 1000)
        snprintf(buf, size, "%lld,%03lld", n / 1000, n % 1000);
    else
        snprintf(buf, size, "%lld", n);
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"procs", required_argument, NULL, 'p'},      {"threads", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},       {"seconds", required_argument, NULL, 's'},
        {"timer", required_argument, NULL, 't'},      {"busy-ms", required_argument, NULL, 'b'},
        {"slow-every", required_argument, NULL, 'k'}, {"slow-ms", required_argument, NULL, 'l'},
        {"privsep", required_argument, NULL, 'P'},    {NULL, 0, NULL, 0}};
    unsigned long procs = 10, threads = 1000;
    double rate = 10000, seconds = 5, timer = 25, busy_ms = 0, slow_ms = 1000;
    unsigned long slow_every = 0;
    const char *timer_arg = "25", *privsep = NULL;
    char dir[] = "/tmp/dogslow-bench-scale-XXXXXX", out[PATH_MAX], sock[PATH_MAX], log[PATH_MAX];
    int c, failed = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            procs = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            threads = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 's':
            seconds = strtod(optarg, NULL);
            break;
        case 't':
            timer = strtod(optarg, NULL);
            timer_arg = optarg;
            break;
        case 'b':
            busy_ms = strtod(optarg, NULL);
            break;
        case 'k':
            slow_every = strtoul(optarg, NULL, 10);
            break;
        case 'l':
            slow_ms = strtod(optarg, NULL);
            break;
        case 'P':
            if (strcmp(optarg, "true") && strcmp(optarg, "false"))
                usage();
            privsep = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind + 1 != argc || procs == 0 || threads < procs || threads % procs || rate <= 0 ||
        seconds < 2 || timer <= 0 || busy_ms < 0 || (slow_every && slow_ms <= timer * 1000))
        usage();
    if (!mkdtemp(dir))
        return 2;
    snprintf(sock, sizeof(sock), "%s/s", dir);
    snprintf(out, sizeof(out), "%s/r", dir);
    snprintf(log, sizeof(log), "%s/dogslowd.log", dir);
    sockpath = sock;
    if (mkdir(out, 0750) < 0)
        return 2;

    /* Room for every slow request the window can hold, with margin. */
    uint32_t cap = (slow_every ? (uint32_t)(rate * seconds / (double)slow_every * 1.5) : 0) + 1024;
    size_t shsize = sizeof(struct shared) + cap * sizeof(struct slow_rec);
    sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 2;
    sh->slow_cap = cap;
    sh->threads_total = (uint32_t)threads;
    sh->threads_per_proc = (uint32_t)(threads / procs);
    sh->period_ns = (uint64_t)((double)threads / rate * 1e9);
    sh->busy_ns = (uint64_t)(busy_ms * 1e6);
    sh->slow_ns = (uint64_t)(slow_ms * 1e6);
    sh->slow_every = (uint32_t)slow_every;
    sh->timer_ns = (uint64_t)(timer * 1e9);

    watch.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watch.fd < 0 || inotify_add_watch(watch.fd, out, IN_MOVED_TO | IN_CREATE) < 0)
        return 2;
    pthread_t wt;
    pthread_create(&wt, NULL, watch_loop, NULL);

    pid_t dpid = bench_start_daemon_privsep(argv[optind], sock, out, timer_arg, log, privsep);
    if (dpid < 0) {
        printf("FAILED: bench_scale: dogslowd did not start (log: %s)\n", log);
        return 1;
    }
    pid_t *kids = calloc(procs, sizeof(*kids));
    for (unsigned long i = 0; i < procs; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(worker((uint32_t)i));
    }
    uint64_t reg0 = bench_now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 6000 && atomic_load(&sh->ready) < procs; i++)
        usleep(10000);
    double reg_s = (double)(bench_now_ns(CLOCK_MONOTONIC) - reg0) / 1e9;

    /* Go: the window starts in 200 ms; the first second is warm-up. */
    uint64_t t_start = bench_now_ns(CLOCK_MONOTONIC) + 200000000ull;
    uint64_t t_stop = t_start + (uint64_t)(seconds * 1e9);
    uint64_t t_meas = t_start + NS_PER_S;
    sh->t_stop = t_stop;
    atomic_store(&sh->t_start, t_start);

    bench_sleep_until(t_meas);
    long long cpu0 = bench_cpu_ticks(dpid);
    uint64_t m0 = bench_now_ns(CLOCK_MONOTONIC);
    bench_sleep_until(t_stop);
    long long cpu1 = bench_cpu_ticks(dpid);
    uint64_t m1 = bench_now_ns(CLOCK_MONOTONIC);
    long rss = bench_status_kib(dpid, "VmRSS"), hwm = bench_status_kib(dpid, "VmHWM");

    for (unsigned long i = 0; i < procs; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = 1;
    }
    /* Let the daemon work off what it has queued: until every slow request
     * is reported, or nothing new came for 3 s. */
    uint32_t nslow = atomic_load(&sh->nslow);
    for (;;) {
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC), last = atomic_load(&watch.last_ns);
        if (atomic_load(&watch.count) >= nslow && now > t_stop + sh->slow_ns + 500000000ull)
            break;
        if (now > (last > t_stop ? last : t_stop) + sh->slow_ns + 3 * NS_PER_S ||
            now > t_stop + 60 * NS_PER_S)
            break;
        usleep(20000);
    }
    usleep(100000);
    atomic_store(&watch.stop, true);
    pthread_join(wt, NULL);
    kill(dpid, SIGTERM);
    waitpid(dpid, NULL, 0);

    double window = (double)(m1 - m0) / 1e9;
    double cpu_pct = (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) / window * 100;
    /* One clock tick over the window: the resolution of that figure. */
    double cpu_res = 100.0 / (double)sysconf(_SC_CLK_TCK) / window;
    double achieved = (double)atomic_load(&sh->requests) / seconds;
    char a[32], b[32], r[32];

    fmt_count(a, sizeof(a), (double)threads);
    fmt_count(r, sizeof(r), achieved);
    fmt_count(b, sizeof(b), rate);
    char what[256];
    snprintf(what, sizeof(what),
             "%s threads in %lu processes, %s req/s asked, %s done, %.0f s, timer %s s", a, procs,
             b, r, seconds, timer_arg);
    if (busy_ms > 0) {
        size_t l = strlen(what);
        snprintf(what + l, sizeof(what) - l, ", requests %.0f ms long", busy_ms);
    }
    if (!slow_every)
        printf("| Scale: %lu processes registering at once (threads started) | all in %.1f s; "
               "%u of %lu timed out at the first attempt (2 s) and retried | no peer | %s |\n",
               procs, reg_s, atomic_load(&sh->reg_retried), procs,
               atomic_load(&sh->reg_retried) ? "**slow registration**" : "-");
    if (!slow_every) {
        bool cpu_ok = cpu_pct < 2.0, rss_ok = rss >= 0 && rss < 32 * 1024;
        printf("| Scale, nothing slow: daemon CPU, utime+stime over %.0f s (%s) | %.2f %% of a "
               "core (resolution %.2f %%) | no peer | target < 2 %%: %s |\n",
               window, what, cpu_pct, cpu_res, cpu_ok ? "met" : "**MISSED**");
        printf("| Scale, nothing slow: daemon RSS at the end (peak) | %.1f MiB (%.1f MiB) | "
               "no peer | target < 32 MiB: %s |\n",
               (double)rss / 1024, (double)hwm / 1024, rss_ok ? "met" : "**MISSED**");
    }

    /*
     * Match reports to slow requests, thread by thread.  A thread makes one
     * request at a time and reports come in order, so when a thread had no
     * fast request that ran past the timer its reports pair with its slow
     * requests in order, which gives the lateness of each.  Otherwise the
     * count must merely lie between the slow requests and those plus the
     * unplanned ones.
     */
    size_t nrep = watch.n;
    uint32_t nplanned = atomic_load(&sh->nplanned);
    if (nslow > cap) {
        printf("FAILED: bench_scale: %u slow requests, room for %u records\n", nslow, cap);
        failed = 1;
        nslow = cap;
    }
    qsort(watch.v, nrep, sizeof(*watch.v), cmp_seen);
    qsort(sh->slow, nslow, sizeof(*sh->slow), cmp_slow);
    int64_t *late = calloc(nslow + 1, sizeof(*late));
    size_t nlate = 0, i = 0, j = 0, missing = 0, extra = 0, unplanned = 0, unpaired = 0;
    uint64_t timer_ns = sh->timer_ns, first = UINT64_MAX, last = 0;
    for (size_t k = 0; k < nrep; k++) {
        if (watch.v[k].when_ns < first)
            first = watch.v[k].when_ns;
        if (watch.v[k].when_ns > last)
            last = watch.v[k].when_ns;
    }
    while (i < nslow || j < nrep) {
        int32_t tid = j >= nrep || (i < nslow && sh->slow[i].tid < watch.v[j].tid) ? sh->slow[i].tid
                                                                                   : watch.v[j].tid;
        size_t i0 = i, j0 = j, must = 0, may = 0;
        while (i < nslow && sh->slow[i].tid == tid) {
            must += sh->slow[i].planned;
            may += !sh->slow[i].planned;
            i++;
        }
        while (j < nrep && watch.v[j].tid == tid)
            j++;
        size_t got = j - j0;
        unplanned += may;
        if (got < must)
            missing += must - got;
        else if (got > must + may)
            extra += got - must - may;
        if (may == 0 && got == must) {
            for (size_t k = 0; k < got; k++)
                late[nlate++] = (int64_t)watch.v[j0 + k].when_ns -
                                (int64_t)(sh->slow[i0 + k].start_ns + timer_ns);
        } else {
            unpaired += got;
        }
    }
    if (slow_every) {
        int64_t med = bench_median_i64(late, nlate), max = nlate ? late[nlate - 1] : 0;
        double offered = (double)nplanned / seconds;
        double span = nrep > 1 ? (double)(last - first) / 1e9 : 0;
        double sustained = span > 0 ? (double)(nrep - 1) / span : 0;
        printf("| Scale, 1 request in %lu slow (%s): daemon CPU | %.1f %% of a core | no peer | "
               "- |\n",
               slow_every, what, cpu_pct);
        printf("| Scale, 1 in %lu slow: reports/s sustained (%.0f/s went slow, for %.1f s each; "
               "%zu reports for %u slow requests and %zu fast ones the busy CPUs kept past the "
               "timer) | %.0f/s | no peer | %s |\n",
               slow_every, offered, (double)sh->slow_ns / 1e9, nrep, nplanned, unplanned, sustained,
               missing || extra ? "**reports lost or extra**" : "every slow request reported once");
        printf("| Scale, 1 in %lu slow: report lateness under that load, median / max (%zu "
               "reports; %zu not paired) | %.1f ms / %.1f ms | no peer | target < 10 ms median: "
               "%s |\n",
               slow_every, nlate, unpaired, (double)med / 1e6, (double)max / 1e6,
               med < 10000000 ? "met" : "**MISSED**");
    }
    if (missing || extra) {
        printf("FAILED: bench_scale: %zu slow requests without a report, %zu reports of no slow "
               "request (%zu reports, %u slow requests, %zu fast ones past the timer)\n",
               missing, extra, nrep, nplanned, unplanned);
        failed = 1;
    }
    if (watch.overflow) {
        printf("FAILED: bench_scale: inotify queue overflowed; report count unreliable\n");
        failed = 1;
    }
    if (atomic_load(&sh->failed)) {
        printf("FAILED: bench_scale: %u registrations/begins failed\n", atomic_load(&sh->failed));
        failed = 1;
    }
    if (achieved < rate * 0.9 && !slow_every)
        printf("| (note) the workers made fewer than 90 %% of the requests asked | %.0f req/s | "
               "- | - |\n",
               achieved);
    if (!failed) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
    } else {
        printf("FAILED: bench_scale: files kept in %s\n", dir);
    }
    return failed;
}
