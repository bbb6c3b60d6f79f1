/* SPDX-License-Identifier: MIT */
/*
 * Least privilege.  The daemon needs exactly two capabilities to watch
 * other users' workers, and nothing else once its socket listens:
 *
 *   CAP_SYS_PTRACE       stop one thread of another user's process, read its
 *                        registers and memory (ptrace, process_vm_readv),
 *                        fetch its scoreboard after a restart (pidfd_getfd).
 *   CAP_DAC_READ_SEARCH  read /proc/PID/task/TID/syscall and list
 *                        /proc/PID/fd: both are checked against the file
 *                        mode (0400/0500, owned by the worker's user), not
 *                        by the ptrace rules, so CAP_SYS_PTRACE alone does
 *                        not open them (tried with setpriv: EACCES).  The
 *                        first lets a thread blocked in epoll_wait be read
 *                        without stopping it (no EINTR in the worker), the
 *                        second finds the scoreboards of workers a restarted
 *                        daemon takes over.  It also opens worker binaries
 *                        that are not world-readable.
 *
 * Started as root (by hand), the daemon switches to the configured user
 * (default: "dogslow" when that user exists) with PR_SET_KEEPCAPS, drops
 * every other capability from its effective, permitted and bounding sets,
 * clears the inheritable and ambient sets (it runs no programs), and makes
 * itself non-dumpable: it holds copies of other users' memory, so other
 * processes of its own user must not be able to ptrace it.
 *
 * Started as another user (the service: User=dogslow with ambient
 * capabilities; or anyone by hand), it keeps whichever of the two it has
 * and drops the rest.  Without CAP_SYS_PTRACE it serves its own user's
 * workers only (registry.c asks privs_can_trace_any()).
 *
 * No libcap: capget/capset with the version 3 structures are two calls.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

#define DEFAULT_USER "dogslow"

/* The capabilities kept, as a mask; each is argued above. */
/* What the daemon keeps: CAP_SYS_PTRACE, and CAP_DAC_READ_SEARCH unless
 * dac_read_search = false. */
static uint64_t keep_caps;

static void set_keep_caps(const struct config *c)
{
    keep_caps = 1ull << CAP_SYS_PTRACE;
    if (c->dac_read_search)
        keep_caps |= 1ull << CAP_DAC_READ_SEARCH;
}

static bool trace_any;

bool privs_can_trace_any(void)
{
    return trace_any;
}

static int caps_get(uint64_t *ret_eff, uint64_t *ret_prm)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];

    memset(c, 0, sizeof(c));
    if (syscall(SYS_capget, &h, c) < 0)
        return -errno;
    *ret_eff = c[0].effective | (uint64_t)c[1].effective << 32;
    *ret_prm = c[0].permitted | (uint64_t)c[1].permitted << 32;
    return 0;
}

/* Effective = permitted = mask, inheritable empty. */
static int caps_set(uint64_t mask)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];

    memset(c, 0, sizeof(c));
    c[0].effective = c[0].permitted = (uint32_t)mask;
    c[1].effective = c[1].permitted = (uint32_t)(mask >> 32);
    return syscall(SYS_capset, &h, c) < 0 ? -errno : 0;
}

/* Drop every capability but keep_caps from the bounding set (needs
 * CAP_SETPCAP, i.e. root): nothing exec'd later could regain them. */
static int bounding_drop(void)
{
    for (int cap = 0; cap < 64; cap++) {
        if (keep_caps & (1ull << cap))
            continue;
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break; /* past the kernel's last capability */
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return -errno;
    }
    return 0;
}

/* Find the user to switch to: 0 and the ids, 1 to stay root. */
static int target_user(const struct config *c, uid_t *ret_uid, gid_t *ret_gid, char *name,
                       size_t size, bool quiet)
{
    char buf[16384];
    struct passwd pw, *res = NULL;
    const char *want = c->user[0] ? c->user : DEFAULT_USER;
    char *end;
    unsigned long x;

    errno = 0;
    x = strtoul(want, &end, 10);
    if (!*end && end != want && errno == 0) {
        /* A uid without a passwd entry: its gid must be given. */
        if (getpwuid_r((uid_t)x, &pw, buf, sizeof(buf), &res) != 0)
            res = NULL;
        *ret_uid = (uid_t)x;
        *ret_gid = res ? res->pw_gid : (gid_t)x;
    } else {
        if (getpwnam_r(want, &pw, buf, sizeof(buf), &res) != 0 || !res) {
            if (c->user[0])
                return -ENOENT; /* the config check saw it; it went away since */
            if (!quiet)
                log_warnx("running as root: there is no user '%s' to switch to (create it "
                          "with systemd-sysusers, or set user= in the configuration)",
                          DEFAULT_USER);
            return 1;
        }
        *ret_uid = res->pw_uid;
        *ret_gid = res->pw_gid;
    }
    dsl_strlcpy(name, res ? res->pw_name : want, size);
    if (*ret_uid == 0) {
        if (!quiet)
            log_info("running as root (user = %s)", want);
        return 1;
    }
    if (c->group[0]) {
        struct group gr, *gres = NULL;
        if (getgrnam_r(c->group, &gr, buf, sizeof(buf), &gres) == 0 && gres) {
            *ret_gid = gres->gr_gid;
        } else {
            errno = 0;
            x = strtoul(c->group, &end, 10);
            if (*end || end == c->group || errno)
                return -ENOENT;
            *ret_gid = (gid_t)x;
        }
    }
    return 0;
}

