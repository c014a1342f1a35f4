/* proxy/llm-fwd.c -- one request to an LLM upstream (util.h's HTTP client), its answer streamed to
 * the sandbox as it arrives, and the tokens it used counted on the way (JSON usage, or
 * the server-sent events of a streamed answer). */
#include <poll.h>
#include <string.h>
#include <strings.h>

#include "proxy/llm-int.h"

#define SEND_TIMEOUT_MS 60000
#define JSON_KEEP_MAX   ((size_t)4 << 20)
#define CANCEL_CHECK_MS 200

/* The request body on its way up: what came with the head, then the sandbox's socket,
 * scanned as it passes (llm-usage.c), with what the proxy adds to it. */
struct upload {
    const char *pre;      /* the bytes that came with the head */
    size_t pre_len, took; /* took: of the sandbox's body, so far */
    size_t len;           /* the sandbox's body (its Content-Length) */
    size_t pad;           /* bytes added upstream (llm_body_pad()) */
    size_t added;         /* of those, sent so far (the insertion, then spaces) */
    const char *ins;      /* an insertion being sent, and how much of it is out */
    size_t ins_off;
    char *held; /* read past an insertion point: sent after it */
    size_t held_len, held_off;
    struct llm_body_scan scan;
    int from_socket;   /* bytes were read from the socket: no rewinding any more */
    int64_t wait_left; /* ms the sandbox may still keep us waiting for bytes */
    int failed;        /* the sandbox did not send its body (in time) */
};

struct fwd {
    int fd; /* the sandbox's connection */
    enum llm_provider provider;
    struct upload up;
    int head_got; /* the upstream's head came: the answer has started */
    int head_out; /* head (and the body bytes held behind it) sent to the sandbox */
    int failed;
    long status;
    struct jb_buf head; /* response head, then the first body bytes of the same read */
    struct jb_buf line; /* current SSE line */
    struct jb_buf json; /* a JSON (non-SSE) body, for its usage */
    int sse;
    int drop_blank; /* the usage chunk was held back: its blank line too */
    int raw_line;   /* a line over the line buffer: the rest of it goes out as it comes */
    struct llm_usage *u;
};

/* Events are split into lines by spans (memchr), and only "data:" lines that mention
 * usage are parsed: a long streamed answer costs one scan, not a JSON parse per event. */
static void sse_line(struct fwd *f)
{
    const char *l = f->line.data;
    if (!strncmp(l, "data:", 5) && memmem(l, f->line.len, "usage", 5))
        llm_usage_read(f->u, f->provider, l + 5, f->line.len - 5);
    jb_buf_reset(&f->line);
}

/* The client of a streamed Chat Completion did not ask for usage (the proxy did): the
 * chunk with usage and no choices is held back, since a client may read choices[0] of
 * every chunk; every other line goes out as soon as it is whole. -1: the client left. */
static int filter_line(struct fwd *f)
{
    const char *l = f->line.data;
    size_t n = f->line.len;
    int drop = 0;
    if (f->drop_blank && (n == 0 || (n == 1 && l[0] == '\r'))) drop = 1;
    f->drop_blank = 0;
    if (!drop && n > 5 && !strncmp(l, "data:", 5) && memmem(l, n, "usage", 5))
        drop = f->drop_blank = llm_usage_read(f->u, f->provider, l + 5, n - 5);
    int rc = drop || jb_buf_append(&f->line, "\n", 1, NULL) < 0
                 ? 0
                 : px_send_all(f->fd, f->line.data, f->line.len, jb_mono_ms() + SEND_TIMEOUT_MS);
    jb_buf_reset(&f->line);
    return rc;
}

static int filter_feed(struct fwd *f, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t span = nl ? (size_t)(nl - p) + 1 : n;
        if (f->raw_line || (!f->line.len && span > (1u << 20)) ||
            jb_buf_append(&f->line, p, nl ? span - 1 : span, NULL) < 0) {
            /* longer than any chunk: no usage chunk; out as it is */
            if (px_send_all(f->fd, f->line.data, f->line.len, jb_mono_ms() + SEND_TIMEOUT_MS) < 0 ||
                px_send_all(f->fd, p, span, jb_mono_ms() + SEND_TIMEOUT_MS) < 0)
                return -1;
            jb_buf_reset(&f->line);
            f->raw_line = !nl;
        } else if (nl && filter_line(f) < 0) {
            return -1;
        }
        p += span;
        n -= span;
    }
    return 0;
}

