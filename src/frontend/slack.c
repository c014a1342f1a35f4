/* frontend/slack.c -- answers in Slack threads: reactions on the user's messages (eyes,
 * then white_check_mark or x), one status message per running thread updated at most
 * every 2 s, the answer as mrkdwn in chunks, notes, uploads, and the thread's history for
 * a first turn inside an existing thread. Called from worker threads. */
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "frontend/frontend.h"
#include "slack/slack.h"

#define STATUS_EVERY_MS 2000

struct status_msg {
    char *thread_key;
    char *ts; /* the status message, or NULL when it could not be posted */
    int64_t updated_ms;
    struct status_msg *next;
};

struct fe_slack {
    struct slack_web *web;
    const struct jb_config *cfg;
    pthread_mutex_t mu;
    struct status_msg *status;
};

/* "CHANNEL:TS" -> channel and ts (into caller buffers). 0, or -1 when malformed. */
static int split_ref(const char *ref, char *channel, size_t cn, char *ts, size_t tn)
{
    const char *colon = ref ? strchr(ref, ':') : NULL;
    if (!colon || colon == ref || (size_t)(colon - ref) >= cn || strlen(colon + 1) >= tn) return -1;
    snprintf(channel, cn, "%.*s", (int)(colon - ref), ref);
    snprintf(ts, tn, "%s", colon + 1);
    return 0;
}

static void react_all(struct fe_slack *s, const char *const *refs, size_t n, const char *name,
                      int add)
{
    for (size_t i = 0; i < n; i++) {
        char ch[64], ts[64];
        struct jb_err err = {0};
        if (split_ref(refs[i], ch, sizeof ch, ts, sizeof ts) < 0) continue;
        if (slack_reaction(s->web, ch, ts, name, add, &err) < 0)
            log_debug("slack: reaction %s on %s: %s", name, refs[i], err.msg);
    }
}

static struct status_msg *status_take(struct fe_slack *s, const char *key)
{
    for (struct status_msg **pp = &s->status; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->thread_key, key)) {
            struct status_msg *m = *pp;
            *pp = m->next;
            return m;
        }
    return NULL;
}

static void status_free(struct status_msg *m)
{
    if (!m) return;
    free(m->thread_key);
    free(m->ts);
    free(m);
}

static void slack_started(struct frontend *fe, const char *key, const char *user,
                          const char *const *refs, size_t n)
{
    (void)user;
    struct fe_slack *s = fe->priv;
    react_all(s, refs, n, "eyes", 1);
    char ch[64], thread[64];
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0) return;
    struct status_msg *m = calloc(1, sizeof *m);
    if (!m || !(m->thread_key = strdup(key))) {
        free(m);
        return;
    }
    struct jb_err err = {0};
    if (slack_post_message(s->web, ch, thread, "_Working on it…_", &m->ts, &err) < 0)
        log_warn("slack: status message in %s: %s", key, err.msg);
    m->updated_ms = jb_mono_ms();
    pthread_mutex_lock(&s->mu);
    status_free(status_take(s, key));
    m->next = s->status;
    s->status = m;
    pthread_mutex_unlock(&s->mu);
}

static void slack_progress(struct frontend *fe, const char *key, const char *status)
{
    struct fe_slack *s = fe->priv;
    char ch[64], thread[64], ts[64] = "";
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0) return;
    pthread_mutex_lock(&s->mu);
    for (struct status_msg *m = s->status; m; m = m->next)
        if (!strcmp(m->thread_key, key) && m->ts &&
            jb_mono_ms() - m->updated_ms >= STATUS_EVERY_MS) {
            snprintf(ts, sizeof ts, "%s", m->ts);
            m->updated_ms = jb_mono_ms();
        }
    pthread_mutex_unlock(&s->mu);
    if (!ts[0]) return; /* updated less than 2 s ago (chat.update is rate limited) */
    jb_autofree char *md = NULL;
    if (asprintf(&md, "Working on it… (%s)", status) < 0) return;
    jb_autofree char *text = slack_mrkdwn_from_markdown(md);
    struct jb_err err = {0};
    if (text && slack_update_message(s->web, ch, ts, text, &err) < 0)
        log_debug("slack: status update in %s: %s", key, err.msg);
}

/* The status message goes when the turn ends. */
static void status_end(struct fe_slack *s, const char *key)
{
    pthread_mutex_lock(&s->mu);
    struct status_msg *m = status_take(s, key);
    pthread_mutex_unlock(&s->mu);
    char ch[64], thread[64];
    struct jb_err err = {0};
    if (m && m->ts && split_ref(key, ch, sizeof ch, thread, sizeof thread) == 0 &&
        slack_delete_message(s->web, ch, m->ts, &err) < 0)
        log_debug("slack: removing the status message in %s: %s", key, err.msg);
    status_free(m);
}

