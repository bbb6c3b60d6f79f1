/* SPDX-License-Identifier: MIT */
/*
 * The CPython frame reader (daemon/analysis/py_*.c):
 *
 *  - against real interpreters (Debian's static /usr/bin/python3 and every
 *    pyenv 3.11-3.13 found): tests/python/stack_target.py parks its main
 *    thread in time.sleep() and a second thread in Event.wait(), prints
 *    repr() of its locals, and we compare what we read from outside with
 *    what Python itself says;
 *  - versions we refuse (pyenv 3.10 when present) and non-Python processes;
 *  - fake address spaces built here in the 3.11 layout: a well-formed
 *    stack with a hand-made location table, a looping frame chain, a str
 *    claiming a huge length, pointers to unmapped memory, a non-code code
 *    object; then the same image mutated thousands of times through the
 *    fuzz entry point (run it under ASan: tools/build build-asan ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "run_suite.h"

#include "analysis.h"

/* ---- interpreters -------------------------------------------------------- */

#define NPY_MAX 16
static char pythons[NPY_MAX][512];
static unsigned npythons;
static char old_python[512]; /* a Python we must refuse, if installed */

static void add_python(const char *path)
{
    if (npythons < NPY_MAX && access(path, X_OK) == 0)
        snprintf(pythons[npythons++], sizeof(pythons[0]), "%s", path);
}

/* Interpreters we read, in $PYFRAMES_PYTHONS (colon-separated), or else
 * Debian's python3 (required: tools/deps installs it), each pyenv 3.11+
 * and each CPython installed under /opt/dogslow-pythons (see
 * docs/pyframes.md: built from CPython's source, GIL and free-threaded,
 * shared and static).  Versions the reader supports that none of these
 * provide are named on stderr as skipped. */
static const char *const wanted[] = {"3.11", "3.12", "3.13", "3.13t", "3.14", "3.14t"};
static bool have[sizeof(wanted) / sizeof(wanted[0])];

static void add_glob(const char *pat)
{
    glob_t g;

    if (glob(pat, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++)
        add_python(g.gl_pathv[i]);
    globfree(&g);
}

static void find_pythons(void)
{
    const char *env = getenv("PYFRAMES_PYTHONS");
    const char *root = getenv("PYENV_ROOT");
    const char *home = getenv("HOME");
    char versions[600], pat[700];
    glob_t g;

    if (env && *env) {
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", env);
        for (char *p = buf; p && *p;) {
            char *colon = strchr(p, ':');
            if (colon)
                *colon = '\0';
            add_python(p);
            p = colon ? colon + 1 : NULL;
        }
        return;
    }
    if (root && *root)
        snprintf(versions, sizeof(versions), "%s/versions", root);
    else
        snprintf(versions, sizeof(versions), "%s/.pyenv/versions", home ? home : "/root");
    add_python("/usr/bin/python3");
    snprintf(pat, sizeof(pat), "%s/3.1[1-9].*/bin/python3", versions);
    add_glob(pat);
    add_glob("/opt/dogslow-pythons/*/bin/python3");
    snprintf(pat, sizeof(pat), "%s/3.10.*/bin/python3", versions);
    if (glob(pat, 0, NULL, &g) == 0) {
        if (g.gl_pathc > 0)
            snprintf(old_python, sizeof(old_python), "%s", g.gl_pathv[0]);
        globfree(&g);
    }
}

/* "3.14" or "3.14t" of an interpreter, asked of itself. */
static void python_tag(const char *python, char *buf, size_t size)
{
    char cmd[700];
    FILE *p;

    buf[0] = '\0';
    snprintf(cmd, sizeof(cmd),
             "'%s' -c 'import sys, sysconfig; print(\"%%d.%%d%%s\" %% (sys.version_info[0], "
             "sys.version_info[1], \"t\" if sysconfig.get_config_var(\"Py_GIL_DISABLED\") "
             "else \"\"))' 2>/dev/null",
             python);
    p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(buf, (int)size, p))
        buf[strcspn(buf, "\n")] = '\0';
    pclose(p);
}

static const char *script_dir(void)
{
    const char *d = getenv("PYTHON_TESTS_DIR");
    ck_assert_msg(d && *d, "PYTHON_TESTS_DIR is not set (run the tests with 'make check')");
    return d;
}

/* The line of 'marker' ("# MARK: name") in a script. */
static int mark_line(const char *script, const char *name)
{
    char path[600], line[512], want[128];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", script_dir(), script);
    snprintf(want, sizeof(want), "# MARK: %s", name);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        n++;
        char *m = strstr(line, want);
        if (m && (m[strlen(want)] == '\n' || m[strlen(want)] == '\0')) {
            fclose(f);
            return n;
        }
    }
    fclose(f);
    ck_abort_msg("no marker %s in %s", name, script);
    return 0;
}

struct target {
    pid_t pid;
    int out;
    int main_tid, thread_tid;
    char locals[32][2][300]; /* name, repr */
    unsigned nlocals;
    char obj_id[32];
};

