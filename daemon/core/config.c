/* SPDX-License-Identifier: MIT */
/*
 * The option table and everything it drives: parsing the INI file (inih),
 * validating values and the rules between them, command-line overrides,
 * the option list of `dogslowd --help`, the effective configuration shown
 * by `dogslowctl config`, and the documented template that becomes
 * conf/dogslow.conf.
 *
 * Every option is declared once, below.  Adding one means adding a field to
 * struct config (core.h), a row here, and a paragraph to
 * man/dogslow.conf.5 -- the tests fail until the man page and
 * conf/dogslow.conf list it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <unistd.h>

#include <ini.h>

#include "conf.h"
#include "core.h"
#include "dogslow.h"
#include "util.h"

#define OFF(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define SECS(s)    ((uint64_t)(s) * 1000u)
#define KIB        1024ull
#define MIB        (1024ull * 1024ull)
#define GIB        (1024ull * 1024ull * 1024ull)

#define ITEM_MAX          256 /* bytes of one list item */
#define ERRLINE_MAX       512
#define ERRORS_SORTED_MAX 256 /* error lines put in line order; more stay at the end */

/* ---- checks of string values -------------------------------------------- */

static bool is_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static int check_email(const char *v, char *why, size_t size)
{
    const char *at = strchr(v, '@');
    size_t n = strlen(v);

    if (n > 254 || !at || at == v || at[1] == '\0' || strchr(at + 1, '@') || at - v > 64) {
        snprintf(why, size, "'%s' is not an e-mail address (local@domain)", v);
        return -EINVAL;
    }
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c)) {
            snprintf(why, size, "'%s' is not an e-mail address (character '%c')", v,
                     c > 0x20 && c < 0x7f ? c : '?');
            return -EINVAL;
        }
    }
    if (!strchr(at + 1, '.') && strcmp(at + 1, "localhost") != 0) {
        snprintf(why, size, "'%s': the domain has no dot", v);
        return -EINVAL;
    }
    return 0;
}

static int check_email_or_empty(const char *v, char *why, size_t size)
{
    return v[0] ? check_email(v, why, size) : 0;
}

/* A user or group: a name as useradd(8) allows it, or a number. */
static int check_account(const char *v, char *why, size_t size)
{
    size_t n = strlen(v);

    if (n == 0 || n > 32) {
        snprintf(why, size, "'%s' is not a user or group name", v);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || (c == '$' && i == n - 1)) ||
            (i == 0 && c == '-')) {
            snprintf(why, size, "'%s' is not a user or group name", v);
            return -EINVAL;
        }
    }
    return 0;
}

static int check_account_or_empty(const char *v, char *why, size_t size)
{
    return v[0] ? check_account(v, why, size) : 0;
}

static int check_host(const char *v, char *why, size_t size)
{
    if (!v[0]) {
        snprintf(why, size, "a host name is needed");
        return -EINVAL;
    }
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' ||
              c == '_')) {
            snprintf(why, size, "'%s' is not a host name or address", v);
            return -EINVAL;
        }
    }
    return 0;
}

/* A word of the redaction list: letters, digits, '_' and '-'. */
static int check_redact_word(const char *v, char *why, size_t size)
{
    size_t n = strlen(v);

    if (n == 0 || n > 63) {
        snprintf(why, size, "'%s' is not a word of 1 to 63 characters", v);
        return -EINVAL;
    }
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            snprintf(why, size, "'%s' is not a word (letters, digits, _ and - only)", v);
            return -EINVAL;
        }
    }
    return 0;
}

static int check_pattern(const char *v, char *why, size_t size)
{
    return ignore_pattern_check(v, why, size);
}

/* A Sentry DSN: http(s)://PUBLIC_KEY[:SECRET]@HOST[:PORT]/[PATH/]PROJECT_ID,
 * by the rules sentry_parse_dsn() (sink_sentry.c) sends with. */
static int check_dsn(const char *v, char *why, size_t size)
{
    const char *p, *at, *slash;

    if (!v[0])
        return 0;
    if (!strncmp(v, "https://", 8))
        p = v + 8;
    else if (!strncmp(v, "http://", 7))
        p = v + 7;
    else
        goto bad;
    at = strchr(p, '@');
    slash = strchr(p, '/');
    if (!at || at == p || !slash || slash < at || slash == at + 1)
        goto bad;
    for (const char *k = p; k < at && *k != ':'; k++)
        if (!isalnum((unsigned char)*k)) {
            snprintf(why, size,
                     "not a Sentry DSN: the public key has a character other than letters and "
                     "digits (https://KEY@HOST/PROJECT_ID)");
            return -EINVAL;
        }
    p = strrchr(v, '/') + 1;
    if (!*p)
        goto bad;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p)) {
            snprintf(why, size,
                     "not a Sentry DSN: the project id (after the last '/') must be a number "
                     "(https://KEY@HOST/PROJECT_ID)");
            return -EINVAL;
        }
    for (p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            goto bad;
    return 0;
bad:
    snprintf(why, size, "not a Sentry DSN (https://KEY@HOST/PROJECT_ID)");
    return -EINVAL;
}

/* ---- the table ---------------------------------------------------------- */

static const struct opt_choice starttls_choices[] = {
    {"required", CFG_STARTTLS_REQUIRED},
    {"optional", CFG_STARTTLS_OPTIONAL},
    {"off", CFG_STARTTLS_OFF},
    {NULL, 0},
};

static const struct opt_choice journal_choices[] = {
    {"auto", CFG_JOURNAL_AUTO},
    {"yes", CFG_JOURNAL_YES},
    {"no", CFG_JOURNAL_NO},
    {NULL, 0},
};

static const struct opt_choice facility_choices[] = {
    {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7}, {"mail", LOG_MAIL},     {"auth", LOG_AUTH},
    {"authpriv", LOG_AUTHPRIV}, {"syslog", LOG_SYSLOG}, {"cron", LOG_CRON},
    {"kern", LOG_KERN},     {NULL, 0},
};

/* syslog's names, and Python logging's (dogslow's DOGSLOW_LOG_LEVEL). */
static const struct opt_choice level_choices[] = {
    {"warning", LOG_WARNING}, {"emerg", LOG_EMERG}, {"alert", LOG_ALERT},
    {"crit", LOG_CRIT},       {"err", LOG_ERR},     {"notice", LOG_NOTICE},
    {"info", LOG_INFO},       {"debug", LOG_DEBUG}, {"critical", LOG_CRIT},
    {"error", LOG_ERR},       {"warn", LOG_WARNING}, {NULL, 0},
};

