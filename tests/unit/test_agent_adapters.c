/* tests/unit/test_agent_adapters.c -- argv, env, files and read-only paths of the amp,
 * claude and command adapters, with fake executables on a temporary PATH. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/adapters.h"

#define PROMPT   "--help; echo PROMPT-MARKER"
#define RUN_DIR  "/run/jb"
#define SETTINGS RUN_DIR "/amp-settings.json"
#define UUID_A   "0b3e2c1d-5f6a-4b7c-8d9e-0123456789ab"

static char root[PATH_MAX];   /* realpath of the temp dir */
static char bindir[PATH_MAX]; /* root/bin: fake amp, claude, amp-custom */
static char emptydir[PATH_MAX];
static struct agent_opts opts;
static struct agent_cmd cmd;
static struct jb_err err;

static void make_exec(const char *path, unsigned mode)
{
    struct jb_err e = {0};
    cr_assert_eq(jb_write_file(path, "#!/bin/sh\nexit 0\n", 17, mode, &e), 0, "%s", e.msg);
    cr_assert_eq(chmod(path, mode), 0);
}

static void pathf(char *out, const char *fmt, const char *a)
{
    int n = snprintf(out, PATH_MAX, fmt, root, a);
    cr_assert(n > 0 && n < PATH_MAX);
}

static void setup(void)
{
    jb_log_init(JB_LOG_ERROR, NULL); /* the warnings below are expected */
    char tmpl[] = "/tmp/jb-agent-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, root));
    pathf(bindir, "%s/%s", "bin");
    pathf(emptydir, "%s/%s", "empty");
    cr_assert_eq(mkdir(bindir, 0755), 0);
    cr_assert_eq(mkdir(emptydir, 0755), 0);
    char p[PATH_MAX];
    const char *names[] = {"amp", "claude", "amp-custom"};
    for (size_t i = 0; i < JB_ARRAY_LEN(names); i++) {
        pathf(p, "%s/bin/%s", names[i]);
        make_exec(p, 0755);
    }
    pathf(p, "%s/%s", "fake-agent");
    make_exec(p, 0755);
    opts = (struct agent_opts){0};
    opts.path_env = bindir;
    cmd = (struct agent_cmd){0};
    err = (struct jb_err){0};
}

static void teardown(void)
{
    agent_cmd_release(&cmd);
    struct jb_err e = {0};
    jb_rm_rf(root, &e);
}

TestSuite(agent_adapters, .init = setup, .fini = teardown);

/* Prepare with the given adapter; asserts success. */
static void prep(const char *name, const char *resume)
{
    const struct agent_ops *ops = agent_ops_find(name);
    cr_assert_not_null(ops);
    struct agent_turn t = {.opts = &opts,
                           .thread_key = "C1:1700000000.000100",
                           .user = "U123",
                           .prompt = PROMPT,
                           .resume_id = resume,
                           .run_dir = RUN_DIR};
    agent_cmd_release(&cmd);
    cr_assert_eq(ops->prepare(&t, &cmd, &err), 0, "%s: %s", jb_strerror(err.code), err.msg);
}