static void target_start(struct target *t, const char *python, const char *const *args)
{
    char script[600];
    const char *argv[8];
    int p[2], n = 0;

    memset(t, 0, sizeof(*t));
    snprintf(script, sizeof(script), "%s/stack_target.py", script_dir());
    argv[n++] = python;
    argv[n++] = script;
    for (int i = 0; args && args[i] && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    t->pid = fork();
    ck_assert_int_ge(t->pid, 0);
    if (t->pid == 0) {
        dup2(p[1], 1);
        setenv("PYTHONIOENCODING", "utf-8", 1);
        execv(python, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    t->out = p[0];

    /* Read "local", "id" and "ready" lines (10 s at most). */
    FILE *f = fdopen(dup(t->out), "r");
    char line[1024];
    alarm(20);
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "local ", 6) && t->nlocals < 32) {
            char *name = line + 6, *sp = strchr(name, ' ');
            ck_assert_ptr_nonnull(sp);
            *sp = '\0';
            snprintf(t->locals[t->nlocals][0], 300, "%s", name);
            snprintf(t->locals[t->nlocals][1], 300, "%s", sp + 1);
            t->nlocals++;
        } else if (!strncmp(line, "id obj ", 7)) {
            snprintf(t->obj_id, sizeof(t->obj_id), "%s", line + 7);
        } else if (!strncmp(line, "ready ", 6)) {
            int pid;
            ck_assert_int_eq(sscanf(line, "ready %d %d %d", &pid, &t->main_tid, &t->thread_tid), 3);
            ck_assert_int_eq(pid, t->pid);
            break;
        }
    }
    alarm(0);
    fclose(f);
    ck_assert_msg(t->main_tid > 0, "%s did not get ready", python);
    /* "ready" is printed just before the blocking call: give it a moment
     * to get there. */
    usleep(200 * 1000);
}

static void target_stop(struct target *t)
{
    int st;
    kill(t->pid, SIGKILL);
    waitpid(t->pid, &st, 0);
    close(t->out);
}

static const char *local_of(const struct py_frame *f, const char *name)
{
    for (unsigned i = 0; i < f->nlocals; i++)
        if (!strcmp(f->locals[i].name, name))
            return f->locals[i].value;
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static char *dump(const struct py_stack *st)
{
    static char buf[16384];
    size_t n = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < st->nframes && n < sizeof(buf) - 600; i++) {
        const struct py_frame *f = &st->frames[i];
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s:%d %s\n", f->entry ? "[entry] " : "",
                              f->filename, f->line, f->function);
        for (unsigned k = 0; k < f->nlocals && n < sizeof(buf) - 600; k++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "    %s = %s\n", f->locals[k].name,
                                  f->locals[k].value);
    }
    return buf;
}

/* ---- real interpreters ---------------------------------------------------- */

START_TEST(real_python_stacks)
{
    const char *python = pythons[_i];
    struct target t;
    struct py_runtime rt;
    struct remote_mem m;
    struct remote_proc rp;
    struct py_limits lim;
    struct py_stack st;
    char why[200];
    int r;

    target_start(&t, python, NULL);
    r = py_runtime_find(t.pid, &rt, why, sizeof(why));
    ck_assert_msg(r == 0, "%s: py_runtime_find: %d %s", python, r, why);
    ck_assert_uint_eq(rt.version_hex >> 24, 3);
    ck_assert_uint_ge((rt.version_hex >> 16) & 0xff, 11);

    remote_mem_proc(&m, &rp, t.pid);
    py_limits_default(&lim);

    /* The main thread: sleeper() <- main() <- <module>. */
    r = py_read_stack(&rt, &m, t.main_tid, &lim, &st);
    ck_assert_int_eq(r, 0);
    const char *d = dump(&st);
    ck_assert_msg(st.err == 0 && !st.truncated, "%s: %s\n%s", python, st.note, d);
    ck_assert_msg(st.nframes == 3, "%s:\n%s", python, d);
    ck_assert_str_eq(st.frames[0].function, "sleeper");
    ck_assert_str_eq(st.frames[1].function, "main");
    ck_assert_str_eq(st.frames[2].function, "<module>");
    for (unsigned i = 0; i < 3; i++)
        ck_assert_msg(ends_with(st.frames[i].filename, "/tests/python/stack_target.py"), "%s",
                      st.frames[i].filename);
    ck_assert_int_eq(st.frames[0].line, mark_line("stack_target.py", "sleeper"));
    ck_assert_int_eq(st.frames[1].line, mark_line("stack_target.py", "main"));
    /* One eval-loop activation runs all three: only <module> is an entry. */
    ck_assert(!st.frames[0].entry && !st.frames[1].entry && st.frames[2].entry);

    /* Every local Python printed, as repr() printed it. */
    ck_assert_uint_ge(t.nlocals, 10);
    for (unsigned i = 0; i < t.nlocals; i++) {
        const char *v = local_of(&st.frames[0], t.locals[i][0]);
        ck_assert_msg(v, "%s: local %s missing\n%s", python, t.locals[i][0], d);
        ck_assert_msg(!strcmp(v, t.locals[i][1]), "%s: %s is %s, Python says %s", python,
                      t.locals[i][0], v, t.locals[i][1]);
    }
    char expect[96];
    snprintf(expect, sizeof(expect), "<Custom object at 0x%s>", t.obj_id);
    ck_assert_str_eq(local_of(&st.frames[0], "obj"), expect);
    ck_assert_str_eq(local_of(&st.frames[0], "long_list"), "[0, 1, 2, 3, 4, ...] (100 items)");
    snprintf(expect, sizeof(expect), "%d", t.thread_tid);
    ck_assert_str_eq(local_of(&st.frames[0], "tid"), expect);
    ck_assert_ptr_nonnull(local_of(&st.frames[1], "th"));
    ck_assert(!strncmp(local_of(&st.frames[1], "th"), "<Thread object at 0x", 20));
    ck_assert_uint_gt(st.reads, 0);
    py_stack_free(&st);

    /* The second thread: Condition.wait <- Event.wait <- waiter <- threading. */
    r = py_read_stack(&rt, &m, t.thread_tid, &lim, &st);
    ck_assert_int_eq(r, 0);
    d = dump(&st);
    ck_assert_msg(st.err == 0 && st.nframes >= 4, "%s: %s\n%s", python, st.note, d);
    ck_assert_str_eq(st.frames[0].function, "Condition.wait");
    ck_assert(ends_with(st.frames[0].filename, "/threading.py"));
    ck_assert_str_eq(st.frames[1].function, "Event.wait");
    ck_assert_str_eq(st.frames[2].function, "waiter");
    ck_assert_int_eq(st.frames[2].line, mark_line("stack_target.py", "waiter"));
    ck_assert_str_eq(local_of(&st.frames[2], "label"), "'second thread'");
    ck_assert_str_eq(local_of(&st.frames[2], "count"), "7");
    ck_assert_str_eq(local_of(&st.frames[0], "timeout"), "None");
    ck_assert(st.frames[st.nframes - 1].entry);
    ck_assert_str_eq(st.frames[st.nframes - 1].function, "Thread._bootstrap");
    py_stack_free(&st);

    /* Without locals. */
    lim.max_locals = 0;
    ck_assert_int_eq(py_read_stack(&rt, &m, t.main_tid, &lim, &st), 0);
    ck_assert_uint_eq(st.nframes, 3);
    ck_assert_uint_eq(st.frames[0].nlocals, 0);
    py_stack_free(&st);

    /* A thread that is not in the process. */
    ck_assert_int_eq(py_read_stack(&rt, &m, 0x7ffffff0, &lim, &st), -ESRCH);
    target_stop(&t);
}
END_TEST

