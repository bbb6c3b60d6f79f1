/* SPDX-License-Identifier: MIT */
/*
 * Naming frames with elfutils' libdwfl, after the thread runs again: module,
 * function (demangled) and offset from the symbol tables, file and line from
 * DWARF, and inlined calls as frames of their own (separate debug info under
 * /usr/lib/debug is found the standard way).
 *
 * One Dwfl per worker is kept across snapshots; each snapshot re-reads the
 * process's maps, and modules that did not change keep their parsed data, so
 * only the first snapshot of a process pays for loading debug info.
 *
 * For an address inside inlined code, find_scopes() gives the nest of
 * scopes, innermost first.  Each DW_TAG_inlined_subroutine is a frame: its
 * name is the inlined function's, its position is the line-table row for
 * the innermost one and, for each outer one, the DW_AT_call_file/call_line
 * of the inlined call it contains.  The DW_TAG_subprogram closes the group.
 */
#include "config.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "analysis.h"
#include "core.h"
#include "util.h"

static char *debuginfo_path = NULL;

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp);
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name);

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Set in the analysis process (child.c): files and maps come from the
 * daemon.  NULL: read them here. */

/* Each looked up once, on whichever thread needs it first. */
static pthread_once_t demangler_once = PTHREAD_ONCE_INIT;
static pthread_once_t vdso_once = PTHREAD_ONCE_INIT;


void symbolize_release_worker(struct worker *w)
{
    if (w->dwfl) {
        w->unwinding = NULL;
        dwfl_end(w->dwfl);
        w->dwfl = NULL;
        w->dwfl_attached = false;
    }
}

/*
 * The vDSO without the worker's help.  libdwfl names a process's vDSO from
 * its image in the process, found through /proc/PID/auxv -- which is 0400:
 * another user's is unreadable without CAP_DAC_READ_SEARCH -- and from
 * live memory, which is gone with a process that exited before its frames
 * were named.  But every 64-bit process on this kernel maps the same image:
 * the daemon's own.  It is copied once into a memfd, and a process's
 * "[vdso]" mapping (from its maps) is reported as a module whose ELF is that
 * copy (find_elf), when the mapping has the size of the daemon's own.
 */
#define VDSO_MODULE "[vdso]"

static int vdso_fd = -1;
static size_t vdso_map_len; /* the image's size, rounded up to pages */

static void vdso_copy(void)
{
    const unsigned char *base = (const unsigned char *)(uintptr_t)getauxval(AT_SYSINFO_EHDR);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    size_t size, page = (size_t)sysconf(_SC_PAGESIZE);
    int fd;

    if (!base || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > 64)
        return;
    /* The image: the headers, every loaded segment and the section table. */
    size = (size_t)eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff) + i;
        if (ph->p_type == PT_LOAD && ph->p_offset + ph->p_filesz > size)
            size = (size_t)(ph->p_offset + ph->p_filesz);
    }
    if (size < sizeof(*eh) || size > (1u << 20))
        return;
    fd = memfd_create("dogslowd-vdso", MFD_CLOEXEC);
    if (fd < 0)
        return;
    if (dsl_write_all(fd, base, size) < 0) {
        close(fd);
        return;
    }
    vdso_map_len = (size + page - 1) / page * page;
    vdso_fd = fd;
}

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
    const struct analysis_io *io = analysis_get_io();
    if (name && !strcmp(name, VDSO_MODULE) && vdso_fd >= 0)
        return fcntl(vdso_fd, F_DUPFD_CLOEXEC, 0); /* libdwfl closes it */
    if (io) {
        /* Confined: the daemon opens the file, if the process maps it. */
        int fd;

        if (!name || name[0] != '/')
            return -1;
        fd = io->open_file(SEP_OPEN_MODULE, name);
        if (fd < 0)
            return -1;
        *file_name = strdup(name);
        *elfp = NULL;
        return fd;
    }
    return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

