/* SPDX-License-Identifier: MIT */
/*
 * The syslog output: one line per undead request,
 *
 *   undead request: GET /orders/42 pid=1234 tid=1240 elapsed=26.021s
 *     top=wait_for_db (db.c:88) report=/var/log/dogslow/slow_request_...log
 *
 * (on one line) at the configured facility and level.  We speak to the
 * syslog socket ourselves instead of through syslog(3): glibc's cannot be
 * pointed at another socket and never says whether a message was taken,
 * and `dogslowctl test-alert` must say what happened.  Sends never block:
 * a syslog daemon that does not keep up loses lines, not our event loop.
 *
 * Built with libsystemd and running under journald, the request goes to the
 * journal instead, as one structured entry: DOGSLOW_METHOD=, DOGSLOW_URL=,
 * DOGSLOW_PID=, DOGSLOW_TID=, ... and the whole report as MESSAGE, so
 * `journalctl DOGSLOW_PID=1234` finds it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

#include "conf.h"
#include "output.h"
#include "util.h"

#define LINE_MAX_BYTES 2048 /* one syslog line, at most (RFC 3164 asks for 1024) */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int sl_fd = -1;
static int sl_type;

void sink_syslog_close(void)
{
    if (sl_fd >= 0)
        close(sl_fd);
    sl_fd = -1;
}

static int sl_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static const int types[] = {SOCK_DGRAM, SOCK_STREAM};

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    dsl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            sl_fd = fd;
            sl_type = types[i];
            return 0;
        }
        int err = errno;
        close(fd);
        /* A stream socket (some syslog daemons) refuses a datagram peer. */
        if (err != EPROTOTYPE)
            return -err;
    }
    return -EPROTOTYPE;
}

static int sl_send(const char *path, const char *msg, size_t len)
{
    int r;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (sl_fd < 0) {
            r = sl_connect(path);
            if (r < 0)
                return r;
        }
        /* Stream syslog sockets take NUL-terminated messages (as glibc's
         * syslog(3) sends them). */
        if (send(sl_fd, msg, len + (sl_type == SOCK_STREAM), MSG_DONTWAIT | MSG_NOSIGNAL) ==
            (ssize_t)(len + (sl_type == SOCK_STREAM)))
            return 0;
        r = -errno;
        if (r == -EAGAIN)
            return r; /* the syslog daemon is behind: drop, do not wait */
        /* The syslog daemon restarted: connect again, once. */
        sink_syslog_close();
    }
    return r;
}

/* Shared libraries of the system, and the kernel's vDSO. */
static bool is_system_module(const char *m)
{
    static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "["};

    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (!strncmp(m, dirs[i], strlen(dirs[i])))
            return true;
    return !m[0];
}

void sink_top_frame(const struct report_info *ri, char *buf, size_t size)
{
    const struct symframe *f;
    const char *base;

    if (ri->nframes == 0) {
        snprintf(buf, size, "?");
        return;
    }
    /* The innermost frame of the program's own code says most: libc's
     * clock_nanosleep is rarely the news.  Else the innermost frame. */
    f = &ri->frames[0];
    for (unsigned i = 0; i < ri->nframes; i++) {
        const struct symframe *g = &ri->frames[i];
        if (g->function[0] && !is_system_module(g->module)) {
            f = g;
            break;
        }
    }
    base = strrchr(f->module, '/');
    base = base ? base + 1 : f->module;
    if (f->function[0] && f->file[0] && f->line > 0) {
        const char *fb = strrchr(f->file, '/');
        snprintf(buf, size, "%s (%s:%d)", f->function, fb ? fb + 1 : f->file, f->line);
    } else if (f->function[0]) {
        snprintf(buf, size, "%s+0x%llx (%s)", f->function, (unsigned long long)f->offset,
                 base[0] ? base : "?");
    } else {
        snprintf(buf, size, "0x%llx (%s)", (unsigned long long)f->ip, base[0] ? base : "?");
    }
}

/*
 * A value a worker controls (URL, method, frame name), in double quotes,
 * with '"' and '\\' escaped by a backslash and control bytes as \xHH, so
 * that a URL such as "/x pid=1 tid=1" cannot forge the fields after it.
 * Cut short, it still ends with the closing quote.
 */
