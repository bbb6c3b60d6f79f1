/* SPDX-License-Identifier: MIT */
/*
 * Delivery: the daemon's side (render and spool, in its own thread, from
 * outputs_undead) and the delivery thread (send from the spool).  See
 * delivery.h for the contract and docs/architecture.md, "Delivery".
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
 * Storm control (e-mail only; Sentry groups by itself): entries carry a
 * fingerprint in their name (method, route, top in-app frames).  The first
 * entry of a fingerprint is mailed whole; the ones that follow within
 * [email] window stay in the spool, and when the window ends they go out
 * as one digest (a line each) -- which opens the next window.  So a
 * database outage that hangs 200 workers makes one mail and one digest
 * per window, and no report is lost or counted twice.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <auth-client.h>
#include <curl/curl.h>

#include "output.h"
#include "util.h"

#define DELIVERY_BACKOFF_MIN_MS 500
#define DELIVERY_BACKOFF_MAX_MS 60000
#define DELIVERY_TICK_MS        1000 /* the spool is rescanned at least this often */
#define DIGEST_MAX_ENTRIES      500  /* reports listed in one digest; more: the next one */
#define FP_STATES_MAX           1024 /* fingerprints remembered for storm control */
#define SENTRY_EVENT_MAX        (1000u * 1000u) /* Sentry refuses events over 1 MB */
#define SENTRY_FRAMES_MAX       250             /* as Sentry's SDKs; the middle is dropped */
#define SENTRY_VARS_MAX         50              /* variables per frame */
#define SENTRY_STRING_MAX       1024            /* characters of a string, as Sentry's SDKs */
#define TOP_FRAMES              3               /* in-app frames in a fingerprint */

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

static bool is_system_module(const char *m)
{
    static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "["};

    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (!strncmp(m, dirs[i], strlen(dirs[i])))
            return true;
    return false;
}

/* A frame is the application's own when it is not in a system library.
 * (Python frames carry their .py file as module, or none.) */
static bool in_app(const struct symframe *f)
{
    return !is_system_module(f->module) && !is_system_module(f->file);
}

/* "GET /orders/{id}" and the innermost in-app function names. */
static void fingerprint_parts(const struct report_info *ri, char *route, size_t rsize,
                              const char *top[TOP_FRAMES], unsigned *ntop)
{
    char path[512];

    delivery_route(ri->req->url, path, sizeof(path));
    snprintf(route, rsize, "%s %s", ri->req->method, path);
    *ntop = 0;
    for (unsigned i = 0; i < ri->nframes && *ntop < TOP_FRAMES; i++)
        if (ri->frames[i].function[0] && in_app(&ri->frames[i]))
            top[(*ntop)++] = ri->frames[i].function;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h ^= 0xff; /* a separator, so ("ab","c") differs from ("a","bc") */
    h *= 0x100000001b3ull;
    return h;
}

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
    const char *top[TOP_FRAMES];
    unsigned ntop;
    uint64_t h = 0xcbf29ce484222325ull;
    char *text = NULL, *json = NULL, *body;
    size_t tlen = 0, jlen = 0;
    int hlen, r;

    fingerprint_parts(ri, route, sizeof(route), top, &ntop);
    h = fnv1a(h, route);
    for (unsigned i = 0; i < ntop; i++)
        h = fnv1a(h, top[i]);
    snprintf(tag, sizeof(tag), "%016llx", (unsigned long long)h);
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
    char hdr[128], name[SPOOL_NAME_MAX];
    char *event;
    size_t len;
    int hlen, r;

    r = sentry_event_render(d, ri, SENTRY_EVENT_MAX, &event, &len);
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

/* ---- the Sentry event (daemon thread: the frames exist only now) --------- */

/* A JSON string of at most SENTRY_STRING_MAX characters (bytes, cut at a
 * character boundary, with "..." when cut), as Sentry's SDKs trim. */
static void sentry_str(struct jbuf *b, const char *s)
{
    char cut[SENTRY_STRING_MAX + 4];
    size_t n = strlen(s);

    if (n > SENTRY_STRING_MAX) {
        size_t k = SENTRY_STRING_MAX - 3;
        while (k && ((unsigned char)s[k] & 0xc0) == 0x80)
            k--;
        memcpy(cut, s, k);
        memcpy(cut + k, "...", 4);
        s = cut;
    }
    jb_str(b, s);
}

static void sentry_kv(struct jbuf *b, const char *key, const char *value)
{
    sentry_str(b, key);
    jb_raw(b, ":");
    sentry_str(b, value);
}

