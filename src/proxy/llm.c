/* proxy/llm.c -- the LLM API proxy: one Unix socket per sandbox exec, one scoped token
 * per exec, a thread per request. A request must carry this exec's own token (as
 * x-api-key or a Bearer), unrevoked and unexpired in the store, for an API path the
 * agents use; it then goes upstream with the real key (llm-fwd.c). Refusals answer in
 * the provider's error shape, so the agent CLI shows a sensible error. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/un.h>

#include "proxy/llm-int.h"
#include "store/store.h"

#define HEAD_MAX        (64u << 10)
#define HEAD_TIMEOUT_MS 30000

static const struct {
    const char *prefix, *key_var, *base_var, *base_url;
} providers[LLM_NPROVIDERS] = {
    [LLM_ANTHROPIC] = {"/anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                       "http://127.0.0.1:4000/anthropic"},
    [LLM_OPENAI] = {"/openai", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                    "http://127.0.0.1:4000/openai/v1"},
    [LLM_AMP] = {"/amp", "AMP_API_KEY", "AMP_URL", "http://127.0.0.1:4000/amp"},
};

const char *llm_key_var(enum llm_provider p)
{
    return providers[p].key_var;
}
const char *llm_base_var(enum llm_provider p)
{
    return providers[p].base_var;
}
const char *llm_base_url(enum llm_provider p)
{
    return providers[p].base_url;
}

struct llm_conn {
    struct llm_session *s;
    int fd;
    pthread_t thr;
    atomic_int done;
    struct llm_conn *next;
};

struct llm_session {
    struct llm_proxy *px;
    char *thread_key, *user, *path;
    char hash[65];
    int lfd, wake[2];
    pthread_t thr;
    pthread_mutex_t mu; /* conns, in, out */
    struct llm_conn *conns;
    int64_t in, out;
    _Atomic(const char *) refused;
};

/* ---- replies ---- */

static void reply(int fd, enum llm_provider p, int status, const char *type, const char *msg)
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
        [400] = "Bad Request",       [401] = "Unauthorized",    [403] = "Forbidden",
        [404] = "Not Found",         [411] = "Length Required", [413] = "Payload Too Large",
        [429] = "Too Many Requests", [502] = "Bad Gateway",     [503] = "Service Unavailable"};
    const char *reason =
        status < (int)JB_ARRAY_LEN(reasons) && reasons[status] ? reasons[status] : "Error";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, strlen(body));
    int64_t dl = jb_mono_ms() + 5000;
    if (px_send_all(fd, head, (size_t)n, dl) == 0) px_send_all(fd, body, strlen(body), dl);
}

/* ---- parsing ---- */

/* Split the head into request line and headers (in place). 0, or an HTTP status. */
static int parse_head(char *head, struct llm_request *rq, const char **target)
{
    char *save = NULL, *line = strtok_r(head, "\r\n", &save);
    if (!line) return 400;
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof rq->method || strncmp(sp2 + 1, "HTTP/1.", 7))
        return 400;
    *sp1 = *sp2 = '\0';
    snprintf(rq->method, sizeof rq->method, "%s", line);
    *target = sp1 + 1;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        if (!strchr(line, ':') || rq->nheaders >= LLM_MAX_HEADERS) return 400;
        rq->headers[rq->nheaders++] = line;
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

/* The paths each agent uses, nothing else (agent-clis.md). */
static int path_allowed(enum llm_provider p, const char *method, const char *path)
{
    size_t n = strcspn(path, "?");
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
#define IS(s) (n == strlen(s) && !strncmp(path, s, n))
    switch (p) {
    case LLM_ANTHROPIC:
        return post && (IS("/v1/messages") || IS("/v1/messages/count_tokens"));
    case LLM_OPENAI:
        return (post &&
                (IS("/v1/chat/completions") || IS("/v1/responses") || IS("/v1/embeddings"))) ||
               (get && IS("/v1/models"));
    case LLM_AMP:
        return (post || get) && !strncmp(path, "/api/", 5) && !strstr(path, "/../");
    default:
        return 0;
    }
#undef IS
}

