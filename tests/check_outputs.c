/* SPDX-License-Identifier: MIT */
/*
 * Integration tests for the configuration, the outputs and dogslowctl: the
 * real dogslowd with a real config file, real workers, real report files,
 * a real syslog datagram socket (and journald's, with libsystemd) that the
 * daemon reaches through its own mount namespace, and the real dogslowctl.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "harness.h"

#define PYTHON "/usr/bin/python3"

static const char *worker_prog(void)
{
    return env_or_die("TEST_WORKER");
}

static void parse_ready(const char *line, int *pid, int *tid)
{
    ck_assert_msg(line && sscanf(line, "ready pid=%d tid=%d", pid, tid) == 2,
                  "worker did not report ready: %s", line ? line : "(nothing)");
}

/* Run dogslowctl against d; returns its exit status, output in out. */
static int ctl(struct tdaemon *d, char *out, size_t size, const char *cmd, const char *arg)
{
    const char *argv[] = {env_or_die("DOGSLOWCTL"), "--socket", d->sock, cmd, arg, NULL};
    return run_capture(argv, NULL, out, size, 30000);
}

/* The first report file whose text holds needle, within timeout_ms; its
 * path in ret_path (may be NULL).  malloc'd text or NULL. */
static char *wait_report_with(struct tdaemon *d, const char *needle, int timeout_ms,
                              char *ret_path, size_t size)
{
    for (long long end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(20)) {
        char cmd[400], name[400];
        FILE *ls;

        snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null", d->out);
        ls = popen(cmd, "r");
        while (ls && fgets(name, sizeof(name), ls)) {
            name[strcspn(name, "\n")] = '\0';
            size_t n = strlen(name);
            if (n < 4 || strcmp(name + n - 4, ".log") != 0)
                continue;
            char *r = td_read_report(d, name);
            if (r && strstr(r, needle)) {
                if (ret_path)
                    snprintf(ret_path, size, "%s/%s", d->out, name);
                pclose(ls);
                return r;
            }
            free(r);
        }
        if (ls)
            pclose(ls);
    }
    return NULL;
}

static int count_in(const char *s, const char *needle)
{
    int n = 0;

    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- the configuration file -------------------------------------------- */

START_TEST(check_mode_exit_codes)
{
    struct tdaemon d;
    char out[8192], conf[320], missing[320];
    const char *dogslowd = env_or_die("DOGSLOWD");
    int rc;

    td_init(&d);
    snprintf(conf, sizeof(conf), "%s", d.conf);
    snprintf(missing, sizeof(missing), "%s/missing.conf", d.dir);

    td_write_conf(&d, "[dogslow]\ntimer = 2.5\nignore_urls = /health*\n[syslog]\nenabled = yes\n");
    rc = run_capture((const char *const[]){dogslowd, "-n", "-c", conf, NULL}, NULL, out,
                     sizeof(out), 10000);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "configuration OK") && strstr(out, "timer 2.500 s"), "%s", out);

    td_write_conf(&d, "[dogslow]\ntimer = 2.5\n\n[email]\nport = 0\nhots = x\n");
    rc = run_capture((const char *const[]){dogslowd, "-n", "-c", conf, NULL}, NULL, out,
                     sizeof(out), 10000);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    char expect[600];
    snprintf(expect, sizeof(expect), "%s:5: email.port: 0 is out of range (1 to 65535)", conf);
    ck_assert_msg(strstr(out, expect), "%s", out);
    snprintf(expect, sizeof(expect), "%s:6: hots: unknown key in [email]", conf);
    ck_assert_msg(strstr(out, expect), "%s", out);

    /* A file asked for must exist; the command line is checked too. */
    rc = run_capture((const char *const[]){dogslowd, "-n", "-c", missing, NULL}, NULL, out,
                     sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "missing.conf: cannot read"), "rc %d: %s", rc, out);
    td_write_conf(&d, "");
    rc = run_capture((const char *const[]){dogslowd, "-n", "-c", conf, "--set", "json=perhaps",
                                           NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "--set: json: 'perhaps' is not a boolean"), "rc %d: %s",
                  rc, out);
    rc = run_capture((const char *const[]){dogslowd, "-n", "-c", conf, "--timer", "0", NULL}, NULL,
                     out, sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "--timer: timer: 0 is out of range"), "rc %d: %s", rc,
                  out);
    td_cleanup(&d);
}
END_TEST