/* Confined, separate debug information comes by build ID, the way Debian's
 * -dbgsym packages install it: /usr/lib/debug/.build-id/xx/rest.debug. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    const struct analysis_io *io = analysis_get_io();
    const unsigned char *bits;
    GElf_Addr vaddr;
    char path[PATH_MAX];
    size_t n;
    int len, fd;

    if (!io)
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
                                            debuglink_file, debuglink_crc, debuginfo_file_name);
    len = dwfl_module_build_id(mod, &bits, &vaddr);
    if (len < 2 || len > 64)
        return -1;
    n = (size_t)snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", bits[0]);
    for (int i = 1; i < len && n + 3 < sizeof(path); i++)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "%02x", bits[i]);
    if (n + sizeof(".debug") > sizeof(path))
        return -1;
    memcpy(path + n, ".debug", sizeof(".debug"));
    fd = io->open_file(SEP_OPEN_DEBUGINFO, path);
    if (fd < 0)
        return -1;
    *debuginfo_file_name = strdup(path);
    return fd;
}

/* Report the "[vdso]" line of a maps text, if the image is the daemon's. */
static void report_vdso(Dwfl *dwfl, const char *maps)
{
    const char *line = maps;
    unsigned long long start, end;

    pthread_once(&vdso_once, vdso_copy);
    if (vdso_fd < 0)
        return;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        unsigned long long off, ino;
        unsigned maj, min;
        char one[128], perms[8];
        int name = -1;

        /* "start-end perms offset maj:min inode   [vdso]": the name field
         * exactly (a file's path, which the worker chooses, starts with /).
         * One line at a time: sscanf would measure the whole text. */
        if (len < sizeof(one) && len > 6 && !memcmp(line + len - 6, VDSO_MODULE, 6)) {
            memcpy(one, line, len);
            one[len] = '\0';
        } else {
            one[0] = '\0';
        }
        if (one[0] &&
            sscanf(one, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min,
                   &ino, &name) == 7 &&
            name > 0 && (size_t)name + 6 == len && !memcmp(one + name, VDSO_MODULE, 6) &&
            ino == 0 && end > start && end - start == vdso_map_len) {
            dwfl_report_module(dwfl, VDSO_MODULE, start, end);
            return;
        }
        line = eol ? eol + 1 : NULL;
    }
}

/* Report the modules of a maps text (and the vDSO, see above). */
static int report_maps_text(struct worker *w, const char *maps, size_t len)
{
    FILE *f;
    int r;

    if (!w->dwfl) {
        w->dwfl = dwfl_begin(&proc_callbacks);
        if (!w->dwfl)
            return -ENOMEM;
    }
    f = fmemopen((void *)(uintptr_t)maps, len, "r");
    if (!f)
        return -errno;
    dwfl_report_begin(w->dwfl);
    r = dwfl_linux_proc_maps_report(w->dwfl, f);
    fclose(f);
    if (r == 0)
        report_vdso(w->dwfl, maps);
    if (dwfl_report_end(w->dwfl, NULL, NULL) != 0 || r != 0)
        return -EIO;
    w->modules_ns = dsl_now_ns(CLOCK_MONOTONIC);
    return 0;
}

/*
 * Reading /proc/PID/maps is the most expensive part of a snapshot for a
 * process with many threads (each stack is a mapping or two: 2000 threads,
 * 10 ms).  The module list is refreshed at most every MODULES_TTL_NS, and at
 * once when an address turns out to lie outside every known module (a
 * library loaded since).
 *
 * A process that exited before its frames were named (s->gone): /proc/PID
 * is gone, or belongs to another process by now.  The modules come from the
 * maps text copied at the snapshot (its first reports carry one), else from
 * the list read while it ran; the ELF files are opened by path as usual.
 */
#define MODULES_TTL_NS (5 * NSEC_PER_SEC)

