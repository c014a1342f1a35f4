/* core/bot.c -- the bot's lifecycle: accepting messages (inbox first, then the lane),
 * replaying what a crash left pending, and the registry of running turns behind the
 * `status` and `abort` commands. */
#include <string.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "proxy/proxy.h"
#include "core/policy.h"
#include "store/store.h"

void core_agent_opts(const struct jb_config *cfg, struct agent_opts *out)
{
    *out = (struct agent_opts){.agent_cmd = cfg->agent_cmd,
                               .cmd_stream_input = cfg->agent_cmd_input &&
                                                   !strcmp(cfg->agent_cmd_input, "stream-json"),
                               .agent_bin = cfg->agent_bin,
                               .path_env = cfg->path_env,
                               .agent_model = cfg->agent_model,
                               .amp_api_key = cfg->amp_api_key,
                               .anthropic_api_key = cfg->anthropic_api_key};
}

static void warn_agent(const struct core *c)
{
    struct jb_err e = {0};
    struct agent_opts ao;
    core_agent_opts(c->cfg, &ao);
    char *bin = agent_binary(c->agent, &ao, &e);
    if (!bin) log_warn("agent %s: %s", c->agent->name, e.msg);
    free(bin);
    if (c->agent->key_var && !config_get(c->agent->key_var))
        log_warn("agent %s: %s is not set; the agent will likely refuse to run", c->agent->name,
                 c->agent->key_var);
}

/* At each scrape: what is read rather than counted. A turn runs in its thread's sandbox,
 * so busy sandboxes are the running turns. */
static void core_scrape(void *ud, struct jb_metrics *m)
{
    struct core *c = ud;
    int running = 0, unused = 0;
    core_running_count(c, "", &running, &unused);
    jb_metrics_set(m, JB_M_QUEUE_MESSAGES, NULL, NULL, (int64_t)lanes_pending(c->lanes));
    jb_metrics_set(m, JB_M_QUEUE_LANES, NULL, NULL, (int64_t)lanes_waiting(c->lanes));
    jb_metrics_set(m, JB_M_TURNS_RUNNING, NULL, NULL, running);
    jb_metrics_set(m, JB_M_SANDBOXES, c->sbx.ops->name, "busy", running);
}

int core_store_check(struct core *c, struct jb_err *err)
{
    pthread_mutex_lock(&c->store_mu);
    int rc = store_write_check(c->store, err);
    pthread_mutex_unlock(&c->store_mu);
    return rc;
}

int core_new(const struct jb_config *cfg, struct frontend *fe, const struct core_opts *o,
             struct core **ret, struct jb_err *err)
{
    struct core *c = calloc(1, sizeof *c);
    if (!c) return jb_err_set(err, JB_ENOMEM, "core");
    c->cfg = cfg, c->fe = fe;
    c->metrics = o ? o->metrics : NULL;
    pthread_mutex_init(&c->store_mu, NULL);
    pthread_mutex_init(&c->run_mu, NULL);
    pthread_mutex_init(&c->pol_mu, NULL);
    core_approvals_init(&c->approvals);
    if (policy_load(cfg, &c->policy, err) < 0) {
        core_free(c);
        return -1;
    }
    c->agent = agent_ops_find(cfg->agent);
    c->worker_store = calloc((size_t)cfg->max_concurrent_turns, sizeof *c->worker_store);
    if (!c->agent || !c->worker_store) {
        core_free(c);
        return jb_err_set(err, JB_ENOMEM, "core");
    }
    /* One store connection for accepting messages, and no other thread's: an event is
     * stored on it before it is acknowledged, so nothing else may hold its lock or run a
     * checkpoint in its commits (those go to a thread of the store's). The sandbox services,
     * the proxies and the gc (used by turns) share a connection of their own; one pair of
     * proxies, one sandbox context. */
    if (jb_mkdir_p(cfg->state_dir, 0700, err) < 0 || store_open(cfg->db_path, &c->store, err) < 0 ||
        store_low_latency(c->store, err) < 0 ||
        core_services_open(&c->svc, cfg, 1, NULL, NULL, err) < 0) {
        core_free(c);
        return -1;
    }
    core_services_set_metrics(&c->svc, c->metrics);
    if (c->svc.llm) llm_proxy_set_approver(c->svc.llm, core_llm_approve, c);
    c->svc.egress_approve = core_egress_approve, c->svc.egress_approve_ud = c;
    if (core_services_sandbox(&c->svc, &c->sbx, 1, err) < 0) {
        core_free(c);
        return -1;
    }
    if (!strcmp(cfg->sandbox, "host"))
        log_warn("JANEBOT_SANDBOX=host: agents run WITHOUT isolation, as this user, on this "
                 "machine (ALLOW_LOCAL_EXECUTION=true)");
    warn_agent(c);
    int stale = store_turn_close_stale(c->store, err);
    if (stale > 0) log_info("closed %d turn(s) left running by a previous stop", stale);
    struct lanes_opts lo = {.workers = cfg->max_concurrent_turns,
                            .merge = o ? o->merge : 0,
                            .debounce_ms = o ? o->debounce_ms : 0,
                            .max_per_user = c->policy->max_turns_per_user};
    if (lanes_new(&lo, core_run_turn, c, &c->lanes, err) < 0 ||
        (o && o->gc && core_gc_start(c, err) < 0) ||
        jb_metrics_on_scrape(c->metrics, core_scrape, c) < 0) {
        core_free(c);
        return -1;
    }
    *ret = c;
    return 0;
}

