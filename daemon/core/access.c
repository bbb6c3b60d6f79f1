/* SPDX-License-Identifier: MIT */
/*
 * Who may register and who may use dogslowctl: allowed_users and
 * allowed_groups against a peer's credentials and groups.  Used by the
 * registry and by control.c.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

/* "Groups:\t10 20 30" from /proc/PID/status, for kernels without
 * SO_PEERGROUPS. */
static int proc_groups(pid_t pid, gid_t *ret, size_t max)
{
    char path[64], buf[8192];
    ssize_t n;
    size_t count = 0;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    n = dsl_read_text(path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    p = strstr(buf, "\nGroups:");
    if (!p)
        return -EIO;
    p += 8;
    while (*p && *p != '\n' && count < max) {
        char *end;
        unsigned long v;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || !*p)
            break;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno || end == p || v >= (gid_t)-1)
            return -EIO;
        ret[count++] = (gid_t)v;
        p = end;
    }
    return (int)count;
}

int access_peer_groups(int fd, pid_t pid, gid_t *ret, size_t max)
{
    socklen_t len = (socklen_t)(max * sizeof(gid_t));

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ret, &len) == 0)
        return (int)(len / sizeof(gid_t));
    if (errno == ERANGE) {
        /* More groups than we look at: use the first max of them. */
        gid_t *all = malloc(len);
        int n = -ENOMEM;
        if (all && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == 0) {
            n = (int)(len / sizeof(gid_t) < max ? len / sizeof(gid_t) : max);
            memcpy(ret, all, (size_t)n * sizeof(gid_t));
        }
        free(all);
        return n;
    }
    if (errno != ENOPROTOOPT)
        return -errno;
    return proc_groups(pid, ret, max);
}

static bool peer_in_group(int fd, pid_t pid, gid_t primary, gid_t want)
{
    gid_t groups[256];
    int n;

    if (primary == want)
        return true;
    if (fd < 0)
        return false;
    n = access_peer_groups(fd, pid, groups, ARRAY_SIZE(groups));
    for (int i = 0; i < n; i++)
        if (groups[i] == want)
            return true;
    return false;
}

bool access_worker_allowed(struct daemon *d, struct worker *w)
{
    const struct config *c = &d->cfg;

    if (!c->n_allowed_uids && !c->n_allowed_gids)
        return true;
    for (unsigned i = 0; i < c->n_allowed_uids; i++)
        if (c->allowed_uids[i] == w->uid)
            return true;
    for (unsigned i = 0; i < c->n_allowed_gids; i++)
        if (peer_in_group(w->conn, w->pid, w->gid, c->allowed_gids[i]))
            return true;
    return false;
}

gid_t access_control_group(const struct daemon *d)
{
    return d->cfg.socket_gid != (gid_t)-1 ? d->cfg.socket_gid : getegid();
}

bool access_control_allowed(struct daemon *d, struct worker *w)
{
    if (w->uid == 0 || w->uid == geteuid())
        return true;
    return peer_in_group(w->conn, w->pid, w->gid, access_control_group(d));
}