/* Route "/anthropic/v1/messages?x" to a provider and its upstream path. */
static int route(const char *target, struct llm_request *rq)
{
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        size_t n = strlen(providers[p].prefix);
        if (strncmp(target, providers[p].prefix, n) || target[n] != '/') continue;
        if (strlen(target + n) >= sizeof rq->path) return 414;
        rq->provider = (enum llm_provider)p;
        snprintf(rq->path, sizeof rq->path, "%s", target + n);
        return 0;
    }
    return 404;
}

static const char *presented_token(const struct llm_request *rq)
{
    const char *v = header(rq, "x-api-key");
    if (v) return v;
    v = header(rq, "authorization");
    if (v && !strncasecmp(v, "Bearer ", 7)) return v + 7;
    return NULL;
}

/* ---- one request ---- */

static void refuse(struct llm_session *s, int fd, enum llm_provider p, const char *why)
{
    atomic_store(&s->refused, why);
    log_warn("llm proxy %s: refused: %s", s->thread_key, why);
    reply(fd, p, 401, p == LLM_ANTHROPIC ? "authentication_error" : "invalid_api_key", why);
}

/* The token: this exec's own (constant-time compare), then still valid in the store. */
static int check_token(struct llm_session *s, int fd, const struct llm_request *rq)
{
    const char *tok = presented_token(rq);
    char hash[65] = "";
    if (tok) jb_sha256_hex(tok, strcspn(tok, " \t"), hash);
    unsigned diff = tok ? 0 : 1;
    for (size_t i = 0; i < 64; i++)
        diff |= (unsigned)(hash[i] ^ s->hash[i]);
    if (diff) {
        log_warn("llm proxy %s: a request with a token that is not this sandbox's", s->thread_key);
        reply(fd, rq->provider, 401,
              rq->provider == LLM_ANTHROPIC ? "authentication_error" : "invalid_api_key",
              "invalid token for this sandbox");
        return -1;
    }
    struct jb_err err = {0};
    char *thread = NULL;
    pthread_mutex_lock(&s->px->st_mu);
    int rc = store_token_check(s->px->st, hash, &thread, &err);
    pthread_mutex_unlock(&s->px->st_mu);
    free(thread);
    if (rc < 0) {
        refuse(s, fd, rq->provider,
               err.code == JB_EDENIED
                   ? (strstr(err.msg, "revoked") ? "the token was revoked" : "the token expired")
                   : "the token is not valid");
        return -1;
    }
    return 0;
}

static int over_budget(struct llm_session *s, int fd, enum llm_provider p)
{
    long long cap = s->px->cfg.user_daily_tokens;
    if (cap <= 0) return 0;
    int64_t used = 0;
    pthread_mutex_lock(&s->px->st_mu);
    int rc = store_usage_today(s->px->st, s->user, &used, NULL);
    pthread_mutex_unlock(&s->px->st_mu);
    if (rc < 0 || used < cap) return 0;
    atomic_store(&s->refused, "over the daily token budget");
    log_warn("llm proxy %s: %s is over the daily budget (%lld tokens)", s->thread_key, s->user,
             cap);
    reply(fd, p, 429, p == LLM_ANTHROPIC ? "rate_limit_error" : "insufficient_quota",
          "daily token budget used up (JANEBOT_USER_DAILY_TOKENS); it resets at 00:00 UTC");
    return 1;
}

