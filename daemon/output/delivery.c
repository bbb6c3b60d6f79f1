/* SPDX-License-Identifier: MIT */
/*
 * Delivery: the daemon's side (render and spool, in its own thread, from
 * outputs_undead) and the delivery thread (send from the spool).  See
 * output.h for the contract and docs/architecture.md, "Delivery".
 *
 * The two sides share only the spool directory, an eventfd (a nudge: "an
 * entry was added") and, under a mutex, a copy of the configuration and
 * the counters.  The delivery thread may sit in a slow SMTP exchange or an
 * HTTP POST for seconds; nothing in the daemon's loop ever waits for it.
 *
 * Retrying: per sink, not per entry -- when the mail server is down, it is
 * down for every mail, so one failure puts the whole sink on hold for
 * DELIVERY_BACKOFF_MIN_MS doubling up to DELIVERY_BACKOFF_MAX_MS, and the
 * oldest entry is tried first when the hold ends.  Sentry's 429 /
 * Retry-After / X-Sentry-Rate-Limits set the hold to what the server asked
 * (capped at an hour).  An entry a peer refuses for good (SMTP 5xx, HTTP
 * 400) is set aside as rejected-NAME in the spool, logged and counted.
 *
 * Storm control (e-mail only; storm.c): entries carry a fingerprint in
 * their name (method, route, top in-app frames), and storm.c decides which
 * go out whole and which wait for a digest; this file sends them, and
 * holds the sink when a send fails.  The Sentry event is rendered by
 * sink_sentry.c.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <auth-client.h>
#include <curl/curl.h>

#include "output.h"
#include "util.h"

#define DELIVERY_BACKOFF_MIN_MS 500
#define DELIVERY_BACKOFF_MAX_MS 60000
#define DELIVERY_TICK_MS        1000 /* the spool is rescanned at least this often */

/* ---- shared state ------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct config *shared_cfg; /* the newest configuration; under lock */
static uint64_t shared_gen;       /* bumped by each delivery_reconfigure */
static struct delivery_stats stats;
static pthread_t thread;
static bool running;
static int nudge_fd = -1;
static bool stopping; /* set by delivery_shutdown, read by the thread */
#define STOPPING() __atomic_load_n(&stopping, __ATOMIC_RELAXED)

