/* SPDX-License-Identifier: MIT */
/*
 * Print the CPython struct offsets daemon/analysis/py_offsets.c relies on,
 * straight from an interpreter's own internal headers, so its tables
 * can be checked against the real thing (they are typed in by hand: the
 * daemon must not need Python headers to build).  Not built by make:
 *
 *   P=/root/.pyenv/versions/3.12.1
 *   cc -DPy_BUILD_CORE -I$P/include/python3.12 -I$P/include/python3.12/internal \
 *      tests/python/dump_offsets.c -o /tmp/dump && /tmp/dump
 */
#include <Python.h>
#include <stddef.h>
#include <stdio.h>

#include "pycore_code.h"
#include "pycore_dict.h"
#include "pycore_frame.h"
#include "pycore_interp.h"
#include "pycore_runtime.h"

#define P(name, expr) printf("%-40s %zu\n", name, (size_t)(expr))

int main(void)
{
    printf("PY_VERSION %s\n", PY_VERSION);
    P("runtime.interpreters.head", offsetof(_PyRuntimeState, interpreters.head));
    P("interp.next", offsetof(PyInterpreterState, next));
    P("interp.threads.head", offsetof(PyInterpreterState, threads.head));
    P("tstate.next", offsetof(PyThreadState, next));
    P("tstate.interp", offsetof(PyThreadState, interp));
    P("tstate.native_thread_id", offsetof(PyThreadState, native_thread_id));
    P("tstate.thread_id", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX < 0x030D0000
    P("tstate.cframe", offsetof(PyThreadState, cframe));
    P("cframe.current_frame", offsetof(_PyCFrame, current_frame));
    P("frame.f_code", offsetof(_PyInterpreterFrame, f_code));
    P("frame.prev_instr", offsetof(_PyInterpreterFrame, prev_instr));
#else
    P("tstate.current_frame", offsetof(PyThreadState, current_frame));
    P("frame.f_executable", offsetof(_PyInterpreterFrame, f_executable));
    P("frame.instr_ptr", offsetof(_PyInterpreterFrame, instr_ptr));
#endif
#if PY_VERSION_HEX < 0x030C0000
    P("frame.is_entry", offsetof(_PyInterpreterFrame, is_entry));
#endif
    P("frame.previous", offsetof(_PyInterpreterFrame, previous));
    P("frame.owner", offsetof(_PyInterpreterFrame, owner));
    P("frame.localsplus", offsetof(_PyInterpreterFrame, localsplus));
    P("code.co_argcount", offsetof(PyCodeObject, co_argcount));
    P("code.co_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    P("code.co_nlocalsplus", offsetof(PyCodeObject, co_nlocalsplus));
    P("code.co_localsplusnames", offsetof(PyCodeObject, co_localsplusnames));
    P("code.co_localspluskinds", offsetof(PyCodeObject, co_localspluskinds));
    P("code.co_filename", offsetof(PyCodeObject, co_filename));
    P("code.co_name", offsetof(PyCodeObject, co_name));
    P("code.co_qualname", offsetof(PyCodeObject, co_qualname));
    P("code.co_linetable", offsetof(PyCodeObject, co_linetable));
    P("code.co_code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
    P("object.ob_type", offsetof(PyObject, ob_type));
    P("varobject.ob_size", offsetof(PyVarObject, ob_size));
    P("type.tp_name", offsetof(PyTypeObject, tp_name));
    P("type.tp_flags", offsetof(PyTypeObject, tp_flags));
    P("bytes.ob_sval", offsetof(PyBytesObject, ob_sval));
    P("tuple.ob_item", offsetof(PyTupleObject, ob_item));
    P("list.ob_item", offsetof(PyListObject, ob_item));
    P("float.ob_fval", offsetof(PyFloatObject, ob_fval));
#if PY_VERSION_HEX < 0x030C0000
    P("long.ob_digit", offsetof(PyLongObject, ob_digit));
#else
    P("long.lv_tag", offsetof(PyLongObject, long_value.lv_tag));
    P("long.ob_digit", offsetof(PyLongObject, long_value.ob_digit));
#endif
    P("sizeof(digit)", sizeof(digit));
    P("PyLong_SHIFT", PyLong_SHIFT);
    P("unicode.length", offsetof(PyASCIIObject, length));
    P("unicode.state", offsetof(PyASCIIObject, state));
    P("sizeof(PyASCIIObject)", sizeof(PyASCIIObject));
    P("sizeof(PyCompactUnicodeObject)", sizeof(PyCompactUnicodeObject));
    P("unicode.data", offsetof(PyUnicodeObject, data));
    {
        /* Where the bit-fields of 'state' sit: set each and look. */
        PyASCIIObject a;
        memset(&a, 0, sizeof(a));
        a.state.kind = 7;
        printf("%-40s 0x%x\n", "state.kind mask", *(unsigned *)&a.state);
        memset(&a, 0, sizeof(a));
        a.state.compact = 1;
        printf("%-40s 0x%x\n", "state.compact mask", *(unsigned *)&a.state);
        memset(&a, 0, sizeof(a));
        a.state.ascii = 1;
        printf("%-40s 0x%x\n", "state.ascii mask", *(unsigned *)&a.state);
    }
    P("dict.ma_used", offsetof(PyDictObject, ma_used));
    P("dict.ma_keys", offsetof(PyDictObject, ma_keys));
    P("dict.ma_values", offsetof(PyDictObject, ma_values));
    P("dictkeys.dk_log2_size", offsetof(PyDictKeysObject, dk_log2_size));
    P("dictkeys.dk_log2_index_bytes", offsetof(PyDictKeysObject, dk_log2_index_bytes));
    P("dictkeys.dk_kind", offsetof(PyDictKeysObject, dk_kind));
    P("dictkeys.dk_nentries", offsetof(PyDictKeysObject, dk_nentries));
    P("dictkeys.dk_indices", offsetof(PyDictKeysObject, dk_indices));
    P("sizeof(PyDictKeyEntry)", sizeof(PyDictKeyEntry));
    P("sizeof(PyDictUnicodeEntry)", sizeof(PyDictUnicodeEntry));
#if PY_VERSION_HEX >= 0x030D0000
    P("dictvalues.values", offsetof(PyDictValues, values));
#endif
    P("set.fill", offsetof(PySetObject, fill));
    P("set.used", offsetof(PySetObject, used));
    P("set.mask", offsetof(PySetObject, mask));
    P("set.table", offsetof(PySetObject, table));
    P("sizeof(setentry)", sizeof(setentry));
    P("FRAME_OWNED_BY_GENERATOR", FRAME_OWNED_BY_GENERATOR);
#if PY_VERSION_HEX >= 0x030C0000
    P("FRAME_OWNED_BY_CSTACK", FRAME_OWNED_BY_CSTACK);
#endif
    P("CO_FAST_LOCAL", CO_FAST_LOCAL);
    P("CO_FAST_CELL", CO_FAST_CELL);
    P("CO_FAST_FREE", CO_FAST_FREE);
    P("cell.ob_ref", offsetof(PyCellObject, ob_ref));
    return 0;
}
