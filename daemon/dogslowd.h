/* SPDX-License-Identifier: MIT */
/*
 * dogslowd's internal interfaces.  See docs/architecture.md for how the
 * parts fit together.
 */
#ifndef DOGSLOWD_H
#define DOGSLOWD_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "ident.h"
#include "proto.h"
#include "pyframes.h"
#include "scoreboard.h"

#define DSL_FRAMES_MAX 256 /* hard cap on frames per snapshot */

/* ---- configuration (config.c: the option table; see conf.h) ----------- */

#define DSL_CFG_LIST_MAX 1024 /* bytes of a list option ("a, b, c") */
#define DSL_CFG_IDS_MAX  32   /* users or groups in allowed_users/_groups */

struct config {
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char output_dir[PATH_MAX];
    char state_dir[PATH_MAX]; /* registrations, for a restarted daemon */
    uint32_t timer_ms;      /* DOGSLOW_TIMER */
    uint32_t timer_min_ms;  /* bounds for a worker's own timer */
    uint32_t timer_max_ms;
    uint32_t max_workers;   /* registered processes at once */
    uint32_t max_workers_per_uid;     /* ... of one user */
    uint32_t max_connections;         /* connections not registered (yet), all users */
    uint32_t max_connections_per_uid; /* ... of one user */
    uint32_t max_frames;    /* frames per snapshot */
    uint32_t scan_ms;       /* how often scoreboards are scanned */
    uint32_t hello_timeout_ms;
    bool log_to_file;       /* DOGSLOW_LOG_TO_FILE */
    bool stack_vars;        /* DOGSLOW_STACK_VARS: locals in reports */
    char redact[1024];      /* names of locals never shown, "a, b" */
    uint32_t follow_hz;     /* samples a second after the report; 0: off */
    uint32_t follow_max_ms; /* stop following after this long */
    uint32_t follow_max;    /* requests followed at once */
    bool follow_svg;        /* an SVG flame graph beside the report */
    bool follow_notify;     /* the follow-up by e-mail and to Sentry too */
    uint32_t max_stack_bytes; /* stack copied per snapshot */
    uint32_t max_value_bytes; /* bytes shown per local variable */

    /* The rest of the option table (config.c, conf.h); the table is the
     * reference for what each one means. */
    bool enabled;              /* DOGSLOW: report undead requests at all */
    bool json;                 /* a .json twin next to each report */
    char ignore_urls[DSL_CFG_LIST_MAX]; /* DOGSLOW_IGNORE_URLS, "a, b" */
    char email_to[DSL_CFG_LIST_MAX];
    char email_from[256];
    uint32_t socket_mode;
    char socket_group[64];
    gid_t socket_gid;          /* resolved; (gid_t)-1: the daemon's group */
    char output_group[64];
    gid_t output_gid;          /* resolved; (gid_t)-1: the daemon's group */
    char allowed_users[DSL_CFG_LIST_MAX];
    char allowed_groups[DSL_CFG_LIST_MAX];
    uid_t allowed_uids[DSL_CFG_IDS_MAX]; /* resolved from the lists above */
    gid_t allowed_gids[DSL_CFG_IDS_MAX];
    unsigned n_allowed_uids, n_allowed_gids;
    uint32_t report_max_bytes;
    uint32_t retention_max_files; /* 0: no limit */
    uint64_t retention_max_bytes; /* 0: no limit */
    uint64_t spool_max_bytes;     /* delivery spool cap (delivery.h); 0: no limit */
    struct {
        char host[256];
        uint32_t port;
        int starttls;          /* enum cfg_starttls */
        char ca_file[PATH_MAX];
        char user[256];
        char password_file[PATH_MAX];
        uint32_t window_ms;    /* storm control: one mail per fingerprint per window; 0: off */
    } email;
    struct {
        bool enabled;          /* DOGSLOW_LOGGER */
        int facility;          /* LOG_DAEMON, ... (already shifted) */
        int level;             /* LOG_WARNING, ... (DOGSLOW_LOG_LEVEL) */
        char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
        int journal;           /* enum cfg_journal */
    } syslog;
    struct {
        char dsn[1024];
    } sentry;
    char user[64];             /* run as this user when started as root (privs.c) */
    char group[64];            /* and this group; empty: the user's own */
    bool seccomp;              /* put the seccomp filter on itself (sandbox.c) */
    bool dac_read_search;      /* keep CAP_DAC_READ_SEARCH besides CAP_SYS_PTRACE (privs.c) */
};

