/* SPDX-License-Identifier: MIT */
/*
 * Integration tests: the real dogslowd on a private socket, real worker
 * processes linking libdogslow, real report files.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"
#include "util.h"

#include "harness.h"

static const char *worker_prog(void)
{
    return getenv("TEST_WORKER");
}

static void parse_ready(const char *line, int *pid, int *tid)
{
    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d", pid, tid) == 2,
                  "worker did not report ready: %s", line ? line : "(nothing)");
}

/* Find a and then b after it in s. */
static bool in_order(const char *s, const char *a, const char *b)
{
    const char *pa = strstr(s, a);
    return pa && strstr(pa + strlen(a), b);
}

START_TEST(slow_request_is_reported)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "1.5", "PUT", "/orders/42?page=2", NULL};
    char needle[64], expect[128];
    int pid, tid;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "no report; daemon log:\n%s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);

    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_msg(r != NULL, "report file is not named with pid and tid");
    ck_assert_msg(!strncmp(r, "Undead request intercepted at: ", 31), "%s", r);
    ck_assert_msg(strstr(r, "\nPUT /orders/42?page=2\n"), "%s", r);
    snprintf(expect, sizeof(expect), "\nThread ID:  %d\n", tid);
    ck_assert_msg(strstr(r, expect), "%s", r);
    snprintf(expect, sizeof(expect), "\nProcess ID: %d\n", pid);
    ck_assert_msg(strstr(r, expect), "%s", r);
    ck_assert_msg(strstr(r, "\nHostname:   "), "%s", r);
    ck_assert_msg(strstr(r, "\nStarted:    "), "%s", r);
    /* The worker's own functions, oldest call first, with file and line. */
    ck_assert_msg(in_order(r, "in main\n", "in handle_slow_request\n"), "%s", r);
    ck_assert_msg(in_order(r, "in handle_slow_request\n", "in wait_for_database\n"), "%s", r);
    ck_assert_msg(strstr(r, "test_worker.c\", line "), "%s", r);
    ck_assert_msg(strstr(r, "nanosleep"), "%s", r);
    free(r);

    /* One report per undead request, not one per scan. */
    sleep_ms(300);
    ck_assert_int_eq(td_count_reports(&d), 1);
    ck_assert(td_alive(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(report_file_is_0640_and_complete)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "0.8", NULL};
    char path[600];
    struct stat st;
    int pid, tid;

    td_start(&d, "0.2", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    tw_wait(&w, 5000);
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    free(r);
    /* Find its name to stat it. */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "ls %s/slow_request_*.log", d.out);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(path, sizeof(path), p));
    pclose(p);
    path[strcspn(path, "\n")] = '\0';
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    /* No temporary file is left behind. */
    snprintf(cmd, sizeof(cmd), "ls -A %s | grep -c tmp", d.out);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(path, sizeof(path), p));
    pclose(p);
    ck_assert_str_eq(path, "0\n");
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(fast_requests_are_not_reported)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"fast", "10000", NULL};

    td_start(&d, "0.2", NULL);
    tw_start(&w, &d, worker_prog(), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    ck_assert_int_eq(td_count_reports(&d), 0);
    ck_assert_msg(strstr(td_log(&d), "registered pid"), "%s", td_log(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(worker_exiting_mid_request_is_forgotten)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"exitmid", "0.1", NULL};
    char expect[64];
    int pid, tid;

    td_start(&d, "0.6", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    snprintf(expect, sizeof(expect), "pid %d (test_worker)", pid);
    for (long long end = now_ms() + 3000; now_ms() < end && !strstr(td_log(&d), "forgotten");)
        sleep_ms(20);
    ck_assert_msg(strstr(td_log(&d), expect) && strstr(td_log(&d), "forgotten"), "%s",
                  td_log(&d));
    /* Past the deadline: the abandoned request must not be reported. */
    sleep_ms(900);
    ck_assert_int_eq(td_count_reports(&d), 0);
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(forked_child_is_tracked_separately)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"fork", "1.2", NULL};
    char needle[64], expect[64];
    int pid, tid;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, worker_prog(), args);
    pid_t parent = w.pid;
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_ne(pid, parent); /* the child's request */
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_msg(r != NULL, "no report for the child %d", pid);
    ck_assert_msg(strstr(r, "GET /child/slow\n"), "%s", r);
    snprintf(expect, sizeof(expect), "Parent PID: %d\n", (int)parent);
    ck_assert_msg(strstr(r, expect), "%s", r);
    free(r);
    /* Both processes registered, each on its own. */
    snprintf(expect, sizeof(expect), "registered pid %d ", pid);
    ck_assert_msg(strstr(td_log(&d), expect), "%s", td_log(&d));
    snprintf(expect, sizeof(expect), "registered pid %d ", (int)parent);
    ck_assert_msg(strstr(td_log(&d), expect), "%s", td_log(&d));
    ck_assert_int_eq(td_count_reports(&d), 1);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* A forked child registers on its first request without waiting: the
 * hello's answer is picked up by a later request.  Here the daemon is busy
 * (holding the parent for 800 ms) when the child's first request sends it,
 * so the answer comes late; the child's slow request 1.4 s later must still
 * be watched (it used to wait for the 5-second retry, unwatched). */
START_TEST(forked_child_registers_when_daemon_answers_late)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"forkbusy", "1.0", NULL};
    const char *env[] = {"DOGSLOWD_TEST_HOLD_MS=800", NULL};

    td_init(&d);
    d.env = env;
    td_launch(&d, "0.2", NULL);
    tw_start(&w, &d, worker_prog(), args);
    ck_assert_int_eq(tw_wait(&w, 15000), 0);
    ck_assert_int_eq(td_wait_reports(&d, 2, 5000), 2);
    ck_assert_int_eq(td_count_reports_with(&d, "GET /parent/slow\n"), 1);
    ck_assert_int_eq(td_count_reports_with(&d, "GET /child/slow\n"), 1);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* Naming a snapshot's frames is slow the first time (debug information is
 * loaded: seconds on a loaded machine), and writing the report file can be
 * slow too (it reads the worker's sources and ends with an fsync: a loaded
 * disk takes long).  Both run on the analysis thread: the loop goes on
 * taking snapshots at their deadlines.  Here one of them is slowed (naming
 * 1.5 s per report; writing 0.6 s per file, text and JSON twin), and three
 * requests of 0.8 s begin 0.4 s apart with a 0.3 s timer: each deadline
 * falls while an earlier report is still in the works.  All three must be
 * reported, each with its stack taken at its deadline (when the loop did
 * the naming itself, the second and third were never seen). */
