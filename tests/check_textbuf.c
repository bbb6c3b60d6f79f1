/* SPDX-License-Identifier: MIT */
/* Unit tests for the bounded text buffer (common/textbuf.h): where each
 * kind stops, and that what it holds is always a C string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "run_suite.h"

#include "textbuf.h"

/* The invariants every operation keeps. */
static void check_sane(const struct dsl_text *b)
{
    if (!b->p) {
        ck_assert_uint_eq(b->len, 0);
        return;
    }
    ck_assert_uint_le(b->len + 1, b->cap);
    ck_assert_uint_le(b->cap, b->max);
    ck_assert_uint_eq(strlen(b->p), b->len); /* NUL-terminated, no NUL inside */
}

START_TEST(cut_to_fit_exactly)
{
    char buf[8];
    struct dsl_text b;

    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    ck_assert_str_eq(buf, "");
    ck_assert(dsl_text_puts(&b, "abc"));
    ck_assert(dsl_text_puts(&b, "defg")); /* 7 bytes and the NUL: exactly full */
    ck_assert(!b.full);
    ck_assert_str_eq(buf, "abcdefg");
    ck_assert(!dsl_text_puts(&b, "h")); /* no room at all: cut to nothing */
    ck_assert(b.full);
    ck_assert_str_eq(buf, "abcdefg");
    check_sane(&b);

    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    ck_assert(dsl_text_puts(&b, "ab"));
    ck_assert(!dsl_text_add(&b, "0123456789", 10));
    ck_assert(b.full);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_str_eq(buf, "ab01234");
    /* Full: later appends are dropped, even one that would fit. */
    dsl_text_rewind(&b, 3);
    ck_assert(!dsl_text_puts(&b, "x"));
    ck_assert_str_eq(buf, "ab0");
    check_sane(&b);
}
END_TEST

START_TEST(whole_or_nothing)
{
    struct dsl_text b;

    dsl_text_init_growable(&b, 16, DSL_TEXT_WHOLE);
    ck_assert_ptr_null(b.p); /* nothing allocated before the first append */
    ck_assert(dsl_text_puts(&b, "0123456789"));
    ck_assert(!dsl_text_puts(&b, "abcdef")); /* 10 + 6 + NUL > 16 */
    ck_assert(b.full);
    ck_assert_str_eq(b.p, "0123456789");
    ck_assert(!dsl_text_puts(&b, "x")); /* would fit, but full stays */
    ck_assert_str_eq(b.p, "0123456789");
    b.full = false;                        /* the caller's choice, to write a mark, say */
    ck_assert(dsl_text_puts(&b, "abcde")); /* 15 + NUL: the last that fits */
    ck_assert_str_eq(b.p, "0123456789abcde");
    ck_assert(!dsl_text_add(&b, "", 1) && b.full);
    check_sane(&b);
    dsl_text_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert(!b.full);
}
END_TEST

START_TEST(reserve_is_kept_back)
{
    struct dsl_text b;
    char buf[16];

    dsl_text_init_growable(&b, 32, DSL_TEXT_WHOLE);
    b.reserve = 8;
    ck_assert(dsl_text_printf(&b, "%024d", 7)); /* 24 + 8 = 32 */
    ck_assert(!dsl_text_puts(&b, "]"));
    ck_assert(b.full);
    /* What the reserve is for: closing text. */
    b.full = false;
    b.reserve = 1;
    ck_assert(dsl_text_puts(&b, "]]]]]]]"));
    ck_assert(!dsl_text_puts(&b, "]"));
    ck_assert_uint_eq(b.len, 31);
    check_sane(&b);
    dsl_text_free(&b);

    /* Cut to fit stops before the reserve too. */
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    b.reserve = 6;
    ck_assert(!dsl_text_puts(&b, "0123456789abcdef"));
    ck_assert_str_eq(buf, "0123456789");
    /* A reserve of 0 still keeps the NUL. */
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    b.reserve = 0;
    ck_assert(!dsl_text_puts(&b, "0123456789abcdefgh"));
    ck_assert_uint_eq(b.len, 15);
    check_sane(&b);
}
END_TEST

START_TEST(grows_up_to_max)
{
    const size_t max = 100000;
    struct dsl_text b;
    char chunk[1000];
    size_t n = 0;

    memset(chunk, 'x', sizeof(chunk));
    dsl_text_init_growable(&b, max, DSL_TEXT_WHOLE);
    while (dsl_text_add(&b, chunk, sizeof(chunk)))
        n++;
    ck_assert_uint_eq(n, 99); /* the 100th would take the NUL's byte */
    ck_assert_uint_eq(b.len, 99000);
    ck_assert_uint_le(b.cap, max);
    check_sane(&b);
    dsl_text_free(&b);

    /* Cut to fit, growing: the last byte before the NUL is used. */
    dsl_text_init_growable(&b, max, DSL_TEXT_CUT);
    while (dsl_text_add(&b, chunk, sizeof(chunk)))
        ;
    ck_assert_uint_eq(b.len, max - 1);
    ck_assert_uint_eq(b.cap, max);
    check_sane(&b);
    dsl_text_free(&b);
}
END_TEST

