/* SPDX-License-Identifier: MIT */
/*
 * Naming frames with elfutils' libdwfl, after the thread runs again: module,
 * function and offset from the symbol tables, file and line from DWARF
 * (separate debug info under /usr/lib/debug is found the standard way).
 *
 * One Dwfl per worker is kept across snapshots; each snapshot re-reads the
 * process's maps, and modules that did not change keep their parsed data.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "dogslowd.h"
#include "util.h"

static char *debuginfo_path = NULL;

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

void symbolize_release_worker(struct worker *w)
{
    if (w->dwfl) {
        dwfl_end(w->dwfl);
        w->dwfl = NULL;
    }
}

static int report_modules(struct worker *w)
{
    Dwfl *dwfl = w->dwfl;

    if (!dwfl) {
        dwfl = dwfl_begin(&proc_callbacks);
        if (!dwfl)
            return -ENOMEM;
        w->dwfl = dwfl;
    }
    dwfl_report_begin(dwfl);
    if (dwfl_linux_proc_report(dwfl, w->pid) != 0) {
        dwfl_report_end(dwfl, NULL, NULL);
        return -ESRCH;
    }
    if (dwfl_report_end(dwfl, NULL, NULL) != 0)
        return -EIO;
    return 0;
}

/* Returns the number of frames named into out (always s->nframes, bounded
 * by max, with "??" for what cannot be named), or a negative errno. */
int symbolize(struct worker *w, const struct snapshot *s, struct symframe *out, unsigned max)
{
    unsigned n = s->nframes < max ? s->nframes : max;
    bool have_modules = report_modules(w) == 0;

    for (unsigned i = 0; i < n; i++) {
        struct symframe *f = &out[i];
        /* A return address points after the call; look up the call itself,
         * except in the innermost frame and right above a signal frame. */
        bool exact = i == 0 || s->frames[i - 1].signal_frame;
        Dwarf_Addr addr = s->frames[i].ip - (exact ? 0 : 1);
        Dwfl_Module *mod = have_modules ? dwfl_addrmodule(w->dwfl, addr) : NULL;

        memset(f, 0, sizeof(*f));
        f->ip = s->frames[i].ip;
        if (!mod) {
            dsl_strlcpy(f->module, "??", sizeof(f->module));
            continue;
        }
        const char *mainfile = NULL;
        const char *modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile,
                                               NULL);
        dsl_strlcpy(f->module, mainfile ? mainfile : modname ? modname : "??",
                    sizeof(f->module));

        GElf_Off off = 0;
        GElf_Sym sym;
        const char *name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
        if (name) {
            dsl_strlcpy(f->function, name, sizeof(f->function));
            /* "memcpy@@GLIBC_2.14" -> "memcpy": the version is noise here. */
            char *at = strchr(f->function, '@');
            if (at && at != f->function)
                *at = '\0';
            f->offset = off + (exact ? 0 : 1);
        }

        Dwfl_Line *line = dwfl_module_getsrc(mod, addr);
        if (line) {
            int lineno = 0;
            const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
            if (file && lineno > 0) {
                const char *dir = file[0] != '/' ? dwfl_line_comp_dir(line) : NULL;
                /* Relative names are relative to the compilation directory. */
                if (dir && dir[0] == '/')
                    snprintf(f->file, sizeof(f->file), "%s/%s", dir, file);
                else
                    dsl_strlcpy(f->file, file, sizeof(f->file));
                f->line = lineno;
            }
        }
    }
    return (int)n;
}
