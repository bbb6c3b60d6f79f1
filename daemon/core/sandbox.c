/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter the daemon puts on itself once it is set up (after the
 * privilege drop, before it reads any worker's scoreboard, memory or files),
 * for the whole of its life and every thread.
 *
 * Why: from then on the daemon parses what workers control -- their
 * protocol messages, scoreboards, stacks, CPython structures, ELF and DWARF
 * files -- with libdw and our own readers, while holding CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH.  A parser bug exploited by a worker must not turn
 * into "run a program", "write into another process", "open any file by
 * handle" or "listen on the network".  The filter is an allow-list of what
 * the event loop and the delivery thread (libcurl, libesmtp, OpenSSL) use,
 * with the arguments checked where they make the difference:
 *
 *   ptrace           only SEIZE, INTERRUPT, GETREGS, DETACH (no POKE*, no
 *                    SETREGS*: a snapshot never writes to a worker)
 *   mmap, mprotect   never writable and executable, nothing made executable
 *                    later (MemoryDenyWriteExecute, also without systemd)
 *   socket           AF_UNIX, AF_INET, AF_INET6 (others: EAFNOSUPPORT, as
 *                    RestrictAddressFamilies= answers)
 *   clone            threads only (no fork); clone3 is ENOSYS, so that
 *                    glibc falls back to clone, whose flags can be seen
 *   chown family     the group only (output_group), never the owner
 *   kill, tgkill     this process only (abort, raise)
 *   prctl            names and read-only queries
 *   ioctl            FIONREAD, FIONBIO, TCGETS, TIOCGWINSZ (no TIOCSTI)
 *   prlimit64        reading only
 *
 * Not on the list, so denied: execve/execveat, process_vm_writev,
 * open_by_handle_at (the CAP_DAC_READ_SEARCH escape), bind/listen, setuid
 * and friends, capset, mount, unshare/setns, bpf, perf_event_open,
 * userfaultfd, io_uring, keyctl, personality, ...
 *
 * A denied call does not kill the daemon (it may be holding a worker in a
 * ptrace-stop, and it must never crash): on x86-64 and aarch64 it traps
 * (SECCOMP_RET_TRAP) into a SIGSYS handler that makes the call fail with
 * EPERM, counts it and writes one line to stderr; the scan timer then logs
 * it through the normal log (sandbox_poll()) and dogslowctl status shows the
 * count.  Elsewhere the filter answers EPERM directly.  A call from another
 * ABI (i386 int 0x80, x32) kills the process: there is no sane way to go on.
 *
 * Sanitizer builds: LeakSanitizer stops the world at exit with a tracer
 * created by clone() without CLONE_THREAD that PTRACE_ATTACHes the threads;
 * and, for a non-dumpable daemon, PR_SET_DUMPABLE around it: those builds
 * allow that too.  Valgrind runs its own JIT (writable and
 * executable memory): run the daemon under valgrind with seccomp = no.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SIGSYS from a filter */
#endif

#if defined(__SANITIZE_ADDRESS__)
#define DS_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define DS_LSAN 1
#endif
#endif

#if defined(__x86_64__)
#define DS_AUDIT_ARCH AUDIT_ARCH_X86_64
#define DS_ARCH_NAME  "x86_64"
#define DS_TRAP       1
#elif defined(__aarch64__)
#define DS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define DS_ARCH_NAME  "aarch64"
#define DS_TRAP       1
#endif

#define PROG_MAX 1024

struct prog {
    struct sock_filter ins[PROG_MAX];
    unsigned n;
    bool overflow;
};

static void emit(struct prog *p, struct sock_filter f)
{
    if (p->n >= PROG_MAX) {
        p->overflow = true;
        return;
    }
    p->ins[p->n++] = f;
}

#define STMT(code, k)         ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
/* The two halves of a 64-bit argument, as the 32-bit loads see them. */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8u * (i) + 4u))
#define ARG_HI(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8u * (i)))
#else
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8u * (i)))
#define ARG_HI(i) (ARG_LO(i) + 4u)
#endif