int symbolize_prepare(struct worker *w, const struct snapshot *s)
{
    uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
    int r;

    if (s && s->gone) {
        if (s->maps)
            return report_maps_text(w, s->maps, s->maps_len);
        return w->dwfl && w->modules_ns ? 0 : -ESRCH;
    }
    if (w->dwfl && w->modules_ns && now - w->modules_ns < MODULES_TTL_NS)
        return 0;
    r = symbolize_refresh(w);
    if (r < 0 && s && s->maps) /* it exited just now */
        r = report_maps_text(w, s->maps, s->maps_len);
    return r;
}

/* Whether every frame's address lies in a known module. */
bool symbolize_covers(struct worker *w, const struct snapshot *s)
{
    for (unsigned i = 0; i < s->nframes; i++) {
        Dwarf_Addr a = s->frames[i].ip - (s->frames[i].activation ? 0 : 1);
        if (!dwfl_addrmodule(w->dwfl, a))
            return false;
    }
    return true;
}

int symbolize_refresh(struct worker *w)
{
    const struct analysis_io *io = analysis_get_io();
    Dwfl *dwfl = w->dwfl;

    if (!dwfl) {
        dwfl = dwfl_begin(&proc_callbacks);
        if (!dwfl)
            return -ENOMEM;
        w->dwfl = dwfl;
    }
    if (io) {
        /* Confined: the daemon reads the maps (no auxv: the vDSO is
         * reported from this process's own image, as below). */
        size_t len;
        char *maps = io->read_maps(w->pid, &len);
        int r = maps ? report_maps_text(w, maps, len) : -ESRCH;

        free(maps);
        return r < 0 ? -ESRCH : 0;
    }
    dwfl_report_begin(dwfl);
    if (dwfl_linux_proc_report(dwfl, w->pid) != 0) {
        /* It reads /proc/PID/auxv first (for the vDSO), which is 0400:
         * another user's, without CAP_DAC_READ_SEARCH, is unreadable.
         * Report the mappings alone then, and the vDSO from the daemon's
         * own image. */
        size_t len;
        char *maps = snapshot_read_maps(w->pid, &len);
        int r = maps ? report_maps_text(w, maps, len) : -ESRCH;

        free(maps);
        return r < 0 ? -ESRCH : 0;
    }
    if (dwfl_report_end(dwfl, NULL, NULL) != 0)
        return -EIO;
    w->modules_ns = dsl_now_ns(CLOCK_MONOTONIC);
    return 0;
}

/*
 * C++ names are demangled with the C++ runtime's __cxa_demangle when it is
 * present in the process (looked up once; the daemon itself is C and does
 * not link libstdc++).  Without it the mangled name is shown.
 */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

static demangle_fn demangler;

static void find_demangler(void)
{
    void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);

    if (h)
        demangler = (demangle_fn)(uintptr_t)dlsym(h, "__cxa_demangle");
}

void symbolize_init(void)
{
    pthread_once(&demangler_once, find_demangler);
    pthread_once(&vdso_once, vdso_copy);
}

static void demangle_into(const char *name, char *out, size_t size)
{
    /* Names are found on the analysis thread and, for follow samples, on
     * the loop: look the demangler up once. */
    demangle_fn fn;
    char *d;
    int status = -1;

    pthread_once(&demangler_once, find_demangler);
    fn = demangler;
    if (fn && name[0] == '_' && name[1] == 'Z' && strlen(name) < 4096) {
        d = fn(name, NULL, NULL, &status);
        if (d && status == 0) {
            dsl_strlcpy(out, d, size);
            free(d);
            return;
        }
        free(d);
    }
    dsl_strlcpy(out, name, size);
}

static void strip_version(char *s)
{
    /* "memcpy@@GLIBC_2.14" -> "memcpy": the symbol version is noise here. */
    char *at = strchr(s, '@');
    if (at && at != s)
        *at = '\0';
}