uid_t privs_target_uid(const struct config *c)
{
    uid_t uid;
    gid_t gid;
    char name[64];

    if (geteuid() != 0)
        return geteuid();
    return target_user(c, &uid, &gid, name, sizeof(name), true) == 0 ? uid : 0;
}

/* Keep what we have of keep_caps, drop everything else. */
static int keep_only(void)
{
    uint64_t eff, prm;
    int r = caps_get(&eff, &prm);

    if (r < 0)
        return r;
    /* Only when there is something to drop: the service starts with
     * exactly these two, and its seccomp filter denies capset. */
    if (((eff | prm) & ~keep_caps) != 0) {
        r = caps_set(prm & keep_caps);
        if (r < 0) {
            log_msg(LOG_LVL_ERR, false,
                    "cannot drop capabilities beyond %#llx: %s (under systemd, give the unit "
                    "only what it should keep: CapabilityBoundingSet=, AmbientCapabilities=)",
                    (unsigned long long)keep_caps, strerror(-r));
            return r;
        }
    }
    /* The ambient set may carry them too (the service's
     * AmbientCapabilities): the daemon runs no programs, so no child needs
     * them.  EINVAL: a kernel without ambient capabilities. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

/* Not a capability but a resource limit: RLIMIT_RTPRIO 1 lets the loop
 * thread run at the lowest real-time priority while it holds a worker's
 * thread (snapshot.c, hold_priority()).  Raised here while root; the
 * service has LimitRTPRIO=1. */
static void allow_rtprio(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_RTPRIO, &rl) < 0 || rl.rlim_cur >= 1)
        return;
    if (rl.rlim_max < 1) {
        if (geteuid() != 0)
            return;
        rl.rlim_max = 1;
    }
    rl.rlim_cur = 1;
    (void)setrlimit(RLIMIT_RTPRIO, &rl);
}

int privs_drop(struct daemon *d, const char *const *dirs)
{
    uid_t uid;
    gid_t gid;
    char name[64];
    uint64_t eff = 0, prm = 0;
    int r;

    set_keep_caps(&d->cfg);
    allow_rtprio();
    if (geteuid() != 0) {
        r = keep_only();
        if (r < 0)
            return r;
        (void)caps_get(&eff, &prm);
        trace_any = (eff & (1ull << CAP_SYS_PTRACE)) != 0;
        if (trace_any)
            (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        log_info("running as uid %u with%s CAP_SYS_PTRACE: %s", (unsigned)geteuid(),
                 trace_any ? "" : "out",
                 trace_any ? "any user's processes may register"
                           : "only this user's processes may register");
        return 0;
    }

    r = target_user(&d->cfg, &uid, &gid, name, sizeof(name), false);
    if (r < 0)
        return r;
    if (r > 0) {
        trace_any = true;
        return 0;
    }
    /* Directories this run created as root become the user's, so that it
     * can write reports and registrations and remove its socket.  Ones that
     * were there before are left alone (tmpfiles.d makes them). */
    for (size_t i = 0; dirs && dirs[i]; i++)
        if (dirs[i][0] && chown(dirs[i], uid, gid) < 0)
            log_warn("cannot hand %s to user %s", dirs[i], name);

    r = bounding_drop();
    if (r < 0)
        return r;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return -errno;
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        return -errno;
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return -errno;
    r = keep_only();
    if (r < 0)
        return r;
    /* Paranoia: a way back to root would make all of the above void. */
    if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0)
        fatalx("could regain root after switching to %s", name);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    r = caps_get(&eff, &prm);
    if (r < 0)
        return r;
    if (eff != keep_caps)
        log_warnx("capabilities after switching to %s: %#llx, expected %#llx", name,
                  (unsigned long long)eff, (unsigned long long)keep_caps);
    trace_any = (eff & (1ull << CAP_SYS_PTRACE)) != 0;
    log_notice("switched to user %s (uid %u, gid %u), keeping CAP_SYS_PTRACE%s only", name,
               (unsigned)uid, (unsigned)gid,
               d->cfg.dac_read_search ? " and CAP_DAC_READ_SEARCH" : "");
    return 0;
}