static void sse_feed(struct fwd *f, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t span = nl ? (size_t)(nl - p) : n;
        if (jb_buf_append(&f->line, p, span, NULL) < 0) jb_buf_reset(&f->line); /* over 1 MiB */
        if (!nl) return;
        sse_line(f);
        p += span + 1;
        n -= span + 1;
    }
}

static const char *const hop_by_hop[] = {
    "connection:", "keep-alive:", "transfer-encoding:", "content-length:",
    "proxy-",      "te:",         "trailer:",           "upgrade:"};

static int skip_header(const char *h)
{
    for (size_t i = 0; i < JB_ARRAY_LEN(hop_by_hop); i++)
        if (!strncasecmp(h, hop_by_hop[i], strlen(hop_by_hop[i]))) return 1;
    return 0;
}

/* The upstream's head, as the sandbox gets it: its status line, its headers but the
 * hop-by-hop ones, and Connection: close (one request per connection from the sandbox). */
static int on_head(void *ud, int status, const char *reason, size_t reason_len,
                   const struct jb_http_header *hdr, size_t nhdr)
{
    struct fwd *f = ud;
    f->status = status;
    if (jb_buf_appendf(&f->head, NULL, "HTTP/1.1 %d %.*s\r\n", status, (int)reason_len, reason) < 0)
        return -1;
    for (size_t i = 0; i < nhdr; i++) {
        const struct jb_http_header *h = &hdr[i];
        size_t start = f->head.len;
        if (jb_buf_appendf(&f->head, NULL, "%.*s: %.*s\r\n", (int)h->name_len, h->name,
                           (int)h->value_len, h->value) < 0)
            return -1;
        const char *line = f->head.data + start;
        if (!strncasecmp(line, "content-type:", 13) &&
            memmem(h->value, h->value_len, "text/event-stream", 17))
            f->sse = 1;
        if (skip_header(line)) f->head.len = start, f->head.data[start] = '\0';
    }
    if (jb_buf_appendf(&f->head, NULL, "Connection: close\r\n\r\n") < 0) return -1;
    f->head_got = 1; /* it goes out with the body bytes of the same read (on_fed) */
    return 0;
}

/* The head and what is held behind it, to the sandbox: one write, so the client wakes up
 * once for the head and the first event. */
static int head_flush(struct fwd *f)
{
    if (!f->head_got || f->head_out) return 0;
    f->head_out = 1;
    if (px_send_all(f->fd, f->head.data, f->head.len, jb_mono_ms() + SEND_TIMEOUT_MS) < 0)
        return f->failed = 1, -1;
    return 0;
}

/* Bytes for the sandbox: held behind the head until the read they came in is done, then
 * as they come. */
static int send_out(struct fwd *f, const char *p, size_t len)
{
    if (!f->head_out && jb_buf_append(&f->head, p, len, NULL) == 0) return 0;
    if (head_flush(f) < 0) return -1;
    return px_send_all(f->fd, p, len, jb_mono_ms() + SEND_TIMEOUT_MS);
}

static int on_fed(void *ud)
{
    return head_flush(ud);
}

/* The sandbox's socket was shut down (the session is closing, the proxy stopping) or
 * reset: stop the upstream transfer too, even one waiting on a silent upstream. */
static int sandbox_gone(void *ud)
{
    struct fwd *f = ud;
    struct pollfd p = {.fd = f->fd};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        f->failed = 1;
        return 1;
    }
    return 0;
}

static int on_body(void *ud, const char *p, size_t len)
{
    struct fwd *f = ud;
    if (!f->head_got) return -1;
    if (f->sse && f->up.scan.inserted && !f->up.scan.client_usage) {
        if (head_flush(f) == 0 && filter_feed(f, p, len) == 0) return 0;
        f->failed = 1;
        return -1;
    }
    f->u->down_bytes += (long long)len;
    /* To the sandbox first (unbuffered streaming), then the accounting. */
    if (send_out(f, p, len) < 0) {
        f->failed = 1; /* the client went away: stop the upstream request too */
        return -1;
    }
    if (f->sse)
        sse_feed(f, p, len);
    else if (f->json.len + len <= JSON_KEEP_MAX)
        jb_buf_append(&f->json, p, len, NULL);
    return 0;
}

/* The insertion in progress, then bytes held back behind it: 0 when neither is left. */
static size_t send_pending(struct upload *u, char *buf, size_t cap)
{
    if (u->ins) {
        size_t n = strlen(u->ins + u->ins_off);
        if (n > cap) n = cap;
        memcpy(buf, u->ins + u->ins_off, n);
        u->ins_off += n, u->added += n;
        if (!u->ins[u->ins_off]) u->ins = NULL;
        return n;
    }
    if (u->held_off < u->held_len) {
        const char *ins = NULL;
        size_t n = u->held_len - u->held_off < cap ? u->held_len - u->held_off : cap;
        llm_body_scan(&u->scan, u->held + u->held_off, n, &ins); /* the model, past it */
        memcpy(buf, u->held + u->held_off, n);
        u->held_off += n;
        return n;
    }
    return 0;
}

