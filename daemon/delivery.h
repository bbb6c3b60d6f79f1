/* SPDX-License-Identifier: MIT */
/*
 * Delivery of reports to e-mail and Sentry (issue 6).
 *
 * The daemon's thread only renders what is to be sent and writes it to an
 * on-disk spool (spool.c): one file per (report, sink), written atomically,
 * 0600.  A delivery thread of its own (delivery.c) sends from the spool and
 * removes an entry only once the peer accepted it; it retries with bounded
 * exponential backoff, honours Sentry's rate limits, groups e-mail storms
 * into digests, and picks up what an earlier daemon left behind.  Detection
 * and snapshots never wait on it: the only link is the spool directory and
 * an eventfd nudge.  See docs/architecture.md, "Delivery".
 */
#ifndef DOGSLOWD_DELIVERY_H
#define DOGSLOWD_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dogslowd.h"

/* ---- spool.c: the on-disk queue ----------------------------------------- */

#define SPOOL_ENTRY_MAX   (4u * 1024u * 1024u) /* bytes of one entry, header included */
#define SPOOL_ENTRIES_MAX 10000u               /* entries at once, whatever their size */
#define SPOOL_NAME_MAX    64

/* The spool directory of a configuration: <output>/.spool. */
void spool_dir_of(const struct config *c, char *buf, size_t size);

/* Create the directory (0700, parents as needed); count what is in it. */
int spool_open(const char *dir);

/*
 * Add an entry for sink ("email", "sentry"), with tag (a few [0-9a-z]
 * characters, or NULL) in its name: the header lines (each
 * "key value\n") and the body.  Written to a temporary name and renamed,
 * 0600.  -ENOSPC when max_bytes or SPOOL_ENTRIES_MAX would be passed (the
 * caller counts and logs the drop).  The entry's name in ret_name.
 */
int spool_put(const char *dir, const char *sink, const char *tag, const char *hdr, size_t hlen,
              const void *body, size_t blen, uint64_t max_bytes, char *ret_name, size_t size);

/* Names of the entries, oldest first (malloc'd array of SPOOL_NAME_MAX
 * strings), at most max. */
int spool_list(const char *dir, char (**ret_names)[SPOOL_NAME_MAX], size_t max, size_t *ret_n);

/* Read an entry whole (malloc'd, NUL-terminated); the body starts at
 * *ret_body (after the blank line that ends the header). */
int spool_read(const char *dir, const char *name, char **ret_buf, size_t *ret_len,
               size_t *ret_body);

/* A header value of an entry read by spool_read, copied (bounded) to out. */
int spool_header(const char *buf, size_t body, const char *key, char *out, size_t size);

/* Remove an entry once delivered. */
int spool_remove(const char *dir, const char *name);
/* Set an entry aside that the peer refused for good ("rejected-NAME"):
 * kept for the operator, never retried. */
int spool_reject(const char *dir, const char *name);

/* The sink of an entry name ("...email" -> "email"). */
const char *spool_sink_of(const char *name);
/* The tag of an entry name, copied to out ("" if none). */
void spool_tag_of(const char *name, char *out, size_t size);

/* Bytes and entries in the spool (kept up to date by put/remove). */
uint64_t spool_bytes(void);
uint64_t spool_entries(void);

/* ---- sink_email.c ------------------------------------------------------- */

struct email_msg {
    const char *from;
    const char *to;      /* "a@x, b@y" */
    const char *subject; /* UTF-8 */
    const char *id;      /* X-Dogslow-Report: which report(s) this is */
    const char *text;    /* the body, UTF-8 (invalid bytes are replaced) */
    size_t text_len;
    const char *json; /* attachment, or NULL */
    size_t json_len;
    const char *json_name;
    uint64_t date_s; /* Unix time of the Date: header */
};

/* The whole RFC 5322 message with CRLF line endings (malloc'd, NUL-terminated). */
int email_build(const struct email_msg *m, char **ret, size_t *ret_len);

/* Send a built message.  0: accepted; -EAGAIN: try again later (server
 * down, 4xx, TLS trouble); -EPERM: refused for good (5xx).  What happened,
 * one line, in why. */
int email_send(const struct config *c, const char *msg, char *why, size_t size);

/* Read the SMTP password: the first line of c->email.password_file, which
 * must not be readable by others. */
int email_read_password(const char *path, char *out, size_t size, char *why, size_t wsize);

/* ---- sink_sentry.c ------------------------------------------------------ */

struct sentry_dsn {
    char key[128];
    char project[32];
    char envelope_url[1024];
};

/* Parse a DSN; on error -EINVAL and the reason in why. */
int sentry_parse_dsn(const char *dsn, struct sentry_dsn *ret, char *why, size_t size);

/* The event JSON of an undead request (malloc'd, NUL-terminated), at most
 * max bytes: vars and then frames are left out until it fits. */
int sentry_event_render(struct daemon *d, const struct report_info *ri, size_t max, char **ret,
                        size_t *ret_len);

/* Seconds the "error" category is limited for, from X-Sentry-Rate-Limits
 * ("60:error;default:organization, 2700:transaction"); 0: not limited. */
unsigned sentry_rate_limit_seconds(const char *header);

/* POST one event as an envelope.  0: accepted; -EAGAIN: try later, with
 * *ret_retry_s > 0 when the server said how long; -EPERM: refused for good. */
int sentry_send(const struct config *c, const char *event, size_t len, unsigned *ret_retry_s,
                char *why, size_t size);

/* A route for grouping: the URL's path with its query dropped and the
 * segments that look like ids (numbers, hex, UUIDs) replaced by "{id}". */
void delivery_route(const char *url, char *out, size_t size);

/* ---- delivery.c --------------------------------------------------------- */

int delivery_init(struct daemon *d);
void delivery_shutdown(void);
/* After a reload: the thread takes the new configuration. */
void delivery_reconfigure(struct daemon *d);

/*
 * Spool what an undead request sends to e-mail and Sentry (each when
 * configured) and nudge the thread.  One line per sink in email_what and
 * sentry_what.  Never blocks on the network.
 */
void delivery_enqueue(struct daemon *d, const struct report_info *ri, const char *report_path,
                      char *email_what, size_t esize, char *sentry_what, size_t ssize);

/* The end of a followed request (follow.c): a mail of its own (never folded
 * into a digest) and an info-level Sentry event, each when configured. */
struct followup_info {
    const char *method, *url, *how; /* how: "the request ended", ... */
    pid_t pid, tid;
    double took_s, pause_ms;
    unsigned samples;
    const char *report_path;
    const char *text; /* the follow-up section as written to the report */
    size_t text_len;
};
void delivery_enqueue_followup(struct daemon *d, const struct followup_info *fu);

struct delivery_stats {
    uint64_t pending, pending_bytes;
    uint64_t delivered_email, delivered_sentry, digests;
    uint64_t dropped;  /* refused at the spool's cap */
    uint64_t rejected; /* refused for good by a peer, set aside */
    uint64_t retries;
    char last_error[256];
};
void delivery_get_stats(struct delivery_stats *ret);

#endif
