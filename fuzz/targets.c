/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "capture.h"
#include "fuzz.h"
#include "proto.h"
#include "scoreboard.h"

/*
 * The byte stream is cut into chunks whose sizes come from the data itself,
 * so odd framings (a header split anywhere, several messages in one read)
 * are explored.  Every complete message is decoded by every decoder.
 */
int fuzz_proto(const uint8_t *data, size_t size)
{
    struct dsl_framer *f;
    size_t off = 1;

    if (size < 1)
        return 0;
    f = calloc(1, sizeof(*f));
    if (!f)
        return 0;
    size_t chunk = (size_t)(data[0] % 37) + 1;
    while (off < size) {
        size_t len = size - off < chunk ? size - off : chunk, used = 0;
        while (used < len) {
            size_t u;
            int r = dsl_framer_push(f, data + off + used, len - used, &u);
            if (u > len - used)
                abort(); /* consumed more than it was given */
            used += u;
            if (r < 0) {
                free(f);
                return 0; /* the daemon closes such a connection */
            }
            if (r == 1) {
                struct dsl_hello h;
                struct dsl_welcome w;
                struct dsl_error e;
                if (f->hdr.len > DSL_PAYLOAD_MAX)
                    abort();
                if (dsl_hello_decode(f->payload, f->hdr.len, &h) == 0 &&
                    strlen(h.program) > DSL_STR_MAX)
                    abort();
                (void)dsl_welcome_decode(f->payload, f->hdr.len, &w);
                if (dsl_error_decode(f->payload, f->hdr.len, &e) == 0 &&
                    strlen(e.message) > DSL_STR_MAX)
                    abort();
                dsl_framer_reset(f);
            }
        }
        off += len;
        chunk = (chunk * 7 + 3) % 41 + 1;
    }
    free(f);
    return 0;
}

/* A scoreboard whose every byte the worker chose. */
int fuzz_scoreboard(const uint8_t *data, size_t size)
{
    uint32_t nslots = size ? (uint32_t)(data[0] % 4) + 1 : 1;
    size_t sbsize = dsl_sb_size(nslots);
    struct dsl_sb_header *sb = aligned_alloc(64, (sbsize + 63) & ~(size_t)63);
    struct dsl_request req;

    if (!sb)
        return 0;
    memset(sb, 0, sbsize);
    memcpy(sb, data, size < sbsize ? size : sbsize);
    (void)dsl_sb_check_header(sb, sbsize);
    for (uint32_t i = 0; i <= nslots; i++) {
        int r = dsl_sb_read_slot(sb, nslots, i, &req);
        if (r == 1) {
            if (strlen(req.method) > DSL_METHOD_MAX || strlen(req.url) > DSL_URL_MAX)
                abort();
            for (const char *p = req.url; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                    abort(); /* must have been sanitized */
        }
    }
    free(sb);
    return 0;
}

struct holes {
    const uint8_t *p;
    size_t len;
    uint64_t hole; /* an unmapped 64-byte window inside the image */
};

static int holes_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct holes *h = ctx;

    if (addr < 0x1000 || addr - 0x1000 > h->len || len > h->len - (addr - 0x1000))
        return -EFAULT;
    if (addr < h->hole + 64 && addr + len > h->hole)
        return -EFAULT;
    memcpy(buf, h->p + (addr - 0x1000), len);
    return 0;
}

/* Strings in a remote image with a hole, a budget, any start. */
int fuzz_cstr(const uint8_t *data, size_t size)
{
    struct holes h;
    struct remote_mem m = {.read = holes_read, .ctx = &h};
    char buf[200];
    int r;

    if (size < 4)
        return 0;
    h.p = data + 4;
    h.len = size - 4;
    h.hole = 0x1000 + (uint64_t)(data[0] | data[1] << 8);
    m.budget = (size_t)data[2] * 4;
    r = remote_read_cstr(&m, 0x1000 + data[3], buf, sizeof(buf));
    if (r >= (int)sizeof(buf) || strnlen(buf, sizeof(buf)) == sizeof(buf))
        abort();
    if (m.budget && m.used > m.budget)
        abort();
    return 0;
}

int fuzz_dwarf_expr(const uint8_t *data, size_t size)
{
    return locals_fuzz_eval(data, size);
}

int fuzz_sep(const uint8_t *data, size_t size)
{
    return sep_fuzz_one(data, size);
}
