/* SPDX-License-Identifier: MIT */
/*
 * Native snapshots against the real daemon: a worker 30 frames deep with
 * known locals, built at -O0, at -O2 and stripped of debug info; a
 * CPU-bound thread snapshotted inside the vDSO many times; a thread stuck in
 * a signal handler; a worker killed while the daemon holds its thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include <dirent.h>

#include "harness.h"

#define DEPTH 27

static char prog_path[600];

static const char *deep(const char *variant)
{
    const char *dir = getenv("DEEP_WORKER_DIR");
    ck_assert_msg(dir != NULL, "DEEP_WORKER_DIR is not set (run with make check)");
    snprintf(prog_path, sizeof(prog_path), "%s/deep_worker_%s", dir, variant);
    return prog_path;
}

static const char *deep_cpp(void)
{
    const char *dir = getenv("DEEP_WORKER_DIR");
    ck_assert_ptr_nonnull(dir);
    snprintf(prog_path, sizeof(prog_path), "%s/cpp_worker", dir);
    return prog_path;
}

/* The line of the deep worker's source that contains text. */
static int source_line_of(const char *text)
{
    char path[600], line[512];
    const char *top = getenv("TOP_SRCDIR");
    int n = 0;

    ck_assert_ptr_nonnull(top);
    snprintf(path, sizeof(path), "%s/tests/workers/deep_worker.c", top);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        n++;
        if (strstr(line, text)) {
            fclose(f);
            return n;
        }
    }
    fclose(f);
    ck_abort_msg("'%s' not in deep_worker.c", text);
    return 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}


/* needles must appear in this order. */
static void assert_in_order(const char *r, const char *const *needles)
{
    const char *p = r;
    for (int i = 0; needles[i]; i++) {
        const char *q = strstr(p, needles[i]);
        expect(q != NULL, r, "'%s' missing (or out of order)", needles[i]);
        p = q + strlen(needles[i]);
    }
}

static char *one_report(struct tdaemon *d, struct tworker *w, int *pid, int *tid)
{
    const char *line = tw_expect(w, "ready", 5000);
    char needle[64];

    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d", pid, tid) == 2, "no ready: %s",
                  line ? line : "(nothing)");
    ck_assert_msg(td_wait_reports(d, 1, 8000) >= 1, "no report:\n%s", td_log(d));
    snprintf(needle, sizeof(needle), "_%d_%d", *pid, *tid);
    char *r = td_read_report(d, needle);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *const stack_order[] = {
    "in main\n", "in descend\n", "in stuck_here\n", "in wait_inlined (inlined)\n",
    "in sleep_for\n", "nanosleep", NULL,
};

