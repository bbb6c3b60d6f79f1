/* SPDX-License-Identifier: MIT */
/*
 * The Sentry sink: the event, the DSN, the envelope, the HTTP POST
 * (libcurl) and what the answer means for retrying.  The event is rendered
 * in the daemon's thread (from delivery_enqueue), while the report's frames
 * exist, and waits in the spool; the rest runs in the delivery thread only.
 *
 * Envelope (https://develop.sentry.dev/sdk/envelopes/):
 *   {"event_id":"...","dsn":"...","sent_at":"..."}\n
 *   {"type":"event","length":N}\n
 *   <event JSON, N bytes>\n
 * posted to SCHEME://HOST[:PORT][/PATH]/api/PROJECT/envelope/ with
 * X-Sentry-Auth carrying the public key.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "output.h"
#include "util.h"

#define SENTRY_TIMEOUT_S   15 /* the whole request */
#define SENTRY_CONNECT_S   5
#define SENTRY_RETRY_MAX_S 3600 /* a Retry-After beyond this is capped */
#define SENTRY_HEADER_MAX  1024 /* bytes of a response header we look at */
#define SENTRY_FRAMES_MAX  250  /* as Sentry's SDKs; the middle is dropped */
#define SENTRY_VARS_MAX    50   /* variables per frame */
#define SENTRY_STRING_MAX  1024 /* characters of a string, as Sentry's SDKs */

/* ---- the DSN ------------------------------------------------------------ */

int sentry_parse_dsn(const char *dsn, struct sentry_dsn *ret, char *why, size_t size)
{
    struct sentry_dsn d;
    const char *p, *at, *hostend, *slash, *project;
    size_t schemelen;

    memset(&d, 0, sizeof(d));
    for (p = dsn; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            snprintf(why, size, "the DSN has a space or a non-ASCII character");
            return -EINVAL;
        }
    if (!strncmp(dsn, "https://", 8))
        schemelen = 8;
    else if (!strncmp(dsn, "http://", 7))
        schemelen = 7;
    else {
        snprintf(why, size, "the DSN must start with https:// or http://");
        return -EINVAL;
    }
    p = dsn + schemelen;
    at = strchr(p, '@');
    slash = strchr(p, '/');
    if (!at || (slash && slash < at)) {
        snprintf(why, size, "the DSN has no public key (https://KEY@HOST/PROJECT_ID)");
        return -EINVAL;
    }
    /* KEY or KEY:SECRET (the secret is deprecated and not needed). */
    {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t klen = (size_t)((colon ? colon : at) - p);
        if (klen == 0 || klen >= sizeof(d.key)) {
            snprintf(why, size, "the DSN's public key is empty or too long");
            return -EINVAL;
        }
        for (size_t i = 0; i < klen; i++)
            if (!isalnum((unsigned char)p[i])) {
                snprintf(why, size, "the DSN's public key has a character other than [0-9a-z]");
                return -EINVAL;
            }
        memcpy(d.key, p, klen);
    }
    hostend = strchr(at + 1, '/');
    if (!hostend || hostend == at + 1) {
        snprintf(why, size, "the DSN has no host or no project (https://KEY@HOST/PROJECT_ID)");
        return -EINVAL;
    }
    project = strrchr(dsn, '/') + 1;
    if (!*project) {
        snprintf(why, size, "the DSN ends with '/': the project id is missing");
        return -EINVAL;
    }
    if (strlen(project) >= sizeof(d.project)) {
        snprintf(why, size, "the DSN's project id is too long");
        return -EINVAL;
    }
    for (p = project; *p; p++)
        if (!isdigit((unsigned char)*p)) {
            snprintf(why, size, "the DSN's project id '%s' is not a number", project);
            return -EINVAL;
        }
    memcpy(d.project, project, strlen(project));
    /* SCHEME://HOST[:PORT] + the path before the project, if any. */
    if ((size_t)snprintf(d.envelope_url, sizeof(d.envelope_url), "%.*s%.*s%.*sapi/%s/envelope/",
                         (int)schemelen, dsn, (int)(hostend - at - 1), at + 1,
                         (int)(project - hostend), hostend, d.project) >= sizeof(d.envelope_url)) {
        snprintf(why, size, "the DSN is too long");
        return -EINVAL;
    }
    *ret = d;
    return 0;
}

/* ---- rate limits -------------------------------------------------------- */

