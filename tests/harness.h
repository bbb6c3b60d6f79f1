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
};

struct tworker {
    pid_t pid;
    int out; /* read end of the worker's stdout */
    char line[512];
};

/* Start dogslowd with --timer TIMER on a private socket; waits until it
 * accepts connections.  extra: more arguments, NULL-terminated, or NULL. */
void td_start(struct tdaemon *d, const char *timer, const char *const *extra);
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

/* Report files in d->out (slow_request_*.log). */
int td_count_reports(struct tdaemon *d);
/* Wait until at least n reports exist; returns the count seen. */
int td_wait_reports(struct tdaemon *d, int n, int timeout_ms);
/* Read the report whose name contains needle (e.g. "_PID_TID"); returns a
 * malloc'd string or NULL. */
char *td_read_report(struct tdaemon *d, const char *needle);

long long now_ms(void);
void sleep_ms(int ms);

#endif
