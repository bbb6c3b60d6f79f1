/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr.  Under systemd (JOURNAL_STREAM set) each line carries a
 * "<N>" priority prefix that journald understands; otherwise a timestamp.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

int log_max_level = LOG_LVL_INFO;

static void vlog(int level, bool with_errno, int err, const char *fmt, va_list ap)
{
    static int journal = -1;
    char msg[1024];
    int n;

    if (level > log_max_level)
        return;
    if (journal < 0)
        journal = getenv("JOURNAL_STREAM") != NULL;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return;
    if (with_errno && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
    if (journal) {
        fprintf(stderr, "<%d>%s\n", level, msg);
    } else {
        struct timespec ts;
        struct tm tm;
        char when[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ dogslowd[%d]: %s\n", when, ts.tv_nsec / 1000000, (int)getpid(),
                msg);
    }
}

void log_msg(int level, bool with_errno, const char *fmt, ...)
{
    int err = errno;
    va_list ap;

    va_start(ap, fmt);
    vlog(level, with_errno, err, fmt, ap);
    va_end(ap);
    errno = err;
}

void fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_ERR, false, 0, fmt, ap);
    va_end(ap);
    exit(1);
}
