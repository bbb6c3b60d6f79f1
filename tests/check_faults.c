/* SPDX-License-Identifier: MIT */
/*
 * Faults (issue 8): the daemon killed in the middle of a snapshot, a worker
 * that execs while its thread is held, a pid reused after a worker died, a
 * full disk for reports, a scoreboard scribbled over with garbage, a worker
 * with thousands of threads, a worker that dies between its snapshot and the
 * naming of its frames.  The daemon stays up and reports what it can;
 * no worker is ever left stopped or traced.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "harness.h"
#include "util.h"

/* "State:" and "TracerPid:" of a thread. */
static void thread_state(int tid, char *state, int *tracer)
{
    char path[64], buf[4096];
    int fd, n;

    *state = '?';
    *tracer = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", tid);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    n = (int)read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *s = strstr(buf, "\nState:\t");
    const char *t = strstr(buf, "\nTracerPid:\t");
    if (s)
        *state = s[8];
    if (t)
        *tracer = (int)strtol(t + 12, NULL, 10);
}

START_TEST(daemon_killed_mid_snapshot_leaves_worker_running)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "3", "GET", "/held", NULL};
    int pid, tid, tracer;
    char state;

    setenv("DOGSLOWD_TEST_HOLD_MS", "5000", 1);
    td_start(&d, "0.3", NULL);
    unsetenv("DOGSLOWD_TEST_HOLD_MS");
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2);
    /* Wait until the daemon holds the thread. */
    for (long long end = now_ms() + 3000; now_ms() < end; sleep_ms(10)) {
        thread_state(tid, &state, &tracer);
        if (tracer == d.pid)
            break;
    }
    ck_assert_msg(tracer == d.pid, "the daemon never attached (tracer %d)", tracer);
    td_kill(&d);
    /* The kernel detaches: the thread goes on at once, untraced. */
    sleep_ms(50);
    thread_state(tid, &state, &tracer);
    ck_assert_int_eq(tracer, 0);
    ck_assert_msg(state != 't' && state != 'T', "worker left stopped (state %c)", state);
    /* And its request finishes on time, as if nothing happened. */
    ck_assert_ptr_nonnull(tw_expect(&w, "done rc=0", 5000));
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(worker_execs_while_held)
{
    struct tdaemon d;
    struct tworker w;
    /* The exec comes 0.5 s after the deadline, while the thread is held
     * (1.5 s): a snapshot that began after the exec would be another
     * program's, and is dropped (check_deputy). */
    const char *args[] = {"execmid", "0.8", NULL};

    setenv("DOGSLOWD_TEST_HOLD_MS", "1500", 1);
    td_start(&d, "0.3", NULL);
    unsetenv("DOGSLOWD_TEST_HOLD_MS");
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    /* The exec kills the held thread; /bin/sleep 1 then exits normally,
     * and its parent (this test) sees it exit. */
    ck_assert_int_eq(tw_wait(&w, 8000), 0);
    ck_assert(td_alive(&d));
    ck_assert_int_eq(td_wait_reports(&d, 1, 3000), 1);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* Give the next fork the pid of a dead worker (root: ns_last_pid). */
static pid_t fork_with_pid(pid_t want)
{
    /* Another suite forking at the same moment (make -j2 check) can take
     * the pid between the write and the fork: try many times. */
    for (int tries = 0; tries < 500; tries++) {
        FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (!f)
            return -1;
        fprintf(f, "%d", (int)want - 1);
        fclose(f);
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/sleep", "sleep", "10", (char *)NULL);
            _exit(127);
        }
        if (p == want)
            return p;
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
    }
    return -1;
}

/* The end of a test that gave a dead worker's pid away: the newcomer goes,
 * the daemon must still be up. */
static void stop_with_victim(struct tdaemon *d, pid_t victim)
{
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    ck_assert(td_alive(d));
    td_stop(d);
    td_cleanup(d);
}

START_TEST(reused_pid_is_never_attached)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "10", NULL};
    int pid, tid, tracer;
    char state;

    ck_assert_msg(geteuid() == 0, "this test needs root (ns_last_pid)");
    td_start(&d, "1", NULL);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2);
    tw_kill(&w); /* dies mid-request, deadline still ahead */
    pid_t victim = fork_with_pid(pid);
    ck_assert_msg(victim == pid, "could not reuse pid %d", pid);
    /* Past the dead worker's deadline, the newcomer is never touched. */
    for (long long end = now_ms() + 1500; now_ms() < end; sleep_ms(5)) {
        thread_state(victim, &state, &tracer);
        ck_assert_int_eq(tracer, 0);
    }
    ck_assert_int_eq(td_count_reports(&d), 0);
    stop_with_victim(&d, victim);
}
END_TEST

/*
 * A worker killed after its thread was snapshotted but before the frames
 * were named (a process's first report loads its debug information, which
 * takes a while), and its pid at once given to another process: the report
 * still has the dead worker's native frames and source lines -- named from
 * the stack and the module list copied at the snapshot, never from the
 * newcomer that now holds the pid.
 */
