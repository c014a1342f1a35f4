/* core/asks.c -- the questions a running agent asks before a tool runs (Claude Code's
 * can_use_tool control requests, on its stdout), answered on its stdin. A tool the
 * channel's `approve:` does not cover (or that the thread allowed for good) is allowed at
 * once; one it covers is asked of a person through core_approval_ask_while() on a thread of
 * its own, so the turn goes on reading the agent's output (steering, the result, a
 * withdrawn question) while the person decides. The agent's output is hostile: a question
 * is only taken from a run that was started to ask, and only CORE_ASKS_MAX wait at once. */
#include <string.h>

#include "agent/agent.h"
#include "core/core-int.h"

#define CORE_ASKS_MAX 4 /* Claude Code asks one at a time; subagents may overlap a little */

struct core_ask {
    struct core_asks *owner;
    pthread_t thr;
    char *request_id, *tool, *input_json;
    atomic_int withdrawn; /* the agent took the question back */
    atomic_int finished;  /* the thread is done: join it */
    struct core_ask *next;
};

void core_asks_init(struct core_asks *a, struct core *c, const char *thread_key, const char *user)
{
    *a = (struct core_asks){.c = c, .thread_key = thread_key, .user = user};
    pthread_mutex_init(&a->mu, NULL);
}

static void ask_free(struct core_ask *q)
{
    free(q->request_id), free(q->tool), free(q->input_json);
    free(q);
}

/* The answer to the agent, one line on its stdin. A run that ended cannot take it. */
static void answer(struct core_asks *a, const char *request_id, int allow, const char *input_json,
                   const char *why)
{
    char msg[256];
    snprintf(msg, sizeof msg, "Not allowed in this thread: %s", why ? why : "denied");
    jb_autofree char *line = agent_permission_line(request_id, allow, input_json, msg);
    struct jb_err err = {0};
    if (!line) {
        /* An input that is not an object cannot be run as asked: deny it. */
        line = agent_permission_line(request_id, 0, NULL, "janebot could not read the input");
        if (!line) return;
    }
    if (core_agent_write_line(a->c, a->thread_key, line, &err) < 0)
        log_info("thread %s: the agent's question was not answered: %s", a->thread_key, err.msg);
}

static int ask_gone(void *ud)
{
    struct core_ask *q = ud;
    return atomic_load(&q->withdrawn) || atomic_load(&q->owner->ended);
}

static void *ask_thread(void *ud)
{
    struct core_ask *q = ud;
    struct core_asks *a = q->owner;
    struct approval_decision d;
    core_approval_ask_agent(a->c, a->thread_key, a->user, q->tool, q->input_json, ask_gone, q, &d);
    if (!atomic_load(&q->withdrawn) && !atomic_load(&a->ended))
        answer(a, q->request_id, d.answer != APPROVAL_DENY, q->input_json, d.reason);
    atomic_store(&q->finished, 1);
    return NULL;
}

/* Joins the threads that are done; the number still asking. Under a->mu. */
static int reap(struct core_asks *a)
{
    int live = 0;
    for (struct core_ask **pp = &a->list; *pp;) {
        struct core_ask *q = *pp;
        if (!atomic_load(&q->finished)) {
            live++;
            pp = &q->next;
            continue;
        }
        pthread_join(q->thr, NULL);
        *pp = q->next;
        ask_free(q);
    }
    return live;
}

static void ask_person(struct core_asks *a, const struct agent_event *ev)
{
    struct core_ask *q = calloc(1, sizeof *q);
    if (q) {
        q->owner = a;
        q->request_id = strdup(ev->request_id);
        q->tool = strdup(ev->tool_name);
        q->input_json = strdup(ev->input_json);
    }
    pthread_mutex_lock(&a->mu);
    int live = reap(a);
    const char *refused = !q || !q->request_id || !q->tool || !q->input_json ? "out of memory"
                          : live >= CORE_ASKS_MAX ? "too many questions wait already"
                          : a->ended              ? "the run is ending"
                                                  : NULL;
    if (!refused && pthread_create(&q->thr, NULL, ask_thread, q) != 0)
        refused = "no thread to ask on";
    if (!refused) q->next = a->list, a->list = q;
    pthread_mutex_unlock(&a->mu);
    if (refused) {
        log_warn("thread %s: the agent's question about %s: %s; denied", a->thread_key,
                 ev->tool_name, refused);
        answer(a, ev->request_id, 0, NULL, refused);
        if (q) ask_free(q);
    }
}

void core_asks_on_event(struct core_asks *a, const struct agent_event *ev)
{
    if (ev->type == AGENT_EV_PERMISSION_CANCEL) {
        pthread_mutex_lock(&a->mu);
        for (struct core_ask *q = a->list; q; q = q->next)
            if (!strcmp(q->request_id, ev->request_id)) atomic_store(&q->withdrawn, 1);
        pthread_mutex_unlock(&a->mu);
        return;
    }
    if (ev->type != AGENT_EV_PERMISSION) return;
    char channel[64];
    core_approval_channel(a->thread_key, channel);
    if (core_approval_needed(a->c, channel, a->thread_key, ev->tool_name))
        ask_person(a, ev);
    else /* the agent would have run it without janebot: only the channel's list needs a yes */
        answer(a, ev->request_id, 1, ev->input_json, NULL);
}

void core_asks_end(struct core_asks *a)
{
    atomic_store(&a->ended, 1);
    pthread_mutex_lock(&a->mu);
    for (struct core_ask *q = a->list; q; q = q->next)
        pthread_join(q->thr, NULL); /* ask_gone() says so within a wait slice */
    while (a->list) {
        struct core_ask *q = a->list;
        a->list = q->next;
        ask_free(q);
    }
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_destroy(&a->mu);
}
