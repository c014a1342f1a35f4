/* core/services.c -- what the core hands the sandbox backends: their options, read from the
 * configuration, and the services they use (struct sandbox_services): the egress proxy
 * (one listener per local exec, with the channel's allowlist), the LLM proxy (a scoped
 * token per exec, on the exec's own socket or, for sprites, over the TCP listener of
 * JANEBOT_PROXY_LISTEN) and the store's records of sandbox uids, sprite names and the warm
 * pool. The proxies are made once here, for the one sandbox context of the process. */
#include <string.h>

#include "core/core-int.h"
#include "proxy/proxy.h"
#include "store/store.h"

void core_sandbox_opts(const struct jb_config *cfg, struct sandbox_opts *o)
{
    const char *conf = config_get("JANEBOT_CONFIG");
    *o = (struct sandbox_opts){
        .backend = cfg->sandbox,
        .state_dir = cfg->state_dir,
        .config_file = conf && *conf ? conf : NULL,
        .path_env = cfg->path_env,
        .allow_local_execution = cfg->allow_local_execution,
        .max_procs = cfg->sandbox_max_procs,
        .max_file_mb = cfg->sandbox_max_file_mb,
        .memory_mb = cfg->sandbox_memory_mb,
        .as_mb = cfg->sandbox_as_mb,
        .cpu_s = cfg->sandbox_cpu_s,
        .disk_mb = cfg->sandbox_disk_mb,
        .tmp_mb = cfg->sandbox_tmp_mb,
        .nice = cfg->sandbox_nice,
        .uid_base = cfg->sandbox_uid_base,
        .egress_allow =
            cfg->egress_allow && *cfg->egress_allow ? cfg->egress_allow : EGRESS_DEFAULT_ALLOW,
        .sprites_api_url = cfg->sprites_api_url,
        .sprites_token = cfg->sprites_token,
        .sprites_setup = cfg->sprites_setup,
        .sprites_setup_allow = cfg->sprites_setup_allow,
        .sprites_pool = cfg->sprites_pool,
        .sprites_health_s = cfg->sprites_health_s,
        .public_url = cfg->public_url,
    };
}

/* ---- the egress proxy ---- */

struct sandbox_egress {
    struct egress_listener *listener;
    struct egress_policy *own; /* the channel's list, or NULL: the proxy's */
};

static int egress_open(void *ud, const char *sock_path, const char *thread_key,
                       const char *extra_csv, uid_t owner, struct sandbox_egress **ret,
                       struct jb_err *err)
{
    struct core_services *cs = ud;
    struct sandbox_egress *e = calloc(1, sizeof *e);
    if (!e) return jb_err_set(err, JB_ENOMEM, "egress listener");
    if (egress_listen(cs->egress, sock_path, thread_key, owner, &e->listener, err) < 0) {
        free(e);
        return -1;
    }
    if (extra_csv) { /* JANEBOT_EGRESS_ALLOW (or the default list) plus the channel's names */
        jb_autofree char *allow = NULL;
        if (asprintf(&allow, "%s,%s", cs->opts.egress_allow, extra_csv) < 0) {
            allow = NULL;
            jb_err_set(err, JB_ENOMEM, "egress policy");
        } else if (egress_policy_new(allow, cs->cfg->egress_test_hosts, &e->own, err) < 0) {
            jb_err_prefix(err, "the channel's egress list");
        }
        if (!e->own) {
            egress_listener_close(e->listener);
            free(e);
            return -1;
        }
        egress_listener_set_policy(e->listener, e->own);
    }
    if (cs->egress_approve)
        egress_listener_set_approver(e->listener, cs->egress_approve, cs->egress_approve_ud);
    *ret = e;
    return 0;
}

static void egress_close(void *ud, struct sandbox_egress *e)
{
    (void)ud;
    if (!e) return;
    egress_listener_close(e->listener); /* before the policy it uses */
    egress_policy_free(e->own);
    free(e);
}

/* ---- the LLM proxy ---- */

struct sandbox_llm {
    struct llm_session *s;
};

