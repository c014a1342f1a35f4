/* frontend/serve.c -- `janebot serve`: Slack events in, through the core, answers out.
 *
 * The socket thread calls on_envelope() for every envelope; it decides quickly (policy,
 * commands, dedupe) and stores the message before returning, so the ack that follows
 * means "durable". Anything slow (posting a refusal or a status) goes to a short-lived
 * thread of its own; turns run on the core's workers. */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "core/core.h"
#include "core/policy.h"
#include "frontend/frontend.h"
#include "slack/slack.h"

struct serve {
    const struct jb_config *cfg;
    struct slack_web *web;
    struct frontend *fe;
    struct core *core;
    char *bot_user, *bot_id;
};

struct notice {
    struct frontend *fe;
    char *thread_key, *text;
};

static void *notice_main(void *p)
{
    struct notice *n = p;
    struct jb_err err = {0};
    if (n->fe->ops->notice(n->fe, n->thread_key, n->text, &err) < 0)
        log_warn("slack: reply in %s: %s", n->thread_key, err.msg);
    free(n->thread_key);
    free(n->text);
    free(n);
    return NULL;
}

/* Post a short reply without holding up the socket thread. */
static void notice_async(struct serve *sv, const char *key, const char *text)
{
    struct notice *n = calloc(1, sizeof *n);
    pthread_t t;
    pthread_attr_t attr;
    if (!n || !(n->thread_key = strdup(key)) || !(n->text = strdup(text))) goto fail;
    n->fe = sv->fe;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, notice_main, n);
    pthread_attr_destroy(&attr);
    if (rc == 0) return;
fail:
    log_warn("slack: could not reply in %s", key);
    if (n) free(n->thread_key), free(n->text);
    free(n);
}

/* "status", "abort" or "stop" alone in a message of a thread. */
static const char *command_of(const char *text)
{
    char word[16];
    size_t n = 0;
    while (*text && isspace((unsigned char)*text))
        text++;
    while (*text && !isspace((unsigned char)*text) && n < sizeof word - 1)
        word[n++] = (char)tolower((unsigned char)*text++);
    word[n] = '\0';
    while (*text && isspace((unsigned char)*text))
        text++;
    if (*text) return NULL;
    if (!strcmp(word, "status")) return "status";
    if (!strcmp(word, "abort") || !strcmp(word, "stop")) return "abort";
    return NULL;
}

static void run_command(struct serve *sv, const struct slack_message *m, const char *cmd)
{
    char text[512];
    if (!strcmp(cmd, "status")) {
        core_status(sv->core, m->thread_key, text, sizeof text);
    } else if (core_abort(sv->core, m->thread_key)) {
        snprintf(text, sizeof text, "Stopping the running turn, as <@%s> asked.", m->user);
    } else {
        snprintf(text, sizeof text, "Nothing is running in this thread.");
    }
    notice_async(sv, m->thread_key, text);
}

/* Over RATE_LIMIT_PER_MINUTE: recorded as seen (its twin event is dropped too), answered
 * with when to retry; nothing is stored for a turn, no sandbox is made. */
static void rate_refuse(struct serve *sv, const struct slack_message *m, int retry_s)
{
    if (core_event_once(sv->core, m->event_id, m->dedupe_key, NULL) != 0) return;
    struct policy *p = core_policy_get(sv->core);
    char text[256];
    policy_rate_message(retry_s, p->rate_per_minute, text, sizeof text);
    policy_unref(p);
    log_info("slack: %s in %s rate limited (retry in %d s)", m->user, m->channel, retry_s);
    notice_async(sv, m->thread_key, text);
}

/* Files over the size cap are not fetched; the user hears which. */
static void skipped_notice(struct serve *sv, const char *key, const struct jb_strv *skipped)
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

