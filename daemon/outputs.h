/* SPDX-License-Identifier: MIT */
/*
 * Outputs of an undead-request report besides the text file that
 * report_write() makes: the JSON twin (report_json.c), the retention cap
 * of the report directory (retention.c) and syslog / journald
 * (sink_syslog.c).  outputs.c runs them in that order, from one hook in
 * watch.c, and last hands the report to e-mail and Sentry: queued in the
 * delivery spool, sent by the delivery thread (delivery.h).
 */
#ifndef DOGSLOWD_OUTPUTS_H
#define DOGSLOWD_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include "dogslowd.h"

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

/* A growable JSON text (report_json.c; also the Sentry event): at most max
 * bytes, of which the last `reserve` (at least 1, the NUL) are kept back,
 * e.g. for closing the document.  An append that does not fit is dropped,
 * and so is every later one: full is set.  p is NUL-terminated. */
struct jbuf {
    char *p;
    size_t len, cap, max, reserve;
    bool full;
};
void jb_raw(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string (json_escape). */
void jb_str(struct jbuf *b, const char *s);

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

#endif
