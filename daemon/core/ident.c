/* SPDX-License-Identifier: MIT */
/*
 * A registered process's identity (see core.h for why).  Everything here
 * parses text the kernel writes about a process the worker controls (its
 * command name is any 16 bytes), so every field is looked for, bounded and
 * checked.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

/* The value after "\nKey:" in a status text, or NULL. */
static const char *status_line(const char *text, const char *key)
{
    char needle[32];
    const char *p;

    snprintf(needle, sizeof(needle), "\n%s:", key);
    p = strstr(text, needle);
    return p ? p + strlen(needle) : NULL;
}

/* n unsigned numbers separated by blanks, up to the end of the line. */
static int parse_ids(const char *p, unsigned n, uint32_t *out)
{
    for (unsigned i = 0; i < n; i++) {
        char *end;
        unsigned long v;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            return -EIO;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno || v > UINT32_MAX)
            return -EIO;
        out[i] = (uint32_t)v;
        p = end;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\n' || *p == '\0' ? 0 : -EIO;
}

int ident_parse_status(const char *text, struct ident *ret)
{
    const char *p;
    uint32_t v[4], tgid;
    char *end;

    p = status_line(text, "Tgid");
    if (!p || parse_ids(p, 1, &tgid) < 0 || tgid == 0 || tgid > INT32_MAX)
        return -EIO;
    ret->tgid = (pid_t)tgid;
    p = status_line(text, "Uid");
    if (!p || parse_ids(p, 4, v) < 0)
        return -EIO;
    for (int i = 0; i < 4; i++)
        ret->uid[i] = (uid_t)v[i];
    p = status_line(text, "Gid");
    if (!p || parse_ids(p, 4, v) < 0)
        return -EIO;
    for (int i = 0; i < 4; i++)
        ret->gid[i] = (gid_t)v[i];
    /* Groups: a list of any length; a text cut short (a small read buffer)
     * loses the last ones, which only ever means less access. */
    ret->ngroups = 0;
    p = status_line(text, "Groups");
    while (p && ret->ngroups < IDENT_GROUPS_MAX) {
        unsigned long g;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            break;
        errno = 0;
        g = strtoul(p, &end, 10);
        if (errno || g > UINT32_MAX || (*end != ' ' && *end != '\t' && *end != '\n'))
            break;
        ret->groups[ret->ngroups++] = (gid_t)g;
        p = end;
    }
    return 0;
}