static void handle_message(struct serve *sv, const struct slack_message *m)
{
    struct jb_err err = {0};
    if (m->followup_only && !core_knows_thread(sv->core, m->thread_key)) {
        log_debug("slack: reply in %s without a mention, in a thread the bot is not in",
                  m->thread_key);
        return;
    }
    const char *cmd = command_of(m->text);
    int allowed = core_allowed(sv->core, m->user, m->channel);
    jb_autofree char *files = NULL;
    jb_auto(jb_strv_free) struct jb_strv skipped = JB_STRV_INIT;
    if (slack_files_normalise(m->files, FRONTEND_FILE_MAX, &files, &skipped, &err) < 0)
        log_warn("slack: files of event %s: %s", m->event_id, err.msg);
    if (!allowed || cmd || (!*m->text && !files)) {
        int seen = core_event_once(sv->core, m->event_id, m->dedupe_key, &err);
        if (seen != 0) {
            if (seen < 0) log_warn("slack: event %s: %s", m->event_id, err.msg);
            return;
        }
        if (!allowed) {
            log_info("slack: %s in %s is not on the allowlist; refused", m->user, m->channel);
            notice_async(sv, m->thread_key,
                         "Sorry, I am not available to you here. Ask the team that runs me "
                         "to add you (ALLOWED_USER_IDS / ALLOWED_CHANNEL_IDS).");
        } else if (cmd) {
            run_command(sv, m, cmd);
        } else {
            notice_async(sv, m->thread_key, "Hi! Tell me what to do, here in this thread.");
            if (skipped.n) skipped_notice(sv, m->thread_key, &skipped);
        }
        return;
    }
    int retry_s = 0; /* a redelivered or twin event was counted the first time */
    if (!core_event_known(sv->core, m->event_id, m->dedupe_key) &&
        core_rate_take(sv->core, m->user, &retry_s, &err) == 1) {
        rate_refuse(sv, m, retry_s);
        return;
    }
    int rc = core_submit_event(sv->core, m->event_id, m->dedupe_key, m->thread_key, m->user,
                               m->text, m->dedupe_key, files, &err);
    if (rc < 0)
        log_error("slack: event %s not stored: %s", m->event_id, err.msg);
    else if (rc == 1)
        log_debug("slack: event %s seen before", m->event_id);
    else if (skipped.n) /* once, for the message that was stored */
        skipped_notice(sv, m->thread_key, &skipped);
}

/* `/janebot status|cancel|help`: answered in the ack, visible to the caller only. */
static json_t *handle_slash(struct serve *sv, const json_t *p)
{
    const char *user = json_string_value(json_object_get(p, "user_id"));
    const char *channel = json_string_value(json_object_get(p, "channel_id"));
    const char *text = json_string_value(json_object_get(p, "text"));
    char word[32] = "", prefix[64], out[512];
    if (text) sscanf(text, " %31s", word);
    if (!user || !channel || strlen(channel) > 40) return NULL;
    snprintf(prefix, sizeof prefix, "%s:", channel);
    if (!core_allowed(sv->core, user, channel)) {
        log_info("slack: /janebot from %s in %s: not on the allowlist", user, channel);
        snprintf(out, sizeof out, "Sorry, you are not allowed to use janebot here.");
    } else if (!strcmp(word, "status")) {
        int all = 0, here = 0;
        core_running_count(sv->core, prefix, &all, &here);
        snprintf(out, sizeof out, "janebot is up. %d turn%s running, %d in this channel.", all,
                 all == 1 ? "" : "s", here);
    } else if (!strcmp(word, "cancel") || !strcmp(word, "stop")) {
        int n = core_abort_user(sv->core, prefix, user);
        snprintf(out, sizeof out,
                 n ? "Stopping %d turn%s of yours in this channel."
                   : "You have no turn running in this channel.",
                 n, n == 1 ? "" : "s");
    } else {
        snprintf(out, sizeof out,
                 "%s%s%s`/janebot status`: what janebot is running. `/janebot cancel`: stop your "
                 "turns in this channel. To ask the agent, mention @janebot or send it a DM.",
                 *word && strcmp(word, "help") ? "Unknown command `" : "",
                 *word && strcmp(word, "help") ? word : "",
                 *word && strcmp(word, "help") ? "`. " : "");
    }
    return json_pack("{s:s, s:s}", "response_type", "ephemeral", "text", out);
}