#ifdef DS_TRAP
#define RET_DENY SECCOMP_RET_TRAP
#else
#define RET_DENY (SECCOMP_RET_ERRNO | EPERM)
#endif

/* The calls allowed whatever their arguments.  Each entry is guarded: a
 * name the architecture does not have is simply not there. */
#define SC(name) {__NR_##name, #name}
struct sc {
    int nr;
    const char *name;
};

static const struct sc allowed[] = {
    /* files and descriptors */
    SC(read), SC(write), SC(readv), SC(writev), SC(pread64), SC(pwrite64), SC(close),
    SC(lseek), SC(fstat), SC(newfstatat), SC(statx), SC(fstatfs), SC(statfs), SC(openat),
    SC(faccessat), SC(readlinkat), SC(getdents64), SC(getcwd), SC(mkdirat), SC(renameat),
    SC(unlinkat), SC(fchmod), SC(fchmodat), SC(fsync), SC(fdatasync), SC(ftruncate), SC(fcntl),
    SC(dup), SC(dup3), SC(pipe2), SC(flock), SC(utimensat), SC(fadvise64),
#ifdef __NR_getdents
    SC(getdents),
#endif
#ifdef __NR_faccessat2
    SC(faccessat2),
#endif
#ifdef __NR_renameat2
    SC(renameat2),
#endif
#ifdef __NR_close_range
    SC(close_range),
#endif
#ifdef __NR_open
    SC(open), SC(stat), SC(lstat), SC(access), SC(readlink), SC(mkdir), SC(rename), SC(unlink),
    SC(rmdir), SC(dup2), SC(pipe),
#endif
    /* memory (mmap and mprotect are checked below) */
    SC(munmap), SC(mremap), SC(madvise), SC(brk), SC(mincore),
#ifdef __NR_membarrier
    SC(membarrier),
#endif
    /* threads, time, identity */
#ifdef __NR_rseq
    SC(rseq),
#endif
    SC(set_robust_list), SC(set_tid_address), SC(futex), SC(sched_yield), SC(sched_getaffinity),
    SC(getrandom), SC(clock_gettime), SC(clock_getres), SC(clock_nanosleep), SC(nanosleep),
    SC(gettimeofday), SC(uname), SC(getpid), SC(gettid), SC(getppid), SC(getuid), SC(geteuid),
    SC(getgid), SC(getegid), SC(getgroups), SC(getresuid), SC(getresgid), SC(sysinfo),
    SC(umask), SC(exit), SC(exit_group), SC(rt_sigaction), SC(rt_sigprocmask),
    SC(rt_sigreturn), SC(sigaltstack), SC(restart_syscall), SC(capget),
#ifdef __NR_time
    SC(time),
#endif
    /* the event loop */
    SC(epoll_create1), SC(epoll_ctl), SC(epoll_pwait), SC(ppoll), SC(pselect6),
    SC(timerfd_create), SC(timerfd_settime), SC(timerfd_gettime), SC(eventfd2), SC(signalfd4),
#ifdef __NR_epoll_wait
    SC(epoll_wait), SC(poll), SC(select),
#endif
#ifdef __NR_epoll_pwait2
    SC(epoll_pwait2),
#endif
    /* sockets that exist (socket() and socketpair() are checked below) */
    SC(connect), SC(accept4), SC(sendto), SC(sendmsg), SC(sendmmsg), SC(recvfrom), SC(recvmsg),
    SC(shutdown), SC(getsockopt), SC(setsockopt), SC(getsockname), SC(getpeername),
#ifdef __NR_accept
    SC(accept),
#endif
    /* workers: read-only access (ptrace is checked below) */
    SC(process_vm_readv), SC(pidfd_open), SC(pidfd_getfd), SC(wait4), SC(waitid),
    SC(memfd_create),
};

