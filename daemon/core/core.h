/* SPDX-License-Identifier: MIT */
/*
 * dogslowd's core layer (daemon/core/), and the vocabulary every layer
 * shares: the configuration, the log, a registered process (struct worker)
 * and its identity, a snapshot and its named frames.  The other layers --
 * capture (capture.h), analysis (analysis.h), output (output.h) -- include
 * this header and their own; core calls into them, never the other way
 * round.  See docs/architecture.md, "Layers".
 */
#ifndef DOGSLOWD_CORE_H
#define DOGSLOWD_CORE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto.h"
#include "scoreboard.h"

/* ---- a process's identity (ident.c) -------------------------------------- */

/*
 * Who a registered process is, and whether it is still that process.
 *
 * The daemon may trace any process (CAP_SYS_PTRACE), so a registration
 * must never become a way to get *another* program traced: a client that
 * registers and then executes a set-uid program (its connection kept open
 * across the exec, or by a child) must not get that program's stack and
 * locals written into a report.  A registration therefore records the
 * process's identity -- credentials, dumpability and the layout of its
 * address space, which every exec replaces -- and every read of the
 * process (snapshot, peek, follow-up sample, naming, adoption after a
 * restart) first checks it is unchanged.  See docs/reliability.md, "threat
 * model".
 */

#define IDENT_GROUPS_MAX 64 /* supplementary groups kept (more: the rest are left out) */
/* /proc/PID/stat fields 26-28 and 45-47: start_code, end_code,
 * start_stack, start_data, end_data, start_brk.  A new program gets a new
 * address space with new values (at random places, as exec lays it out
 * anew).  (arg_start & co. are left out: a privileged process may move
 * them with PR_SET_MM to change its title.) */
#define IDENT_MM_FIELDS 6

struct ident {
    uid_t uid[4]; /* real, effective, saved, file system */
    gid_t gid[4];
    gid_t groups[IDENT_GROUPS_MAX];
    unsigned ngroups;
    uint64_t mm[IDENT_MM_FIELDS];
    uint64_t starttime; /* field 22 of the thread's stat */
    pid_t tgid;
    char state;    /* 'R', 'S', 'D', 'Z', ... */
    bool dumpable; /* /proc/PID/task/TID/stat belongs to its euid/egid */
};

/* Parse the text of /proc/PID/task/TID/status (Tgid, Uid, Gid, Groups) or
 * stat (state, start time, address space) into ret.  0 or -EIO. */
int ident_parse_status(const char *text, struct ident *ret);
int ident_parse_stat(const char *text, struct ident *ret);

/* Read the identity of thread tid of process pid (tid 0: the process's
 * main thread).  0, or -errno (-ENOENT, -ESRCH: gone). */
int ident_read(pid_t pid, pid_t tid, struct ident *ret);

/* Is cur (read now) still the process registered as reg?  0 if so;
 * -ESRCH when the thread left the process or exited; -EPERM when it is
 * another program or has other credentials (why says which). */
int ident_compare(const struct ident *reg, const struct ident *cur, bool same_thread, char *why,
                  size_t size);

/* ident_read + ident_compare for thread tid of pid. */
int ident_verify(const struct ident *reg, pid_t pid, pid_t tid, struct ident *ret_cur, char *why,
                 size_t size);

/* May a process with identity id read the file at path (every directory
 * on the way searchable, the file readable, by its fs uid/gid and
 * groups)?  Returns an fd open for reading (O_CLOEXEC), or -errno
 * (-EACCES when it may not).  Symbolic links are followed (at most 16),
 * each checked the same way. */
int ident_open_as(const struct ident *id, const char *path);

/* The state file's form of an identity ("U U U U G G G G M M M M M M") and
 * back.  format returns the length or -ENOSPC; parse the number of bytes
 * it read (the text may go on after a blank) or -EINVAL. */
int ident_format(const struct ident *id, char *buf, size_t size);
int ident_parse_record(const char *text, struct ident *ret);

/* ---- Python frames: the data (the reader is analysis's: analysis.h) ----- */

/* Struct offsets of one CPython version, in bytes.  Filled by
 * py_runtime_find() (or py_runtime_init() for tests and fuzzing). */
