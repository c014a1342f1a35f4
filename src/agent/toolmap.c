/* agent/toolmap.c -- a channel's policy (its MCP servers and tool profile) in the switches
 * each agent CLI understands. Only the channel's own servers are ever written: the
 * definitions (and credentials) of other channels' servers never reach the sandbox. */
#include <ctype.h>
#include <string.h>

#include <jansson.h>

#include "agent/adapters.h"

#define MCP_FILE      "mcp.json"
#define SETTINGS_FILE "claude-settings.json"

const char *const agent_edit_tools[] = {"Edit",      "MultiEdit",   "Write",       "NotebookEdit",
                                        "edit_file", "create_file", "apply_patch", NULL};

/* Cross-thread tools (Amp): off in every profile (Tier 0 of the security model). */
static const char *const amp_cross_thread[] = {"find_thread", "read_thread", NULL};
/* The seed's "drop Bash entirely" list, in Amp's names; MCP tools stay available. */
static const char *const amp_no_shell[] = {
    "create_file", "edit_file", "Read",          "glob",       "Grep",   "finder", "librarian",
    "oracle",      "mermaid",   "read_web_page", "web_search", "mcp__*", NULL};
static const char *const amp_no_shell_off[] = {"Bash", "undo_edit", "Task", NULL};
/* Claude Code: the same profile in its tool names. */
static const char *const claude_no_shell[] = {"Read", "Edit",     "Write",     "Glob",
                                              "Grep", "WebFetch", "WebSearch", NULL};
static const char *const claude_shell[] = {"Bash", "BashOutput", "KillShell", "Task", NULL};
/* Claude's built-in tools, to refuse those an explicit allow list leaves out. */
static const char *const claude_builtin[] = {
    "Bash",         "BashOutput", "KillShell",    "Edit",     "MultiEdit", "Write", "Read",
    "Glob",         "Grep",       "NotebookEdit", "WebFetch", "WebSearch", "Task",  "TodoWrite",
    "SlashCommand", NULL};

static int listed(const char *const *v, const char *s)
{
    for (; v && *v; v++)
        if (!strcmp(*v, s)) return 1;
    return 0;
}

static int push_names(json_t *arr, const char *const *names, const char *const *skip)
{
    for (; names && *names; names++)
        if (!listed(skip, *names) && json_array_append_new(arr, json_string(*names)) < 0) return -1;
    return 0;
}

int agent_amp_policy(const struct agent_turn *t, json_t *settings, struct jb_err *err)
{
    const struct agent_policy *p = t->policy;
    json_t *disable = json_array(), *enable = NULL, *mcp = NULL;
    int bad = !disable || push_names(disable, amp_cross_thread, NULL) < 0;
    if (p && p->tools == AGENT_TOOLS_NO_SHELL) {
        enable = json_array();
        bad = bad || !enable || push_names(enable, amp_no_shell, NULL) < 0 ||
              push_names(disable, amp_no_shell_off, NULL) < 0;
    } else if (p && p->tools == AGENT_TOOLS_ALLOW) {
        enable = json_array();
        bad = bad || !enable || push_names(enable, p->allow, amp_cross_thread) < 0;
    }
    if (p && p->mcp_json) {
        json_error_t je;
        mcp = json_loads(p->mcp_json, 0, &je);
        bad = bad || !json_is_object(mcp);
    }
    if (bad) {
        json_decref(disable), json_decref(enable), json_decref(mcp);
        return jb_err_set(err, JB_ENOMEM, "amp settings: tools and MCP servers");
    }
    json_object_set_new(settings, "amp.tools.disable", disable);
    if (enable) json_object_set_new(settings, "amp.tools.enable", enable);
    if (mcp) json_object_set_new(settings, "amp.mcpServers", mcp);
    return 0;
}

