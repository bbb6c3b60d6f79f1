/* SPDX-License-Identifier: MIT */
/* Following an undead request to its end (follow.c). */
#ifndef DOGSLOWD_FOLLOW_H
#define DOGSLOWD_FOLLOW_H

#include "dogslowd.h"

/* Start following the request just reported (if follow_hz is set and
 * follow_max allows); the report's snapshot is the first sample. */
bool follow_start(struct daemon *d, struct worker *w, uint32_t slot,
                  const struct dsl_request *req, const char *report_path,
                  const struct snapshot *first, const struct symframe *frames, unsigned nframes);
/* A follow deadline fired: sample again, or finish. */
void follow_fire(struct daemon *d, const struct deadline *e);
/* From the scan timer: finish follow-ups of requests that ended. */
void follow_scan(struct daemon *d, uint64_t now);
/* The worker is being removed: its follow-ups did not finish. */
void follow_worker_gone(struct daemon *d, struct worker *w);
/* At shutdown. */
void follow_stop_all(struct daemon *d);
unsigned follow_count(void);

/* The requests being followed, for dogslowctl status. */
struct follow_info {
    pid_t pid, tid;
    uint64_t start_ns; /* the request's start (CLOCK_MONOTONIC) */
    unsigned samples;
    uint64_t pause_ns;
    const char *method, *url; /* valid until the next event */
};
unsigned follow_list(struct follow_info *out, unsigned max);

#endif