static void assert_argv(const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    cr_assert_eq(cmd.argv.n, n, "argv has %zu, want %zu", cmd.argv.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(cmd.argv.v[i], want[i], "argv[%zu]", i);
    cr_assert_null(cmd.argv.v[n]);
}

/* Claude Code with --input-format stream-json: the prompt is one JSON user line (a line
 * that is not JSON would end the CLI), and the run takes more while it goes. */
static void assert_prompt_line_on_stdin(void)
{
    cr_assert(cmd.live_input);
    size_t n = strlen(cmd.stdin_data);
    cr_assert(n > 0 && cmd.stdin_data[n - 1] == '\n' && !memchr(cmd.stdin_data, '\n', n - 1),
              "one line: %s", cmd.stdin_data);
    json_t *line = json_loads(cmd.stdin_data, 0, NULL);
    cr_assert_not_null(line, "%s", cmd.stdin_data);
    const char *text = NULL, *type = NULL, *role = NULL;
    cr_assert_eq(json_unpack(line, "{s:s, s:{s:s, s:[{s:s}]}}", "type", &type, "message", "role",
                             &role, "content", "text", &text),
                 0, "%s", cmd.stdin_data);
    cr_assert_str_eq(type, "user");
    cr_assert_str_eq(role, "user");
    cr_assert_str_eq(text, PROMPT);
    json_decref(line);
}

static void assert_prompt_only_on_stdin(void)
{
    cr_assert_str_eq(cmd.stdin_data, PROMPT);
    for (size_t i = 0; i < cmd.argv.n; i++)
        cr_assert_null(strstr(cmd.argv.v[i], "PROMPT-MARKER"), "argv[%zu]", i);
    for (size_t i = 0; i < cmd.env.n; i++)
        cr_assert_null(strstr(cmd.env.v[i], "PROMPT-MARKER"));
}

static char *bin(const char *name)
{
    static char p[PATH_MAX];
    pathf(p, "%s/bin/%s", name);
    return p;
}

/* ---- registry ---- */

Test(agent_adapters, registry)
{
    cr_assert_str_eq(agent_ops_find("amp")->key_var, "AMP_API_KEY");
    cr_assert_str_eq(agent_ops_find("claude")->key_var, "ANTHROPIC_API_KEY");
    cr_assert_null(agent_ops_find("command")->key_var);
    cr_assert_eq(agent_ops_find("command")->version, 1);
    cr_assert_null(agent_ops_find("pi"));
    cr_assert_null(agent_ops_find(NULL));
}

/* ---- amp ---- */

Test(agent_adapters, amp_new)
{
    opts.amp_api_key = "amp-key-123456";
    opts.anthropic_api_key = "sk-ant-other";
    prep("amp", NULL);
    const char *want[] = {bin("amp"), "--dangerously-allow-all", "--settings-file",     SETTINGS,
                          "-x",       "--stream-json",           "--stream-json-input", NULL};
    assert_argv(want);
    assert_prompt_line_on_stdin();
    cr_assert(cmd.steer_flag, "messages while it works are steering lines");
    cr_assert_not(cmd.takes_interrupt);
    cr_assert_eq(cmd.env.n, 1);
    cr_assert_str_eq(jb_env_get(&cmd.env, "AMP_API_KEY"), "amp-key-123456");
    cr_assert_null(jb_env_get(&cmd.env, "ANTHROPIC_API_KEY"));
    cr_assert_null(cmd.session_id);
    cr_assert_eq(cmd.ro_paths.n, 1);
    cr_assert_str_eq(cmd.ro_paths.v[0], bin("amp")); /* a binary of its own: the file alone */
}

Test(agent_adapters, amp_settings_file)
{
    prep("amp", NULL);
    cr_assert_eq(cmd.nfiles, 1);
    cr_assert_str_eq(cmd.files[0].path, SETTINGS);
    cr_assert_eq(strlen(cmd.files[0].data), cmd.files[0].len);
    json_error_t je;
    json_t *o = json_loadb(cmd.files[0].data, cmd.files[0].len, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    cr_assert(json_is_true(json_object_get(o, "amp.dangerouslyAllowAll")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "amp.updates.mode")), "disabled");
    cr_assert(json_is_false(json_object_get(o, "amp.notifications.enabled")));
    json_t *dis = json_object_get(o, "amp.tools.disable");
    cr_assert_eq(json_array_size(dis), 2);
    cr_assert_str_eq(json_string_value(json_array_get(dis, 0)), "find_thread");
    cr_assert_str_eq(json_string_value(json_array_get(dis, 1)), "read_thread");
    json_decref(o);
}

Test(agent_adapters, amp_resume)
{
    prep("amp", "T-7f3a_b2-c9");
    const char *want[] = {bin("amp"),
                          "--dangerously-allow-all",
                          "--settings-file",
                          SETTINGS,
                          "threads",
                          "continue",
                          "T-7f3a_b2-c9",
                          "-x",
                          "--stream-json",
                          "--stream-json-input",
                          NULL};
    assert_argv(want);
    assert_prompt_line_on_stdin();
    cr_assert_eq(cmd.env.n, 0);
}

Test(agent_adapters, amp_bad_resume_ids_ignored)
{
    char longid[200];
    memset(longid, 'a', 129);
    longid[129] = '\0';
    const char *bad[] = {"T-1; rm -rf /", "--help", "", "T-1\n", "T 1", "T-\xc3\xa9", longid};
    const char *want[] = {bin("amp"), "--dangerously-allow-all", "--settings-file",     SETTINGS,
                          "-x",       "--stream-json",           "--stream-json-input", NULL};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        prep("amp", bad[i]);
        assert_argv(want);
    }
    longid[128] = '\0';
    prep("amp", longid);
    cr_assert_eq(cmd.argv.n, 10);
}

