/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets (fuzz/) replayed as an ordinary test: every file of the
 * committed corpus, then many generated inputs of every length -- random
 * bytes and mutations of the corpus files.  The long runs are 'make fuzz'.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "run_suite.h"

#include "fuzz.h"

typedef int (*target_fn)(const uint8_t *, size_t);

static uint32_t rng = 0x12345678;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int replay(const char *name, target_fn fn)
{
    const char *top = getenv("TOP_SRCDIR");
    char dir[512], path[1024];
    uint8_t *buf = malloc(70000);
    int files = 0;

    ck_assert_ptr_nonnull(top);
    snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", top, name);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no corpus at %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t n = fread(buf, 1, 65536, f);
        fclose(f);
        fn(buf, n);
        /* Mutations: flip, truncate and extend each seed. */
        for (int k = 0; k < 3000; k++) {
            size_t len = n ? (size_t)(next() % (n + 64)) : (size_t)(next() % 64);
            if (len > n) {
                for (size_t i = n; i < len; i++)
                    buf[i] = (uint8_t)next();
            }
            uint8_t saved[8];
            size_t pos[8];
            int flips = (int)(next() % 8) + 1;
            for (int i = 0; i < flips && len; i++) {
                pos[i] = next() % len;
                saved[i] = buf[pos[i]];
                buf[pos[i]] = (uint8_t)next();
            }
            fn(buf, len);
            for (int i = flips - 1; i >= 0 && len; i--)
                buf[pos[i]] = saved[i];
        }
        files++;
    }
    closedir(d);
    /* Pure noise of every length up to 2 KiB. */
    for (size_t len = 0; len < 2048; len++) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)next();
        fn(buf, len);
    }
    free(buf);
    return files;
}

START_TEST(proto_corpus)
{
    ck_assert_int_gt(replay("proto", fuzz_proto), 0);
}
END_TEST

START_TEST(scoreboard_corpus)
{
    ck_assert_int_gt(replay("scoreboard", fuzz_scoreboard), 0);
}
END_TEST

START_TEST(cstr_corpus)
{
    ck_assert_int_gt(replay("cstr", fuzz_cstr), 0);
}
END_TEST

START_TEST(dwarf_expr_corpus)
{
    ck_assert_int_gt(replay("dwarf_expr", fuzz_dwarf_expr), 0);
}
END_TEST

START_TEST(config_corpus)
{
    ck_assert_int_gt(replay("config", fuzz_config), 0);
}
END_TEST

START_TEST(sep_corpus)
{
    ck_assert_int_gt(replay("sep", fuzz_sep), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz-replay");
    TCase *tc = tcase_create("corpus");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, proto_corpus);
    tcase_add_test(tc, scoreboard_corpus);
    tcase_add_test(tc, cstr_corpus);
    tcase_add_test(tc, dwarf_expr_corpus);
    tcase_add_test(tc, config_corpus);
    tcase_add_test(tc, sep_corpus);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
