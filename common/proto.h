/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol between libdogslow (and dogslowctl) and dogslowd, over a
 * Unix stream socket.
 *
 * Every message is a fixed 16-byte header followed by a payload of at most
 * DSL_PAYLOAD_MAX bytes.  Integers are in host byte order (both ends are on
 * the same machine).  Payloads are decoded through a bounds-checked cursor
 * that must end having consumed exactly everything; any violation is a
 * protocol error and the daemon closes that one connection.
 *
 * Credentials are never part of a message: the daemon takes them from
 * SO_PEERCRED.  File descriptors travel only where noted.
 */
#ifndef DOGSLOW_PROTO_H
#define DOGSLOW_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DSL_PROTO_MAGIC   0x44534c57u /* "DSLW" */
#define DSL_PROTO_VERSION 1u
#define DSL_HDR_SIZE      16u
#define DSL_PAYLOAD_MAX   4096u
#define DSL_STR_MAX       255u /* longest string field */
#define DSL_IGNORE_MAX    1024u /* longest ignore-pattern list in a hello */

enum dsl_msg_type {
    /* client -> daemon: register this process.  With DSL_HELLO_ADOPT, one
     * fd (the scoreboard memfd of an earlier registration) is attached. */
    DSL_MSG_HELLO = 1,
    /* daemon -> client: registered; the scoreboard memfd is attached. */
    DSL_MSG_WELCOME = 2,
    /* daemon -> client: refused; errno and a reason. */
    DSL_MSG_ERROR = 3,
    /* dogslowctl -> daemon: one command; the first and only message of a
     * control connection (the daemon tells the two kinds apart by it). */
    DSL_MSG_CTL_REQUEST = 4,
    /* daemon -> dogslowctl: a piece of the answer's text, 1 to
     * DSL_PAYLOAD_MAX bytes; an answer is at most DSL_CTL_REPLY_MAX bytes. */
    DSL_MSG_CTL_DATA = 5,
    /* daemon -> dogslowctl: the command is done: 0 or errno, and a line. */
    DSL_MSG_CTL_END = 6,
    DSL_MSG_TYPE_MAX_ = 6,
};

struct dsl_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t len; /* payload bytes that follow */
    uint32_t reserved;
};
_Static_assert(sizeof(struct dsl_hdr) == DSL_HDR_SIZE, "header size");

#define DSL_HELLO_ADOPT  0x1u /* a scoreboard fd is attached */
#define DSL_HELLO_IGNORE 0x2u /* ignore patterns follow the program name */
#define DSL_HELLO_FLAGS_KNOWN (DSL_HELLO_ADOPT | DSL_HELLO_IGNORE)

struct dsl_hello {
    uint32_t flags;
    uint32_t timer_ms; /* 0: the daemon's timer */
    uint32_t nslots;   /* 0: the daemon's default */
    char program[DSL_STR_MAX + 1];
    /* The worker's own ignore patterns, comma-separated, printable ASCII;
     * sent (and DSL_HELLO_IGNORE set by the encoder) only when not empty, so
     * older daemons and clients still understand each other without them. */
    char ignore_urls[DSL_IGNORE_MAX + 1];
};

struct dsl_welcome {
    int32_t daemon_pid;
    uint32_t nslots;
    uint32_t timer_ms; /* the timer in force for this process */
    uint64_t generation;
};

struct dsl_error {
    int32_t err; /* positive errno */
    char message[DSL_STR_MAX + 1];
};

/* Bounds-checked reader over a payload.  Any read past the end sets err and
 * returns zeros; check once at the end with dsl_cursor_finish(). */
struct dsl_cursor {
    const uint8_t *p;
    size_t len;
    size_t off;
    bool err;
};

void dsl_cursor_init(struct dsl_cursor *c, const void *p, size_t len);
uint8_t dsl_get_u8(struct dsl_cursor *c);
uint16_t dsl_get_u16(struct dsl_cursor *c);
uint32_t dsl_get_u32(struct dsl_cursor *c);
uint64_t dsl_get_u64(struct dsl_cursor *c);
/* A u16 length and that many bytes, no NUL inside, length <= max (and
 * <= DSL_STR_MAX); copied NUL-terminated into dst of max+1 bytes. */
void dsl_get_str(struct dsl_cursor *c, char *dst, size_t max);
/* The same for a string of up to max bytes (max may exceed DSL_STR_MAX). */
void dsl_get_str_max(struct dsl_cursor *c, char *dst, size_t max);
/* 0 when no read failed and every byte was consumed, else -EBADMSG. */
int dsl_cursor_finish(const struct dsl_cursor *c);

/* Builds one whole message (header + payload) in a fixed buffer. */
struct dsl_writer {
    uint8_t buf[DSL_HDR_SIZE + DSL_PAYLOAD_MAX];
    size_t len;
    bool err;
};

