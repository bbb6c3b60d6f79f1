/* SPDX-License-Identifier: MIT */
/*
 * Python frames from outside: read a CPython worker's interpreter frames,
 * with file names, qualified function names, line numbers and locals,
 * straight from its memory.  No code runs in the worker, nothing is
 * written to it, and every byte read is treated as hostile.
 *
 * Supported: CPython 3.11 and 3.12 (struct offsets typed in from their
 * internal headers, verified with tests/python/dump_offsets.c), and 3.13
 * (from the _Py_DebugOffsets table the runtime carries at the start of
 * _PyRuntime, "xdebugpy" cookie; what that table lacks -- dict, set and
 * unicode internals -- comes from the 3.13 headers).  All three are tested
 * against real interpreters (tests/check_pyframes.c: Debian's static
 * non-PIE /usr/bin/python3.11 and pyenv's shared 3.11, 3.12 and 3.13).
 * 3.14 changed the debug-offset table's layout, the frame's code reference
 * (a tagged _PyStackRef) and the frame owners, so 3.14+ and anything before
 * 3.11 are refused with -EPROTONOSUPPORT and "unsupported Python x.y"
 * rather than read with the wrong layout.  x86_64 (and other LP64
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
 * Costs: reads go through a page cache (4 KiB pages, direct-mapped), so a
 * stack costs a few dozen process_vm_readv calls, not thousands; see
 * struct py_stack's counters.
 */
#ifndef DOGSLOWD_PYFRAMES_H
#define DOGSLOWD_PYFRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "remote.h"

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

struct py_limits {
    unsigned max_frames;      /* frames kept, innermost first; default 128 */
    unsigned max_locals;      /* locals per frame; 0: no locals at all */
    unsigned max_value_bytes; /* rendered bytes per value; default 2 KiB */
    unsigned max_items;       /* items shown per list/tuple/dict/set; default 5 */
    size_t max_text_bytes;    /* all names and values together; default 256 KiB */
    size_t max_read_bytes;    /* bytes read from the worker; default 4 MiB */
};

/* The defaults above, with locals on. */
void py_limits_default(struct py_limits *ret);

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
void py_stack_free(struct py_stack *s);

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