/* <run_dir>/mcp.json holding {"mcpServers": {...}}; *ret_path is the caller's. */
static int add_mcp_file(const struct agent_turn *t, struct agent_cmd *c, char **ret_path,
                        struct jb_err *err)
{
    if (!t->run_dir || t->run_dir[0] != '/')
        return jb_err_set(err, JB_ECONFIG, "MCP servers need an absolute run_dir");
    jb_autofree char *path = NULL, *text = NULL;
    if (asprintf(&path, "%s/%s", t->run_dir, MCP_FILE) < 0) path = NULL;
    json_error_t je;
    json_t *servers = json_loads(t->policy->mcp_json ? t->policy->mcp_json : "{}", 0, &je);
    json_t *o = servers ? json_pack("{s:o}", "mcpServers", servers) : NULL;
    text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!path || !text) return jb_err_set(err, JB_ENOMEM, "MCP configuration");
    if (agent_cmd_add_file(c, path, text, strlen(text), err) < 0) return -1;
    *ret_path = TAKE_PTR(path);
    return 0;
}

/* names joined by ',', those in skip left out; caller frees. */
static char *join(const char *const *names, const char *const *skip)
{
    struct jb_buf b = JB_BUF_INIT(1u << 16);
    for (; names && *names; names++)
        if (!listed(skip, *names) &&
            jb_buf_appendf(&b, NULL, "%s%s", b.len ? "," : "", *names) < 0) {
            jb_buf_release(&b);
            return NULL;
        }
    return jb_buf_detach(&b, NULL);
}

static int claude_tool_args(const struct agent_policy *p, struct agent_cmd *c, struct jb_err *err)
{
    jb_autofree char *allowed = NULL, *denied = NULL;
    if (p->tools == AGENT_TOOLS_NO_SHELL) {
        allowed = join(claude_no_shell, NULL);
        denied = join(claude_shell, NULL);
    } else if (p->tools == AGENT_TOOLS_ALLOW) {
        allowed = join(p->allow, NULL);
        denied = join(claude_builtin, p->allow);
    } else {
        allowed = strdup(""), denied = strdup("");
    }
    if (!allowed || !denied) return jb_err_set(err, JB_ENOMEM, "claude tool flags");
    /* With a permission prompt Claude Code offers AskUserQuestion, answered through the
     * approver: janebot has no answers to give, so the model asks in its reply instead. */
    if (p->ask_permission) {
        char *more = NULL;
        if (asprintf(&more, "%s%sAskUserQuestion", denied, *denied ? "," : "") < 0)
            return jb_err_set(err, JB_ENOMEM, "claude tool flags");
        free(denied);
        denied = more;
    }
    /* --allowedTools runs those unasked: with approvals, every tool goes by janebot. */
    if (*allowed && !p->ask_permission &&
        jb_strv_pushv(&c->argv, (const char *[]){"--allowedTools", allowed, NULL}, err) < 0)
        return -1;
    if (*denied &&
        jb_strv_pushv(&c->argv, (const char *[]){"--disallowedTools", denied, NULL}, err) < 0)
        return -1;
    return 0;
}

/* name as a regex matching it in any case ("Bash" -> "[Bb][Aa][Ss][Hh]"): janebot compares
 * tool names without regard to case, Claude Code's hook matchers with. */
static int any_case(struct jb_buf *b, const char *name, struct jb_err *err)
{
    for (const char *p = name; *p; p++) {
        int lo = tolower((unsigned char)*p), up = toupper((unsigned char)*p);
        int rc =
            lo == up ? jb_buf_appendf(b, err, "%c", *p) : jb_buf_appendf(b, err, "[%c%c]", up, lo);
        if (rc < 0) return -1;
    }
    return 0;
}

/* A hook matcher (a regex on tool names) for the `approve:` entries, whose names are
 * [A-Za-z0-9_-] (checked when the config is read). Caller frees; NULL with err. */