static void nudge(void)
{
    uint64_t one = 1;

    if (nudge_fd >= 0 && write(nudge_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("cannot nudge the delivery thread");
}

void delivery_get_stats(struct delivery_stats *ret)
{
    pthread_mutex_lock(&lock);
    *ret = stats;
    pthread_mutex_unlock(&lock);
    ret->pending = spool_entries();
    ret->pending_bytes = spool_bytes();
}

static void note_error(const char *why)
{
    pthread_mutex_lock(&lock);
    dsl_strlcpy(stats.last_error, why, sizeof(stats.last_error));
    pthread_mutex_unlock(&lock);
}

#define STAT_ADD(field, n)                                                                         \
    do {                                                                                           \
        pthread_mutex_lock(&lock);                                                                 \
        stats.field += (n);                                                                        \
        pthread_mutex_unlock(&lock);                                                               \
    } while (0)

/* ---- what goes into the spool (daemon thread) ---------------------------- */

/* Printable ASCII and UTF-8 are kept; control characters become '?',
 * so a URL cannot add a header line to a spool entry or a mail. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void subject_of(struct daemon *d, const struct report_info *ri, char *out, size_t size)
{
    uint64_t secs = ri->now_real_ns > ri->start_real_ns
                        ? (ri->now_real_ns - ri->start_real_ns) / NSEC_PER_SEC
                        : 0;

    snprintf(out, size, "[dogslow] undead request: %s %s (%llu s) on %s", ri->req->method,
             ri->req->url, (unsigned long long)secs, d->hostname);
    one_line(out);
}

static int spool_email(struct daemon *d, const struct report_info *ri, const char *report_path,
                       const char *dir, char *what, size_t wsize)
{
    char route[600], subject[700], id[PATH_MAX], tag[20], name[SPOOL_NAME_MAX];
    char hdr[PATH_MAX + 1024];
    char *text = NULL, *json = NULL, *body;
    size_t tlen = 0, jlen = 0;
    int hlen, r;

    storm_fingerprint(ri, route, sizeof(route), tag, sizeof(tag));
    subject_of(d, ri, subject, sizeof(subject));
    if (report_path && report_path[0]) {
        const char *b = strrchr(report_path, '/');
        dsl_strlcpy(id, b ? b + 1 : report_path, sizeof(id));
    } else {
        snprintf(id, sizeof(id), "pid %d tid %d", (int)ri->w->pid, (int)ri->req->tid);
    }
    one_line(id);

    r = report_render(d, ri, &text, &tlen);
    if (r < 0) {
        snprintf(what, wsize, "FAILED: cannot render the report: %s", strerror(-r));
        return r;
    }
    if (d->cfg.json && report_json_render(d, ri, &json, &jlen) < 0) {
        json = NULL; /* the mail still goes, with the text */
        jlen = 0;
    }
    hlen = snprintf(hdr, sizeof(hdr),
                    "sink email\nfingerprint %s\nroute %s\nsubject %s\nreport %s\ntext %zu\n"
                    "json %zu\n",
                    tag, route, subject, id, tlen, jlen);
    body = malloc(tlen + jlen + 1);
    if (!body) {
        free(text);
        free(json);
        snprintf(what, wsize, "FAILED: out of memory");
        return -ENOMEM;
    }
    memcpy(body, text, tlen);
    if (jlen)
        memcpy(body + tlen, json, jlen);
    r = spool_put(dir, "email", tag, hdr, (size_t)hlen, body, tlen + jlen, d->cfg.spool_max_bytes,
                  name, sizeof(name));
    free(body);
    free(text);
    free(json);
    if (r < 0)
        return r;
    snprintf(what, wsize, "queued for %s (spool entry %s)", d->cfg.email_to, name);
    return 0;
}

static int spool_sentry(struct daemon *d, const struct report_info *ri, const char *dir, char *what,
                        size_t wsize)
{
    char hdr[128], name[SPOOL_NAME_MAX], subject[700];
    char *event;
    size_t len;
    int hlen, r;

    /* The event's message is the mail's subject: the same words in both. */
    subject_of(d, ri, subject, sizeof(subject));
    r = sentry_event_render(d, ri, subject + strlen("[dogslow] "), SENTRY_EVENT_MAX, &event, &len);
    if (r < 0) {
        snprintf(what, wsize, "FAILED: cannot render the event: %s", strerror(-r));
        return r;
    }
    hlen = snprintf(hdr, sizeof(hdr), "sink sentry\nevent %zu\n", len);
    r = spool_put(dir, "sentry", NULL, hdr, (size_t)hlen, event, len, d->cfg.spool_max_bytes, name,
                  sizeof(name));
    free(event);
    if (r < 0)
        return r;
    snprintf(what, wsize, "queued (spool entry %s)", name);
    return 0;
}

static void dropped(const char *sink, int r, char *what, size_t wsize)
{
    if (r == -ENOSPC) {
        uint64_t n;

        pthread_mutex_lock(&lock);
        n = ++stats.dropped;
        pthread_mutex_unlock(&lock);
        log_warnx("delivery spool full (spool_max_bytes, or %u entries): %s report dropped "
                  "(%llu dropped so far)",
                  SPOOL_ENTRIES_MAX, sink, (unsigned long long)n);
        snprintf(what, wsize, "DROPPED: the delivery spool is full");
    } else if (strncmp(what, "FAILED", 6) != 0) {
        errno = -r;
        log_warn("cannot spool the %s report", sink);
        snprintf(what, wsize, "FAILED to spool: %s", strerror(-r));
    }
}

