/* SPDX-License-Identifier: MIT */
/*
 * The output layer (daemon/output/): the text report and its JSON twin,
 * retention, syslog, and e-mail and Sentry through the spool and the
 * delivery thread.  Works from what capture and analysis produced (core.h's
 * types); never calls capture.
 */
#ifndef DOGSLOWD_OUTPUT_H
#define DOGSLOWD_OUTPUT_H

#include "core.h"
#include "textbuf.h"

/* ---- reports (report.c) ------------------------------------------------- */

struct report_item;

struct report_info {
    /* The first line's words before the time; NULL: "Undead request
     * intercepted at" (dogslow's, for reports of undead requests). */
    const char *heading;
    const struct dsl_request *req;
    const struct worker *w;
    uint64_t now_real_ns, start_real_ns;
    const struct snapshot *snap;
    const struct symframe *frames;
    unsigned nframes;
    /* The merged stack (report_merge), for outputs that cannot compute it
     * themselves (the JSON twin); NULL: the native frames alone. */
    const struct report_item *items;
    unsigned nitems;
};

/*
 * The stack as reports show it, innermost first: native frames, with the
 * interpreter's eval-loop frames replaced by the Python frames they run
 * (py-spy dump --native style).  Python frames that find no eval frame are
 * appended (counted in *ret_unplaced).
 */
struct report_item {
    const struct symframe *native;
    const struct py_frame *py;
};
#define REPORT_ITEMS_MAX (DSL_SYMFRAMES_MAX + 256)
unsigned report_merge(const struct snapshot *snap, const struct symframe *frames,
                      unsigned nframes, struct report_item *out, unsigned *ret_unplaced);

/* The report as text (malloc'd, not NUL-terminated beyond len). */
int report_render(struct daemon *d, const struct report_info *ri, char **ret_text,
                  size_t *ret_len);
/* Render and write to the report directory; the file's path in ret_path. */
int report_write(struct daemon *d, const struct report_info *ri, char *ret_path, size_t size);
/* The same with a configuration and host name of the caller's (the
 * analysis thread's counted copy): they touch nothing of the daemon's. */
int report_render_cfg(const struct config *cfg, const char *hostname,
                      const struct report_info *ri, char **ret_text, size_t *ret_len);
int report_write_cfg(const struct config *cfg, const char *hostname, const struct report_info *ri,
                     char *ret_path, size_t size);
/* Test hook (DOGSLOWD_TEST_WRITE_DELAY_MS): each report file's write (text
 * and JSON twin) takes this much longer, as on a loaded disk. */
void report_set_test_write_delay(unsigned ms);
void report_test_write_delay(void);
/* The source line file:line (trimmed), when w's user may read the file. */
bool report_source_line(const struct worker *w, const char *file, int line, char *out,
                        size_t size);

/* ---- outputs after the text report (outputs.c, report_json.c, ...) ------- */

/*
 * Outputs of an undead-request report besides the text file that
 * report_write() makes: the JSON twin (report_json.c), the retention cap
 * of the report directory (retention.c) and syslog / journald
 * (sink_syslog.c).  outputs.c runs them in that order, from one hook in
 * watch.c, and last hands the report to e-mail and Sentry: queued in the
 * delivery spool, sent by the delivery thread (output.h).
 */

/* What happened in each output, one line each (for dogslowctl test-alert). */
struct outputs_result {
    char json[PATH_MAX + 64];
    char retention[160];
    char syslog[256];
    char email[PATH_MAX + 256];  /* queued to the delivery spool, or why not (delivery.c) */
    char sentry[256];
};

/*
 * Run the outputs for one report.  report_path is the text report's path,
 * or "" when it was not written (log_to_file off, or an error).  res may be
 * NULL.  Failures are logged; none stops the others.
 */
/* What the analysis thread already wrote beside the text report (watch.c):
 * the JSON twin, or why not.  NULL: outputs_undead() writes it. */
struct outputs_pre {
    bool json_tried;
    int json_err; /* 0 or -errno */
    char json_path[PATH_MAX];
};

void outputs_undead(struct daemon *d, const struct report_info *ri, const char *report_path,
                    const struct outputs_pre *pre, struct outputs_result *res);

/* Create the output directory if missing, owned by the daemon's user and
 * output_group (mode 0750, 2750 with a group).  At start and reload. */
int outputs_prepare_dir(const struct config *c);