static void slow_analysis_never_delays_the_next_snapshot(const char *hook, const char *conf)
{
    struct tdaemon d;
    struct tworker w;
    /* The worker outlives the naming (4.8 s): frames are named from the
     * live process's module list. */
    const char *args[] = {"stagger", "0.8", "0.4", "3", "4", NULL};
    const char *env[] = {hook, NULL};

    td_init(&d);
    d.env = env;
    td_write_conf(&d, conf);
    td_launch(&d, "0.3", NULL);
    tw_start(&w, &d, worker_prog(), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_msg(td_wait_reports(&d, 3, 15000) == 3, "%s: %s", hook, td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    for (int i = 0; i < 3; i++) {
        char url[64];
        char *r;

        snprintf(url, sizeof(url), "GET /stagger/%d\n", i);
        r = td_find_report_with(&d, url);
        ck_assert_msg(r != NULL, "%s: no report of %s%s", hook, url, td_log(&d));
        /* Taken at the deadline, not when the loop was free again. */
        expect(strstr(r, "Running:    0.3") || strstr(r, "Running:    0.4"), r,
               "%s: the snapshot of %s was not taken at its deadline", hook, url);
        expect(strstr(r, "wait_for_database"), r, "%s: no frames in the report of %s", hook, url);
        free(r);
    }
    if (strstr(conf, "json = true")) {
        char cmd[700], out[64];
        FILE *f;

        /* The twins too (the loop finishes each report once its file and
         * twin are written). */
        snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^slow_request_.*\\.json$'", d.out);
        for (long long end = now_ms() + 10000; now_ms() < end; sleep_ms(100)) {
            f = popen(cmd, "r");
            ck_assert_ptr_nonnull(f);
            out[0] = '\0';
            (void)!fgets(out, sizeof(out), f);
            pclose(f);
            if (atoi(out) == 3)
                break;
        }
        ck_assert_msg(atoi(out) == 3, "%s JSON twins, not 3:\n%s", out, td_log(&d));
    }
    td_stop(&d);
    td_cleanup(&d);
}

START_TEST(slow_naming_never_delays_the_next_snapshot)
{
    slow_analysis_never_delays_the_next_snapshot("DOGSLOWD_TEST_NAMING_DELAY_MS=1500", "");
}
END_TEST

START_TEST(slow_report_write_never_delays_the_next_snapshot)
{
    /* Each file, the text and its JSON twin, takes 0.6 s more: were either
     * written on the loop, the second request's snapshot would wait. */
    slow_analysis_never_delays_the_next_snapshot("DOGSLOWD_TEST_WRITE_DELAY_MS=600",
                                                 "[dogslow]\njson = true\n");
}
END_TEST

START_TEST(second_thread_is_reported_with_its_tid)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"thread", "1.0", NULL};
    char needle[64];
    int pid, tid;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_ne(pid, tid);
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    tw_wait(&w, 5000);
    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "POST /thread/slow\n"), "%s", r);
    ck_assert_msg(in_order(r, "in slow_thread\n", "in wait_for_database\n"), "%s", r);
    free(r);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(cpu_bound_request_is_reported)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"spin", "1.0", "GET", "/spin", NULL};
    int pid, tid;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "in handle_spin_request\n"), "%s", r);
    ck_assert_msg(strstr(r, "in main\n"), "%s", r);
    free(r);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