static void serve_request(struct llm_session *s, int fd)
{
    static _Thread_local char buf[HEAD_MAX + 1];
    size_t len = 0, head_len = 0;
    struct llm_request rq = {0};
    const char *target = NULL;
    if (px_read_head(fd, buf, HEAD_MAX, jb_mono_ms() + HEAD_TIMEOUT_MS, &len, &head_len) < 0) {
        if (errno == E2BIG)
            reply(fd, LLM_ANTHROPIC, 400, "invalid_request_error", "request head too large");
        return;
    }
    char *rest = buf + head_len;
    size_t rest_len = len - head_len;
    buf[head_len - 2] = '\0'; /* end the head before the blank line */
    int st = parse_head(buf, &rq, &target);
    if (!st) st = route(target, &rq);
    if (st)
        return reply(fd, rq.provider, st, "not_found_error",
                     st == 404 ? "unknown API" : "bad request");
    if (!s->px->cfg.key[rq.provider])
        return reply(fd, rq.provider, 404, "not_found_error",
                     "this provider is not configured on the host");
    if (!path_allowed(rq.provider, rq.method, rq.path))
        return reply(fd, rq.provider, 403, "permission_error",
                     "this API path is not allowed from a sandbox");
    if (check_token(s, fd, &rq) < 0 || over_budget(s, fd, rq.provider)) return;
    const char *cl = header(&rq, "content-length");
    if (header(&rq, "transfer-encoding"))
        return reply(fd, rq.provider, 411, "invalid_request_error", "send a Content-Length");
    long long want = cl ? strtoll(cl, NULL, 10) : 0;
    if (want < 0 || (size_t)want > LLM_BODY_MAX)
        return reply(fd, rq.provider, 413, "request_too_large", "request body over 32 MiB");
    char *body = malloc((size_t)want + 1);
    if (!body) return reply(fd, rq.provider, 413, "request_too_large", "no memory for the body");
    size_t have = rest_len < (size_t)want ? rest_len : (size_t)want;
    memcpy(body, rest, have);
    if (have < (size_t)want &&
        px_read_until(fd, body, (size_t)want, &have, (size_t)want, jb_mono_ms() + 120000) < 0) {
        free(body);
        return;
    }
    rq.body = body, rq.body_len = (size_t)want;
    struct llm_usage u = {0};
    struct jb_err err = {0};
    if (llm_forward(s->px, &rq, fd, &u, &err) < 0) {
        log_warn("llm proxy %s: %s", s->thread_key, err.msg);
        reply(fd, rq.provider, 502, "api_error", "the upstream API could not be reached");
    }
    free(body);
    pthread_mutex_lock(&s->mu);
    s->in += u.input, s->out += u.output;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->px->st_mu);
    if (store_token_use(s->px->st, s->hash, s->thread_key, s->user, u.input, u.output,
                        jb_now_ms() + LLM_TOKEN_TTL_MS, &err) < 0)
        log_warn("llm proxy %s: %s", s->thread_key, err.msg);
    pthread_mutex_unlock(&s->px->st_mu);
}

static void *conn_main(void *p)
{
    struct llm_conn *c = p;
    serve_request(c->s, c->fd);
    shutdown(c->fd, SHUT_RDWR);
    atomic_store(&c->done, 1);
    return NULL;
}

/* ---- the listener of one exec ---- */