START_TEST(real_python_deep_stack_truncated)
{
    const char *python = pythons[_i];
    const char *args[] = {"deep", "300", NULL};
    struct target t;
    struct py_runtime rt;
    struct remote_mem m;
    struct remote_proc rp;
    struct py_limits lim;
    struct py_stack st;
    char why[200];

    target_start(&t, python, args);
    ck_assert_int_eq(py_runtime_find(t.pid, &rt, why, sizeof(why)), 0);
    remote_mem_proc(&m, &rp, t.pid);
    py_limits_default(&lim);
    lim.max_frames = 100;
    ck_assert_int_eq(py_read_stack(&rt, &m, t.main_tid, &lim, &st), 0);
    ck_assert_uint_eq(st.nframes, 100);
    ck_assert(st.truncated);
    ck_assert_int_eq(st.err, 0);
    ck_assert_msg(strstr(st.note, "innermost 100"), "%s", st.note);
    /* frames[0] is Event.wait (threading.py), then the recursion. */
    unsigned first = 0;
    while (first < st.nframes && strcmp(st.frames[first].function, "recurse"))
        first++;
    ck_assert_uint_lt(first, 5);
    ck_assert_int_eq(st.frames[first].line, mark_line("stack_target.py", "recurse-bottom"));
    ck_assert_str_eq(local_of(&st.frames[first], "n"), "0");
    ck_assert_str_eq(local_of(&st.frames[first + 1], "n"), "1");
    ck_assert_str_eq(local_of(&st.frames[first + 50], "n"), "50");
    ck_assert_int_eq(st.frames[first + 1].line, mark_line("stack_target.py", "recurse-call"));
    py_stack_free(&st);
    target_stop(&t);
}
END_TEST

START_TEST(old_python_is_refused)
{
    struct target t;
    struct py_runtime rt;
    char why[200];

    if (!old_python[0]) {
        /* Nothing to refuse on this machine; the fake-memory tests check
         * py_runtime_init's refusal instead. */
        return;
    }
    target_start(&t, old_python, NULL);
    memset(&rt, 0x5a, sizeof(rt));
    ck_assert_int_eq(py_runtime_find(t.pid, &rt, why, sizeof(why)), -EPROTONOSUPPORT);
    ck_assert_str_eq(why, "unsupported Python 3.10");
    ck_assert_uint_eq(rt.version_hex, 0x5a5a5a5a); /* untouched */
    target_stop(&t);
}
END_TEST

START_TEST(non_python_is_enoent)
{
    struct py_runtime rt;
    char why[200];
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    usleep(100 * 1000);
    ck_assert_int_eq(py_runtime_find(pid, &rt, why, sizeof(why)), -ENOENT);
    ck_assert(strstr(why, "not a Python process"));
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    /* A pid that does not exist. */
    ck_assert_int_eq(py_runtime_find(pid, &rt, why, sizeof(why)), -ESRCH);
}
END_TEST