Test(agent_adapters, amp_needs_run_dir)
{
    struct agent_turn t = {.opts = &opts, .prompt = "hi"};
    cr_assert_eq(agent_amp_ops.prepare(&t, &cmd, &err), -1);
    cr_assert_eq(err.code, JB_ECONFIG);
    cr_assert_eq(cmd.argv.n, 0);
}

Test(agent_adapters, amp_missing_binary)
{
    opts.path_env = emptydir;
    struct agent_turn t = {.opts = &opts, .prompt = "hi", .run_dir = RUN_DIR};
    cr_assert_eq(agent_amp_ops.prepare(&t, &cmd, &err), -1);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "npm install -g @ampcode/cli"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "amp --version"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "JANEBOT_AGENT_BIN"), "%s", err.msg);
    cr_assert_eq(cmd.argv.n, 0);
    cr_assert_null(cmd.stdin_data);
    cr_assert_eq(cmd.nfiles, 0);
}

/* ---- claude ---- */

static int uuid_like(const char *s)
{
    if (strlen(s) != 36 || s[14] != '4') return 0;
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
                                                    : !strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

static void assert_claude_env(int with_key)
{
    const char *quiet[] = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY",
                           "DISABLE_AUTOUPDATER", "DISABLE_ERROR_REPORTING"};
    for (size_t i = 0; i < JB_ARRAY_LEN(quiet); i++)
        cr_assert_str_eq(jb_env_get(&cmd.env, quiet[i]), "1", "%s", quiet[i]);
    cr_assert_eq(cmd.env.n, 4 + (with_key != 0));
    if (with_key) cr_assert_str_eq(jb_env_get(&cmd.env, "ANTHROPIC_API_KEY"), "sk-ant-test-key");
    cr_assert_null(jb_env_get(&cmd.env, "AMP_API_KEY"));
}

Test(agent_adapters, claude_new)
{
    opts.anthropic_api_key = "sk-ant-test-key";
    opts.amp_api_key = "amp-key-123456";
    prep("claude", NULL);
    cr_assert_eq(cmd.argv.n, 12);
    cr_assert_not_null(cmd.session_id);
    cr_assert(uuid_like(cmd.session_id), "%s", cmd.session_id);
    /* Who asked and where: in the instructions, never in the prompt. */
    const char *who = cmd.argv.v[11];
    cr_assert(strstr(who, "<@U123>") && strstr(who, "channel C1"), "%s", who);
    const char *want[] = {bin("claude"),
                          "-p",
                          "--output-format",
                          "stream-json",
                          "--verbose",
                          "--input-format",
                          "stream-json",
                          "--dangerously-skip-permissions",
                          "--session-id",
                          cmd.session_id,
                          "--append-system-prompt",
                          who,
                          NULL};
    assert_argv(want);
    assert_prompt_line_on_stdin();
    assert_claude_env(1);
    cr_assert_eq(cmd.nfiles, 0);
}

Test(agent_adapters, claude_new_sessions_differ)
{
    prep("claude", NULL);
    char first[37];
    snprintf(first, sizeof first, "%s", cmd.session_id);
    prep("claude", NULL);
    cr_assert_str_neq(first, cmd.session_id);
    assert_claude_env(0);
}