static struct llm_proxy *llm_new(const struct jb_config *cfg, struct jb_err *err, int *ret_none)
{
    struct llm_config llm = {
        .key = {cfg->anthropic_api_key, cfg->openai_api_key, cfg->amp_api_key},
        .upstream = {cfg->upstream_anthropic, cfg->upstream_openai, cfg->upstream_amp},
        .db_path = cfg->db_path,
        .user_daily_tokens = cfg->user_daily_tokens,
    };
    struct llm_proxy *px = NULL;
    *ret_none = !(llm.key[0] || llm.key[1] || llm.key[2]);
    if (!*ret_none && llm_proxy_new(&llm, &px, err) < 0) return NULL;
    return px;
}

/* Sprites: the proxy on JANEBOT_PROXY_LISTEN, when JANEBOT_PUBLIC_URL is set and the host
 * has a key. */
static int llm_remote_open(struct core_services *cs, struct jb_err *err)
{
    int none = 0;
    if (!cs->cfg->public_url) return 0;
    struct llm_proxy *px = llm_new(cs->cfg, err, &none);
    if (none) return 0;
    if (!px) return -1;
    if (llm_proxy_listen(px, cs->cfg->proxy_listen, err) < 0) {
        llm_proxy_free(px);
        return -1;
    }
    cs->llm = px;
    return 0;
}

/* A one-off command opens the listener at its first exec, so `list` or `gc` never touch
 * the address. */
static void llm_remote_ready(struct core_services *cs)
{
    pthread_mutex_lock(&cs->llm_mu);
    if (!cs->llm_tried) {
        cs->llm_tried = 1;
        struct jb_err e = {0};
        if (llm_remote_open(cs, &e) < 0) {
            /* Likely `serve` holds the address: no key at all beats the real one. */
            log_warn("JANEBOT_PROXY_LISTEN: %s; this command's sprite gets no API key", e.msg);
            cs->no_keys = 1;
        }
    }
    pthread_mutex_unlock(&cs->llm_mu);
}

/* The exec's variables: each offered provider's base URL and the token. */
static int llm_env(struct core_services *cs, const struct sandbox_llm_req *rq, const char *token,
                   struct jb_strv *env, struct jb_err *err)
{
    for (int i = 0; i < LLM_NPROVIDERS; i++) {
        enum llm_provider p = (enum llm_provider)i;
        if (!llm_proxy_offers(cs->llm, p)) continue;
        jb_autofree char *base = rq->sock_path
                                     ? strdup(llm_base_url(p))
                                     : llm_remote_base_url(cs->cfg->public_url, rq->sandbox, p);
        if (!base) return jb_err_set(err, JB_ENOMEM, "llm env");
        if (jb_strv_pushf(env, err, "%s=%s", llm_base_var(p), base) < 0 ||
            jb_strv_pushf(env, err, "%s=%s", llm_key_var(p), token) < 0)
            return -1;
    }
    /* The approval endpoint (proxy.h), on the same listener and token. */
    jb_autofree char *url = NULL;
    if (rq->sock_path
            ? asprintf(&url, "http://127.0.0.1:4000%s", LLM_APPROVE_PATH) < 0
            : asprintf(&url, "%s/s/%s%s", cs->cfg->public_url, rq->sandbox, LLM_APPROVE_PATH) < 0)
        return url = NULL, jb_err_set(err, JB_ENOMEM, "llm env");
    if (jb_strv_pushf(env, err, "JANEBOT_APPROVE_URL=%s", url) < 0 ||
        jb_strv_pushf(env, err, "JANEBOT_APPROVE_TOKEN=%s", token) < 0)
        return -1;
    return 0;
}

static int llm_open(void *ud, const struct sandbox_llm_req *rq, struct jb_strv *env,
                    struct sandbox_llm **ret, struct jb_err *err)
{
    struct core_services *cs = ud;
    *ret = NULL;
    if (!rq->sock_path) llm_remote_ready(cs);
    if (!rq->sock_path && cs->no_keys) {
        for (int p = 0; p < LLM_NPROVIDERS; p++)
            if (jb_strv_pushf(env, err, "%s=", llm_key_var((enum llm_provider)p)) < 0) return -1;
        return 0;
    }
    if (!cs->llm) return 0;
    struct sandbox_llm *l = calloc(1, sizeof *l);
    if (!l) return jb_err_set(err, JB_ENOMEM, "llm session");
    char token[LLM_TOKEN_LEN + 1];
    int rc = rq->sock_path ? llm_session_open(cs->llm, rq->sock_path, rq->thread_key, rq->user,
                                              rq->sandbox, rq->owner, token, &l->s, err)
                           : llm_session_open_remote(cs->llm, rq->thread_key, rq->user, rq->sandbox,
                                                     token, &l->s, err);
    if (rc == 0) rc = llm_env(cs, rq, token, env, err);
    explicit_bzero(token, sizeof token);
    if (rc < 0) {
        llm_session_close(l->s);
        free(l);
        return -1;
    }
    *ret = l;
    return 0;
}

