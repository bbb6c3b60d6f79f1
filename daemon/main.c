/* SPDX-License-Identifier: MIT */
/*
 * dogslowd: start-up, the listening socket, and the event loop.
 *
 * One epoll loop serves everything: the listening socket, one connection
 * per registered process, each process's pidfd (readable when it exits), a
 * periodic timerfd that scans scoreboards, a timerfd armed at the nearest
 * request deadline, and a signalfd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "dogslowd.h"
#include "follow.h"
#include "util.h"

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->timer_ms = 25000;
    c->timer_min_ms = 100;
    c->timer_max_ms = 3600 * 1000;
    c->max_workers = 4096;
    c->max_frames = 128;
    c->scan_ms = 50;
    c->hello_timeout_ms = 5000;
    c->log_to_file = true;
    c->stack_vars = false;
    c->follow_hz = 4;
    c->follow_max_ms = 300 * 1000;
    c->follow_max = 8;
    c->max_stack_bytes = 1024 * 1024;
    c->max_value_bytes = 256;
    if (geteuid() == 0) {
        dsl_strlcpy(c->output_dir, "/var/log/dogslow", sizeof(c->output_dir));
    } else {
        const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (state && state[0] == '/')
            snprintf(c->output_dir, sizeof(c->output_dir), "%s/dogslow", state);
        else if (home && home[0] == '/')
            snprintf(c->output_dir, sizeof(c->output_dir), "%s/.local/state/dogslow", home);
        else
            snprintf(c->output_dir, sizeof(c->output_dir), "/tmp/dogslow-%u/reports",
                     (unsigned)getuid());
    }
    dsl_socket_path_candidate(geteuid() == 0 ? 0 : 1, c->socket_path, sizeof(c->socket_path));
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: dogslowd [OPTIONS]\n"
            "Watch registered worker processes and report requests that run too long.\n\n"
            "  -c, --config FILE      read FILE (not yet supported: built-in defaults and\n"
            "                         the options below are used)\n"
            "  -f, --foreground       stay in the foreground (the daemon never forks; kept\n"
            "                         for compatibility)\n"
            "  -n                     check the configuration and exit 0 (good) or 1 (bad)\n"
            "  -s, --socket PATH      listen on PATH (default: $DOGSLOW_SOCKET, else\n"
            "                         /run/dogslow/dogslow.sock as root,\n"
            "                         $XDG_RUNTIME_DIR/dogslow/dogslow.sock otherwise)\n"
            "  -o, --output DIR       write reports to DIR (default /var/log/dogslow as root,\n"
            "                         ~/.local/state/dogslow otherwise)\n"
            "  -t, --timer SECONDS    report requests running longer than this (default 25;\n"
            "                         fractions allowed)\n"
            "      --timer-min SECONDS  smallest timer a worker may ask for (default 0.1)\n"
            "      --timer-max SECONDS  largest timer a worker may ask for (default 3600)\n"
            "      --max-workers N    registered processes at once (default 4096)\n"
            "      --stack-vars       show local variables in reports (DOGSLOW_STACK_VARS)\n"
            "      --follow HZ        after a report, sample the request this often until it\n"
            "                         ends (default 4; 0: off)\n"
            "      --follow-max-time SECONDS  stop following after this long (default 300)\n"
            "  -v, --verbose          log debug messages\n"
            "  -h, --help             show this help\n"
            "  -V, --version          show the version\n");
}

static uint32_t parse_seconds_opt(const char *name, const char *v)
{
    uint32_t ms;
    int r = dsl_parse_seconds_ms(v, &ms);

    if (r < 0 || ms == 0) {
        fprintf(stderr, "dogslowd: --%s: '%s' is not a positive number of seconds\n", name, v);
        exit(1);
    }
    return ms;
}

static int parse_args(int argc, char **argv, struct config *c, bool *ret_check)
{
    enum { OPT_TIMER_MIN = 256, OPT_TIMER_MAX, OPT_MAX_WORKERS, OPT_STACK_VARS, OPT_FOLLOW,
           OPT_FOLLOW_MAX_TIME };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"socket", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"timer", required_argument, NULL, 't'},
        {"timer-min", required_argument, NULL, OPT_TIMER_MIN},
        {"timer-max", required_argument, NULL, OPT_TIMER_MAX},
        {"max-workers", required_argument, NULL, OPT_MAX_WORKERS},
        {"stack-vars", no_argument, NULL, OPT_STACK_VARS},
        {"follow", required_argument, NULL, OPT_FOLLOW},
        {"follow-max-time", required_argument, NULL, OPT_FOLLOW_MAX_TIME},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    const char *env = getenv("DOGSLOW_SOCKET");
    int o;

    if (env && *env) {
        if (strlen(env) >= sizeof(c->socket_path)) {
            fprintf(stderr, "dogslowd: DOGSLOW_SOCKET is too long\n");
            return -1;
        }
        dsl_strlcpy(c->socket_path, env, sizeof(c->socket_path));
    }
    while ((o = getopt_long(argc, argv, "c:fns:o:t:vhV", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            fprintf(stderr, "dogslowd: --config %s: configuration files are not supported yet "
                            "(use the command-line options)\n",
                    optarg);
            return -1;
        case 'f':
            break;
        case 'n':
            *ret_check = true;
            break;
        case 's':
            if (strlen(optarg) >= sizeof(c->socket_path) || optarg[0] != '/') {
                fprintf(stderr, "dogslowd: --socket: need an absolute path shorter than %zu\n",
                        sizeof(c->socket_path));
                return -1;
            }
            dsl_strlcpy(c->socket_path, optarg, sizeof(c->socket_path));
            break;
        case 'o':
            if (strlen(optarg) >= sizeof(c->output_dir) || optarg[0] != '/') {
                fprintf(stderr, "dogslowd: --output: need an absolute path\n");
                return -1;
            }
            dsl_strlcpy(c->output_dir, optarg, sizeof(c->output_dir));
            break;
        case 't':
            c->timer_ms = parse_seconds_opt("timer", optarg);
            break;
        case OPT_TIMER_MIN:
            c->timer_min_ms = parse_seconds_opt("timer-min", optarg);
            break;
        case OPT_TIMER_MAX:
            c->timer_max_ms = parse_seconds_opt("timer-max", optarg);
            break;
        case OPT_MAX_WORKERS: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 1000000) {
                fprintf(stderr, "dogslowd: --max-workers: '%s' is not in 1..1000000\n", optarg);
                return -1;
            }
            c->max_workers = (uint32_t)v;
            break;
        }
        case OPT_STACK_VARS:
            c->stack_vars = true;
            break;
        case OPT_FOLLOW: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v > 1000) {
                fprintf(stderr, "dogslowd: --follow: '%s' is not 0..1000 samples a second\n",
                        optarg);
                return -1;
            }
            c->follow_hz = (uint32_t)v;
            break;
        }
        case OPT_FOLLOW_MAX_TIME:
            c->follow_max_ms = parse_seconds_opt("follow-max-time", optarg);
            break;
        case 'v':
            log_max_level = LOG_LVL_DEBUG;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("dogslowd %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dogslowd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->timer_min_ms > c->timer_max_ms) {
        fprintf(stderr, "dogslowd: --timer-min is larger than --timer-max\n");
        return -1;
    }
    if (c->timer_ms < c->timer_min_ms || c->timer_ms > c->timer_max_ms) {
        fprintf(stderr, "dogslowd: --timer must lie within --timer-min and --timer-max\n");
        return -1;
    }
    return 0;
}

/* Create the socket's directory if needed; refuse one that someone else
 * could have planted (not ours, or writable by others). */
