/* SPDX-License-Identifier: MIT */
/*
 * E-mail and Sentry delivery (issue 6): unit tests of the spool, the DSN,
 * the rate-limit header, routes and the mail format; then the real daemon
 * against real peers -- Debian's aiosmtpd (STARTTLS with a certificate
 * made here, AUTH), Sentry's Spotlight sink, and a small HTTP server of
 * ours that answers 429 and 500.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>

#include "run_suite.h"
#include <dirent.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "output.h"
#include "util.h"

/* ---- units -------------------------------------------------------------- */

START_TEST(dsn_is_parsed)
{
    struct sentry_dsn d;
    char why[256];

    ck_assert_int_eq(
        sentry_parse_dsn("https://abc123@o1.ingest.sentry.io/42", &d, why, sizeof(why)), 0);
    ck_assert_str_eq(d.key, "abc123");
    ck_assert_str_eq(d.project, "42");
    ck_assert_str_eq(d.envelope_url, "https://o1.ingest.sentry.io/api/42/envelope/");
    ck_assert_int_eq(
        sentry_parse_dsn("http://k:secret@127.0.0.1:9000/sub/path/7", &d, why, sizeof(why)), 0);
    ck_assert_str_eq(d.key, "k");
    ck_assert_str_eq(d.envelope_url, "http://127.0.0.1:9000/sub/path/api/7/envelope/");
}
END_TEST

START_TEST(bad_dsns_say_why)
{
    static const struct {
        const char *dsn, *why;
    } bad[] = {
        {"ftp://k@h/1", "must start with https://"},  {"https://h/1", "no public key"},
        {"https://@h/1", "public key is empty"},      {"https://k@h/", "project id is missing"},
        {"https://k@h/abc", "'abc' is not a number"}, {"https://k@/1", "no host"},
        {"https://k@h", "no host or no project"},     {"https://k y@h/1", "space"},
        {"https://k!@h/1", "character other than"},
    };
    struct sentry_dsn d;
    char why[256];

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        why[0] = '\0';
        ck_assert_int_eq(sentry_parse_dsn(bad[i].dsn, &d, why, sizeof(why)), -EINVAL);
        ck_assert_msg(strstr(why, bad[i].why), "%s: want '%s' in '%s'", bad[i].dsn, bad[i].why,
                      why);
    }
}
END_TEST

START_TEST(rate_limit_header)
{
    ck_assert_uint_eq(sentry_rate_limit_seconds("60:error;transaction:key"), 60);
    ck_assert_uint_eq(sentry_rate_limit_seconds("60:transaction:key, 2700:default:organization"),
                      2700);
    ck_assert_uint_eq(sentry_rate_limit_seconds("30::organization"), 30); /* all categories */
    ck_assert_uint_eq(sentry_rate_limit_seconds("120:transaction;session:key"), 0);
    ck_assert_uint_eq(sentry_rate_limit_seconds("99999999:error:key"), 3600); /* capped */
    ck_assert_uint_eq(sentry_rate_limit_seconds("x:error:key, :error"), 0);
    ck_assert_uint_eq(sentry_rate_limit_seconds(""), 0);
}
END_TEST

START_TEST(routes_drop_ids_and_queries)
{
    char r[128];

    delivery_route("/orders/42?x=1", r, sizeof(r));
    ck_assert_str_eq(r, "/orders/{id}");
    delivery_route("/u/123e4567-e89b-12d3-a456-426614174000/edit#top", r, sizeof(r));
    ck_assert_str_eq(r, "/u/{id}/edit");
    delivery_route("/static/app.js", r, sizeof(r));
    ck_assert_str_eq(r, "/static/app.js");
    delivery_route("/deadbeefdeadbeef00", r, sizeof(r));
    ck_assert_str_eq(r, "/{id}");
    delivery_route("/a/b/c/d/e/f/g/h", r, 6);
    ck_assert_str_eq(r, "/a/b/");
}
END_TEST

static char tmpdir[256];