static void check_stack_and_locals(const char *r, bool expect_params)
{
    char want[128];
    const char *full;

    /* Short traceback: the right functions in the right order, 27 levels. */
    assert_in_order(r, stack_order);
    full = strstr(r, "Full backtrace with local variables:");
    expect(full != NULL, r, "no locals section");
    ck_assert_int_eq(count(r, "in descend\n"), 2 * DEPTH);

    /* File and line: stuck_here is at the wait_inlined(3) call, the inlined
     * function at its own call to sleep_for. */
    snprintf(want, sizeof(want), "deep_worker.c\", line %d, in stuck_here\n",
             source_line_of("wait_inlined(3);"));
    expect(strstr(r, want), r, "want '%s'", want);
    snprintf(want, sizeof(want), "deep_worker.c\", line %d, in wait_inlined (inlined)\n",
             source_line_of("sleep_for(seconds);"));
    expect(strstr(r, want), r, "want '%s'", want);
    /* The source line itself is quoted. */
    expect(strstr(r, "\n    wait_inlined(3);\n"), r, "source line not quoted");

    /* Every kind of local, in the frame where it lives. */
    static const char *const locals[] = {
        "      counter = 42\n",
        "      big = -1234567890123\n",
        "      small = 65535\n",
        "      f = 1.5\n",
        "      d = 2.25\n",
        "      flag = true\n",
        "      c = BLUE\n",
        "\"hello, dogslow\"\n",
        "      buf = \"abc\"\n",
        "      p = {x = 3, y = 4, label = 0x",
        "\"origin\"}\n",
        "      u = {i = 7, f = ",
        "      arr = {10, 20, 30, 40, 50, 60, 70, 80, ... (12 elements)}\n",
        "      ptr = 0x",
        "      password = [redacted]\n",
        "      card = [redacted]\n",
        "      inlined_rounds = 3\n",
        NULL,
    };
    for (int i = 0; locals[i]; i++)
        expect(strstr(full, locals[i]), r, "want '%s'", locals[i]);
    expect(!strstr(r, "hunter2"), r, "a secret leaked");
    /* The whole number: "4111" alone turns up in other values (a tv_nsec). */
    expect(!strstr(r, "4111 1111"), r, "a card number leaked");

    /* Each recursion level shows its own value, oldest first. */
    const char *p = full;
    for (int level = 1; level <= DEPTH; level++) {
        snprintf(want, sizeof(want), "in descend\n");
        p = strstr(p, want);
        expect(p != NULL, r, "level %d missing", level);
        snprintf(want, sizeof(want), "      here = %d\n", level * 10);
        const char *next = strstr(p + 1, "  File ");
        const char *v = strstr(p, want);
        expect(v && (!next || v < next), r, "level %d: want '%s'", level, want);
        p++;
    }
    if (expect_params) {
        expect(strstr(full, "      depth_param = 27\n"), r, "depth_param");
        expect(strstr(full, "      ratio = 0.5\n"), r, "ratio");
        expect(strstr(full, "\"bottom\"\n"), r, "name");
        expect(strstr(full, "      level = 27\n"), r, "level");
    }
}

static const char *const vars_args[] = {"--stack-vars", NULL};

