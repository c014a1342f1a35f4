/* tests/unit/test_policy.c -- the token bucket (time injected) and its store, the config
 * file (good and bad), environment over file, channel lookup, MCP filtering, the tool
 * profiles in each agent's switches, and the per-user cap of the lanes (L5). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/adapters.h"
#include "core/core.h"
#include "core/policy.h"
#include "store/store.h"

static char dir[PATH_MAX];
static struct jb_config cfg;
static struct jb_err err;

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL);
    char tmpl[] = "/tmp/jb-policy-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, dir));
    cfg = (struct jb_config){.state_dir = dir};
    err = (struct jb_err){0};
    unsetenv("JANEBOT_CONFIG");
    unsetenv("RATE_LIMIT_PER_MINUTE");
    unsetenv("JANEBOT_MAX_TURNS_PER_USER");
    unsetenv("MCP_SERVERS");
}

static void teardown(void)
{
    struct jb_err e = {0};
    jb_rm_rf(dir, &e);
}

TestSuite(policy, .init = setup, .fini = teardown);

static const char *write_cfg(const char *name, const char *text)
{
    static char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct jb_err e = {0};
    cr_assert_eq(jb_write_file(path, text, strlen(text), 0600, &e), 0, "%s", e.msg);
    return path;
}

/* ---- token bucket ---- */

Test(policy, bucket_starts_full_then_refuses_with_retry)
{
    struct rate_bucket b = {0};
    int retry = -1;
    int64_t t0 = 1700000000000;
    cr_assert_eq(rate_bucket_take(&b, 0, 3, t0, &retry), 0);
    cr_assert_eq(rate_bucket_take(&b, 1, 3, t0, &retry), 0);
    cr_assert_eq(rate_bucket_take(&b, 1, 3, t0 + 10, &retry), 0);
    cr_assert_eq(rate_bucket_take(&b, 1, 3, t0 + 10, &retry), 1);
    cr_assert(retry >= 19 && retry <= 20, "retry %d", retry); /* one token per 20 s */
    cr_assert_eq(rate_bucket_take(&b, 1, 3, t0 + 20010, &retry), 0);
    cr_assert_eq(rate_bucket_take(&b, 1, 3, t0 + 20010, &retry), 1);
}

Test(policy, bucket_refills_to_the_limit_only)
{
    struct rate_bucket b = {0};
    int retry = 0, n = 0;
    rate_bucket_take(&b, 0, 2, 0, &retry);
    while (rate_bucket_take(&b, 1, 2, 3600000, &retry) == 0)
        n++;
    cr_assert_eq(n, 2, "an hour later the burst is the limit, got %d", n);
}

Test(policy, bucket_clock_backwards_refills_nothing)
{
    struct rate_bucket b = {0};
    int retry = 0;
    rate_bucket_take(&b, 0, 1, 100000, &retry);
    cr_assert_eq(rate_bucket_take(&b, 1, 1, 50000, &retry), 1);
    cr_assert_geq(retry, 1);
}

Test(policy, bucket_limit_zero_is_off)
{
    struct rate_bucket b = {0};
    int retry = 0;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(rate_bucket_take(&b, i > 0, 0, 0, &retry), 0);
}

static int take_at(void *ud, int found, double *tokens, int64_t *updated)
{
    int64_t now = *(int64_t *)ud;
    struct rate_bucket b = {*tokens, *updated};
    int retry = 0;
    int rc = rate_bucket_take(&b, found, 2, now, &retry);
    *tokens = b.tokens, *updated = b.updated_ms;
    return rc;
}