static void mktmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dlv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rmtmp(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(spool_round_trip_and_cap)
{
    char dir[300], name[SPOOL_NAME_MAX], name2[SPOOL_NAME_MAX], v[64], tag[32];
    char(*names)[SPOOL_NAME_MAX];
    char *buf;
    size_t n, len, body;
    struct stat st;

    mktmp();
    snprintf(dir, sizeof(dir), "%s/out/.spool", tmpdir);
    ck_assert_int_eq(spool_open(dir), 0);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(spool_put(dir, "email", "00ff", "k v\nsubject hello\n", 18, "BODY", 4, 0, name,
                               sizeof(name)),
                     0);
    ck_assert_int_eq(spool_put(dir, "sentry", NULL, "a b\n", 4, "{}", 2, 0, name2, sizeof(name2)),
                     0);
    ck_assert_uint_eq(spool_entries(), 2);
    ck_assert_uint_eq(spool_bytes(), 18 + 1 + 4 + 4 + 1 + 2);
    ck_assert_str_eq(spool_sink_of(name), "email");
    spool_tag_of(name, tag, sizeof(tag));
    ck_assert_str_eq(tag, "00ff");
    spool_tag_of(name2, tag, sizeof(tag));
    ck_assert_str_eq(tag, "");
    {
        char p[400];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
    }
    ck_assert_int_eq(spool_list(dir, &names, 100, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], name); /* oldest first */
    free(names);
    ck_assert_int_eq(spool_read(dir, name, &buf, &len, &body), 0);
    ck_assert_str_eq(buf + body, "BODY");
    ck_assert_int_eq(spool_header(buf, body, "subject", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "hello");
    ck_assert_int_eq(spool_header(buf, body, "BODY", v, sizeof(v)), -ENOENT);
    free(buf);
    /* The cap: a new entry that would pass it is refused, not written. */
    ck_assert_int_eq(
        spool_put(dir, "email", NULL, "x y\n", 4, "0123456789", 10, 40, name2, sizeof(name2)),
        -ENOSPC);
    ck_assert_uint_eq(spool_entries(), 2);
    /* Remove, reject, and a fresh count after a "restart". */
    ck_assert_int_eq(spool_reject(dir, name), 0);
    ck_assert_uint_eq(spool_entries(), 1);
    ck_assert_int_eq(spool_open(dir), 0);
    ck_assert_uint_eq(spool_entries(), 1);
    ck_assert_int_eq(spool_list(dir, &names, 100, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(spool_remove(dir, names[0]), 0);
    free(names);
    ck_assert_uint_eq(spool_entries(), 0);
    ck_assert_uint_eq(spool_bytes(), 0);
    /* Bad sink names and tags are refused. */
    ck_assert_int_eq(spool_put(dir, "../x", NULL, "", 0, "", 0, 0, name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(spool_put(dir, "email", "XYZ", "", 0, "", 0, 0, name, sizeof(name)), -EINVAL);
    rmtmp();
}
END_TEST

START_TEST(mail_is_crlf_mime_and_utf8_safe)
{
    static const char text[] = "line one\nbad \xff byte\r\nlast";
    struct email_msg m = {
        .from = "dogslow@example.com",
        .to = "a@example.com, b@example.com",
        .subject = "[dogslow] undead request: GET /caf\xc3\xa9 (31 s) on web-3",
        .id = "slow_request_x.log",
        .text = text,
        .text_len = sizeof(text) - 1,
        .json = "{\"a\": 1}",
        .json_len = 8,
        .json_name = "slow_request_x.json",
        .date_s = 1700000000,
    };
    char *msg;
    size_t len;

    ck_assert_int_eq(email_build(&m, &msg, &len), 0);
    ck_assert_uint_eq(strlen(msg), len);
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\n')
            ck_assert_msg(i > 0 && msg[i - 1] == '\r', "bare LF at %zu", i);
        ck_assert_msg((unsigned char)msg[i] < 0x80, "8-bit byte at %zu", i);
    }
    ck_assert_ptr_nonnull(strstr(msg, "Subject: =?UTF-8?B?"));
    ck_assert_ptr_nonnull(strstr(msg, "multipart/mixed"));
    ck_assert_ptr_nonnull(strstr(msg, "filename=\"slow_request_x.json\""));
    ck_assert_ptr_nonnull(strstr(msg, "X-Dogslow-Report: slow_request_x.log\r\n"));
    free(msg);
}
END_TEST

START_TEST(password_file_must_be_private)
{
    char path[300], pw[64], why[256];
    FILE *f;

    mktmp();
    snprintf(path, sizeof(path), "%s/pw", tmpdir);
    f = fopen(path, "w");
    fputs("s3cret\nignored\n", f);
    fclose(f);
    chmod(path, 0644);
    ck_assert_int_eq(email_read_password(path, pw, sizeof(pw), why, sizeof(why)), -EPERM);
    ck_assert_ptr_nonnull(strstr(why, "accessible by others"));
    chmod(path, 0600);
    ck_assert_int_eq(email_read_password(path, pw, sizeof(pw), why, sizeof(why)), 0);
    ck_assert_str_eq(pw, "s3cret");
    rmtmp();
}
END_TEST

/* ---- real peers --------------------------------------------------------- */

static const char *peers_dir(void)
{
    const char *p = getenv("PEERS_DIR");
    ck_assert_msg(p != NULL, "PEERS_DIR is not set (run under make check)");
    return p;
}

static const char *worker_prog(void)
{
    const char *p = getenv("TEST_WORKER");
    ck_assert_msg(p != NULL, "TEST_WORKER is not set (run under make check)");
    return p;
}

/* What a test started, so that the teardown (which runs in the test's
 * process even when an assertion failed) leaves nothing behind. */
static pid_t live_peers[8];
static struct tdaemon *live_daemon;

static void peers_teardown(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(live_peers); i++)
        if (live_peers[i] > 0) {
            kill(-live_peers[i], SIGKILL);
            waitpid(live_peers[i], NULL, 0);
            live_peers[i] = 0;
        }
    if (live_daemon && live_daemon->pid > 0)
        td_kill(live_daemon);
    live_daemon = NULL;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start a peer; wait for "READY" on its stdout (or, with probe_url, for
 * GET probe_url to answer OK).  Its stderr goes to logpath. */
static pid_t start_peer(const char *const *argv, const char *cwd, const char *logpath,
                        const char *probe_url)
{
    int p[2];
    pid_t pid;
    char buf[256] = "";
    size_t got = 0;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        setpgid(0, 0);
        /* Dies with the test, whatever way the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0)
            dup2(fd, 2);
        dup2(p[1], 1);
        if (cwd && chdir(cwd) < 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    for (long long end = now_ms() + 30000; now_ms() < end; sleep_ms(50)) {
        if (probe_url) {
            char out[256];
            const char *cargv[] = {"/usr/bin/curl", "-s", "--max-time", "1", probe_url, NULL};
            if (run_capture(cargv, NULL, out, sizeof(out), 3000) == 0 && !strncmp(out, "OK", 2))
                break;
            continue;
        }
        ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
        if (n > 0) {
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "READY"))
                break;
        }
    }
    close(p[0]);
    for (size_t i = 0; i < ARRAY_SIZE(live_peers); i++)
        if (live_peers[i] <= 0) {
            live_peers[i] = pid;
            break;
        }
    ck_assert_msg(probe_url ? true : strstr(buf, "READY") != NULL, "peer %s did not start; see %s",
                  argv[0], logpath);
    if (probe_url) {
        char out[256];
        const char *cargv[] = {"/usr/bin/curl", "-s", "--max-time", "1", probe_url, NULL};
        ck_assert_msg(run_capture(cargv, NULL, out, sizeof(out), 3000) == 0 &&
                          !strncmp(out, "OK", 2),
                      "peer %s did not start; see %s", argv[0], logpath);
    }
    return pid;
}

static void stop_peer(pid_t pid)
{
    int st;

    if (pid <= 0)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(live_peers); i++)
        if (live_peers[i] == pid)
            live_peers[i] = 0;
    kill(-pid, SIGTERM);
    for (long long end = now_ms() + 3000; now_ms() < end; sleep_ms(20))
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
    kill(-pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static int count_prefix(const char *dir, const char *prefix)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (!dp)
        return 0;
    while ((e = readdir(dp)))
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    closedir(dp);
    return n;
}

static int wait_files(const char *dir, const char *prefix, int n, int timeout_ms)
{
    int got = 0;

    for (long long end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(50))
        if ((got = count_prefix(dir, prefix)) >= n)
            break;
    return got;
}

/* The facts read_mail.py prints about each stored mail, concatenated. */
static char *read_mails(const char *maildir)
{
    size_t cap = 1 << 20, len = 0;
    char *all = calloc(1, cap);
    DIR *dp = opendir(maildir);
    struct dirent *e;

    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp))) {
        char path[600], script[600], out[65536];
        if (strncmp(e->d_name, "msg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", maildir, e->d_name);
        snprintf(script, sizeof(script), "%s/read_mail.py", peers_dir());
        const char *argv[] = {"/usr/bin/python3", script, path, NULL};
        ck_assert_int_eq(run_capture(argv, NULL, out, sizeof(out), 10000), 0);
        len += (size_t)snprintf(all + len, cap - len, "=== %s\n%s", e->d_name, out);
        ck_assert_uint_lt(len, cap - 1);
    }
    closedir(dp);
    return all;
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void make_cert(const char *dir, char *cert, char *key, size_t size)
{
    char out[4096];

    snprintf(cert, size, "%s/cert.pem", dir);
    snprintf(key, size, "%s/key.pem", dir);
    const char *argv[] = {"/usr/bin/openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "rsa:2048",
                          "-nodes",
                          "-keyout",
                          key,
                          "-out",
                          cert,
                          "-days",
                          "1",
                          "-subj",
                          "/CN=127.0.0.1",
                          "-addext",
                          "subjectAltName=IP:127.0.0.1",
                          NULL};
    ck_assert_msg(run_capture(argv, NULL, out, sizeof(out), 30000) == 0, "openssl: %s", out);
}

/* n workers, each stuck for secs in "GET <prefix><42+i>". */
static void slow_workers(struct tdaemon *d, struct tworker *w, int n, const char *prefix,
                         const char *secs)
{
    char url[64][64];

    for (int i = 0; i < n; i++) {
        snprintf(url[i], sizeof(url[i]), "%s%d", prefix, 42 + i);
        tw_start(&w[i], d, worker_prog(), (const char *const[]){"slow", secs, "GET", url[i], NULL});
    }
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(tw_expect(&w[i], "ready", 10000));
}

static void wait_workers(struct tworker *w, int n)
{
    for (int i = 0; i < n; i++)
        tw_wait(&w[i], 10000);
}

/*
 * What a peer test sets up and takes down: its temporary directory
 * (tmpdir), a free port and a log there for its peer, the peer, and the
 * daemon -- the test's own static struct, so that the teardown may see
 * it.  fx_begin() makes the directory and picks the port; fx_start_*()
 * start the peer and fx_launch() the daemon, in whichever order the test
 * needs; fx_end() stops the daemon (which must exit 0) and then the peer,
 * and removes everything.
 */
struct fixture {
    struct tdaemon *d;
    bool tmp;          /* tmpdir was made: removed at the end */
    pid_t peer;        /* 0 until one is started */
    char port[16];     /* the peer's */
    char log[300];     /* the peer's stderr */
    char maildir[300]; /* where smtpd.py stores the mails */
    char reqlog[300];  /* where http429.py logs the requests */
};

static void fx_begin(struct fixture *fx, const char *logname)
{
    memset(fx, 0, sizeof(*fx));
    mktmp();
    fx->tmp = true;
    snprintf(fx->log, sizeof(fx->log), "%s/%s", tmpdir, logname);
    snprintf(fx->port, sizeof(fx->port), "%d", free_port());
}

/* fx_begin() for a mail server: its log, and an empty maildir. */
static void fx_begin_mail(struct fixture *fx)
{
    fx_begin(fx, "smtpd.log");
    snprintf(fx->maildir, sizeof(fx->maildir), "%s/mail", tmpdir);
    mkdir(fx->maildir, 0700);
}

/* smtpd.py on fx->port storing mails in fx->maildir; extra: more of its
 * options, NULL-terminated (or NULL). */
static void fx_start_smtpd(struct fixture *fx, const char *const *extra)
{
    char script[600];
    const char *argv[24] = {"/usr/bin/python3", script, "--port", fx->port, "--dir", fx->maildir};
    size_t n = 6;

    snprintf(script, sizeof(script), "%s/smtpd.py", peers_dir());
    for (; extra && *extra; extra++) {
        ck_assert_uint_lt(n, ARRAY_SIZE(argv) - 1);
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    fx->peer = start_peer(argv, NULL, fx->log, NULL);
}

/* Sentry's Spotlight (spot) on fx->port, up once its /health answers. */
static void fx_start_spotlight(struct fixture *fx, const char *spot)
{
    char probe[128];

    snprintf(probe, sizeof(probe), "http://127.0.0.1:%s/health", fx->port);
    fx->peer = start_peer((const char *const[]){spot, "server", "-p", fx->port, NULL}, tmpdir,
                          fx->log, probe);
}

/* http429.py on fx->port giving the answers in turn (its --script),
 * logging each request to fx->reqlog. */
static void fx_start_http429(struct fixture *fx, const char *answers)
{
    char script[600];

    snprintf(fx->reqlog, sizeof(fx->reqlog), "%s/requests", tmpdir);
    snprintf(script, sizeof(script), "%s/http429.py", peers_dir());
    fx->peer = start_peer((const char *const[]){"/usr/bin/python3", script, "--port", fx->port,
                                                "--script", answers, "--log", fx->reqlog, NULL},
                          NULL, fx->log, NULL);
}

/* Start the daemon d (timer 0.3 s) with the config printed from fmt. */
static __attribute__((format(printf, 3, 4))) void fx_launch(struct fixture *fx, struct tdaemon *d,
                                                            const char *fmt, ...)
{
    char conf[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(conf, sizeof(conf), fmt, ap);
    va_end(ap);
    fx->d = d;
    td_init(d);
    live_daemon = d;
    td_write_conf(d, conf);
    td_launch(d, "0.3", NULL);
}

/* Once the daemon is stopped or killed: stop the peer, remove the rest. */
static void fx_cleanup(struct fixture *fx)
{
    stop_peer(fx->peer);
    live_daemon = NULL;
    td_cleanup(fx->d);
    if (fx->tmp)
        rmtmp();
}

static void fx_end(struct fixture *fx)
{
    ck_assert_int_eq(td_stop(fx->d), 0);
    fx_cleanup(fx);
}

/*
 * STARTTLS (our certificate, our CA file) and AUTH: each mail arrives
 * whole -- subject, recipients, the text report, the JSON attachment.
 * Five in a row, each its own TLS session: the TLS 1.3 ticket hang of
 * libesmtp (PEERS.md) showed in half of them before the 1.2 cap.
 */
START_TEST(email_starttls_auth_arrives_intact)
{
    char cert[300], key[300], pw[300], host[256];
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w[5];
    char *mails;
    FILE *f;

    fx_begin_mail(&fx);
    make_cert(tmpdir, cert, key, sizeof(cert));
    snprintf(pw, sizeof(pw), "%s/smtp.pw", tmpdir);
    f = fopen(pw, "w");
    fputs("sesame\n", f);
    fclose(f);
    chmod(pw, 0600);
    fx_start_smtpd(&fx, (const char *const[]){"--cert", cert, "--key", key, "--user", "dogslow",
                                              "--password", "sesame", NULL});
    fx_launch(&fx, &d,
              "[dogslow]\nstack_vars = true\njson = true\n"
              "email_to = ops@example.com, oncall@example.com\nemail_from = dogslow@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %s\nstarttls = required\nca_file = %s\n"
              "user = dogslow\npassword_file = %s\nwindow = 0\n",
              fx.port, cert, pw);
    slow_workers(&d, w, 5, "/orders/", "1.2");
    ck_assert_int_eq(wait_files(fx.maildir, "msg-", 5, 30000), 5);
    wait_workers(w, 5);
    mails = read_mails(fx.maildir);
    gethostname(host, sizeof(host));
    ck_assert_int_eq(count_str(mails, "header X-Test-Tls yes\n"), 5);
    ck_assert_int_eq(count_str(mails, "header X-Test-Auth yes\n"), 5);
    ck_assert_int_eq(count_str(mails, "header X-Test-Rcpt ops@example.com,oncall@example.com\n"),
                     5);
    ck_assert_int_eq(count_str(mails, "header From dogslow@example.com\n"), 5);
    ck_assert_msg(strstr(mails, "subject [dogslow] undead request: GET /orders/42 ("), "%s", mails);
    {
        char on[300];
        snprintf(on, sizeof(on), " s) on %s\n", host);
        ck_assert_int_eq(count_str(mails, on), 5);
    }
    ck_assert_int_eq(count_str(mails, "part text/plain - "), 5);
    ck_assert_int_eq(count_str(mails, "part application/json slow_request_"), 5);
    ck_assert_int_eq(count_str(mails, "json-ok /orders/4"), 5);
    ck_assert_msg(strstr(mails, "handle_slow_request"), "no frame in the mail text:\n%s", mails);
    free(mails);
    /* dogslowctl test-alert goes the same way, and status counts it. */
    {
        const char *ctl = getenv("DOGSLOWCTL");
        char out[8192];
        ck_assert_msg(ctl != NULL, "DOGSLOWCTL is not set (run under make check)");
        ck_assert_int_eq(
            run_capture((const char *const[]){ctl, "--socket", d.sock, "test-alert", NULL}, NULL,
                        out, sizeof(out), 30000),
            0);
        ck_assert_msg(strstr(out, "email:     queued for ops@example.com, oncall@example.com"),
                      "%s", out);
        ck_assert_int_eq(wait_files(fx.maildir, "msg-", 6, 15000), 6);
        sleep_ms(300);
        ck_assert_int_eq(run_capture((const char *const[]){ctl, "--socket", d.sock, "status", NULL},
                                     NULL, out, sizeof(out), 30000),
                         0);
        ck_assert_msg(strstr(out, "deliveries pending: 0 (0 bytes in the spool)\n"), "%s", out);
        ck_assert_msg(strstr(out, "delivered: 6 e-mail (0 digests), 0 Sentry;"), "%s", out);
    }
    mails = read_mails(fx.maildir);
    ck_assert_msg(strstr(mails, "subject [dogslow] undead request: TEST /dogslow/test-alert ("),
                  "%s", mails);
    ck_assert_msg(strstr(mails, "text Undead request") || strstr(mails, "GET /orders/43"), "%s",
                  mails);
    free(mails);
    /* A worker with secrets in its locals: the mail shows them redacted. */
    {
        char deep[600];
        struct tworker dw;
        snprintf(deep, sizeof(deep), "%s/deep_worker_O0", getenv("DEEP_WORKER_DIR"));
        tw_start(&dw, &d, deep, (const char *const[]){"sleep", "1.0", NULL});
        ck_assert_ptr_nonnull(tw_expect(&dw, "ready", 10000));
        ck_assert_int_eq(wait_files(fx.maildir, "msg-", 7, 20000), 7);
        tw_wait(&dw, 10000);
        mails = read_mails(fx.maildir);
        /* On failure, the deep worker's own mail. */
        const char *own = strstr(mails, "deep_worker");
        while (own && own > mails && strncmp(own, "=== ", 4) != 0)
            own--;
        if (!strstr(mails, "text       password = [redacted]") ||
            !strstr(mails, "text       card = [redacted]"))
            fprintf(stderr, "the deep worker's mail:\n%s\n", own ? own : mails);
        ck_assert_msg(strstr(mails, "text       password = [redacted]") &&
                          strstr(mails, "text       card = [redacted]"),
                      "secrets not redacted in the mail (its text is above)");
        ck_assert_msg(!strstr(mails, "hunter2") && !strstr(mails, "4111 1111"),
                      "a secret leaked into the mail");
        free(mails);
    }
    fx_end(&fx);
}
END_TEST

/* A followed request's end goes by mail too, in a mail of its own. */
START_TEST(email_follow_up_arrives)
{
    static struct tdaemon d;
    struct fixture fx;
    struct tworker w;
    char *mails;

    fx_begin_mail(&fx);
    fx_start_smtpd(&fx, NULL);
    fx_launch(&fx, &d,
              "[dogslow]\nfollow_hz = 10\nfollow_notify = true\nemail_to = ops@example.com\n"
              "email_from = dogslow@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %s\nstarttls = off\nwindow = 0\n",
              fx.port);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "1.2", "GET", "/followed", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 10000));
    ck_assert_int_eq(tw_wait(&w, 10000), 0);
    if (wait_files(fx.maildir, "msg-", 2, 20000) != 2) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "cat %s >&2; ls -la %s >&2", fx.log, fx.maildir);
        (void)!system(cmd);
        ck_abort_msg("no follow-up mail:\n%s", td_log(&d));
    }
    mails = read_mails(fx.maildir);
    ck_assert_msg(strstr(mails, "subject [dogslow] undead request: GET /followed ("), "%s", mails);
    ck_assert_msg(strstr(mails, "subject [dogslow] follow-up: GET /followed the request ended "
                                "after "),
                  "%s", mails);
    ck_assert_msg(strstr(mails, "text Where the time went (share of ") &&
                      strstr(mails, "text Folded stacks (flamegraph.pl, speedscope):"),
                  "%s", mails);
    free(mails);
    fx_end(&fx);
}
END_TEST

/*
 * A mail server that accepts the connection and then says nothing: the
 * wait is bounded (libesmtp's RFC minimum would be minutes), and while the
 * delivery thread waits, detection goes on -- the next report is written
 * on time.
 */
START_TEST(email_silent_server_is_bounded_and_never_blocks_detection)
{
    char spool[400], want[200];
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker a, b;
    long long t0;

    fx_begin(&fx, "silent.log");
    {
        char code[600];
        snprintf(code, sizeof(code),
                 "import socket,time\n"
                 "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                 "s.bind(('127.0.0.1',%s)); s.listen(16); print('READY',flush=True)\n"
                 "keep=[]\n"
                 "while True: keep.append(s.accept()[0])\n",
                 fx.port);
        fx.peer = start_peer((const char *const[]){"/usr/bin/python3", "-c", code, NULL}, NULL,
                             fx.log, NULL);
    }
    fx_launch(&fx, &d,
              "[dogslow]\nemail_to = ops@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %s\nstarttls = off\nwindow = 0\n",
              fx.port);
    tw_start(&a, &d, worker_prog(), (const char *const[]){"slow", "0.6", "GET", "/a", NULL});
    ck_assert_ptr_nonnull(tw_expect(&a, "ready", 10000));
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    sleep_ms(500); /* the thread now waits for a greeting that never comes */
    t0 = now_ms();
    tw_start(&b, &d, worker_prog(), (const char *const[]){"slow", "0.6", "GET", "/b", NULL});
    ck_assert_ptr_nonnull(tw_expect(&b, "ready", 10000));
    ck_assert_int_eq(td_wait_reports(&d, 2, 5000), 2);
    ck_assert_msg(now_ms() - t0 < 2000, "detection waited on delivery (%lld ms)", now_ms() - t0);
    snprintf(want, sizeof(want), "e-mail delivery: SMTP session with 127.0.0.1:%s failed", fx.port);
    ck_assert_msg(td_wait_log(&d, want, 15000), "no bounded timeout: %s", td_log(&d));
    snprintf(spool, sizeof(spool), "%s/.spool", d.out);
    ck_assert_int_eq(count_prefix(spool, "0"), 2); /* both still pending */
    tw_wait(&a, 5000);
    tw_wait(&b, 5000);
    td_kill(&d);
    fx_cleanup(&fx);
}
END_TEST

/* The "X-Dogslow-Report" ids of single mails and the "report:" lines of
 * digests, each checked to appear exactly once; returns how many. */
static int check_each_report_once(struct tdaemon *d, const char *mails)
{
    DIR *dp = opendir(d->out);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp))) {
        char a[400], b[400];
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "slow_request_", 13) != 0 || l < 4 ||
            strcmp(e->d_name + l - 4, ".log") != 0)
            continue;
        snprintf(a, sizeof(a), "header X-Dogslow-Report %s\n", e->d_name);
        snprintf(b, sizeof(b), "text   report: %s\n", e->d_name);
        ck_assert_msg(count_str(mails, a) + count_str(mails, b) == 1,
                      "report %s delivered %d times:\n%s", e->d_name,
                      count_str(mails, a) + count_str(mails, b), mails);
        n++;
    }
    closedir(dp);
    return n;
}

