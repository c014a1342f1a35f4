/* proxy/llm-serve.c -- one request to the LLM proxy, whichever listener it came through:
 * parse the head (strictly), route it to a provider, then the checks every request passes
 * (provider offered, API call allowed (llm-path.c), the session's own token, still valid in
 * the store, daily budget, body length) before it goes upstream (llm-fwd.c) and its usage
 * is recorded.
 * Refusals answer in the provider's error shape, so the agent CLI shows a sensible error. */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "proxy/llm-int.h"
#include "store/store.h"

#define HEAD_MAX (64u << 10)

static const char *const prefixes[LLM_NPROVIDERS] = {
    [LLM_ANTHROPIC] = "/anthropic", [LLM_OPENAI] = "/openai", [LLM_AMP] = "/amp"};

static const char *llm_prefix(enum llm_provider p) /* "/anthropic", "/openai", "/amp" */
{
    return prefixes[p];
}

/* ---- replies ---- */

void llm_reply(int fd, enum llm_provider p, int status, const char *type, const char *msg)
{
    char body[1024], head[256];
    json_t *j = p == LLM_ANTHROPIC ? json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
                                               "type", type, "message", msg)
                                   : json_pack("{s:{s:s, s:s, s:n}}", "error", "message", msg,
                                               "type", type, "code");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    snprintf(body, sizeof body, "%s", text ? text : "{}");
    free(text);
    json_decref(j);
    static const char *const reasons[] = {
        [400] = "Bad Request",       [401] = "Unauthorized",       [403] = "Forbidden",
        [404] = "Not Found",         [408] = "Request Timeout",    [411] = "Length Required",
        [413] = "Payload Too Large", [414] = "URI Too Long",       [429] = "Too Many Requests",
        [502] = "Bad Gateway",       [503] = "Service Unavailable"};
    const char *reason =
        status < (int)JB_ARRAY_LEN(reasons) && reasons[status] ? reasons[status] : "Error";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, strlen(body));
    int64_t dl = jb_mono_ms() + 5000;
    if (px_send_all(fd, head, (size_t)n, dl) == 0) px_send_all(fd, body, strlen(body), dl);
}

void llm_reply_401(int fd, enum llm_provider p, const char *msg)
{
    llm_reply(fd, p, 401, p == LLM_ANTHROPIC ? "authentication_error" : "invalid_api_key", msg);
}

/* ---- parsing ---- */

/* Read the head (len bytes, ending in the blank line) with the proxies' one strict parser
 * (px_parse_head()), then make its parts C strings in place: the target, and each header
 * as its "Name: value" line. 0, or -1 with *why. */
static int parse_head(char *head, size_t len, struct llm_request *rq, const char **target,
                      const char **why)
{
    struct px_head h;
    if ((*why = px_parse_head(head, len, &h))) return -1;
    if (strlen(h.method) >= sizeof rq->method || h.target_len == 0 || h.target[0] != '/')
        return *why = "malformed request line", -1;
    snprintf(rq->method, sizeof rq->method, "%s", h.method);
    rq->clen = h.clen;
    rq->has_te = h.has_te;
    for (size_t i = 0; i < h.nhdr; i++) {
        char *name = head + (h.hdr[i].name - head); /* the buffer is ours to write */
        name[h.hdr[i].value + h.hdr[i].value_len - h.hdr[i].name] = '\0';
        rq->headers[rq->nheaders++] = name;
    }
    char *t = head + (h.target - head);
    t[h.target_len] = '\0'; /* the space before the version */
    *target = t;
    return 0;
}

void llm_in_free(struct llm_in *in)
{
    free(in->head);
    in->head = NULL;
}

/* The buffer is the request's, on the heap: a thread-local one costs every thread of the
 * process (static TLS is set up, zeroed and so resident, in each thread's block). */
int llm_read_request(int fd, struct llm_in *in)
{
    size_t len = 0, head_len = 0;
    const char *why = NULL;
    memset(in, 0, sizeof *in);
    char *buf = in->head = malloc(HEAD_MAX + 1);
    if (!buf) {
        llm_reply(fd, LLM_ANTHROPIC, 503, "overloaded_error", "out of memory");
        return -1;
    }
    if (px_read_head(fd, buf, HEAD_MAX, jb_mono_ms() + LLM_HEAD_TIMEOUT_MS, &len, &head_len) < 0) {
        if (errno == E2BIG)
            llm_reply(fd, LLM_ANTHROPIC, 400, "invalid_request_error", "request head too large");
        return -1;
    }
    in->rest = buf + head_len;
    in->rest_len = len - head_len;
    if (parse_head(buf, head_len, &in->rq, &in->target, &why) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "bad request: %s", why);
        llm_reply(fd, LLM_ANTHROPIC, 400, "invalid_request_error", msg);
        return -1;
    }
    return 0;
}

