/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

void dsl_cursor_init(struct dsl_cursor *c, const void *p, size_t len)
{
    c->p = p;
    c->len = len;
    c->off = 0;
    c->err = false;
}

static bool cursor_take(struct dsl_cursor *c, void *dst, size_t n)
{
    if (c->err || c->len - c->off < n) {
        c->err = true;
        memset(dst, 0, n);
        return false;
    }
    memcpy(dst, c->p + c->off, n);
    c->off += n;
    return true;
}

uint8_t dsl_get_u8(struct dsl_cursor *c)
{
    uint8_t v;
    cursor_take(c, &v, sizeof(v));
    return v;
}

uint16_t dsl_get_u16(struct dsl_cursor *c)
{
    uint16_t v;
    cursor_take(c, &v, sizeof(v));
    return v;
}

uint32_t dsl_get_u32(struct dsl_cursor *c)
{
    uint32_t v;
    cursor_take(c, &v, sizeof(v));
    return v;
}

uint64_t dsl_get_u64(struct dsl_cursor *c)
{
    uint64_t v;
    cursor_take(c, &v, sizeof(v));
    return v;
}

void dsl_get_str(struct dsl_cursor *c, char *dst, size_t max)
{
    dsl_get_str_max(c, dst, max > DSL_STR_MAX ? DSL_STR_MAX : max);
}

void dsl_get_str_max(struct dsl_cursor *c, char *dst, size_t max)
{
    uint16_t n = dsl_get_u16(c);

    dst[0] = '\0';
    if (c->err)
        return;
    if (n > max || c->len - c->off < n || memchr(c->p + c->off, '\0', n)) {
        c->err = true;
        return;
    }
    memcpy(dst, c->p + c->off, n);
    dst[n] = '\0';
    c->off += n;
}

int dsl_cursor_finish(const struct dsl_cursor *c)
{
    return (c->err || c->off != c->len) ? -EBADMSG : 0;
}

void dsl_writer_begin(struct dsl_writer *w, enum dsl_msg_type type)
{
    struct dsl_hdr h = {
        .magic = DSL_PROTO_MAGIC,
        .version = DSL_PROTO_VERSION,
        .type = (uint16_t)type,
    };

    memcpy(w->buf, &h, sizeof(h));
    w->len = DSL_HDR_SIZE;
    w->err = false;
}

static void writer_put(struct dsl_writer *w, const void *src, size_t n)
{
    if (w->err || sizeof(w->buf) - w->len < n) {
        w->err = true;
        return;
    }
    memcpy(w->buf + w->len, src, n);
    w->len += n;
}

void dsl_put_u8(struct dsl_writer *w, uint8_t v)
{
    writer_put(w, &v, sizeof(v));
}

void dsl_put_u16(struct dsl_writer *w, uint16_t v)
{
    writer_put(w, &v, sizeof(v));
}

void dsl_put_u32(struct dsl_writer *w, uint32_t v)
{
    writer_put(w, &v, sizeof(v));
}

void dsl_put_u64(struct dsl_writer *w, uint64_t v)
{
    writer_put(w, &v, sizeof(v));
}

void dsl_put_str(struct dsl_writer *w, const char *s)
{
    size_t n = s ? strnlen(s, DSL_STR_MAX) : 0;

    dsl_put_u16(w, (uint16_t)n);
    writer_put(w, s, n);
}

void dsl_put_str_max(struct dsl_writer *w, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max > UINT16_MAX ? UINT16_MAX : max) : 0;

    dsl_put_u16(w, (uint16_t)n);
    writer_put(w, s, n);
}

void dsl_put_bytes(struct dsl_writer *w, const void *p, size_t n)
{
    writer_put(w, p, n);
}

int dsl_writer_finish(struct dsl_writer *w)
{
    uint32_t len;

    if (w->err)
        return -EMSGSIZE;
    len = (uint32_t)(w->len - DSL_HDR_SIZE);
    memcpy(w->buf + offsetof(struct dsl_hdr, len), &len, sizeof(len));
    return (int)w->len;
}

int dsl_hdr_check(const struct dsl_hdr *h)
{
    if (h->magic != DSL_PROTO_MAGIC)
        return -EPROTO;
    if (h->version != DSL_PROTO_VERSION)
        return -EPROTONOSUPPORT;
    if (h->type == 0 || h->type > DSL_MSG_TYPE_MAX_)
        return -EBADMSG;
    if (h->len > DSL_PAYLOAD_MAX)
        return -EMSGSIZE;
    if (h->reserved != 0)
        return -EBADMSG;
    return 0;
}

