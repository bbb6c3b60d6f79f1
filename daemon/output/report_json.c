/* SPDX-License-Identifier: MIT */
/*
 * The JSON twin of a report: the same content as the text report, with
 * structure, for machines (log shippers, jq).  Written next to the .log,
 * same name with .json, atomically and 0640 like it.
 *
 *   {"format": "dogslow-report/1",
 *    "intercepted_at": "2026-11-22T02:10:12.345Z", "hostname": ...,
 *    "request": {"method", "url", "path"},
 *    "process": {"pid", "ppid", "uid", "program"},
 *    "thread": {"tid"},
 *    "timings": {"started_at", "running_s", "timer_s", "paused_us"},
 *    "snapshot": {"error", "note"},
 *    "frames": [{"ip", "module", "function", "offset", "file", "line",
 *                "inlined", "locals": [{"name", "value"}]}
 *               or {"language": "python", "function", "file", "line",
 *                "locals"} in place of the interpreter loop],  innermost first
 *    "truncated": false}
 *
 * No JSON library: the escaper below is small and bounded, and the whole
 * document is capped at report_max_bytes (frames that do not fit are left
 * out, and "truncated" says so), so it always parses.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "output.h"
#include "util.h"

#define JSON_TAIL_RESERVE 64 /* room kept for closing the document */

size_t json_escape(char *out, size_t size, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

#define PUT(c)                                                                                 \
    do {                                                                                       \
        if (n < size)                                                                          \
            out[n] = (char)(c);                                                                \
        n++;                                                                                   \
    } while (0)

    PUT('"');
    while (*p) {
        size_t k = dsl_utf8_len(p, SIZE_MAX); /* NUL-terminated */
        const char *esc = NULL;
        char u[8];

        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(u, sizeof(u), "\\u%04x", *p);
                esc = u;
            } else if (k == 0) {
                esc = "\\ufffd";
                k = 1;
            }
        }
        if (esc) {
            for (const char *e = esc; *e; e++)
                PUT(*e);
            p += k ? k : 1;
            continue;
        }
        for (size_t i = 0; i < k; i++)
            PUT(p[i]);
        p += k;
    }
    PUT('"');
#undef PUT
    return n;
}

void json_put_str(struct dsl_text *b, const char *s)
{
    size_t need = json_escape(NULL, 0, s);
    char *q = dsl_text_extend(b, need);

    if (q)
        json_escape(q, need, s);
}

/* "key": "value" (with a leading comma unless first). */
static void json_kv(struct dsl_text *b, bool first, const char *key, const char *value)
{
    dsl_text_printf(b, "%s\"%s\": ", first ? "" : ", ", key);
    json_put_str(b, value);
}

static void iso_time(uint64_t real_ns, char *out, size_t size)
{
    time_t t = (time_t)(real_ns / NSEC_PER_SEC);
    struct tm tm;
    char s[32];

    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03uZ", s, (unsigned)(real_ns % NSEC_PER_SEC / NSEC_PER_MSEC));
}

static pid_t read_ppid(pid_t pid)
{
    long v;
    return dsl_proc_status_field(pid, 0, "PPid", &v) == 0 ? (pid_t)v : 0;
}

static void render_frame(struct dsl_text *b, const struct symframe *f)
{
    dsl_text_printf(b, "{\"ip\": \"0x%llx\"", (unsigned long long)f->ip);
    json_kv(b, false, "module", f->module);
    json_kv(b, false, "function", f->function);
    dsl_text_printf(b, ", \"offset\": %llu", (unsigned long long)f->offset);
    json_kv(b, false, "file", f->file);
    dsl_text_printf(b, ", \"line\": %d, \"inlined\": %s", f->line, f->inlined ? "true" : "false");
    if (f->nvars) {
        dsl_text_printf(b, ", \"locals\": [");
        for (unsigned i = 0; i < f->nvars; i++) {
            dsl_text_printf(b, "%s{", i ? ", " : "");
            json_kv(b, true, "name", f->vars[i].name ? f->vars[i].name : "");
            json_kv(b, false, "value", f->vars[i].value ? f->vars[i].value : "");
            dsl_text_printf(b, "}");
        }
        dsl_text_printf(b, "]");
    } else if (f->vars_note) {
        json_kv(b, false, "locals_note", f->vars_note);
    }
    dsl_text_printf(b, "}");
}

/* A Python frame (its locals were redacted when read). */
static void render_py_frame(struct dsl_text *b, const struct py_frame *f)
{
    dsl_text_printf(b, "{\"language\": \"python\"");
    json_kv(b, false, "function", f->function ? f->function : "");
    json_kv(b, false, "file", f->filename ? f->filename : "");
    dsl_text_printf(b, ", \"line\": %d", f->line);
    if (f->nlocals) {
        dsl_text_printf(b, ", \"locals\": [");
        for (unsigned i = 0; i < f->nlocals; i++) {
            dsl_text_printf(b, "%s{", i ? ", " : "");
            json_kv(b, true, "name", f->locals[i].name ? f->locals[i].name : "");
            json_kv(b, false, "value", f->locals[i].value ? f->locals[i].value : "");
            dsl_text_printf(b, "}");
        }
        dsl_text_printf(b, "]");
    }
    dsl_text_printf(b, "}");
}

/* The test hook of both report writers (core.h); here, because every
 * program that writes reports links this file. */
static unsigned test_write_delay_ms;

void report_set_test_write_delay(unsigned ms)
{
    test_write_delay_ms = ms;
}

