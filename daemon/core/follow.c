/* SPDX-License-Identifier: MIT */
/*
 * Following an undead request to its end.
 *
 * After the first report, the daemon keeps sampling that one thread
 * (follow_hz times a second, with the same short-pause snapshot) until the
 * request ends, the worker goes away, or follow_max_ms passes.  Each sample's
 * stack is merged into a tree of call paths with sample counts.  At the end
 * a section is appended to the same report file: how long the request really
 * took, how many samples and how much pause they cost, the tree with the
 * share of samples under each frame (what pyinstrument prints), and the
 * folded-stack lines ("a;b;c 12") that flamegraph.pl and speedscope read.
 *
 * Everything is bounded: at most follow_max requests followed at once, at
 * most FOLLOW_NODES tree nodes per request (further paths are counted under
 * "[other]"), at most DSL_FRAMES_MAX frames per sample.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis.h"
#include "capture.h"
#include "core.h"
#include "output.h"
#include "util.h"

#define FOLLOW_NODES 4096
#define LABEL_MAX 160

struct node {
    char label[LABEL_MAX];
    unsigned count;  /* samples whose stack passes through here */
    unsigned self;   /* samples whose stack ends here */
    int first_child, next_sibling;
};

struct follow {
    struct follow *next;
    uint64_t worker_id;
    pid_t pid, tid;
    uint32_t slot, seq;
    uint64_t start_ns;     /* the request's start (CLOCK_MONOTONIC) */
    uint64_t began_ns;     /* when following began */
    uint64_t last_seen_ns; /* last time the request was seen running */
    unsigned samples;
    uint64_t pause_ns;
    char path[PATH_MAX]; /* the report file to complete */
    char method[DSL_METHOD_MAX + 1];
    char url[DSL_URL_MAX + 1];
    struct node *nodes;
    int nnodes;
    unsigned dropped; /* samples that found no room in the tree */
    unsigned skipped; /* not taken: the process's Dwfl was busy (analysis thread) */
};

static struct follow *followed;
static unsigned nfollowed;

static int node_new(struct follow *f, const char *label)
{
    struct node *n;

    if (f->nnodes >= FOLLOW_NODES)
        return -1;
    n = &f->nodes[f->nnodes];
    memset(n, 0, sizeof(*n));
    dsl_strlcpy(n->label, label, sizeof(n->label));
    n->first_child = n->next_sibling = -1;
    return f->nnodes++;
}

static int child(struct follow *f, int parent, const char *label)
{
    int c = f->nodes[parent].first_child, last = -1;

    for (; c >= 0; last = c, c = f->nodes[c].next_sibling)
        if (!strcmp(f->nodes[c].label, label))
            return c;
    c = node_new(f, label);
    if (c < 0)
        return -1;
    if (last < 0)
        f->nodes[parent].first_child = c;
    else
        f->nodes[last].next_sibling = c;
    return c;
}

/* A frame as one line of the tree: function, and its file.  Not the line:
 * samples at different lines of one function belong together. */
static void label_of(const struct symframe *sf, char *out, size_t size)
{
    const char *base = strrchr(sf->file, '/');

    if (sf->file[0])
        snprintf(out, size, "%s (%s)", sf->function[0] ? sf->function : "??",
                 base ? base + 1 : sf->file);
    else if (sf->function[0])
        snprintf(out, size, "%s", sf->function);
    else
        snprintf(out, size, "0x%llx", (unsigned long long)sf->ip);
}

static void label_of_item(const struct report_item *it, char *out, size_t size)
{
    if (it->native) {
        label_of(it->native, out, size);
        return;
    }
    const char *file = it->py->filename ? it->py->filename : "??";
    const char *base = strrchr(file, '/');
    snprintf(out, size, "%s (%s)", it->py->function ? it->py->function : "??",
             base ? base + 1 : file);
}

/* Merge one sample into the tree, oldest frame first: native frames, with
 * Python frames in place of the interpreter's (report_merge). */
