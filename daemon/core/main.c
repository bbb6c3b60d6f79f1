/* SPDX-License-Identifier: MIT */
/*
 * dogslowd: start-up, the listening socket, and the event loop.
 *
 * One epoll loop serves everything: the listening socket, one connection
 * per registered process, each process's pidfd (readable when it exits), a
 * periodic timerfd that scans scoreboards, a timerfd armed at the nearest
 * request deadline, and a signalfd.
 *
 * Under systemd (with libsystemd): the listening socket may come from
 * socket activation (sd_listen_fds), READY=1 is sent once it listens and
 * privileges are dropped, STATUS= lines carry the counts (from the scan
 * timer, at most once a second), WATCHDOG=1 comes from a timerfd in the
 * same loop at half of WATCHDOG_USEC -- so a wedged loop stops sending it
 * and gets restarted --, and STOPPING=1 is sent on every way out (atexit,
 * which fatalx() takes too).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "analysis.h"
#include "capture.h"
#include "conf.h"
#include "core.h"
#include "output.h"
#include "util.h"

#ifndef DOGSLOW_CONFIG_FILE
#define DOGSLOW_CONFIG_FILE "/etc/dogslow/dogslow.conf"
#endif

/* Where the configuration comes from: kept for SIGHUP, which reads the same
 * file and applies the same command-line overrides again. */
static struct config_override overrides[64];
static int check_password_file(const char *path, char *why, size_t size);
static struct config_source source = {.ov = overrides, .check_password_file = check_password_file};
static char source_desc[PATH_MAX + 96];

/* The SMTP password file, read as the delivery thread reads it before each
 * mail (sink_email.c): the same rules, at load time. */
static int check_password_file(const char *path, char *why, size_t size)
{
    char pass[512];
    int r = email_read_password(path, pass, sizeof(pass), why, size);

    explicit_bzero(pass, sizeof(pass));
    return r;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: dogslowd [OPTIONS]\n"
            "Watch registered worker processes and report requests that run too long.\n\n"
            "  -c, --config FILE      read FILE (default %s; a missing default\n"
            "                         file means built-in defaults)\n"
            "  -f, --foreground       stay in the foreground (the daemon never forks; kept\n"
            "                         for compatibility)\n"
            "  -n                     check the configuration and exit 0 (good) or 1 (bad)\n"
            "      --set KEY=VALUE    set a configuration option (over the file)\n"
            "      --print-default-config\n"
            "                         print a documented configuration file with every\n"
            "                         option at its default\n"
            "  -s, --socket PATH      = --set socket=PATH ($DOGSLOW_SOCKET works too)\n"
            "  -o, --output DIR       = --set output=DIR\n"
            "  -t, --timer SECONDS    = --set timer=SECONDS\n"
            "      --timer-min, --timer-max, --max-workers: likewise\n"
            "      --stack-vars       = --set stack_vars=true\n"
            "      --follow HZ        = --set follow_hz=HZ\n"
            "      --follow-max-time SECONDS  = --set follow_max_time=SECONDS\n"
            "      --user USER, --group GROUP  = --set user=USER (started as root: switch\n"
            "                         to USER, keeping only CAP_SYS_PTRACE and\n"
            "                         CAP_DAC_READ_SEARCH; default dogslow if it exists)\n"
            "  -v, --verbose          log debug messages\n"
            "  -h, --help             show this help\n"
            "  -V, --version          show the version\n"
            "\nSIGHUP reloads the configuration; a bad one is refused and the old one stays.\n",
            DOGSLOW_CONFIG_FILE);
    config_help(f);
}

static int add_override(const char *name, const char *value, const char *origin)
{
    const struct opt_def *o = config_find(name);

    if (!o) {
        fprintf(stderr, "dogslowd: %s: unknown option '%s'\n", origin, name);
        return -1;
    }
    if (source.nov >= ARRAY_SIZE(overrides)) {
        fprintf(stderr, "dogslowd: too many options on the command line\n");
        return -1;
    }
    overrides[source.nov++] = (struct config_override){o, value, origin};
    return 0;
}