void delivery_enqueue(struct daemon *d, const struct report_info *ri, const char *report_path,
                      char *email_what, size_t esize, char *sentry_what, size_t ssize)
{
    char dir[PATH_MAX];
    bool added = false;
    int r;

    snprintf(email_what, esize, "off (email_to is empty)");
    snprintf(sentry_what, ssize, "off ([sentry] dsn is empty)");
    if (!d->cfg.email_to[0] && !d->cfg.sentry.dsn[0])
        return;
    if (!running) {
        if (d->cfg.email_to[0])
            snprintf(email_what, esize, "FAILED: the delivery thread is not running");
        if (d->cfg.sentry.dsn[0])
            snprintf(sentry_what, ssize, "FAILED: the delivery thread is not running");
        return;
    }
    spool_dir_of(&d->cfg, dir, sizeof(dir));
    if (d->cfg.email_to[0]) {
        email_what[0] = '\0';
        r = spool_email(d, ri, report_path, dir, email_what, esize);
        if (r < 0)
            dropped("e-mail", r, email_what, esize);
        else
            added = true;
    }
    if (d->cfg.sentry.dsn[0]) {
        sentry_what[0] = '\0';
        r = spool_sentry(d, ri, dir, sentry_what, ssize);
        if (r < 0)
            dropped("Sentry", r, sentry_what, ssize);
        else
            added = true;
    }
    if (added)
        nudge();
}

/* ---- the delivery thread ------------------------------------------------ */

struct sink_hold {
    unsigned fails;
    uint64_t until_ms; /* CLOCK_MONOTONIC; 0: not held */
};

struct worker_state {
    struct config *cfg; /* the thread's own copy */
    uint64_t gen;
    char dir[PATH_MAX];
    struct sink_hold email, sentry;
    struct storm storm; /* storm.c's */
    uint64_t next_wake_ms;
};

static uint64_t now_ms(void)
{
    return dsl_now_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC;
}

static void hold(struct sink_hold *h, unsigned asked_s, const char *sink, const char *why)
{
    uint64_t wait = DELIVERY_BACKOFF_MIN_MS;

    for (unsigned i = 0; i < h->fails && wait < DELIVERY_BACKOFF_MAX_MS; i++)
        wait *= 2;
    if (wait > DELIVERY_BACKOFF_MAX_MS)
        wait = DELIVERY_BACKOFF_MAX_MS;
    if (asked_s && (uint64_t)asked_s * 1000u > wait)
        wait = (uint64_t)asked_s * 1000u;
    h->fails++;
    h->until_ms = now_ms() + wait;
    STAT_ADD(retries, 1);
    note_error(why);
    log_warnx("%s delivery: %s; retrying in %.1f s", sink, why, (double)wait / 1000.0);
}

static void released(struct sink_hold *h)
{
    h->fails = 0;
    h->until_ms = 0;
}

static void reject(struct worker_state *ws, const char *name, const char *sink, const char *why)
{
    log_warnx("%s delivery: %s refused for good: %s; kept as %s/rejected-%s", sink, name, why,
              ws->dir, name);
    note_error(why);
    if (spool_reject(ws->dir, name) < 0)
        spool_remove(ws->dir, name);
    STAT_ADD(rejected, 1);
}

static void send_sentry(struct worker_state *ws, const char *name)
{
    char *buf = NULL, why[512];
    size_t len, body;
    unsigned retry_s = 0;
    int r;

    if (ws->sentry.until_ms > now_ms())
        return;
    if (!ws->cfg->sentry.dsn[0])
        return; /* kept until a DSN is configured again */
    r = spool_read(ws->dir, name, &buf, &len, &body);
    if (r == -ENOENT)
        return;
    if (r < 0) {
        reject(ws, name, "Sentry", "unreadable spool entry");
        return;
    }
    r = sentry_send(ws->cfg, buf + body, len - body, &retry_s, why, sizeof(why));
    free(buf);
    if (r == 0) {
        released(&ws->sentry);
        spool_remove(ws->dir, name);
        STAT_ADD(delivered_sentry, 1);
        log_debug("Sentry delivery: %s %s", name, why);
        /* A 200 can carry rate limits too: respect them for what follows. */
        if (retry_s)
            ws->sentry.until_ms = now_ms() + (uint64_t)retry_s * 1000u;
    } else if (r == -EPERM) {
        reject(ws, name, "Sentry", why);
    } else {
        hold(&ws->sentry, retry_s, "Sentry", why);
    }
}

