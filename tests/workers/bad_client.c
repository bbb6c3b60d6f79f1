/* SPDX-License-Identifier: MIT */
/*
 * A client that breaks the protocol on purpose, for the integration tests:
 *
 *   bad_client SOCKET garbage     random bytes instead of a header
 *   bad_client SOCKET huge        a header announcing a 1 MiB payload
 *   bad_client SOCKET badhello    a well-framed hello with a malformed body
 *   bad_client SOCKET wrongtype   a WELCOME sent to the daemon
 *   bad_client SOCKET fds         a hello that claims no fd but passes three
 *   bad_client SOCKET silent      connect and say nothing
 *   bad_client SOCKET split       a valid hello sent one byte at a time
 *   bad_client SOCKET spoof PID   register, then claim a request on PID
 *   bad_client SOCKET noread-dump PID  ask dogslowd for a dump of PID (a big
 *                                 answer) and never read it
 *   bad_client SOCKET scribble    register, then write garbage over the
 *                                 whole scoreboard for 3 seconds
 *
 * It prints "closed" when the daemon hung up on it, "answered TYPE" when it
 * got a message, or "open" if neither happened within 8 seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/mman.h>
#include <time.h>

#include "proto.h"
#include "scoreboard.h"
#include "util.h"

/* Register properly, then write a request into our slot that names another
 * process's thread.  The daemon must never attach to it. */
static int spoof(int s, pid_t victim, bool scribble)
{
    struct dsl_writer w;
    struct dsl_hello h = {.program = "spoofer"};
    uint8_t buf[256];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
                        .msg_controllen = sizeof(cbuf.buf)};
    struct dsl_welcome wel;
    struct dsl_hdr hd;
    int n = dsl_hello_encode(&w, &h), memfd = -1;

    if (write(s, w.buf, (size_t)n) != n)
        return 2;
    n = (int)recvmsg(s, &mh, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (n < (int)sizeof(hd) || !cm)
        return 2;
    memcpy(&memfd, CMSG_DATA(cm), sizeof(int));
    memcpy(&hd, buf, sizeof(hd));
    if (dsl_welcome_decode(buf + sizeof(hd), hd.len, &wel) < 0)
        return 2;
    struct dsl_sb_header *sb = mmap(NULL, dsl_sb_size(wel.nslots), PROT_READ | PROT_WRITE,
                                    MAP_SHARED, memfd, 0);
    if (sb == MAP_FAILED)
        return 2;
    struct dsl_slot *sl = dsl_sb_slot(sb, 0);
    sl->tid = victim;
    sl->start_ns = dsl_now_ns(CLOCK_MONOTONIC) - 10 * NSEC_PER_SEC;
    memcpy(sl->method, "GET", 3);
    sl->method_len = 3;
    memcpy(sl->url, "/spoof", 6);
    sl->url_len = 6;
    __atomic_store_n(&sl->seq, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&sb->hwm, 1, __ATOMIC_RELEASE);
    printf("spoofed\n");
    fflush(stdout);
    if (scribble) {
        /* Garbage over every byte of the page, again and again. */
        uint32_t x = 2463534242u;
        size_t size = dsl_sb_size(wel.nslots);
        for (int round = 0; round < 3000; round++) {
            uint8_t *p = (uint8_t *)sb;
            for (size_t i = 0; i < size; i += 4) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                memcpy(p + i, &x, 4);
            }
            usleep(1000);
        }
        printf("scribbled\n");
        fflush(stdout);
    }
    sleep(30);
    return 0;
}

static void send_fds(int s, const void *buf, size_t n, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 3)];
    } cbuf;
    int fds[3];
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *cm;

    for (int i = 0; i < nfds; i++)
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    memset(&cbuf, 0, sizeof(cbuf));
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    if (sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
        perror("sendmsg");
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct dsl_writer w;
    struct dsl_hello h = {.program = "bad_client"};
    const char *mode;
    uint8_t buf[8192];
    int s, n;

    if (argc < 3) {
        fprintf(stderr, "usage: bad_client SOCKET MODE\n");
        return 2;
    }
    mode = argv[2];
    dsl_strlcpy(sa.sun_path, argv[1], sizeof(sa.sun_path));
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        return 2;
    }
    if (!strcmp(mode, "noread-dump") && argc == 4) {
        /* Ask for a big answer and never read it: the daemon must not wait
         * for us. */
        struct dsl_ctl_request rq = {.cmd = DSL_CTL_DUMP,
                                     .pid = (int32_t)strtol(argv[3], NULL, 10)};
        n = dsl_ctl_request_encode(&w, &rq);
        if (n < 0 || write(s, w.buf, (size_t)n) != n)
            return 2;
        printf("asked\n");
        fflush(stdout);
        sleep(30);
        return 0;
    }
    if (!strcmp(mode, "spoof") && argc == 4) {
        return spoof(s, (pid_t)strtol(argv[3], NULL, 10), false);
    } else if (!strcmp(mode, "scribble")) {
        return spoof(s, getpid(), true);
    } else if (!strcmp(mode, "garbage")) {
        for (size_t i = 0; i < 64; i++)
            buf[i] = (uint8_t)(i * 37 + 11);
        (void)!write(s, buf, 64);
    } else if (!strcmp(mode, "huge")) {
        struct dsl_hdr hd = {DSL_PROTO_MAGIC, DSL_PROTO_VERSION, DSL_MSG_HELLO, 1u << 20, 0};
        (void)!write(s, &hd, sizeof(hd));
    } else if (!strcmp(mode, "badhello")) {
        struct dsl_hdr hd = {DSL_PROTO_MAGIC, DSL_PROTO_VERSION, DSL_MSG_HELLO, 7, 0};
        memcpy(buf, &hd, sizeof(hd));
        memset(buf + sizeof(hd), 0xff, 7);
        (void)!write(s, buf, sizeof(hd) + 7);
    } else if (!strcmp(mode, "wrongtype")) {
        struct dsl_welcome wel = {.daemon_pid = 1, .nslots = 1};
        n = dsl_welcome_encode(&w, &wel);
        (void)!write(s, w.buf, (size_t)n);
    } else if (!strcmp(mode, "fds")) {
        n = dsl_hello_encode(&w, &h);
        send_fds(s, w.buf, (size_t)n, 3);
    } else if (!strcmp(mode, "silent")) {
        /* nothing */
    } else if (!strcmp(mode, "split")) {
        n = dsl_hello_encode(&w, &h);
        for (int i = 0; i < n; i++) {
            (void)!write(s, w.buf + i, 1);
            usleep(2000);
        }
    } else {
        fprintf(stderr, "bad_client: unknown mode %s\n", mode);
        return 2;
    }
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    if (poll(&pfd, 1, 8000) <= 0) {
        printf("open\n");
        return 0;
    }
    n = (int)recv(s, buf, sizeof(buf), 0);
    if (n <= 0) {
        printf("closed\n");
    } else {
        struct dsl_hdr hd;
        memcpy(&hd, buf, sizeof(hd));
        printf("answered %u\n", hd.type);
    }
    return 0;
}