static const char *bad_modes[][2] = {
    {"garbage", "closed"}, {"huge", "closed"},      {"badhello", "closed"},
    {"wrongtype", "closed"}, {"fds", "closed"},     {"split", "answered 2"},
};

START_TEST(malformed_clients_do_not_disturb_a_good_one)
{
    struct tdaemon d;
    struct tworker good, bad;
    const char *args[] = {"slow", "2.5", "GET", "/good", NULL};
    int pid, tid;

    td_start(&d, "1.0", NULL);
    tw_start(&good, &d, worker_prog(), args);
    parse_ready(tw_expect(&good, "ready", 5000), &pid, &tid);
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        const char *bargs[] = {d.sock, bad_modes[i][0], NULL};
        tw_start(&bad, NULL, getenv("BAD_CLIENT"), bargs);
        const char *line = tw_expect(&bad, "", 10000);
        ck_assert_msg(line && !strcmp(line, bad_modes[i][1]), "mode %s: got '%s', want '%s'",
                      bad_modes[i][0], line ? line : "(nothing)", bad_modes[i][1]);
        tw_wait(&bad, 2000);
    }
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "%s", td_log(&d));
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "GET /good\n"), "%s", r);
    free(r);
    ck_assert_msg(strstr(td_log(&d), "protocol error"), "%s", td_log(&d));
    ck_assert(td_alive(&d));
    ck_assert_int_eq(tw_wait(&good, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(silent_client_is_dropped)
{
    struct tdaemon d;
    struct tworker bad;

    td_start(&d, "1.0", NULL);
    const char *bargs[] = {d.sock, "silent", NULL};
    tw_start(&bad, NULL, getenv("BAD_CLIENT"), bargs);
    const char *line = tw_expect(&bad, "", 10000);
    ck_assert_msg(line && !strcmp(line, "closed"), "got %s", line ? line : "(nothing)");
    ck_assert_msg(strstr(td_log(&d), "no hello in time"), "%s", td_log(&d));
    tw_wait(&bad, 2000);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(spoofed_tid_is_never_attached)
{
    struct tdaemon d;
    struct tworker bad;
    char victim_s[32];
    pid_t victim = fork();

    if (victim == 0) {
        execl("/bin/sleep", "sleep", "20", (char *)NULL);
        _exit(127);
    }
    snprintf(victim_s, sizeof(victim_s), "%d", (int)victim);
    td_start(&d, "0.2", NULL);
    const char *bargs[] = {d.sock, "spoof", victim_s, NULL};
    tw_start(&bad, NULL, getenv("BAD_CLIENT"), bargs);
    ck_assert_ptr_nonnull(tw_expect(&bad, "spoofed", 5000));
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "is not (or no longer) in process"), "%s", r);
    ck_assert_msg(!strstr(r, "File \""), "a foreign thread was unwound:\n%s", r);
    free(r);
    /* The victim was never stopped or traced. */
    int st;
    ck_assert_int_eq(waitpid(victim, &st, WNOHANG), 0);
    kill(victim, SIGKILL);
    waitpid(victim, &st, 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    tw_kill(&bad);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(no_daemon_means_cheap_noops)
{
    struct tworker w;
    const char *args[] = {"noregister", NULL};

    tw_start(&w, NULL, worker_prog(), args);
    const char *line = tw_expect(&w, "register=", 5000);
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strstr(line, "register=-2 ") && strstr(line, "begin=-107 "), "%s", line);
    ck_assert_msg(strstr(line, "cannot connect to dogslowd at /nonexistent/dogslow.sock"), "%s",
                  line);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
}
END_TEST

START_TEST(request_in_flight_survives_daemon_restart)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"restart", "9", NULL};
    char needle[64];
    int pid, tid;

    td_start(&d, "2", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    sleep_ms(200);
    td_kill(&d); /* SIGKILL: no goodbye to anyone */
    ck_assert_int_eq(td_count_reports(&d), 0);
    /* The new daemon has no records of the old one (say /run was wiped):
     * the worker must find it by itself. */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/workers'", d.dir);
    ck_assert_int_eq(system(cmd), 0);
    td_restart(&d, "2");
    /* The worker notices the stale heartbeat within ~3 s and offers its
     * scoreboard to the new daemon, which finds the request still running. */
    ck_assert_msg(td_wait_reports(&d, 1, 8000) == 1, "%s", td_log(&d));
    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "GET /across/restart\n"), "%s", r);
    free(r);
    ck_assert_msg(strstr(td_log(&d), "scoreboard adopted"), "%s", td_log(&d));
    tw_kill(&w);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(stuck_single_thread_survives_daemon_restart)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"slow", "8", "GET", "/stuck/alone", NULL};
    char needle[64], expect[64];
    int pid, tid;

    td_start(&d, "2", NULL);
    tw_start(&w, &d, worker_prog(), args);
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    td_kill(&d);
    td_restart(&d, "2");
    /* The worker's only thread is stuck and never calls into the library
     * again: the new daemon must take it over from its own records. */
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "%s", td_log(&d));
    snprintf(needle, sizeof(needle), "_%d_%d.log", pid, tid);
    char *r = td_read_report(&d, needle);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strstr(r, "GET /stuck/alone\n"), "%s", r);
    ck_assert_msg(strstr(r, "in wait_for_database\n"), "%s", r);
    free(r);
    snprintf(expect, sizeof(expect), "adopted pid %d (test_worker)", pid);
    ck_assert_msg(strstr(td_log(&d), expect), "%s", td_log(&d));
    /* Reported once: a third daemon does not report it again. */
    td_kill(&d);
    td_restart(&d, "2");
    sleep_ms(500);
    ck_assert_int_eq(td_count_reports(&d), 1);
    tw_kill(&w);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* ---- README's quick start ------------------------------------------------ */