void config_defaults(struct config *c);

/* ---- logging (log.c) ---------------------------------------------------- */

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

extern int log_max_level;
void log_msg(int level, bool with_errno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_warn(...)  log_msg(LOG_LVL_WARN, true, __VA_ARGS__)  /* appends strerror(errno) */
#define log_warnx(...) log_msg(LOG_LVL_WARN, false, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, false, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, false, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, false, __VA_ARGS__)
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- event sources ------------------------------------------------------ */

enum ev_kind { EV_LISTEN, EV_CONN, EV_PIDFD, EV_SCAN, EV_DEADLINE, EV_SIGNAL, EV_CTL, EV_WATCHDOG,
               EV_REPORTS };

/* What epoll's data.ptr points at: the kind, and its owner. */
struct ev {
    enum ev_kind kind;
    void *owner;
};

/* ---- registered processes (registry.c) ---------------------------------- */

struct slot_state {
    uint32_t armed_seq; /* request (seq) already in the deadline heap, or 0 */
    uint32_t heap_pos;  /* its report entry's index in the heap + 1, or 0 (deadline.c) */
};

/* What a worker record counts for, in its user's entry of the uid table. */
enum uid_charge {
    CHARGE_NONE,   /* nothing (a record taken over without its user counted) */
    CHARGE_CONN,   /* a connection that has not registered (yet) */
    CHARGE_WORKER, /* a registered process */
};

struct worker {
    struct worker *prev, *next;
    uint64_t id; /* never reused; heap entries refer to workers by id */
    pid_t pid;
    uid_t uid;
    gid_t gid;
    int pidfd;
    int conn; /* the registering connection; -1 once it is gone */
    struct ev conn_ev, pid_ev;
    struct dsl_framer *framer; /* input of a connection not yet registered */
    uint64_t hello_deadline_ns;
    bool registered;
    bool dead; /* removed; freed after the current batch of events */
    enum uid_charge charged; /* registry.c: counted in d->uids as this */

    int memfd;
    struct dsl_sb_header *sb;
    size_t sb_size;
    uint32_t nslots; /* our own copy; the worker can scribble on the header */
    struct slot_state *slots;
    uint64_t timer_ns;
    uint32_t timer_asked_ms; /* the worker's own timer (0: the daemon's), for reloads */
    char *ignore_urls;       /* the worker's own ignore patterns, or NULL (ignore.c) */
    char program[DSL_STR_MAX + 1];
    uint64_t starttime; /* /proc/PID/stat field 22: tells a reused pid apart */
    /* Who registered (ident.h): every read of the process checks it is
     * still this one.  Set once at registration, then only read (the
     * analysis and writer threads too). */
    struct ident ident;

    void *unwind_as; /* libunwind address space (fallback unwinder) */
    void *dwfl;      /* libdwfl session, cached across snapshots */
    /* Held while dwfl is used: by the analysis thread (watch.c), and on the
     * loop by follow samples and dogslowctl dump. */
    pthread_mutex_t dwfl_lock;
    /* Snapshot jobs in flight (loop only): the record is not freed, nor its
     * Dwfl session released, before they are reported. */
    unsigned busy;
    bool dwfl_attached; /* dwfl_attach_state done */
    uint64_t modules_ns; /* when /proc/PID/maps was last read into dwfl */
    bool maps_copied;    /* loop only: a job carries a copy of the maps (watch.c) */
    struct snapshot *unwinding; /* the snapshot unwind.c's callbacks read */
    /* CPython (pyframes.c): looked for at the first snapshot. */
    int py_state; /* 0: not looked yet; 1: found (py); -1: not Python; -2: unsupported */
    struct py_runtime *py;
    char py_why[128]; /* "unsupported Python 3.10", for the report */
    pid_t py_ppid;    /* the parent, whose thread id a forked child may still carry */
    bool py_cold;     /* its code cache lacks what the last read met (snapshot.c) */
    uint64_t reports;
};

/*
 * Connections and registrations per user (registry.c), so that one local
 * user cannot lock the others out: an open-addressing table keyed by uid,
 * with an entry only while its user holds a connection or a registration.
 * How many users do is bounded too (a user with subordinate uids can
 * connect as thousands of them): a connection of one more is refused.
 */
#define UIDS_MAX   4096u           /* users with an entry at once */
#define UIDS_SLOTS (2u * UIDS_MAX) /* a power of two, half empty: probes stay short */

struct uid_use {
    uid_t uid;
    uint32_t conns;   /* connections not registered (yet); 0 and 0: a free slot */
    uint32_t workers; /* registered processes */
};

struct uid_table {
    struct uid_use slot[UIDS_SLOTS];
    unsigned n; /* entries in use */
};

/* uid's entry, or NULL; with create, a new one (both counts 0) when the
 * table has room, in which the caller counts something at once: an entry
 * whose counts are 0 is a free slot (uids.c). */
struct uid_use *uids_find(struct uid_table *t, uid_t uid, bool create);
/* After a count went down: the entry goes if both are 0. */
void uids_forget_if_unused(struct uid_table *t, struct uid_use *u);

struct daemon;
struct ratelimit;

/* EV_LISTEN: take connections from the backlog until it is empty, or a
 * bounded number of them, so the loop serves its other events too. */
void registry_accept_backlog(struct daemon *d);
/* From the scan timer: listen again after running out of descriptors. */
void registry_resume_accept(struct daemon *d);
void registry_conn_event(struct daemon *d, struct worker *w, uint32_t events);
void registry_pidfd_event(struct daemon *d, struct worker *w);
void registry_remove(struct daemon *d, struct worker *w, const char *why);
/* w is not the process that registered any more (ident.h): log "pid N
 * (prog): what: why" and forget it. */
void registry_remove_changed(struct daemon *d, struct worker *w, const char *what,
                             const char *why);
/* Close a connection that has not registered, saying why through rl: a peer
 * can cause such lines at will (ratelimit.h). */
void registry_drop(struct daemon *d, struct worker *w, struct ratelimit *rl, const char *why);
/* A connection handed over (to control.c): no longer w's, nor counted as
 * one waiting to register.  Returns its descriptor. */
int registry_hand_over(struct daemon *d, struct worker *w);
struct worker *registry_find(struct daemon *d, uint64_t id);
void registry_expire_hellos(struct daemon *d, uint64_t now);
void registry_bury(struct daemon *d);
void registry_adopt_previous(struct daemon *d);

/* ---- deadlines (deadline.c) --------------------------------------------- */

#define DEADLINE_REPORT 0 /* a request's timer: report it if still running */
#define DEADLINE_FOLLOW 1 /* the next sample of a followed request (follow.c) */

struct deadline {
    uint64_t when_ns;  /* CLOCK_MONOTONIC */
    uint64_t worker_id;
    uint32_t slot;
    uint32_t seq;
    uint32_t kind;
    /* Where the heap keeps this entry's index + 1 while it holds it (the
     * slot's heap_pos), or NULL.  Lets a slot's entry be found and moved
     * (heap_update) instead of a new one added per request. */
    uint32_t *pos;
};

struct heap {
    struct deadline *v;
    size_t n, cap, max;
};

int heap_push(struct heap *h, const struct deadline *e);
bool heap_peek(const struct heap *h, struct deadline *ret);
bool heap_pop(struct heap *h, struct deadline *ret);
/* Replace the entry at index i (its pos stays) with e's time, seq and
 * kind, and restore the order. */
void heap_update(struct heap *h, size_t i, const struct deadline *e);
void heap_remove_worker(struct heap *h, uint64_t worker_id);
void heap_free(struct heap *h);

/* ---- scanning and firing (watch.c) -------------------------------------- */

void watch_scan(struct daemon *d, uint64_t now);
void watch_fire(struct daemon *d, uint64_t now);
void watch_rearm(struct daemon *d);
/* The analysis thread and its eventfd (EV_REPORTS); 0 or -errno. */
int watch_init(struct daemon *d);
/* EV_REPORTS: write the reports of snapshots the thread has named. */
void watch_reports(struct daemon *d);
/* After a reload: snapshots from now on are named with the new settings. */
void watch_reconfigured(void);
/* Snapshots taken and not yet reported (being named, or to be written). */
unsigned watch_pending(void);
/* At exit: name and report every snapshot taken. */
void watch_drain(struct daemon *d);
/* SIGCHLD and the scan timer: threads that stopped at last (snapshot_reap). */
void watch_stops(struct daemon *d, uint64_t now);

/* ---- snapshots (snapshot.c, unwind.c) --------------------------------- */

/* x86_64 DWARF register numbers 0..16: rax rdx rcx rbx rsi rdi rbp rsp
 * r8..r15, and 16 = the return address column (rip). */
#define DSL_NREGS 17
#define DSL_REG_RBP 6
#define DSL_REG_RSP 7
#define DSL_REG_RIP 16

struct frame {
    uint64_t ip;
    bool activation;     /* ip is exact (innermost or interrupted frame), not a return address */
    uint32_t regs_known; /* bit n set: regs[n] is known in this frame */
    uint64_t regs[DSL_NREGS];
};

struct snapshot {
    pid_t pid, tid;
    uint64_t regs[DSL_NREGS]; /* as the thread was stopped */
    bool have_regs;
    uint32_t regs_known; /* bit n: regs[n] is known (all, unless peeked) */
    /* The thread was not stopped at all: it sat in a system call that a
     * ptrace stop would have cut short with EINTR (epoll_wait...), so only
     * its stack and its sp/pc (/proc/PID/task/TID/syscall) were read. */
    long peeked_syscall; /* -1: stopped normally */
    bool needs_unwind;   /* taken, not yet unwound (snapshot_finish) */
    /* The thread's Python frames, read while it was held (CPython workers). */
    struct py_stack py;
    bool have_py;        /* py read and named: it may be shown */
    bool py_captured;    /* py captured while held, not yet named */
    /* Copy of the live stack taken while the thread was held:
     * [stack_addr, stack_addr + stack_len). */
    uint8_t *stack;
    size_t stack_len, stack_cap;
    uint64_t stack_addr;
    struct frame frames[DSL_FRAMES_MAX];
    unsigned nframes;
    int err;             /* 0, or why the stack is missing or short */
    char note[160];      /* a line for the report when err != 0 */
    uint64_t pause_ns;   /* time the thread was held */
    uint64_t unwind_ns;  /* time spent unwinding the copy afterwards */
    /* The process exited before the frames were named: only the copies are
     * read, never the live process (its pid may be another's by now). */
    bool gone;
    /* The process is not the one that registered any more (it executed
     * another program, or changed credentials): nothing of it was kept,
     * and its registration must be dropped (note says why). */
    bool changed;
    /* /proc/PID/maps as it was at the snapshot, for a process whose modules
     * were never read (its first reports): if it exits before naming, the
     * module list comes from here (snapshot_read_maps).  Not owned. */
    const char *maps;
    size_t maps_len;
};

/* Read [addr, addr + len) of the snapshot's thread: from the stack copy,
 * else from the live process unless s->gone.  0 or -errno. */
int snapshot_read(const struct snapshot *s, uint64_t addr, void *buf, size_t len);
/* /proc/PID/maps, whole (at most DSL_MAPS_MAX bytes; a longer one is cut at
 * a line end): a malloc'd NUL-terminated text, or NULL. */
#define DSL_MAPS_MAX (8u << 20)
char *snapshot_read_maps(pid_t pid, size_t *len);

/* Hold the thread, copy registers and stack, let it go.  Then unwind the
 * copy (unwind.c).  s->stack is a buffer reused across calls.  The unwinder
 * may read the live process beyond the copy: the caller checks
 * snapshot_still_same() once it has read all it will (naming too). */
int snapshot_thread(struct daemon *d, struct worker *w, pid_t tid, struct snapshot *s);
/* The two halves of snapshot_thread: take (the thread is held: registers
 * and stack copied), and finish (unwind the copy; any time later).
 * snapshot_take returns -EINPROGRESS when the thread was interrupted but
 * did not stop at once: it is then in d->stopping, and let go when it
 * stops -- or its snapshot is finished then, if the caller claims it
 * (snapshot_claim). */
int snapshot_take(struct daemon *d, struct worker *w, pid_t tid, struct snapshot *s);
void snapshot_finish(const struct config *cfg, struct worker *w, struct snapshot *s);
void snapshot_release_worker(struct worker *w);
/* At start-up, before the seccomp filter: may the loop thread hold threads
 * at real-time priority?  Says once in the log if not, and why. */
void snapshot_priority_probe(void);
/* After the last live read of a snapshot (unwinding, locals): is the
 * process still the one that registered?  If not, everything read of it
 * is dropped from s, s->changed is set and false returned. */
bool snapshot_still_same(const struct worker *w, struct snapshot *s);

/* Threads that did not stop at once (see struct daemon). */
struct stopping {
    pid_t pid, tid;
    uid_t uid;
    uint64_t since_ns;
    void *owner; /* who waits for this thread's snapshot (a job of watch.c), or NULL */
};
#define SNAPSHOT_STOP_TIMEOUT_NS (200 * NSEC_PER_MSEC) /* an owner waits this long */
#define SNAPSHOT_STOPPING_PER_UID 8 /* threads of one uid still to stop, at most */
/* The thread snapshot_take() just left stopping waits for owner. */
void snapshot_claim(struct daemon *d, pid_t tid, void *owner);
/* What snapshot_reap() tells an owner: the thread stopped (status from
 * waitpid; the owner must call snapshot_resume, which lets it go), it
 * exited (-ESRCH), or it did not stop in time (-ETIMEDOUT; it is let go
 * whenever it stops). */
typedef void (*snapshot_stopped_fn)(struct daemon *d, void *owner, pid_t tid, int status,
                                    int err);
/* From SIGCHLD and the scan timer: collect the stops that came. */
void snapshot_reap(struct daemon *d, uint64_t now, snapshot_stopped_fn fn);
/* The held part of a snapshot, for a thread that has stopped at last. */
int snapshot_resume(struct daemon *d, struct worker *w, pid_t tid, int status,
                    struct snapshot *s);
/* Let a stopped thread go (owner gone): detach, the signal re-injected. */
void snapshot_let_go(struct daemon *d, pid_t tid, int status);
/* Threads of uid still to stop. */
unsigned snapshot_stopping(const struct daemon *d, uid_t uid);
/* At exit. */
void snapshot_stopping_free(struct daemon *d);

/* Unwind a snapshot's copy with libdwfl (unwind.c).  Needs w's Dwfl with
 * modules reported (symbolize_prepare). */
int unwind_snapshot(const struct config *cfg, struct worker *w, struct snapshot *s);

/* ---- naming (symbolize.c) and local variables (locals.c) ---------------- */

struct var {
    char *name;
    char *value;
};

struct symframe {
    uint64_t ip;
    char module[1024];
    char function[512];
    uint64_t offset; /* from the function's start */
    char file[1024];
    int line;        /* 0: unknown */
    bool inlined;    /* inlined into the frame that follows (its caller) */
    unsigned nvars;
    struct var *vars; /* malloc'd; see symframes_free */
    const char *vars_note; /* static text when locals cannot be shown */
};

#define DSL_SYMFRAMES_MAX (2 * DSL_FRAMES_MAX)

/* Report w's modules to its Dwfl session if not done lately (cheap);
 * symbolize_refresh re-reads /proc/PID/maps now. */
int symbolize_prepare(struct worker *w, const struct snapshot *s);
int symbolize_refresh(struct worker *w);
/* Whether every frame of s lies in a module w's Dwfl knows. */
bool symbolize_covers(struct worker *w, const struct snapshot *s);
/* Name the frames (and inlined frames) of s into out; with_locals adds
 * local variables read from the snapshot.  Returns the count. */
int symbolize(const struct config *cfg, struct worker *w, const struct snapshot *s, bool with_locals,
              struct symframe *out, unsigned max);
void symframes_free(struct symframe *f, unsigned n);
void symbolize_release_worker(struct worker *w);
/* Free this thread's cache of frame names (threads free theirs at exit). */
void symbolize_cache_release(void);

/* ---- reports (report.c) ------------------------------------------------- */

struct report_item;

struct report_info {
    /* The first line's words before the time; NULL: "Undead request
     * intercepted at" (dogslow's, for reports of undead requests). */
    const char *heading;
    const struct dsl_request *req;
    const struct worker *w;
    uint64_t now_real_ns, start_real_ns;
    const struct snapshot *snap;
    const struct symframe *frames;
    unsigned nframes;
    /* The merged stack (report_merge), for outputs that cannot compute it
     * themselves (the JSON twin); NULL: the native frames alone. */
    const struct report_item *items;
    unsigned nitems;
};

/*
 * The stack as reports show it, innermost first: native frames, with the
 * interpreter's eval-loop frames replaced by the Python frames they run
 * (py-spy dump --native style).  Python frames that find no eval frame are
 * appended (counted in *ret_unplaced).
 */
struct report_item {
    const struct symframe *native;
    const struct py_frame *py;
};
#define REPORT_ITEMS_MAX (DSL_SYMFRAMES_MAX + 256)
unsigned report_merge(const struct snapshot *snap, const struct symframe *frames,
                      unsigned nframes, struct report_item *out, unsigned *ret_unplaced);

/* The report as text (malloc'd, not NUL-terminated beyond len). */
int report_render(struct daemon *d, const struct report_info *ri, char **ret_text,
                  size_t *ret_len);
/* Render and write to the report directory; the file's path in ret_path. */
int report_write(struct daemon *d, const struct report_info *ri, char *ret_path, size_t size);
/* The same with a configuration and host name of the caller's (the
 * analysis thread's counted copy): they touch nothing of the daemon's. */
int report_render_cfg(const struct config *cfg, const char *hostname,
                      const struct report_info *ri, char **ret_text, size_t *ret_len);
int report_write_cfg(const struct config *cfg, const char *hostname, const struct report_info *ri,
                     char *ret_path, size_t size);
/* Test hook (DOGSLOWD_TEST_WRITE_DELAY_MS): each report file's write (text
 * and JSON twin) takes this much longer, as on a loaded disk. */
void report_set_test_write_delay(unsigned ms);
void report_test_write_delay(void);
/* The source line file:line (trimmed), when w's user may read the file. */
bool report_source_line(const struct worker *w, const char *file, int line, char *out,
                        size_t size);

/* ---- the daemon --------------------------------------------------------- */

struct daemon {
    struct config cfg;
    int epfd;
    int listen_fd;
    int scan_fd, deadline_fd, signal_fd;
    struct ev listen_ev, scan_ev, deadline_ev, signal_ev;
    pid_t pid;
    uint64_t generation;
    char hostname[256];

    struct worker *workers; /* list head */
    struct worker *graveyard; /* removed workers, freed after each batch */
    unsigned nworkers, nconns;
    unsigned npending;      /* connections not registered (yet): max_connections */
    struct uid_table uids;  /* the same, and registrations, per user */
    uint64_t conns_refused; /* connections closed at once: over a cap */
    bool accept_paused;     /* out of descriptors: listening again at the next scan */
    uint64_t next_worker_id;

    struct heap heap;
    uint64_t armed_ns; /* what the deadline timerfd is set to, 0 if idle */

    /* Threads attached and interrupted that have not stopped yet: each is
     * finished (its snapshot taken) or let go when its stop comes, however
     * many there are (snapshot.c). */
    struct stopping *stopping;
    unsigned nstopping, stopping_cap;

    uint64_t reports_written;
    uint64_t requests_ignored; /* matched ignore_urls (ignore.c) */
    struct ctl_conn *ctls;     /* dogslowctl connections (control.c) */
    unsigned nctls;
    bool quit;

    /* systemd (main.c): the socket came from socket activation (it is
     * systemd's: never unlinked); the watchdog timer; the last STATUS=. */
    bool socket_activated;
    int watchdog_fd;
    struct ev watchdog_ev;
    struct ev reports_ev; /* watch.c's eventfd */
    uint64_t status_sent_ns;
    char status[160];
};

/* ---- privileges (privs.c) ----------------------------------------------- */

/* Started as root: switch to cfg.user (default "dogslow" if it exists),
 * keeping only the capabilities snapshots need.  Otherwise keep only those
 * of them the process has.  dirs: directories this run created as root,
 * handed to the new user (NULL-terminated). */
int privs_drop(struct daemon *d, const char *const *dirs);
/* The uid the daemon runs as once privs_drop() is done. */
uid_t privs_target_uid(const struct config *c);
/* May the daemon trace processes of other users (root, or CAP_SYS_PTRACE)? */
bool privs_can_trace_any(void);

/* ---- the seccomp filter (sandbox.c) ------------------------------------- */

struct sock_fprog;
/* Put the filter on every thread of the daemon, for good.  Called once set
 * up, before any worker's data is read.  0 or -errno. */
int sandbox_enter(void);
/* The program, without installing it (tests, --print-seccomp). */
int sandbox_build(struct sock_fprog *ret);
/* How many calls were denied so far, and the number of the last one. */
unsigned long sandbox_denied(int *last);
/* From the scan timer: log new denials through the normal log. */
void sandbox_poll(void);
const char *sandbox_syscall_name(int nr);

#endif
