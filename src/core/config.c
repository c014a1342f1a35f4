/* core/config.c -- configuration from the environment and .env files.
 * Precedence: the environment, then ./.env, then $JANEBOT_STATE_DIR/.env. Every value is
 * validated here, once, so the rest of the program can trust struct jb_config. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "core/policy.h"

/* Parsed .env entries; written only by config_load()/config_release(), which main calls
 * once before any thread starts (the parsed configuration is janebot's one global). */
static struct jb_strv dotenv;

const char *config_get(const char *name)
{
    const char *v = getenv(name);
    if (v) return v;
    return jb_env_get(&dotenv, name);
}

/* Parse one .env file: NAME=VALUE lines, '#' comments, optional "export ", values
 * optionally in single or double quotes. Earlier files win, so existing names are kept. */
int config_dotenv_read(const char *path, struct jb_err *err)
{
    jb_autofree char *text = NULL;
    size_t len;
    struct jb_err e = {0};
    if (jb_read_file(path, 1 << 20, &text, &len, &e) < 0)
        return e.code == JB_ENOTFOUND ? 0 : (*err = e, -1);
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*line))
            line++;
        if (*line == '#' || *line == '\0') continue;
        if (strncmp(line, "export ", 7) == 0) line += 7;
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            return jb_err_set(err, JB_ECONFIG, "%s:%d: expected NAME=VALUE", path, lineno);
        *eq = '\0';
        char *name = line, *val = eq + 1;
        for (char *p = name; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_')
                return jb_err_set(err, JB_ECONFIG, "%s:%d: bad variable name \"%s\"", path, lineno,
                                  name);
        size_t vl = strlen(val);
        while (vl && isspace((unsigned char)val[vl - 1]))
            val[--vl] = '\0';
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0])
            val[vl - 1] = '\0', val++;
        if (!jb_env_get(&dotenv, name) && jb_env_set(&dotenv, name, val, err) < 0) return -1;
    }
    return 0;
}

static int dup_or_default(char **dst, const char *name, const char *def, struct jb_err *err)
{
    const char *v = config_get(name);
    if (!v || !*v) v = def;
    *dst = v ? strdup(v) : NULL;
    if (v && !*dst) return jb_err_set(err, JB_ENOMEM, "%s", name);
    return 0;
}

static int parse_int(const char *name, int def, int lo, int hi, int *out, struct jb_err *err)
{
    const char *v = config_get(name);
    if (!v || !*v) return *out = def, 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || !(isdigit((unsigned char)v[0]) || v[0] == '-') || n < lo ||
        n > hi)
        return jb_err_set(err, JB_ECONFIG,
                          "%s=\"%s\" is not valid: expected an integer from %d to %d", name, v, lo,
                          hi);
    *out = (int)n;
    return 0;
}

static int parse_bool(const char *name, int *out, struct jb_err *err)
{
    const char *v = config_get(name);
    *out = 0;
    if (!v || !*v || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) return *out = 1, 0;
    return jb_err_set(err, JB_ECONFIG, "%s=\"%s\" is not valid: expected true or false", name, v);
}

static int parse_choice(const char *name, const char *def, const char *const *allowed, char **out,
                        struct jb_err *err)
{
    const char *v = config_get(name);
    if (!v || !*v) v = def;
    for (const char *const *a = allowed; *a; a++)
        if (!strcmp(v, *a)) return (*out = strdup(v)) ? 0 : jb_err_set(err, JB_ENOMEM, "%s", name);
    char list[256] = "";
    for (const char *const *a = allowed; *a; a++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
    }
    return jb_err_set(err, JB_ECONFIG, "%s=\"%s\" is not valid: expected one of %s", name, v, list);
}

