/* SPDX-License-Identifier: MIT */
/*
 * Storm rate: how fast does dogslowd write reports when many requests go
 * undead at the same moment (the database is down, every worker hangs)?
 * With privsep (frames named in the analysis process, the default) and
 * without (privsep = false: named in the daemon), in the same run.
 *
 *     bench_storm DOGSLOWD [--procs P] [--threads T] [--rounds R] [--timer S]
 *
 * (defaults: 1 process, 100 threads, 1 round, timer 0.3 s)
 *
 * A storm: P worker processes holding T threads each register with a
 * private dogslowd; every thread calls dogslow_begin() at the same instant
 * and waits (in pthread_cond_wait) until all reports are in.  So all P x T
 * deadlines fall at once.  From that deadline, the report files are seen
 * with inotify (IN_MOVED_TO: renamed into place, complete); the figure is
 * P x T / (the last one's arrival - the deadline), "reports/s until all
 * are in".  Also measured: the CPU the daemon's side spent from just before
 * the deadline to the last report, per report -- the daemon, and with
 * privsep its spawner and analysis process (each thread's
 * /proc/PID/task/TID/schedstat, so in ns, not clock ticks).
 *
 * --procs 1 --threads N is a threaded server whose N requests hang (one
 * process: its debug information is loaded once); --procs N --threads 1 a
 * pre-fork server's (every report is its process's first).
 *
 * Each round runs a storm with privsep = true and one with privsep = false,
 * one after the other, in alternating order (round 1: true first); the
 * figures are the medians over the rounds.
 *
 * Prints one markdown row (figure | dogslowd | peer | ratio); a line
 * starting with "FAILED:" (exit 1) unless every request was reported
 * exactly once and named (no "frames not named" note), and each daemon
 * ran the way it was asked to.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bench_util.h"
#include "dogslow.h"

#define MAX_REQUESTS 20000

struct rec {
    int32_t tid;
    uint64_t start_ns; /* CLOCK_MONOTONIC just before dogslow_begin() */
    int nseen;
    uint64_t seen_ns;
};

/* Shared (MAP_SHARED) between the parent and the workers. */
struct shared {
    _Atomic uint64_t t_begin; /* 0 until the parent says when */
    _Atomic uint32_t ready;   /* workers with all threads started */
    _Atomic uint32_t failed;  /* registrations, thread starts or begins that failed */
    uint32_t threads_per_proc;
    struct rec rec[MAX_REQUESTS];
};

static struct shared *sh;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool go, released;
static const char *sockpath;

/* ---- the workers ---------------------------------------------------------- */

static void *request(void *p)
{
    struct rec *r = p;

    r->tid = (int32_t)syscall(SYS_gettid);
    pthread_mutex_lock(&lock);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    bench_sleep_until(atomic_load(&sh->t_begin));
    r->start_ns = bench_now_ns(CLOCK_MONOTONIC);
    if (dogslow_begin("GET", "/bench/storm") < 0)
        atomic_fetch_add(&sh->failed, 1);
    /* Undead until the parent has every report. */
    pthread_mutex_lock(&lock);
    while (!released)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    dogslow_end();
    return NULL;
}