START_TEST(bad_config_refuses_to_start)
{
    struct tdaemon d;
    char out[8192];
    int rc;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nmax_frames = lots\n");
    rc = run_capture((const char *const[]){env_or_die("DOGSLOWD"), "-f", "-c", d.conf, "--socket",
                                           d.sock, NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 1, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "dogslow.conf:2: max_frames: 'lots' is not a whole number"), "%s",
                  out);
    ck_assert_int_ne(access(d.sock, F_OK), 0);
    td_cleanup(&d);
}
END_TEST

/* ---- ignore patterns ---------------------------------------------------- */

START_TEST(ignore_patterns_of_operator_and_worker)
{
    struct tdaemon d;
    struct tworker a, b, c, e;
    const char *wenv[] = {"DOGSLOW_IGNORE_URLS=/static/*, /metrics", NULL};
    char out[16384];
    int pid, tid;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nignore_urls = /health*,\n    /favicon.ico\n");
    td_launch(&d, "0.2", NULL);
    /* The operator's pattern, against the path only. */
    tw_start(&a, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/health/deep?x=1", NULL});
    /* The worker's own pattern applies to that worker... */
    tw_start_env(&b, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/static/app.js", NULL},
                 wenv);
    /* ...and not to another one. */
    tw_start(&c, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/static/other.js", NULL});
    /* The query string is not part of the path. */
    tw_start(&e, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/orders?next=/health", NULL});
    parse_ready(tw_expect(&a, "ready", 5000), &pid, &tid);
    parse_ready(tw_expect(&b, "ready", 5000), &pid, &tid);
    parse_ready(tw_expect(&c, "ready", 5000), &pid, &tid);
    parse_ready(tw_expect(&e, "ready", 5000), &pid, &tid);
    ck_assert_int_eq(tw_wait(&a, 10000), 0);
    ck_assert_int_eq(tw_wait(&b, 10000), 0);
    ck_assert_int_eq(tw_wait(&c, 10000), 0);
    ck_assert_int_eq(tw_wait(&e, 10000), 0);
    ck_assert_msg(td_wait_reports(&d, 2, 3000) == 2, "%s", td_log(&d));
    char *r = wait_report_with(&d, "GET /static/other.js\n", 1000, NULL, 0);
    ck_assert_msg(r != NULL, "no report for the other worker's /static; log:\n%s", td_log(&d));
    free(r);
    r = wait_report_with(&d, "GET /orders?next=/health\n", 1000, NULL, 0);
    ck_assert_msg(r != NULL, "no report for /orders; log:\n%s", td_log(&d));
    free(r);
    ck_assert_int_eq(td_count_reports(&d), 2);
    ck_assert_int_eq(ctl(&d, out, sizeof(out), "status", NULL), 0);
    ck_assert_msg(strstr(out, "requests ignored: 2\n"), "%s", out);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

START_TEST(bad_worker_patterns_and_users_are_refused)
{
    struct tdaemon d;
    struct tworker w;
    const char *bad[] = {"DOGSLOW_IGNORE_URLS=/ok*, no-slash", NULL};

    td_init(&d);
    td_write_conf(&d, "[dogslow]\nallowed_users = 0\n");
    td_launch(&d, "0.2", NULL);
    tw_start_env(&w, &d, worker_prog(), (const char *const[]){"slow", "0.1", NULL}, bad);
    const char *line = tw_expect(&w, "register-failed", 5000);
    ck_assert_msg(line && strstr(line, "starts with '/'"), "%s\n%s", line ? line : "(nothing)",
                  td_log(&d));
    tw_wait(&w, 5000);
    ck_assert(td_alive(&d));
    td_stop(&d);

    /* Only uid 12345 may register: we (root) may not. */
    td_write_conf(&d, "[dogslow]\nallowed_users = 12345\n");
    td_launch(&d, "0.2", NULL);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "0.1", NULL});
    line = tw_expect(&w, "register-failed", 5000);
    ck_assert_msg(line && strstr(line, "err=Permission denied"), "%s\n%s",
                  line ? line : "(nothing)", td_log(&d));
    tw_wait(&w, 5000);
    td_stop(&d);

    /* enabled = false: processes register, nothing is reported. */
    td_write_conf(&d, "[dogslow]\nenabled = false\n");
    td_launch(&d, "0.2", NULL);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "0.8", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    sleep_ms(200);
    ck_assert_int_eq(td_count_reports(&d), 0);
    char out[8192];
    ck_assert_int_eq(ctl(&d, out, sizeof(out), "status", NULL), 0);
    ck_assert_msg(strstr(out, "watching: no"), "%s", out);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* ---- SIGHUP ------------------------------------------------------------- */

START_TEST(sighup_reload_good_and_bad)
{
    struct tdaemon d;
    struct tworker a, b, c;
    char out[16384], path[600];
    int pid, tid;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\ntimer = 1\ntimer_min = 0.1\n");
    td_launch(&d, NULL, NULL);
    /* In flight across both reloads, armed with the first timer. */
    tw_start(&a, &d, worker_prog(), (const char *const[]){"slow", "2.5", "GET", "/inflight", NULL});
    parse_ready(tw_expect(&a, "ready", 5000), &pid, &tid);

    /* A good file: applied, except what needs a restart. */
    td_write_conf(&d, "[dogslow]\ntimer = 0.3\ntimer_min = 0.1\njson = true\nsocket_mode = 0600\n");
    td_signal(&d, SIGHUP);
    ck_assert_msg(td_wait_log(&d, "configuration reloaded", 5000), "%s", td_log(&d));
    ck_assert_msg(strstr(td_log(&d), "needs a restart to take effect: socket_mode = 0600 (still "
                                     "0666 until a restart)"),
                  "%s", td_log(&d));
    tw_start(&b, &d, worker_prog(), (const char *const[]){"slow", "1.2", "GET", "/after-good", NULL});
    parse_ready(tw_expect(&b, "ready", 5000), &pid, &tid);
    char *r = wait_report_with(&d, "GET /after-good\n", 3000, path, sizeof(path));
    ck_assert_msg(r != NULL, "new timer not applied; log:\n%s", td_log(&d));
    free(r);
    /* json = true took effect: the twin is there. */
    snprintf(path + strlen(path) - 4, 6, ".json");
    for (long long end = now_ms() + 2000; access(path, F_OK) != 0 && now_ms() < end;)
        sleep_ms(20); /* written right after the .log */
    ck_assert_msg(access(path, F_OK) == 0, "no %s", path);

    /* A bad file: refused with the reason, the running configuration stays. */
    td_write_conf(&d, "[dogslow]\ntimer = soon\n");
    td_signal(&d, SIGHUP);
    ck_assert_msg(td_wait_log(&d, "the running configuration stays in force", 5000), "%s",
                  td_log(&d));
    ck_assert_msg(strstr(td_log(&d), "reload refused: ") &&
                      strstr(td_log(&d), "dogslow.conf:2: timer: 'soon' is not a number"),
                  "%s", td_log(&d));
    ck_assert(td_alive(&d));
    tw_start(&c, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/after-bad", NULL});
    parse_ready(tw_expect(&c, "ready", 5000), &pid, &tid);
    r = wait_report_with(&d, "GET /after-bad\n", 3000, NULL, 0);
    ck_assert_msg(r != NULL, "the old (reloaded) timer is gone; log:\n%s", td_log(&d));
    free(r);

    /* Nothing in flight was lost: the first request was reported too. */
    r = wait_report_with(&d, "GET /inflight\n", 4000, NULL, 0);
    ck_assert_msg(r != NULL, "in-flight request lost; log:\n%s", td_log(&d));
    free(r);
    ck_assert_int_eq(ctl(&d, out, sizeof(out), "config", NULL), 0);
    ck_assert_msg(strstr(out, "\ntimer = 0.3\n") && strstr(out, "\njson = true\n") &&
                      strstr(out, "\nsocket_mode = 0666\n"),
                  "%s", out);
    tw_wait(&a, 5000);
    tw_wait(&b, 5000);
    tw_wait(&c, 5000);
    ck_assert_int_eq(td_stop(&d), 0);
    td_cleanup(&d);
}
END_TEST

/* ---- file output -------------------------------------------------------- */

START_TEST(json_twin_parses_and_matches)
{
    struct tdaemon d;
    struct tworker w;
    char out[8192], path[600], pidbuf[16], tidbuf[16];
    const char *url = "/q/\"quoted\"/back\\slash?a=1";
    struct stat st;
    int pid, tid;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\njson = true\noutput_group = 4242\n");
    td_launch(&d, "0.2", NULL);
    /* The report directory is made at start, with its group, setgid. */
    ck_assert_int_eq(stat(d.out, &st), 0);
    ck_assert_uint_eq(st.st_gid, 4242);
    ck_assert_uint_eq(st.st_mode & 07777, 02750);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "1.0", "POST", url, NULL});
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    char *r = wait_report_with(&d, "POST /q/", 3000, path, sizeof(path));
    ck_assert_msg(r != NULL, "%s", td_log(&d));
    free(r);
    snprintf(path + strlen(path) - 4, 6, ".json");
    for (long long end = now_ms() + 2000; access(path, F_OK) != 0 && now_ms() < end;)
        sleep_ms(20);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_uint_eq(st.st_gid, 4242);
    snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
    snprintf(tidbuf, sizeof(tidbuf), "%d", tid);
    const char *script =
        "import json, sys\n"
        "d = json.load(open(sys.argv[1]))\n"
        "assert d['format'] == 'dogslow-report/1', d['format']\n"
        "assert d['request']['method'] == 'POST'\n"
        "assert d['request']['url'] == sys.argv[2], d['request']['url']\n"
        "assert d['request']['path'] == sys.argv[2].split('?')[0]\n"
        "assert d['process']['pid'] == int(sys.argv[3])\n"
        "assert d['thread']['tid'] == int(sys.argv[4])\n"
        "assert d['timings']['running_s'] >= 0.2, d['timings']\n"
        "assert d['truncated'] is False\n"
        "names = [f['function'] for f in d['frames']]\n"
        "assert 'wait_for_database' in names and 'main' in names, names\n"
        "assert names.index('wait_for_database') < names.index('main'), names\n"
        "f = d['frames'][names.index('wait_for_database')]\n"
        "assert f['file'].endswith('test_worker.c') and f['line'] > 0, f\n"
        "print('json ok')\n";
    int rc = run_capture((const char *const[]){PYTHON, "-c", script, path, url, pidbuf, tidbuf,
                                               NULL},
                         NULL, out, sizeof(out), 20000);
    ck_assert_msg(rc == 0 && strstr(out, "json ok"), "rc %d: %s", rc, out);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(retention_keeps_the_newest)
{
    struct tdaemon d;
    struct tworker w[6];
    int pids[6], tid;
    char needle[64];

    td_init(&d);
    td_write_conf(&d, "[dogslow]\ntimer = 0.1\ntimer_min = 0.1\njson = true\n"
                      "retention_max_files = 3\n");
    td_launch(&d, NULL, NULL);
    for (int batch = 0; batch < 2; batch++) {
        for (int i = batch * 3; i < batch * 3 + 3; i++) {
            tw_start(&w[i], &d, worker_prog(), (const char *const[]){"slow", "1.0", NULL});
            parse_ready(tw_expect(&w[i], "ready", 5000), &pids[i], &tid);
        }
        for (int i = batch * 3; i < batch * 3 + 3; i++)
            ck_assert_int_eq(tw_wait(&w[i], 10000), 0);
        /* Report names carry the second: keep the batches apart. */
        if (batch == 0) {
            ck_assert_int_eq(td_wait_reports(&d, 3, 3000), 3);
            sleep_ms(1100);
        }
    }
    /* All six were written (the log says so), three were removed. */
    for (long long end = now_ms() + 5000; count_in(td_log(&d), "report written to") < 6;) {
        ck_assert_msg(now_ms() < end, "not 6 reports:\n%s", td_log(&d));
        sleep_ms(20);
    }
    ck_assert_msg(td_wait_log(&d, "retention: removed", 3000), "%s", td_log(&d));
    ck_assert_int_eq(td_count_files(&d, ".log"), 3);
    ck_assert_int_eq(td_count_files(&d, ".json"), 3);
    /* The three left are the newest: the second batch's, each with its twin. */
    for (int i = 3; i < 6; i++) {
        snprintf(needle, sizeof(needle), "_%d_", pids[i]);
        char *r = td_read_report(&d, needle);
        ck_assert_msg(r != NULL, "report of pid %d (newest) was removed", pids[i]);
        free(r);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(needle, sizeof(needle), "_%d_", pids[i]);
        char *r = td_read_report(&d, needle);
        ck_assert_msg(r == NULL, "report of pid %d (oldest) was kept", pids[i]);
    }
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* ---- syslog and journald ------------------------------------------------ */

static int bind_dgram(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Receive datagrams until one holds needle; it is left in buf. Large
 * journal entries come as a memfd (SCM_RIGHTS): read those too. */
static ssize_t recv_with(int fd, const char *needle, char *buf, size_t size, int timeout_ms)
{
    for (long long end = now_ms() + timeout_ms;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = end - now_ms();
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int))];
        } cbuf;
        struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
                            .msg_controllen = sizeof(cbuf.b)};
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
            return -1;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int mfd;
                memcpy(&mfd, CMSG_DATA(cm), sizeof(int));
                n = pread(mfd, buf, size - 1, 0);
                close(mfd);
            }
        }
        if (n < 0)
            continue;
        buf[n] = '\0';
        if (memmem(buf, (size_t)n, needle, strlen(needle)))
            return n;
    }
}