static int state_dir_default(char **out, struct jb_err *err)
{
    const char *v = getenv("JANEBOT_STATE_DIR");
    if (!v || !*v) v = jb_env_get(&dotenv, "JANEBOT_STATE_DIR");
    int n;
    if (v && *v) {
        if (v[0] != '/')
            return jb_err_set(err, JB_ECONFIG,
                              "JANEBOT_STATE_DIR=\"%s\" is not valid: expected an absolute path",
                              v);
        n = asprintf(out, "%s", v);
    } else if ((v = getenv("XDG_STATE_HOME")) && v[0] == '/') {
        n = asprintf(out, "%s/janebot", v);
    } else {
        const char *home = getenv("HOME");
        struct passwd *pw = home && *home ? NULL : getpwuid(getuid());
        if (pw) home = pw->pw_dir;
        if (!home || home[0] != '/')
            return jb_err_set(err, JB_ECONFIG,
                              "cannot find a home directory: set JANEBOT_STATE_DIR");
        n = asprintf(out, "%s/.local/state/janebot", home);
    }
    if (n < 0) return jb_err_set(err, JB_ENOMEM, "state dir");
    size_t l = strlen(*out);
    while (l > 1 && (*out)[l - 1] == '/')
        (*out)[--l] = '\0';
    return 0;
}

static int config_check_agent_cmd(struct jb_config *cfg, struct jb_err *err)
{
    if (strcmp(cfg->agent, "command") != 0) return 0;
    const char *v = cfg->agent_cmd;
    if (!v)
        return jb_err_set(err, JB_ECONFIG,
                          "JANEBOT_AGENT=command needs JANEBOT_AGENT_CMD: the absolute path of an "
                          "executable that prints stream-json");
    if (!strcmp(cfg->sandbox, "sprites")) /* a path inside the sprite (its set-up installs it) */
        return v[0] == '/' ? 0
                           : jb_err_set(err, JB_ECONFIG,
                                        "JANEBOT_AGENT_CMD=\"%s\" is not valid: expected an "
                                        "absolute path inside the sprite",
                                        v);
    struct stat st;
    if (v[0] != '/' || stat(v, &st) < 0 || !S_ISREG(st.st_mode) || access(v, X_OK) < 0)
        return jb_err_set(err, JB_ECONFIG,
                          "JANEBOT_AGENT_CMD=\"%s\" is not valid: expected the absolute path of an "
                          "executable file",
                          v);
    return 0;
}