const struct opt_def config_options[] = {
    /* ---- [dogslow]: dogslow's settings, then the daemon's own ---- */
    {"dogslow", "enabled", OPT_BOOL, OPT_RELOAD, OFF(enabled), 0, 0, "true", NULL, NULL, NULL, 0,
     NULL, "DOGSLOW",
     "Report undead requests at all. When false, processes still register but nothing is "
     "watched or reported."},
    {"dogslow", "timer", OPT_SECONDS, OPT_RELOAD, OFF(timer_ms), 1, SECS(86400), "25", NULL,
     NULL, NULL, 0, "timer", "DOGSLOW_TIMER",
     "Seconds a request may run before it is reported; fractions allowed (2.5). A new value "
     "applies to processes that did not ask for their own timer; requests already running "
     "keep their deadline."},
    {"dogslow", "timer_min", OPT_SECONDS, OPT_RELOAD, OFF(timer_min_ms), 1, SECS(86400), "0.1",
     NULL, NULL, NULL, 0, "timer-min", NULL,
     "Shortest timer a worker may ask for ($DOGSLOW_TIMER, dogslow_options.timer_ms); shorter "
     "ones are raised to it."},
    {"dogslow", "timer_max", OPT_SECONDS, OPT_RELOAD, OFF(timer_max_ms), 1, SECS(86400), "3600",
     NULL, NULL, NULL, 0, "timer-max", NULL,
     "Longest timer a worker may ask for; longer ones are lowered to it."},
    {"dogslow", "log_to_file", OPT_BOOL, OPT_RELOAD, OFF(log_to_file), 0, 0, "true", NULL, NULL,
     NULL, 0, NULL, "DOGSLOW_LOG_TO_FILE",
     "Write each report to a file in the output directory."},
    {"dogslow", "output", OPT_PATH, OPT_RELOAD, OFF(output_dir), 0, 0, "@/var/log/dogslow",
     "/var/log/dogslow as root or with CAP_SYS_PTRACE (the service), else $XDG_STATE_HOME/dogslow or "
     "~/.local/state/dogslow", NULL,
     NULL, 0, "output", "DOGSLOW_OUTPUT",
     "Directory for report files, named slow_request_<UTC time>_<pid>_<tid>.log so that ls "
     "sorts them by time. Created if missing (mode 0750, or 2750 with output_group)."},
    {"dogslow", "output_group", OPT_STRING, OPT_RELOAD, OFF(output_group), 0, 0, "", NULL, NULL,
     check_account_or_empty, 0, NULL, NULL,
     "Group given to a newly created output directory, so that its members can read the "
     "reports (files are 0640). Empty: the daemon's group."},
    {"dogslow", "json", OPT_BOOL, OPT_RELOAD, OFF(json), 0, 0, "false", NULL, NULL, NULL, 0, NULL,
     NULL,
     "Also write a JSON twin (same name, .json) of each report file, with the same content "
     "structured for machines."},
    {"dogslow", "report_max_bytes", OPT_SIZE, OPT_RELOAD, OFF(report_max_bytes), 4 * KIB, MIB,
     "1M", NULL, NULL, NULL, 0, NULL, NULL,
     "Largest report (text, and JSON twin); a longer one is cut and says so. Sizes take a K, M "
     "or G suffix."},
    {"dogslow", "retention_max_files", OPT_UINT, OPT_RELOAD, OFF(retention_max_files), 0,
     10000000, "1000", NULL, NULL, NULL, 0, NULL, NULL,
     "Keep at most this many reports in the output directory; the oldest are removed first. A "
     "report and its JSON twin count as one. 0: no limit."},
    {"dogslow", "retention_max_bytes", OPT_SIZE, OPT_RELOAD | OPT_U64, OFF(retention_max_bytes),
     0, 1024 * GIB, "100M", NULL, NULL, NULL, 0, NULL, NULL,
     "Keep at most this many bytes of reports in the output directory; the oldest are removed "
     "first. 0: no limit."},
    {"dogslow", "spool_max_bytes", OPT_SIZE, OPT_RELOAD | OPT_U64, OFF(spool_max_bytes), 0,
     64 * GIB, "64M", NULL, NULL, NULL, 0, NULL, NULL,
     "Cap of the delivery spool (.spool in the output directory), where e-mails and Sentry "
     "events wait until the server took them. A report that would pass it is dropped for "
     "e-mail and Sentry (still written to its file), counted and logged. 0: no limit."},
    {"dogslow", "stack_vars", OPT_BOOL, OPT_RELOAD, OFF(stack_vars), 0, 0, "false", NULL, NULL,
     NULL, 0, "stack-vars", "DOGSLOW_STACK_VARS",
     "Show each frame's local variables in reports. Values of well-known secret names "
     "(password, token, ...) are redacted."},
    {"dogslow", "redact", OPT_LIST, OPT_RELOAD, OFF(redact), 0, 0,
     "password, passwd, secret, token, api_key, apikey, authorization, cookie, session, csrf, "
     "private_key, credential",
     NULL, NULL, check_redact_word, 32, NULL, NULL,
     "Local variables and struct members whose name contains one of these words (any case) "
     "are shown as [redacted], and so is any value that looks like a payment card number."},
    {"dogslow", "max_value_bytes", OPT_SIZE, OPT_RELOAD, OFF(max_value_bytes), 16, 64 * KIB,
     "2K", NULL, NULL, NULL, 0, NULL, NULL,
     "Bytes shown of one local variable's value (C and Python); longer values are cut. "
     "The default keeps a typical SQL statement whole."},
    {"dogslow", "max_frames", OPT_UINT, OPT_RELOAD, OFF(max_frames), 1, DSL_FRAMES_MAX, "128",
     NULL, NULL, NULL, 0, NULL, NULL, "Frames shown per stack, innermost first."},
    {"dogslow", "max_stack_bytes", OPT_SIZE, OPT_RELOAD, OFF(max_stack_bytes), 4 * KIB, 64 * MIB,
     "1M", NULL, NULL, NULL, 0, NULL, NULL,
     "Bytes of a thread's stack copied per snapshot (while the thread is held)."},
    {"dogslow", "follow_hz", OPT_UINT, OPT_RELOAD, OFF(follow_hz), 0, 1000, "4", NULL, NULL,
     NULL, 0, "follow", NULL,
     "After a report, sample the request this many times a second until it ends, and add "
     "what it did meanwhile to the report. 0: off."},
    {"dogslow", "follow_max_time", OPT_SECONDS, OPT_RELOAD, OFF(follow_max_ms), 1, SECS(86400),
     "300", NULL, NULL, NULL, 0, "follow-max-time", NULL,
     "Stop following a request after this long."},
    {"dogslow", "follow_max", OPT_UINT, OPT_RELOAD, OFF(follow_max), 0, 4096, "8", NULL, NULL,
     NULL, 0, NULL, NULL, "Requests followed at once; more are reported but not followed."},
    {"dogslow", "follow_notify", OPT_BOOL, OPT_RELOAD, OFF(follow_notify), 0, 0, "false", NULL,
     NULL, NULL, 0, NULL, NULL,
     "When a followed request ends, also send its follow-up by e-mail (a mail of its own) and "
     "to Sentry (an info event), where those are configured. Syslog always gets a line."},
    {"dogslow", "follow_svg", OPT_BOOL, OPT_RELOAD, OFF(follow_svg), 0, 0, "true", NULL, NULL,
     NULL, 0, NULL, NULL,
     "When a followed request ends, also write an SVG flame graph of its samples beside the "
     "report (same name, .svg)."},
    {"dogslow", "ignore_urls", OPT_LIST, OPT_RELOAD, OFF(ignore_urls), 0, 0, "", NULL, NULL,
     check_pattern, IGNORE_PATTERNS_MAX, NULL, "DOGSLOW_IGNORE_URLS",
     "Requests whose path (the URL up to '?' or '#') matches one of these patterns are not "
     "watched: * matches any characters (/ included), ? one character, [a-z] or [!a-z] one "
     "of a set. Example: /health*, /static/*. A worker can add its own "
     "($DOGSLOW_IGNORE_URLS)."},
    {"dogslow", "email_to", OPT_LIST, OPT_RELOAD, OFF(email_to), 0, 0, "", NULL, NULL,
     check_email, 16, NULL, "DOGSLOW_EMAIL_TO",
     "Send each report to these addresses (one or several, comma-separated), through the "
     "[email] server. Empty: no e-mail."},
    {"dogslow", "email_from", OPT_STRING, OPT_RELOAD, OFF(email_from), 0, 0, "",
     "dogslow@<host name>", NULL, check_email_or_empty, 0, NULL, "DOGSLOW_EMAIL_FROM",
     "Sender address of report e-mails. Empty: dogslow@ and the host name."},
    {"dogslow", "socket", OPT_PATH, 0, OFF(socket_path), 0, 0, "@" DOGSLOW_DEFAULT_SOCKET,
     "/run/dogslow/dogslow.sock as root or with CAP_SYS_PTRACE (the service), else "
     "$XDG_RUNTIME_DIR/dogslow/dogslow.sock", NULL,
     NULL, 0, "socket", NULL,
     "Unix socket workers register on and dogslowctl talks to ($DOGSLOW_SOCKET overrides the "
     "default). Registrations are kept in workers/ next to it, for a restarted daemon."},
    {"dogslow", "socket_mode", OPT_MODE, 0, OFF(socket_mode), 0, 0777, "0666", NULL, NULL, NULL,
     0, NULL, NULL,
     "Permissions of the socket. Any local user may register a process (it can only get "
     "itself traced); dogslowctl is checked separately."},
    {"dogslow", "socket_group", OPT_STRING, 0, OFF(socket_group), 0, 0, "", NULL, NULL,
     check_account_or_empty, 0, NULL, NULL,
     "Group of the socket. Root, the daemon's user and members of this group may use "
     "dogslowctl. Empty: the daemon's group."},
    {"dogslow", "user", OPT_STRING, 0, OFF(user), 0, 0, "",
     "dogslow if that user exists, else root (with a warning)", NULL, check_account_or_empty, 0,
     "user", NULL,
     "User to run as when started as root: the daemon switches to it once its socket listens, "
     "keeping only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH. root: stay root. Not used when "
     "started as another user (the service starts it as dogslow)."},
    {"dogslow", "group", OPT_STRING, 0, OFF(group), 0, 0, "", "the user's primary group", NULL,
     check_account_or_empty, 0, "group", NULL,
     "Group to run as with user. Empty: the user's primary group."},
    {"dogslow", "dac_read_search", OPT_BOOL, 0, OFF(dac_read_search), 0, 0, "true", NULL, NULL,
     NULL, 0, NULL, NULL,
     "Keep CAP_DAC_READ_SEARCH besides CAP_SYS_PTRACE (when it has them). It reads the syscall "
     "file of another user's thread blocked in epoll_wait, so that its stack is read without "
     "stopping it, lists a worker's descriptors to take it over after a restart, and opens "
     "binaries that are not world-readable. false: exactly CAP_SYS_PTRACE; such threads are "
     "left alone (their reports have no native stack) and workers re-register after a "
     "restart."},
    {"dogslow", "seccomp", OPT_BOOL, 0, OFF(seccomp), 0, 0, "true", NULL, NULL, NULL, 0,
     NULL, NULL,
     "Once set up, confine the daemon with a seccomp filter: no programs run, no writes into "
     "other processes, no files opened by handle, no listening sockets, only read-only ptrace "
     "requests. A denied call fails with EPERM and is logged. false: only to run the daemon "
     "under valgrind, or to find out whether the filter is in the way."},
    {"dogslow", "privsep", OPT_BOOL, 0, OFF(privsep), 0, 0, "true", NULL, NULL, NULL, 0, NULL,
     NULL,
     "Unwind and name the frames of snapshots in a separate process that holds no capability, "
     "opens no file (the daemon hands it the worker's files after checking that the worker maps "
     "them) and, with seccomp, runs under a filter of its own: a bug in the ELF and DWARF "
     "parsers then cannot reach the daemon's privileges. false: name them in the daemon."},
    {"dogslow", "allowed_users", OPT_LIST, OPT_RELOAD, OFF(allowed_users), 0, 0, "", NULL, NULL,
     check_account, DSL_CFG_IDS_MAX, NULL, NULL,
     "Only processes of these users (names or uids) may register. Empty, with allowed_groups "
     "empty too: any user."},
    {"dogslow", "allowed_groups", OPT_LIST, OPT_RELOAD, OFF(allowed_groups), 0, 0, "", NULL,
     NULL, check_account, DSL_CFG_IDS_MAX, NULL, NULL,
     "Only processes running with one of these groups (primary or supplementary) may "
     "register, besides allowed_users."},
    {"dogslow", "max_workers", OPT_UINT, OPT_RELOAD, OFF(max_workers), 1, 1000000, "4096", NULL,
     NULL, NULL, 0, "max-workers", NULL, "Registered processes at once; more are refused."},
    {"dogslow", "max_workers_per_uid", OPT_UINT, OPT_RELOAD, OFF(max_workers_per_uid), 1, 1000000,
     "1024", NULL, NULL, NULL, 0, NULL, NULL,
     "Registered processes of one user (uid) at once; more of that user's are refused, other "
     "users' are not. max_workers applies too."},
    {"dogslow", "max_connections", OPT_UINT, OPT_RELOAD, OFF(max_connections), 1, 1000000, "4096",
     NULL, NULL, NULL, 0, NULL, NULL,
     "Connections that have not registered yet (a worker before its hello, dogslowctl before its "
     "command), all users together; more are closed at once. Registered processes do not count "
     "here (max_workers)."},
    {"dogslow", "max_connections_per_uid", OPT_UINT, OPT_RELOAD, OFF(max_connections_per_uid), 1,
     1000000, "256", NULL, NULL, NULL, 0, NULL, NULL,
     "Connections of one user (uid) that have not registered yet; more of that user's are closed "
     "at once, and other users can still connect. Must be smaller than max_connections, so that "
     "one user cannot take them all."},
    {"dogslow", "scan_interval", OPT_SECONDS, OPT_RELOAD, OFF(scan_ms), 10, SECS(1), "0.05",
     NULL, NULL, NULL, 0, NULL, NULL,
     "How often scoreboards are scanned for requests that began. Reports fire at the "
     "deadline itself, not at the next scan."},
    {"dogslow", "hello_timeout", OPT_SECONDS, OPT_RELOAD, OFF(hello_timeout_ms), 100, SECS(60),
     "5", NULL, NULL, NULL, 0, NULL, NULL,
     "A connection that has not registered (or sent a command) within this time is closed."},

    /* ---- [email]: the e-mail sink (sink_email.c, delivery.c) ---- */
    {"email", "host", OPT_STRING, OPT_RELOAD, OFF(email.host), 0, 0, "localhost", NULL, NULL,
     check_host, 0, NULL, NULL, "SMTP server for report e-mails."},
    {"email", "port", OPT_UINT, OPT_RELOAD, OFF(email.port), 1, 65535, "25", NULL, NULL, NULL,
     0, NULL, NULL, "SMTP port (25; 587 for message submission)."},
    {"email", "starttls", OPT_ENUM, OPT_RELOAD, OFF(email.starttls), 0, 0, "optional", NULL,
     starttls_choices, NULL, 0, NULL, NULL,
     "required: never send without TLS; optional: use STARTTLS when offered; off: never."},
    {"email", "ca_file", OPT_PATH, OPT_RELOAD, OFF(email.ca_file), 0, 0, "", NULL, NULL, NULL, 0,
     NULL, NULL,
     "CA certificates (PEM) to check the server with. Empty: the system's."},
    {"email", "user", OPT_STRING, OPT_RELOAD, OFF(email.user), 0, 0, "", NULL, NULL, NULL, 0,
     NULL, NULL, "SMTP AUTH user name. Empty: no authentication."},
    {"email", "password_file", OPT_PATH, OPT_RELOAD, OFF(email.password_file), 0, 0, "", NULL,
     NULL, NULL, 0, NULL, NULL,
     "File holding the SMTP password (first line), so the password is not in this file. "
     "Needed with user; refused when it is missing, empty or others may read it (dogslowd -n "
     "checks it)."},
    {"email", "window", OPT_SECONDS, OPT_RELOAD, OFF(email.window_ms), 0, SECS(86400), "300",
     NULL, NULL, NULL, 0, NULL, NULL,
     "Storm control: one mail per kind of stuck request (method, route and top frames) per "
     "window; the reports that follow within it go out as one digest when it ends. 0: a mail "
     "for every report."},

    /* ---- [syslog] ---- */
    {"syslog", "enabled", OPT_BOOL, OPT_RELOAD, OFF(syslog.enabled), 0, 0, "false", NULL, NULL,
     NULL, 0, NULL, "DOGSLOW_LOGGER",
     "Log one line per undead request (method, URL, pid, tid, elapsed time, top frame, report "
     "file) to syslog."},
    {"syslog", "facility", OPT_ENUM, OPT_RELOAD, OFF(syslog.facility), 0, 0, "daemon", NULL,
     facility_choices, NULL, 0, NULL, NULL,
     "Syslog facility: daemon, user, local0 ... local7, mail, auth, authpriv, syslog, cron or "
     "kern."},
    {"syslog", "level", OPT_ENUM, OPT_RELOAD, OFF(syslog.level), 0, 0, "warning", NULL,
     level_choices, NULL, 0, NULL, "DOGSLOW_LOG_LEVEL",
     "Syslog level: emerg, alert, crit, err, warning, notice, info or debug (Python's "
     "critical, error and warn are understood too)."},
    {"syslog", "socket", OPT_PATH, OPT_RELOAD, OFF(syslog.socket), 0, 0, "/dev/log", NULL, NULL,
     NULL, 0, NULL, NULL, "The local syslog socket (datagram, or stream)."},
    {"syslog", "journal", OPT_ENUM, OPT_RELOAD, OFF(syslog.journal), 0, 0, "auto", NULL,
     journal_choices, NULL, 0, NULL, NULL,
     "With libsystemd: send journald a structured entry (DOGSLOW_URL=, DOGSLOW_PID=, ... and "
     "the whole report as MESSAGE) instead of the syslog line. auto: when running under "
     "systemd ($JOURNAL_STREAM set); yes: whenever /run/systemd/journal/socket exists; no: "
     "never."},

    /* ---- [sentry] ---- */
    {"sentry", "dsn", OPT_STRING, OPT_RELOAD | OPT_SECRET, OFF(sentry.dsn), 0, 0, "", NULL, NULL,
     check_dsn, 0, NULL, "DOGSLOW_LOG_TO_SENTRY",
     "Sentry DSN (https://KEY@HOST/PROJECT_ID); reports go to Sentry when set, one event "
     "each."},
};

