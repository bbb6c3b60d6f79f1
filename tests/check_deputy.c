/* SPDX-License-Identifier: MIT */
/*
 * A traced process is always the one that registered (issue 14).
 *
 * The daemon may trace any process, so a registration must never become a
 * way to get another program traced: a local user (nobody) who registers,
 * keeps the connection and scoreboard across an exec (descriptors without
 * FD_CLOEXEC, or a forked child holding copies) and then executes a
 * set-uid-root program holding a secret read from a 0600 root file must not
 * get that program's stack and locals into a report, nor have it stopped.
 * The same for an exec of a program of its own, and for a registration that
 * a restarted daemon finds in its state directory.  Source lines are quoted
 * only from files the worker's own user may read.
 *
 * And threads that cannot be stopped (100 threads each waiting in vfork()
 * with an overdue request) do not freeze the daemon's loop, and none is
 * left stopped.
 *
 * The programs are tests/workers/secret_holder (see there) and test_worker;
 * the daemon runs as root.  A set-uid copy of secret_holder is made in the
 * test's directory: where set-uid programs do not work there (a nosuid
 * mount), the tests that need one say so and skip.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "core.h"
#include "harness.h"
#include "run_suite.h"

#define NOBODY 65534

static const char *const vars_args[] = {"--stack-vars", NULL};

static void skip(const char *test, const char *why)
{
    fprintf(stderr, "check_deputy: %s skipped: %s\n", test, why);
}

static void holder_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/secret_holder", env_or_die("DEEP_WORKER_DIR"));
}

static void write_file(const char *path, const char *text, uid_t owner, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(fchown(fd, owner, (gid_t)owner), 0);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
}

/* "KEY=N" in line, or -1. */
static long field(const char *line, const char *key)
{
    const char *p = line ? strstr(line, key) : NULL;

    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* A daemon as root (its defaults, locals on) in a directory nobody can
 * reach, the secret in it (0600 root), and the program to exec: a
 * set-uid-root copy of secret_holder, or (setuid false) one of nobody's. */
struct deputy {
    struct tdaemon d;
    char secret[64];
    char secret_file[320];
    char prog[320];
};

static void deputy_setup(struct deputy *t, bool setuid, const char *timer)
{
    char holder[300];

    holder_path(holder, sizeof(holder));
    td_init(&t->d);
    ck_assert_int_eq(chmod(t->d.dir, 0755), 0);
    snprintf(t->secret, sizeof(t->secret), "TOPSECRET-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(t->secret_file, sizeof(t->secret_file), "%s/secret", t->d.dir);
    write_file(t->secret_file, t->secret, setuid ? 0 : NOBODY, 0600);
    snprintf(t->prog, sizeof(t->prog), "%s/%s", t->d.dir, setuid ? "suid_holder" : "own_holder");
    td_copy_file(holder, t->prog, setuid ? 04755 : 0755, 0);
    if (!setuid)
        ck_assert_int_eq(chown(t->prog, NOBODY, NOBODY), 0);
    td_launch(&t->d, timer, vars_args);
}

/* Start the attack: nobody registers, begins a request and execs t->prog
 * holding the secret for hold seconds.  Returns the pid, or 0 (and the
 * worker is gone) when the exec'd program did not get the credentials it
 * should have (a nosuid mount): then the caller skips. */
static pid_t deputy_start(struct deputy *t, struct tworker *w, const char *how, bool setuid,
                          const char *hold)
{
    char holder[300];
    const char *line;
    const char *args[] = {"deputy", "65534", how, t->prog, "hold", t->secret_file, hold, NULL};
    long pid, euid;

    holder_path(holder, sizeof(holder));
    tw_start(w, &t->d, holder, args);
    line = tw_expect(w, "ready pid=", 5000);
    ck_assert_msg(line, "the deputy did not register:\n%s", td_log(&t->d));
    pid = field(line, "pid=");
    line = tw_expect(w, "ready pid=", 5000);
    ck_assert_msg(line, "the exec'd program did not start");
    ck_assert_int_eq(field(line, "pid="), pid);
    euid = field(line, "euid=");
    if (euid != (setuid ? 0 : NOBODY)) {
        tw_kill(w);
        return 0;
    }
    return (pid_t)pid;
}

/* The exec'd program ran to its end, was never traced, and nothing of it
 * was reported; the daemon said why and forgot the registration. */
static void deputy_check(struct deputy *t, struct tworker *w, pid_t pid, const char *why)
{
    char needle[64];
    const char *line = tw_expect(w, "hold ", 10000);
    char *r;

    ck_assert_msg(line, "the held program said nothing at its end");
    fprintf(stderr, "check_deputy: %s\n", line);
    ck_assert_msg(field(line, "secret=") == (long)strlen(t->secret),
                  "the held program did not read its secret: %s", line);
    ck_assert_int_eq(tw_wait(w, 10000), 0);
    r = td_find_report_with(&t->d, t->secret);
    expect(r == NULL, r, "the secret of pid %d is in a report", (int)pid);
    r = td_find_report_with(&t->d, "/deputy/exec");
    expect(r == NULL, r, "pid %d was reported (after it executed another program)", (int)pid);
    ck_assert_msg(td_count_reports(&t->d) == 0, "pid %d was reported:\n%s", (int)pid,
                  td_log(&t->d));
    ck_assert_msg(field(line, "traced=") == 0, "the held program was traced: %s", line);
    snprintf(needle, sizeof(needle), "pid %d (", (int)pid);
    ck_assert_msg(td_wait_log(&t->d, needle, 1000) && td_wait_log(&t->d, "not traced", 1000) &&
                      td_wait_log(&t->d, why, 1000),
                  "no 'pid %d ... not traced: ...%s' in the log:\n%s", (int)pid, why,
                  td_log(&t->d));
    ck_assert_msg(td_wait_log(&t->d, "is not the process that registered any more", 1000),
                  "the registration was not forgotten:\n%s", td_log(&t->d));
    ck_assert_msg(!strstr(td_log(&t->d), t->secret), "the secret is in the log");
    ck_assert(td_alive(&t->d));
}

/* _i: 0 keeps the descriptors across the exec, 1 leaves them to a child. */
START_TEST(setuid_program_after_exec_is_not_traced)
{
    static const char *const hows[] = {"keep", "child"};
    struct deputy t;
    struct tworker w;
    pid_t pid;

    deputy_setup(&t, true, "0.3");
    pid = deputy_start(&t, &w, hows[_i], true, "2.0");
    if (!pid) {
        skip("setuid_program_after_exec_is_not_traced",
             "a set-uid copy in /tmp does not run as root here (nosuid mount?)");
    } else {
        deputy_check(&t, &w, pid, "uid is 0, not 65534");
    }
    td_stop(&t.d);
    td_cleanup(&t.d);
}
END_TEST

START_TEST(own_program_after_exec_is_not_traced)
{
    struct deputy t;
    struct tworker w;
    pid_t pid;

    deputy_setup(&t, false, "0.3");
    pid = deputy_start(&t, &w, "keep", false, "2.0");
    ck_assert_msg(pid > 0, "the exec'd program did not run as nobody");
    deputy_check(&t, &w, pid, "executed another program since it registered");
    td_stop(&t.d);
    td_cleanup(&t.d);
}
END_TEST

/* The daemon restarts between the exec and the deadline: the registration
 * in its state directory is not taken over. */
START_TEST(restarted_daemon_does_not_take_over_an_exec)
{
    struct deputy t;
    struct tworker w;
    char needle[96];
    const char *line;
    char *r;
    pid_t pid;

    deputy_setup(&t, true, "1.5");
    pid = deputy_start(&t, &w, "keep", true, "3.5");
    if (!pid) {
        skip("restarted_daemon_does_not_take_over_an_exec",
             "a set-uid copy in /tmp does not run as root here (nosuid mount?)");
        td_stop(&t.d);
        td_cleanup(&t.d);
        return;
    }
    sleep_ms(200);
    td_kill(&t.d);
    td_restart(&t.d, "1.5");
    snprintf(needle, sizeof(needle), "pid %d is not taken over from the previous daemon",
             (int)pid);
    ck_assert_msg(td_wait_log(&t.d, needle, 3000), "no '%s':\n%s", needle, td_log(&t.d));
    line = tw_expect(&w, "hold ", 10000);
    ck_assert_msg(line, "the held program said nothing at its end");
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    r = td_find_report_with(&t.d, t.secret);
    expect(r == NULL, r, "the secret is in a report after the restart");
    ck_assert_int_eq(td_count_reports(&t.d), 0);
    ck_assert_msg(field(line, "traced=") == 0, "the held program was traced: %s", line);
    td_stop(&t.d);
    td_cleanup(&t.d);
}
END_TEST

/* Source lines come from files the worker's user may read: secret_holder
 * was compiled from private-src/, which is made root's alone (0700).  A
 * worker of root's gets its source line quoted, nobody's does not. */
START_TEST(source_lines_only_from_files_the_worker_may_read)
{
    static const char *const users[] = {"0", "65534"};
    char holder[300], dir[300];
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"worker", users[_i], "1.2", NULL};
    const char *p;
    bool quoted;
    char *r;

    holder_path(holder, sizeof(holder));
    snprintf(dir, sizeof(dir), "%s/private-src", env_or_die("DEEP_WORKER_DIR"));
    ck_assert_int_eq(chown(dir, 0, 0), 0);
    ck_assert_int_eq(chmod(dir, 0700), 0);
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_launch(&d, "0.3", NULL);
    tw_start(&w, &d, holder, args);
    ck_assert_msg(tw_expect(&w, "ready pid=", 5000), "the worker did not register:\n%s",
                  td_log(&d));
    ck_assert_msg(td_wait_reports(&d, 1, 5000) == 1, "no report:\n%s", td_log(&d));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    r = td_find_report_with(&d, "/honest/compute");
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "in compute_quietly") && strstr(r, "private-src/secret_holder.c"), r,
           "no frame of compute_quietly");
    /* The frame's line, and the source text quoted under it (or not). */
    p = strstr(r, "in compute_quietly\n");
    quoted = p && !strncmp(p + strlen("in compute_quietly\n"), "    ", 4);
    if (_i == 0)
        expect(quoted, r, "root's worker: its source line is not quoted");
    else
        expect(!quoted && !strstr(r, "compute_quietly(strtod"), r,
               "nobody's worker: a source line from a directory only root may read is quoted");
    free(r);
    chmod(dir, 0755);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* A process that switched to another user is not dumpable: refused at
 * registration, with what to do. */
