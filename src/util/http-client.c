/* util/http-client.c -- janebot's HTTP/1.1 client (util.h): a request head of the client's
 * own making, a body from memory or a reader, the answer read by http_parser and handed
 * over as it comes, and kept-alive connections shared by every thread through one
 * mutex-protected idle list. A kept-alive connection the server closed meanwhile is found
 * out before use where possible, and else costs one retry on a new connection, as long as
 * nothing of the answer came and the body can be sent again. */
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/http-int.h"

#define HEAD_MAX       (64 * 1024) /* an answer's status line and headers */
#define HEADERS_MAX    100
#define INTERIM_MAX    16          /* 1xx answers before the final one */
#define IDLE_KEEP_MS   60000       /* an idle connection unused for longer is closed */
#define INLINE_BODY    (64 * 1024) /* a smaller body in memory goes in one write with the head */
#define READ_CHUNK     (64 * 1024)
#define REQ_HEAD_MAX   (1024 * 1024)
#define CONNECT_MS_DEF 10000

struct jb_http {
    SSL_CTX *tls; /* made on the first https:// connection, under lock */
    pthread_mutex_t lock;
    struct http_conn *idle; /* most recently used first */
    size_t nidle, max_idle;
};

struct jb_http *jb_http_new(int max_idle, struct jb_err *err)
{
    struct jb_http *h = calloc(1, sizeof *h);
    if (!h) return jb_err_set(err, JB_ENOMEM, "HTTP client"), NULL;
    pthread_mutex_init(&h->lock, NULL);
    h->max_idle = max_idle > 0 ? (size_t)max_idle : 8;
    return h;
}

static void close_list(struct http_conn *c)
{
    while (c) {
        struct http_conn *next = c->next;
        http_conn_close(c);
        c = next;
    }
}

void jb_http_free(struct jb_http *h)
{
    if (!h) return;
    close_list(h->idle);
    SSL_CTX_free(h->tls);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const struct jb_http_header *jb_http_header_get(const struct jb_http_header *hdr, size_t n,
                                                const char *name)
{
    size_t len = strlen(name);
    for (size_t i = n; i-- > 0;)
        if (hdr[i].name_len == len && strncasecmp(hdr[i].name, name, len) == 0) return &hdr[i];
    return NULL;
}

/* ---- the idle list ---------------------------------------------------------------------- */

static int conn_matches(const struct http_conn *c, const struct jb_url *u)
{
    return c->https == u->https && c->port == u->port && strcasecmp(c->host, u->host) == 0;
}

/* The most recently used idle connection to u's origin, or NULL; those unused for
 * IDLE_KEEP_MS are closed on the way (outside the lock: a TLS close may write). */
static struct http_conn *idle_take(struct jb_http *h, const struct jb_url *u)
{
    struct http_conn *got = NULL, *stale = NULL;
    int64_t now = jb_mono_ms();
    pthread_mutex_lock(&h->lock);
    for (struct http_conn **pp = &h->idle; *pp;) {
        struct http_conn *c = *pp;
        int old = now - c->idle_since > IDLE_KEEP_MS;
        if (!old && (got || !conn_matches(c, u))) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        h->nidle--;
        if (old)
            c->next = stale, stale = c;
        else
            got = c;
    }
    pthread_mutex_unlock(&h->lock);
    close_list(stale);
    if (got) got->next = NULL, got->reused = 1, got->lost = 0;
    return got;
}

/* c on the idle list; the oldest goes when the list is over max_idle. */
static void idle_put(struct jb_http *h, struct http_conn *c)
{
    struct http_conn *drop = NULL;
    c->idle_since = jb_mono_ms();
    pthread_mutex_lock(&h->lock);
    c->next = h->idle;
    h->idle = c;
    if (++h->nidle > h->max_idle) {
        struct http_conn **pp = &h->idle;
        while ((*pp)->next)
            pp = &(*pp)->next;
        drop = *pp;
        *pp = NULL;
        h->nidle--;
    }
    pthread_mutex_unlock(&h->lock);
    http_conn_close(drop);
}

/* ---- the request ------------------------------------------------------------------------ */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return 0;
    return n > 0;
}