Test(agent_adapters, claude_resume_and_model)
{
    opts.agent_model = "claude-sonnet-4-5";
    prep("claude", UUID_A);
    const char *want[] = {bin("claude"),
                          "-p",
                          "--output-format",
                          "stream-json",
                          "--verbose",
                          "--input-format",
                          "stream-json",
                          "--dangerously-skip-permissions",
                          "--resume",
                          UUID_A,
                          "--model",
                          "claude-sonnet-4-5",
                          "--append-system-prompt",
                          cmd.argv.v[13],
                          NULL};
    assert_argv(want);
    cr_assert_str_eq(cmd.session_id, UUID_A);
    assert_prompt_line_on_stdin();
}

Test(agent_adapters, claude_bad_resume_ids_start_new)
{
    const char *bad[] = {"T-abc",
                         "--help",
                         "0b3e2c1d-5f6a-4b7c-8d9e-0123456789ab0",
                         "0b3e2c1d_5f6a-4b7c-8d9e-0123456789ab",
                         "0b3e2c1d-5f6a-4b7c-8d9e-0123456789ag",
                         ""};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        prep("claude", bad[i]);
        cr_assert_str_eq(cmd.argv.v[8], "--session-id", "%s", bad[i]);
        cr_assert(uuid_like(cmd.argv.v[9]));
        cr_assert_str_eq(cmd.session_id, cmd.argv.v[9]);
    }
}

Test(agent_adapters, claude_missing_binary)
{
    opts.path_env = emptydir;
    struct agent_turn t = {.opts = &opts, .prompt = "hi"};
    cr_assert_eq(agent_claude_ops.prepare(&t, &cmd, &err), -1);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "npm install -g @anthropic-ai/claude-code"), "%s", err.msg);
    cr_assert_null(cmd.session_id);
}

/* ---- command ---- */

Test(agent_adapters, command_new_and_resume)
{
    char path[PATH_MAX];
    pathf(path, "%s/%s", "fake-agent");
    opts.agent_cmd = path;
    opts.amp_api_key = "amp-key-123456";
    opts.anthropic_api_key = "sk-ant-test-key";
    prep("command", NULL);
    const char *want[] = {path, NULL};
    assert_argv(want);
    assert_prompt_only_on_stdin();
    cr_assert_eq(cmd.ro_paths.n, 1);
    cr_assert_str_eq(cmd.ro_paths.v[0], path);
    cr_assert_eq(cmd.env.n, 3);
    cr_assert(strstr(jb_env_get(&cmd.env, "JANEBOT_INSTRUCTIONS"), "<@U123>"));
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_THREAD_KEY"), "C1:1700000000.000100");
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_USER"), "U123");
    cr_assert_null(jb_env_get(&cmd.env, "JANEBOT_RESUME_ID"));
    cr_assert_null(cmd.session_id);

    prep("command", "any id: T-1 / x");
    assert_argv(want);
    cr_assert_eq(cmd.env.n, 4);
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_RESUME_ID"), "any id: T-1 / x");
}

Test(agent_adapters, command_bad_resume_ids_ignored)
{
    char path[PATH_MAX], longid[300];
    pathf(path, "%s/%s", "fake-agent");
    opts.agent_cmd = path;
    memset(longid, 'a', 257);
    longid[257] = '\0';
    const char *bad[] = {"a\nb", "tab\there", longid, ""};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        prep("command", bad[i]);
        cr_assert_null(jb_env_get(&cmd.env, "JANEBOT_RESUME_ID"), "case %zu", i);
    }
    longid[256] = '\0';
    prep("command", longid);
    cr_assert_str_eq(jb_env_get(&cmd.env, "JANEBOT_RESUME_ID"), longid);
}

static void assert_command_unavailable(const char *agent_cmd)
{
    opts.agent_cmd = (char *)agent_cmd;
    struct agent_turn t = {.opts = &opts, .prompt = "hi"};
    err = (struct jb_err){0};
    cr_assert_eq(agent_command_ops.prepare(&t, &cmd, &err), -1, "%s", agent_cmd);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "set JANEBOT_AGENT_CMD to the absolute path"), "%s",
                       err.msg);
    cr_assert_eq(cmd.argv.n, 0);
}