/*
 * The mail server is down while reports happen; the daemon is killed
 * (SIGKILL) with the mails pending, started again, and only then the
 * server comes up: every report arrives, exactly once.
 */
START_TEST(email_down_killed_restarted_each_report_once)
{
    char spool[400];
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w[4];
    char *mails;

    fx_begin_mail(&fx);
    fx_launch(&fx, &d,
              "[dogslow]\nemail_to = ops@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %s\nstarttls = off\nwindow = 0\n",
              fx.port);
    slow_workers(&d, w, 4, "/down/", "1.5"); /* margin for ASan, as below */
    ck_assert_int_eq(td_wait_reports(&d, 4, 10000), 4);
    wait_workers(w, 4);
    snprintf(spool, sizeof(spool), "%s/.spool", d.out);
    ck_assert_int_eq(wait_files(spool, "0", 4, 5000), 4);
    ck_assert_msg(td_wait_log(&d, "e-mail delivery: SMTP session", 5000), "%s", td_log(&d));
    td_kill(&d);
    ck_assert_int_eq(count_prefix(spool, "0"), 4);
    td_restart(&d, "0.3");
    ck_assert(td_wait_log(&d, "4 reports from before are pending", 5000));
    sleep_ms(500);
    ck_assert_int_eq(count_prefix(fx.maildir, "msg-"), 0);
    fx_start_smtpd(&fx, NULL);
    /* Backoff is at most a minute, but here it had only a few seconds to
     * grow: the mails come within a few. */
    ck_assert_int_eq(wait_files(fx.maildir, "msg-", 4, 20000), 4);
    sleep_ms(1500); /* and no more come */
    ck_assert_int_eq(count_prefix(fx.maildir, "msg-"), 4);
    ck_assert_int_eq(count_prefix(spool, "0"), 0);
    mails = read_mails(fx.maildir);
    ck_assert_int_eq(check_each_report_once(&d, mails), 4);
    free(mails);
    fx_end(&fx);
}
END_TEST

