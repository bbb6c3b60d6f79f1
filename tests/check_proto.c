/* SPDX-License-Identifier: MIT */
/* Unit tests for the wire protocol: framing, cursor, message codecs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "run_suite.h"

#include "proto.h"
#include "util.h"

/* common/util.c's UTF-8 check, which the JSON report and the e-mail share:
 * every well-formed length, and each way a sequence can be wrong. */
START_TEST(utf8_sequences_are_checked)
{
    static const struct {
        const char *s;
        size_t n, want;
    } cases[] = {
        {"a", 1, 1},
        {"\xc3\xa9", 2, 2},                 /* é */
        {"\xe2\x82\xac", 3, 3},             /* € */
        {"\xf0\x9f\x90\x95", 4, 4},         /* a dog, U+1F415 */
        {"\xf4\x8f\xbf\xbf", 4, 4},         /* U+10FFFF, the last */
        {"\xc3\xa9", 1, 0},                 /* cut by n */
        {"\xe2\x82", SIZE_MAX, 0},          /* cut by the NUL */
        {"\x80", 1, 0},                     /* a lone continuation byte */
        {"\xc0\x80", 2, 0},                 /* overlong NUL */
        {"\xc1\xbf", 2, 0},                 /* overlong */
        {"\xe0\x80\x80", 3, 0},             /* overlong */
        {"\xf0\x80\x80\x80", 4, 0},         /* overlong */
        {"\xed\xa0\x80", 3, 0},             /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, 0},         /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},         /* no such lead byte */
        {"\xc3\x28", 2, 0},                 /* a continuation that is not */
        {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(dsl_utf8_len((const unsigned char *)cases[i].s, cases[i].n) == cases[i].want,
                      "case %zu: %zu, want %zu", i,
                      dsl_utf8_len((const unsigned char *)cases[i].s, cases[i].n), cases[i].want);
}
END_TEST

START_TEST(hello_round_trip)
{
    struct dsl_writer w;
    struct dsl_hello in = {.flags = DSL_HELLO_ADOPT, .timer_ms = 2500, .nslots = 64}, out;
    struct dsl_hdr h;
    int n;

    snprintf(in.program, sizeof(in.program), "%s", "gunicorn: worker [app]");
    n = dsl_hello_encode(&w, &in);
    ck_assert_int_gt(n, (int)DSL_HDR_SIZE);
    memcpy(&h, w.buf, sizeof(h));
    ck_assert_int_eq(dsl_hdr_check(&h), 0);
    ck_assert_uint_eq(h.type, DSL_MSG_HELLO);
    ck_assert_uint_eq(h.len, (unsigned)n - DSL_HDR_SIZE);
    ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, h.len, &out), 0);
    ck_assert_uint_eq(out.flags, in.flags);
    ck_assert_uint_eq(out.timer_ms, 2500);
    ck_assert_uint_eq(out.nslots, 64);
    ck_assert_str_eq(out.program, in.program);
}
END_TEST

START_TEST(welcome_and_error_round_trip)
{
    struct dsl_writer w;
    struct dsl_welcome wi = {.daemon_pid = 77, .nslots = 256, .timer_ms = 25000,
                             .generation = 0x1122334455667788ull}, wo;
    struct dsl_error ei = {.err = EACCES}, eo;
    int n;

    n = dsl_welcome_encode(&w, &wi);
    ck_assert_int_eq(dsl_welcome_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &wo), 0);
    ck_assert_int_eq(wo.daemon_pid, 77);
    ck_assert_uint_eq(wo.generation, wi.generation);
    snprintf(ei.message, sizeof(ei.message), "%s", "not allowed");
    n = dsl_error_encode(&w, &ei);
    ck_assert_int_eq(dsl_error_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &eo), 0);
    ck_assert_int_eq(eo.err, EACCES);
    ck_assert_str_eq(eo.message, "not allowed");
}
END_TEST

