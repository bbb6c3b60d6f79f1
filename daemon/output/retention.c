/* SPDX-License-Identifier: MIT */
/*
 * Retention: keep the report directory within retention_max_files reports
 * and retention_max_bytes bytes, so a storm of undead requests cannot fill
 * the disk.  The oldest reports go first; report names begin with their
 * UTC time, so name order is time order.  A report's .log and .json twin
 * are one report and go together.
 *
 * The directory is scanned only when the running totals say a cap has been
 * passed, and then trimmed until a tenth of each cap is free, so a steady
 * stream of reports costs one scan per tenth of the cap, not one per report.
 * Only files named like reports are counted or ever removed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "util.h"

#define SCAN_MAX 1000000u /* directory entries looked at, at most */

static struct {
    bool valid;
    char dir[PATH_MAX];
    uint64_t reports, bytes;
} cache;

struct entry {
    char *name;
    uint64_t size;
};

static bool is_report_name(const char *n)
{
    size_t len = strlen(n);

    if (strncmp(n, "slow_request_", 13) != 0)
        return false;
    return (len > 17 && !strcmp(n + len - 4, ".log")) ||
           (len > 18 && !strcmp(n + len - 5, ".json"));
}

/* Length of the name without .log / .json: entries with equal stems are
 * one report. */
static size_t stem_len(const char *n)
{
    size_t len = strlen(n);
    return !strcmp(n + len - 4, ".log") ? len - 4 : len - 5;
}

static bool same_stem(const char *a, const char *b)
{
    size_t la = stem_len(a);
    return la == stem_len(b) && !strncmp(a, b, la);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

void retention_forget(void)
{
    cache.valid = false;
}

static void free_entries(struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

int retention_enforce(struct daemon *d, uint64_t added_bytes)
{
    const struct config *c = &d->cfg;
    uint64_t max_files = c->retention_max_files, max_bytes = c->retention_max_bytes;
    uint64_t reports = 0, bytes = 0, want_files, want_bytes;
    struct entry *v = NULL;
    size_t n = 0, cap = 0, i;
    unsigned removed = 0;
    struct dirent *e;
    DIR *dir;
    int dfd, r = 0;

    if (!max_files && !max_bytes)
        return 0;
    if (cache.valid && !strcmp(cache.dir, c->output_dir)) {
        cache.reports++;
        cache.bytes += added_bytes;
        if ((!max_files || cache.reports <= max_files) && (!max_bytes || cache.bytes <= max_bytes))
            return 0;
    }

    dir = opendir(c->output_dir);
    if (!dir)
        return -errno;
    dfd = dirfd(dir);
    while ((e = readdir(dir)) && n < SCAN_MAX) {
        struct stat st;

        if (!is_report_name(e->d_name))
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct entry *nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                r = -ENOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        v[n].name = strdup(e->d_name);
        if (!v[n].name) {
            r = -ENOMEM;
            goto out;
        }
        v[n].size = (uint64_t)st.st_size;
        n++;
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_entry);
    for (i = 0; i < n; i++) {
        if (i == 0 || !same_stem(v[i - 1].name, v[i].name))
            reports++;
        bytes += v[i].size;
    }

    /* Over a cap: trim to nine tenths of it (exactly the cap for small ones). */
    want_files = max_files ? max_files - max_files / 10 : UINT64_MAX;
    want_bytes = max_bytes ? max_bytes - max_bytes / 10 : UINT64_MAX;
    if ((max_files && reports > max_files) || (max_bytes && bytes > max_bytes)) {
        /* Oldest first; the newest report always stays. */
        for (i = 0; i < n && (reports > want_files || bytes > want_bytes) && reports > 1;) {
            size_t j = i;
            while (j < n && same_stem(v[i].name, v[j].name)) {
                if (unlinkat(dfd, v[j].name, 0) < 0 && errno != ENOENT) {
                    r = -errno;
                    goto out;
                }
                bytes -= v[j].size;
                j++;
            }
            reports--;
            removed++;
            i = j;
        }
    }
    cache.valid = true;
    dsl_strlcpy(cache.dir, c->output_dir, sizeof(cache.dir));
    cache.reports = reports;
    cache.bytes = bytes;
    r = (int)removed;
out:
    free_entries(v, n);
    closedir(dir);
    if (r < 0)
        cache.valid = false;
    return r;
}
