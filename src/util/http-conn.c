/* util/http-conn.c -- one connection of the HTTP client: resolved, connected and (for
 * https) TLS-wrapped with every step non-blocking, so each wait is bounded by the request's
 * deadlines and looks at cancelled() at least every HTTP_CANCEL_POLL_MS. Errors name
 * host:port and never carry what was sent or received. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/http-int.h"

SSL_CTX *http_tls_new(struct jb_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return jb_err_set(err, JB_ENOMEM, "TLS context"), NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Idle kept-alive connections should not each hold 2 x 16 KiB of buffers; retries of
     * reads and writes are ours, driven by poll (the sockets are non-blocking). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    jb_tls_trust_system_cas(ctx);
    return ctx;
}

/* ---- waits ------------------------------------------------------------------------------ */

/* Before a wait: -1 with err when cancelled or a deadline has passed, 1 when soft (0:
 * none; a deadline of the caller's own) has, else 0 with *until the end of the next slice
 * of at most HTTP_CANCEL_POLL_MS. */
static int wait_slice(const char *name, const struct http_wait *w, int64_t idle_end, int64_t soft,
                      int64_t *until, struct jb_err *err)
{
    if (w->cancelled && w->cancelled(w->ud)) return jb_err_set(err, JB_ECANCEL, "cancelled");
    int64_t now = jb_mono_ms(), end = now + HTTP_CANCEL_POLL_MS;
    if (w->connect_deadline && now >= w->connect_deadline)
        return jb_err_set(err, JB_ETIMEOUT, "timed out after %ld ms waiting for %s to connect",
                          w->connect_ms, name);
    if (w->deadline && now >= w->deadline)
        return jb_err_set(err, JB_ETIMEOUT, "timed out after %ld ms waiting for %s", w->timeout_ms,
                          name);
    if (idle_end && now >= idle_end)
        return jb_err_set(err, JB_ETIMEOUT, "timed out after %ld ms of silence waiting for %s",
                          w->idle_ms, name);
    if (soft && now >= soft) return 1;
    const int64_t ends[] = {w->connect_deadline, w->deadline, idle_end, soft};
    for (size_t i = 0; i < JB_ARRAY_LEN(ends); i++)
        if (ends[i] && ends[i] < end) end = ends[i];
    *until = end;
    return 0;
}

/* Wait until fd reports ev, an error or a hangup. soft as for wait_slice(): 1 when it
 * passes first, no error set. 0 when ready, -1 with err. */
static int wait_fd(const char *name, int fd, short ev, const struct http_wait *w, int64_t soft,
                   struct jb_err *err)
{
    int64_t idle_end = w->idle_ms > 0 ? jb_mono_ms() + w->idle_ms : 0, until = 0;
    for (;;) {
        int r = wait_slice(name, w, idle_end, soft, &until, err);
        if (r != 0) return r;
        struct pollfd p = {.fd = fd, .events = ev};
        int64_t ms = until - jb_mono_ms();
        r = poll(&p, 1, ms > 0 ? (int)ms : 0);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return jb_err_sys(err, "waiting for %s", name);
    }
}

/* ---- resolving -------------------------------------------------------------------------- */

/* One name lookup on a thread of its own, so the connect deadline and cancelled() bound it
 * as they bound every other wait: a DNS server that does not answer must not hold a
 * request past its timeout. Whoever of the two is last (the lookup, or the request waiting
 * for it) frees it; a request that gave up leaves the lookup to finish and clean up. */
struct lookup {
    pthread_mutex_t mu;
    int refs, done, rc, sys_errno;
    struct addrinfo *res;
    int efd; /* readable once done */
    char port[8];
    char host[];
};

static void lookup_unref(struct lookup *l)
{
    pthread_mutex_lock(&l->mu);
    int last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (!last) return;
    if (l->res) freeaddrinfo(l->res);
    close(l->efd);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(l->host, l->port, &hints, &res);
    int e = errno;
    pthread_mutex_lock(&l->mu);
    l->rc = rc, l->sys_errno = e, l->res = res, l->done = 1;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    if (write(l->efd, &one, sizeof one) < 0) { /* the waiter also sees done at its deadline */
    }
    lookup_unref(l);
    return NULL;
}

static struct lookup *lookup_start(const char *host, const char *port)
{
    size_t hl = strlen(host);
    struct lookup *l = calloc(1, sizeof *l + hl + 1);
    if (!l) return NULL;
    if ((l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) return free(l), NULL;
    pthread_mutex_init(&l->mu, NULL);
    memcpy(l->host, host, hl + 1);
    snprintf(l->port, sizeof l->port, "%s", port);
    l->refs = 2;
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, lookup_run, l);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        l->refs = 1;
        lookup_unref(l);
        return NULL;
    }
    return l;
}