/* Post markdown in the thread, converted and chunked. */
static int post_markdown(struct fe_slack *s, const char *key, const char *markdown,
                         struct jb_err *err)
{
    char ch[64], thread[64];
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0)
        return jb_err_set(err, JB_EPROTO, "bad thread key %s", key);
    jb_autofree char *text = slack_mrkdwn_from_markdown(markdown);
    if (!text) return jb_err_set(err, JB_ENOMEM, "mrkdwn");
    struct jb_strv chunks = JB_STRV_INIT;
    int rc = slack_chunk(text, (size_t)s->cfg->max_response_length, &chunks, err);
    for (size_t i = 0; rc == 0 && i < chunks.n; i++)
        rc = slack_post_message(s->web, ch, thread, chunks.v[i], NULL, err);
    jb_strv_free(&chunks);
    return rc;
}

static int slack_answer(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                        const char *markdown, struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    (void)refs;
    (void)n;
    status_end(s, key);
    return post_markdown(s, key, markdown, err);
}

static int slack_fail(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                      const char *message, struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    status_end(s, key);
    jb_autofree char *md = NULL;
    int rc = -1;
    (void)refs;
    (void)n;
    if (asprintf(&md, "Sorry, that did not work: %s", message) > 0)
        rc = post_markdown(s, key, md, err);
    return rc;
}

/* Reactions come last, once the turn is recorded as done: a ✅ means "answered, and
 * never answered again after a crash". */
static void slack_finished(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                           int ok)
{
    (void)key;
    struct fe_slack *s = fe->priv;
    react_all(s, refs, n, "eyes", 0);
    react_all(s, refs, n, ok ? "white_check_mark" : "x", 1);
}

static int slack_notice(struct frontend *fe, const char *key, const char *text, struct jb_err *err)
{
    return post_markdown(fe->priv, key, text, err);
}

static int slack_upload(struct frontend *fe, const char *key, int fd, const char *name,
                        struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    char ch[64], thread[64];
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0)
        return jb_err_set(err, JB_EPROTO, "bad thread key %s", key);
    return slack_upload_fd(s->web, ch, thread, fd, name, err);
}

/* Earlier messages of the thread, before the message that brought the bot in. */
static char *slack_context(struct frontend *fe, const char *key, const char *ref)
{
    struct fe_slack *s = fe->priv;
    char ch[64], thread[64], rch[64], rts[64];
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0 ||
        split_ref(ref, rch, sizeof rch, rts, sizeof rts) < 0 || !strcmp(rts, thread))
        return NULL; /* a new thread: no history */
    json_t *msgs = NULL;
    struct jb_err err = {0};
    if (slack_thread_replies(s->web, ch, thread, &msgs, &err) < 0) {
        log_warn("slack: history of %s: %s", key, err.msg);
        return NULL;
    }
    struct jb_buf b = JB_BUF_INIT(256u << 10);
    jb_buf_appendf(&b, NULL, "Earlier messages in this Slack thread, oldest first:\n");
    size_t i, shown = 0;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *ts = json_string_value(json_object_get(m, "ts"));
        const char *text = json_string_value(json_object_get(m, "text"));
        const char *user = json_string_value(json_object_get(m, "user"));
        if (!ts || !text || strcmp(ts, rts) >= 0) continue; /* up to the bot's mention */
        if (jb_buf_appendf(&b, NULL, "<@%s>: %s\n", user ? user : "someone", text) < 0) break;
        shown++;
    }
    json_decref(msgs);
    if (!shown) {
        jb_buf_release(&b);
        return NULL;
    }
    return jb_buf_detach(&b, NULL);
}

/* The bot token goes only to Slack's file host (or SLACK_API_URL's): slack_file_download
 * refuses every other URL a payload may carry. */
static int slack_fetch(struct frontend *fe, const char *url, int fd, long long max,
                       struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    struct slack_download d = {.api_url = s->cfg->slack_api_url,
                               .bot_token = s->cfg->slack_bot_token};
    return slack_file_download(&d, url, fd, max, err);
}

static const struct frontend_ops slack_ops = {
    .version = 1,
    .name = "slack",
    .started = slack_started,
    .progress = slack_progress,
    .answer = slack_answer,
    .fail = slack_fail,
    .finished = slack_finished,
    .notice = slack_notice,
    .upload = slack_upload,
    .context = slack_context,
    .fetch = slack_fetch,
};

struct frontend *frontend_slack_new(struct slack_web *w, const struct jb_config *cfg,
                                    struct jb_err *err)
{
    struct frontend *fe = calloc(1, sizeof *fe);
    struct fe_slack *s = calloc(1, sizeof *s);
    if (!fe || !s) {
        free(fe);
        free(s);
        jb_err_set(err, JB_ENOMEM, "slack frontend");
        return NULL;
    }
    s->web = w, s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    fe->ops = &slack_ops;
    fe->priv = s;
    return fe;
}

void frontend_slack_free(struct frontend *fe)
{
    if (!fe) return;
    struct fe_slack *s = fe->priv;
    while (s->status) {
        struct status_msg *m = s->status;
        s->status = m->next;
        status_free(m);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    free(fe);
}