START_TEST(syslog_line_on_a_real_socket)
{
    struct tdaemon d;
    struct tworker w;
    char buf[65536], expect[600], out[8192];
    int pid, tid, fd;

    td_init(&d);
    snprintf(d.devlog, sizeof(d.devlog), "%s/devlog.sock", d.dir);
    fd = bind_dgram(d.devlog);
    /* The default socket, /dev/log: the daemon's private /dev has it. */
    td_write_conf(&d, "[dogslow]\ntimer = 0.2\ntimer_min = 0.1\nfollow_hz = 20\n"
                      "[syslog]\nenabled = true\nfacility = local3\nlevel = err\njournal = no\n");
    td_launch(&d, NULL, NULL);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "1.0", "GET", "/syslog/slow", NULL});
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_msg(recv_with(fd, "undead request", buf, sizeof(buf), 5000) > 0, "no line; log:\n%s",
                  td_log(&d));
    /* <PRI> = local3 (19) * 8 + err (3) = 155. */
    ck_assert_msg(!strncmp(buf, "<155>", 5), "%s", buf);
    snprintf(expect, sizeof(expect),
             " dogslowd[%d]: undead request: GET \"/syslog/slow\" pid=%d tid=%d elapsed=",
             (int)d.pid, pid, tid);
    ck_assert_msg(strstr(buf, expect), "want '%s' in '%s'", expect, buf);
    ck_assert_msg(strstr(buf, "s top=\"wait_for_database (test_worker.c:"), "%s", buf);
    snprintf(expect, sizeof(expect), " report=%s/slow_request_", d.out);
    ck_assert_msg(strstr(buf, expect), "%s", buf);
    ck_assert_msg(!strchr(buf, '\n'), "one line: %s", buf);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    /* The follow-up is a line of its own when the request ends. */
    ck_assert_msg(recv_with(fd, "follow-up: GET \"/syslog/slow\"", buf, sizeof(buf), 5000) > 0,
                  "no follow-up line; log:\n%s", td_log(&d));
    snprintf(expect, sizeof(expect), " pid=%d tid=%d: the request ended after ", pid, tid);
    ck_assert_msg(strstr(buf, expect) && strstr(buf, " samples, "), "%s", buf);

    /* test-alert goes the same way, and says so. */
    ck_assert_int_eq(ctl(&d, out, sizeof(out), "test-alert", NULL), 0);
    ck_assert_msg(strstr(out, "syslog:    sent to /dev/log (facility local3, level err)"), "%s",
                  out);
    ck_assert_msg(recv_with(fd, "TEST \"/dogslow/test-alert\"", buf, sizeof(buf), 3000) > 0, "%s",
                  td_log(&d));
    close(fd);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