const size_t config_noptions = ARRAY_SIZE(config_options);

static const char *const sections[] = {"dogslow", "email", "syslog", "sentry"};

/* ---- lookup ------------------------------------------------------------- */

const struct opt_def *config_find(const char *name)
{
    const char *dot = strchr(name, '.');
    size_t slen = dot ? (size_t)(dot - name) : 0;
    const char *key = dot ? dot + 1 : name;

    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        if (strcmp(o->name, key) != 0)
            continue;
        if (dot ? (strlen(o->section) == slen && !strncmp(o->section, name, slen))
                : !strcmp(o->section, "dogslow"))
            return o;
    }
    return NULL;
}

const struct opt_def *config_find_cli(const char *cli)
{
    for (size_t i = 0; i < config_noptions; i++)
        if (config_options[i].cli && !strcmp(config_options[i].cli, cli))
            return &config_options[i];
    return NULL;
}

/* How an option is named in messages: "timer", "email.port". */
static void display_name(const struct opt_def *o, char *buf, size_t size)
{
    if (!strcmp(o->section, "dogslow"))
        snprintf(buf, size, "%s", o->name);
    else
        snprintf(buf, size, "%s.%s", o->section, o->name);
}

const char *config_choice_name(const struct opt_def *o, int value)
{
    for (const struct opt_choice *c = o->choices; c && c->name; c++)
        if (c->value == value)
            return c->name;
    return "?";
}