/*
 * Storm control: six requests stuck in the same place (one route, ids
 * aside) make one whole mail at once and, when the window ends, one
 * digest listing the other five -- each report exactly once.
 */
START_TEST(email_storm_is_one_mail_then_a_digest)
{
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w[6];
    char *mails;

    fx_begin_mail(&fx);
    fx_start_smtpd(&fx, NULL);
    fx_launch(&fx, &d,
              "[dogslow]\nemail_to = ops@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %s\nstarttls = off\nwindow = 3\n",
              fx.port);
    /* 1.5 s against the 0.3 s timer: six processes starting at once under
     * ASan make the first deadlines late. */
    slow_workers(&d, w, 6, "/orders/", "1.5");
    ck_assert_int_eq(td_wait_reports(&d, 6, 10000), 6);
    wait_workers(w, 6);
    /* Wait until every report is in some mail. */
    for (long long end = now_ms() + 12000; now_ms() < end; sleep_ms(300)) {
        int in = 0;
        mails = read_mails(fx.maildir);
        in = count_str(mails, "header X-Dogslow-Report slow_request_") +
             count_str(mails, "text   report: slow_request_");
        free(mails);
        if (in >= 6)
            break;
    }
    sleep_ms(500);
    mails = read_mails(fx.maildir);
    /* Grouped: a whole mail for the first of each kind, the rest in a
     * digest.  (A snapshot that failed under load has no frames, so a
     * kind of its own: at most one such.)  And no digest before the
     * window (3 s) after the first mail. */
    ck_assert_int_le(count_str(mails, "subject [dogslow] undead request: "), 2);
    ck_assert_int_ge(count_str(mails, "subject [dogslow] digest: "), 1);
    ck_assert_msg(strstr(mails, "more undead request(s) like GET /orders/{id}"), "%s", mails);
    {
        DIR *dp = opendir(fx.maildir);
        struct dirent *e;
        double first_t = 1e18, digest_t = 1e18;
        while ((e = readdir(dp))) {
            char path[600], reader[600], out[65536];
            struct stat st;
            double t;
            if (strncmp(e->d_name, "msg-", 4) != 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", fx.maildir, e->d_name);
            ck_assert_int_eq(stat(path, &st), 0);
            t = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
            snprintf(reader, sizeof(reader), "%s/read_mail.py", peers_dir());
            ck_assert_int_eq(
                run_capture((const char *const[]){"/usr/bin/python3", reader, path, NULL}, NULL,
                            out, sizeof(out), 10000),
                0);
            if (strstr(out, "subject [dogslow] digest: ")) {
                if (t < digest_t)
                    digest_t = t;
            } else if (t < first_t) {
                first_t = t;
            }
        }
        closedir(dp);
        ck_assert_msg(digest_t - first_t >= 2.5, "digest %.3f s after the first mail",
                      digest_t - first_t);
    }
    ck_assert_int_eq(check_each_report_once(&d, mails), 6);
    free(mails);
    fx_end(&fx);
}
END_TEST

/* Sentry's own Spotlight sink receives the event; read back, it has the
 * fields, the frames oldest first, and the variables. */
START_TEST(sentry_event_reaches_spotlight)
{
    char spot[600], script[600], out[65536];
    char host[256], want[512];
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w;
    const char *main_at, *handler_at;
    int wpid = 0, wtid = 0;

    snprintf(spot, sizeof(spot), "%s/node_modules/.bin/spotlight", peers_dir());
    ck_assert_msg(access(spot, X_OK) == 0,
                  "%s missing: run tools/deps (needs node and npm; it runs npm ci in "
                  "tests/peers)",
                  spot);
    fx_begin(&fx, "spotlight.log");
    fx_start_spotlight(&fx, spot);
    fx_launch(&fx, &d,
              "[dogslow]\nstack_vars = true\nfollow_hz = 10\nfollow_notify = true\n[sentry]\n"
              "dsn = http://0123abcd@127.0.0.1:%s/7\n",
              fx.port);
    tw_start(&w, &d, worker_prog(),
             (const char *const[]){"slow", "1.0", "GET", "/orders/42", NULL});
    {
        const char *l = tw_expect(&w, "ready", 10000);
        ck_assert_ptr_nonnull(l);
        sscanf(l, "ready pid=%d tid=%d", &wpid, &wtid);
    }
    snprintf(script, sizeof(script), "%s/read_spotlight.py", peers_dir());
    ck_assert_msg(run_capture((const char *const[]){"/usr/bin/python3", script, fx.port,
                                                    "GET /orders/42", "15", NULL},
                              NULL, out, sizeof(out), 30000) == 0,
                  "no event in Spotlight: %s\ndaemon: %s", out, td_log(&d));
    tw_wait(&w, 10000);
    gethostname(host, sizeof(host));
    ck_assert_msg(strstr(out, "event 0 level=warning logger=dogslow transaction=GET /orders/42 "
                              "platform=native\n"),
                  "%s", out);
    /* One event for the report; once the followed request ends, one more,
     * at level info, for its follow-up. */
    ck_assert_msg(!strstr(out, "event 2 "), "one event per report and one follow-up: %s", out);
    if (!strstr(out, "event 1 ")) {
        tw_wait(&w, 10000);
        sleep_ms(1500);
        ck_assert_int_eq(run_capture((const char *const[]){"/usr/bin/python3", script, fx.port,
                                                           "GET /orders/42", "15", NULL},
                                     NULL, out, sizeof(out), 30000),
                         0);
    }
    ck_assert_msg(strstr(out, "event 1 level=info logger=dogslow transaction=GET /orders/42 "),
                  "no follow-up event: %s", out);
    snprintf(want, sizeof(want), "tags method=GET host=%s pid=%d program=", host, wpid);
    ck_assert_msg(strstr(out, want), "want '%s' in %s", want, out);
    ck_assert_msg(strstr(out, "fingerprint dogslow|GET /orders/{id}|"), "%s", out);
    ck_assert_msg(strstr(out, "|handle_slow_request"), "%s", out);
    /* Oldest first: main before the handler, the handler before libc. */
    main_at = strstr(out, " fn=main ");
    handler_at = strstr(out, " fn=handle_slow_request ");
    ck_assert_msg(main_at && handler_at && main_at < handler_at, "%s", out);
    ck_assert_msg(strstr(handler_at, "file=test_worker.c line="), "%s", out);
    ck_assert_msg(strstr(handler_at, "in_app=true ctx=True addr=True vars="), "%s", out);
    {
        const char *eol = strchr(handler_at, '\n');
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)(eol - handler_at), handler_at);
        ck_assert_msg(strstr(line, "method") && strstr(line, "url"), "vars: %s", line);
    }
    ck_assert_msg(strstr(out, "in_app=false"), "libc frames are not in_app: %s", out);
    fx_end(&fx);
}
END_TEST


