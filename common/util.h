/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the daemon, the client library and the tools. */
#ifndef DOGSLOW_UTIL_H
#define DOGSLOW_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_SEC  1000000000ull
#define NSEC_PER_MSEC 1000000ull
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline uint64_t dsl_now_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Closes *fd if it is open; for __attribute__((cleanup)). */
static inline void dsl_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_close_ __attribute__((cleanup(dsl_closep)))

/* Hand an fd over to a new owner: the cleanup no longer closes it. */
static inline int dsl_take_fd(int *fd)
{
    int r = *fd;
    *fd = -1;
    return r;
}

/*
 * Parse a duration in seconds with optional fraction ("25", "0.5", "2.25")
 * into milliseconds, rejecting signs, junk, more than 3 decimals and
 * overflow.  Returns 0 or -EINVAL / -ERANGE.
 */
int dsl_parse_seconds_ms(const char *s, uint32_t *ret_ms);

/*
 * A numeric field of /proc/PID/status (or /proc/PID/task/TID/status when
 * tid > 0), e.g. "PPid", "Tgid", "TracerPid".  (status, not stat: stat
 * sums the CPU time of every thread, which is slow for a process with
 * thousands.)  Returns 0 and the value, or a negative errno (-ENOENT when
 * the field is missing).
 */
int dsl_proc_status_field(pid_t pid, pid_t tid, const char *key, long *ret);

/* From /proc/PID/stat: field 22, when the process started (in clock ticks;
 * with the pid it names one process for good), and field 3, its state
 * ('Z': exited, not yet reaped).  Either pointer may be NULL.  0 or -errno. */
int dsl_proc_stat(pid_t pid, uint64_t *starttime, char *state);

/* One line of /proc/PID/maps ("start-end perms offset major:minor inode
 * path"), without its newline, when it maps a file: false for anonymous
 * and special mappings ([heap], [vdso]) and for anything malformed. */
struct dsl_mapping {
    uint64_t start, end, offset, inode;
    unsigned major, minor;
    char path[PATH_MAX];
};
bool dsl_maps_line(const char *line, size_t len, struct dsl_mapping *ret);

/* One read() of a small file (the /proc files: they hand over their whole
 * text in one read) into buf, NUL-terminated.  Returns the length, -errno
 * when it cannot be opened, -EIO when it reads nothing. */
ssize_t dsl_read_text(const char *path, char *buf, size_t size);
/* The same, and the file's fstat() (its owner: a /proc file's follows the
 * process's dumpability) in *ret_st. */
struct stat;
ssize_t dsl_read_text_stat(const char *path, char *buf, size_t size, struct stat *ret_st);

/* Write all n bytes (retrying on EINTR and short writes): 0 or -errno. */
int dsl_write_all(int fd, const void *p, size_t n);

/* mkdir -p: the missing parents with parent_mode, the last one with mode.
 * Existing directories are fine.  0, -ENAMETOOLONG or -errno. */
int dsl_mkdir_p(const char *path, mode_t parent_mode, mode_t mode);

/* Copy a string into a fixed buffer, always NUL-terminated; returns the
 * length copied.  (No strcpy/strncpy anywhere in the code base.) */
size_t dsl_strlcpy(char *dst, const char *src, size_t size);

/*
 * Where the daemon listens when neither the command line nor
 * $DOGSLOW_SOCKET says: /run/dogslow/dogslow.sock for root,
 * $XDG_RUNTIME_DIR/dogslow/dogslow.sock (or /tmp/dogslow-UID/dogslow.sock)
 * for other users.  idx 0 is the system path, 1 the per-user one.
 * Returns 0, or -ENAMETOOLONG.
 */
int dsl_socket_path_candidate(int idx, char *buf, size_t size);

/* Length (1-4) of the valid UTF-8 sequence at s, of which n bytes may be
 * read, or 0 when there is none: overlong forms, surrogates and code points
 * past U+10FFFF are not UTF-8. */
size_t dsl_utf8_len(const unsigned char *s, size_t n);

/* Control characters (C0 and DEL) in p become '?': text a worker controls
 * (a name from its DWARF) stays one line of a report or the log. */
void dsl_unctrl(char *p);

#endif
