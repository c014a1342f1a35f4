/* proxy/llm.c -- the LLM API proxy: one scoped token per sandbox exec (its session,
 * llm-registry.c), a thread per request (pool.c). A local exec gets its own Unix
 * socket; a remote one (llm-public.c) comes in over TCP. Either way a request must carry
 * its exec's own token, unrevoked and unexpired in the store, for an API path the agents
 * use (llm-serve.c); it then goes upstream with the real key (llm-fwd.c). This file: the
 * proxy itself and the local sessions' sockets. */
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "proxy/llm-int.h"
#include "store/store.h"

/* ---- local sessions: a Unix socket each ---- */

static void serve_local(struct px_conn *c, int fd, void *ud)
{
    (void)c;
    struct llm_session *s = ud;
    jb_auto(llm_in_free) struct llm_in in = {0};
    struct llm_verdict v;
    /* The listener says whose request this is before it arrives: ask the store now,
     * while the request is still on its way, not after it. */
    llm_verdict(s, &v);
    if (llm_read_request(fd, &in) < 0) return;
    if (llm_is_approve_target(in.target)) return llm_approve_serve(s, fd, &in);
    if (llm_route(fd, in.target, &in) == 0) llm_serve(s, fd, &in, &v);
}

/* No thread or memory for a request (the session's cap holds requests back instead): a
 * 503 in the provider's shape, which the SDKs retry. What the request sent so far is read
 * first, so the close that follows is not a reset that could overtake the answer. */
static void refuse_local(int fd, enum px_refusal why, void *ud)
{
    (void)ud;
    char junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    llm_reply(fd, LLM_ANTHROPIC, 503, "overloaded_error",
              why == PX_CLOSING ? "the sandbox's exec is ending"
                                : "the proxy is out of memory or threads; try again");
    shutdown(fd, SHUT_WR);
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
    if (!(s->path = strdup(sock_path))) {
        jb_err_set(err, JB_ENOMEM, "llm session");
        goto fail;
    }
    char name[96];
    snprintf(name, sizeof name, "llm proxy %s", thread_key);
    int grouped = px_group_init(&s->group, &px->pool, LLM_MAX_PER_LISTENER, err);
    /* Past the cap a request waits for one to end rather than fail: an agent's burst of
     * parallel calls completes, and the host still runs at most the cap's threads. */
    s->group.hold_when_full = 1;
    s->group.handoff = 1; /* the sandbox's own listener comes over the Unix socket */
    if (grouped < 0 || (s->lfd = listen_unix(sock_path, owner_uid, err)) < 0 ||
        px_group_listen(&s->group, s->lfd, 0, name, serve_local, refuse_local, s, err) < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    explicit_bzero(token, LLM_TOKEN_LEN + 1);
    llm_session_revoke(s); /* minted but never handed out */
    px_group_close(&s->group);
    if (s->lfd >= 0) close(s->lfd), unlink(sock_path);
    llm_session_free(s);
    return -1;
}

void llm_session_close(struct llm_session *s)
{
    if (!s) return;
    llm_session_revoke(s); /* no new request finds it, its token is worthless */
    if (s->remote) {
        llm_session_drain(s);
    } else {
        px_group_close(&s->group); /* every request on its socket has ended */
        close(s->lfd);
        unlink(s->path);
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
    llm_registry_init(&px->reg);
    px_pool_init(&px->pool, 0);
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
    if (!(px->http = jb_http_new(16, err)) || store_open(px->cfg.db_path, &px->st, err) < 0 ||
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

void llm_proxy_set_metrics(struct llm_proxy *px, struct jb_metrics *m)
{
    px->metrics = m;
}

void llm_proxy_free(struct llm_proxy *px)
{
    if (!px) return;
    llm_public_stop(px); /* its threads use the store and the client */
    store_close(px->rd);
    store_close(px->st);
    jb_http_free(px->http);
    for (int p = 0; p < LLM_NPROVIDERS; p++) {
        if (px->cfg.key[p]) explicit_bzero((char *)px->cfg.key[p], strlen(px->cfg.key[p]));
        free((char *)px->cfg.key[p]);
        free((char *)px->cfg.upstream[p]);
    }
    free((char *)px->cfg.db_path);
    llm_registry_destroy(&px->reg);
    px_pool_destroy(&px->pool);
    pthread_mutex_destroy(&px->rd_mu);
    pthread_mutex_destroy(&px->st_mu);
    free(px);
}
