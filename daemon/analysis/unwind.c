/* SPDX-License-Identifier: MIT */
/*
 * Unwinding a copied stack with elfutils' libdwfl, after the thread runs
 * again.
 *
 * The worker's Dwfl session (shared with symbolize.c) is attached once to a
 * "process" whose callbacks serve the snapshot being unwound: the initial
 * registers are the ones read while the thread was held, and stack memory
 * comes from the copy.  Memory outside the copy (rare: a pointer into the
 * heap saved by a signal frame) is read from the live process, if it still
 * runs (snapshot_read).  CFI comes
 * from the modules' .eh_frame/.debug_frame; where a function has none, the
 * x86_64 backend falls back to frame pointers.  The vDSO is reported like any
 * module, so a thread stopped inside clock_gettime unwinds completely.
 *
 * Everything here is bounded: at most max_frames frames, and a frame whose
 * stack pointer does not grow ends the walk (a loop in hostile memory).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "analysis.h"
#include "core.h"
#include "util.h"

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    struct worker *w = arg;

    if (*thread_argp || !w->unwinding)
        return 0;
    *thread_argp = w;
    return w->unwinding->tid;
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    struct worker *w = arg;

    if (!w->unwinding || w->unwinding->tid != tid)
        return false;
    *thread_argp = w;
    return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    struct worker *w = arg;

    return w->unwinding && snapshot_read(w->unwinding, addr, result, sizeof(*result)) == 0;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    struct worker *w = arg;
    const struct snapshot *s = w->unwinding;

    if (!s || !s->have_regs)
        return false;
    /* rax..r15 are DWARF 0..15; rip is the return-address column 16. */
    if (s->regs_known == (1u << DSL_NREGS) - 1)
        return dwfl_thread_state_registers(thread, 0, DSL_NREGS, s->regs);
    /* A peeked thread: only what /proc told us. */
    for (unsigned r = 0; r < DSL_NREGS; r++)
        if ((s->regs_known & (1u << r)) && !dwfl_thread_state_registers(thread, (int)r, 1,
                                                                         &s->regs[r]))
            return false;
    return true;
}

static const Dwfl_Thread_Callbacks callbacks = {
    .next_thread = cb_next_thread,
    .get_thread = cb_get_thread,
    .memory_read = cb_memory_read,
    .set_initial_registers = cb_set_initial_registers,
};

struct walk {
    struct snapshot *s;
    unsigned max;
};

static int on_frame(Dwfl_Frame *state, void *arg)
{
    struct walk *wk = arg;
    struct snapshot *s = wk->s;
    struct frame *f;
    Dwarf_Addr pc;
    bool activation;

    if (s->nframes >= wk->max) {
        snprintf(s->note, sizeof(s->note), "stack truncated at %u frames", wk->max);
        return DWARF_CB_ABORT;
    }
    if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0)
        return DWARF_CB_ABORT;
    f = &s->frames[s->nframes];
    memset(f, 0, sizeof(*f));
    f->ip = pc;
    f->activation = activation;
    for (unsigned r = 0; r < DSL_NREGS; r++) {
        Dwarf_Word v;
        if (dwfl_frame_reg(state, r, &v) == 0) {
            f->regs[r] = v;
            f->regs_known |= 1u << r;
        }
    }
    /* The stack grows down: a caller's stack pointer is above its callee's.
     * Anything else is a corrupt or hostile stack; stop there. */
    if (s->nframes > 0 && (f->regs_known & (1u << DSL_REG_RSP)) &&
        (s->frames[s->nframes - 1].regs_known & (1u << DSL_REG_RSP)) &&
        f->regs[DSL_REG_RSP] < s->frames[s->nframes - 1].regs[DSL_REG_RSP])
        return DWARF_CB_ABORT;
    s->nframes++;
    return DWARF_CB_OK;
}

int unwind_snapshot(const struct config *cfg, struct worker *w, struct snapshot *s)
{
    struct walk wk = {
        .s = s,
        .max = cfg->max_frames < DSL_FRAMES_MAX ? cfg->max_frames : DSL_FRAMES_MAX,
    };
    int r;

    r = symbolize_prepare(w, s);
    if (r < 0)
        return r;
    if (!w->dwfl_attached) {
        if (!dwfl_attach_state(w->dwfl, NULL, w->pid, &callbacks, w))
            return -EIO;
        w->dwfl_attached = true;
    }
    w->unwinding = s;
    s->nframes = 0;
    r = dwfl_getthread_frames(w->dwfl, s->tid, on_frame, &wk);
    w->unwinding = NULL;
    /* A frame outside every known module: a library loaded since the
     * module list was read.  Read it again and unwind once more. */
    if (!s->gone && !symbolize_covers(w, s) && symbolize_refresh(w) == 0) {
        w->unwinding = s;
        s->nframes = 0;
        s->note[0] = '\0';
        r = dwfl_getthread_frames(w->dwfl, s->tid, on_frame, &wk);
        w->unwinding = NULL;
    }
    /* libdwfl reports the end of a stack as an error on some systems; what
     * counts is whether we got frames. */
    if (s->nframes == 0)
        return -EIO;
    if (r == -1 && s->nframes < 3 && !s->note[0])
        snprintf(s->note, sizeof(s->note), "stack may be incomplete: %s",
                 dwfl_errmsg(-1));
    return 0;
}