/* Mail one entry whole.  0: sent (entry removed); <0: held or rejected. */
static int mail_one(struct worker_state *ws, const char *name)
{
    char subject[800], id[PATH_MAX], num[32], from[300], why[512], jname[PATH_MAX];
    char *buf = NULL, *msg = NULL;
    size_t len, body, tlen, jlen, mlen;
    struct email_msg m;
    int r;

    r = spool_read(ws->dir, name, &buf, &len, &body);
    if (r == -ENOENT)
        return r;
    if (r < 0) {
        reject(ws, name, "e-mail", "unreadable spool entry");
        return r;
    }
    spool_header(buf, body, "subject", subject, sizeof(subject));
    spool_header(buf, body, "report", id, sizeof(id));
    spool_header(buf, body, "text", num, sizeof(num));
    tlen = strtoull(num, NULL, 10);
    spool_header(buf, body, "json", num, sizeof(num));
    jlen = strtoull(num, NULL, 10);
    if (tlen > len - body || jlen > len - body - tlen) {
        free(buf);
        reject(ws, name, "e-mail", "spool entry with bad lengths");
        return -EBADMSG;
    }
    email_from_address(ws->cfg, from, sizeof(from));
    snprintf(
        jname, sizeof(jname), "%.*s.json",
        (int)(strlen(id) > 4 && !strcmp(id + strlen(id) - 4, ".log") ? strlen(id) - 4 : strlen(id)),
        id);
    m = (struct email_msg){
        .from = from,
        .to = ws->cfg->email_to,
        .subject = subject,
        .id = id,
        .text = buf + body,
        .text_len = tlen,
        .json = jlen ? buf + body + tlen : NULL,
        .json_len = jlen,
        .json_name = jname,
        .date_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC,
    };
    r = email_build(&m, &msg, &mlen);
    free(buf);
    if (r < 0) {
        reject(ws, name, "e-mail", "cannot build the message");
        return r;
    }
    r = email_send(ws->cfg, msg, why, sizeof(why));
    free(msg);
    if (r == 0) {
        released(&ws->email);
        spool_remove(ws->dir, name);
        STAT_ADD(delivered_email, 1);
        log_debug("e-mail delivery: %s %s", name, why);
        return 0;
    }
    if (r == -EPERM)
        reject(ws, name, "e-mail", why);
    else
        hold(&ws->email, 0, "e-mail", why);
    return r;
}

/* ---- e-mail: storm.c decides, this sends ------------------------------- */

/* A digest storm.c built for entries names[0..n). */
static int send_digest(void *arg, char (*names)[SPOOL_NAME_MAX], size_t n, const char *msg,
                       size_t listed)
{
    struct worker_state *ws = arg;
    char why[512];
    int r;

    r = email_send(ws->cfg, msg, why, sizeof(why));
    if (r == 0) {
        released(&ws->email);
        for (size_t i = 0; i < n; i++)
            spool_remove(ws->dir, names[i]);
        STAT_ADD(delivered_email, listed);
        STAT_ADD(digests, 1);
        log_info("e-mail delivery: digest of %zu reports sent (%s)", listed, why);
        return 0;
    }
    /* A digest refused for good is retried as a held sink anyway: its
     * entries are many reports, not one to set aside. */
    hold(&ws->email, 0, "e-mail", why);
    return r;
}

static int mail_one_op(void *arg, const char *name)
{
    return mail_one(arg, name);
}

static bool email_held(void *arg)
{
    struct worker_state *ws = arg;

    return ws->email.until_ms > now_ms();
}

static bool stopping_op(void *arg)
{
    (void)arg;
    return STOPPING();
}

static void send_emails(struct worker_state *ws, char (*names)[SPOOL_NAME_MAX], size_t n)
{
    const struct storm_ops ops = {
        .arg = ws,
        .mail_one = mail_one_op,
        .send_digest = send_digest,
        .held = email_held,
        .stopping = stopping_op,
    };

    if (!n || !ws->cfg->email_to[0] || ws->email.until_ms > now_ms())
        return;
    storm_send(&ws->storm, ws->cfg, ws->dir, names, n, &ops, &ws->next_wake_ms);
}

