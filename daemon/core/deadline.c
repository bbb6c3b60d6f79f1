/* SPDX-License-Identifier: MIT */
/*
 * A binary min-heap of request deadlines.  Entries name a worker by id and a
 * slot by index and sequence number, so an entry whose request has ended or
 * whose worker is gone is simply found stale when it fires.
 *
 * A slot has at most one report entry: when a new request shows up in it,
 * the previous request has ended, and its entry (found through the slot's
 * heap_pos, which every move keeps up to date) becomes the new one's.  So
 * the heap holds one entry per busy slot, not one per request seen in the
 * last timer's worth of time (100,000 requests a second with a 25 s timer
 * used to mean millions).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "core.h"

static void place(struct heap *h, size_t i)
{
    if (h->v[i].pos)
        *h->v[i].pos = (uint32_t)(i + 1);
}

static void swap(struct heap *h, size_t i, size_t j)
{
    struct deadline t = h->v[i];
    h->v[i] = h->v[j];
    h->v[j] = t;
    place(h, i);
    place(h, j);
}

static void sift_up(struct heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].when_ns <= h->v[i].when_ns)
            break;
        swap(h, p, i);
        i = p;
    }
}

static void sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l].when_ns < h->v[m].when_ns)
            m = l;
        if (r < h->n && h->v[r].when_ns < h->v[m].when_ns)
            m = r;
        if (m == i)
            break;
        swap(h, m, i);
        i = m;
    }
}

/* Returns 0, -ENOSPC when the heap is at its cap, -ENOMEM. */
int heap_push(struct heap *h, const struct deadline *e)
{
    if (h->max && h->n >= h->max)
        return -ENOSPC;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct deadline *v = reallocarray(h->v, cap, sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = *e;
    place(h, h->n);
    h->n++;
    sift_up(h, h->n - 1);
    return 0;
}

bool heap_peek(const struct heap *h, struct deadline *ret)
{
    if (h->n == 0)
        return false;
    *ret = h->v[0];
    return true;
}

bool heap_pop(struct heap *h, struct deadline *ret)
{
    if (h->n == 0)
        return false;
    *ret = h->v[0];
    if (ret->pos)
        *ret->pos = 0;
    ret->pos = NULL;
    h->v[0] = h->v[--h->n];
    if (h->n) {
        place(h, 0);
        sift_down(h, 0);
    }
    return true;
}

void heap_update(struct heap *h, size_t i, const struct deadline *e)
{
    uint64_t was = h->v[i].when_ns;

    h->v[i].when_ns = e->when_ns;
    h->v[i].seq = e->seq;
    h->v[i].kind = e->kind;
    if (e->when_ns < was)
        sift_up(h, i);
    else
        sift_down(h, i);
}

void heap_remove_worker(struct heap *h, uint64_t worker_id)
{
    size_t j = 0;

    /* The removed entries' pos point into the worker's slots, which go
     * with it: not written. */
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].worker_id != worker_id) {
            h->v[j] = h->v[i];
            place(h, j++);
        }
    h->n = j;
    for (size_t i = h->n / 2; i-- > 0;)
        sift_down(h, i);
}

void heap_free(struct heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