START_TEST(versions_refused_by_init)
{
    struct py_runtime rt;

    ck_assert_int_eq(py_runtime_init(&rt, 0x030a0df0, 0x1000), -EPROTONOSUPPORT);
    ck_assert_int_eq(py_runtime_init(&rt, 0x030f00f0, 0x1000), -EPROTONOSUPPORT);
    ck_assert_int_eq(py_runtime_init(&rt, 0x020707f0, 0x1000), -EPROTONOSUPPORT);
    ck_assert_int_eq(py_runtime_init(&rt, 0x030b00f0, 0x1000), 0);
    ck_assert_int_eq(py_runtime_init(&rt, 0x030c00f0, 0x1000), 0);
    ck_assert_int_eq(py_runtime_init(&rt, 0x030d00f0, 0x1000), 0);
    char v[32];
    py_version_string(0x030b07f0, v, sizeof(v));
    ck_assert_str_eq(v, "3.11.7");
}
END_TEST

/* ---- fake address spaces (3.11 layout) ----------------------------------- */

#define IMG_SIZE (256 * 1024)
#define BASE PYFRAMES_FUZZ_BASE
#define T_CODE 0
#define T_CELL 1
#define T_NONE 2
#define T_BOOL 3
#define T_INT 4
#define T_FLOAT 5
#define T_STR 6
#define T_BYTES 7
#define T_TUPLE 8
#define T_LIST 9
#define T_DICT 10

struct img {
    uint8_t hdr[PYFRAMES_FUZZ_HDR]; /* so the image is a fuzz input as is */
    uint8_t mem[IMG_SIZE];
    size_t top;
};

static int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct img *im = ctx;
    if (addr < BASE || addr - BASE > IMG_SIZE || len > IMG_SIZE - (addr - BASE))
        return -EFAULT;
    memcpy(buf, im->mem + (addr - BASE), len);
    return 0;
}

static uint64_t img_alloc(struct img *im, size_t size)
{
    uint64_t a = BASE + im->top;
    im->top = (im->top + size + 15) & ~(size_t)15;
    ck_assert_uint_le(im->top, IMG_SIZE);
    return a;
}

static void put64(struct img *im, uint64_t addr, uint64_t v)
{
    memcpy(im->mem + (addr - BASE), &v, 8);
}

static void put32(struct img *im, uint64_t addr, uint32_t v)
{
    memcpy(im->mem + (addr - BASE), &v, 4);
}

static void put8(struct img *im, uint64_t addr, uint8_t v)
{
    im->mem[addr - BASE] = v;
}

static uint64_t obj(struct img *im, size_t size, int type)
{
    uint64_t a = img_alloc(im, size);
    put64(im, a, 1);
    put64(im, a + 8, PYFRAMES_FUZZ_TYPE(type));
    return a;
}

static uint64_t mk_str(struct img *im, const char *s)
{
    size_t n = strlen(s);
    uint64_t a = obj(im, 48 + n + 1, T_STR);
    put64(im, a + 16, n);
    put64(im, a + 24, (uint64_t)-1);
    put32(im, a + 32, (1u << 2) | 0x20 | 0x40 | 0x80); /* kind 1, compact, ascii, ready */
    memcpy(im->mem + (a + 48 - BASE), s, n + 1);
    return a;
}

static uint64_t mk_bytes(struct img *im, const void *p, size_t n)
{
    uint64_t a = obj(im, 32 + n + 1, T_BYTES);
    put64(im, a + 16, n);
    memcpy(im->mem + (a + 32 - BASE), p, n);
    return a;
}

static uint64_t mk_int(struct img *im, int v)
{
    uint64_t a = obj(im, 32, T_INT);
    put64(im, a + 16, v == 0 ? 0 : v > 0 ? 1 : (uint64_t)-1);
    put32(im, a + 24, (uint32_t)(v < 0 ? -v : v));
    return a;
}

static uint64_t mk_tuple(struct img *im, const uint64_t *items, size_t n)
{
    uint64_t a = obj(im, 24 + 8 * n, T_TUPLE);
    put64(im, a + 16, n);
    for (size_t i = 0; i < n; i++)
        put64(im, a + 24 + 8 * i, items[i]);
    return a;
}

/* A 3.11 code object; the bytecode is 16 code units long. */
static uint64_t mk_code(struct img *im, const char *qualname, int firstlineno,
                        const uint8_t *table, size_t tn, const char *const *names, size_t nnames)
{
    uint64_t nm[16];
    uint8_t kinds[16];
    uint64_t a;

    for (size_t i = 0; i < nnames; i++) {
        nm[i] = mk_str(im, names[i]);
        kinds[i] = 0x20; /* CO_FAST_LOCAL */
    }
    uint64_t names_t = mk_tuple(im, nm, nnames);
    uint64_t kinds_b = mk_bytes(im, kinds, nnames);
    uint64_t file = mk_str(im, "/srv/app/views.py");
    uint64_t qn = mk_str(im, qualname);
    uint64_t lt = mk_bytes(im, table, tn);
    a = obj(im, 184 + 32, T_CODE);
    put32(im, a + 72, (uint32_t)firstlineno);
    put32(im, a + 76, (uint32_t)nnames);
    put64(im, a + 96, names_t);
    put64(im, a + 104, kinds_b);
    put64(im, a + 112, file);
    put64(im, a + 120, qn);
    put64(im, a + 128, qn);
    put64(im, a + 136, lt);
    return a;
}