START_TEST(decoders_reject_short_long_and_bad_fields)
{
    struct dsl_writer w;
    struct dsl_hello in = {.timer_ms = 1}, out;
    int n = dsl_hello_encode(&w, &in);
    size_t len = (size_t)n - DSL_HDR_SIZE;
    uint8_t buf[DSL_PAYLOAD_MAX + 8];

    /* Every truncation fails. */
    for (size_t k = 0; k < len; k++)
        ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, k, &out), -EBADMSG);
    /* Trailing bytes fail: the cursor must consume exactly everything. */
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    buf[len] = 0;
    ck_assert_int_eq(dsl_hello_decode(buf, len + 1, &out), -EBADMSG);
    /* Unknown flags fail. */
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    buf[0] = 0x80;
    ck_assert_int_eq(dsl_hello_decode(buf, len, &out), -EBADMSG);
    /* A string with a NUL inside fails; one longer than the bound fails. */
    snprintf(in.program, sizeof(in.program), "%s", "abc");
    n = dsl_hello_encode(&w, &in);
    len = (size_t)n - DSL_HDR_SIZE;
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    buf[len - 2] = '\0';
    ck_assert_int_eq(dsl_hello_decode(buf, len, &out), -EBADMSG);
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    uint16_t big = 1000;
    memcpy(buf + 12, &big, 2);
    ck_assert_int_eq(dsl_hello_decode(buf, len, &out), -EBADMSG);
    /* Error messages must carry a real errno. */
    struct dsl_error e = {.err = 0}, eo;
    n = dsl_error_encode(&w, &e);
    ck_assert_int_eq(dsl_error_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &eo),
                     -EBADMSG);
}
END_TEST

START_TEST(header_checks)
{
    struct dsl_hdr h = {DSL_PROTO_MAGIC, DSL_PROTO_VERSION, DSL_MSG_HELLO, 10, 0};

    ck_assert_int_eq(dsl_hdr_check(&h), 0);
    h.magic = 0x12345678;
    ck_assert_int_eq(dsl_hdr_check(&h), -EPROTO);
    h.magic = DSL_PROTO_MAGIC;
    h.version = 2;
    ck_assert_int_eq(dsl_hdr_check(&h), -EPROTONOSUPPORT);
    h.version = DSL_PROTO_VERSION;
    h.type = 0;
    ck_assert_int_eq(dsl_hdr_check(&h), -EBADMSG);
    h.type = 99;
    ck_assert_int_eq(dsl_hdr_check(&h), -EBADMSG);
    h.type = DSL_MSG_HELLO;
    h.len = DSL_PAYLOAD_MAX + 1;
    ck_assert_int_eq(dsl_hdr_check(&h), -EMSGSIZE);
    h.len = DSL_PAYLOAD_MAX;
    ck_assert_int_eq(dsl_hdr_check(&h), 0);
    h.reserved = 1;
    ck_assert_int_eq(dsl_hdr_check(&h), -EBADMSG);
}
END_TEST

/* Feed two messages back to back in chunks of every size from 1 to the
 * whole: each is reassembled exactly. */
START_TEST(framer_odd_sized_chunks)
{
    struct dsl_writer w1, w2;
    struct dsl_hello h1 = {.timer_ms = 111}, h2 = {.timer_ms = 222}, out;
    uint8_t stream[2 * sizeof(w1.buf)];
    size_t total;
    int n1, n2;

    snprintf(h1.program, sizeof(h1.program), "%s", "first");
    snprintf(h2.program, sizeof(h2.program), "%s", "second-program-name");
    n1 = dsl_hello_encode(&w1, &h1);
    n2 = dsl_hello_encode(&w2, &h2);
    memcpy(stream, w1.buf, (size_t)n1);
    memcpy(stream + n1, w2.buf, (size_t)n2);
    total = (size_t)(n1 + n2);

    for (size_t chunk = 1; chunk <= total; chunk++) {
        struct dsl_framer *f = calloc(1, sizeof(*f));
        size_t off = 0;
        int got = 0;

        while (off < total) {
            size_t len = total - off < chunk ? total - off : chunk, used = 0;
            while (used < len) {
                size_t u;
                int r = dsl_framer_push(f, stream + off + used, len - used, &u);
                ck_assert_int_ge(r, 0);
                used += u;
                if (r == 1) {
                    ck_assert_int_eq(dsl_hello_decode(f->payload, f->hdr.len, &out), 0);
                    ck_assert_uint_eq(out.timer_ms, got == 0 ? 111 : 222);
                    ck_assert_str_eq(out.program, got == 0 ? "first" : "second-program-name");
                    got++;
                    dsl_framer_reset(f);
                }
            }
            off += len;
        }
        ck_assert_int_eq(got, 2);
        free(f);
    }
}
END_TEST

START_TEST(framer_rejects_oversized_header_early)
{
    struct dsl_framer f = {0};
    struct dsl_hdr h = {DSL_PROTO_MAGIC, DSL_PROTO_VERSION, DSL_MSG_HELLO, 1u << 30, 0};
    size_t used;

    ck_assert_int_eq(dsl_framer_push(&f, (uint8_t *)&h, sizeof(h), &used), -EMSGSIZE);
    ck_assert_uint_eq(used, sizeof(h));
}
END_TEST