/* got bytes of the body are in buf: if an insertion goes before one of them, hold the
 * rest back and put as much of the insertion as fits in their place. */
static size_t scan_read(struct upload *u, char *buf, size_t got, size_t cap)
{
    const char *ins = NULL;
    size_t k = llm_body_scan(&u->scan, buf, got, &ins);
    if (!ins) return got;
    char *held = malloc(got - k);
    if (!held) return got; /* no insertion; the padding still goes out as spaces */
    free(u->held);
    memcpy(held, buf + k, got - k);
    u->held = held, u->held_len = got - k, u->held_off = 0;
    u->ins = ins, u->ins_off = 0;
    return k + send_pending(u, buf + k, cap - k);
}

/* The client wants body bytes: first those that came with the head, then the socket's,
 * each read as the upstream takes them, so a body is never held whole (at most one upload
 * buffer per request); last the padding that keeps the announced length. */
static ssize_t on_read(void *ud, char *buf, size_t cap)
{
    struct fwd *f = ud;
    struct upload *u = &f->up;
    size_t got = 0, whole = cap;
    if (cap == 0) return 0;
    size_t pend = send_pending(u, buf, cap);
    if (pend) return (ssize_t)pend;
    if (u->took == u->len) { /* the body is out: spaces for what was not inserted */
        size_t sp = u->pad - u->added < cap ? u->pad - u->added : cap;
        memset(buf, ' ', sp);
        u->added += sp;
        return (ssize_t)sp;
    }
    if (cap > u->len - u->took) cap = u->len - u->took;
    if (u->took < u->pre_len) {
        got = u->pre_len - u->took < cap ? u->pre_len - u->took : cap;
        memcpy(buf, u->pre + u->took, got);
    } else {
        int64_t t0 = jb_mono_ms();
        int rc = px_read_until(f->fd, buf, cap, &got, 1, t0 + u->wait_left);
        u->wait_left -= jb_mono_ms() - t0;
        u->from_socket = 1;
        if (rc < 0) {
            u->failed = 1;
            return -1;
        }
    }
    u->took += got;
    return (ssize_t)scan_read(u, buf, got, whole);
}

/* The client rewinds the body to send it again on a fresh connection when a reused one
 * turned out closed; possible while all of it read so far came with the head. */
static int on_rewind(void *ud)
{
    struct fwd *f = ud;
    struct upload *u = &f->up;
    if (u->from_socket) return -1;
    int want = u->scan.want_usage;
    free(u->held);
    u->held = NULL, u->held_len = u->held_off = 0;
    u->ins = NULL, u->took = u->added = 0;
    u->scan = (struct llm_body_scan){.want_usage = want};
    return 0;
}

/* Never passed upstream: the sandbox's credentials (the real key replaces them), what a
 * proxy or TLS terminator in front of us adds about the client, encodings, headers some
 * servers route by instead of the request line (the method and path checked here are the
 * ones that count), and the choice of another organisation or project the key may reach. */
static const char *const dropped[] = {"host:",
                                      "x-api-key:",
                                      "authorization:",
                                      "cookie:",
                                      "accept-encoding:",
                                      "expect:",
                                      "forwarded:",
                                      "x-forwarded-",
                                      "x-real-ip:",
                                      "via:",
                                      "x-client-",
                                      "true-client-ip:",
                                      "cf-connecting-ip:",
                                      "x-original-url:",
                                      "x-rewrite-url:",
                                      "x-original-uri:",
                                      "x-http-method",
                                      "x-method-override:",
                                      "openai-organization:",
                                      "openai-project:"};

static int dropped_header(const char *h)
{
    for (size_t i = 0; i < JB_ARRAY_LEN(dropped); i++)
        if (!strncasecmp(h, dropped[i], strlen(dropped[i]))) return 1;
    return 0;
}

/* The headers that go upstream, NULL-ended, into *ret (allocated; the caller frees it with
 * free_headers(), which wipes the key's line). */