static void join_path(char *out, size_t size, const char *dir, const char *file)
{
    if (file[0] != '/' && dir && dir[0] == '/')
        snprintf(out, size, "%s/%s", dir, file);
    else
        dsl_strlcpy(out, file, size);
}

/* Name of a function scope, preferring the demangled linkage name. */
static void scope_name(Dwarf_Die *die, char *out, size_t size)
{
    Dwarf_Attribute attr;
    const char *name = NULL;

    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        name = dwarf_formstring(&attr);
    if (name) {
        demangle_into(name, out, size);
        return;
    }
    name = dwarf_diename(die);
    dsl_strlcpy(out, name ? name : "??", size);
}

/* DW_AT_call_file/DW_AT_call_line of an inlined call. */
static bool call_site(Dwarf_Die *cu, Dwarf_Die *inl, char *file, size_t size, int *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word fidx, l;
    Dwarf_Files *files;
    size_t nfiles;
    const char *name;

    if (!dwarf_attr(inl, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &fidx) != 0)
        return false;
    if (!dwarf_attr(inl, DW_AT_call_line, &attr) || dwarf_formudata(&attr, &l) != 0)
        return false;
    if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0 || fidx >= nfiles)
        return false;
    name = dwarf_filesrc(files, fidx, NULL, NULL);
    if (!name)
        return false;
    const char *const *dirs;
    size_t ndirs;
    const char *comp = NULL;
    if (dwarf_getsrcdirs(files, &dirs, &ndirs) == 0 && ndirs > 0)
        comp = dirs[0];
    join_path(file, size, comp, name);
    *line = l > INT32_MAX ? 0 : (int)l;
    return true;
}

/*
 * The nest of concrete scopes containing pc, innermost first: lexical
 * blocks, inlined subroutines and the subprogram, found by walking the CU's
 * tree.  (dwarf_getscopes() switches to the abstract definition's parents
 * after an inlined instance, losing the function it was inlined into.)
 */
#define SCOPES_MAX 64

static bool is_scope_tag(int tag)
{
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
           tag == DW_TAG_lexical_block || tag == DW_TAG_entry_point ||
           tag == DW_TAG_try_block || tag == DW_TAG_catch_block;
}

static bool is_container_tag(int tag)
{
    /* Functions can also sit inside namespaces and classes (C++). */
    return tag == DW_TAG_namespace || tag == DW_TAG_class_type ||
           tag == DW_TAG_structure_type || tag == DW_TAG_module;
}

static int find_scopes(Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die **ret)
{
    Dwarf_Die path[SCOPES_MAX];
    Dwarf_Die parent = *cu;
    int depth = 0;
    unsigned visited = 0;

    for (;;) {
        Dwarf_Die child;
        bool found = false;

        if (dwarf_child(&parent, &child) != 0)
            break;
        do {
            int tag = dwarf_tag(&child);
            if (++visited > 1000000)
                break; /* a CU of hostile size */
            if (is_scope_tag(tag) && dwarf_haspc(&child, pc) == 1) {
                if (depth == SCOPES_MAX)
                    break;
                path[depth++] = child;
                parent = child;
                found = true;
                break;
            }
            if (is_container_tag(tag) && depth == 0 && dwarf_haschildren(&child)) {
                /* Look inside namespaces for the function. */
                Dwarf_Die inner;
                if (dwarf_child(&child, &inner) == 0) {
                    do {
                        if (++visited > 1000000)
                            break;
                        int t = dwarf_tag(&inner);
                        if (is_scope_tag(t) && dwarf_haspc(&inner, pc) == 1) {
                            path[depth++] = inner;
                            parent = inner;
                            found = true;
                            break;
                        }
                    } while (dwarf_siblingof(&inner, &inner) == 0);
                }
                if (found)
                    break;
            }
        } while (dwarf_siblingof(&child, &child) == 0);
        if (!found)
            break;
    }
    if (depth == 0)
        return 0;
    Dwarf_Die *out = malloc((size_t)depth * sizeof(*out));
    if (!out)
        return -1;
    for (int i = 0; i < depth; i++)
        out[i] = path[depth - 1 - i];
    *ret = out;
    return depth;
}