static void reap(struct llm_session *s, int all)
{
    pthread_mutex_lock(&s->mu);
    for (struct llm_conn **pp = &s->conns; *pp;) {
        struct llm_conn *c = *pp;
        if (all) shutdown(c->fd, SHUT_RDWR); /* wakes a thread blocked on this socket */
        if (!all && !atomic_load(&c->done)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        pthread_mutex_unlock(&s->mu);
        pthread_join(c->thr, NULL);
        close(c->fd);
        free(c);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

static int live_conns(struct llm_session *s)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (struct llm_conn *c = s->conns; c; c = c->next)
        n += !atomic_load(&c->done);
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void *accept_main(void *p)
{
    struct llm_session *s = p;
    for (;;) {
        struct pollfd fds[2] = {{.fd = s->lfd, .events = POLLIN},
                                {.fd = s->wake[0], .events = POLLIN}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        reap(s, 0);
        if (!(fds[0].revents & POLLIN)) continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        struct llm_conn *c = live_conns(s) < LLM_MAX_PER_LISTENER ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            reply(fd, LLM_ANTHROPIC, 503, "overloaded_error",
                  "too many requests from this sandbox at once");
            close(fd);
            continue;
        }
        c->s = s, c->fd = fd;
        if (pthread_create(&c->thr, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int listen_unix(const char *path, uid_t owner, struct jb_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return jb_err_set(err, JB_ESYS, "socket path too long: %s", path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return jb_err_sys(err, "socket");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0600) < 0 ||
        (owner != (uid_t)-1 && chown(path, owner, (gid_t)-1) < 0) || listen(fd, 64) < 0) {
        jb_err_sys(err, "cannot listen on %s", path);
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static void session_free(struct llm_session *s)
{
    free(s->thread_key);
    free(s->user);
    free(s->path);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int mint(struct llm_session *s, const char *sandbox, char token[LLM_TOKEN_LEN + 1],
                struct jb_err *err)
{
    unsigned char raw[32];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    memcpy(token, "jbt_", 4);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 4 + 2 * i, 3, "%02x", raw[i]);
    jb_sha256_hex(token, LLM_TOKEN_LEN, s->hash);
    pthread_mutex_lock(&s->px->st_mu);
    int rc = store_token_add(s->px->st, s->hash, s->thread_key, s->user, sandbox,
                             jb_now_ms() + LLM_TOKEN_TTL_MS, err);
    pthread_mutex_unlock(&s->px->st_mu);
    return rc;
}

int llm_session_open(struct llm_proxy *px, const char *sock_path, const char *thread_key,
                     const char *user, const char *sandbox, uid_t owner_uid,
                     char token[LLM_TOKEN_LEN + 1], struct llm_session **ret, struct jb_err *err)
{
    struct llm_session *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "llm session");
    pthread_mutex_init(&s->mu, NULL);
    s->px = px, s->lfd = -1, s->wake[0] = s->wake[1] = -1;
    if (!(s->thread_key = strdup(thread_key)) || !(s->user = strdup(user ? user : "?")) ||
        !(s->path = strdup(sock_path))) {
        session_free(s);
        return jb_err_set(err, JB_ENOMEM, "llm session");
    }
    if (mint(s, sandbox, token, err) < 0 || (s->lfd = listen_unix(sock_path, owner_uid, err)) < 0 ||
        pipe2(s->wake, O_CLOEXEC) < 0 || pthread_create(&s->thr, NULL, accept_main, s) != 0) {
        if (s->lfd >= 0) close(s->lfd), unlink(sock_path);
        if (s->wake[0] >= 0) close(s->wake[0]), close(s->wake[1]);
        session_free(s);
        return err && err->msg[0] ? -1 : jb_err_sys(err, "llm session");
    }
    *ret = s;
    return 0;
}

const char *llm_session_refused(struct llm_session *s)
{
    return atomic_load(&s->refused);
}

void llm_session_usage(struct llm_session *s, int64_t *ret_in, int64_t *ret_out)
{
    pthread_mutex_lock(&s->mu);
    *ret_in = s->in, *ret_out = s->out;
    pthread_mutex_unlock(&s->mu);
}

void llm_session_close(struct llm_session *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->px->st_mu);
    store_token_revoke(s->px->st, s->hash, NULL, NULL); /* worthless from now on */
    pthread_mutex_unlock(&s->px->st_mu);
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w;
    pthread_join(s->thr, NULL);
    reap(s, 1);
    close(s->lfd);
    unlink(s->path);
    close(s->wake[0]);
    close(s->wake[1]);
    session_free(s);
}

/* ---- the proxy ---- */

int llm_proxy_new(const struct llm_config *cfg, struct llm_proxy **ret, struct jb_err *err)
{
    struct llm_proxy *px = calloc(1, sizeof *px);
    if (!px) return jb_err_set(err, JB_ENOMEM, "llm proxy");
    pthread_mutex_init(&px->st_mu, NULL);
    px->cfg.user_daily_tokens = cfg->user_daily_tokens;
    int bad = !(px->cfg.db_path = strdup(cfg->db_path));
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        if (cfg->key[p] && !(px->cfg.key[p] = strdup(cfg->key[p]))) bad = 1;
        if (cfg->upstream[p] && !(px->cfg.upstream[p] = strdup(cfg->upstream[p]))) bad = 1;
        if (cfg->key[p]) jb_log_add_secret(cfg->key[p]);
    }
    if (bad) {
        llm_proxy_free(px);
        return jb_err_set(err, JB_ENOMEM, "llm proxy");
    }
    if (!(px->share = jb_curl_share_new(err)) || store_open(px->cfg.db_path, &px->st, err) < 0) {
        llm_proxy_free(px);
        return -1;
    }
    *ret = px;
    return 0;
}

int llm_proxy_offers(const struct llm_proxy *px, enum llm_provider p)
{
    return px && px->cfg.key[p] != NULL;
}

void llm_proxy_free(struct llm_proxy *px)
{
    if (!px) return;
    store_close(px->st);
    jb_curl_share_free(px->share);
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        if (px->cfg.key[p]) explicit_bzero((char *)px->cfg.key[p], strlen(px->cfg.key[p]));
        free((char *)px->cfg.key[p]);
        free((char *)px->cfg.upstream[p]);
    }
    free((char *)px->cfg.db_path);
    pthread_mutex_destroy(&px->st_mu);
    free(px);
}