static const char *llm_refused(void *ud, struct sandbox_llm *l)
{
    (void)ud;
    return llm_session_refused(l->s);
}

static void llm_usage(void *ud, struct sandbox_llm *l, struct jb_tally *ret)
{
    (void)ud;
    llm_session_usage(l->s, ret);
}

static void llm_close(void *ud, struct sandbox_llm *l)
{
    (void)ud;
    if (!l) return;
    llm_session_close(l->s);
    free(l);
}

/* ---- the store: one caller at a time on the core's connection ---- */

#define LOCKED(cs, call)                                                                           \
    do {                                                                                           \
        pthread_mutex_lock((cs)->st_mu);                                                           \
        rc = (call);                                                                               \
        pthread_mutex_unlock((cs)->st_mu);                                                         \
    } while (0)

static int uid_get(void *ud, const char *name, int *ret_offset, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_uid_get(cs->st, name, ret_offset, err));
    return rc;
}

static int uid_free(void *ud, const char *name, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_uid_free(cs->st, name, err));
    return rc;
}

/* The row's strings move to the sandbox's row. */
static void row_take(struct sandbox_name_row *from, struct sandbox_sprite_row *to)
{
    *to = (struct sandbox_sprite_row){.thread_key = from->thread_key,
                                      .name = from->name,
                                      .golden = from->golden,
                                      .last_used = from->last_used};
    from->thread_key = from->name = from->golden = NULL;
    sandbox_name_row_release(from);
}

static int name_get(void *ud, const char *key, int by_name, struct sandbox_sprite_row *ret,
                    struct jb_err *err)
{
    struct core_services *cs = ud;
    struct sandbox_name_row row = {0};
    int rc;
    LOCKED(cs, store_name_get(cs->st, key, by_name, &row, err));
    if (rc == 0) row_take(&row, ret);
    return rc;
}

static int name_set(void *ud, const char *thread_key, const char *name, const char *golden,
                    const char *setup_hash, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_name_set(cs->st, thread_key, name, golden, setup_hash, err));
    return rc;
}

static int name_touch(void *ud, const char *thread_key, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_name_touch(cs->st, thread_key, err));
    return rc;
}

static int name_delete(void *ud, const char *thread_key, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_name_delete(cs->st, thread_key, err));
    return rc;
}

static int name_list(void *ud, struct sandbox_sprite_row **ret, size_t *ret_n, struct jb_err *err)
{
    struct core_services *cs = ud;
    struct sandbox_name_row *v = NULL;
    size_t n = 0;
    int rc;
    LOCKED(cs, store_name_list(cs->st, &v, &n, err));
    if (rc < 0) return -1;
    struct sandbox_sprite_row *out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        sandbox_name_rows_free(v, n);
        return jb_err_set(err, JB_ENOMEM, "sprite names");
    }
    for (size_t i = 0; i < n; i++)
        row_take(&v[i], &out[i]);
    free(v);
    *ret = out, *ret_n = n;
    return 0;
}

static int pool_add(void *ud, const char *name, const char *golden, const char *setup_hash,
                    struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_pool_add(cs->st, name, golden, setup_hash, err));
    return rc;
}

static int pool_claim(void *ud, const char *thread_key, const char *setup_hash,
                      struct sandbox_sprite_row *ret, struct jb_err *err)
{
    struct core_services *cs = ud;
    struct sandbox_name_row row = {0};
    int rc;
    LOCKED(cs, store_pool_claim(cs->st, thread_key, setup_hash, &row, err));
    if (rc == 0) row_take(&row, ret);
    return rc;
}