/* A 3.11 frame running code at code unit 'unit' with locals. */
static uint64_t mk_frame(struct img *im, uint64_t code, int unit, uint64_t previous,
                         bool entry, const uint64_t *locals, size_t n)
{
    uint64_t a = img_alloc(im, 72 + 8 * (n + 2));
    put64(im, a + 32, code);
    put64(im, a + 48, previous);
    put64(im, a + 56, code + 184 + (uint64_t)(2 * unit));
    put8(im, a + 68, entry);
    put8(im, a + 69, 0);
    for (size_t i = 0; i < n; i++)
        put64(im, a + 72 + 8 * i, locals[i]);
    return a;
}

/* Runtime -> interpreter -> thread state (tid 4242) -> cframe -> frame. */
static void mk_thread(struct img *im, uint64_t frame)
{
    uint64_t interp = img_alloc(im, 64);
    uint64_t ts = img_alloc(im, 256);
    uint64_t cframe = img_alloc(im, 32);
    put64(im, BASE + 40, interp);
    put64(im, interp + 16, ts);
    put64(im, ts + 160, 4242);
    put64(im, ts + 56, cframe);
    put64(im, cframe + 8, frame);
}

/*
 * The location table used below (firstlineno 10):
 *   unit 0      line 12  (no-columns form, delta +2)
 *   units 1-2   line 12  (one-line form 0)
 *   unit 3      line 13  (one-line form 1)
 *   units 4-7   line 10  (long form, delta -3)
 *   unit 8      no line
 *   unit 9      line 11  (short form... after a +1 no-columns entry)
 */
static const uint8_t table[] = {
    0x80 | (13 << 3) | 0, 4,       /* svarint +2 */
    0x80 | (10 << 3) | 1, 1, 2,
    0x80 | (11 << 3) | 0, 1, 2,
    0x80 | (14 << 3) | 3, 7, 0, 1, 2, /* svarint -3, end line, cols */
    0x80 | (15 << 3) | 0,
    0x80 | (13 << 3) | 0, 2,       /* +1 */
};

struct fake {
    struct img *im;
    struct py_runtime rt;
    struct remote_mem m;
    uint64_t inner, outer, code, str_local;
};

static void fake_init(struct fake *f, int unit)
{
    static const char *const names[] = {"name", "n", "items", "blob", "gone"};
    f->im = calloc(1, sizeof(*f->im));
    ck_assert_ptr_nonnull(f->im);
    f->im->top = 0x2000; /* runtime at 0, types at 0x1000 */
    for (int i = 0; i < 13; i++)
        put64(f->im, PYFRAMES_FUZZ_TYPE(i) + 24, BASE + 0x1f00); /* tp_name */
    memcpy(f->im->mem + 0x1f00, "faketype", 9);

    f->code = mk_code(f->im, "View.get", 10, table, sizeof(table), names, 5);
    uint64_t outer_code = mk_code(f->im, "dispatch", 100, table, sizeof(table), names, 1);
    uint64_t items[3] = {mk_int(f->im, 1), mk_str(f->im, "two"), mk_int(f->im, -3)};
    f->str_local = mk_str(f->im, "it's\n");
    uint64_t locals[5] = {f->str_local, mk_int(f->im, 42), mk_tuple(f->im, items, 3),
                          mk_bytes(f->im, "a\x01", 2), 0};
    uint64_t ol[1] = {mk_str(f->im, "outer")};
    f->outer = mk_frame(f->im, outer_code, 3, 0, true, ol, 1);
    f->inner = mk_frame(f->im, f->code, unit, f->outer, false, locals, 5);
    mk_thread(f->im, f->inner);

    ck_assert_int_eq(py_runtime_init(&f->rt, 0x030b07f0, BASE), 0);
    uint64_t *t = &f->rt.types.code;
    for (unsigned i = 0; i < sizeof(f->rt.types) / 8; i++)
        t[i] = PYFRAMES_FUZZ_TYPE(i);
    memset(&f->m, 0, sizeof(f->m));
    f->m.read = img_read;
    f->m.ctx = f->im;
}

static int fake_read(struct fake *f, struct py_stack *st)
{
    struct py_limits lim;
    py_limits_default(&lim);
    return py_read_stack(&f->rt, &f->m, 4242, &lim, st);
}

START_TEST(fake_well_formed)
{
    static const struct {
        int unit, line;
    } cases[] = {{-1, 10}, {0, 12}, {1, 12}, {2, 12}, {3, 13}, {4, 10}, {7, 10}, {8, 0}, {9, 11},
                 {10, 0}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct fake f;
        struct py_stack st;

        fake_init(&f, cases[c].unit);
        ck_assert_int_eq(fake_read(&f, &st), 0);
        const char *d = dump(&st);
        ck_assert_msg(st.err == 0 && st.nframes == 2, "%s\n%s", st.note, d);
        ck_assert_msg(st.frames[0].line == cases[c].line, "unit %d: line %d, want %d",
                      cases[c].unit, st.frames[0].line, cases[c].line);
        ck_assert_str_eq(st.frames[0].function, "View.get");
        ck_assert_str_eq(st.frames[0].filename, "/srv/app/views.py");
        ck_assert(!st.frames[0].entry);
        ck_assert_str_eq(st.frames[1].function, "dispatch");
        ck_assert_int_eq(st.frames[1].line, 103);
        ck_assert(st.frames[1].entry);
        ck_assert_uint_eq(st.frames[0].nlocals, 4); /* "gone" is unbound */
        ck_assert_str_eq(local_of(&st.frames[0], "name"), "\"it's\\n\"");
        ck_assert_str_eq(local_of(&st.frames[0], "n"), "42");
        ck_assert_str_eq(local_of(&st.frames[0], "items"), "(1, 'two', -3)");
        ck_assert_str_eq(local_of(&st.frames[0], "blob"), "b'a\\x01'");
        ck_assert_ptr_null(local_of(&st.frames[0], "gone"));
        ck_assert_str_eq(local_of(&st.frames[1], "name"), "'outer'");
        py_stack_free(&st);
        free(f.im);
    }
}
END_TEST