Test(policy, bucket_survives_reopening_the_store)
{
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/j.db", dir);
    struct store *st = NULL;
    int64_t now = 1000000;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_bucket_update(st, "user:U1", take_at, &now, &err), 0);
    cr_assert_eq(store_bucket_update(st, "user:U1", take_at, &now, &err), 0);
    cr_assert_eq(store_bucket_update(st, "user:U1", take_at, &now, &err), 1);
    cr_assert_eq(store_bucket_update(st, "user:U2", take_at, &now, &err), 0, "per user");
    store_close(st);
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    now += 1000;
    cr_assert_eq(store_bucket_update(st, "user:U1", take_at, &now, &err), 1, "still empty");
    now += 30000;
    cr_assert_eq(store_bucket_update(st, "user:U1", take_at, &now, &err), 0, "refilled");
    store_close(st);
}

/* ---- config file ---- */

static const char GOOD[] =
    "# janebot\n"
    "rate_limit_per_minute: 5\n"
    "max_turns_per_user: 1\n"
    "allowed_users: [U1, U2]\n"
    "mcp_servers:\n"
    "  github: {command: gh-mcp, args: [stdio], env: {GH_TOKEN: ghp_SECRET1}}\n"
    "  linear:\n"
    "    url: https://mcp.linear.app/sse\n"
    "    headers: {Authorization: Bearer LIN_SECRET2}\n"
    "    timeout: 30\n"
    "channels:\n"
    "  default: {tools: full}\n"
    "  C0ENG: {mcp_servers: [github, linear], tools: no-shell}\n"
    "  C0PROD:\n"
    "    mcp_servers: [linear]\n"
    "    tools: [Read, Grep, find_thread]\n";

static struct policy *load_ok(void)
{
    struct policy *p = NULL;
    cr_assert_eq(policy_load(&cfg, &p, &err), 0, "%s", err.msg);
    return p;
}

Test(policy, defaults_without_file_or_environment)
{
    struct policy *p = load_ok();
    cr_assert_null(p->path);
    cr_assert_eq(p->rate_per_minute, 10);
    cr_assert_eq(p->max_turns_per_user, 2);
    cr_assert_eq(p->nch, 1);
    cr_assert_str_eq(policy_channel_for(p, "C1:1.2")->agent.mcp_json, "{}");
    cr_assert_eq(policy_channel_for(p, "C1:1.2")->agent.tools, AGENT_TOOLS_FULL);
    policy_unref(p);
}

Test(policy, good_file_in_the_state_dir)
{
    write_cfg("janebot.yaml", GOOD);
    struct policy *p = load_ok();
    cr_assert_not_null(p->path);
    cr_assert_eq(p->rate_per_minute, 5);
    cr_assert_eq(p->max_turns_per_user, 1);
    cr_assert_eq(p->allowed_users.n, 2);
    cr_assert(policy_allowed(p, "U2", "C9"));
    cr_assert_not(policy_allowed(p, "U3", "C9"));
    cr_assert_eq(p->nch, 3);
    json_t *lin = json_object_get(p->mcp_servers, "linear");
    cr_assert_eq(json_integer_value(json_object_get(lin, "timeout")), 30, "plain ints stay ints");
    policy_unref(p);
}

Test(policy, channel_of_a_thread_key)
{
    write_cfg("janebot.yaml", GOOD);
    struct policy *p = load_ok();
    cr_assert_str_eq(policy_channel_for(p, "C0ENG:1700.1")->id, "C0ENG");
    cr_assert_str_eq(policy_channel_for(p, "C0PROD:1700.1")->id, "C0PROD");
    cr_assert_str_eq(policy_channel_for(p, "C0EN:1700.1")->id, "default");
    cr_assert_str_eq(policy_channel_for(p, "D042:1700.1")->id, "default", "DMs: default");
    cr_assert_str_eq(policy_channel_for(p, "chat:C0ENG")->id, "default");
    cr_assert_str_eq(policy_channel_for(p, "nocolon")->id, "default");
    policy_unref(p);
}