/*
 * Names of frames without locals (the default) are cached per thread, by
 * the module's build ID and the address relative to the module: in a storm
 * every report names the same few hundred addresses, and each lookup costs
 * a linear scan of the symbol table (dwfl_module_addrinfo) and DWARF line
 * and scope searches.  The build ID names the exact binary, in any process
 * and at any load address; a module without one is not cached.  The cache
 * is direct-mapped and bounded (NAMES_SLOTS entries, each a frame and its
 * inlined callers).
 */
#define NAMES_SLOTS 4096
#define NAMES_GROUP 16 /* inlined frames kept per entry */

struct named {
    char *function, *file;
    int line;
    uint64_t offset;
    bool inlined;
    const char *vars_note;
};

struct names_entry {
    uint64_t id_hash, rel; /* id_hash 0: empty */
    bool activation;
    unsigned n;
    struct named f[NAMES_GROUP];
};

struct names_cache {
    struct names_entry e[NAMES_SLOTS];
};

static pthread_key_t names_key;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_entry_clear(struct names_entry *e)
{
    for (unsigned i = 0; i < e->n; i++) {
        free(e->f[i].function);
        free(e->f[i].file);
    }
    memset(e, 0, sizeof(*e));
}

static void names_cache_free(void *p)
{
    struct names_cache *c = p;

    if (!c)
        return;
    for (unsigned i = 0; i < NAMES_SLOTS; i++)
        names_entry_clear(&c->e[i]);
    free(c);
}

static void names_key_make(void)
{
    (void)pthread_key_create(&names_key, names_cache_free);
}

static struct names_cache *names_cache(void)
{
    struct names_cache *c;