struct py_offsets {
    /* _PyRuntimeState, PyInterpreterState, PyThreadState */
    uint32_t runtime_interp_head;
    uint32_t interp_next, interp_threads_head;
    uint32_t tstate_next, tstate_native_thread_id;
    uint32_t tstate_cframe;       /* 3.11/3.12: PyThreadState.cframe, or UINT32_MAX */
    uint32_t cframe_current_frame;
    uint32_t tstate_current_frame; /* 3.13+: PyThreadState.current_frame, or UINT32_MAX */
    /* _PyInterpreterFrame */
    uint32_t frame_code, frame_previous, frame_instr, frame_owner, frame_localsplus;
    uint32_t frame_is_entry;      /* 3.11 only, or UINT32_MAX */
    bool instr_is_prev;           /* prev_instr (3.11, 3.12) or instr_ptr (3.13+) */
    uint8_t owner_cstack;         /* the lowest owner that marks an entry shim
                                   * (3.12/3.13: FRAME_OWNED_BY_CSTACK, 3.14:
                                   * FRAME_OWNED_BY_INTERPRETER), or 0xff (3.11) */
    /* PyCodeObject */
    uint32_t code_firstlineno, code_localsplusnames, code_localspluskinds;
    uint32_t code_filename, code_name, code_qualname, code_linetable, code_adaptive;
    uint32_t code_size;           /* bytes of the code object read at once */
    uint8_t fast_hidden;          /* CO_FAST_HIDDEN (3.12+) or 0 */
    /* 3.14+: thread-local bytecode of free-threaded builds, or UINT32_MAX */
    uint32_t frame_tlbc_index, code_tlbc;
    uint8_t owner_max;            /* the highest valid frame owner */
    bool stackref;                /* 3.14+ and free-threaded: tagged _PyStackRef
                                   * in f_executable and localsplus */
    bool free_threaded;
    /* objects: ob_type's offset, sizeof(PyObject) (the PyVarObject
     * ob_size and every type's first field follow it) */
    uint32_t ob_type, head;
    uint32_t tuple_item;          /* head + 8; 3.14: head + 16 (ob_hash) */
    uint8_t ustate_kind_shift;    /* the kind bits in PyASCIIObject.state */
    uint32_t type_name, type_flags;
    bool long_lv_tag;             /* 3.12+: lv_tag, else signed ob_size */
    uint32_t unicode_ascii_size, unicode_compact_size;
    uint32_t dictvalues_values;   /* 0 in 3.11/3.12, 8 in 3.13+ */
};

/* Addresses, in the worker, of the types the value renderer recognises.
 * 0 when the symbol is missing: such values show as <T object at 0x..>. */
struct py_types {
    uint64_t code, cell, none, boolean, integer, floating, str, bytes;
    uint64_t tuple, list, dict, set, frozenset;
};

/* What earlier reads of a worker learnt of its code objects: where each
 * keeps its local variables' names and how many slots it has.  With it
 * py_capture() reads no code object while the thread is held.  Only a
 * guess until py_finish() checks it against the code object itself (a
 * code object freed and another put at its address). */
#define PY_CODE_CACHE 256
struct py_code_slot {
    uint64_t code, names; /* code 0: empty */
    int64_t n;            /* co_nlocalsplus */
};

struct py_runtime {
    pid_t pid;
    uint32_t version_hex;     /* PY_VERSION_HEX, e.g. 0x030b07f0 */
    uint64_t runtime_addr;    /* &_PyRuntime in the worker */
    struct py_offsets off;
    struct py_types types;
    char path[256];           /* the ELF file that defines _PyRuntime */
    struct py_code_slot code_cache[PY_CODE_CACHE];
};

struct py_limits {
    unsigned max_frames;      /* frames kept, innermost first; default 128 */
    unsigned max_locals;      /* locals per frame; 0: no locals at all */
    unsigned max_value_bytes; /* rendered bytes per value; default 2 KiB */
    unsigned max_items;       /* items shown per list/tuple/dict/set; default 5 */
    size_t max_text_bytes;    /* all names and values together; default 256 KiB */
    size_t max_read_bytes;    /* bytes read from the worker; default 4 MiB */
};

struct py_local {
    const char *name;  /* NULL until py_finish() */
    const char *value; /* repr-like, bounded; "<unbound>" never appears:
                          unbound locals are left out, as in f_locals */
    uint32_t slot;     /* its index in the frame's localsplus */
};