static int parse_args(int argc, char **argv, bool *ret_check)
{
    enum { OPT_SET = 256, OPT_PRINT_DEFAULT, OPT_TABLE };
    static const struct option fixed[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"set", required_argument, NULL, OPT_SET},
        {"print-default-config", no_argument, NULL, OPT_PRINT_DEFAULT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
    };
    /* The fixed options, then one per table option that has a cli name. */
    struct option opts[ARRAY_SIZE(fixed) + 64 + 1];
    size_t nopts = 0;
    const char *env = getenv("DOGSLOW_SOCKET");
    int o, idx;

    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        opts[nopts++] = fixed[i];
    for (size_t i = 0; i < config_noptions && nopts < ARRAY_SIZE(opts) - 1; i++)
        if (config_options[i].cli)
            opts[nopts++] = (struct option){config_options[i].cli,
                                            /* --stack-vars: a switch that sets true */
                                            config_options[i].type == OPT_BOOL
                                                ? no_argument
                                                : required_argument,
                                            NULL, OPT_TABLE};
    opts[nopts] = (struct option){0};

    source.path = DOGSLOW_CONFIG_FILE;
    if (env && *env && add_override("socket", env, "$DOGSLOW_SOCKET") < 0)
        return -1;
    while ((o = getopt_long(argc, argv, "c:fns:o:t:vhV", opts, &idx)) != -1) {
        switch (o) {
        case 'c':
            source.path = optarg;
            source.required = true;
            break;
        case 'f':
            break;
        case 'n':
            *ret_check = true;
            break;
        case 's':
            if (add_override("socket", optarg, "--socket") < 0)
                return -1;
            break;
        case 'o':
            if (add_override("output", optarg, "--output") < 0)
                return -1;
            break;
        case 't':
            if (add_override("timer", optarg, "--timer") < 0)
                return -1;
            break;
        case OPT_TABLE: {
            static char origins[64][48];
            char *origin = origins[source.nov % ARRAY_SIZE(origins)];

            snprintf(origin, sizeof(origins[0]), "--%s", opts[idx].name);
            if (add_override(config_find_cli(opts[idx].name)->name, optarg ? optarg : "true",
                             origin) < 0)
                return -1;
            break;
        }
        case OPT_SET: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "dogslowd: --set %s: expected KEY=VALUE\n", optarg);
                return -1;
            }
            *eq = '\0';
            if (add_override(optarg, eq + 1, "--set") < 0)
                return -1;
            break;
        }
        case OPT_PRINT_DEFAULT:
            config_template(stdout);
            exit(0);
        case 'v':
            log_max_level = LOG_LVL_DEBUG;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("dogslowd %s (libsystemd: %s)\n", PACKAGE_VERSION,
#ifdef HAVE_LIBSYSTEMD
                   "yes"
#else
                   "no"
#endif
            );
            exit(0);
        default:
            fprintf(stderr, "Try 'dogslowd --help'.\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dogslowd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Load the configuration; errors to stderr (at start) or the log (reload). */
static int load_config(struct config *ret, bool reloading)
{
    char errors[8192];
    int r = config_load(&source, ret, errors, sizeof(errors));

    if (r == 0)
        return 0;
    for (const char *p = errors; *p;) {
        int n = (int)strcspn(p, "\n");

        if (reloading)
            log_warnx("reload refused: %.*s", n, p);
        else
            fprintf(stderr, "dogslowd: %.*s\n", n, p);
        p += n;
        if (*p)
            p++;
    }
    return r;
}

/* Create the socket's directory if needed; refuse one that someone else
 * could have planted (not root's, ours or the user's we switch to -- which
 * tmpfiles.d makes it --, or writable by others). */
static int prepare_socket_dir(const struct config *c)
{
    const char *sock = c->socket_path;
    char dir[PATH_MAX];
    struct stat st;
    char *slash;

    dsl_strlcpy(dir, sock, sizeof(dir));
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST) {
        /* The parent may be missing too (e.g. a fresh XDG_RUNTIME_DIR). */
        return -errno;
    }
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != privs_target_uid(c))
        return -EPERM;
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        return -EPERM;
    return 0;
}

