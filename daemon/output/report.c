/* SPDX-License-Identifier: MIT */
/*
 * Reports: render an undead request in dogslow's text format and write it
 * to the report directory, atomically (temporary file, fsync, rename that
 * never replaces) and with mode 0640.
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
#include "textbuf.h"
#include "util.h"

#define REPORT_MAX     (1024 * 1024) /* bytes per report */
#define SOURCE_MAX     (16 * 1024 * 1024) /* bytes of a source file scanned */
#define SOURCE_LINE_MAX 200           /* bytes of a source line shown */

static void fmt_time(uint64_t real_ns, char *out, size_t size)
{
    time_t t = (time_t)(real_ns / NSEC_PER_SEC);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, size, "%d-%m-%Y %H:%M:%S UTC", &tm);
}

/* From /proc/PID/status, not /proc/PID/stat: the latter sums the CPU time
 * of every thread, which costs milliseconds in a process with thousands. */
static pid_t parent_pid(pid_t pid)
{
    long v;
    return dsl_proc_status_field(pid, 0, "PPid", &v) == 0 ? (pid_t)v : 0;
}

/*
 * The source line for file:line, when the worker's user could read it too:
 * the file name comes from the worker's DWARF, and the daemon must not be
 * tricked into quoting files the worker has no right to (see
 * docs/reliability.md, threat model).
 */
static bool source_line(const struct worker *w, const char *file, int line, char *out,
                        size_t size)
{
    _cleanup_close_ int fd = -1;
    struct stat st;
    char buf[8192];
    size_t col = 0, scanned = 0;
    int cur = 1;
    ssize_t n;

    /* Opened as the worker would: every directory on the way searchable,
     * the file readable, by its fs uid, gid and groups (the daemon's
     * CAP_DAC_READ_SEARCH must not quote /root/... into a report). */
    fd = ident_open_as(&w->ident, file);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (cur == line) {
                    out[col] = '\0';
                    return true;
                }
                cur++;
                continue;
            }
            if (cur == line && col < size - 1 && col < SOURCE_LINE_MAX) {
                unsigned char c = (unsigned char)buf[i];
                out[col++] = (c == '\t') ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
            }
        }
        scanned += (size_t)n;
        if (scanned > SOURCE_MAX)
            return false;
    }
    if (cur == line && col) {
        out[col] = '\0';
        return true;
    }
    return false;
}

static void trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
    while (s[i] == ' ')
        i++;
    memmove(s, s + i, n - i + 1);
}

static void render_frame(struct dsl_text *b, const struct worker *w, const struct symframe *f,
                         bool with_locals)
{
    char src[SOURCE_LINE_MAX + 1];
    const char *inl = f->inlined ? " (inlined)" : "";

    if (f->file[0] && f->line > 0) {
        dsl_text_printf(b, "  File \"%s\", line %d, in %s%s\n", f->file, f->line,
                        f->function[0] ? f->function : "??", inl);
        if (source_line(w, f->file, f->line, src, sizeof(src))) {
            trim(src);
            if (src[0])
                dsl_text_printf(b, "    %s\n", src);
        }
    } else if (f->function[0]) {
        dsl_text_printf(b, "  File \"%s\", in %s+0x%llx%s\n", f->module, f->function,
                        (unsigned long long)f->offset, inl);
    } else {
        dsl_text_printf(b, "  File \"%s\", at 0x%llx\n", f->module, (unsigned long long)f->ip);
    }
    if (!with_locals)
        return;
    for (unsigned i = 0; i < f->nvars; i++)
        dsl_text_printf(b, "      %s = %s\n", f->vars[i].name, f->vars[i].value);
    if (f->vars_note && f->nvars)
        dsl_text_printf(b, "      [%s]\n", f->vars_note);
}

/*
 * One line of the stack as printed: a native frame, or a Python frame in
 * place of the interpreter's eval-loop frame that runs it (py-spy dump
 * --native style; see analysis.h for the rule).
 */

static bool is_eval_frame(const struct symframe *f)
{
    return !strcmp(f->function, "_PyEval_EvalFrameDefault") ||
           !strcmp(f->function, "_PyEval_EvalFrame");
}

/* Innermost first, like the frames; returns the count and how many Python
 * frames could not be placed (no eval frame left for them). */