/* ---- value parsers ------------------------------------------------------ */

static int parse_u64(const char *v, uint64_t *ret, const char **ret_end)
{
    uint64_t x = 0;
    const char *p = v;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *ret = x;
    *ret_end = p;
    return 0;
}

static void fmt_seconds(uint64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%llu", (unsigned long long)(ms / 1000));
    else if (ms % 100 == 0)
        snprintf(buf, size, "%llu.%01llu", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000 / 100));
    else if (ms % 10 == 0)
        snprintf(buf, size, "%llu.%02llu", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000 / 10));
    else
        snprintf(buf, size, "%llu.%03llu", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000));
}

static void fmt_size(uint64_t v, char *buf, size_t size)
{
    if (v && v % GIB == 0)
        snprintf(buf, size, "%lluG", (unsigned long long)(v / GIB));
    else if (v && v % MIB == 0)
        snprintf(buf, size, "%lluM", (unsigned long long)(v / MIB));
    else if (v && v % KIB == 0)
        snprintf(buf, size, "%lluK", (unsigned long long)(v / KIB));
    else
        snprintf(buf, size, "%llu", (unsigned long long)v);
}

static void fmt_bound(const struct opt_def *o, uint64_t v, char *buf, size_t size)
{
    if (o->type == OPT_SECONDS) {
        fmt_seconds(v, buf, size);
        snprintf(buf + strlen(buf), size - strlen(buf), " s");
    } else if (o->type == OPT_SIZE) {
        fmt_size(v, buf, size);
    } else {
        snprintf(buf, size, "%llu", (unsigned long long)v);
    }
}

static int out_of_range(const struct opt_def *o, const char *v, char *why, size_t size)
{
    char lo[32], hi[32];

    fmt_bound(o, o->min, lo, sizeof(lo));
    fmt_bound(o, o->max, hi, sizeof(hi));
    snprintf(why, size, "%s is out of range (%s to %s)", v, lo, hi);
    return -ERANGE;
}

/* Split a list, trim each item, drop empty ones (a continuation line may
 * leave a trailing comma), check each, and join them as "a, b, c". */