static char *approve_matcher(const char *const *approve, struct jb_err *err)
{
    struct jb_buf b = JB_BUF_INIT(64u << 10);
    int rc = jb_buf_appendf(&b, err, "^(");
    for (size_t i = 0; rc == 0 && approve[i]; i++) {
        const char *e = approve[i];
        if (!strcmp(e, "*")) {
            jb_buf_release(&b);
            return strdup("*");
        }
        rc = i ? jb_buf_appendf(&b, err, "|") : 0;
        if (rc == 0 && !strcmp(e, "edit"))
            for (size_t k = 0; rc == 0 && agent_edit_tools[k]; k++) {
                if (k) rc = jb_buf_appendf(&b, err, "|");
                if (rc == 0) rc = any_case(&b, agent_edit_tools[k], err);
            }
        else if (rc == 0 && !strncmp(e, "mcp:", 4))
            rc = jb_buf_appendf(&b, err, "mcp__%s__.*", e + 4);
        else if (rc == 0)
            rc = any_case(&b, e, err);
    }
    if (rc == 0) rc = jb_buf_appendf(&b, err, ")$");
    char *out = rc == 0 ? jb_buf_detach(&b, NULL) : NULL;
    jb_buf_release(&b);
    return out;
}

/* Claude Code runs some tools unasked in its default mode (reads in its working directory,
 * `ls`, `git status`): a PreToolUse hook answering "ask" sends every call of a listed tool
 * to janebot's approver all the same. */
static int add_ask_hook(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err)
{
    static const char say_ask[] = "echo '{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\","
                                  "\"permissionDecision\":\"ask\",\"permissionDecisionReason\":"
                                  "\"this channel asks a person first\"}}'";
    jb_autofree char *matcher = approve_matcher(t->policy->approve, err);
    jb_autofree char *path = NULL, *text = NULL;
    if (!matcher) return -1;
    json_t *o = json_pack("{s:{s:[{s:s, s:[{s:s, s:s, s:i}]}]}}", "hooks", "PreToolUse", "matcher",
                          matcher, "hooks", "type", "command", "command", say_ask, "timeout", 10);
    text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!text || asprintf(&path, "%s/%s", t->run_dir, SETTINGS_FILE) < 0)
        return jb_err_set(err, JB_ENOMEM, "claude settings");
    if (agent_cmd_add_file(c, path, text, strlen(text), err) < 0) return -1;
    return jb_strv_pushv(&c->argv, (const char *[]){"--settings", path, NULL}, err);
}

int agent_claude_policy(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err)
{
    if (!t->policy) return 0;
    jb_autofree char *path = NULL;
    if (add_mcp_file(t, c, &path, err) < 0) return -1;
    const char *mcp[] = {"--mcp-config", path, "--strict-mcp-config", NULL};
    if (jb_strv_pushv(&c->argv, mcp, err) < 0) return -1;
    if (t->policy->ask_permission && t->policy->approve && t->policy->approve[0] &&
        add_ask_hook(t, c, err) < 0)
        return -1;
    return claude_tool_args(t->policy, c, err);
}

int agent_command_policy(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err)
{
    const struct agent_policy *p = t->policy;
    if (!p) return 0;
    jb_autofree char *path = NULL, *allow = NULL;
    if (add_mcp_file(t, c, &path, err) < 0 ||
        jb_env_set(&c->env, "JANEBOT_MCP_CONFIG", path, err) < 0)
        return -1;
    const char *profile = p->tools == AGENT_TOOLS_NO_SHELL ? "no-shell" : "full";
    if (p->tools == AGENT_TOOLS_ALLOW) {
        jb_autofree char *names = join(p->allow, NULL);
        if (!names || asprintf(&allow, "allow:%s", names) < 0) {
            allow = NULL;
            return jb_err_set(err, JB_ENOMEM, "tool profile");
        }
        profile = allow;
    }
    return jb_env_set(&c->env, "JANEBOT_TOOL_PROFILE", profile, err);
}
