/* core/approve.c -- a person's yes before the agent uses a tool. The channel's config
 * (`approve:`, `approvers:`, `approve_timeout:`) says which tools need one; a turn's
 * thread (or the LLM proxy's thread serving a command agent's ask) blocks in
 * core_approval_ask() while the frontend shows the question; a button click, the timeout
 * or a stop decides, exactly once. Decisions go to the store's audit; "allow for this
 * thread" is stored and outlives restarts. */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "core/policy.h"
#include "proxy/proxy.h"
#include "store/store.h"

#define WAIT_SLICE_MS 250 /* how often a waiting ask looks at its turn and its asker */

/* ---- the config's tool classes ---- */

const char *approve_class_check(const char *entry)
{
    if (!strcmp(entry, "*") || !strcmp(entry, "edit")) return NULL;
    const char *name = entry;
    if (!strncmp(entry, "mcp:", 4)) name = entry + 4;
    if (!*name) return "mcp: needs a server name, like mcp:github";
    if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
        strlen(name))
        return "expected a tool name (like Bash), edit, mcp:SERVER or *";
    return NULL;
}

int approve_class_matches(const char *entry, const char *tool)
{
    if (!entry || !tool || !*tool) return 0;
    if (!strcmp(entry, "*")) return 1;
    if (!strcmp(entry, "edit")) {
        for (size_t i = 0; agent_edit_tools[i]; i++) /* Claude Code's and Amp's */
            if (!strcasecmp(agent_edit_tools[i], tool)) return 1;
        return 0;
    }
    if (!strncmp(entry, "mcp:", 4)) { /* Claude Code and Amp: mcp__<server>__<tool> */
        size_t n = strlen(entry + 4);
        return !strncmp(tool, "mcp__", 5) && !strncmp(tool + 5, entry + 4, n) &&
               !strncmp(tool + 5 + n, "__", 2);
    }
    return !strcasecmp(entry, tool);
}

int approve_list_matches(const struct jb_strv *list, const char *tool)
{
    for (size_t i = 0; i < list->n; i++)
        if (approve_class_matches(list->v[i], tool)) return 1;
    return 0;
}

int approve_parse_duration(const char *s, int *ret_s)
{
    char *end = NULL;
    if (!s || !isdigit((unsigned char)s[0])) return -1;
    long v = strtol(s, &end, 10);
    long unit = !*end || !strcmp(end, "s") ? 1
                : !strcmp(end, "m")        ? 60
                : !strcmp(end, "h")        ? 3600
                                           : 0;
    if (!unit || v <= 0 || v > APPROVE_TIMEOUT_MAX_S || v * unit > APPROVE_TIMEOUT_MAX_S) return -1;
    *ret_s = (int)(v * unit);
    return 0;
}

const char *approval_answer_text(enum approval_answer a)
{
    return a == APPROVAL_ALLOW_ONCE     ? "allowed once"
           : a == APPROVAL_ALLOW_THREAD ? "allowed for this thread"
                                        : "denied";
}

/* ---- requests waiting ---- */

struct approval_pending {
    char id[200];
    const char *thread_key, *requester; /* the asker's, alive while it waits */
    struct jb_strv approvers;
    int decided;
    struct approval_decision d;
    struct approval_pending *next;
};

void core_approvals_init(struct approvals *a)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->mu, NULL);
    if (jb_random_bytes(&a->nonce, sizeof a->nonce, NULL) < 0) a->nonce = (unsigned)time(NULL);
}

void core_approvals_destroy(struct approvals *a)
{
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
}

static void decide(struct approval_pending *p, enum approval_answer a, const char *who,
                   const char *reason)
{
    p->decided = 1;
    p->d.answer = a;
    snprintf(p->d.who, sizeof p->d.who, "%s", who);
    snprintf(p->d.reason, sizeof p->d.reason, "%s", reason);
}

/* 1 when a turn of the thread runs here and was asked to stop. */
static int turn_stopped(struct core *c, const char *thread_key)
{
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    int stopped = r && atomic_load(&r->cancel);
    pthread_mutex_unlock(&c->run_mu);
    return stopped;
}

