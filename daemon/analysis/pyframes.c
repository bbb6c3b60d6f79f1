/* SPDX-License-Identifier: MIT */
/*
 * CPython frames read from outside the worker.  See pyframes.h for the
 * contract and docs/pyframes.md for how it fits the snapshot.
 *
 * Everything here reads hostile memory: each pointer is read through
 * remote_read() (a short read is a failure), each count is capped before
 * it sizes anything, each type is compared with the address of the real
 * type object before the object is interpreted, and every walk has a hard
 * bound.  The worst a corrupt or malicious worker gets is a short or odd
 * report about itself.
 *
 * Layout knowledge lives in one place, py_runtime_init(): the offsets of
 * 3.11, 3.12 and 3.13 typed in from their internal headers
 * (tests/python/dump_offsets.c prints them from the headers).  For 3.13 the
 * runtime's own _Py_DebugOffsets table replaces those values where it has
 * them, so a 3.13.x point release that moved a field is still read right.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis.h"

#define NONE32 UINT32_MAX

/* Hard caps on what a worker can make us walk or allocate. */
#define INTERPS_MAX      64     /* interpreters in the runtime's list */
#define TSTATES_MAX      16384  /* thread states per interpreter */
#define FRAMES_CAP       1024   /* max_frames ceiling */
#define LOCALS_CAP       1024   /* max_locals ceiling */
#define NLOCALSPLUS_MAX  65536  /* co_nlocalsplus of any sane code object */
#define LINETABLE_MAX    (16u << 20)
#define STR_LEN_MAX      ((uint64_t)1 << 40) /* beyond this a str is corrupt */
#define CONTAINER_MAX    ((int64_t)1 << 40)
#define INT_DIGITS_SHOWN 40     /* 30-bit digits converted to decimal (~360 digits) */
#define DEPTH_MAX        3      /* nesting of containers inside a value */
#define SCAN_SLOTS_MAX   256    /* dict entries / set slots scanned for items */
#define CODE_CACHE       16
#define NAME_MAX_BYTES   512    /* a file or function name */
#define TYPE_NAME_MAX    96
#define ESCAPE_MAX       10     /* longest repr of one character: \U0010ffff */
#define SUFFIX_MAX       32     /* "...' (1099511627776 chars)" */
/* A type's name to come (see py_capture): "\x01" + 16 hex digits + "\x02" */
#define TYPE_MARK_OPEN   '\x01'
#define TYPE_MARK_CLOSE  '\x02'
#define TYPE_MARK_LEN    18

/* ------------------------------------------------------------------------
 * Versions and offsets
 * ------------------------------------------------------------------------ */

void py_version_string(uint32_t v, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u", (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff);
}

int py_runtime_init(struct py_runtime *ret, uint32_t version_hex, uint64_t runtime_addr)
{
    struct py_offsets o;
    unsigned minor = (version_hex >> 16) & 0xff;

    if ((version_hex >> 24) != 3 || minor < 11 || minor > 14)
        return -EPROTONOSUPPORT;
    memset(&o, 0, sizeof(o));
    /* What did not change from 3.11 to 3.14 in the default (GIL) build
     * (checked against the headers, and for 3.13+ against _Py_DebugOffsets
     * too). */
    o.tstate_next = 8;
    o.frame_localsplus = 72;
    o.code_localsplusnames = 96;
    o.code_localspluskinds = 104;
    o.code_filename = 112;
    o.code_name = 120;
    o.code_qualname = 128;
    o.code_linetable = 136;
    o.ob_type = 8;
    o.head = 16;
    o.tuple_item = 24;
    o.ustate_kind_shift = 2;
    o.type_name = 24;
    o.type_flags = 168;
    o.tstate_cframe = o.cframe_current_frame = o.tstate_current_frame = NONE32;
    o.frame_is_entry = o.frame_tlbc_index = o.code_tlbc = NONE32;
    o.owner_cstack = 0xff;
    o.owner_max = 3;
    switch (minor) {
    case 11:
        o.runtime_interp_head = 40;
        o.interp_next = 0;
        o.interp_threads_head = 16;
        o.tstate_native_thread_id = 160;
        o.tstate_cframe = 56;
        o.cframe_current_frame = 8;
        o.frame_code = 32;
        o.frame_previous = 48;
        o.frame_instr = 56;
        o.frame_is_entry = 68;
        o.frame_owner = 69;
        o.instr_is_prev = true;
        o.code_firstlineno = 72;
        o.code_adaptive = 184;
        o.unicode_ascii_size = 48; /* 3.11 still has wstr */
        o.unicode_compact_size = 72;
        break;
    case 12:
        o.runtime_interp_head = 40;
        o.interp_next = 0;
        o.interp_threads_head = 72;
        o.tstate_native_thread_id = 144;
        o.tstate_cframe = 56;
        o.cframe_current_frame = 0;
        o.frame_code = 0;
        o.frame_previous = 8;
        o.frame_instr = 56;
        o.frame_owner = 70;
        o.owner_cstack = 3;
        o.instr_is_prev = true;
        o.code_firstlineno = 68;
        o.code_adaptive = 192;
        o.fast_hidden = 0x10;
        o.long_lv_tag = true;
        o.unicode_ascii_size = 40;
        o.unicode_compact_size = 56;
        break;
    case 13:
    case 14:
        /* 3.13.0's values, and 3.14.7's where they differ;
         * py_runtime_load_debug_offsets() replaces all it has. */
        o.runtime_interp_head = 632;
        o.interp_next = 7264;
        o.interp_threads_head = 7344;
        o.tstate_native_thread_id = 160;
        o.tstate_current_frame = 72;
        o.frame_code = 0;
        o.frame_previous = 8;
        o.frame_instr = 56;
        o.frame_owner = 70;
        o.owner_cstack = 3;
        o.instr_is_prev = false; /* instr_ptr: the instruction running now */
        o.code_firstlineno = 68;
        o.code_adaptive = 200;
        o.fast_hidden = 0x10;
        o.long_lv_tag = true;
        o.unicode_ascii_size = 40;
        o.unicode_compact_size = 56;
        o.dictvalues_values = 8;
        if (minor == 14) {
            /* Frames hold _PyStackRefs, tuples cache their hash, and the
             * entry shim is FRAME_OWNED_BY_INTERPRETER (3), with
             * FRAME_OWNED_BY_CSTACK (4) after it. */
            o.stackref = true;
            o.tuple_item = 32;
            o.frame_owner = 74;
            o.frame_localsplus = 80;
            o.owner_max = 4;
        }
        break;
    }
    o.code_size = o.code_adaptive;
    memset(ret, 0, sizeof(*ret));
    ret->version_hex = version_hex;
    ret->runtime_addr = runtime_addr;
    ret->off = o;
    return 0;
}

/*
 * _Py_DebugOffsets (3.13: Include/internal/pycore_runtime.h, 3.14:
 * pycore_debug_offsets.h) is an array of uint64_t whose layout is that of
 * the version that wrote it: 3.14 added fields in the middle of most
 * groups.  Each layout is the index of every field we use.
 */
enum {
    DO_RT_INTERP_HEAD, DO_INTERP_NEXT, DO_INTERP_THREADS_HEAD,
    DO_TS_NEXT, DO_TS_CURRENT_FRAME, DO_TS_NATIVE_TID,
    DO_FR_PREVIOUS, DO_FR_EXECUTABLE, DO_FR_INSTR, DO_FR_LOCALSPLUS, DO_FR_OWNER, DO_FR_TLBC,
    DO_CO_FILENAME, DO_CO_NAME, DO_CO_QUALNAME, DO_CO_LINETABLE, DO_CO_FIRSTLINENO,
    DO_CO_NAMES, DO_CO_KINDS, DO_CO_ADAPTIVE, DO_CO_TLBC,
    DO_OB_SIZE, DO_OB_TYPE, DO_TP_NAME, DO_TP_FLAGS,
    DO_TUPLE_ITEM, DO_TUPLE_SIZE, DO_LIST_ITEM, DO_LIST_SIZE,
    DO_SET_USED, DO_SET_TABLE, DO_SET_MASK, DO_DICT_KEYS, DO_DICT_VALUES,
    DO_FLOAT_FVAL, DO_LONG_TAG, DO_LONG_DIGIT, DO_BYTES_SIZE, DO_BYTES_SVAL,
    DO_U_STATE, DO_U_LENGTH, DO_U_ASCII_SIZE,
    DO_FIELDS,
};
#define DO_NONE 0xff /* not in this version's table */

struct do_layout {
    unsigned count;           /* uint64_t words in the table */
    uint8_t at[DO_FIELDS];    /* word index of each field, or DO_NONE */
};

static const struct do_layout do_313 = {
    .count = 73,
    .at = {
        [DO_RT_INTERP_HEAD] = 5, [DO_INTERP_NEXT] = 8, [DO_INTERP_THREADS_HEAD] = 9,
        [DO_TS_NEXT] = 21, [DO_TS_CURRENT_FRAME] = 23, [DO_TS_NATIVE_TID] = 25,
        [DO_FR_PREVIOUS] = 29, [DO_FR_EXECUTABLE] = 30, [DO_FR_INSTR] = 31,
        [DO_FR_LOCALSPLUS] = 32, [DO_FR_OWNER] = 33, [DO_FR_TLBC] = DO_NONE,
        [DO_CO_FILENAME] = 35, [DO_CO_NAME] = 36, [DO_CO_QUALNAME] = 37,
        [DO_CO_LINETABLE] = 38, [DO_CO_FIRSTLINENO] = 39, [DO_CO_NAMES] = 41,
        [DO_CO_KINDS] = 42, [DO_CO_ADAPTIVE] = 43, [DO_CO_TLBC] = DO_NONE,
        [DO_OB_SIZE] = 44, [DO_OB_TYPE] = 45, [DO_TP_NAME] = 47, [DO_TP_FLAGS] = 49,
        [DO_TUPLE_ITEM] = 51, [DO_TUPLE_SIZE] = 52, [DO_LIST_ITEM] = 54, [DO_LIST_SIZE] = 55,
        [DO_SET_USED] = DO_NONE, [DO_SET_TABLE] = DO_NONE, [DO_SET_MASK] = DO_NONE,
        [DO_DICT_KEYS] = 57, [DO_DICT_VALUES] = 58, [DO_FLOAT_FVAL] = 60,
        [DO_LONG_TAG] = 62, [DO_LONG_DIGIT] = 63, [DO_BYTES_SIZE] = 65, [DO_BYTES_SVAL] = 66,
        [DO_U_STATE] = 68, [DO_U_LENGTH] = 69, [DO_U_ASCII_SIZE] = 70,
    },
};

static const struct do_layout do_314 = {
    .count = 95,
    .at = {
        [DO_RT_INTERP_HEAD] = 5, [DO_INTERP_NEXT] = 8, [DO_INTERP_THREADS_HEAD] = 9,
        [DO_TS_NEXT] = 24, [DO_TS_CURRENT_FRAME] = 26, [DO_TS_NATIVE_TID] = 28,
        [DO_FR_PREVIOUS] = 32, [DO_FR_EXECUTABLE] = 33, [DO_FR_INSTR] = 34,
        [DO_FR_LOCALSPLUS] = 35, [DO_FR_OWNER] = 36, [DO_FR_TLBC] = 38,
        [DO_CO_FILENAME] = 40, [DO_CO_NAME] = 41, [DO_CO_QUALNAME] = 42,
        [DO_CO_LINETABLE] = 43, [DO_CO_FIRSTLINENO] = 44, [DO_CO_NAMES] = 46,
        [DO_CO_KINDS] = 47, [DO_CO_ADAPTIVE] = 48, [DO_CO_TLBC] = 49,
        [DO_OB_SIZE] = 50, [DO_OB_TYPE] = 51, [DO_TP_NAME] = 53, [DO_TP_FLAGS] = 55,
        [DO_TUPLE_ITEM] = 57, [DO_TUPLE_SIZE] = 58, [DO_LIST_ITEM] = 60, [DO_LIST_SIZE] = 61,
        [DO_SET_USED] = 63, [DO_SET_TABLE] = 64, [DO_SET_MASK] = 65,
        [DO_DICT_KEYS] = 67, [DO_DICT_VALUES] = 68, [DO_FLOAT_FVAL] = 70,
        [DO_LONG_TAG] = 72, [DO_LONG_DIGIT] = 73, [DO_BYTES_SIZE] = 75, [DO_BYTES_SVAL] = 76,
        [DO_U_STATE] = 78, [DO_U_LENGTH] = 79, [DO_U_ASCII_SIZE] = 80,
    },
};

