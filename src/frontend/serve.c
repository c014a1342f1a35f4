/* frontend/serve.c -- Slack through Socket Mode: envelopes in, the core's decisions out.
 *
 * The socket thread calls on_envelope() for every envelope; it turns the event into the
 * facts of a message, lets the core decide (core_message(): allowlist, commands, rate
 * limit, dedupe; a message to run is stored before it returns, so the ack that follows
 * means "durable") and renders the decision. Anything slow (posting a refusal or a
 * status) goes to a short-lived thread of its own; turns run on the core's workers.
 * The process around it (signals, reload, the daily gc) is cmd/serve.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "frontend/frontend.h"
#include "slack/slack.h"

enum { STORE_TOLD_MAX = 32 };

struct slack_serve {
    const struct jb_config *cfg;
    struct slack_web *web;
    struct frontend *fe;
    struct core *core; /* borrowed: set by slack_serve_start() */
    struct slack_socket *sock;
    char *bot_user, *bot_id;
    atomic_int notices; /* notice and reaction threads running: slack_serve_free() waits */
    /* Socket thread only: while events cannot be stored, one log line (not one per
     * event) and one notice per post (not one per redelivery). */
    int store_failing;
    char told[STORE_TOLD_MAX][96]; /* dedupe keys of posts told so, a ring */
    unsigned told_next;
};

struct notice {
    struct slack_serve *sv;
    char *thread_key, *text;
};

static void *notice_main(void *p)
{
    struct notice *n = p;
    struct jb_err err = {0};
    struct frontend *fe = n->sv->fe;
    if (fe->ops->notice(fe, n->thread_key, n->text, &err) < 0)
        log_warn("slack: reply in %s: %s", n->thread_key, err.msg);
    atomic_fetch_sub(&n->sv->notices, 1);
    free(n->thread_key);
    free(n->text);
    free(n);
    return NULL;
}

/* Post a short reply without holding up the socket thread. */
static void notice_async(struct slack_serve *sv, const char *key, const char *text)
{
    struct notice *n = calloc(1, sizeof *n);
    pthread_t t;
    pthread_attr_t attr;
    if (!n || !(n->thread_key = strdup(key)) || !(n->text = strdup(text))) goto fail;
    n->sv = sv;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&sv->notices, 1);
    int rc = pthread_create(&t, &attr, notice_main, n);
    pthread_attr_destroy(&attr);
    if (rc == 0) return;
    atomic_fetch_sub(&sv->notices, 1);
fail:
    log_warn("slack: could not reply in %s", key);
    if (n) free(n->thread_key), free(n->text);
    free(n);
}

/* Files over the size cap are not fetched; the user hears which. */
static void skipped_notice(struct slack_serve *sv, const char *key, const struct jb_strv *skipped)
{
    struct jb_buf b = JB_BUF_INIT(8192);
    char cap[32];
    jb_fmt_size(FRONTEND_FILE_MAX, cap, sizeof cap);
    int rc = jb_buf_appendf(&b, NULL, "I skipped ");
    for (size_t i = 0; i < skipped->n && rc == 0; i++)
        rc = jb_buf_appendf(&b, NULL, "%s`%s`", i ? ", " : "", skipped->v[i]);
    if (rc == 0) rc = jb_buf_appendf(&b, NULL, ": files over %s are not downloaded.", cap);
    notice_async(sv, key, rc == 0 ? b.data : "I skipped files over the size limit.");
    jb_buf_release(&b);
}

