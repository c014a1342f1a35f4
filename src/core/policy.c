/* core/policy.c -- policy snapshots (environment over config file), the channel of a
 * thread, the per-user token bucket, and the core's current snapshot behind a mutex. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core-int.h"
#include "core/policy.h"
#include "store/store.h"

#define DEFAULT_RATE      10
#define DEFAULT_MAX_TURNS 2

/* ---- snapshots ---- */

static void channel_release(struct policy_channel *ch)
{
    free(ch->id);
    jb_strv_free(&ch->mcp);
    jb_strv_free(&ch->allow);
    free(ch->mcp_json);
    free(ch->agent_name);
    jb_strv_free(&ch->egress);
    free(ch->egress_csv);
    jb_strv_free(&ch->approve);
    jb_strv_free(&ch->approvers);
}

struct policy *policy_new_default(void)
{
    struct policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    atomic_init(&p->refs, 1);
    p->rate_per_minute = DEFAULT_RATE;
    p->max_turns_per_user = DEFAULT_MAX_TURNS;
    p->mcp_from = "neither MCP_SERVERS nor the config file's mcp_servers";
    p->mcp_servers = json_object();
    p->ch = calloc(1, sizeof *p->ch);
    if (p->ch) p->ch[0].approve_timeout_s = APPROVE_TIMEOUT_DEFAULT_S;
    if (!p->mcp_servers || !p->ch || !(p->ch[0].id = strdup("default"))) {
        policy_unref(p);
        return NULL;
    }
    p->nch = 1;
    return p;
}

struct policy *policy_ref(struct policy *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void policy_unref(struct policy *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (size_t i = 0; i < p->nch; i++)
        channel_release(&p->ch[i]);
    free(p->ch);
    json_decref(p->mcp_servers);
    jb_strv_free(&p->allowed_users);
    jb_strv_free(&p->allowed_channels);
    prices_release(&p->prices);
    free(p->path);
    free(p);
}

static inline void policy_unrefp(struct policy **p)
{
    policy_unref(*p);
}

/* ---- the environment ---- */

static int env_count(const char *name, int hi, int *out, struct jb_err *err)
{
    const char *v = config_get(name);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || !isdigit((unsigned char)v[0]) || n > hi)
        return jb_err_set(err, JB_ECONFIG,
                          "%s=\"%s\" is not valid: expected a non-negative integer (0 to %d)", name,
                          v, hi);
    *out = (int)n;
    return 0;
}

/* Every env value and header of every server is a secret for the logger. */
static void register_secrets(json_t *servers)
{
    const char *name, *k;
    json_t *def, *v;
    json_object_foreach(servers, name, def)
    {
        static const char *const bags[] = {"env", "headers"};
        for (size_t i = 0; i < JB_ARRAY_LEN(bags); i++) {
            json_t *bag = json_object_get(def, bags[i]);
            json_object_foreach(bag, k, v)
            {
                jb_log_add_secret(json_string_value(v));
            }
        }
    }
}

/* MCP_SERVERS: {"name": {definition}, ...}. The value is never quoted back: it may hold
 * credentials. */
static int env_mcp(struct policy *p, struct jb_err *err)
{
    const char *v = config_get("MCP_SERVERS");
    if (!v || !*v) return 0;
    json_error_t je;
    json_t *o = json_loads(v, JSON_REJECT_DUPLICATES, &je);
    const char *name;
    json_t *def;
    int ok = json_is_object(o);
    json_object_foreach(o, name, def)
    {
        ok = ok && json_is_object(def) && *name;
    }
    if (!ok) {
        json_decref(o);
        return jb_err_set(err, JB_ECONFIG,
                          "MCP_SERVERS is not valid (value not shown): expected a JSON object "
                          "of server name -> definition object%s%s",
                          o ? "" : ": ", o ? "" : je.text);
    }
    json_decref(p->mcp_servers);
    p->mcp_servers = o;
    p->mcp_from = "MCP_SERVERS";
    return 0;
}

static int env_ids(const char *name, const struct jb_strv *from, struct jb_strv *to,
                   struct jb_err *err)
{
    if (!config_get(name)) return 0; /* the file's list, if any, stays */
    jb_strv_free(to);
    for (size_t i = 0; i < from->n; i++)
        if (jb_strv_push(to, from->v[i], err) < 0) return -1;
    return 0;
}