/* The reader's vectored prefetch (one system call for many pages in a
 * process) must change nothing of what is read: the same stack with and
 * without it, and with one that fails part-way. */
static int img_readv(void *ctx, const struct remote_range *r, unsigned n)
{
    unsigned i = 0;
    while (i < n && img_read(ctx, r[i].addr, r[i].buf, r[i].len) == 0)
        i++;
    return (int)i;
}

static int img_readv_short(void *ctx, const struct remote_range *r, unsigned n)
{
    /* Reads the first range only, as if the second were unmapped. */
    return n == 0 ? 0 : (img_read(ctx, r[0].addr, r[0].buf, r[0].len) == 0 ? 1 : 0);
}

START_TEST(fake_vectored_reads_read_the_same)
{
    int (*const readers[])(void *, const struct remote_range *, unsigned) = {img_readv,
                                                                              img_readv_short};
    struct fake f;
    struct py_stack st;
    char plain[16384];

    fake_init(&f, 3);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    snprintf(plain, sizeof(plain), "%s", dump(&st));
    ck_assert_uint_eq(st.frames[0].nlocals, 4);
    py_stack_free(&st);
    for (size_t k = 0; k < sizeof(readers) / sizeof(readers[0]); k++) {
        memset(f.rt.code_cache, 0, sizeof(f.rt.code_cache));
        f.m.readv = readers[k];
        ck_assert_int_eq(fake_read(&f, &st), 0);
        ck_assert_str_eq(dump(&st), plain);
        ck_assert_int_eq(st.err, 0);
        py_stack_free(&st);
    }
    free(f.im);
}
END_TEST

/*
 * Held, the reader takes a code object's slot count from the worker's code
 * cache and reads no code object; the names come afterwards.  A code object
 * freed and another put at its address (here: its names tuple swapped for
 * one of two names) must not get the old one's locals under the new names:
 * py_finish() sees the difference and drops them, and the next read is right.
 * A value of a type the renderer does not know shows the type's name, read
 * after the thread was let go.
 */
START_TEST(fake_code_cache_is_checked_afterwards)
{
    static const char *const two[] = {"first", "second"};
    struct fake f;
    struct py_stack st;

    fake_init(&f, 3);
    uint64_t type = img_alloc(f.im, 64);
    uint64_t tname = img_alloc(f.im, 16);
    memcpy(f.im->mem + (tname - BASE), "WSGIRequest", 12);
    put64(f.im, type + 24, tname);
    uint64_t req = img_alloc(f.im, 32);
    put64(f.im, req, 1);
    put64(f.im, req + 8, type);
    put64(f.im, f.inner + 72 + 8 * 4, req); /* "gone" is bound now */

    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.code_misses, 2);
    ck_assert_uint_eq(st.frames[0].nlocals, 5);
    char want[64];
    snprintf(want, sizeof(want), "<WSGIRequest object at 0x%llx>", (unsigned long long)req);
    ck_assert_str_eq(local_of(&st.frames[0], "gone"), want);
    py_stack_free(&st);

    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.code_misses, 0);
    ck_assert_uint_eq(st.frames[0].nlocals, 5);
    ck_assert_str_eq(local_of(&st.frames[0], "n"), "42");
    ck_assert_str_eq(local_of(&st.frames[0], "gone"), want);
    py_stack_free(&st);

    uint64_t nm[2] = {mk_str(f.im, two[0]), mk_str(f.im, two[1])};
    uint8_t kinds[2] = {0x20, 0x20};
    put64(f.im, f.code + 96, mk_tuple(f.im, nm, 2));
    put64(f.im, f.code + 104, mk_bytes(f.im, kinds, 2));
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_str_eq(st.frames[0].function, "View.get");
    ck_assert_msg(st.frames[0].nlocals == 0 && st.frames[0].locals_truncated, "%s", dump(&st));
    ck_assert_str_eq(local_of(&st.frames[1], "name"), "'outer'");
    py_stack_free(&st);

    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.code_misses, 0);
    ck_assert_msg(st.frames[0].nlocals == 2, "%s", dump(&st));
    ck_assert_str_eq(local_of(&st.frames[0], "first"), "\"it's\\n\"");
    ck_assert_str_eq(local_of(&st.frames[0], "second"), "42");
    py_stack_free(&st);

    /* co_localspluskinds not as long as the names: hidden slots cannot be
     * told apart, so the frame shows no locals, and says it is short. */
    put64(f.im, f.code + 104, mk_bytes(f.im, kinds, 1));
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_msg(st.frames[0].nlocals == 0 && st.frames[0].locals_truncated, "%s", dump(&st));
    ck_assert_str_eq(local_of(&st.frames[1], "name"), "'outer'");
    py_stack_free(&st);
    free(f.im);
}
END_TEST