static int pool_names(void *ud, const char *stale_for, struct jb_strv *ret, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_pool_names(cs->st, stale_for, ret, err));
    return rc;
}

static int pool_remove(void *ud, const char *name, struct jb_err *err)
{
    struct core_services *cs = ud;
    int rc;
    LOCKED(cs, store_pool_remove(cs->st, name, err));
    return rc;
}

/* ---- set-up ---- */

/* The proxies the configured backend uses: the local one both, sprites the LLM proxy on
 * TCP, the host backend none. */
static int proxies_open(struct core_services *cs, struct jb_err *err)
{
    const struct jb_config *cfg = cs->cfg;
    if (!strcmp(cfg->sandbox, "local")) {
        int none = 0;
        if (egress_policy_new(cfg->egress_allow, cfg->egress_test_hosts, &cs->egress_policy, err) <
                0 ||
            egress_proxy_new(cs->egress_policy, &cs->egress, err) < 0)
            return -1;
        if (egress_policy_has_test_hosts(cs->egress_policy))
            log_warn("JANEBOT_EGRESS_TEST_HOSTS is set: some allowlisted names reach local "
                     "addresses; this is for tests only");
        cs->llm = llm_new(cfg, err, &none);
        return cs->llm || none ? 0 : -1;
    }
    if (!strcmp(cfg->sandbox, "sprites")) {
        cs->llm_tried = cs->serving; /* serving: now, and it must work (fails closed) */
        return cs->serving ? llm_remote_open(cs, err) : 0;
    }
    return 0;
}

void core_services_set_metrics(struct core_services *cs, struct jb_metrics *m)
{
    cs->opts.metrics = m;
    if (cs->egress) egress_proxy_set_metrics(cs->egress, m);
    if (cs->llm) llm_proxy_set_metrics(cs->llm, m);
}

int core_services_open(struct core_services *cs, const struct jb_config *cfg, int serving,
                       struct store *st, pthread_mutex_t *st_mu, struct jb_err *err)
{
    memset(cs, 0, sizeof *cs);
    cs->cfg = cfg, cs->serving = serving;
    pthread_mutex_init(&cs->own_mu, NULL);
    pthread_mutex_init(&cs->llm_mu, NULL);
    core_sandbox_opts(cfg, &cs->opts);
    if (cs->opts.config_file && !(cs->config_file = strdup(cs->opts.config_file)))
        return jb_err_set(err, JB_ENOMEM, "config file name");
    cs->opts.config_file = cs->config_file;
    cs->svc = (struct sandbox_services){
        .ud = cs,
        .egress_open = egress_open,
        .egress_close = egress_close,
        .llm_open = llm_open,
        .llm_refused = llm_refused,
        .llm_usage = llm_usage,
        .llm_close = llm_close,
        .uid_get = uid_get,
        .uid_free = uid_free,
        .name_get = name_get,
        .name_set = name_set,
        .name_touch = name_touch,
        .name_delete = name_delete,
        .name_list = name_list,
        .pool_add = pool_add,
        .pool_claim = pool_claim,
        .pool_names = pool_names,
        .pool_remove = pool_remove,
    };
    if (st) {
        cs->st = st, cs->st_mu = st_mu;
    } else {
        cs->st_mu = &cs->own_mu;
        cs->own_store = 1;
        if (jb_mkdir_p(cfg->state_dir, 0700, err) < 0 || store_open(cfg->db_path, &cs->st, err) < 0)
            return -1;
    }
    return proxies_open(cs, err);
}

int core_services_sandbox(struct core_services *cs, struct sandbox_ctx *ctx, int check,
                          struct jb_err *err)
{
    return sandbox_ctx_init(ctx, &cs->opts, &cs->svc, check, err);
}

void core_services_close(struct core_services *cs)
{
    if (!cs->cfg) return; /* never opened */
    egress_proxy_free(cs->egress);
    egress_policy_free(cs->egress_policy);
    llm_proxy_free(cs->llm);
    if (cs->own_store) store_close(cs->st);
    free(cs->config_file);
    pthread_mutex_destroy(&cs->own_mu);
    pthread_mutex_destroy(&cs->llm_mu);
    memset(cs, 0, sizeof *cs);
}
