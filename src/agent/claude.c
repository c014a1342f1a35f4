/* agent/claude.c -- Claude Code: `claude -p --output-format stream-json --verbose
 * --input-format stream-json`: the prompt and later messages as user lines on stdin.
 *
 * janebot picks the session UUID itself (--session-id on the first turn, --resume later),
 * so the id is known before the run and survives a crash before the init line. The
 * environment turns off every request other than the API (telemetry, updates). */
#include <ctype.h>
#include <string.h>

#include "agent/adapters.h"

/* 8-4-4-4-12 hex digits: the only resume ids passed to argv. */
static int uuid_shaped(const char *s)
{
    if (!s || strlen(s) != 36) return 0;
    for (size_t i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return 0;
    }
    return 1;
}

static int session_args(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err)
{
    char id[37];
    const char *flag = "--resume";
    if (uuid_shaped(t->resume_id)) {
        memcpy(id, t->resume_id, sizeof id);
    } else {
        if (t->resume_id && *t->resume_id)
            log_warn("claude: ignoring a malformed session id; starting anew");
        if (jb_uuid_v4(id, err) < 0) return -1;
        flag = "--session-id";
    }
    if (!(c->session_id = strdup(id))) return jb_err_set(err, JB_ENOMEM, "session id");
    const char *args[] = {flag, id, NULL};
    return jb_strv_pushv(&c->argv, args, err);
}

static int claude_env(const struct agent_opts *o, struct jb_strv *env, struct jb_err *err)
{
    static const char *const quiet[] = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                                        "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER",
                                        "DISABLE_ERROR_REPORTING"};
    const char *key = o ? o->anthropic_api_key : NULL;
    if (key && *key && jb_env_set(env, "ANTHROPIC_API_KEY", key, err) < 0) return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(quiet); i++)
        if (jb_env_set(env, quiet[i], "1", err) < 0) return -1;
    return 0;
}

static int claude_prepare(const struct agent_turn *t, struct agent_cmd *out, struct jb_err *err)
{
    jb_auto(agent_cmd_releasep) struct agent_cmd c = {0};
    if (agent_cmd_begin(&agent_claude_ops, t, 0, &c, err) < 0) return -1;
    /* stream-json input: the prompt is the first user line, and messages sent in the thread
     * while it runs follow as more (steering); stdin closes after the result. */
    const char *head[] = {
        "-p", "--output-format", "stream-json", "--verbose", "--input-format", "stream-json", NULL};
    if (jb_strv_pushv(&c.argv, head, err) < 0) return -1;
    /* With approvals it asks on stdout before a tool it would not run unasked and waits
     * for janebot's answer on stdin; without, the sandbox is the boundary. */
    c.asks_permission = t->policy && t->policy->ask_permission;
    const char *ask[] = {"--permission-prompt-tool", "stdio", NULL};
    const char *skip[] = {"--dangerously-skip-permissions", NULL};
    if (jb_strv_pushv(&c.argv, c.asks_permission ? ask : skip, err) < 0) return -1;
    free(c.stdin_data);
    if (!(c.stdin_data = agent_input_line(t->prompt)))
        return jb_err_set(err, JB_ENOMEM, "prompt line");
    c.live_input = 1;
    c.takes_interrupt = 1;
    if (session_args(t, &c, err) < 0) return -1;
    const char *model = t->opts ? t->opts->agent_model : NULL;
    if (model && *model) {
        const char *m[] = {"--model", model, NULL};
        if (jb_strv_pushv(&c.argv, m, err) < 0) return -1;
    }
    jb_autofree char *who = agent_instructions(t);
    if (who) {
        const char *sp[] = {"--append-system-prompt", who, NULL};
        if (jb_strv_pushv(&c.argv, sp, err) < 0) return -1;
    }
    if (agent_claude_policy(t, &c, err) < 0) return -1;
    if (claude_env(t->opts, &c.env, err) < 0) return -1;
    *out = c;
    c = (struct agent_cmd){0};
    return 0;
}

const struct agent_ops agent_claude_ops = {
    .version = 1,
    .name = "claude",
    .key_var = "ANTHROPIC_API_KEY",
    .prepare = claude_prepare,
    .bin_name = "claude",
    .install_hint = "npm install -g @anthropic-ai/claude-code, or set JANEBOT_AGENT_BIN",
};