START_TEST(fake_frame_loop)
{
    struct fake f;
    struct py_stack st;

    fake_init(&f, 3);
    put64(f.im, f.outer + 48, f.inner); /* outer.previous = inner */
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.nframes, 2);
    ck_assert_int_eq(st.err, -ELOOP);
    ck_assert_msg(strstr(st.note, "loops"), "%s", st.note);
    py_stack_free(&st);

    /* A frame that is its own parent. */
    put64(f.im, f.inner + 48, f.inner);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.nframes, 1);
    ck_assert_int_eq(st.err, -ELOOP);
    py_stack_free(&st);
    free(f.im);
}
END_TEST

START_TEST(fake_huge_str)
{
    struct fake f;
    struct py_stack st;

    fake_init(&f, 3);
    /* Claims 2^39 characters; only the first few hundred exist (the rest
     * of the image is zeros, then unmapped). */
    put64(f.im, f.str_local + 16, (uint64_t)1 << 39);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    const char *v = local_of(&st.frames[0], "name");
    ck_assert_ptr_nonnull(v);
    ck_assert_msg(strlen(v) <= 2048 + 64, "%zu", strlen(v)); /* max_value_bytes, and the count */
    ck_assert_msg(strstr(v, "(549755813888 chars)") || !strncmp(v, "<unreadable", 11), "%s", v);
    ck_assert_uint_lt(st.bytes_read, 1u << 20);
    py_stack_free(&st);

    /* Beyond any real string: unreadable, and the rest of the frame goes on. */
    put64(f.im, f.str_local + 16, (uint64_t)1 << 50);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    char expect[64];
    snprintf(expect, sizeof(expect), "<unreadable object at 0x%llx>",
             (unsigned long long)f.str_local);
    ck_assert_str_eq(local_of(&st.frames[0], "name"), expect);
    ck_assert_str_eq(local_of(&st.frames[0], "n"), "42");
    py_stack_free(&st);

    /* A str of kind 3 (no such kind). */
    put64(f.im, f.str_local + 16, 5);
    put32(f.im, f.str_local + 32, (3u << 2) | 0x20);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_str_eq(local_of(&st.frames[0], "name"), expect);
    py_stack_free(&st);
    free(f.im);
}
END_TEST

START_TEST(fake_unmapped_pointers)
{
    struct fake f;
    struct py_stack st;

    fake_init(&f, 3);
    /* A local pointing nowhere. */
    put64(f.im, f.inner + 72 + 8, 0x7f0000000000ull);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_str_eq(local_of(&st.frames[0], "n"), "<unreadable object at 0x7f0000000000>");
    ck_assert_uint_eq(st.nframes, 2);
    py_stack_free(&st);

    /* The outer frame is unmapped: the inner one is kept. */
    put64(f.im, f.inner + 48, 0x7f0000001000ull);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.nframes, 1);
    ck_assert_int_eq(st.err, -EFAULT);
    ck_assert_msg(strstr(st.note, "cannot read frame"), "%s", st.note);
    py_stack_free(&st);

    /* A misaligned frame pointer. */
    put64(f.im, f.inner + 48, f.outer + 3);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.nframes, 1);
    ck_assert_int_eq(st.err, -EFAULT);
    py_stack_free(&st);

    /* f_code that is not a code object. */
    put64(f.im, f.inner + 48, f.outer);
    put64(f.im, f.outer + 32, f.str_local);
    ck_assert_int_eq(fake_read(&f, &st), 0);
    ck_assert_uint_eq(st.nframes, 1);
    ck_assert_int_eq(st.err, -EBADMSG);
    py_stack_free(&st);

    /* The thread-state list points into nowhere. */
    put64(f.im, BASE + 40, 0x7f0000002000ull);
    ck_assert_int_lt(fake_read(&f, &st), 0);
    free(f.im);
}
END_TEST

START_TEST(fake_limits_hold)
{
    struct fake f;
    struct py_stack st;
    struct py_limits lim;
    char big[3000];

    fake_init(&f, 3);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put64(f.im, f.inner + 72, mk_str(f.im, big));
    py_limits_default(&lim);
    lim.max_value_bytes = 40;
    ck_assert_int_eq(py_read_stack(&f.rt, &f.m, 4242, &lim, &st), 0);
    const char *v = local_of(&st.frames[0], "name");
    ck_assert_uint_le(strlen(v), 40);
    ck_assert(!strncmp(v, "'xxxx", 5));
    py_stack_free(&st);

    /* One frame only. */
    lim.max_frames = 1;
    ck_assert_int_eq(py_read_stack(&f.rt, &f.m, 4242, &lim, &st), 0);
    ck_assert_uint_eq(st.nframes, 1);
    ck_assert(st.truncated);
    py_stack_free(&st);

    /* A read budget too small for anything. */
    py_limits_default(&lim);
    lim.max_read_bytes = 100;
    ck_assert_int_eq(py_read_stack(&f.rt, &f.m, 4242, &lim, &st), -E2BIG);

    /* Text budget: names and values stop, frames go on. */
    py_limits_default(&lim);
    lim.max_text_bytes = 1024;
    put64(f.im, f.inner + 72, f.str_local);
    ck_assert_int_eq(py_read_stack(&f.rt, &f.m, 4242, &lim, &st), 0);
    ck_assert_uint_eq(st.nframes, 2);
    py_stack_free(&st);
    free(f.im);
}
END_TEST

