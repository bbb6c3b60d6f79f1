/* SPDX-License-Identifier: MIT */
/*
 * Reading and rendering Python objects from the worker's memory: str,
 * bytes, int, bool, float, None, tuple, list, dict, set and frozenset the
 * way repr() shows them (bounded: a value's bytes, items per container,
 * nesting), any other object as <TYPE object at 0xADDR>, and names (file,
 * function, type) as plain text.
 *
 * An object is interpreted only after its type pointer matched the real
 * type object's address (py_runtime.c found them), and every length it
 * claims is capped before it sizes a read.  A value that cannot be read is
 * shown as <unreadable object at 0xADDR>, never half-written.
 *
 * While the thread is held (c->defer_types), a type's name is not read: a
 * mark holding the type's address stands in for it, and py_name_types()
 * puts the names in after the thread is let go (see py_walk.c).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "py.h"

/* Hard caps on what a worker can make us read or render. */
#define STR_LEN_MAX      ((uint64_t)1 << 40) /* beyond this a str is corrupt */
#define CONTAINER_MAX    ((int64_t)1 << 40)
#define INT_DIGITS_SHOWN 40     /* 30-bit digits converted to decimal (~360 digits) */
#define DEPTH_MAX        3      /* nesting of containers inside a value */
#define SCAN_SLOTS_MAX   256    /* dict entries / set slots scanned for items */
#define NAME_MAX_BYTES   512    /* a file or function name */
#define ESCAPE_MAX       10     /* longest repr of one character: \U0010ffff */
#define SUFFIX_MAX       32     /* "...' (1099511627776 chars)" */
/* A type's name to come (see py_capture): "\x01" + 16 hex digits + "\x02" */
#define TYPE_MARK_OPEN   '\x01'
#define TYPE_MARK_CLOSE  '\x02'
#define TYPE_MARK_LEN    18

/* ------------------------------------------------------------------------
 * Characters
 * ------------------------------------------------------------------------ */

static void put_utf8(struct dsl_text *w, uint32_t c)
{
    char b[4];

    if (c < 0x80) {
        b[0] = (char)c;
        dsl_text_add(w, b, 1);
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3f));
        dsl_text_add(w, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        dsl_text_add(w, b, 3);
    } else {
        b[0] = (char)(0xf0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        dsl_text_add(w, b, 4);
    }
}

/*
 * One code point the way repr() shows it inside quotes.  Printability
 * beyond Latin-1 needs Unicode's tables, which we do not carry: only the
 * controls, the Latin-1 non-printables, surrogates and the line/paragraph
 * separators are escaped; other characters are shown as themselves.
 */
/* The escapes str and bytes reprs share: the quote, backslash, \n \r \t. */
static bool put_short_escape(struct dsl_text *w, uint32_t c, char quote)
{
    if (c == (uint32_t)quote || c == '\\') {
        char b[2] = {'\\', (char)c};
        dsl_text_add(w, b, 2);
    } else if (c == '\n') {
        dsl_text_puts(w, "\\n");
    } else if (c == '\r') {
        dsl_text_puts(w, "\\r");
    } else if (c == '\t') {
        dsl_text_puts(w, "\\t");
    } else {
        return false;
    }
    return true;
}

static void put_repr_char(struct dsl_text *w, uint32_t c, char quote)
{
    if (put_short_escape(w, c, quote)) {
        /* done */
    } else if (c < 0x20 || (c >= 0x7f && c < 0xa1) || c == 0xad) {
        dsl_text_printf(w, "\\x%02x", c);
    } else if ((c >= 0xd800 && c < 0xe000) || c == 0x2028 || c == 0x2029) {
        dsl_text_printf(w, "\\u%04x", c);
    } else if (c > 0x10ffff) {
        dsl_text_printf(w, "\\U%08x", c);
    } else {
        put_utf8(w, c);
    }
}

/* A name from the worker (file, function, type): printable, no quotes. */
static void put_plain_char(struct dsl_text *w, uint32_t c)
{
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || (c >= 0xd800 && c < 0xe000) ||
        c > 0x10ffff || c == 0x2028 || c == 0x2029)
        dsl_text_printf(w, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
    else
        put_utf8(w, c);
}

/* ------------------------------------------------------------------------
 * Reading objects
 * ------------------------------------------------------------------------ */