void dsl_framer_reset(struct dsl_framer *f)
{
    f->have = 0;
}

int dsl_framer_push(struct dsl_framer *f, const uint8_t *data, size_t n, size_t *ret_consumed)
{
    size_t used = 0;

    if (f->have < DSL_HDR_SIZE) {
        size_t take = DSL_HDR_SIZE - f->have;
        int r;

        if (take > n)
            take = n;
        memcpy((uint8_t *)&f->hdr + f->have, data, take);
        f->have += take;
        used += take;
        if (f->have < DSL_HDR_SIZE) {
            *ret_consumed = used;
            return 0;
        }
        r = dsl_hdr_check(&f->hdr);
        if (r < 0) {
            *ret_consumed = used;
            return r;
        }
    }

    size_t want = DSL_HDR_SIZE + f->hdr.len - f->have;
    size_t take = n - used < want ? n - used : want;

    memcpy(f->payload + (f->have - DSL_HDR_SIZE), data + used, take);
    f->have += take;
    used += take;
    *ret_consumed = used;
    return f->have == DSL_HDR_SIZE + f->hdr.len ? 1 : 0;
}

int dsl_hello_encode(struct dsl_writer *w, const struct dsl_hello *m)
{
    dsl_writer_begin(w, DSL_MSG_HELLO);
    dsl_put_u32(w, m->ignore_urls[0] ? m->flags | DSL_HELLO_IGNORE : m->flags & ~DSL_HELLO_IGNORE);
    dsl_put_u32(w, m->timer_ms);
    dsl_put_u32(w, m->nslots);
    dsl_put_str(w, m->program);
    if (m->ignore_urls[0])
        dsl_put_str_max(w, m->ignore_urls, DSL_IGNORE_MAX);
    return dsl_writer_finish(w);
}