/* A URL (and method) a worker chose cannot forge the line's fields: they
 * are quoted, so the first pid= and tid= are the daemon's. */
START_TEST(syslog_line_quotes_what_the_worker_sent)
{
    struct tdaemon d;
    struct tworker w;
    char buf[65536], expect[600];
    const char *p;
    int pid, tid, fd;

    td_init(&d);
    snprintf(d.devlog, sizeof(d.devlog), "%s/devlog.sock", d.dir);
    fd = bind_dgram(d.devlog);
    td_write_conf(&d, "[dogslow]\ntimer = 0.2\ntimer_min = 0.1\nfollow_hz = 20\n"
                      "[syslog]\nenabled = true\njournal = no\n");
    td_launch(&d, NULL, NULL);
    tw_start(&w, &d, worker_prog(),
             (const char *const[]){"slow", "1.0", "GET pid=1", "/x pid=1 tid=1 \"q\\", NULL});
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ck_assert_msg(recv_with(fd, "undead request", buf, sizeof(buf), 5000) > 0, "no line; log:\n%s",
                  td_log(&d));
    snprintf(expect, sizeof(expect),
             "undead request: \"GET pid=1\" \"/x pid=1 tid=1 \\\"q\\\\\" pid=%d tid=%d elapsed=",
             pid, tid);
    ck_assert_msg(strstr(buf, expect), "want '%s' in '%s'", expect, buf);
    /* Read as a parser would: the first pid= outside quotes is the real one. */
    p = strstr(buf, "\" pid=");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq((int)strtol(p + 6, NULL, 10), pid);
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    /* The follow-up line too. */
    ck_assert_msg(recv_with(fd, "follow-up: ", buf, sizeof(buf), 5000) > 0,
                  "no follow-up line; log:\n%s", td_log(&d));
    snprintf(expect, sizeof(expect),
             "follow-up: \"GET pid=1\" \"/x pid=1 tid=1 \\\"q\\\\\" pid=%d tid=%d: ", pid, tid);
    ck_assert_msg(strstr(buf, expect), "want '%s' in '%s'", expect, buf);
    close(fd);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

#ifdef HAVE_LIBSYSTEMD
START_TEST(journal_entry_with_fields)
{
    struct tdaemon d;
    struct tworker w;
    char *buf = malloc(1 << 20), field[128];
    int pid, tid, fd;

    td_init(&d);
    snprintf(d.journal, sizeof(d.journal), "%s/journal.sock", d.dir);
    fd = bind_dgram(d.journal);
    td_write_conf(&d, "[dogslow]\ntimer = 0.2\ntimer_min = 0.1\n"
                      "[syslog]\nenabled = true\njournal = yes\n");
    td_launch(&d, NULL, NULL);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "1.0", "PUT", "/journal/slow", NULL});
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);
    ssize_t n = recv_with(fd, "DOGSLOW_URL=", buf, 1 << 20, 5000);
    ck_assert_msg(n > 0, "no journal entry; log:\n%s", td_log(&d));
    ck_assert(memmem(buf, (size_t)n, "DOGSLOW_URL=/journal/slow\n", 26));
    ck_assert(memmem(buf, (size_t)n, "DOGSLOW_METHOD=PUT\n", 19));
    snprintf(field, sizeof(field), "DOGSLOW_PID=%d\n", pid);
    ck_assert_msg(memmem(buf, (size_t)n, field, strlen(field)), "no %s", field);
    snprintf(field, sizeof(field), "DOGSLOW_TID=%d\n", tid);
    ck_assert_msg(memmem(buf, (size_t)n, field, strlen(field)), "no %s", field);
    ck_assert(memmem(buf, (size_t)n, "PRIORITY=4\n", 11)); /* warning */
    ck_assert(memmem(buf, (size_t)n, "DOGSLOW_TOP_FRAME=wait_for_database", 35));
    /* The whole report, newlines and all, is the MESSAGE (binary field). */
    ck_assert(memmem(buf, (size_t)n, "MESSAGE\n", 8));
    ck_assert(memmem(buf, (size_t)n, "Undead request intercepted at: ", 31));
    ck_assert(memmem(buf, (size_t)n, "\nPUT /journal/slow\n", 19));
    ck_assert_int_eq(tw_wait(&w, 5000), 0);
    free(buf);
    close(fd);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST
