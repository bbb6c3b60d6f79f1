/* SPDX-License-Identifier: MIT */
/*
 * The delivery spool: a directory of files, one per (report, sink), that
 * outlives the daemon.  Each entry is
 *
 *     key value\n      (header lines: sink, fingerprint, subject, ...)
 *     \n
 *     body             (the mail's parts, or the Sentry event)
 *
 * written to ".tmp-NAME" and renamed, so a reader (the delivery thread, or
 * a daemon started after a crash) only ever sees whole entries.  Names are
 * "<realtime ns, 20 digits>-<pid>-<counter>[-<tag>].<sink>": sorting them sorts by
 * age.  The directory and the files are the daemon's only (0700, 0600):
 * reports hold what a request was doing.
 *
 * The daemon's thread adds entries, the delivery thread removes them: the
 * byte and entry counts are atomics, set once by spool_open().
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "util.h"

static uint64_t spool_nbytes, spool_nentries;
static uint64_t spool_counter;

void spool_dir_of(const struct config *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/.spool", c->output_dir);
}

uint64_t spool_bytes(void)
{
    return __atomic_load_n(&spool_nbytes, __ATOMIC_RELAXED);
}

uint64_t spool_entries(void)
{
    return __atomic_load_n(&spool_nentries, __ATOMIC_RELAXED);
}

static bool is_entry_name(const char *n)
{
    size_t len = strlen(n);

    /* Our own names only: digits first, a sink after the dot.  Temporary
     * files and rejected entries do not count. */
    return len > 22 && len < SPOOL_NAME_MAX && n[0] >= '0' && n[0] <= '9' && strchr(n, '.') &&
           !strchr(n, '/');
}

int spool_open(const char *dir)
{
    struct stat st;
    uint64_t bytes = 0, entries = 0;
    DIR *dp;
    struct dirent *e;
    int r;

    r = dsl_mkdir_p(dir, 0755, 0700);
    if (r < 0)
        return r;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
        return -errno;
    dp = opendir(dir);
    if (!dp)
        return -errno;
    while ((e = readdir(dp))) {
        if (!strncmp(e->d_name, ".tmp-", 5)) {
            /* Half-written by a daemon that died: its report is in the
             * file output; the entry never counted. */
            unlinkat(dirfd(dp), e->d_name, 0);
            continue;
        }
        if (!is_entry_name(e->d_name))
            continue;
        if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            bytes += (uint64_t)st.st_size;
            entries++;
        }
    }
    closedir(dp);
    __atomic_store_n(&spool_nbytes, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&spool_nentries, entries, __ATOMIC_RELAXED);
    return 0;
}

