/* SPDX-License-Identifier: MIT */
/*
 * A binary min-heap of request deadlines.  Entries name a worker by id and a
 * slot by index and sequence number, so an entry whose request has ended or
 * whose worker is gone is simply found stale when it fires.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "dogslowd.h"

static void swap(struct deadline *a, struct deadline *b)
{
    struct deadline t = *a;
    *a = *b;
    *b = t;
}

static void sift_up(struct heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].when_ns <= h->v[i].when_ns)
            break;
        swap(&h->v[p], &h->v[i]);
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
        swap(&h->v[m], &h->v[i]);
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
    sift_up(h, h->n);
    h->n++;
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
    h->v[0] = h->v[--h->n];
    if (h->n)
        sift_down(h, 0);
    return true;
}

void heap_remove_worker(struct heap *h, uint64_t worker_id)
{
    size_t j = 0;

    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].worker_id != worker_id)
            h->v[j++] = h->v[i];
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