/*
 * The analysis process and the spawner (sep.c, analysis/child.c): no
 * file is opened (open and openat answer EACCES, quietly: libdw probes for
 * files on its own, and the daemon hands over the ones that are allowed),
 * no socket made or connected, no ptrace, no process_vm_readv, no
 * pidfd, no exec.  What is left: computing on memory, and talking over the
 * descriptors it holds.  The spawner's filter adds fork (a clone without
 * CLONE_THREAD, CLONE_VM or a namespace), AF_UNIX socketpairs and
 * installing the analysis process's filter (seccomp, prctl).
 */
static const struct sc confined[] = {
    SC(read), SC(write), SC(readv), SC(writev), SC(pread64), SC(close), SC(lseek), SC(fstat),
    SC(fcntl), SC(dup), SC(munmap), SC(mremap), SC(madvise), SC(brk),
#ifdef __NR_rseq
    SC(rseq),
#endif
#ifdef __NR_poll
    SC(poll),
#endif
#ifdef __NR_alarm
    SC(alarm),
#endif
    SC(set_robust_list), SC(set_tid_address), SC(futex), SC(sched_yield), SC(getrandom),
    SC(clock_gettime), SC(clock_nanosleep), SC(nanosleep), SC(getpid), SC(gettid), SC(getppid),
    SC(exit), SC(exit_group), SC(rt_sigaction), SC(rt_sigprocmask), SC(rt_sigreturn),
    SC(sigaltstack), SC(restart_syscall), SC(ppoll), SC(setitimer), SC(sendto), SC(sendmsg),
    SC(recvfrom), SC(recvmsg), SC(sysinfo), /* qsort() asks for the memory size */
};

/* Names for the log line of a denied call: the allowed ones above, and the
 * ones worth recognising at a glance. */
static const struct sc named[] = {
    SC(execve), SC(execveat), SC(process_vm_writev), SC(open_by_handle_at),
    SC(name_to_handle_at), SC(bind), SC(listen), SC(setuid), SC(setgid), SC(setresuid),
    SC(setresgid), SC(setgroups), SC(capset), SC(mount), SC(umount2), SC(unshare), SC(setns),
    SC(bpf), SC(perf_event_open), SC(userfaultfd), SC(ptrace), SC(mmap), SC(mprotect),
    SC(socket), SC(socketpair), SC(clone), SC(prctl), SC(ioctl), SC(kill), SC(tgkill),
    SC(tkill), SC(prlimit64), SC(setrlimit), SC(personality), SC(keyctl), SC(add_key),
    SC(pidfd_send_signal), SC(fchown), SC(fchownat), SC(chroot), SC(pivot_root),
    SC(io_uring_setup), SC(sched_setaffinity), SC(setpriority), SC(setitimer),
    SC(sched_setscheduler),
#ifdef __NR_fork
    SC(fork), SC(vfork), SC(chown), SC(lchown), SC(alarm),
#endif
#ifdef __NR_clone3
    SC(clone3),
#endif
};

const char *sandbox_syscall_name(int nr)
{
    for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
        if (allowed[i].nr == nr)
            return allowed[i].name;
    for (size_t i = 0; i < ARRAY_SIZE(named); i++)
        if (named[i].nr == nr)
            return named[i].name;
    for (size_t i = 0; i < ARRAY_SIZE(confined); i++)
        if (confined[i].nr == nr)
            return confined[i].name;
    return "?";
}

/* ---- the program --------------------------------------------------------- */

/* "if nr == sc: <block>" where the block always returns: jump over it
 * otherwise.  The block is built in a scratch program and copied. */
static void emit_block(struct prog *p, int nr, const struct prog *block)
{
    if (block->n > 255) {
        p->overflow = true;
        return;
    }
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, (uint8_t)block->n));
    for (unsigned i = 0; i < block->n; i++)
        emit(p, block->ins[i]);
    p->overflow |= block->overflow;
}