static void render_vars(struct jbuf *b, const struct symframe *f)
{
    unsigned shown = 0;

    jb_raw(b, ",\"vars\":{");
    for (unsigned i = 0; i < f->nvars && shown < SENTRY_VARS_MAX; i++) {
        bool dup = false;
        /* An inlined scope can shadow a name: JSON objects want one key
         * each, and the innermost binding is the one that counts. */
        for (unsigned k = 0; k < i && !dup; k++)
            dup = !strcmp(f->vars[k].name, f->vars[i].name);
        if (dup)
            continue;
        if (shown++)
            jb_raw(b, ",");
        sentry_kv(b, f->vars[i].name, f->vars[i].value ? f->vars[i].value : "");
    }
    jb_raw(b, "}");
}

static void render_frame(struct jbuf *b, const struct report_info *ri, const struct symframe *f,
                         bool with_vars)
{
    char src[256];

    jb_raw(b, "{");
    sentry_kv(b, "function", f->function[0] ? f->function : "??");
    if (f->file[0]) {
        const char *base = strrchr(f->file, '/');
        jb_raw(b, ",");
        sentry_kv(b, "filename", base ? base + 1 : f->file);
        jb_raw(b, ",");
        sentry_kv(b, "abs_path", f->file);
    }
    if (f->line > 0) {
        jb_printf(b, ",\"lineno\":%d", f->line);
        if (f->file[0] && report_source_line(ri->w, f->file, f->line, src, sizeof(src))) {
            jb_raw(b, ",");
            sentry_kv(b, "context_line", src);
        }
    }
    if (f->module[0]) {
        jb_raw(b, ",");
        sentry_kv(b, "package", f->module);
    }
    if (f->ip)
        jb_printf(b, ",\"instruction_addr\":\"0x%llx\"", (unsigned long long)f->ip);
    jb_printf(b, ",\"in_app\":%s", in_app(f) ? "true" : "false");
    if (with_vars && f->nvars)
        render_vars(b, f);
    jb_raw(b, "}");
}

/* A Python frame (report_merge put it in place of the interpreter loop). */
static bool py_in_app(const struct py_frame *f)
{
    const char *p = f->filename ? f->filename : "";
    return !strstr(p, "/site-packages/") && !strstr(p, "/dist-packages/") &&
           strncmp(p, "/usr/lib/python", 15) != 0 && p[0] != '<';
}

static void render_py_frame_json(struct jbuf *b, struct daemon *d, const struct report_info *ri,
                                 const struct py_frame *f, bool with_vars)
{
    char src[256];
    const char *file = f->filename ? f->filename : "??";
    const char *base = strrchr(file, '/');

    jb_raw(b, "{\"platform\":\"python\",");
    sentry_kv(b, "function", f->function ? f->function : "??");
    jb_raw(b, ",");
    sentry_kv(b, "filename", base ? base + 1 : file);
    jb_raw(b, ",");
    sentry_kv(b, "abs_path", file);
    if (f->line > 0) {
        jb_printf(b, ",\"lineno\":%d", f->line);
        if (file[0] == '/' && report_source_line(ri->w, file, f->line, src, sizeof(src))) {
            jb_raw(b, ",");
            sentry_kv(b, "context_line", src);
        }
    }
    jb_printf(b, ",\"in_app\":%s", py_in_app(f) ? "true" : "false");
    if (with_vars && f->nlocals) {
        unsigned shown = 0;
        jb_raw(b, ",\"vars\":{");
        for (unsigned i = 0; i < f->nlocals && shown < SENTRY_VARS_MAX; i++) {
            const char *name = f->locals[i].name ? f->locals[i].name : "?";
            const char *value = f->locals[i].value ? f->locals[i].value : "";
            if (redact_name(&d->cfg, name) || redact_card_number(value))
                value = "[redacted]";
            if (shown++)
                jb_raw(b, ",");
            sentry_kv(b, name, value);
        }
        jb_raw(b, "}");
    }
    jb_raw(b, "}");
}