/* A Python worker: Sentry gets its Python frames, in place of the
 * interpreter loop, with their locals -- and its secrets redacted. */
START_TEST(sentry_event_has_python_frames_and_no_secrets)
{
    char spot[600], script[600], out[65536];
    char pypath[1200], preload[1024] = "";
    static struct tdaemon d;
    struct fixture fx;
    struct tworker w;
    const char *pkg = getenv("PYTHON_PKG_DIR"), *lib = getenv("DOGSLOW_LIBRARY_PATH");

    ck_assert_msg(pkg && lib, "PYTHON_PKG_DIR/DOGSLOW_LIBRARY_PATH not set (run under make check)");
    snprintf(spot, sizeof(spot), "%s/node_modules/.bin/spotlight", peers_dir());
    ck_assert_msg(access(spot, X_OK) == 0, "%s missing: run tools/deps", spot);
    fx_begin(&fx, "spotlight.log");
    fx_start_spotlight(&fx, spot);
    fx_launch(&fx, &d,
              "[dogslow]\nstack_vars = true\nfollow_hz = 0\n[sentry]\n"
              "dsn = http://0123abcd@127.0.0.1:%s/7\n",
              fx.port);
    snprintf(pypath, sizeof(pypath), "PYTHONPATH=%s", pkg);
    char libenv[1200], sockenv[400], pre[1100];
    snprintf(libenv, sizeof(libenv), "DOGSLOW_LIBRARY=%s", lib);
    snprintf(sockenv, sizeof(sockenv), "DOGSLOW_SOCKET=%s", d.sock);
    snprintf(preload, sizeof(preload), "%s", sanitizer_runtimes());
    snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", preload);
    const char *code = "import time, dogslow_client\n"
                       "def checkout_view(order_id):\n"
                       "    password = 'hunter2'\n"
                       "    card = '4111 1111 1111 1111'\n"
                       "    label = 'checkout'\n"
                       "    print('ready', flush=True)\n"
                       "    time.sleep(1.2)\n"
                       "dogslow_client.register()\n"
                       "with dogslow_client.request('GET', '/py/checkout'):\n"
                       "    checkout_view(42)\n";
    tw_start_env(&w, &d, "/usr/bin/python3", (const char *const[]){"-c", code, NULL},
                 (const char *const[]){pypath, libenv, sockenv, "ASAN_OPTIONS=detect_leaks=0",
                                       preload[0] ? pre : "DOGSLOW_NOTHING=1", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 10000));
    snprintf(script, sizeof(script), "%s/read_spotlight.py", peers_dir());
    ck_assert_msg(run_capture((const char *const[]){"/usr/bin/python3", script, fx.port,
                                                    "GET /py/checkout", "15", NULL},
                              NULL, out, sizeof(out), 30000) == 0,
                  "no event in Spotlight: %s\ndaemon: %s", out, td_log(&d));
    tw_wait(&w, 10000);
    /* The view, as a Python frame with its file and line, in the app. */
    const char *view = strstr(out, " fn=checkout_view file=<string> line=7 in_app=");
    ck_assert_msg(view, "no Python frame: %s", out);
    ck_assert_msg(strstr(out, "\"label\": \"'checkout'\"") &&
                      strstr(out, "\"order_id\": \"42\""),
                  "Python locals: %s", out);
    ck_assert_msg(strstr(out, "\"password\": \"[redacted]\"") &&
                      strstr(out, "\"card\": \"[redacted]\""),
                  "secrets not redacted: %s", out);
    ck_assert_msg(!strstr(out, "hunter2") && !strstr(out, "4111 1111"), "a secret leaked: %s", out);
    ck_assert_msg(!strstr(out, "fn=_PyEval_EvalFrameDefault "), "eval loop not replaced: %s",
                  out);
    fx_end(&fx);
}
END_TEST

