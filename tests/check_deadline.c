/* SPDX-License-Identifier: MIT */
/* Unit tests for the deadline heap. */
#include <errno.h>
#include <stdlib.h>

#include <check.h>

#include "run_suite.h"

#include "core.h"

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

/* Every entry with a pos finds itself there. */
static void check_positions(const struct heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].pos)
            ck_assert_uint_eq(*h->v[i].pos, i + 1);
}

/*
 * One entry per slot: a slot's new request moves its entry (heap_update)
 * instead of adding one, pops clear the slot's pos, removing a worker keeps
 * the others' positions true, and the order holds throughout.
 */
START_TEST(one_entry_per_slot_moves_and_keeps_order)
{
    enum { SLOTS = 300 };
    uint32_t pos[2][SLOTS] = {{0}};
    uint64_t when[2][SLOTS], last = 0;
    struct heap h = {0};
    struct deadline e;
    uint32_t x = 12345;

    for (int round = 0; round < 20; round++) {
        for (uint32_t w = 0; w < 2; w++) {
            for (uint32_t i = 0; i < SLOTS; i++) {
                x = x * 1664525u + 1013904223u;
                if (x % 3 == 0)
                    continue; /* this slot saw no new request in this scan */
                when[w][i] = 1000 + (uint64_t)round * 100 + x % 5000;
                e = (struct deadline){.when_ns = when[w][i], .worker_id = w, .slot = i,
                                      .seq = (uint32_t)round * 2 + 1, .pos = &pos[w][i]};
                if (pos[w][i])
                    heap_update(&h, pos[w][i] - 1, &e);
                else
                    ck_assert_int_eq(heap_push(&h, &e), 0);
                check_positions(&h);
            }
        }
        ck_assert_uint_le(h.n, 2 * SLOTS);
    }
    /* Each entry carries its slot's latest request. */
    for (size_t i = 0; i < h.n; i++)
        ck_assert_uint_eq(h.v[i].when_ns, when[h.v[i].worker_id][h.v[i].slot]);
    heap_remove_worker(&h, 0);
    check_positions(&h);
    ck_assert_uint_le(h.n, SLOTS);
    while (heap_pop(&h, &e)) {
        ck_assert_uint_eq(e.worker_id, 1);
        ck_assert_uint_ge(e.when_ns, last);
        ck_assert_uint_eq(pos[1][e.slot], 0); /* popped: the slot has no entry */
        last = e.when_ns;
        check_positions(&h);
    }
    for (uint32_t i = 0; i < SLOTS; i++)
        ck_assert_uint_eq(pos[1][i], 0);
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
    tcase_add_test(tc, one_entry_per_slot_moves_and_keeps_order);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