START_TEST(undumpable_process_is_refused_at_registration)
{
    char holder[300];
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"undumpable", "65534", "0.5", NULL};
    const char *line;

    holder_path(holder, sizeof(holder));
    td_init(&d);
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    td_launch(&d, "0.3", NULL);
    tw_start(&w, &d, holder, args);
    line = tw_expect(&w, "register-failed", 5000);
    ck_assert_msg(line && strstr(line, "not dumpable") && strstr(line, "PR_SET_DUMPABLE"),
                  "the undumpable worker: %s", line ? line : "(nothing)");
    ck_assert_int_eq(tw_wait(&w, 5000), 2);
    ck_assert_msg(td_wait_log(&d, "not dumpable", 1000), "%s", td_log(&d));
    ck_assert_int_eq(td_count_reports(&d), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* ---- threads that cannot be stopped -------------------------------------- */

/* Threads of pid that are traced or in a tracing stop now. */
static int held_threads(pid_t pid)
{
    char path[64], buf[4096];
    struct dirent *e;
    DIR *dir;
    int held = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (!dir)
        return 0;
    while ((e = readdir(dir))) {
        int fd;
        ssize_t n;
        const char *p;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        p = strstr(buf, "\nTracerPid:");
        if ((p && strtol(p + 11, NULL, 10) != 0) || strstr(buf, "State:\tt"))
            held++;
    }
    closedir(dir);
    return held;
}

/* _i: 0 as the daemon is (blocked threads are read without a stop), 1 with
 * every thread stopped the usual way (DOGSLOWD_TEST_NO_PEEK): the stops do
 * not come before vfork() returns, and the loop must not wait for them. */
START_TEST(threads_in_vfork_do_not_freeze_the_daemon)
{
    static const char *const no_peek[] = {"DOGSLOWD_TEST_NO_PEEK=1", NULL};
    const double limit_ms = getenv("DOGSLOW_SANITIZERS") ? 2000 : 1000;
    struct tdaemon d;
    struct tworker v, o;
    const char *vargs[] = {"vforks", "3.0", "100", NULL};
    const char *oargs[] = {"slow", "1.0", "GET", "/meanwhile", NULL};
    const char *line;
    long long t0, ready_at, took;
    int held = -1, n;
    pid_t pid;

    td_init(&d);
    if (_i == 1)
        d.env = no_peek;
    td_launch(&d, "0.3", NULL);
    tw_start(&v, &d, getenv("TEST_WORKER"), vargs);
    line = tw_expect(&v, "ready pid=", 10000);
    ck_assert_msg(line && field(line, "threads=") == 100, "the vfork worker: %s",
                  line ? line : "(nothing)");
    pid = (pid_t)field(line, "pid=");
    ready_at = now_ms();
    /* Past every thread's deadline, while all of them wait in vfork(). */
    sleep_ms(800);

    /* Another worker registers at once, and is reported. */
    t0 = now_ms();
    tw_start(&o, &d, getenv("TEST_WORKER"), oargs);
    line = tw_expect(&o, "ready", 5000);
    took = now_ms() - t0;
    fprintf(stderr, "check_deputy: another worker registered in %lld ms during the vfork waits\n",
            took);
    ck_assert_msg(line && !strncmp(line, "ready pid=", 10), "the other worker: %s",
                  line ? line : "(nothing)");
    ck_assert_msg(took < limit_ms, "registering took %lld ms while 100 threads waited in vfork()",
                  took);
    for (t0 = now_ms(); now_ms() < t0 + 3000; sleep_ms(50))
        if (td_count_reports_with(&d, "/meanwhile") == 1)
            break;
    ck_assert_msg(td_count_reports_with(&d, "/meanwhile") == 1,
                  "the other worker was not reported while the threads waited in vfork():\n%s",
                  td_log(&d));
    ck_assert_int_eq(tw_wait(&o, 10000), 0);

    /* When the vfork()s return, every thread is let go: none is traced or
     * stopped while the threads wait their last second. */
    while (now_ms() < ready_at + 3000 + 900) {
        held = held_threads(pid);
        if (held == 0 && now_ms() > ready_at + 3000 + 300)
            break;
        sleep_ms(20);
    }
    ck_assert_msg(held == 0, "%d threads of the vfork worker are still traced or stopped", held);
    ck_assert_msg(tw_wait(&v, 15000) == 0, "the vfork worker did not finish:\n%s", td_log(&d));

    /* Each overdue request was reported (with a stack, or saying why not). */
    n = td_count_reports_with(&d, "/vfork/wait");
    ck_assert_msg(n == 100, "%d reports of the 100 vfork requests:\n%s", n, td_log(&d));
    ck_assert_msg(td_count_reports_with(&d, "/meanwhile") == 1, "the other worker's report");
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* ---- the identity's parsers and ident_open_as() ------------------------ */

START_TEST(hostile_proc_text_is_parsed_safely)
{
    struct ident id;
    char stat[1024];
    int n;

    /* A program may name itself anything: ") R 1 2 3 (" in its name must
     * not shift the fields.  Field k (from the state's 3 on) holds 10 * k,
     * a negative priority (field 18) included. */
    n = snprintf(stat, sizeof(stat), "1234 (a) R 1 2 3 (x) S");
    for (int k = 4; k <= 52; k++)
        n += snprintf(stat + n, sizeof(stat) - (size_t)n, k == 18 ? " -%d" : " %d", 10 * k);
    snprintf(stat + n, sizeof(stat) - (size_t)n, "\n");
    memset(&id, 0, sizeof(id));
    ck_assert_int_eq(ident_parse_stat(stat, &id), 0);
    ck_assert_int_eq(id.state, 'S');
    ck_assert_uint_eq(id.starttime, 220);
    ck_assert_uint_eq(id.mm[0], 260);
    ck_assert_uint_eq(id.mm[1], 270);
    ck_assert_uint_eq(id.mm[2], 280);
    ck_assert_uint_eq(id.mm[3], 450);
    ck_assert_uint_eq(id.mm[4], 460);
    ck_assert_uint_eq(id.mm[5], 470);
    /* Cut short before field 47, no closing parenthesis, garbage. */
    stat[strlen(stat) / 2] = '\0';
    ck_assert_int_eq(ident_parse_stat(stat, &id), -EIO);
    ck_assert_int_eq(ident_parse_stat("1234 (no closing paren R 1 2", &id), -EIO);
    ck_assert_int_eq(ident_parse_stat("1234 (x) S 1 2 x 4", &id), -EIO);
    ck_assert_int_eq(ident_parse_stat("", &id), -EIO);

    ck_assert_int_eq(ident_parse_status("Name:\tx\nTgid:\t42\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\n"
                                        "Groups:\t10 11 12 \n",
                                        &id),
                     0);
    ck_assert_int_eq(id.tgid, 42);
    ck_assert_uint_eq(id.uid[0], 1);
    ck_assert_uint_eq(id.uid[3], 4);
    ck_assert_uint_eq(id.gid[1], 6);
    ck_assert_uint_eq(id.ngroups, 3);
    ck_assert_uint_eq(id.groups[2], 12);
    /* A line missing, short, or out of range: refused, not guessed. */
    ck_assert_int_eq(ident_parse_status("Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", &id),
                     -EIO);
    ck_assert_int_eq(ident_parse_status("Name:\tx\nTgid:\t42\nUid:\t1\t2\nGid:\t5\t6\t7\t8\n", &id),
                     -EIO);
    ck_assert_int_eq(
        ident_parse_status("Name:\tx\nTgid:\t42\nUid:\t1\t2\t3\t99999999999\nGid:\t5\t6\t7\t8\n", &id),
        -EIO);
}
END_TEST

START_TEST(state_record_round_trips_and_refuses_garbage)
{
    struct ident a, b;
    char buf[256];
    int n;

    memset(&a, 0, sizeof(a));
    for (int i = 0; i < 4; i++) {
        a.uid[i] = (uid_t)(1000 + i);
        a.gid[i] = (gid_t)(2000 + i);
    }
    for (int i = 0; i < IDENT_MM_FIELDS; i++)
        a.mm[i] = 0x7f0000000000ull + (uint64_t)i * 4096;
    n = ident_format(&a, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    strcat(buf, " prog name");
    memset(&b, 0, sizeof(b));
    n = ident_parse_record(buf, &b);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(buf + n, " prog name");
    ck_assert_mem_eq(a.uid, b.uid, sizeof(a.uid));
    ck_assert_mem_eq(a.gid, b.gid, sizeof(a.gid));
    ck_assert_mem_eq(a.mm, b.mm, sizeof(a.mm));
    ck_assert_int_lt(ident_parse_record("1 2 3", &b), 0);
    ck_assert_int_lt(ident_parse_record("x y z", &b), 0);
    ck_assert_int_lt(ident_format(&a, buf, 8), 0);
}
END_TEST

START_TEST(files_are_opened_only_as_the_worker_may)
{
    char dir[] = "/tmp/dogslow-ident-XXXXXX";
    char priv[320], file[340], pub[320], link[340], loop[340];
    struct ident nobody, root;
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    snprintf(priv, sizeof(priv), "%s/private", dir);
    snprintf(pub, sizeof(pub), "%s/public", dir);
    ck_assert_int_eq(mkdir(priv, 0700), 0);
    ck_assert_int_eq(mkdir(pub, 0755), 0);
    snprintf(file, sizeof(file), "%s/source.c", priv);
    write_file(file, "int main(void) { return 0; }\n", 0, 0644);
    snprintf(link, sizeof(link), "%s/link.c", pub);
    ck_assert_int_eq(symlink(file, link), 0);
    snprintf(loop, sizeof(loop), "%s/loop", pub);
    ck_assert_int_eq(symlink(loop, loop), 0);

    memset(&nobody, 0, sizeof(nobody));
    for (int i = 0; i < 4; i++)
        nobody.uid[i] = nobody.gid[i] = NOBODY;
    memset(&root, 0, sizeof(root));

    fd = ident_open_as(&root, file);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(ident_open_as(&nobody, file), -EACCES);
    ck_assert_int_eq(ident_open_as(&nobody, link), -EACCES);
    ck_assert_int_eq(ident_open_as(&nobody, loop), -ELOOP);
    /* With the directory open to all, nobody may read it. */
    ck_assert_int_eq(chmod(priv, 0755), 0);
    fd = ident_open_as(&nobody, link);
    ck_assert_int_ge(fd, 0);
    close(fd);
    /* A file readable by its owner only, owned by root. */
    ck_assert_int_eq(chmod(file, 0600), 0);
    ck_assert_int_eq(ident_open_as(&nobody, file), -EACCES);
    /* By a group nobody is in, as a supplementary group. */
    ck_assert_int_eq(chown(file, 0, 4242), 0);
    ck_assert_int_eq(chmod(file, 0640), 0);
    ck_assert_int_eq(ident_open_as(&nobody, file), -EACCES);
    nobody.groups[0] = 4242;
    nobody.ngroups = 1;
    fd = ident_open_as(&nobody, file);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(ident_open_as(&nobody, "relative/path"), -EINVAL);

    unlink(loop);
    unlink(link);
    unlink(file);
    rmdir(priv);
    rmdir(pub);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deputy");
    TCase *tc = tcase_create("deputy");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hostile_proc_text_is_parsed_safely);
    tcase_add_test(tc, state_record_round_trips_and_refuses_garbage);
    tcase_add_test(tc, files_are_opened_only_as_the_worker_may);
    tcase_add_loop_test(tc, setuid_program_after_exec_is_not_traced, 0, 2);
    tcase_add_test(tc, own_program_after_exec_is_not_traced);
    tcase_add_test(tc, restarted_daemon_does_not_take_over_an_exec);
    tcase_add_test(tc, undumpable_process_is_refused_at_registration);
    tcase_add_loop_test(tc, source_lines_only_from_files_the_worker_may_read, 0, 2);
    tcase_add_loop_test(tc, threads_in_vfork_do_not_freeze_the_daemon, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