void sink_syslog_quote(const char *v, char *out, size_t size)
{
    size_t o = 0;

    if (size < 3) {
        if (size)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char esc[5];
        size_t n;

        if (*p == '"' || *p == '\\')
            n = (size_t)snprintf(esc, sizeof(esc), "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
        else
            esc[0] = (char)*p, n = 1;
        if (o + n + 2 > size)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* A method is a token (RFC 9110): as it is, or quoted if it is not. */
void sink_syslog_token(const char *v, char *out, size_t size)
{
    bool token = v[0] != '\0';

    for (const char *p = v; *p && token; p++)
        token = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p);
    if (token)
        dsl_strlcpy(out, v, size);
    else
        sink_syslog_quote(v, out, size);
}

static void summary(const struct report_info *ri, const char *report_path, char *buf,
                    size_t size)
{
    char top[600], qtop[620], method[80], url[4 * DSL_STR_MAX + 3];

    sink_top_frame(ri, top, sizeof(top));
    sink_syslog_quote(top, qtop, sizeof(qtop));
    sink_syslog_token(ri->req->method, method, sizeof(method));
    sink_syslog_quote(ri->req->url, url, sizeof(url));
    snprintf(buf, size, "undead request: %s %s pid=%d tid=%d elapsed=%.3fs top=%s report=%s",
             method, url, (int)ri->w->pid, (int)ri->req->tid,
             (double)(ri->now_real_ns - ri->start_real_ns) / (double)NSEC_PER_SEC, qtop,
             report_path[0] ? report_path : "(none)");
}

#ifdef HAVE_LIBSYSTEMD
static bool use_journal(const struct config *c)
{
    if (c->syslog.journal == CFG_JOURNAL_NO)
        return false;
    if (c->syslog.journal == CFG_JOURNAL_AUTO && !getenv("JOURNAL_STREAM"))
        return false;
    return access(JOURNAL_SOCKET, W_OK) == 0;
}

static int journal_send(struct daemon *d, const struct report_info *ri, const char *report_path,
                        const char *line, char *what, size_t size)
{
    char top[600], *text = NULL, *msg;
    size_t len = 0;
    int r;

    sink_top_frame(ri, top, sizeof(top));
    r = report_render(d, ri, &text, &len);
    if (r < 0) {
        snprintf(what, size, "journal: cannot render the report: %s", strerror(-r));
        return r;
    }
    msg = realloc(text, len + 1);
    if (!msg) {
        free(text);
        snprintf(what, size, "journal: out of memory");
        return -ENOMEM;
    }
    msg[len] = '\0';
    r = sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", d->cfg.syslog.level,
                        "SYSLOG_FACILITY=%d", d->cfg.syslog.facility >> 3,
                        "SYSLOG_IDENTIFIER=dogslowd", "DOGSLOW_METHOD=%s", ri->req->method,
                        "DOGSLOW_URL=%s", ri->req->url, "DOGSLOW_PID=%d", (int)ri->w->pid,
                        "DOGSLOW_TID=%d", (int)ri->req->tid, "DOGSLOW_PROGRAM=%s", ri->w->program,
                        "DOGSLOW_ELAPSED_MS=%llu",
                        (unsigned long long)((ri->now_real_ns - ri->start_real_ns) /
                                             NSEC_PER_MSEC),
                        "DOGSLOW_TOP_FRAME=%s", top, "DOGSLOW_REPORT=%s", report_path,
                        "DOGSLOW_SUMMARY=%s", line, NULL);
    free(msg);
    if (r < 0) {
        snprintf(what, size, "journal: FAILED: %s", strerror(-r));
        return r;
    }
    snprintf(what, size, "sent to the journal (%s) as a structured entry", JOURNAL_SOCKET);
    return 0;
}
#endif

/* RFC 3164: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, in local time, to the
 * configured socket. */
static int send_line(struct daemon *d, const char *line)
{
    const struct config *c = &d->cfg;
    char msg[LINE_MAX_BYTES + 64], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    n = snprintf(msg, sizeof(msg), "<%d>%s dogslowd[%d]: %s", c->syslog.facility | c->syslog.level,
                 stamp, (int)d->pid, line);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;
    return sl_send(c->syslog.socket, msg, (size_t)n);
}

int sink_syslog_text(struct daemon *d, const char *line)
{
#ifdef HAVE_LIBSYSTEMD
    const struct config *c = &d->cfg;

    if (use_journal(c)) {
        int r = sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", c->syslog.level,
                                "SYSLOG_FACILITY=%d", c->syslog.facility >> 3,
                                "SYSLOG_IDENTIFIER=dogslowd", NULL);
        return r < 0 ? r : 0;
    }
#endif
    return send_line(d, line);
}

int sink_syslog_undead(struct daemon *d, const struct report_info *ri, const char *report_path,
                       char *what, size_t size)
{
    const struct config *c = &d->cfg;
    const struct opt_def *fac = config_find("syslog.facility"), *lvl = config_find("syslog.level");
    char line[LINE_MAX_BYTES];
    int r;

    summary(ri, report_path, line, sizeof(line));
#ifdef HAVE_LIBSYSTEMD
    if (use_journal(c))
        return journal_send(d, ri, report_path, line, what, size);
#endif
    r = send_line(d, line);
    if (r < 0) {
        snprintf(what, size, "FAILED to send to %s: %s", c->syslog.socket, strerror(-r));
        return r;
    }
    snprintf(what, size, "sent to %s (facility %s, level %s)", c->syslog.socket,
             config_choice_name(fac, c->syslog.facility), config_choice_name(lvl, c->syslog.level));
    return 0;
}
