/* agent/amp.c -- the Amp CLI: `amp ... -x --stream-json`, continuing a thread by its id.
 *
 * amp --dangerously-allow-all --settings-file <run_dir>/amp-settings.json
 *     [threads continue <thread id>] -x --stream-json --stream-json-input
 * The prompt is the first user line on stdin; a message sent in the thread while it works
 * is another, with "steer": true.
 * Global flags go before the subcommand. The settings file turns off updates and
 * notifications and the tools that read other threads of the account. */
#include <string.h>

#include <jansson.h>

#include "agent/adapters.h"

#define SETTINGS_NAME "amp-settings.json"
#define MAX_THREAD_ID 128

/* Thread ids ("T-...") go to argv: only a plain token is passed, anything else is dropped. */
static int plain_token(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_THREAD_ID || s[0] == '-') return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* The settings JSON, with the channel's tools and MCP servers; caller frees. NULL when
 * out of memory. */
static char *settings_json(const struct agent_turn *t)
{
    json_t *o = json_pack("{s:b,s:s,s:b}", "amp.dangerouslyAllowAll", 1, "amp.updates.mode",
                          "disabled", "amp.notifications.enabled", 0);
    char *s = o && agent_amp_policy(t, o, NULL) == 0 ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)
                                                     : NULL;
    json_decref(o);
    return s;
}

static int add_settings(const struct agent_turn *t, struct agent_cmd *c, const char *path,
                        struct jb_err *err)
{
    jb_autofree char *json = settings_json(t);
    if (!json) return jb_err_set(err, JB_ENOMEM, "amp settings");
    return agent_cmd_add_file(c, path, json, strlen(json), err);
}

static int amp_prepare(const struct agent_turn *t, struct agent_cmd *out, struct jb_err *err)
{
    if (!t->run_dir || t->run_dir[0] != '/')
        return jb_err_set(err, JB_ECONFIG, "amp needs an absolute run_dir for its settings");
    jb_auto(agent_cmd_releasep) struct agent_cmd c = {0};
    if (agent_cmd_begin(&agent_amp_ops, t, 0, &c, err) < 0) return -1;
    jb_autofree char *settings = NULL;
    if (asprintf(&settings, "%s/%s", t->run_dir, SETTINGS_NAME) < 0)
        return jb_err_set(err, JB_ENOMEM, "amp settings path");
    if (add_settings(t, &c, settings, err) < 0) return -1;
    const char *head[] = {"--dangerously-allow-all", "--settings-file", settings, NULL};
    if (jb_strv_pushv(&c.argv, head, err) < 0) return -1;
    if (t->resume_id && *t->resume_id && !plain_token(t->resume_id))
        log_warn("amp: ignoring a malformed thread id; starting a new thread");
    if (plain_token(t->resume_id)) {
        const char *cont[] = {"threads", "continue", t->resume_id, NULL};
        if (jb_strv_pushv(&c.argv, cont, err) < 0) return -1;
    }
    /* stream-json input: the prompt is the first user line; messages sent in the thread
     * while it works follow as steering lines; stdin closes after the result. */
    const char *tail[] = {"-x", "--stream-json", "--stream-json-input", NULL};
    if (jb_strv_pushv(&c.argv, tail, err) < 0) return -1;
    free(c.stdin_data);
    if (!(c.stdin_data = agent_input_line(t->prompt)))
        return jb_err_set(err, JB_ENOMEM, "prompt line");
    c.live_input = 1;
    c.steer_flag = 1;
    const char *key = t->opts ? t->opts->amp_api_key : NULL;
    if (key && *key && jb_env_set(&c.env, "AMP_API_KEY", key, err) < 0) return -1;
    *out = c;
    c = (struct agent_cmd){0};
    return 0;
}

const struct agent_ops agent_amp_ops = {
    .version = 1,
    .name = "amp",
    .key_var = "AMP_API_KEY",
    .prepare = amp_prepare,
    .bin_name = "amp",
    .install_hint = "npm install -g @ampcode/cli (then check `amp --version`), "
                    "or set JANEBOT_AGENT_BIN",
};