/* Block: allow when the low 32 bits of argument arg are one of vals. */
static void block_arg_in(struct prog *b, unsigned arg, const uint32_t *vals, size_t n,
                         uint32_t otherwise)
{
    b->n = 0;
    b->overflow = false;
    emit(b, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg)));
    for (size_t i = 0; i < n; i++) {
        emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, vals[i], 0, 1));
        emit(b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
    emit(b, STMT(BPF_RET | BPF_K, otherwise));
}

/* Block: if_equal when (argument arg & mask) == value, else otherwise. */
static void block_mask(struct prog *b, unsigned arg, uint32_t mask, uint32_t value,
                       uint32_t if_equal, uint32_t otherwise)
{
    b->n = 0;
    b->overflow = false;
    emit(b, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg)));
    emit(b, STMT(BPF_ALU | BPF_AND | BPF_K, mask));
    emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 1));
    emit(b, STMT(BPF_RET | BPF_K, if_equal));
    emit(b, STMT(BPF_RET | BPF_K, otherwise));
}

/* Block: allow when argument arg is 0 (both halves: a pointer). */
static void block_null(struct prog *b, unsigned arg)
{
    b->n = 0;
    b->overflow = false;
    emit(b, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg)));
    emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
    emit(b, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(arg)));
    emit(b, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
    emit(b, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    emit(b, STMT(BPF_RET | BPF_K, RET_DENY));
}

/* A program's start: only this ABI (anything else -- i386 int 0x80, x32 --
 * is killed), then the calls allowed whatever their arguments. */
static void emit_head(struct prog *p, const struct sc *list, size_t n)
{
    p->n = 0;
    p->overflow = false;
    emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
#ifdef DS_AUDIT_ARCH
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, DS_AUDIT_ARCH, 1, 0));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
    emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#ifdef __x86_64__
    emit(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u /* __X32_SYSCALL_BIT */, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
    for (size_t i = 0; i < n; i++) {
        emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)list[i].nr, 0, 1));
        emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
}