START_TEST(worker_gone_before_naming_keeps_its_frames)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "30", "GET", "/gone/before/naming", NULL};
    const char *env[] = {"DOGSLOWD_TEST_NAMING_DELAY_MS=2500", NULL};
    char out[8192];
    int pid, tid;
    bool taken = false;

    ck_assert_msg(geteuid() == 0, "this test needs root (ns_last_pid)");
    td_init(&d);
    d.env = env;
    td_launch(&d, "0.3", NULL);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2);
    /* The snapshot is taken at 0.3 s; its naming waits 2.5 s more. */
    for (long long end = now_ms() + 10000; now_ms() < end && !taken; sleep_ms(50)) {
        ck_assert_int_eq(run_capture((const char *const[]){env_or_die("DOGSLOWCTL"), "--socket",
                                                           d.sock, "status", NULL},
                                     NULL, out, sizeof(out), 10000),
                         0);
        taken = strstr(out, "snapshots awaiting their report: 1\n") != NULL;
    }
    ck_assert_msg(taken, "no snapshot taken:\n%s\n%s", out, td_log(&d));
    ck_assert_int_eq(td_count_reports(&d), 0);
    tw_kill(&w);
    pid_t victim = fork_with_pid(pid);
    ck_assert_msg(victim == pid, "could not reuse pid %d", pid);

    ck_assert_msg(td_wait_reports(&d, 1, 15000) == 1, "%s", td_log(&d));
    char *r = td_find_report_with(&d, "GET /gone/before/naming");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "in handle_slow_request") && strstr(r, "test_worker.c\", line "), r,
           "the dead worker's frames were not named");
    expect(!strstr(r, "bin/sleep"), r, "frames named from the process that took the pid over");
    free(r);
    stop_with_victim(&d, victim);
}
END_TEST

START_TEST(full_disk_is_survived)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "0.8", "GET", "/full", NULL};
    char fill[400];

    ck_assert_msg(geteuid() == 0, "this test needs root (mounts a small tmpfs)");
    td_start(&d, "0.2", NULL);
    mkdir(d.out, 0750);
    ck_assert_int_eq(mount("tmpfs", d.out, "tmpfs", 0, "size=16k"), 0);
    snprintf(fill, sizeof(fill), "%s/filler", d.out);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    char block[4096] = {0};
    while (write(fd, block, sizeof(block)) > 0)
        ;
    close(fd);

    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    ck_assert_msg(strstr(td_log(&d), "No space left on device"), "%s", td_log(&d));
    ck_assert_msg(strstr(td_log(&d), "undead request: GET /full"), "%s", td_log(&d));
    ck_assert(td_alive(&d));
    /* Space again: the next report is written. */
    unlink(fill);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    ck_assert_int_eq(td_wait_reports(&d, 1, 3000), 1);
    td_stop(&d);
    umount2(d.out, MNT_DETACH);
    td_cleanup(&d);
}
END_TEST