int core_submit(struct core *c, const char *thread_key, const char *user, const char *text,
                const char *ref, struct jb_err *err)
{
    int retry_s = 0;
    struct jb_err rate_err = {0};
    int limited = core_rate_take(c, user, &retry_s, &rate_err);
    if (limited < 0)
        log_warn("rate limit of %s not checked (message let through): %s", user, rate_err.msg);
    if (limited == 1) { /* nothing stored, nothing runs */
        struct policy *p = core_policy_get(c);
        char msg[256];
        policy_rate_message(retry_s, p->rate_per_minute, msg, sizeof msg);
        policy_unref(p);
        log_info("thread %s: %s rate limited (retry in %d s)", thread_key, user, retry_s);
        c->fe->ops->notice(c->fe, thread_key, msg, NULL);
        return 1;
    }
    int64_t id = 0;
    pthread_mutex_lock(&c->store_mu);
    int rc = store_inbox_add(c->store, thread_key, user, text, ref, NULL, &id, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc < 0) return -1;
    return lanes_enqueue(c->lanes, id, thread_key, user, NULL, NULL, NULL, err); /* by id */
}

int core_submit_event(struct core *c, const char *event_id, const char *dedupe_key,
                      const char *thread_key, const char *user, const char *text, const char *ref,
                      const char *files, int *ret_retry_s, struct jb_err *err)
{
    char bucket[300];
    struct core_take take;
    struct jb_err rate_err = {0};
    struct store_admit a = {.event_id = event_id,
                            .dedupe_key = dedupe_key,
                            .thread_key = thread_key,
                            .user_id = user,
                            .text = text,
                            .ref = ref,
                            .files = files,
                            .bucket_fn = core_take_fn,
                            .bucket_ud = &take};
    if (core_rate_bucket(c, user, bucket, sizeof bucket, &take, &rate_err) == 1)
        a.bucket_key = bucket;
    int64_t id = 0;
    pthread_mutex_lock(&c->store_mu);
    int rc = store_event_admit(c->store, &a, &id, &rate_err, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc >= 0 && rate_err.msg[0])
        log_warn("rate limit of %s not checked (message let through): %s", user, rate_err.msg);
    if (rc == 2) {
        *ret_retry_s = take.retry_s;
        return 3;
    }
    if (rc != 0) return rc; /* 1: seen before; -1: error */
    int running = core_thread_running(c, thread_key);
    int passed = running ? core_steer(c, id, thread_key, user, text, ref, files) : 0;
    if (passed < 0) log_warn("thread %s: out of memory passing a message on; queued", thread_key);
    if (passed != 1 && lanes_enqueue(c->lanes, id, thread_key, user, NULL, NULL, NULL, err) < 0)
        return -1;
    if (running) /* the running turn's status message says where the message went */
        c->fe->ops->progress(c->fe, thread_key,
                             passed == 1 ? "a new message was passed to the running agent"
                                         : "a new message is queued for the next turn");
    return passed == 1 ? 2 : 0;
}

int core_event_once(struct core *c, const char *event_id, const char *dedupe_key,
                    struct jb_err *err)
{
    pthread_mutex_lock(&c->store_mu);
    int rc = store_event_seen(c->store, event_id, dedupe_key, err);
    pthread_mutex_unlock(&c->store_mu);
    return rc;
}

/* A message whose answer was going out when the last process died: when the frontend
 * shows the answer got out, it is done (not answered twice); when it cannot tell, it is
 * answered again. */
static int already_answered(struct core *c, const struct inbox_msg *m)
{
    if (!c->fe->ops->answered || !m->ref || c->fe->ops->answered(c->fe, m->thread_key, m->ref) != 1)
        return 0;
    struct jb_err err = {0};
    pthread_mutex_lock(&c->store_mu);
    int rc = store_inbox_finish(c->store, m->id, "done", &err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc < 0) {
        log_warn("thread %s: inbox: %s", m->thread_key, err.msg);
        return 0;
    }
    log_info("thread %s: the answer got out before the last stop; not sent again", m->thread_key);
    return 1;
}

int core_resume_pending(struct core *c, const char *key, int prefix, struct jb_err *err)
{
    struct inbox_msg *v = NULL;
    size_t n = 0;
    pthread_mutex_lock(&c->store_mu);
    int rc = store_inbox_pending(c->store, key, &v, &n, err);
    pthread_mutex_unlock(&c->store_mu);
    if (rc < 0) return -1;
    int queued = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!prefix && strcmp(v[i].thread_key, key) != 0) continue;
        if (v[i].answering && already_answered(c, &v[i])) continue;
        rc = lanes_enqueue(c->lanes, v[i].id, v[i].thread_key, v[i].user_id, NULL, NULL, NULL, err);
        queued++;
    }
    inbox_msgs_free(v, n);
    return rc < 0 ? -1 : queued;
}