static int render_event(struct daemon *d, const struct report_info *ri, size_t max, bool vars,
                        unsigned keep_frames, struct jbuf *b)
{
    static struct report_item items[REPORT_ITEMS_MAX];
    unsigned unplaced, nitems = report_merge(ri->snap, ri->frames, ri->nframes, items, &unplaced);
    unsigned char rnd[16];
    char id[33], route[600], msg[700];
    const char *top[TOP_FRAMES];
    unsigned ntop, n = nitems;
    double ts = (double)ri->now_real_ns / 1e9;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = dsl_now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    fingerprint_parts(ri, route, sizeof(route), top, &ntop);
    subject_of(d, ri, msg, sizeof(msg));

    memset(b, 0, sizeof(*b));
    b->max = max;
    jb_printf(b,
              "{\"event_id\":\"%s\",\"timestamp\":%.3f,\"platform\":\"native\","
              "\"level\":\"warning\",\"logger\":\"dogslow\",",
              id, ts);
    {
        char txn[DSL_STR_MAX * 2 + 8];
        snprintf(txn, sizeof(txn), "%s %s", ri->req->method, ri->req->url);
        sentry_kv(b, "transaction", txn);
    }
    jb_raw(b, ",");
    sentry_kv(b, "server_name", d->hostname);
    jb_raw(b, ",\"message\":{");
    sentry_kv(b, "formatted", msg + strlen("[dogslow] "));
    jb_raw(b, "},\"tags\":{");
    sentry_kv(b, "method", ri->req->method);
    jb_raw(b, ",");
    sentry_kv(b, "host", d->hostname);
    jb_printf(b, ",\"pid\":\"%d\",\"tid\":\"%d\",", (int)ri->w->pid, (int)ri->req->tid);
    sentry_kv(b, "program", ri->w->program);
    jb_raw(b, "},\"fingerprint\":[\"dogslow\",");
    sentry_str(b, route);
    for (unsigned i = 0; i < ntop; i++) {
        jb_raw(b, ",");
        sentry_str(b, top[i]);
    }
    jb_printf(b, "],\"extra\":{\"running_s\":%.3f,\"timer_s\":%.3f,",
              (double)(ri->now_real_ns - ri->start_real_ns) / 1e9, (double)ri->w->timer_ns / 1e9);
    sentry_kv(b, "url", ri->req->url);
    if (ri->snap && ri->snap->err) {
        jb_raw(b, ",");
        sentry_kv(b, "snapshot_note", ri->snap->note);
    }
    jb_printf(b,
              "},\"threads\":{\"values\":[{\"id\":%d,\"current\":true,\"crashed\":false,"
              "\"stacktrace\":{\"frames\":[",
              (int)ri->req->tid);
    /* Oldest (outermost) first, as Sentry wants.  Past keep_frames the
     * outermost frames go: where the request is stuck is what counts. */
    for (int i = (int)(n > keep_frames ? keep_frames : n) - 1; i >= 0; i--) {
        if (items[i].py)
            render_py_frame_json(b, d, ri, items[i].py, vars);
        else
            render_frame(b, ri, items[i].native, vars);
        if (i)
            jb_raw(b, ",");
    }
    jb_raw(b, "]}}]}}");
    if (b->full) {
        free(b->p);
        b->p = NULL;
        return -EFBIG;
    }
    return 0;
}

int sentry_event_render(struct daemon *d, const struct report_info *ri, size_t max, char **ret,
                        size_t *ret_len)
{
    unsigned keep = SENTRY_FRAMES_MAX;
    struct jbuf b;
    int r;

    /* First everything; then without variables; then fewer frames. */
    r = render_event(d, ri, max, true, keep, &b);
    if (r == -EFBIG)
        r = render_event(d, ri, max, false, keep, &b);
    while (r == -EFBIG && keep > 1) {
        keep /= 2;
        r = render_event(d, ri, max, false, keep, &b);
    }
    if (r < 0)
        return r;
    *ret = b.p;
    *ret_len = b.len;
    return 0;
}

/* ---- the delivery thread ------------------------------------------------ */

struct sink_hold {
    unsigned fails;
    uint64_t until_ms; /* CLOCK_MONOTONIC; 0: not held */
};

struct fp_state {
    uint64_t fp;
    uint64_t window_end_ms; /* a mail (or digest) for fp went out; the next waits till then */
    uint64_t last_mail_real_s;
    bool seen; /* entries of fp were in the spool at this scan */
};

struct worker_state {
    struct config *cfg; /* the thread's own copy */
    uint64_t gen;
    char dir[PATH_MAX];
    struct sink_hold email, sentry;
    struct fp_state fps[FP_STATES_MAX];
    unsigned nfps;
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

static struct fp_state *fp_find(struct worker_state *ws, uint64_t fp, bool create)
{
    unsigned oldest = 0;

