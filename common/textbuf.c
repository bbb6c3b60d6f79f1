/* SPDX-License-Identifier: MIT */
/* The bounded text buffer (textbuf.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

#define TEXT_FIRST_CAP 4096 /* a growable buffer's first allocation */

void dsl_text_init_fixed(struct dsl_text *b, char *buf, size_t size, enum dsl_text_fit fit)
{
    *b = (struct dsl_text){
        .p = buf, .cap = size, .max = size, .reserve = 1, .cut = fit == DSL_TEXT_CUT};
    if (size)
        buf[0] = '\0';
}

void dsl_text_init_growable(struct dsl_text *b, size_t max, enum dsl_text_fit fit)
{
    *b = (struct dsl_text){.max = max, .reserve = 1, .growable = true, .cut = fit == DSL_TEXT_CUT};
}

void dsl_text_free(struct dsl_text *b)
{
    if (b->growable) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->full = false;
    if (b->p && b->cap)
        b->p[0] = '\0';
}

/* Bytes of text that may still be added. */
static size_t room(const struct dsl_text *b)
{
    size_t keep = b->reserve ? b->reserve : 1;

    return b->max > b->len + keep ? b->max - b->len - keep : 0;
}

/* Storage for need bytes (the NUL included). */
static bool have(struct dsl_text *b, size_t need)
{
    size_t cap;
    char *p;

    if (need <= b->cap)
        return true;
    if (!b->growable)
        return false;
    cap = b->cap ? b->cap : TEXT_FIRST_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > b->max)
        cap = b->max > need ? b->max : need;
    p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* The append that did not go in at all: later ones are dropped too. */
static bool refuse(struct dsl_text *b)
{
    b->full = true;
    if (b->p)
        b->p[b->len] = '\0'; /* a try in place may have written past it */
    return false;
}

bool dsl_text_add(struct dsl_text *b, const void *s, size_t n)
{
    size_t k = n, r = room(b);

    if (b->full)
        return false;
    if (n > r) {
        if (!b->cut)
            return refuse(b);
        k = r;
    }
    if (!have(b, b->len + k + 1))
        return refuse(b);
    if (k)
        memcpy(b->p + b->len, s, k);
    b->len += k;
    b->p[b->len] = '\0';
    if (k < n)
        b->full = true;
    return k == n;
}

bool dsl_text_puts(struct dsl_text *b, const char *s)
{
    return dsl_text_add(b, s, strlen(s));
}

bool dsl_text_vprintf(struct dsl_text *b, const char *fmt, va_list ap)
{
    size_t r = room(b), win, k;
    va_list aq;
    int n;

    if (b->full)
        return false;
    /* First in place, into what is allocated: one pass in the usual case
     * (the values of locals are formatted while the thread is held). */
    win = b->p ? b->cap - b->len : 0;
    if (win > r + 1)
        win = r + 1;
    va_copy(aq, ap);
    n = vsnprintf(win ? b->p + b->len : NULL, win, fmt, aq);
    va_end(aq);
    if (n < 0) {
        if (b->p)
            b->p[b->len] = '\0';
        return false;
    }
    if ((size_t)n < win) {
        b->len += (size_t)n;
        return true;
    }
    k = (size_t)n;
    if (k > r) {
        if (!b->cut)
            return refuse(b);
        k = r;
        if (win == r + 1) { /* vsnprintf cut it, exactly there */
            b->len += k;
            b->full = true;
            return false;
        }
    }
    /* It fits within max, not within what is allocated: grow, again. */
    if (!have(b, b->len + k + 1))
        return refuse(b);
    vsnprintf(b->p + b->len, k + 1, fmt, ap);
    b->len += k;
    if (k < (size_t)n)
        b->full = true;
    return k == (size_t)n;
}

bool dsl_text_printf(struct dsl_text *b, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = dsl_text_vprintf(b, fmt, ap);
    va_end(ap);
    return ok;
}

char *dsl_text_extend(struct dsl_text *b, size_t n)
{
    char *q;

    if (b->full)
        return NULL;
    if (n > room(b) || !have(b, b->len + n + 1)) {
        refuse(b);
        return NULL;
    }
    q = b->p + b->len;
    b->len += n;
    b->p[b->len] = '\0';
    return q;
}

void dsl_text_rewind(struct dsl_text *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    if (b->p)
        b->p[len] = '\0';
}

void dsl_text_mark_cut(struct dsl_text *b, const char *marker)
{
    size_t m = strlen(marker), keep = b->reserve ? b->reserve : 1, n;

    if (!b->full || !b->p || b->max < m + keep)
        return;
    n = b->len < b->max - keep - m ? b->len : b->max - keep - m;
    /* Not inside a character: back to the byte that starts one. */
    while (n > 0 && ((unsigned char)b->p[n] & 0xc0) == 0x80)
        n--;
    if (!have(b, n + m + 1))
        return;
    memcpy(b->p + n, marker, m);
    b->len = n + m;
    b->p[b->len] = '\0';
}