struct py_frame {
    const char *filename;
    const char *function; /* co_qualname */
    int line;             /* 0: unknown */
    bool entry;           /* oldest Python frame of its eval-loop activation */
    uint64_t frame_addr, code_addr;
    struct py_local *locals;
    unsigned nlocals;
    bool locals_truncated; /* more locals than shown, or text ran out */
    /* internal: the position read while held, for py_finish(), and the
     * layout its locals were read with */
    uint64_t instr;
    int32_t tlbc_index;
    uint64_t names_seen;
    int64_t nslots_seen;
};

struct py_stack {
    struct py_frame *frames; /* [0] is the innermost frame */
    unsigned nframes;
    bool truncated;          /* more frames than max_frames */
    int err;                 /* 0, or why the walk ended early (-errno) */
    char note[160];          /* a line for the report when err != 0 or truncated */
    uint32_t version_hex;
    /* Costs of this read. */
    size_t bytes_read;       /* from the worker, whole pages */
    unsigned reads;          /* calls to the underlying reader */
    size_t held_bytes;       /* of which while the thread was held */
    unsigned held_reads;
    unsigned code_misses;    /* code objects the runtime's code cache lacked */
    bool finished;           /* py_finish() ran: names are filled in */
    /* internal: one allocation holds frames, locals and text */
    struct py_limits lim;
    uint64_t generation;     /* the reading thread's page cache it used */
    void *mem;
    char *text;
    size_t text_len, text_cap;
};

/* Free what a read filled in (one allocation holds it all); s is zeroed. */
static inline void py_stack_free(struct py_stack *s)
{
    if (!s)
        return;
    free(s->mem);
    memset(s, 0, sizeof(*s));
}

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
    uint64_t spool_max_bytes;     /* delivery spool cap (output.h); 0: no limit */
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
    bool privsep;              /* name frames in the analysis process (sep.c) */
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
    /* Who registered (core.h, ident.c): every read of the process checks it is
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
    /* CPython (daemon/analysis/py_*.c): looked for at the first snapshot. */
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
/* w is not the process that registered any more (core.h, ident.c): log "pid N
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
    uint64_t py_name_ns; /* naming its Python frames after the hold (the loop waits) */
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

/* Free the variables of n named frames (the frames are the caller's). */
static inline void symframes_free(struct symframe *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < f[i].nvars; k++) {
            free(f[i].vars[k].name);
            free(f[i].vars[k].value);
        }
        free(f[i].vars);
        f[i].vars = NULL;
        f[i].nvars = 0;
    }
}

/* The longest /proc/PID/maps text kept (a longer one is cut at a line end). */
#define DSL_MAPS_MAX (8u << 20)

/* ---- a snapshot, start to end (take.c) ---------------------------------- */

/* Unwind s's copy (if s->needs_unwind) and name its frames into out, with
 * their locals if with_locals: in the analysis process with privsep
 * (sep_name), else here.  With the namer locked.  The unwinder and the
 * locals may read the live process beyond the copy: the caller checks
 * snapshot_still_same() once it has read all it will.  Returns the number
 * of frames named, or -errno (s->note says why). */
int snapshot_name(const struct config *cfg, struct worker *w, struct snapshot *s,
                  bool with_locals, struct symframe *out, unsigned max);
/* Unwinding in-process (analysis's unwind_snapshot, timed). */
void snapshot_finish(const struct config *cfg, struct worker *w, struct snapshot *s);
/* One naming of w's snapshots at a time: the analysis thread, or the loop
 * (a follow-up sample tries, dogslowctl dump waits). */
void namer_lock(struct worker *w);
bool namer_trylock(struct worker *w);
void namer_unlock(struct worker *w);
/* Puts the Python reader into capture's hold (snapshot_set_hooks). */
void take_init(void);

/* ---- the analysis process (sep.c) and its protocol (sepmsg.c) ---------- */

/*
 * With privsep on (the default), the frames of a snapshot are unwound and
 * named -- libdwfl, the DWARF location evaluator: every parser of what a
 * worker controls, but the CPython reader -- in a process of their own
 * that holds no capability, sits under a seccomp filter of its own and
 * opens no file: it asks the daemon for the worker's memory, its maps and
 * its files, which the daemon reads or opens for it after checking them.
 * docs/architecture.md, "The trust boundary".
 */