#endif

/* ---- dogslowctl --------------------------------------------------------- */

START_TEST(dogslowctl_status_dump_config)
{
    struct tdaemon d;
    struct tworker w;
    char *out = malloc(1 << 20), arg[64], expect[128];
    int pid, tid, rc;

    td_start(&d, "30", NULL);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "4", "GET", "/ctl/slow", NULL});
    parse_ready(tw_expect(&w, "ready", 5000), &pid, &tid);

    rc = ctl(&d, out, 1 << 20, "status", NULL);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "registered processes: 1\n"), "%s", out);
    ck_assert_msg(strstr(out, "requests in flight: 1\n"), "%s", out);
    ck_assert_msg(strstr(out, "reports written: 0\n"), "%s", out);
    ck_assert_msg(strstr(out, "deliveries pending: 0 (0 bytes in the spool)\n"), "%s", out);
    snprintf(expect, sizeof(expect), "\n%-8d ", pid);
    ck_assert_msg(strstr(out, expect) && strstr(out, "test_worker\n"), "%s", out);
    snprintf(expect, sizeof(expect), "    tid %-8d running ", tid);
    ck_assert_msg(strstr(out, expect) && strstr(out, " GET /ctl/slow\n"), "%s", out);

    /* dump PID: the thread in a request, now, without a report file. */
    snprintf(arg, sizeof(arg), "%d", pid);
    rc = ctl(&d, out, 1 << 20, "dump", arg);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    snprintf(expect, sizeof(expect), "==== pid %d tid %d ====\n", pid, tid);
    ck_assert_msg(strstr(out, expect), "%s", out);
    /* A snapshot asked for, not an undead request: its own heading. */
    ck_assert_msg(!strncmp(strstr(out, expect) + strlen(expect),
                           "Snapshot taken with dogslowctl dump at: ", 40),
                  "%s", out);
    ck_assert_msg(!strstr(out, "Undead request"), "%s", out);
    ck_assert_msg(strstr(out, "\nGET /ctl/slow\n"), "%s", out);
    ck_assert_msg(strstr(out, "in wait_for_database"), "%s", out);
    ck_assert_msg(strstr(out, "in main"), "%s", out);
    /* dump PID:TID names the thread. */
    snprintf(arg, sizeof(arg), "%d:%d", pid, tid);
    rc = ctl(&d, out, 1 << 20, "dump", arg);
    ck_assert_msg(rc == 0 && strstr(out, expect), "rc %d: %s", rc, out);
    ck_assert_int_eq(td_count_reports(&d), 0);
    /* Not a thread of it; not registered; not a pid at all. */
    snprintf(arg, sizeof(arg), "%d:1", pid);
    rc = ctl(&d, out, 1 << 20, "dump", arg);
    ck_assert_msg(rc == 1 && strstr(out, "1 is not a thread of pid"), "rc %d: %s", rc, out);
    rc = ctl(&d, out, 1 << 20, "dump", "1");
    ck_assert_msg(rc == 1 && strstr(out, "pid 1 is not registered"), "rc %d: %s", rc, out);
    rc = ctl(&d, out, 1 << 20, "dump", "12x");
    ck_assert_msg(rc == 2, "rc %d: %s", rc, out);

    rc = ctl(&d, out, 1 << 20, "config", NULL);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "# dogslowd effective configuration ("), "%s", out);
    ck_assert_msg(strstr(out, "\n[dogslow]\nenabled = true\ntimer = 30\n"), "%s", out);
    ck_assert_msg(strstr(out, "\n[syslog]\nenabled = false\n"), "%s", out);
    snprintf(expect, sizeof(expect), "\nsocket = %s\n", d.sock);
    ck_assert_msg(strstr(out, expect), "%s", out);

    rc = ctl(&d, out, 1 << 20, "frobnicate", NULL);
    ck_assert_msg(rc == 2 && strstr(out, "unknown command"), "rc %d: %s", rc, out);
    tw_kill(&w);
    ck_assert(td_alive(&d));
    td_stop(&d);

    /* No daemon: a clear message and status 2. */
    rc = ctl(&d, out, 1 << 20, "status", NULL);
    ck_assert_msg(rc == 2 && strstr(out, "cannot connect to dogslowd at"), "rc %d: %s", rc, out);
    free(out);
    td_cleanup(&d);
}
END_TEST