/*
 * A str's code points: up to max of them into cps, its length in
 * *ret_len.  Compact strings (everything CPython makes today) keep the
 * data right after the header; legacy ones point to it.
 */
static int read_str(struct ctx *c, uint64_t obj, uint32_t *cps, size_t max, size_t *ret_n,
                    uint64_t *ret_len)
{
    uint8_t hdr[24];
    uint32_t state;
    uint64_t len, data;
    unsigned kind;
    size_t n;
    int r;

    r = rd(c, obj + c->o->head, hdr, sizeof(hdr)); /* length, hash, state */
    if (r < 0)
        return r;
    memcpy(&len, hdr, 8);
    memcpy(&state, hdr + 16, 4);
    state >>= c->o->ustate_kind_shift; /* kind:3, compact:1, ascii:1 */
    kind = state & 7;
    if (len > STR_LEN_MAX || (kind != 1 && kind != 2 && kind != 4))
        return -EBADMSG;
    if (state & 8) { /* compact */
        data = obj + ((state & 16) ? c->o->unicode_ascii_size : c->o->unicode_compact_size);
    } else {
        r = rd_ptr(c, obj + c->o->unicode_compact_size, &data);
        if (r < 0)
            return r;
        if (!plausible(data) && data != 0)
            return -EFAULT;
        if (!data)
            return -EBADMSG;
    }
    n = len < max ? (size_t)len : max;
    if (n > 0) {
        uint8_t raw[1024];
        size_t done = 0;
        while (done < n) {
            size_t step = (sizeof(raw) / kind < n - done) ? sizeof(raw) / kind : n - done;
            r = rd(c, data + (uint64_t)done * kind, raw, step * kind);
            if (r < 0)
                return r;
            for (size_t i = 0; i < step; i++) {
                uint32_t v;
                if (kind == 1)
                    v = raw[i];
                else if (kind == 2)
                    v = (uint32_t)raw[2 * i] | ((uint32_t)raw[2 * i + 1] << 8);
                else
                    memcpy(&v, raw + 4 * i, 4);
                cps[done + i] = v;
            }
            done += step;
        }
    }
    *ret_n = n;
    *ret_len = len;
    return 0;
}