static void take_config(struct worker_state *ws)
{
    pthread_mutex_lock(&lock);
    if (ws->gen != shared_gen && shared_cfg) {
        memcpy(ws->cfg, shared_cfg, sizeof(*ws->cfg));
        ws->gen = shared_gen;
        spool_dir_of(ws->cfg, ws->dir, sizeof(ws->dir));
    }
    pthread_mutex_unlock(&lock);
}

static void scan(struct worker_state *ws)
{
    char(*names)[SPOOL_NAME_MAX] = NULL, (*mails)[SPOOL_NAME_MAX] = NULL;
    size_t n = 0, nmail = 0;
    int r;

    r = spool_list(ws->dir, &names, SPOOL_ENTRIES_MAX, &n);
    if (r < 0) {
        if (r != -ENOENT) {
            errno = -r;
            log_warn("cannot list the delivery spool %s", ws->dir);
        }
        return;
    }
    if (n)
        mails = malloc(n * sizeof(*mails));
    for (size_t i = 0; i < n && !STOPPING(); i++) {
        const char *sink = spool_sink_of(names[i]);
        if (!strcmp(sink, "sentry"))
            send_sentry(ws, names[i]);
        else if (!strcmp(sink, "email") && mails)
            memcpy(mails[nmail++], names[i], SPOOL_NAME_MAX);
        else if (strcmp(sink, "email") != 0)
            reject(ws, names[i], sink, "unknown sink");
    }
    send_emails(ws, mails, nmail);
    if (ws->email.until_ms && ws->email.until_ms < ws->next_wake_ms)
        ws->next_wake_ms = ws->email.until_ms;
    if (ws->sentry.until_ms && ws->sentry.until_ms < ws->next_wake_ms)
        ws->next_wake_ms = ws->sentry.until_ms;
    free(mails);
    free(names);
}