static int set_list(const struct opt_def *o, char *dst, const char *v, char *why, size_t size)
{
    char out[DSL_CFG_LIST_MAX * 2];
    size_t olen = 0;
    unsigned items = 0;
    const char *p = v;

    out[0] = '\0';
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        char item[ITEM_MAX + 1];
        size_t n;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        n = (size_t)(end - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > ITEM_MAX) {
            snprintf(why, size, "an item is longer than %d bytes", ITEM_MAX);
            return -EINVAL;
        }
        if (n) {
            memcpy(item, p, n);
            item[n] = '\0';
            if (!is_printable(item) || strpbrk(item, " \t")) {
                snprintf(why, size, "'%.64s' holds a space or an unprintable character", item);
                return -EINVAL;
            }
            if (o->check && o->check(item, why, size) < 0)
                return -EINVAL;
            if (++items > o->max_items) {
                snprintf(why, size, "more than %u items", o->max_items);
                return -EINVAL;
            }
            if (olen + n + 3 > sizeof(out) || olen + n + 3 > o->size) {
                snprintf(why, size, "the list is longer than %zu bytes", o->size - 1);
                return -EINVAL;
            }
            if (olen) {
                memcpy(out + olen, ", ", 2);
                olen += 2;
            }
            memcpy(out + olen, item, n);
            olen += n;
            out[olen] = '\0';
        }
        p = comma ? comma + 1 : end;
    }
    dsl_strlcpy(dst, out, o->size);
    return 0;
}

int config_set(struct config *c, const struct opt_def *o, const char *v, char *why, size_t size)
{
    char *field = (char *)c + o->off;
    uint64_t x = 0;
    const char *end;
    int r;

    switch (o->type) {
    case OPT_BOOL: {
        bool b;
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
            !strcmp(v, "1"))
            b = true;
        else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
                 !strcmp(v, "0"))
            b = false;
        else {
            snprintf(why, size, "'%.64s' is not a boolean (true or false)", v);
            return -EINVAL;
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case OPT_SECONDS: {
        uint32_t ms;
        r = dsl_parse_seconds_ms(v, &ms);
        if (r == -ERANGE)
            return out_of_range(o, v, why, size);
        if (r < 0) {
            snprintf(why, size, "'%.64s' is not a number of seconds (like 25 or 0.5)", v);
            return -EINVAL;
        }
        if (ms < o->min || ms > o->max)
            return out_of_range(o, v, why, size);
        memcpy(field, &ms, sizeof(ms));
        return 0;
    }
    case OPT_UINT:
    case OPT_SIZE:
        r = parse_u64(v, &x, &end);
        if (r == -ERANGE)
            return out_of_range(o, v, why, size);
        if (r == 0 && o->type == OPT_SIZE && *end) {
            uint64_t mul = 0;
            switch (*end) {
            case 'k': case 'K': mul = KIB; break;
            case 'm': case 'M': mul = MIB; break;
            case 'g': case 'G': mul = GIB; break;
            }
            if (mul && (end[1] == '\0' || !strcasecmp(end + 1, "iB") || !strcasecmp(end + 1, "B"))) {
                if (x > UINT64_MAX / mul)
                    return out_of_range(o, v, why, size);
                x *= mul;
                end = "";
            }
        }
        if (r < 0 || *end) {
            snprintf(why, size, o->type == OPT_SIZE ? "'%.64s' is not a size (like 4096, 64K or 1M)"
                                                    : "'%.64s' is not a whole number",
                     v);
            return -EINVAL;
        }
        if (x < o->min || x > o->max)
            return out_of_range(o, v, why, size);
        if (o->flags & OPT_U64) {
            memcpy(field, &x, sizeof(x));
        } else {
            uint32_t y = (uint32_t)x;
            memcpy(field, &y, sizeof(y));
        }
        return 0;
    case OPT_MODE:
        if (!*v || strlen(v) > 5 || strspn(v, "01234567") != strlen(v)) {
            snprintf(why, size, "'%.64s' is not an octal mode (like 0660)", v);
            return -EINVAL;
        }
        x = strtoul(v, NULL, 8);
        if (x > o->max)
            return out_of_range(o, v, why, size);
        {
            uint32_t y = (uint32_t)x;
            memcpy(field, &y, sizeof(y));
        }
        return 0;
    case OPT_ENUM:
        for (const struct opt_choice *ch = o->choices; ch->name; ch++) {
            if (!strcasecmp(ch->name, v)) {
                memcpy(field, &ch->value, sizeof(int));
                return 0;
            }
        }
        {
            char list[256];
            size_t n = 0;
            list[0] = '\0';
            for (const struct opt_choice *ch = o->choices; ch->name && n < sizeof(list); ch++) {
                /* Aliases (a value seen before) are not offered. */
                bool alias = false;
                for (const struct opt_choice *p = o->choices; p < ch; p++)
                    alias |= p->value == ch->value;
                if (!alias)
                    n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
                                          ch->name);
            }
            snprintf(why, size, "'%.64s' is not one of: %s", v, list);
        }
        return -EINVAL;
    case OPT_STRING:
    case OPT_PATH:
        if (strlen(v) >= o->size) {
            snprintf(why, size, "longer than %zu bytes", o->size - 1);
            return -EINVAL;
        }
        if (!is_printable(v)) {
            snprintf(why, size, "holds an unprintable character");
            return -EINVAL;
        }
        if (o->type == OPT_PATH && v[0] && v[0] != '/') {
            snprintf(why, size, "'%.64s' is not an absolute path", v);
            return -EINVAL;
        }
        if (o->type == OPT_PATH && !v[0] && o->def[0]) {
            snprintf(why, size, "a path is needed");
            return -EINVAL;
        }
        if (o->check && o->check(v, why, size) < 0)
            return -EINVAL;
        dsl_strlcpy(field, v, o->size);
        return 0;
    case OPT_LIST:
        return set_list(o, field, v, why, size);
    }
    snprintf(why, size, "internal error: unknown type");
    return -EINVAL;
}

void config_format(const struct config *c, const struct opt_def *o, char *buf, size_t size)
{
    const char *field = (const char *)c + o->off;
    uint32_t u32;
    uint64_t u64;
    bool b;
    int e;

    switch (o->type) {
    case OPT_BOOL:
        memcpy(&b, field, sizeof(b));
        snprintf(buf, size, "%s", b ? "true" : "false");
        return;
    case OPT_SECONDS:
        memcpy(&u32, field, sizeof(u32));
        fmt_seconds(u32, buf, size);
        return;
    case OPT_UINT:
        memcpy(&u32, field, sizeof(u32));
        snprintf(buf, size, "%u", u32);
        return;
    case OPT_SIZE:
        if (o->flags & OPT_U64) {
            memcpy(&u64, field, sizeof(u64));
        } else {
            memcpy(&u32, field, sizeof(u32));
            u64 = u32;
        }
        fmt_size(u64, buf, size);
        return;
    case OPT_MODE:
        memcpy(&u32, field, sizeof(u32));
        snprintf(buf, size, "%04o", u32);
        return;
    case OPT_ENUM:
        memcpy(&e, field, sizeof(e));
        snprintf(buf, size, "%s", config_choice_name(o, e));
        return;
    case OPT_STRING:
    case OPT_PATH:
    case OPT_LIST:
        snprintf(buf, size, "%s", field);
        return;
    }
    buf[0] = '\0';
}

/* ---- defaults ----------------------------------------------------------- */

/*
 * A daemon for the whole machine: root, or holding CAP_SYS_PTRACE (the
 * service runs as dogslow with it).  It takes the system's paths; a daemon
 * an ordinary user starts for their own workers takes theirs.
 */
static bool system_instance(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];

    if (geteuid() == 0)
        return true;
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &h, data) < 0)
        return false;
    return (data[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32))) != 0;
}

