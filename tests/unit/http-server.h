/* tests/unit/http-server.h -- a scripted HTTP/1.1 server on 127.0.0.1 for the client's
 * tests (plain or TLS with a certificate made here): it records each request it reads
 * (head and Content-Length body) and answers request i with step i of its script. One
 * connection at a time, on a thread of its own. */
#ifndef JB_TEST_HTTP_SERVER_H
#define JB_TEST_HTTP_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SRV_STEPS   8
#define SRV_REQ_MAX (512 * 1024)

struct srv_step {
    const char *answer; /* bytes sent back (NULL: none) */
    int bytewise;       /* one byte per write, 1 ms apart */
    int close;          /* close the connection after the answer */
    int stall;          /* after the answer, hold the connection until the test ends */
};

struct srv {
    int lfd;
    unsigned port;
    pthread_t thread;
    SSL_CTX *tls; /* NULL: plain TCP */
    struct srv_step steps[SRV_STEPS];
    atomic_int accepts, stop, nreq;
    char *req[SRV_STEPS]; /* what request i was, head and body */
    size_t req_len[SRV_STEPS];
};

struct srv_conn {
    int fd;
    SSL *ssl;
};

/* Bytes of a request; -1 at EOF, when the test ends, or when another connection waits
 * before this one started a request (the server serves one connection at a time). */
static inline ssize_t srv_recv(struct srv *s, struct srv_conn *c, char *p, size_t n, int started)
{
    while (!(c->ssl && SSL_pending(c->ssl))) {
        struct pollfd pf[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = s->lfd, .events = POLLIN}};
        if (s->stop || poll(pf, 2, 20) < 0) return -1;
        if (pf[0].revents) break;
        if (pf[1].revents && !started) return -1;
    }
    return c->ssl ? SSL_read(c->ssl, p, (int)n) : recv(c->fd, p, n, 0);
}

static inline void srv_send(struct srv_conn *c, const char *p, size_t n)
{
    if (c->ssl)
        SSL_write(c->ssl, p, (int)n);
    else
        send(c->fd, p, n, MSG_NOSIGNAL);
}

/* One request (head, then as many bytes as its Content-Length says): its index, or -1 at
 * EOF. */
static inline int srv_read_request(struct srv *s, struct srv_conn *c)
{
    int i = s->nreq;
    if (i >= SRV_STEPS) return -1;
    char *b = s->req[i] ? s->req[i] : (s->req[i] = calloc(1, SRV_REQ_MAX + 1));
    size_t n = 0, want = 0;
    for (;;) {
        const char *end = memmem(b, n, "\r\n\r\n", 4);
        if (end && !want) {
            const char *cl = strcasestr(b, "\r\nContent-Length: ");
            want = (size_t)(end - b) + 4 + (cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0);
        }
        if (want && n >= want) break;
        ssize_t r = srv_recv(s, c, b + n, SRV_REQ_MAX - n, n > 0);
        if (r <= 0) return -1;
        n += (size_t)r;
        b[n] = '\0';
    }
    s->req_len[i] = n;
    s->nreq = i + 1;
    return i;
}

static inline void srv_hold(struct srv *s)
{
    while (!s->stop)
        usleep(10000);
}

static inline void srv_serve(struct srv *s, struct srv_conn *c)
{
    for (;;) {
        int i = srv_read_request(s, c);
        if (i < 0) return;
        const struct srv_step *st = &s->steps[i];
        size_t n = st->answer ? strlen(st->answer) : 0;
        for (size_t k = 0; k < n; k += st->bytewise ? 1 : n) {
            srv_send(c, st->answer + k, st->bytewise ? 1 : n);
            if (st->bytewise) usleep(1000);
        }
        if (st->stall) srv_hold(s);
        if (st->close || st->stall) return;
    }
}

static inline void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        struct srv_conn c = {.fd = accept(s->lfd, NULL, NULL)};
        if (c.fd < 0) continue;
        s->accepts++;
        int on = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (s->tls) {
            c.ssl = SSL_new(s->tls);
            SSL_set_fd(c.ssl, c.fd);
        }
        if (!c.ssl || SSL_accept(c.ssl) == 1) srv_serve(s, &c);
        if (c.ssl) {
            SSL_shutdown(c.ssl);
            SSL_free(c.ssl);
        }
        close(c.fd);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1; its port. */
static inline int srv_listen(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        abort();
    *port = ntohs(a.sin_port);
    return fd;
}

static inline void srv_start(struct srv *s)
{
    s->lfd = srv_listen(&s->port);
    if (pthread_create(&s->thread, NULL, srv_main, s) != 0) abort();
}

/* Ends the thread (once): what it recorded may be read after this. */
static inline void srv_stop(struct srv *s)
{
    if (!s->lfd || s->stop) return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static inline void srv_free(struct srv *s)
{
    srv_stop(s);
    for (int i = 0; i < SRV_STEPS; i++)
        free(s->req[i]);
    SSL_CTX_free(s->tls);
    memset(s, 0, sizeof *s);
}

/* ---- certificates -------------------------------------------------------------------- */

/* A self-signed certificate for san ("IP:127.0.0.1,DNS:localhost"), its key into *key. */
static inline X509 *srv_make_cert(const char *san, EVP_PKEY **key)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    if (!k || !x) abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"janebot test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *ext[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                            {"keyUsage", "critical,digitalSignature,keyCertSign"},
                            {"subjectAltName", san}};
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, ext[i][0], ext[i][1]);
        if (!e) abort();
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, k, EVP_sha256())) abort();
    *key = k;
    return x;
}

/* The certificate as PEM in a new file under /tmp; its path (caller frees and unlinks). */
static inline char *srv_write_cert(X509 *x)
{
    char *path = strdup("/tmp/janebot-test-ca-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_X509(f, x)) abort();
    fclose(f);
    return path;
}

/* s serves TLS with a certificate for san; the PEM of that certificate is written to a
 * file whose path is returned (caller frees and unlinks). */
static inline char *srv_use_tls(struct srv *s, const char *san)
{
    EVP_PKEY *k;
    X509 *x = srv_make_cert(san, &k);
    s->tls = SSL_CTX_new(TLS_server_method());
    if (!s->tls || SSL_CTX_use_certificate(s->tls, x) != 1 ||
        SSL_CTX_use_PrivateKey(s->tls, k) != 1)
        abort();
    char *path = srv_write_cert(x);
    X509_free(x);
    EVP_PKEY_free(k);
    return path;
}

#endif