static int prepare_socket_dir(const char *sock)
{
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
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return -EPERM;
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        return -EPERM;
    return 0;
}

static int listen_socket(const struct config *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_close_ int fd = -1;
    int r;

    r = prepare_socket_dir(c->socket_path);
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
    /* Any local user may register (a process can only get itself traced);
     * a daemon running as an ordinary user serves that user only. */
    if (chmod(c->socket_path, geteuid() == 0 ? 0666 : 0600) < 0)
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

static int setup(struct daemon *d)
{
    struct itimerspec its = {0};
    sigset_t mask;

    d->pid = getpid();
    if (getrandom(&d->generation, sizeof(d->generation), 0) != sizeof(d->generation))
        d->generation = dsl_now_ns(CLOCK_REALTIME) ^ (uint64_t)d->pid;
    if (gethostname(d->hostname, sizeof(d->hostname) - 1) < 0)
        dsl_strlcpy(d->hostname, "localhost", sizeof(d->hostname));
    d->heap.max = 1u << 20;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->scan_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    d->deadline_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->signal_fd < 0 || d->epfd < 0 || d->scan_fd < 0 || d->deadline_fd < 0)
        return -errno;
    its.it_interval.tv_sec = d->cfg.scan_ms / 1000;
    its.it_interval.tv_nsec = (long)(d->cfg.scan_ms % 1000) * 1000000L;
    its.it_value = its.it_interval;
    if (timerfd_settime(d->scan_fd, 0, &its, NULL) < 0)
        return -errno;

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

static void drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) > 0)
        ;
}