static void *delivery_main(void *arg)
{
    struct worker_state *ws = arg;

    while (!STOPPING()) {
        struct pollfd p = {.fd = nudge_fd, .events = POLLIN};
        uint64_t now = now_ms(), tick = now + DELIVERY_TICK_MS, wake = ws->next_wake_ms;
        uint64_t v;
        int timeout;

        if (!wake || wake > tick)
            wake = tick;
        timeout = wake > now ? (int)(wake - now) : 0;
        if (poll(&p, 1, timeout) > 0 && read(nudge_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            log_warn("delivery thread: cannot read its nudge");
        if (STOPPING())
            break;
        take_config(ws);
        ws->next_wake_ms = UINT64_MAX;
        scan(ws);
        if (ws->next_wake_ms == UINT64_MAX)
            ws->next_wake_ms = 0;
    }
    return NULL;
}

static struct worker_state *wstate;

/* What delivery_init() made, undone (the thread is not running). */
static void free_state(void)
{
    if (wstate)
        free(wstate->cfg);
    free(wstate);
    wstate = NULL;
    free(shared_cfg);
    shared_cfg = NULL;
    if (nudge_fd >= 0)
        close(nudge_fd);
    nudge_fd = -1;
}

int delivery_init(struct daemon *d)
{
    char dir[PATH_MAX];
    sigset_t all, old;
    int r;

    spool_dir_of(&d->cfg, dir, sizeof(dir));
    r = spool_open(dir);
    if (r < 0) {
        errno = -r;
        log_warn("cannot open the delivery spool %s: e-mail and Sentry reports will fail", dir);
        return r;
    }
    /* Library set-up that is not thread-safe: here, before the thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return -EIO;
    auth_client_init();
    nudge_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (nudge_fd < 0)
        return -errno;
    shared_cfg = malloc(sizeof(*shared_cfg));
    wstate = calloc(1, sizeof(*wstate));
    if (wstate)
        wstate->cfg = malloc(sizeof(*wstate->cfg));
    if (!shared_cfg || !wstate || !wstate->cfg) {
        r = -ENOMEM;
        goto fail;
    }
    memcpy(shared_cfg, &d->cfg, sizeof(d->cfg));
    shared_gen = 1;
    take_config(wstate);
    /* The daemon takes its signals through a signalfd: the thread must
     * not be where one lands. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = -pthread_create(&thread, NULL, delivery_main, wstate);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0)
        goto fail;
    running = true;
    if (spool_entries())
        log_notice("delivery: %llu reports from before are pending in %s",
                   (unsigned long long)spool_entries(), dir);
    return 0;
fail:
    free_state();
    return r;
}

void delivery_reconfigure(struct daemon *d)
{
    char dir[PATH_MAX];
    int r;

    if (!running)
        return;
    spool_dir_of(&d->cfg, dir, sizeof(dir));
    pthread_mutex_lock(&lock);
    if (strcmp(dir, wstate->dir) != 0) {
        r = spool_open(dir);
        if (r < 0) {
            errno = -r;
            log_warn("cannot open the delivery spool %s", dir);
        }
    }
    memcpy(shared_cfg, &d->cfg, sizeof(d->cfg));
    shared_gen++;
    pthread_mutex_unlock(&lock);
    nudge();
}

void delivery_shutdown(void)
{
    struct timespec ts;
    int r;

    if (!running)
        return;
    __atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
    nudge();
    /* A send in progress finishes within its own timeouts; we do not wait
     * that long to exit.  What was not sent stays in the spool and goes
     * after the next start. */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    r = pthread_timedjoin_np(thread, NULL, &ts);
    running = false;
    if (r != 0) {
        log_warnx("delivery thread still busy at exit; its entry stays in the spool");
        return;
    }
    free_state();
    curl_global_cleanup();
}

/* ---- follow-ups (follow.c): the end of a request already reported ------- */

void delivery_enqueue_followup(struct daemon *d, const struct followup_info *fu)
{
    char dir[PATH_MAX], hdr[PATH_MAX + 1024], subject[700], tag[20], name[SPOOL_NAME_MAX];
    char id[PATH_MAX];
    bool added = false;
    int hlen, r;

    if ((!d->cfg.email_to[0] && !d->cfg.sentry.dsn[0]) || !running)
        return;
    spool_dir_of(&d->cfg, dir, sizeof(dir));
    snprintf(subject, sizeof(subject), "[dogslow] follow-up: %s %s %s after %.1f s on %s",
             fu->method, fu->url, fu->how, fu->took_s, d->hostname);
    one_line(subject);
    {
        const char *b = strrchr(fu->report_path, '/');
        dsl_strlcpy(id, b ? b + 1 : fu->report_path, sizeof(id));
        one_line(id);
    }
    if (d->cfg.email_to[0]) {
        /* A tag of its own: a follow-up is never folded into a digest. */
        storm_followup_tag(fu->report_path, tag, sizeof(tag));
        hlen = snprintf(hdr, sizeof(hdr),
                        "sink email\nfingerprint %s\nroute follow-up\nsubject %s\nreport %s\n"
                        "text %zu\njson 0\n",
                        tag, subject, id, fu->text_len);
        r = spool_put(dir, "email", tag, hdr, (size_t)hlen, fu->text, fu->text_len,
                      d->cfg.spool_max_bytes, name, sizeof(name));
        if (r < 0) {
            char what[256] = "";
            dropped("follow-up e-mail", r, what, sizeof(what));
        } else {
            added = true;
        }
    }
    if (d->cfg.sentry.dsn[0]) {
        char *event;
        size_t len;

        if (sentry_followup_render(d, fu, subject + strlen("[dogslow] "), id, SENTRY_EVENT_MAX,
                                   &event, &len) == 0) {
            hlen = snprintf(hdr, sizeof(hdr), "sink sentry\nevent %zu\n", len);
            r = spool_put(dir, "sentry", NULL, hdr, (size_t)hlen, event, len,
                          d->cfg.spool_max_bytes, name, sizeof(name));
            if (r < 0) {
                char what[256] = "";
                dropped("follow-up Sentry", r, what, sizeof(what));
            } else {
                added = true;
            }
            free(event);
        }
    }
    if (added)
        nudge();
}