int ident_parse_stat(const char *text, struct ident *ret)
{
    /* Fields after the command name, counted from 3 (the state). */
    static const int mm_fields[IDENT_MM_FIELDS] = {26, 27, 28, 45, 46, 47};
    const char *p = strrchr(text, ')'); /* the command name may hold anything */
    unsigned k = 0;

    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return -EIO;
    ret->state = p[2];
    p += 3; /* at the blank before field 4 */
    for (int field = 4; field <= 47; field++) {
        unsigned long long v;
        char *end;

        if (*p != ' ')
            return -EIO;
        p++;
        /* Some fields are signed (priority, nice); only unsigned ones are
         * kept. */
        if (*p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return -EIO;
        errno = 0;
        v = strtoull(p, &end, 10);
        if (errno)
            return -EIO;
        p = end;
        if (field == 22)
            ret->starttime = v;
        if (k < IDENT_MM_FIELDS && field == mm_fields[k])
            ret->mm[k++] = v;
    }
    return k == IDENT_MM_FIELDS ? 0 : -EIO;
}

int ident_read(pid_t pid, pid_t tid, struct ident *ret)
{
    char path[96], buf[4096];
    struct ident id;
    struct stat st;
    ssize_t n;
    int r;

    if (tid <= 0)
        tid = pid;
    memset(&id, 0, sizeof(id));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    n = dsl_read_text(path, buf, sizeof(buf));
    if (n < 0)
        return n == -ENOENT ? -ESRCH : (int)n;
    if ((r = ident_parse_status(buf, &id)) < 0)
        return r;
    /* The kernel gives a process's /proc files to root when it is not
     * dumpable (a set-uid program, one that changed its ids, PR_SET_DUMPABLE
     * 0), and to its euid and egid otherwise -- its files, not its
     * directories, which always belong to the euid (task_dump_owner()).
     * For a process of root's this cannot tell; its credentials do. */
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    n = dsl_read_text_stat(path, buf, sizeof(buf), &st);
    if (n < 0)
        return n == -ENOENT ? -ESRCH : (int)n;
    if ((r = ident_parse_stat(buf, &id)) < 0)
        return r;
    id.dumpable = st.st_uid == id.uid[1] && st.st_gid == id.gid[1];
    *ret = id;
    return 0;
}

static const char *const id_names[4] = {"real", "effective", "saved", "file system"};

int ident_compare(const struct ident *reg, const struct ident *cur, bool same_thread, char *why,
                  size_t size)
{
    if (cur->state == 'Z' || cur->state == 'X')
        return -ESRCH;
    for (int i = 0; i < 4; i++) {
        if (cur->uid[i] != reg->uid[i]) {
            snprintf(why, size, "its %s uid is %u, not %u as when it registered", id_names[i],
                     (unsigned)cur->uid[i], (unsigned)reg->uid[i]);
            return -EPERM;
        }
        if (cur->gid[i] != reg->gid[i]) {
            snprintf(why, size, "its %s gid is %u, not %u as when it registered", id_names[i],
                     (unsigned)cur->gid[i], (unsigned)reg->gid[i]);
            return -EPERM;
        }
    }
    if (!cur->dumpable) {
        snprintf(why, size,
                 "it is not dumpable any more (a set-uid or set-gid program, file "
                 "capabilities, or PR_SET_DUMPABLE 0)");
        return -EPERM;
    }
    if (memcmp(cur->mm, reg->mm, sizeof(cur->mm)) != 0) {
        snprintf(why, size, "it executed another program since it registered");
        return -EPERM;
    }
    /* A thread's own start time is not the process's: compared for the
     * main thread only (other threads are tied by Tgid and the pidfd). */
    if (same_thread && cur->starttime != reg->starttime)
        return -ESRCH;
    return 0;
}

int ident_verify(const struct ident *reg, pid_t pid, pid_t tid, struct ident *ret_cur, char *why,
                 size_t size)
{
    struct ident cur;
    int r = ident_read(pid, tid, &cur);

    if (r < 0)
        return r == -ESRCH || r == -ENOENT ? -ESRCH : r;
    if (cur.tgid != pid)
        return -ESRCH;
    r = ident_compare(reg, &cur, tid <= 0 || tid == pid, why, size);
    if (r == 0 && ret_cur)
        *ret_cur = cur;
    return r;
}

/* May id do `want' (4: read, 1: search) on a file with this stat? */
static bool may(const struct ident *id, const struct stat *st, unsigned want)
{
    uid_t uid = id->uid[3];
    unsigned bits;

    if (uid == 0) /* root's DAC override: search needs one x bit for files only */
        return true;
    if (st->st_uid == uid) {
        bits = (st->st_mode >> 6) & 7;
    } else {
        bool member = st->st_gid == id->gid[3];

        for (unsigned i = 0; i < id->ngroups && !member; i++)
            member = st->st_gid == id->groups[i];
        bits = member ? (st->st_mode >> 3) & 7 : st->st_mode & 7;
    }
    return (bits & want) == want;
}

/*
 * Walk path one component at a time from / (or from the directory of the
 * link being followed), as the kernel would for the process: each
 * directory must be searchable by it, and the file at the end readable.
 * Every step is relative to a directory already opened, so a path swapped
 * under the walk cannot lead it anywhere unchecked.  ACLs are not read: a
 * file an ACL alone opens to the worker is not quoted (less, never more).
 */
int ident_open_as(const struct ident *id, const char *path)
{
    char buf[PATH_MAX], link[PATH_MAX];
    unsigned links = 0;
    _cleanup_close_ int dir = -1;
    char *p, *comp;

    if (!path || path[0] != '/' || dsl_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
        return -EINVAL;
restart:
    if (dir >= 0)
        close(dir);
    dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    p = buf;
    for (;;) {
        struct stat st, dst;
        int next;

        while (*p == '/')
            p++;
        if (!*p)
            return -EISDIR;
        comp = p;
        p += strcspn(p, "/");
        bool last = *p == '\0';
        if (!last)
            *p++ = '\0';
        if (fstat(dir, &dst) < 0)
            return -errno;
        if (!may(id, &dst, 1))
            return -EACCES;
        if (fstatat(dir, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n;

            if (++links > 16)
                return -ELOOP;
            n = readlinkat(dir, comp, link, sizeof(link) - 1);
            if (n <= 0)
                return n < 0 ? -errno : -EIO;
            link[n] = '\0';
            /* The rest of the path goes after the link's target. */
            if (!last && (size_t)n + 1 + strlen(p) + 1 > sizeof(buf))
                return -ENAMETOOLONG;
            char rest[PATH_MAX];
            dsl_strlcpy(rest, last ? "" : p, sizeof(rest));
            snprintf(buf, sizeof(buf), "%s%s%s", link, rest[0] ? "/" : "", rest);
            if (link[0] == '/')
                goto restart;
            /* Relative to the directory the link is in: dir stays. */
            p = buf;
            continue;
        }
        if (last) {
            if (!S_ISREG(st.st_mode))
                return -EINVAL;
            if (!may(id, &st, 4))
                return -EACCES;
            next = openat(dir, comp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
            if (next < 0)
                return -errno;
            /* The file opened must be the one checked. */
            if (fstat(next, &dst) < 0 || dst.st_ino != st.st_ino || dst.st_dev != st.st_dev) {
                close(next);
                return -EAGAIN;
            }
            return next;
        }
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0)
            return -errno;
        close(dir);
        dir = next;
    }
}

int ident_format(const struct ident *id, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%u %u %u %u %u %u %u %u %llx %llx %llx %llx %llx %llx",
                     (unsigned)id->uid[0], (unsigned)id->uid[1], (unsigned)id->uid[2],
                     (unsigned)id->uid[3], (unsigned)id->gid[0], (unsigned)id->gid[1],
                     (unsigned)id->gid[2], (unsigned)id->gid[3], (unsigned long long)id->mm[0],
                     (unsigned long long)id->mm[1], (unsigned long long)id->mm[2],
                     (unsigned long long)id->mm[3], (unsigned long long)id->mm[4],
                     (unsigned long long)id->mm[5]);
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int ident_parse_record(const char *text, struct ident *ret)
{
    uint32_t ids[8];
    struct ident id;
    const char *p = text;

    memset(&id, 0, sizeof(id));
    for (int i = 0; i < 8; i++) {
        char *end;
        unsigned long v;

        if (*p < '0' || *p > '9')
            return -EINVAL;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno || v > UINT32_MAX || *end != ' ')
            return -EINVAL;
        ids[i] = (uint32_t)v;
        p = end + 1;
    }
    for (int i = 0; i < IDENT_MM_FIELDS; i++) {
        char *end;
        unsigned long long v;

        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -EINVAL;
        errno = 0;
        v = strtoull(p, &end, 16);
        if (errno || (i < IDENT_MM_FIELDS - 1 && *end != ' ') ||
            (i == IDENT_MM_FIELDS - 1 && *end != ' ' && *end != '\n' && *end != '\0'))
            return -EINVAL;
        id.mm[i] = v;
        p = end;
        if (i < IDENT_MM_FIELDS - 1)
            p++;
    }
    for (int i = 0; i < 4; i++) {
        id.uid[i] = (uid_t)ids[i];
        id.gid[i] = (gid_t)ids[4 + i];
    }
    *ret = id;
    return (int)(p - text);
}
