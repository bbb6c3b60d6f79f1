/* SPDX-License-Identifier: MIT */
/* Helpers for integration tests: run the real daemon and real workers. */
#ifndef DOGSLOW_TEST_HARNESS_H
#define DOGSLOW_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tdaemon {
    char dir[256];    /* private temporary directory */
    char sock[300];   /* dir/dogslow.sock */
    char out[300];    /* dir/reports */
    char log[300];    /* dir/daemon.log: the daemon's stderr */
    pid_t pid;
    char conf[300];   /* dir/dogslow.conf, passed with --config (empty unless written) */
    /* When set (before td_launch), the daemon runs in a private mount
     * namespace where /dev/log, or /run/systemd/journal/socket, is a
     * symlink to this socket of the test's. */
    char devlog[300];
    char journal[300];
    /* When set (before td_launch): "K=V" entries added to the daemon's
     * environment (NULL-terminated), and a listening socket handed over as
     * systemd's socket activation does: as fd 3, with LISTEN_FDS=1 and
     * LISTEN_PID set to the daemon's pid in the child before exec. */
    const char *const *env;
    bool activate;
    int listen_fd;
    /* Unless set, the daemon gets --user root: started as root it would
     * otherwise switch to a 'dogslow' user whenever the machine has one. */
    bool switch_user;
    /* Unless set, td_cleanup() fails the test when the daemon's log says
     * its seccomp filter denied a call: every feature the suites exercise
     * must work inside the filter. */
    bool seccomp_denials_ok;
};

struct tworker {
    pid_t pid;
    int out; /* read end of the worker's stdout */
    char line[512];
};

/* Start dogslowd with --timer TIMER on a private socket; waits until it
 * accepts connections.  extra: more arguments, NULL-terminated, or NULL. */
void td_start(struct tdaemon *d, const char *timer, const char *const *extra);
/* td_start in two steps: td_init makes the directory (so a test can put
 * its config file or sockets there first), td_launch starts the daemon.
 * timer NULL: no --timer/--timer-min, the config file's are used. */
void td_init(struct tdaemon *d);
void td_launch(struct tdaemon *d, const char *timer, const char *const *extra);
/* Write the config file (d->conf). */
void td_write_conf(struct tdaemon *d, const char *text);
/* Send a signal to the daemon. */
void td_signal(struct tdaemon *d, int sig);
/* Wait until the daemon's log holds needle (after skip bytes); true if so. */
bool td_wait_log(struct tdaemon *d, const char *needle, int timeout_ms);
/* Files in d->out whose names end with suffix (".log", ".json"). */
int td_count_files(struct tdaemon *d, const char *suffix);
/* Run argv (with env entries "K=V" added, may be NULL) to completion;
 * stdout and stderr go to out (NUL-terminated).  Returns the exit status,
 * or -1 on timeout (the program is killed). */
int run_capture(const char *const *argv, const char *const *env, char *out, size_t size,
                int timeout_ms);
/* tw_start with entries "K=V" added to the worker's environment. */
void tw_start_env(struct tworker *w, struct tdaemon *d, const char *prog,
                  const char *const *argv, const char *const *env);
/* Start another daemon on the same directory (after td_kill). */
void td_restart(struct tdaemon *d, const char *timer);
/* SIGTERM and wait; returns the exit status (or -1). */
int td_stop(struct tdaemon *d);
void td_kill(struct tdaemon *d); /* SIGKILL and wait */
bool td_alive(struct tdaemon *d);
void td_cleanup(struct tdaemon *d);
/* The daemon's log, NUL-terminated (static buffer). */
const char *td_log(struct tdaemon *d);

/* Start a worker program with DOGSLOW_SOCKET pointing at d. */
void tw_start(struct tworker *w, struct tdaemon *d, const char *prog, const char *const *argv);
/* Read the next stdout line that starts with prefix, within timeout_ms;
 * returns it (in w->line) or NULL. */
const char *tw_expect(struct tworker *w, const char *prefix, int timeout_ms);
/* Wait for exit; returns the exit status, or -1 on timeout (then kills). */
int tw_wait(struct tworker *w, int timeout_ms);
void tw_kill(struct tworker *w);

/* /proc/PID/file's text (a static buffer; "" when unreadable), a number
 * of /proc/PID/status (-1: none), the child of parent named comm (0:
 * none), and: pid holds no capability, has no_new_privs and exactly
 * filters seccomp filters. */
char *td_proc_text(pid_t pid, const char *file);
long td_proc_status_field(pid_t pid, const char *key);
pid_t td_child_named(pid_t parent, const char *comm);
void td_assert_holds_nothing(pid_t pid, int filters);

/* Report files in d->out (slow_request_*.log). */
int td_count_reports(struct tdaemon *d);
/* Wait until at least n reports exist; returns the count seen. */
int td_wait_reports(struct tdaemon *d, int n, int timeout_ms);
/* Read the report whose name contains needle (e.g. "_PID_TID"); returns a
 * malloc'd string or NULL. */
char *td_read_report(struct tdaemon *d, const char *needle);

/* The first report whose text contains needle (e.g. the request line);
 * a malloc'd string or NULL. */
char *td_find_report_with(struct tdaemon *d, const char *needle);

/* The (first) report once its text contains text -- a follow-up is
 * appended when the request's end is noticed -- polled every 50 ms for up
 * to timeout_ms; else the report as it last was, or NULL.  Malloc'd. */
char *td_wait_report_text(struct tdaemon *d, const char *text, int timeout_ms);
/* How many reports contain needle. */
int td_count_reports_with(struct tdaemon *d, const char *needle);

/* Check cannot carry long messages: on failure print the report (or log)
 * r to stderr, and fail with a short message. */
#define expect(cond, r, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "---- report ----\n%s\n----------------\n", (r));                       \
            ck_abort_msg(__VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)

/* In a sanitizer build: the ASan/UBSan runtimes this test runs with, as an
 * LD_PRELOAD value ("" otherwise), for an uninstrumented python3 that loads
 * the instrumented libdogslow. */
const char *sanitizer_runtimes(void);

/* The variable's value; fails the test when it is unset or empty. */
const char *env_or_die(const char *name);
/* Copy a file to `to`, owned by owner (its group too), with mode (set after
 * the chown, which would clear a set-uid bit). */
void td_copy_file(const char *from, const char *to, mode_t mode, uid_t owner);

long long now_ms(void);
void sleep_ms(int ms);

#endif