Test(policy, mcp_servers_filtered_per_channel)
{
    write_cfg("janebot.yaml", GOOD);
    struct policy *p = load_ok();
    const char *eng = policy_channel_for(p, "C0ENG:1")->agent.mcp_json;
    const char *prod = policy_channel_for(p, "C0PROD:1")->agent.mcp_json;
    const char *def = policy_channel_for(p, "C9:1")->agent.mcp_json;
    cr_assert_not_null(strstr(eng, "ghp_SECRET1"));
    cr_assert_not_null(strstr(eng, "LIN_SECRET2"));
    cr_assert_null(strstr(prod, "ghp_SECRET1"), "another channel's credential: %s", prod);
    cr_assert_not_null(strstr(prod, "mcp.linear.app"));
    cr_assert_str_eq(def, "{}");
    policy_unref(p);
}

Test(policy, environment_wins_over_the_file)
{
    const char *path = write_cfg("other.yaml", GOOD);
    setenv("JANEBOT_CONFIG", path, 1);
    setenv("RATE_LIMIT_PER_MINUTE", "0", 1);
    setenv("JANEBOT_MAX_TURNS_PER_USER", "7", 1);
    setenv("MCP_SERVERS", "{\"github\":{\"command\":\"env-gh\"},\"linear\":{\"url\":\"u\"}}", 1);
    struct policy *p = load_ok();
    cr_assert_eq(p->rate_per_minute, 0);
    cr_assert_eq(p->max_turns_per_user, 7);
    cr_assert_str_eq(p->mcp_from, "MCP_SERVERS");
    cr_assert_not_null(strstr(policy_channel_for(p, "C0ENG:1")->agent.mcp_json, "env-gh"));
    policy_unref(p);
}

static void load_bad(const char *text, const char *const *needles)
{
    const char *path = write_cfg("bad.yaml", text);
    setenv("JANEBOT_CONFIG", path, 1);
    struct policy *p = NULL;
    cr_assert_eq(policy_load(&cfg, &p, &err), -1, "accepted: %s", text);
    cr_assert_null(p);
    cr_assert_eq(err.code, JB_ECONFIG);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    for (; *needles; needles++)
        cr_assert_not_null(strstr(err.msg, *needles), "want %s in: %s", *needles, err.msg);
}

Test(policy, bad_files_name_file_line_and_key)
{
    load_bad("rate_limit_per_minute: 5\nrate: 3\n", (const char *[]){":2:", "rate", NULL});
    load_bad("rate_limit_per_minute: -1\n",
             (const char *[]){":1:", "rate_limit_per_minute", "-1", NULL});
    load_bad("max_turns_per_user: two\n", (const char *[]){":1:", "max_turns_per_user", NULL});
    load_bad("channels:\n  C1: {tools: bash}\n",
             (const char *[]){":2:", "channels.C1.tools", NULL});
    load_bad("channels:\n  C1:\n    color: red\n",
             (const char *[]){":3:", "channels.C1.color", "unknown", NULL});
    load_bad("channels:\n  C1:\n    agent: gpt\n",
             (const char *[]){":3:", "channels.C1.agent", "amp, claude or command", NULL});
    load_bad("channels:\n  C1: {egress: [\"bad name\"]}\n",
             (const char *[]){":2:", "channels.C1.egress", NULL});
    load_bad("channels:\n  C1: {mcp_servers: [nope]}\n",
             (const char *[]){":2:", "channels.C1.mcp_servers", "nope", NULL});
    load_bad("channels:\n  C-1: {tools: full}\n", (const char *[]){":2:", "channels", NULL});
    load_bad("mcp_servers:\n  gh: [1, 2]\n", (const char *[]){":2:", "mcp_servers", NULL});
    load_bad("allowed_users: U1\n", (const char *[]){":1:", "allowed_users", NULL});
    load_bad("rate_limit_per_minute: 1\nrate_limit_per_minute: 2\n",
             (const char *[]){":2:", "twice", NULL});
    load_bad("a: [1\n", (const char *[]){"not valid YAML", NULL});
    load_bad("- 1\n- 2\n", (const char *[]){":1:", "mapping", NULL});
}

