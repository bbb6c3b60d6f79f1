/* SPDX-License-Identifier: MIT */
/*
 * The CPython reader's layout knowledge, in one place: the struct offsets
 * of 3.11, 3.12, 3.13 and 3.14 typed in from their internal headers
 * (tests/python/dump_offsets.c prints them from the headers), and for
 * 3.13+ the runtime's own _Py_DebugOffsets table, which replaces those
 * values where it has them, so a point release that moved a field is
 * still read right.  Everything else reads objects through these offsets.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "py.h"

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
