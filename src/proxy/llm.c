/* proxy/llm.c -- the LLM API proxy: one scoped token per sandbox exec, a thread per
 * request. A local exec gets its own Unix socket; a remote one (llm-public.c) comes in
 * over TCP. Either way a request must carry its exec's own token, unrevoked and unexpired
 * in the store, for an API path the agents use (llm-serve.c); it then goes upstream with
 * the real key (llm-fwd.c). This file: the connection pools both listeners use, the
 * sessions, and the proxy itself. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "proxy/llm-int.h"
#include "store/store.h"

/* The relay inside a local sandbox; a remote one reaches the proxy at its public URL. */
#define RELAY_URL "http://127.0.0.1:4000"
#define PROVIDER(key, base, path)                                                                  \
    {                                                                                              \
        key, base, RELAY_URL path, path                                                            \
    }
static const struct {
    const char *key_var, *base_var, *base_url, *api_path;
} providers[LLM_NPROVIDERS] = {
    [LLM_ANTHROPIC] = PROVIDER("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "/anthropic"),
    [LLM_OPENAI] = PROVIDER("OPENAI_API_KEY", "OPENAI_BASE_URL", "/openai/v1"),
    [LLM_AMP] = PROVIDER("AMP_API_KEY", "AMP_URL", "/amp"),
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
const char *llm_api_path(enum llm_provider p)
{
    return providers[p].api_path;
}

/* ---- connection threads ---- */

struct llm_conn {
    struct llm_pool *pl;
    int fd;
    pthread_t thr;
    int done; /* under pl->mu */
    struct llm_conn *next;
};

void llm_pool_init(struct llm_pool *pl, int max, void (*serve)(void *ud, int fd), void *ud)
{
    *pl = (struct llm_pool){.max = max, .serve = serve, .ud = ud};
    pthread_mutex_init(&pl->mu, NULL);
}

void llm_pool_destroy(struct llm_pool *pl)
{
    pthread_mutex_destroy(&pl->mu);
}

static void *conn_main(void *p)
{
    struct llm_conn *c = p;
    c->pl->serve(c->pl->ud, c->fd);
    shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_lock(&c->pl->mu);
    c->done = 1;
    c->pl->nlive--;
    pthread_mutex_unlock(&c->pl->mu);
    return NULL;
}

/* Serve fd in a new thread. -1 (fd left to the caller) past pl->max or without a thread. */
static int pool_start(struct llm_pool *pl, int fd)
{
    pthread_mutex_lock(&pl->mu);
    struct llm_conn *c = pl->nlive < pl->max ? calloc(1, sizeof *c) : NULL;
    if (c) {
        c->pl = pl, c->fd = fd;
        /* Started under the lock: the thread's last step takes it, so it cannot finish
         * before it is on the list. */
        if (pthread_create(&c->thr, NULL, conn_main, c) == 0) {
            c->next = pl->conns;
            pl->conns = c;
            pl->nlive++;
        } else {
            free(c);
            c = NULL;
        }
    }
    pthread_mutex_unlock(&pl->mu);
    return c ? 0 : -1;
}

void llm_pool_reap(struct llm_pool *pl, int all)
{
    pthread_mutex_lock(&pl->mu);
    for (struct llm_conn **pp = &pl->conns; *pp;) {
        struct llm_conn *c = *pp;
        if (all && !c->done) shutdown(c->fd, SHUT_RDWR); /* wakes a thread blocked on it */
        if (!all && !c->done) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        pthread_mutex_unlock(&pl->mu);
        pthread_join(c->thr, NULL);
        close(c->fd);
        free(c);
        pthread_mutex_lock(&pl->mu);
        pp = &pl->conns; /* the list may have changed while unlocked */
    }
    pthread_mutex_unlock(&pl->mu);
}

void llm_accept_loop(int lfd, int wake_fd, struct llm_pool *pl, int tcp)
{
    static const int one = 1;
    for (;;) {
        struct pollfd fds[2] = {{.fd = lfd, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        llm_pool_reap(pl, 0);
        if (!(fds[0].revents & POLLIN)) continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(NULL, 0, 100); /* out of descriptors or memory: back off, do not spin */
            continue;
        }
        /* Small writes (an SSE event, a reply head) go out at once, not after an ACK. */
        if (tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (pool_start(pl, fd) < 0) {
            llm_reply(fd, LLM_ANTHROPIC, 503, "overloaded_error",
                      tcp ? "the LLM proxy has too many connections"
                          : "too many requests from this sandbox at once");
            close(fd);
        }
    }
}

/* ---- sessions ---- */

void llm_session_free(struct llm_session *s)
{
    if (!s) return;
    free(s->thread_key);
    free(s->user);
    free(s->sandbox);
    free(s->path);
    pthread_mutex_destroy(&s->mu);
    explicit_bzero(s->token, sizeof s->token);
    explicit_bzero(s->hash, sizeof s->hash);
    free(s);
}

static int mint(struct llm_session *s, char token[LLM_TOKEN_LEN + 1], struct jb_err *err)
{
    unsigned char raw[32];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    memcpy(token, "jbt_", 4);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 4 + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof raw);
    memcpy(s->token, token, LLM_TOKEN_LEN + 1);
    jb_sha256_hex(token, LLM_TOKEN_LEN, s->hash);
    pthread_mutex_lock(&s->px->st_mu);
    int rc = store_token_add(s->px->st, s->hash, s->thread_key, s->user, s->sandbox,
                             jb_now_ms() + LLM_TOKEN_TTL_MS, err);
    pthread_mutex_unlock(&s->px->st_mu);
    return rc;
}

int llm_session_new(struct llm_proxy *px, const char *thread_key, const char *user,
                    const char *sandbox, char token[LLM_TOKEN_LEN + 1], struct llm_session **ret,
                    struct jb_err *err)
{
    struct llm_session *s = calloc(1, sizeof *s);
    if (!s) return jb_err_set(err, JB_ENOMEM, "llm session");
    pthread_mutex_init(&s->mu, NULL);
    s->px = px, s->lfd = -1, s->wake[0] = s->wake[1] = -1;
    if (!(s->thread_key = strdup(thread_key)) || !(s->user = strdup(user ? user : "?")) ||
        !(s->sandbox = strdup(sandbox))) {
        llm_session_free(s);
        return jb_err_set(err, JB_ENOMEM, "llm session");
    }
    if (mint(s, token, err) < 0) {
        llm_session_free(s);
        return -1;
    }
    *ret = s;
    return 0;
}

static void serve_local(void *ud, int fd)
{
    struct llm_session *s = ud;
    struct llm_in in;
    struct llm_verdict v;
    /* The socket says whose request this is before it arrives: ask the store now, while
     * the request is still on its way through the relay, not after it. */
    llm_verdict(s, &v);
    if (llm_read_request(fd, &in) == 0 && llm_route(fd, in.target, &in) == 0)
        llm_serve(s, fd, &in, &v);
}

static void *accept_main(void *p)
{
    struct llm_session *s = p;
    llm_accept_loop(s->lfd, s->wake[0], &s->pool, 0);
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

int llm_session_open(struct llm_proxy *px, const char *sock_path, const char *thread_key,
                     const char *user, const char *sandbox, uid_t owner_uid,
                     char token[LLM_TOKEN_LEN + 1], struct llm_session **ret, struct jb_err *err)
{
    struct llm_session *s = NULL;
    if (llm_session_new(px, thread_key, user, sandbox, token, &s, err) < 0) return -1;
    llm_pool_init(&s->pool, LLM_MAX_PER_LISTENER, serve_local, s);
    if (!(s->path = strdup(sock_path))) {
        jb_err_set(err, JB_ENOMEM, "llm session");
        goto fail;
    }
    if ((s->lfd = listen_unix(sock_path, owner_uid, err)) < 0) goto fail;
    if (pipe2(s->wake, O_CLOEXEC) < 0 || pthread_create(&s->thr, NULL, accept_main, s) != 0) {
        jb_err_sys(err, "llm session");
        goto fail;
    }
    *ret = s;
    return 0;
fail:
    explicit_bzero(token, LLM_TOKEN_LEN + 1);
    pthread_mutex_lock(&px->st_mu);
    store_token_revoke(px->st, s->hash, NULL, NULL); /* minted but never handed out */
    pthread_mutex_unlock(&px->st_mu);
    if (s->lfd >= 0) close(s->lfd), unlink(sock_path);
    if (s->wake[0] >= 0) close(s->wake[0]), close(s->wake[1]);
    llm_pool_destroy(&s->pool);
    llm_session_free(s);
    return -1;
}

const char *llm_session_refused(struct llm_session *s)
{
    return atomic_load(&s->refused);
}

void llm_session_usage(struct llm_session *s, struct jb_tally *ret)
{
    pthread_mutex_lock(&s->mu);
    *ret = s->tally;
    pthread_mutex_unlock(&s->mu);
}

void llm_session_close(struct llm_session *s)
{
    if (!s) return;
    if (s->remote) llm_remote_unregister(s); /* from here no new request finds it */
    pthread_mutex_lock(&s->px->st_mu);
    store_token_revoke(s->px->st, s->hash, NULL, NULL); /* worthless from now on */
    pthread_mutex_unlock(&s->px->st_mu);
    if (s->remote) {
        llm_remote_drain(s);
    } else {
        ssize_t w = write(s->wake[1], "x", 1);
        (void)w;
        pthread_join(s->thr, NULL);
        llm_pool_reap(&s->pool, 1);
        llm_pool_destroy(&s->pool);
        close(s->lfd);
        unlink(s->path);
        close(s->wake[0]);
        close(s->wake[1]);
    }
    llm_session_free(s);
}

/* ---- the proxy ---- */

int llm_proxy_new(const struct llm_config *cfg, struct llm_proxy **ret, struct jb_err *err)
{
    struct llm_proxy *px = calloc(1, sizeof *px);
    if (!px) return jb_err_set(err, JB_ENOMEM, "llm proxy");
    pthread_mutex_init(&px->st_mu, NULL);
    pthread_mutex_init(&px->rd_mu, NULL);
    pthread_mutex_init(&px->reg_mu, NULL);
    pthread_cond_init(&px->reg_cv, NULL);
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
    if (!(px->share = jb_curl_share_new(err)) || store_open(px->cfg.db_path, &px->st, err) < 0 ||
        store_open(px->cfg.db_path, &px->rd, err) < 0) {
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
    llm_public_stop(px); /* its threads use the store and the share */
    if (px->remote)      /* their llm_session_close() would use freed memory */
        log_error("llm proxy: freed with remote sessions still open (close them first)");
    store_close(px->rd);
    store_close(px->st);
    jb_curl_share_free(px->share);
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        if (px->cfg.key[p]) explicit_bzero((char *)px->cfg.key[p], strlen(px->cfg.key[p]));
        free((char *)px->cfg.key[p]);
        free((char *)px->cfg.upstream[p]);
    }
    free((char *)px->cfg.db_path);
    pthread_cond_destroy(&px->reg_cv);
    pthread_mutex_destroy(&px->reg_mu);
    pthread_mutex_destroy(&px->rd_mu);
    pthread_mutex_destroy(&px->st_mu);
    free(px);
}