Test(policy, missing_JANEBOT_CONFIG_names_the_variable)
{
    setenv("JANEBOT_CONFIG", "/nonexistent/janebot.yaml", 1);
    struct policy *p = NULL;
    cr_assert_eq(policy_load(&cfg, &p, &err), -1);
    cr_assert_not_null(strstr(err.msg, "JANEBOT_CONFIG"), "%s", err.msg);
}

Test(policy, bad_environment_names_the_variable)
{
    const char *vars[] = {"RATE_LIMIT_PER_MINUTE", "JANEBOT_MAX_TURNS_PER_USER"};
    const char *vals[] = {"-1", "ten", "1.5", " 3"};
    for (size_t i = 0; i < JB_ARRAY_LEN(vars); i++)
        for (size_t j = 0; j < JB_ARRAY_LEN(vals); j++) {
            setenv(vars[i], vals[j], 1);
            struct policy *p = NULL;
            cr_assert_eq(policy_load(&cfg, &p, &err), -1, "%s=%s", vars[i], vals[j]);
            cr_assert_not_null(strstr(err.msg, vars[i]), "%s", err.msg);
            unsetenv(vars[i]);
        }
    setenv("MCP_SERVERS", "{\"gh\": {\"env\": {\"T\": \"hush-hush-secret\"}}, \"x\": 1}", 1);
    struct policy *p = NULL;
    cr_assert_eq(policy_load(&cfg, &p, &err), -1);
    cr_assert_not_null(strstr(err.msg, "MCP_SERVERS"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "hush-hush-secret"), "the value is never shown");
}

Test(policy, config_check_masks_secrets)
{
    write_cfg("janebot.yaml", GOOD);
    struct policy *p = load_ok();
    cfg.agent = "amp", cfg.sandbox = "local";
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    policy_print(p, &cfg, out);
    fclose(out);
    cr_assert_null(strstr(text, "ghp_SECRET1"), "%s", text);
    cr_assert_null(strstr(text, "LIN_SECRET2"), "%s", text);
    cr_assert_not_null(strstr(text, "set (hidden)"), "%s", text);
    cr_assert_not_null(strstr(text, "C0ENG: tools no-shell; mcp_servers github, linear"), "%s",
                       text);
    free(text);
    policy_unref(p);
}

/* ---- tool profiles and MCP servers in each agent's switches ---- */

static struct agent_cmd cmd;

static void prep(const char *agent, const struct agent_policy *pol)
{
    char bindir[PATH_MAX + 8], p[PATH_MAX + 32];
    snprintf(bindir, sizeof bindir, "%s/bin", dir);
    mkdir(bindir, 0755);
    const char *names[] = {"amp", "claude", "fake-agent"};
    for (size_t i = 0; i < JB_ARRAY_LEN(names); i++) {
        snprintf(p, sizeof p, "%s/%s", bindir, names[i]);
        cr_assert_eq(jb_write_file(p, "#!/bin/sh\n", 10, 0755, &err), 0);
        chmod(p, 0755);
    }
    static char cmdpath[PATH_MAX + 32], pathenv[PATH_MAX + 8];
    snprintf(cmdpath, sizeof cmdpath, "%s/fake-agent", bindir);
    snprintf(pathenv, sizeof pathenv, "%s", bindir);
    cfg.path_env = pathenv, cfg.agent_cmd = cmdpath;
    struct agent_opts ao;
    core_agent_opts(&cfg, &ao);
    struct agent_turn t = {.policy = pol,
                           .opts = &ao,
                           .thread_key = "C1:1",
                           .user = "U1",
                           .prompt = "hi",
                           .run_dir = "/run/jb"};
    agent_cmd_release(&cmd);
    cr_assert_eq(agent_ops_find(agent)->prepare(&t, &cmd, &err), 0, "%s", err.msg);
}