/*
 * The socket systemd passed (dogslowd.socket), if any: used when it is a
 * listening AF_UNIX stream socket, otherwise left alone with a warning and
 * the daemon makes its own.  Returns the fd, or -1.
 */
static int activated_socket(const struct config *c)
{
#ifdef HAVE_LIBSYSTEMD
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START, fl;

    if (n <= 0)
        return -1;
    if (n > 1)
        log_warnx("systemd passed %d sockets; using the first one only", n);
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
        log_warnx("the socket systemd passed is not a listening Unix stream socket; ignoring it");
        return -1;
    }
    /* systemd makes it blocking and inheritable: the loop needs neither. */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        log_warn("cannot set up the socket systemd passed");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
        len > offsetof(struct sockaddr_un, sun_path) &&
        strncmp(sa.sun_path, c->socket_path, sizeof(sa.sun_path)) != 0)
        log_warnx("systemd passed a socket on %.*s, but socket = %s: workers must use the "
                  "former",
                  (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path,
                  c->socket_path);
    return fd;
#else
    (void)c;
    return -1;
#endif
}

static int listen_socket(const struct config *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_close_ int fd = -1;
    int r;

    r = prepare_socket_dir(c);
    if (r < 0) {
        errno = -r;
        log_warn("cannot use the directory of %s", c->socket_path);
        return r;
    }
    dsl_strlcpy(sa.sun_path, c->socket_path, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EADDRINUSE)
            return -errno;
        /* A socket file is there.  If a daemon answers on it, we are the
         * second one; if not, it is left over from a crash. */
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            log_warnx("another dogslowd is already listening on %s", c->socket_path);
            return -EADDRINUSE;
        }
        if (unlink(c->socket_path) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            return -errno;
    }
    /* By default any local user may register (a process can only get
     * itself traced); dogslowctl is checked per connection (control.c).
     * The group is who may use dogslowctl. */
    if (c->socket_gid != (gid_t)-1 && chown(c->socket_path, (uid_t)-1, c->socket_gid) < 0)
        return -errno;
    if (chmod(c->socket_path, (mode_t)c->socket_mode) < 0)
        return -errno;
    if (listen(fd, 128) < 0)
        return -errno;
    return dsl_take_fd(&fd);
}