    for (unsigned i = 0; i < ws->nfps; i++) {
        if (ws->fps[i].fp == fp)
            return &ws->fps[i];
        if (ws->fps[i].window_end_ms < ws->fps[oldest].window_end_ms)
            oldest = i;
    }
    if (!create)
        return NULL;
    if (ws->nfps < FP_STATES_MAX)
        oldest = ws->nfps++;
    /* Full: the fingerprint whose window ended first is forgotten (its
     * next report is mailed whole: more mail, never less). */
    memset(&ws->fps[oldest], 0, sizeof(ws->fps[oldest]));
    ws->fps[oldest].fp = fp;
    return &ws->fps[oldest];
}

static uint64_t fp_of(const char *name)
{
    char tag[32];

    spool_tag_of(name, tag, sizeof(tag));
    return strtoull(tag, NULL, 16);
}

static void from_address(const struct config *c, char *out, size_t size)
{
    char host[256];

    if (c->email_from[0]) {
        dsl_strlcpy(out, c->email_from, size);
        return;
    }
    if (gethostname(host, sizeof(host) - 1) < 0)
        dsl_strlcpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "dogslow@%s", host);
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
    from_address(ws->cfg, from, sizeof(from));
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

/* One mail for entries names[0..n) of one fingerprint: a line each. */
static int mail_digest(struct worker_state *ws, char (*names)[SPOOL_NAME_MAX], size_t n,
                       const struct fp_state *st)
{
    char subject[800], id[PATH_MAX], route[700], from[300], why[512], line[1200], when[64];
    struct email_msg m;
    char *text = NULL, *msg = NULL;
    size_t tlen = 0, tcap = 0, mlen, listed = 0;
    time_t last = (time_t)st->last_mail_real_s;
    struct tm tm;
    int r;

    route[0] = '\0';
    gmtime_r(&last, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    for (size_t i = 0; i < n; i++) {
        char *buf;
        size_t len, body;
        int k;

        if (spool_read(ws->dir, names[i], &buf, &len, &body) < 0)
            continue;
        spool_header(buf, body, "subject", subject, sizeof(subject));
        spool_header(buf, body, "report", id, sizeof(id));
        if (!route[0])
            spool_header(buf, body, "route", route, sizeof(route));
        free(buf);
        k = snprintf(line, sizeof(line), "%s\n  report: %s\n", subject, id);
        if (k < 0)
            continue;
        if (tlen + (size_t)k + 1 > tcap) {
            size_t ncap = tcap ? tcap * 2 : 16384;
            char *p;
            while (ncap < tlen + (size_t)k + 1)
                ncap *= 2;
            p = realloc(text, ncap);
            if (!p)
                break;
            text = p;
            tcap = ncap;
        }
        memcpy(text + tlen, line, (size_t)k + 1);
        tlen += (size_t)k;
        listed++;
    }
    if (!listed) {
        free(text);
        return -ENOENT;
    }
    {
        char head[1200];
        int k = snprintf(head, sizeof(head),
                         "%zu more undead request(s) like %s since the mail of %s.\n"
                         "Mails for one kind of stuck request are grouped: one mail, then a "
                         "digest per [email] window.\n\n",
                         listed, route, when);
        char *p = malloc(tlen + (size_t)k + 1);
        if (!p) {
            free(text);
            return -ENOMEM;
        }
        memcpy(p, head, (size_t)k);
        memcpy(p + k, text, tlen + 1);
        free(text);
        text = p;
        tlen += (size_t)k;
    }
    snprintf(subject, sizeof(subject), "[dogslow] digest: %zu more undead request(s) like %s",
             listed, route);
    from_address(ws->cfg, from, sizeof(from));
    m = (struct email_msg){
        .from = from,
        .to = ws->cfg->email_to,
        .subject = subject,
        .id = "digest",
        .text = text,
        .text_len = tlen,
        .date_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC,
    };
    r = email_build(&m, &msg, &mlen);
    free(text);
    if (r < 0)
        return r;
    r = email_send(ws->cfg, msg, why, sizeof(why));
    free(msg);
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

static int cmp_by_fp(const void *a, const void *b)
{
    uint64_t x = fp_of(a), y = fp_of(b);

    if (x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

static void send_emails(struct worker_state *ws, char (*names)[SPOOL_NAME_MAX], size_t n)
{
    uint64_t now = now_ms(), window = ws->cfg->email.window_ms;

    if (!n || !ws->cfg->email_to[0] || ws->email.until_ms > now)
        return;
    if (!window) {
        for (size_t i = 0; i < n && !STOPPING(); i++)
            if (mail_one(ws, names[i]) < 0 && ws->email.until_ms > now_ms())
                return;
        return;
    }
    /* Group by fingerprint (oldest first within each). */
    qsort(names, n, sizeof(*names), cmp_by_fp);
    for (unsigned i = 0; i < ws->nfps; i++)
        ws->fps[i].seen = false;
    for (size_t i = 0; i < n && !STOPPING();) {
        uint64_t fp = fp_of(names[i]);
        size_t j = i, k;
        struct fp_state *st;

        while (j < n && fp_of(names[j]) == fp)
            j++;
        st = fp_find(ws, fp, false);
        if (st)
            st->seen = true;
        now = now_ms();
        if (st && st->window_end_ms > now) {
            /* Within the window: these wait for the digest. */
            if (st->window_end_ms < ws->next_wake_ms)
                ws->next_wake_ms = st->window_end_ms;
        } else if (st) {
            k = j - i > DIGEST_MAX_ENTRIES ? DIGEST_MAX_ENTRIES : j - i;
            if (mail_digest(ws, names + i, k, st) == 0) {
                st->window_end_ms = now_ms() + window;
                st->last_mail_real_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC;
            } else if (ws->email.until_ms > now_ms()) {
                return;
            }
        } else {
            int r = mail_one(ws, names[i]);
            if (r == 0) {
                st = fp_find(ws, fp, true);
                st->window_end_ms = now_ms() + window;
                st->last_mail_real_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC;
                st->seen = true;
                if (j - i > 1 && st->window_end_ms < ws->next_wake_ms)
                    ws->next_wake_ms = st->window_end_ms;
            } else if (ws->email.until_ms > now_ms()) {
                return;
            }
        }
        i = j;
    }
    /* A fingerprint whose window ended with nothing waiting is forgotten:
     * its next report is news again and is mailed whole. */
    now = now_ms();
    for (unsigned i = 0; i < ws->nfps;) {
        if (!ws->fps[i].seen && ws->fps[i].window_end_ms <= now)
            ws->fps[i] = ws->fps[--ws->nfps];
        else
            i++;
    }
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
        snprintf(tag, sizeof(tag), "f%015llx",
                 (unsigned long long)(fnv1a(0xcbf29ce484222325ull, fu->report_path) >> 4));
        hlen = snprintf(hdr, sizeof(hdr),
                        "sink email\nfingerprint %s\nroute follow-up\nsubject %s\nreport %s\n"
                        "text %zu\njson 0\n",
                        tag, subject, id, fu->text_len);
        r = spool_put(dir, "email", tag, hdr, (size_t)hlen, fu->text, fu->text_len,
                      d->cfg.spool_max_bytes, name, sizeof(name));
        if (r < 0) {
            char what[256];
            dropped("follow-up e-mail", r, what, sizeof(what));
        } else {
            added = true;
        }
    }
    if (d->cfg.sentry.dsn[0]) {
        struct jbuf b;
        unsigned char rnd[16];
        char eid[33], txn[DSL_STR_MAX * 2 + 8];

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            memset(rnd, 0x5a, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(eid + 2 * i, 3, "%02x", rnd[i]);
        memset(&b, 0, sizeof(b));
        b.max = SENTRY_EVENT_MAX;
        jb_printf(&b,
                  "{\"event_id\":\"%s\",\"timestamp\":%.3f,\"platform\":\"native\","
                  "\"level\":\"info\",\"logger\":\"dogslow\",",
                  eid, (double)dsl_now_ns(CLOCK_REALTIME) / 1e9);
        snprintf(txn, sizeof(txn), "%s %s", fu->method, fu->url);
        sentry_kv(&b, "transaction", txn);
        jb_raw(&b, ",");
        sentry_kv(&b, "server_name", d->hostname);
        jb_raw(&b, ",\"message\":{");
        sentry_kv(&b, "formatted", subject + strlen("[dogslow] "));
        jb_raw(&b, "},\"tags\":{");
        sentry_kv(&b, "method", fu->method);
        jb_printf(&b, ",\"pid\":\"%d\",\"tid\":\"%d\",\"followup\":\"yes\"},", (int)fu->pid,
                  (int)fu->tid);
        jb_raw(&b, "\"fingerprint\":[\"dogslow-follow-up\",");
        sentry_str(&b, txn);
        jb_printf(&b, "],\"extra\":{\"duration_s\":%.3f,\"samples\":%u,\"pause_ms\":%.1f,",
                  fu->took_s, fu->samples, fu->pause_ms);
        sentry_kv(&b, "report", id);
        jb_raw(&b, ",");
        sentry_kv(&b, "follow_up", fu->text);
        jb_raw(&b, "}}");
        if (!b.full && b.p) {
            hlen = snprintf(hdr, sizeof(hdr), "sink sentry\nevent %zu\n", b.len);
            r = spool_put(dir, "sentry", NULL, hdr, (size_t)hlen, b.p, b.len,
                          d->cfg.spool_max_bytes, name, sizeof(name));
            if (r < 0) {
                char what[256];
                dropped("follow-up Sentry", r, what, sizeof(what));
            } else {
                added = true;
            }
        }
        free(b.p);
    }
    if (added)
        nudge();
}