static void add_sample(struct follow *f, const struct snapshot *snap,
                       const struct symframe *frames, unsigned nframes)
{
    static struct report_item items[REPORT_ITEMS_MAX];
    unsigned unplaced, n = report_merge(snap, frames, nframes, items, &unplaced);
    char label[LABEL_MAX];
    int at = 0;

    f->nodes[0].count++;
    for (unsigned i = n; i-- > 0;) {
        label_of_item(&items[i], label, sizeof(label));
        int c = child(f, at, label);
        if (c < 0) {
            c = child(f, at, "[other]");
            if (c < 0) {
                f->dropped++;
                return;
            }
            f->nodes[c].count++;
            f->nodes[c].self++;
            return;
        }
        f->nodes[c].count++;
        at = c;
    }
    f->nodes[at].self++;
}

static struct follow *find(uint64_t worker_id, uint32_t slot, uint32_t seq)
{
    for (struct follow *f = followed; f; f = f->next)
        if (f->worker_id == worker_id && f->slot == slot && f->seq == seq)
            return f;
    return NULL;
}

static void schedule(struct daemon *d, struct follow *f, uint64_t now)
{
    struct deadline e = {
        .when_ns = now + NSEC_PER_SEC / (d->cfg.follow_hz ? d->cfg.follow_hz : 1),
        .worker_id = f->worker_id,
        .slot = f->slot,
        .seq = f->seq,
        .kind = DEADLINE_FOLLOW,
    };
    if (heap_push(&d->heap, &e) < 0)
        log_warnx("deadline queue full: stopped following pid %d tid %d early", (int)f->pid,
                  (int)f->tid);
}

bool follow_start(struct daemon *d, struct worker *w, uint32_t slot,
                  const struct dsl_request *req, const char *report_path,
                  const struct snapshot *first, const struct symframe *frames, unsigned nframes)
{
    struct follow *f;
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);

    if (!d->cfg.follow_hz || !report_path[0])
        return false;
    /* Reports are written a little after the snapshot (watch.c's queue):
     * follow only a request that is still running. */
    struct dsl_request cur;
    if (slot >= w->nslots || dsl_sb_read_slot(w->sb, w->nslots, slot, &cur) != 1 ||
        cur.seq != req->seq)
        return false;
    if (nfollowed >= d->cfg.follow_max) {
        log_info("not following pid %d tid %d: already following %u requests (follow_max)",
                 (int)w->pid, (int)req->tid, nfollowed);
        return false;
    }
    f = calloc(1, sizeof(*f));
    if (f)
        f->nodes = calloc(FOLLOW_NODES, sizeof(*f->nodes));
    if (!f || !f->nodes) {
        free(f);
        return false;
    }
    f->worker_id = w->id;
    f->pid = w->pid;
    f->tid = req->tid;
    f->slot = slot;
    f->seq = req->seq;
    f->start_ns = req->start_ns;
    f->began_ns = f->last_seen_ns = now;
    dsl_strlcpy(f->path, report_path, sizeof(f->path));
    dsl_strlcpy(f->method, req->method, sizeof(f->method));
    dsl_strlcpy(f->url, req->url, sizeof(f->url));
    node_new(f, "[all]");
    /* The report's own snapshot is the first sample. */
    if (nframes) {
        add_sample(f, first, frames, nframes);
        f->samples++;
        f->pause_ns += first->pause_ns;
    }
    f->next = followed;
    followed = f;
    nfollowed++;
    schedule(d, f, now);
    return true;
}

static void print_tree(FILE *out, const struct follow *f, int n, int depth, unsigned total)
{
    /* Children in order of weight, heaviest first (small n: selection). */
    int order[256];
    int k = 0;

    for (int c = f->nodes[n].first_child; c >= 0 && k < 256; c = f->nodes[c].next_sibling)
        order[k++] = c;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (f->nodes[order[j]].count > f->nodes[order[i]].count) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    for (int i = 0; i < k; i++) {
        const struct node *c = &f->nodes[order[i]];
        fprintf(out, "  %5.1f%%  %*s%s\n", 100.0 * c->count / total, depth * 2, "", c->label);
        if (depth < 64)
            print_tree(out, f, order[i], depth + 1, total);
    }
}