START_TEST(scribbled_scoreboard_is_survived)
{
    struct tdaemon d;
    struct tworker good, bad;
    const char *args[] = {"slow", "2", "GET", "/good", NULL};

    td_start(&d, "0.5", NULL);
    const char *bargs[] = {d.sock, "scribble", NULL};
    tw_start(&bad, NULL, getenv("BAD_CLIENT"), bargs);
    ck_assert_ptr_nonnull(tw_expect(&bad, "spoofed", 5000));
    tw_start(&good, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&good, "ready", 5000));
    ck_assert_ptr_nonnull(tw_expect(&bad, "scribbled", 15000));
    ck_assert_int_eq(tw_wait(&good, 5000), 0);
    ck_assert(td_alive(&d));
    /* The good worker's request is reported; whatever the garbage claimed,
     * no foreign thread was attached (garbage tids are checked). */
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    int good_reports = 0;
    char cmd[600], line[512];
    snprintf(cmd, sizeof(cmd), "grep -l '^GET /good$' %s/*.log", d.out);
    FILE *p = popen(cmd, "r");
    while (fgets(line, sizeof(line), p))
        good_reports++;
    pclose(p);
    ck_assert_int_eq(good_reports, 1);
    free(r);
    tw_kill(&bad);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(thousands_of_threads)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"threads", "6", "2000", NULL};
    int pid, tid, watched, unwatched;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    const char *line = tw_expect(&w, "ready", 20000);
    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d watched=%d unwatched=%d", &pid,
                                 &tid, &watched, &unwatched) == 4,
                  "%s", line ? line : "(nothing)");
    /* The scoreboard's 256 slots are used; the rest are counted, cheaply
     * not watched. */
    ck_assert_int_eq(watched, 256);
    ck_assert_int_eq(unwatched, 2000 - 256);
    /* Every watched request is reported, while all of them are still
     * running. */
    int n = td_wait_reports(&d, 256, 20000);
    ck_assert_msg(n == 256, "%d reports of 256", n);
    ck_assert(td_alive(&d));
    ck_assert_int_eq(tw_wait(&w, 20000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

static long vmrss_kb(pid_t pid)
{
    char path[64], buf[4096];

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (dsl_read_text(path, buf, sizeof(buf)) < 0)
        return -1;
    const char *p = strstr(buf, "\nVmRSS:");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

/* 1000 requests go undead within a second, in 4 processes: every one is
 * reported (snapshots are queued and worked off), memory stays bounded. */
START_TEST(storm_of_1000_undead_requests)
{
    struct tdaemon d;
    struct tworker w[4];
    const char *args[] = {"threads", "3", "250", NULL};
    long rss_max = 0;

    /* Under AddressSanitizer freed memory waits in a quarantine of up to
     * 256 MiB, which would be measured here too: keep it small, so that the
     * bound below is about the daemon's queue (no effect without ASan). */
    static char asan[512];
    const char *env[] = {asan, NULL};
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%squarantine_size_mb=16",
             getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
             getenv("ASAN_OPTIONS") ? ":" : "");
    td_init(&d);
    d.env = env;
    td_launch(&d, "0.3", (const char *const[]){"--follow", "0", NULL});
    for (int i = 0; i < 4; i++)
        tw_start(&w[i], &d, getenv("TEST_WORKER"), args);
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(tw_expect(&w[i], "ready", 20000));
    int n = 0;
    for (long long end = now_ms() + 30000; now_ms() < end && n < 1000; sleep_ms(100)) {
        n = td_count_reports(&d);
        long rss = vmrss_kb(d.pid);
        if (rss > rss_max)
            rss_max = rss;
    }
    if (n != 1000)
        fprintf(stderr, "---- daemon log ----\n%s\n", td_log(&d));
    ck_assert_msg(n == 1000, "%d reports of 1000", n);
    fprintf(stderr, "storm: 1000 reports, daemon RSS peaked at %ld KiB\n", rss_max);
    /* Bounded: the queue holds stack copies of a few KiB each. */
    ck_assert_msg(rss_max < 256 * 1024, "daemon RSS reached %ld KiB", rss_max);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(tw_wait(&w[i], 20000), 0);
    ck_assert(td_alive(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* A client that asks for a big answer (a dump of 200 threads) and never
 * reads it: the daemon writes it as the socket drains, so meanwhile it
 * still reports another worker's request and answers another dogslowctl. */
START_TEST(client_that_never_reads_does_not_stall_the_daemon)
{
    struct tdaemon d;
    struct tworker many, bad, good;
    const char *margs[] = {"threads", "20", "200", NULL};
    const char *gargs[] = {"slow", "1.5", "GET", "/still/watched", NULL};
    int mpid, mtid, watched, unwatched;
    char pidarg[32], out[8192];

    td_start(&d, "10", (const char *const[]){"--follow", "0", NULL});
    tw_start(&many, &d, getenv("TEST_WORKER"), margs);
    const char *line = tw_expect(&many, "ready", 20000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d watched=%d unwatched=%d", &mpid, &mtid,
                             &watched, &unwatched) == 4);
    snprintf(pidarg, sizeof(pidarg), "%d", mpid);
    tw_start(&bad, NULL, getenv("BAD_CLIENT"), (const char *const[]){d.sock, "noread-dump",
                                                                      pidarg, NULL});
    ck_assert_ptr_nonnull(tw_expect(&bad, "asked", 5000));
    sleep_ms(1500); /* the dump is made and waits in the socket */
    tw_start_env(&good, &d, getenv("TEST_WORKER"), gargs,
                 (const char *const[]){"DOGSLOW_TIMER=0.3", NULL});
    ck_assert_ptr_nonnull(tw_expect(&good, "ready", 5000));
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "%s", td_log(&d));
    char *r = td_read_report(&d, NULL);
    ck_assert_msg(r && strstr(r, "GET /still/watched\n"), "%s", r ? r : "(none)");
    free(r);
    const char *ctl = getenv("DOGSLOWCTL");
    ck_assert_ptr_nonnull(ctl);
    ck_assert_int_eq(run_capture((const char *const[]){ctl, "--socket", d.sock, "status", NULL},
                                 NULL, out, sizeof(out), 5000),
                     0);
    ck_assert_msg(strstr(out, "registered processes: 2"), "%s", out);
    ck_assert_int_eq(tw_wait(&good, 5000), 0);
    tw_kill(&bad);
    tw_kill(&many);
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, daemon_killed_mid_snapshot_leaves_worker_running);
    tcase_add_test(tc, worker_execs_while_held);
    tcase_add_test(tc, reused_pid_is_never_attached);
    tcase_add_test(tc, worker_gone_before_naming_keeps_its_frames);
    tcase_add_test(tc, full_disk_is_survived);
    tcase_add_test(tc, scribbled_scoreboard_is_survived);
    tcase_add_test(tc, thousands_of_threads);
    tcase_add_test(tc, storm_of_1000_undead_requests);
    tcase_add_test(tc, client_that_never_reads_does_not_stall_the_daemon);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