/* A str object as plain text (names, file names); false if unreadable. */
static bool put_str_plain(struct ctx *c, struct dsl_text *w, uint64_t obj)
{
    uint32_t cps[NAME_MAX_BYTES];
    uint64_t type, len;
    size_t n;

    if (type_of(c, obj, &type) < 0 || kind_of_type(c, type) != K_STR)
        return false;
    if (read_str(c, obj, cps, NAME_MAX_BYTES, &n, &len) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        put_plain_char(w, cps[i]);
    if (len > n)
        dsl_text_puts(w, "...");
    return true;
}

static void put_type_name(struct ctx *c, struct dsl_text *w, uint64_t type)
{
    uint64_t name;
    char buf[TYPE_NAME_MAX];

    if (plausible(type) && rd_ptr(c, type + c->o->type_name, &name) == 0 && name &&
        remote_read_cstr(&c->mem, name, buf, sizeof(buf)) > 0) {
        for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
            put_plain_char(w, *p);
    } else {
        dsl_text_puts(w, "?");
    }
}

/* Python's float repr: the shortest digits that read back the same, in
 * fixed notation for exponents -4..15 and scientific otherwise. */
static void put_float(struct dsl_text *w, double v)
{
    char tmp[40], digits[24];
    int exp10 = 0, nd = 0;

    if (isnan(v)) {
        dsl_text_puts(w, "nan");
        return;
    }
    if (isinf(v)) {
        dsl_text_puts(w, v > 0 ? "inf" : "-inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp: [-]d[.ddd]e(+|-)xx */
    const char *s = tmp;
    if (*s == '-') {
        dsl_text_puts(w, "-");
        s++;
    }
    for (; *s && *s != 'e' && nd < (int)sizeof(digits) - 1; s++)
        if (*s >= '0' && *s <= '9')
            digits[nd++] = *s;
    if (*s == 'e')
        exp10 = (int)strtol(s + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++)
                dsl_text_add(w, i < nd ? &digits[i] : "0", 1);
            dsl_text_puts(w, ".");
            if (nd > exp10 + 1)
                dsl_text_puts(w, digits + exp10 + 1);
            else
                dsl_text_puts(w, "0");
        } else {
            dsl_text_puts(w, "0.");
            for (int i = 0; i < -exp10 - 1; i++)
                dsl_text_puts(w, "0");
            dsl_text_puts(w, digits);
        }
    } else {
        dsl_text_add(w, digits, 1);
        if (nd > 1) {
            dsl_text_puts(w, ".");
            dsl_text_puts(w, digits + 1);
        }
        dsl_text_printf(w, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
}

/*
 * An int: sign and base-2^30 digits (3.11: sign in ob_size; 3.12+: in the
 * low bits of lv_tag), converted to decimal by repeated division.  Ints
 * too long to convert cheaply are shown by size.
 */
static int put_int(struct ctx *c, struct dsl_text *w, uint64_t obj, bool as_bool)
{
    uint64_t tag;
    uint32_t d[INT_DIGITS_SHOWN];
    uint64_t nd;
    bool neg;
    int r;

    r = rd(c, obj + c->o->head, &tag, 8);
    if (r < 0)
        return r;
    if (c->o->long_lv_tag) {
        unsigned sign = tag & 3;
        if (sign == 3)
            return -EBADMSG;
        nd = tag >> 3;
        neg = sign == 2;
        if (sign == 1 && nd != 0)
            return -EBADMSG;
    } else {
        int64_t size = (int64_t)tag;
        neg = size < 0;
        nd = neg ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    }
    if (as_bool) {
        dsl_text_puts(w, nd ? "True" : "False");
        return 0;
    }
    if (nd > INT_DIGITS_SHOWN) {
        if (nd > ((uint64_t)1 << 40))
            return -EBADMSG;
        /* 30 bits per digit is 9.03 decimal digits. */
        dsl_text_printf(w, "<int of about %llu digits>", (unsigned long long)(nd * 903 / 100));
        return 0;
    }
    if (nd) {
        r = rd(c, obj + c->o->head + 8, d, nd * 4);
        if (r < 0)
            return r;
    }
    for (uint64_t i = 0; i < nd; i++)
        if (d[i] >> 30)
            return -EBADMSG;
    /* Little-endian base 2^30 in d[0..nd); divide by 1e9 until zero. */
    uint32_t chunks[INT_DIGITS_SHOWN * 2];
    unsigned nchunks = 0;
    size_t len = nd;
    while (len > 0 && nchunks < sizeof(chunks) / sizeof(chunks[0])) {
        uint64_t rem = 0;
        for (size_t i = len; i-- > 0;) {
            uint64_t cur = (rem << 30) | d[i];
            d[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nchunks++] = (uint32_t)rem;
        while (len > 0 && d[len - 1] == 0)
            len--;
    }
    if (neg && nchunks)
        dsl_text_puts(w, "-");
    if (!nchunks) {
        dsl_text_puts(w, "0");
        return 0;
    }
    dsl_text_printf(w, "%u", chunks[nchunks - 1]);
    for (unsigned i = nchunks - 1; i-- > 0;)
        dsl_text_printf(w, "%09u", chunks[i]);
    return 0;
}

/* Room for one more escaped character and the "...' (N chars)" tail; a
 * value limit too small for the tail just ends in "..." (dsl_text_mark_cut). */
static bool room_left(const struct dsl_text *w)
{
    if (w->max >= 3 * (ESCAPE_MAX + SUFFIX_MAX))
        return w->len + ESCAPE_MAX + SUFFIX_MAX < w->max;
    return !w->full;
}

static int put_str_repr(struct ctx *c, struct dsl_text *w, uint64_t obj)
{
    size_t max = c->lim->max_value_bytes, n;
    uint32_t *cps;
    uint64_t len;
    char quote = '\'';
    bool has_sq = false, has_dq = false;
    int r;

    cps = malloc((max ? max : 1) * sizeof(*cps));
    if (!cps)
        return -ENOMEM;
    r = read_str(c, obj, cps, max, &n, &len);
    if (r < 0) {
        free(cps);
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        has_sq |= cps[i] == '\'';
        has_dq |= cps[i] == '"';
    }
    if (has_sq && !has_dq)
        quote = '"';
    dsl_text_add(w, &quote, 1);
    /* Stop early enough that the closing quote and the real length still
     * fit: a cut string must say that it was cut. */
    size_t i;
    for (i = 0; i < n && room_left(w); i++)
        put_repr_char(w, cps[i], quote);
    free(cps);
    if (i < n)
        n = i;
    if (len > n) {
        /* Say how long it really was rather than cut silently. */
        dsl_text_printf(w, "...%c (%llu chars)", quote, (unsigned long long)len);
        return 0;
    }
    dsl_text_add(w, &quote, 1);
    return 0;
}

static int put_bytes_repr(struct ctx *c, struct dsl_text *w, uint64_t obj)
{
    uint8_t buf[512];
    int64_t size;
    size_t n, max = c->lim->max_value_bytes;
    bool has_sq = false, has_dq = false;
    char quote = '\'';
    int r;

    r = rd(c, obj + c->o->head, &size, 8);
    if (r < 0)
        return r;
    if (size < 0 || size > CONTAINER_MAX)
        return -EBADMSG;
    n = (uint64_t)size < sizeof(buf) ? (size_t)size : sizeof(buf);
    if (n > max)
        n = max;
    if (n) {
        r = rd(c, obj + c->o->head + 16, buf, n);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n; i++) {
        has_sq |= buf[i] == '\'';
        has_dq |= buf[i] == '"';
    }
    if (has_sq && !has_dq)
        quote = '"';
    dsl_text_add(w, "b", 1);
    dsl_text_add(w, &quote, 1);
    size_t i;
    for (i = 0; i < n && room_left(w); i++) {
        uint8_t ch = buf[i];
        if (put_short_escape(w, ch, quote)) {
            /* done */
        } else if (ch < 0x20 || ch >= 0x7f) {
            dsl_text_printf(w, "\\x%02x", ch);
        } else {
            dsl_text_add(w, (const char *)&ch, 1);
        }
    }
    if (i < n)
        n = i;
    if ((uint64_t)size > n) {
        dsl_text_printf(w, "...%c (%lld bytes)", quote, (long long)size);
        return 0;
    }
    dsl_text_add(w, &quote, 1);
    return 0;
}

static void put_more(struct dsl_text *w, uint64_t total, uint64_t shown, const char *close)
{
    if (total > shown) {
        dsl_text_puts(w, shown ? ", ..." : "...");
        dsl_text_puts(w, close);
        dsl_text_printf(w, " (%llu items)", (unsigned long long)total);
    } else {
        dsl_text_puts(w, close);
    }
}

/* list and tuple: a count and item pointers (inline in a tuple, an array
 * elsewhere for a list). */
static int put_sequence(struct ctx *c, struct dsl_text *w, uint64_t obj, enum kind k,
                        unsigned depth)
{
    const char *open = k == K_LIST ? "[" : "(", *close = k == K_LIST ? "]" : ")";
    uint64_t items, ptrs[64];
    int64_t size;
    size_t show;
    int r;

    r = rd(c, obj + c->o->head, &size, 8);
    if (r < 0)
        return r;
    if (size < 0 || size > CONTAINER_MAX)
        return -EBADMSG;
    if (depth >= DEPTH_MAX) {
        dsl_text_printf(w, "%s...%s (%lld items)", open, close, (long long)size);
        return 0;
    }
    if (k == K_LIST) {
        r = rd_ptr(c, obj + c->o->head + 8, &items);
        if (r < 0)
            return r;
        if (size > 0 && !plausible(items))
            return -EFAULT;
    } else {
        items = obj + c->o->tuple_item;
    }
    show = (uint64_t)size < c->lim->max_items ? (size_t)size : c->lim->max_items;
    if (show > 64)
        show = 64;
    if (show) {
        r = rd(c, items, ptrs, show * 8);
        if (r < 0)
            return r;
    }
    dsl_text_puts(w, open);
    for (size_t i = 0; i < show && !w->full; i++) {
        if (i)
            dsl_text_puts(w, ", ");
        py_put_value(c, w, ptrs[i], depth + 1);
    }
    if (k == K_TUPLE && size == 1)
        dsl_text_puts(w, ",");
    put_more(w, (uint64_t)size, show, close);
    return 0;
}

/*
 * dict: ma_used items in ma_keys' entry array (after the index table,
 * 2^dk_log2_index_bytes bytes), values there or, for a split table, in
 * ma_values.  Deleted entries have a NULL key or value and are skipped.
 */
static int put_dict(struct ctx *c, struct dsl_text *w, uint64_t obj, unsigned depth)
{
    struct {
        int64_t used;
        uint64_t version, keys, values;
    } d;
    uint8_t kh[32];
    int64_t nentries;
    unsigned log2_size, log2_index, kind;
    uint64_t entries, esize, shown = 0, scanned = 0;
    int r;

    r = rd(c, obj + c->o->head, &d, sizeof(d));
    if (r < 0)
        return r;
    if (d.used < 0 || d.used > CONTAINER_MAX)
        return -EBADMSG;
    if (d.used == 0) {
        dsl_text_puts(w, "{}");
        return 0;
    }
    if (depth >= DEPTH_MAX) {
        dsl_text_printf(w, "{...} (%lld items)", (long long)d.used);
        return 0;
    }
    if (!plausible(d.keys) || (d.values && !plausible(d.values)))
        return -EFAULT;
    r = rd(c, d.keys, kh, sizeof(kh));
    if (r < 0)
        return r;
    log2_size = kh[8];
    log2_index = kh[9];
    kind = kh[10];
    memcpy(&nentries, kh + 24, 8);
    if (log2_size < 3 || log2_size > 40 || log2_index > log2_size + 3 || kind > 2 ||
        nentries < 0 || nentries > ((int64_t)1 << log2_size))
        return -EBADMSG;
    entries = d.keys + 32 + ((uint64_t)1 << log2_index);
    esize = kind == 0 ? 24 : 16;
    dsl_text_puts(w, "{");
    while (scanned < (uint64_t)nentries && scanned < SCAN_SLOTS_MAX && shown < c->lim->max_items &&
           !w->full) {
        uint64_t e[3], key, value;
        r = rd(c, entries + scanned * esize, e, esize);
        if (r < 0)
            return r;
        key = kind == 0 ? e[1] : e[0];
        value = kind == 0 ? e[2] : e[1];
        if (d.values) {
            r = rd_ptr(c, d.values + c->o->dictvalues_values + scanned * 8, &value);
            if (r < 0)
                return r;
        }
        scanned++;
        if (!key || !value)
            continue;
        if (shown++)
            dsl_text_puts(w, ", ");
        py_put_value(c, w, key, depth + 1);
        dsl_text_puts(w, ": ");
        py_put_value(c, w, value, depth + 1);
    }
    put_more(w, (uint64_t)d.used, shown, "}");
    return 0;
}

/* set and frozenset: a hash table of (key, hash) slots; empty slots have
 * no key and deleted ones the hash -1. */
static int put_set(struct ctx *c, struct dsl_text *w, uint64_t obj, enum kind k, unsigned depth)
{
    struct {
        int64_t fill, used, mask;
        uint64_t table;
    } s;
    uint64_t shown = 0;
    int r;

    r = rd(c, obj + c->o->head, &s, sizeof(s));
    if (r < 0)
        return r;
    if (s.used < 0 || s.used > s.fill || s.mask < 7 || s.mask > ((int64_t)1 << 40) ||
        (s.mask & (s.mask + 1)) != 0 || s.used > s.mask + 1)
        return -EBADMSG;
    if (s.used == 0) {
        dsl_text_puts(w, k == K_SET ? "set()" : "frozenset()");
        return 0;
    }
    if (k == K_FROZENSET)
        dsl_text_puts(w, "frozenset(");
    if (depth >= DEPTH_MAX) {
        dsl_text_printf(w, "{...} (%lld items)", (long long)s.used);
        if (k == K_FROZENSET)
            dsl_text_puts(w, ")");
        return 0;
    }
    if (!plausible(s.table))
        return -EFAULT;
    dsl_text_puts(w, "{");
    for (uint64_t i = 0;
         i <= (uint64_t)s.mask && i < SCAN_SLOTS_MAX && shown < c->lim->max_items && !w->full;
         i++) {
        uint64_t e[2];
        r = rd(c, s.table + i * 16, e, sizeof(e));
        if (r < 0)
            return r;
        if (!e[0] || (int64_t)e[1] == -1)
            continue;
        if (shown++)
            dsl_text_puts(w, ", ");
        py_put_value(c, w, e[0], depth + 1);
    }
    put_more(w, (uint64_t)s.used, shown, "}");
    if (k == K_FROZENSET)
        dsl_text_puts(w, ")");
    return 0;
}

void py_put_value(struct ctx *c, struct dsl_text *w, uint64_t obj, unsigned depth)
{
    uint64_t type;
    size_t mark = w->len;
    int r;

    if (w->full)
        return;
    r = type_of(c, obj, &type);
    if (r == 0) {
        switch (kind_of_type(c, type)) {
        case K_NONE:
            dsl_text_puts(w, "None");
            break;
        case K_BOOL:
            r = put_int(c, w, obj, true);
            break;
        case K_INT:
            r = put_int(c, w, obj, false);
            break;
        case K_FLOAT: {
            double v;
            r = rd(c, obj + c->o->head, &v, sizeof(v));
            if (r == 0)
                put_float(w, v);
            break;
        }
        case K_STR:
            r = put_str_repr(c, w, obj);
            break;
        case K_BYTES:
            r = put_bytes_repr(c, w, obj);
            break;
        case K_LIST:
        case K_TUPLE:
            r = put_sequence(c, w, obj, kind_of_type(c, type), depth);
            break;
        case K_DICT:
            r = put_dict(c, w, obj, depth);
            break;
        case K_SET:
        case K_FROZENSET:
            r = put_set(c, w, obj, kind_of_type(c, type), depth);
            break;
        default:
            dsl_text_puts(w, "<");
            if (c->defer_types)
                dsl_text_printf(w, "%c%016llx%c", TYPE_MARK_OPEN, (unsigned long long)type,
                                TYPE_MARK_CLOSE);
            else
                put_type_name(c, w, type);
            dsl_text_printf(w, " object at 0x%llx>", (unsigned long long)obj);
            break;
        }
    }
    if (r < 0 && !w->full) {
        /* Whatever was half-written for this value goes; say what it was. */
        dsl_text_rewind(w, mark);
        dsl_text_printf(w, "<unreadable object at 0x%llx>", (unsigned long long)obj);
    }
}

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------ */

const char *py_arena_str(struct py_stack *s, struct ctx *c, uint64_t obj, const char *dflt)
{
    char buf[NAME_MAX_BYTES * 4 + 8];
    struct dsl_text w;
    const char *p;

    dsl_text_init_fixed(&w, buf, sizeof(buf), DSL_TEXT_CUT);
    if (!put_str_plain(c, &w, obj))
        return dflt;
    dsl_text_mark_cut(&w, "...");
    p = arena_add(s, buf, w.len);
    return p ? p : dflt;
}

size_t py_marked_types(const char *value, uint64_t *out, size_t max)
{
    size_t n = 0;

    for (const char *mark = value; n < max && (mark = strchr(mark, TYPE_MARK_OPEN)) != NULL;
         mark++) {
        char hex[17];
        if (strlen(mark) < TYPE_MARK_LEN || mark[TYPE_MARK_LEN - 1] != TYPE_MARK_CLOSE)
            break;
        memcpy(hex, mark + 1, 16);
        hex[16] = '\0';
        out[n++] = strtoull(hex, NULL, 16);
    }
    return n;
}

/* After the thread is let go: a value's type marks, replaced by the
 * types' names. */
const char *py_name_types(struct ctx *c, struct py_stack *s, const char *value, char *buf,
                          size_t size)
{
    struct dsl_text w;
    const char *p = value, *mark;

    if (!strchr(value, TYPE_MARK_OPEN))
        return value;
    dsl_text_init_fixed(&w, buf, size, DSL_TEXT_CUT);
    while ((mark = strchr(p, TYPE_MARK_OPEN)) != NULL) {
        dsl_text_add(&w, p, (size_t)(mark - p));
        char hex[17];
        if (strlen(mark) < TYPE_MARK_LEN || mark[TYPE_MARK_LEN - 1] != TYPE_MARK_CLOSE)
            break; /* cut short by the value's limit */
        memcpy(hex, mark + 1, 16);
        hex[16] = '\0';
        put_type_name(c, &w, strtoull(hex, NULL, 16));
        p = mark + TYPE_MARK_LEN;
    }
    if (!mark)
        dsl_text_puts(&w, p);
    dsl_text_mark_cut(&w, "...");
    return arena_add(s, buf, w.len);
}