/* Deterministic garbage of many lengths never crashes the decoders, and
 * whatever they accept is within bounds (ASan/UBSan build checks the rest). */
START_TEST(garbage_never_crashes)
{
    uint8_t buf[600];
    uint32_t x = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % (int)sizeof(buf));
        struct dsl_hello h;
        struct dsl_welcome wl;
        struct dsl_error e;
        struct dsl_framer *f = malloc(sizeof(*f));
        size_t used;

        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (dsl_hello_decode(buf, len, &h) == 0)
            ck_assert_uint_le(strlen(h.program), DSL_STR_MAX);
        if (dsl_error_decode(buf, len, &e) == 0)
            ck_assert_uint_le(strlen(e.message), DSL_STR_MAX);
        (void)dsl_welcome_decode(buf, len, &wl);
        {
            struct dsl_ctl_request rq;
            struct dsl_ctl_end ce;
            if (dsl_ctl_request_decode(buf, len, &rq) == 0)
                ck_assert(rq.cmd >= 1 && rq.cmd <= DSL_CTL_CMD_MAX_);
            if (dsl_ctl_end_decode(buf, len, &ce) == 0)
                ck_assert_uint_le(strlen(ce.message), DSL_STR_MAX);
            if (dsl_hello_decode(buf, len, &h) == 0)
                ck_assert_uint_le(strlen(h.ignore_urls), DSL_IGNORE_MAX);
        }
        dsl_framer_reset(f);
        (void)dsl_framer_push(f, buf, len, &used);
        ck_assert_uint_le(used, len);
        free(f);
    }
}
END_TEST

/* A worker's ignore patterns ride in the hello, bounded and printable. */
START_TEST(hello_with_ignore_patterns)
{
    struct dsl_writer w;
    struct dsl_hello in = {.timer_ms = 500}, out;
    uint8_t buf[DSL_PAYLOAD_MAX];
    size_t len;
    int n;

    snprintf(in.program, sizeof(in.program), "%s", "app");
    /* Without patterns the flag stays clear and the message is as before. */
    n = dsl_hello_encode(&w, &in);
    ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &out), 0);
    ck_assert_uint_eq(out.flags & DSL_HELLO_IGNORE, 0);
    ck_assert_str_eq(out.ignore_urls, "");

    snprintf(in.ignore_urls, sizeof(in.ignore_urls), "%s", "/health*,/static/*");
    n = dsl_hello_encode(&w, &in);
    len = (size_t)n - DSL_HDR_SIZE;
    ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, len, &out), 0);
    ck_assert_uint_eq(out.flags & DSL_HELLO_IGNORE, DSL_HELLO_IGNORE);
    ck_assert_str_eq(out.ignore_urls, "/health*,/static/*");
    ck_assert_str_eq(out.program, "app");

    /* Truncated anywhere, or with a byte more: refused. */
    for (size_t k = 0; k < len; k++)
        ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, k, &out), -EBADMSG);
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    buf[len] = 'x';
    ck_assert_int_eq(dsl_hello_decode(buf, len + 1, &out), -EBADMSG);
    /* A control byte in the patterns: refused. */
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    buf[len - 3] = '\n';
    ck_assert_int_eq(dsl_hello_decode(buf, len, &out), -EBADMSG);
    /* A length past the bound: refused before anything is copied. */
    memcpy(buf, w.buf + DSL_HDR_SIZE, len);
    {
        uint16_t big = DSL_IGNORE_MAX + 1;
        size_t at = 12 + 2 + strlen("app");
        memcpy(buf + at, &big, 2);
        ck_assert_int_eq(dsl_hello_decode(buf, len, &out), -EBADMSG);
    }
    /* The flag with an empty list: refused (present means not empty). */
    {
        size_t at = 12 + 2 + strlen("app");
        uint16_t zero = 0;
        memcpy(buf, w.buf + DSL_HDR_SIZE, len);
        memcpy(buf + at, &zero, 2);
        ck_assert_int_eq(dsl_hello_decode(buf, at + 2, &out), -EBADMSG);
    }
    /* The longest list fits and comes back whole; a longer one is cut. */
    memset(in.ignore_urls, 'a', DSL_IGNORE_MAX);
    in.ignore_urls[0] = '/';
    in.ignore_urls[DSL_IGNORE_MAX] = '\0';
    n = dsl_hello_encode(&w, &in);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(dsl_hello_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &out), 0);
    ck_assert_uint_eq(strlen(out.ignore_urls), DSL_IGNORE_MAX);
}
END_TEST

