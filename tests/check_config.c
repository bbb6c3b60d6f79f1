/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the configuration table (daemon/config.c): every option
 * with a good and a bad value, errors with file and line, the rules between
 * options, overrides, and that conf/dogslow.conf and dogslow.conf(5) list
 * every option.  Also the ignore patterns (daemon/ignore.c) and the JSON
 * string escaper (daemon/report_json.c).
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "conf.h"
#include "core.h"
#include "output.h"
#include "util.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/dogslow-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* Write text to dir/name and return the path (static buffer). */
static const char *write_conf(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int load_text(const char *text, struct config *c, char *err, size_t size)
{
    struct config_source src = {.path = write_conf("t.conf", text), .required = true};
    return config_load(&src, c, err, size);
}

static const char *fmt(const struct config *c, const char *name)
{
    static char buf[2048];
    const struct opt_def *o = config_find(name);

    ck_assert_msg(o != NULL, "no option %s", name);
    config_format(c, o, buf, sizeof(buf));
    return buf;
}

/*
 * One good and one bad value for every option.  The test fails for an
 * option missing here, so a new option cannot come without its test.
 */
static const struct {
    const char *name, *good, *shown, *bad, *why;
} cases[] = {
    {"enabled", "no", "false", "maybe", "not a boolean"},
    {"timer", "2.5", "2.5", "2.5x", "not a number of seconds"},
    {"timer_min", "0.25", "0.25", "-1", "not a number of seconds"},
    {"timer_max", "7200", "7200", "86401", "out of range"},
    {"log_to_file", "off", "false", "2", "not a boolean"},
    {"output", "/srv/slow", "/srv/slow", "relative/dir", "not an absolute path"},
    {"output_group", "root", "root", "bad group!", "not a user or group name"},
    {"json", "yes", "true", "jsonl", "not a boolean"},
    {"report_max_bytes", "64K", "64K", "2M", "out of range"},
    {"retention_max_files", "0", "0", "1e3", "not a whole number"},
    {"retention_max_bytes", "1G", "1G", "10Q", "not a size"},
    {"spool_max_bytes", "0", "0", "65G", "out of range"},
    {"stack_vars", "true", "true", "sometimes", "not a boolean"},
    {"redact", "password,  pin", "password, pin", "pass*word", "not a word"},
    {"max_value_bytes", "1024", "1K", "8", "out of range"},
    {"max_frames", "64", "64", "257", "out of range"},
    {"max_stack_bytes", "512K", "512K", "1k2", "not a size"},
    {"follow_hz", "0", "0", "1001", "out of range"},
    {"follow_max_time", "60", "60", "forever", "not a number of seconds"},
    {"follow_max", "16", "16", "4097", "out of range"},
    {"follow_svg", "no", "false", "svg", "not a boolean"},
    {"follow_notify", "yes", "true", "mail", "not a boolean"},
    {"ignore_urls", "/health*,  /static/*", "/health*, /static/*", "/ok, health", "starts with"},
    {"email_to", "ops@example.com, oncall@example.com", "ops@example.com, oncall@example.com",
     "ops@example.com, nobody", "not an e-mail address"},
    {"email_from", "dogslow@example.com", "dogslow@example.com", "dogslow", "not an e-mail"},
    {"socket", "/run/x/d.sock", "/run/x/d.sock", "d.sock", "not an absolute path"},
    {"socket_mode", "0660", "0660", "0800", "not an octal mode"},
    {"socket_group", "0", "0", "-wheel", "not a user or group name"},
    {"user", "root", "root", "-root", "not a user or group name"},
    {"group", "root", "root", "wheel group", "not a user or group name"},
    {"seccomp", "no", "false", "off-ish", "not a boolean"},
    {"privsep", "no", "false", "separate", "not a boolean"},
    {"dac_read_search", "false", "false", "nope", "not a boolean"},
    {"allowed_users", "root, 0", "root, 0", "root, a b", "space"},
    {"allowed_groups", "root", "root", "x,,:y", "not a user or group name"},
    {"max_workers", "10", "10", "0", "out of range"},
    {"max_workers_per_uid", "64", "64", "0", "out of range"},
    {"max_connections", "1000", "1000", "1000001", "out of range"},
    {"max_connections_per_uid", "16", "16", "0", "out of range"},
    {"scan_interval", "0.1", "0.1", "5", "out of range"},
    {"hello_timeout", "2", "2", "0.01", "out of range"},
    {"email.host", "smtp.example.com", "smtp.example.com", "smtp example", "not a host"},
    {"email.port", "587", "587", "65536", "out of range"},
    {"email.starttls", "REQUIRED", "required", "maybe", "not one of: required, optional, off"},
    {"email.ca_file", "/etc/ssl/ca.pem", "/etc/ssl/ca.pem", "ca.pem", "not an absolute path"},
    {"email.user", "dogslow", NULL, NULL, NULL}, /* needs password_file: see below */
    {"email.password_file", "/etc/dogslow/smtp.pw", "/etc/dogslow/smtp.pw", "smtp.pw",
     "not an absolute path"},
    {"email.window", "0", "0", "1d", "not a number of seconds"},
    {"syslog.enabled", "true", "true", "enable", "not a boolean"},
    {"syslog.facility", "local3", "local3", "local8", "not one of"},
    {"syslog.level", "ERROR", "err", "loud", "not one of: warning, emerg"},
    {"syslog.socket", "/run/log.sock", "/run/log.sock", "", "a path is needed"},
    {"syslog.journal", "no", "no", "sometimes", "not one of: auto, yes, no"},
    {"sentry.dsn", "https://abc@sentry.example.com/42", "https://abc@sentry.example.com/42",
     "https://sentry.example.com/42", "not a Sentry DSN"},
};

static void split_name(const char *name, char *section, size_t ssize, const char **key)
{
    const char *dot = strchr(name, '.');

    if (dot) {
        snprintf(section, ssize, "%.*s", (int)(dot - name), name);
        *key = dot + 1;
    } else {
        snprintf(section, ssize, "dogslow");
        *key = name;
    }
}

START_TEST(every_option_has_a_case)
{
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char name[64];
        bool found = false;

        if (!strcmp(o->section, "dogslow"))
            snprintf(name, sizeof(name), "%s", o->name);
        else
            snprintf(name, sizeof(name), "%s.%s", o->section, o->name);
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++)
            found |= !strcmp(cases[k].name, name);
        ck_assert_msg(found, "option %s has no test case", name);
        ck_assert_ptr_eq(config_find(name), o);
        ck_assert_msg(o->help && strlen(o->help) > 10, "%s has no help", name);
    }
}
END_TEST