void dsl_writer_begin(struct dsl_writer *w, enum dsl_msg_type type);
void dsl_put_u8(struct dsl_writer *w, uint8_t v);
void dsl_put_u16(struct dsl_writer *w, uint16_t v);
void dsl_put_u32(struct dsl_writer *w, uint32_t v);
void dsl_put_u64(struct dsl_writer *w, uint64_t v);
void dsl_put_str(struct dsl_writer *w, const char *s); /* truncated at DSL_STR_MAX */
void dsl_put_str_max(struct dsl_writer *w, const char *s, size_t max); /* truncated at max */
void dsl_put_bytes(struct dsl_writer *w, const void *p, size_t n);
/* Fills in the header length; returns the message size or -EMSGSIZE. */
int dsl_writer_finish(struct dsl_writer *w);

/* Validate a received header: magic, version, known type, bounded length. */
int dsl_hdr_check(const struct dsl_hdr *h);

/*
 * Reassembles messages from a byte stream fed in pieces of any size.
 * dsl_framer_push() consumes bytes up to the end of one message; it returns
 * 1 when hdr and payload hold a complete message (call dsl_framer_reset()
 * after handling it), 0 when more bytes are needed, or a negative errno for
 * a header that can never be valid.
 */
struct dsl_framer {
    struct dsl_hdr hdr;
    uint8_t payload[DSL_PAYLOAD_MAX];
    size_t have; /* bytes of header + payload received */
};

void dsl_framer_reset(struct dsl_framer *f);
int dsl_framer_push(struct dsl_framer *f, const uint8_t *data, size_t n, size_t *ret_consumed);

/* Typed encoders and decoders; decoders validate every field. */
int dsl_hello_encode(struct dsl_writer *w, const struct dsl_hello *m);
int dsl_hello_decode(const uint8_t *p, size_t len, struct dsl_hello *ret);
int dsl_welcome_encode(struct dsl_writer *w, const struct dsl_welcome *m);
int dsl_welcome_decode(const uint8_t *p, size_t len, struct dsl_welcome *ret);
int dsl_error_encode(struct dsl_writer *w, const struct dsl_error *m);
int dsl_error_decode(const uint8_t *p, size_t len, struct dsl_error *ret);

/* ---- control messages (dogslowctl) -------------------------------------- */

enum dsl_ctl_cmd {
    DSL_CTL_STATUS = 1,     /* registered processes, requests in flight, counters */
    DSL_CTL_DUMP = 2,       /* snapshot pid (tid, or 0: every thread in a request) now */
    DSL_CTL_CONFIG = 3,     /* the effective configuration */
    DSL_CTL_TEST_ALERT = 4, /* a test report through every enabled output */
    DSL_CTL_CMD_MAX_ = 4,
};

#define DSL_CTL_REPLY_MAX (8u << 20) /* bytes of text in one answer, at most */

struct dsl_ctl_request {
    uint32_t cmd;
    int32_t pid; /* DUMP: > 0; otherwise 0 */
    int32_t tid; /* DUMP: 0 or a thread of pid; otherwise 0 */
};

struct dsl_ctl_end {
    int32_t err; /* 0, or a positive errno */
    char message[DSL_STR_MAX + 1];
};

int dsl_ctl_request_encode(struct dsl_writer *w, const struct dsl_ctl_request *m);
int dsl_ctl_request_decode(const uint8_t *p, size_t len, struct dsl_ctl_request *ret);
/* n: 1 to DSL_PAYLOAD_MAX bytes of text. */
int dsl_ctl_data_encode(struct dsl_writer *w, const void *p, size_t n);
int dsl_ctl_end_encode(struct dsl_writer *w, const struct dsl_ctl_end *m);
int dsl_ctl_end_decode(const uint8_t *p, size_t len, struct dsl_ctl_end *ret);

/* The descriptors a received message carried (SCM_RIGHTS): the first into
 * *ret_fd if it is still -1, every other one closed.  Returns how many
 * there were. */
struct msghdr;
int dsl_take_fds(const struct msghdr *mh, int *ret_fd);
/*
 * One recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) of up to size bytes, and the
 * descriptors passed with it (SCM_RIGHTS): the first is kept in *ret_fd
 * (-1: none), the others are closed at once; *ret_nfds counts them all, and
 * *ret_ctrunc says the kernel cut the control data (more than 8 sent).
 * Returns recvmsg()'s result: -1 with errno on error (nothing kept).
 */
ssize_t dsl_recv_fd(int sock, void *buf, size_t size, int *ret_fd, int *ret_nfds, bool *ret_ctrunc);

/*
 * Send one message of len bytes, with descriptor fd passed alongside
 * (SCM_RIGHTS) when fd >= 0; flags as for sendmsg() (MSG_NOSIGNAL, ...).
 * Returns sendmsg()'s result: the bytes sent, or -1 with errno.
 */
ssize_t dsl_send_fd(int sock, const void *buf, size_t len, int fd, int flags);

#endif