/* The core's decision about a message, in Slack's words. */
static void render(struct slack_serve *sv, const struct slack_message *m,
                   const struct core_decision *d, const struct jb_strv *skipped)
{
    char text[512];
    switch (d->verdict) {
    case CORE_IGNORED:
        log_debug("slack: reply in %s without a mention, in a thread the bot is not in",
                  m->thread_key);
        break;
    case CORE_DUPLICATE:
        log_debug("slack: event %s seen before", m->event_id);
        break;
    case CORE_REFUSED:
        log_info("slack: %s in %s is not on the allowlist; refused", m->user, m->channel);
        notice_async(sv, m->thread_key,
                     "Sorry, I am not available to you here. Ask the team that runs me "
                     "to add you (ALLOWED_USER_IDS / ALLOWED_CHANNEL_IDS).");
        break;
    case CORE_STATUS:
        notice_async(sv, m->thread_key, d->text);
        break;
    case CORE_ABORTED:
        snprintf(text, sizeof text, "Stopping the running turn, as <@%s> asked.", m->user);
        notice_async(sv, m->thread_key, text);
        break;
    case CORE_NOT_RUNNING:
        notice_async(sv, m->thread_key, "Nothing is running in this thread.");
        break;
    case CORE_EMPTY:
        notice_async(sv, m->thread_key, "Hi! Tell me what to do, here in this thread.");
        if (skipped->n) skipped_notice(sv, m->thread_key, skipped);
        break;
    case CORE_RATE_LIMITED:
        log_info("slack: %s in %s rate limited (retry in %d s)", m->user, m->channel, d->retry_s);
        notice_async(sv, m->thread_key, d->text);
        break;
    case CORE_PASSED: /* the running turn's status message says so */
        log_info("slack: message %s passed to the running agent of %s", m->dedupe_key,
                 m->thread_key);
        break;
    case CORE_QUEUED: /* once, for the message that was stored */
        if (skipped->n) skipped_notice(sv, m->thread_key, skipped);
        break;
    }
}

/* The post's message could not be stored (the state dir's disk is full, say): it stays
 * unacknowledged, so Slack sends it again and it is answered once it can be stored. The
 * user hears it once per post; the log says it once until storing works again. */
static void not_stored(struct slack_serve *sv, const struct slack_message *m,
                       const struct jb_err *err)
{
    if (!sv->store_failing)
        log_error("slack: cannot store events (%s); leaving them unacknowledged so Slack "
                  "sends them again",
                  err->msg);
    sv->store_failing = 1;
    for (unsigned i = 0; i < STORE_TOLD_MAX; i++)
        if (!strcmp(sv->told[i], m->dedupe_key)) return;
    snprintf(sv->told[sv->told_next], sizeof sv->told[0], "%s", m->dedupe_key);
    sv->told_next = (sv->told_next + 1) % STORE_TOLD_MAX;
    notice_async(sv, m->thread_key,
                 "I could not take this message: janebot cannot write to its storage right "
                 "now (the team that runs me has been told in the log). Slack will send it to "
                 "me again; if it is not answered in a few minutes, send it again.");
}

static int handle_message(struct slack_serve *sv, const struct slack_message *m)
{
    struct jb_err err = {0};
    jb_autofree char *files = NULL;
    jb_auto(jb_strv_free) struct jb_strv skipped = JB_STRV_INIT;
    if (slack_files_normalise(m->files, FRONTEND_FILE_MAX, &files, &skipped, &err) < 0)
        log_warn("slack: files of event %s: %s", m->event_id, err.msg);
    struct core_msg cm = {.event_id = m->event_id,
                          .dedupe_key = m->dedupe_key,
                          .thread_key = m->thread_key,
                          .user = m->user,
                          .channel = m->channel,
                          .text = m->text,
                          .ref = m->dedupe_key,
                          .files = files,
                          .followup_only = m->followup_only};
    struct core_decision d;
    if (core_message(sv->core, &cm, &d, &err) < 0) {
        not_stored(sv, m, &err);
        return -1;
    }
    if (sv->store_failing) log_info("slack: storing events again");
    sv->store_failing = 0;
    render(sv, m, &d, &skipped);
    return 0;
}

/* ---- ❌ on a message: stop the running turn it belongs to ---- */

/* The thread key of the message CHANNEL ts (one of the bot's), from conversations.replies:
 * owned; NULL when Slack does not know it (or cannot say). */
static char *thread_of(struct slack_serve *sv, const char *channel, const char *ts)
{
    json_t *msgs = NULL;
    struct jb_err err = {0};
    if (slack_thread_replies(sv->web, channel, ts, &msgs, &err) < 0) {
        log_warn("slack: the thread of %s:%s: %s", channel, ts, err.msg);
        return NULL;
    }
    char *key = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *mts = json_string_value(json_object_get(m, "ts"));
        const char *parent = json_string_value(json_object_get(m, "thread_ts"));
        if (!mts || strcmp(mts, ts) != 0) continue;
        if (asprintf(&key, "%s:%s", channel, parent && *parent ? parent : ts) < 0) key = NULL;
        break;
    }
    json_decref(msgs);
    return key;
}

