/* SPDX-License-Identifier: MIT */
/*
 * Reading another process's memory.  One function reads; a short read is a
 * failure; callers use the typed helper and never pass sizes by hand.
 *
 * The reader is an interface so that the same parsing code runs against a
 * live process (process_vm_readv), a stack copied while the thread was held,
 * or a fake address space in tests and fuzz harnesses.
 */
#ifndef DOGSLOWD_REMOTE_H
#define DOGSLOWD_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One range of a vectored read: len bytes at addr into buf. */
struct remote_range {
    uint64_t addr;
    void *buf;
    size_t len;
};

/* Most ranges one readv call takes. */
#define REMOTE_READV_MAX 64

struct remote_mem {
    /* Read exactly len bytes at addr into buf: 0, or a negative errno
     * (-EFAULT for unmapped memory).  Never a partial result. */
    int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
    /* Optional: read n ranges in one go (one system call for a process).
     * Returns how many leading ranges were read whole (a range after the
     * first that fails is not read), or a negative errno.  Bypasses the
     * budget: the caller accounts for what it asked. */
    int (*readv)(void *ctx, const struct remote_range *r, unsigned n);
    void *ctx;
    /* Budget: total bytes this reader may still fetch (0 = unlimited).
     * Decremented by remote_read(); a read past it fails with -E2BIG. */
    size_t budget;
    size_t used;
};

/* Largest single read allowed through remote_read(). */
#define REMOTE_READ_MAX (1u << 20)

int remote_read(struct remote_mem *m, uint64_t addr, void *buf, size_t len);
#define remote_read_type(m, addr, ptr) remote_read((m), (addr), (ptr), sizeof(*(ptr)))

/* A reader over a live process with process_vm_readv().  ctx is the pid. */
struct remote_proc {
    pid_t pid;
};
void remote_mem_proc(struct remote_mem *m, struct remote_proc *p, pid_t pid);

/* Read a NUL-terminated string of at most max-1 bytes at addr into buf
 * (always terminated).  Reads in small chunks so it never crosses far into
 * unmapped memory.  Returns its length or a negative errno. */
int remote_read_cstr(struct remote_mem *m, uint64_t addr, char *buf, size_t max);

#endif