static int upstream_headers(const struct llm_request *rq, const char *key, enum llm_provider prov,
                            char ***ret)
{
    char **h = calloc(rq->nheaders + 2, sizeof *h);
    if (!h) return -1;
    size_t n = 0;
    for (size_t i = 0; i < rq->nheaders; i++) {
        const char *name = rq->headers[i];
        if (skip_header(name) || dropped_header(name))
            continue; /* hop-by-hop, credentials, proxy hops, encodings we could not count */
        h[n++] = (char *)name;
    }
    int k = prov == LLM_ANTHROPIC ? asprintf(&h[n], "x-api-key: %s", key)
                                  : asprintf(&h[n], "Authorization: Bearer %s", key);
    if (k < 0) return free(h), -1;
    *ret = h;
    return 0;
}

/* The key's line (the last one) wiped and freed; the others are the request's. */
static void free_headers(char **h)
{
    if (!h) return;
    size_t n = 0;
    while (h[n + 1])
        n++;
    explicit_bzero(h[n], strlen(h[n]));
    free(h[n]);
    free(h);
}

int llm_forward(const struct llm_proxy *px, const struct llm_request *rq, int fd,
                struct llm_usage *u, struct jb_err *err)
{
    size_t pad = rq->body_len ? llm_body_pad(rq->provider, rq->method, rq->path) : 0;
    struct fwd f = {.fd = fd,
                    .provider = rq->provider,
                    .up = {.pre = rq->body,
                           .pre_len = rq->body_have,
                           .len = rq->body_len,
                           .pad = pad,
                           .scan = {.want_usage = pad > 0},
                           .wait_left = LLM_BODY_WAIT_MS},
                    .head = JB_BUF_INIT(64u << 10),
                    .line = JB_BUF_INIT(1u << 20),
                    .json = JB_BUF_INIT(JSON_KEEP_MAX),
                    .u = u};
    jb_autofree char *url = NULL;
    char **h = NULL;
    int rc = -1;
    if (upstream_headers(rq, px->cfg.key[rq->provider], rq->provider, &h) < 0 ||
        asprintf(&url, "%s%s", px->cfg.upstream[rq->provider], rq->path) < 0) {
        url = NULL;
        jb_err_set(err, JB_ENOMEM, "llm proxy: request");
        goto out;
    }
    /* The path was checked (llm_path_check()) and goes as written. */
    struct jb_http_req hr = {.method = rq->method,
                             .url = url,
                             .headers = (const char *const *)h,
                             .on_head = on_head,
                             .on_body = on_body,
                             .on_fed = on_fed,
                             .cancelled = sandbox_gone,
                             .ud = &f,
                             .connect_timeout_ms = 10000,
                             .idle_timeout_ms = 300000}; /* a hung upstream: 5 min of silence */
    if (strcmp(rq->method, "GET") != 0 && !pad && rq->body_have == rq->body_len) {
        /* All of the body came with the head and nothing goes into it: it goes in the same
         * write as the request head, so the upstream wakes up once, not twice. */
        const char *ins = NULL;
        llm_body_scan(&f.up.scan, rq->body, rq->body_len, &ins); /* its model, for usage */
        f.up.took = rq->body_len;
        hr.has_body = 1, hr.body = rq->body, hr.body_len = rq->body_len;
    } else if (strcmp(rq->method, "GET") != 0) {
        hr.has_body = 1, hr.body_len = rq->body_len + pad;
        hr.read = on_read, hr.rewind = on_rewind;
    }
    struct jb_http_resp hs = {0};
    struct jb_err net = {0};
    int xc = jb_http_request(px->http, &hr, &hs, &net);
    if (!f.failed) head_flush(&f); /* an answer cut short after its head: that much */
    if (!f.sse && f.json.len) llm_usage_read(u, rq->provider, f.json.data, f.json.len);
    if (!u->model[0]) llm_body_model(&f.up.scan, u->model); /* the answer named none */
    u->status = f.status;
    u->up_bytes = (long long)f.up.took;
    if (xc < 0 && net.code == JB_ENOMEM) {
        jb_err_set(err, JB_ENOMEM, "llm proxy: %s", net.msg);
        goto out;
    }
    if (xc < 0 && !f.head_got && f.up.failed) {
        jb_err_set(err, JB_EPROTO, "the request body did not arrive (%zu of %zu bytes)", f.up.took,
                   f.up.len);
        goto out;
    }
    if (xc < 0 && !f.head_got) {
        jb_err_set(err, JB_EUNAVAIL, "upstream %s: %s", px->cfg.upstream[rq->provider], net.msg);
        goto out;
    }
    if (xc < 0 && !f.failed) log_warn("llm proxy: upstream answer cut short: %s", net.msg);
    rc = 0;
out:
    free_headers(h);
    jb_buf_release(&f.head);
    jb_buf_release(&f.line);
    jb_buf_release(&f.json);
    free(f.up.held);
    return rc;
}
