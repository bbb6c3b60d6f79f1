/* SPDX-License-Identifier: MIT */
/*
 * Control connections (dogslowctl) and the access rules of the socket.
 *
 * Workers and dogslowctl share one socket; a connection is told apart by
 * its first message: HELLO makes it a worker (registry.c), CTL_REQUEST a
 * control connection, handed over here by control_take().  One command per
 * connection: the answer is queued (bounded) and written as the peer reads
 * it, so a slow or stuck dogslowctl never blocks the event loop.
 */
#ifndef DOGSLOWD_CONTROL_H
#define DOGSLOWD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dogslowd.h"

#define CTL_CONNS_MAX 16 /* control connections at once */

struct ctl_conn;

/* Remember where the configuration came from, and when we started, for
 * status and config answers. */
void control_init(struct daemon *d, const char *config_source);

/* The framed CTL_REQUEST in w->framer: take w's connection over, check who
 * it is, run the command and queue the answer.  w is removed. */
void control_take(struct daemon *d, struct worker *w);
void control_event(struct daemon *d, struct ctl_conn *c, uint32_t events);
/* Drop control connections that have not read their answer in time. */
void control_expire(struct daemon *d, uint64_t now);
void control_close_all(struct daemon *d);

/*
 * The peer's supplementary groups: from the kernel (SO_PEERGROUPS, as they
 * were at connect time), else from /proc/PID/status.  Returns how many
 * (at most max), or -errno.
 */
int access_peer_groups(int fd, pid_t pid, gid_t *ret, size_t max);
/* May this worker register (allowed_users, allowed_groups)? */
bool access_worker_allowed(struct daemon *d, struct worker *w);

#endif
