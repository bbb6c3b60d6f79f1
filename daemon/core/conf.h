/* SPDX-License-Identifier: MIT */
/*
 * The configuration: one table of options (config.c) that drives parsing
 * the INI file, validating it, the command-line overrides, `dogslowd
 * --help`, `dogslowctl config`, the documented conf/dogslow.conf and the
 * checks that keep dogslow.conf(5) complete.
 *
 * (Named conf.h, not config.h: every source file includes autoconf's
 * config.h, and a daemon/config.h would shadow it for the files next to it.)
 *
 * Loading is all or nothing: config_load() fills a fresh struct config from
 * the built-in defaults, the file and the overrides, checks every value and
 * the rules between values, and either returns it whole or returns every
 * error found as "FILE:LINE: key: reason" lines.  A reload (SIGHUP) loads a
 * new struct the same way and swaps it in only when it is good.
 */
#ifndef DOGSLOWD_CONF_H
#define DOGSLOWD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

enum opt_type {
    OPT_BOOL,    /* true/false, yes/no, on/off, 1/0 */
    OPT_SECONDS, /* "25", "0.5": stored as uint32_t milliseconds */
    OPT_UINT,    /* decimal, uint32_t */
    OPT_SIZE,    /* bytes, with an optional K, M or G suffix (x1024); uint32_t or uint64_t */
    OPT_STRING,  /* free text (printable), char[size] */
    OPT_PATH,    /* an absolute path, or empty where allowed, char[size] */
    OPT_LIST,    /* comma-separated items, stored as "a, b, c", char[size] */
    OPT_ENUM,    /* one of the names in choices: stored as its int value */
    OPT_MODE,    /* octal file mode, uint32_t */
};

/* Flags of an option. */
#define OPT_RELOAD 0x1u /* a SIGHUP applies a new value; otherwise it needs a restart */
#define OPT_SECRET 0x2u /* shown as "(set)" by dogslowctl config */
#define OPT_U64    0x4u /* OPT_SIZE stored as uint64_t */

struct opt_choice {
    const char *name;
    int value;
};

struct opt_def {
    const char *section, *name;
    enum opt_type type;
    unsigned flags;
    size_t off, size; /* where in struct config, and how many bytes */
    uint64_t min, max; /* numbers: bounds (milliseconds for OPT_SECONDS) */
    /* The default, written as in the file.  A leading "@" marks a default
     * computed at run time (it depends on who runs the daemon: the rest is
     * root's value); docdef says what. */
    const char *def;
    const char *docdef;
    const struct opt_choice *choices; /* OPT_ENUM, NULL-terminated */
    /* Extra check of a string, or of each item of a list; writes why. */
    int (*check)(const char *v, char *why, size_t size);
    unsigned max_items; /* OPT_LIST */
    const char *cli;     /* long command-line option, or NULL */
    const char *dogslow; /* dogslow's setting it follows, or NULL */
    const char *help;    /* one or two sentences */
};

extern const struct opt_def config_options[];
extern const size_t config_noptions;

enum cfg_starttls { CFG_STARTTLS_OFF, CFG_STARTTLS_OPTIONAL, CFG_STARTTLS_REQUIRED };
enum cfg_journal { CFG_JOURNAL_NO, CFG_JOURNAL_AUTO, CFG_JOURNAL_YES };

/* A value from the command line (or the environment), applied over the
 * file at start and again at every reload. */
struct config_override {
    const struct opt_def *opt;
    const char *value;
    const char *origin; /* "--timer", "$DOGSLOW_SOCKET", ... */
};

struct config_source {
    const char *path;  /* the file, or NULL for none */
    bool required;     /* a missing file is an error (given with --config) */
    const struct config_override *ov;
    size_t nov;
    /* The daemon's own check of the SMTP password file (email.password_file,
     * when set): the rules it is read by when a mail goes out, applied at
     * load time, so that -n, the start and a reload refuse a file that mail
     * would fail on.  0, or a negative errno and the reason in why.  NULL:
     * not checked (tests of the table alone, the fuzz target). */
    int (*check_password_file)(const char *path, char *why, size_t size);
};

/* "section.key", "key" (for [dogslow]) or a cli name: the option, or NULL. */
const struct opt_def *config_find(const char *name);
const struct opt_def *config_find_cli(const char *cli);

/* Built-in defaults only (no file): always valid. */
void config_defaults(struct config *c);

/*
 * Load src into *ret.  On error returns -EINVAL (or -errno when the file
 * cannot be read) and leaves *ret untouched; errors holds every problem
 * found, one "FILE:LINE: key: reason" per line (NUL-terminated, bounded).
 */
int config_load(const struct config_source *src, struct config *ret, char *errors,
                size_t errsize);

/* Parse one value into c (no rules between options checked). */
int config_set(struct config *c, const struct opt_def *o, const char *value, char *why,
               size_t size);

/* The value as it would be written in the file. */
void config_format(const struct config *c, const struct opt_def *o, char *buf, size_t size);

/* The effective configuration as an INI file (malloc'd, NUL-terminated). */
int config_dump(const struct config *c, const char *source, char **ret);

/* The options part of `dogslowd --help`. */
void config_help(FILE *f);

/* A documented config file with every option at its default. */
void config_template(FILE *f);

/*
 * After a good reload: options that changed but need a restart are put
 * back to their old values in *new, and each is described in buf (one
 * "key (needs a restart)" per line).  Returns how many.
 */
unsigned config_keep_restart_only(struct config *new, const struct config *old, char *buf,
                                  size_t size);

/* Syslog names of the facility and level in force (for status lines). */
const char *config_choice_name(const struct opt_def *o, int value);

#endif