/* The defaults marked "@": they depend on who runs the daemon. */
static void computed_default(const struct opt_def *o, char *buf, size_t size)
{
    bool system = system_instance();

    if (o->off == offsetof(struct config, socket_path)) {
        if (dsl_socket_path_candidate(system ? 0 : 1, buf, size) < 0)
            snprintf(buf, size, "%s", DOGSLOW_DEFAULT_SOCKET);
        return;
    }
    /* The output directory. */
    if (system) {
        snprintf(buf, size, "/var/log/dogslow");
    } else {
        const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (state && state[0] == '/' && strlen(state) < PATH_MAX - 16)
            snprintf(buf, size, "%s/dogslow", state);
        else if (home && home[0] == '/' && strlen(home) < PATH_MAX - 32)
            snprintf(buf, size, "%s/.local/state/dogslow", home);
        else
            snprintf(buf, size, "/tmp/dogslow-%u/reports", (unsigned)getuid());
    }
}

static void state_dir_from_socket(struct config *c)
{
    const char *slash = strrchr(c->socket_path, '/');
    int len = slash ? (int)(slash - c->socket_path) : 0;

    c->state_dir[0] = '\0';
    if (len > 0)
        snprintf(c->state_dir, sizeof(c->state_dir), "%.*s/workers", len, c->socket_path);
}

void config_defaults(struct config *c)
{
    char why[256], buf[PATH_MAX];

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        const char *v = o->def;

        if (v[0] == '@') {
            computed_default(o, buf, sizeof(buf));
            v = buf;
        }
        /* The table's own defaults are checked by the unit tests. */
        if (config_set(c, o, v, why, sizeof(why)) < 0)
            fatalx("built-in default of %s is bad: %s", o->name, why);
    }
    c->socket_gid = c->output_gid = (gid_t)-1;
    state_dir_from_socket(c);
}

/* ---- loading ------------------------------------------------------------ */

struct load {
    const char *path;
    FILE *f;
    unsigned line;         /* of the line inih is handling */
    bool continuation;     /* that line is indented: a continuation */
    bool too_long;
    struct config *c;
    unsigned set_line[64]; /* per option: where it was set (0: not in the file) */
    const char *set_origin[64];
    const struct opt_def *last; /* the option of the previous key line */
    char acc[DSL_CFG_LIST_MAX * 2]; /* a list's value so far, across continuation lines */
    int (*check_password_file)(const char *path, char *why, size_t size);
    char *err;
    size_t errsize, errlen;
    unsigned nerr;
    /* Where each error line is in err, and the file line it is about:
     * errors are found out of order (inih says which line had the first
     * syntax error only at the end, the rules between options are checked
     * last), and are put in line order before they are returned. */
    struct errpos {
        unsigned key; /* the file line; 0: the file itself; UINT_MAX: not in the file */
        size_t off, len;
    } errpos[ERRORS_SORTED_MAX];
    unsigned nerrpos;
};

_Static_assert(ARRAY_SIZE(config_options) <= 64, "grow struct load's per-option arrays");

static void __attribute__((format(printf, 4, 5)))
add_error(struct load *L, unsigned line, const char *origin, const char *fmt, ...)
{
    char msg[ERRLINE_MAX];
    size_t room, len;
    va_list ap;
    int n;

    L->nerr++;
    if (!L->err || L->errsize == 0)
        return;
    room = L->errsize - L->errlen;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (origin)
        n = snprintf(L->err + L->errlen, room, "%s: %s\n", origin, msg);
    else if (line)
        n = snprintf(L->err + L->errlen, room, "%s:%u: %s\n", L->path, line, msg);
    else
        n = snprintf(L->err + L->errlen, room, "%s: %s\n", L->path ? L->path : "built-in defaults",
                     msg);
    if (n <= 0)
        return;
    len = (size_t)n < room ? (size_t)n : room - 1;
    if (L->nerrpos < ARRAY_SIZE(L->errpos))
        L->errpos[L->nerrpos++] = (struct errpos){origin ? UINT_MAX : line, L->errlen, len};
    L->errlen += len;
}

/* Put the error lines in file-line order: the file's own errors first,
 * then by line, then those of the command line and the built-in defaults,
 * each group in the order found.  Lines past ERRORS_SORTED_MAX stay last. */
