/* SPDX-License-Identifier: MIT */
/*
 * Reading a snapshot's process after the thread runs again: its memory
 * (snapshot_read: the stack copy first, else the live process) and its
 * /proc/PID/maps (snapshot_read_maps).  Both read another process, which is
 * capture's part; analysis (unwind.c, locals.c, symbolize.c) and core
 * (watch.c) call them, and capture calls nothing back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "capture.h"
#include "core.h"

/* The copy first: it is the stack as the held thread had it, matching the
 * registers, and costs no system call.  What lies outside it (a char * into
 * the heap) comes from the live process -- unless it is gone, when its pid
 * may already be another process's. */
int snapshot_read(const struct snapshot *s, uint64_t addr, void *buf, size_t len)
{
    if (addr >= s->stack_addr && addr + len <= s->stack_addr + s->stack_len &&
        addr + len >= addr) {
        memcpy(buf, s->stack + (addr - s->stack_addr), len);
        return 0;
    }
    if (s->gone)
        return -ESRCH;
    return remote_live_read(s->pid, addr, buf, len);
}

char *snapshot_read_maps(pid_t pid, size_t *len)
{
    char path[64];
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap), *p;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !buf)
        goto fail;
    for (;;) {
        ssize_t k;

        if (cap - n < 4096) {
            size_t more = cap * 2 <= DSL_MAPS_MAX ? cap * 2 : DSL_MAPS_MAX;

            if (cap >= DSL_MAPS_MAX)
                break; /* cut at the last whole line below */
            p = realloc(buf, more);
            if (!p)
                goto fail;
            buf = p;
            cap = more;
        }
        k = read(fd, buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            goto fail;
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    while (n > 0 && buf[n - 1] != '\n')
        n--; /* a cut line: dropped */
    if (n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}