/* release: a pipe's read end, at EOF once the parent is done. */
static int worker(uint32_t proc, int release)
{
    struct dogslow_options o = {.socket_path = sockpath, .max_threads = sh->threads_per_proc + 8};
    uint32_t n = sh->threads_per_proc;
    pthread_t *t = calloc(n, sizeof(*t));
    pthread_attr_t attr;
    char c;
    int r = -1;

    /* Many processes register at once: a first attempt may time out (the
     * library waits 2 s). */
    for (int i = 0; t && r < 0 && i < 15; i++)
        r = dogslow_register(&o);
    if (r < 0) {
        fprintf(stderr, "bench_storm: worker %u: cannot register: %s\n", proc,
                dogslow_last_error());
        atomic_fetch_add(&sh->failed, 1);
        atomic_fetch_add(&sh->ready, 1);
        return 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (uint32_t i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, request, &sh->rec[proc * sh->threads_per_proc + i])) {
            atomic_fetch_add(&sh->failed, 1);
            n = i;
            break;
        }
    atomic_fetch_add(&sh->ready, 1);
    while (atomic_load(&sh->t_begin) == 0)
        usleep(2000);
    pthread_mutex_lock(&lock);
    go = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    while (read(release, &c, 1) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&lock);
    released = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* ---- the daemon's CPU ------------------------------------------------------ */

/* ns on the CPU of every thread of pid and of its descendants (the spawner
 * and the analysis process are the daemon's child and grandchild). */
static uint64_t tree_cpu_ns(pid_t pid, int depth)
{
    char path[64], line[4096];
    uint64_t sum = 0;
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char p[128];
        unsigned long long ns;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        f = fopen(p, "re");
        if (f && fscanf(f, "%llu", &ns) == 1)
            sum += ns;
        if (f)
            fclose(f);
        snprintf(p, sizeof(p), "/proc/%d/task/%.20s/children", (int)pid, e->d_name);
        f = fopen(p, "re");
        if (f && depth < 4 && fgets(line, sizeof(line), f))
            for (char *s = line, *end; *s; s = end) {
                long child = strtol(s, &end, 10);
                if (end == s)
                    break;
                sum += tree_cpu_ns((pid_t)child, depth + 1);
            }
        if (f)
            fclose(f);
    }
    closedir(d);
    return sum;
}

/* ---- one storm -------------------------------------------------------------- */

struct result {
    double rate;      /* reports/s, from the deadline until all were in */
    double all_in_ms; /* the last report's arrival - the deadline */
    double first_ms;  /* the first's */
    double cpu_ms;    /* the daemon's side, per report */
    bool ok;
};

static int count_unnamed(const char *out)
{
    char cmd[PATH_MAX + 64], line[64];
    int n = 0;

    snprintf(cmd, sizeof(cmd), "grep -l 'frames not named' '%s'/*.log 2>/dev/null | wc -l", out);
    FILE *p = popen(cmd, "r");
    if (p && fgets(line, sizeof(line), p))
        n = (int)strtol(line, NULL, 10);
    if (p)
        pclose(p);
    return n;
}