/* Folded stacks: one line per path that ends somewhere, with its count. */
static void print_folded(FILE *out, const struct follow *f, int n, char *prefix, size_t len,
                         size_t cap)
{
    for (int c = f->nodes[n].first_child; c >= 0; c = f->nodes[c].next_sibling) {
        const struct node *nd = &f->nodes[c];
        size_t l = len;
        int w = snprintf(prefix + l, cap - l, "%s%s", l ? ";" : "", nd->label);
        if (w < 0 || (size_t)w >= cap - l)
            continue; /* too deep to print */
        /* The folded format separates frames with ';' (the count follows
         * the last space, so spaces inside frames are fine). */
        for (size_t i = l + (l ? 1 : 0); i < l + (size_t)w; i++)
            if (prefix[i] == ';')
                prefix[i] = ',';
        if (nd->self)
            fprintf(out, "%s %u\n", prefix, nd->self);
        print_folded(out, f, c, prefix, l + (size_t)w, cap);
        prefix[l] = '\0';
    }
}

/* ---- the flame graph --------------------------------------------------- */

#define SVG_WIDTH 1200
#define SVG_ROW 17

static void xml_escaped(FILE *out, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default:
            if ((unsigned char)s[i] >= 0x20)
                fputc(s[i], out);
        }
    }
}

static int tree_depth(const struct follow *f, int n, int depth)
{
    int best = depth;
    if (depth > 200)
        return depth;
    for (int c = f->nodes[n].first_child; c >= 0; c = f->nodes[c].next_sibling) {
        int d = tree_depth(f, c, depth + 1);
        if (d > best)
            best = d;
    }
    return best;
}

/* One box per node: width by samples, the root at the bottom. */
static void svg_node(FILE *out, const struct follow *f, int n, double x, int depth, int rows,
                     double scale, unsigned total)
{
    const struct node *nd = &f->nodes[n];
    double w = nd->count * scale;
    double y = (double)(rows - 1 - depth) * SVG_ROW;
    unsigned h = 0;

    for (const char *p = nd->label; *p; p++)
        h = h * 31 + (unsigned char)*p;
    fprintf(out, "<g><title>");
    xml_escaped(out, nd->label, LABEL_MAX);
    fprintf(out, " (%u samples, %.1f%%)</title>", nd->count, 100.0 * nd->count / total);
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
            "fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>",
            x, y, w > 0.5 ? w - 0.5 : w, SVG_ROW - 1, 200 + h % 56, 80 + (h >> 8) % 120,
            40 + (h >> 16) % 40);
    if (w > 30) {
        size_t fit = (size_t)((w - 6) / 7);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + SVG_ROW - 5);
        xml_escaped(out, nd->label, fit);
        if (strlen(nd->label) > fit && fit > 2)
            fputs("..", out);
        fprintf(out, "</text>");
    }
    fprintf(out, "</g>\n");
    for (int c = nd->first_child; c >= 0 && depth < 200; c = f->nodes[c].next_sibling) {
        svg_node(out, f, c, x, depth + 1, rows, scale, total);
        x += f->nodes[c].count * scale;
    }
}

/* report.log -> report.svg, atomically, 0640. */
static void write_svg(const struct follow *f)
{
    char path[PATH_MAX + 8], tmp[PATH_MAX + 16];
    size_t n = strlen(f->path);
    unsigned total = f->nodes[0].count;
    int rows = tree_depth(f, 0, 0) + 1, fd;
    FILE *out;

    if (total < 2 || n < 5 || strcmp(f->path + n - 4, ".log") != 0)
        return;
    snprintf(path, sizeof(path), "%.*s.svg", (int)(n - 4), f->path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        if (fd >= 0)
            close(fd);
        log_warn("cannot write the flame graph %s", path);
        return;
    }
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"monospace\" font-size=\"12\">\n"
            "<title>",
            SVG_WIDTH, rows * SVG_ROW);
    xml_escaped(out, f->method, 64);
    fputc(' ', out);
    xml_escaped(out, f->url, 200);
    fprintf(out, ": %u samples</title>\n", total);
    svg_node(out, f, 0, 0, 0, rows, (double)SVG_WIDTH / total, total);
    fprintf(out, "</svg>\n");
    bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        log_warn("cannot write the flame graph %s", path);
        unlink(tmp);
    }
}