/* xorshift: reproducible mutations. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(fuzz_replay)
{
    struct fake f;
    uint8_t *buf;
    size_t used;

    fake_init(&f, 3);
    used = f.im->top;
    f.im->hdr[0] = 0;
    f.im->hdr[1] = 63;
    f.im->hdr[2] = 15;
    f.im->hdr[3] = 240;
    uint32_t tid = 4242;
    memcpy(f.im->hdr + 4, &tid, 4);
    buf = malloc(PYFRAMES_FUZZ_HDR + used);
    ck_assert_ptr_nonnull(buf);

    /* The well-formed image itself, in odd-sized prefixes. */
    memcpy(buf, f.im->hdr, PYFRAMES_FUZZ_HDR);
    memcpy(buf + PYFRAMES_FUZZ_HDR, f.im->mem, used);
    /* PYFRAMES_WRITE_SEED=FILE: save it as a seed for a real fuzzer
     * (clang -fsanitize=fuzzer; see docs/pyframes.md). */
    const char *seed = getenv("PYFRAMES_WRITE_SEED");
    if (seed) {
        FILE *sf = fopen(seed, "wb");
        ck_assert_ptr_nonnull(sf);
        ck_assert_uint_eq(fwrite(buf, 1, PYFRAMES_FUZZ_HDR + used, sf), PYFRAMES_FUZZ_HDR + used);
        fclose(sf);
    }
    for (size_t n = 0; n <= PYFRAMES_FUZZ_HDR + used; n += 1 + n / 3)
        pyframes_fuzz_one(buf, n);

    /* Mutants: random bytes, and words that point back into the image
     * (where a fuzzer finds the interesting paths). */
    /* PYFRAMES_FUZZ_ITERATIONS=1000000 for a longer run by hand. */
    const char *env = getenv("PYFRAMES_FUZZ_ITERATIONS");
    long iterations = env ? strtol(env, NULL, 10) : 4000;
    for (long i = 0; i < iterations; i++) {
        memcpy(buf + PYFRAMES_FUZZ_HDR, f.im->mem, used);
        buf[0] = (uint8_t)(i % 3);
        int muts = 1 + (int)(rnd() % 8);
        for (int k = 0; k < muts; k++) {
            size_t at = (size_t)(rnd() % (used - 8)) & ~(size_t)7;
            uint64_t v;
            switch (rnd() % 4) {
            case 0:
                buf[PYFRAMES_FUZZ_HDR + at + rnd() % 8] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                v = BASE + (rnd() % used & ~(uint64_t)7);
                memcpy(buf + PYFRAMES_FUZZ_HDR + at, &v, 8);
                break;
            case 2:
                v = rnd();
                memcpy(buf + PYFRAMES_FUZZ_HDR + at, &v, 8);
                break;
            default:
                v = (uint64_t)1 << (rnd() % 64);
                memcpy(buf + PYFRAMES_FUZZ_HDR + at, &v, 8);
                break;
            }
        }
        pyframes_fuzz_one(buf, PYFRAMES_FUZZ_HDR + used);
    }
    free(buf);
    free(f.im);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pyframes");
    TCase *tc = tcase_create("real");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, real_python_stacks, 0, (int)npythons);
    tcase_add_loop_test(tc, real_python_deep_stack_truncated, 0, (int)npythons);
    tcase_add_test(tc, old_python_is_refused);
    tcase_add_test(tc, non_python_is_enoent);
    suite_add_tcase(s, tc);

    tc = tcase_create("fake");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, versions_refused_by_init);
    tcase_add_test(tc, fake_well_formed);
    tcase_add_test(tc, fake_vectored_reads_read_the_same);
    tcase_add_test(tc, fake_code_cache_is_checked_afterwards);
    tcase_add_test(tc, fake_frame_loop);
    tcase_add_test(tc, fake_huge_str);
    tcase_add_test(tc, fake_unmapped_pointers);
    tcase_add_test(tc, fake_limits_hold);
    tcase_add_test(tc, fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    find_pythons();
    fprintf(stderr, "interpreters:");
    for (unsigned i = 0; i < npythons; i++) {
        char tag[32];
        python_tag(pythons[i], tag, sizeof(tag));
        fprintf(stderr, " %s (%s)", pythons[i], tag[0] ? tag : "?");
        for (unsigned k = 0; k < sizeof(wanted) / sizeof(wanted[0]); k++)
            have[k] |= strcmp(tag, wanted[k]) == 0;
    }
    fprintf(stderr, "%s%s\n", old_python[0] ? "; refused: " : "", old_python);
    for (unsigned k = 0; k < sizeof(wanted) / sizeof(wanted[0]); k++)
        if (!have[k])
            fprintf(stderr, "skipped: no Python %s interpreter here (docs/pyframes.md says "
                            "how the tested ones were built)\n",
                    wanted[k]);
    if (npythons == 0 || strcmp(pythons[0], "/usr/bin/python3") != 0) {
        if (!getenv("PYFRAMES_PYTHONS")) {
            fprintf(stderr, "Debian's /usr/bin/python3 is missing (tools/deps installs it)\n");
            return 1;
        }
    }
    return run_suite(suite());
}