struct reaction_job {
    struct slack_serve *sv;
    struct slack_reaction r;
};

/* Off the socket thread: finding the thread of one of the bot's messages asks Slack. */
static void *reaction_main(void *p)
{
    struct reaction_job *j = p;
    struct slack_serve *sv = j->sv;
    const struct slack_reaction *r = &j->r;
    char ref[96], requester[64];
    snprintf(ref, sizeof ref, "%s:%s", r->channel, r->ts);
    int on_bot = r->item_user && sv->bot_user && !strcmp(r->item_user, sv->bot_user);
    jb_autofree char *thread_key = on_bot ? thread_of(sv, r->channel, r->ts) : NULL;
    struct core_stop_req rq = {.user = r->user,
                               .channel = r->channel,
                               .thread_key = thread_key,
                               .ref = ref,
                               .on_bot_message = on_bot};
    switch (core_stop_turn(sv->core, &rq, requester, sizeof requester)) {
    case CORE_STOP_STOPPING:
        log_info("slack: %s stopped the running turn of %s with a :x: on %s", r->user,
                 thread_key ? thread_key : ref, ref);
        break;
    case CORE_STOP_REFUSED:
        log_info("slack: :x: by %s on %s ignored: only %s, who asked for the running turn, may "
                 "stop it",
                 r->user, ref, requester);
        break;
    case CORE_STOP_NO_TURN:
        log_debug("slack: :x: by %s on %s: no running turn of that message or thread", r->user,
                  ref);
        break;
    }
    atomic_fetch_sub(&sv->notices, 1);
    slack_reaction_release(&j->r);
    free(j);
    return NULL;
}

/* A reaction_added event: an :x: may stop a turn (once per event); others are ignored. */
static void handle_reaction(struct slack_serve *sv, const json_t *payload)
{
    struct slack_reaction r = {0};
    const char *why = NULL;
    struct jb_err err = {0};
    int rc = slack_reaction_interpret(payload, &r, &why, &err);
    if (rc <= 0) {
        if (rc < 0)
            log_warn("slack: malformed reaction event (acknowledged): %s", err.msg);
        else
            log_debug("slack: reaction ignored: %s", why);
        return;
    }
    char dedupe[128];
    snprintf(dedupe, sizeof dedupe, "reaction:%s", r.event_id);
    int seen =
        strcmp(r.reaction, "x") != 0 ? 1 : core_event_once(sv->core, r.event_id, dedupe, &err);
    if (seen < 0) log_warn("slack: reaction %s not recorded (acted on): %s", r.event_id, err.msg);
    struct reaction_job *j = seen == 1 ? NULL : calloc(1, sizeof *j);
    pthread_t t;
    pthread_attr_t attr;
    if (j) {
        j->sv = sv, j->r = r;
        r = (struct slack_reaction){0};
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        atomic_fetch_add(&sv->notices, 1);
        int prc = pthread_create(&t, &attr, reaction_main, j);
        pthread_attr_destroy(&attr);
        if (prc == 0) return;
        atomic_fetch_sub(&sv->notices, 1);
        log_warn("slack: could not act on the reaction %s", j->r.event_id);
        slack_reaction_release(&j->r);
        free(j);
    } else if (seen != 1) {
        log_warn("slack: could not act on the reaction %s: out of memory", r.event_id);
    }
    slack_reaction_release(&r);
}