/* A server of ours answers 429 (Retry-After: 2), then 500, then 200: the
 * event is sent three times, the second no sooner than two seconds after
 * the first, and is gone from the spool only after the 200. */
START_TEST(sentry_429_and_500_are_retried)
{
    char spool[400], *text;
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w;
    double t[3];
    int status[3], n = 0;
    FILE *f;

    fx_begin(&fx, "http.log");
    fx_start_http429(&fx, "429:2,500,200");
    fx_launch(&fx, &d, "[sentry]\ndsn = http://k@127.0.0.1:%s/1\n", fx.port);
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "0.8", "GET", "/x", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 10000));
    snprintf(spool, sizeof(spool), "%s/.spool", d.out);
    for (long long end = now_ms() + 15000; now_ms() < end; sleep_ms(100)) {
        f = fopen(fx.reqlog, "r");
        n = 0;
        if (f) {
            char line[256];
            while (n < 3 && fgets(line, sizeof(line), f)) {
                ck_assert_msg(strstr(line, " application/x-sentry-envelope auth 1\n"), "%s", line);
                sscanf(line, "%lf %d", &t[n], &status[n]);
                n++;
            }
            fclose(f);
        }
        if (n == 3 && count_prefix(spool, "0") == 0)
            break;
    }
    tw_wait(&w, 10000);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(status[0], 429);
    ck_assert_int_eq(status[1], 500);
    ck_assert_int_eq(status[2], 200);
    ck_assert_msg(t[1] - t[0] >= 1.9, "Retry-After: 2 not honoured (%.3f s)", t[1] - t[0]);
    ck_assert_msg(t[2] - t[1] >= 0.4, "no backoff after 500 (%.3f s)", t[2] - t[1]);
    ck_assert_int_eq(count_prefix(spool, "0"), 0);
    sleep_ms(1500); /* accepted once: not sent again */
    text = NULL;
    f = fopen(fx.reqlog, "r");
    n = 0;
    {
        char line[256];
        while (fgets(line, sizeof(line), f))
            n++;
    }
    fclose(f);
    free(text);
    ck_assert_int_eq(n, 3);
    fx_end(&fx);
}
END_TEST