void core_drain(struct core *c)
{
    lanes_drain(c->lanes);
}

size_t core_pending(struct core *c)
{
    return lanes_pending(c->lanes);
}

int core_hold(struct core *c)
{
    return lanes_hold(c->lanes);
}

int core_turns_running(struct core *c)
{
    return lanes_running(c->lanes);
}

void core_free(struct core *c)
{
    if (!c) return;
    jb_metrics_off_scrape(c->metrics, c);
    core_gc_stop(c);
    lanes_free(c->lanes);
    for (int i = 0; c->worker_store && i < c->cfg->max_concurrent_turns; i++)
        store_close(c->worker_store[i]);
    free(c->worker_store);
    sandbox_ctx_release(&c->sbx); /* before the services it uses */
    core_services_close(&c->svc);
    store_close(c->store);
    pthread_mutex_destroy(&c->store_mu);
    pthread_mutex_destroy(&c->run_mu);
    policy_unref(c->policy);
    pthread_mutex_destroy(&c->pol_mu);
    core_approvals_destroy(&c->approvals);
    free(c);
}

/* ---- running turns ---- */

void core_running_add(struct core *c, struct running *r)
{
    pthread_mutex_lock(&c->run_mu);
    r->next = c->running;
    c->running = r;
    pthread_mutex_unlock(&c->run_mu);
}

void core_running_remove(struct core *c, struct running *r)
{
    pthread_mutex_lock(&c->run_mu);
    for (struct running **pp = &c->running; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&c->run_mu);
}

void core_running_set_tool(struct core *c, struct running *r, const char *tool)
{
    pthread_mutex_lock(&c->run_mu);
    snprintf(r->last_tool, sizeof r->last_tool, "%s", tool);
    pthread_mutex_unlock(&c->run_mu);
}

struct running *core_running_find(struct core *c, const char *thread_key)
{
    for (struct running *r = c->running; r; r = r->next)
        if (!strcmp(r->thread_key, thread_key)) return r;
    return NULL;
}

int core_status(struct core *c, const char *thread_key, char *buf, size_t n)
{
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    if (r) {
        long long s = (long long)((jb_mono_ms() - r->started_ms) / 1000);
        char took[48];
        if (s < 60)
            snprintf(took, sizeof took, "%lld s", s);
        else
            snprintf(took, sizeof took, "%lld min %lld s", s / 60, s % 60);
        snprintf(buf, n, "Working on it, %s elapsed%s%s.", took,
                 r->last_tool[0] ? "; last step: " : "", r->last_tool);
    } else {
        snprintf(buf, n, "Nothing is running in this thread.");
    }
    pthread_mutex_unlock(&c->run_mu);
    size_t queued = lanes_pending(c->lanes);
    size_t len = strlen(buf);
    if (queued > (r ? 1u : 0u) && len < n)
        snprintf(buf + len, n - len, " %zu message(s) wait in the bot's queue.",
                 queued - (r ? 1u : 0u));
    return r != NULL;
}

int core_abort(struct core *c, const char *thread_key, const char *user)
{
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    if (r) core_running_stop(r, user);
    pthread_mutex_unlock(&c->run_mu);
    return r != NULL;
}

void core_running_count(struct core *c, const char *prefix, int *ret_all, int *ret_prefix)
{
    size_t n = strlen(prefix);
    *ret_all = *ret_prefix = 0;
    pthread_mutex_lock(&c->run_mu);
    for (struct running *r = c->running; r; r = r->next) {
        (*ret_all)++;
        *ret_prefix += !strncmp(r->thread_key, prefix, n);
    }
    pthread_mutex_unlock(&c->run_mu);
}

int core_abort_user(struct core *c, const char *prefix, const char *user)
{
    size_t n = strlen(prefix);
    int count = 0;
    pthread_mutex_lock(&c->run_mu);
    for (struct running *r = c->running; r; r = r->next)
        if (!strncmp(r->thread_key, prefix, n) && r->user && !strcmp(r->user, user)) {
            core_running_stop(r, user);
            count++;
        }
    pthread_mutex_unlock(&c->run_mu);
    return count;
}

int core_knows_thread(struct core *c, const char *thread_key)
{
    struct session_row r;
    pthread_mutex_lock(&c->store_mu);
    int known = store_session_get(c->store, thread_key, &r, NULL) == 0;
    pthread_mutex_unlock(&c->store_mu);
    if (known) session_row_release(&r);
    /* The lane too: a thread's first message may still be debounced or waiting for a
     * worker, with no session stored yet; replies to it are for the bot all the same. */
    return known || lanes_has(c->lanes, thread_key);
}

int core_thread_running(struct core *c, const char *thread_key)
{
    pthread_mutex_lock(&c->run_mu);
    int running = core_running_find(c, thread_key) != NULL;
    pthread_mutex_unlock(&c->run_mu);
    return running;
}
