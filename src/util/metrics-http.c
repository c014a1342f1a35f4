/* util/metrics-http.c -- a small plain-HTTP listener for Prometheus and health checks:
 * GET /metrics, /healthz, /readyz. One accept thread; each connection on a thread of its
 * own (at most HTTP_CONNS at once), so a slow client delays nobody else. Requests are read
 * strictly: one request line (METHOD SP /path SP HTTP/1.x), headers skipped, no body; the
 * connection is closed after each answer. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "util/util.h"

#define HTTP_CONNS       8
#define HTTP_HEAD_MAX    8192
#define HTTP_TIMEOUT_MS  5000
#define OVERFLOW_WAIT_MS 200 /* a probe's head, when every slot is taken */
#define OVERFLOW_MAX     32  /* such heads awaited at once, by the accept thread's poll */
#define HEALTHZ_LINE     "GET /healthz HTTP/1."

struct http_conn {
    atomic_int state; /* 0 free, 1 running, 2 done (to be joined) */
    int fd;
    pthread_t tid;
    struct jb_metrics_http *h;
};

/* A connection that came when every slot was taken: its first bytes say whether it is a
 * liveness probe (answered) or not (told "busy"). Waited for in the accept thread's poll,
 * never in a blocking read, so silent peers delay no one. */
struct http_overflow {
    int fd; /* -1: unused */
    int64_t deadline_ms;
    size_t len;
    char head[sizeof HEALTHZ_LINE];
};

struct jb_metrics_http {
    struct jb_metrics *m;
    jb_ready_fn ready;
    void *ud;
    int lfd, stop_pipe[2];
    pthread_t accept_tid;
    pthread_mutex_t mu; /* the fds of running connections, against stop's shutdown() */
    struct http_conn conns[HTTP_CONNS];
    struct http_overflow over[OVERFLOW_MAX]; /* the accept thread's alone */
};

/* A listen address with a port from 1 to 65535 (a scrape target needs a fixed one). */
static int split_addr(const char *name, const char *addr, char host[256], char port[6],
                      struct jb_err *err)
{
    if (jb_split_hostport(addr, host, port) < 0 || atoi(port) < 1)
        return jb_err_set(err, JB_ECONFIG,
                          "%s=\"%.100s\" is not valid: expected HOST:PORT or [IPv6]:PORT with a "
                          "port from 1 to 65535, like 127.0.0.1:9464",
                          name, addr);
    return 0;
}

int jb_metrics_addr_check(const char *name, const char *addr, struct jb_err *err)
{
    char host[256], port[6];
    return split_addr(name, addr, host, port, err);
}

static int listen_tcp(const char *addr, struct jb_err *err)
{
    char host[256], port[6];
    if (split_addr("JANEBOT_METRICS_LISTEN", addr, host, port, err) < 0) return -1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_METRICS_LISTEN=\"%s\": %s", addr,
                          gai_strerror(gai));
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            jb_err_sys(err, "metrics: cannot listen on %s (JANEBOT_METRICS_LISTEN)", addr);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0 && !(err && err->msg[0])) jb_err_sys(err, "metrics: socket for %s", addr);
    return fd;
}

/* ---- one connection ---- */

/* The request head, up to its blank line: 1 read, 0 the client sent nothing usable in
 * time or closed, -1 too long. */
static int read_head(int fd, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    int64_t deadline = jb_mono_ms() + HTTP_TIMEOUT_MS;
    for (;;) {
        buf[*len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) return 1;
        if (*len + 1 >= cap) return -1;
        int64_t left = deadline - jb_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) return 0;
        ssize_t n = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (n <= 0) return 0;
        *len += (size_t)n;
    }
}

/* Every byte, or until the peer is gone or SO_SNDTIMEO passes (no SIGPIPE). */
static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int code, const char *ctype, const char *extra, const char *body,
                    size_t blen)
{
    static const struct {
        int code;
        const char *reason;
    } reasons[] = {{200, "OK"},
                   {400, "Bad Request"},
                   {404, "Not Found"},
                   {405, "Method Not Allowed"},
                   {431, "Request Header Fields Too Large"},
                   {500, "Internal Server Error"},
                   {503, "Service Unavailable"}};
    const char *reason = "Error";
    for (size_t i = 0; i < JB_ARRAY_LEN(reasons); i++)
        if (reasons[i].code == code) reason = reasons[i].reason;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, blen, extra ? extra : "");
    if (n > 0 && (size_t)n < sizeof head && send_all(fd, head, (size_t)n) == 0)
        (void)send_all(fd, body, blen);
}

static void respond_text(int fd, int code, const char *extra, const char *text)
{
    respond(fd, code, "text/plain; charset=utf-8", extra, text, strlen(text));
}