int dsl_hello_decode(const uint8_t *p, size_t len, struct dsl_hello *ret)
{
    struct dsl_cursor c;
    struct dsl_hello m;

    dsl_cursor_init(&c, p, len);
    m.flags = dsl_get_u32(&c);
    m.timer_ms = dsl_get_u32(&c);
    m.nslots = dsl_get_u32(&c);
    dsl_get_str(&c, m.program, sizeof(m.program) - 1);
    m.ignore_urls[0] = '\0';
    if (m.flags & DSL_HELLO_IGNORE) {
        dsl_get_str_max(&c, m.ignore_urls, DSL_IGNORE_MAX);
        /* Present means not empty, and patterns are printable ASCII. */
        if (!m.ignore_urls[0])
            return -EBADMSG;
        for (const char *q = m.ignore_urls; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
                return -EBADMSG;
    }
    if (dsl_cursor_finish(&c) < 0)
        return -EBADMSG;
    if (m.flags & ~DSL_HELLO_FLAGS_KNOWN)
        return -EBADMSG;
    *ret = m;
    return 0;
}

int dsl_welcome_encode(struct dsl_writer *w, const struct dsl_welcome *m)
{
    dsl_writer_begin(w, DSL_MSG_WELCOME);
    dsl_put_u32(w, (uint32_t)m->daemon_pid);
    dsl_put_u32(w, m->nslots);
    dsl_put_u32(w, m->timer_ms);
    dsl_put_u64(w, m->generation);
    return dsl_writer_finish(w);
}

int dsl_welcome_decode(const uint8_t *p, size_t len, struct dsl_welcome *ret)
{
    struct dsl_cursor c;
    struct dsl_welcome m;

    dsl_cursor_init(&c, p, len);
    m.daemon_pid = (int32_t)dsl_get_u32(&c);
    m.nslots = dsl_get_u32(&c);
    m.timer_ms = dsl_get_u32(&c);
    m.generation = dsl_get_u64(&c);
    if (dsl_cursor_finish(&c) < 0)
        return -EBADMSG;
    if (m.daemon_pid <= 0 || m.nslots == 0 || m.nslots > 4096u)
        return -EBADMSG;
    *ret = m;
    return 0;
}

int dsl_error_encode(struct dsl_writer *w, const struct dsl_error *m)
{
    dsl_writer_begin(w, DSL_MSG_ERROR);
    dsl_put_u32(w, (uint32_t)m->err);
    dsl_put_str(w, m->message);
    return dsl_writer_finish(w);
}

int dsl_error_decode(const uint8_t *p, size_t len, struct dsl_error *ret)
{
    struct dsl_cursor c;
    struct dsl_error m;

    dsl_cursor_init(&c, p, len);
    m.err = (int32_t)dsl_get_u32(&c);
    dsl_get_str(&c, m.message, sizeof(m.message) - 1);
    if (dsl_cursor_finish(&c) < 0)
        return -EBADMSG;
    if (m.err <= 0 || m.err > 4095)
        return -EBADMSG;
    *ret = m;
    return 0;
}

int dsl_ctl_request_encode(struct dsl_writer *w, const struct dsl_ctl_request *m)
{
    dsl_writer_begin(w, DSL_MSG_CTL_REQUEST);
    dsl_put_u32(w, m->cmd);
    dsl_put_u32(w, (uint32_t)m->pid);
    dsl_put_u32(w, (uint32_t)m->tid);
    return dsl_writer_finish(w);
}

int dsl_ctl_request_decode(const uint8_t *p, size_t len, struct dsl_ctl_request *ret)
{
    struct dsl_cursor c;
    struct dsl_ctl_request m;

    dsl_cursor_init(&c, p, len);
    m.cmd = dsl_get_u32(&c);
    m.pid = (int32_t)dsl_get_u32(&c);
    m.tid = (int32_t)dsl_get_u32(&c);
    if (dsl_cursor_finish(&c) < 0)
        return -EBADMSG;
    if (m.cmd == 0 || m.cmd > DSL_CTL_CMD_MAX_ || m.pid < 0 || m.tid < 0)
        return -EBADMSG;
    /* Only DUMP names a process, and it must. */
    if (m.cmd == DSL_CTL_DUMP ? m.pid == 0 : (m.pid != 0 || m.tid != 0))
        return -EBADMSG;
    *ret = m;
    return 0;
}

int dsl_ctl_data_encode(struct dsl_writer *w, const void *p, size_t n)
{
    if (n == 0 || n > DSL_PAYLOAD_MAX)
        return -EMSGSIZE;
    dsl_writer_begin(w, DSL_MSG_CTL_DATA);
    dsl_put_bytes(w, p, n);
    return dsl_writer_finish(w);
}

int dsl_ctl_end_encode(struct dsl_writer *w, const struct dsl_ctl_end *m)
{
    dsl_writer_begin(w, DSL_MSG_CTL_END);
    dsl_put_u32(w, (uint32_t)m->err);
    dsl_put_str(w, m->message);
    return dsl_writer_finish(w);
}

int dsl_ctl_end_decode(const uint8_t *p, size_t len, struct dsl_ctl_end *ret)
{
    struct dsl_cursor c;
    struct dsl_ctl_end m;

    dsl_cursor_init(&c, p, len);
    m.err = (int32_t)dsl_get_u32(&c);
    dsl_get_str(&c, m.message, sizeof(m.message) - 1);
    if (dsl_cursor_finish(&c) < 0)
        return -EBADMSG;
    if (m.err < 0 || m.err > 4095)
        return -EBADMSG;
    *ret = m;
    return 0;
}

int dsl_take_fds(const struct msghdr *mh, int *ret_fd)
{
    int n = 0;

    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int x;

            memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*ret_fd < 0)
                *ret_fd = x;
            else
                close(x);
            n++;
        }
    }
    return n;
}

ssize_t dsl_recv_fd(int sock, void *buf, size_t size, int *ret_fd, int *ret_nfds, bool *ret_ctrunc)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 8)];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = size};
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = cbuf.buf,
        .msg_controllen = sizeof(cbuf.buf),
    };
    ssize_t n;

    *ret_fd = -1;
    *ret_nfds = 0;
    *ret_ctrunc = false;
    n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -1;
    *ret_nfds = dsl_take_fds(&mh, ret_fd);
    *ret_ctrunc = (mh.msg_flags & MSG_CTRUNC) != 0;
    return n;
}

ssize_t dsl_send_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    if (fd >= 0) {
        struct cmsghdr *cm;

        memset(&cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = sizeof(cbuf.buf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    return sendmsg(sock, &mh, flags);
}