/* `/janebot status|cancel|help`: answered in the ack, visible to the caller only. */
static json_t *handle_slash(struct slack_serve *sv, const json_t *p)
{
    const char *user = json_string_value(json_object_get(p, "user_id"));
    const char *channel = json_string_value(json_object_get(p, "channel_id"));
    const char *text = json_string_value(json_object_get(p, "text"));
    if (!user || !channel || strlen(channel) > 40) return NULL;
    struct core_channel_answer a;
    core_channel_command(sv->core, user, channel, text, &a);
    char out[512];
    if (a.refused) {
        log_info("slack: /janebot from %s in %s: not on the allowlist", user, channel);
        snprintf(out, sizeof out, "Sorry, you are not allowed to use janebot here.");
    } else if (a.cmd == CORE_CMD_STATUS) {
        snprintf(out, sizeof out, "janebot is up. %d turn%s running, %d in this channel.",
                 a.running, a.running == 1 ? "" : "s", a.running_here);
    } else if (a.cmd == CORE_CMD_CANCEL) {
        snprintf(out, sizeof out,
                 a.cancelled ? "Stopping %d turn%s of yours in this channel."
                             : "You have no turn running in this channel.",
                 a.cancelled, a.cancelled == 1 ? "" : "s");
    } else {
        int unknown = a.cmd == CORE_CMD_UNKNOWN;
        snprintf(out, sizeof out,
                 "%s%s%s`/janebot status`: what janebot is running. `/janebot cancel`: stop your "
                 "turns in this channel. To ask the agent, mention @janebot or send it a DM.",
                 unknown ? "Unknown command `" : "", unknown ? a.word : "", unknown ? "`. " : "");
    }
    return json_pack("{s:s, s:s}", "response_type", "ephemeral", "text", out);
}

struct ephemeral {
    struct slack_serve *sv;
    json_t *args;
};

static void *ephemeral_main(void *p)
{
    struct ephemeral *e = p;
    struct jb_err err = {0};
    if (slack_call_ex(e->sv->web, "chat.postEphemeral", e->args, 0, NULL, NULL, NULL, &err) < 0)
        log_warn("slack: ephemeral note: %s", err.msg);
    atomic_fetch_sub(&e->sv->notices, 1);
    json_decref(e->args);
    free(e);
    return NULL;
}

/* A note only user sees, in the thread, without holding up the socket thread. */
static void ephemeral_async(struct slack_serve *sv, const struct slack_block_action *a,
                            const char *text)
{
    struct ephemeral *e = calloc(1, sizeof *e);
    pthread_t t;
    pthread_attr_t attr;
    if (!e || !(e->args = json_pack("{s:s, s:s, s:s}", "channel", a->channel, "user", a->user,
                                    "text", text)))
        goto fail;
    if (a->thread_ts) json_object_set_new(e->args, "thread_ts", json_string(a->thread_ts));
    e->sv = sv;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&sv->notices, 1);
    int rc = pthread_create(&t, &attr, ephemeral_main, e);
    pthread_attr_destroy(&attr);
    if (rc == 0) return;
    atomic_fetch_sub(&sv->notices, 1);
fail:
    log_warn("slack: could not send a note to %s", a->user);
    if (e) json_decref(e->args);
    free(e);
}

/* A click on an approval button: the core decides whether it counts. */
static void handle_click(struct slack_serve *sv, const struct slack_block_action *a)
{
    static const struct {
        const char *action;
        enum approval_answer answer;
    } buttons[] = {{"janebot_perm_allow_once", APPROVAL_ALLOW_ONCE},
                   {"janebot_perm_allow_thread", APPROVAL_ALLOW_THREAD},
                   {"janebot_perm_deny", APPROVAL_DENY}};
    size_t i = 0;
    while (i < JB_ARRAY_LEN(buttons) && strcmp(buttons[i].action, a->action_id))
        i++;
    if (i == JB_ARRAY_LEN(buttons)) {
        log_debug("slack: click on %.100s ignored (not an approval button)", a->action_id);
        return;
    }
    char why[300];
    enum approval_click rc =
        core_approval_answer(sv->core, a->value, a->user, buttons[i].answer, why, sizeof why);
    if (rc == APPROVAL_NOT_YOURS) {
        log_info("slack: %s may not decide approval %.200s", a->user, a->value);
        ephemeral_async(sv, a, why);
    } else if (rc == APPROVAL_NOT_PENDING) {
        log_info("slack: click by %s on approval %.200s, which is no longer pending", a->user,
                 a->value);
    }
}

static void handle_interactive(struct slack_serve *sv, const json_t *payload)
{
    struct slack_block_action a;
    const char *why = NULL;
    struct jb_err err = {0};
    int rc = slack_block_action_parse(payload, &a, &why, &err);
    if (rc < 0) log_warn("slack: malformed interactive payload (acknowledged): %s", err.msg);
    if (rc == 0) log_debug("slack: interactive payload ignored: %s", why ? why : "-");
    if (rc <= 0) return;
    handle_click(sv, &a);
    slack_block_action_release(&a);
}