static void sort_errors(struct load *L)
{
    struct errpos *e = L->errpos;
    size_t done, out = 0;
    char *copy;

    if (L->nerrpos < 2)
        return;
    copy = malloc(L->errlen);
    if (!copy)
        return; /* unsorted, but complete */
    memcpy(copy, L->err, L->errlen);
    done = e[L->nerrpos - 1].off + e[L->nerrpos - 1].len;
    /* Insertion sort: stable, and there are few. */
    for (unsigned i = 1; i < L->nerrpos; i++) {
        struct errpos x = e[i];
        unsigned j = i;

        for (; j > 0 && e[j - 1].key > x.key; j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
    for (unsigned i = 0; i < L->nerrpos; i++) {
        memcpy(L->err + out, copy + e[i].off, e[i].len);
        e[i].off = out;
        out += e[i].len;
    }
    memcpy(L->err + out, copy + done, L->errlen - done);
    free(copy);
}

static size_t opt_index(const struct opt_def *o)
{
    return (size_t)(o - config_options);
}

/* Was o given in the file or on the command line? */
static bool opt_was_set(const struct load *L, const struct opt_def *o)
{
    size_t i = opt_index(o);

    return L->set_origin[i] || L->set_line[i];
}

/* An error about option o, located where o was set. */
static void __attribute__((format(printf, 3, 4)))
opt_error(struct load *L, const struct opt_def *o, const char *fmt, ...)
{
    char msg[ERRLINE_MAX - 64], name[64];
    size_t i = opt_index(o);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    display_name(o, name, sizeof(name));
    if (L->set_origin[i])
        add_error(L, 0, L->set_origin[i], "%s: %s", name, msg);
    else if (L->set_line[i])
        add_error(L, L->set_line[i], NULL, "%s: %s", name, msg);
    else
        add_error(L, 0, "built-in default", "%s: %s", name, msg);
}

/* fgets for inih that counts lines and notices continuation and over-long
 * lines (inih would silently split them). */
static char *reader(char *str, int num, void *stream)
{
    struct load *L = stream;
    size_t n;

    if (!fgets(str, num, L->f))
        return NULL;
    L->line++;
    n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(L->f)) {
        int ch;
        add_error(L, L->line, NULL, "line longer than %d bytes", num - 2);
        while ((ch = fgetc(L->f)) != EOF && ch != '\n')
            ;
        str[0] = '\n';
        str[1] = '\0';
        L->too_long = true;
        return str;
    }
    L->continuation = (str[0] == ' ' || str[0] == '\t') && strspn(str, " \t\r\n") != n &&
                      str[strspn(str, " \t")] != ';' && str[strspn(str, " \t")] != '#';
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct load *L = user;
    const struct opt_def *o = NULL;
    char why[ERRLINE_MAX - 128], dname[64];
    size_t i;

    /* inih hands a continuation line over with the previous key's name;
     * an indented line right after a section header is a key of its own. */
    if (L->continuation && L->last && !strcmp(L->last->name, name) &&
        !strcmp(L->last->section, section)) {
        o = L->last;
        display_name(o, dname, sizeof(dname));
        if (o->type != OPT_LIST) {
            add_error(L, L->line, NULL, "%s: only lists may continue on the next line", dname);
            return 1;
        }
        if (strlen(L->acc) + strlen(value) + 2 > sizeof(L->acc)) {
            add_error(L, L->line, NULL, "%s: the list is too long", dname);
            return 1;
        }
        snprintf(L->acc + strlen(L->acc), sizeof(L->acc) - strlen(L->acc), ",%s", value);
        if (config_set(L->c, o, L->acc, why, sizeof(why)) < 0)
            add_error(L, L->line, NULL, "%s: %s", dname, why);
        return 1;
    }
    L->last = NULL;
    if (!section[0]) {
        add_error(L, L->line, NULL, "%s: not in a section (put it under [dogslow])", name);
        return 1;
    }
    bool known_section = false;
    for (size_t k = 0; k < ARRAY_SIZE(sections); k++)
        known_section |= !strcmp(sections[k], section);
    if (!known_section) {
        add_error(L, L->line, NULL, "%s: unknown section [%s]", name, section);
        return 1;
    }
    for (i = 0; i < config_noptions; i++) {
        if (!strcmp(config_options[i].section, section) && !strcmp(config_options[i].name, name)) {
            o = &config_options[i];
            break;
        }
    }
    if (!o) {
        add_error(L, L->line, NULL, "%s: unknown key in [%s]", name, section);
        return 1;
    }
    display_name(o, dname, sizeof(dname));
    if (L->set_line[i]) {
        add_error(L, L->line, NULL, "%s: given twice (first on line %u)", dname, L->set_line[i]);
        return 1;
    }
    L->set_line[i] = L->line;
    L->last = o;
    dsl_strlcpy(L->acc, value, sizeof(L->acc));
    if (config_set(L->c, o, value, why, sizeof(why)) < 0)
        add_error(L, L->line, NULL, "%s: %s", dname, why);
    return 1;
}

static int resolve_group(const char *name, gid_t *ret)
{
    char buf[16384];
    struct group gr, *res = NULL;
    const char *end;
    uint64_t x;

    if (parse_u64(name, &x, &end) == 0 && !*end) {
        if (x >= (gid_t)-1)
            return -ERANGE;
        *ret = (gid_t)x;
        return 0;
    }
    if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    *ret = res->gr_gid;
    return 0;
}

static int resolve_user(const char *name, uid_t *ret)
{
    char buf[16384];
    struct passwd pw, *res = NULL;
    const char *end;
    uint64_t x;

    if (parse_u64(name, &x, &end) == 0 && !*end) {
        if (x >= (uid_t)-1)
            return -ERANGE;
        *ret = (uid_t)x;
        return 0;
    }
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    *ret = res->pw_uid;
    return 0;
}

/* Call fn on each item of a normalized list ("a, b"). */
static void for_items(const char *list, void (*fn)(struct load *, const char *, void *),
                      struct load *L, void *arg)
{
    const char *p = list;

    while (*p) {
        char item[ITEM_MAX + 1];
        size_t n = strcspn(p, ",");

        if (n > ITEM_MAX)
            n = ITEM_MAX;
        memcpy(item, p, n);
        item[n] = '\0';
        fn(L, item, arg);
        p += strcspn(p, ",");
        while (*p == ',' || *p == ' ')
            p++;
    }
}

static void add_user(struct load *L, const char *item, void *arg)
{
    const struct opt_def *o = arg;
    uid_t uid;

    if (resolve_user(item, &uid) < 0)
        opt_error(L, o, "unknown user '%s'", item);
    else if (L->c->n_allowed_uids < DSL_CFG_IDS_MAX)
        L->c->allowed_uids[L->c->n_allowed_uids++] = uid;
}

static void add_group(struct load *L, const char *item, void *arg)
{
    const struct opt_def *o = arg;
    gid_t gid;

    if (resolve_group(item, &gid) < 0)
        opt_error(L, o, "unknown group '%s'", item);
    else if (L->c->n_allowed_gids < DSL_CFG_IDS_MAX)
        L->c->allowed_gids[L->c->n_allowed_gids++] = gid;
}

/* The rules between options, and names resolved to ids. */
static void finish(struct load *L)
{
    struct config *c = L->c;
    char a[32], b[32];

    if (c->timer_min_ms > c->timer_max_ms) {
        fmt_seconds(c->timer_max_ms, b, sizeof(b));
        opt_error(L, config_find("timer_min"), "larger than timer_max (%s s)", b);
    }
    if (c->timer_ms < c->timer_min_ms || c->timer_ms > c->timer_max_ms) {
        fmt_seconds(c->timer_min_ms, a, sizeof(a));
        fmt_seconds(c->timer_max_ms, b, sizeof(b));
        opt_error(L, config_find("timer"), "must lie within timer_min and timer_max (%s to %s s)",
                  a, b);
    }
    if (c->retention_max_bytes && c->retention_max_bytes < c->report_max_bytes) {
        fmt_size(c->report_max_bytes, a, sizeof(a));
        opt_error(L, config_find("retention_max_bytes"),
                  "smaller than report_max_bytes (%s): a report would not fit", a);
    }
    /* One user's half-open connections must leave room for everyone
     * else's: that is what the per-user cap is for. */
    if (c->max_connections_per_uid >= c->max_connections) {
        const struct opt_def *per = config_find("max_connections_per_uid");
        const struct opt_def *all = config_find("max_connections");

        /* Named where the operator wrote it: the one given, not a default. */
        if (!opt_was_set(L, per) && opt_was_set(L, all))
            opt_error(L, all,
                      "must be larger than max_connections_per_uid (%u), so that one user cannot "
                      "take every connection",
                      c->max_connections_per_uid);
        else
            opt_error(L, per,
                      "must be smaller than max_connections (%u), so that one user cannot take "
                      "every connection",
                      c->max_connections);
    }
    if (c->email.user[0] && !c->email.password_file[0])
        opt_error(L, config_find("email.user"), "needs email.password_file too");
    if (c->email.password_file[0] && L->check_password_file) {
        char why[ERRLINE_MAX - 128];

        if (L->check_password_file(c->email.password_file, why, sizeof(why)) < 0)
            opt_error(L, config_find("email.password_file"), "%s", why);
    }
    if (c->socket_group[0] && resolve_group(c->socket_group, &c->socket_gid) < 0)
        opt_error(L, config_find("socket_group"), "unknown group '%s'", c->socket_group);
    if (c->user[0]) {
        uid_t uid;
        if (resolve_user(c->user, &uid) < 0)
            opt_error(L, config_find("user"), "unknown user '%s'", c->user);
    }
    if (c->group[0]) {
        gid_t gid;
        if (resolve_group(c->group, &gid) < 0)
            opt_error(L, config_find("group"), "unknown group '%s'", c->group);
    }
    if (c->output_group[0] && resolve_group(c->output_group, &c->output_gid) < 0)
        opt_error(L, config_find("output_group"), "unknown group '%s'", c->output_group);
    c->n_allowed_uids = c->n_allowed_gids = 0;
    for_items(c->allowed_users, add_user, L, (void *)config_find("allowed_users"));
    for_items(c->allowed_groups, add_group, L, (void *)config_find("allowed_groups"));
    state_dir_from_socket(c);
}

int config_load(const struct config_source *src, struct config *ret, char *errors,
                size_t errsize)
{
    struct config *c;
    struct load *L;
    int r = 0;

    if (errors && errsize)
        errors[0] = '\0';
    c = malloc(sizeof(*c));
    L = calloc(1, sizeof(*L));
    if (!c || !L) {
        free(c);
        free(L);
        return -ENOMEM;
    }
    config_defaults(c);
    L->c = c;
    L->path = src->path;
    L->check_password_file = src->check_password_file;
    L->err = errors;
    L->errsize = errsize;

    if (src->path) {
        L->f = fopen(src->path, "re");
        if (!L->f) {
            r = -errno;
            if (r != -ENOENT || src->required) {
                add_error(L, 0, NULL, "cannot read: %s", strerror(-r));
                goto out;
            }
            r = 0; /* the default file is optional: built-in defaults */
        } else {
            int first = ini_parse_stream(reader, L, handler, L);
            if (first > 0 && !L->too_long)
                add_error(L, (unsigned)first, NULL,
                          "syntax error (expected 'key = value' or '[section]')");
            else if (first < 0)
                add_error(L, 0, NULL, "cannot parse (%d)", first);
            fclose(L->f);
        }
    }
    for (size_t k = 0; k < src->nov; k++) {
        const struct config_override *ov = &src->ov[k];
        char why[ERRLINE_MAX - 128], name[64];
        size_t i = opt_index(ov->opt);

        display_name(ov->opt, name, sizeof(name));
        if (config_set(c, ov->opt, ov->value, why, sizeof(why)) < 0)
            add_error(L, 0, ov->origin, "%s: %s", name, why);
        L->set_origin[i] = ov->origin;
    }
    finish(L);
    if (L->nerr) {
        r = -EINVAL;
        goto out;
    }
    *ret = *c;
out:
    sort_errors(L);
    if (L->nerr && r == 0)
        r = -EINVAL;
    free(c);
    free(L);
    return r;
}

/* ---- what the table drives ---------------------------------------------- */

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if (*len + (size_t)n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + (size_t)n + 1)
            ncap *= 2;
        if (ncap > 1024 * 1024)
            return -E2BIG;
        char *p = realloc(*buf, ncap);
        if (!p)
            return -ENOMEM;
        *buf = p;
        *cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
    return 0;
}