void report_test_write_delay(void)
{
    struct timespec ts = {test_write_delay_ms / 1000, (long)(test_write_delay_ms % 1000) * 1000000L};

    if (!test_write_delay_ms)
        return;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int report_json_render_cfg(const struct config *cfg, const char *hostname,
                           const struct report_info *ri, char **ret_text, size_t *ret_len)
{
    struct dsl_text b;
    const struct snapshot *s = ri->snap;
    char when[40], path[DSL_URL_MAX + 1];
    size_t plen;
    const char *pp = ignore_url_path(ri->req->url, &plen);
    bool truncated = false;

    dsl_text_init_growable(&b, cfg->report_max_bytes ? cfg->report_max_bytes : 1024 * 1024,
                           DSL_TEXT_WHOLE);
    b.reserve = JSON_TAIL_RESERVE;
    snprintf(path, sizeof(path), "%.*s", (int)plen, pp);
    iso_time(ri->now_real_ns, when, sizeof(when));
    dsl_text_printf(&b, "{\"format\": \"dogslow-report/1\"");
    json_kv(&b, false, "intercepted_at", when);
    json_kv(&b, false, "hostname", hostname);
    dsl_text_printf(&b, ",\n \"request\": {");
    json_kv(&b, true, "method", ri->req->method);
    json_kv(&b, false, "url", ri->req->url);
    json_kv(&b, false, "path", path);
    dsl_text_printf(&b, "},\n \"process\": {\"pid\": %d, \"ppid\": %d, \"uid\": %u",
                    (int)ri->w->pid, (int)read_ppid(ri->w->pid), (unsigned)ri->w->uid);
    json_kv(&b, false, "program", ri->w->program);
    dsl_text_printf(&b, "},\n \"thread\": {\"tid\": %d},\n", (int)ri->req->tid);
    iso_time(ri->start_real_ns, when, sizeof(when));
    dsl_text_printf(&b, " \"timings\": {");
    json_kv(&b, true, "started_at", when);
    dsl_text_printf(&b, ", \"running_s\": %.3f, \"timer_s\": %.3f, \"paused_us\": %llu},\n",
                    (double)(ri->now_real_ns - ri->start_real_ns) / (double)NSEC_PER_SEC,
                    (double)ri->w->timer_ns / (double)NSEC_PER_SEC,
                    (unsigned long long)(s->pause_ns / 1000));
    dsl_text_printf(&b, " \"snapshot\": {");
    json_kv(&b, true, "error", s->err ? strerror(s->err < 0 ? -s->err : s->err) : "");
    json_kv(&b, false, "note", s->note);
    dsl_text_printf(&b, "},\n \"frames\": [");
    if (b.full) {
        free(b.p);
        return -EFBIG; /* not even the header fits: report_max_bytes is tiny */
    }
    unsigned n = ri->items ? ri->nitems : ri->nframes;
    for (unsigned i = 0; i < n; i++) {
        size_t mark = b.len;

        dsl_text_printf(&b, "%s\n  ", i ? "," : "");
        if (!ri->items)
            render_frame(&b, &ri->frames[i]);
        else if (ri->items[i].py)
            render_py_frame(&b, ri->items[i].py);
        else
            render_frame(&b, ri->items[i].native);
        if (b.full) {
            /* Leave the frame out whole, so the document stays valid. */
            dsl_text_rewind(&b, mark);
            truncated = true;
            break;
        }
    }
    /* The reserve kept back is for exactly this. */
    b.full = false;
    b.max += JSON_TAIL_RESERVE;
    dsl_text_printf(&b, "],\n \"truncated\": %s}\n", truncated ? "true" : "false");
    if (b.full || !b.p) {
        free(b.p);
        return -ENOMEM;
    }
    *ret_text = b.p;
    *ret_len = b.len;
    return 0;
}

int report_json_render(struct daemon *d, const struct report_info *ri, char **ret_text,
                       size_t *ret_len)
{
    return report_json_render_cfg(&d->cfg, d->hostname, ri, ret_text, ret_len);
}

int report_json_write(struct daemon *d, const struct report_info *ri, const char *log_path,
                      char *ret_path, size_t size)
{
    return report_json_write_cfg(&d->cfg, d->hostname, ri, log_path, ret_path, size);
}

int report_json_write_cfg(const struct config *cfg, const char *hostname,
                          const struct report_info *ri, const char *log_path, char *ret_path,
                          size_t size)
{
    char dir[PATH_MAX], name[NAME_MAX + 1], tmp[NAME_MAX + 8];
    _cleanup_close_ int dirfd = -1, fd = -1;
    const char *slash = strrchr(log_path, '/');
    char *text = NULL;
    size_t len, blen;
    int r;

    if (!slash || (size_t)(slash - log_path) >= sizeof(dir))
        return -EINVAL;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - log_path), log_path);
    blen = strlen(slash + 1);
    if (blen < 5 || blen > NAME_MAX - 2 || strcmp(slash + 1 + blen - 4, ".log") != 0)
        return -EINVAL;
    snprintf(name, sizeof(name), "%.*s.json", (int)(blen - 4), slash + 1);
    snprintf(tmp, sizeof(tmp), ".%.*s.tmp", (int)(sizeof(tmp) - 6), name);

    report_test_write_delay();
    r = report_json_render_cfg(cfg, hostname, ri, &text, &len);
    if (r < 0)
        return r;
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        r = -errno;
        goto out;
    }
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (fchmod(fd, 0640) < 0 || (r = dsl_write_all(fd, text, len)) < 0 || fsync(fd) < 0) {
        r = r < 0 ? r : -errno;
        unlinkat(dirfd, tmp, 0);
        goto out;
    }
    if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
        r = -errno;
        unlinkat(dirfd, tmp, 0);
        goto out;
    }
    snprintf(ret_path, size, "%s/%s", dir, name);
    r = 0;
out:
    free(text);
    return r;
}
