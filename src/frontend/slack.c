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
                               .bot_token = s->cfg->slack_bot_token,
                               .http = slack_web_http(s->web)};
    return slack_file_download(&d, url, fd, max, err);
}

/* ---- approvals: a message with three buttons, updated once decided ---- */

#define APPROVAL_INPUT_SHOWN 1500 /* characters of the tool's input in the question */

/* The tool's input for a code block: redacted, cut, no ``` inside, & < > escaped. */
static char *input_for_code(const char *input_json)
{
    jb_autofree char *clean = jb_redact(input_json ? input_json : "{}");
    if (!clean) return NULL;
    size_t len = strlen(clean), cut = len > APPROVAL_INPUT_SHOWN ? APPROVAL_INPUT_SHOWN : len;
    while (cut < len && cut && ((unsigned char)clean[cut] & 0xC0) == 0x80)
        cut--; /* not inside a UTF-8 sequence */
    struct jb_buf b = JB_BUF_INIT(16u << 10);
    for (size_t i = 0; i < cut; i++) {
        char ch = clean[i];
        const char *rep = ch == '&'   ? "&amp;"
                          : ch == '<' ? "&lt;"
                          : ch == '>' ? "&gt;"
                          : ch == '`' ? "'"
                                      : NULL;
        if (rep ? jb_buf_appendf(&b, NULL, "%s", rep) < 0 : jb_buf_append(&b, &ch, 1, NULL) < 0)
            break;
    }
    if (cut < len) jb_buf_appendf(&b, NULL, " … (%zu more bytes)", len - cut);
    return jb_buf_detach(&b, NULL);
}

/* A tool name for mrkdwn: only the characters a tool name has. */
static void safe_tool(const char *tool, char out[130])
{
    size_t n = 0;
    for (; tool && *tool && n < 129; tool++)
        out[n++] = strchr("`*_~<>&", *tool) ? '?' : *tool;
    out[n] = 0;
}

/* "perm-…" of "KEY#perm-…": the request's short id, for block ids. */
static const char *short_id(const char *id)
{
    const char *h = strrchr(id, '#');
    return h ? h + 1 : id;
}

/* What the agent wants, for one line of mrkdwn: "use `Bash`", "reach `api.example.com:443`"
 * (a host name the proxy normalised: letters, digits, '-' and '.' only). */
static void wants(const struct approval_request *rq, char *out, size_t n)
{
    char tool[130];
    safe_tool(rq->tool, tool);
    if (rq->domain)
        snprintf(out, n, "reach `%s:%u`", rq->domain, rq->port);
    else
        snprintf(out, n, "use `%s`", tool);
}

static json_t *question_section(const struct approval_request *rq, const char *suffix)
{
    char tool[130], bid[300], what[300];
    safe_tool(rq->tool, tool);
    jb_autofree char *code = rq->domain ? NULL : input_for_code(rq->input_json);
    jb_autofree char *text = NULL;
    wants(rq, what, sizeof what);
    int rc = rq->domain
                 ? asprintf(&text,
                            "*Permission needed*\nThe agent's sandbox wants to %s, which "
                            "is not on this channel's egress allowlist.",
                            what)
                 : asprintf(&text, "*Permission needed*\nThe agent wants to use *%s*:\n```%s```",
                            tool, code ? code : "");
    if (rc < 0) return NULL;
    snprintf(bid, sizeof bid, "%s-%s", short_id(rq->id), suffix);
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "section", "block_id", bid, "text", "type",
                     "mrkdwn", "text", text);
}

static json_t *button(const char *action, const char *label, const char *style, const char *value)
{
    json_t *b = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "type", "button", "action_id", action,
                          "text", "type", "plain_text", "text", label, "value", value);
    if (b && style) json_object_set_new(b, "style", json_string(style));
    return b;
}

static json_t *question_blocks(const struct approval_request *rq)
{
    struct jb_buf who = JB_BUF_INIT(4096);
    jb_buf_appendf(&who, NULL, "Only <@%s> (who asked)", rq->requester ? rq->requester : "?");
    for (size_t i = 0; rq->approvers[i]; i++)
        jb_buf_appendf(&who, NULL, "%s<@%s>", rq->approvers[i + 1] ? ", " : " or ",
                       rq->approvers[i]);
    int m = rq->timeout_s / 60, sec = rq->timeout_s % 60;
    jb_buf_appendf(&who, NULL, " can decide · expires in %d %s", m ? m : sec, m ? "min" : "s");
    char ctx[300], act[300];
    snprintf(ctx, sizeof ctx, "%s-ctx", short_id(rq->id));
    snprintf(act, sizeof act, "%s-act", short_id(rq->id));
    json_t *blocks = json_pack(
        "[o, {s:s, s:s, s:[{s:s, s:s}]}, {s:s, s:s, s:[o, o, o]}]", question_section(rq, "ask"),
        "type", "context", "block_id", ctx, "elements", "type", "mrkdwn", "text",
        who.data ? who.data : "", "type", "actions", "block_id", act, "elements",
        button("janebot_perm_allow_once", "Allow once", "primary", rq->id),
        button("janebot_perm_deny", "Deny", "danger", rq->id),
        button("janebot_perm_allow_thread", "Allow for this thread", NULL, rq->id));
    jb_buf_release(&who);
    return blocks;
}

