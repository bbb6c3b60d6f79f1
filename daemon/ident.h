/* SPDX-License-Identifier: MIT */
/*
 * Who a registered process is, and whether it is still that process.
 *
 * The daemon may trace any process (CAP_SYS_PTRACE), so a registration
 * must never become a way to get *another* program traced: a client that
 * registers and then executes a set-uid program (its connection kept open
 * across the exec, or by a child) must not get that program's stack and
 * locals written into a report.  A registration therefore records the
 * process's identity -- credentials, dumpability and the layout of its
 * address space, which every exec replaces -- and every read of the
 * process (snapshot, peek, follow-up sample, naming, adoption after a
 * restart) first checks it is unchanged.  See docs/reliability.md, "threat
 * model".
 */
#ifndef DOGSLOWD_IDENT_H
#define DOGSLOWD_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IDENT_GROUPS_MAX 64 /* supplementary groups kept (more: the rest are left out) */
/* /proc/PID/stat fields 26-28 and 45-47: start_code, end_code,
 * start_stack, start_data, end_data, start_brk.  A new program gets a new
 * address space with new values (at random places, as exec lays it out
 * anew).  (arg_start & co. are left out: a privileged process may move
 * them with PR_SET_MM to change its title.) */
#define IDENT_MM_FIELDS 6

struct ident {
    uid_t uid[4]; /* real, effective, saved, file system */
    gid_t gid[4];
    gid_t groups[IDENT_GROUPS_MAX];
    unsigned ngroups;
    uint64_t mm[IDENT_MM_FIELDS];
    uint64_t starttime; /* field 22 of the thread's stat */
    pid_t tgid;
    char state;    /* 'R', 'S', 'D', 'Z', ... */
    bool dumpable; /* /proc/PID/task/TID/stat belongs to its euid/egid */
};

/* Parse the text of /proc/PID/task/TID/status (Tgid, Uid, Gid, Groups) or
 * stat (state, start time, address space) into ret.  0 or -EIO. */
int ident_parse_status(const char *text, struct ident *ret);
int ident_parse_stat(const char *text, struct ident *ret);

/* Read the identity of thread tid of process pid (tid 0: the process's
 * main thread).  0, or -errno (-ENOENT, -ESRCH: gone). */
int ident_read(pid_t pid, pid_t tid, struct ident *ret);

/* Is cur (read now) still the process registered as reg?  0 if so;
 * -ESRCH when the thread left the process or exited; -EPERM when it is
 * another program or has other credentials (why says which). */
int ident_compare(const struct ident *reg, const struct ident *cur, bool same_thread, char *why,
                  size_t size);

/* ident_read + ident_compare for thread tid of pid. */
int ident_verify(const struct ident *reg, pid_t pid, pid_t tid, struct ident *ret_cur, char *why,
                 size_t size);

/* May a process with identity id read the file at path (every directory
 * on the way searchable, the file readable, by its fs uid/gid and
 * groups)?  Returns an fd open for reading (O_CLOEXEC), or -errno
 * (-EACCES when it may not).  Symbolic links are followed (at most 16),
 * each checked the same way. */
int ident_open_as(const struct ident *id, const char *path);

/* The state file's form of an identity ("U U U U G G G G M M M M M M") and
 * back.  format returns the length or -ENOSPC; parse the number of bytes
 * it read (the text may go on after a blank) or -EINVAL. */
int ident_format(const struct ident *id, char *buf, size_t size);
int ident_parse_record(const char *text, struct ident *ret);

#endif