Test(agent_adapters, command_unavailable)
{
    char p[PATH_MAX];
    assert_command_unavailable(NULL);
    assert_command_unavailable("fake-agent");
    pathf(p, "%s/%s", "missing");
    assert_command_unavailable(p);
    assert_command_unavailable(bindir); /* a directory */
    pathf(p, "%s/%s", "plain-file");
    make_exec(p, 0644);
    assert_command_unavailable(p);
}

/* ---- finding the binary ---- */

Test(agent_adapters, agent_bin_name_on_path)
{
    opts.agent_bin = "amp-custom";
    opts.path_env = emptydir;
    char *b = agent_binary(&agent_amp_ops, &opts, &err);
    cr_assert_null(b);
    cr_assert_eq(err.code, JB_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "JANEBOT_AGENT_BIN=amp-custom"), "%s", err.msg);
    char path_env[2 * PATH_MAX + 8];
    snprintf(path_env, sizeof path_env, "%s::%s", emptydir, bindir);
    opts.path_env = path_env;
    b = agent_binary(&agent_amp_ops, &opts, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert_str_eq(b, bin("amp-custom"));
    free(b);
}

Test(agent_adapters, agent_bin_symlink_resolved_to_package)
{
    char pkg[PATH_MAX], exe[PATH_MAX], link[PATH_MAX];
    pathf(pkg, "%s/%s", "opt/node/lib/node_modules/@ampcode/cli/bin");
    struct jb_err e = {0};
    cr_assert_eq(jb_mkdir_p(pkg, 0755, &e), 0, "%s", e.msg);
    pathf(exe, "%s/%s", "opt/node/lib/node_modules/@ampcode/cli/bin/amp.exe");
    make_exec(exe, 0755);
    pathf(pkg, "%s/%s", "opt/node/lib/node_modules/@ampcode/cli/package.json");
    cr_assert_eq(jb_write_file(pkg, "{}", 2, 0644, &e), 0, "%s", e.msg);
    pathf(link, "%s/%s", "linkdir");
    cr_assert_eq(mkdir(link, 0755), 0);
    pathf(link, "%s/%s", "linkdir/amp");
    cr_assert_eq(symlink(exe, link), 0);
    opts.agent_bin = link; /* a path: used as is, then realpath()ed */
    prep("amp", NULL);
    cr_assert_str_eq(cmd.argv.v[0], exe);
    pathf(pkg, "%s/%s", "opt/node/lib/node_modules/@ampcode/cli");
    cr_assert_eq(cmd.ro_paths.n, 1);
    cr_assert_str_eq(cmd.ro_paths.v[0], pkg);
}

Test(agent_adapters, agent_bin_under_usr_needs_no_bind)
{
    opts.agent_bin = "/usr/bin/env";
    prep("claude", NULL);
    cr_assert_eq(strncmp(cmd.argv.v[0], "/usr/", 5), 0, "%s", cmd.argv.v[0]);
    cr_assert_eq(cmd.ro_paths.n, 0);
}

Test(agent_adapters, a_command_agent_under_usr_needs_no_bind)
{
    opts.agent_cmd = "/usr/bin/env";
    prep("command", NULL);
    cr_assert_str_eq(cmd.argv.v[0], "/usr/bin/env");
    cr_assert_eq(cmd.ro_paths.n, 0, "bound again: %s", cmd.ro_paths.n ? cmd.ro_paths.v[0] : "");
}

static void assert_ro(const char *real, const char *want)
{
    struct jb_strv ro = JB_STRV_INIT;
    cr_assert_eq(agent_bin_ro_path(real, &ro, &err), 0);
    if (!want) {
        cr_assert_eq(ro.n, 0, "%s", real);
    } else {
        cr_assert_eq(ro.n, 1, "%s", real);
        cr_assert_str_eq(ro.v[0], want, "%s", real);
    }
    jb_strv_free(&ro);
}

