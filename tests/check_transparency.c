/* SPDX-License-Identifier: MIT */
/*
 * The worker never notices (issue 8): a thread blocked in nanosleep, read,
 * poll, epoll_wait, a mutex, a condition variable, waitpid, or busy on the
 * CPU, is snapshotted hundreds of times (the follow-up sampler at 200 Hz)
 * and every call returns exactly what it must; signals sent meanwhile are
 * each delivered once; a thread traced by someone else is left alone.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "harness.h"

static const char *prog(void)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/transparent_worker", getenv("DEEP_WORKER_DIR"));
    return path;
}

static const char *const sampler[] = {"--follow", "200", NULL};

/* Run one mode under a sampling daemon; returns the worker's verdict line
 * (static) and the number of samples the daemon took. */
static const char *watched(const char *mode, int *ret_samples, struct tdaemon *d)
{
    static char verdict[512];
    struct tworker w;
    const char *args[] = {mode, NULL};

    td_start(d, "0.1", sampler);
    tw_start(&w, d, prog(), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    const char *line = tw_expect(&w, "", 20000);
    ck_assert_msg(line != NULL, "%s: no verdict", mode);
    snprintf(verdict, sizeof(verdict), "%s", line);
    int rc = tw_wait(&w, 10000);
    ck_assert_msg(rc == 0, "%s: worker exit %d: %s", mode, rc, verdict);
    *ret_samples = 0;
    char *r = td_wait_report_text(d, "(sampled ", 3000);
    const char *s = r ? strstr(r, "(sampled ") : NULL;
    if (s && sscanf(s, "(sampled %d times", ret_samples) != 1)
        *ret_samples = 0;
    free(r);
    return verdict;
}

static void check_mode(const char *mode)
{
    struct tdaemon d;
    int samples;
    const char *v = watched(mode, &samples, &d);

    ck_assert_msg(!strncmp(v, "ok ", 3), "%s", v);
    /* Hundreds of snapshots during the call. */
    ck_assert_msg(samples >= 100, "%s: only %d samples\n%s", mode, samples, td_log(&d));
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}

START_TEST(nanosleep_is_not_cut_short) { check_mode("nanosleep"); }
END_TEST
START_TEST(pipe_read_gets_every_byte) { check_mode("read"); }
END_TEST
START_TEST(poll_wakes_exactly) { check_mode("poll"); }
END_TEST
START_TEST(epoll_wakes_exactly) { check_mode("epoll"); }
END_TEST
START_TEST(mutex_wait_is_undisturbed) { check_mode("mutex"); }
END_TEST
START_TEST(condvar_wakeup_is_not_lost) { check_mode("condvar"); }
END_TEST
START_TEST(waitpid_gets_its_child) { check_mode("waitpid"); }
END_TEST

START_TEST(cpu_loop_result_equals_control)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"cpu", "unwatched", NULL};
    char control[256];
    int samples;

    tw_start(&w, NULL, prog(), args);
    const char *line = tw_expect(&w, "ok cpu", 30000);
    ck_assert_ptr_nonnull(line);
    snprintf(control, sizeof(control), "%s", line);
    tw_wait(&w, 5000);
    const char *v = watched("cpu", &samples, &d);
    ck_assert_str_eq(v, control);
    ck_assert_msg(samples >= 100, "only %d samples", samples);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(signals_are_each_delivered_once)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"signals", NULL};
    int pid, tid, usr1, alrm, rt, chld;
    long rtsum;

    td_start(&d, "0.1", sampler);
    tw_start(&w, &d, prog(), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2);
    ck_assert_ptr_nonnull(tw_expect(&w, "armed", 5000));
    sleep_ms(150); /* past the timer: the daemon is sampling now */
    for (int i = 1; i <= 30; i++) {
        union sigval v = {.sival_int = i};
        kill(pid, SIGUSR1);
        ck_assert_msg(tw_expect(&w, "usr1", 2000) != NULL, "SIGUSR1 #%d never arrived", i);
        kill(pid, SIGCHLD);
        ck_assert_msg(tw_expect(&w, "chld", 2000) != NULL, "SIGCHLD #%d never arrived", i);
        ck_assert_int_eq(sigqueue(pid, SIGRTMIN, v), 0);
        sleep_ms(20);
    }
    line = tw_expect(&w, "ok signals", 10000);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(sscanf(line, "ok signals usr1=%d alrm=%d rt=%d rtsum=%ld chld=%d", &usr1,
                            &alrm, &rt, &rtsum, &chld),
                     5);
    ck_assert_int_eq(chld, 30);
    /* Each SIGUSR1 was acknowledged before the next was sent, so none could
     * merge with another; real-time ones queue with their payloads. */
    ck_assert_int_eq(usr1, 30);
    ck_assert_int_eq(rt, 30);
    ck_assert_int_eq(rtsum, 30 * 31 / 2);
    ck_assert_msg(alrm >= 25 && alrm <= 51, "alrm=%d for 50 timer expirations", alrm);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* A thread someone else traces (strace here) is not fought over. */
START_TEST(traced_by_another_is_skipped)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"nanosleep", NULL};
    int pid, tid;
    char cmd[128];

    if (system("command -v strace >/dev/null") != 0)
        ck_abort_msg("strace is not installed (tools/deps installs it)");
    td_start(&d, "0.5", NULL);
    tw_start(&w, &d, prog(), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2);
    pid_t st = fork();
    if (st == 0) {
        snprintf(cmd, sizeof(cmd), "%d", pid);
        execlp("strace", "strace", "-q", "-o", "/dev/null", "-p", cmd, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "thread is being traced by another process (pid "), "%s", r);
    ck_assert_msg(strstr(r, "); not disturbed]"), "%s", r);
    free(r);
    line = tw_expect(&w, "ok nanosleep", 5000);
    ck_assert_msg(line != NULL, "the traced worker was disturbed");
    tw_wait(&w, 5000);
    kill(st, SIGTERM);
    waitpid(st, NULL, 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("transparency");
    TCase *tc = tcase_create("worker");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, nanosleep_is_not_cut_short);
    tcase_add_test(tc, pipe_read_gets_every_byte);
    tcase_add_test(tc, poll_wakes_exactly);
    tcase_add_test(tc, epoll_wakes_exactly);
    tcase_add_test(tc, mutex_wait_is_undisturbed);
    tcase_add_test(tc, condvar_wakeup_is_not_lost);
    tcase_add_test(tc, waitpid_gets_its_child);
    tcase_add_test(tc, cpu_loop_result_equals_control);
    tcase_add_test(tc, signals_are_each_delivered_once);
    tcase_add_test(tc, traced_by_another_is_skipped);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