/* After a reload: drop cached state that depends on the configuration. */
void outputs_reconfigure(struct daemon *d);

/* ---- report_json.c ------------------------------------------------------ */

/* The report as JSON (malloc'd, NUL-terminated), at most report_max_bytes:
 * frames that do not fit are left out and "truncated" is true. */
int report_json_render(struct daemon *d, const struct report_info *ri, char **ret_text,
                       size_t *ret_len);
/* Write the twin of the text report at log_path (same name, .json),
 * atomically and 0640; its path in ret_path. */
int report_json_write(struct daemon *d, const struct report_info *ri, const char *log_path,
                      char *ret_path, size_t size);
/* The same with a configuration and host name of the caller's (see
 * report_write_cfg). */
int report_json_render_cfg(const struct config *cfg, const char *hostname,
                           const struct report_info *ri, char **ret_text, size_t *ret_len);
int report_json_write_cfg(const struct config *cfg, const char *hostname,
                          const struct report_info *ri, const char *log_path, char *ret_path,
                          size_t size);
/* Write s as a JSON string (quotes included) to out[0..size), escaping
 * control characters and replacing invalid UTF-8 with U+FFFD.  Returns the
 * bytes the whole string needs; nothing past size is written, and no NUL. */
size_t json_escape(char *out, size_t size, const char *s);

/* s as a JSON string (json_escape) into a JSON text, whole or not at all.
 * JSON is built in a struct dsl_text (textbuf.h), growable and
 * DSL_TEXT_WHOLE: an append that does not fit is dropped, so the text
 * never ends in half a token. */
void json_put_str(struct dsl_text *b, const char *s);

/* ---- retention.c -------------------------------------------------------- */

/*
 * Keep the report directory within retention_max_files reports and
 * retention_max_bytes bytes, removing the oldest reports (a .log and its
 * .json together) first.  added_bytes: what the caller just wrote.  When a
 * cap is passed, reports are removed until a tenth of it is free, so the
 * directory is not rescanned for every report.  Returns the number of
 * reports removed, or -errno.
 */
int retention_enforce(struct daemon *d, uint64_t added_bytes);
void retention_forget(void);

/* ---- sink_syslog.c ------------------------------------------------------ */

/* One line per undead request to the syslog socket, or a structured entry
 * to journald (see the [syslog] options).  What happened in what. */
int sink_syslog_undead(struct daemon *d, const struct report_info *ri, const char *report_path,
                       char *what, size_t size);
void sink_syslog_close(void);
/* One line of text (e.g. a follow-up's summary), framed the same way. */
int sink_syslog_text(struct daemon *d, const char *line);
/* A worker-controlled value for a syslog line: in double quotes with '"',
 * '\\' and control bytes escaped; a method: as it is if it is a token,
 * else quoted.  So no value can forge the fields after it. */
void sink_syslog_quote(const char *v, char *out, size_t size);
void sink_syslog_token(const char *v, char *out, size_t size);
/* "func (file.c:42)" or "func+0x1a (module)": the innermost frame outside
 * the system's libraries, else the innermost. */
void sink_top_frame(const struct report_info *ri, char *buf, size_t size);

/* ---- e-mail and Sentry (delivery.c, spool.c, storm.c, sink_email.c, sink_sentry.c) */

/*
 * Delivery of reports to e-mail and Sentry (issue 6).
 *
 * The daemon's thread only renders what is to be sent and writes it to an
 * on-disk spool (spool.c): one file per (report, sink), written atomically,
 * 0600.  A delivery thread of its own (delivery.c) sends from the spool and
 * removes an entry only once the peer accepted it; it retries with bounded
 * exponential backoff, honours Sentry's rate limits, groups e-mail storms
 * into digests (storm.c), and picks up what an earlier daemon left behind.
 * Detection and snapshots never wait on it: the only link is the spool
 * directory and an eventfd nudge.  See docs/architecture.md, "Delivery".
 */

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

/* The sender: email_from, else dogslow@ the host's name. */
void email_from_address(const struct config *c, char *out, size_t size);

/* ---- sink_sentry.c ------------------------------------------------------ */

struct sentry_dsn {
    char key[128];
    char project[32];
    char envelope_url[1024];
};

/* Parse a DSN; on error -EINVAL and the reason in why. */
int sentry_parse_dsn(const char *dsn, struct sentry_dsn *ret, char *why, size_t size);

#define SENTRY_EVENT_MAX (1000u * 1000u) /* Sentry refuses events over 1 MB */

