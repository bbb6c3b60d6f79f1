/* SPDX-License-Identifier: MIT */
/*
 * Rate-limited log lines: see ratelimit.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "core.h"
#include "util.h"

/* Kinds that dropped a line, for ratelimit_flush(): a kind joins the list
 * the first time it drops one and stays (they are static objects). */
static struct ratelimit *dropping;

bool ratelimit_allow(struct ratelimit *rl, uint64_t now, unsigned long *ret_suppressed)
{
    if (!rl->begin_ns || now - rl->begin_ns >= rl->interval_ns) {
        rl->begin_ns = now ? now : 1;
        rl->logged = 0;
    }
    if (rl->logged < rl->burst) {
        rl->logged++;
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
    }
    rl->suppressed++;
    if (!rl->listed) {
        rl->listed = true;
        rl->next = dropping;
        dropping = rl;
    }
    return false;
}

void log_ratelimited(struct ratelimit *rl, int level, const char *fmt, ...)
{
    unsigned long suppressed;
    char msg[1024];
    va_list ap;

    /* A line that would not be shown anyway must not use up the burst. */
    if (level > log_max_level)
        return;
    if (!ratelimit_allow(rl, dsl_now_ns(CLOCK_MONOTONIC), &suppressed))
        return;
    rl->level = level;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed)
        log_msg(level, false, "%s (%lu more suppressed)", msg, suppressed);
    else
        log_msg(level, false, "%s", msg);
}

unsigned ratelimit_flush(uint64_t now)
{
    unsigned n = 0;

    for (struct ratelimit *rl = dropping; rl; rl = rl->next) {
        if (!rl->suppressed || now - rl->begin_ns < rl->interval_ns)
            continue;
        log_msg(rl->level ? rl->level : LOG_LVL_WARN, false, "%s: %lu more suppressed", rl->what,
                rl->suppressed);
        /* The summary is the new interval's line. */
        rl->suppressed = 0;
        rl->begin_ns = now;
        rl->logged = 1;
        n++;
    }
    return n;
}
