/* SPDX-License-Identifier: MIT */
/* The end of every tests/check_*.c main(): run the suite, exit 1 if any
 * test failed (what automake's test driver reads). */
#ifndef DOGSLOW_TESTS_RUN_SUITE_H
#define DOGSLOW_TESTS_RUN_SUITE_H

#include <check.h>

static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