START_TEST(good_value_is_taken)
{
    char text[512], section[32], err[2048];
    const char *key;
    struct config c;

    split_name(cases[_i].name, section, sizeof(section), &key);
    snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s", section, key, cases[_i].good,
             !strcmp(cases[_i].name, "email.user") ? "password_file = /etc/pw\n" : "");
    ck_assert_msg(load_text(text, &c, err, sizeof(err)) == 0, "%s: %s", cases[_i].name, err);
    if (cases[_i].shown)
        ck_assert_str_eq(fmt(&c, cases[_i].name), cases[_i].shown);
    else
        ck_assert_str_eq(fmt(&c, cases[_i].name), cases[_i].good);
}
END_TEST

START_TEST(bad_value_is_refused_with_file_line_and_key)
{
    char text[512], section[32], err[2048], expect[256];
    const char *key;
    struct config c, before;

    if (!cases[_i].bad)
        return;
    split_name(cases[_i].name, section, sizeof(section), &key);
    /* The bad line is line 4. */
    snprintf(text, sizeof(text), "# comment\n[%s]\n\n%s = %s\n", section, key, cases[_i].bad);
    memset(&c, 0x5a, sizeof(c));
    before = c;
    ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), -EINVAL);
    snprintf(expect, sizeof(expect), "%s/t.conf:4: %s: ", dir, cases[_i].name);
    ck_assert_msg(!strncmp(err, expect, strlen(expect)), "want '%s...', got '%s'", expect, err);
    ck_assert_msg(strstr(err, cases[_i].why), "%s: want '%s' in '%s'", cases[_i].name,
                  cases[_i].why, err);
    /* A refused configuration leaves the caller's untouched. */
    ck_assert(!memcmp(&c, &before, sizeof(c)));
}
END_TEST

START_TEST(defaults_are_valid_and_shown_as_in_the_table)
{
    struct config_source src = {0};
    struct config c;
    char err[1024];

    ck_assert_int_eq(config_load(&src, &c, err, sizeof(err)), 0);
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char buf[2048];

        if (o->def[0] == '@')
            continue;
        config_format(&c, o, buf, sizeof(buf));
        ck_assert_msg(!strcmp(buf, o->def), "%s: default '%s' shows as '%s'", o->name, o->def,
                      buf);
    }
    ck_assert(c.enabled);
    ck_assert_uint_eq(c.timer_ms, 25000);
    ck_assert_int_eq((int)c.socket_gid, -1);
}
END_TEST

START_TEST(errors_name_every_bad_line)
{
    struct config c;
    char err[4096], expect[1024];
    const char *text = "[dogslow]\n"                /* 1 */
                       "timer = 3\n"                /* 2 */
                       "tmier = 3\n"                /* 3 */
                       "timer = 4\n"                /* 4 */
                       "; a comment\n"              /* 5 */
                       "[mail]\n"                   /* 6 */
                       "host = x\n"                 /* 7 */
                       "[email]\n"                  /* 8 */
                       "port = -25\n"               /* 9 */
                       "this is not ini\n";         /* 10 */

    ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), -EINVAL);
    snprintf(expect, sizeof(expect),
             "%1$s/t.conf:3: tmier: unknown key in [dogslow]\n"
             "%1$s/t.conf:4: timer: given twice (first on line 2)\n"
             "%1$s/t.conf:7: host: unknown section [mail]\n"
             "%1$s/t.conf:9: email.port: '-25' is not a whole number\n"
             "%1$s/t.conf:10: syntax error (expected 'key = value' or '[section]')\n",
             dir);
    ck_assert_str_eq(err, expect);
}
END_TEST

/* Errors come out in the file's line order, whenever they are found: a
 * syntax error (inih tells it last) and a rule between options (checked
 * after the whole file) before the errors of the lines below them. */