static int config_load_sandbox(struct jb_config *cfg, struct jb_err *err)
{
    int uid_base = 0;
    if (parse_int("JANEBOT_SANDBOX_MAX_PROCS", 512, 16, 1000000, &cfg->sandbox_max_procs, err) <
            0 ||
        parse_int("JANEBOT_SANDBOX_MAX_FILE_MB", 2048, 1, 1 << 20, &cfg->sandbox_max_file_mb, err) <
            0 ||
        parse_int("JANEBOT_SANDBOX_NICE", 10, 0, 19, &cfg->sandbox_nice, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_MEMORY_MB", 4096, 16, 1 << 24, &cfg->sandbox_memory_mb, err) <
            0 ||
        parse_int("JANEBOT_SANDBOX_ADDRESS_SPACE_MB", 0, 0, 1 << 24, &cfg->sandbox_as_mb, err) <
            0 ||
        parse_int("JANEBOT_SANDBOX_CPU_SECONDS", cfg->turn_timeout_s, 1, 1000000,
                  &cfg->sandbox_cpu_s, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_DISK_MB", 4096, 1, 1 << 24, &cfg->sandbox_disk_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_TMP_MB", 1024, 1, 1 << 20, &cfg->sandbox_tmp_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_UID_BASE", 1000000, 1000, 2000000000, &uid_base, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_IDLE_DAYS", 7, 0, 36500, &cfg->sandbox_idle_days, err) < 0 ||
        parse_int("JANEBOT_RETENTION_DAYS", 30, 0, 36500, &cfg->retention_days, err) < 0 ||
        dup_or_default(&cfg->egress_allow, "JANEBOT_EGRESS_ALLOW", NULL, err) < 0 ||
        dup_or_default(&cfg->egress_test_hosts, "JANEBOT_EGRESS_TEST_HOSTS", NULL, err) < 0 ||
        dup_or_default(&cfg->sprites_token, "SPRITES_TOKEN", NULL, err) < 0 ||
        dup_or_default(&cfg->sprites_api_url, "SPRITES_API_URL", "https://api.sprites.dev", err) <
            0)
        return -1;
    cfg->sandbox_uid_base = uid_base;
    return 0;
}

/* The set-up of a new sprite when JANEBOT_SPRITES_SETUP is unset: install the agent's CLI
 * unless the image has it (npm must reach a registry: JANEBOT_SPRITES_SETUP_EGRESS). It runs
 * as the sprite's user: through sudo when npm's global prefix is not that user's. */
#define NPM_GLOBAL(pkg)                                                                            \
    "if [ -w \"$(npm prefix -g)\" ]; then npm install -g " pkg "; else sudo env \"PATH=$PATH\" "   \
    "npm install -g " pkg "; fi"
static const char *setup_default(const char *agent)
{
    if (!strcmp(agent, "amp"))
        return "command -v amp >/dev/null || { " NPM_GLOBAL("@sourcegraph/amp") "; }";
    if (!strcmp(agent, "claude"))
        return "command -v claude >/dev/null || { " NPM_GLOBAL("@anthropic-ai/claude-code") "; }";
    return "";
}

/* https://HOST[:PORT] without a trailing '/'; plain http only for a loopback host, where the
 * scoped token crosses no network (a TLS terminator on this machine, or tests). */
static int public_url_check(char *u, struct jb_err *err)
{
    size_t n = strlen(u);
    while (n > 8 && u[n - 1] == '/')
        u[--n] = '\0';
    if (!strncmp(u, "https://", 8) && u[8]) return 0;
    static const char *const loop[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < JB_ARRAY_LEN(loop); i++) {
        size_t l = strlen(loop[i]);
        if (!strncmp(u, loop[i], l) && (u[l] == '\0' || u[l] == ':' || u[l] == '/')) return 0;
    }
    return jb_err_set(err, JB_ECONFIG,
                      "JANEBOT_PUBLIC_URL=\"%s\" is not valid: expected https://HOST[:PORT] (a TLS "
                      "terminator in front of JANEBOT_PROXY_LISTEN; see the README)",
                      u);
}

static int config_load_sprites(struct jb_config *cfg, struct jb_err *err)
{
    if (parse_int("JANEBOT_SPRITES_POOL", 0, 0, 50, &cfg->sprites_pool, err) < 0 ||
        parse_int("JANEBOT_SPRITES_HEALTH_TIMEOUT", 30, 1, 600, &cfg->sprites_health_s, err) < 0 ||
        dup_or_default(&cfg->sprites_setup, "JANEBOT_SPRITES_SETUP", setup_default(cfg->agent),
                       err) < 0 ||
        dup_or_default(&cfg->sprites_setup_allow, "JANEBOT_SPRITES_SETUP_EGRESS", NULL, err) < 0 ||
        dup_or_default(&cfg->proxy_listen, "JANEBOT_PROXY_LISTEN", NULL, err) < 0 ||
        dup_or_default(&cfg->public_url, "JANEBOT_PUBLIC_URL", NULL, err) < 0)
        return -1;
    if (cfg->public_url && public_url_check(cfg->public_url, err) < 0) return -1;
    if (cfg->public_url && !cfg->proxy_listen)
        return jb_err_set(err, JB_ECONFIG,
                          "JANEBOT_PUBLIC_URL is set but JANEBOT_PROXY_LISTEN is not: set the "
                          "address the LLM proxy listens on (like 127.0.0.1:8787) behind it");
    return 0;
}

/* "U1, U2,,U3" -> [U1, U2, U3]; ids are Slack's: letters and digits only. */
static int parse_id_list(const char *name, struct jb_strv *out, struct jb_err *err)
{
    const char *v = config_get(name);
    if (!v) return 0;
    jb_autofree char *copy = strdup(v);
    if (!copy) return jb_err_set(err, JB_ENOMEM, "%s", name);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*t))
            t++;
        size_t n = strlen(t);
        while (n && isspace((unsigned char)t[n - 1]))
            t[--n] = '\0';
        if (!n) continue;
        for (char *p = t; *p; p++)
            if (!isalnum((unsigned char)*p))
                return jb_err_set(err, JB_ECONFIG,
                                  "%s=\"%s\" is not valid: expected Slack ids separated by commas "
                                  "(like U0123ABCD,U0456EFGH)",
                                  name, v);
        if (jb_strv_push(out, t, err) < 0) return -1;
    }
    return 0;
}

