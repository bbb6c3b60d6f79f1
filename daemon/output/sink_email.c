/* SPDX-License-Identifier: MIT */
/*
 * The e-mail sink: building a report mail (MIME, CRLF, UTF-8 safe) and
 * handing it to the SMTP server with libesmtp.  Runs in the delivery
 * thread only (delivery.c, storm.c); the daemon's loop never waits on it.
 *
 * libesmtp 1.1.0 pitfalls (see PEERS.md) shape this file:
 *  - lines must end in CRLF or headers are mangled: email_build() makes
 *    every line end in CRLF, and base64-encodes the parts so that no line
 *    is too long and no byte is 8-bit;
 *  - smtp_start_session() says 1 even when the message was refused: the
 *    message's transfer status is what counts, read before the session is
 *    destroyed;
 *  - STARTTLS can hang on TLS 1.3 session tickets: our own SSL_CTX,
 *    capped at TLS 1.2, which also carries ca_file;
 *  - every wait is bounded (smtp_set_timeout with
 *    Timeout_OVERRIDE_RFC2822_MINIMUM), so a silent server costs at most
 *    a few of EMAIL_TIMEOUT_MS, never the RFC's ten minutes.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Order matters: libesmtp declares the SSL_CTX setter only after
 * <openssl/ssl.h>, and needs <auth-client.h> first. */
#include <auth-client.h>
#include <openssl/ssl.h>
#include <libesmtp.h>

#include "conf.h"
#include "output.h"
#include "textbuf.h"
#include "util.h"

#define EMAIL_TIMEOUT_MS 10000 /* each wait for the server */
#define EMAIL_MSG_MAX    (8u * 1024u * 1024u)

/* ---- building the message ----------------------------------------------- */

/* Growable up to EMAIL_MSG_MAX; an append that does not fit is dropped
 * (and every later one): email_build() then refuses the message whole. */
static void mb_init(struct dsl_text *b)
{
    dsl_text_init_growable(b, EMAIL_MSG_MAX, DSL_TEXT_WHOLE);
}

/* text as valid UTF-8 with CRLF line ends (invalid bytes become U+FFFD;
 * bare CR and LF both become CRLF). */
static void mb_text_crlf(struct dsl_text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t l;

        if (*u == '\r' && i + 1 < n && u[1] == '\n') {
            dsl_text_add(t, "\r\n", 2);
            i += 2;
            continue;
        }
        if (*u == '\r' || *u == '\n') {
            dsl_text_add(t, "\r\n", 2);
            i++;
            continue;
        }
        if (*u == '\0') {
            i++;
            continue;
        }
        l = dsl_utf8_len(u, n - i);
        if (l == 0) {
            dsl_text_add(t, "\xef\xbf\xbd", 3);
            i++;
        } else {
            dsl_text_add(t, u, l);
            i += l;
        }
    }
    if (t->len < 2 || memcmp(t->p + t->len - 2, "\r\n", 2) != 0)
        dsl_text_add(t, "\r\n", 2);
}

/* Base64 in lines of 76, each ending in CRLF (RFC 2045). */
static void mb_base64(struct dsl_text *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char line[80];
    size_t col = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        size_t k = n - i;
        if (k > 1)
            v |= (uint32_t)s[i + 1] << 8;
        if (k > 2)
            v |= s[i + 2];
        line[col++] = tab[(v >> 18) & 63];
        line[col++] = tab[(v >> 12) & 63];
        line[col++] = k > 1 ? tab[(v >> 6) & 63] : '=';
        line[col++] = k > 2 ? tab[v & 63] : '=';
        if (col == 76) {
            dsl_text_add(b, line, col);
            dsl_text_add(b, "\r\n", 2);
            col = 0;
        }
    }
    if (col) {
        dsl_text_add(b, line, col);
        dsl_text_add(b, "\r\n", 2);
    }
}

/* A header value: as is when printable ASCII, else RFC 2047 base64
 * words of valid UTF-8, none split inside a character. */
static void mb_header(struct dsl_text *b, const char *name, const char *value)
{
    bool plain = true;
    size_t n = strlen(value);

    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            plain = false;
    dsl_text_puts(b, name);
    dsl_text_puts(b, ": ");
    if (plain && n <= 900) {
        dsl_text_add(b, value, n);
        dsl_text_add(b, "\r\n", 2);
        return;
    }
    struct dsl_text clean;
    size_t keep;
    mb_init(&clean);
    mb_text_crlf(&clean, value, n > 900 ? 900 : n);
    /* Header values are one line: line ends become spaces. */
    for (size_t i = 0; i < clean.len; i++)
        if (clean.p[i] == '\r' || clean.p[i] == '\n')
            clean.p[i] = ' ';
    for (keep = clean.len; keep && clean.p[keep - 1] == ' ';)
        keep--;
    dsl_text_rewind(&clean, keep);
    for (size_t i = 0; i < clean.len;) {
        size_t take = 0;
        char enc[128];
        struct dsl_text w;

        mb_init(&w);
        /* 45 bytes of text make 60 of base64: a word stays under 76. */
        while (i + take < clean.len) {
            size_t l = dsl_utf8_len((unsigned char *)clean.p + i + take, clean.len - i - take);
            if (l == 0)
                l = 1;
            if (take + l > 45)
                break;
            take += l;
        }
        mb_base64(&w, (unsigned char *)clean.p + i, take);
        if (w.len >= 2)
            dsl_text_rewind(&w, w.len - 2); /* the CRLF mb_base64 ends with */
        snprintf(enc, sizeof(enc), "%s=?UTF-8?B?%.*s?=", i ? "\r\n " : "", (int)w.len,
                 w.p ? w.p : "");
        dsl_text_puts(b, enc);
        dsl_text_free(&w);
        i += take;
    }
    dsl_text_add(b, "\r\n", 2);
    dsl_text_free(&clean);
}