/* "METHOD SP TARGET SP HTTP/1.x" on the first line: 0 with method and path (the target
 * without its query), -1 when it is not one. */
static int parse_request_line(const char *head, char method[16], char path[256])
{
    size_t i = 0;
    while (i < 15 && isupper((unsigned char)head[i]))
        method[i] = head[i], i++;
    method[i] = '\0';
    if (i == 0 || head[i] != ' ') return -1;
    const char *t = head + i + 1, *sp = strchr(t, ' ');
    if (*t != '/' || !sp) return -1;
    size_t tn = strcspn(t, "? ");
    if (tn >= 256) return -1;
    for (const char *p = t; p < sp; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return -1;
    memcpy(path, t, tn);
    path[tn] = '\0';
    const char *v = sp + 1;
    if (strncmp(v, "HTTP/1.0", 8) != 0 && strncmp(v, "HTTP/1.1", 8) != 0) return -1;
    return v[8] == '\r' || v[8] == '\n' ? 0 : -1;
}

static void serve_metrics(struct jb_metrics_http *h, int fd)
{
    struct jb_buf out = JB_BUF_INIT(16 << 20);
    struct jb_err e = {0};
    if (jb_metrics_render(h->m, &out, &e) < 0) {
        log_warn("metrics: cannot render: %s", e.msg);
        respond_text(fd, 500, NULL, "cannot render the metrics\n");
    } else {
        respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, out.data, out.len);
    }
    jb_buf_release(&out);
}

static void serve_one(struct jb_metrics_http *h, int fd)
{
    char head[HTTP_HEAD_MAX], method[16], path[256];
    size_t len;
    int r = read_head(fd, head, sizeof head, &len);
    if (r == 0) return;
    if (r < 0) return respond_text(fd, 431, NULL, "request head too large\n");
    if (parse_request_line(head, method, path) < 0)
        return respond_text(fd, 400, NULL, "bad request\n");
    if (strcmp(method, "GET") != 0)
        return respond_text(fd, 405, "Allow: GET\r\n", "only GET is served here\n");
    if (!strcmp(path, "/metrics")) return serve_metrics(h, fd);
    if (!strcmp(path, "/healthz")) return respond_text(fd, 200, NULL, "ok\n");
    if (strcmp(path, "/readyz") != 0)
        return respond_text(fd, 404, NULL, "not found: try /metrics, /healthz or /readyz\n");
    char why[256] = "not ready", body[300];
    if (h->ready && h->ready(h->ud, why, sizeof why)) return respond_text(fd, 200, NULL, "ok\n");
    snprintf(body, sizeof body, "%s\n", why);
    respond_text(fd, 503, NULL, body);
}

static void *conn_main(void *arg)
{
    struct http_conn *c = arg;
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_MS / 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    serve_one(c->h, c->fd);
    pthread_mutex_lock(&c->h->mu);
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&c->h->mu);
    atomic_store(&c->state, 2);
    return NULL;
}

/* ---- the listener ---- */

static void reap(struct jb_metrics_http *h)
{
    for (size_t i = 0; i < HTTP_CONNS; i++)
        if (atomic_load(&h->conns[i].state) == 2) {
            pthread_join(h->conns[i].tid, NULL);
            atomic_store(&h->conns[i].state, 0);
        }
}

