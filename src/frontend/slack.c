/* frontend/slack.c -- answers in Slack threads: reactions on the user's messages (eyes,
 * then white_check_mark or x), one status message per running thread (posted, updated and
 * removed by the status writer, status.c, so that progress never waits on Slack), the
 * answer as mrkdwn in chunks, notes, uploads, and the thread's history for a first turn
 * inside an existing thread. Called from worker threads. */
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "frontend/frontend.h"
#include "frontend/status.h"
#include "slack/slack.h"

/* The event_type of the metadata on the bot's replies to messages. */
#define REPLY_EVENT_TYPE "janebot_reply"

struct fe_slack {
    struct slack_web *web;
    const struct jb_config *cfg;
    struct status_writer *status; /* owns the status messages (status.c) */
    char *bot_user;               /* the bot's user id: its own messages */
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

static void slack_started(struct frontend *fe, const char *key, const char *user,
                          const char *const *refs, size_t n)
{
    (void)user;
    struct fe_slack *s = fe->priv;
    status_writer_begin(s->status, key); /* first: the reactions below do wait on Slack */
    react_all(s, refs, n, "eyes", 1);
}

/* Called from inside the exec's output loop: records the status, never waits. */
static void slack_progress(struct frontend *fe, const char *key, const char *status)
{
    struct fe_slack *s = fe->priv;
    status_writer_set(s->status, key, status);
}

/* An answer over SLACK_ANSWER_MESSAGES_MAX messages: the whole markdown as a file in the
 * thread, then a last message saying where the rest is. */
static int post_cut(struct fe_slack *s, const char *ch, const char *thread, const char *markdown,
                    size_t nchunks, const char *meta, struct jb_err *err)
{
    struct jb_err e = {0};
    jb_autoclose int fd = memfd_create("answer", MFD_CLOEXEC);
    int up = -1;
    if (fd < 0)
        jb_err_sys(&e, "memfd_create");
    else if (jb_write_all(fd, markdown, strlen(markdown)) < 0)
        jb_err_sys(&e, "writing the file");
    else
        up = slack_upload_fd(s->web, ch, thread, fd, SLACK_ANSWER_FILE, &e);
    char note[512];
    if (up == 0)
        snprintf(note, sizeof note,
                 "_The answer was cut here: it would take %zu messages. The whole answer is in "
                 "the file %s._",
                 nchunks, SLACK_ANSWER_FILE);
    else
        snprintf(note, sizeof note,
                 "_The answer was cut here: it would take %zu messages, and attaching it as a "
                 "file failed (%.300s)._",
                 nchunks, e.msg);
    if (up < 0) log_warn("slack: the whole answer as a file in %s:%s: %s", ch, thread, e.msg);
    return slack_post_message_meta(s->web, ch, thread, note, meta, NULL, err);
}

/* Post markdown in the thread, converted and chunked: at most SLACK_ANSWER_MESSAGES_MAX
 * messages, so that an agent cannot flood a channel; a longer text is cut and attached. */
static int post_markdown(struct fe_slack *s, const char *key, const char *markdown,
                         const char *meta, struct jb_err *err)
{
    char ch[64], thread[64];
    if (split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0)
        return jb_err_set(err, JB_EPROTO, "bad thread key %s", key);
    jb_autofree char *text = slack_mrkdwn_from_markdown(markdown);
    if (!text) return jb_err_set(err, JB_ENOMEM, "mrkdwn");
    struct jb_strv chunks = JB_STRV_INIT;
    int rc = slack_chunk(text, (size_t)s->cfg->max_response_length, &chunks, err);
    int cut = chunks.n > SLACK_ANSWER_MESSAGES_MAX;
    size_t n = cut ? SLACK_ANSWER_MESSAGES_MAX - 1 : chunks.n;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = slack_post_message_meta(s->web, ch, thread, chunks.v[i], meta, NULL, err);
    if (rc == 0 && cut) rc = post_cut(s, ch, thread, markdown, chunks.n, meta, err);
    jb_strv_free(&chunks);
    return rc;
}

/* The reply of a turn names the messages it answers (their refs) in its metadata, so that
 * after a crash the bot can see which got their reply (slack_answered()). Caller frees;
 * NULL when out of memory (then the reply goes without). */
static char *reply_metadata(const char *const *refs, size_t n)
{
    jb_auto(json_decrefp) json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (refs[i]) json_array_append_new(list, json_string(refs[i]));
    jb_auto(json_decrefp) json_t *meta =
        list ? json_pack("{s:s, s:{s:O}}", "event_type", REPLY_EVENT_TYPE, "event_payload", "refs",
                         list)
             : NULL;
    return meta ? json_dumps(meta, JSON_COMPACT) : NULL;
}

static int slack_answer(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                        const char *markdown, struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    (void)refs;
    (void)n;
    status_writer_end(s->status, key);
    jb_autofree char *meta = reply_metadata(refs, n);
    return post_markdown(s, key, markdown, meta, err);
}

static int slack_fail(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                      const char *message, struct jb_err *err)
{
    struct fe_slack *s = fe->priv;
    status_writer_end(s->status, key);
    jb_autofree char *md = NULL;
    int rc = -1;
    (void)refs;
    (void)n;
    jb_autofree char *meta = reply_metadata(refs, n);
    if (asprintf(&md, "Sorry, that did not work: %s", message) > 0)
        rc = post_markdown(s, key, md, meta, err);
    return rc;
}

/* Reactions come last, once the turn is recorded as done: a ✅ means "answered, and
 * never answered again after a crash". */
static void slack_finished(struct frontend *fe, const char *key, const char *const *refs, size_t n,
                           int ok)
{
    struct fe_slack *s = fe->priv;
    status_writer_end(s->status, key); /* done by answer() or fail() already, as a rule */
    react_all(s, refs, n, "eyes", 0);
    react_all(s, refs, n, ok ? "white_check_mark" : "x", 1);
}

static int slack_notice(struct frontend *fe, const char *key, const char *text, struct jb_err *err)
{
    return post_markdown(fe->priv, key, text, NULL, err);
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

/* 1 when a message names ref in its reply metadata (reply_metadata()). */
static int names_ref(json_t *msg, const char *ref)
{
    json_t *meta = json_object_get(msg, "metadata");
    const char *type = json_string_value(json_object_get(meta, "event_type"));
    if (!type || strcmp(type, REPLY_EVENT_TYPE) != 0) return 0;
    json_t *refs = json_object_get(json_object_get(meta, "event_payload"), "refs");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        if (json_is_string(r) && !strcmp(json_string_value(r), ref)) return 1;
    }
    return 0;
}

/* Whether the bot's reply to the message ref is in the thread: 1, 0, or -1 when Slack
 * cannot say. */
static int slack_answered(struct frontend *fe, const char *key, const char *ref)
{
    struct fe_slack *s = fe->priv;
    char ch[64], thread[64];
    if (!s->bot_user || split_ref(key, ch, sizeof ch, thread, sizeof thread) < 0) return -1;
    json_t *msgs = NULL;
    struct jb_err err = {0};
    if (slack_thread_replies(s->web, ch, thread, &msgs, &err) < 0) {
        log_warn("slack: replies of %s: %s", key, err.msg);
        return -1;
    }
    int found = 0;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *user = json_string_value(json_object_get(m, "user"));
        if (user && !strcmp(user, s->bot_user) && names_ref(m, ref)) found = 1;
    }
    json_decref(msgs);
    return found;
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
    .answered = slack_answered,
};

struct frontend *frontend_slack_new(struct slack_web *w, const struct jb_config *cfg,
                                    const char *bot_user, struct jb_err *err)
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
    if (bot_user && !(s->bot_user = strdup(bot_user))) {
        jb_err_set(err, JB_ENOMEM, "slack frontend");
        free(fe);
        free(s);
        return NULL;
    }
    if (!(s->status = status_writer_new(w, err))) {
        free(s->bot_user);
        free(fe);
        free(s);
        return NULL;
    }
    fe->ops = &slack_ops;
    fe->priv = s;
    return fe;
}

void frontend_slack_free(struct frontend *fe)
{
    if (!fe) return;
    struct fe_slack *s = fe->priv;
    status_writer_free(s->status);
    free(s->bot_user);
    free(s);
    free(fe);
}
