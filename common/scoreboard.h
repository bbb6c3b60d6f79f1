/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory scoreboard: one per registered process, created by the
 * daemon as a sealed memfd and mapped by both sides.
 *
 * The worker writes only its own thread's slot, with plain stores and no
 * system call (see lib/dogslow.c).  The daemon reads every slot and trusts
 * nothing in it: lengths are clamped, tids are checked against the process
 * the kernel says the scoreboard belongs to, times are sanity-checked.
 *
 * A slot is a sequence lock in which the *idle* phase is the writing phase:
 *
 *     seq even   no request; the worker may rewrite start/method/url
 *     seq odd    a request is running; its fields are stable
 *
 * dogslow_begin() fills the fields, then publishes seq+1 (odd) with release
 * order; dogslow_end() publishes seq+1 (even).  The daemon loads seq with
 * acquire order, copies the fields, and loads seq again: the copy is valid
 * only when both loads give the same odd value.
 */
#ifndef DOGSLOW_SCOREBOARD_H
#define DOGSLOW_SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DSL_SB_MAGIC   0x44534c53u /* "DSLS" */
#define DSL_SB_VERSION 1u

/* Bounds of what one slot can hold; longer strings are truncated. */
#define DSL_METHOD_MAX 31  /* bytes of the request method kept */
#define DSL_URL_MAX    959 /* bytes of the request URL kept */

#define DSL_SLOTS_DEFAULT 256u  /* threads per process by default */
#define DSL_SLOTS_MAX     4096u /* hard cap a client may ask for */

/* The header occupies the first 256 bytes; slots follow, 1 KiB each. */
struct dsl_sb_header {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;    /* written by the daemon; the daemon never re-reads it */
    uint32_t slot_size; /* sizeof(struct dsl_slot) */
    /* Written by clients: one past the highest slot index ever claimed, and
     * how many threads found no free slot. */
    uint32_t hwm;
    uint32_t overflow;
    /* Written by the daemon. */
    int32_t daemon_pid;
    uint32_t reserved0;
    uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of the daemon's last scan */
    uint64_t generation;   /* random id of the daemon instance that last adopted it */
    uint8_t reserved[256 - 48];
};

struct dsl_slot {
    uint32_t seq;      /* odd while a request runs; see above */
    int32_t tid;       /* owning thread (gettid), 0 when free */
    uint64_t start_ns; /* CLOCK_MONOTONIC at dogslow_begin() */
    uint16_t method_len;
    uint16_t url_len;
    /* Written by the daemon: the seq of the last request it reported, so a
     * restarted daemon that adopts the scoreboard does not report it twice.
     * (A worker that scribbles here can only silence its own reports.) */
    uint32_t reported_seq;
    uint64_t reserved1;
    char method[DSL_METHOD_MAX + 1];
    char url[DSL_URL_MAX + 1];
};

_Static_assert(sizeof(struct dsl_sb_header) == 256, "scoreboard header is 256 bytes");
_Static_assert(sizeof(struct dsl_slot) == 1024, "scoreboard slot is 1 KiB");

static inline size_t dsl_sb_size(uint32_t nslots)
{
    return sizeof(struct dsl_sb_header) + (size_t)nslots * sizeof(struct dsl_slot);
}

static inline struct dsl_slot *dsl_sb_slot(struct dsl_sb_header *sb, uint32_t i)
{
    return (struct dsl_slot *)((char *)sb + sizeof(*sb)) + i;
}

/* What the daemon copies out of a slot that holds a running request. */
struct dsl_request {
    uint32_t seq;
    pid_t tid;
    uint64_t start_ns;
    char method[DSL_METHOD_MAX + 1]; /* NUL-terminated, sanitized */
    char url[DSL_URL_MAX + 1];       /* NUL-terminated, sanitized */
};

/*
 * Copy a consistent view of slot i into *ret.  Returns 1 when a request is
 * running and *ret holds it, 0 when the slot is idle or free, -EAGAIN when
 * the worker changed the slot under us (try again later), -EINVAL when the
 * contents are impossible (garbage from a misbehaving worker).
 * Strings are made printable: control bytes and non-ASCII become '?'.
 */
int dsl_sb_read_slot(const struct dsl_sb_header *sb, uint32_t nslots, uint32_t i,
                     struct dsl_request *ret);

/* Validate a header the daemon did not write itself (an adopted scoreboard). */
int dsl_sb_check_header(const struct dsl_sb_header *sb, size_t size);

/* Initialise a fresh scoreboard (daemon side). */
void dsl_sb_init(struct dsl_sb_header *sb, uint32_t nslots);

#endif