/* A URL without its trailing '/': the proxy appends API paths to it. */
static int load_upstream(char **dst, const char *name, const char *def, struct jb_err *err)
{
    if (dup_or_default(dst, name, def, err) < 0) return -1;
    if (strncmp(*dst, "https://", 8) != 0 && strncmp(*dst, "http://", 7) != 0)
        return jb_err_set(err, JB_ECONFIG, "%s=\"%s\" is not valid: expected an http(s) URL", name,
                          *dst);
    size_t n = strlen(*dst);
    while (n > 8 && (*dst)[n - 1] == '/')
        (*dst)[--n] = '\0';
    return 0;
}

static int config_load_llm(struct jb_config *cfg, struct jb_err *err)
{
    int daily = 0;
    if (dup_or_default(&cfg->openai_api_key, "OPENAI_API_KEY", NULL, err) < 0 ||
        load_upstream(&cfg->upstream_anthropic, "JANEBOT_UPSTREAM_ANTHROPIC",
                      "https://api.anthropic.com", err) < 0 ||
        load_upstream(&cfg->upstream_openai, "JANEBOT_UPSTREAM_OPENAI", "https://api.openai.com",
                      err) < 0 ||
        load_upstream(&cfg->upstream_amp, "JANEBOT_UPSTREAM_AMP", "https://ampcode.com", err) < 0 ||
        parse_int("JANEBOT_USER_DAILY_TOKENS", 0, 0, 2000000000, &daily, err) < 0 ||
        dup_or_default(&cfg->prices, "JANEBOT_PRICES", NULL, err) < 0)
        return -1;
    cfg->user_daily_tokens = daily;
    jb_log_add_secret(cfg->openai_api_key);
    struct prices ps; /* checked now, so a bad list stops every command at start */
    if (cfg->prices && prices_parse(cfg->prices, &ps, err) < 0) return -1;
    if (cfg->prices) prices_release(&ps);
    return 0;
}

static int config_load_slack(struct jb_config *cfg, struct jb_err *err)
{
    if (dup_or_default(&cfg->slack_bot_token, "SLACK_BOT_TOKEN", NULL, err) < 0 ||
        dup_or_default(&cfg->slack_app_token, "SLACK_APP_TOKEN", NULL, err) < 0 ||
        dup_or_default(&cfg->slack_api_url, "SLACK_API_URL", "https://slack.com/api/", err) < 0 ||
        parse_id_list("ALLOWED_USER_IDS", &cfg->allowed_users, err) < 0 ||
        parse_id_list("ALLOWED_CHANNEL_IDS", &cfg->allowed_channels, err) < 0 ||
        parse_int("DEBOUNCE_MS", 1500, 0, 600000, &cfg->debounce_ms, err) < 0 ||
        parse_int("MAX_RESPONSE_LENGTH", 3900, 200, 39000, &cfg->max_response_length, err) < 0)
        return -1;
    const char *u = cfg->slack_api_url;
    if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
        return jb_err_set(err, JB_ECONFIG,
                          "SLACK_API_URL=\"%s\" is not valid: expected an http(s) URL like "
                          "https://slack.com/api/",
                          u);
    size_t n = strlen(u);
    if (u[n - 1] != '/') {
        char *with = NULL;
        if (asprintf(&with, "%s/", u) < 0) return jb_err_set(err, JB_ENOMEM, "SLACK_API_URL");
        free(cfg->slack_api_url);
        cfg->slack_api_url = with;
    }
    return 0;
}

