/* SPDX-License-Identifier: MIT */
/*
 * Reading another process's memory (capture.h): remote_read() through a
 * reader interface (a live process with process_vm_readv, a stack copy, a
 * fake address space in tests), C strings, and the page cache that can sit
 * in front of any reader (one per thread; the Python reader reads through
 * it).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
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

/* The analysis process's readers (remote_set_live), or NULL. */
static remote_live_fn live_override;
static remote_livev_fn livev_override;

static int proc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct remote_proc *p = ctx;

    return remote_live_read(p->pid, addr, buf, len);
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
    if (livev_override)
        return livev_override(p->pid, r, n);
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
    /* Where reads are asked of the daemon (remote_set_live), vectored
     * only if it was given a way to. */
    m->readv = live_override && !livev_override ? NULL : proc_readv;
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

/* ------------------------------------------------------------------------
 * A page cache in front of a reader (capture.h, struct remote_cache)
 *
 * Objects that belong together (a frame and its neighbours on the data
 * stack, a code object and its small strings) sit close to each other, so
 * fetching whole pages turns hundreds of small reads into a few dozen
 * system calls.  Mapped memory is page-granular: a page that holds one
 * readable byte is readable whole, so this returns what direct reads
 * would.  Pages that cannot be read whole (a fake address space in tests)
 * fall back to exact reads.
 * ------------------------------------------------------------------------ */

#define PC_PAGE     4096u
#define PC_SET_BITS 6u
#define PC_SETS     (1u << PC_SET_BITS)
#define PC_WAYS     8u
#define PC_SLOTS    (PC_SETS * PC_WAYS)

struct remote_cache {
    struct remote_mem *under;
    size_t max_bytes;
    size_t bytes;
    unsigned reads;
    uint64_t clock;
    uint64_t tag[PC_SLOTS];  /* page address + 1, 0 = empty */
    uint64_t used[PC_SLOTS]; /* clock of the last use, for LRU */
    bool bad[PC_SLOTS];      /* the whole page could not be read */
    uint8_t *data;           /* PC_SLOTS pages */
};

/*
 * The cache's pages, one buffer per thread for the life of the thread.
 * The stack is read while the worker's thread is held: a fresh 512 KiB
 * buffer per read would cost a page fault for every page it touches
 * (~1 us each in a VM), all of it inside the pause.  Touched once here,
 * before any thread is held.
 */
static __thread struct remote_cache tl_pc; /* kept from capture to finish */
static __thread uint64_t tl_generation;

static uint8_t *pc_buffer(void)
{
    if (!tl_pc.data) {
        tl_pc.data = malloc((size_t)PC_SLOTS * PC_PAGE);
        if (tl_pc.data)
            memset(tl_pc.data, 0, (size_t)PC_SLOTS * PC_PAGE);
    }
    return tl_pc.data;
}

static int pc_direct(struct remote_cache *c, uint64_t addr, void *buf, size_t len)
{
    int r;

    if (c->bytes + len > c->max_bytes)
        return -E2BIG;
    r = remote_read(c->under, addr, buf, len);
    c->reads++;
    if (r == 0)
        c->bytes += len;
    return r;
}

/* The slot holding page, or the least recently used one of its set (then
 * *ret_hit is false).  Sets are chosen by a multiplicative hash: CPython's
 * allocator puts objects of one size at the same offset of many arenas,
 * which a plain modulo maps all to one set. */
static unsigned pc_slot(struct remote_cache *c, uint64_t page, bool *ret_hit)
{
    unsigned set = (unsigned)(((page / PC_PAGE) * 0x9e3779b97f4a7c15ull) >> (64 - PC_SET_BITS));
    unsigned first = set * PC_WAYS, victim = first;

    for (unsigned i = first; i < first + PC_WAYS; i++) {
        if (c->tag[i] == page + 1) {
            *ret_hit = true;
            return i;
        }
        if (c->used[i] < c->used[victim])
            victim = i;
    }
    *ret_hit = false;
    return victim;
}