static int config_path(const struct jb_config *cfg, char **ret, struct jb_err *err)
{
    const char *v = config_get("JANEBOT_CONFIG");
    struct stat st;
    if (v && *v) {
        if (stat(v, &st) < 0 || !S_ISREG(st.st_mode))
            return jb_err_set(err, JB_ECONFIG,
                              "JANEBOT_CONFIG=\"%s\" is not valid: expected a readable YAML file",
                              v);
        return (*ret = strdup(v)) ? 0 : jb_err_set(err, JB_ENOMEM, "config path");
    }
    *ret = NULL;
    if (asprintf(ret, "%s/janebot.yaml", cfg->state_dir) < 0)
        return *ret = NULL, jb_err_set(err, JB_ENOMEM, "config path");
    if (stat(*ret, &st) < 0) {
        free(*ret);
        *ret = NULL;
    }
    return 0;
}

/* JANEBOT_PRICES, when set, replaces the file's prices as a whole. */
static int env_prices(const struct jb_config *cfg, struct policy *p, struct jb_err *err)
{
    struct prices ps;
    if (!cfg->prices || !*cfg->prices) return 0;
    if (prices_parse(cfg->prices, &ps, err) < 0) return -1;
    prices_release(&p->prices);
    p->prices = ps;
    return 0;
}

/* `approve:` on a channel whose agent cannot ask would let every listed tool run
 * unasked: refuse it rather than promise what is not enforced. */
static int approvals_askable(const struct policy *p, const char *default_agent, struct jb_err *err)
{
    for (size_t i = 0; i < p->nch; i++) {
        const struct policy_channel *ch = &p->ch[i];
        const char *agent = ch->agent_name ? ch->agent_name : default_agent;
        if (ch->approve.n == 0 || !agent || !strcmp(agent, "command") || !strcmp(agent, "claude"))
            continue;
        return jb_err_set(err, JB_ECONFIG,
                          "%s: channel %s%s%.0d: `approve:` needs an agent that asks before a "
                          "tool runs, and the %s agent cannot ask janebot (the claude and "
                          "command agents can); remove `approve:` there or give the channel "
                          "`agent: claude`",
                          p->path ? p->path : "config", ch->id, ch->line ? " at line " : "",
                          ch->line, agent);
    }
    return 0;
}

int policy_load(const struct jb_config *cfg, struct policy **ret, struct jb_err *err)
{
    jb_auto(policy_unrefp) struct policy *p = policy_new_default();
    if (!p) return jb_err_set(err, JB_ENOMEM, "policy");
    if (config_path(cfg, &p->path, err) < 0) return -1;
    if (p->path && policy_read_file(p, p->path, err) < 0) return -1;
    if (env_count("RATE_LIMIT_PER_MINUTE", 1000000, &p->rate_per_minute, err) < 0 ||
        env_count("JANEBOT_MAX_TURNS_PER_USER", 1000, &p->max_turns_per_user, err) < 0 ||
        env_mcp(p, err) < 0 ||
        env_ids("ALLOWED_USER_IDS", &cfg->allowed_users, &p->allowed_users, err) < 0 ||
        env_ids("ALLOWED_CHANNEL_IDS", &cfg->allowed_channels, &p->allowed_channels, err) < 0 ||
        env_prices(cfg, p, err) < 0 || policy_finish(p, err) < 0 ||
        approvals_askable(p, cfg->agent, err) < 0)
        return -1;
    register_secrets(p->mcp_servers);
    *ret = TAKE_PTR(p);
    return 0;
}

/* ---- channels ---- */