int email_build(const struct email_msg *m, char **ret, size_t *ret_len)
{
    struct dsl_text b, text;
    char line[512], date[64], boundary[64];
    time_t t = (time_t)m->date_s;
    struct tm tm;

    if (!m->from || !m->to || !m->subject || !m->text)
        return -EINVAL;
    mb_init(&b);
    mb_init(&text);
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(boundary, sizeof(boundary), "dogslow-%llx-%x", (unsigned long long)m->date_s,
             (unsigned)getpid());

    mb_header(&b, "From", m->from);
    mb_header(&b, "To", m->to);
    mb_header(&b, "Subject", m->subject);
    mb_header(&b, "Date", date);
    if (m->id)
        mb_header(&b, "X-Dogslow-Report", m->id);
    dsl_text_puts(&b, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");

    mb_text_crlf(&text, m->text, m->text_len);
    if (m->json) {
        snprintf(line, sizeof(line),
                 "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                 "This is a MIME message.\r\n--%s\r\n",
                 boundary, boundary);
        dsl_text_puts(&b, line);
    }
    dsl_text_puts(&b, "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\n");
    mb_base64(&b, (unsigned char *)text.p, text.len);
    if (m->json) {
        char name[128];
        size_t k = 0;

        /* The file name goes into a quoted header parameter: keep it to
         * characters that need no quoting rules. */
        for (const char *p = m->json_name ? m->json_name : "report.json"; *p && k < 100; p++)
            name[k++] = (isalnum((unsigned char)*p) || strchr("._-", *p)) ? *p : '_';
        name[k] = '\0';
        snprintf(line, sizeof(line),
                 "--%s\r\nContent-Type: application/json; charset=utf-8\r\n"
                 "Content-Disposition: attachment; filename=\"%s\"\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n",
                 boundary, name);
        dsl_text_puts(&b, line);
        mb_base64(&b, (const unsigned char *)m->json, m->json_len);
        snprintf(line, sizeof(line), "--%s--\r\n", boundary);
        dsl_text_puts(&b, line);
    }
    free(text.p);
    if (b.full || text.full) {
        free(b.p);
        return -EFBIG;
    }
    *ret = b.p;
    *ret_len = b.len;
    return 0;
}

void email_from_address(const struct config *c, char *out, size_t size)
{
    char host[256];

    if (c->email_from[0]) {
        dsl_strlcpy(out, c->email_from, size);
        return;
    }
    if (gethostname(host, sizeof(host) - 1) < 0)
        dsl_strlcpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "dogslow@%s", host);
}

/* ---- the password ------------------------------------------------------- */

int email_read_password(const char *path, char *out, size_t size, char *why, size_t wsize)
{
    _cleanup_close_ int fd = -1;
    struct stat st;
    ssize_t n;
    char *nl;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(why, wsize, "cannot open the password file %s: %s", path, strerror(e));
        return -e;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, wsize, "the password file %s is not a regular file", path);
        return -EINVAL;
    }
    /* A password others can read is a password others have: refuse it,
     * as ssh does with its keys, so the mistake is noticed. */
    if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        snprintf(why, wsize,
                 "the password file %s is accessible by others (mode %04o): "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    n = read(fd, out, size - 1);
    if (n < 0) {
        int e = errno;
        snprintf(why, wsize, "cannot read the password file %s: %s", path, strerror(e));
        return -e;
    }
    out[n] = '\0';
    nl = strpbrk(out, "\r\n");
    if (nl)
        *nl = '\0';
    else if ((size_t)n == size - 1) {
        snprintf(why, wsize, "the password in %s is too long", path);
        return -E2BIG;
    }
    if (!out[0]) {
        snprintf(why, wsize, "the password file %s is empty", path);
        return -EINVAL;
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

struct auth_arg {
    const char *user, *pass;
};

static int auth_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    struct auth_arg *a = arg;

    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_USER)
            result[i] = (char *)a->user;
        else if (req[i].flags & AUTH_PASS)
            result[i] = (char *)a->pass;
        else
            return 0;
    }
    return 1;
}