static int pc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct remote_cache *c = ctx;
    uint8_t *out = buf;

    while (len > 0) {
        uint64_t page = addr & ~(uint64_t)(PC_PAGE - 1);
        size_t in = (size_t)(addr - page);
        size_t chunk = PC_PAGE - in < len ? PC_PAGE - in : len;
        bool hit;
        unsigned slot = pc_slot(c, page, &hit);
        int r;

        c->used[slot] = ++c->clock;
        if (!hit) {
            c->bad[slot] = false;
            c->tag[slot] = page + 1;
            r = page ? pc_direct(c, page, c->data + (size_t)slot * PC_PAGE, PC_PAGE) : -EFAULT;
            if (r == -E2BIG) {
                c->tag[slot] = 0;
                return r;
            }
            if (r < 0)
                c->bad[slot] = true;
        }
        if (c->bad[slot]) {
            r = pc_direct(c, addr, out, chunk);
            if (r < 0)
                return r;
        } else {
            memcpy(out, c->data + (size_t)slot * PC_PAGE + in, chunk);
        }
        addr += chunk;
        out += chunk;
        len -= chunk;
    }
    return 0;
}

int remote_cache_prepare(void)
{
    return pc_buffer() ? 0 : -ENOMEM;
}

struct remote_cache *remote_cache_open(struct remote_mem *m, struct remote_mem *under,
                                       size_t max_bytes, bool fresh, uint64_t *gen)
{
    struct remote_cache *pc = &tl_pc;

    if (!pc_buffer())
        return NULL;
    /* 0 is no generation: a stack that came from elsewhere (the analysis
     * process decodes what the daemon captured) brings no pages along. */
    if (fresh || *gen == 0 || *gen != tl_generation) {
        memset(pc->tag, 0, sizeof(pc->tag));
        memset(pc->used, 0, sizeof(pc->used));
        pc->clock = 0;
        *gen = ++tl_generation;
    }
    pc->under = under;
    pc->max_bytes = max_bytes;
    pc->bytes = 0;
    pc->reads = 0;
    memset(m, 0, sizeof(*m));
    m->read = pc_read;
    m->ctx = pc;
    return pc;
}

size_t remote_cache_bytes(const struct remote_cache *c)
{
    return c->bytes;
}

unsigned remote_cache_reads(const struct remote_cache *c)
{
    return c->reads;
}

/* One vectored read of the n pages rr names; the slots of those it did not
 * read are emptied. */
static void pc_flush(struct remote_cache *c, struct remote_range *rr, const unsigned *slots,
                     unsigned n)
{
    int done;

    if (n == 0)
        return;
    done = c->under->readv(c->under->ctx, rr, n);
    c->reads++;
    for (unsigned i = 0; i < n; i++) {
        if (done >= 0 && i < (unsigned)done)
            c->bytes += PC_PAGE;
        else
            c->tag[slots[i]] = 0; /* not read: the next use reads it alone */
    }
}

/*
 * Bring the pages under n ranges [addr, addr + len) into the cache with one
 * vectored read per REMOTE_READV_MAX pages, where the reader can do that.
 * A system call costs 2-3 us in a VM, whatever it copies; the reads that
 * follow a prefetch are then hits.  Pages already cached, or whose slot
 * this same call filled, are left alone; a page that cannot be read is
 * left out (a later read of it fails the usual way).  Best effort: nothing
 * is an error here.
 */
void remote_cache_prefetch(struct remote_cache *c, const struct remote_span *ranges, size_t n)
{
    struct remote_range rr[REMOTE_READV_MAX];
    unsigned slots[REMOTE_READV_MAX], k = 0;
    uint64_t start = c->clock;

    if (!c->under->readv)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = ranges[i].addr, len = ranges[i].len;
        if (a < PC_PAGE || len == 0 || len > (1u << 16) || a + len < a)
            continue;
        for (uint64_t page = a & ~(uint64_t)(PC_PAGE - 1); page < a + len; page += PC_PAGE) {
            bool hit;
            unsigned slot = pc_slot(c, page, &hit);

            if (hit || c->used[slot] > start)
                continue; /* cached, or its slot was filled by this call */
            if (c->bytes + (uint64_t)(k + 1) * PC_PAGE > c->max_bytes)
                goto out;
            c->tag[slot] = page + 1;
            c->bad[slot] = false;
            c->used[slot] = ++c->clock;
            rr[k] = (struct remote_range){.addr = page, .buf = c->data + (size_t)slot * PC_PAGE,
                                          .len = PC_PAGE};
            slots[k++] = slot;
            if (k == REMOTE_READV_MAX) {
                pc_flush(c, rr, slots, k);
                k = 0;
            }
        }
    }
out:
    pc_flush(c, rr, slots, k);
}

void remote_set_live(remote_live_fn fn, remote_livev_fn fnv)
{
    live_override = fn;
    livev_override = fnv;
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