START_TEST(control_messages)
{
    struct dsl_writer w;
    struct dsl_ctl_request rq = {.cmd = DSL_CTL_DUMP, .pid = 42, .tid = 43}, ro;
    struct dsl_ctl_end e = {.err = 0}, eo;
    uint8_t text[DSL_PAYLOAD_MAX + 1];
    struct dsl_hdr h;
    int n;

    n = dsl_ctl_request_encode(&w, &rq);
    memcpy(&h, w.buf, sizeof(h));
    ck_assert_int_eq(dsl_hdr_check(&h), 0);
    ck_assert_uint_eq(h.type, DSL_MSG_CTL_REQUEST);
    ck_assert_int_eq(dsl_ctl_request_decode(w.buf + DSL_HDR_SIZE, h.len, &ro), 0);
    ck_assert_uint_eq(ro.cmd, DSL_CTL_DUMP);
    ck_assert_int_eq(ro.pid, 42);
    ck_assert_int_eq(ro.tid, 43);
    for (size_t k = 0; k < h.len; k++)
        ck_assert_int_eq(dsl_ctl_request_decode(w.buf + DSL_HDR_SIZE, k, &ro), -EBADMSG);

    /* dump needs a pid; the other commands take none; unknown commands fail. */
    static const struct dsl_ctl_request bad[] = {
        {DSL_CTL_DUMP, 0, 0},   {DSL_CTL_DUMP, -1, 0},  {DSL_CTL_DUMP, 5, -2},
        {DSL_CTL_STATUS, 5, 0}, {DSL_CTL_CONFIG, 0, 7}, {0, 0, 0},
        {DSL_CTL_CMD_MAX_ + 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = dsl_ctl_request_encode(&w, &bad[i]);
        ck_assert_int_eq(dsl_ctl_request_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE,
                                                &ro),
                         -EBADMSG);
    }
    rq = (struct dsl_ctl_request){.cmd = DSL_CTL_STATUS};
    n = dsl_ctl_request_encode(&w, &rq);
    ck_assert_int_eq(dsl_ctl_request_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &ro),
                     0);

    /* DATA: 1 to DSL_PAYLOAD_MAX bytes. */
    memset(text, 'x', sizeof(text));
    ck_assert_int_eq(dsl_ctl_data_encode(&w, text, 0), -EMSGSIZE);
    ck_assert_int_eq(dsl_ctl_data_encode(&w, text, DSL_PAYLOAD_MAX + 1), -EMSGSIZE);
    n = dsl_ctl_data_encode(&w, text, DSL_PAYLOAD_MAX);
    ck_assert_int_eq(n, (int)(DSL_HDR_SIZE + DSL_PAYLOAD_MAX));
    memcpy(&h, w.buf, sizeof(h));
    ck_assert_int_eq(dsl_hdr_check(&h), 0);
    ck_assert_uint_eq(h.type, DSL_MSG_CTL_DATA);

    /* END: status 0 or an errno, and a line. */
    snprintf(e.message, sizeof(e.message), "%s", "3 threads of pid 42");
    n = dsl_ctl_end_encode(&w, &e);
    ck_assert_int_eq(dsl_ctl_end_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &eo), 0);
    ck_assert_int_eq(eo.err, 0);
    ck_assert_str_eq(eo.message, "3 threads of pid 42");
    e.err = -1;
    n = dsl_ctl_end_encode(&w, &e);
    ck_assert_int_eq(dsl_ctl_end_decode(w.buf + DSL_HDR_SIZE, (size_t)n - DSL_HDR_SIZE, &eo),
                     -EBADMSG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, hello_round_trip);
    tcase_add_test(tc, welcome_and_error_round_trip);
    tcase_add_test(tc, decoders_reject_short_long_and_bad_fields);
    tcase_add_test(tc, header_checks);
    tcase_add_test(tc, framer_odd_sized_chunks);
    tcase_add_test(tc, framer_rejects_oversized_header_early);
    tcase_add_test(tc, garbage_never_crashes);
    tcase_add_test(tc, hello_with_ignore_patterns);
    tcase_add_test(tc, control_messages);
    tcase_add_test(tc, utf8_sequences_are_checked);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