/* Answer an overflow connection: a probe's "ok", else "busy"; then close it. */
static void overflow_finish(struct http_overflow *o)
{
    int healthz = o->len == sizeof HEALTHZ_LINE - 1 && !memcmp(o->head, HEALTHZ_LINE, o->len);
    if (healthz)
        respond_text(o->fd, 200, NULL, "ok\n");
    else
        respond_text(o->fd, 503, NULL, "busy\n");
    /* Unread request bytes at close() would reset the connection under the answer. */
    shutdown(o->fd, SHUT_WR);
    char sink[512];
    while (recv(o->fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    close(o->fd);
    o->fd = -1;
}

/* Take what the peer sent; finish once the line can be judged, the peer is gone or waited
 * long enough. */
static void overflow_step(struct http_overflow *o, int readable, int64_t now)
{
    if (readable) {
        ssize_t n = recv(o->fd, o->head + o->len, sizeof HEALTHZ_LINE - 1 - o->len, MSG_DONTWAIT);
        if (n > 0) o->len += (size_t)n;
        int early = o->len && memcmp(o->head, HEALTHZ_LINE, o->len) != 0; /* not a probe */
        if (n == 0 || early || o->len == sizeof HEALTHZ_LINE - 1) return overflow_finish(o);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return overflow_finish(o);
    }
    if (now >= o->deadline_ms) overflow_finish(o);
}

/* Full (or no thread): peers holding every slot must not make a liveness probe restart a
 * healthy process, so /healthz is still answered, from a head that arrives within a short
 * wait; anything else is told "busy". With OVERFLOW_MAX waiting, the oldest is answered. */
static void overflow_add(struct jb_metrics_http *h, int fd)
{
    struct http_overflow *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < OVERFLOW_MAX && !slot; i++) {
        struct http_overflow *o = &h->over[i];
        if (o->fd < 0)
            slot = o;
        else if (!oldest || o->deadline_ms < oldest->deadline_ms)
            oldest = o;
    }
    if (!slot) {
        overflow_finish(oldest);
        slot = oldest;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = OVERFLOW_WAIT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* the answer is tiny */
    *slot = (struct http_overflow){.fd = fd, .deadline_ms = jb_mono_ms() + OVERFLOW_WAIT_MS};
}

static void accept_one(struct jb_metrics_http *h)
{
    int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    reap(h);
    struct http_conn *c = NULL;
    for (size_t i = 0; i < HTTP_CONNS && !c; i++)
        if (atomic_load(&h->conns[i].state) == 0) c = &h->conns[i];
    if (c) {
        pthread_mutex_lock(&h->mu);
        c->fd = fd;
        pthread_mutex_unlock(&h->mu);
        atomic_store(&c->state, 1);
        if (pthread_create(&c->tid, NULL, conn_main, c) == 0) return;
        atomic_store(&c->state, 0);
        c->fd = -1;
    }
    overflow_add(h, fd);
}

static void *accept_main(void *arg)
{
    struct jb_metrics_http *h = arg;
    for (;;) {
        struct pollfd p[2 + OVERFLOW_MAX] = {{.fd = h->lfd, .events = POLLIN},
                                             {.fd = h->stop_pipe[0], .events = POLLIN}};
        int64_t now = jb_mono_ms(), wait = 1000;
        for (size_t i = 0; i < OVERFLOW_MAX; i++) {
            p[2 + i] = (struct pollfd){.fd = h->over[i].fd, .events = POLLIN};
            if (h->over[i].fd >= 0 && h->over[i].deadline_ms - now < wait)
                wait = h->over[i].deadline_ms - now > 0 ? h->over[i].deadline_ms - now : 0;
        }
        if (poll(p, 2 + OVERFLOW_MAX, (int)wait) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        now = jb_mono_ms();
        for (size_t i = 0; i < OVERFLOW_MAX; i++)
            if (h->over[i].fd >= 0) overflow_step(&h->over[i], p[2 + i].revents != 0, now);
        if (p[0].revents & POLLIN) accept_one(h);
        reap(h);
    }
    for (size_t i = 0; i < OVERFLOW_MAX; i++)
        if (h->over[i].fd >= 0) close(h->over[i].fd);
    return NULL;
}

int jb_metrics_http_start(struct jb_metrics *m, const char *addr, jb_ready_fn ready, void *ud,
                          struct jb_metrics_http **ret, struct jb_err *err)
{
    struct jb_metrics_http *h = calloc(1, sizeof *h);
    if (!h) return jb_err_set(err, JB_ENOMEM, "metrics listener");
    *h = (struct jb_metrics_http){
        .m = m, .ready = ready, .ud = ud, .lfd = -1, .stop_pipe = {-1, -1}};
    pthread_mutex_init(&h->mu, NULL);
    for (size_t i = 0; i < HTTP_CONNS; i++)
        h->conns[i].fd = -1, h->conns[i].h = h;
    for (size_t i = 0; i < OVERFLOW_MAX; i++)
        h->over[i].fd = -1;
    if ((h->lfd = listen_tcp(addr, err)) < 0) goto fail;
    if (pipe2(h->stop_pipe, O_CLOEXEC) < 0) {
        jb_err_sys(err, "metrics: pipe");
        goto fail;
    }
    if (pthread_create(&h->accept_tid, NULL, accept_main, h) != 0) {
        jb_err_set(err, JB_ESYS, "metrics: cannot start the listener thread");
        goto fail;
    }
    log_info("metrics: serving /metrics, /healthz and /readyz on http://%s", addr);
    *ret = h;
    return 0;
fail:
    if (h->lfd >= 0) close(h->lfd);
    if (h->stop_pipe[0] >= 0) close(h->stop_pipe[0]), close(h->stop_pipe[1]);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return -1;
}

void jb_metrics_http_stop(struct jb_metrics_http *h)
{
    if (!h) return;
    (void)!write(h->stop_pipe[1], "x", 1);
    pthread_join(h->accept_tid, NULL);
    close(h->lfd);
    pthread_mutex_lock(&h->mu); /* a slow client's connection ends now */
    for (size_t i = 0; i < HTTP_CONNS; i++)
        if (h->conns[i].fd >= 0) shutdown(h->conns[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < HTTP_CONNS; i++)
        if (atomic_load(&h->conns[i].state) != 0) pthread_join(h->conns[i].tid, NULL);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