/* Start the spawner (before the seccomp filter and before any thread): a
 * process without capabilities that forks analysis processes on demand.
 * 0, or -errno (then frames are named in the daemon, with a warning). */
int sep_start(const struct config *cfg);
/* At exit, after the last snapshot is named: the analysis process and
 * the spawner see their sockets close and exit. */
void sep_stop(void);
/* Is naming done in an analysis process? */
bool sep_active(void);
/* The analysis channel: one user at a time (the analysis thread, or the
 * loop for a follow-up sample or dogslowctl dump).  sep_trylock: false if
 * busy. */
void sep_lock(void);
bool sep_trylock(void);
void sep_unlock(void);
/* Unwind s (if s->needs_unwind) and name its frames into out, in the
 * analysis process, serving its requests for w meanwhile.  With the
 * channel locked.  Returns the number of frames named, or -errno (the
 * analysis process died or answered nonsense: it is replaced for the next
 * snapshot, and s->err/s->note say why). */
int sep_name(const struct config *cfg, struct worker *w, struct snapshot *s, bool with_locals,
             struct symframe *out, unsigned max);
/* The CPython reader's unheld halves, in w's user's Python analysis
 * process (the loop waits: a few milliseconds).  sep_py_find(): is w a
 * CPython process?  As py_runtime_find(); the ELF files are read there,
 * the offsets set up here from the version it names.  sep_py_name(): name
 * the frames py_capture() read while tid was held (py_finish() there) and
 * keep what it learnt in w's code cache; s is replaced by the named stack,
 * or emptied with a note saying why it could not be named. */
int sep_py_find(struct worker *w, struct py_runtime *ret, char *why, size_t why_size);
void sep_py_name(struct worker *w, pid_t tid, struct py_stack *s);
/* w is gone: the analysis process drops its session with the next job. */
void sep_forget(const struct worker *w);
/* From the scan timer: end the analysis processes of users that have no
 * registered worker left (their sessions' memory goes with them). */
void sep_sweep(struct daemon *d);
/* Statistics for dogslowctl status and the log. */
struct sep_stats {
    unsigned nprocs;        /* analysis processes now: one per user whose workers they name */
    pid_t pids[4];          /* the first ones */
    unsigned py_nprocs;     /* Python analysis processes: one per user of Python workers */
    pid_t py_pids[4];
    unsigned long jobs;     /* snapshots named there */
    unsigned long py_jobs;  /* Python stacks named and runtimes looked for there */
    unsigned long restarts; /* analysis processes replaced */
    unsigned long refused;  /* requests of it refused (reads, files) */
};
void sep_get_stats(struct sep_stats *ret);
/* The analysis process's main loop (analysis/child.c), in the forked
 * process: never returns. */
void analysis_child_main(int sock, bool confine, bool test_garbage, bool python)
    __attribute__((noreturn));
/* Before the spawner's filter: what the analysis process needs and cannot
 * do once confined (the vDSO copy, the demangler). */
void analysis_child_prepare(void);

#define SEP_MAGIC    0x414c5344u /* "DSLA" */
#define SEP_HDR_SIZE 16u
#define SEP_MSG_MAX  (24u << 20)   /* payload bytes of one message */
#define SEP_STACK_MAX (16u << 20)  /* a stack copy */
#define SEP_READ_MAX (1u << 20)    /* bytes of memory asked at once */
#define SEP_FORGET_MAX 64u         /* workers forgotten per job */
#define SEP_VARS_PER_FRAME 64u
#define SEP_VARS_PER_RESULT 2048u
#define SEP_VAR_NAME_MAX 255u
#define SEP_VAR_VALUE_MAX 8192u

