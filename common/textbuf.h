/* SPDX-License-Identifier: MIT */
/*
 * A bounded text buffer: the one behind the text and JSON reports, the
 * Sentry events, the e-mails, dogslowctl's answers and the values of
 * locals (native and Python).
 *
 * Storage is either the caller's array (dsl_text_init_fixed: it never
 * grows) or malloc'd (dsl_text_init_growable: NULL until the first append,
 * then doubled from 4 KiB as needed, up to max; the caller frees p).
 *
 * At most max bytes, the NUL included, of which the last `reserve` (at
 * least 1: the NUL) are kept back: a caller raises reserve after init to
 * keep room for closing text (a JSON document's brackets, a "cut here"
 * line), then lowers it, or clears full, to write that text.
 *
 * What happens at the limit is the caller's choice (fit):
 *   DSL_TEXT_CUT    the append that does not fit is cut to fit exactly:
 *                   a value shows as much of itself as there is room for;
 *   DSL_TEXT_WHOLE  it is dropped whole: no half line, no half JSON token.
 * Either way full is then set and every later append is dropped, until the
 * caller clears it.  A failed allocation counts as full too.
 *
 * The text is p[0..len), and p[len] is NUL whenever p is not NULL.
 */
#ifndef DOGSLOW_TEXTBUF_H
#define DOGSLOW_TEXTBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum dsl_text_fit {
    DSL_TEXT_WHOLE, /* an append that does not fit is dropped */
    DSL_TEXT_CUT,   /* ... is cut to fit */
};

struct dsl_text {
    char *p;
    size_t len;     /* bytes of text, the NUL not counted */
    size_t cap;     /* bytes at p */
    size_t max;     /* bytes at most, the NUL included */
    size_t reserve; /* bytes of max kept back (0 counts as 1, the NUL) */
    bool growable;  /* p is malloc'd, and grows up to max */
    bool cut;       /* DSL_TEXT_CUT */
    bool full;      /* something did not fit: later appends are dropped */
};

/* The caller's buf of size bytes (max = size; size > 0). */
void dsl_text_init_fixed(struct dsl_text *b, char *buf, size_t size, enum dsl_text_fit fit);
/* A malloc'd buffer of at most max bytes (max > 0). */
void dsl_text_init_growable(struct dsl_text *b, size_t max, enum dsl_text_fit fit);
/* Frees a growable buffer's text; the buffer is empty again. */
void dsl_text_free(struct dsl_text *b);

/* Append; each returns true when all of it went in. */
bool dsl_text_add(struct dsl_text *b, const void *s, size_t n);
bool dsl_text_puts(struct dsl_text *b, const char *s);
bool dsl_text_printf(struct dsl_text *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool dsl_text_vprintf(struct dsl_text *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Room for n more bytes, which the caller then writes (the NUL after them
 * is written already): all or nothing whatever the fit.  NULL when they
 * do not fit. */
char *dsl_text_extend(struct dsl_text *b, size_t n);

/* Back to the first len bytes (no-op when len >= b->len); full stays as
 * it is. */
void dsl_text_rewind(struct dsl_text *b, size_t len);

/* When something did not fit: the text ends in marker ("...") within max
 * and the reserve, cut before it on a UTF-8 character boundary so that
 * the text stays valid UTF-8.  Nothing happens when it did all fit, or
 * when max has no room for the marker. */
void dsl_text_mark_cut(struct dsl_text *b, const char *marker);

#endif