static const char *file_of(const char *suffix)
{
    for (size_t i = 0; i < cmd.nfiles; i++) {
        size_t a = strlen(cmd.files[i].path), b = strlen(suffix);
        if (a >= b && !strcmp(cmd.files[i].path + a - b, suffix)) return cmd.files[i].data;
    }
    return NULL;
}

static const char *arg_after(const char *flag)
{
    for (size_t i = 0; i + 1 < cmd.argv.n; i++)
        if (!strcmp(cmd.argv.v[i], flag)) return cmd.argv.v[i + 1];
    return NULL;
}

static int has_arg(const char *a)
{
    for (size_t i = 0; i < cmd.argv.n; i++)
        if (!strcmp(cmd.argv.v[i], a)) return 1;
    return 0;
}

static json_t *amp_settings(void)
{
    const char *s = file_of("amp-settings.json");
    cr_assert_not_null(s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    return o;
}

static int json_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!strcmp(json_string_value(v), s)) return 1;
    }
    return 0;
}

static const char MCP[] = "{\"gh\":{\"command\":\"gh-mcp\"}}";

Test(policy, amp_full_no_shell_and_allow)
{
    struct agent_policy pol = {.mcp_json = MCP, .tools = AGENT_TOOLS_FULL};
    prep("amp", &pol);
    json_t *o = amp_settings();
    cr_assert(json_has(json_object_get(o, "amp.tools.disable"), "find_thread"));
    cr_assert(json_has(json_object_get(o, "amp.tools.disable"), "read_thread"));
    cr_assert_null(json_object_get(o, "amp.tools.enable"));
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(o, "amp.mcpServers"), "gh"), "command")),
                     "gh-mcp");
    json_decref(o);

    pol.tools = AGENT_TOOLS_NO_SHELL;
    prep("amp", &pol);
    o = amp_settings();
    cr_assert(json_has(json_object_get(o, "amp.tools.disable"), "Bash"));
    cr_assert(json_has(json_object_get(o, "amp.tools.disable"), "read_thread"));
    cr_assert(json_has(json_object_get(o, "amp.tools.enable"), "edit_file"));
    cr_assert_not(json_has(json_object_get(o, "amp.tools.enable"), "Bash"));
    json_decref(o);

    const char *allow[] = {"Read", "find_thread", NULL};
    pol.tools = AGENT_TOOLS_ALLOW, pol.allow = allow;
    prep("amp", &pol);
    o = amp_settings();
    cr_assert_eq(json_array_size(json_object_get(o, "amp.tools.enable")), 1,
                 "cross-thread "
                 "tools stay off");
    cr_assert(json_has(json_object_get(o, "amp.tools.disable"), "find_thread"));
    json_decref(o);
    agent_cmd_release(&cmd);
}

Test(policy, claude_strict_mcp_and_tool_flags)
{
    struct agent_policy pol = {.mcp_json = MCP, .tools = AGENT_TOOLS_FULL};
    prep("claude", &pol);
    cr_assert_str_eq(arg_after("--mcp-config"), "/run/jb/mcp.json");
    cr_assert(has_arg("--strict-mcp-config"));
    cr_assert_str_eq(file_of("mcp.json"), "{\"mcpServers\":{\"gh\":{\"command\":\"gh-mcp\"}}}");
    cr_assert_null(arg_after("--disallowedTools"));

    pol.tools = AGENT_TOOLS_NO_SHELL;
    prep("claude", &pol);
    cr_assert_not_null(strstr(arg_after("--disallowedTools"), "Bash"));
    cr_assert_null(strstr(arg_after("--allowedTools"), "Bash"));

    const char *allow[] = {"Read", "Grep", NULL};
    pol.tools = AGENT_TOOLS_ALLOW, pol.allow = allow;
    prep("claude", &pol);
    cr_assert_str_eq(arg_after("--allowedTools"), "Read,Grep");
    const char *denied = arg_after("--disallowedTools");
    cr_assert_not_null(strstr(denied, "Bash"));
    cr_assert_null(strstr(denied, "Read"), "%s", denied);

    prep("claude", NULL); /* no policy: no MCP flags at all */
    cr_assert_not(has_arg("--strict-mcp-config"));
    cr_assert(has_arg("--dangerously-skip-permissions"));
    cr_assert_not(cmd.asks_permission);
    agent_cmd_release(&cmd);
}

