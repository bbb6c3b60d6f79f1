/* SPDX-License-Identifier: MIT */
/*
 * The analysis layer (daemon/analysis/): everything that parses what a
 * worker controls after the thread runs again -- unwinding the stack copy,
 * naming frames from ELF and DWARF, local variables, the CPython reader.
 * May read memory through capture.h; calls nothing of output.
 */
#ifndef DOGSLOWD_ANALYSIS_H
#define DOGSLOWD_ANALYSIS_H

#include <elfutils/libdw.h>

#include "capture.h"
#include "core.h"

/* ---- unwinding the copy (unwind.c) --------------------------------------- */

/* Unwind a snapshot's copy with libdwfl (unwind.c).  Needs w's Dwfl with
 * modules reported (symbolize_prepare). */
int unwind_snapshot(const struct config *cfg, struct worker *w, struct snapshot *s);

/* ---- naming frames (symbolize.c) ----------------------------------------- */

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
void symbolize_release_worker(struct worker *w);
/* Look up the demangler and copy the vDSO image now (the analysis process
 * does it before its seccomp filter: it can open no file afterwards). */
void symbolize_init(void);
/* Where a confined analysis process gets what it cannot open itself: the
 * maps of a process (a malloc'd text, or NULL) and a descriptor for a
 * file (a module the process maps, or a separate debug file; -errno). */
struct analysis_io {
    char *(*read_maps)(pid_t pid, size_t *ret_len);
    int (*open_file)(enum sep_open_kind kind, const char *path);
};
/* NULL: read and open directly (the daemon naming in-process). */
void analysis_set_io(const struct analysis_io *io);
const struct analysis_io *analysis_get_io(void);
/* Free this thread's cache of frame names (threads free theirs at exit). */
void symbolize_cache_release(void);

/* ---- local variables (locals.c, dwarf_expr.c) ---------------------------- */

/*
 * Local variables and parameters of native frames, from DWARF location
 * expressions evaluated against the unwound registers and the copied stack.
 * See locals.c; the expressions are dwarf_expr.c's (dwarf_expr.h, private).
 */

/* Bounds for one report. */
#define LOCALS_VARS_PER_FRAME 64
#define LOCALS_VARS_PER_REPORT 2048
#define LOCALS_READ_BUDGET (512u * 1024u) /* bytes read from the worker */
#define LOCALS_ARRAY_ITEMS 8
#define LOCALS_STRUCT_MEMBERS 16

struct locals_ctx {
    const struct config *cfg;
    struct worker *w;
    const struct snapshot *s;
    struct remote_mem mem; /* the stack copy first, then the live process */
    unsigned vars_total;
    size_t value_max; /* characters per value */
};

void locals_begin(struct locals_ctx *lc, const struct config *cfg, struct worker *w,
                  const struct snapshot *s);
void locals_end(struct locals_ctx *lc);

/*
 * Collect the variables visible in scopes[from..to] (to is the function or
 * inlined-function scope, lower indexes are lexical blocks inside it) at
 * the CU-relative address pc, into out->vars.  subprogram gives the frame
 * base; fr holds this frame's registers, caller the caller's (for the CFA).
 */
void locals_collect(struct locals_ctx *lc, Dwarf_Die *cu, Dwarf_Die *scopes, int from, int to,
                    Dwarf_Die *subprogram, Dwarf_Addr pc, Dwarf_Addr bias,
                    const struct frame *fr, const struct frame *caller, struct symframe *out);

/* Fuzzing entry (fuzz/), in dwarf_expr.c: evaluate a DWARF expression,
 * registers and a memory image all taken from data.  Never crashes;
 * returns 0. */
int locals_fuzz_eval(const uint8_t *data, size_t size);

/* ---- the CPython reader (py_*.c; py.h is its private header) ------------- */