/* The caller's header lines: "Name: value", a token for a name, no CR or LF anywhere, and
 * none of the headers that frame the message, which are the client's to write. Header
 * values are never quoted back: they may be secrets. */
static int check_headers(const char *const *headers, struct jb_err *err)
{
    static const char *const own[] = {"host", "content-length", "transfer-encoding", "connection"};
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *line = headers[i], *colon = strchr(line, ':');
        if (strpbrk(line, "\r\n"))
            return jb_err_set(err, JB_EPROTO, "request header %zu holds a CR or LF", i + 1);
        size_t nl = colon ? (size_t)(colon - line) : 0;
        if (!is_token(line, nl))
            return jb_err_set(err, JB_EPROTO, "request header %zu is not \"Name: value\"", i + 1);
        for (size_t k = 0; k < JB_ARRAY_LEN(own); k++)
            if (strlen(own[k]) == nl && strncasecmp(line, own[k], nl) == 0)
                return jb_err_set(err, JB_EPROTO, "request header %.*s is set by the client",
                                  (int)nl, line);
    }
    return 0;
}

static int has_body(const struct jb_http_req *rq)
{
    return rq->has_body || rq->body || rq->read;
}

static const char *method_of(const struct jb_http_req *rq)
{
    return rq->method ? rq->method : has_body(rq) ? "POST" : "GET";
}

/* The head, and an in-memory body under INLINE_BODY after it, so both go in one write. */
static int build_head(const struct jb_http_req *rq, const struct jb_url *u, struct jb_buf *b,
                      struct jb_err *err)
{
    const char *m = method_of(rq);
    if (!is_token(m, strlen(m))) return jb_err_set(err, JB_EPROTO, "bad request method");
    int dflt = u->port == (u->https ? 443u : 80u);
    if (jb_buf_appendf(b, err, "%s %s HTTP/1.1\r\nHost: %s%s%s", m, u->target, u->ipv6 ? "[" : "",
                       u->host, u->ipv6 ? "]" : "") < 0 ||
        (u->port_given && !dflt && jb_buf_appendf(b, err, ":%u", u->port) < 0) ||
        jb_buf_append(b, "\r\nUser-Agent: janebot\r\n", 23, err) < 0)
        return -1;
    for (size_t i = 0; rq->headers && rq->headers[i]; i++)
        if (jb_buf_appendf(b, err, "%s\r\n", rq->headers[i]) < 0) return -1;
    if (has_body(rq) && jb_buf_appendf(b, err, "Content-Length: %zu\r\n", rq->body_len) < 0)
        return -1;
    if (jb_buf_append(b, "\r\n", 2, err) < 0) return -1;
    if (rq->body && !rq->read && rq->body_len < INLINE_BODY)
        return jb_buf_append(b, rq->body, rq->body_len, err);
    return 0;
}

/* The body from rq->read(), READ_CHUNK at a time, exactly body_len bytes. */
static int send_read_body(struct http_conn *c, const struct jb_http_req *rq,
                          const struct http_wait *w, struct jb_err *err)
{
    jb_autofree char *chunk = malloc(READ_CHUNK);
    if (!chunk) return jb_err_set(err, JB_ENOMEM, "request body buffer");
    for (size_t left = rq->body_len; left > 0;) {
        size_t want = left < READ_CHUNK ? left : READ_CHUNK;
        ssize_t r = rq->read(rq->ud, chunk, want);
        if (r < 0) return jb_err_set(err, JB_ECANCEL, "the request body could not be read");
        if (r == 0 || (size_t)r > want)
            return jb_err_set(err, JB_EPROTO, "the request body ended after %zu of %zu bytes",
                              rq->body_len - left, rq->body_len);
        if (http_conn_write(c, chunk, (size_t)r, w, err) < 0) return -1;
        left -= (size_t)r;
    }
    return 0;
}