enum sep_type {
    SEP_JOB = 1,   /* daemon -> analysis: a snapshot to name (struct sep_job) */
    SEP_RESULT,    /* analysis -> daemon: its frames (struct sep_result) */
    SEP_MEM_READ,  /* analysis -> daemon: u64 addr, u32 len */
    SEP_MEM_DATA,  /* daemon -> analysis: an answer: errno, bytes */
    SEP_MAPS,      /* analysis -> daemon: the process's maps, please */
    SEP_MAPS_TEXT, /* daemon -> analysis: an answer: errno, the text */
    SEP_OPEN,      /* analysis -> daemon: u8 kind, a path */
    SEP_OPENED,    /* daemon -> analysis: an answer: errno; the descriptor with it */
    SEP_PY_FIND,   /* daemon -> analysis: find CPython in a worker (struct sep_py_find) */
    SEP_PY_FOUND,  /* analysis -> daemon: what it found (struct sep_py_found) */
    SEP_PY_JOB,    /* daemon -> analysis: Python frames read while held (struct sep_py_job) */
    SEP_PY_RESULT, /* analysis -> daemon: them named, the code cache's entries */
    SEP_MEM_READV, /* analysis -> daemon: u32 n, n x (u64 addr, u32 len) */
    SEP_MEM_DATAV, /* daemon -> analysis: an answer: errno, u32 ranges read whole, their bytes */
    SEP_TYPE_END
};

enum sep_open_kind {
    SEP_OPEN_MODULE = 1,    /* a file the process maps (its maps say so) */
    SEP_OPEN_DEBUGINFO = 2, /* a separate debug file under /usr/lib/debug */
};

struct sep_hdr {
    uint32_t magic;
    uint16_t type;
    uint16_t flags; /* 0 */
    uint32_t len;   /* payload bytes */
    uint32_t reserved;
};
_Static_assert(sizeof(struct sep_hdr) == SEP_HDR_SIZE, "sep header size");

struct sep_buf {
    uint8_t *p;
    size_t len, cap;
    bool err;
};

struct sep_job {
    uint64_t worker_id;
    pid_t pid, tid;
    int err;          /* the snapshot's err and note so far (the capture's) */
    char note[160];
    bool with_locals, gone, needs_unwind, have_regs;
    uint32_t regs_known;
    uint64_t regs[DSL_NREGS];
    uint32_t max_frames, max_value_bytes;
    char redact[1024];
    uint64_t stack_addr;
    const uint8_t *stack; /* decoded: into the message */
    uint32_t stack_len;
    const char *maps;     /* the copy taken with the snapshot, or NULL */
    uint32_t maps_len;
    unsigned nforget;
    uint64_t forget[SEP_FORGET_MAX];
    unsigned nframes;     /* frames found while held (unwinding the live thread) */
    struct frame frames[DSL_FRAMES_MAX];
};

struct sep_result {
    int err;          /* the snapshot's err and note after unwinding */
    char note[160];
    uint64_t unwind_ns;
    unsigned nframes;
    struct frame frames[DSL_FRAMES_MAX];
    unsigned nsym;
    struct symframe *sym; /* the caller's array; decoded vars are malloc'd */
};

/* The CPython reader's unheld halves (take.c): finding the runtime, and
 * naming the frames captured while the thread was held (py_finish). */
#define SEP_PY_NAME_MAX 1024u   /* a frame's file or function, on the wire */
#define SEP_PY_FRAMES_MAX 1024u /* struct py_limits' max_frames ceiling */
#define SEP_PY_LOCALS_MAX 1024u /* and max_locals' */
struct sep_py_find {
    uint64_t worker_id;
    pid_t pid;
    char exe[PATH_MAX]; /* /proc/PID/exe, read by the daemon ("" unknown) */
};

struct sep_py_found {
    int r; /* py_runtime_find()'s: 0, -ENOENT, -EPROTONOSUPPORT, ... */
    char why[128];
    uint32_t version_hex;
    uint64_t runtime_addr;
    struct py_types types;
    char path[256];
};

struct sep_py_job {
    uint64_t worker_id;
    pid_t pid, tid; /* the worker, and the thread whose memory is read */
    uint32_t version_hex;
    uint64_t runtime_addr;
    struct py_types types;
    unsigned nforget;
    uint64_t forget[SEP_FORGET_MAX];
    /* encoding: the capture (py_capture's, unnamed); decoded: a new one
     * (py_stack_free), laid out as py_capture() lays it out */
    struct py_stack stack;
};

struct sep_py_result {
    struct py_stack stack; /* named; decoded: a new one (py_stack_free) */
    unsigned ncache;       /* code objects py_finish() checked, for the code cache */
    struct py_code_slot cache[SEP_PY_FRAMES_MAX];
};