static int on_envelope(void *ud, const struct slack_envelope *env, json_t **payload)
{
    struct slack_serve *sv = ud;
    if (env->type == SLACK_ENV_INTERACTIVE) {
        handle_interactive(sv, env->payload); /* quick: no Web API call on this thread */
        return 0;
    }
    if (env->type == SLACK_ENV_SLASH_COMMANDS && env->payload) {
        if (env->accepts_response_payload) *payload = handle_slash(sv, env->payload);
        return 0;
    }
    if (env->type != SLACK_ENV_EVENTS_API || !env->payload) return 0;
    if (slack_event_is_reaction(env->payload)) {
        handle_reaction(sv, env->payload);
        return 0;
    }
    struct slack_message m;
    const char *why = NULL;
    struct jb_err err = {0};
    int rc = slack_event_interpret(env->payload, sv->bot_user, sv->bot_id, &m, &why, &err);
    if (rc < 0)
        log_warn("slack: malformed event (acknowledged): %s", err.msg);
    else if (rc == 0)
        log_debug("slack: event ignored: %s", why ? why : "-");
    else {
        rc = handle_message(sv, &m);
        slack_message_release(&m);
        return rc;
    }
    return 0;
}

int slack_serve_new(const struct jb_config *cfg, struct jb_metrics *metrics,
                    struct slack_serve **ret, struct jb_err *err)
{
    struct slack_serve *sv = calloc(1, sizeof *sv);
    if (!sv) return jb_err_set(err, JB_ENOMEM, "serve");
    sv->cfg = cfg;
    struct slack_web_opts wo = {.api_url = cfg->slack_api_url,
                                .bot_token = cfg->slack_bot_token,
                                .app_token = cfg->slack_app_token,
                                .metrics = metrics};
    if (slack_web_new(&wo, &sv->web, err) < 0) goto fail;
    if (slack_auth_test(sv->web, &sv->bot_user, &sv->bot_id, err) < 0) {
        jb_err_prefix(err, "cannot sign in to Slack with SLACK_BOT_TOKEN");
        goto fail;
    }
    log_info("slack: signed in as <@%s>", sv->bot_user);
    if (!(sv->fe = frontend_slack_new(sv->web, cfg, sv->bot_user, err))) goto fail;
    *ret = sv;
    return 0;
fail:
    slack_serve_free(sv);
    return -1;
}

struct frontend *slack_serve_frontend(struct slack_serve *sv)
{
    return sv->fe;
}

int slack_serve_start(struct slack_serve *sv, struct core *core, struct jb_err *err)
{
    sv->core = core;
    /* Slack thread keys start with the channel id: C…, G… (private), D… (DMs). */
    int resumed = 0;
    for (const char *p = "CGD"; *p; p++) {
        char prefix[2] = {*p, 0};
        int n = core_resume_pending(core, prefix, 1, err);
        if (n < 0) return -1;
        resumed += n;
    }
    if (resumed) log_info("answering %d message(s) accepted before the last stop", resumed);
    return slack_socket_start(sv->web, on_envelope, sv, &sv->sock, err);
}

int slack_serve_connected(struct slack_serve *sv)
{
    return slack_socket_connected(sv->sock);
}

void slack_serve_stop(struct slack_serve *sv)
{
    if (!sv) return; /* serve's clean-up after a failed slack_serve_new() */
    slack_socket_stop(sv->sock);
    sv->sock = NULL;
}

void slack_serve_free(struct slack_serve *sv)
{
    if (!sv) return;
    slack_serve_stop(sv);
    /* A notice being sent uses the frontend: it ends within the Web API's timeouts. */
    for (int64_t until = jb_mono_ms() + 30000; atomic_load(&sv->notices) > 0;) {
        if (jb_mono_ms() > until) {
            log_warn("slack: a reply is still being sent; not freeing the frontend");
            return;
        }
        usleep(10000);
    }
    frontend_slack_free(sv->fe);
    slack_web_free(sv->web);
    free(sv->bot_user);
    free(sv->bot_id);
    free(sv);
}
