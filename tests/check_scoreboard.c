/* SPDX-License-Identifier: MIT */
/* Unit tests for the scoreboard: slot reads, validation, the sequence lock. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "run_suite.h"

#include "scoreboard.h"

static struct dsl_sb_header *new_sb(uint32_t n)
{
    struct dsl_sb_header *sb = aligned_alloc(64, dsl_sb_size(n));
    dsl_sb_init(sb, n);
    return sb;
}

static void put(struct dsl_slot *s, uint32_t seq, int tid, const char *m, const char *u)
{
    s->tid = tid;
    s->start_ns = 1000;
    s->method_len = (uint16_t)strlen(m);
    s->url_len = (uint16_t)strlen(u);
    memcpy(s->method, m, s->method_len);
    memcpy(s->url, u, s->url_len);
    s->seq = seq;
}

START_TEST(idle_and_running_slots)
{
    struct dsl_sb_header *sb = new_sb(4);
    struct dsl_request r;

    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(4)), 0);
    ck_assert_int_eq(dsl_sb_read_slot(sb, 4, 0, &r), 0);
    put(dsl_sb_slot(sb, 1), 3, 42, "GET", "/a/b?c=d");
    ck_assert_int_eq(dsl_sb_read_slot(sb, 4, 1, &r), 1);
    ck_assert_int_eq(r.tid, 42);
    ck_assert_uint_eq(r.seq, 3);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.url, "/a/b?c=d");
    /* Even sequence: the request ended. */
    dsl_sb_slot(sb, 1)->seq = 4;
    ck_assert_int_eq(dsl_sb_read_slot(sb, 4, 1, &r), 0);
    ck_assert_int_eq(dsl_sb_read_slot(sb, 4, 4, &r), -EINVAL);
    free(sb);
}
END_TEST

START_TEST(hostile_slot_contents_are_bounded_and_sanitized)
{
    struct dsl_sb_header *sb = new_sb(2);
    struct dsl_slot *s = dsl_sb_slot(sb, 0);
    struct dsl_request r;

    put(s, 1, 7, "GET", "/x");
    s->method_len = 60000;
    s->url_len = 65535;
    memset(s->method, 'M', sizeof(s->method));
    memset(s->url, 'U', sizeof(s->url));
    s->url[3] = '\n';
    s->url[4] = '\033';
    ck_assert_int_eq(dsl_sb_read_slot(sb, 2, 0, &r), 1);
    ck_assert_uint_eq(strlen(r.method), DSL_METHOD_MAX);
    ck_assert_uint_eq(strlen(r.url), DSL_URL_MAX);
    ck_assert_int_eq(r.url[3], '?');
    ck_assert_int_eq(r.url[4], '?');
    /* Impossible values are refused. */
    s->tid = 0;
    ck_assert_int_eq(dsl_sb_read_slot(sb, 2, 0, &r), -EINVAL);
    s->tid = -5;
    ck_assert_int_eq(dsl_sb_read_slot(sb, 2, 0, &r), -EINVAL);
    s->tid = 5;
    s->start_ns = 0;
    ck_assert_int_eq(dsl_sb_read_slot(sb, 2, 0, &r), -EINVAL);
    free(sb);
}
END_TEST

START_TEST(header_validation)
{
    struct dsl_sb_header *sb = new_sb(8);

    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(8)), 0);
    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(8) - 1), -EINVAL);
    ck_assert_int_eq(dsl_sb_check_header(sb, 10), -EINVAL);
    sb->nslots = 9;
    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(8)), -EINVAL);
    sb->nslots = 0;
    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(8)), -EINVAL);
    sb->nslots = 8;
    sb->magic ^= 1;
    ck_assert_int_eq(dsl_sb_check_header(sb, dsl_sb_size(8)), -EPROTO);
    free(sb);
}
END_TEST

/* A writer thread runs begin/end cycles the way libdogslow does, each
 * request with a URL that encodes its own sequence number and a method of
 * matching length; the reader must never see a mixture. */
static struct dsl_sb_header *race_sb;
static volatile int race_stop;

static void *writer(void *arg)
{
    struct dsl_slot *s = dsl_sb_slot(race_sb, 0);
    uint32_t seq = 0;
    char url[64], method[16];

    s->tid = 99;
    while (!race_stop) {
        int ul = snprintf(url, sizeof(url), "/req/%u/%s", seq + 1, (seq & 2) ? "long-tail-x" : "s");
        int ml = snprintf(method, sizeof(method), "%s", (seq & 2) ? "DELETE" : "GET");
        s->start_ns = seq + 1;
        s->method_len = (uint16_t)ml;
        s->url_len = (uint16_t)ul;
        memcpy(s->method, method, (size_t)ml);
        memcpy(s->url, url, (size_t)ul);
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
        for (volatile int spin = 0; spin < (int)(seq % 512); spin++)
            ; /* a request of varying length */
        __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
        seq += 2;
    }
    return arg;
}

START_TEST(sequence_lock_never_gives_a_torn_read)
{
    pthread_t t;
    struct dsl_request r;
    long seen = 0;

    race_sb = new_sb(1);
    race_stop = 0;
    pthread_create(&t, NULL, writer, NULL);
    /* Bounded by time, not iterations: on a loaded machine the writer may
     * not run for a while. */
    time_t until = time(NULL) + 20;
    for (long i = 0; seen < 20000 && (i & 0xffff || time(NULL) < until); i++) {
        if (dsl_sb_read_slot(race_sb, 1, 0, &r) != 1)
            continue;
        char want[64];
        snprintf(want, sizeof(want), "/req/%u/%s", r.seq, ((r.seq - 1) & 2) ? "long-tail-x" : "s");
        ck_assert_str_eq(r.url, want);
        ck_assert_str_eq(r.method, ((r.seq - 1) & 2) ? "DELETE" : "GET");
        ck_assert_uint_eq(r.start_ns, r.seq);
        seen++;
    }
    race_stop = 1;
    pthread_join(t, NULL);
    ck_assert_int_gt(seen, 0);
    free(race_sb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scoreboard");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, idle_and_running_slots);
    tcase_add_test(tc, hostile_slot_contents_are_bounded_and_sanitized);
    tcase_add_test(tc, header_validation);
    tcase_add_test(tc, sequence_lock_never_gives_a_torn_read);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