static const char *header(const struct llm_request *rq, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < rq->nheaders; i++)
        if (!strncasecmp(rq->headers[i], name, n) && rq->headers[i][n] == ':') {
            const char *v = rq->headers[i] + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    return NULL;
}

int llm_route(int fd, const char *target, struct llm_in *in)
{
    struct llm_request *rq = &in->rq;
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        size_t n = strlen(prefixes[p]);
        if (strncmp(target, prefixes[p], n) || target[n] != '/') continue;
        rq->provider = (enum llm_provider)p;
        if (strlen(target + n) >= sizeof rq->path) {
            llm_reply(fd, rq->provider, 414, "invalid_request_error", "request target too long");
            return -1;
        }
        snprintf(rq->path, sizeof rq->path, "%s", target + n);
        return 0;
    }
    llm_reply(fd, LLM_ANTHROPIC, 404, "not_found_error", "unknown API");
    return -1;
}

const char *llm_presented_token(const struct llm_request *rq, size_t *len)
{
    const char *v = header(rq, "x-api-key");
    if (!v) {
        v = header(rq, "authorization");
        v = v && !strncasecmp(v, "Bearer ", 7) ? v + 7 : NULL;
    }
    if (!v) return NULL;
    *len = strcspn(v, " \t");
    return v;
}

/* ---- the checks ---- */

void llm_verdict(struct llm_session *s, struct llm_verdict *v)
{
    struct jb_err err = {0};
    char *thread = NULL;
    long long cap = s->px->cfg.user_daily_tokens;
    int64_t used = 0, asked = jb_mono_ms(); /* the age counts from before the question */
    /* Its own connection: in WAL mode a read waits for no writer (our usage records), and
     * sees every commit made before it began (a revoke by any process). */
    pthread_mutex_lock(&s->px->rd_mu);
    int rc = store_token_check(s->px->rd, s->hash, &thread, &err);
    int over = rc == 0 && cap > 0 && store_usage_today(s->px->rd, s->user, &used, NULL) == 0 &&
               used >= cap; /* a failed usage read does not stop anyone */
    pthread_mutex_unlock(&s->px->rd_mu);
    free(thread);
    *v = (struct llm_verdict){.at = asked};
    if (rc < 0)
        v->status = 401,
        v->why = err.code == JB_EDENIED
                     ? (strstr(err.msg, "revoked") ? "the token was revoked" : "the token expired")
                     : "the token is not valid";
    else if (over)
        v->status = 429, v->why = "over the daily token budget";
}

static void refuse(struct llm_session *s, int fd, enum llm_provider p, const struct llm_verdict *v)
{
    llm_session_set_refused(s, v->why);
    if (v->status != 429) {
        log_warn("llm proxy %s: refused: %s", s->thread_key, v->why);
        return llm_reply_401(fd, p, v->why);
    }
    log_warn("llm proxy %s: %s is over the daily budget (%lld tokens)", s->thread_key, s->user,
             s->px->cfg.user_daily_tokens);
    llm_reply(fd, p, 429, p == LLM_ANTHROPIC ? "rate_limit_error" : "insufficient_quota",
              "daily token budget used up (JANEBOT_USER_DAILY_TOKENS); it resets at 00:00 UTC");
}

/* The token: this session's own, then still valid in the store and the user under budget. */
static int check_token(struct llm_session *s, int fd, const struct llm_request *rq,
                       const struct llm_verdict *pre)
{
    size_t len = 0;
    const char *tok = llm_presented_token(rq, &len);
    if (!llm_token_is(s, tok, len)) {
        log_warn("llm proxy %s: a request with a token that is not this sandbox's", s->thread_key);
        llm_reply_401(fd, rq->provider, "invalid token for this sandbox");
        return -1;
    }
    struct llm_verdict v;
    if (pre && jb_mono_ms() - pre->at <= LLM_VERDICT_MAX_AGE_MS)
        v = *pre;
    else
        llm_verdict(s, &v);
    if (!v.why) return 0;
    refuse(s, fd, rq->provider, &v);
    return -1;
}

/* The body's length and the part of it that came with the head; the rest stays on fd
 * until the upstream takes it (llm_forward()), so no body is ever held whole. 0, or -1
 * when answered. */