int spool_put(const char *dir, const char *sink, const char *tag, const char *hdr, size_t hlen,
              const void *body, size_t blen, uint64_t max_bytes, char *ret_name, size_t size)
{
    char name[SPOOL_NAME_MAX], tmp[PATH_MAX], final[PATH_MAX];
    uint64_t total = (uint64_t)hlen + 1 + blen;
    _cleanup_close_ int fd = -1;
    int r;

    if (strlen(sink) > 8 || strchr(sink, '/') || strchr(sink, '.') || strchr(sink, '-'))
        return -EINVAL;
    if (tag && (strlen(tag) > 16 || tag[strspn(tag, "0123456789abcdef")]))
        return -EINVAL;
    if (total > SPOOL_ENTRY_MAX)
        return -EFBIG;
    if (spool_entries() >= SPOOL_ENTRIES_MAX || (max_bytes && spool_bytes() + total > max_bytes))
        return -ENOSPC;
    snprintf(
        name, sizeof(name), "%020llu-%d-%06llu%s%s.%s",
        (unsigned long long)dsl_now_ns(CLOCK_REALTIME), (int)getpid(),
        (unsigned long long)(__atomic_add_fetch(&spool_counter, 1, __ATOMIC_RELAXED) % 1000000u),
        tag && tag[0] ? "-" : "", tag ? tag : "", sink);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(final, sizeof(final), "%s/%s", dir, name) >= sizeof(final))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    r = dsl_write_all(fd, hdr, hlen);
    if (r == 0)
        r = dsl_write_all(fd, "\n", 1);
    if (r == 0)
        r = dsl_write_all(fd, body, blen);
    /* No fsync: the entry must survive the daemon (SIGKILL, a crash), which
     * the page cache gives; an fsync per report would put disk latency on
     * the detection path, and the report file is not synced either. */
    if (r == 0 && rename(tmp, final) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    __atomic_add_fetch(&spool_nbytes, total, __ATOMIC_RELAXED);
    __atomic_add_fetch(&spool_nentries, 1, __ATOMIC_RELAXED);
    dsl_strlcpy(ret_name, name, size);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

int spool_list(const char *dir, char (**ret_names)[SPOOL_NAME_MAX], size_t max, size_t *ret_n)
{
    char(*names)[SPOOL_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *dp;

    dp = opendir(dir);
    if (!dp)
        return -errno;
    while ((e = readdir(dp)) && n < max) {
        if (!is_entry_name(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *p;
            if (ncap > max)
                ncap = max;
            p = realloc(names, ncap * sizeof(*names));
            if (!p) {
                free(names);
                closedir(dp);
                return -ENOMEM;
            }
            names = p;
            cap = ncap;
        }
        dsl_strlcpy(names[n++], e->d_name, SPOOL_NAME_MAX);
    }
    closedir(dp);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    *ret_names = names;
    *ret_n = n;
    return 0;
}

int spool_read(const char *dir, const char *name, char **ret_buf, size_t *ret_len, size_t *ret_body)
{
    char path[PATH_MAX];
    _cleanup_close_ int fd = -1;
    struct stat st;
    size_t got = 0;
    char *buf, *sep;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)SPOOL_ENTRY_MAX)
        return -EBADMSG;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return -ENOMEM;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return n < 0 ? -errno : -EBADMSG;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (got && buf[0] == '\n')
        sep = buf;
    else
        sep = memmem(buf, got, "\n\n", 2);
    if (!sep) {
        free(buf);
        return -EBADMSG;
    }
    *ret_body = (size_t)(sep - buf) + (sep == buf ? 1 : 2);
    *ret_buf = buf;
    *ret_len = got;
    return 0;
}

int spool_header(const char *buf, size_t body, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);

    for (size_t i = 0; i < body;) {
        const char *line = buf + i;
        const char *nl = memchr(line, '\n', body - i);
        size_t len = nl ? (size_t)(nl - line) : body - i;

        if (len > klen && !strncmp(line, key, klen) && line[klen] == ' ') {
            size_t vlen = len - klen - 1;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, line + klen + 1, vlen);
            out[vlen] = '\0';
            return 0;
        }
        i += len + 1;
    }
    if (size)
        out[0] = '\0';
    return -ENOENT;
}

static int take_out(const char *dir, const char *name, bool reject)
{
    char path[PATH_MAX], to[PATH_MAX];
    struct stat st;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
        (size_t)snprintf(to, sizeof(to), "%s/rejected-%s", dir, name) >= sizeof(to))
        return -ENAMETOOLONG;
    if (lstat(path, &st) < 0)
        return -errno;
    if (reject ? rename(path, to) < 0 : unlink(path) < 0)
        return -errno;
    __atomic_sub_fetch(&spool_nbytes,
                       (uint64_t)st.st_size > spool_bytes() ? spool_bytes() : (uint64_t)st.st_size,
                       __ATOMIC_RELAXED);
    if (spool_entries())
        __atomic_sub_fetch(&spool_nentries, 1, __ATOMIC_RELAXED);
    return 0;
}

int spool_remove(const char *dir, const char *name)
{
    return take_out(dir, name, false);
}

int spool_reject(const char *dir, const char *name)
{
    return take_out(dir, name, true);
}

const char *spool_sink_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot ? dot + 1 : "";
}

void spool_tag_of(const char *name, char *out, size_t size)
{
    const char *dot = strrchr(name, '.'), *p = name;
    unsigned dashes = 0;

    out[0] = '\0';
    if (!dot)
        return;
    /* The tag is the fourth dash-separated field, if any. */
    for (; p < dot; p++)
        if (*p == '-' && ++dashes == 3) {
            snprintf(out, size, "%.*s", (int)(dot - p - 1), p + 1);
            return;
        }
}