unsigned sentry_rate_limit_seconds(const char *h)
{
    unsigned best = 0;
    char group[256];

    /* Groups "RETRY_AFTER:CATEGORIES:SCOPE[:REASON]" separated by commas;
     * CATEGORIES is ';'-separated and empty means all.  Ours are events:
     * categories "error" and "default". */
    while (h && *h) {
        size_t k = 0;
        const char *cats, *end;
        unsigned long secs;
        char *e;
        bool ours = false;

        while (*h == ' ' || *h == ',')
            h++;
        while (*h && *h != ',') {
            if (k < sizeof(group) - 1)
                group[k++] = *h;
            h++;
        }
        group[k] = '\0';
        if (!k)
            continue;
        errno = 0;
        secs = strtoul(group, &e, 10);
        if (errno || e == group || (*e != ':' && *e != '\0'))
            continue;
        if (*e == '\0') {
            ours = true;
        } else {
            cats = e + 1;
            end = strchr(cats, ':');
            if (!end)
                end = cats + strlen(cats);
            if (end == cats)
                ours = true;
            for (const char *c = cats; c < end;) {
                const char *semi = memchr(c, ';', (size_t)(end - c));
                size_t len = (size_t)((semi ? semi : end) - c);
                if ((len == 5 && !strncmp(c, "error", 5)) ||
                    (len == 7 && !strncmp(c, "default", 7)))
                    ours = true;
                c += len + (semi ? 1 : 0);
            }
        }
        if (ours && secs > best)
            best = secs > SENTRY_RETRY_MAX_S ? SENTRY_RETRY_MAX_S : (unsigned)secs;
    }
    return best;
}

/* ---- the Sentry event (daemon thread: the frames exist only now) --------- */

/* A JSON string of at most SENTRY_STRING_MAX characters (bytes, cut at a
 * character boundary, with "..." when cut), as Sentry's SDKs trim. */
static void sentry_str(struct dsl_text *b, const char *s)
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
    json_put_str(b, s);
}

static void sentry_kv(struct dsl_text *b, const char *key, const char *value)
{
    sentry_str(b, key);
    dsl_text_puts(b, ":");
    sentry_str(b, value);
}

static void render_vars(struct dsl_text *b, const struct symframe *f)
{
    unsigned shown = 0;

    dsl_text_puts(b, ",\"vars\":{");
    for (unsigned i = 0; i < f->nvars && shown < SENTRY_VARS_MAX; i++) {
        bool dup = false;
        /* An inlined scope can shadow a name: JSON objects want one key
         * each, and the innermost binding is the one that counts. */
        for (unsigned k = 0; k < i && !dup; k++)
            dup = !strcmp(f->vars[k].name, f->vars[i].name);
        if (dup)
            continue;
        if (shown++)
            dsl_text_puts(b, ",");
        sentry_kv(b, f->vars[i].name, f->vars[i].value ? f->vars[i].value : "");
    }
    dsl_text_puts(b, "}");
}

static void render_frame(struct dsl_text *b, const struct report_info *ri, const struct symframe *f,
                         bool with_vars)
{
    char src[256];

    dsl_text_puts(b, "{");
    sentry_kv(b, "function", f->function[0] ? f->function : "??");
    if (f->file[0]) {
        const char *base = strrchr(f->file, '/');
        dsl_text_puts(b, ",");
        sentry_kv(b, "filename", base ? base + 1 : f->file);
        dsl_text_puts(b, ",");
        sentry_kv(b, "abs_path", f->file);
    }
    if (f->line > 0) {
        dsl_text_printf(b, ",\"lineno\":%d", f->line);
        if (f->file[0] && report_source_line(ri->w, f->file, f->line, src, sizeof(src))) {
            dsl_text_puts(b, ",");
            sentry_kv(b, "context_line", src);
        }
    }
    if (f->module[0]) {
        dsl_text_puts(b, ",");
        sentry_kv(b, "package", f->module);
    }
    if (f->ip)
        dsl_text_printf(b, ",\"instruction_addr\":\"0x%llx\"", (unsigned long long)f->ip);
    dsl_text_printf(b, ",\"in_app\":%s", delivery_in_app(f) ? "true" : "false");
    if (with_vars && f->nvars)
        render_vars(b, f);
    dsl_text_puts(b, "}");
}