unsigned report_merge(const struct snapshot *snap, const struct symframe *frames,
                      unsigned nframes, struct report_item *out, unsigned *ret_unplaced)
{
    const struct py_stack *py = snap && snap->have_py ? &snap->py : NULL;
    unsigned n = 0, pi = 0;

    for (unsigned i = 0; i < nframes && n < REPORT_ITEMS_MAX; i++) {
        const struct symframe *f = &frames[i];
        if (py && pi < py->nframes && is_eval_frame(f) && !f->inlined) {
            do {
                out[n++] = (struct report_item){.py = &py->frames[pi]};
            } while (!py->frames[pi++].entry && pi < py->nframes && n < REPORT_ITEMS_MAX);
            continue;
        }
        out[n++] = (struct report_item){.native = f};
    }
    *ret_unplaced = py && pi < py->nframes ? py->nframes - pi : 0;
    for (; py && pi < py->nframes && n < REPORT_ITEMS_MAX; pi++)
        out[n++] = (struct report_item){.py = &py->frames[pi]};
    return n;
}

static void render_py_frame(struct dsl_text *b, const struct config *cfg, const struct worker *w,
                            const struct py_frame *f, bool with_locals)
{
    char src[SOURCE_LINE_MAX + 1];

    if (f->line > 0)
        dsl_text_printf(b, "  File \"%s\", line %d, in %s\n", f->filename ? f->filename : "??",
                        f->line, f->function ? f->function : "??");
    else
        dsl_text_printf(b, "  File \"%s\", in %s\n", f->filename ? f->filename : "??",
                        f->function ? f->function : "??");
    if (f->filename && f->filename[0] == '/' && f->line > 0 &&
        source_line(w, f->filename, f->line, src, sizeof(src))) {
        trim(src);
        if (src[0])
            dsl_text_printf(b, "    %s\n", src);
    }
    if (!with_locals)
        return;
    for (unsigned i = 0; i < f->nlocals; i++) {
        const char *name = f->locals[i].name ? f->locals[i].name : "?";
        const char *value = f->locals[i].value ? f->locals[i].value : "?";
        if (redact_name(cfg, name) || redact_card_number(value))
            value = "[redacted]";
        dsl_text_printf(b, "      %s = %s\n", name, value);
    }
    if (f->locals_truncated)
        dsl_text_printf(b, "      [more locals not shown]\n");
}

/* The whole stack, oldest call first. */
static void render_stack(struct dsl_text *b, const struct config *cfg, const struct report_info *ri,
                         bool with_locals)
{
    static struct report_item items[REPORT_ITEMS_MAX];
    unsigned unplaced = 0, n = report_merge(ri->snap, ri->frames, ri->nframes, items, &unplaced);

    if (unplaced)
        dsl_text_printf(b, "  [%u Python frames below could not be placed among the native ones]\n",
                        unplaced);
    for (unsigned i = n; i-- > 0;) {
        if (items[i].py)
            render_py_frame(b, cfg, ri->w, items[i].py, with_locals);
        else
            render_frame(b, ri->w, items[i].native, with_locals);
    }
}

static int render(const struct config *cfg, const char *hostname, const struct report_info *ri,
                  struct dsl_text *b)
{
    char now[64], started[64];
    const struct snapshot *s = ri->snap;

    fmt_time(ri->now_real_ns, now, sizeof(now));
    fmt_time(ri->start_real_ns, started, sizeof(started));
    dsl_text_printf(b, "%s: %s\n\n", ri->heading ? ri->heading : "Undead request intercepted at",
                    now);
    dsl_text_printf(b, "%s %s\n", ri->req->method, ri->req->url);
    dsl_text_printf(b, "Hostname:   %s\n", hostname);
    dsl_text_printf(b, "Program:    %s\n", ri->w->program);
    dsl_text_printf(b, "Thread ID:  %d\n", (int)ri->req->tid);
    dsl_text_printf(b, "Process ID: %d\n", (int)ri->w->pid);
    dsl_text_printf(b, "Parent PID: %d\n", (int)parent_pid(ri->w->pid));
    dsl_text_printf(b, "Started:    %s\n", started);
    dsl_text_printf(b, "Running:    %.3f s\n",
                    (double)(ri->now_real_ns - ri->start_real_ns) / (double)NSEC_PER_SEC);
    if (s->pause_ns)
        dsl_text_printf(b, "Paused:     %llu us (the thread was held this long for the snapshot)\n",
                        (unsigned long long)(s->pause_ns / 1000));
    dsl_text_printf(b, "\n");
    if (s->err)
        dsl_text_printf(b, "  [%s]\n", s->note);
    else if (s->note[0])
        dsl_text_printf(b, "  [%s]\n", s->note);
    if (ri->w->py_state == -2 && ri->w->py_why[0])
        dsl_text_printf(b, "  [%s: Python frames not shown]\n", ri->w->py_why);
    if (ri->snap && ri->snap->have_py && ri->snap->py.note[0])
        dsl_text_printf(b, "  [Python: %s]\n", ri->snap->py.note);
    /* Oldest call first, as in a Python traceback. */
    render_stack(b, cfg, ri, false);
    dsl_text_printf(b, "\n");
    if (cfg->stack_vars && ri->nframes) {
        dsl_text_printf(b, "\nFull backtrace with local variables:\n\n");
        render_stack(b, cfg, ri, true);
        dsl_text_printf(b, "\n");
    }
    if (b->full)
        return -EFBIG;
    return b->p ? 0 : -ENOMEM;
}