#define DO_WORDS_MAX 95

int py_runtime_load_debug_offsets(struct py_runtime *rt, struct remote_mem *m)
{
    uint64_t d[DO_WORDS_MAX], v[DO_FIELDS];
    struct py_offsets o = rt->off;
    unsigned minor = (rt->version_hex >> 16) & 0xff;
    const struct do_layout *l;
    int r;

    if ((rt->version_hex >> 24) != 3 || (minor != 13 && minor != 14))
        return -EPROTO;
    l = minor == 13 ? &do_313 : &do_314;
    r = remote_read(m, rt->runtime_addr, d, l->count * sizeof(uint64_t));
    if (r < 0)
        return r;
    if (memcmp(&d[0], "xdebugpy", 8) != 0)
        return -EPROTO;
    /* The table's layout is that of the version that wrote it: only read
     * it as this version's when it says it is. */
    if ((d[1] >> 16) != (rt->version_hex >> 16))
        return -EPROTO;
    if (d[2] > 1)
        return -EPROTO;
    for (unsigned i = 0; i < DO_FIELDS; i++) {
        v[i] = l->at[i] == DO_NONE ? 0 : d[l->at[i]];
        /* Structures of a few KiB at most, the runtime and interpreter
         * states of a few hundred; anything bigger is not a table we can
         * trust. */
        uint64_t bound = i <= DO_INTERP_THREADS_HEAD ? (1u << 20) : 4096;
        if (v[i] > bound)
            return -EPROTO;
    }
    /* The object layout the renderer assumes: each type's fields right
     * after the PyObject (or PyVarObject) header, whatever its size. */
    uint64_t h = v[DO_OB_SIZE];
    if ((h != 16 && h != 32) || v[DO_OB_TYPE] != h - 8 || v[DO_TP_NAME] != h + 8 ||
        v[DO_TUPLE_SIZE] != h || (v[DO_TUPLE_ITEM] != h + 8 && v[DO_TUPLE_ITEM] != h + 16) ||
        v[DO_LIST_SIZE] != h || v[DO_LIST_ITEM] != h + 8 || v[DO_DICT_KEYS] != h + 16 ||
        v[DO_DICT_VALUES] != h + 24 || v[DO_FLOAT_FVAL] != h || v[DO_LONG_TAG] != h ||
        v[DO_LONG_DIGIT] != h + 8 || v[DO_BYTES_SIZE] != h || v[DO_BYTES_SVAL] != h + 16 ||
        v[DO_U_LENGTH] != h || v[DO_U_STATE] != h + 16 || v[DO_U_ASCII_SIZE] < h + 20 ||
        v[DO_FR_EXECUTABLE] != 0 || v[DO_FR_LOCALSPLUS] < 8 || v[DO_TP_FLAGS] <= h + 8 ||
        v[DO_CO_ADAPTIVE] < h)
        return -EPROTO;
    if (l->at[DO_SET_USED] != DO_NONE &&
        (v[DO_SET_USED] != h + 8 || v[DO_SET_MASK] != h + 16 || v[DO_SET_TABLE] != h + 24))
        return -EPROTO;
    o.free_threaded = d[2] != 0;
    o.runtime_interp_head = (uint32_t)v[DO_RT_INTERP_HEAD];
    o.interp_next = (uint32_t)v[DO_INTERP_NEXT];
    o.interp_threads_head = (uint32_t)v[DO_INTERP_THREADS_HEAD];
    o.tstate_next = (uint32_t)v[DO_TS_NEXT];
    o.tstate_current_frame = (uint32_t)v[DO_TS_CURRENT_FRAME];
    o.tstate_native_thread_id = (uint32_t)v[DO_TS_NATIVE_TID];
    o.frame_previous = (uint32_t)v[DO_FR_PREVIOUS];
    o.frame_code = (uint32_t)v[DO_FR_EXECUTABLE];
    o.frame_instr = (uint32_t)v[DO_FR_INSTR];
    o.frame_localsplus = (uint32_t)v[DO_FR_LOCALSPLUS];
    o.frame_owner = (uint32_t)v[DO_FR_OWNER];
    o.code_filename = (uint32_t)v[DO_CO_FILENAME];
    o.code_name = (uint32_t)v[DO_CO_NAME];
    o.code_qualname = (uint32_t)v[DO_CO_QUALNAME];
    o.code_linetable = (uint32_t)v[DO_CO_LINETABLE];
    o.code_firstlineno = (uint32_t)v[DO_CO_FIRSTLINENO];
    o.code_localsplusnames = (uint32_t)v[DO_CO_NAMES];
    o.code_localspluskinds = (uint32_t)v[DO_CO_KINDS];
    o.code_adaptive = (uint32_t)v[DO_CO_ADAPTIVE];
    o.code_size = o.code_adaptive;
    o.ob_type = (uint32_t)v[DO_OB_TYPE];
    o.head = (uint32_t)h;
    o.tuple_item = (uint32_t)v[DO_TUPLE_ITEM];
    o.type_name = (uint32_t)v[DO_TP_NAME];
    o.type_flags = (uint32_t)v[DO_TP_FLAGS];
    o.unicode_ascii_size = (uint32_t)v[DO_U_ASCII_SIZE];
    /* PyCompactUnicodeObject adds utf8_length and utf8 to PyASCIIObject. */
    o.unicode_compact_size = o.unicode_ascii_size + 16;
    /* 3.13t differs from 3.13 only by what the table says (a bigger
     * object header, so every field moves): frames hold plain object
     * pointers, str's state keeps its bit fields, and all threads run
     * one bytecode. */
    if (o.free_threaded && minor >= 14) {
        /* 3.14t: references in frames carry a deferred bit, interned is a
         * whole byte of str's state, and a frame may run a thread's own
         * copy of the bytecode (co_tlbc[tlbc_index]). */
        o.stackref = true;
        o.ustate_kind_shift = 8;
        if (!v[DO_FR_TLBC] || !v[DO_CO_TLBC] || v[DO_FR_TLBC] + 4 > o.frame_localsplus ||
            v[DO_CO_TLBC] + 8 > o.code_size)
            return -EPROTO;
        o.frame_tlbc_index = (uint32_t)v[DO_FR_TLBC];
        o.code_tlbc = (uint32_t)v[DO_CO_TLBC];
    }
    if (o.frame_owner >= o.frame_localsplus || o.frame_previous + 8 > o.frame_localsplus ||
        o.frame_instr + 8 > o.frame_localsplus)
        return -EPROTO;
    rt->off = o;
    return 0;
}

/* ------------------------------------------------------------------------
 * Finding the runtime: /proc/PID/maps and the ELF dynamic symbol table
 * ------------------------------------------------------------------------ */

#define MAPS_MAX     (8u << 20)
#define ELF_TAB_MAX  (64u << 20)
#define CANDIDATES   16

enum {
    SYM_RUNTIME, SYM_VERSION,
    SYM_CODE, SYM_CELL, SYM_NONE, SYM_BOOL, SYM_LONG, SYM_FLOAT, SYM_STR, SYM_BYTES,
    SYM_TUPLE, SYM_LIST, SYM_DICT, SYM_SET, SYM_FROZENSET,
    SYM_INITIALIZE,
    SYM_COUNT
};

static const char *const sym_names[SYM_COUNT] = {
    [SYM_RUNTIME] = "_PyRuntime",     [SYM_VERSION] = "Py_Version",
    [SYM_CODE] = "PyCode_Type",       [SYM_CELL] = "PyCell_Type",
    [SYM_NONE] = "_PyNone_Type",      [SYM_BOOL] = "PyBool_Type",
    [SYM_LONG] = "PyLong_Type",       [SYM_FLOAT] = "PyFloat_Type",
    [SYM_STR] = "PyUnicode_Type",     [SYM_BYTES] = "PyBytes_Type",
    [SYM_TUPLE] = "PyTuple_Type",     [SYM_LIST] = "PyList_Type",
    [SYM_DICT] = "PyDict_Type",       [SYM_SET] = "PySet_Type",
    [SYM_FROZENSET] = "PyFrozenSet_Type",
    /* Every CPython has it, also those too old for _PyRuntime. */
    [SYM_INITIALIZE] = "Py_Initialize",
};

struct mapping {
    uint64_t start, end, offset, inode;
    char path[PATH_MAX];
};

static int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
    size_t have = 0;

    while (have < len) {
        ssize_t n = pread(fd, (char *)buf + have, len - have, (off_t)(off + have));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        have += (size_t)n;
    }
    return 0;
}

/* Read a table of the file, after checking it lies inside the file. */
static int read_table(int fd, uint64_t fsize, uint64_t off, uint64_t size, void **ret)
{
    void *p;
    int r;

    if (size == 0 || size > ELF_TAB_MAX || off > fsize || size > fsize - off)
        return -EBADMSG;
    p = malloc(size);
    if (!p)
        return -ENOMEM;
    r = pread_exact(fd, p, size, off);
    if (r < 0) {
        free(p);
        return r;
    }
    *ret = p;
    return 0;
}

/*
 * The defined dynamic symbols we want (values[i] = st_value, found[i]) and
 * the link-time address of the first loadable segment.  Only ELF64 LSB.
 */
static int elf_scan(int fd, uint64_t values[SYM_COUNT], bool found[SYM_COUNT],
                    uint64_t *ret_load_vaddr)
{
    Elf64_Ehdr eh;
    Elf64_Shdr *sh = NULL;
    Elf64_Sym *syms = NULL;
    char *str = NULL;
    struct stat st;
    uint64_t fsize, nsyms, strsize = 0;
    bool have_load = false;
    int r;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EBADMSG;
    fsize = (uint64_t)st.st_size;
    r = pread_exact(fd, &eh, sizeof(eh), 0);
    if (r < 0)
        return r;
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
        return -EBADMSG;

    /* The first PT_LOAD tells where the file's start was meant to go. */
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 1024)
        return -EBADMSG;
    for (unsigned i = 0; i < eh.e_phnum && !have_load; i++) {
        Elf64_Phdr ph;
        r = pread_exact(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph));
        if (r < 0)
            return r;
        if (ph.p_type == PT_LOAD) {
            if (ph.p_offset > ph.p_vaddr)
                return -EBADMSG;
            *ret_load_vaddr = ph.p_vaddr - ph.p_offset;
            have_load = true;
        }
    }
    if (!have_load)
        return -EBADMSG;

    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096)
        return -EBADMSG;
    r = read_table(fd, fsize, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr),
                   (void **)&sh);
    if (r < 0)
        return r;
    r = -ENOENT;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM)
            continue;
        if (sh[i].sh_entsize != sizeof(Elf64_Sym) || sh[i].sh_link >= eh.e_shnum ||
            sh[sh[i].sh_link].sh_type != SHT_STRTAB) {
            r = -EBADMSG;
            break;
        }
        nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
        strsize = sh[sh[i].sh_link].sh_size;
        r = read_table(fd, fsize, sh[i].sh_offset, nsyms * sizeof(Elf64_Sym), (void **)&syms);
        if (r < 0)
            break;
        r = read_table(fd, fsize, sh[sh[i].sh_link].sh_offset, strsize, (void **)&str);
        if (r < 0)
            break;
        for (uint64_t k = 0; k < nsyms; k++) {
            uint32_t at = syms[k].st_name;
            if (syms[k].st_shndx == SHN_UNDEF || at >= strsize)
                continue;
            size_t left = strsize - at;
            const char *name = str + at;
            if (!memchr(name, '\0', left))
                continue;
            for (int s = 0; s < SYM_COUNT; s++) {
                if (!found[s] && strcmp(name, sym_names[s]) == 0) {
                    values[s] = syms[k].st_value;
                    found[s] = true;
                }
            }
        }
        r = 0;
        break;
    }
    free(sh);
    free(syms);
    free(str);
    return r;
}