static int add_ev(struct daemon *d, int fd, struct ev *ev, enum ev_kind kind)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = ev};

    ev->kind = kind;
    ev->owner = d;
    return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static int set_scan_interval(struct daemon *d)
{
    struct itimerspec its = {0};

    its.it_interval.tv_sec = d->cfg.scan_ms / 1000;
    its.it_interval.tv_nsec = (long)(d->cfg.scan_ms % 1000) * 1000000L;
    its.it_value = its.it_interval;
    return timerfd_settime(d->scan_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

/*
 * Descriptors: each connection waiting to register holds two (the socket
 * and the peer's pidfd), each registered process three (and its memfd).
 * systemd's default soft limit, 1024, would run out long before the caps
 * (a few hundred processes of one user): then accept() fails for every
 * user.  The soft limit is raised to the hard one here, before the seccomp
 * filter, which allows prlimit64 only to read.  Nothing in the daemon uses
 * select(), so descriptors above 1024 are fine.
 */
static void raise_nofile(const struct config *c)
{
    struct rlimit rl;
    uint64_t need = 2ull * c->max_connections + 3ull * c->max_workers + CTL_CONNS_MAX + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warnx("at most %llu descriptors (RLIMIT_NOFILE): max_connections = %u and "
                  "max_workers = %u may need %llu; beyond the limit no user can connect until "
                  "descriptors are free (raise LimitNOFILE=, or lower the caps)",
                  (unsigned long long)rl.rlim_cur, c->max_connections, c->max_workers,
                  (unsigned long long)need);
}

static int setup(struct daemon *d)
{
    sigset_t mask;

    d->pid = getpid();
    if (getrandom(&d->generation, sizeof(d->generation), 0) != sizeof(d->generation))
        d->generation = dsl_now_ns(CLOCK_REALTIME) ^ (uint64_t)d->pid;
    if (gethostname(d->hostname, sizeof(d->hostname) - 1) < 0)
        dsl_strlcpy(d->hostname, "localhost", sizeof(d->hostname));
    d->heap.max = 1u << 20;
    raise_nofile(&d->cfg);

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* A traced thread's stop is reported with SIGCHLD: a snapshot whose
     * thread did not stop at once is finished when it comes (watch.c). */
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->scan_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    d->deadline_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->signal_fd < 0 || d->epfd < 0 || d->scan_fd < 0 || d->deadline_fd < 0)
        return -errno;
    if (set_scan_interval(d) < 0)
        return -errno;

    d->listen_fd = activated_socket(&d->cfg);
    if (d->listen_fd >= 0)
        d->socket_activated = true;
    else
        d->listen_fd = listen_socket(&d->cfg);
    if (d->listen_fd < 0)
        return d->listen_fd;
    if (add_ev(d, d->listen_fd, &d->listen_ev, EV_LISTEN) < 0 ||
        add_ev(d, d->scan_fd, &d->scan_ev, EV_SCAN) < 0 ||
        add_ev(d, d->deadline_fd, &d->deadline_ev, EV_DEADLINE) < 0 ||
        add_ev(d, d->signal_fd, &d->signal_ev, EV_SIGNAL) < 0)
        return -errno;
    return 0;
}

/* ---- systemd ------------------------------------------------------------ */

static void notify(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, msg);
#else
    (void)msg;
#endif
}

static bool stopping_sent;

static void notify_stopping(void)
{
    if (!stopping_sent) {
        stopping_sent = true;
        notify("STOPPING=1");
    }
}

/* WATCHDOG=1 at half the interval systemd asked for, from a timerfd in
 * the loop. */
static int setup_watchdog(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
    struct itimerspec its = {0};
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    usec /= 2;
    if (usec < 1000)
        usec = 1000;
    d->watchdog_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->watchdog_fd < 0)
        return -errno;
    its.it_interval.tv_sec = (time_t)(usec / 1000000);
    its.it_interval.tv_nsec = (long)(usec % 1000000) * 1000L;
    its.it_value = its.it_interval;
    if (timerfd_settime(d->watchdog_fd, 0, &its, NULL) < 0)
        return -errno;
    log_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)(usec / 1000));
    return add_ev(d, d->watchdog_fd, &d->watchdog_ev, EV_WATCHDOG);
#else
    (void)d;
    return 0;
#endif
}

static void status_text(struct daemon *d, char *buf, size_t size)
{
    unsigned inflight = 0;

    for (struct worker *w = d->workers; w; w = w->next) {
        uint32_t hwm;

        if (!w->registered || w->dead || !w->sb)
            continue;
        hwm = __atomic_load_n(&w->sb->hwm, __ATOMIC_ACQUIRE);
        if (hwm > w->nslots)
            hwm = w->nslots;
        /* An odd sequence number is a request in flight; no need to copy
         * the slot (this runs every second over every slot). */
        for (uint32_t i = 0; i < hwm; i++)
            if (__atomic_load_n(&dsl_sb_slot(w->sb, i)->seq, __ATOMIC_RELAXED) & 1u)
                inflight++;
    }
    snprintf(buf, size, "%u processes registered, %u requests in flight, %llu reports written",
             d->nworkers, inflight, (unsigned long long)d->reports_written);
}

/* STATUS= from the scan timer: at most once a second, and only when it
 * changed (systemctl status shows the last one). */
static void update_status(struct daemon *d, uint64_t now, bool force)
{
    char text[sizeof(d->status)], msg[sizeof(d->status) + 16];

    if (!force && now - d->status_sent_ns < NSEC_PER_SEC)
        return;
    status_text(d, text, sizeof(text));
    if (!force && !strcmp(text, d->status))
        return;
    dsl_strlcpy(d->status, text, sizeof(d->status));
    d->status_sent_ns = now;
    snprintf(msg, sizeof(msg), "STATUS=%s", text);
    notify(msg);
}