/* A Python frame (report_merge put it in place of the interpreter loop). */
static bool py_in_app(const struct py_frame *f)
{
    const char *p = f->filename ? f->filename : "";
    return !strstr(p, "/site-packages/") && !strstr(p, "/dist-packages/") &&
           strncmp(p, "/usr/lib/python", 15) != 0 && p[0] != '<';
}

static void render_py_frame_json(struct dsl_text *b, struct daemon *d, const struct report_info *ri,
                                 const struct py_frame *f, bool with_vars)
{
    char src[256];
    const char *file = f->filename ? f->filename : "??";
    const char *base = strrchr(file, '/');

    dsl_text_puts(b, "{\"platform\":\"python\",");
    sentry_kv(b, "function", f->function ? f->function : "??");
    dsl_text_puts(b, ",");
    sentry_kv(b, "filename", base ? base + 1 : file);
    dsl_text_puts(b, ",");
    sentry_kv(b, "abs_path", file);
    if (f->line > 0) {
        dsl_text_printf(b, ",\"lineno\":%d", f->line);
        if (file[0] == '/' && report_source_line(ri->w, file, f->line, src, sizeof(src))) {
            dsl_text_puts(b, ",");
            sentry_kv(b, "context_line", src);
        }
    }
    dsl_text_printf(b, ",\"in_app\":%s", py_in_app(f) ? "true" : "false");
    if (with_vars && f->nlocals) {
        unsigned shown = 0;
        dsl_text_puts(b, ",\"vars\":{");
        for (unsigned i = 0; i < f->nlocals && shown < SENTRY_VARS_MAX; i++) {
            const char *name = f->locals[i].name ? f->locals[i].name : "?";
            const char *value = f->locals[i].value ? f->locals[i].value : "";
            if (redact_name(&d->cfg, name) || redact_card_number(value))
                value = "[redacted]";
            if (shown++)
                dsl_text_puts(b, ",");
            sentry_kv(b, name, value);
        }
        dsl_text_puts(b, "}");
    }
    dsl_text_puts(b, "}");
}

static int render_event(struct daemon *d, const struct report_info *ri, const char *message,
                        size_t max, bool vars, unsigned keep_frames, struct dsl_text *b)
{
    static struct report_item items[REPORT_ITEMS_MAX];
    unsigned unplaced, nitems = report_merge(ri->snap, ri->frames, ri->nframes, items, &unplaced);
    unsigned char rnd[16];
    char id[33], route[600];
    const char *top[DELIVERY_TOP_FRAMES];
    unsigned ntop, n = nitems;
    double ts = (double)ri->now_real_ns / 1e9;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = dsl_now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    delivery_fingerprint_parts(ri, route, sizeof(route), top, &ntop);

    dsl_text_init_growable(b, max, DSL_TEXT_WHOLE);
    dsl_text_printf(b,
                    "{\"event_id\":\"%s\",\"timestamp\":%.3f,\"platform\":\"native\","
                    "\"level\":\"warning\",\"logger\":\"dogslow\",",
                    id, ts);
    {
        char txn[DSL_STR_MAX * 2 + 8];
        snprintf(txn, sizeof(txn), "%s %s", ri->req->method, ri->req->url);
        sentry_kv(b, "transaction", txn);
    }
    dsl_text_puts(b, ",");
    sentry_kv(b, "server_name", d->hostname);
    dsl_text_puts(b, ",\"message\":{");
    sentry_kv(b, "formatted", message);
    dsl_text_puts(b, "},\"tags\":{");
    sentry_kv(b, "method", ri->req->method);
    dsl_text_puts(b, ",");
    sentry_kv(b, "host", d->hostname);
    dsl_text_printf(b, ",\"pid\":\"%d\",\"tid\":\"%d\",", (int)ri->w->pid, (int)ri->req->tid);
    sentry_kv(b, "program", ri->w->program);
    dsl_text_puts(b, "},\"fingerprint\":[\"dogslow\",");
    sentry_str(b, route);
    for (unsigned i = 0; i < ntop; i++) {
        dsl_text_puts(b, ",");
        sentry_str(b, top[i]);
    }
    dsl_text_printf(b, "],\"extra\":{\"running_s\":%.3f,\"timer_s\":%.3f,",
                    (double)(ri->now_real_ns - ri->start_real_ns) / 1e9,
                    (double)ri->w->timer_ns / 1e9);
    sentry_kv(b, "url", ri->req->url);
    if (ri->snap && ri->snap->err) {
        dsl_text_puts(b, ",");
        sentry_kv(b, "snapshot_note", ri->snap->note);
    }
    dsl_text_printf(b,
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
            dsl_text_puts(b, ",");
    }
    dsl_text_puts(b, "]}}]}}");
    if (b->full) {
        free(b->p);
        b->p = NULL;
        return -EFBIG;
    }
    return 0;
}

