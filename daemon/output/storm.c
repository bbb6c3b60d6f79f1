/* SPDX-License-Identifier: MIT */
/*
 * Fingerprints, and storm control for e-mail.  See output.h and
 * docs/architecture.md, "Delivery".
 *
 * A fingerprint is what kind of stuck request a report is: its method and
 * route (the URL's path, ids as {id}) and its innermost in-app functions.
 * An e-mail spool entry carries a hash of it in its name; the Sentry event
 * carries the pieces themselves (sink_sentry.c), so that a Sentry issue and
 * a digest agree on what "the same request" is.
 *
 * Storm control (e-mail only; Sentry groups by itself): the first entry of
 * a fingerprint is mailed whole; the ones that follow within [email]
 * window stay in the spool, and when the window ends they go out as one
 * digest (a line each) -- which opens the next window.  So a database
 * outage that hangs 200 workers makes one mail and one digest per window,
 * and no report is lost or counted twice.
 *
 * This file decides what goes out as what, and builds the digest; the
 * sending, and what a failure means for retrying, stay the delivery
 * thread's (delivery.c, through struct storm_ops).  It runs in the
 * delivery thread, but for the fingerprints, which the daemon's thread
 * computes when it spools a report.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "util.h"

#define DIGEST_MAX_ENTRIES 500 /* reports listed in one digest; more: the next one */

/* ---- fingerprints (the daemon's thread) --------------------------------- */

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
bool delivery_in_app(const struct symframe *f)
{
    return !is_system_module(f->module) && !is_system_module(f->file);
}

static bool looks_like_id(const char *s, size_t n)
{
    size_t digits = 0, hex = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            digits++;
        if (isxdigit((unsigned char)s[i]) || s[i] == '-')
            hex++;
    }
    /* All digits; or a long hex string / UUID with at least one digit. */
    return digits == n || (hex == n && n >= 16 && digits > 0);
}

void delivery_route(const char *url, char *out, size_t size)
{
    size_t o = 0;
    const char *p = url;

    if (!size)
        return;
    while (*p && *p != '?' && *p != '#') {
        const char *seg = p;
        size_t n;

        if (*p == '/') {
            if (o + 1 < size)
                out[o++] = '/';
            p++;
            continue;
        }
        while (*p && *p != '/' && *p != '?' && *p != '#')
            p++;
        n = (size_t)(p - seg);
        if (looks_like_id(seg, n)) {
            seg = "{id}";
            n = 4;
        }
        for (size_t i = 0; i < n && o + 1 < size; i++)
            out[o++] = seg[i];
    }
    out[o] = '\0';
}

/* "GET /orders/{id}" and the innermost in-app function names. */
void delivery_fingerprint_parts(const struct report_info *ri, char *route, size_t rsize,
                                const char *top[DELIVERY_TOP_FRAMES], unsigned *ntop)
{
    char path[512];

    delivery_route(ri->req->url, path, sizeof(path));
    snprintf(route, rsize, "%s %s", ri->req->method, path);
    *ntop = 0;
    for (unsigned i = 0; i < ri->nframes && *ntop < DELIVERY_TOP_FRAMES; i++)
        if (ri->frames[i].function[0] && delivery_in_app(&ri->frames[i]))
            top[(*ntop)++] = ri->frames[i].function;
}

#define FNV1A_BASIS 0xcbf29ce484222325ull

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

void storm_fingerprint(const struct report_info *ri, char *route, size_t rsize, char *tag,
                       size_t tsize)
{
    const char *top[DELIVERY_TOP_FRAMES];
    unsigned ntop;
    uint64_t h = FNV1A_BASIS;

    delivery_fingerprint_parts(ri, route, rsize, top, &ntop);
    h = fnv1a(h, route);
    for (unsigned i = 0; i < ntop; i++)
        h = fnv1a(h, top[i]);
    snprintf(tag, tsize, "%016llx", (unsigned long long)h);
}

void storm_followup_tag(const char *report_path, char *tag, size_t size)
{
    snprintf(tag, size, "f%015llx", (unsigned long long)(fnv1a(FNV1A_BASIS, report_path) >> 4));
}

/* ---- the windows (the delivery thread) ---------------------------------- */

static uint64_t now_ms(void)
{
    return dsl_now_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC;
}

static struct storm_fp *fp_find(struct storm *s, uint64_t fp, bool create)
{
    unsigned oldest = 0;

