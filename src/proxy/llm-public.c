/* proxy/llm-public.c -- the LLM proxy's TCP listener, for sandboxes on other machines
 * (Sprites VMs) that cannot reach a Unix socket on the host. It faces the internet behind
 * a TLS terminator, so nothing about the connection identifies the sandbox: the token
 * does. A request is "/s/<sandbox>/<provider>/<path>"; its token must be the one of an
 * open remote session (the registry, llm-registry.c, compared in constant time) whose sandbox is
 * <sandbox>; then it passes the same checks as on a Unix socket (llm_serve()). Tokens of
 * local sessions are not in the registry, so they do not work here; remote tokens do not
 * match any Unix socket's own token, so they do not work there. Headers a proxy in front
 * adds (X-Forwarded-For…) are ignored here and not passed upstream (llm-fwd.c). */
#include <netdb.h>
#include <stdatomic.h>
#include <string.h>

#include "proxy/llm-int.h"

#define SANDBOX_MAX 63 /* bytes of a sandbox name in a path (llm-registry.c checks names) */

struct llm_public {
    struct llm_proxy *px;
    int lfd, port;
    struct px_group group;
    _Atomic int64_t unknown_logged; /* jb_mono_ms() of the last such log line */
};

/* Unknown tokens are what a scanner sends: at most one log line a second about them. */
static int log_unknown_allowed(struct llm_public *pub)
{
    int64_t now = jb_mono_ms(), was = atomic_load(&pub->unknown_logged);
    return now - was >= 1000 && atomic_compare_exchange_strong(&pub->unknown_logged, &was, now);
}

/* The open session this request's token belongs to, checked against the sandbox named in
 * the path, with fd registered as one of its requests in flight; NULL when answered. */
static struct llm_session *claim(struct llm_public *pub, int fd, const struct llm_in *in,
                                 const char *sandbox)
{
    enum llm_provider p = in->rq.provider;
    size_t len = 0;
    const char *tok = llm_presented_token(&in->rq, &len);
    if (!tok) {
        llm_reply_401(fd, p, "no token: send this sandbox's token as x-api-key or a Bearer");
        return NULL;
    }
    struct llm_session *s;
    enum llm_claim why = llm_registry_claim(&pub->px->reg, tok, len, sandbox, fd, &s);
    if (why == LLM_CLAIM_UNKNOWN && log_unknown_allowed(pub))
        log_warn("llm proxy: refused a request over TCP with an unknown or closed token");
    if (why == LLM_CLAIM_UNKNOWN || why == LLM_CLAIM_OTHER_SANDBOX)
        llm_reply_401(fd, p, "invalid token for this sandbox");
    else if (why == LLM_CLAIM_BUSY)
        llm_reply(fd, p, 503, "overloaded_error", "too many requests from this sandbox at once");
    return s;
}

char *llm_remote_base_url(const char *public_url, const char *sandbox, enum llm_provider p)
{
    size_t n = strlen(public_url);
    while (n && public_url[n - 1] == '/')
        n--;
    char *url = NULL;
    if (asprintf(&url, "%.*s/s/%s%s", (int)n, public_url, sandbox, llm_api_path(p)) < 0)
        return NULL;
    return url;
}

/* ---- one connection ---- */

/* "/s/<sandbox>/<rest>" → sandbox and rest ("/<provider>/..."). 0, or -1. */
static int split_target(const char *t, char sandbox[SANDBOX_MAX + 1], const char **rest)
{
    if (strncmp(t, "/s/", 3)) return -1;
    t += 3;
    size_t n = strcspn(t, "/?#");
    if (n == 0 || n > SANDBOX_MAX || t[n] != '/') return -1;
    memcpy(sandbox, t, n);
    sandbox[n] = '\0';
    *rest = t + n;
    return 0;
}