    pthread_once(&names_once, names_key_make);
    c = pthread_getspecific(names_key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (c && pthread_setspecific(names_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

void symbolize_cache_release(void)
{
    pthread_once(&names_once, names_key_make);
    names_cache_free(pthread_getspecific(names_key));
    (void)pthread_setspecific(names_key, NULL);
}

/* FNV-1a of the build ID; never 0. */
static uint64_t id_hash_of(Dwfl_Module *mod)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    uint64_t h = 1469598103934665603ull;

    if (len <= 0)
        return 0;
    for (int i = 0; i < len; i++)
        h = (h ^ bits[i]) * 1099511628211ull;
    return h ? h : 1;
}

static struct names_entry *names_slot(struct names_cache *c, uint64_t id, uint64_t rel,
                                      bool activation)
{
    uint64_t h = (id ^ (rel * 0x9e3779b97f4a7c15ull) ^ activation) >> 20;
    return &c->e[h % NAMES_SLOTS];
}

/* Fill out[0..n) from a cached entry; the module and ip are this frame's. */
static unsigned names_get(const struct names_entry *e, uint64_t ip, const char *module,
                          struct symframe *out, unsigned room)
{
    unsigned n = e->n < room ? e->n : room;

    for (unsigned i = 0; i < n; i++) {
        struct symframe *f = &out[i];

        memset(f, 0, sizeof(*f));
        f->ip = ip;
        dsl_strlcpy(f->module, module, sizeof(f->module));
        dsl_strlcpy(f->function, e->f[i].function, sizeof(f->function));
        dsl_strlcpy(f->file, e->f[i].file, sizeof(f->file));
        f->line = e->f[i].line;
        f->offset = e->f[i].offset;
        f->inlined = e->f[i].inlined;
        f->vars_note = e->f[i].vars_note;
    }
    return n;
}

static void names_put(struct names_entry *e, uint64_t id, uint64_t rel, bool activation,
                      const struct symframe *out, unsigned n)
{
    names_entry_clear(e);
    if (n > NAMES_GROUP)
        return;
    for (unsigned i = 0; i < n; i++) {
        e->f[i].function = strdup(out[i].function);
        e->f[i].file = strdup(out[i].file);
        if (!e->f[i].function || !e->f[i].file) {
            e->n = i + 1;
            names_entry_clear(e);
            return;
        }
        e->f[i].line = out[i].line;
        e->f[i].offset = out[i].offset;
        e->f[i].inlined = out[i].inlined;
        e->f[i].vars_note = out[i].vars_note;
        e->n = i + 1;
    }
    e->id_hash = id;
    e->rel = rel;
    e->activation = activation;
}

struct physical {
    const struct frame *fr;
    const struct frame *caller; /* for the CFA; NULL for the outermost */
};

/* Name one physical frame into out[0..]; returns how many frames (inlined
 * ones first) were written. */
static unsigned name_frame_uncached(struct worker *w, const struct snapshot *s,
                                    const struct physical *ph, bool with_locals,
                                    struct symframe *out, unsigned room, struct locals_ctx *lc)
{
    Dwarf_Addr addr = ph->fr->ip - (ph->fr->activation ? 0 : 1);
    Dwfl_Module *mod = dwfl_addrmodule(w->dwfl, addr);
    struct symframe *f = &out[0];
    Dwarf_Die *scopes = NULL;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu;
    int nscopes = 0;
    unsigned n = 0;

    memset(f, 0, sizeof(*f));
    f->ip = ph->fr->ip;
    if (!mod) {
        dsl_strlcpy(f->module, "??", sizeof(f->module));
        f->vars_note = "no module at this address";
        return 1;
    }
    const char *mainfile = NULL;
    const char *modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, NULL);
    dsl_strlcpy(f->module, mainfile ? mainfile : modname ? modname : "??", sizeof(f->module));

    /* The ELF symbol: always there unless fully stripped. */
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
    if (name) {
        demangle_into(name, f->function, sizeof(f->function));
        strip_version(f->function);
        f->offset = off + (ph->fr->activation ? 0 : 1);
    }

    /* The innermost position, from the line table. */
    char file[sizeof(f->file)] = "";
    int line = 0;
    Dwfl_Line *ln = dwfl_module_getsrc(mod, addr);
    if (ln) {
        int lineno = 0;
        const char *src = dwfl_lineinfo(ln, NULL, &lineno, NULL, NULL, NULL);
        if (src && lineno > 0) {
            join_path(file, sizeof(file), dwfl_line_comp_dir(ln), src);
            line = lineno;
        }
    }

    cu = dwfl_module_addrdie(mod, addr, &bias);
    if (cu)
        nscopes = find_scopes(cu, addr - bias, &scopes);
    if (nscopes <= 0) {
        /* No DWARF for this address: the symbol is all we have. */
        dsl_strlcpy(f->file, file, sizeof(f->file));
        f->line = line;
        f->vars_note = "no debug info";
        free(scopes);
        return 1;
    }

    /* Find the physical function (the subprogram) to get its frame base. */
    int sub = -1;
    for (int i = 0; i < nscopes; i++) {
        if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram) {
            sub = i;
            break;
        }
    }
    int from = 0;
    for (int i = 0; i < nscopes && n < room; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        f = &out[n];
        if (n > 0) {
            memset(f, 0, sizeof(*f));
            f->ip = ph->fr->ip;
            dsl_strlcpy(f->module, out[0].module, sizeof(f->module));
        }
        scope_name(&scopes[i], f->function, sizeof(f->function));
        f->offset = 0;
        if (tag == DW_TAG_subprogram && name) {
            /* Keep the symbol offset on the physical frame. */
            f->offset = off + (ph->fr->activation ? 0 : 1);
        }
        dsl_strlcpy(f->file, file, sizeof(f->file));
        f->line = line;
        f->inlined = tag == DW_TAG_inlined_subroutine;
        if (with_locals)
            locals_collect(lc, cu, scopes, from, i, sub >= 0 ? &scopes[sub] : NULL,
                           addr - bias, bias, ph->fr, ph->caller, f);
        n++;
        from = i + 1;
        if (tag == DW_TAG_subprogram)
            break;
        /* The caller's position is where this inlined call was made. */
        if (!call_site(cu, &scopes[i], file, sizeof(file), &line)) {
            file[0] = '\0';
            line = 0;
        }
    }
    free(scopes);
    if (n == 0) {
        dsl_strlcpy(out[0].file, file, sizeof(out[0].file));
        out[0].line = line;
        return 1;
    }
    /* The outermost frame of the group is the physical one: the symbol name
     * is the more reliable one when DWARF lacks a name. */
    if (out[n - 1].function[0] == '?' && name) {
        demangle_into(name, out[n - 1].function, sizeof(out[n - 1].function));
        strip_version(out[n - 1].function);
    }
    return n;
}

/* name_frame_uncached() through the cache when no locals are asked for. */
static unsigned name_frame(struct worker *w, const struct snapshot *s, const struct physical *ph,
                           bool with_locals, struct symframe *out, unsigned room,
                           struct locals_ctx *lc)
{
    Dwarf_Addr addr = ph->fr->ip - (ph->fr->activation ? 0 : 1);
    Dwfl_Module *mod = with_locals ? NULL : dwfl_addrmodule(w->dwfl, addr);
    struct names_cache *c = mod ? names_cache() : NULL;
    struct names_entry *e;
    Dwarf_Addr start = 0;
    const char *mainfile = NULL, *modname;
    uint64_t id;
    unsigned n;