START_TEST(deep_stack_at_O0)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"sleep", "1.5", NULL};
    int pid, tid;

    td_start(&d, "0.3", vars_args);
    tw_start(&w, &d, deep("O0"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    check_stack_and_locals(r, true);
    free(r);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* The frames of a report, from its first "  File " line to the blank line
 * after the traceback: what names and lines the daemon found. */
static char *traceback_of(const char *r)
{
    const char *p = strstr(r, "\n  File ");
    const char *end = p ? strstr(p + 1, "\n\n") : NULL;

    expect(p && end, r, "no traceback");
    return strndup(p, (size_t)(end - p));
}

/* Without locals, frame names come from a per-thread cache keyed by build ID
 * and module-relative address (symbolize.c).  Two processes of the same
 * optimised binary (inlined frames, 27 levels), stuck at the same place,
 * at different load addresses: the second report is named from the cache
 * and must read exactly like the first, which was looked up afresh. */
START_TEST(cached_names_match_fresh_lookups)
{
    struct tdaemon d;
    struct tworker w1, w2;
    const char *args[] = {"sleep", "1.5", NULL};
    int pid1, tid1;
    char mine[64], *r1, *r2 = NULL, *t1, *t2;

    td_start(&d, "0.3", NULL);
    tw_start(&w1, &d, deep("O2"), args);
    r1 = one_report(&d, &w1, &pid1, &tid1);
    tw_start(&w2, &d, deep("O2"), args);
    ck_assert_ptr_nonnull(tw_expect(&w2, "ready", 5000));
    /* The other process's report. */
    snprintf(mine, sizeof(mine), "_%d_", pid1);
    for (long long end = now_ms() + 8000; now_ms() < end && !r2; sleep_ms(20)) {
        DIR *dir = opendir(d.out);
        struct dirent *e;

        while (dir && !r2 && (e = readdir(dir)))
            if (!strncmp(e->d_name, "slow_request_", 13) && strstr(e->d_name, ".log") &&
                !strstr(e->d_name, ".tmp") && !strstr(e->d_name, mine))
                r2 = td_read_report(&d, e->d_name);
        if (dir)
            closedir(dir);
    }
    ck_assert_msg(r2 != NULL, "no report of the second process:\n%s", td_log(&d));
    t1 = traceback_of(r1);
    t2 = traceback_of(r2);
    assert_in_order(t1, stack_order);
    ck_assert_int_eq(count(t1, "in descend\n"), DEPTH);
    if (strcmp(t1, t2) != 0) {
        fprintf(stderr, "---- fresh ----\n%s\n---- cached ----\n%s\n", t1, t2);
        ck_abort_msg("the report named from the cache differs from the fresh one");
    }
    free(t1);
    free(t2);
    free(r1);
    free(r2);
    ck_assert_int_eq(tw_wait(&w1, 5000), 0);
    ck_assert_int_eq(tw_wait(&w2, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(deep_stack_at_O2)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"sleep", "1.5", NULL};
    int pid, tid;

    td_start(&d, "0.3", vars_args);
    tw_start(&w, &d, deep("O2"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    check_stack_and_locals(r, false);
    free(r);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(stripped_worker_still_named)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"sleep", "1.0", NULL};
    int pid, tid;

    td_start(&d, "0.3", vars_args);
    tw_start(&w, &d, deep("stripped"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    /* No DWARF: names from the symbol table, as symbol+offset. */
    expect(strstr(r, "in stuck_here"), r, "stuck_here not named");
    expect(strstr(r, "in descend+0x"), r, "descend not named");
    expect(strstr(r, "in main+0x"), r, "main not named");
    expect(count(r, "in descend+0x") == 2 * DEPTH, r, "%d descend frames",
           count(r, "in descend+0x"));
    expect(!strstr(r, "deep_worker.c\", line"), r, "line info without debug info?");
    free(r);
    tw_wait(&w, 5000);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* Many snapshots of a thread spinning on clock_gettime (the vDSO) at -O2:
 * every one must be complete, and the vDSO named. */
static void spin_in_vdso(struct tdaemon *d)
{
    struct tworker w;
    /* 0.3 s requests against a 0.1 s timer: the margin keeps the test
     * meaningful on a loaded machine. */
    const char *args[] = {"spin", "20", "0.3", NULL};
    int n;

    tw_start(&w, d, deep("O2"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 30000), 0);
    n = td_wait_reports(d, 20, 3000);
    expect(n == 20, td_log(d), "%d reports for 20 requests", n);
    /* Read every report and check that each one reaches main. */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "ls %s", d->out);
    FILE *ls = popen(cmd, "r");
    char name[300];
    int checked = 0, in_vdso = 0;
    while (fgets(name, sizeof(name), ls)) {
        name[strcspn(name, "\n")] = '\0';
        char *r = td_read_report(d, name);
        ck_assert_ptr_nonnull(r);
        assert_in_order(r, (const char *const[]){"in main", "in descend", "in stuck_here",
                                                 "in spin_on_clock", NULL});
        expect(count(r, "in descend") == DEPTH, r, "%d descend frames", count(r, "in descend"));
        if (strstr(r, "[vdso")) {
            in_vdso++;
            expect(strstr(r, "clock_gettime"), r, "the vDSO's function is not named");
        }
        free(r);
        checked++;
    }
    pclose(ls);
    ck_assert_int_eq(checked, 20);
    /* Most of the time is spent in clock_gettime: some snapshots land there. */
    ck_assert_msg(in_vdso > 0, "no snapshot landed in the vDSO");
    td_stop(d);
    td_cleanup(d);
}

START_TEST(cpu_bound_in_vdso_always_complete)
{
    struct tdaemon d;

    td_start(&d, "0.1", NULL);
    spin_in_vdso(&d);
}
END_TEST

/* The same with CAP_SYS_PTRACE alone (dac_read_search = false), watching a
 * worker of another user (root): its /proc/PID/auxv, where the vDSO's
 * address is, is unreadable; the vDSO is found in its maps and named from
 * the daemon's own copy (the same kernel's). */
START_TEST(cpu_bound_in_vdso_with_ptrace_only)
{
    struct tdaemon d;

    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_write_conf(&d, "[dogslow]\nuser = nobody\ndac_read_search = false\n");
    d.switch_user = true;
    td_launch(&d, "0.1", NULL);
    ck_assert_msg(strstr(td_log(&d), "keeping CAP_SYS_PTRACE only"), "%s", td_log(&d));
    spin_in_vdso(&d);
}
END_TEST

START_TEST(stuck_in_signal_handler)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"signal", "1.0", NULL};
    int pid, tid;

    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, deep("O2"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    /* Through the signal frame down to main. */
    assert_in_order(r, (const char *const[]){"in main", "raise", "in handler", "in descend",
                                             "in stuck_here", "in sleep_for", NULL});
    free(r);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* The daemon holds the thread (test hook) and the worker is killed: the
 * daemon must survive and still write what it has. */
START_TEST(worker_killed_mid_snapshot)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"thread", "5", NULL};
    int pid, tid;

    setenv("DOGSLOWD_TEST_HOLD_MS", "600", 1);
    td_start(&d, "0.3", vars_args);
    unsetenv("DOGSLOWD_TEST_HOLD_MS");
    tw_start(&w, &d, deep("O0"), args);
    const char *line = tw_expect(&w, "ready", 5000);
    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d", &pid, &tid) == 2, "no ready");
    sleep_ms(450); /* past the deadline: the daemon is holding the thread */
    tw_kill(&w);
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "%s", td_log(&d));
    char *r = td_read_report(&d, NULL);
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "GET /deep/thread\n"), r, "wrong request");
    free(r);
    ck_assert(td_alive(&d));
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* The redaction list is the operator's: here it hides 'counter' and no
 * longer 'password'; card numbers stay hidden whatever the list. */
START_TEST(redaction_is_configurable)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"sleep", "1.0", NULL};
    const char *const extra[] = {"--stack-vars", "--set", "redact=counter, nothing", NULL};
    int pid, tid;

    td_start(&d, "0.3", extra);
    tw_start(&w, &d, deep("O0"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    const char *full = strstr(r, "Full backtrace with local variables:");
    expect(full && strstr(full, "      counter = [redacted]\n"), r, "counter not redacted");
    expect(strstr(full, "\"hunter2\"\n"), r, "password redacted without being listed");
    expect(strstr(full, "      card = [redacted]\n") && !strstr(r, "4111 1111"), r, "card shown");
    free(r);
    tw_wait(&w, 5000);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(cpp_names_are_demangled)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"1.0", NULL};
    int pid, tid;

    td_start(&d, "0.3", vars_args);
    tw_start(&w, &d, deep_cpp(), args);
    char *r = one_report(&d, &w, &pid, &tid);
    assert_in_order(r, (const char *const[]){"in main", "in shop::OrderService::load(int, double)",
                                             "in shop::Repository<long>::fetch(int, double)",
                                             NULL});
    const char *full = strstr(r, "Full backtrace with local variables:");
    expect(full && strstr(full, "      wanted = 7\n"), r, "member function locals");
    free(r);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* Debug info installed separately (Debian's libc6-dbg, under /usr/lib/debug)
 * is found: libc's own frames get file and line. */
START_TEST(separate_debug_info_is_used)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"sleep", "0.8", NULL};
    int pid, tid;

    if (access("/usr/lib/debug/.build-id", F_OK) != 0) {
        fprintf(stderr, "separate_debug_info_is_used: no /usr/lib/debug (install libc6-dbg)\n");
        ck_abort_msg("libc6-dbg is not installed; tools/deps installs it");
    }
    td_start(&d, "0.3", NULL);
    tw_start(&w, &d, deep("O0"), args);
    char *r = one_report(&d, &w, &pid, &tid);
    expect(strstr(r, "nanosleep.c\", line "), r, "no line info for libc's nanosleep");
    free(r);
    tw_wait(&w, 5000);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("native");
    TCase *tc = tcase_create("snapshots");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, deep_stack_at_O0);
    tcase_add_test(tc, deep_stack_at_O2);
    tcase_add_test(tc, cached_names_match_fresh_lookups);
    tcase_add_test(tc, stripped_worker_still_named);
    tcase_add_test(tc, cpu_bound_in_vdso_always_complete);
    tcase_add_test(tc, cpu_bound_in_vdso_with_ptrace_only);
    tcase_add_test(tc, stuck_in_signal_handler);
    tcase_add_test(tc, worker_killed_mid_snapshot);
    tcase_add_test(tc, cpp_names_are_demangled);
    tcase_add_test(tc, redaction_is_configurable);
    tcase_add_test(tc, separate_debug_info_is_used);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