    for (unsigned i = 0; i < s->nfps; i++) {
        if (s->fps[i].fp == fp)
            return &s->fps[i];
        if (s->fps[i].window_end_ms < s->fps[oldest].window_end_ms)
            oldest = i;
    }
    if (!create)
        return NULL;
    if (s->nfps < STORM_FPS_MAX)
        oldest = s->nfps++;
    /* Full: the fingerprint whose window ended first is forgotten (its
     * next report is mailed whole: more mail, never less). */
    memset(&s->fps[oldest], 0, sizeof(s->fps[oldest]));
    s->fps[oldest].fp = fp;
    return &s->fps[oldest];
}

static uint64_t fp_of(const char *name)
{
    char tag[32];

    spool_tag_of(name, tag, sizeof(tag));
    return strtoull(tag, NULL, 16);
}

static int cmp_by_fp(const void *a, const void *b)
{
    uint64_t x = fp_of(a), y = fp_of(b);

    if (x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

/* ---- the digest --------------------------------------------------------- */

/* The mail for entries names[0..n) of one fingerprint, a line each
 * (malloc'd, in *ret_msg); how many it lists in *ret_listed. */
static int build_digest(const struct config *cfg, const char *dir, char (*names)[SPOOL_NAME_MAX],
                        size_t n, const struct storm_fp *st, char **ret_msg, size_t *ret_listed)
{
    char subject[800], id[PATH_MAX], route[700], from[300], line[1200], when[64];
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

        if (spool_read(dir, names[i], &buf, &len, &body) < 0)
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
    email_from_address(cfg, from, sizeof(from));
    m = (struct email_msg){
        .from = from,
        .to = cfg->email_to,
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
    *ret_msg = msg;
    *ret_listed = listed;
    return 0;
}

/* One digest for entries names[0..n) of one fingerprint: built here, sent
 * by the delivery thread.  0: sent (entries removed). */
static int mail_digest(const struct config *cfg, const char *dir, char (*names)[SPOOL_NAME_MAX],
                       size_t n, const struct storm_fp *st, const struct storm_ops *ops)
{
    char *msg = NULL;
    size_t listed = 0;
    int r;

    r = build_digest(cfg, dir, names, n, st, &msg, &listed);
    if (r < 0)
        return r;
    r = ops->send_digest(ops->arg, names, n, msg, listed);
    free(msg);
    return r;
}

/* ---- what goes out as what (the delivery thread) ------------------------ */

void storm_send(struct storm *s, const struct config *cfg, const char *dir,
                char (*names)[SPOOL_NAME_MAX], size_t n, const struct storm_ops *ops,
                uint64_t *next_wake_ms)
{
    uint64_t now, window = cfg->email.window_ms;

    if (!window) {
        for (size_t i = 0; i < n && !ops->stopping(ops->arg); i++)
            if (ops->mail_one(ops->arg, names[i]) < 0 && ops->held(ops->arg))
                return;
        return;
    }
    /* Group by fingerprint (oldest first within each). */
    qsort(names, n, sizeof(*names), cmp_by_fp);
    for (unsigned i = 0; i < s->nfps; i++)
        s->fps[i].seen = false;
    for (size_t i = 0; i < n && !ops->stopping(ops->arg);) {
        uint64_t fp = fp_of(names[i]);
        size_t j = i, k;
        struct storm_fp *st;

        while (j < n && fp_of(names[j]) == fp)
            j++;
        st = fp_find(s, fp, false);
        if (st)
            st->seen = true;
        now = now_ms();
        if (st && st->window_end_ms > now) {
            /* Within the window: these wait for the digest. */
            if (st->window_end_ms < *next_wake_ms)
                *next_wake_ms = st->window_end_ms;
        } else if (st) {
            k = j - i > DIGEST_MAX_ENTRIES ? DIGEST_MAX_ENTRIES : j - i;
            if (mail_digest(cfg, dir, names + i, k, st, ops) == 0) {
                st->window_end_ms = now_ms() + window;
                st->last_mail_real_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC;
            } else if (ops->held(ops->arg)) {
                return;
            }
        } else {
            int r = ops->mail_one(ops->arg, names[i]);
            if (r == 0) {
                st = fp_find(s, fp, true);
                st->window_end_ms = now_ms() + window;
                st->last_mail_real_s = dsl_now_ns(CLOCK_REALTIME) / NSEC_PER_SEC;
                st->seen = true;
                if (j - i > 1 && st->window_end_ms < *next_wake_ms)
                    *next_wake_ms = st->window_end_ms;
            } else if (ops->held(ops->arg)) {
                return;
            }
        }
        i = j;
    }
    /* A fingerprint whose window ended with nothing waiting is forgotten:
     * its next report is news again and is mailed whole. */
    now = now_ms();
    for (unsigned i = 0; i < s->nfps;) {
        if (!s->fps[i].seen && s->fps[i].window_end_ms <= now)
            s->fps[i] = s->fps[--s->nfps];
        else
            i++;
    }
}
