/* util/http-int.h -- private to the HTTP client (http-client.c, http-conn.c): one
 * connection, plain or TLS, and the waits bounded by a request's deadlines. Not part of
 * util.h's interface. */
#ifndef JB_HTTP_INT_H
#define JB_HTTP_INT_H

#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* The longest a wait sleeps before it looks at cancelled() again. */
#define HTTP_CANCEL_POLL_MS 200

/* What bounds a wait. Deadlines are jb_mono_ms() values, 0 when unset; the _ms fields are
 * the settings they came from, for the message. */
struct http_wait {
    int64_t connect_deadline; /* resolving, connecting and the TLS handshake only */
    long connect_ms;
    int64_t deadline; /* the whole exchange */
    long timeout_ms;
    long idle_ms; /* the longest one wait for the server may last; 0: none */
    int (*cancelled)(void *ud);
    void *ud;
};

/* One connection to https/host/port; on the client's idle list through next. */
struct http_conn {
    struct http_conn *next;
    int fd;
    SSL *ssl; /* NULL on a plain connection */
    int https;
    unsigned port;
    char host[256];
    char name[272];     /* "host:port" ("[v6]:port") for messages */
    int64_t idle_since; /* jb_mono_ms() when it went on the idle list */
    int reused;         /* taken from the idle list: it may have been closed meanwhile */
    int lost;           /* the last failure was the server closing or resetting it */
};

/* A TLS client context: TLS 1.2 or later, peer verified against the system's CAs.
 * NULL with err. The caller frees it (SSL_CTX_free). */
SSL_CTX *http_tls_new(struct jb_err *err);

/* Resolve u's host, connect to each of its addresses in turn and, for https, shake hands
 * (tls) checking the certificate's name. *ret is the caller's (http_conn_close()). 0, or -1
 * with err: JB_EUNAVAIL, JB_ETIMEOUT, JB_ECANCEL, JB_ENOMEM. */
int http_conn_open(SSL_CTX *tls, const struct jb_url *u, const struct http_wait *w,
                   struct http_conn **ret, struct jb_err *err);
/* Send all n bytes. 0, or -1 with err (c->lost when the server closed or reset it). */
int http_conn_write(struct http_conn *c, const void *p, size_t n, const struct http_wait *w,
                    struct jb_err *err);
/* Up to cap bytes, waiting for at least one: > 0, 0 at EOF, -1 with err. */
ssize_t http_conn_read(struct http_conn *c, void *buf, size_t cap, const struct http_wait *w,
                       struct jb_err *err);
/* An idle connection is still usable: nothing to read on it (no EOF, no stray bytes). */
int http_conn_usable(struct http_conn *c);
void http_conn_close(struct http_conn *c); /* accepts NULL */

#endif