int config_dump(const struct config *c, const char *source, char **ret)
{
    char *buf = NULL, val[DSL_CFG_LIST_MAX + PATH_MAX];
    size_t len = 0, cap = 0;
    int r;

    r = append(&buf, &len, &cap, "# dogslowd effective configuration (%s)\n", source);
    for (size_t s = 0; r == 0 && s < ARRAY_SIZE(sections); s++) {
        r = append(&buf, &len, &cap, "\n[%s]\n", sections[s]);
        for (size_t i = 0; r == 0 && i < config_noptions; i++) {
            const struct opt_def *o = &config_options[i];
            if (strcmp(o->section, sections[s]) != 0)
                continue;
            config_format(c, o, val, sizeof(val));
            if ((o->flags & OPT_SECRET) && val[0])
                snprintf(val, sizeof(val), "(set, not shown)");
            r = append(&buf, &len, &cap, "%s = %s\n", o->name, val);
        }
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    *ret = buf;
    return 0;
}

static const char *type_word(const struct opt_def *o)
{
    switch (o->type) {
    case OPT_BOOL: return "BOOL";
    case OPT_SECONDS: return "SECONDS";
    case OPT_UINT: return "N";
    case OPT_SIZE: return "SIZE";
    case OPT_STRING: return "TEXT";
    case OPT_PATH: return "PATH";
    case OPT_LIST: return "LIST";
    case OPT_ENUM: return "WORD";
    case OPT_MODE: return "MODE";
    }
    return "VALUE";
}

/* Print text wrapped at width, each line prefixed. */
static void wrap(FILE *f, const char *prefix, const char *text, size_t width)
{
    const char *p = text;

    while (*p) {
        size_t n = strlen(p);
        if (n > width) {
            n = width;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = strcspn(p, " ");
        }
        fprintf(f, "%s%.*s\n", prefix, (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

static const char *default_text(const struct opt_def *o)
{
    if (o->docdef)
        return o->docdef;
    return o->def[0] ? o->def : "(empty)";
}

void config_help(FILE *f)
{
    fprintf(f, "\nConfiguration options (in the file, or --set KEY=VALUE; KEY is the name\n"
               "for [dogslow] and SECTION.NAME for the others):\n");
    for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
        fprintf(f, "\n  [%s]\n", sections[s]);
        for (size_t i = 0; i < config_noptions; i++) {
            const struct opt_def *o = &config_options[i];
            char head[128];

            if (strcmp(o->section, sections[s]) != 0)
                continue;
            snprintf(head, sizeof(head), "  %s %s%s%s", o->name, type_word(o),
                     o->cli ? ", --" : "", o->cli ? o->cli : "");
            fprintf(f, "%s\n", head);
            wrap(f, "        ", o->help, 70);
            fprintf(f, "        Default: %s.%s\n", default_text(o),
                    (o->flags & OPT_RELOAD) ? "" : " Needs a restart to change.");
        }
    }
}

void config_template(FILE *f)
{
    fprintf(f, "# dogslowd configuration: every option, set to its built-in default.\n"
               "#\n"
               "# Keys follow dogslow's settings, lower-cased (DOGSLOW_TIMER -> timer).\n"
               "# Lists are comma-separated and may go on over indented lines.  Sizes take\n"
               "# a K, M or G suffix; times are seconds, fractions allowed.  Check a change\n"
               "# with 'dogslowd -n', then apply it with SIGHUP (systemctl reload dogslowd);\n"
               "# options marked 'restart' need a restart.  See dogslow.conf(5).\n");
    for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
        fprintf(f, "\n[%s]\n", sections[s]);
        for (size_t i = 0; i < config_noptions; i++) {
            const struct opt_def *o = &config_options[i];
            char extra[160];

            if (strcmp(o->section, sections[s]) != 0)
                continue;
            fprintf(f, "\n");
            wrap(f, "# ", o->help, 74);
            extra[0] = '\0';
            if (o->dogslow || !(o->flags & OPT_RELOAD))
                snprintf(extra, sizeof(extra), "# %s%s%s\n", o->dogslow ? "dogslow: " : "",
                         o->dogslow ? o->dogslow : "",
                         (o->flags & OPT_RELOAD) ? "" : (o->dogslow ? "; restart" : "restart"));
            fputs(extra, f);
            /* Defaults that depend on who runs the daemon stay commented
             * out, showing the system daemon's value. */
            if (o->docdef)
                fprintf(f, "# Default: %s\n", o->docdef);
            fprintf(f, "%s%s =%s%s\n", o->def[0] == '@' ? "#" : "", o->name,
                    o->def[0] && o->def[0 + (o->def[0] == '@')] ? " " : "",
                    o->def + (o->def[0] == '@'));
        }
    }
}

unsigned config_keep_restart_only(struct config *new, const struct config *old, char *buf,
                                  size_t size)
{
    unsigned n = 0;
    size_t len = 0;

    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char a[PATH_MAX], b[PATH_MAX], name[64];

        if (o->flags & OPT_RELOAD)
            continue;
        config_format(old, o, a, sizeof(a));
        config_format(new, o, b, sizeof(b));
        if (!strcmp(a, b))
            continue;
        display_name(o, name, sizeof(name));
        if (len < size) {
            int k = snprintf(buf + len, size - len, "%s%s = %s (still %s until a restart)",
                             n ? "; " : "", name, b, a);
            if (k > 0)
                len += (size_t)k < size - len ? (size_t)k : size - len - 1;
        }
        memcpy((char *)new + o->off, (const char *)old + o->off, o->size);
        n++;
    }
    /* What follows from the restart-only options follows them back. */
    new->socket_gid = old->socket_gid;
    memcpy(new->state_dir, old->state_dir, sizeof(new->state_dir));
    return n;
}
