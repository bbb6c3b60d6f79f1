/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "scoreboard.h"

void dsl_sb_init(struct dsl_sb_header *sb, uint32_t nslots)
{
    memset(sb, 0, dsl_sb_size(nslots));
    sb->magic = DSL_SB_MAGIC;
    sb->version = DSL_SB_VERSION;
    sb->nslots = nslots;
    sb->slot_size = sizeof(struct dsl_slot);
}

int dsl_sb_check_header(const struct dsl_sb_header *sb, size_t size)
{
    if (size < sizeof(*sb))
        return -EINVAL;
    if (sb->magic != DSL_SB_MAGIC || sb->version != DSL_SB_VERSION ||
        sb->slot_size != sizeof(struct dsl_slot))
        return -EPROTO;
    if (sb->nslots == 0 || sb->nslots > DSL_SLOTS_MAX || dsl_sb_size(sb->nslots) != size)
        return -EINVAL;
    return 0;
}

/* Copy at most len bytes, turning anything that is not printable ASCII into
 * '?', so a worker cannot put escape sequences or newlines into a report. */
static void copy_printable(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[len] = '\0';
}

int dsl_sb_read_slot(const struct dsl_sb_header *sb, uint32_t nslots, uint32_t i,
                     struct dsl_request *ret)
{
    const struct dsl_slot *s;
    char method[DSL_METHOD_MAX + 1], url[DSL_URL_MAX + 1];
    uint32_t seq, seq2;
    uint16_t mlen, ulen;
    int32_t tid;
    uint64_t start;

    if (i >= nslots)
        return -EINVAL;
    s = dsl_sb_slot((struct dsl_sb_header *)sb, i);

    seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (!(seq & 1u))
        return 0;
    tid = __atomic_load_n(&s->tid, __ATOMIC_RELAXED);
    start = __atomic_load_n(&s->start_ns, __ATOMIC_RELAXED);
    mlen = __atomic_load_n(&s->method_len, __ATOMIC_RELAXED);
    ulen = __atomic_load_n(&s->url_len, __ATOMIC_RELAXED);
    /* Lengths are clamped before the copy; the worker may change them at any
     * time, so they are read exactly once. */
    if (mlen > DSL_METHOD_MAX)
        mlen = DSL_METHOD_MAX;
    if (ulen > DSL_URL_MAX)
        ulen = DSL_URL_MAX;
    memcpy(method, s->method, mlen);
    memcpy(url, s->url, ulen);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    seq2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if (seq2 != seq)
        return -EAGAIN;
    if (tid <= 0 || start == 0)
        return -EINVAL;

    ret->seq = seq;
    ret->tid = tid;
    ret->start_ns = start;
    copy_printable(ret->method, method, mlen);
    copy_printable(ret->url, url, ulen);
    return 1;
}