int sentry_event_render(struct daemon *d, const struct report_info *ri, const char *message,
                        size_t max, char **ret, size_t *ret_len)
{
    unsigned keep = SENTRY_FRAMES_MAX;
    struct dsl_text b;
    int r;

    /* First everything; then without variables; then fewer frames. */
    r = render_event(d, ri, message, max, true, keep, &b);
    if (r == -EFBIG)
        r = render_event(d, ri, message, max, false, keep, &b);
    while (r == -EFBIG && keep > 1) {
        keep /= 2;
        r = render_event(d, ri, message, max, false, keep, &b);
    }
    if (r < 0)
        return r;
    *ret = b.p;
    *ret_len = b.len;
    return 0;
}

/* ---- the follow-up event (daemon thread) --------------------------------- */

int sentry_followup_render(struct daemon *d, const struct followup_info *fu, const char *message,
                           const char *report, size_t max, char **ret, size_t *ret_len)
{
    struct dsl_text b;
    unsigned char rnd[16];
    char eid[33], txn[DSL_STR_MAX * 2 + 8];

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(eid + 2 * i, 3, "%02x", rnd[i]);
    dsl_text_init_growable(&b, max, DSL_TEXT_WHOLE);
    dsl_text_printf(&b,
                    "{\"event_id\":\"%s\",\"timestamp\":%.3f,\"platform\":\"native\","
                    "\"level\":\"info\",\"logger\":\"dogslow\",",
                    eid, (double)dsl_now_ns(CLOCK_REALTIME) / 1e9);
    snprintf(txn, sizeof(txn), "%s %s", fu->method, fu->url);
    sentry_kv(&b, "transaction", txn);
    dsl_text_puts(&b, ",");
    sentry_kv(&b, "server_name", d->hostname);
    dsl_text_puts(&b, ",\"message\":{");
    sentry_kv(&b, "formatted", message);
    dsl_text_puts(&b, "},\"tags\":{");
    sentry_kv(&b, "method", fu->method);
    dsl_text_printf(&b, ",\"pid\":\"%d\",\"tid\":\"%d\",\"followup\":\"yes\"},", (int)fu->pid,
                    (int)fu->tid);
    dsl_text_puts(&b, "\"fingerprint\":[\"dogslow-follow-up\",");
    sentry_str(&b, txn);
    dsl_text_printf(&b, "],\"extra\":{\"duration_s\":%.3f,\"samples\":%u,\"pause_ms\":%.1f,",
                    fu->took_s, fu->samples, fu->pause_ms);
    sentry_kv(&b, "report", report);
    dsl_text_puts(&b, ",");
    sentry_kv(&b, "follow_up", fu->text);
    dsl_text_puts(&b, "}}");
    if (b.full || !b.p) {
        free(b.p);
        return b.full ? -EFBIG : -ENOMEM;
    }
    *ret = b.p;
    *ret_len = b.len;
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

struct answer {
    char retry_after[64];
    char rate_limits[SENTRY_HEADER_MAX];
    char body[512];
    size_t body_len;
};

static size_t on_header(char *buf, size_t sz, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = sz * n;

    static const char ra[] = "retry-after:", rl[] = "x-sentry-rate-limits:";
    char *dst = NULL;
    size_t dsize = 0, skip = 0;

    if (len > sizeof(ra) - 1 && !strncasecmp(buf, ra, sizeof(ra) - 1))
        dst = a->retry_after, dsize = sizeof(a->retry_after), skip = sizeof(ra) - 1;
    else if (len > sizeof(rl) - 1 && !strncasecmp(buf, rl, sizeof(rl) - 1))
        dst = a->rate_limits, dsize = sizeof(a->rate_limits), skip = sizeof(rl) - 1;
    if (dst) {
        size_t k = 0;
        for (size_t i = skip; i < len && k < dsize - 1; i++)
            if (buf[i] != '\r' && buf[i] != '\n' && !(k == 0 && buf[i] == ' '))
                dst[k++] = buf[i];
        dst[k] = '\0';
    }
    return len;
}

static size_t on_body(char *buf, size_t sz, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = sz * n, room = sizeof(a->body) - 1 - a->body_len;

    /* Only the start of the answer is kept, for the log: the rest is
     * read and dropped, so a chatty server costs no memory. */
    if (room) {
        size_t k = len < room ? len : room;
        memcpy(a->body + a->body_len, buf, k);
        a->body_len += k;
        a->body[a->body_len] = '\0';
    }
    return len;
}

static unsigned parse_retry_after(const char *v)
{
    unsigned long s;
    char *e;

    if (!v[0])
        return 0;
    errno = 0;
    s = strtoul(v, &e, 10);
    if (errno || e == v)
        return 60; /* an HTTP date, or garbage: a minute, as Sentry's SDKs do */
    return s > SENTRY_RETRY_MAX_S ? SENTRY_RETRY_MAX_S : (unsigned)s;
}

int sentry_send(const struct config *c, const char *event, size_t len, unsigned *ret_retry_s,
                char *why, size_t size)
{
    struct sentry_dsn dsn;
    struct answer a;
    struct curl_slist *hdrs = NULL;
    char auth[300], head[600], event_id[40] = "", *env = NULL;
    const char *id;
    size_t hlen, elen;
    long status = 0;
    CURLcode cr;
    CURL *h;
    int r;

    *ret_retry_s = 0;
    r = sentry_parse_dsn(c->sentry.dsn, &dsn, why, size);
    if (r < 0)
        return -EAGAIN; /* the operator fixes the DSN; the events wait */
    id = strstr(event, "\"event_id\":\"");
    if (id && strlen(id + 12) > 32)
        snprintf(event_id, sizeof(event_id), "%.32s", id + 12);
    hlen = (size_t)snprintf(head, sizeof(head),
                            "{\"event_id\":\"%s\"}\n{\"type\":\"event\",\"length\":%zu}\n",
                            event_id, len);
    elen = hlen + len + 1;
    env = malloc(elen);
    if (!env)
        return -EAGAIN;
    memcpy(env, head, hlen);
    memcpy(env + hlen, event, len);
    env[elen - 1] = '\n';

    h = curl_easy_init();
    if (!h) {
        free(env);
        snprintf(why, size, "libcurl: cannot make a handle");
        return -EAGAIN;
    }
    memset(&a, 0, sizeof(a));
    snprintf(auth, sizeof(auth),
             "X-Sentry-Auth: Sentry sentry_version=7, sentry_client=dogslowd/%s, sentry_key=%s",
             PACKAGE_VERSION, dsn.key);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/x-sentry-envelope");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, dsn.envelope_url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, env);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)elen);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)SENTRY_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)SENTRY_CONNECT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we are a thread: no SIGALRM */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "dogslowd/" PACKAGE_VERSION);
    cr = curl_easy_perform(h);
    if (cr == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(env);

    if (cr != CURLE_OK) {
        snprintf(why, size, "%s: %s", dsn.envelope_url, curl_easy_strerror(cr));
        return -EAGAIN;
    }
    /* Rate limits apply whatever the status (Sentry sends them with 200
     * too); X-Sentry-Rate-Limits wins over Retry-After. */
    if (a.rate_limits[0])
        *ret_retry_s = sentry_rate_limit_seconds(a.rate_limits);
    if (status == 429 && !*ret_retry_s)
        *ret_retry_s = a.retry_after[0] ? parse_retry_after(a.retry_after) : 60;
    for (size_t i = 0; i < a.body_len; i++)
        if ((unsigned char)a.body[i] < 0x20 || (unsigned char)a.body[i] > 0x7e)
            a.body[i] = ' ';
    if (status >= 200 && status < 300) {
        snprintf(why, size, "accepted by %s (HTTP %ld)", dsn.envelope_url, status);
        return 0;
    }
    snprintf(why, size, "%s answered HTTP %ld%s%.160s", dsn.envelope_url, status,
             a.body_len ? ": " : "", a.body);
    if (status == 429 || status >= 500 || status == 408)
        return -EAGAIN;
    /* 400, 413...: this event will never be taken; keep it aside. */
    return -EPERM;
}
