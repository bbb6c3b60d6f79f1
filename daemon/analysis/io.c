/* SPDX-License-Identifier: MIT */
/*
 * Where analysis gets a worker's maps and files: read and opened directly
 * (the daemon naming in-process), or asked of the daemon (the analysis
 * process, analysis/child.c).  Both the DWARF side (symbolize.c) and the
 * CPython reader (py_runtime.c) ask through it.
 */
#include "config.h"

#include "analysis.h"

static const struct analysis_io *io;

void analysis_set_io(const struct analysis_io *set)
{
    io = set;
}

const struct analysis_io *analysis_get_io(void)
{
    return io;
}
