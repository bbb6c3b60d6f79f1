/* SPDX-License-Identifier: MIT */
/* Unit tests for the deadline heap. */
#include <errno.h>
#include <stdlib.h>

#include <check.h>

#include "run_suite.h"

#include "dogslowd.h"

START_TEST(pops_in_deadline_order)
{
    struct heap h = {0};
    struct deadline e;
    uint64_t last = 0;
    uint32_t x = 7;

    for (int i = 0; i < 5000; i++) {
        x = x * 1664525u + 1013904223u;
        e = (struct deadline){.when_ns = x % 100000, .worker_id = (uint64_t)(i % 7), .slot = (uint32_t)i};
        ck_assert_int_eq(heap_push(&h, &e), 0);
    }
    ck_assert_uint_eq(h.n, 5000);
    for (int i = 0; i < 5000; i++) {
        ck_assert(heap_pop(&h, &e));
        ck_assert_uint_ge(e.when_ns, last);
        last = e.when_ns;
    }
    ck_assert(!heap_pop(&h, &e));
    ck_assert(!heap_peek(&h, &e));
    heap_free(&h);
}
END_TEST

START_TEST(remove_worker_keeps_order_and_others)
{
    struct heap h = {0};
    struct deadline e;
    uint64_t last = 0;
    int n = 0;

    for (int i = 0; i < 1000; i++) {
        e = (struct deadline){.when_ns = (uint64_t)((i * 7919) % 1000), .worker_id = (uint64_t)(i % 3)};
        heap_push(&h, &e);
    }
    heap_remove_worker(&h, 1);
    while (heap_pop(&h, &e)) {
        ck_assert_uint_ne(e.worker_id, 1);
        ck_assert_uint_ge(e.when_ns, last);
        last = e.when_ns;
        n++;
    }
    ck_assert_int_eq(n, 667);
    heap_free(&h);
}
END_TEST

START_TEST(cap_is_enforced)
{
    struct heap h = {.max = 10};
    struct deadline e = {.when_ns = 1};

    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(heap_push(&h, &e), 0);
    ck_assert_int_eq(heap_push(&h, &e), -ENOSPC);
    heap_free(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deadline");
    TCase *tc = tcase_create("heap");

    tcase_add_test(tc, pops_in_deadline_order);
    tcase_add_test(tc, remove_worker_keeps_order_and_others);
    tcase_add_test(tc, cap_is_enforced);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