static int token_ok(const char *t, const char *prefix)
{
    if (!t || strncmp(t, prefix, strlen(prefix)) != 0 || strlen(t) < strlen(prefix) + 8) return 0;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') return 0;
    return 1;
}

int config_check_slack(const struct jb_config *cfg, struct jb_err *err)
{
    if (!cfg->slack_bot_token)
        return jb_err_set(err, JB_ECONFIG,
                          "SLACK_BOT_TOKEN is not set: the bot token (xoxb-…) "
                          "from the app's OAuth & Permissions page");
    if (!token_ok(cfg->slack_bot_token, "xoxb-"))
        return jb_err_set(err, JB_ECONFIG,
                          "SLACK_BOT_TOKEN is not valid: expected a bot token "
                          "starting with xoxb- (value not shown)");
    if (!cfg->slack_app_token)
        return jb_err_set(err, JB_ECONFIG,
                          "SLACK_APP_TOKEN is not set: an app-level token "
                          "(xapp-…) with the connections:write scope");
    if (!token_ok(cfg->slack_app_token, "xapp-"))
        return jb_err_set(err, JB_ECONFIG,
                          "SLACK_APP_TOKEN is not valid: expected an app-level "
                          "token starting with xapp- (value not shown)");
    return 0;
}

/* JANEBOT_SANDBOX unset: sprites when SPRITES_TOKEN is set (as the original bot), else local. */
static const char *sandbox_default(void)
{
    const char *t = config_get("SPRITES_TOKEN");
    return t && *t ? "sprites" : "local";
}