static void storm(const char *dogslowd, const char *dir, bool privsep, uint32_t procs,
                  const char *timer_arg, uint64_t timer_ns, struct result *res)
{
    char out[PATH_MAX], sock[PATH_MAX], log[PATH_MAX];
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    uint32_t total = procs * sh->threads_per_proc;
    int ifd, rel[2], extra = 0, got = 0;
    pid_t *kids = calloc(procs, sizeof(*kids));
    const char *mode = privsep ? "true" : "false";

    *res = (struct result){0};
    snprintf(out, sizeof(out), "%s/r", dir);
    snprintf(sock, sizeof(sock), "%s/s", dir);
    snprintf(log, sizeof(log), "%s/dogslowd.log", dir);
    sockpath = sock;
    memset(sh->rec, 0, total * sizeof(*sh->rec));
    atomic_store(&sh->t_begin, 0);
    atomic_store(&sh->ready, 0);
    atomic_store(&sh->failed, 0);
    if (!kids || mkdir(dir, 0750) < 0 || mkdir(out, 0750) < 0) {
        printf("FAILED: bench_storm: cannot make %s\n", out);
        return;
    }
    ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0 || inotify_add_watch(ifd, out, IN_MOVED_TO | IN_CREATE) < 0) {
        printf("FAILED: bench_storm: inotify: %s\n", strerror(errno));
        return;
    }
    pid_t dpid = bench_start_daemon_privsep(dogslowd, sock, out, timer_arg, log, mode);
    if (dpid < 0) {
        printf("FAILED: bench_storm: dogslowd did not start (log: %s)\n", log);
        return;
    }
    /* Close-on-exec keeps the daemon's copy away; the workers close theirs. */
    if (pipe2(rel, O_CLOEXEC) < 0)
        return;
    for (uint32_t i = 0; i < procs; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(rel[1]);
            _exit(worker(i, rel[0]));
        }
    }
    close(rel[0]);
    for (int i = 0; i < 6000 && atomic_load(&sh->ready) < procs; i++)
        usleep(10000);
    /* Everyone begins at t_begin; the daemon finds the requests at its
     * next scan (50 ms) and every deadline falls at t_begin + timer. */
    uint64_t t_begin = bench_now_ns(CLOCK_MONOTONIC) + 300000000ull;
    uint64_t deadline = t_begin + timer_ns, first = 0, last = 0;
    atomic_store(&sh->t_begin, t_begin);
    bench_sleep_until(deadline - 20000000ull);
    uint64_t cpu0 = tree_cpu_ns(dpid, 0), cpu1 = 0;

    /* Until every request is in (then 300 ms more, for a report too
     * many), or 120 s. */
    for (;;) {
        uint64_t now = bench_now_ns(CLOCK_MONOTONIC);
        if (now > deadline + 120 * NS_PER_S || (got >= (int)total && now > last + 300000000ull))
            break;
        ssize_t len = read(ifd, buf, sizeof(buf));
        now = bench_now_ns(CLOCK_MONOTONIC);
        if (len <= 0) {
            usleep(200);
            continue;
        }
        int tid;
        for (const char *p = buf; bench_next_report(&p, buf + len, &tid, NULL);) {
            int hit = 0;
            for (uint32_t i = 0; i < total; i++)
                if (sh->rec[i].tid == tid) {
                    if (sh->rec[i].nseen++ == 0) {
                        sh->rec[i].seen_ns = now;
                        got++;
                        if (!first)
                            first = now;
                        last = now;
                    }
                    hit = 1;
                    break;
                }
            extra += !hit;
        }
        if (got >= (int)total && !cpu1)
            cpu1 = tree_cpu_ns(dpid, 0);
    }
    close(rel[1]);
    for (uint32_t i = 0; i < procs; i++)
        waitpid(kids[i], NULL, 0);
    kill(dpid, SIGTERM);
    waitpid(dpid, NULL, 0);
    close(ifd);
    free(kids);

    int twice = 0, missing = 0, unnamed = count_unnamed(out);
    for (uint32_t i = 0; i < total; i++) {
        missing += sh->rec[i].nseen == 0;
        twice += sh->rec[i].nseen > 1;
    }
    int ran = bench_log_privsep(log);
    if (ran != privsep) {
        printf("FAILED: bench_storm: dogslowd was asked for privsep=%s but ran with %s (log: "
               "%s)\n",
               mode, bench_privsep_name(ran), log);
        return;
    }
    if (missing || twice || extra || unnamed || atomic_load(&sh->failed)) {
        printf("FAILED: bench_storm (privsep=%s): of %u requests undead at once, %d not "
               "reported, %d reported more than once, %d reports of no such request, %d "
               "without frame names; %u registrations/begins failed (files in %s)\n",
               mode, total, missing, twice, extra, unnamed, atomic_load(&sh->failed), dir);
        return;
    }
    res->all_in_ms = (double)(last - deadline) / 1e6;
    res->first_ms = (double)(first - deadline) / 1e6;
    res->rate = last > deadline ? total / ((double)(last - deadline) / 1e9) : 0;
    res->cpu_ms = cpu1 > cpu0 ? (double)(cpu1 - cpu0) / 1e6 / total : 0;
    res->ok = true;
    if (getenv("BENCH_VERBOSE"))
        fprintf(stderr,
                "bench_storm: privsep=%s: %u reports, first %.1f ms, all in %.1f ms after the "
                "deadline: %.0f/s; %.2f ms CPU a report\n",
                mode, total, res->first_ms, res->all_in_ms, res->rate, res->cpu_ms);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the field at off over n results (of an even n, the mean
 * of the middle two). */
