/* SPDX-License-Identifier: MIT */
/*
 * Line numbers: a code object's location table (co_linetable, the 3.11+
 * format of CPython's InternalDocs/locations.md) decoded up to the code
 * unit a frame runs, read in chunks straight from the worker.  The table
 * is the worker's: a malformed entry, a delta that would overflow or a
 * read that fails gives line 0 (unknown), never more.
 */
#include "config.h"

#include <limits.h>

#include "py.h"

/* Sequential bytes of a remote buffer, fetched in chunks. */
struct cursor {
    struct ctx *c;
    uint64_t addr, end;
    uint8_t buf[256];
    size_t pos, n;
    bool failed;
};

static int cur_byte(struct cursor *k)
{
    if (k->pos == k->n) {
        uint64_t left = k->end - k->addr;
        if (left == 0)
            return -1;
        k->n = left < sizeof(k->buf) ? (size_t)left : sizeof(k->buf);
        if (rd(k->c, k->addr, k->buf, k->n) < 0) {
            k->failed = true;
            k->n = 0;
            k->addr = k->end;
            return -1;
        }
        k->addr += k->n;
        k->pos = 0;
    }
    return k->buf[k->pos++];
}

/* Varints: 6-bit groups, least significant first, 0x40 = more follows. */
static bool cur_varint(struct cursor *k, uint32_t *ret)
{
    uint32_t v = 0;
    int b, shift = 0;

    do {
        b = cur_byte(k);
        if (b < 0 || (b & 0x80) || shift > 30)
            return false;
        v |= (uint32_t)(b & 63) << shift;
        shift += 6;
    } while (b & 64);
    *ret = v;
    return true;
}

static bool cur_svarint(struct cursor *k, int *ret)
{
    uint32_t u;

    if (!cur_varint(k, &u))
        return false;
    *ret = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
    return true;
}

/*
 * The line of code unit 'unit' (an index into co_code_adaptive).  Each
 * entry covers 1..8 code units and moves the line by a delta; code 15 has
 * no line.  Returns 0 when unknown.
 */
int py_decode_line(struct ctx *c, uint64_t table, uint64_t size, int firstlineno, int64_t unit)
{
    struct cursor k = {.c = c, .addr = table, .end = table + size};
    int line = firstlineno;
    int64_t start = 0;
    int b = cur_byte(&k);

    if (unit < 0)
        return firstlineno;
    while (b >= 0) {
        unsigned code = ((unsigned)b >> 3) & 15, len = ((unsigned)b & 7) + 1;
        int delta = 0;
        uint32_t skip;
        if (!(b & 0x80))
            return 0;
        switch (code) {
        case 15:
            break;
        case 14:
            if (!cur_svarint(&k, &delta) || !cur_varint(&k, &skip) || !cur_varint(&k, &skip) ||
                !cur_varint(&k, &skip))
                return 0;
            break;
        case 13:
            if (!cur_svarint(&k, &delta))
                return 0;
            break;
        case 10:
        case 11:
        case 12:
            delta = (int)code - 10;
            if (cur_byte(&k) < 0 || cur_byte(&k) < 0)
                return 0;
            break;
        default:
            if (cur_byte(&k) < 0)
                return 0;
            break;
        }
        if ((delta > 0 && line > INT_MAX - delta) || (delta < 0 && line < INT_MIN - delta))
            return 0;
        line += delta;
        if (unit < start + len)
            return code == 15 ? 0 : (line > 0 ? line : 0);
        start += len;
        b = cur_byte(&k);
    }
    return 0;
}
