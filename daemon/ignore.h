/* SPDX-License-Identifier: MIT */
/*
 * Ignored requests: the operator's ignore_urls and a worker's own patterns
 * (sent in its hello), matched against the request path when the daemon
 * discovers a request -- never on the worker's hot path.
 *
 * Patterns are fnmatch-style without FNM_PATHNAME: '*' matches any run of
 * characters, '/' included, '?' one character, '[a-z]' / '[!a-z]' one of a
 * set, and '\' quotes the next character.  The matcher is our own: its cost
 * is bounded by pattern length x path length, whatever a worker sends
 * (glibc's fnmatch backtracks exponentially on some patterns).
 */
#ifndef DOGSLOWD_IGNORE_H
#define DOGSLOWD_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "dogslowd.h"

#define IGNORE_PATTERN_MAX         128 /* bytes of one pattern */
#define IGNORE_PATTERNS_MAX        32  /* patterns in the operator's list */
#define IGNORE_WORKER_PATTERNS_MAX 16  /* patterns a worker may send */

/* Is p a usable pattern?  0, or -EINVAL with the reason in why. */
int ignore_pattern_check(const char *p, char *why, size_t size);

/* Does the whole of s[0..n) match pattern pat? */
bool ignore_glob(const char *pat, const char *s, size_t n);

/* The path part of a URL: skips "scheme://host" and stops at '?' or '#'.
 * Returns its start; its length in *ret_len. */
const char *ignore_url_path(const char *url, size_t *ret_len);

/* Does the path of url match one of a comma-separated list of patterns? */
bool ignore_list_match(const char *list, const char *url);

/* Check and keep a worker's own patterns (comma-separated; "" for none) in
 * w->ignore_urls.  -EINVAL with the reason in why when they are unusable. */
int ignore_worker_set(struct worker *w, const char *list, char *why, size_t size);

/* The hook in watch.c: should this newly discovered request go unwatched?
 * (Also true for every request while 'enabled' is false.) */
bool ignore_request(struct daemon *d, struct worker *w, const struct dsl_request *req);

#endif