Test(policy, claude_with_approvals_asks_on_stdio_and_allows_nothing_unasked)
{
    const char *allow[] = {"Read", "Bash", NULL};
    struct agent_policy pol = {
        .mcp_json = MCP, .tools = AGENT_TOOLS_ALLOW, .allow = allow, .ask_permission = 1};
    prep("claude", &pol);
    cr_assert_str_eq(arg_after("--permission-prompt-tool"), "stdio");
    cr_assert_not(has_arg("--dangerously-skip-permissions"));
    cr_assert(cmd.asks_permission && cmd.live_input);
    cr_assert_null(arg_after("--allowedTools"), "an allowed tool would run unasked");
    const char *denied = arg_after("--disallowedTools");
    cr_assert_not_null(strstr(denied, "Write"), "%s", denied);
    cr_assert(strncmp(denied, "Bash,", 5) && !strstr(denied, ",Bash,"), "%s", denied);
    cr_assert(strstr(denied, ",AskUserQuestion"), "janebot cannot answer it: %s", denied);
    cr_assert_null(arg_after("--settings"), "no approve list given: no hook");
    pol.tools = AGENT_TOOLS_FULL;
    prep("claude", &pol);
    cr_assert_str_eq(arg_after("--disallowedTools"), "AskUserQuestion");
    agent_cmd_release(&cmd);
}

/* The PreToolUse hook that makes Claude Code ask about a listed tool it would run unasked. */
static const char *hook_matcher(json_t **keep)
{
    const char *settings = file_of("claude-settings.json");
    cr_assert_not_null(settings);
    cr_assert_str_eq(arg_after("--settings"), "/run/jb/claude-settings.json");
    json_error_t je;
    *keep = json_loads(settings, 0, &je);
    json_t *entry =
        json_array_get(json_object_get(json_object_get(*keep, "hooks"), "PreToolUse"), 0);
    json_t *hook = json_array_get(json_object_get(entry, "hooks"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(hook, "type")), "command");
    cr_assert(strstr(json_string_value(json_object_get(hook, "command")),
                     "\"permissionDecision\":\"ask\""),
              "%s", settings);
    return json_string_value(json_object_get(entry, "matcher"));
}

Test(policy, claude_with_approvals_gets_a_hook_asking_about_the_listed_tools)
{
    const char *approve[] = {"Bash", "edit", "mcp:gh", NULL};
    struct agent_policy pol = {
        .mcp_json = MCP, .tools = AGENT_TOOLS_FULL, .ask_permission = 1, .approve = approve};
    prep("claude", &pol);
    json_t *keep = NULL;
    const char *m = hook_matcher(&keep);
    cr_assert(!strncmp(m, "^([Bb][Aa][Ss][Hh]|[Ee][Dd][Ii][Tt]|[Mm][Uu][Ll][Tt][Ii]", 53), "%s", m);
    cr_assert(strstr(m, "|[Ww][Rr][Ii][Tt][Ee]|"), "%s", m);
    cr_assert(strstr(m, "|mcp__gh__.*)$"), "%s", m);
    json_decref(keep);
    const char *all[] = {"*", "Bash", NULL};
    pol.approve = all;
    prep("claude", &pol);
    cr_assert_str_eq(hook_matcher(&keep), "*");
    json_decref(keep);
    agent_cmd_release(&cmd);
}

