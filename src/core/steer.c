/* core/steer.c -- a message sent in a thread while its turn runs: written to the running
 * agent as a user line when the agent takes input (its live stdin), else queued for the
 * next turn. A message passed to an agent that ended before the line reached it is queued
 * after all: stored in the inbox first, it is never lost. */
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "sandbox/sandbox.h"

void core_steered_free(struct steered *s)
{
    while (s) {
        struct steered *next = s->next;
        lane_msg_release(&s->m);
        free(s);
        s = next;
    }
}

void core_steer_attach(struct core *c, struct running *r, struct sandbox_input *in,
                       int takes_interrupt, int steer_flag)
{
    pthread_mutex_lock(&c->run_mu);
    r->input = in;
    r->takes_interrupt = takes_interrupt;
    r->steer_flag = steer_flag;
    pthread_mutex_unlock(&c->run_mu);
}

static struct steered *steered_new(int64_t inbox_id, const char *thread_key, const char *user,
                                   const char *text, const char *ref)
{
    struct steered *s = calloc(1, sizeof *s);
    if (s && lane_msg_init(&s->m, inbox_id, thread_key, user, text, ref, NULL) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

int core_steer(struct core *c, int64_t inbox_id, const char *thread_key, const char *user,
               const char *text, const char *ref, const char *files)
{
    if (files) return 0; /* files are fetched into the sandbox when a turn starts */
    struct steered *s = steered_new(inbox_id, thread_key, user, text, ref);
    if (!s) return -1;
    char rid[32];
    snprintf(rid, sizeof rid, "janebot-%lld", (long long)inbox_id); /* one id per message */
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    struct jb_err err = {0};
    /* the line's shape is the running agent's (Amp's steer flag), known only here; r is
     * read under run_mu only (its turn may end once it is released) */
    int takes = r && r->input;
    jb_autofree char *line = takes ? agent_steer_line(text, r->steer_flag, rid) : NULL;
    int passed = line && sandbox_input_write(r->input, line, strlen(line), &s->end, &err) == 0;
    if (passed) s->next = r->steered, r->steered = s;
    pthread_mutex_unlock(&c->run_mu);
    if (takes && !line) {
        core_steered_free(s);
        return -1; /* out of memory (the text was checked as UTF-8 when it came in) */
    }
    if (!passed) {
        if (takes) log_info("thread %s: message queued: %s", thread_key, err.msg);
        core_steered_free(s);
    }
    return passed;
}

void core_steer_detach(struct core *c, struct running *r, struct sandbox_input **inp,
                       struct steered **reached_list)
{
    struct sandbox_input *in = *inp;
    sandbox_input_end(in); /* no write succeeds from now on */
    pthread_mutex_lock(&c->run_mu);
    struct steered *list = r->steered;
    r->steered = NULL;
    r->input = NULL;
    pthread_mutex_unlock(&c->run_mu);
    uint64_t delivered = sandbox_input_delivered(in);
    sandbox_input_free(in);
    *inp = NULL;
    struct steered *oldest = NULL, **tail = reached_list;
    while (*tail)
        tail = &(*tail)->next;
    while (list) { /* newest first: reversed */
        struct steered *s = list;
        list = s->next;
        s->next = oldest, oldest = s;
    }
    while (oldest) {
        struct steered *s = oldest;
        oldest = s->next;
        s->next = NULL;
        if (s->end <= delivered) {
            *tail = s, tail = &s->next;
            continue;
        }
        struct jb_err err = {0};
        log_info("thread %s: the agent ended before a message reached it; queued for the next "
                 "turn",
                 s->m.thread_key);
        if (lanes_enqueue(c->lanes, s->m.inbox_id, s->m.thread_key, s->m.user_id, NULL, NULL, NULL,
                          &err) < 0)
            log_warn("thread %s: queueing a message: %s (it is answered at the next start)",
                     s->m.thread_key, err.msg);
        core_steered_free(s);
    }
}

int core_agent_write_line(struct core *c, const char *thread_key, const char *line,
                          struct jb_err *err)
{
    size_t n = strlen(line);
    json_error_t jerr;
    json_t *j = n && line[n - 1] == '\n' && !memchr(line, '\n', n - 1)
                    ? json_loadb(line, n, 0, &jerr)
                    : NULL;
    if (!j) return jb_err_set(err, JB_EPROTO, "a line for the agent must be one line of JSON");
    json_decref(j);
    pthread_mutex_lock(&c->run_mu);
    struct running *r = core_running_find(c, thread_key);
    int rc = r && r->input
                 ? sandbox_input_write(r->input, line, n, NULL, err)
                 : jb_err_set(err, JB_ENOTFOUND, "no agent of %s takes input now", thread_key);
    pthread_mutex_unlock(&c->run_mu);
    return rc;
}