int report_render_cfg(const struct config *cfg, const char *hostname,
                      const struct report_info *ri, char **ret_text, size_t *ret_len)
{
    struct dsl_text b;
    int r;
    /* report_max_bytes (config.c) caps it below REPORT_MAX. */
    size_t cap = cfg->report_max_bytes && cfg->report_max_bytes < REPORT_MAX
                     ? cfg->report_max_bytes
                     : REPORT_MAX;

    /* Whole lines or none: the text stops at the first one that does not
     * fit, then the cut is made and marked below. */
    dsl_text_init_growable(&b, REPORT_MAX, DSL_TEXT_WHOLE);
    r = render(cfg, hostname, ri, &b);
    if (r == -EFBIG || (r == 0 && b.len > cap)) {
        /* Keep what fits, and say so. */
        b.full = false;
        dsl_text_rewind(&b, cap - 64);
        dsl_text_printf(&b, "\n[report truncated at %zu bytes]\n", cap - 64);
    } else if (r < 0) {
        free(b.p);
        return r;
    }
    *ret_text = b.p;
    *ret_len = b.len;
    return 0;
}

int report_write_cfg(const struct config *cfg, const char *hostname, const struct report_info *ri,
                     char *ret_path, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    char stamp[32], name[128], tmpname[160];
    _cleanup_close_ int dirfd = -1, fd = -1;
    time_t t = (time_t)(ri->now_real_ns / NSEC_PER_SEC);
    struct tm tm;
    int r;

    report_test_write_delay();
    r = report_render_cfg(cfg, hostname, ri, &text, &len);
    if (r < 0)
        return r;

    r = dsl_mkdir_p(cfg->output_dir, 0750, 0750);
    if (r < 0)
        goto out;
    dirfd = open(cfg->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        r = -errno;
        goto out;
    }
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(tmpname, sizeof(tmpname), ".slow_request_%s_%d_%d.tmp", stamp, (int)ri->w->pid,
             (int)ri->req->tid);
    fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (fchmod(fd, 0640) < 0 || (r = dsl_write_all(fd, text, len)) < 0 || fsync(fd) < 0) {
        r = r < 0 ? r : -errno;
        unlinkat(dirfd, tmpname, 0);
        goto out;
    }
    /* Never replace an existing report: add a counter instead. */
    for (int i = 1; i < 100; i++) {
        if (i == 1)
            snprintf(name, sizeof(name), "slow_request_%s_%d_%d.log", stamp, (int)ri->w->pid,
                     (int)ri->req->tid);
        else
            snprintf(name, sizeof(name), "slow_request_%s_%d_%d_%d.log", stamp,
                     (int)ri->w->pid, (int)ri->req->tid, i);
        r = renameat2(dirfd, tmpname, dirfd, name, RENAME_NOREPLACE);
        if (r == 0 || errno != EEXIST)
            break;
    }
    if (r < 0) {
        r = -errno;
        unlinkat(dirfd, tmpname, 0);
        goto out;
    }
    snprintf(ret_path, size, "%s/%s", cfg->output_dir, name);
    r = 0;
out:
    free(text);
    return r;
}

int report_render(struct daemon *d, const struct report_info *ri, char **ret_text,
                  size_t *ret_len)
{
    return report_render_cfg(&d->cfg, d->hostname, ri, ret_text, ret_len);
}

int report_write(struct daemon *d, const struct report_info *ri, char *ret_path, size_t size)
{
    return report_write_cfg(&d->cfg, d->hostname, ri, ret_path, size);
}

bool report_source_line(const struct worker *w, const char *file, int line, char *out,
                        size_t size)
{
    if (!source_line(w, file, line, out, size))
        return false;
    trim(out);
    return true;
}
