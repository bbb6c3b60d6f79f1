/* SPDX-License-Identifier: MIT */
/*
 * The outputs that follow the text report (see output.h).  The text file
 * is written first, by report_write(); these come after it and never hold
 * it up: each failure is logged and the next output still runs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "util.h"

static void say(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

void outputs_undead(struct daemon *d, const struct report_info *ri, const char *report_path,
                    const struct outputs_pre *pre, struct outputs_result *res)
{
    struct outputs_result local;
    uint64_t added = 0;
    struct stat st;
    int r;

    if (!res)
        res = &local;
    say(res->json, sizeof(res->json), "off (json = false)");
    say(res->retention, sizeof(res->retention), "no report file to keep within bounds");
    say(res->syslog, sizeof(res->syslog), "off ([syslog] enabled = false)");

    if (report_path[0]) {
        if (stat(report_path, &st) == 0)
            added += (uint64_t)st.st_size;
        if (d->cfg.json || (pre && pre->json_tried)) {
            char jpath[PATH_MAX];

            if (pre && pre->json_tried) {
                r = pre->json_err;
                dsl_strlcpy(jpath, pre->json_path, sizeof(jpath));
            } else {
                r = report_json_write(d, ri, report_path, jpath, sizeof(jpath));
            }
            if (r < 0) {
                errno = -r;
                log_warn("cannot write the JSON twin of %s", report_path);
                say(res->json, sizeof(res->json), "FAILED: %s", strerror(-r));
            } else {
                if (stat(jpath, &st) == 0)
                    added += (uint64_t)st.st_size;
                say(res->json, sizeof(res->json), "written to %s", jpath);
            }
        }
        r = retention_enforce(d, added);
        if (r < 0) {
            errno = -r;
            log_warn("cannot keep %s within its retention limits", d->cfg.output_dir);
            say(res->retention, sizeof(res->retention), "FAILED: %s", strerror(-r));
        } else if (r > 0) {
            log_info("retention: removed the %d oldest reports from %s", r, d->cfg.output_dir);
            say(res->retention, sizeof(res->retention), "removed the %d oldest reports", r);
        } else {
            say(res->retention, sizeof(res->retention), "within limits (%u reports, %llu bytes)",
                d->cfg.retention_max_files, (unsigned long long)d->cfg.retention_max_bytes);
        }
    } else if (d->cfg.json) {
        say(res->json, sizeof(res->json), "skipped: no report file to be the twin of");
    }

    if (d->cfg.syslog.enabled) {
        r = sink_syslog_undead(d, ri, report_path, res->syslog, sizeof(res->syslog));
        if (r < 0)
            log_warnx("syslog output: %s", res->syslog);
    }
    /* Last: only a spool file is written here; sending is the delivery
     * thread's, so a dead mail server never holds up detection. */
    delivery_enqueue(d, ri, report_path, res->email, sizeof(res->email), res->sentry,
                     sizeof(res->sentry));
}

int outputs_prepare_dir(const struct config *c)
{
    mode_t mode = c->output_gid != (gid_t)-1 ? 02750 : 0750;
    char tmp[PATH_MAX];
    struct stat st;
    size_t n;

    if (!c->log_to_file)
        return 0;
    n = dsl_strlcpy(tmp, c->output_dir, sizeof(tmp));
    if (n == 0 || n >= sizeof(tmp) - 1)
        return -ENAMETOOLONG;
    /* Parents as mkdir -p would make them; only the last one gets the
     * report directory's owner and mode. */
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) == 0) {
        /* Made by us: give it the group, and the mode past the umask. */
        if (c->output_gid != (gid_t)-1 && chown(tmp, (uid_t)-1, c->output_gid) < 0)
            return -errno;
        if (chmod(tmp, mode) < 0)
            return -errno;
        log_info("created the report directory %s (mode %04o)", tmp, (unsigned)mode);
    } else if (errno != EEXIST) {
        return -errno;
    }
    if (lstat(tmp, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    /* Reports can hold what a request was doing: a directory anyone may
     * write to would let others replace or plant them. */
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        log_warnx("report directory %s is writable by anyone", tmp);
    return 0;
}

void outputs_reconfigure(struct daemon *d)
{
    int r;

    retention_forget();
    sink_syslog_close();
    delivery_reconfigure(d);
    r = outputs_prepare_dir(&d->cfg);
    if (r < 0) {
        errno = -r;
        log_warn("cannot prepare the report directory %s", d->cfg.output_dir);
    }
}
