/* SPDX-License-Identifier: MIT */
/*
 * Ignore patterns (see ignore.h).  dogslow matches DOGSLOW_IGNORE_URLS
 * against request.path; we do the same with shell-style patterns, which
 * say "everything under /static" more plainly than a regular expression.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "util.h"

/*
 * Match one character c against the set that starts at p ('[').  Returns
 * whether it matched, and where the pattern goes on in *ret_next.  A set
 * without its ']' matches a literal '['; validation rejects those anyway.
 */
static bool match_set(const char *p, unsigned char c, const char **ret_next)
{
    const char *q = p + 1;
    bool neg = false, hit = false;

    if (*q == '!' || *q == '^') {
        neg = true;
        q++;
    }
    /* A ']' right after '[' or '[!' is a member, not the end. */
    if (*q == ']') {
        hit |= c == ']';
        q++;
    }
    while (*q && *q != ']') {
        unsigned char lo, hi;

        if (*q == '\\' && q[1])
            q++;
        lo = hi = (unsigned char)*q++;
        if (*q == '-' && q[1] && q[1] != ']') {
            q++;
            if (*q == '\\' && q[1])
                q++;
            hi = (unsigned char)*q++;
        }
        hit |= c >= lo && c <= hi;
    }
    if (*q != ']') {
        *ret_next = p + 1;
        return c == '[';
    }
    *ret_next = q + 1;
    return hit != neg;
}

/*
 * The classic iterative matcher: on a mismatch, go back to the last '*' and
 * let it swallow one more character.  Only the last star matters, so the
 * work is at most strlen(pat) * n steps.
 */
bool ignore_glob(const char *pat, const char *s, size_t n)
{
    const char *p = pat, *star_p = NULL;
    size_t i = 0, star_i = 0;

    while (i < n) {
        const char *next = p + 1;
        bool m;

        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return true;
            star_p = p;
            star_i = i;
            continue;
        }
        if (*p == '?')
            m = true;
        else if (*p == '[')
            m = match_set(p, (unsigned char)s[i], &next);
        else if (*p == '\\' && p[1]) {
            m = p[1] == s[i];
            next = p + 2;
        } else
            m = *p && *p == s[i];
        if (m) {
            p = next;
            i++;
            continue;
        }
        if (!star_p)
            return false;
        p = star_p;
        i = ++star_i;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int ignore_pattern_check(const char *p, char *why, size_t size)
{
    size_t n = strlen(p);

    if (n == 0 || n > IGNORE_PATTERN_MAX) {
        snprintf(why, size, "a pattern must have 1 to %d bytes", IGNORE_PATTERN_MAX);
        return -EINVAL;
    }
    if (p[0] != '/' && p[0] != '*') {
        snprintf(why, size, "'%.64s': a pattern starts with '/' or '*' (it matches the path)",
                 p);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c <= 0x20 || c >= 0x7f || c == ',') {
            snprintf(why, size, "'%.64s' holds a space, comma or unprintable character", p);
            return -EINVAL;
        }
        if (c == '\\') {
            if (!p[i + 1]) {
                snprintf(why, size, "'%.64s' ends in a lone '\\'", p);
                return -EINVAL;
            }
            i++;
        } else if (c == '[') {
            size_t j = i + 1;
            if (p[j] == '!' || p[j] == '^')
                j++;
            if (p[j] == ']')
                j++;
            while (p[j] && p[j] != ']')
                j += (p[j] == '\\' && p[j + 1]) ? 2 : 1;
            if (p[j] != ']') {
                snprintf(why, size, "'%.64s' has a '[' without its ']'", p);
                return -EINVAL;
            }
            i = j;
        }
    }
    return 0;
}

const char *ignore_url_path(const char *url, size_t *ret_len)
{
    const char *p = url, *scheme = strstr(url, "://");

    /* "http://host:8000/x" -> "/x"; only when "://" comes before any '/'. */
    if (scheme && scheme > url && scheme == url + strcspn(url, ":/?#")) {
        p = scheme + 3;
        p += strcspn(p, "/?#");
    }
    *ret_len = strcspn(p, "?#");
    return p;
}

bool ignore_list_match(const char *list, const char *url)
{
    size_t plen;
    const char *path = ignore_url_path(url, &plen);
    const char *p = list;

    if (plen == 0) {
        path = "/";
        plen = 1;
    }
    while (*p) {
        char pat[IGNORE_PATTERN_MAX + 1];
        size_t n;

        while (*p == ' ' || *p == ',')
            p++;
        n = strcspn(p, ", ");
        if (n == 0)
            break;
        if (n <= IGNORE_PATTERN_MAX) {
            memcpy(pat, p, n);
            pat[n] = '\0';
            if (ignore_glob(pat, path, plen))
                return true;
        }
        p += n;
    }
    return false;
}

int ignore_worker_set(struct worker *w, const char *list, char *why, size_t size)
{
    char out[DSL_IGNORE_MAX + 1];
    size_t olen = 0;
    unsigned count = 0;
    const char *p = list;

    out[0] = '\0';
    while (*p) {
        char pat[IGNORE_PATTERN_MAX + 1];
        size_t n;

        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (n > IGNORE_PATTERN_MAX) {
            snprintf(why, size, "an ignore pattern is longer than %d bytes", IGNORE_PATTERN_MAX);
            return -EINVAL;
        }
        memcpy(pat, p, n);
        pat[n] = '\0';
        if (ignore_pattern_check(pat, why, size) < 0)
            return -EINVAL;
        if (++count > IGNORE_WORKER_PATTERNS_MAX) {
            snprintf(why, size, "more than %d ignore patterns", IGNORE_WORKER_PATTERNS_MAX);
            return -EINVAL;
        }
        if (olen + n + 2 > sizeof(out)) {
            snprintf(why, size, "ignore patterns too long");
            return -EINVAL;
        }
        if (olen)
            out[olen++] = ',';
        memcpy(out + olen, pat, n);
        olen += n;
        out[olen] = '\0';
        p += n;
    }
    free(w->ignore_urls);
    w->ignore_urls = NULL;
    if (olen) {
        w->ignore_urls = strdup(out);
        if (!w->ignore_urls) {
            snprintf(why, size, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

bool ignore_request(struct daemon *d, struct worker *w, const struct dsl_request *req)
{
    if (!d->cfg.enabled)
        return true;
    if ((d->cfg.ignore_urls[0] && ignore_list_match(d->cfg.ignore_urls, req->url)) ||
        (w->ignore_urls && ignore_list_match(w->ignore_urls, req->url))) {
        d->requests_ignored++;
        log_debug("pid %d tid %d: %s %s matches an ignore pattern; not watched", (int)w->pid,
                  (int)req->tid, req->method, req->url);
        return true;
    }
    return false;
}
