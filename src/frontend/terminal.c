/* frontend/terminal.c -- the terminal frontend of `janebot chat`: answers on stdout,
 * progress on stderr when that is a terminal. One mutex keeps lines whole when several
 * workers answer at once. Everything printed that came from outside (answers, errors,
 * progress, names) loses its control characters first (jb_strip_controls()): an agent's
 * answer must not be able to write the operator's clipboard or redraw the screen. */
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "frontend/frontend.h"

struct terminal {
    pthread_mutex_t mu;
    FILE *out, *err;
    int show_progress;
    char question[200]; /* the approval request waiting for a line, "" when none */
    int input_closed;
};

static void term_started(struct frontend *fe, const char *thread_key, const char *user,
                         const char *const *refs, size_t n)
{
    (void)refs;
    (void)n;
    struct terminal *t = fe->priv;
    if (!t->show_progress) return;
    jb_autofree char *key = jb_strip_controls_dup(thread_key);
    jb_autofree char *who = jb_strip_controls_dup(user);
    if (!key || !who) return;
    pthread_mutex_lock(&t->mu);
    fprintf(t->err, "\r[%s] working on %s's message…\n", key, who);
    fflush(t->err);
    pthread_mutex_unlock(&t->mu);
}

static void term_progress(struct frontend *fe, const char *thread_key, const char *status)
{
    struct terminal *t = fe->priv;
    if (!t->show_progress) return;
    jb_autofree char *key = jb_strip_controls_dup(thread_key);
    jb_autofree char *clean = jb_strip_controls_dup(status);
    if (!key || !clean) return;
    /* Called from inside the exec's output loop: a progress line is skipped rather than
     * waited for (a terminal paused with ^S, or another thread printing a long answer). */
    struct pollfd pfd = {.fd = fileno(t->err), .events = POLLOUT};
    if (pthread_mutex_trylock(&t->mu) != 0) return;
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT)) {
        fprintf(t->err, "\r[%s] %s\n", key, clean);
        fflush(t->err);
    }
    pthread_mutex_unlock(&t->mu);
}

static int term_write(struct terminal *t, const char *prefix, const char *text, struct jb_err *err)
{
    jb_autofree char *clean = jb_strip_controls_dup(text);
    if (!clean) return jb_err_set(err, JB_ENOMEM, "terminal: out of memory");
    pthread_mutex_lock(&t->mu);
    size_t n = strlen(clean);
    fprintf(t->out, "%s%s%s", prefix, clean, n && clean[n - 1] == '\n' ? "" : "\n");
    if (t->show_progress) fputc('\n', t->out);
    fflush(t->out);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int term_answer(struct frontend *fe, const char *thread_key, const char *const *refs,
                       size_t n, const char *markdown, struct jb_err *err)
{
    (void)refs;
    (void)n;
    (void)thread_key;
    return term_write(fe->priv, "", markdown, err);
}

static int term_fail(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                     const char *message, struct jb_err *err)
{
    (void)refs;
    (void)n;
    (void)thread_key;
    return term_write(fe->priv, "error: ", message, err);
}

static int term_notice(struct frontend *fe, const char *thread_key, const char *text,
                       struct jb_err *err)
{
    (void)thread_key;
    return term_write(fe->priv, "", text, err);
}

/* ---- approvals: the question on stderr, the answer as the next line typed ---- */

#define TERM_INPUT_SHOWN 1000

static int term_approval_show(struct frontend *fe, const struct approval_request *rq, char *ref,
                              struct approval_decision *now, struct jb_err *err)
{
    (void)err;
    struct terminal *t = fe->priv;
    snprintf(ref, 96, "%s", "terminal");
    jb_autofree char *red = jb_redact(rq->input_json);
    jb_autofree char *input = red ? jb_strip_controls_dup(red) : NULL;
    jb_autofree char *tool = jb_strip_controls_dup(rq->tool);
    pthread_mutex_lock(&t->mu);
    int closed = t->input_closed;
    if (closed) {
        *now = (struct approval_decision){.answer = APPROVAL_DENY};
        snprintf(now->who, sizeof now->who, "janebot");
        snprintf(now->reason, sizeof now->reason,
                 "nobody can answer on the terminal (its input ended)");
    } else {
        snprintf(t->question, sizeof t->question, "%s", rq->id);
        size_t len = input ? strlen(input) : 0;
        if (rq->domain) /* a name the proxy normalised: no controls in it */
            fprintf(t->err,
                    "\rapproval needed: the agent wants to reach %s:%u (not on the egress "
                    "allowlist)\n",
                    rq->domain, rq->port);
        else
            fprintf(t->err, "\rapproval needed: the agent wants to use %s: %.*s%s\n",
                    tool ? tool : "a tool", (int)(len > TERM_INPUT_SHOWN ? TERM_INPUT_SHOWN : len),
                    input ? input : "", len > TERM_INPUT_SHOWN ? " …" : "");
        fprintf(t->err, "allow? y = once, a = for this thread, n = no (within %d s)\n",
                rq->timeout_s);
        fflush(t->err);
    }
    pthread_mutex_unlock(&t->mu);
    return closed ? 1 : 0;
}

static void term_approval_done(struct frontend *fe, const struct approval_request *rq,
                               const char *ref, const struct approval_decision *d)
{
    (void)ref;
    struct terminal *t = fe->priv;
    jb_autofree char *tool = jb_strip_controls_dup(rq->tool);
    jb_autofree char *why = jb_strip_controls_dup(d->reason);
    pthread_mutex_lock(&t->mu);
    if (!strcmp(t->question, rq->id)) t->question[0] = 0;
    if (rq->domain)
        fprintf(t->err, "\rreach %s:%u %s: %s\n", rq->domain, rq->port,
                approval_answer_text(d->answer), why ? why : "");
    else
        fprintf(t->err, "\r%s %s: %s\n", tool ? tool : "the tool", approval_answer_text(d->answer),
                why ? why : "");
    fflush(t->err);
    pthread_mutex_unlock(&t->mu);
}

int frontend_terminal_question(struct frontend *fe, char *id, size_t n)
{
    struct terminal *t = fe->priv;
    pthread_mutex_lock(&t->mu);
    int has = t->question[0] != 0;
    if (has) snprintf(id, n, "%s", t->question);
    pthread_mutex_unlock(&t->mu);
    return has;
}

void frontend_terminal_input_closed(struct frontend *fe)
{
    struct terminal *t = fe->priv;
    pthread_mutex_lock(&t->mu);
    t->input_closed = 1;
    pthread_mutex_unlock(&t->mu);
}

static const struct frontend_ops terminal_ops = {
    .version = 1,
    .name = "terminal",
    .started = term_started,
    .progress = term_progress,
    .answer = term_answer,
    .fail = term_fail,
    .finished = NULL,
    .notice = term_notice,
    .upload = NULL,
    .context = NULL,
    .fetch = NULL,
    .approval_show = term_approval_show,
    .approval_done = term_approval_done,
};

struct frontend *frontend_terminal_new(FILE *out, FILE *err, int show_progress)
{
    struct frontend *fe = calloc(1, sizeof *fe);
    struct terminal *t = calloc(1, sizeof *t);
    if (!fe || !t) {
        free(fe);
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->out = out, t->err = err, t->show_progress = show_progress;
    fe->ops = &terminal_ops;
    fe->priv = t;
    return fe;
}

void frontend_terminal_free(struct frontend *fe)
{
    if (!fe) return;
    struct terminal *t = fe->priv;
    pthread_mutex_destroy(&t->mu);
    free(t);
    free(fe);
}