static void serve_remote(struct px_conn *c, int fd, void *ud)
{
    (void)c;
    struct llm_public *pub = ud;
    jb_auto(llm_in_free) struct llm_in in = {0};
    char sandbox[SANDBOX_MAX + 1];
    const char *rest = NULL;
    if (llm_read_request(fd, &in) < 0) return;
    if (split_target(in.target, sandbox, &rest) < 0)
        return llm_reply(fd, LLM_ANTHROPIC, 404, "not_found_error", "unknown API");
    int approve = llm_is_approve_target(rest);
    if (!approve && llm_route(fd, rest, &in) < 0) return;
    struct llm_session *s = claim(pub, fd, &in, sandbox);
    if (!s) return;
    if (approve)
        llm_approve_serve(s, fd, &in);
    else
        llm_serve(s, fd, &in, NULL); /* the token said whose it is: the store is asked now */
    llm_registry_release(&pub->px->reg, s, fd);
}

/* ---- the listener ---- */

/* "HOST:PORT" or "[V6]:PORT" → host and port (digits; 0 picks a free port). 0, or -1 with err. */
static int split_addr(const char *addr, char host[256], char port[6], struct jb_err *err)
{
    if (jb_split_hostport(addr, host, port) < 0)
        return jb_err_set(err, JB_ECONFIG,
                          "LLM proxy listen address \"%.100s\": expected HOST:PORT or [IPv6]:PORT, "
                          "e.g. 127.0.0.1:8787 (port 0 picks a free one)",
                          addr);
    return 0;
}

static int listen_tcp(const char *addr, int *ret_port, struct jb_err *err)
{
    char host[256], port[6];
    if (split_addr(addr, host, port, err) < 0) return -1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai)
        return jb_err_set(err, JB_ECONFIG, "LLM proxy listen address %s: %s", addr,
                          gai_strerror(gai));
    int fd = -1, one = 1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            jb_err_sys(err, "LLM proxy: cannot listen on %s", addr);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) return err && err->msg[0] ? -1 : jb_err_sys(err, "LLM proxy: socket for %s", addr);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        close(fd);
        return jb_err_sys(err, "LLM proxy: getsockname");
    }
    *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void refuse_remote(int fd, enum px_refusal why, void *ud)
{
    (void)why, (void)ud; /* the listener's cap is the only one */
    llm_reply(fd, LLM_ANTHROPIC, 503, "overloaded_error", "the LLM proxy has too many connections");
}

int llm_proxy_listen(struct llm_proxy *px, const char *addr, struct jb_err *err)
{
    if (px->pub)
        return jb_err_set(err, JB_ECONFIG, "the LLM proxy already listens on TCP port %d",
                          px->pub->port);
    struct llm_public *pub = calloc(1, sizeof *pub);
    if (!pub) return jb_err_set(err, JB_ENOMEM, "llm proxy listener");
    pub->px = px, pub->lfd = -1;
    if (px_group_init(&pub->group, &px->pool, LLM_PUBLIC_MAX_CONNS, err) < 0 ||
        (pub->lfd = listen_tcp(addr, &pub->port, err)) < 0 ||
        px_group_listen(&pub->group, pub->lfd, 1, "llm proxy (TCP)", serve_remote, refuse_remote,
                        pub, err) < 0)
        goto fail;
    px->pub = pub;
    log_info("llm proxy: listening for remote sandboxes on %s (port %d)", addr, pub->port);
    return 0;
fail:
    px_group_close(&pub->group);
    if (pub->lfd >= 0) close(pub->lfd);
    free(pub);
    return -1;
}

int llm_proxy_port(const struct llm_proxy *px)
{
    return px && px->pub ? px->pub->port : 0;
}

void llm_public_stop(struct llm_proxy *px)
{
    struct llm_public *pub = px->pub;
    if (!pub) return;
    px_group_close(&pub->group); /* every request over TCP has ended */
    close(pub->lfd);
    free(pub);
    px->pub = NULL;
}