/* X-Sentry-Rate-Limits on an accepted event holds the next one back for
 * as long as it says. */
START_TEST(sentry_rate_limits_header_is_honoured)
{
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx;
    struct tworker w[2];
    double t[2];
    int status[2], n = 0;
    FILE *f;

    fx_begin(&fx, "http.log");
    fx_start_http429(&fx, "200rl:2");
    fx_launch(&fx, &d, "[sentry]\ndsn = http://k@127.0.0.1:%s/1\n", fx.port);
    slow_workers(&d, w, 2, "/rl/", "0.8");
    for (long long end = now_ms() + 20000; now_ms() < end && n < 2; sleep_ms(100)) {
        char line[256];
        n = 0;
        f = fopen(fx.reqlog, "r");
        while (f && n < 2 && fgets(line, sizeof(line), f)) {
            sscanf(line, "%lf %d", &t[n], &status[n]);
            n++;
        }
        if (f)
            fclose(f);
    }
    wait_workers(w, 2);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(status[0], 200);
    ck_assert_int_eq(status[1], 200);
    ck_assert_msg(t[1] - t[0] >= 1.9, "X-Sentry-Rate-Limits: 2 not honoured (%.3f s)", t[1] - t[0]);
    fx_end(&fx);
}
END_TEST

/* The spool's cap: what would pass it is dropped, logged and counted --
 * the report file is still written. */