/* Directories start-up makes as root, noted before so that privs_drop()
 * hands only those to the daemon's user. */
struct made_dirs {
    char path[3][PATH_MAX];
    bool existed[3];
};

static void note_dirs(const struct daemon *d, struct made_dirs *m)
{
    const char *slash = strrchr(d->cfg.socket_path, '/');

    memset(m, 0, sizeof(*m));
    if (slash && slash != d->cfg.socket_path)
        snprintf(m->path[0], sizeof(m->path[0]), "%.*s", (int)(slash - d->cfg.socket_path),
                 d->cfg.socket_path);
    dsl_strlcpy(m->path[1], d->cfg.state_dir, sizeof(m->path[1]));
    if (d->cfg.log_to_file)
        dsl_strlcpy(m->path[2], d->cfg.output_dir, sizeof(m->path[2]));
    for (int i = 0; i < 3; i++)
        m->existed[i] = !m->path[i][0] || access(m->path[i], F_OK) == 0;
}

static int drop_privileges(struct daemon *d, struct made_dirs *m)
{
    const char *made[4];
    int n = 0;

    /* The registrations' directory is made here (not by the registry,
     * after the switch) so that it can be handed over too. */
    if (geteuid() == 0 && d->cfg.state_dir[0] && mkdir(d->cfg.state_dir, 0700) < 0 &&
        errno != EEXIST)
        log_warn("cannot create %s", d->cfg.state_dir);
    for (int i = 0; i < 3; i++)
        if (!m->existed[i] && access(m->path[i], F_OK) == 0)
            made[n++] = m->path[i];
    made[n] = NULL;
    return privs_drop(d, made);
}

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) > 0)
        ;
}

/*
 * SIGHUP: read the file again.  A bad file is refused whole and the running
 * configuration stays; a good one replaces it, except for options that
 * need a restart (the socket), which keep their old values and are named
 * in the log.  Registrations, deadlines already armed and reports in
 * progress are untouched: a new timer applies to requests that begin
 * after the reload.
 */
static void reload_config(struct daemon *d)
{
    static struct config nc;
    char restart[1024];
    uint32_t old_scan = d->cfg.scan_ms;

    if (load_config(&nc, true) < 0) {
        log_warnx("reload refused: %s has errors; the running configuration stays in force",
                  source.path ? source.path : "the configuration");
        return;
    }
    if (config_keep_restart_only(&nc, &d->cfg, restart, sizeof(restart)))
        log_warnx("reload: changed, but needs a restart to take effect: %s", restart);
    d->cfg = nc;
    for (struct worker *w = d->workers; w; w = w->next) {
        uint32_t t = w->timer_asked_ms ? w->timer_asked_ms : d->cfg.timer_ms;

        if (!w->registered || w->dead)
            continue;
        if (t < d->cfg.timer_min_ms)
            t = d->cfg.timer_min_ms;
        if (t > d->cfg.timer_max_ms)
            t = d->cfg.timer_max_ms;
        w->timer_ns = (uint64_t)t * NSEC_PER_MSEC;
    }
    if (d->cfg.scan_ms != old_scan && set_scan_interval(d) < 0)
        log_warn("cannot change the scan interval");
    outputs_reconfigure(d);
    watch_reconfigured();
    log_notice("configuration reloaded from %s; timer %u.%03u s", source_desc,
               d->cfg.timer_ms / 1000, d->cfg.timer_ms % 1000);
}

static void reload(struct daemon *d)
{
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, "RELOADING=1");
#endif
    reload_config(d);
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, "READY=1");
#endif
    update_status(d, dsl_now_ns(CLOCK_MONOTONIC), true);
}

