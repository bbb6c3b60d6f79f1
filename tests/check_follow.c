/* SPDX-License-Identifier: MIT */
/*
 * Following an undead request to its end (issue 10), against the real
 * daemon: a request that moves through three phases of known lengths, and
 * a worker killed while its request is followed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "run_suite.h"

#include "harness.h"


/* The share printed on the tree line of the first node labelled fn. */
static double share_of(const char *r, const char *fn)
{
    char needle[128];
    const char *tree = strstr(r, "Where the time went");
    const char *p, *line;
    double v;

    if (!tree)
        return -1;
    snprintf(needle, sizeof(needle), " %s (", fn);
    p = strstr(tree, needle);
    if (!p)
        return -1;
    for (line = p; line > tree && line[-1] != '\n'; line--)
        ;
    return sscanf(line, " %lf%%", &v) == 1 ? v : -1;
}

static const char *const follow_args[] = {"--follow", "20", NULL};

START_TEST(three_phases_show_their_shares)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"phases", "1.2", "1.2", "1.2", NULL};
    double took;

    td_start(&d, "0.2", follow_args);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(tw_wait(&w, 15000), 0);
    /* The follow-up is appended when the end is noticed (next scan). */
    char *r = td_wait_report_text(&d, "Folded stacks", 3000);
    ck_assert_ptr_nonnull(r);
    const char *fu = strstr(r, "Follow-up: the request ended after ");
    expect(fu != NULL, r, "no follow-up section");
    expect(sscanf(fu, "Follow-up: the request ended after %lf s", &took) == 1, r, "duration");
    /* 3.6 s of work, ends noticed within a scan (50 ms). */
    expect(took > 3.4 && took < 4.2, r, "took %.3f s, want about 3.6", took);
    double s1 = share_of(r, "phase_sleep"), s2 = share_of(r, "phase_cpu"),
           s3 = share_of(r, "phase_lock");
    /* Sampling starts at the report (0.2 s in): about 28%, 36%, 36%. */
    expect(s1 > 15 && s1 < 50, r, "phase_sleep share %.1f", s1);
    expect(s2 > 20 && s2 < 55, r, "phase_cpu share %.1f", s2);
    expect(s3 > 20 && s3 < 55, r, "phase_lock share %.1f", s3);
    expect(share_of(r, "handle_phased_request") > 95, r, "the request frame is 100%%");
    /* The folded lines name the leaf of each phase. */
    const char *folded = strstr(r, "Folded stacks");
    expect(strstr(folded, ";phase_sleep (test_worker.c);") && strstr(folded, ";phase_lock ("), r,
           "folded stacks");
    int samples = 0;
    expect(sscanf(strstr(r, "(sampled "), "(sampled %d times", &samples) == 1 && samples >= 40,
           r, "%d samples at 20 Hz over ~3.4 s", samples);
    free(r);
    /* The log line comes last, after the flame graph is written. */
    ck_assert_msg(td_wait_log(&d, "follow-up of GET /phases", 5000), "%s", td_log(&d));
    /* The flame graph beside the report: SVG, one box per frame. */
    char cmd[600], svg[1 << 16];
    snprintf(cmd, sizeof(cmd), "cat %s/slow_request_*.svg", d.out);
    FILE *p = popen(cmd, "r");
    size_t n = fread(svg, 1, sizeof(svg) - 1, p);
    pclose(p);
    svg[n] = '\0';
    ck_assert_msg(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") &&
                      strstr(svg, "</svg>\n"),
                  "no SVG flame graph: %.300s", svg);
    ck_assert_msg(strstr(svg, ">phase_cpu (test_worker.c) (") &&
                      strstr(svg, ">phase_lock (test_worker.c) (") &&
                      strstr(svg, ">phase_sleep (test_worker.c) ("),
                  "phases missing from the flame graph");
    /* Well-formed XML, as a browser will want it. */
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import sys, glob, xml.dom.minidom as m; "
             "fs = glob.glob(sys.argv[1] + \"/*.svg\"); assert len(fs) == 1; m.parse(fs[0])' %s",
             d.out);
    ck_assert_int_eq(system(cmd), 0);
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

START_TEST(killed_worker_did_not_finish)
{
    struct tdaemon d;
    struct tworker w;
    const char *args[] = {"phases", "20", "0", "0", NULL};

    td_start(&d, "0.2", follow_args);
    tw_start(&w, &d, getenv("TEST_WORKER"), args);
    ck_assert_ptr_nonnull(tw_expect(&w, "ready", 5000));
    ck_assert_int_eq(td_wait_reports(&d, 1, 5000), 1);
    sleep_ms(600);
    /* dogslowctl status lists the request being followed. */
    char out[8192];
    const char *ctl = getenv("DOGSLOWCTL");
    ck_assert_ptr_nonnull(ctl);
    int rc = run_capture((const char *const[]){ctl, "--socket", d.sock, "status", NULL}, NULL,
                         out, sizeof(out), 10000);
    ck_assert_msg(rc == 0, "dogslowctl status: %d\n%s", rc, out);
    ck_assert_msg(strstr(out, "requests followed: 1 (at 20 samples a second)\n"), "%s", out);
    ck_assert_msg(strstr(out, " samples, ") && strstr(out, ": GET /phases\n"), "%s", out);
    tw_kill(&w);
    char *r = td_wait_report_text(&d, "Follow-up:", 3000);
    ck_assert_ptr_nonnull(r);
    expect(strstr(r, "Follow-up: did not finish: the worker "), r, "no 'did not finish'");
    expect(share_of(r, "phase_sleep") > 95, r, "all samples asleep");
    free(r);
    ck_assert(td_alive(&d));
    td_stop(&d);
    td_cleanup(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("follow");
    TCase *tc = tcase_create("follow");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, three_phases_show_their_shares);
    tcase_add_test(tc, killed_worker_did_not_finish);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
