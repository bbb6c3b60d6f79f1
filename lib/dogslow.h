/* SPDX-License-Identifier: MIT */
/*
 * libdogslow: let dogslowd watch this process's requests.
 *
 *     dogslow_register(NULL);             once per process
 *     dogslow_begin("GET", "/orders/42");  at the start of each request
 *     dogslow_end();                       when the request is done
 *
 * When a request is still running after the daemon's timer (25 s by
 * default), dogslowd snapshots the thread's stack and writes an "undead
 * request" report.  The process is not interrupted.
 *
 * All functions return 0 on success or a negative errno.  The hot path
 * (dogslow_begin/dogslow_end) makes no system call, takes no lock and
 * allocates nothing in the common case; when the process is not registered
 * it is a cheap no-op, so an application never breaks because its watchdog
 * is down.  See libdogslow(3).
 */
#ifndef DOGSLOW_H
#define DOGSLOW_H

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds: longer methods and URLs are truncated to this many bytes. */
#define DOGSLOW_METHOD_MAX 31
#define DOGSLOW_URL_MAX    959

/* The socket dogslowd listens on when nothing else is said. */
#define DOGSLOW_DEFAULT_SOCKET "/run/dogslow/dogslow.sock"

struct dogslow_options {
    /* Daemon socket; NULL: $DOGSLOW_SOCKET, else DOGSLOW_DEFAULT_SOCKET,
     * else $XDG_RUNTIME_DIR/dogslow/dogslow.sock. */
    const char *socket_path;
    /* Timer for this process in milliseconds, within the operator's
     * bounds; 0: $DOGSLOW_TIMER (seconds, fractions allowed) if set, else
     * the daemon's timer. */
    unsigned int timer_ms;
    /* Threads this process may have in requests at once; 0: 256. */
    unsigned int max_threads;
    /* Program name shown in reports; NULL: the executable's name. */
    const char *program;
    /* Requests of this process whose path matches one of these patterns
     * are not watched, besides the operator's ignore_urls: comma-separated
     * shell patterns such as "/health*, *.css" (at most 16, 1024 bytes in
     * all).  NULL: $DOGSLOW_IGNORE_URLS if set.  Checked by the daemon,
     * never on the request path. */
    const char *ignore_urls;
};

/*
 * Register this process with dogslowd.  Safe to call again (a no-op while
 * registered).  On failure (-ENOENT or -ECONNREFUSED: the daemon is not
 * running; -EACCES: not allowed; -EPROTO: protocol mismatch) begin/end are
 * no-ops, and the library retries at most every few seconds from
 * dogslow_begin(), so a daemon started later still finds the process.
 * After fork() the child is a separate registration, made on its first
 * dogslow_begin() (or by calling dogslow_register() in the child).
 */
int dogslow_register(const struct dogslow_options *opts);

/* Forget the registration; begin/end become no-ops. */
int dogslow_unregister(void);

/* Mark the start and end of a request on the calling thread.  Returns
 * -EINVAL for a NULL method or url, -ENOTCONN when not registered, -ENOSPC
 * when all slots are taken; the request is simply not watched then. */
int dogslow_begin(const char *method, const char *url);
int dogslow_end(void);

/* A human-readable line for the last registration failure ("" if none). */
const char *dogslow_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