static char *slurp_file(const char *path)
{
    char *buf = calloc(1, 1 << 20);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(dsl_read_text(path, buf, 1 << 20) > 0, "cannot read %s", path);
    return buf;
}

/* A report line with what changes from run to run made the same: numbers
 * and addresses become 9 and 0x9, a file's directory goes (the sample was
 * built elsewhere), and a header ("Hostname:   vm") keeps only its name.
 * In a sanitizer build a local keeps only its name too: ASan moves the
 * example's stack arrays, and their values read as <optimized out>. */
static void norm_line(const char *line, size_t len, char *out, size_t size)
{
    char tmp[1024], *eq;
    size_t k = 0, i = 0, h = 0;

    snprintf(tmp, sizeof(tmp), "%.*s", (int)len, line);
    if (getenv("DOGSLOW_SANITIZERS") && !strncmp(tmp, "      ", 6) && tmp[6] != ' ' &&
        (eq = strstr(tmp, " = ")))
        eq[2] = '\0';
    if (!strncmp(tmp, "  File \"", 8)) {
        char *q = strchr(tmp + 8, '"'), *slash;

        if (q) {
            *q = '\0';
            slash = strrchr(tmp + 8, '/');
            *q = '"';
            if (slash)
                memmove(tmp + 8, slash + 1, strlen(slash + 1) + 1);
        }
    }
    while (isupper((unsigned char)tmp[0]) &&
           (isalpha((unsigned char)tmp[h]) || tmp[h] == ' ' || tmp[h] == '-'))
        h++;
    if (h && tmp[h] == ':')
        tmp[h + 1] = '\0';
    while (tmp[i] && k + 4 < size) {
        if (tmp[i] == '0' && tmp[i + 1] == 'x' && isxdigit((unsigned char)tmp[i + 2])) {
            for (i += 2; isxdigit((unsigned char)tmp[i]); i++)
                ;
            out[k++] = '0';
            out[k++] = 'x';
            out[k++] = '9';
        } else if (isdigit((unsigned char)tmp[i])) {
            while (isdigit((unsigned char)tmp[i]))
                i++;
            out[k++] = '9';
        } else {
            out[k++] = tmp[i++];
        }
    }
    out[k] = '\0';
}