void sep_begin(struct sep_buf *b, enum sep_type type);
void sep_buf_free(struct sep_buf *b);
/* Raw bytes after sep_begin() (tests, and the test hook of child.c). */
void sep_put_bytes(struct sep_buf *b, const void *p, size_t n);
/* Send b (begun with sep_begin) whole, pass_fd with it if >= 0. */
int sep_send(int fd, struct sep_buf *b, int pass_fd);
/* Receive one message into b (payload only) and its header; a descriptor
 * that came with it in *ret_fd (else -1; NULL: closed).  deadline:
 * CLOCK_MONOTONIC ns, 0 for none.  -EPIPE at the end of the stream,
 * -EBADMSG for a bad header, -ETIMEDOUT. */
int sep_recv(int fd, struct sep_buf *b, struct sep_hdr *ret_hdr, int *ret_fd, uint64_t deadline);
int sep_job_encode(struct sep_buf *b, const struct sep_job *j);
int sep_job_decode(const uint8_t *p, size_t len, struct sep_job *j);
int sep_result_encode(struct sep_buf *b, const struct sep_result *r);
/* Decodes at most max_sym named frames into r->sym; on an error nothing is
 * left allocated. */
int sep_result_decode(const uint8_t *p, size_t len, struct sep_result *r, unsigned max_sym);
void sep_mem_read_encode(struct sep_buf *b, uint64_t addr, uint32_t len);
/* A vectored read: at most REMOTE_READV_MAX ranges (struct remote_range's
 * addr and len; buf is not sent), SEP_READ_MAX bytes in all. */
#define SEP_READV_MAX 64u
int sep_mem_readv_encode(struct sep_buf *b, const uint64_t *addr, const uint32_t *len,
                         unsigned n);
int sep_mem_readv_decode(const uint8_t *p, size_t len, uint64_t *ret_addr, uint32_t *ret_len,
                         unsigned *ret_n);
int sep_mem_read_decode(const uint8_t *p, size_t len, uint64_t *ret_addr, uint32_t *ret_len);
void sep_answer_encode(struct sep_buf *b, enum sep_type type, int err, const void *p, size_t n);
int sep_answer_decode(const uint8_t *p, size_t len, int *ret_err, const uint8_t **ret_data,
                      size_t *ret_len);
void sep_open_encode(struct sep_buf *b, enum sep_open_kind kind, const char *path);
int sep_open_decode(const uint8_t *p, size_t len, enum sep_open_kind *ret_kind, char *path,
                    size_t size);
int sep_py_find_encode(struct sep_buf *b, const struct sep_py_find *f);
int sep_py_find_decode(const uint8_t *p, size_t len, struct sep_py_find *f);
int sep_py_found_encode(struct sep_buf *b, const struct sep_py_found *f);
int sep_py_found_decode(const uint8_t *p, size_t len, struct sep_py_found *f);
int sep_py_job_encode(struct sep_buf *b, const struct sep_py_job *j);
/* The stack is laid out for the limits the message carries (bounded as
 * py_capture() bounds them). */
int sep_py_job_decode(const uint8_t *p, size_t len, struct sep_py_job *j);
int sep_py_result_encode(struct sep_buf *b, const struct sep_py_result *r);
/* Decoded against what was sent (job): the limits must be the job's, and
 * no more frames or locals come back than went; each cache entry is one of
 * the job's code objects. */
int sep_py_result_decode(const uint8_t *p, size_t len, const struct py_stack *job,
                         struct sep_py_result *r);
/* May the analysis process have this file?  A module: a path the process
 * maps (a line of its maps text names it exactly); the mapped file's
 * device and inode come back in *ret_dev, *ret_ino, and what is opened
 * must be that file (the path may lead elsewhere by now: a symlink put
 * in its place).  A debug file: a plain path under /usr/lib/debug/ ending
 * in .debug. */
bool sep_open_allowed(enum sep_open_kind kind, const char *path, const char *maps,
                      size_t maps_len, dev_t *ret_dev, uint64_t *ret_ino);
/* Fuzzing entry (fuzz/): every decoder on data. */
int sep_fuzz_one(const uint8_t *data, size_t size);

/* ---- the daemon --------------------------------------------------------- */

/* What the registry tells the loop (main.c fills them in): the registry
 * calls nothing of watch.c, follow.c or control.c itself. */