static int slack_approval_show(struct frontend *fe, const struct approval_request *rq, char *ref,
                               struct approval_decision *now, struct jb_err *err)
{
    (void)now;
    struct fe_slack *s = fe->priv;
    char ch[64], thread[64], tool[300];
    if (split_ref(rq->thread_key, ch, sizeof ch, thread, sizeof thread) < 0)
        return jb_err_set(err, JB_EPROTO, "bad thread key %s", rq->thread_key);
    wants(rq, tool, sizeof tool);
    char text[400];
    snprintf(text, sizeof text,
             "Permission needed: the agent wants to %s. Allow once, deny, or allow for "
             "this thread?",
             tool);
    jb_auto(json_decrefp) json_t *args =
        json_pack("{s:s, s:s, s:s, s:o, s:b, s:b}", "channel", ch, "thread_ts", thread, "text",
                  text, "blocks", question_blocks(rq), "unfurl_links", 0, "unfurl_media", 0);
    if (!args) return jb_err_set(err, JB_ENOMEM, "approval message");
    json_t *res = NULL;
    if (slack_call_ex(s->web, "chat.postMessage", args, SLACK_CALL_ONCE, NULL, &res, NULL, err) < 0)
        return -1;
    const char *ts = json_string_value(json_object_get(res, "ts"));
    snprintf(ref, 96, "%s:%s", ch, ts ? ts : "");
    json_decref(res);
    return ts ? 0 : jb_err_set(err, JB_EPROTO, "chat.postMessage: no ts in the answer");
}

static void slack_approval_done(struct frontend *fe, const struct approval_request *rq,
                                const char *ref, const struct approval_decision *d)
{
    struct fe_slack *s = fe->priv;
    char ch[64], ts[64], tool[300], line[400], text[800], bid[300];
    if (split_ref(ref, ch, sizeof ch, ts, sizeof ts) < 0) return;
    if (rq->domain) /* "Permission for `Bash`", "Permission to reach `api.example.com:443`" */
        wants(rq, tool, sizeof tool);
    else
        safe_tool(rq->tool, tool);
    const char *icon = d->answer == APPROVAL_DENY ? ":x:" : ":white_check_mark:";
    const char *what = d->answer == APPROVAL_ALLOW_ONCE     ? "Allowed once"
                       : d->answer == APPROVAL_ALLOW_THREAD ? "Allowed for this thread"
                                                            : "Denied";
    int person = d->who[0] == 'U' || d->who[0] == 'W';
    if (person)
        snprintf(line, sizeof line, "%s *%s* by <@%s>", icon, what, d->who);
    else
        snprintf(line, sizeof line, "%s *%s*: %s", icon, what, d->reason);
    if (person)
        snprintf(text, sizeof text, "Permission %s%s%s: %s by <@%s>.", rq->domain ? "to " : "for `",
                 tool, rq->domain ? "" : "`", approval_answer_text(d->answer), d->who);
    else
        snprintf(text, sizeof text, "Permission %s%s%s: %s (%s).", rq->domain ? "to " : "for `",
                 tool, rq->domain ? "" : "`", approval_answer_text(d->answer), d->reason);
    snprintf(bid, sizeof bid, "%s-done", short_id(rq->id));
    jb_auto(json_decrefp) json_t *args =
        json_pack("{s:s, s:s, s:s, s:[o, {s:s, s:s, s:[{s:s, s:s}]}]}", "channel", ch, "ts", ts,
                  "text", text, "blocks", question_section(rq, "ask-2"), "type", "context",
                  "block_id", bid, "elements", "type", "mrkdwn", "text", line);
    struct jb_err e = {0};
    static const char *const gone[] = {"message_not_found", "cant_update_message", NULL};
    int rc = args ? slack_call_ex(s->web, "chat.update", args, 0, gone, NULL, NULL, &e) : -1;
    char thread[64];
    if (rc == 1 && split_ref(rq->thread_key, ch, sizeof ch, thread, sizeof thread) == 0)
        rc = slack_post_message(s->web, ch, thread, text, NULL, &e); /* the question is gone */
    if (rc < 0)
        log_warn("slack: updating the approval message in %s: %s", rq->thread_key,
                 args ? e.msg : "out of memory");
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
    .approval_show = slack_approval_show,
    .approval_done = slack_approval_done,
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
