/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "dogslow.h"

int dsl_parse_seconds_ms(const char *s, uint32_t *ret_ms)
{
    uint64_t whole = 0, frac = 0;
    int fdigits = 0;
    const char *p = s;

    if (!s || !*s)
        return -EINVAL;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > UINT32_MAX / 1000)
            return -ERANGE;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++fdigits > 3)
                return -EINVAL;
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        for (int i = fdigits; i < 3; i++)
            frac *= 10;
    }
    if (*p != '\0')
        return -EINVAL;
    if (whole * 1000 + frac > UINT32_MAX)
        return -ERANGE;
    *ret_ms = (uint32_t)(whole * 1000 + frac);
    return 0;
}

ssize_t dsl_read_text(const char *path, char *buf, size_t size)
{
    return dsl_read_text_stat(path, buf, size, NULL);
}

ssize_t dsl_read_text_stat(const char *path, char *buf, size_t size, struct stat *ret_st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    if (ret_st && fstat(fd, ret_st) < 0) {
        n = -errno;
        close(fd);
        return n;
    }
    n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    return n;
}

int dsl_proc_stat(pid_t pid, uint64_t *starttime, char *state)
{
    char path[64], buf[1024];
    ssize_t n;
    char *p, *end;
    unsigned long long v;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    n = dsl_read_text(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    p = strrchr(buf, ')'); /* the command name may hold anything */
    if (!p || p[1] != ' ' || !p[2])
        return -EIO;
    if (state)
        *state = p[2];
    for (int field = 2; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EIO;
    }
    errno = 0;
    v = strtoull(p + 1, &end, 10);
    if (errno || end == p + 1)
        return -EIO;
    if (starttime)
        *starttime = v;
    return 0;
}

int dsl_proc_status_field(pid_t pid, pid_t tid, const char *key, long *ret)
{
    char path[80], buf[4096], needle[40];
    ssize_t n;
    const char *p;
    char *end;
    long v;

    if (tid > 0)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    n = dsl_read_text(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    snprintf(needle, sizeof(needle), "\n%s:", key);
    p = strstr(buf, needle);
    if (!p)
        return -ENOENT;
    errno = 0;
    v = strtol(p + strlen(needle), &end, 10);
    if (errno || end == p + strlen(needle))
        return -EIO;
    *ret = v;
    return 0;
}

int dsl_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int dsl_mkdir_p(const char *path, mode_t parent_mode, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t n = dsl_strlcpy(tmp, path, sizeof(tmp));

    if (n == 0 || n >= sizeof(tmp) - 1)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, parent_mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

size_t dsl_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n;

    if (size == 0)
        return 0;
    n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

int dsl_socket_path_candidate(int idx, char *buf, size_t size)
{
    int n;

    if (idx == 0) {
        n = snprintf(buf, size, "%s", DOGSLOW_DEFAULT_SOCKET);
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR");

        if (xdg && xdg[0] == '/')
            n = snprintf(buf, size, "%s/dogslow/dogslow.sock", xdg);
        else
            n = snprintf(buf, size, "/tmp/dogslow-%u/dogslow.sock", (unsigned)getuid());
    }
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

size_t dsl_utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    /* A NUL (or any byte that is not 10xxxxxx) ends it before the next
     * byte is read: a NUL-terminated string may pass SIZE_MAX for n. */
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool dsl_maps_line(const char *line, size_t len, struct dsl_mapping *ret)
{
    char buf[PATH_MAX + 128];
    char *p, *end;
    unsigned long long v[3];
    unsigned long maj, min;

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    p = buf;
    v[0] = strtoull(p, &end, 16);
    if (end == p || *end != '-')
        return false;
    p = end + 1;
    v[1] = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return false;
    p = end + 1;
    p = strchr(p, ' '); /* permissions */
    if (!p)
        return false;
    p++;
    v[2] = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return false;
    p = end + 1; /* device: major:minor, in hex */
    maj = strtoul(p, &end, 16);
    if (end == p || *end != ':')
        return false;
    p = end + 1;
    min = strtoul(p, &end, 16);
    if (end == p || *end != ' ')
        return false;
    p = end + 1;
    ret->inode = strtoull(p, &end, 10);
    if (end == p)
        return false;
    p = end;
    while (*p == ' ')
        p++;
    if (*p != '/' || strlen(p) >= sizeof(ret->path))
        return false;
    ret->start = v[0];
    ret->end = v[1];
    ret->offset = v[2];
    ret->major = (unsigned)maj;
    ret->minor = (unsigned)min;
    memcpy(ret->path, p, strlen(p) + 1);
    return true;
}

void dsl_unctrl(char *p)
{
    for (; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}
