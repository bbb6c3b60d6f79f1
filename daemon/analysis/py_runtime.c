/* SPDX-License-Identifier: MIT */
/*
 * Finding the CPython runtime in a process (py_runtime_find): the
 * executable or libpython that defines the dynamic symbol _PyRuntime, from
 * /proc/PID/maps and the ELF file's dynamic symbol table, its load bias,
 * its version (Py_Version), the addresses of the types the renderer
 * recognises, and the offsets for that version (py_offsets.c).  Also a
 * version's short name (py_version_string).
 *
 * The worker chooses what it maps and what its files say: the files are
 * opened carefully (open_mapping) and each table is bounds-checked before
 * it is read.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis.h"
#include "util.h"

void py_version_string(uint32_t v, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u", (v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff);
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

static int open_mapping(pid_t pid, const struct dsl_mapping *mp)
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

static void set_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
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

int py_runtime_setup(struct py_runtime *rt, uint32_t version_hex, uint64_t runtime_addr,
                     struct remote_mem *m, char *why, size_t why_size)
{
    char vs[32];
    int e;

    if (version_hex)
        snprintf(vs, sizeof(vs), "%u.%u", version_hex >> 24, (version_hex >> 16) & 0xff);
    else
        snprintf(vs, sizeof(vs), "(unknown version)");
    e = py_runtime_init(rt, version_hex, runtime_addr);
    if (e < 0) {
        set_why(why, why_size, "unsupported Python %s", vs);
        return -EPROTONOSUPPORT;
    }
    if (((version_hex >> 16) & 0xff) >= 13) {
        e = py_runtime_load_debug_offsets(rt, m);
        if (e < 0) {
            set_why(why, why_size, "unsupported Python %s (%s)", vs,
                    e == -EPROTONOSUPPORT ? "free-threaded build" : "unexpected _Py_DebugOffsets");
            return e == -EPROTONOSUPPORT || e == -EPROTO ? -EPROTONOSUPPORT : e;
        }
    }
    return 0;
}

int py_runtime_find(pid_t pid, struct py_runtime *ret, char *why, size_t why_size)
{
    char exe[PATH_MAX], path[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    n = readlink(path, exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    return py_runtime_find_exe(pid, exe, ret, why, why_size);
}

int py_runtime_find_exe(pid_t pid, const char *exe, struct py_runtime *ret, char *why,
                        size_t why_size)
{
    const struct analysis_io *io = analysis_get_io();
    struct dsl_mapping *cand = NULL;
    unsigned ncand = 0;
    char *maps = NULL;
    size_t maps_len = 0;
    int r;

    if (pid <= 0 || !ret || !exe)
        return -EINVAL;
    (void)remote_cache_prepare(); /* now, not while a thread is held */
    if (io) {
        /* The analysis process: the daemon reads the maps for it. */
        maps = io->read_maps(pid, &maps_len);
        r = maps ? 0 : -ESRCH;
    } else {
        r = read_maps(pid, &maps, &maps_len);
    }
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
        struct dsl_mapping mp;

        pos += len + 1;
        if (!dsl_maps_line(line, len, &mp) || mp.offset != 0)
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
        int fd = io ? io->open_file(SEP_OPEN_MODULE, cand[i].path) : open_mapping(pid, &cand[i]);
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
        struct py_runtime rt;
        e = py_runtime_setup(&rt, version, v[SYM_RUNTIME] + bias, &m, why, why_size);
        if (e < 0) {
            r = e;
            break;
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
