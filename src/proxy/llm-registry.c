/* proxy/llm-registry.c -- the LLM proxy's sessions, one per sandbox exec: the token minted
 * for it (only its sha256 goes into the store), what its requests used (the tally), the
 * refusal it last got, its revocation, and the registry of remote sessions that requests
 * over TCP are matched against by token. Both listeners use this file (llm.c for a local
 * session's Unix socket, llm-public.c for the TCP one); it calls neither. */
#include <string.h>

#include "proxy/llm-int.h"
#include "store/store.h"

#define SANDBOX_MAX 63 /* bytes of a sandbox name in a path */

void llm_registry_init(struct llm_registry *r)
{
    *r = (struct llm_registry){0};
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

void llm_registry_destroy(struct llm_registry *r)
{
    if (r->remote) /* their llm_session_close() would use freed memory */
        log_error("llm proxy: freed with remote sessions still open (close them first)");
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* ---- a session ---- */

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
    s->px = px, s->lfd = -1;
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

int llm_token_is(const struct llm_session *s, const char *tok, size_t len)
{
    if (!tok || len != LLM_TOKEN_LEN) return 0; /* the length is no secret: it is fixed */
    unsigned diff = 0;
    for (size_t i = 0; i < LLM_TOKEN_LEN; i++)
        diff |= (unsigned)(tok[i] ^ s->token[i]);
    return diff == 0;
}

void llm_session_revoke(struct llm_session *s)
{
    if (s->remote) { /* from here no new request finds it */
        struct llm_registry *r = &s->px->reg;
        pthread_mutex_lock(&r->mu);
        for (struct llm_session **pp = &r->remote; *pp; pp = &(*pp)->rnext)
            if (*pp == s) {
                *pp = s->rnext;
                break;
            }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&s->px->st_mu);
    store_token_revoke(s->px->st, s->hash, NULL, NULL); /* worthless from now on */
    pthread_mutex_unlock(&s->px->st_mu);
}

void llm_session_add_usage(struct llm_session *s, const char *model, const struct jb_tokens *t)
{
    pthread_mutex_lock(&s->mu);
    jb_tally_add(&s->tally, model, t, 1);
    pthread_mutex_unlock(&s->mu);
}

void llm_session_set_refused(struct llm_session *s, const char *why)
{
    atomic_store(&s->refused, why);
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

/* ---- remote sessions: found by their token ---- */

static int sandbox_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SANDBOX_MAX || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int llm_session_open_remote(struct llm_proxy *px, const char *thread_key, const char *user,
                            const char *sandbox, char token[LLM_TOKEN_LEN + 1],
                            struct llm_session **ret, struct jb_err *err)
{
    if (!sandbox_name_ok(sandbox))
        return jb_err_set(err, JB_ECONFIG,
                          "sandbox name \"%.80s\" cannot be a URL path segment: use 1 to %d "
                          "letters, digits, '.', '_' or '-'",
                          sandbox, SANDBOX_MAX);
    struct llm_session *s = NULL;
    if (llm_session_new(px, thread_key, user, sandbox, token, &s, err) < 0) return -1;
    s->remote = 1;
    pthread_mutex_lock(&px->reg.mu);
    s->rnext = px->reg.remote;
    px->reg.remote = s;
    pthread_mutex_unlock(&px->reg.mu);
    *ret = s;
    return 0;
}

/* The session whose token tok is, or NULL. Every entry is compared in full and in
 * constant time, so the time taken says nothing about how close a guess came. Under
 * r->mu. */
static struct llm_session *find(struct llm_registry *r, const char *tok, size_t len)
{
    struct llm_session *hit = NULL;
    for (struct llm_session *s = r->remote; s; s = s->rnext)
        if (llm_token_is(s, tok, len)) hit = s;
    return hit;
}

enum llm_claim llm_registry_claim(struct llm_registry *r, const char *tok, size_t len,
                                  const char *sandbox, int fd, struct llm_session **ret)
{
    enum llm_claim why = LLM_CLAIM_OK;
    pthread_mutex_lock(&r->mu);
    struct llm_session *s = find(r, tok, len);
    if (!s)
        why = LLM_CLAIM_UNKNOWN;
    else if (strcmp(s->sandbox, sandbox))
        why = LLM_CLAIM_OTHER_SANDBOX;
    else if (s->nfds >= LLM_MAX_PER_LISTENER)
        why = LLM_CLAIM_BUSY;
    else
        s->fds[s->nfds++] = fd;
    if (why == LLM_CLAIM_OTHER_SANDBOX) /* names the thread whose token it is, never the token */
        log_warn("llm proxy %s: its token was sent for another sandbox's path", s->thread_key);
    pthread_mutex_unlock(&r->mu);
    *ret = why == LLM_CLAIM_OK ? s : NULL;
    return why;
}

void llm_registry_release(struct llm_registry *r, struct llm_session *s, int fd)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < s->nfds; i++)
        if (s->fds[i] == fd) {
            s->fds[i] = s->fds[--s->nfds];
            break;
        }
    if (!s->nfds) pthread_cond_broadcast(&r->cv); /* llm_session_drain() may wait */
    pthread_mutex_unlock(&r->mu);
}

void llm_session_drain(struct llm_session *s)
{
    struct llm_registry *r = &s->px->reg;
    pthread_mutex_lock(&r->mu);
    /* An fd here is still open: its thread closes nothing before llm_registry_release(). */
    for (int i = 0; i < s->nfds; i++)
        shutdown(s->fds[i], SHUT_RDWR);
    while (s->nfds)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}