static void handle_signal(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            log_notice("SIGHUP: nothing to reload yet (configuration files are not supported "
                       "yet)");
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
                for (int k = 0; k < 32 && registry_accept(d) == 0; k++)
                    ;
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
                snapshot_retry_detach(d);
                break;
            }
            case EV_DEADLINE:
                drain(d->deadline_fd);
                d->armed_ns = 0;
                watch_fire(d, dsl_now_ns(CLOCK_MONOTONIC));
                break;
            case EV_SIGNAL:
                handle_signal(d);
                break;
            }
        }
        registry_bury(d);
    }
}

int main(int argc, char **argv)
{
    static struct daemon d;
    bool check = false;
    int r;

    config_defaults(&d.cfg);
    if (parse_args(argc, argv, &d.cfg, &check) < 0)
        return 1;
    if (check) {
        printf("configuration OK: socket %s, reports in %s, timer %u.%03u s\n",
               d.cfg.socket_path, d.cfg.output_dir, d.cfg.timer_ms / 1000,
               d.cfg.timer_ms % 1000);
        return 0;
    }
    /* Registrations are written down next to the socket. */
    {
        const char *slash = strrchr(d.cfg.socket_path, '/');
        int len = slash ? (int)(slash - d.cfg.socket_path) : 0;
        if (len > 0)
            snprintf(d.cfg.state_dir, sizeof(d.cfg.state_dir), "%.*s/workers", len,
                     d.cfg.socket_path);
    }
    d.listen_fd = d.epfd = d.scan_fd = d.deadline_fd = d.signal_fd = -1;
    r = setup(&d);
    if (r < 0) {
        log_msg(LOG_LVL_ERR, false, "cannot start: %s (socket %s)", strerror(-r),
                d.cfg.socket_path);
        return 1;
    }
    log_notice("dogslowd %s listening on %s; reports in %s; timer %u.%03u s", PACKAGE_VERSION,
               d.cfg.socket_path, d.cfg.output_dir, d.cfg.timer_ms / 1000,
               d.cfg.timer_ms % 1000);
    registry_adopt_previous(&d);
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, "READY=1");
#endif
    loop(&d);
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    follow_stop_all(&d);
    while (d.workers)
        registry_remove(&d, d.workers, NULL);
    registry_bury(&d);
    heap_free(&d.heap);
    unlink(d.cfg.socket_path);
    log_notice("stopped after %llu reports", (unsigned long long)d.reports_written);
    return 0;
}