static SSL_CTX *tls_context(const struct config *c, char *why, size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx) {
        snprintf(why, size, "cannot make a TLS context");
        return NULL;
    }
    /* TLS 1.3 session tickets make libesmtp 1.1.0 hang half the time
     * (PEERS.md); 1.2 is what it was written for. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (c->email.ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, c->email.ca_file, NULL) != 1) {
            snprintf(why, size, "cannot load the CA file %s", c->email.ca_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(why, size, "cannot load the system's CA certificates");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void add_recipients(smtp_message_t msg, const char *list, unsigned *n)
{
    char item[256];
    const char *p = list;

    while (*p) {
        size_t k = 0;
        while (*p == ' ' || *p == ',')
            p++;
        while (*p && *p != ',' && *p != ' ') {
            if (k < sizeof(item) - 1)
                item[k++] = *p;
            p++;
        }
        item[k] = '\0';
        if (k && smtp_add_recipient(msg, item))
            (*n)++;
    }
}

int email_send(const struct config *c, const char *msgtext, char *why, size_t size)
{
    static const int waits[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
                                Timeout_DATA2};
    char server[300], pass[512], from[300], ebuf[128];
    struct auth_arg aa = {0};
    auth_context_t auth = NULL;
    smtp_session_t s = NULL;
    smtp_message_t m;
    SSL_CTX *ctx = NULL;
    const smtp_status_t *st;
    unsigned nrcpt = 0;
    int code = 0, r;

    why[0] = '\0';
    if (c->email.user[0]) {
        r = email_read_password(c->email.password_file, pass, sizeof(pass), why, size);
        if (r < 0)
            return -EAGAIN; /* the operator can fix it; the mail waits */
        aa.user = c->email.user;
        aa.pass = pass;
    }
    email_from_address(c, from, sizeof(from));

    s = smtp_create_session();
    if (!s) {
        snprintf(why, size, "libesmtp: cannot create a session");
        r = -EAGAIN;
        goto out;
    }
    snprintf(server, sizeof(server), "%s:%u", c->email.host, (unsigned)c->email.port);
    smtp_set_server(s, server);
    for (size_t i = 0; i < ARRAY_SIZE(waits); i++)
        smtp_set_timeout(s, waits[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, EMAIL_TIMEOUT_MS);
    if (c->email.starttls != CFG_STARTTLS_OFF) {
        ctx = tls_context(c, why, size);
        if (!ctx) {
            r = -EAGAIN;
            goto out;
        }
        smtp_starttls_set_ctx(s, ctx);
        smtp_starttls_enable(s, c->email.starttls == CFG_STARTTLS_REQUIRED ? Starttls_REQUIRED
                                                                           : Starttls_ENABLED);
    } else {
        smtp_starttls_enable(s, Starttls_DISABLED);
    }
    if (aa.user) {
        auth = auth_create_context();
        if (!auth) {
            snprintf(why, size, "libesmtp: cannot create an AUTH context");
            r = -EAGAIN;
            goto out;
        }
        /* PLAIN and LOGIN send the password as is: allowed, since the
         * operator asked for AUTH (and starttls = required keeps it in TLS). */
        auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(auth, auth_interact, &aa);
        smtp_auth_set_context(s, auth);
    }
    m = smtp_add_message(s);
    if (!m) {
        snprintf(why, size, "libesmtp: cannot add a message");
        r = -EAGAIN;
        goto out;
    }
    smtp_set_reverse_path(m, from);
    add_recipients(m, c->email_to, &nrcpt);
    if (!nrcpt) {
        snprintf(why, size, "no recipients (email_to)");
        r = -EPERM;
        goto out;
    }
    smtp_set_message_str(m, (void *)msgtext);
    if (!smtp_start_session(s)) {
        snprintf(why, size, "SMTP session with %s failed: %s", server,
                 smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
        r = -EAGAIN;
        goto out;
    }
    /* smtp_start_session() succeeds even when the message was refused:
     * the message's own status says (read it before the session goes). */
    st = smtp_message_transfer_status(m);
    code = st ? st->code : 0;
    if (code >= 200 && code < 300) {
        snprintf(why, size, "accepted by %s for %u recipient(s)", server, nrcpt);
        r = 0;
    } else if (code == 0) {
        /* No answer to the message at all: the session ended before it
         * (a timeout, TLS refused, AUTH refused); libesmtp says which. */
        snprintf(why, size, "SMTP session with %s failed before the message: %s", server,
                 smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
        r = -EAGAIN;
    } else {
        snprintf(why, size, "%s answered %d %.120s", server, code, st && st->text ? st->text : "");
        r = code >= 500 ? -EPERM : -EAGAIN;
    }
out:
    if (s)
        smtp_destroy_session(s);
    if (auth)
        auth_destroy_context(auth);
    if (ctx)
        SSL_CTX_free(ctx);
    explicit_bzero(pass, sizeof(pass));
    return r;
}