struct registry_events {
    /* A process registered, or the previous daemon's were taken over:
     * their scoreboards may already hold running requests. */
    void (*registered)(struct daemon *d);
    /* A registered process is going; its scoreboard is still mapped. */
    void (*leaving)(struct daemon *d, struct worker *w);
    /* A record was torn down (registered or not), its deadlines gone;
     * snapshots of it still being named keep it (w->busy). */
    void (*removed)(struct daemon *d, struct worker *w);
    /* A connection's first message is a dogslowctl request. */
    void (*control)(struct daemon *d, struct worker *w);
};

struct daemon {
    struct config cfg;
    struct registry_events events;
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
/* The filters of the spawner and of the analysis process (sep.c): a
 * process that opens no file and traces nothing; the spawner may fork. */
int sandbox_enter_spawner(void);
int sandbox_enter_analysis(void);
int sandbox_build_confined(bool spawner, struct sock_fprog *ret);
/* The program, without installing it (tests, --print-seccomp). */
int sandbox_build(struct sock_fprog *ret);
/* How many calls were denied so far, and the number of the last one. */
unsigned long sandbox_denied(int *last);
/* From the scan timer: log new denials through the normal log. */
void sandbox_poll(void);
const char *sandbox_syscall_name(int nr);

/* ---- what reports never show (redact.c) ---------------------------------- */

/* True when a variable of this name must not be shown: its name contains
 * one of the words of c->redact (any case; the built-in list if c is
 * NULL). */
bool redact_name(const struct config *c, const char *name);
/* True when a shown value holds what looks like a payment card number
 * (13 to 19 digits, spaces or dashes between, passing the Luhn check). */
bool redact_card_number(const char *value);

/* ---- rate-limited log lines (ratelimit.c) -------------------------------- */

/*
 * Rate-limited log lines (ratelimit.c).
 *
 * A peer can make the daemon log a line per connection at will (a refused
 * connection, one closed before its hello, a protocol error): thousands a
 * second from one local user would fill the disk and bury everything else.
 * Each such kind of line has a 'struct ratelimit': at most 'burst' lines
 * per 'interval'; the ones dropped are counted, and the next line that goes
 * out says "(N more suppressed)".  When no line comes after a burst, the
 * scan timer's ratelimit_flush() says so instead, so a count is never lost.
 *
 * Loop thread only: nothing here is locked.
 */

struct ratelimit {
    const char *what; /* the kind, for ratelimit_flush()'s line */
    uint64_t interval_ns;
    unsigned burst;           /* lines per interval */
    uint64_t begin_ns;        /* start of the current interval; 0: none yet */
    unsigned logged;          /* lines logged in the current interval */
    unsigned long suppressed; /* dropped since the last line that went out */
    int level;                /* of the last line, for ratelimit_flush()'s */
    struct ratelimit *next;   /* on ratelimit_flush()'s list once one was dropped */
    bool listed;
};

#define RATELIMIT_INIT(what_, interval_ms_, burst_)                                                \
    {                                                                                              \
        .what = (what_), .interval_ns = 1000000ull * (uint64_t)(interval_ms_), .burst = (burst_)   \
    }

/*
 * May a line go out at now?  If so, *ret_suppressed is how many were
 * dropped since the last one (and that count starts again); if not, this
 * one is counted as dropped.
 */
bool ratelimit_allow(struct ratelimit *rl, uint64_t now, unsigned long *ret_suppressed);

/* log_msg() through rl, at the loop's clock; a line that goes out after
 * dropped ones ends with " (N more suppressed)". */
void log_ratelimited(struct ratelimit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * From the scan timer: for each kind whose dropped lines no later line
 * reported and whose interval is over, one line "N more ... suppressed".
 * Returns how many lines it logged.
 */
unsigned ratelimit_flush(uint64_t now);

/* ---- ignore patterns (ignore.c) ------------------------------------------ */

/*
 * Ignored requests: the operator's ignore_urls and a worker's own patterns
 * (sent in its hello), matched against the request path when the daemon
 * discovers a request -- never on the worker's hot path.
 *
 * Patterns are fnmatch-style without FNM_PATHNAME: '*' matches any run of
 * characters, '/' included, '?' one character, '[a-z]' / '[!a-z]' one of a
 * set, and '\' quotes the next character.  The matcher is our own: its cost
 * is bounded by pattern length x path length, whatever a worker sends
 * (glibc's fnmatch backtracks exponentially on some patterns).
 */

#define IGNORE_PATTERN_MAX         128 /* bytes of one pattern */
#define IGNORE_PATTERNS_MAX        32  /* patterns in the operator's list */
#define IGNORE_WORKER_PATTERNS_MAX 16  /* patterns a worker may send */

/* Is p a usable pattern?  0, or -EINVAL with the reason in why. */
int ignore_pattern_check(const char *p, char *why, size_t size);

/* Does the whole of s[0..n) match pattern pat? */
bool ignore_glob(const char *pat, const char *s, size_t n);

/* The path part of a URL: skips "scheme://host" and stops at '?' or '#'.
 * Returns its start; its length in *ret_len. */
const char *ignore_url_path(const char *url, size_t *ret_len);

/* Does the path of url match one of a comma-separated list of patterns? */
bool ignore_list_match(const char *list, const char *url);

/* Check and keep a worker's own patterns (comma-separated; "" for none) in
 * w->ignore_urls.  -EINVAL with the reason in why when they are unusable. */
int ignore_worker_set(struct worker *w, const char *list, char *why, size_t size);

/* The hook in watch.c: should this newly discovered request go unwatched?
 * (Also true for every request while 'enabled' is false.) */
bool ignore_request(struct daemon *d, struct worker *w, const struct dsl_request *req);

/* ---- dogslowctl connections (control.c) ---------------------------------- */

/*
 * Control connections (dogslowctl) and the access rules of the socket.
 *
 * Workers and dogslowctl share one socket; a connection is told apart by
 * its first message: HELLO makes it a worker (registry.c), CTL_REQUEST a
 * control connection, handed over here by control_take().  One command per
 * connection: the answer is queued (bounded) and written as the peer reads
 * it, so a slow or stuck dogslowctl never blocks the event loop.
 */

#define CTL_CONNS_MAX 16 /* control connections at once */

struct ctl_conn;

/* Remember where the configuration came from, and when we started, for
 * status and config answers. */
void control_init(struct daemon *d, const char *config_source);

/* The framed CTL_REQUEST in w->framer: take w's connection over, check who
 * it is, run the command and queue the answer.  w is removed. */
void control_take(struct daemon *d, struct worker *w);
void control_event(struct daemon *d, struct ctl_conn *c, uint32_t events);
/* Drop control connections that have not read their answer in time. */
void control_expire(struct daemon *d, uint64_t now);
void control_close_all(struct daemon *d);

/*
 * The peer's supplementary groups: from the kernel (SO_PEERGROUPS, as they
 * were at connect time), else from /proc/PID/status.  Returns how many
 * (at most max), or -errno.
 */
int access_peer_groups(int fd, pid_t pid, gid_t *ret, size_t max);
/* May this worker register (allowed_users, allowed_groups)? */
bool access_worker_allowed(struct daemon *d, struct worker *w);
/* May this connection use dogslowctl (root, the daemon's user, or a member
 * of the socket's group)?  The group: socket_group, or the daemon's. */
bool access_control_allowed(struct daemon *d, struct worker *w);
gid_t access_control_group(const struct daemon *d);

/* ---- following an undead request to its end (follow.c) ------------------- */

/* Following an undead request to its end (follow.c). */

/* Start following the request just reported (if follow_hz is set and
 * follow_max allows); the report's snapshot is the first sample. */
bool follow_start(struct daemon *d, struct worker *w, uint32_t slot,
                  const struct dsl_request *req, const char *report_path,
                  const struct snapshot *first, const struct symframe *frames, unsigned nframes);
/* A follow deadline fired: sample again, or finish. */
void follow_fire(struct daemon *d, const struct deadline *e);
/* From the scan timer: finish follow-ups of requests that ended. */
void follow_scan(struct daemon *d, uint64_t now);
/* The worker is being removed: its follow-ups did not finish. */
void follow_worker_gone(struct daemon *d, struct worker *w);
/* At shutdown. */
void follow_stop_all(struct daemon *d);
unsigned follow_count(void);

/* The requests being followed, for dogslowctl status. */
struct follow_info {
    pid_t pid, tid;
    uint64_t start_ns; /* the request's start (CLOCK_MONOTONIC) */
    unsigned samples;
    uint64_t pause_ns;
    const char *method, *url; /* valid until the next event */
};
unsigned follow_list(struct follow_info *out, unsigned max);

#endif