static json_t *on_envelope(void *ud, const struct slack_envelope *env)
{
    struct serve *sv = ud;
    if (env->type == SLACK_ENV_SLASH_COMMANDS && env->payload)
        return env->accepts_response_payload ? handle_slash(sv, env->payload) : NULL;
    if (env->type != SLACK_ENV_EVENTS_API || !env->payload) return NULL;
    struct slack_message m;
    const char *why = NULL;
    struct jb_err err = {0};
    int rc = slack_event_interpret(env->payload, sv->bot_user, sv->bot_id, &m, &why, &err);
    if (rc < 0)
        log_warn("slack: malformed event (acknowledged): %s", err.msg);
    else if (rc == 0)
        log_debug("slack: event ignored: %s", why ? why : "-");
    else {
        handle_message(sv, &m);
        slack_message_release(&m);
    }
    return NULL;
}

/* Daily: sandboxes idle longer than JANEBOT_SANDBOX_IDLE_DAYS go (0 = never). */
static void *gc_main(void *p)
{
    const struct jb_config *cfg = p;
    for (;;) {
        struct jb_err err = {0};
        int n = core_sandbox_gc(cfg, (int64_t)cfg->sandbox_idle_days * 86400, &err);
        if (n < 0)
            log_warn("gc: %s", err.msg);
        else if (n > 0)
            log_info("gc: removed %d sandbox(es) idle for more than %d days", n,
                     cfg->sandbox_idle_days);
        sleep(86400);
    }
    return NULL;
}

static int serve_start(struct serve *sv, struct jb_err *err)
{
    struct slack_web_opts wo = {.api_url = sv->cfg->slack_api_url,
                                .bot_token = sv->cfg->slack_bot_token,
                                .app_token = sv->cfg->slack_app_token};
    if (slack_web_new(&wo, &sv->web, err) < 0) return -1;
    if (slack_auth_test(sv->web, &sv->bot_user, &sv->bot_id, err) < 0)
        return jb_err_prefix(err, "cannot sign in to Slack with SLACK_BOT_TOKEN");
    log_info("slack: signed in as <@%s>", sv->bot_user);
    if (!(sv->fe = frontend_slack_new(sv->web, sv->cfg, err))) return -1;
    struct core_opts co = {.merge = 1, .debounce_ms = sv->cfg->debounce_ms};
    if (core_new(sv->cfg, sv->fe, &co, &sv->core, err) < 0) return -1;
    /* Slack thread keys start with the channel id: C…, G… (private), D… (DMs). */
    int resumed = 0;
    for (const char *p = "CGD"; *p; p++) {
        char prefix[2] = {*p, 0};
        int n = core_resume_pending(sv->core, prefix, 1, err);
        if (n < 0) return -1;
        resumed += n;
    }
    if (resumed) log_info("answering %d message(s) accepted before the last stop", resumed);
    return 0;
}

int slack_serve(const struct jb_config *cfg)
{
    struct serve sv = {.cfg = cfg};
    struct jb_err err = {0};
    if (config_check_slack(cfg, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        return 1;
    }
    /* Signals are taken by sigwait() below, never by a handler in another thread. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP); /* reload the configuration file */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct slack_socket *sock = NULL;
    int rc = 1;
    if (serve_start(&sv, &err) < 0 ||
        slack_socket_start(sv.web, on_envelope, &sv, &sock, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        goto out;
    }
    pthread_t gc;
    if (cfg->sandbox_idle_days > 0 && pthread_create(&gc, NULL, gc_main, (void *)cfg) == 0)
        pthread_detach(gc);
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP) {
        struct jb_err e = {0};
        if (core_policy_reload(sv.core, &e) < 0)
            log_error("configuration not reloaded, the previous one stays in force: %s", e.msg);
        else
            log_info("configuration reloaded (SIGHUP)");
    }
    log_info("stopping (signal %d); turns in flight run again at the next start", sig);
    slack_socket_stop(sock);
    rc = 0;
    /* Workers may be inside long turns: leave without waiting for them. Their messages
     * are still pending in the inbox, and their sandboxes die with this process. */
    fflush(NULL);
    _exit(rc);
out:
    core_free(sv.core);
    frontend_slack_free(sv.fe);
    slack_web_free(sv.web);
    free(sv.bot_user);
    free(sv.bot_id);
    return rc;
}