static int send_request(struct http_conn *c, const struct jb_http_req *rq,
                        const struct jb_buf *head, const struct http_wait *w,
                        struct jb_http_resp *rs, struct jb_err *err)
{
    rs->sent = 1;
    if (http_conn_write(c, head->data, head->len, w, err) < 0) return -1;
    if (rq->read) return send_read_body(c, rq, w, err);
    if (rq->body && rq->body_len >= INLINE_BODY)
        return http_conn_write(c, rq->body, rq->body_len, w, err);
    return 0;
}

/* ---- the answer ------------------------------------------------------------------------- */

struct span {
    size_t off, len;
};

/* One exchange's reading of the answer. Pieces of the status line and headers may come in
 * separate callbacks and separate reads, so they are copied into head as they come; the
 * spans index it. Trailers (after a chunked body) are read but not kept. */
struct answer {
    http_parser p;
    const struct jb_http_req *rq;
    struct jb_http_resp *rs;
    const char *name; /* host:port */
    struct jb_err *err;
    int failed;  /* a callback set err */
    int is_head; /* the request was a HEAD: no body follows */
    struct jb_buf head;
    struct span reason, names[HEADERS_MAX], values[HEADERS_MAX];
    size_t nhdr;
    int in_value;
    int head_done; /* the final answer's head went to on_head */
    int interim;   /* 1xx answers skipped */
    int restart;   /* an interim answer ended: the next one starts */
    long long body_total;
    int got_bytes, keep_alive;
};

static int fail(struct answer *a, enum jb_code code, const char *what)
{
    jb_err_set(a->err, code, "%s", what);
    a->failed = 1;
    return -1;
}

static int add_piece(struct answer *a, struct span *s, int start, const char *at, size_t n)
{
    if (start) *s = (struct span){.off = a->head.len};
    if (jb_buf_append(&a->head, at, n, NULL) < 0)
        return fail(a, JB_EPROTO, "answer head too large");
    s->len += n;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct answer *a = p->data;
    jb_buf_reset(&a->head);
    a->reason = (struct span){0};
    a->nhdr = 0, a->in_value = 0;
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    return add_piece(a, &a->reason, a->reason.len == 0, at, n);
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    if (a->head_done) return 0;
    int start = a->nhdr == 0 || a->in_value;
    if (start && a->nhdr == HEADERS_MAX) return fail(a, JB_EPROTO, "answer head too large");
    if (start) a->values[a->nhdr++] = (struct span){0};
    a->in_value = 0;
    return add_piece(a, &a->names[a->nhdr - 1], start, at, n);
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    if (a->head_done) return 0;
    int start = !a->in_value;
    a->in_value = 1;
    return add_piece(a, &a->values[a->nhdr - 1], start, at, n);
}

/* The final head to on_head, values without surrounding blanks. */
static int deliver_head(struct answer *a)
{
    struct jb_http_header hdr[HEADERS_MAX];
    for (size_t i = 0; i < a->nhdr; i++) {
        const char *v = a->head.data + a->values[i].off;
        size_t vl = a->values[i].len;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        hdr[i] = (struct jb_http_header){.name = a->head.data + a->names[i].off,
                                         .name_len = a->names[i].len,
                                         .value = v,
                                         .value_len = vl};
    }
    if (!a->rq->on_head) return 0;
    return a->rq->on_head(a->rq->ud, a->rs->status, a->head.data + a->reason.off, a->reason.len,
                          hdr, a->nhdr);
}