Test(policy, command_agent_env)
{
    struct agent_policy pol = {.mcp_json = "{}", .tools = AGENT_TOOLS_NO_SHELL};
    prep("command", &pol);
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_MCP_CONFIG"), "/run/jb/mcp.json");
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_TOOL_PROFILE"), "no-shell");
    cr_assert_str_eq(file_of("mcp.json"), "{\"mcpServers\":{}}");
    const char *allow[] = {"Read", "Grep", NULL};
    pol.tools = AGENT_TOOLS_ALLOW, pol.allow = allow;
    prep("command", &pol);
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_TOOL_PROFILE"), "allow:Read,Grep");
    agent_cmd_release(&cmd);
}

/* ---- lanes: at most max_per_user turns of one user at once (L5) ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int running_a, max_a, ran;

static void slow_turn(void *ud, int worker, const struct lane_msg *msgs, size_t n)
{
    (void)ud, (void)worker, (void)n;
    int a = !strcmp(msgs[0].user_id, "A");
    pthread_mutex_lock(&mu);
    running_a += a;
    if (running_a > max_a) max_a = running_a;
    pthread_mutex_unlock(&mu);
    nanosleep(&(struct timespec){0, 30 * 1000000}, NULL);
    pthread_mutex_lock(&mu);
    running_a -= a;
    ran++;
    pthread_mutex_unlock(&mu);
}

Test(policy, lanes_cap_turns_per_user_without_dropping)
{
    struct lanes *l = NULL;
    struct lanes_opts o = {.workers = 4, .max_per_user = 1};
    cr_assert_eq(lanes_new(&o, slow_turn, NULL, &l, &err), 0);
    char key[32];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "C1:%d", i);
        cr_assert_eq(lanes_enqueue(l, 0, key, i == 3 ? "B" : "A", "x", NULL, NULL, &err), 0);
    }
    lanes_drain(l);
    cr_assert_eq(ran, 6);
    cr_assert_eq(max_a, 1, "user A ran %d turns at once", max_a);
    lanes_set_max_per_user(l, 3);
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "C2:%d", i);
        lanes_enqueue(l, 0, key, "A", "x", NULL, NULL, &err);
    }
    lanes_drain(l);
    cr_assert_eq(ran, 12);
    cr_assert(max_a > 1 && max_a <= 3, "max %d", max_a);
    lanes_free(l);
}

Test(policy, prices_from_the_file_and_the_environment)
{
    const char *path =
        write_cfg("prices.yaml", "prices:\n"
                                 "  claude-sonnet-4*: {input: 3, output: 15, cache_write: 3.75,"
                                 " cache_read: 0.3}\n"
                                 "  gpt-5: \"1.25:10\"\n");
    setenv("JANEBOT_CONFIG", path, 1);
    struct policy *p = load_ok();
    cr_assert_eq(p->prices.n, 2);
    const struct price *pr = prices_find(&p->prices, "claude-sonnet-4-5");
    cr_assert_not_null(pr);
    cr_expect(pr->in == 3 && pr->out == 15 && pr->cache_write == 3.75 && pr->cache_read == 0.3);
    pr = prices_find(&p->prices, "gpt-5");
    cr_expect(pr && pr->cache_read == 1.25, "cache prices default to the input price");
    policy_unref(p);
    /* The environment replaces the file's list as a whole. */
    free(cfg.prices);
    cfg.prices = strdup("gpt-5=2:20");
    p = load_ok();
    cr_expect_eq(p->prices.n, 1);
    cr_expect_null(prices_find(&p->prices, "claude-sonnet-4-5"));
    cr_expect_eq(prices_find(&p->prices, "gpt-5")->in, 2);
    policy_unref(p);
    free(cfg.prices);
    cfg.prices = NULL;
    load_bad("prices:\n  m: {input: 1}\n", (const char *[]){":2:", "prices", "m", NULL});
    load_bad("prices:\n  m: \"1:x\"\n", (const char *[]){":2:", "prices", "IN:OUT", NULL});
    load_bad("prices: [1]\n", (const char *[]){":1:", "prices", NULL});
}
