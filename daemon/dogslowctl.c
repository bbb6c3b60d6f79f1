/* SPDX-License-Identifier: MIT */
/*
 * dogslowctl: ask a running dogslowd what it is doing.
 *
 *     dogslowctl [--socket PATH] status | dump PID[:TID] | config | test-alert
 *
 * One command per connection, over the daemon's own socket: a CTL_REQUEST,
 * then the answer as DATA pieces and an END with a status.  Everything the
 * daemon sends is checked like any peer's input (framed, bounded, at most
 * DSL_CTL_REPLY_MAX bytes in all); the text is printed as it arrives.
 *
 * Exit status: 0 done, 1 the daemon refused or the command failed, 2 usage
 * or connection problems.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dogslow.h"
#include "proto.h"
#include "util.h"

#define ANSWER_TIMEOUT_MS 60000 /* a dump of many threads takes a while */

static void usage(FILE *f)
{
    fprintf(f, "Usage: dogslowctl [--socket PATH] COMMAND\n"
               "Talk to a running dogslowd.\n\n"
               "Commands:\n"
               "  status          registered processes and threads, requests in flight and\n"
               "                  their age, reports written, deliveries pending\n"
               "  dump PID[:TID]  snapshot a registered process's thread now and print it\n"
               "                  (default: every thread in a request, else the main thread)\n"
               "  config          the configuration in force\n"
               "  test-alert      send a test report through every enabled output and say\n"
               "                  what happened in each\n\n"
               "Options:\n"
               "  -s, --socket PATH  the daemon's socket (default: $DOGSLOW_SOCKET, else\n"
               "                     %s, else $XDG_RUNTIME_DIR/dogslow/dogslow.sock)\n"
               "  -h, --help         show this help\n"
               "  -V, --version      show the version\n\n"
               "Only root, the daemon's user and members of the socket's group may use it.\n",
            DOGSLOW_DEFAULT_SOCKET);
}

static int parse_id(const char *s, const char **ret_end, int32_t *ret)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || v <= 0 || v > INT32_MAX)
        return -EINVAL;
    *ret = (int32_t)v;
    *ret_end = end;
    return 0;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    dsl_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* Read the answer, printing text as it comes.  Returns the exit status. */
static int read_answer(int fd)
{
    static struct dsl_framer fr;
    uint8_t buf[8192];
    size_t total = 0;

    dsl_framer_reset(&fr);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        size_t off = 0;

        if (poll(&pfd, 1, ANSWER_TIMEOUT_MS) <= 0) {
            fprintf(stderr, "dogslowctl: no answer from dogslowd within %d s\n",
                    ANSWER_TIMEOUT_MS / 1000);
            return 2;
        }
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "dogslowd closed the connection before answering%s\n",
                    n < 0 ? " (read error)" : "");
            return 2;
        }
        while (off < (size_t)n) {
            size_t used;
            int r = dsl_framer_push(&fr, buf + off, (size_t)n - off, &used);

            off += used;
            if (r < 0) {
                fprintf(stderr, "dogslowctl: dogslowd sent something this dogslowctl does not "
                                "understand (%s)\n",
                        strerror(-r));
                return 2;
            }
            if (r == 0)
                break;
            if (fr.hdr.type == DSL_MSG_CTL_DATA && fr.hdr.len > 0) {
                total += fr.hdr.len;
                if (total > DSL_CTL_REPLY_MAX) {
                    fprintf(stderr, "dogslowctl: answer longer than %u bytes\n",
                            DSL_CTL_REPLY_MAX);
                    return 2;
                }
                if (dsl_write_all(1, fr.payload, fr.hdr.len) < 0)
                    return 2;
            } else if (fr.hdr.type == DSL_MSG_CTL_END) {
                struct dsl_ctl_end end;
                if (dsl_ctl_end_decode(fr.payload, fr.hdr.len, &end) < 0) {
                    fprintf(stderr, "dogslowctl: malformed answer from dogslowd\n");
                    return 2;
                }
                if (end.err) {
                    fprintf(stderr, "dogslowctl: %s%s%s\n", end.message[0] ? end.message : "",
                            end.message[0] ? ": " : "", strerror(end.err));
                    return 1;
                }
                if (end.message[0])
                    fprintf(stderr, "dogslowctl: %s\n", end.message);
                return 0;
            } else {
                fprintf(stderr, "dogslowctl: unexpected message type %u from dogslowd\n",
                        (unsigned)fr.hdr.type);
                return 2;
            }
            dsl_framer_reset(&fr);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    struct dsl_ctl_request req = {0};
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *sock = NULL, *cmd;
    struct dsl_writer wr;
    int o, fd = -1, n, rc;

    while ((o = getopt_long(argc, argv, "+s:hV", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            sock = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("dogslowctl %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind++];
    if (!strcmp(cmd, "status")) {
        req.cmd = DSL_CTL_STATUS;
    } else if (!strcmp(cmd, "config")) {
        req.cmd = DSL_CTL_CONFIG;
    } else if (!strcmp(cmd, "test-alert")) {
        req.cmd = DSL_CTL_TEST_ALERT;
    } else if (!strcmp(cmd, "dump")) {
        const char *end;

        req.cmd = DSL_CTL_DUMP;
        if (optind >= argc || parse_id(argv[optind], &end, &req.pid) < 0 ||
            (*end && (*end != ':' || parse_id(end + 1, &end, &req.tid) < 0 || *end))) {
            fprintf(stderr, "dogslowctl: dump needs PID or PID:TID\n");
            return 2;
        }
        optind++;
    } else {
        fprintf(stderr, "dogslowctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "dogslowctl: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    if (!sock)
        sock = getenv("DOGSLOW_SOCKET");
    if (sock && *sock) {
        fd = connect_to(sock);
        dsl_strlcpy(path, sock, sizeof(path));
    } else {
        /* As the library does: the system socket, then the user's. */
        for (int i = 0; i < 2 && fd < 0; i++) {
            if (dsl_socket_path_candidate(i, path, sizeof(path)) < 0)
                continue;
            fd = connect_to(path);
        }
    }
    if (fd < 0) {
        fprintf(stderr, "dogslowctl: cannot connect to dogslowd at %s: %s\n", path,
                strerror(-fd));
        return 2;
    }
    n = dsl_ctl_request_encode(&wr, &req);
    if (n < 0 || dsl_write_all(fd, wr.buf, (size_t)n) < 0) {
        fprintf(stderr, "dogslowctl: cannot send to dogslowd at %s: %s\n", path,
                strerror(n < 0 ? -n : errno));
        close(fd);
        return 2;
    }
    rc = read_answer(fd);
    close(fd);
    return rc;
}