static void handle_signal(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            reload(d);
            continue;
        }
        if (si.ssi_signo == SIGCHLD) {
            watch_stops(d, dsl_now_ns(CLOCK_MONOTONIC));
            continue;
        }
        log_notice("received %s, stopping", strsignal((int)si.ssi_signo));
        d->quit = true;
    }
}

static void loop(struct daemon *d)
{
    struct epoll_event evs[64];

    while (!d->quit) {
        int n = epoll_wait(d->epfd, evs, ARRAY_SIZE(evs), -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatalx("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct ev *ev = evs[i].data.ptr;
            struct worker *w = ev->owner;

            switch (ev->kind) {
            case EV_LISTEN:
                registry_accept_backlog(d);
                break;
            case EV_CONN:
                if (!w->dead)
                    registry_conn_event(d, w, evs[i].events);
                break;
            case EV_PIDFD:
                if (!w->dead)
                    registry_pidfd_event(d, w);
                break;
            case EV_SCAN: {
                uint64_t now = dsl_now_ns(CLOCK_MONOTONIC);
                drain(d->scan_fd);
                watch_scan(d, now);
                registry_expire_hellos(d, now);
                registry_resume_accept(d);
                ratelimit_flush(now);
                control_expire(d, now);
                watch_stops(d, now);
                update_status(d, now, false);
                sandbox_poll();
                sep_sweep(d);
                break;
            }
            case EV_WATCHDOG:
                drain(d->watchdog_fd);
                notify("WATCHDOG=1");
                break;
            case EV_CTL:
                control_event(d, ev->owner, evs[i].events);
                break;
            case EV_DEADLINE:
                drain(d->deadline_fd);
                d->armed_ns = 0;
                watch_fire(d, dsl_now_ns(CLOCK_MONOTONIC));
                break;
            case EV_SIGNAL:
                handle_signal(d);
                break;
            case EV_REPORTS:
                watch_reports(d);
                break;
            }
        }
        registry_bury(d);
    }
}

/* The registry's events (core.h, struct registry_events), handed on. */
static void on_registered(struct daemon *d)
{
    watch_scan(d, dsl_now_ns(CLOCK_MONOTONIC));
}

static void on_leaving(struct daemon *d, struct worker *w)
{
    follow_worker_gone(d, w);
}

static void on_removed(struct daemon *d, struct worker *w)
{
    snapshot_release_worker(w);
    /* A snapshot still being named uses the Dwfl session: the last one
     * releases it (watch.c). */
    if (!w->busy)
        symbolize_release_worker(w);
    sep_forget(w); /* and the analysis process's */
    watch_rearm(d);
}

int main(int argc, char **argv)
{
    static struct daemon d;
    struct made_dirs dirs;
    bool check = false;
    int r;

    if (parse_args(argc, argv, &check) < 0)
        return 1;
    r = load_config(&d.cfg, false);
    if (r < 0) {
        fprintf(stderr, "dogslowd: %s: configuration refused\n",
                source.path ? source.path : "built-in defaults");
        return 1;
    }
    if (source.path && access(source.path, F_OK) == 0)
        snprintf(source_desc, sizeof(source_desc), "%s", source.path);
    else
        snprintf(source_desc, sizeof(source_desc),
                 "built-in defaults (%s not found; use --config FILE for another file)",
                 source.path);
    if (check) {
        printf("dogslowd: configuration OK (%s): socket %s, reports in %s, timer %u.%03u s\n",
               source_desc, d.cfg.socket_path, d.cfg.output_dir, d.cfg.timer_ms / 1000,
               d.cfg.timer_ms % 1000);
        return 0;
    }
    d.events = (struct registry_events){
        .registered = on_registered,
        .leaving = on_leaving,
        .removed = on_removed,
        .control = control_take,
    };
    d.listen_fd = d.epfd = d.scan_fd = d.deadline_fd = d.signal_fd = d.watchdog_fd = -1;
    atexit(notify_stopping);
    note_dirs(&d, &dirs);
    /* Before the socket listens: a worker that can connect finds the
     * report directory in place. */
    r = outputs_prepare_dir(&d.cfg);
    if (r < 0) {
        /* Not fatal: report_write() tries again, and says why, per report. */
        errno = -r;
        log_warn("cannot prepare the report directory %s", d.cfg.output_dir);
    }
    r = setup(&d);
    if (r < 0) {
        log_msg(LOG_LVL_ERR, false, "cannot start: %s (socket %s)", strerror(-r),
                d.cfg.socket_path);
        return 1;
    }
    control_init(&d, source_desc);
    r = drop_privileges(&d, &dirs);
    if (r < 0) {
        log_msg(LOG_LVL_ERR, false, "cannot drop privileges: %s", strerror(-r));
        return 1;
    }
    /* Checked when the file was loaded, but maybe as root: the mails are
     * sent by the user the daemon runs as now. */
    if (d.cfg.email.password_file[0]) {
        char why[PATH_MAX + 128];

        if (check_password_file(d.cfg.email.password_file, why, sizeof(why)) < 0)
            log_warnx("email.password_file: %s (the daemon runs as uid %u): e-mails wait in the "
                      "spool until it can read the file",
                      why, (unsigned)geteuid());
    }
    /* The loop sleeps a few microseconds at a time while it waits for a
     * thread to stop (snapshot.c, wait_stop()); the default timer slack
     * (50 us) would stretch each sleep, and the worker's pause with it.
     * Threads started from here on inherit it. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    take_init();
    snapshot_priority_probe();
    /* The analysis processes' spawner: forked now, while the daemon has one
     * thread and no filter yet (its filter forbids forking). */
    r = sep_start(&d.cfg);
    if (r < 0)
        log_warnx("cannot start the analysis process: %s; frames are named in the daemon "
                  "itself (privsep = false)",
                  strerror(-r));
    /* From here on the daemon reads what workers control: confine it first. */
    if (d.cfg.seccomp) {
        r = sandbox_enter();
        if (r < 0) {
            log_msg(LOG_LVL_ERR, false,
                    "cannot install the seccomp filter: %s (seccomp = no runs without it)",
                    strerror(-r));
            return 1;
        }
    }
    r = watch_init(&d);
    if (r < 0) {
        log_msg(LOG_LVL_ERR, false, "cannot set up the report queue: %s", strerror(-r));
        return 1;
    }
    r = setup_watchdog(&d);
    if (r < 0) {
        errno = -r;
        log_warn("cannot arm the systemd watchdog timer");
    }
    log_notice("dogslowd %s listening on %s%s; configuration %s; reports in %s; timer %u.%03u s",
               PACKAGE_VERSION, d.cfg.socket_path,
               d.socket_activated ? " (socket from systemd)" : "", source_desc, d.cfg.output_dir,
               d.cfg.timer_ms / 1000, d.cfg.timer_ms % 1000);
    registry_adopt_previous(&d);
    delivery_init(&d); /* e-mail and Sentry, after the privilege drop (output.h) */
    /* Ready: the socket listens, privileges are dropped, and the previous
     * daemon's workers are taken over. */
    status_text(&d, d.status, sizeof(d.status));
    {
        char msg[sizeof(d.status) + 32];
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", d.status);
        notify(msg);
    }
    d.status_sent_ns = dsl_now_ns(CLOCK_MONOTONIC);
    loop(&d);
    notify_stopping();
    control_close_all(&d);
    watch_drain(&d); /* snapshots taken are reported, even at exit */
    follow_stop_all(&d);
    while (d.workers)
        registry_remove(&d, d.workers, NULL);
    registry_bury(&d);
    heap_free(&d.heap);
    snapshot_stopping_free(&d);
    sep_stop();
    symbolize_cache_release();
    sink_syslog_close();
    delivery_shutdown();
    /* An activated socket is systemd's: it stays for the next daemon. */
    if (!d.socket_activated)
        unlink(d.cfg.socket_path);
    /* Whatever the rate limits left unsaid is counted before the end. */
    ratelimit_flush(UINT64_MAX);
    log_notice("stopped after %llu reports", (unsigned long long)d.reports_written);
    return 0;
}