START_TEST(printf_longer_than_the_room)
{
    char big[20001], buf[16];
    struct dsl_text b;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = 'A';

    /* Fixed, cut: the start of it, in one pass. */
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    ck_assert(dsl_text_printf(&b, "%d:", 42));
    ck_assert(!dsl_text_printf(&b, "%s", big));
    ck_assert(b.full);
    ck_assert_str_eq(buf, "42:Aaaaaaaaaaaa");
    check_sane(&b);

    /* Growable, whole: dropped, and the text is as it was (the try in
     * place wrote past its end). */
    dsl_text_init_growable(&b, 64, DSL_TEXT_WHOLE);
    ck_assert(dsl_text_printf(&b, "<%s>", "x"));
    ck_assert(!dsl_text_printf(&b, "%.70s", big));
    ck_assert_str_eq(b.p, "<x>");
    check_sane(&b);
    dsl_text_free(&b);

    /* Longer than what is allocated, within max: grows and formats it
     * again, whole. */
    dsl_text_init_growable(&b, 1 << 20, DSL_TEXT_WHOLE);
    ck_assert(dsl_text_puts(&b, "["));
    ck_assert_uint_lt(b.cap, sizeof(big));
    ck_assert(dsl_text_printf(&b, "%s]", big));
    ck_assert_uint_eq(b.len, sizeof(big) + 1);
    ck_assert(b.p[0] == '[' && b.p[1] == 'A' && b.p[b.len - 1] == ']');
    check_sane(&b);
    dsl_text_free(&b);

    /* Longer than max, cut, with less allocated than max. */
    dsl_text_init_growable(&b, 10000, DSL_TEXT_CUT);
    ck_assert(dsl_text_puts(&b, "["));
    ck_assert(!dsl_text_printf(&b, "%s", big));
    ck_assert_uint_eq(b.len, 9999);
    ck_assert(b.p[1] == 'A' && b.p[9998] == 'a');
    check_sane(&b);
    dsl_text_free(&b);

    /* Nothing formatted is still a text. */
    dsl_text_init_growable(&b, 100, DSL_TEXT_WHOLE);
    ck_assert(dsl_text_printf(&b, "%s", ""));
    ck_assert_ptr_nonnull(b.p);
    ck_assert_str_eq(b.p, "");
    dsl_text_free(&b);
}
END_TEST

START_TEST(extend_is_all_or_nothing)
{
    char buf[8];
    struct dsl_text b;
    char *q;

    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    q = dsl_text_extend(&b, 3);
    ck_assert_ptr_eq(q, buf);
    memcpy(q, "abc", 3);
    ck_assert_str_eq(buf, "abc");
    ck_assert_ptr_null(dsl_text_extend(&b, 5)); /* not cut, even so */
    ck_assert(b.full);
    ck_assert_str_eq(buf, "abc");
    check_sane(&b);
}
END_TEST

START_TEST(rewind_keeps_a_string)
{
    struct dsl_text b;

    dsl_text_init_growable(&b, 100, DSL_TEXT_WHOLE);
    dsl_text_puts(&b, "hello, world");
    dsl_text_rewind(&b, 5);
    ck_assert_str_eq(b.p, "hello");
    dsl_text_rewind(&b, 50); /* never forward */
    ck_assert_uint_eq(b.len, 5);
    dsl_text_puts(&b, "!");
    ck_assert_str_eq(b.p, "hello!");
    dsl_text_free(&b);
}
END_TEST

START_TEST(mark_cut_on_a_character)
{
    char buf[10];
    struct dsl_text b;

    /* Fits: nothing to mark. */
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    dsl_text_puts(&b, "short");
    dsl_text_mark_cut(&b, "...");
    ck_assert_str_eq(buf, "short");

    /* Letters, é (2 bytes), € (3): cut to 9 bytes, the marker takes the
     * last 3 of them, and the cut backs off to the start of a character. */
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    ck_assert(!dsl_text_puts(&b, "abcd\xc3\xa9\xe2\x82\xacx"));
    ck_assert_uint_eq(b.len, 9);
    dsl_text_mark_cut(&b, "...");
    ck_assert_str_eq(buf, "abcd\xc3\xa9...");
    dsl_text_init_fixed(&b, buf, sizeof(buf), DSL_TEXT_CUT);
    ck_assert(!dsl_text_puts(&b, "abcde\xc3\xa9\xe2\x82\xac"));
    dsl_text_mark_cut(&b, "...");
    ck_assert_str_eq(buf, "abcde...");
    check_sane(&b);

    /* No room for the marker: left as it is. */
    dsl_text_init_fixed(&b, buf, 3, DSL_TEXT_CUT);
    ck_assert(!dsl_text_puts(&b, "abcdef"));
    dsl_text_mark_cut(&b, "...");
    ck_assert_str_eq(buf, "ab");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("textbuf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, cut_to_fit_exactly);
    tcase_add_test(tc, whole_or_nothing);
    tcase_add_test(tc, reserve_is_kept_back);
    tcase_add_test(tc, grows_up_to_max);
    tcase_add_test(tc, printf_longer_than_the_room);
    tcase_add_test(tc, extend_is_all_or_nothing);
    tcase_add_test(tc, rewind_keeps_a_string);
    tcase_add_test(tc, mark_cut_on_a_character);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