/* 1 tells the parser no body follows: HEAD, 1xx, 204, 304. */
static int on_headers_complete(http_parser *p)
{
    struct answer *a = p->data;
    unsigned st = p->status_code;
    if (st / 100 == 1 && st != 101) {
        if (++a->interim > INTERIM_MAX) return fail(a, JB_EPROTO, "too many interim answers");
        return 1;
    }
    a->rs->status = (int)st;
    a->head_done = 1;
    if (deliver_head(a) < 0) return fail(a, JB_ECANCEL, "cancelled");
    long long max = a->rq->max_body;
    if (max > 0 && !(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > (unsigned long long)max) {
        a->rs->too_big = 1;
        jb_err_set(a->err, JB_EPROTO, "answer body over %lld bytes", max);
        return a->failed = 1, -1;
    }
    return a->is_head || st == 101 || st == 204 || st == 304;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    a->body_total += (long long)n;
    if (a->rq->max_body > 0 && a->body_total > a->rq->max_body) {
        a->rs->too_big = 1;
        jb_err_set(a->err, JB_EPROTO, "answer body over %lld bytes", a->rq->max_body);
        return a->failed = 1, -1;
    }
    if (a->rq->on_body && a->rq->on_body(a->rq->ud, at, n) < 0)
        return fail(a, JB_ECANCEL, "cancelled");
    return 0;
}

/* Both end in a pause, so the bytes after the message are left for the reader to judge:
 * the next answer after an interim one, stray bytes after the final one. */
static int on_message_complete(http_parser *p)
{
    struct answer *a = p->data;
    if (a->head_done) {
        a->rs->complete = 1;
        a->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    } else {
        a->restart = 1;
    }
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings answer_settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void answer_start(struct answer *a)
{
    http_parser_init(&a->p, HTTP_RESPONSE);
    a->p.data = a;
    a->restart = 0;
}

/* rc of a batch of the answer, once the caller's on_fed has taken what it gathered. */
static int answer_fed(struct answer *a, int rc)
{
    if (rc < 0 || !a->rq->on_fed || a->rq->on_fed(a->rq->ud) == 0) return rc;
    return fail(a, JB_ECANCEL, "cancelled");
}

/* n bytes through the parser. 1 when the final answer is complete, 0 for more, -1 with err. */
static int answer_parse(struct answer *a, const char *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        off += http_parser_execute(&a->p, &answer_settings, buf + off, n - off);
        if (a->failed) return -1;
        enum http_errno e = HTTP_PARSER_ERRNO(&a->p);
        if (e == HPE_PAUSED && a->rs->complete) {
            if (off < n) a->keep_alive = 0; /* bytes nobody asked for */
            return 1;
        }
        if (e == HPE_PAUSED && a->restart) {
            answer_start(a);
            continue;
        }
        if (e != HPE_OK)
            return jb_err_set(a->err, JB_EPROTO, "malformed answer from %s: %s", a->name,
                              http_errno_description(e));
    }
    return 0;
}

/* Feed n bytes read from the server: answer_parse(), then on_fed. */
static int answer_feed(struct answer *a, const char *buf, size_t n)
{
    return answer_fed(a, answer_parse(a, buf, n));
}

/* The server closed: the end of a body that runs to the close, else an answer cut short. */
static int answer_eof(struct answer *a)
{
    if (a->got_bytes) {
        http_parser_execute(&a->p, &answer_settings, NULL, 0);
        if (a->failed) return -1;
        if (a->rs->complete) return a->keep_alive = 0, answer_fed(a, 1);
        return jb_err_set(a->err, JB_EUNAVAIL, "%s closed the connection mid-answer", a->name);
    }
    return jb_err_set(a->err, JB_EUNAVAIL, "%s closed the connection before answering", a->name);
}

static int read_answer(struct http_conn *c, struct answer *a, const struct http_wait *w)
{
    char buf[16384];
    for (;;) {
        ssize_t n = http_conn_read(c, buf, sizeof buf, w, a->err);
        if (n < 0) return -1;
        int r;
        if (n == 0) {
            c->lost = !a->got_bytes;
            r = answer_eof(a);
        } else {
            a->got_bytes = 1;
            r = answer_feed(a, buf, (size_t)n);
        }
        if (r != 0) return r < 0 ? -1 : 0;
    }
}

/* ---- one exchange ----------------------------------------------------------------------- */

static int cancelled(const struct jb_http_req *rq, struct jb_err *err)
{
    if (rq->cancelled && rq->cancelled(rq->ud)) return jb_err_set(err, JB_ECANCEL, "cancelled");
    return 0;
}

/* The TLS context, made when first needed: loading CAs costs memory (a whole bundle where
 * SSL_CERT_FILE names one) that a client speaking only http:// never uses. */
static SSL_CTX *tls_ctx(struct jb_http *h, struct jb_err *err)
{
    pthread_mutex_lock(&h->lock);
    if (!h->tls) h->tls = http_tls_new(err);
    SSL_CTX *t = h->tls;
    pthread_mutex_unlock(&h->lock);
    return t;
}

/* A usable connection to u: an idle one that still looks open, else a new one. */
static int get_conn(struct jb_http *h, const struct jb_url *u, struct http_wait *w,
                    const struct jb_http_req *rq, struct http_conn **ret, struct jb_err *err)
{
    struct http_conn *c;
    while ((c = idle_take(h, u))) {
        if (http_conn_usable(c)) return *ret = c, 0;
        http_conn_close(c);
    }
    SSL_CTX *tls = NULL;
    if (u->https && !(tls = tls_ctx(h, err))) return -1;
    long ms = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : CONNECT_MS_DEF;
    w->connect_ms = ms;
    w->connect_deadline = jb_mono_ms() + ms;
    int rc = http_conn_open(tls, u, w, ret, err);
    w->connect_deadline = 0;
    return rc;
}

/* Send on c and read the answer. 0 when complete; -1 with *retry set when c was a
 * kept-alive connection the server had closed, before any of the answer came. */
static int exchange(struct http_conn *c, const struct jb_http_req *rq, const struct jb_buf *head,
                    const struct http_wait *w, struct jb_http_resp *rs, int *keep, int *retry,
                    struct jb_err *err)
{
    struct answer a = {.rq = rq,
                       .rs = rs,
                       .name = c->name,
                       .err = err,
                       .is_head = strcmp(method_of(rq), "HEAD") == 0,
                       .head = JB_BUF_INIT(HEAD_MAX)};
    answer_start(&a);
    int rc = send_request(c, rq, head, w, rs, err);
    if (rc == 0) rc = read_answer(c, &a, w);
    jb_buf_release(&a.head);
    *retry = rc < 0 && c->reused && c->lost && !a.got_bytes;
    *keep = rc == 0 && a.keep_alive;
    return rc;
}

static int can_resend(const struct jb_http_req *rq)
{
    return !rq->read || (rq->rewind && rq->rewind(rq->ud) == 0);
}

static int request_on(struct jb_http *h, const struct jb_http_req *rq, const struct jb_url *u,
                      const struct jb_buf *head, struct jb_http_resp *rs, struct jb_err *err)
{
    struct http_wait w = {.cancelled = rq->cancelled, .ud = rq->ud};
    if (rq->timeout_ms > 0) w.deadline = jb_mono_ms() + rq->timeout_ms;
    w.timeout_ms = rq->timeout_ms;
    for (int attempt = 0;; attempt++) {
        struct http_conn *c = NULL;
        if (cancelled(rq, err) < 0 || get_conn(h, u, &w, rq, &c, err) < 0) return -1;
        w.idle_ms = rq->idle_timeout_ms;
        int keep = 0, retry = 0;
        int rc = exchange(c, rq, head, &w, rs, &keep, &retry, err);
        w.idle_ms = 0;
        if (keep)
            idle_put(h, c);
        else
            http_conn_close(c);
        if (rc == 0) return 0;
        if (!retry || attempt > 0 || !can_resend(rq)) return -1;
        log_debug("http: %s: a kept-alive connection was closed; trying a new one", u->host);
    }
}

int jb_http_request(struct jb_http *h, const struct jb_http_req *rq, struct jb_http_resp *rs,
                    struct jb_err *err)
{
    *rs = (struct jb_http_resp){0};
    struct jb_url u = {0};
    const char *why = "missing";
    int rc = rq->url ? jb_url_parse(rq->url, strlen(rq->url), &u, &why) : -1;
    if (rc < 0) {
        jb_url_release(&u);
        return jb_err_set(err, JB_EPROTO, "bad URL: %s", why);
    }
    struct jb_buf head = JB_BUF_INIT(REQ_HEAD_MAX + INLINE_BODY);
    if (check_headers(rq->headers, err) < 0 || build_head(rq, &u, &head, err) < 0)
        rc = -1;
    else
        rc = request_on(h, rq, &u, &head, rs, err);
    if (head.data) explicit_bzero(head.data, head.len); /* it may hold a token */
    jb_buf_release(&head);
    jb_url_release(&u);
    return rc;
}