START_TEST(dogslowctl_test_alert)
{
    struct tdaemon d;
    char out[8192], path[600];
    int rc;

    td_init(&d);
    td_write_conf(&d, "[dogslow]\njson = true\nemail_to = ops@example.com\n");
    td_launch(&d, "5", NULL);
    rc = ctl(&d, out, sizeof(out), "test-alert", NULL);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "file:      written to "), "%s", out);
    ck_assert_msg(strstr(out, "json:      written to "), "%s", out);
    ck_assert_msg(strstr(out, "syslog:    off"), "%s", out);
    /* Queued in the delivery spool (the server, localhost:25, is not
     * there: it stays pending, and status says so). */
    ck_assert_msg(strstr(out, "email:     queued for ops@example.com (spool entry "), "%s", out);
    char status[8192];
    rc = ctl(&d, status, sizeof(status), "status", NULL);
    ck_assert_msg(strstr(status, "deliveries pending: 1 ("), "%s", status);
    ck_assert_msg(strstr(out, "sentry:    off"), "%s", out);
    char *r = wait_report_with(&d, "TEST /dogslow/test-alert\n", 2000, path, sizeof(path));
    ck_assert_msg(r != NULL, "%s", out);
    ck_assert_msg(strstr(r, "test alert sent with dogslowctl by uid 0"), "%s", r);
    free(r);
    td_stop(&d);

    /* An output that fails is named, and the status says so. */
    td_write_conf(&d, "[dogslow]\noutput = /proc/no-such-dir/x\n");
    td_launch(&d, "5", (const char *const[]){"--set", "output=/proc/no-such-dir/x", NULL});
    rc = ctl(&d, out, sizeof(out), "test-alert", NULL);
    ck_assert_msg(rc == 1 && strstr(out, "file:      FAILED to write to /proc/no-such-dir/x"),
                  "rc %d: %s", rc, out);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(dogslowctl_access)
{
    struct tdaemon d;
    char out[8192], prog[400], cmd[900];
    int rc;

    td_init(&d);
    /* nobody must reach the socket and run a copy of dogslowctl. */
    ck_assert_int_eq(chmod(d.dir, 0755), 0);
    snprintf(prog, sizeof(prog), "%s/dogslowctl", d.dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 755 '%s'", env_or_die("DOGSLOWCTL"), prog,
             prog);
    ck_assert_int_eq(system(cmd), 0);
    td_write_conf(&d, "[dogslow]\nsocket_group = 4242\n");
    td_launch(&d, "5", NULL);

    rc = run_capture((const char *const[]){"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups", prog, "--socket", d.sock, "status",
                                           NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 1 && strstr(out, "permission denied"), "rc %d: %s", rc, out);
    ck_assert_msg(td_wait_log(&d, "refused: not root nor in group 4242", 2000), "%s", td_log(&d));
    /* A supplementary group is enough. */
    rc = run_capture((const char *const[]){"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                           "--groups=4242", prog, "--socket", d.sock, "status",
                                           NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 0 && strstr(out, "registered processes: 0"), "rc %d: %s", rc, out);
    /* And so is the primary group. */
    rc = run_capture((const char *const[]){"/usr/bin/setpriv", "--reuid=65534", "--regid=4242",
                                           "--clear-groups", prog, "--socket", d.sock, "config",
                                           NULL},
                     NULL, out, sizeof(out), 10000);
    ck_assert_msg(rc == 0 && strstr(out, "socket_group = 4242"), "rc %d: %s", rc, out);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outputs");
    TCase *tc = tcase_create("config");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, check_mode_exit_codes);
    tcase_add_test(tc, bad_config_refuses_to_start);
    tcase_add_test(tc, ignore_patterns_of_operator_and_worker);
    tcase_add_test(tc, bad_worker_patterns_and_users_are_refused);
    tcase_add_test(tc, sighup_reload_good_and_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("outputs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, json_twin_parses_and_matches);
    tcase_add_test(tc, retention_keeps_the_newest);
    tcase_add_test(tc, syslog_line_on_a_real_socket);
    tcase_add_test(tc, syslog_line_quotes_what_the_worker_sent);
#ifdef HAVE_LIBSYSTEMD
    tcase_add_test(tc, journal_entry_with_fields);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("dogslowctl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dogslowctl_status_dump_config);
    tcase_add_test(tc, dogslowctl_test_alert);
    tcase_add_test(tc, dogslowctl_access);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