static int body_setup(int fd, struct llm_in *in)
{
    struct llm_request *rq = &in->rq;
    long long want = rq->clen < 0 ? 0 : rq->clen;
    if (rq->has_te) {
        llm_reply(fd, rq->provider, 411, "invalid_request_error", "send a Content-Length");
        return -1;
    }
    if ((size_t)want > LLM_BODY_MAX) {
        llm_reply(fd, rq->provider, 413, "request_too_large", "request body over 32 MiB");
        return -1;
    }
    if (want && !strcmp(rq->method, "GET")) {
        llm_reply(fd, rq->provider, 400, "invalid_request_error", "a GET request has no body");
        return -1;
    }
    rq->body = in->rest;
    rq->body_len = (size_t)want;
    rq->body_have = in->rest_len < rq->body_len ? in->rest_len : rq->body_len;
    return 0;
}

/* A path not on the list: say which one and why (the sandbox sent it; it names no key).
 * The log line leaves out a path that holds a token. */
static void refuse_path(struct llm_session *s, int fd, const struct llm_request *rq,
                        const char *why)
{
    const char *pre = llm_prefix(rq->provider);
    char msg[512];
    snprintf(msg, sizeof msg, "%s %s%.300s%s is not allowed from a sandbox: %s", rq->method, pre,
             rq->path, strlen(rq->path) > 300 ? "..." : "", why);
    int tok = strstr(rq->path, "jbt_") != NULL;
    log_warn("llm proxy %s: refused %s %s%.200s: %s", s->thread_key, rq->method, pre,
             tok ? "(a path holding a token)" : rq->path, why);
    llm_reply(fd, rq->provider, 403, "permission_error", msg);
}

/* Into the store: the request with its model and tokens, the token's counts and expiry. */
static void record_usage(struct llm_session *s, enum llm_provider p, const struct llm_usage *u)
{
    static const char *const names[] = {"anthropic", "openai", "amp"};
    _Static_assert(JB_ARRAY_LEN(names) == LLM_NPROVIDERS, "a name per provider");
    struct jb_err err = {0};
    struct llm_request_use use = {.thread_key = s->thread_key,
                                  .user = s->user,
                                  .provider = names[p],
                                  .model = u->model,
                                  .status = u->status,
                                  .t = u->t};
    pthread_mutex_lock(&s->px->st_mu);
    if (store_llm_request_add(s->px->st, s->hash, &use, jb_now_ms() + LLM_TOKEN_TTL_MS, &err) < 0)
        log_warn("llm proxy %s: %s", s->thread_key, err.msg);
    pthread_mutex_unlock(&s->px->st_mu);
}

/* The request answered without reaching the upstream, or forwarded: what llm_serve() did. */
static void count(struct llm_session *s, const char *verdict, const struct llm_usage *u)
{
    struct jb_metrics *m = s->px->metrics;
    jb_metrics_add(m, JB_M_PROXY_REQUESTS, "llm", verdict, 1);
    if (!u) return;
    jb_metrics_add(m, JB_M_PROXY_BYTES, "llm", "upstream", u->up_bytes);
    jb_metrics_add(m, JB_M_PROXY_BYTES, "llm", "downstream", u->down_bytes);
}

void llm_serve(struct llm_session *s, int fd, struct llm_in *in, const struct llm_verdict *pre)
{
    struct llm_request *rq = &in->rq;
    if (!s->px->cfg.key[rq->provider]) {
        count(s, "denied", NULL);
        return llm_reply(fd, rq->provider, 404, "not_found_error",
                         "this provider is not configured on the host");
    }
    const char *why = llm_path_check(rq->provider, rq->method, rq->path);
    if (why) return count(s, "denied", NULL), refuse_path(s, fd, rq, why);
    if (check_token(s, fd, rq, pre) < 0) return count(s, "denied", NULL);
    if (body_setup(fd, in) < 0) return count(s, "error", NULL);
    struct llm_usage u = {0};
    struct jb_err err = {0};
    int fwd = llm_forward(s->px, rq, fd, &u, &err);
    count(s, fwd < 0 ? "error" : "allowed", &u);
    if (fwd < 0) {
        log_warn("llm proxy %s: %s", s->thread_key, err.msg);
        if (err.code == JB_EPROTO)
            llm_reply(fd, rq->provider, 408, "invalid_request_error", err.msg);
        else
            llm_reply(fd, rq->provider, 502, "api_error", "the upstream API could not be reached");
        px_linger(fd); /* the body may still be coming: no reset before the reply is read */
    }
    /* Counted before the client sees the end (EOF): once it has, its exec may end and its
     * usage be read (llm_session_usage()), and its next request is checked against the
     * daily cap, which reads the store: a request sent right after this one's end must
     * find this one's tokens there. */
    llm_session_add_usage(s, u.model, &u.t);
    record_usage(s, rq->provider, &u);
    shutdown(fd, SHUT_WR);
}