int config_load(struct jb_config *cfg, struct jb_err *err)
{
    static const char *const agents[] = {"amp", "claude", "command", NULL};
    static const char *const cmd_inputs[] = {"text", "stream-json", NULL};
    static const char *const sandboxes[] = {"local", "host", "sprites", NULL};
    memset(cfg, 0, sizeof *cfg);
    if (config_dotenv_read(".env", err) < 0) return -1;
    if (state_dir_default(&cfg->state_dir, err) < 0) return -1;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/.env", cfg->state_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_STATE_DIR is too long");
    if (config_dotenv_read(path, err) < 0) return -1;
    if (asprintf(&cfg->db_path, "%s/janebot.db", cfg->state_dir) < 0)
        return jb_err_set(err, JB_ENOMEM, "db path");

    const char *lvl = config_get("JANEBOT_LOG_LEVEL");
    cfg->log_level = JB_LOG_INFO;
    if (lvl && *lvl && jb_log_level_parse(lvl, &cfg->log_level) < 0)
        return jb_err_set(
            err, JB_ECONFIG,
            "JANEBOT_LOG_LEVEL=\"%s\" is not valid: expected debug, info, warn or error", lvl);
    const char *fmt = config_get("JANEBOT_LOG_FORMAT");
    if (fmt && *fmt && jb_log_format_parse(fmt, &cfg->log_format) < 0)
        return jb_err_set(err, JB_ECONFIG,
                          "JANEBOT_LOG_FORMAT=\"%s\" is not valid: expected text or json", fmt);
    if (parse_choice("JANEBOT_AGENT", "amp", agents, &cfg->agent, err) < 0 ||
        parse_choice("JANEBOT_SANDBOX", sandbox_default(), sandboxes, &cfg->sandbox, err) < 0 ||
        parse_choice("JANEBOT_AGENT_CMD_INPUT", "text", cmd_inputs, &cfg->agent_cmd_input, err) <
            0 ||
        parse_bool("ALLOW_LOCAL_EXECUTION", &cfg->allow_local_execution, err) < 0 ||
        parse_int("JANEBOT_MAX_CONCURRENT_TURNS", 4, 1, 256, &cfg->max_concurrent_turns, err) < 0 ||
        parse_int("JANEBOT_TURN_TIMEOUT", 1800, 1, 86400, &cfg->turn_timeout_s, err) < 0 ||
        parse_int("JANEBOT_STOP_GRACE", 60, 0, 86400, &cfg->stop_grace_s, err) < 0 ||
        dup_or_default(&cfg->agent_cmd, "JANEBOT_AGENT_CMD", NULL, err) < 0 ||
        dup_or_default(&cfg->agent_bin, "JANEBOT_AGENT_BIN", NULL, err) < 0 ||
        dup_or_default(&cfg->agent_model, "JANEBOT_AGENT_MODEL", NULL, err) < 0 ||
        dup_or_default(&cfg->amp_api_key, "AMP_API_KEY", NULL, err) < 0 ||
        dup_or_default(&cfg->anthropic_api_key, "ANTHROPIC_API_KEY", NULL, err) < 0 ||
        dup_or_default(&cfg->path_env, "PATH", "/usr/local/bin:/usr/bin:/bin", err) < 0)
        return -1;
    if (config_load_sandbox(cfg, err) < 0 || config_load_sprites(cfg, err) < 0 ||
        config_load_slack(cfg, err) < 0 || config_load_llm(cfg, err) < 0 ||
        dup_or_default(&cfg->metrics_listen, "JANEBOT_METRICS_LISTEN", NULL, err) < 0)
        return -1;
    if (cfg->metrics_listen &&
        jb_metrics_addr_check("JANEBOT_METRICS_LISTEN", cfg->metrics_listen, err) < 0)
        return -1;
    jb_log_add_secret(cfg->amp_api_key);
    jb_log_add_secret(cfg->anthropic_api_key);
    jb_log_add_secret(cfg->slack_bot_token);
    jb_log_add_secret(cfg->slack_app_token);
    jb_log_add_secret(config_get("SPRITES_TOKEN"));
    if (config_check_agent_cmd(cfg, err) < 0) return -1;
    if (!strcmp(cfg->sandbox, "host") && !cfg->allow_local_execution)
        return jb_err_set(
            err, JB_ECONFIG,
            "JANEBOT_SANDBOX=host runs the agent with no isolation and needs "
            "ALLOW_LOCAL_EXECUTION=true; use JANEBOT_SANDBOX=local (bubblewrap) instead");
    if (!strcmp(cfg->sandbox, "sprites") && !cfg->sprites_token)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_SANDBOX=sprites needs SPRITES_TOKEN");
    return 0;
}

void config_release(struct jb_config *cfg)
{
    free(cfg->state_dir);
    free(cfg->db_path);
    free(cfg->agent);
    free(cfg->agent_cmd);
    free(cfg->agent_cmd_input);
    free(cfg->agent_bin);
    free(cfg->sandbox);
    free(cfg->amp_api_key);
    free(cfg->anthropic_api_key);
    free(cfg->agent_model);
    free(cfg->path_env);
    free(cfg->egress_allow);
    free(cfg->egress_test_hosts);
    if (cfg->sprites_token) explicit_bzero(cfg->sprites_token, strlen(cfg->sprites_token));
    free(cfg->sprites_token);
    free(cfg->sprites_api_url);
    free(cfg->sprites_setup);
    free(cfg->sprites_setup_allow);
    free(cfg->proxy_listen);
    free(cfg->metrics_listen);
    free(cfg->public_url);
    free(cfg->openai_api_key);
    free(cfg->upstream_anthropic);
    free(cfg->upstream_openai);
    free(cfg->upstream_amp);
    free(cfg->prices);
    free(cfg->slack_bot_token);
    free(cfg->slack_app_token);
    free(cfg->slack_api_url);
    jb_strv_free(&cfg->allowed_users);
    jb_strv_free(&cfg->allowed_channels);
    memset(cfg, 0, sizeof *cfg);
    jb_strv_free(&dotenv);
}