    if (!c || !(id = id_hash_of(mod)))
        return name_frame_uncached(w, s, ph, with_locals, out, room, lc);
    modname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, &mainfile, NULL);
    e = names_slot(c, id, addr - start, ph->fr->activation);
    if (e->id_hash == id && e->rel == addr - start && e->activation == ph->fr->activation &&
        e->n > 0 && e->n <= room)
        return names_get(e, ph->fr->ip, mainfile ? mainfile : modname ? modname : "??", out,
                         room);
    n = name_frame_uncached(w, s, ph, with_locals, out, room, lc);
    names_put(e, id, addr - start, ph->fr->activation, out, n);
    return n;
}

int symbolize(const struct config *cfg, struct worker *w, const struct snapshot *s, bool with_locals,
              struct symframe *out, unsigned max)
{
    struct locals_ctx lc;
    unsigned n = 0;

    if (!w->dwfl && symbolize_prepare(w, s) < 0) {
        for (unsigned i = 0; i < s->nframes && n < max; i++, n++) {
            memset(&out[n], 0, sizeof(out[n]));
            out[n].ip = s->frames[i].ip;
            dsl_strlcpy(out[n].module, "??", sizeof(out[n].module));
        }
        return (int)n;
    }
    if (!s->gone && !symbolize_covers(w, s))
        (void)symbolize_refresh(w);
    locals_begin(&lc, cfg, w, s);
    for (unsigned i = 0; i < s->nframes && n < max; i++) {
        struct physical ph = {
            .fr = &s->frames[i],
            .caller = i + 1 < s->nframes ? &s->frames[i + 1] : NULL,
        };
        n += name_frame(w, s, &ph, with_locals, out + n, max - n, &lc);
    }
    locals_end(&lc);
    /* Names from the worker's DWARF with a control character in them
     * would be lines of their own in the report. */
    for (unsigned i = 0; i < n; i++) {
        dsl_unctrl(out[i].module);
        dsl_unctrl(out[i].function);
        dsl_unctrl(out[i].file);
        for (unsigned k = 0; k < out[i].nvars; k++) {
            dsl_unctrl(out[i].vars[k].name);
            dsl_unctrl(out[i].vars[k].value);
        }
    }
    return (int)n;
}