/* Parse one /proc/PID/maps line; false if it is not a file mapping. */
static bool parse_maps_line(const char *line, size_t len, struct mapping *ret)
{
    char buf[PATH_MAX + 128];
    char *p, *end;
    unsigned long long v[3];

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    p = buf;
    v[0] = strtoull(p, &end, 16);
    if (end == p || *end != '-')
        return false;
    p = end + 1;
    v[1] = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return false;
    p = end + 1;
    p = strchr(p, ' '); /* permissions */
    if (!p)
        return false;
    p++;
    v[2] = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return false;
    p = strchr(end + 1, ' '); /* device */
    if (!p)
        return false;
    p++;
    ret->inode = strtoull(p, &end, 10);
    if (end == p)
        return false;
    p = end;
    while (*p == ' ')
        p++;
    if (*p != '/')
        return false;
    ret->start = v[0];
    ret->end = v[1];
    ret->offset = v[2];
    if (strlen(p) >= sizeof(ret->path))
        return false;
    memcpy(ret->path, p, strlen(p) + 1);
    return true;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* "3.10" from "libpython3.10.so.1.0" or "python3.10": for a message only. */
static uint32_t version_from_name(const char *path)
{
    const char *p = strstr(base_name(path), "python");
    unsigned major, minor = 0;

    if (!p)
        return 0;
    p += 6;
    if (*p < '0' || *p > '9')
        return 0;
    major = (unsigned)(*p++ - '0');
    if (*p != '.')
        return 0;
    p++;
    for (int i = 0; i < 3 && *p >= '0' && *p <= '9'; i++)
        minor = minor * 10 + (unsigned)(*p++ - '0');
    return (major << 24) | (minor << 16);
}

static int open_mapping(pid_t pid, const struct mapping *mp)
{
    char path[PATH_MAX + 64];
    struct stat st;
    int pfd, fd;

    /* map_files reaches the very file mapped, even when deleted or in
     * another mount namespace; /proc/PID/root + path is the fallback for
     * kernels and privileges that do not allow it.  The worker chooses
     * what it maps: look with O_PATH first, and only open() a regular
     * file (opening a device can have effects). */
    snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
             (unsigned long long)mp->start, (unsigned long long)mp->end);
    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        if (snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, mp->path) >=
            (int)sizeof(path))
            return -ENAMETOOLONG;
        pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
            return -errno;
    }
    if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode) || (mp->inode && st.st_ino != mp->inode)) {
        close(pfd);
        return -ESTALE;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    close(pfd);
    return fd < 0 ? -errno : fd;
}