/* The word after "name" in text, up to a space or a shell operator. */
static void word_after(const char *text, const char *name, char *out, size_t size)
{
    const char *p = strstr(text, name);

    ck_assert_msg(p != NULL, "no '%s'", name);
    p += strlen(name);
    snprintf(out, size, "%.*s", (int)strcspn(p, " \n;&>"), p);
}

/*
 * README.md's sample report is what tools/quickstart prints: the daemon
 * started with the script's options and its built-in defaults, the
 * example worker with the script's timer and duration, and every line of
 * the sample (up to the follow-up, whose samples vary) found in the real
 * report, in order, once numbers, addresses and directories are set aside.
 * The sample's "Running:" is the worker's timer, and the pause the text
 * quotes is the sample's.
 */
START_TEST(readme_sample_report_is_what_quickstart_prints)
{
    char path[1024], opts_text[256], timer[32], secs[32], line[1024], want[1024];
    const char *opts[16];
    unsigned nopts = 0;
    struct tdaemon d;
    struct tworker w;
    const char *src = env_or_die("TOP_SRCDIR");

    snprintf(path, sizeof(path), "%s/tools/quickstart", src);
    char *qs = slurp_file(path);
    /* "build/daemon/dogslowd --stack-vars >"$log" 2>&1 &" */
    const char *p = strstr(qs, "\nbuild/daemon/dogslowd");
    ck_assert_msg(p != NULL, "tools/quickstart does not start build/daemon/dogslowd");
    p += strlen("\nbuild/daemon/dogslowd");
    snprintf(opts_text, sizeof(opts_text), "%.*s", (int)strcspn(p, ">&\n"), p);
    for (char *save = NULL, *t = strtok_r(opts_text, " ", &save); t && nopts < 15;
         t = strtok_r(NULL, " ", &save))
        opts[nopts++] = t;
    opts[nopts] = NULL;
    /* "DOGSLOW_TIMER=2 build/examples/slow_worker 4" */
    word_after(qs, "\nDOGSLOW_TIMER=", timer, sizeof(timer));
    word_after(qs, " build/examples/slow_worker ", secs, sizeof(secs));
    free(qs);

    snprintf(path, sizeof(path), "%s/README.md", src);
    char *readme = slurp_file(path);
    char *sect = strstr(readme, "\n## Quick start");
    ck_assert_ptr_nonnull(sect);
    char *sect_end = strstr(sect + 1, "\n## ");
    char *sample = strstr(sect, "\n```\nUndead request intercepted at: ");
    ck_assert_msg(sample && (!sect_end || sample < sect_end),
                  "README.md's Quick start has no sample report");
    sample += 5;
    char *sample_end = strstr(sample, "\n```\n");
    ck_assert_ptr_nonnull(sample_end);
    *sample_end = '\0';
    /* The figures the sample shows are a run's of this very set-up. */
    double running = -1, t = strtod(timer, NULL);
    const char *rl = strstr(sample, "\nRunning:    ");
    ck_assert_msg(rl && sscanf(rl, "\nRunning: %lf s", &running) == 1, "no Running: line");
    ck_assert_msg(running >= t - 0.05 && running < t + 1,
                  "README's sample runs %.3f s for a %s s timer (DOGSLOW_TIMER in "
                  "tools/quickstart)",
                  running, timer);
    unsigned paused = 0, held = 0;
    const char *pl = strstr(sample, "\nPaused:     "), *hl = strstr(sect, "held for ");
    ck_assert_msg(pl && sscanf(pl, "\nPaused: %u us", &paused) == 1, "no Paused: line");
    ck_assert_msg(hl && hl < sample && sscanf(hl, "held for %u", &held) == 1 && held == paused,
                  "README says the thread was held for %u us, its sample %u us", held, paused);

    /* The quick start, for real (its defaults; a socket and directory of
     * the test's). */
    td_init(&d);
    td_launch(&d, NULL, opts);
    snprintf(path, sizeof(path), "%s/examples/slow_worker", env_or_die("abs_top_builddir"));
    snprintf(want, sizeof(want), "DOGSLOW_TIMER=%s", timer);
    tw_start_env(&w, &d, path, (const char *const[]){secs, NULL},
                 (const char *const[]){want, NULL});
    ck_assert_int_eq(tw_wait(&w, (int)(strtod(secs, NULL) * 1000) + 10000), 0);
    char *r = td_wait_report_text(&d, "\nFollow-up: ", 5000);
    ck_assert_msg(r != NULL, "no report; daemon log:\n%s", td_log(&d));
    expect(strstr(r, "\nFollow-up: "), r, "the report was not followed to its end");
    rl = strstr(r, "\nRunning:    ");
    expect(rl && sscanf(rl, "\nRunning: %lf s", &running) == 1 && running >= t - 0.05 &&
               running < t + 1,
           r, "the report's Running: is not the %s s timer", timer);

    /* Every sample line in the report, in order ("  ..." elides). */
    char *fu = strstr(sample, "\nFollow-up: ");
    if (fu)
        fu[1] = '\0';
    const char *at = r;
    for (const char *l = sample; *l;) {
        size_t n = strcspn(l, "\n");

        if (!(n == 5 && !strncmp(l, "  ...", 5))) {
            const char *found = NULL;

            norm_line(l, n, want, sizeof(want));
            for (const char *q = at; *q && !found;) {
                size_t m = strcspn(q, "\n");

                norm_line(q, m, line, sizeof(line));
                q += m + (q[m] == '\n');
                if (!strcmp(line, want))
                    found = q;
            }
            expect(found, r, "README's sample line '%.*s' is not in the real report (above)",
                   (int)n, l);
            at = found;
        }
        l += n + (l[n] == '\n');
    }
    free(readme);
    free(r);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("integration");
    TCase *tc = tcase_create("daemon");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slow_request_is_reported);
    tcase_add_test(tc, report_file_is_0640_and_complete);
    tcase_add_test(tc, fast_requests_are_not_reported);
    tcase_add_test(tc, worker_exiting_mid_request_is_forgotten);
    tcase_add_test(tc, forked_child_is_tracked_separately);
    tcase_add_test(tc, forked_child_registers_when_daemon_answers_late);
    tcase_add_test(tc, slow_naming_never_delays_the_next_snapshot);
    tcase_add_test(tc, slow_report_write_never_delays_the_next_snapshot);
    tcase_add_test(tc, second_thread_is_reported_with_its_tid);
    tcase_add_test(tc, cpu_bound_request_is_reported);
    tcase_add_test(tc, malformed_clients_do_not_disturb_a_good_one);
    tcase_add_test(tc, silent_client_is_dropped);
    tcase_add_test(tc, spoofed_tid_is_never_attached);
    tcase_add_test(tc, no_daemon_means_cheap_noops);
    tcase_add_test(tc, request_in_flight_survives_daemon_restart);
    tcase_add_test(tc, stuck_single_thread_survives_daemon_restart);
    tcase_add_test(tc, readme_sample_report_is_what_quickstart_prints);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