START_TEST(errors_come_in_line_order)
{
    struct config c;
    char err[4096], expect[1024];

    ck_assert_int_eq(load_text("[dogslow\n"   /* 1 */
                               "timer = 3\n", /* 2 */
                               &c, err, sizeof(err)),
                     -EINVAL);
    snprintf(expect, sizeof(expect),
             "%1$s/t.conf:1: syntax error (expected 'key = value' or '[section]')\n"
             "%1$s/t.conf:2: timer: not in a section (put it under [dogslow])\n",
             dir);
    ck_assert_str_eq(err, expect);

    ck_assert_int_eq(load_text("[dogslow]\n"      /* 1 */
                               "timer_min = 10\n" /* 2 */
                               "timer_max = 5\n"  /* 3 */
                               "tmier = 3\n"      /* 4 */
                               "not ini\n"        /* 5 */
                               "json = maybe\n",  /* 6 */
                               &c, err, sizeof(err)),
                     -EINVAL);
    snprintf(expect, sizeof(expect),
             "%1$s/t.conf:2: timer_min: larger than timer_max (5 s)\n"
             "%1$s/t.conf:4: tmier: unknown key in [dogslow]\n"
             "%1$s/t.conf:5: syntax error (expected 'key = value' or '[section]')\n"
             "%1$s/t.conf:6: json: 'maybe' is not a boolean (true or false)\n"
             "built-in default: timer: must lie within timer_min and timer_max (10 to 5 s)\n",
             dir);
    ck_assert_str_eq(err, expect);
}
END_TEST

