/* core/egress.c -- egress approval, the core's side: the approver the egress proxy calls
 * for a name off a sandbox's allowlist (ask a person in the thread, as for a tool), and
 * the thread's own egress list ("Allow for this thread") added to the names an exec of
 * that thread may reach. Both apply only while the thread's channel has
 * `egress_approval: true`; the channel's own list is never changed. */
#include <string.h>

#include "core/core-int.h"
#include "core/policy.h"
#include "proxy/proxy.h"
#include "store/store.h"

static int approval_on(struct core *c, const char *thread_key)
{
    struct policy *pol = core_policy_get(c);
    int on = policy_channel_for(pol, thread_key)->egress_approval;
    policy_unref(pol);
    return on;
}

/* Who asked the thread's running turn, into buf; 0 when no turn of it runs here. */
static int turn_requester(struct core *c, const char *thread_key, char *buf, size_t n)
{
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    int found = r && r->user;
    if (found) snprintf(buf, n, "%s", r->user);
    pthread_mutex_unlock(&c->run_mu);
    return found;
}

static int on_thread_list(struct core *c, const char *thread_key, const char *name)
{
    struct jb_err e = {0};
    pthread_mutex_lock(c->svc.st_mu);
    int has = store_egress_has(c->svc.st, thread_key, name, &e);
    pthread_mutex_unlock(c->svc.st_mu);
    if (has < 0) log_warn("egress approval: %s (asking again)", e.msg);
    return has == 1;
}

enum egress_verdict core_egress_approve(void *ud, const struct egress_approve_q *q, char *why,
                                        size_t n)
{
    struct core *c = ud;
    if (!approval_on(c, q->thread_key)) return EGRESS_NOT_ASKED;
    if (on_thread_list(c, q->thread_key, q->name)) return EGRESS_ALLOWED_THREAD;
    char requester[64], channel[64];
    if (!turn_requester(c, q->thread_key, requester, sizeof requester)) {
        snprintf(why, n, "no turn of this thread is running, so there is nobody to ask");
        return EGRESS_DENIED;
    }
    core_approval_channel(q->thread_key, channel);
    struct approval_ask ask = {.thread_key = q->thread_key,
                               .channel = channel,
                               .requester = requester,
                               .tool = "egress",
                               .domain = q->name,
                               .port = q->port};
    struct approval_decision d;
    struct jb_err e = {0};
    if (core_approval_ask_while(c, &ask, q->gone, q->gone_ud, &d, &e) < 0)
        log_warn("thread %s: egress approval of %s:%u: %s", q->thread_key, q->name, q->port, e.msg);
    snprintf(why, n, "%s", d.reason);
    return d.answer == APPROVAL_ALLOW_ONCE     ? EGRESS_ALLOWED_ONCE
           : d.answer == APPROVAL_ALLOW_THREAD ? EGRESS_ALLOWED_THREAD
                                               : EGRESS_DENIED;
}

int core_egress_extra(struct core_services *cs, const struct policy_channel *ch,
                      const char *thread_key, char **ret, struct jb_err *err)
{
    *ret = NULL;
    if (!ch->egress_approval)
        return ch->egress_csv && !(*ret = strdup(ch->egress_csv))
                   ? jb_err_set(err, JB_ENOMEM, "egress list")
                   : 0;
    struct egress_row *v = NULL;
    size_t nv = 0;
    pthread_mutex_lock(cs->st_mu);
    int rc = store_egress_list(cs->st, thread_key, &v, &nv, err);
    pthread_mutex_unlock(cs->st_mu);
    if (rc < 0) return -1;
    struct jb_buf b = JB_BUF_INIT(1u << 20);
    rc = jb_buf_appendf(&b, err, "%s", ch->egress_csv ? ch->egress_csv : "");
    for (size_t i = 0; rc == 0 && i < nv; i++)
        rc = jb_buf_appendf(&b, err, "%s%s", b.len ? "," : "", v[i].name);
    egress_rows_free(v, nv);
    if (rc == 0 && !(*ret = jb_buf_detach(&b, NULL)))
        rc = jb_err_set(err, JB_ENOMEM, "egress list");
    jb_buf_release(&b);
    return rc;
}