static int may_decide(const struct approval_pending *p, const char *user)
{
    if (p->requester && !strcmp(p->requester, user)) return 1;
    for (size_t i = 0; i < p->approvers.n; i++)
        if (!strcmp(p->approvers.v[i], user)) return 1;
    return 0;
}

enum approval_click core_approval_answer(struct core *c, const char *id, const char *user,
                                         enum approval_answer a, char *why, size_t n)
{
    struct approvals *ap = &c->approvals;
    enum approval_click rc = APPROVAL_NOT_PENDING;
    if (why && n) *why = 0;
    pthread_mutex_lock(&ap->mu);
    struct approval_pending *p = ap->list;
    while (p && strcmp(p->id, id))
        p = p->next;
    if (p && !p->decided && !may_decide(p, user)) {
        rc = APPROVAL_NOT_YOURS;
        if (why)
            snprintf(why, n,
                     "Only <@%s> (who asked for this turn) or an approver of this channel can "
                     "decide this request.",
                     p->requester ? p->requester : "?");
    } else if (p && !p->decided) {
        char reason[160];
        snprintf(reason, sizeof reason, "%s by %s", approval_answer_text(a), user);
        decide(p, a, user, reason);
        pthread_cond_broadcast(&ap->cv);
        rc = APPROVAL_DECIDED;
    }
    pthread_mutex_unlock(&ap->mu);
    return rc;
}

int core_approvals_on(struct core *c, const char *thread_key)
{
    struct policy *pol = core_policy_get(c);
    const struct policy_channel *ch = policy_channel_for(pol, thread_key);
    int on = ch->approve.n > 0 || ch->egress_approval;
    policy_unref(pol);
    return on;
}

int core_approval_needed(struct core *c, const char *channel, const char *thread_key,
                         const char *tool)
{
    struct policy *pol = core_policy_get(c);
    const struct policy_channel *ch = policy_channel_for(pol, thread_key ? thread_key : channel);
    int listed = approve_list_matches(&ch->approve, tool);
    policy_unref(pol);
    if (!listed || !thread_key) return listed;
    struct jb_err e = {0};
    pthread_mutex_lock(&c->store_mu);
    int has = store_allow_has(c->store, thread_key, tool, &e);
    pthread_mutex_unlock(&c->store_mu);
    if (has < 0) log_warn("approvals: %s (asking again)", e.msg);
    return has != 1;
}

/* Wait until p is decided, its deadline passes, its turn stops or its asker is gone. */
static void wait_decision(struct core *c, struct approval_pending *p, int64_t deadline_ms,
                          int timeout_s, int (*gone)(void *), void *ud)
{
    struct approvals *ap = &c->approvals;
    pthread_mutex_lock(&ap->mu);
    while (!p->decided) {
        int64_t now = jb_mono_ms();
        if (now >= deadline_ms) {
            char why[160];
            snprintf(why, sizeof why, "nobody answered within %d min %d s", timeout_s / 60,
                     timeout_s % 60);
            decide(p, APPROVAL_DENY, "timeout", why);
            break;
        }
        int64_t until =
            now + (deadline_ms - now < WAIT_SLICE_MS ? deadline_ms - now : WAIT_SLICE_MS);
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
        pthread_cond_timedwait(&ap->cv, &ap->mu, &ts);
        if (p->decided) break;
        pthread_mutex_unlock(&ap->mu);
        int stop = turn_stopped(c, p->thread_key), went = !stop && gone && gone(ud);
        pthread_mutex_lock(&ap->mu);
        if (stop && !p->decided) decide(p, APPROVAL_DENY, "stop", "the turn was stopped");
        if (went && !p->decided) decide(p, APPROVAL_DENY, "janebot", "the question was withdrawn");
    }
    pthread_mutex_unlock(&ap->mu);
}