static void set_why(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (!why || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* Read the whole maps file, bounded. */
static int read_maps(pid_t pid, char **ret, size_t *ret_len)
{
    char path[64];
    size_t cap = 64 * 1024, len = 0;
    char *buf;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAPS_MAX) {
                free(buf);
                close(fd);
                return -EFBIG;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int r = -errno;
            free(buf);
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *ret = buf;
    *ret_len = len;
    return 0;
}

static void fill_types(struct py_types *t, const uint64_t *v, const bool *found, uint64_t bias)
{
#define T(field, sym) t->field = found[sym] ? v[sym] + bias : 0
    T(code, SYM_CODE);
    T(cell, SYM_CELL);
    T(none, SYM_NONE);
    T(boolean, SYM_BOOL);
    T(integer, SYM_LONG);
    T(floating, SYM_FLOAT);
    T(str, SYM_STR);
    T(bytes, SYM_BYTES);
    T(tuple, SYM_TUPLE);
    T(list, SYM_LIST);
    T(dict, SYM_DICT);
    T(set, SYM_SET);
    T(frozenset, SYM_FROZENSET);
#undef T
}

static uint8_t *pc_buffer(void);

int py_runtime_find(pid_t pid, struct py_runtime *ret, char *why, size_t why_size)
{
    struct mapping *cand = NULL;
    unsigned ncand = 0;
    char exe[PATH_MAX], path[64], *maps = NULL;
    size_t maps_len = 0;
    ssize_t n;
    int r;

    if (pid <= 0 || !ret)
        return -EINVAL;
    (void)pc_buffer(); /* now, not while a thread is held */
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    n = readlink(path, exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';

    r = read_maps(pid, &maps, &maps_len);
    if (r < 0) {
        set_why(why, why_size, "cannot read /proc/%d/maps: %s", (int)pid, strerror(-r));
        return r;
    }
    cand = calloc(CANDIDATES, sizeof(*cand));
    if (!cand) {
        free(maps);
        return -ENOMEM;
    }
    /* Candidates: the start (offset 0) of the executable and of anything
     * named like python; the executable goes first.  A program that embeds
     * libpython statically under another name (a custom uWSGI) is found
     * through the executable. */
    for (size_t pos = 0; pos < maps_len;) {
        const char *line = maps + pos;
        const char *nl = memchr(line, '\n', maps_len - pos);
        size_t len = nl ? (size_t)(nl - line) : maps_len - pos;
        struct mapping mp;

        pos += len + 1;
        if (!parse_maps_line(line, len, &mp) || mp.offset != 0)
            continue;
        bool is_exe = exe[0] && strcmp(mp.path, exe) == 0;
        const char *bn = base_name(mp.path);
        /* libpython3.x.so, or an executable python3.x (run through a
         * wrapper); not the extension modules (foo.cpython-311-....so). */
        if (!is_exe && strncmp(bn, "libpython", 9) != 0 && strncmp(bn, "python", 6) != 0)
            continue;
        bool dup = false;
        for (unsigned i = 0; i < ncand; i++)
            dup |= strcmp(cand[i].path, mp.path) == 0;
        if (dup || ncand == CANDIDATES)
            continue;
        if (is_exe && ncand > 0) {
            cand[ncand++] = cand[0];
            cand[0] = mp;
        } else {
            cand[ncand++] = mp;
        }
    }
    free(maps);

    r = -ENOENT;
    set_why(why, why_size, "not a Python process (no _PyRuntime symbol)");
    for (unsigned i = 0; i < ncand; i++) {
        uint64_t v[SYM_COUNT] = {0}, load_vaddr = 0, bias;
        bool found[SYM_COUNT] = {false};
        int fd = open_mapping(pid, &cand[i]);
        int e;

        if (fd < 0)
            continue;
        e = elf_scan(fd, v, found, &load_vaddr);
        close(fd);
        if (e < 0)
            continue;
        if (!found[SYM_RUNTIME]) {
            if (found[SYM_INITIALIZE] && version_from_name(cand[i].path)) {
                uint32_t old = version_from_name(cand[i].path);
                set_why(why, why_size, "unsupported Python %u.%u", old >> 24,
                        (old >> 16) & 0xff);
                r = -EPROTONOSUPPORT;
                break;
            }
            continue;
        }
        bias = cand[i].start - load_vaddr;

        /* The version: Py_Version (3.11+) from memory, or the file name
         * for a message about an older Python. */
        uint32_t version = 0;
        struct remote_mem m;
        struct remote_proc rp;
        remote_mem_proc(&m, &rp, pid);
        if (found[SYM_VERSION]) {
            uint64_t pv = 0;
            e = remote_read_type(&m, v[SYM_VERSION] + bias, &pv);
            if (e < 0) {
                set_why(why, why_size, "cannot read Py_Version in process %d: %s", (int)pid,
                        strerror(-e));
                r = e;
                break;
            }
            version = (uint32_t)pv;
        } else {
            version = version_from_name(cand[i].path);
        }
        char vs[32];
        if (version)
            snprintf(vs, sizeof(vs), "%u.%u", version >> 24, (version >> 16) & 0xff);
        else
            snprintf(vs, sizeof(vs), "(unknown version)");

        struct py_runtime rt;
        e = py_runtime_init(&rt, version, v[SYM_RUNTIME] + bias);
        if (e < 0) {
            set_why(why, why_size, "unsupported Python %s", vs);
            r = -EPROTONOSUPPORT;
            break;
        }
        if (((version >> 16) & 0xff) >= 13) {
            e = py_runtime_load_debug_offsets(&rt, &m);
            if (e < 0) {
                set_why(why, why_size, "unsupported Python %s (%s)", vs,
                        e == -EPROTONOSUPPORT ? "free-threaded build"
                                              : "unexpected _Py_DebugOffsets");
                r = e == -EPROTONOSUPPORT || e == -EPROTO ? -EPROTONOSUPPORT : e;
                break;
            }
        }
        rt.pid = pid;
        fill_types(&rt.types, v, found, bias);
        snprintf(rt.path, sizeof(rt.path), "%s", cand[i].path);
        *ret = rt;
        if (why && why_size)
            why[0] = '\0';
        r = 0;
        break;
    }
    free(cand);
    return r;
}

/* ------------------------------------------------------------------------
 * A page cache in front of the worker's memory
 *
 * Objects that belong together (a frame and its neighbours on the data
 * stack, a code object and its small strings) sit close to each other, so
 * fetching whole pages turns hundreds of small reads into a few dozen
 * system calls.  Mapped memory is page-granular: a page that holds one
 * readable byte is readable whole, so this returns what direct reads
 * would.  Pages that cannot be read whole (a fake address space in tests)
 * fall back to exact reads.
 * ------------------------------------------------------------------------ */

#define PC_PAGE     4096u
#define PC_SET_BITS 6u
#define PC_SETS     (1u << PC_SET_BITS)
#define PC_WAYS     8u
#define PC_SLOTS    (PC_SETS * PC_WAYS)

struct pcache {
    struct remote_mem *under;
    size_t max_bytes;
    size_t bytes;
    unsigned reads;
    uint64_t clock;
    uint64_t tag[PC_SLOTS];  /* page address + 1, 0 = empty */
    uint64_t used[PC_SLOTS]; /* clock of the last use, for LRU */
    bool bad[PC_SLOTS];      /* the whole page could not be read */
    uint8_t *data;           /* PC_SLOTS pages */
};

/*
 * The cache's pages, one buffer per thread for the life of the thread.
 * The stack is read while the worker's thread is held: a fresh 512 KiB
 * buffer per read would cost a page fault for every page it touches
 * (~1 us each in a VM), all of it inside the pause.  Touched once here,
 * before any thread is held.
 */
static __thread struct pcache tl_pc; /* kept from capture to finish */
static __thread uint64_t tl_generation;

static uint8_t *pc_buffer(void)
{
    if (!tl_pc.data) {
        tl_pc.data = malloc((size_t)PC_SLOTS * PC_PAGE);
        if (tl_pc.data)
            memset(tl_pc.data, 0, (size_t)PC_SLOTS * PC_PAGE);
    }
    return tl_pc.data;
}

static int pc_direct(struct pcache *c, uint64_t addr, void *buf, size_t len)
{
    int r;

    if (c->bytes + len > c->max_bytes)
        return -E2BIG;
    r = remote_read(c->under, addr, buf, len);
    c->reads++;
    if (r == 0)
        c->bytes += len;
    return r;
}

/* The slot holding page, or the least recently used one of its set (then
 * *ret_hit is false).  Sets are chosen by a multiplicative hash: CPython's
 * allocator puts objects of one size at the same offset of many arenas,
 * which a plain modulo maps all to one set. */
static unsigned pc_slot(struct pcache *c, uint64_t page, bool *ret_hit)
{
    unsigned set = (unsigned)(((page / PC_PAGE) * 0x9e3779b97f4a7c15ull) >> (64 - PC_SET_BITS));
    unsigned first = set * PC_WAYS, victim = first;

    for (unsigned i = first; i < first + PC_WAYS; i++) {
        if (c->tag[i] == page + 1) {
            *ret_hit = true;
            return i;
        }
        if (c->used[i] < c->used[victim])
            victim = i;
    }
    *ret_hit = false;
    return victim;
}

static int pc_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct pcache *c = ctx;
    uint8_t *out = buf;

    while (len > 0) {
        uint64_t page = addr & ~(uint64_t)(PC_PAGE - 1);
        size_t in = (size_t)(addr - page);
        size_t chunk = PC_PAGE - in < len ? PC_PAGE - in : len;
        bool hit;
        unsigned slot = pc_slot(c, page, &hit);
        int r;

        c->used[slot] = ++c->clock;
        if (!hit) {
            c->bad[slot] = false;
            c->tag[slot] = page + 1;
            r = page ? pc_direct(c, page, c->data + (size_t)slot * PC_PAGE, PC_PAGE) : -EFAULT;
            if (r == -E2BIG) {
                c->tag[slot] = 0;
                return r;
            }
            if (r < 0)
                c->bad[slot] = true;
        }
        if (c->bad[slot]) {
            r = pc_direct(c, addr, out, chunk);
            if (r < 0)
                return r;
        } else {
            memcpy(out, c->data + (size_t)slot * PC_PAGE + in, chunk);
        }
        addr += chunk;
        out += chunk;
        len -= chunk;
    }
    return 0;
}

/*
 * Bring the pages under n ranges [addr, addr + len) into the cache with one
 * vectored read per REMOTE_READV_MAX pages, where the reader can do that.
 * A system call costs 2-3 us in a VM, whatever it copies; the reads that
 * follow a prefetch are then hits.  Pages already cached, or whose slot
 * this same call filled, are left alone; a page that cannot be read is
 * left out (a later read of it fails the usual way).  Best effort: nothing
 * is an error here.
 */
struct prange {
    uint64_t addr;
    size_t len;
};

static void pc_flush(struct pcache *c, struct remote_range *rr, const unsigned *slots,
                     unsigned n)
{
    int done;

    if (n == 0)
        return;
    done = c->under->readv(c->under->ctx, rr, n);
    c->reads++;
    for (unsigned i = 0; i < n; i++) {
        if (done >= 0 && i < (unsigned)done)
            c->bytes += PC_PAGE;
        else
            c->tag[slots[i]] = 0; /* not read: the next use reads it alone */
    }
}

static void pc_prefetch(struct pcache *c, const struct prange *ranges, size_t n)
{
    struct remote_range rr[REMOTE_READV_MAX];
    unsigned slots[REMOTE_READV_MAX], k = 0;
    uint64_t start = c->clock;

    if (!c->under->readv)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = ranges[i].addr, len = ranges[i].len;
        if (a < PC_PAGE || len == 0 || len > (1u << 16) || a + len < a)
            continue;
        for (uint64_t page = a & ~(uint64_t)(PC_PAGE - 1); page < a + len; page += PC_PAGE) {
            bool hit;
            unsigned slot = pc_slot(c, page, &hit);

            if (hit || c->used[slot] > start)
                continue; /* cached, or its slot was filled by this call */
            if (c->bytes + (uint64_t)(k + 1) * PC_PAGE > c->max_bytes)
                goto out;
            c->tag[slot] = page + 1;
            c->bad[slot] = false;
            c->used[slot] = ++c->clock;
            rr[k] = (struct remote_range){.addr = page, .buf = c->data + (size_t)slot * PC_PAGE,
                                          .len = PC_PAGE};
            slots[k++] = slot;
            if (k == REMOTE_READV_MAX) {
                pc_flush(c, rr, slots, k);
                k = 0;
            }
        }
    }
out:
    pc_flush(c, rr, slots, k);
}

/* ------------------------------------------------------------------------
 * Bounded text
 * ------------------------------------------------------------------------ */

/* A writer into a fixed buffer; 'over' once something did not fit. */
struct sw {
    char *p;
    size_t len, cap; /* cap includes the NUL */
    bool over;
};

static void sw_putn(struct sw *w, const char *s, size_t n)
{
    if (w->over)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t room = w->cap - 1 - w->len;
        memcpy(w->p + w->len, s, room);
        w->len += room;
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void sw_puts(struct sw *w, const char *s)
{
    sw_putn(w, s, strlen(s));
}

static void sw_printf(struct sw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sw_printf(struct sw *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sw_putn(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Terminate; a value that did not fit ends in "..." on a character
 * boundary so the report stays valid UTF-8. */
static void sw_finish(struct sw *w)
{
    if (w->over && w->cap >= 4) {
        size_t n = w->len;
        if (n > w->cap - 4)
            n = w->cap - 4;
        while (n > 0 && ((unsigned char)w->p[n] & 0xc0) == 0x80)
            n--;
        memcpy(w->p + n, "...", 3);
        w->len = n + 3;
    }
    w->p[w->len] = '\0';
}

static void put_utf8(struct sw *w, uint32_t c)
{
    char b[4];

    if (c < 0x80) {
        b[0] = (char)c;
        sw_putn(w, b, 1);
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3f));
        sw_putn(w, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        sw_putn(w, b, 3);
    } else {
        b[0] = (char)(0xf0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        sw_putn(w, b, 4);
    }
}

/*
 * One code point the way repr() shows it inside quotes.  Printability
 * beyond Latin-1 needs Unicode's tables, which we do not carry: only the
 * controls, the Latin-1 non-printables, surrogates and the line/paragraph
 * separators are escaped; other characters are shown as themselves.
 */
/* The escapes str and bytes reprs share: the quote, backslash, \n \r \t. */
static bool put_short_escape(struct sw *w, uint32_t c, char quote)
{
    if (c == (uint32_t)quote || c == '\\') {
        char b[2] = {'\\', (char)c};
        sw_putn(w, b, 2);
    } else if (c == '\n') {
        sw_puts(w, "\\n");
    } else if (c == '\r') {
        sw_puts(w, "\\r");
    } else if (c == '\t') {
        sw_puts(w, "\\t");
    } else {
        return false;
    }
    return true;
}

static void put_repr_char(struct sw *w, uint32_t c, char quote)
{
    if (put_short_escape(w, c, quote)) {
        /* done */
    } else if (c < 0x20 || (c >= 0x7f && c < 0xa1) || c == 0xad) {
        sw_printf(w, "\\x%02x", c);
    } else if ((c >= 0xd800 && c < 0xe000) || c == 0x2028 || c == 0x2029) {
        sw_printf(w, "\\u%04x", c);
    } else if (c > 0x10ffff) {
        sw_printf(w, "\\U%08x", c);
    } else {
        put_utf8(w, c);
    }
}

/* A name from the worker (file, function, type): printable, no quotes. */
static void put_plain_char(struct sw *w, uint32_t c)
{
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || (c >= 0xd800 && c < 0xe000) ||
        c > 0x10ffff || c == 0x2028 || c == 0x2029)
        sw_printf(w, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
    else
        put_utf8(w, c);
}

/* ------------------------------------------------------------------------
 * Reading objects
 * ------------------------------------------------------------------------ */

enum kind {
    K_OTHER, K_CODE, K_CELL, K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES,
    K_TUPLE, K_LIST, K_DICT, K_SET, K_FROZENSET,
};

struct pcache;

struct ctx {
    const struct py_runtime *rt;
    const struct py_offsets *o;
    struct remote_mem mem; /* through the page cache */
    struct pcache *pc;
    const struct py_limits *lim;
    bool defer_types;      /* held: types' names are marked, named later */
};

static int rd(struct ctx *c, uint64_t addr, void *buf, size_t len)
{
    return remote_read(&c->mem, addr, buf, len);
}

static int rd_ptr(struct ctx *c, uint64_t addr, uint64_t *ret)
{
    return rd(c, addr, ret, sizeof(*ret));
}

/* Objects are 8-byte aligned; anything else is not an object pointer. */
static bool plausible(uint64_t addr)
{
    return addr >= 4096 && (addr & 7) == 0 && addr < ((uint64_t)1 << 56);
}

static enum kind kind_of_type(const struct ctx *c, uint64_t type)
{
    const struct py_types *t = &c->rt->types;

    if (!type)
        return K_OTHER;
#define K(field, k)       \
    if (type == t->field) \
        return k
    K(str, K_STR);
    K(integer, K_INT);
    K(none, K_NONE);
    K(boolean, K_BOOL);
    K(floating, K_FLOAT);
    K(list, K_LIST);
    K(dict, K_DICT);
    K(tuple, K_TUPLE);
    K(bytes, K_BYTES);
    K(set, K_SET);
    K(frozenset, K_FROZENSET);
    K(code, K_CODE);
    K(cell, K_CELL);
#undef K
    return K_OTHER;
}

static int type_of(struct ctx *c, uint64_t obj, uint64_t *ret_type)
{
    if (!plausible(obj))
        return -EFAULT;
    return rd_ptr(c, obj + c->o->ob_type, ret_type);
}

/*
 * A str's code points: up to max of them into cps, its length in
 * *ret_len.  Compact strings (everything CPython makes today) keep the
 * data right after the header; legacy ones point to it.
 */
static int read_str(struct ctx *c, uint64_t obj, uint32_t *cps, size_t max, size_t *ret_n,
                    uint64_t *ret_len)
{
    uint8_t hdr[24];
    uint32_t state;
    uint64_t len, data;
    unsigned kind;
    size_t n;
    int r;

    r = rd(c, obj + c->o->head, hdr, sizeof(hdr)); /* length, hash, state */
    if (r < 0)
        return r;
    memcpy(&len, hdr, 8);
    memcpy(&state, hdr + 16, 4);
    state >>= c->o->ustate_kind_shift; /* kind:3, compact:1, ascii:1 */
    kind = state & 7;
    if (len > STR_LEN_MAX || (kind != 1 && kind != 2 && kind != 4))
        return -EBADMSG;
    if (state & 8) { /* compact */
        data = obj + ((state & 16) ? c->o->unicode_ascii_size : c->o->unicode_compact_size);
    } else {
        r = rd_ptr(c, obj + c->o->unicode_compact_size, &data);
        if (r < 0)
            return r;
        if (!plausible(data) && data != 0)
            return -EFAULT;
        if (!data)
            return -EBADMSG;
    }
    n = len < max ? (size_t)len : max;
    if (n > 0) {
        uint8_t raw[1024];
        size_t done = 0;
        while (done < n) {
            size_t step = (sizeof(raw) / kind < n - done) ? sizeof(raw) / kind : n - done;
            r = rd(c, data + (uint64_t)done * kind, raw, step * kind);
            if (r < 0)
                return r;
            for (size_t i = 0; i < step; i++) {
                uint32_t v;
                if (kind == 1)
                    v = raw[i];
                else if (kind == 2)
                    v = (uint32_t)raw[2 * i] | ((uint32_t)raw[2 * i + 1] << 8);
                else
                    memcpy(&v, raw + 4 * i, 4);
                cps[done + i] = v;
            }
            done += step;
        }
    }
    *ret_n = n;
    *ret_len = len;
    return 0;
}

/* A str object as plain text (names, file names); false if unreadable. */
static bool put_str_plain(struct ctx *c, struct sw *w, uint64_t obj)
{
    uint32_t cps[NAME_MAX_BYTES];
    uint64_t type, len;
    size_t n;

    if (type_of(c, obj, &type) < 0 || kind_of_type(c, type) != K_STR)
        return false;
    if (read_str(c, obj, cps, NAME_MAX_BYTES, &n, &len) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        put_plain_char(w, cps[i]);
    if (len > n)
        sw_puts(w, "...");
    return true;
}

static void put_type_name(struct ctx *c, struct sw *w, uint64_t type)
{
    uint64_t name;
    char buf[TYPE_NAME_MAX];

    if (plausible(type) && rd_ptr(c, type + c->o->type_name, &name) == 0 && name &&
        remote_read_cstr(&c->mem, name, buf, sizeof(buf)) > 0) {
        for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
            put_plain_char(w, *p);
    } else {
        sw_puts(w, "?");
    }
}

static void put_value(struct ctx *c, struct sw *w, uint64_t obj, unsigned depth);

/* Python's float repr: the shortest digits that read back the same, in
 * fixed notation for exponents -4..15 and scientific otherwise. */
static void put_float(struct sw *w, double v)
{
    char tmp[40], digits[24];
    int exp10 = 0, nd = 0;

    if (isnan(v)) {
        sw_puts(w, "nan");
        return;
    }
    if (isinf(v)) {
        sw_puts(w, v > 0 ? "inf" : "-inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp: [-]d[.ddd]e(+|-)xx */
    const char *s = tmp;
    if (*s == '-') {
        sw_puts(w, "-");
        s++;
    }
    for (; *s && *s != 'e' && nd < (int)sizeof(digits) - 1; s++)
        if (*s >= '0' && *s <= '9')
            digits[nd++] = *s;
    if (*s == 'e')
        exp10 = (int)strtol(s + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++)
                sw_putn(w, i < nd ? &digits[i] : "0", 1);
            sw_puts(w, ".");
            if (nd > exp10 + 1)
                sw_puts(w, digits + exp10 + 1);
            else
                sw_puts(w, "0");
        } else {
            sw_puts(w, "0.");
            for (int i = 0; i < -exp10 - 1; i++)
                sw_puts(w, "0");
            sw_puts(w, digits);
        }
    } else {
        sw_putn(w, digits, 1);
        if (nd > 1) {
            sw_puts(w, ".");
            sw_puts(w, digits + 1);
        }
        sw_printf(w, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
}

/*
 * An int: sign and base-2^30 digits (3.11: sign in ob_size; 3.12+: in the
 * low bits of lv_tag), converted to decimal by repeated division.  Ints
 * too long to convert cheaply are shown by size.
 */
static int put_int(struct ctx *c, struct sw *w, uint64_t obj, bool as_bool)
{
    uint64_t tag;
    uint32_t d[INT_DIGITS_SHOWN];
    uint64_t nd;
    bool neg;
    int r;

    r = rd(c, obj + c->o->head, &tag, 8);
    if (r < 0)
        return r;
    if (c->o->long_lv_tag) {
        unsigned sign = tag & 3;
        if (sign == 3)
            return -EBADMSG;
        nd = tag >> 3;
        neg = sign == 2;
        if (sign == 1 && nd != 0)
            return -EBADMSG;
    } else {
        int64_t size = (int64_t)tag;
        neg = size < 0;
        nd = neg ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    }
    if (as_bool) {
        sw_puts(w, nd ? "True" : "False");
        return 0;
    }
    if (nd > INT_DIGITS_SHOWN) {
        if (nd > ((uint64_t)1 << 40))
            return -EBADMSG;
        /* 30 bits per digit is 9.03 decimal digits. */
        sw_printf(w, "<int of about %llu digits>", (unsigned long long)(nd * 903 / 100));
        return 0;
    }
    if (nd) {
        r = rd(c, obj + c->o->head + 8, d, nd * 4);
        if (r < 0)
            return r;
    }
    for (uint64_t i = 0; i < nd; i++)
        if (d[i] >> 30)
            return -EBADMSG;
    /* Little-endian base 2^30 in d[0..nd); divide by 1e9 until zero. */
    uint32_t chunks[INT_DIGITS_SHOWN * 2];
    unsigned nchunks = 0;
    size_t len = nd;
    while (len > 0 && nchunks < sizeof(chunks) / sizeof(chunks[0])) {
        uint64_t rem = 0;
        for (size_t i = len; i-- > 0;) {
            uint64_t cur = (rem << 30) | d[i];
            d[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nchunks++] = (uint32_t)rem;
        while (len > 0 && d[len - 1] == 0)
            len--;
    }
    if (neg && nchunks)
        sw_puts(w, "-");
    if (!nchunks) {
        sw_puts(w, "0");
        return 0;
    }
    sw_printf(w, "%u", chunks[nchunks - 1]);
    for (unsigned i = nchunks - 1; i-- > 0;)
        sw_printf(w, "%09u", chunks[i]);
    return 0;
}

/* Room for one more escaped character and the "...' (N chars)" tail; a
 * value limit too small for the tail just ends in "..." (sw_finish). */
static bool room_left(const struct sw *w)
{
    if (w->cap >= 3 * (ESCAPE_MAX + SUFFIX_MAX))
        return w->len + ESCAPE_MAX + SUFFIX_MAX < w->cap;
    return !w->over;
}

static int put_str_repr(struct ctx *c, struct sw *w, uint64_t obj)
{
    size_t max = c->lim->max_value_bytes, n;
    uint32_t *cps;
    uint64_t len;
    char quote = '\'';
    bool has_sq = false, has_dq = false;
    int r;

    cps = malloc((max ? max : 1) * sizeof(*cps));
    if (!cps)
        return -ENOMEM;
    r = read_str(c, obj, cps, max, &n, &len);
    if (r < 0) {
        free(cps);
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        has_sq |= cps[i] == '\'';
        has_dq |= cps[i] == '"';
    }
    if (has_sq && !has_dq)
        quote = '"';
    sw_putn(w, &quote, 1);
    /* Stop early enough that the closing quote and the real length still
     * fit: a cut string must say that it was cut. */
    size_t i;
    for (i = 0; i < n && room_left(w); i++)
        put_repr_char(w, cps[i], quote);
    free(cps);
    if (i < n)
        n = i;
    if (len > n) {
        /* Say how long it really was rather than cut silently. */
        sw_printf(w, "...%c (%llu chars)", quote, (unsigned long long)len);
        return 0;
    }
    sw_putn(w, &quote, 1);
    return 0;
}

static int put_bytes_repr(struct ctx *c, struct sw *w, uint64_t obj)
{
    uint8_t buf[512];
    int64_t size;
    size_t n, max = c->lim->max_value_bytes;
    bool has_sq = false, has_dq = false;
    char quote = '\'';
    int r;

    r = rd(c, obj + c->o->head, &size, 8);
    if (r < 0)
        return r;
    if (size < 0 || size > CONTAINER_MAX)
        return -EBADMSG;
    n = (uint64_t)size < sizeof(buf) ? (size_t)size : sizeof(buf);
    if (n > max)
        n = max;
    if (n) {
        r = rd(c, obj + c->o->head + 16, buf, n);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n; i++) {
        has_sq |= buf[i] == '\'';
        has_dq |= buf[i] == '"';
    }
    if (has_sq && !has_dq)
        quote = '"';
    sw_putn(w, "b", 1);
    sw_putn(w, &quote, 1);
    size_t i;
    for (i = 0; i < n && room_left(w); i++) {
        uint8_t ch = buf[i];
        if (put_short_escape(w, ch, quote)) {
            /* done */
        } else if (ch < 0x20 || ch >= 0x7f) {
            sw_printf(w, "\\x%02x", ch);
        } else {
            sw_putn(w, (const char *)&ch, 1);
        }
    }
    if (i < n)
        n = i;
    if ((uint64_t)size > n) {
        sw_printf(w, "...%c (%lld bytes)", quote, (long long)size);
        return 0;
    }
    sw_putn(w, &quote, 1);
    return 0;
}

static void put_more(struct sw *w, uint64_t total, uint64_t shown, const char *close)
{
    if (total > shown) {
        sw_puts(w, shown ? ", ..." : "...");
        sw_puts(w, close);
        sw_printf(w, " (%llu items)", (unsigned long long)total);
    } else {
        sw_puts(w, close);
    }
}

/* list and tuple: a count and item pointers (inline in a tuple, an array
 * elsewhere for a list). */
static int put_sequence(struct ctx *c, struct sw *w, uint64_t obj, enum kind k, unsigned depth)
{
    const char *open = k == K_LIST ? "[" : "(", *close = k == K_LIST ? "]" : ")";
    uint64_t items, ptrs[64];
    int64_t size;
    size_t show;
    int r;

    r = rd(c, obj + c->o->head, &size, 8);
    if (r < 0)
        return r;
    if (size < 0 || size > CONTAINER_MAX)
        return -EBADMSG;
    if (depth >= DEPTH_MAX) {
        sw_printf(w, "%s...%s (%lld items)", open, close, (long long)size);
        return 0;
    }
    if (k == K_LIST) {
        r = rd_ptr(c, obj + c->o->head + 8, &items);
        if (r < 0)
            return r;
        if (size > 0 && !plausible(items))
            return -EFAULT;
    } else {
        items = obj + c->o->tuple_item;
    }
    show = (uint64_t)size < c->lim->max_items ? (size_t)size : c->lim->max_items;
    if (show > 64)
        show = 64;
    if (show) {
        r = rd(c, items, ptrs, show * 8);
        if (r < 0)
            return r;
    }
    sw_puts(w, open);
    for (size_t i = 0; i < show && !w->over; i++) {
        if (i)
            sw_puts(w, ", ");
        put_value(c, w, ptrs[i], depth + 1);
    }
    if (k == K_TUPLE && size == 1)
        sw_puts(w, ",");
    put_more(w, (uint64_t)size, show, close);
    return 0;
}

/*
 * dict: ma_used items in ma_keys' entry array (after the index table,
 * 2^dk_log2_index_bytes bytes), values there or, for a split table, in
 * ma_values.  Deleted entries have a NULL key or value and are skipped.
 */
static int put_dict(struct ctx *c, struct sw *w, uint64_t obj, unsigned depth)
{
    struct {
        int64_t used;
        uint64_t version, keys, values;
    } d;
    uint8_t kh[32];
    int64_t nentries;
    unsigned log2_size, log2_index, kind;
    uint64_t entries, esize, shown = 0, scanned = 0;
    int r;

    r = rd(c, obj + c->o->head, &d, sizeof(d));
    if (r < 0)
        return r;
    if (d.used < 0 || d.used > CONTAINER_MAX)
        return -EBADMSG;
    if (d.used == 0) {
        sw_puts(w, "{}");
        return 0;
    }
    if (depth >= DEPTH_MAX) {
        sw_printf(w, "{...} (%lld items)", (long long)d.used);
        return 0;
    }
    if (!plausible(d.keys) || (d.values && !plausible(d.values)))
        return -EFAULT;
    r = rd(c, d.keys, kh, sizeof(kh));
    if (r < 0)
        return r;
    log2_size = kh[8];
    log2_index = kh[9];
    kind = kh[10];
    memcpy(&nentries, kh + 24, 8);
    if (log2_size < 3 || log2_size > 40 || log2_index > log2_size + 3 || kind > 2 ||
        nentries < 0 || nentries > ((int64_t)1 << log2_size))
        return -EBADMSG;
    entries = d.keys + 32 + ((uint64_t)1 << log2_index);
    esize = kind == 0 ? 24 : 16;
    sw_puts(w, "{");
    while (scanned < (uint64_t)nentries && scanned < SCAN_SLOTS_MAX &&
           shown < c->lim->max_items && !w->over) {
        uint64_t e[3], key, value;
        r = rd(c, entries + scanned * esize, e, esize);
        if (r < 0)
            return r;
        key = kind == 0 ? e[1] : e[0];
        value = kind == 0 ? e[2] : e[1];
        if (d.values) {
            r = rd_ptr(c, d.values + c->o->dictvalues_values + scanned * 8, &value);
            if (r < 0)
                return r;
        }
        scanned++;
        if (!key || !value)
            continue;
        if (shown++)
            sw_puts(w, ", ");
        put_value(c, w, key, depth + 1);
        sw_puts(w, ": ");
        put_value(c, w, value, depth + 1);
    }
    put_more(w, (uint64_t)d.used, shown, "}");
    return 0;
}

/* set and frozenset: a hash table of (key, hash) slots; empty slots have
 * no key and deleted ones the hash -1. */
static int put_set(struct ctx *c, struct sw *w, uint64_t obj, enum kind k, unsigned depth)
{
    struct {
        int64_t fill, used, mask;
        uint64_t table;
    } s;
    uint64_t shown = 0;
    int r;

    r = rd(c, obj + c->o->head, &s, sizeof(s));
    if (r < 0)
        return r;
    if (s.used < 0 || s.used > s.fill || s.mask < 7 || s.mask > ((int64_t)1 << 40) ||
        (s.mask & (s.mask + 1)) != 0 || s.used > s.mask + 1)
        return -EBADMSG;
    if (s.used == 0) {
        sw_puts(w, k == K_SET ? "set()" : "frozenset()");
        return 0;
    }
    if (k == K_FROZENSET)
        sw_puts(w, "frozenset(");
    if (depth >= DEPTH_MAX) {
        sw_printf(w, "{...} (%lld items)", (long long)s.used);
        if (k == K_FROZENSET)
            sw_puts(w, ")");
        return 0;
    }
    if (!plausible(s.table))
        return -EFAULT;
    sw_puts(w, "{");
    for (uint64_t i = 0; i <= (uint64_t)s.mask && i < SCAN_SLOTS_MAX &&
                         shown < c->lim->max_items && !w->over;
         i++) {
        uint64_t e[2];
        r = rd(c, s.table + i * 16, e, sizeof(e));
        if (r < 0)
            return r;
        if (!e[0] || (int64_t)e[1] == -1)
            continue;
        if (shown++)
            sw_puts(w, ", ");
        put_value(c, w, e[0], depth + 1);
    }
    put_more(w, (uint64_t)s.used, shown, "}");
    if (k == K_FROZENSET)
        sw_puts(w, ")");
    return 0;
}

static void put_value(struct ctx *c, struct sw *w, uint64_t obj, unsigned depth)
{
    uint64_t type;
    size_t mark = w->len;
    int r;

    if (w->over)
        return;
    r = type_of(c, obj, &type);
    if (r == 0) {
        switch (kind_of_type(c, type)) {
        case K_NONE:
            sw_puts(w, "None");
            break;
        case K_BOOL:
            r = put_int(c, w, obj, true);
            break;
        case K_INT:
            r = put_int(c, w, obj, false);
            break;
        case K_FLOAT: {
            double v;
            r = rd(c, obj + c->o->head, &v, sizeof(v));
            if (r == 0)
                put_float(w, v);
            break;
        }
        case K_STR:
            r = put_str_repr(c, w, obj);
            break;
        case K_BYTES:
            r = put_bytes_repr(c, w, obj);
            break;
        case K_LIST:
        case K_TUPLE:
            r = put_sequence(c, w, obj, kind_of_type(c, type), depth);
            break;
        case K_DICT:
            r = put_dict(c, w, obj, depth);
            break;
        case K_SET:
        case K_FROZENSET:
            r = put_set(c, w, obj, kind_of_type(c, type), depth);
            break;
        default:
            sw_puts(w, "<");
            if (c->defer_types)
                sw_printf(w, "%c%016llx%c", TYPE_MARK_OPEN, (unsigned long long)type,
                          TYPE_MARK_CLOSE);
            else
                put_type_name(c, w, type);
            sw_printf(w, " object at 0x%llx>", (unsigned long long)obj);
            break;
        }
    }
    if (r < 0 && !w->over) {
        /* Whatever was half-written for this value goes; say what it was. */
        w->len = mark;
        sw_printf(w, "<unreadable object at 0x%llx>", (unsigned long long)obj);
    }
}

/* ------------------------------------------------------------------------
 * Line numbers: the 3.11+ location table (InternalDocs/locations.md)
 * ------------------------------------------------------------------------ */

/* Sequential bytes of a remote buffer, fetched in chunks. */
struct cursor {
    struct ctx *c;
    uint64_t addr, end;
    uint8_t buf[256];
    size_t pos, n;
    bool failed;
};

static int cur_byte(struct cursor *k)
{
    if (k->pos == k->n) {
        uint64_t left = k->end - k->addr;
        if (left == 0)
            return -1;
        k->n = left < sizeof(k->buf) ? (size_t)left : sizeof(k->buf);
        if (rd(k->c, k->addr, k->buf, k->n) < 0) {
            k->failed = true;
            k->n = 0;
            k->addr = k->end;
            return -1;
        }
        k->addr += k->n;
        k->pos = 0;
    }
    return k->buf[k->pos++];
}

/* Varints: 6-bit groups, least significant first, 0x40 = more follows. */
static bool cur_varint(struct cursor *k, uint32_t *ret)
{
    uint32_t v = 0;
    int b, shift = 0;

    do {
        b = cur_byte(k);
        if (b < 0 || (b & 0x80) || shift > 30)
            return false;
        v |= (uint32_t)(b & 63) << shift;
        shift += 6;
    } while (b & 64);
    *ret = v;
    return true;
}

static bool cur_svarint(struct cursor *k, int *ret)
{
    uint32_t u;

    if (!cur_varint(k, &u))
        return false;
    *ret = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
    return true;
}

/*
 * The line of code unit 'unit' (an index into co_code_adaptive).  Each
 * entry covers 1..8 code units and moves the line by a delta; code 15 has
 * no line.  Returns 0 when unknown.
 */
static int decode_line(struct ctx *c, uint64_t table, uint64_t size, int firstlineno,
                       int64_t unit)
{
    struct cursor k = {.c = c, .addr = table, .end = table + size};
    int line = firstlineno;
    int64_t start = 0;
    int b = cur_byte(&k);

    if (unit < 0)
        return firstlineno;
    while (b >= 0) {
        unsigned code = ((unsigned)b >> 3) & 15, len = ((unsigned)b & 7) + 1;
        int delta = 0;
        uint32_t skip;
        if (!(b & 0x80))
            return 0;
        switch (code) {
        case 15:
            break;
        case 14:
            if (!cur_svarint(&k, &delta) || !cur_varint(&k, &skip) || !cur_varint(&k, &skip) ||
                !cur_varint(&k, &skip))
                return 0;
            break;
        case 13:
            if (!cur_svarint(&k, &delta))
                return 0;
            break;
        case 10:
        case 11:
        case 12:
            delta = (int)code - 10;
            if (cur_byte(&k) < 0 || cur_byte(&k) < 0)
                return 0;
            break;
        default:
            if (cur_byte(&k) < 0)
                return 0;
            break;
        }
        if ((delta > 0 && line > INT_MAX - delta) || (delta < 0 && line < INT_MIN - delta))
            return 0;
        line += delta;
        if (unit < start + len)
            return code == 15 ? 0 : (line > 0 ? line : 0);
        start += len;
        b = cur_byte(&k);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The stack walk
 * ------------------------------------------------------------------------ */

struct code_info {
    uint64_t addr;
    const char *filename, *function;
    int firstlineno;
    uint64_t linetable, linetable_size;
    uint64_t names, kinds;
    int64_t nlocalsplus;
    bool ok;
};

static void py_limits_fix(struct py_limits *l)
{
    if (l->max_frames == 0 || l->max_frames > FRAMES_CAP)
        l->max_frames = l->max_frames ? FRAMES_CAP : 128;
    if (l->max_locals > LOCALS_CAP)
        l->max_locals = LOCALS_CAP;
    if (l->max_value_bytes < 16)
        l->max_value_bytes = 16;
    if (l->max_value_bytes > 65536)
        l->max_value_bytes = 65536;
    if (l->max_items > 64)
        l->max_items = 64;
    if (l->max_text_bytes < 1024)
        l->max_text_bytes = 1024;
    if (l->max_text_bytes > (64u << 20))
        l->max_text_bytes = 64u << 20;
    if (l->max_read_bytes == 0)
        l->max_read_bytes = 4u << 20;
}

void py_limits_default(struct py_limits *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->max_frames = 128;
    ret->max_locals = 32;
    ret->max_value_bytes = 2048;
    ret->max_items = 5;
    ret->max_text_bytes = 256 * 1024;
    ret->max_read_bytes = 4u << 20;
}

/* Copy text into the stack's arena; NULL when it is full. */
static const char *arena_add(struct py_stack *s, const char *text, size_t len)
{
    char *p;

    if (s->text_len + len + 1 > s->text_cap)
        return NULL;
    p = s->text + s->text_len;
    memcpy(p, text, len);
    p[len] = '\0';
    s->text_len += len + 1;
    return p;
}

static const char *arena_str(struct py_stack *s, struct ctx *c, uint64_t obj, const char *dflt)
{
    char buf[NAME_MAX_BYTES * 4 + 8];
    struct sw w = {.p = buf, .cap = sizeof(buf)};
    const char *p;

    if (!put_str_plain(c, &w, obj))
        return dflt;
    sw_finish(&w);
    p = arena_add(s, buf, w.len);
    return p ? p : dflt;
}

static int load_code(struct ctx *c, struct py_stack *s, uint64_t code, struct code_info *ci)
{
    const struct py_offsets *o = c->o;
    uint8_t hdr[512];
    uint64_t type, filename, name, qualname, table;
    int32_t first;
    int64_t tsize;
    int r;

    memset(ci, 0, sizeof(*ci));
    ci->addr = code;
    if (o->code_size > sizeof(hdr))
        return -EPROTO;
    r = type_of(c, code, &type);
    if (r < 0)
        return r;
    if (kind_of_type(c, type) != K_CODE)
        return -EBADMSG;
    r = rd(c, code, hdr, o->code_size);
    if (r < 0)
        return r;
    memcpy(&filename, hdr + o->code_filename, 8);
    memcpy(&name, hdr + o->code_name, 8);
    memcpy(&qualname, hdr + o->code_qualname, 8);
    memcpy(&table, hdr + o->code_linetable, 8);
    memcpy(&first, hdr + o->code_firstlineno, 4);
    memcpy(&ci->names, hdr + o->code_localsplusnames, 8);
    memcpy(&ci->kinds, hdr + o->code_localspluskinds, 8);
    ci->firstlineno = first > 0 ? first : 0;
    ci->filename = arena_str(s, c, filename, "?");
    ci->function = arena_str(s, c, qualname, NULL);
    if (!ci->function)
        ci->function = arena_str(s, c, name, "?");
    /* co_linetable is a bytes object: ob_size, ob_shash, then the data. */
    if (plausible(table) && type_of(c, table, &type) == 0 && kind_of_type(c, type) == K_BYTES &&
        rd(c, table + o->head, &tsize, 8) == 0 && tsize >= 0 && (uint64_t)tsize <= LINETABLE_MAX) {
        ci->linetable = table + o->head + 16;
        ci->linetable_size = (uint64_t)tsize;
    }
    /* The names tuple's length is co_nlocalsplus. */
    ci->nlocalsplus = -1;
    if (plausible(ci->names) && type_of(c, ci->names, &type) == 0 &&
        kind_of_type(c, type) == K_TUPLE) {
        int64_t n;
        if (rd(c, ci->names + o->head, &n, 8) == 0 && n >= 0 && n <= NLOCALSPLUS_MAX)
            ci->nlocalsplus = n;
    }
    /* co_localspluskinds: bytes of the same length, or none at all. */
    if (ci->nlocalsplus > 0) {
        int64_t kn;
        if (!plausible(ci->kinds) || type_of(c, ci->kinds, &type) < 0 ||
            kind_of_type(c, type) != K_BYTES || rd(c, ci->kinds + o->head, &kn, 8) < 0 ||
            kn != ci->nlocalsplus)
            ci->kinds = 0;
    }
    ci->ok = true;
    return 0;
}

/*
 * How a stack is read.  The thread is held only for what changes as it
 * runs (py_capture): the frame chain, each frame's position and its local
 * variables' values.  Everything that a code object says -- file, function,
 * line table, the locals' names -- and the names of types cannot change
 * while the frames that use them exist, and is read after the thread is let
 * go (py_finish).  While held, the pages of one step (all code objects,
 * all names tuples, all locals arrays, all values) come in one vectored
 * read each: a few dozen system calls where the naive walk made hundreds.
 *
 * Two things cross from one phase to the other in the text: a value that
 * shows a type's name holds "\x01" + 16 hex digits of the type + "\x02"
 * there (rendering escapes every control character a worker's data could
 * hold, so these bytes come from nothing else), and each local carries the
 * index of its slot, named in py_finish.
 */

/* The thread's page cache for a read of the stack whose cache generation
 * is *gen: emptied for a capture (fresh) or when another read used it
 * since, and the budget counted afresh. */
static void ctx_init(struct ctx *c, const struct py_runtime *rt, const struct py_limits *lim,
                     struct remote_mem *m, bool fresh, uint64_t *gen)
{
    struct pcache *pc = &tl_pc;

    if (fresh || *gen != tl_generation) {
        memset(pc->tag, 0, sizeof(pc->tag));
        memset(pc->used, 0, sizeof(pc->used));
        pc->clock = 0;
        *gen = ++tl_generation;
    }
    pc->under = m;
    pc->max_bytes = lim->max_read_bytes;
    pc->bytes = 0;
    pc->reads = 0;
    memset(c, 0, sizeof(*c));
    c->rt = rt;
    c->o = &rt->off;
    c->lim = lim;
    c->pc = pc;
    c->mem.read = pc_read;
    c->mem.ctx = pc;
}

static void note(struct py_stack *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(struct py_stack *s, int err, const char *fmt, ...)
{
    va_list ap;

    if (s->err == 0)
        s->err = err;
    if (s->note[0])
        return;
    va_start(ap, fmt);
    vsnprintf(s->note, sizeof(s->note), fmt, ap);
    va_end(ap);
}

/* While held: the frame chain, innermost first, without its code objects. */
static void walk_frames(struct ctx *c, struct py_stack *s, uint64_t frame)
{
    const struct py_offsets *o = c->o;
    const struct py_limits *lim = c->lim;
    unsigned walked = 0;
    /* Shim frames do not count, but they still bound the walk. */
    unsigned walk_max = lim->max_frames * 2 + 16;
    uint64_t *seen;

    seen = calloc(walk_max, sizeof(*seen));
    if (!seen) {
        note(s, -ENOMEM, "out of memory");
        return;
    }
    while (frame) {
        uint8_t hdr[128];
        uint64_t code, previous, instr;
        uint8_t owner;

        if (!plausible(frame)) {
            note(s, -EFAULT, "bad frame pointer 0x%llx", (unsigned long long)frame);
            break;
        }
        for (unsigned i = 0; i < walked; i++) {
            if (seen[i] == frame) {
                note(s, -ELOOP, "frame chain loops at 0x%llx", (unsigned long long)frame);
                goto out;
            }
        }
        if (walked == walk_max) {
            note(s, -E2BIG, "frame chain longer than %u", walk_max);
            break;
        }
        if (s->nframes == lim->max_frames) {
            s->truncated = true;
            note(s, 0, "only the innermost %u Python frames are shown", lim->max_frames);
            break;
        }
        seen[walked++] = frame;
        if (o->frame_localsplus > sizeof(hdr) || rd(c, frame, hdr, o->frame_localsplus) < 0) {
            note(s, -EFAULT, "cannot read frame at 0x%llx", (unsigned long long)frame);
            break;
        }
        memcpy(&code, hdr + o->frame_code, 8);
        memcpy(&previous, hdr + o->frame_previous, 8);
        memcpy(&instr, hdr + o->frame_instr, 8);
        owner = hdr[o->frame_owner];
        if (o->stackref)
            code &= ~(uint64_t)3;

        if (owner > o->owner_max) {
            note(s, -EBADMSG, "corrupt frame at 0x%llx", (unsigned long long)frame);
            break;
        }
        if (owner >= o->owner_cstack) {
            /* A shim the eval loop pushes on entry: the frame inside it
             * (the one we emitted last) is the oldest of its activation. */
            if (s->nframes)
                s->frames[s->nframes - 1].entry = true;
            frame = previous;
            continue;
        }
        if (!plausible(code)) {
            note(s, -EBADMSG, "frame at 0x%llx has no readable code object",
                 (unsigned long long)frame);
            break;
        }
        struct py_frame *f = &s->frames[s->nframes++];
        memset(f, 0, sizeof(*f));
        f->frame_addr = frame;
        f->code_addr = code;
        f->instr = instr;
        if (o->frame_tlbc_index != NONE32)
            memcpy(&f->tlbc_index, hdr + o->frame_tlbc_index, 4);
        if (o->frame_is_entry != NONE32)
            f->entry = hdr[o->frame_is_entry] != 0;
        if (!previous)
            f->entry = true;
        frame = previous;
    }
out:
    free(seen);
}

static struct py_code_slot *code_slot(const struct py_runtime *rt, uint64_t code)
{
    unsigned i = (unsigned)(((code >> 4) * 0x9e3779b97f4a7c15ull) >> 56) % PY_CODE_CACHE;
    return (struct py_code_slot *)&rt->code_cache[i];
}

/*
 * While held: how many local slots each frame's code has (the length of
 * its co_localsplusnames tuple; -1 when unknown), from the worker's code
 * cache where it has the code, else read: all code objects missing, then
 * all their names tuples, one vectored read each.  Each frame records what
 * was used (names_seen, nslots_seen), for the capture and for py_finish()
 * to check.
 */
static void count_slots(struct ctx *c, struct py_stack *s)
{
    const struct py_offsets *o = c->o;
    unsigned nf = s->nframes, nmiss = 0;
    struct prange *pr = calloc(nf ? nf : 1, sizeof(*pr));
    unsigned *miss = calloc(nf ? nf : 1, sizeof(*miss));

    for (unsigned i = 0; i < nf; i++) {
        s->frames[i].names_seen = 0;
        s->frames[i].nslots_seen = -1;
    }
    if (!pr || !miss)
        goto out;
    for (unsigned i = 0; i < nf; i++) {
        struct py_frame *f = &s->frames[i];
        const struct py_code_slot *e = code_slot(c->rt, f->code_addr);
        if (e->code == f->code_addr) {
            f->names_seen = e->names;
            f->nslots_seen = e->n;
        } else {
            pr[nmiss] = (struct prange){f->code_addr, o->code_size};
            miss[nmiss++] = i;
        }
    }
    s->code_misses = nmiss;
    pc_prefetch(c->pc, pr, nmiss);
    for (unsigned k = 0; k < nmiss; k++) {
        struct py_frame *f = &s->frames[miss[k]];
        uint64_t type;
        if (type_of(c, f->code_addr, &type) < 0 || kind_of_type(c, type) != K_CODE ||
            rd_ptr(c, f->code_addr + o->code_localsplusnames, &f->names_seen) < 0 ||
            !plausible(f->names_seen))
            f->names_seen = 0;
        pr[k] = (struct prange){f->names_seen, o->head + 8};
    }
    pc_prefetch(c->pc, pr, nmiss);
    for (unsigned k = 0; k < nmiss; k++) {
        struct py_frame *f = &s->frames[miss[k]];
        uint64_t type;
        int64_t n;
        if (f->names_seen && type_of(c, f->names_seen, &type) == 0 &&
            kind_of_type(c, type) == K_TUPLE && rd(c, f->names_seen + o->head, &n, 8) == 0 &&
            n >= 0 && n <= NLOCALSPLUS_MAX)
            f->nslots_seen = n;
    }
out:
    free(pr);
    free(miss);
}

/* While held: the values of each frame's bound locals, rendered; names
 * come later (py_finish).  Cells and free variables are dereferenced. */
static void capture_locals(struct ctx *c, struct py_stack *s, struct py_local *locals)
{
    const struct py_offsets *o = c->o;
    unsigned nf = s->nframes, max = c->lim->max_locals;
    /* per frame, the first max slots that hold something: slot, value */
    uint32_t *slot = calloc((size_t)(nf ? nf : 1) * max, sizeof(*slot));
    uint64_t *val = calloc((size_t)(nf ? nf : 1) * max, sizeof(*val));
    unsigned *count = calloc(nf ? nf : 1, sizeof(*count));
    struct prange *pr = calloc((size_t)(nf ? nf : 1) * max, sizeof(*pr));
    uint64_t ptrs[64];
    char *vbuf = malloc(c->lim->max_value_bytes + 1);
    size_t npr = 0;

    if (!slot || !val || !count || !pr || !vbuf) {
        note(s, -ENOMEM, "out of memory");
        goto out;
    }
    count_slots(c, s);
    for (unsigned i = 0; i < nf; i++)
        if (s->frames[i].nslots_seen > 0)
            pr[npr++] = (struct prange){s->frames[i].frame_addr + o->frame_localsplus,
                                        (size_t)s->frames[i].nslots_seen * 8};
    pc_prefetch(c->pc, pr, npr);
    npr = 0;
    /* The slots' contents, 64 at a time; the first max bound ones kept. */
    for (unsigned i = 0; i < nf; i++) {
        uint64_t base = s->frames[i].frame_addr + o->frame_localsplus;
        int64_t n = s->frames[i].nslots_seen;
        for (int64_t k = 0; k < n && count[i] < max; k += 64) {
            size_t chunk = n - k < 64 ? (size_t)(n - k) : 64;
            if (rd(c, base + (uint64_t)k * 8, ptrs, chunk * 8) < 0) {
                s->frames[i].locals_truncated = true;
                break;
            }
            for (size_t j = 0; j < chunk && count[i] < max; j++) {
                uint64_t v = ptrs[j];
                if (o->stackref && (v & 3) != 3)
                    v &= ~(uint64_t)3;
                if (!v)
                    continue; /* unbound */
                slot[(size_t)i * max + count[i]] = (uint32_t)(k + (int64_t)j);
                val[(size_t)i * max + count[i]] = v;
                count[i]++;
                if (plausible(v))
                    pr[npr++] = (struct prange){v, 64};
            }
        }
        if (count[i] == max && (int64_t)max < n)
            s->frames[i].locals_truncated = true;
    }
    pc_prefetch(c->pc, pr, npr);
    for (unsigned i = 0; i < nf; i++) {
        struct py_frame *f = &s->frames[i];
        struct py_local *out = locals + (size_t)i * max;
        for (unsigned k = 0; k < count[i]; k++) {
            uint64_t value = val[(size_t)i * max + k], type;
            struct sw w = {.p = vbuf, .cap = c->lim->max_value_bytes + 1};
            /* A _PyStackRef whose low bits are 11 is an int kept in the
             * reference itself (3.14). */
            if (o->stackref && (value & 3) == 3) {
                sw_printf(&w, "%lld", (long long)((int64_t)value >> 2));
            } else {
                if (type_of(c, value, &type) == 0 && kind_of_type(c, type) == K_CELL) {
                    if (rd_ptr(c, value + o->head, &value) < 0) {
                        f->locals_truncated = true;
                        break;
                    }
                    if (!value)
                        continue; /* empty cell */
                }
                put_value(c, &w, value, 0);
            }
            sw_finish(&w);
            const char *text = arena_add(s, vbuf, w.len);
            if (!text) {
                f->locals_truncated = true; /* text budget spent */
                break;
            }
            out[f->nlocals].slot = slot[(size_t)i * max + k];
            out[f->nlocals].value = text;
            f->nlocals++;
        }
        f->locals = out;
    }
out:
    free(slot);
    free(val);
    free(count);
    free(pr);
    free(vbuf);
}

/* The thread state whose native_thread_id is tid; its newest frame. */
static int find_thread(struct ctx *c, pid_t tid, uint64_t *ret_frame)
{
    const struct py_offsets *o = c->o;
    uint64_t interp, ts;
    int r;

    r = rd_ptr(c, c->rt->runtime_addr + o->runtime_interp_head, &interp);
    if (r < 0)
        return r;
    for (unsigned i = 0; interp && i < INTERPS_MAX; i++) {
        if (!plausible(interp))
            return -EFAULT;
        r = rd_ptr(c, interp + o->interp_threads_head, &ts);
        if (r < 0)
            return r;
        for (unsigned k = 0; ts && k < TSTATES_MAX; k++) {
            uint64_t ntid;
            if (!plausible(ts))
                return -EFAULT;
            r = rd_ptr(c, ts + o->tstate_native_thread_id, &ntid);
            if (r < 0)
                return r;
            if (ntid == (uint64_t)tid) {
                uint64_t frame = 0;
                if (o->tstate_current_frame != NONE32) {
                    r = rd_ptr(c, ts + o->tstate_current_frame, &frame);
                } else {
                    uint64_t cframe;
                    r = rd_ptr(c, ts + o->tstate_cframe, &cframe);
                    if (r == 0 && cframe)
                        r = rd_ptr(c, cframe + o->cframe_current_frame, &frame);
                }
                if (r < 0)
                    return r;
                *ret_frame = frame;
                return 0;
            }
            r = rd_ptr(c, ts + o->tstate_next, &ts);
            if (r < 0)
                return r;
        }
        r = rd_ptr(c, interp + o->interp_next, &interp);
        if (r < 0)
            return r;
    }
    return -ESRCH;
}

/*
 * Free-threaded 3.14: a thread may run its own copy of a code object's
 * bytecode, entries[frame->tlbc_index] of the code's co_tlbc array (size,
 * then pointers); index 0 is co_code_adaptive itself.  The base the frame's
 * instr_ptr counts from, or 0 when the array cannot be read.
 */
static uint64_t tlbc_base(struct ctx *c, uint64_t code, int32_t idx, uint64_t adaptive)
{
    int64_t size;
    uint64_t arr, entry;

    if (idx == 0)
        return adaptive;
    if (idx < 0 || rd_ptr(c, code + c->o->code_tlbc, &arr) < 0 || !plausible(arr) ||
        rd(c, arr, &size, 8) < 0 || idx >= size ||
        rd_ptr(c, arr + 8 + 8 * (uint64_t)idx, &entry) < 0 || !plausible(entry))
        return 0;
    return entry;
}

/* After the thread is let go: a value's type marks, replaced by the
 * types' names. */
static const char *name_types(struct ctx *c, struct py_stack *s, const char *value, char *buf,
                              size_t size)
{
    struct sw w = {.p = buf, .cap = size};
    const char *p = value, *mark;

    if (!strchr(value, TYPE_MARK_OPEN))
        return value;
    while ((mark = strchr(p, TYPE_MARK_OPEN)) != NULL) {
        sw_putn(&w, p, (size_t)(mark - p));
        char hex[17];
        if (strlen(mark) < TYPE_MARK_LEN || mark[TYPE_MARK_LEN - 1] != TYPE_MARK_CLOSE)
            break; /* cut short by the value's limit */
        memcpy(hex, mark + 1, 16);
        hex[16] = '\0';
        put_type_name(c, &w, strtoull(hex, NULL, 16));
        p = mark + TYPE_MARK_LEN;
    }
    if (!mark)
        sw_puts(&w, p);
    sw_finish(&w);
    return arena_add(s, buf, w.len);
}

/* After the thread is let go: file, function and line of each frame, and
 * its locals' names (hidden slots left out, as f_locals does). */
static void finish_frames(struct ctx *c, struct py_stack *s)
{
    const struct py_offsets *o = c->o;
    struct code_info cache[CODE_CACHE];
    unsigned ncache = 0;
    size_t vsize = c->lim->max_value_bytes + TYPE_NAME_MAX * 4 + 1;
    char *vbuf = malloc(vsize);

    memset(cache, 0, sizeof(cache));
    for (unsigned i = 0; i < s->nframes; i++) {
        struct py_frame *f = &s->frames[i];
        struct code_info *ci = NULL;
        uint64_t code = f->code_addr;

        for (unsigned k = 0; k < ncache; k++)
            if (cache[k].addr == code)
                ci = &cache[k];
        if (!ci) {
            ci = &cache[ncache < CODE_CACHE ? ncache++ : (i % CODE_CACHE)];
            if (load_code(c, s, code, ci) < 0) {
                note(s, -EBADMSG, "frame at 0x%llx has no readable code object",
                     (unsigned long long)f->frame_addr);
                ci->addr = 0;
                s->nframes = i;
                break;
            }
        }
        f->filename = ci->filename;
        f->function = ci->function;
        /* The locals were read with the layout the cache gave (or the one
         * read then): if the code object says otherwise, they are not what
         * their slots suggest, and go. */
        if (f->nlocals && (f->names_seen != ci->names || f->nslots_seen != ci->nlocalsplus)) {
            f->nlocals = 0;
            f->locals_truncated = true;
        }
        /* Without co_localspluskinds there is no telling hidden slots from
         * the rest: no locals, as before the reader was split. */
        if (f->nlocals && !ci->kinds) {
            f->nlocals = 0;
            f->locals_truncated = true;
        }
        if (ci->nlocalsplus >= 0) {
            struct py_code_slot *e = code_slot(c->rt, code);
            *e = (struct py_code_slot){.code = code, .names = ci->names, .n = ci->nlocalsplus};
        }
        if (ci->linetable) {
            /* The code unit now running: prev_instr is the one before
             * the next (3.11, 3.12), instr_ptr the current one (3.13). */
            uint64_t base = code + o->code_adaptive;
            if (o->frame_tlbc_index != NONE32)
                base = tlbc_base(c, code, f->tlbc_index, base);
            int64_t unit = f->instr >= base ? (int64_t)((f->instr - base) / 2)
                                            : (f->instr + 2 == base ? -1 : INT64_MIN);
            if (unit == INT64_MIN || unit > ((int64_t)1 << 30))
                f->line = 0;
            else
                f->line = decode_line(c, ci->linetable, ci->linetable_size, ci->firstlineno,
                                      unit);
        }
        unsigned kept = 0;
        for (unsigned k = 0; k < f->nlocals; k++) {
            struct py_local *l = &f->locals[k];
            uint64_t name;
            uint8_t kind = 0;

            if (l->slot >= (uint64_t)(ci->nlocalsplus > 0 ? ci->nlocalsplus : 0) ||
                rd_ptr(c, ci->names + o->tuple_item + (uint64_t)l->slot * 8, &name) < 0) {
                f->locals_truncated = true;
                continue;
            }
            if (ci->kinds && rd(c, ci->kinds + o->head + 16 + l->slot, &kind, 1) == 0 &&
                o->fast_hidden && (kind & o->fast_hidden))
                continue;
            const char *nm = arena_str(s, c, name, NULL);
            const char *val = vbuf ? name_types(c, s, l->value, vbuf, vsize) : NULL;
            if (!nm || !val) {
                f->locals_truncated = true; /* text budget spent */
                break;
            }
            f->locals[kept].name = nm;
            f->locals[kept].value = val;
            f->locals[kept].slot = l->slot;
            kept++;
        }
        f->nlocals = kept;
    }
    free(vbuf);
}

int py_capture(const struct py_runtime *rt, struct remote_mem *m, pid_t tid,
               const struct py_limits *lim_in, struct py_stack *ret)
{
    struct ctx c;
    struct py_stack s;
    uint64_t frame = 0;
    size_t frames_size, locals_size;
    int r;

    if (!rt || !m || !ret || tid <= 0)
        return -EINVAL;
    memset(&s, 0, sizeof(s));
    if (lim_in)
        s.lim = *lim_in;
    else
        py_limits_default(&s.lim);
    py_limits_fix(&s.lim);
    if (!pc_buffer())
        return -ENOMEM;
    ctx_init(&c, rt, &s.lim, m, true, &s.generation);
    c.defer_types = true;

    r = find_thread(&c, tid, &frame);
    if (r < 0)
        return r;
    s.version_hex = rt->version_hex;
    frames_size = (size_t)s.lim.max_frames * sizeof(struct py_frame);
    locals_size = (size_t)s.lim.max_frames * s.lim.max_locals * sizeof(struct py_local);
    s.mem = malloc(frames_size + locals_size + s.lim.max_text_bytes);
    if (!s.mem)
        return -ENOMEM;
    s.frames = s.mem;
    s.text = (char *)s.mem + frames_size + locals_size;
    s.text_cap = s.lim.max_text_bytes;
    walk_frames(&c, &s, frame);
    if (s.lim.max_locals)
        capture_locals(&c, &s, (struct py_local *)((char *)s.mem + frames_size));
    s.bytes_read = s.held_bytes = c.pc->bytes;
    s.reads = s.held_reads = c.pc->reads;
    *ret = s;
    return 0;
}

void py_finish(struct py_runtime *rt, struct remote_mem *m, struct py_stack *s)
{
    struct ctx c;

    if (!rt || !m || !s || !s->mem || s->finished)
        return;
    if (!pc_buffer()) {
        note(s, -ENOMEM, "out of memory");
        s->nframes = 0;
        s->finished = true;
        return;
    }
    ctx_init(&c, rt, &s->lim, m, false, &s->generation);
    finish_frames(&c, s);
    s->bytes_read += c.pc->bytes;
    s->reads += c.pc->reads;
    s->finished = true;
}

int py_read_stack(struct py_runtime *rt, struct remote_mem *m, pid_t tid,
                  const struct py_limits *lim, struct py_stack *ret)
{
    int r = py_capture(rt, m, tid, lim, ret);

    if (r == 0)
        py_finish(rt, m, ret);
    return r;
}

/* ------------------------------------------------------------------------
 * Fuzzing
 * ------------------------------------------------------------------------ */

struct fuzz_mem {
    const uint8_t *data;
    size_t size;
    uint64_t base;
};

static int fuzz_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct fuzz_mem *f = ctx;

    if (addr < f->base || addr - f->base > f->size || len > f->size - (addr - f->base))
        return -EFAULT;
    memcpy(buf, f->data + (addr - f->base), len);
    return 0;
}

static int fuzz_readv(void *ctx, const struct remote_range *r, unsigned n)
{
    unsigned i = 0;

    while (i < n && fuzz_read(ctx, r[i].addr, r[i].buf, r[i].len) == 0)
        i++;
    return (int)i;
}

int pyframes_fuzz_one(const uint8_t *data, size_t size)
{
    static const uint32_t versions[] = {0x030b07f0, 0x030c01f0, 0x030d00f0};
    struct fuzz_mem fm;
    struct remote_mem m;
    struct py_runtime rt;
    struct py_limits lim;
    struct py_stack st;
    uint32_t tid;

    if (size < PYFRAMES_FUZZ_HDR)
        return 0;
    memcpy(&tid, data + 4, 4);
    fm.data = data + PYFRAMES_FUZZ_HDR;
    fm.size = size - PYFRAMES_FUZZ_HDR;
    fm.base = PYFRAMES_FUZZ_BASE;
    memset(&m, 0, sizeof(m));
    m.read = fuzz_read;
    /* Half the inputs go through the vectored prefetch too. */
    m.readv = data[0] & 0x80 ? fuzz_readv : NULL;
    m.ctx = &fm;
    if (py_runtime_init(&rt, versions[data[0] % 3], PYFRAMES_FUZZ_BASE) < 0)
        return 0;
    if (data[0] % 3 == 2)
        (void)py_runtime_load_debug_offsets(&rt, &m);
    uint64_t *t = &rt.types.code;
    for (unsigned i = 0; i < sizeof(rt.types) / sizeof(uint64_t); i++)
        t[i] = PYFRAMES_FUZZ_TYPE(i);
    py_limits_default(&lim);
    lim.max_frames = 1 + data[1] % 64;
    lim.max_locals = data[2] % 16;
    lim.max_value_bytes = 16 + data[3];
    if (tid == 0 || tid > INT32_MAX)
        tid = 1;
    if (py_read_stack(&rt, &m, (pid_t)tid, &lim, &st) == 0) {
        /* Touch everything the caller would print. */
        size_t sum = 0;
        for (unsigned i = 0; i < st.nframes; i++) {
            sum += strlen(st.frames[i].filename) + strlen(st.frames[i].function);
            for (unsigned k = 0; k < st.frames[i].nlocals; k++)
                sum += strlen(st.frames[i].locals[k].name) + strlen(st.frames[i].locals[k].value);
        }
        (void)sum;
        py_stack_free(&st);
    }
    return 0;
}