static void finish(struct daemon *d, struct follow *f, const char *how, uint64_t end_ns)
{
    double took = (double)(end_ns - f->start_ns) / 1e9;
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    int fd;

    /* The section is made once, in memory: appended to the report, and
     * sent as the follow-up mail and event. */
    if (mem) {
        fprintf(mem, "\nFollow-up: %s after %.3f s (sampled %u times, %.1f ms total pause)\n",
                how, took, f->samples, (double)f->pause_ns / 1e6);
        if (f->samples) {
            fprintf(mem, "\nWhere the time went (share of %u samples taken over %.3f s):\n",
                    f->samples, (double)(f->last_seen_ns - f->began_ns) / 1e9);
            print_tree(mem, f, 0, 0, f->nodes[0].count ? f->nodes[0].count : 1);
            fprintf(mem, "\nFolded stacks (flamegraph.pl, speedscope):\n");
            char *prefix = malloc(64 * 1024);
            if (prefix) {
                prefix[0] = '\0';
                print_folded(mem, f, 0, prefix, 0, 64 * 1024);
                free(prefix);
            }
            if (f->dropped)
                fprintf(mem, "[%u samples did not fit]\n", f->dropped);
            if (f->skipped)
                fprintf(mem, "[%u samples skipped: the daemon was naming another report of "
                             "this process]\n", f->skipped);
        }
        if (fclose(mem) != 0) {
            free(text);
            text = NULL;
        }
    }
    fd = text ? open(f->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (fd < 0 || dsl_write_all(fd, text, text_len) < 0) {
        log_warn("cannot complete the report %s", f->path);
    } else if (d->cfg.follow_svg) {
        write_svg(f);
    }
    if (fd >= 0)
        close(fd);
    if (text && d->cfg.follow_notify) {
        struct followup_info fu = {
            .method = f->method,
            .url = f->url,
            .how = how,
            .pid = f->pid,
            .tid = f->tid,
            .took_s = took,
            .pause_ms = (double)f->pause_ns / 1e6,
            .samples = f->samples,
            .report_path = f->path,
            .text = text,
            .text_len = text_len,
        };
        delivery_enqueue_followup(d, &fu);
    }
    free(text);
    log_notice("follow-up of %s %s on pid %d tid %d: %s after %.3f s, %u samples", f->method,
               f->url, (int)f->pid, (int)f->tid, how, (double)(end_ns - f->start_ns) / 1e9,
               f->samples);
    if (d->cfg.syslog.enabled) {
        char line[2048], method[80], url[4 * DSL_STR_MAX + 3];

        sink_syslog_token(f->method, method, sizeof(method));
        sink_syslog_quote(f->url, url, sizeof(url));
        snprintf(line, sizeof(line),
                 "follow-up: %s %s pid=%d tid=%d: %s after %.3f s; %u samples, %.1f ms paused; "
                 "report=%s",
                 method, url, (int)f->pid, (int)f->tid, how,
                 (double)(end_ns - f->start_ns) / 1e9, f->samples, (double)f->pause_ns / 1e6,
                 f->path);
        int r = sink_syslog_text(d, line);
        if (r < 0) {
            errno = -r;
            log_warn("cannot send the follow-up to syslog");
        }
    }
}

static void drop(struct follow *f)
{
    struct follow **pp = &followed;

    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    nfollowed--;
    free(f->nodes);
    free(f);
}

void follow_fire(struct daemon *d, const struct deadline *e)
{
    static struct snapshot snap;
    static struct symframe frames[DSL_SYMFRAMES_MAX];
    struct follow *f = find(e->worker_id, e->slot, e->seq);
    struct worker *w = registry_find(d, e->worker_id);
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
    struct dsl_request req;

    if (!f)
        return;
    if (!w || w->dead || e->slot >= w->nslots) {
        finish(d, f, "did not finish: the worker went away", f->last_seen_ns);
        drop(f);
        return;
    }
    if (dsl_sb_read_slot(w->sb, w->nslots, e->slot, &req) != 1 || req.seq != f->seq) {
        finish(d, f, "the request ended", now);
        drop(f);
        return;
    }
    if (now - f->began_ns > (uint64_t)d->cfg.follow_max_ms * NSEC_PER_MSEC) {
        finish(d, f, "did not finish: stopped following", now);
        drop(f);
        return;
    }
    f->last_seen_ns = now;
    /* The analysis thread is naming a report of this process: skip this
     * sample rather than wait (the loop must not). */
    snap.changed = false;
    if (namer_trylock(w)) {
        if (snapshot_take(d, w, f->tid, &snap) == 0) {
            int n = snapshot_name(&d->cfg, w, &snap, false, frames, DSL_SYMFRAMES_MAX);
            /* Unwinding and naming read the process too: the sample counts
             * only if it is still the one that registered. */
            if (snapshot_still_same(w, &snap) && n > 0) {
                add_sample(f, &snap, frames, (unsigned)n);
                f->samples++;
                f->pause_ns += snap.pause_ns;
            }
            symframes_free(frames, n > 0 ? (unsigned)n : 0);
        } else if (!snap.changed) {
            f->skipped += snap.err == EINPROGRESS || snap.err == EBUSY;
        }
        namer_unlock(w);
    } else {
        f->skipped++;
    }
    if (snap.changed) {
        /* Not followed, nor watched, any more; finishes and drops f
         * (follow_worker_gone). */
        registry_remove_changed(d, w, "not traced", snap.note);
        return;
    }
    schedule(d, f, dsl_now_ns(CLOCK_MONOTONIC));
}

void follow_worker_gone(struct daemon *d, struct worker *w)
{
    struct follow *f = followed, *next;
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);

    for (; f; f = next) {
        struct dsl_request req;

        next = f->next;
        if (f->worker_id != w->id)
            continue;
        /* A worker that ends its request and exits at once: the request
         * did finish (the scoreboard is still mapped here). */
        if (w->sb && f->slot < w->nslots &&
            (dsl_sb_read_slot(w->sb, w->nslots, f->slot, &req) != 1 || req.seq != f->seq))
            finish(d, f, "the request ended", now);
        else
            finish(d, f, "did not finish: the worker exited", f->last_seen_ns);
        drop(f);
    }
}