static void unlink_pending(struct approvals *ap, struct approval_pending *p)
{
    pthread_mutex_lock(&ap->mu);
    for (struct approval_pending **pp = &ap->list; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    pthread_mutex_unlock(&ap->mu);
}

/* What is asked about, for status lines and logs: the tool, or "reach NAME:PORT". */
static void ask_label(const struct approval_ask *q, char *buf, size_t n)
{
    if (q->domain)
        snprintf(buf, n, "reach %s:%u", q->domain, q->port);
    else
        snprintf(buf, n, "%s", q->tool);
}

/* "Allow for this thread": the tool, or the name on the thread's own egress list. */
static void remember(struct core *c, const struct approval_ask *q, const char *who)
{
    struct jb_err e = {0};
    if (!q->domain) {
        pthread_mutex_lock(&c->store_mu);
        if (store_allow_add(c->store, q->thread_key, q->tool, who, &e) < 0)
            log_warn("approvals: %s", e.msg);
        pthread_mutex_unlock(&c->store_mu);
        return;
    }
    pthread_mutex_lock(c->svc.st_mu);
    if (store_egress_add(c->svc.st, q->thread_key, q->domain, who, &e) < 0)
        log_warn("egress approval: %s", e.msg);
    pthread_mutex_unlock(c->svc.st_mu);
}

/* The audit row, and the allowance when it is for the thread. */
static void record(struct core *c, const struct approval_ask *q, const struct approval_decision *d,
                   int64_t asked_at)
{
    char domain[EGRESS_NAME_MAX + 16], label[EGRESS_NAME_MAX + 200];
    snprintf(domain, sizeof domain, "%s:%u", q->domain ? q->domain : "", q->port);
    ask_label(q, label, sizeof label);
    char digest[65];
    const char *in = q->input_json ? q->input_json : "";
    jb_sha256_hex(in, strlen(in), digest);
    static const char *const names[] = {"deny", "allow_once", "allow_thread"};
    struct approval_row row = {.thread_key = q->thread_key,
                               .requester = q->requester,
                               .tool = q->tool,
                               .input_sha256 = digest,
                               .answer = names[d->answer],
                               .decided_by = d->who,
                               .reason = d->reason,
                               .domain = q->domain ? domain : NULL,
                               .asked_at = asked_at,
                               .decided_at = jb_now_ms()};
    struct jb_err e = {0};
    pthread_mutex_lock(&c->store_mu);
    if (store_approval_add(c->store, &row, &e) < 0) log_warn("approvals: %s", e.msg);
    pthread_mutex_unlock(&c->store_mu);
    if (d->answer == APPROVAL_ALLOW_THREAD) remember(c, q, d->who);
    log_info("thread %s: %s %s (%s)", q->thread_key, label, approval_answer_text(d->answer),
             d->reason);
}

/* Register p for q with the channel's approvers and timeout. */
static int pending_new(struct core *c, const struct approval_ask *q, struct approval_pending *p,
                       int *ret_timeout_s, struct jb_err *err)
{
    struct policy *pol = core_policy_get(c);
    const struct policy_channel *ch = policy_channel_for(pol, q->thread_key);
    *ret_timeout_s = ch->approve_timeout_s > 0 ? ch->approve_timeout_s : APPROVE_TIMEOUT_DEFAULT_S;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ch->approvers.n; i++)
        rc = jb_strv_push(&p->approvers, ch->approvers.v[i], err);
    policy_unref(pol);
    if (rc < 0) return -1;
    p->thread_key = q->thread_key, p->requester = q->requester;
    struct approvals *ap = &c->approvals;
    pthread_mutex_lock(&ap->mu);
    snprintf(p->id, sizeof p->id, "%.150s#perm-%08x-%04u", q->thread_key, ap->nonce, ++ap->seq);
    p->next = ap->list;
    ap->list = p;
    pthread_mutex_unlock(&ap->mu);
    return 0;
}

