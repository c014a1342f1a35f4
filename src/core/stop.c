/* core/stop.c -- stopping a thread's running turn from inside the thread: a ❌ reaction on
 * the message that started it or on one of the bot's messages in its thread. Who may stop
 * a turn is decided here, in core_may_stop_turn(), and nowhere else. */
#include <string.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "core/policy.h"
#include "sandbox/sandbox.h"

int core_may_stop_turn(struct core *c, const char *channel, const char *requester, const char *user)
{
    if (!user || !user[0]) return 0;
    if (requester && !strcmp(requester, user)) return 1;
    /* The channel's approvers may stop what they may approve. */
    struct policy *pol = core_policy_get(c);
    const struct policy_channel *ch = policy_channel_for(pol, channel ? channel : "");
    int ok = 0;
    for (size_t i = 0; !ok && i < ch->approvers.n; i++)
        ok = !strcmp(ch->approvers.v[i], user);
    policy_unref(pol);
    return ok;
}

void core_running_stop(struct running *r, const char *user)
{
    if (user && !r->stopped_by[0]) snprintf(r->stopped_by, sizeof r->stopped_by, "%s", user);
    if (r->interrupted || atomic_load(&r->cancel)) return; /* being stopped already */
    if (r->input && r->takes_interrupt) {
        jb_autofree char *line = agent_interrupt_line("janebot-stop");
        struct jb_err err = {0};
        if (line && sandbox_input_write(r->input, line, strlen(line), NULL, &err) == 0) {
            r->interrupted = 1;
            atomic_store(&r->kill_at_ms, jb_mono_ms() + INTERRUPT_GRACE_MS);
            return;
        }
    }
    atomic_store(&r->cancel, 1);
}

/* 1 when ref is one of the messages the turn r answers. */
static int turn_has_ref(const struct running *r, const char *ref)
{
    for (size_t i = 0; ref && i < r->nrefs; i++)
        if (r->refs[i] && !strcmp(r->refs[i], ref)) return 1;
    return 0;
}

/* The running turn rq points at; the caller holds run_mu. */
static struct running *stop_target(struct core *c, const struct core_stop_req *rq)
{
    for (struct running *r = c->running; r; r = r->next) {
        if (turn_has_ref(r, rq->ref)) return r;
        if (rq->on_bot_message && rq->thread_key && !strcmp(r->thread_key, rq->thread_key))
            return r;
    }
    return NULL;
}

enum core_stop_verdict core_stop_turn(struct core *c, const struct core_stop_req *rq,
                                      char *requester, size_t n)
{
    enum core_stop_verdict v = CORE_STOP_NO_TURN;
    if (n) *requester = '\0';
    pthread_mutex_lock(&c->run_mu);
    struct running *r = stop_target(c, rq);
    if (r) {
        snprintf(requester, n, "%s", r->user ? r->user : "");
        v = CORE_STOP_REFUSED;
        if (core_may_stop_turn(c, rq->channel, r->user, rq->user)) {
            core_running_stop(r, rq->user);
            v = CORE_STOP_STOPPING;
        }
    }
    pthread_mutex_unlock(&c->run_mu);
    return v;
}

void core_running_stopped_by(struct core *c, struct running *r, char *buf, size_t n)
{
    pthread_mutex_lock(&c->run_mu);
    snprintf(buf, n, "%s", r->stopped_by);
    pthread_mutex_unlock(&c->run_mu);
}

int core_running_interrupted(struct core *c, struct running *r)
{
    pthread_mutex_lock(&c->run_mu);
    int yes = r->interrupted;
    pthread_mutex_unlock(&c->run_mu);
    return yes;
}