static void build(struct prog *p, pid_t self)
{
    static struct prog b; /* scratch: too big for the stack */
    static const uint32_t ptrace_ok[] = {
        PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_GETREGS, PTRACE_DETACH,
#ifdef DS_LSAN
        PTRACE_ATTACH, PTRACE_GETREGSET, PTRACE_CONT, PTRACE_PEEKUSER,
#endif
    };
    static const uint32_t families[] = {AF_UNIX, AF_INET, AF_INET6};
    static const uint32_t prctl_ok[] = {
        PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_CAPBSET_READ, PR_GET_NO_NEW_PRIVS,
        PR_GET_SECCOMP, PR_GET_KEEPCAPS, PR_GET_SECUREBITS,
#ifdef DS_LSAN
        PR_SET_PTRACER, PR_SET_PDEATHSIG, PR_SET_DUMPABLE,
#endif
    };
    static const uint32_t ioctl_ok[] = {FIONREAD, FIONBIO, TCGETS, TIOCGWINSZ};
    uint32_t me = (uint32_t)self;

    emit_head(p, allowed, ARRAY_SIZE(allowed));

    block_arg_in(&b, 0, ptrace_ok, ARRAY_SIZE(ptrace_ok), RET_DENY);
    emit_block(p, __NR_ptrace, &b);
    block_mask(&b, 2, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC, RET_DENY, SECCOMP_RET_ALLOW);
    emit_block(p, __NR_mmap, &b);
    block_mask(&b, 2, PROT_EXEC, PROT_EXEC, RET_DENY, SECCOMP_RET_ALLOW);
    emit_block(p, __NR_mprotect, &b);
#ifdef __NR_pkey_mprotect
    emit_block(p, __NR_pkey_mprotect, &b);
#endif
    block_arg_in(&b, 0, families, ARRAY_SIZE(families), SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    emit_block(p, __NR_socket, &b);
    block_arg_in(&b, 0, families, 1, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    emit_block(p, __NR_socketpair, &b);
#ifndef DS_LSAN
    /* No CLONE_THREAD: a new process. */
    block_mask(&b, 0, CLONE_THREAD, 0, RET_DENY, SECCOMP_RET_ALLOW);
    emit_block(p, __NR_clone, &b);
#else
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
#endif
#ifdef __NR_clone3
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
#endif
    {
        const uint32_t minus_one = 0xffffffffu; /* (uid_t)-1: keep the owner */
        block_arg_in(&b, 1, &minus_one, 1, RET_DENY);
        emit_block(p, __NR_fchown, &b);
#ifdef __NR_chown
        emit_block(p, __NR_chown, &b);
        emit_block(p, __NR_lchown, &b);
#endif
        block_arg_in(&b, 2, &minus_one, 1, RET_DENY);
        emit_block(p, __NR_fchownat, &b);
    }
    block_arg_in(&b, 0, &me, 1, RET_DENY);
    emit_block(p, __NR_kill, &b);
    emit_block(p, __NR_tgkill, &b);
    block_arg_in(&b, 0, prctl_ok, ARRAY_SIZE(prctl_ok), RET_DENY);
    emit_block(p, __NR_prctl, &b);
    block_arg_in(&b, 1, ioctl_ok, ARRAY_SIZE(ioctl_ok), RET_DENY);
    emit_block(p, __NR_ioctl, &b);
    block_null(&b, 2);
    emit_block(p, __NR_prlimit64, &b);
    {
        /* The loop thread's own policy only (snapshot.c, hold_priority()). */
        const uint32_t self_thread = 0;
        block_arg_in(&b, 0, &self_thread, 1, RET_DENY);
        emit_block(p, __NR_sched_setscheduler, &b);
    }

    emit(p, STMT(BPF_RET | BPF_K, RET_DENY));
}

static void build_confined(struct prog *p, pid_t self, bool spawner)
{
    static struct prog b;
    uint32_t me = (uint32_t)self;
    static const uint32_t prctl_ok[] = {PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG,
                                        PR_SET_NO_NEW_PRIVS, PR_GET_DUMPABLE};

    emit_head(p, confined, ARRAY_SIZE(confined));
    /* Quietly refused: libdw looks for files by itself, and resolves paths
     * (realpath: "not a link" leaves a path as it is). */
#ifdef __NR_readlink
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_readlink, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL));
#endif
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_readlinkat, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL));
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES));
#ifdef __NR_open
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES));
#endif
    /* fstat() of a descriptor it holds, not stat() of a path. */
    block_mask(&b, 0, ~0u, (uint32_t)AT_FDCWD, RET_DENY, SECCOMP_RET_ALLOW);
    emit_block(p, __NR_newfstatat, &b);
    block_mask(&b, 2, PROT_EXEC, PROT_EXEC, RET_DENY, SECCOMP_RET_ALLOW);
    emit_block(p, __NR_mmap, &b);
    emit_block(p, __NR_mprotect, &b);
    block_arg_in(&b, 0, &me, 1, RET_DENY);
    emit_block(p, __NR_kill, &b);
    emit_block(p, __NR_tgkill, &b);
    block_arg_in(&b, 0, prctl_ok, spawner ? ARRAY_SIZE(prctl_ok) : 2, RET_DENY);
    emit_block(p, __NR_prctl, &b);
    if (spawner) {
        static const uint32_t unix_only = AF_UNIX;
        /* fork: a new process sharing nothing, in the same namespaces */
        block_mask(&b, 0,
                   CLONE_THREAD | CLONE_VM | CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID |
                       CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP,
                   0, SECCOMP_RET_ALLOW, RET_DENY);
        emit_block(p, __NR_clone, &b);
        block_arg_in(&b, 0, &unix_only, 1, RET_DENY);
        emit_block(p, __NR_socketpair, &b);
        emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_seccomp, 0, 1));
        emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
#ifdef __NR_clone3
    emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
    emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
#endif
    emit(p, STMT(BPF_RET | BPF_K, RET_DENY));
}

/* ---- what a denied call turns into --------------------------------------- */

static const char *denied_who = "dogslowd"; /* the process, in the line */
static volatile sig_atomic_t denied_count;
static volatile sig_atomic_t denied_last = -1;
static uint64_t denied_logged;