void follow_scan(struct daemon *d, uint64_t now)
{
    struct follow *f = followed, *next;

    /* Requests that ended between samples are noticed at the scan rate, so
     * the total duration is known to the scan interval. */
    for (; f; f = next) {
        struct worker *w = registry_find(d, f->worker_id);
        struct dsl_request req;

        next = f->next;
        if (!w || w->dead)
            continue;
        int r = dsl_sb_read_slot(w->sb, w->nslots, f->slot, &req);
        if (r == -EAGAIN)
            continue;
        if (r != 1 || req.seq != f->seq) {
            finish(d, f, "the request ended", now);
            drop(f);
        } else {
            f->last_seen_ns = now;
        }
    }
}

unsigned follow_count(void)
{
    return nfollowed;
}

unsigned follow_list(struct follow_info *out, unsigned max)
{
    unsigned n = 0;

    for (struct follow *f = followed; f && n < max; f = f->next)
        out[n++] = (struct follow_info){
            .pid = f->pid,
            .tid = f->tid,
            .start_ns = f->start_ns,
            .samples = f->samples,
            .pause_ns = f->pause_ns,
            .method = f->method,
            .url = f->url,
        };
    return n;
}

void follow_stop_all(struct daemon *d)
{
    while (followed) {
        finish(d, followed, "did not finish: dogslowd stopped", followed->last_seen_ns);
        drop(followed);
    }
}