static int resolve(struct http_conn *c, const struct http_wait *w, struct addrinfo **ret,
                   struct jb_err *err)
{
    char port[8];
    snprintf(port, sizeof port, "%u", c->port);
    struct addrinfo numeric = {.ai_family = AF_UNSPEC,
                               .ai_socktype = SOCK_STREAM,
                               .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    if (getaddrinfo(c->host, port, &numeric, ret) == 0) return 0; /* an address: no lookup */
    struct lookup *l = lookup_start(c->host, port);
    if (!l) return jb_err_set(err, JB_ENOMEM, "resolving %s: no thread for the lookup", c->host);
    int waited = wait_fd(c->name, l->efd, POLLIN, w, 0, err);
    pthread_mutex_lock(&l->mu);
    int done = l->done, rc = l->rc, e = l->sys_errno;
    if (done && waited == 0) *ret = l->res, l->res = NULL;
    pthread_mutex_unlock(&l->mu);
    lookup_unref(l);
    if (waited < 0) return -1; /* timed out or cancelled: err says which */
    if (rc != 0)
        return jb_err_set(err, JB_EUNAVAIL, "could not resolve %s: %s", c->host,
                          rc == EAI_SYSTEM ? strerror(e) : gai_strerror(rc));
    return 0;
}

/* ---- connecting ------------------------------------------------------------------------- */

static int connect_one(const char *name, const struct addrinfo *ai, const struct http_wait *w,
                       int64_t soft, int *ret_fd, struct jb_err *err)
{
    jb_autoclose int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) return errno;
        int r = wait_fd(name, fd, POLLOUT, w, soft, err);
        if (r < 0) return -1;
        if (r == 1) return ETIMEDOUT;
        int e = 0;
        socklen_t el = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0) return errno;
        if (e) return e;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static void addrinfo_freep(struct addrinfo **ai)
{
    if (*ai) freeaddrinfo(*ai);
}

/* Each address but the last may use half the time left, so one that drops packets does
 * not take the whole connect timeout from the next. */
static int connect_any(struct http_conn *c, const struct http_wait *w, struct jb_err *err)
{
    jb_auto(addrinfo_freep) struct addrinfo *res = NULL;
    if (resolve(c, w, &res, err) < 0) return -1;
    int last = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int64_t now = jb_mono_ms(), soft = 0;
        if (ai->ai_next && w->connect_deadline > now) soft = now + (w->connect_deadline - now) / 2;
        int e = connect_one(c->name, ai, w, soft, &c->fd, err);
        if (e == 0) return 0;
        if (e < 0) return -1;
        last = e;
    }
    errno = last;
    return jb_err_set(err, JB_EUNAVAIL, "connect to %s: %s", c->name, strerror(last));
}

/* ---- TLS -------------------------------------------------------------------------------- */

static int tls_failed(struct http_conn *c, int sslerr, struct jb_err *err)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();
    if (v != X509_V_OK)
        return jb_err_set(err, JB_EUNAVAIL, "TLS handshake with %s: certificate verify failed (%s)",
                          c->name, X509_verify_cert_error_string(v));
    char why[256];
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    else if (sslerr == SSL_ERROR_SYSCALL && errno)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else
        snprintf(why, sizeof why, "the server closed the connection");
    ERR_clear_error();
    return jb_err_set(err, JB_EUNAVAIL, "TLS handshake with %s: %s", c->name, why);
}

/* A name is checked against the certificate's DNS names and sent as SNI; an IP literal
 * against its IP addresses (and not sent: SNI carries names only). */
static int tls_setup(SSL_CTX *tls, struct http_conn *c, int ip_literal, struct jb_err *err)
{
    if (!(c->ssl = SSL_new(tls)) || SSL_set_fd(c->ssl, c->fd) != 1)
        return jb_err_set(err, JB_ENOMEM, "TLS connection to %s", c->name);
    int ok;
    if (ip_literal) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) == 1;
    } else {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(c->ssl, c->host) == 1 && SSL_set1_host(c->ssl, c->host) == 1;
    }
    if (!ok) {
        ERR_clear_error();
        return jb_err_set(err, JB_EUNAVAIL, "TLS with %s: the host name cannot be checked",
                          c->name);
    }
    SSL_set_connect_state(c->ssl);
    return 0;
}

static int tls_handshake(SSL_CTX *tls, struct http_conn *c, const struct http_wait *w,
                         struct jb_err *err)
{
    struct in6_addr a6;
    struct in_addr a4;
    int ip = inet_pton(AF_INET6, c->host, &a6) == 1 || inet_pton(AF_INET, c->host, &a4) == 1;
    if (tls_setup(tls, c, ip, err) < 0) return -1;
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c->name, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, w, 0, err) < 0)
                return -1;
            continue;
        }
        return tls_failed(c, e, err);
    }
}