/*
 * Python frames from outside: read a CPython worker's interpreter frames,
 * with file names, qualified function names, line numbers and locals,
 * straight from its memory.  No code runs in the worker, nothing is
 * written to it, and every byte read is treated as hostile.
 *
 * Supported: CPython 3.11 and 3.12 (struct offsets typed in from their
 * internal headers, verified with tests/python/dump_offsets.c), 3.13 and
 * 3.14, with their free-threaded builds (from the _Py_DebugOffsets table
 * the runtime carries at the start of _PyRuntime, "xdebugpy" cookie; what
 * that table lacks -- dict, set and unicode internals -- comes from each
 * version's headers).  docs/pyframes.md lists the interpreters tested.
 * Anything before 3.11, or after 3.14, is refused with -EPROTONOSUPPORT
 * and "unsupported Python x.y" rather than read with the wrong layout.
 * x86_64 (and other LP64
 * little-endian targets with the same layout) only.
 *
 * Use:
 *
 *     struct py_runtime rt;                      once per worker, cached:
 *     r = py_runtime_find(pid, &rt, why, sizeof(why));
 *         -ENOENT: not a Python process; -EPROTONOSUPPORT: why says
 *         "unsupported Python 3.10"; other -errno: why says what failed.
 *
 *     struct remote_mem m; struct remote_proc p; while the thread is held:
 *     remote_mem_proc(&m, &p, pid);
 *     struct py_stack st;
 *     r = py_read_stack(&rt, &m, tid, &lim, &st);
 *     ... st.frames[0] is the innermost frame ...
 *     py_stack_free(&st);
 *
 * Mixed stacks (py-spy dump --native style): every activation of the
 * interpreter loop (_PyEval_EvalFrameDefault in the native stack) runs a
 * run of consecutive Python frames; the oldest frame of each run has
 * entry == true (3.11: _PyInterpreterFrame.is_entry; 3.12+: the frame just
 * inside a FRAME_OWNED_BY_CSTACK shim).  So, walking the native frames from
 * the innermost outwards, each _PyEval_EvalFrameDefault frame stands for
 * the Python frames from the current position up to and including the next
 * one with entry set.  Native frames between two eval frames (a C extension
 * called from Python, or C calling back into Python) stay where they are.
 *
 * Costs: reads go through capture's page cache (remote.c: 4 KiB pages,
 * 8-way), so a stack costs a few dozen process_vm_readv calls, not
 * thousands; see struct py_stack's counters.
 */

/*
 * Find the CPython runtime in process pid: the executable or libpython that
 * defines the dynamic symbol _PyRuntime, its load bias, its version
 * (Py_Version, or the file name for versions before 3.11) and the offsets.
 * Reads /proc/PID/maps, the ELF file (through /proc/PID/map_files or
 * /proc/PID/root) and a few words of the worker's memory.  Takes a few
 * milliseconds: call it once per worker and keep the result.
 *
 * Returns 0; -ENOENT if no mapping defines _PyRuntime (not Python);
 * -EPROTONOSUPPORT for a Python version this reader does not know; another
 * -errno otherwise.  On failure why (if not NULL) holds a line for the
 * report ("unsupported Python 3.10") and ret is untouched.
 */
int py_runtime_find(pid_t pid, struct py_runtime *ret, char *why, size_t why_size);
/* The same with the executable's path given (exe: "" for none), for the
 * analysis process, which cannot read /proc/PID/exe; it reads the maps and
 * opens the files through its analysis_io. */
int py_runtime_find_exe(pid_t pid, const char *exe, struct py_runtime *ret, char *why,
                        size_t why_size);

/*
 * Fill ret for version_hex with the built-in offsets (3.11, 3.12, 3.13,
 * 3.14; for 3.13+ only a start: the runtime's table has the last word),
 * _PyRuntime at runtime_addr and no known types: for tests, fuzzing, and
 * by py_runtime_find().  -EPROTONOSUPPORT for any other version.
 */
int py_runtime_init(struct py_runtime *ret, uint32_t version_hex, uint64_t runtime_addr);

/*
 * 3.13+: replace the offsets with those of the _Py_DebugOffsets table at
 * the start of _PyRuntime (its own layout differs between 3.13 and 3.14),
 * each checked against a sane bound and against the object layout the
 * renderer assumes.  -EPROTO if the cookie or version does not match
 * rt->version_hex or an offset is off; -EPROTONOSUPPORT for a
 * free-threaded 3.13.
 */
int py_runtime_load_debug_offsets(struct py_runtime *rt, struct remote_mem *m);