/* Make root/rel (a file; its folders too). */
static void touch(const char *rel)
{
    char p[PATH_MAX];
    pathf(p, "%s/%s", rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    struct jb_err e = {0};
    cr_assert_eq(jb_mkdir_p(p, 0755, &e), 0, "%s", e.msg);
    *slash = '/';
    make_exec(p, 0755);
}

/* assert_ro(root/bin_rel, root/want_rel or the binary itself when want_rel is NULL). */
static void assert_ro_in_root(const char *bin_rel, const char *want_rel)
{
    char b[PATH_MAX], w[PATH_MAX];
    pathf(b, "%s/%s", bin_rel);
    if (want_rel) pathf(w, "%s/%s", want_rel);
    assert_ro(b, want_rel ? w : b);
}

Test(agent_adapters, ro_path_rules)
{
    setenv("HOME", "/srv/me", 1);
    assert_ro("/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", NULL);
    assert_ro("/usr/bin/amp", NULL);
    /* no package.json anywhere: the file alone, never its folder */
    assert_ro("/opt/x/bin/amp", "/opt/x/bin/amp");
    assert_ro("/opt/x/amp", "/opt/x/amp");
    assert_ro("/opt/bin/amp", "/opt/bin/amp");
    assert_ro("/amp", "/amp");
    assert_ro("/home/u/.local/bin/claude", "/home/u/.local/bin/claude");
    assert_ro("/srv/me/tools/amp/bin/amp", "/srv/me/tools/amp/bin/amp");
}

Test(agent_adapters, ro_path_is_the_npm_package_or_the_file_alone)
{
    /* DEPLOY/{.env,bin/amp}: the binary alone, so the .env beside it is not shown */
    touch("deploy/.env");
    touch("deploy/bin/amp");
    assert_ro_in_root("deploy/bin/amp", NULL);
    /* npm packages: the directory with package.json, 1 to 3 levels up */
    touch("lib/node_modules/@ampcode/cli/package.json");
    touch("lib/node_modules/@ampcode/cli/bin/amp.js");
    assert_ro_in_root("lib/node_modules/@ampcode/cli/bin/amp.js", "lib/node_modules/@ampcode/cli");
    touch("lib/node_modules/claude/package.json");
    touch("lib/node_modules/claude/cli.js");
    assert_ro_in_root("lib/node_modules/claude/cli.js", "lib/node_modules/claude");
    touch("pkg3/package.json");
    touch("pkg3/dist/bin/x.js");
    assert_ro_in_root("pkg3/dist/bin/x.js", "pkg3");
    /* the nearest package.json wins */
    touch("outer/package.json");
    touch("outer/inner/package.json");
    touch("outer/inner/bin/x");
    assert_ro_in_root("outer/inner/bin/x", "outer/inner");
    /* four levels up is another project, not this CLI's package */
    touch("deep/package.json");
    touch("deep/a/b/c/x");
    assert_ro_in_root("deep/a/b/c/x", NULL);
    /* a package.json that is a folder is no package */
    touch("odd/package.json/keep");
    touch("odd/bin/x");
    assert_ro_in_root("odd/bin/x", NULL);
}

Test(agent_adapters, ro_path_never_a_home_even_with_package_json)
{
    char home[PATH_MAX];
    pathf(home, "%s/%s", "me");
    setenv("HOME", home, 1);
    touch("me/package.json");
    touch("me/bin/amp");
    assert_ro_in_root("me/bin/amp", NULL);
    touch("me/.local/package.json");
    touch("me/.local/bin/claude");
    assert_ro_in_root("me/.local/bin/claude", NULL);
}

/* ---- agent_cmd ---- */

Test(agent_adapters, release_twice_is_safe)
{
    prep("amp", NULL);
    agent_cmd_release(&cmd);
    agent_cmd_release(&cmd);
    cr_assert_eq(cmd.argv.n, 0);
    cr_assert_null(cmd.stdin_data);
}

Test(agent_adapters, null_prompt_is_empty_stdin)
{
    struct agent_turn t = {.opts = &opts, .run_dir = RUN_DIR};
    cr_assert_eq(agent_amp_ops.prepare(&t, &cmd, &err), 0, "%s", err.msg);
    cr_assert_str_eq(cmd.stdin_data,
                     "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":"
                     "\"text\",\"text\":\"\"}]}}\n");
}
