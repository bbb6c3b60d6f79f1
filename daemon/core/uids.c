/* SPDX-License-Identifier: MIT */
/*
 * The table of what each user holds (struct uid_table, core.h): open
 * addressing with linear probing, keyed by uid.  A slot whose counts are
 * both zero is free, so an entry exists only while its user holds
 * something, and a deletion moves back the entries after it instead of
 * leaving a tombstone: lookups stay short however many users came and went.
 */
#include "config.h"

#include "core.h"

_Static_assert(UIDS_SLOTS == 1u << 13, "uid_home() takes the top 13 bits of the product");
_Static_assert(UIDS_MAX < UIDS_SLOTS, "a probe must always meet a free slot");

static size_t uid_home(uid_t uid)
{
    /* Fibonacci hashing: consecutive uids (the usual case) spread out. */
    return (size_t)(((uint32_t)uid * 2654435761u) >> (32 - 13));
}

static bool slot_free(const struct uid_use *u)
{
    return !u->conns && !u->workers;
}

struct uid_use *uids_find(struct uid_table *t, uid_t uid, bool create)
{
    /* Ends: at most UIDS_MAX of the UIDS_SLOTS slots are used. */
    for (size_t i = uid_home(uid);; i = (i + 1) & (UIDS_SLOTS - 1)) {
        struct uid_use *u = &t->slot[i];

        if (slot_free(u)) {
            if (!create || t->n >= UIDS_MAX)
                return NULL;
            u->uid = uid;
            t->n++;
            return u;
        }
        if (u->uid == uid)
            return u;
    }
}

void uids_forget_if_unused(struct uid_table *t, struct uid_use *u)
{
    size_t i = (size_t)(u - t->slot);

    if (!slot_free(u))
        return;
    /* Each entry after the hole, up to the next free slot, is moved into
     * it unless its home lies after the hole (cyclically, up to where it
     * is): otherwise a lookup would stop at the hole and miss it. */
    for (size_t j = (i + 1) & (UIDS_SLOTS - 1); !slot_free(&t->slot[j]);
         j = (j + 1) & (UIDS_SLOTS - 1)) {
        size_t k = uid_home(t->slot[j].uid);
        bool home_after_hole = i <= j ? (i < k && k <= j) : (i < k || k <= j);

        if (!home_after_hole) {
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i] = (struct uid_use){0};
    t->n--;
}
