/* SPDX-License-Identifier: MIT */
/*
 * The CPython reader's fuzz entry point (pyframes_fuzz_one, analysis.h):
 * the whole reader -- offsets, the walk, the page cache's exact and
 * vectored reads, rendering, line tables -- run against a fake address
 * space taken from the input.  Replayed by tests/check_pyframes, run long
 * by 'make fuzz' (fuzz/main_pyframes.c).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "analysis.h"

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