static double median_of(const struct result *r, int n, size_t off)
{
    double v[64];

    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++)
        memcpy(&v[i], (const char *)&r[i] + off, sizeof(double));
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_storm DOGSLOWD [--procs P] [--threads T] [--rounds R] "
                    "[--timer SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"procs", required_argument, NULL, 'p'},
                                         {"threads", required_argument, NULL, 'n'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"timer", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    unsigned long procs = 1, threads = 100, rounds = 1;
    const char *timer_arg = "0.3";
    char dir[] = "/tmp/dogslow-bench-storm-XXXXXX", sub[PATH_MAX];
    struct result on[32], off[32];
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
            rounds = strtoul(optarg, NULL, 10);
            break;
        case 't':
            timer_arg = optarg;
            break;
        default:
            usage();
        }
    }
    double timer = strtod(timer_arg, NULL);
    if (optind + 1 != argc || procs == 0 || threads == 0 || procs * threads > MAX_REQUESTS ||
        rounds == 0 || rounds > 32 || timer < 0.1)
        usage();
    if (!mkdtemp(dir))
        return 2;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 2;
    sh->threads_per_proc = (uint32_t)threads;

    /* Alternating order: neither mode always runs on the colder page cache
     * or the later, busier moment. */
    for (unsigned long r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            bool privsep = (k == 0) == (r % 2 == 0);
            snprintf(sub, sizeof(sub), "%s/%lu-%s", dir, r, privsep ? "privsep" : "inproc");
            storm(argv[optind], sub, privsep, (uint32_t)procs, timer_arg, (uint64_t)(timer * 1e9),
                  privsep ? &on[r] : &off[r]);
            failed |= !(privsep ? on[r] : off[r]).ok;
        }

    char shape[128], how[64];
    if (procs == 1)
        snprintf(shape, sizeof(shape), "%lu requests of one process (%lu threads)", threads,
                 threads);
    else if (threads == 1)
        snprintf(shape, sizeof(shape),
                 "%lu requests of %lu processes, one each (every report its process's first)",
                 procs, procs);
    else
        snprintf(shape, sizeof(shape), "%lu requests of %lu processes (%lu threads each)",
                 procs * threads, procs, threads);
    if (rounds == 1)
        snprintf(how, sizeof(how), "one storm each, one after the other");
    else
        snprintf(how, sizeof(how), "median of %lu storms each, alternating", rounds);
    if (!failed) {
        int n = (int)rounds;
        /* The rate from the median time until all were in, so that the
         * two figures of a cell agree. */
        double a_on = median_of(on, n, offsetof(struct result, all_in_ms));
        double a_off = median_of(off, n, offsetof(struct result, all_in_ms));
        double r_on = a_on > 0 ? (double)(procs * threads) / (a_on / 1e3) : 0;
        double r_off = a_off > 0 ? (double)(procs * threads) / (a_off / 1e3) : 0;
        double c_on = median_of(on, n, offsetof(struct result, cpu_ms));
        double c_off = median_of(off, n, offsetof(struct result, cpu_ms));
        printf("| Storm with privsep (vs in-process): %s undead at once (timer %s s; %s): "
               "reports/s until all are in; the daemon's CPU a report, its analysis process's "
               "included | %.0f/s (all in %.0f ms); %.2f ms | privsep=false: %.0f/s (all in "
               "%.0f ms); %.2f ms | on/off: %.2f (rate); %.2f (CPU) |\n",
               shape, timer_arg, how, r_on, a_on, c_on, r_off, a_off, c_off,
               r_off > 0 ? r_on / r_off : 0, c_off > 0 ? c_on / c_off : 0);
    }
    if (!failed && !getenv("BENCH_KEEP")) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
    }
    return failed;
}
