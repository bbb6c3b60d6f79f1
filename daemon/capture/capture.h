/* SPDX-License-Identifier: MIT */
/*
 * The capture layer (daemon/capture/): holding one thread of a verified,
 * registered process and copying what it needs while the thread waits
 * (registers, stack, the Python frames' values), and the one way to read
 * another process's memory.  Calls nothing of analysis or output.
 */
#ifndef DOGSLOWD_CAPTURE_H
#define DOGSLOWD_CAPTURE_H

#include "core.h"

/* ---- reading another process's memory (remote.c) ------------------------- */

/*
 * Reading another process's memory.  One function reads; a short read is a
 * failure; callers use the typed helper and never pass sizes by hand.
 *
 * The reader is an interface so that the same parsing code runs against a
 * live process (process_vm_readv), a stack copied while the thread was held,
 * or a fake address space in tests and fuzz harnesses.
 */

/* One range of a vectored read: len bytes at addr into buf. */
struct remote_range {
    uint64_t addr;
    void *buf;
    size_t len;
};

/* Most ranges one readv call takes. */
#define REMOTE_READV_MAX 64

struct remote_mem {
    /* Read exactly len bytes at addr into buf: 0, or a negative errno
     * (-EFAULT for unmapped memory).  Never a partial result. */
    int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
    /* Optional: read n ranges in one go (one system call for a process).
     * Returns how many leading ranges were read whole (a range after the
     * first that fails is not read), or a negative errno.  Bypasses the
     * budget: the caller accounts for what it asked. */
    int (*readv)(void *ctx, const struct remote_range *r, unsigned n);
    void *ctx;
    /* Budget: total bytes this reader may still fetch (0 = unlimited).
     * Decremented by remote_read(); a read past it fails with -E2BIG. */
    size_t budget;
    size_t used;
};

/* Largest single read allowed through remote_read(). */
#define REMOTE_READ_MAX (1u << 20)

int remote_read(struct remote_mem *m, uint64_t addr, void *buf, size_t len);
#define remote_read_type(m, addr, ptr) remote_read((m), (addr), (ptr), sizeof(*(ptr)))

/* Read exactly len bytes of process pid: 0, -EFAULT (short), -errno.  With
 * process_vm_readv(), unless a reader was set: the analysis process has
 * no right to read another process and asks the daemon (child.c). */
typedef int (*remote_live_fn)(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Its vectored read, as struct remote_mem's readv (NULL: none). */
typedef int (*remote_livev_fn)(pid_t pid, const struct remote_range *r, unsigned n);
void remote_set_live(remote_live_fn fn, remote_livev_fn fnv);
int remote_live_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* A reader over a live process with process_vm_readv().  ctx is the pid. */
struct remote_proc {
    pid_t pid;
};
void remote_mem_proc(struct remote_mem *m, struct remote_proc *p, pid_t pid);

/* Read a NUL-terminated string of at most max-1 bytes at addr into buf
 * (always terminated).  Reads in small chunks so it never crosses far into
 * unmapped memory.  Returns its length or a negative errno. */
int remote_read_cstr(struct remote_mem *m, uint64_t addr, char *buf, size_t max);

/*
 * A page cache in front of a reader: whole 4 KiB pages, so that reading
 * many small objects that sit close together (a Python stack's frames, code
 * objects, strings) costs a few dozen system calls, not hundreds.  It
 * returns what direct reads would; pages that cannot be read whole fall
 * back to exact reads.
 *
 * One cache per thread, for the life of the thread: 512 pages, 64 sets of
 * 8 ways, least recently used out.  Its pages carry over from one use to
 * the next on the thread (the Python reader's py_finish() reuses what its
 * py_capture() fetched) unless another use came between: each use holds a
 * generation number, and the cache is emptied when it is not the last one
 * given out.
 */
struct remote_cache;

/* A range of the worker's memory to prefetch. */
struct remote_span {
    uint64_t addr;
    size_t len;
};

/* Allocate and touch this thread's cache pages (512 KiB) if not done yet:
 * call it before a thread is held, so the pause pays no page faults.
 * 0 or -ENOMEM. */
int remote_cache_prepare(void);

/*
 * Put this thread's cache in front of under and make *m read through it
 * (plain reads: no readv, no budget of its own).  At most max_bytes are
 * fetched from under from now on; the counters start at 0.  The cache is
 * emptied first when fresh, or when *gen is not the last generation given
 * out (0 never is); *gen is then a new one.  Returns the cache, or NULL (nothing
 * changed) when its pages cannot be allocated.
 */
struct remote_cache *remote_cache_open(struct remote_mem *m, struct remote_mem *under,
                                       size_t max_bytes, bool fresh, uint64_t *gen);

/* Bring the pages under n spans into the cache, with one vectored read per
 * REMOTE_READV_MAX pages, when under has readv.  Best effort: a page that
 * cannot be read is left out (a later read of it fails the usual way). */
void remote_cache_prefetch(struct remote_cache *c, const struct remote_span *spans, size_t n);

/* What was fetched from under since remote_cache_open(): bytes (whole
 * pages) and calls. */
size_t remote_cache_bytes(const struct remote_cache *c);
unsigned remote_cache_reads(const struct remote_cache *c);

/* ---- reading a snapshot's process (snapshot_read.c) ---------------------- */

/* Read [addr, addr + len) of the snapshot's thread: from the stack copy,
 * else from the live process unless s->gone.  0 or -errno. */
int snapshot_read(const struct snapshot *s, uint64_t addr, void *buf, size_t len);
/* /proc/PID/maps, whole (at most DSL_MAPS_MAX bytes, core.h; a longer one is cut at
 * a line end): a malloc'd NUL-terminated text, or NULL. */
char *snapshot_read_maps(pid_t pid, size_t *len);

/* ---- holding a thread (snapshot.c) --------------------------------------- */

/* Hold the thread, copy registers and stack (and what the hooks read), let
 * it go.  Returns -EINPROGRESS when the thread was interrupted but did not
 * stop at once: it is then in d->stopping, and let go when it stops -- or
 * its snapshot is finished then, if the caller claims it (snapshot_claim).
 * s->stack is a buffer reused across calls.  Unwinding the copy is
 * analysis's (core's snapshot_finish()). */
int snapshot_take(struct daemon *d, struct worker *w, pid_t tid, struct snapshot *s);

/* What capture runs besides its own copies, set once by core
 * (take_init()): this is how the Python reader (analysis) runs inside the
 * hold without capture calling analysis.  Any of them may be NULL. */
struct snapshot_hooks {
    /* Before a thread is held: unheld reads (finding the runtime, warming
     * caches). */
    void (*before)(const struct config *cfg, struct worker *w, pid_t tid);
    /* While it is held, after the registers and the stack are copied. */
    void (*held)(const struct config *cfg, struct worker *w, pid_t tid, struct snapshot *s);
    /* After the detach, when the process is still the one that registered. */
    void (*after)(const struct config *cfg, struct worker *w, struct snapshot *s);
};
void snapshot_set_hooks(const struct snapshot_hooks *h);
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


#endif