/* py_runtime_init() and, for 3.13+, py_runtime_load_debug_offsets()
 * through m (the worker's memory): the offsets for a runtime found at
 * runtime_addr, wherever it was found (py_runtime_find(), or the daemon
 * from what its analysis process found).  -EPROTONOSUPPORT with why
 * ("unsupported Python 3.10", "... (free-threaded build)"), or a read's
 * -errno. */
int py_runtime_setup(struct py_runtime *rt, uint32_t version_hex, uint64_t runtime_addr,
                     struct remote_mem *m, char *why, size_t why_size);

/* The defaults above, with locals on. */
void py_limits_default(struct py_limits *ret);

/*
 * Read thread tid's Python stack through m (which must read the worker
 * rt describes).  Returns 0 with ret filled (nframes may be 0: the thread
 * runs no Python code right now), even when the walk ended early at a
 * corrupt or looping frame (then ret->err and ret->note say so);
 * -ESRCH if no thread state has native_thread_id == tid (a thread that
 * never ran Python); -ENOMEM; -EINVAL.  ret must be freed with
 * py_stack_free() after a 0 return.
 */
int py_read_stack(struct py_runtime *rt, struct remote_mem *m, pid_t tid,
                  const struct py_limits *lim, struct py_stack *ret);

/*
 * py_read_stack() in two halves, so that the thread is held only for what
 * changes as it runs.  py_capture(), while the thread is held: the frame
 * chain, each frame's position and its locals' values (same returns as
 * py_read_stack()).  py_finish(), after it is let go, on the same thread
 * of the daemon (its page cache carries over; another thread works, with
 * more reads): files, functions, lines, the locals' names and the names of
 * types shown in values -- all from code and type objects, which do not
 * change while the frames that use them exist.  py_finish() also keeps
 * rt's code cache, which spares the next py_capture() of the worker its
 * code object reads.  Until py_finish() the
 * frames have no names and values hold marks: nothing may show them.
 */
int py_capture(const struct py_runtime *rt, struct remote_mem *m, pid_t tid,
               const struct py_limits *lim, struct py_stack *ret);
void py_finish(struct py_runtime *rt, struct remote_mem *m, struct py_stack *s);

/* A stack's one allocation, laid out as py_capture() lays it out for lim
 * (bounded the same way; NULL: the defaults), with extra_text bytes of
 * text room beyond max_text_bytes; for decoding a stack sent between the
 * daemon and its analysis process (sepmsg.c).  py_stack_locals(): the
 * room for frame i's locals (max_locals of them).  py_stack_add_text():
 * text copied into the arena, NUL-terminated; NULL when it is full. */
int py_stack_alloc(struct py_stack *s, const struct py_limits *lim, size_t extra_text);
struct py_local *py_stack_locals(struct py_stack *s, unsigned frame);
const char *py_stack_add_text(struct py_stack *s, const char *text, size_t len);

/* The worker's code cache (struct py_runtime): an entry py_finish() made in
 * the analysis process, put into the daemon's copy; and an entry looked up
 * by code object. */
void py_code_cache_put(struct py_runtime *rt, const struct py_code_slot *e);
bool py_code_cache_get(const struct py_runtime *rt, uint64_t code, struct py_code_slot *ret);

/* A short human-readable version, "3.11.7". */
void py_version_string(uint32_t version_hex, char *buf, size_t size);

/*
 * Fuzz entry point (libFuzzer's LLVMFuzzerTestOneInput shape): data is a
 * fake address space plus a few header bytes choosing the version and the
 * tid; the reader must end cleanly whatever it finds.  Always returns 0.
 */
int pyframes_fuzz_one(const uint8_t *data, size_t size);

/* The fuzz input: data[0] picks the version (3.11, 3.12, 3.13; % 3) and
 * whether the reader has a vectored read (bit 7), data[1..3]
 * the limits, data[4..7] the tid (little-endian); the rest is memory at
 * PYFRAMES_FUZZ_BASE, where _PyRuntime starts.  The type objects the
 * renderer recognises are at PYFRAMES_FUZZ_TYPE(i), i in the order of
 * struct py_types. */
#define PYFRAMES_FUZZ_HDR     8
#define PYFRAMES_FUZZ_BASE    0x100000ull
#define PYFRAMES_FUZZ_TYPE(i) (PYFRAMES_FUZZ_BASE + 0x1000 + 0x100 * (uint64_t)(i))

#endif