static int channel_finish(struct policy *p, struct policy_channel *ch, struct jb_err *err)
{
    json_t *mine = json_object();
    if (!mine) return jb_err_set(err, JB_ENOMEM, "policy");
    for (size_t i = 0; i < ch->mcp.n; i++) {
        json_t *def = json_object_get(p->mcp_servers, ch->mcp.v[i]);
        if (!def) {
            json_decref(mine);
            return jb_err_set(err, JB_ECONFIG,
                              "%s:%d: channels.%s.mcp_servers: no MCP server named \"%s\" is "
                              "declared (servers come from %s)",
                              p->path ? p->path : "config", ch->line, ch->id, ch->mcp.v[i],
                              p->mcp_from);
        }
        json_object_set(mine, ch->mcp.v[i], def);
    }
    free(ch->mcp_json);
    ch->mcp_json = json_dumps(mine, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(mine);
    if (!ch->mcp_json) return jb_err_set(err, JB_ENOMEM, "policy");
    struct jb_buf eg = JB_BUF_INIT(1 << 16);
    for (size_t i = 0; i < ch->egress.n; i++)
        if (jb_buf_appendf(&eg, err, "%s%s", i ? "," : "", ch->egress.v[i]) < 0) {
            jb_buf_release(&eg);
            return -1;
        }
    free(ch->egress_csv);
    ch->egress_csv = ch->egress.n ? jb_buf_detach(&eg, NULL) : NULL;
    jb_buf_release(&eg);
    ch->agent.mcp_json = ch->mcp_json;
    ch->agent.allow = (const char *const *)ch->allow.v;
    ch->agent.ask_permission = ch->approve.n > 0;
    ch->agent.approve = (const char *const *)ch->approve.v;
    return 0;
}

int policy_finish(struct policy *p, struct jb_err *err)
{
    for (size_t i = 0; i < p->nch; i++)
        if (channel_finish(p, &p->ch[i], err) < 0) return -1;
    return 0;
}

const struct policy_channel *policy_channel_for(const struct policy *p, const char *thread_key)
{
    const char *colon = thread_key ? strchr(thread_key, ':') : NULL;
    if (!colon || !strncmp(thread_key, "chat:", 5)) return &p->ch[0];
    size_t n = (size_t)(colon - thread_key);
    for (size_t i = 1; i < p->nch; i++)
        if (strlen(p->ch[i].id) == n && !strncmp(p->ch[i].id, thread_key, n)) return &p->ch[i];
    return &p->ch[0];
}

static int listed(const struct jb_strv *list, const char *id)
{
    if (list->n == 0) return 1; /* empty = everyone */
    for (size_t i = 0; id && i < list->n; i++)
        if (!strcmp(list->v[i], id)) return 1;
    return 0;
}

int policy_allowed(const struct policy *p, const char *user, const char *channel)
{
    return listed(&p->allowed_users, user) && listed(&p->allowed_channels, channel);
}

/* ---- token bucket ---- */

int rate_bucket_take(struct rate_bucket *b, int found, int limit, int64_t now_ms, int *ret_retry_s)
{
    if (limit <= 0) return 0;
    if (!found) *b = (struct rate_bucket){.tokens = limit, .updated_ms = now_ms};
    double per_ms = limit / 60000.0;
    int64_t dt = now_ms - b->updated_ms;
    if (dt > 0) b->tokens += dt * per_ms;
    if (b->tokens > limit) b->tokens = limit;
    if (b->tokens < 0) b->tokens = 0;
    if (dt > 0 || !found) b->updated_ms = now_ms;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    double wait_s = (1.0 - b->tokens) / per_ms / 1000.0;
    int s = (int)wait_s;
    if (s < wait_s - 1e-9) s++;
    *ret_retry_s = s < 1 ? 1 : s;
    return 1;
}

void policy_rate_message(int retry_s, int limit, char *buf, size_t n)
{
    snprintf(buf, n,
             "You are rate limited: at most %d message%s per minute per person. This message "
             "was not run; try again in %d second%s.",
             limit, limit == 1 ? "" : "s", retry_s, retry_s == 1 ? "" : "s");
}

/* ---- the core's snapshot ---- */

struct policy *core_policy_get(struct core *c)
{
    pthread_mutex_lock(&c->pol_mu);
    struct policy *p = policy_ref(c->policy);
    pthread_mutex_unlock(&c->pol_mu);
    return p;
}

int core_policy_reload(struct core *c, struct jb_err *err)
{
    struct policy *p = NULL;
    if (policy_load(c->cfg, &p, err) < 0) return -1;
    pthread_mutex_lock(&c->pol_mu);
    struct policy *old = c->policy;
    c->policy = p;
    pthread_mutex_unlock(&c->pol_mu);
    lanes_set_max_per_user(c->lanes, p->max_turns_per_user);
    policy_unref(old);
    return 0;
}

int core_take_fn(void *ud, int found, double *tokens, int64_t *updated_ms)
{
    struct core_take *t = ud;
    struct rate_bucket b = {*tokens, *updated_ms};
    int rc = rate_bucket_take(&b, found, t->limit, jb_now_ms(), &t->retry_s);
    *tokens = b.tokens, *updated_ms = b.updated_ms;
    return rc;
}

int core_rate_bucket(struct core *c, const char *user, char *key, size_t n, struct core_take *t,
                     struct jb_err *err)
{
    struct policy *p = core_policy_get(c);
    *t = (struct core_take){.limit = p->rate_per_minute};
    policy_unref(p);
    if (t->limit <= 0) return 0;
    int len = snprintf(key, n, "user:%s", user);
    if (len < 0 || (size_t)len >= n)
        return jb_err_set(err, JB_EPROTO, "user id too long for a rate bucket");
    return 1;
}

int core_rate_take(struct core *c, const char *user, int *ret_retry_s, struct jb_err *err)
{
    char key[300];
    struct core_take t;
    int rc = core_rate_bucket(c, user, key, sizeof key, &t, err);
    if (rc <= 0) return rc;
    pthread_mutex_lock(&c->store_mu);
    rc = store_bucket_update(c->store, key, core_take_fn, &t, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc == 1) *ret_retry_s = t.retry_s;
    return rc;
}

int core_allowed(struct core *c, const char *user, const char *channel)
{
    struct policy *p = core_policy_get(c);
    int ok = policy_allowed(p, user, channel);
    policy_unref(p);
    return ok;
}