#ifdef DS_TRAP
static void put_str(char *buf, size_t *n, size_t size, const char *s)
{
    while (*s && *n + 1 < size)
        buf[(*n)++] = *s++;
}

static void put_uint(char *buf, size_t *n, size_t size, unsigned long v)
{
    char tmp[24];
    int k = 0;

    do
        tmp[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < (int)sizeof(tmp));
    while (k > 0 && *n + 1 < size)
        buf[(*n)++] = tmp[--k];
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    int saved = errno;
    char line[160];
    size_t n = 0;

    (void)sig;
    if (si->si_code != SYS_SECCOMP)
        return;
    /* The call's result: -EPERM, as if the kernel had refused it. */
#if defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
    uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
    denied_last = si->si_syscall;
    if (denied_count < 1000000)
        denied_count = denied_count + 1;
    if (denied_count <= 20) {
        put_str(line, &n, sizeof(line), denied_who);
        put_str(line, &n, sizeof(line), ": seccomp: denied system call ");
        put_str(line, &n, sizeof(line), sandbox_syscall_name(si->si_syscall));
        put_str(line, &n, sizeof(line), " (");
        put_uint(line, &n, sizeof(line), (unsigned long)si->si_syscall);
        put_str(line, &n, sizeof(line), ", " DS_ARCH_NAME "): it failed with EPERM\n");
        (void)!write(STDERR_FILENO, line, n);
    }
    errno = saved;
}
#endif

/* ---- the interface ------------------------------------------------------- */

int sandbox_build(struct sock_fprog *ret)
{
    static struct prog p;

    build(&p, getpid());
    if (p.overflow)
        return -E2BIG;
    ret->len = (unsigned short)p.n;
    ret->filter = p.ins;
    return 0;
}

/* Trap denials (SIGSYS: EPERM, counted, a line on stderr), set
 * no_new_privs (needed without CAP_SYS_ADMIN; none of these processes runs
 * a program) and install the filter: on every thread with tsync. */
static int install(const struct sock_fprog *fprog, bool tsync)
{
#ifdef DS_TRAP
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return -errno;
#endif
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0,
                fprog) != 0)
        return errno ? -errno : -ESRCH;
    return 0;
}

int sandbox_enter(void)
{
    struct sock_fprog fprog;
    int r = sandbox_build(&fprog);

    /* Every thread, including the delivery thread if it exists. */
    return r < 0 ? r : install(&fprog, true);
}

int sandbox_build_confined(bool spawner, struct sock_fprog *ret)
{
    static struct prog p;

    build_confined(&p, getpid(), spawner);
    if (p.overflow)
        return -E2BIG;
    ret->len = (unsigned short)p.n;
    ret->filter = p.ins;
    return 0;
}

/* A process of its own, one thread: its denials are its own, and its line
 * says which process (the analysis one shares the daemon's stderr). */
static int enter_confined(bool spawner)
{
    struct sock_fprog fprog;
    int r = sandbox_build_confined(spawner, &fprog);

    denied_who = spawner ? "dogslowd (spawner)" : "dogslowd (analysis)";
    denied_count = 0;
    return r < 0 ? r : install(&fprog, false);
}

int sandbox_enter_spawner(void)
{
    return enter_confined(true);
}

int sandbox_enter_analysis(void)
{
    return enter_confined(false);
}

unsigned long sandbox_denied(int *last)
{
    if (last)
        *last = denied_last;
    return (unsigned long)denied_count;
}

void sandbox_poll(void)
{
    int last;
    unsigned long n = sandbox_denied(&last);

    if (n == denied_logged)
        return;
    log_warnx("seccomp: %lu system call%s denied so far (the last: %s, number %d); "
              "a feature that needs it is broken: please report it, and set seccomp = no "
              "to run without the filter meanwhile",
              n, n == 1 ? "" : "s", sandbox_syscall_name(last), last);
    denied_logged = n;
}
