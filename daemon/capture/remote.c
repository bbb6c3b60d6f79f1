/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "capture.h"

int remote_read(struct remote_mem *m, uint64_t addr, void *buf, size_t len)
{
    int r;

    if (len == 0)
        return 0;
    if (len > REMOTE_READ_MAX || addr == 0 || addr + len < addr)
        return -EINVAL;
    if (m->budget && (m->used + len > m->budget))
        return -E2BIG;
    r = m->read(m->ctx, addr, buf, len);
    if (r == 0)
        m->used += len;
    return r;
}

static int proc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct remote_proc *p = ctx;
    struct iovec local = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n = process_vm_readv(p->pid, &local, 1, &remote, 1, 0);

    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}

/* process_vm_readv stops at the first remote range it cannot read whole;
 * the byte count says how far it got. */
static int proc_readv(void *ctx, const struct remote_range *r, unsigned n)
{
    const struct remote_proc *p = ctx;
    struct iovec local[REMOTE_READV_MAX] = {{0}}, remote[REMOTE_READV_MAX] = {{0}};
    ssize_t got;
    unsigned done = 0;

    if (n == 0 || n > REMOTE_READV_MAX)
        return n == 0 ? 0 : -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        local[i] = (struct iovec){.iov_base = r[i].buf, .iov_len = r[i].len};
        remote[i] = (struct iovec){.iov_base = (void *)(uintptr_t)r[i].addr, .iov_len = r[i].len};
    }
    got = process_vm_readv(p->pid, local, n, remote, n, 0);
    if (got < 0)
        return -errno;
    while (done < n && (size_t)got >= r[done].len) {
        got -= (ssize_t)r[done].len;
        done++;
    }
    return (int)done;
}

void remote_mem_proc(struct remote_mem *m, struct remote_proc *p, pid_t pid)
{
    p->pid = pid;
    memset(m, 0, sizeof(*m));
    m->read = proc_read;
    m->readv = proc_readv;
    m->ctx = p;
}

int remote_read_cstr(struct remote_mem *m, uint64_t addr, char *buf, size_t max)
{
    size_t have = 0;

    if (max == 0)
        return -EINVAL;
    while (have < max - 1) {
        /* Never cross a page boundary in one read: the next page may be
         * unmapped even though the string ends before it. */
        size_t chunk = 64 - ((addr + have) & 63);
        if (chunk > max - 1 - have)
            chunk = max - 1 - have;
        int r = remote_read(m, addr + have, buf + have, chunk);
        if (r < 0) {
            buf[have] = '\0';
            return r;
        }
        void *nul = memchr(buf + have, '\0', chunk);
        if (nul)
            return (int)((char *)nul - buf);
        have += chunk;
    }
    buf[have] = '\0';
    return (int)have;
}

static remote_live_fn live_override;

void remote_set_live(remote_live_fn fn)
{
    live_override = fn;
}

int remote_live_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n;

    if (live_override)
        return live_override(pid, addr, buf, len);
    n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EFAULT;
}