/* The event JSON of an undead request (malloc'd, NUL-terminated), at most
 * max bytes: vars and then frames are left out until it fits.  message is
 * the event's message: the mail's subject without its "[dogslow] " (the
 * caller's, delivery.c), so that both sinks call a report the same. */
int sentry_event_render(struct daemon *d, const struct report_info *ri, const char *message,
                        size_t max, char **ret, size_t *ret_len);

/* The info-level event of a follow-up (the same way; report: the report
 * file's name).  -EFBIG when it does not fit in max bytes. */
struct followup_info;
int sentry_followup_render(struct daemon *d, const struct followup_info *fu, const char *message,
                           const char *report, size_t max, char **ret, size_t *ret_len);

/* Seconds the "error" category is limited for, from X-Sentry-Rate-Limits
 * ("60:error;default:organization, 2700:transaction"); 0: not limited. */
unsigned sentry_rate_limit_seconds(const char *header);

/* POST one event as an envelope.  0: accepted; -EAGAIN: try later, with
 * *ret_retry_s > 0 when the server said how long; -EPERM: refused for good. */
int sentry_send(const struct config *c, const char *event, size_t len, unsigned *ret_retry_s,
                char *why, size_t size);

/* ---- storm.c: fingerprints, and storm control for e-mail ---------------- */

/*
 * The fingerprint of a report (what kind of stuck request it is): its
 * method and route, and its innermost in-app functions.  Storm control
 * groups e-mail by it; the Sentry event carries it as its fingerprint.
 */
#define DELIVERY_TOP_FRAMES 3 /* in-app frames in a fingerprint */

/* A route for grouping: the URL's path with its query dropped and the
 * segments that look like ids (numbers, hex, UUIDs) replaced by "{id}". */
void delivery_route(const char *url, char *out, size_t size);
/* Whether a frame is the application's own (not in a system library). */
bool delivery_in_app(const struct symframe *f);
/* "GET /orders/{id}" in route, and the innermost in-app function names
 * (pointers into ri's frames) in top[0..*ntop). */
void delivery_fingerprint_parts(const struct report_info *ri, char *route, size_t rsize,
                                const char *top[DELIVERY_TOP_FRAMES], unsigned *ntop);

/* The route and spool tag (16 hex digits, a hash of the fingerprint) of an
 * undead request's mail. */
void storm_fingerprint(const struct report_info *ri, char *route, size_t rsize, char *tag,
                       size_t tsize);
/* A follow-up's tag: one of its own, so it is never folded into a digest. */
void storm_followup_tag(const char *report_path, char *tag, size_t size);

/*
 * Storm control: the first mail of a fingerprint goes whole; the entries
 * that follow within [email] window wait, and go as one digest when it
 * ends (which opens the next window).  The delivery thread's state; only
 * storm.c looks inside.
 */
#define STORM_FPS_MAX 1024 /* fingerprints remembered; more: the oldest window is forgotten */
struct storm_fp {
    uint64_t fp;
    uint64_t window_end_ms; /* a mail (or digest) for fp went out; the next waits till then */
    uint64_t last_mail_real_s;
    bool seen; /* entries of fp were in the spool at this scan */
};
struct storm {
    struct storm_fp fps[STORM_FPS_MAX];
    unsigned nfps;
};

/* What storm control asks of the delivery thread, which sends and retries. */
struct storm_ops {
    void *arg;
    /* Mail entry name whole.  0: sent (entry removed); <0: held or rejected. */
    int (*mail_one)(void *arg, const char *name);
    /* Send msg, the digest of entries names[0..n) (it lists `listed` of
     * them).  0: sent (entries removed); <0: the sink is held. */
    int (*send_digest)(void *arg, char (*names)[SPOOL_NAME_MAX], size_t n, const char *msg,
                       size_t listed);
    /* The e-mail sink is on hold (a send failed): nothing more this scan. */
    bool (*held)(void *arg);
    bool (*stopping)(void *arg);
};

/* Mail the e-mail entries names[0..n) of spool dir (sorting them by
 * fingerprint): each whole, or as digests when cfg's [email] window is
 * not 0.  An open window lowers *next_wake_ms to its end. */
void storm_send(struct storm *s, const struct config *cfg, const char *dir,
                char (*names)[SPOOL_NAME_MAX], size_t n, const struct storm_ops *ops,
                uint64_t *next_wake_ms);

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