START_TEST(spool_cap_drops_are_logged_and_counted)
{
    char out[8192];
    static struct tdaemon d; /* static: the teardown may see it */
    struct fixture fx = {0}; /* no directory, no peer: just the daemon */
    struct tworker w;
    const char *ctl = getenv("DOGSLOWCTL");

    ck_assert_msg(ctl != NULL, "DOGSLOWCTL is not set (run under make check)");
    fx_launch(&fx, &d,
              "[dogslow]\nspool_max_bytes = 256\nemail_to = ops@example.com\n"
              "[email]\nhost = 127.0.0.1\nport = %d\nstarttls = off\n",
              free_port());
    tw_start(&w, &d, worker_prog(), (const char *const[]){"slow", "0.6", "GET", "/cap", NULL});
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 10000));
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    ck_assert_msg(td_wait_log(&d, "delivery spool full", 5000), "%s", td_log(&d));
    ck_assert_msg(strstr(td_log(&d), "e-mail report dropped (1 dropped so far)"), "%s", td_log(&d));
    ck_assert_int_eq(run_capture((const char *const[]){ctl, "--socket", d.sock, "status", NULL},
                                 NULL, out, sizeof(out), 30000),
                     0);
    ck_assert_msg(strstr(out, "dropped at the spool cap 1;"), "%s", out);
    ck_assert_msg(strstr(out, "deliveries pending: 0 "), "%s", out);
    tw_wait(&w, 5000);
    fx_end(&fx);
}
END_TEST

static void add_peer_tests(Suite *s)
{
    TCase *tc = tcase_create("peers");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, peers_teardown);
    tcase_add_test(tc, email_starttls_auth_arrives_intact);
    tcase_add_test(tc, email_down_killed_restarted_each_report_once);
    tcase_add_test(tc, email_silent_server_is_bounded_and_never_blocks_detection);
    tcase_add_test(tc, email_storm_is_one_mail_then_a_digest);
    tcase_add_test(tc, email_follow_up_arrives);
    tcase_add_test(tc, sentry_event_reaches_spotlight);
    tcase_add_test(tc, sentry_event_has_python_frames_and_no_secrets);
    tcase_add_test(tc, sentry_429_and_500_are_retried);
    tcase_add_test(tc, sentry_rate_limits_header_is_honoured);
    tcase_add_test(tc, spool_cap_drops_are_logged_and_counted);
    suite_add_tcase(s, tc);
}

int main(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("units");

    tcase_add_test(tc, dsn_is_parsed);
    tcase_add_test(tc, bad_dsns_say_why);
    tcase_add_test(tc, rate_limit_header);
    tcase_add_test(tc, routes_drop_ids_and_queries);
    tcase_add_test(tc, spool_round_trip_and_cap);
    tcase_add_test(tc, mail_is_crlf_mime_and_utf8_safe);
    tcase_add_test(tc, password_file_must_be_private);
    suite_add_tcase(s, tc);
    add_peer_tests(s);
    return run_suite(s);
}
