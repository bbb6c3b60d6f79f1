/* SPDX-License-Identifier: MIT */
/*
 * Rate-limited log lines (ratelimit.c).
 *
 * A peer can make the daemon log a line per connection at will (a refused
 * connection, one closed before its hello, a protocol error): thousands a
 * second from one local user would fill the disk and bury everything else.
 * Each such kind of line has a 'struct ratelimit': at most 'burst' lines
 * per 'interval'; the ones dropped are counted, and the next line that goes
 * out says "(N more suppressed)".  When no line comes after a burst, the
 * scan timer's ratelimit_flush() says so instead, so a count is never lost.
 *
 * Loop thread only: nothing here is locked.
 */
#ifndef DOGSLOWD_RATELIMIT_H
#define DOGSLOWD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
    const char *what; /* the kind, for ratelimit_flush()'s line */
    uint64_t interval_ns;
    unsigned burst;           /* lines per interval */
    uint64_t begin_ns;        /* start of the current interval; 0: none yet */
    unsigned logged;          /* lines logged in the current interval */
    unsigned long suppressed; /* dropped since the last line that went out */
    int level;                /* of the last line, for ratelimit_flush()'s */
    struct ratelimit *next;   /* on ratelimit_flush()'s list once one was dropped */
    bool listed;
};

#define RATELIMIT_INIT(what_, interval_ms_, burst_)                                                \
    {                                                                                              \
        .what = (what_), .interval_ns = 1000000ull * (uint64_t)(interval_ms_), .burst = (burst_)   \
    }

/*
 * May a line go out at now?  If so, *ret_suppressed is how many were
 * dropped since the last one (and that count starts again); if not, this
 * one is counted as dropped.
 */
bool ratelimit_allow(struct ratelimit *rl, uint64_t now, unsigned long *ret_suppressed);

/* log_msg() through rl, at the loop's clock; a line that goes out after
 * dropped ones ends with " (N more suppressed)". */
void log_ratelimited(struct ratelimit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * From the scan timer: for each kind whose dropped lines no later line
 * reported and whose interval is over, one line "N more ... suppressed".
 * Returns how many lines it logged.
 */
unsigned ratelimit_flush(uint64_t now);

#endif