int http_conn_open(SSL_CTX *tls, const struct jb_url *u, const struct http_wait *w,
                   struct http_conn **ret, struct jb_err *err)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) return jb_err_set(err, JB_ENOMEM, "connection");
    c->fd = -1;
    c->https = u->https;
    c->port = u->port;
    snprintf(c->host, sizeof c->host, "%s", u->host);
    snprintf(c->name, sizeof c->name, u->ipv6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
    struct http_wait cw = *w;
    cw.idle_ms = 0; /* connecting is bounded by connect_ms, not by the server's silence */
    if (connect_any(c, &cw, err) < 0 || (c->https && tls_handshake(tls, c, &cw, err) < 0)) {
        http_conn_close(c);
        return -1;
    }
    *ret = c;
    return 0;
}

void http_conn_close(struct http_conn *c)
{
    if (!c) return;
    if (c->ssl) {
        /* A close_notify, best effort: the socket is non-blocking and nothing is waited for. */
        if (SSL_is_init_finished(c->ssl) && !c->lost) SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0) close(c->fd);
    free(c);
}

/* ---- reading and writing ---------------------------------------------------------------- */

static int is_lost(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ECONNABORTED || e == ENOTCONN;
}

static int io_failed(struct http_conn *c, const char *doing, int e, struct jb_err *err)
{
    c->lost = is_lost(e);
    errno = e;
    return jb_err_set(err, JB_EUNAVAIL, "%s %s: %s", doing, c->name, strerror(e));
}

/* An SSL_read/SSL_write result r that is not progress: 1 to try again after a wait, 0 at
 * a clean or unclean EOF (reads only), -1 with err. */
static int tls_again(struct http_conn *c, int r, const char *doing, const struct http_wait *w,
                     struct jb_err *err)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return wait_fd(c->name, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, w, 0, err) < 0
                   ? -1
                   : 1;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    int sys = errno;
    unsigned long ssl = ERR_get_error();
    ERR_clear_error();
    if (e == SSL_ERROR_SYSCALL && !ssl) return sys ? io_failed(c, doing, sys, err) : 0;
    /* OpenSSL 3 reports an EOF without close_notify as an SSL error: an EOF all the same
     * (many servers close so); a body the length or chunking bounds is still checked. */
    if (ERR_GET_REASON(ssl) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return 0;
    char why[256];
    ERR_error_string_n(ssl, why, sizeof why);
    c->lost = 1;
    return jb_err_set(err, JB_EUNAVAIL, "%s %s: %s", doing, c->name, why);
}

int http_conn_write(struct http_conn *c, const void *p, size_t n, const struct http_wait *w,
                    struct jb_err *err)
{
    const char *s = p;
    while (n > 0) {
        ssize_t r;
        if (c->ssl) {
            ERR_clear_error();
            r = SSL_write(c->ssl, s, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0) {
                int a = tls_again(c, (int)r, "sending to", w, err);
                if (a < 0) return -1;
                if (a == 0) return io_failed(c, "sending to", EPIPE, err);
                continue;
            }
        } else {
            r = send(c->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                if (wait_fd(c->name, c->fd, POLLOUT, w, 0, err) < 0) return -1;
                continue;
            }
            if (r <= 0) return io_failed(c, "sending to", r < 0 ? errno : EPIPE, err);
        }
        s += r, n -= (size_t)r;
    }
    return 0;
}

ssize_t http_conn_read(struct http_conn *c, void *buf, size_t cap, const struct http_wait *w,
                       struct jb_err *err)
{
    int cap_i = cap > INT32_MAX ? INT32_MAX : (int)cap;
    for (;;) {
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, cap_i);
            if (r > 0) return r;
            int a = tls_again(c, r, "reading from", w, err);
            if (a <= 0) return a;
            continue;
        }
        ssize_t r = recv(c->fd, buf, cap, MSG_DONTWAIT);
        if (r >= 0) return r;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return io_failed(c, "reading from", errno, err);
        if (wait_fd(c->name, c->fd, POLLIN, w, 0, err) < 0) return -1;
    }
}

/* Readable means an EOF, a reset or bytes nobody asked for. Over TLS a readable socket
 * may hold only records that carry no data (TLS 1.3 session tickets): those are read. */
int http_conn_usable(struct http_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 0) return 1;
    if (!c->ssl || (p.revents & (POLLERR | POLLHUP))) return 0;
    char b;
    ERR_clear_error();
    int r = SSL_read(c->ssl, &b, 1);
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    return r <= 0 && e == SSL_ERROR_WANT_READ;
}