START_TEST(key_outside_a_section_and_long_lines)
{
    struct config c;
    char err[4096], text[2048];
    int n;

    ck_assert_int_eq(load_text("timer = 3\n", &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:1: timer: not in a section"), "%s", err);

    n = snprintf(text, sizeof(text), "[dogslow]\nignore_urls = /a");
    while (n < 1000)
        n += snprintf(text + n, sizeof(text) - (size_t)n, ",/a");
    snprintf(text + n, sizeof(text) - (size_t)n, "\ntimer = 3\n");
    ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: line longer than"), "%s", err);
}
END_TEST

START_TEST(lists_continue_on_indented_lines)
{
    struct config c;
    char err[1024];

    ck_assert_int_eq(load_text("[dogslow]\n"
                               "ignore_urls = /health*,\n"
                               "    /static/*\n"
                               "\t/favicon.ico\n"
                               "timer = 3\n",
                               &c, err, sizeof(err)),
                     0);
    ck_assert_str_eq(c.ignore_urls, "/health*, /static/*, /favicon.ico");
    ck_assert_uint_eq(c.timer_ms, 3000);
    /* Indented right after a section header: a key, not a continuation. */
    ck_assert_int_eq(load_text("[dogslow]\nignore_urls = /a\n[syslog]\n  enabled = true\n", &c,
                               err, sizeof(err)),
                     0);
    ck_assert_str_eq(c.ignore_urls, "/a");
    ck_assert(c.syslog.enabled);
    ck_assert_int_eq(load_text("[dogslow]\ntimer = 3\n  4\n", &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:3: timer: only lists may continue"), "%s", err);
}
END_TEST

START_TEST(rules_between_options)
{
    struct config c;
    char err[4096];

    ck_assert_int_eq(load_text("[dogslow]\ntimer_min = 10\ntimer_max = 5\ntimer = 7\n", &c, err,
                               sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: timer_min: larger than timer_max (5 s)"), "%s", err);
    ck_assert_msg(strstr(err, "t.conf:4: timer: must lie within"), "%s", err);

    /* The built-in timer (25 s) against a file's bounds: located at the default. */
    ck_assert_int_eq(load_text("[dogslow]\ntimer_max = 10\n", &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "built-in default: timer: must lie within"), "%s", err);

    ck_assert_int_eq(load_text("[dogslow]\nreport_max_bytes = 512K\nretention_max_bytes = 100K\n",
                               &c, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:3: retention_max_bytes: smaller than report_max_bytes"),
                  "%s", err);

    /* One user's connections must leave room for the others': named where
     * the operator wrote it. */
    ck_assert_int_eq(load_text("[dogslow]\nmax_connections_per_uid = 300\nmax_connections = 300\n",
                               &c, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: max_connections_per_uid: must be smaller than "
                              "max_connections (300)"),
                  "%s", err);
    ck_assert_int_eq(load_text("[dogslow]\nmax_connections = 100\n", &c, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: max_connections: must be larger than "
                              "max_connections_per_uid (256)"),
                  "%s", err);
    ck_assert_int_eq(load_text("[dogslow]\nmax_connections = 100\nmax_connections_per_uid = 99\n",
                               &c, err, sizeof(err)),
                     0);

    ck_assert_int_eq(load_text("[email]\nuser = bob\n", &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: email.user: needs email.password_file"), "%s", err);

    ck_assert_int_eq(load_text("[dogslow]\nallowed_users = root, no_such_user_xyz\n"
                               "allowed_groups = no_such_group_xyz\n"
                               "socket_group = no_such_group_xyz\n",
                               &c, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: allowed_users: unknown user 'no_such_user_xyz'"), "%s",
                  err);
    ck_assert_msg(strstr(err, "t.conf:3: allowed_groups: unknown group 'no_such_group_xyz'"),
                  "%s", err);
    ck_assert_msg(strstr(err, "t.conf:4: socket_group: unknown group"), "%s", err);

    ck_assert_int_eq(load_text("[dogslow]\nallowed_users = root, 1234\nallowed_groups = 0\n"
                               "socket_group = root\n",
                               &c, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(c.n_allowed_uids, 2);
    ck_assert_uint_eq(c.allowed_uids[0], 0);
    ck_assert_uint_eq(c.allowed_uids[1], 1234);
    ck_assert_uint_eq(c.n_allowed_gids, 1);
    ck_assert_uint_eq(c.socket_gid, 0);
}
END_TEST

START_TEST(overrides_win_and_are_named_in_errors)
{
    const struct config_override ov[] = {
        {config_find("timer"), "1.5", "--timer"},
        {config_find("syslog.level"), "loud", "--set"},
    };
    struct config_source src = {.path = write_conf("o.conf", "[dogslow]\ntimer = 3\n"),
                                .required = true,
                                .ov = ov,
                                .nov = 1};
    struct config c;
    char err[1024];

    ck_assert_int_eq(config_load(&src, &c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.timer_ms, 1500);
    src.nov = 2;
    ck_assert_int_eq(config_load(&src, &c, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "--set: syslog.level: 'loud' is not one of"), "%s", err);
}
END_TEST

START_TEST(missing_file_is_fine_only_when_not_asked_for)
{
    char path[128];
    struct config_source src = {.path = path};
    struct config c;
    char err[1024];

    snprintf(path, sizeof(path), "%s/none.conf", dir);
    ck_assert_int_eq(config_load(&src, &c, err, sizeof(err)), 0);
    src.required = true;
    ck_assert_int_eq(config_load(&src, &c, err, sizeof(err)), -ENOENT);
    ck_assert_msg(strstr(err, "none.conf: cannot read: No such file"), "%s", err);
}
END_TEST

START_TEST(restart_only_options_keep_their_old_values)
{
    struct config a, b;
    char err[1024], why[512];

    ck_assert_int_eq(load_text("[dogslow]\nsocket = /run/a.sock\ntimer = 3\n", &a, err,
                               sizeof(err)),
                     0);
    ck_assert_int_eq(load_text("[dogslow]\nsocket = /run/b.sock\nsocket_mode = 0600\n"
                               "timer = 4\n",
                               &b, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(config_keep_restart_only(&b, &a, why, sizeof(why)), 2);
    ck_assert_str_eq(b.socket_path, "/run/a.sock");
    ck_assert_str_eq(b.state_dir, "/run/workers");
    ck_assert_uint_eq(b.socket_mode, 0666);
    ck_assert_uint_eq(b.timer_ms, 4000); /* reloadable: the new value */
    ck_assert_msg(strstr(why, "socket = /run/b.sock (still /run/a.sock until a restart)"), "%s",
                  why);
    ck_assert_msg(strstr(why, "socket_mode = 0600"), "%s", why);
}
END_TEST

START_TEST(dump_hides_secrets)
{
    struct config c;
    char err[1024], *out = NULL;

    ck_assert_int_eq(load_text("[sentry]\ndsn = https://secretkey@sentry.example.com/7\n", &c,
                               err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_dump(&c, "t.conf", &out), 0);
    ck_assert_msg(!strstr(out, "secretkey"), "%s", out);
    ck_assert_msg(strstr(out, "\n[sentry]\ndsn = (set, not shown)\n"), "%s", out);
    ck_assert_msg(strstr(out, "\n[dogslow]\nenabled = true\ntimer = 25\n"), "%s", out);
    free(out);
}
END_TEST

static char *slurp(const char *path)
{
    char *buf = calloc(1, 1 << 20);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(dsl_read_text(path, buf, 1 << 20) > 0, "cannot read %s", path);
    return buf;
}

static const char *srcdir(void)
{
    const char *s = getenv("DOGSLOW_SRCDIR");
    ck_assert_msg(s && *s, "DOGSLOW_SRCDIR is not set (run with make check)");
    return s;
}

/* The shipped conf/dogslow.conf: it parses, it lists every option in its
 * section, and what it sets is the built-in default. */
START_TEST(shipped_conf_lists_every_option_at_its_default)
{
    char path[512], err[4096];
    struct config_source src = {.path = path, .required = true};
    struct config file, def;
    char *text;

    snprintf(path, sizeof(path), "%s/conf/dogslow.conf", srcdir());
    ck_assert_msg(config_load(&src, &file, err, sizeof(err)) == 0, "%s", err);
    config_defaults(&def);
    text = slurp(path);
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char sect[64], line[128], a[2048], b[2048];
        const char *s, *next, *hit;

        snprintf(sect, sizeof(sect), "\n[%s]\n", o->section);
        s = strstr(text, sect);
        ck_assert_msg(s != NULL, "no [%s] in %s", o->section, path);
        next = strstr(s + 1, "\n[");
        snprintf(line, sizeof(line), "\n%s%s =", o->def[0] == '@' ? "#" : "", o->name);
        hit = strstr(s, line);
        ck_assert_msg(hit && (!next || hit < next), "%s: no '%s' line in [%s]", path, line + 1,
                      o->section);
        config_format(&file, o, a, sizeof(a));
        config_format(&def, o, b, sizeof(b));
        ck_assert_msg(!strcmp(a, b), "%s: %s is '%s' but the default is '%s'", path, o->name, a,
                      b);
    }
    /* And word for word what dogslowd --print-default-config prints: the
     * comments too (they drifted once: max_value_bytes). */
    char *tmpl = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&tmpl, &tlen);
    ck_assert_ptr_nonnull(f);
    config_template(f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(!strcmp(text, tmpl),
                  "%s differs from dogslowd --print-default-config: regenerate it with "
                  "'dogslowd --print-default-config > conf/dogslow.conf'",
                  path);
    free(tmpl);
    free(text);
}
END_TEST

/* dogslow.conf(5) documents every option, in its section. */
START_TEST(man_page_lists_every_option)
{
    char path[512];
    char *text;

    snprintf(path, sizeof(path), "%s/man/dogslow.conf.5", srcdir());
    text = slurp(path);
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char sect[64], item[96];
        const char *s, *next, *hit;

        snprintf(sect, sizeof(sect), "\n.Ss \\&[%s]\\&\n", o->section);
        s = strstr(text, sect);
        ck_assert_msg(s != NULL, "no '.Ss \\&[%s]' in %s", o->section, path);
        next = strstr(s + 1, "\n.Ss ");
        if (!next)
            next = strstr(s + 1, "\n.Sh ");
        snprintf(item, sizeof(item), "\n.It Cm %s Ns = Ns", o->name);
        hit = strstr(s, item);
        ck_assert_msg(hit && (!next || hit < next), "%s: no '%s' in [%s]", path, item + 1,
                      o->section);
    }
    free(text);
}
END_TEST

/* The man pages are clean for mandoc's linter (warnings and errors). */
START_TEST(man_pages_lint_clean)
{
    char cmd[1200], out[4096];
    FILE *p;
    size_t n;
    int st;

    ck_assert_msg(access("/usr/bin/mandoc", X_OK) == 0, "mandoc is missing: run tools/deps");
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/mandoc -Tlint -Wwarning %1$s/man/dogslow.conf.5 %1$s/man/dogslowctl.1 "
             "%1$s/man/dogslowd.8 %1$s/man/libdogslow.3 2>&1",
             srcdir());
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    st = pclose(p);
    ck_assert_msg(st == 0, "mandoc -Tlint:\n%s", out);
}
END_TEST

/* ---- dogslowd -n, and what the documentation says of it ---- */

/* Run a shell command; its stdout and stderr in out; its exit status. */
static int run_cmd(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    size_t n;
    int st;

    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *dogslowd(void)
{
    const char *s = getenv("DOGSLOWD");
    ck_assert_msg(s && *s, "DOGSLOWD is not set (run with make check)");
    return s;
}

static void write_password(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

/* The SMTP password file is read by the rules mail is sent by: -n, and the
 * start, refuse a file that is missing, empty or readable by others, with
 * the file, line and what to do. */
START_TEST(password_file_is_checked_by_dash_n_and_at_start)
{
    char conf[128], pw[128], cmd[1024], out[8192], expect[512];

    snprintf(pw, sizeof(pw), "%s/smtp.pw", dir);
    snprintf(conf, sizeof(conf), "%s", write_conf("mail.conf", ""));
    snprintf(cmd, sizeof(cmd),
             "[dogslow]\nemail_to = ops@example.com\n\n[email]\nuser = dogslow\n"
             "password_file = %s\n", /* line 6 */
             pw);
    write_conf("mail.conf", cmd);
    snprintf(cmd, sizeof(cmd), "'%s' -n -c '%s' 2>&1", dogslowd(), conf);

    /* What the file holds (NULL: there is none), its mode, and the error
     * after "FILE:6: email.password_file: ", around the file's path. */
    static const struct {
        const char *text;
        mode_t mode;
        const char *before, *after;
    } bad[] = {
        {NULL, 0, "cannot open the password file ", ": No such file or directory"},
        {"sesame\n", 0644, "the password file ", " is accessible by others (mode 0644): chmod 600 it"},
        {"\n", 0600, "the password file ", " is empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bad[i].text)
            write_password(pw, bad[i].text, bad[i].mode);
        ck_assert_int_eq(run_cmd(cmd, out, sizeof(out)), 1);
        snprintf(expect, sizeof(expect), "%s:6: email.password_file: %s%s%s\n", conf,
                 bad[i].before, pw, bad[i].after);
        ck_assert_msg(strstr(out, expect), "want '%s' in:\n%s", expect, out);
    }

    write_password(pw, "sesame\n", 0600);
    ck_assert_msg(run_cmd(cmd, out, sizeof(out)) == 0, "%s", out);
    ck_assert_msg(strstr(out, "dogslowd: configuration OK ("), "%s", out);

    /* The daemon itself does not start with it either, and says why. */
    ck_assert_int_eq(chmod(pw, 0604), 0);
    snprintf(cmd, sizeof(cmd),
             "timeout 20 '%1$s' -f -c '%2$s' --socket '%3$s/d.sock' --output '%3$s/out' "
             "--user root 2>&1",
             dogslowd(), conf, dir);
    ck_assert_int_eq(run_cmd(cmd, out, sizeof(out)), 1);
    snprintf(expect, sizeof(expect),
             "dogslowd: %s:6: email.password_file: the password file %s is accessible by others "
             "(mode 0604): chmod 600 it\n",
             conf, pw);
    ck_assert_msg(strstr(out, expect) && strstr(out, "configuration refused"), "want '%s' in:\n%s",
                  expect, out);
}
END_TEST

/* Started as root, the daemon reads the password file again once it has
 * switched users: a file only root can read is said at start (here with
 * dac_read_search = false; with it, the daemon can read any file). */
START_TEST(password_file_unreadable_after_the_switch_is_said)
{
    char conf[128], pw[128], cmd[1024], out[8192], expect[512];

    if (geteuid() != 0 || !getpwnam("nobody"))
        return; /* needs root, and a user to switch to */
    ck_assert_int_eq(chmod(dir, 0755), 0);
    snprintf(pw, sizeof(pw), "%s/smtp.pw", dir);
    write_password(pw, "sesame\n", 0600);
    snprintf(cmd, sizeof(cmd),
             "[dogslow]\nemail_to = ops@example.com\ndac_read_search = false\n"
             "[email]\nuser = dogslow\npassword_file = %s\n",
             pw);
    snprintf(conf, sizeof(conf), "%s", write_conf("mail.conf", cmd));
    snprintf(cmd, sizeof(cmd),
             "timeout 2 '%1$s' -f -c '%2$s' --socket '%3$s/run/d.sock' --output '%3$s/out' "
             "--user nobody 2>&1",
             dogslowd(), conf, dir);
    run_cmd(cmd, out, sizeof(out));
    snprintf(expect, sizeof(expect),
             "email.password_file: cannot open the password file %s: Permission denied (the "
             "daemon runs as uid %u): e-mails wait in the spool until it can read the file\n",
             pw, (unsigned)getpwnam("nobody")->pw_uid);
    ck_assert_msg(strstr(out, expect), "want '%s' in:\n%s", expect, out);
}
END_TEST

/* Every configuration README.md shows (its ```ini blocks) passes
 * dogslowd -n as written; only the password file it names is one of the
 * test's (README's is /etc/dogslow/smtp.pw). */
START_TEST(readme_configurations_pass_dash_n)
{
    char path[512], pw[128], conf[128], cmd[1024], out[8192], name[32];
    unsigned nblocks = 0;
    bool sentry = false;
    char *text;

    snprintf(path, sizeof(path), "%s/README.md", srcdir());
    text = slurp(path);
    snprintf(pw, sizeof(pw), "%s/smtp.pw", dir);
    write_password(pw, "sesame\n", 0600);
    for (char *p = strstr(text, "\n```ini\n"); p; p = strstr(p, "\n```ini\n")) {
        char *end;

        p += strlen("\n```ini\n");
        end = strstr(p, "\n```");
        ck_assert_ptr_nonnull(end);
        *end = '\0';
        sentry |= strstr(p, "[sentry]") != NULL;
        snprintf(name, sizeof(name), "readme-%u.conf", ++nblocks);
        snprintf(conf, sizeof(conf), "%s", write_conf(name, p));
        snprintf(cmd, sizeof(cmd), "'%s' -n -c '%s' --set email.password_file='%s' 2>&1",
                 dogslowd(), conf, pw);
        ck_assert_msg(run_cmd(cmd, out, sizeof(out)) == 0,
                      "README.md's configuration #%u fails dogslowd -n:\n%s\n----\n%s", nblocks,
                      out, p);
        p = end + 1;
    }
    ck_assert_msg(nblocks >= 2 && sentry, "README.md: %u ```ini blocks, [sentry] %s", nblocks,
                  sentry ? "in one" : "in none");
    free(text);
}
END_TEST

/* A DSN -n accepts is one the Sentry sender accepts (sentry_parse_dsn):
 * README's placeholder of old, PUBLIC_KEY@.../PROJECT_ID, is refused,
 * saying which part is wrong. */
START_TEST(sentry_dsn_is_checked_as_the_sender_does)
{
    struct config c;
    char err[2048];

    ck_assert_int_eq(load_text("[sentry]\ndsn = https://PUBLIC_KEY@o0.ingest.sentry.io/4505\n", &c,
                               err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: sentry.dsn: not a Sentry DSN: the public key has a "
                              "character other than letters and digits"),
                  "%s", err);
    ck_assert_int_eq(load_text("[sentry]\ndsn = https://key@o0.ingest.sentry.io/PROJECT_ID\n", &c,
                               err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "t.conf:2: sentry.dsn: not a Sentry DSN: the project id (after the "
                              "last '/') must be a number"),
                  "%s", err);
    ck_assert_int_eq(
        load_text("[sentry]\ndsn = https://examplePublicKey:secret@o0.ingest.sentry.io/"
                  "4505\n",
                  &c, err, sizeof(err)),
        0);
}
END_TEST

/* Which file a default build reads is said where a newcomer looks:
 * dogslowd --help, dogslowd -n (and the start-up line) when it is missing,
 * README.md and dogslowd(8). */
START_TEST(default_config_path_is_said)
{
    char path[600], cmd[1024], out[16384], expect[800];
    const char *etc = getenv("sysconfdir");
    char *text;

    ck_assert_msg(etc && *etc, "sysconfdir is not set (run with make check)");
    snprintf(path, sizeof(path), "%s/dogslow/dogslow.conf", etc);
    snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", dogslowd());
    ck_assert_int_eq(run_cmd(cmd, out, sizeof(out)), 0);
    snprintf(expect, sizeof(expect), "(default %s;", path);
    ck_assert_msg(strstr(out, expect), "want '%s' in:\n%s", expect, out);
    if (access(path, F_OK) != 0) {
        snprintf(cmd, sizeof(cmd), "'%s' -n 2>&1", dogslowd());
        ck_assert_int_eq(run_cmd(cmd, out, sizeof(out)), 0);
        snprintf(expect, sizeof(expect),
                 "configuration OK (built-in defaults (%s not found; use --config FILE for "
                 "another file))",
                 path);
        ck_assert_msg(strstr(out, expect), "want '%s' in:\n%s", expect, out);
    }

    snprintf(path, sizeof(path), "%s/README.md", srcdir());
    text = slurp(path);
    ck_assert_msg(strstr(text, "`/usr/local/etc/dogslow/dogslow.conf`") &&
                      strstr(text, "--sysconfdir=/etc"),
                  "README.md does not say which file a default build reads");
    free(text);
    snprintf(path, sizeof(path), "%s/man/dogslowd.8", srcdir());
    text = slurp(path);
    ck_assert_msg(strstr(text, "\n.Pa /usr/local/etc/dogslow/dogslow.conf") &&
                      strstr(text, "Fl -sysconfdir Ns = Ns Pa /etc"),
                  "dogslowd.8 does not say which file a default build reads");
    free(text);
}
END_TEST

/* The text of srcdir's file from heading up to the next line starting
 * with next (or the end), malloc'd. */
static char *section_of(const char *file, const char *heading, const char *next)
{
    char path[600];
    char *text, *sect, *end;

    snprintf(path, sizeof(path), "%s/%s", srcdir(), file);
    text = slurp(path);
    sect = strstr(text, heading);
    ck_assert_msg(sect != NULL, "%s has no '%s'", file, heading);
    end = strstr(sect + 1, next);
    if (end)
        *end = '\0';
    memmove(text, sect, strlen(sect) + 1);
    return text;
}

/* The flame graph written beside a followed report is documented: in
 * README.md's section on following, and in dogslowd(8)'s FILES. */
START_TEST(flame_graph_is_documented)
{
    static const struct {
        const char *file, *heading, *next;
    } docs[] = {
        {"README.md", "\n## Following a request to its end\n", "\n## "},
        {"man/dogslowd.8", "\n.Sh FILES\n", "\n.Sh "},
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        char *sect = section_of(docs[i].file, docs[i].heading, docs[i].next);
        ck_assert_msg(strstr(sect, ".svg") && strstr(sect, "follow_svg") && strstr(sect, "browser"),
                      "%s's '%s' does not describe the .svg", docs[i].file, docs[i].heading + 1);
        free(sect);
    }
}
END_TEST

/* ---- ignore patterns ---- */

START_TEST(glob_matches_like_fnmatch_without_pathname)
{
    static const struct {
        const char *pat, *s;
        bool match;
    } t[] = {
        {"/health*", "/health", true},
        {"/health*", "/healthz/deep", true},
        {"/health*", "/api/health", false},
        {"/static/*", "/static/css/a.css", true},
        {"/static/*", "/static", false},
        {"*.css", "/x/y.css", true},
        {"/a?c", "/abc", true},
        {"/a?c", "/ac", false},
        {"/v[0-9]/*", "/v2/users", true},
        {"/v[0-9]/*", "/vx/users", false},
        {"/v[!0-9]/*", "/vx/users", true},
        {"/[]]", "/]", true},
        {"/a\\*", "/a*", true},
        {"/a\\*", "/ab", false},
        {"*", "/", true},
        {"/a*b*c", "/aXbYc", true},
        {"/a*b*c", "/aXbYcZ", false},
        {"/exact", "/exact", true},
        {"/exact", "/exactly", false},
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        ck_assert_msg(ignore_glob(t[i].pat, t[i].s, strlen(t[i].s)) == t[i].match,
                      "'%s' vs '%s'", t[i].pat, t[i].s);
}
END_TEST

START_TEST(path_is_matched_without_query_and_host)
{
    ck_assert(ignore_list_match("/health*, /static/*", "/health?full=1"));
    ck_assert(ignore_list_match("/health*, /static/*", "/static/a.js#x"));
    ck_assert(ignore_list_match("/orders", "http://shop:8000/orders?id=4"));
    ck_assert(!ignore_list_match("/orders", "/orders/4"));
    ck_assert(!ignore_list_match("/health*", "/api?next=/health"));
    ck_assert(!ignore_list_match("", "/health"));
}
END_TEST

START_TEST(pattern_checks)
{
    char why[256], big[300];

    ck_assert_int_eq(ignore_pattern_check("/ok/*", why, sizeof(why)), 0);
    ck_assert_int_eq(ignore_pattern_check("*.css", why, sizeof(why)), 0);
    ck_assert_int_eq(ignore_pattern_check("health", why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(ignore_pattern_check("/a[b", why, sizeof(why)), -EINVAL);
    ck_assert_msg(strstr(why, "without its ']'"), "%s", why);
    ck_assert_int_eq(ignore_pattern_check("/a\\", why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(ignore_pattern_check("/a b", why, sizeof(why)), -EINVAL);
    memset(big, 'a', sizeof(big));
    big[0] = '/';
    big[IGNORE_PATTERN_MAX + 1] = '\0';
    ck_assert_int_eq(ignore_pattern_check(big, why, sizeof(why)), -EINVAL);
}
END_TEST

START_TEST(worker_patterns_are_bounded)
{
    struct worker w = {0};
    char why[256], list[2048];
    int n = 0;

    ck_assert_int_eq(ignore_worker_set(&w, " /a*, ,/b ", why, sizeof(why)), 0);
    ck_assert_str_eq(w.ignore_urls, "/a*,/b");
    ck_assert_int_eq(ignore_worker_set(&w, "", why, sizeof(why)), 0);
    ck_assert_ptr_null(w.ignore_urls);
    ck_assert_int_eq(ignore_worker_set(&w, "/ok, nope", why, sizeof(why)), -EINVAL);
    ck_assert_ptr_null(w.ignore_urls);
    for (int i = 0; i <= IGNORE_WORKER_PATTERNS_MAX; i++)
        n += snprintf(list + n, sizeof(list) - (size_t)n, "/p%d,", i);
    ck_assert_int_eq(ignore_worker_set(&w, list, why, sizeof(why)), -EINVAL);
    ck_assert_msg(strstr(why, "more than"), "%s", why);
    free(w.ignore_urls);
}
END_TEST

/* A hostile worker cannot make matching slow: star-heavy patterns against
 * the longest URL stay far below a millisecond each. */
START_TEST(matching_cost_is_bounded)
{
    char url[DSL_URL_MAX + 1], pat[IGNORE_PATTERN_MAX + 1];
    struct timespec a, b;

    memset(url, 'a', sizeof(url) - 1);
    url[0] = '/';
    url[sizeof(url) - 1] = '\0';
    for (size_t i = 0; i < sizeof(pat) - 2; i += 2) {
        pat[i] = '*';
        pat[i + 1] = 'a';
    }
    pat[0] = '/';
    pat[sizeof(pat) - 2] = 'b';
    pat[sizeof(pat) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 16; i++)
        ck_assert(!ignore_glob(pat, url, strlen(url)));
    clock_gettime(CLOCK_MONOTONIC, &b);
    /* 16 worst cases (a worker's whole list) in well under a second even
     * under sanitizers; glibc's fnmatch needs far longer here. */
    ck_assert_int_lt((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000, 1000);
}
END_TEST

/* ---- JSON escaping ---- */

static const char *esc(const char *s)
{
    static char buf[256];
    size_t n = json_escape(buf, sizeof(buf) - 1, s);

    ck_assert_uint_lt(n, sizeof(buf));
    buf[n] = '\0';
    return buf;
}

START_TEST(json_strings_are_escaped)
{
    char small[4];

    ck_assert_str_eq(esc("plain"), "\"plain\"");
    ck_assert_str_eq(esc("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(esc("l1\nl2\t\x01"), "\"l1\\nl2\\t\\u0001\"");
    ck_assert_str_eq(esc("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  /* valid UTF-8 kept */
    ck_assert_str_eq(esc("bad\xff\xc3"), "\"bad\\ufffd\\ufffd\""); /* invalid replaced */
    ck_assert_str_eq(esc("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
    ck_assert_str_eq(esc("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
    /* Bounded: reports the size needed, writes no more than asked. */
    memset(small, 'x', sizeof(small));
    ck_assert_uint_eq(json_escape(small, 3, "abcdef"), 8);
    ck_assert_int_eq(small[3], 'x');
}
END_TEST

/* A report with more frames than fit in report_max_bytes: frames are left
 * out whole, the document says so, and it is still valid JSON. */
START_TEST(json_report_is_capped_and_valid)
{
    static struct daemon d;
    static struct worker w;
    static struct snapshot snap;
    static struct symframe frames[200];
    struct dsl_request req = {.seq = 1, .tid = 4321, .start_ns = 1};
    struct report_info ri = {.req = &req, .w = &w, .snap = &snap, .frames = frames,
                             .nframes = 200};
    char *text = NULL, path[128], cmd[300];
    size_t len;
    FILE *f;

    config_defaults(&d.cfg);
    d.cfg.report_max_bytes = 4096;
    snprintf(d.hostname, sizeof(d.hostname), "%s", "host\"1\"");
    w.pid = 1234;
    snprintf(w.program, sizeof(w.program), "%s", "prog");
    snprintf(req.method, sizeof(req.method), "%s", "GET");
    snprintf(req.url, sizeof(req.url), "%s", "/a?b=\\c");
    ri.now_real_ns = 2000000000ull;
    ri.start_real_ns = 1000000000ull;
    for (int i = 0; i < 200; i++) {
        snprintf(frames[i].function, sizeof(frames[i].function), "function_%d\x01\xff", i);
        snprintf(frames[i].module, sizeof(frames[i].module), "/usr/lib/lib%d.so", i);
        frames[i].line = i;
    }
    ck_assert_int_eq(report_json_render(&d, &ri, &text, &len), 0);
    ck_assert_uint_le(len, 4096);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_msg(strstr(text, "\"truncated\": true}\n"), "%s", text);
    ck_assert_msg(strstr(text, "\"function\": \"function_0\\u0001\\ufffd\""), "%s", text);
    snprintf(path, sizeof(path), "%s/r.json", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(text, 1, len, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "assert d[\"truncated\"] and d[\"request\"][\"url\"] == \"/a?b=\\\\c\"' %s",
             path);
    ck_assert_int_eq(system(cmd), 0);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("table");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_option_has_a_case);
    tcase_add_loop_test(tc, good_value_is_taken, 0, (int)ARRAY_SIZE(cases));
    tcase_add_loop_test(tc, bad_value_is_refused_with_file_line_and_key, 0,
                        (int)ARRAY_SIZE(cases));
    tcase_add_test(tc, defaults_are_valid_and_shown_as_in_the_table);
    tcase_add_test(tc, errors_name_every_bad_line);
    tcase_add_test(tc, errors_come_in_line_order);
    tcase_add_test(tc, key_outside_a_section_and_long_lines);
    tcase_add_test(tc, lists_continue_on_indented_lines);
    tcase_add_test(tc, rules_between_options);
    tcase_add_test(tc, overrides_win_and_are_named_in_errors);
    tcase_add_test(tc, missing_file_is_fine_only_when_not_asked_for);
    tcase_add_test(tc, restart_only_options_keep_their_old_values);
    tcase_add_test(tc, dump_hides_secrets);
    tcase_add_test(tc, shipped_conf_lists_every_option_at_its_default);
    tcase_add_test(tc, man_page_lists_every_option);
    tcase_add_test(tc, man_pages_lint_clean);
    tcase_add_test(tc, password_file_is_checked_by_dash_n_and_at_start);
    tcase_add_test(tc, password_file_unreadable_after_the_switch_is_said);
    tcase_add_test(tc, readme_configurations_pass_dash_n);
    tcase_add_test(tc, sentry_dsn_is_checked_as_the_sender_does);
    tcase_add_test(tc, default_config_path_is_said);
    tcase_add_test(tc, flame_graph_is_documented);
    suite_add_tcase(s, tc);

    tc = tcase_create("ignore");
    tcase_add_test(tc, glob_matches_like_fnmatch_without_pathname);
    tcase_add_test(tc, path_is_matched_without_query_and_host);
    tcase_add_test(tc, pattern_checks);
    tcase_add_test(tc, worker_patterns_are_bounded);
    tcase_add_test(tc, matching_cost_is_bounded);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_strings_are_escaped);
    tcase_add_test(tc, json_report_is_capped_and_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