int core_approval_ask_while(struct core *c, const struct approval_ask *q, int (*gone)(void *ud),
                            void *ud, struct approval_decision *out, struct jb_err *err)
{
    struct frontend *fe = c->fe;
    *out = (struct approval_decision){.answer = APPROVAL_DENY};
    snprintf(out->who, sizeof out->who, "janebot");
    if (!fe->ops->approval_show) {
        snprintf(out->reason, sizeof out->reason, "the %s frontend cannot ask for approval",
                 fe->ops->name);
        return jb_err_set(err, JB_EUNAVAIL, "%s", out->reason);
    }
    struct approval_pending p = {.approvers = JB_STRV_INIT};
    int timeout_s = 0;
    int64_t asked_at = jb_now_ms();
    if (pending_new(c, q, &p, &timeout_s, err) < 0) {
        jb_strv_free(&p.approvers);
        snprintf(out->reason, sizeof out->reason, "could not ask: %.150s", err->msg);
        return -1;
    }
    static const char *const nobody[] = {NULL};
    struct approval_request rq = {.id = p.id,
                                  .thread_key = q->thread_key,
                                  .channel = q->channel,
                                  .requester = q->requester,
                                  .tool = q->tool,
                                  .input_json = q->input_json ? q->input_json : "{}",
                                  .domain = q->domain,
                                  .port = q->port,
                                  .approvers =
                                      p.approvers.v ? (const char *const *)p.approvers.v : nobody,
                                  .timeout_s = timeout_s};
    char ref[96] = "", status[EGRESS_NAME_MAX + 300], label[EGRESS_NAME_MAX + 200];
    struct approval_decision now = {0};
    struct jb_err e = {0};
    ask_label(q, label, sizeof label);
    snprintf(status, sizeof status, "waiting for approval: %s", label);
    fe->ops->progress(fe, q->thread_key, status);
    int shown = fe->ops->approval_show(fe, &rq, ref, &now, &e);
    if (shown == 1 || shown < 0) {
        pthread_mutex_lock(&c->approvals.mu);
        if (!p.decided) {
            if (shown == 1)
                p.d = now, p.decided = 1;
            else {
                char why[200];
                snprintf(why, sizeof why, "could not ask: %.150s", e.msg);
                decide(&p, APPROVAL_DENY, "janebot", why);
            }
        }
        pthread_mutex_unlock(&c->approvals.mu);
    }
    wait_decision(c, &p, jb_mono_ms() + (int64_t)timeout_s * 1000, timeout_s, gone, ud);
    unlink_pending(&c->approvals, &p);
    *out = p.d;
    record(c, q, out, asked_at);
    if (fe->ops->approval_done && shown == 0) fe->ops->approval_done(fe, &rq, ref, out);
    snprintf(status, sizeof status, "%s %s", label, approval_answer_text(out->answer));
    fe->ops->progress(fe, q->thread_key, status);
    jb_strv_free(&p.approvers);
    return 0;
}

int core_approval_ask(struct core *c, const struct approval_ask *q, struct approval_decision *out,
                      struct jb_err *err)
{
    return core_approval_ask_while(c, q, NULL, NULL, out, err);
}

void core_approval_channel(const char *thread_key, char out[64])
{
    snprintf(out, 64, "%.*s", (int)strcspn(thread_key, ":"), thread_key);
}

void core_approval_ask_agent(struct core *c, const char *thread_key, const char *user,
                             const char *tool, const char *input_json, int (*gone)(void *ud),
                             void *ud, struct approval_decision *out)
{
    char channel[64];
    core_approval_channel(thread_key, channel);
    struct approval_ask ask = {.thread_key = thread_key,
                               .channel = channel,
                               .requester = user,
                               .tool = tool,
                               .input_json = input_json};
    struct jb_err e = {0};
    if (core_approval_ask_while(c, &ask, gone, ud, out, &e) < 0)
        log_warn("thread %s: approval of %s: %s", thread_key, tool, e.msg);
}

/* ---- the LLM proxy's approval endpoint (a command agent's ask) ---- */

void core_llm_approve(void *ud, const struct llm_approve_q *q, struct llm_approve_a *a)
{
    struct core *c = ud;
    char channel[64];
    core_approval_channel(q->thread_key, channel);
    if (!core_approval_needed(c, channel, q->thread_key, q->tool)) {
        a->answer = "not_required", a->allowed = 1;
        snprintf(a->who, sizeof a->who, "janebot");
        snprintf(a->reason, sizeof a->reason, "%s needs no approval in this thread", q->tool);
        return;
    }
    struct approval_decision d;
    core_approval_ask_agent(c, q->thread_key, q->user, q->tool, q->input_json, q->gone, q->gone_ud,
                            &d);
    static const char *const names[] = {"deny", "allow_once", "allow_thread"};
    a->answer = names[d.answer];
    a->allowed = d.answer != APPROVAL_DENY;
    snprintf(a->who, sizeof a->who, "%s", d.who);
    snprintf(a->reason, sizeof a->reason, "%s", d.reason);
}
