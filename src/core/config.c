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
static int dotenv_read(const char *path, struct jb_err *err)
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
    if (parse_int("JANEBOT_SANDBOX_MAX_PROCS", 512, 16, 1000000, &cfg->sandbox_max_procs, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_MAX_FILE_MB", 2048, 1, 1 << 20, &cfg->sandbox_max_file_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_MEMORY_MB", 8192, 64, 1 << 24, &cfg->sandbox_memory_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_CPU_SECONDS", cfg->turn_timeout_s, 1, 1000000, &cfg->sandbox_cpu_s,
                  err) < 0 ||
        parse_int("JANEBOT_SANDBOX_DISK_MB", 4096, 1, 1 << 24, &cfg->sandbox_disk_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_TMP_MB", 1024, 1, 1 << 20, &cfg->sandbox_tmp_mb, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_UID_BASE", 1000000, 1000, 2000000000, &uid_base, err) < 0 ||
        parse_int("JANEBOT_SANDBOX_IDLE_DAYS", 7, 0, 36500, &cfg->sandbox_idle_days, err) < 0 ||
        dup_or_default(&cfg->egress_allow, "JANEBOT_EGRESS_ALLOW", NULL, err) < 0 ||
        dup_or_default(&cfg->egress_test_hosts, "JANEBOT_EGRESS_TEST_HOSTS", NULL, err) < 0)
        return -1;
    cfg->sandbox_uid_base = uid_base;
    return 0;
}

int config_load(struct jb_config *cfg, struct jb_err *err)
{
    static const char *const agents[] = {"amp", "claude", "command", NULL};
    static const char *const sandboxes[] = {"local", "host", NULL};
    memset(cfg, 0, sizeof *cfg);
    if (dotenv_read(".env", err) < 0) return -1;
    if (state_dir_default(&cfg->state_dir, err) < 0) return -1;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/.env", cfg->state_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_STATE_DIR is too long");
    if (dotenv_read(path, err) < 0) return -1;
    if (asprintf(&cfg->db_path, "%s/janebot.db", cfg->state_dir) < 0)
        return jb_err_set(err, JB_ENOMEM, "db path");

    const char *lvl = config_get("JANEBOT_LOG_LEVEL");
    cfg->log_level = JB_LOG_INFO;
    if (lvl && *lvl && jb_log_level_parse(lvl, &cfg->log_level) < 0)
        return jb_err_set(
            err, JB_ECONFIG,
            "JANEBOT_LOG_LEVEL=\"%s\" is not valid: expected debug, info, warn or error", lvl);
    if (parse_choice("JANEBOT_AGENT", "amp", agents, &cfg->agent, err) < 0 ||
        parse_choice("JANEBOT_SANDBOX", "local", sandboxes, &cfg->sandbox, err) < 0 ||
        parse_bool("ALLOW_LOCAL_EXECUTION", &cfg->allow_local_execution, err) < 0 ||
        parse_int("JANEBOT_MAX_CONCURRENT_TURNS", 4, 1, 256, &cfg->max_concurrent_turns, err) < 0 ||
        parse_int("JANEBOT_TURN_TIMEOUT", 1800, 1, 86400, &cfg->turn_timeout_s, err) < 0 ||
        dup_or_default(&cfg->agent_cmd, "JANEBOT_AGENT_CMD", NULL, err) < 0 ||
        dup_or_default(&cfg->agent_bin, "JANEBOT_AGENT_BIN", NULL, err) < 0 ||
        dup_or_default(&cfg->agent_model, "JANEBOT_AGENT_MODEL", NULL, err) < 0 ||
        dup_or_default(&cfg->amp_api_key, "AMP_API_KEY", NULL, err) < 0 ||
        dup_or_default(&cfg->anthropic_api_key, "ANTHROPIC_API_KEY", NULL, err) < 0 ||
        dup_or_default(&cfg->path_env, "PATH", "/usr/local/bin:/usr/bin:/bin", err) < 0)
        return -1;
    if (config_load_sandbox(cfg, err) < 0) return -1;
    jb_log_add_secret(cfg->amp_api_key);
    jb_log_add_secret(cfg->anthropic_api_key);
    jb_log_add_secret(config_get("SLACK_BOT_TOKEN"));
    jb_log_add_secret(config_get("SLACK_APP_TOKEN"));
    jb_log_add_secret(config_get("SPRITES_TOKEN"));
    jb_log_add_secret(config_get("OPENAI_API_KEY"));
    if (config_check_agent_cmd(cfg, err) < 0) return -1;
    if (!strcmp(cfg->sandbox, "host") && !cfg->allow_local_execution)
        return jb_err_set(
            err, JB_ECONFIG,
            "JANEBOT_SANDBOX=host runs the agent with no isolation and needs "
            "ALLOW_LOCAL_EXECUTION=true; use JANEBOT_SANDBOX=local (bubblewrap) instead");
    return 0;
}

void config_release(struct jb_config *cfg)
{
    free(cfg->state_dir);
    free(cfg->db_path);
    free(cfg->agent);
    free(cfg->agent_cmd);
    free(cfg->agent_bin);
    free(cfg->sandbox);
    free(cfg->amp_api_key);
    free(cfg->anthropic_api_key);
    free(cfg->agent_model);
    free(cfg->path_env);
    free(cfg->egress_allow);
    free(cfg->egress_test_hosts);
    memset(cfg, 0, sizeof *cfg);
    jb_strv_free(&dotenv);
}
