/* main.c -- janebot's command line: parse argv, load the configuration, call the
 * library. No logic of its own beyond printing tables. */
#include <editline/readline.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>

#include "agent/agent.h"
#include "core/core.h"
#include "core/policy.h"
#include "frontend/frontend.h"
#include "sandbox/sandbox.h"
#include "slack/slack.h"
#include "store/store.h"

#define VERSION "0.1.0"

struct command {
    const char *name; /* "chat", "sandbox exec", … */
    const char *usage;
    int (*run)(const struct command *cmd, int argc, char **argv);
    const char *help; /* more for --help, or NULL */
};

/* ---- option parsing shared by every command: --help, and an error on the unknown ---- */

static int usage_error(const struct command *cmd, const char *fmt, const char *arg)
{
    if (fmt) {
        fprintf(stderr, "janebot %s: ", cmd->name);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fprintf(stderr, "usage: janebot %s\n", cmd->usage);
    return 2;
}

/* Parses long options from `opts`; returns -1 when parsing may go on, else an exit code. */
static int parse_opts(const struct command *cmd, int argc, char **argv, const struct option *opts,
                      char **vals)
{
    optind = 1;
    opterr = 0;
    int ch, idx;
    while ((ch = getopt_long(argc, argv, "+h", opts, &idx)) != -1) {
        if (ch == 'h') {
            printf("usage: janebot %s\n%s%s", cmd->usage, cmd->help ? "\n" : "",
                   cmd->help ? cmd->help : "");
            return 0;
        }
        if (ch == '?' || ch == ':') {
            const char *bad = argv[optind - 1];
            return usage_error(cmd, ch == ':' ? "option %s needs a value" : "unknown option %s",
                               bad);
        }
        vals[ch] = optarg;
    }
    return -1;
}

static int load_config(struct jb_config *cfg)
{
    struct jb_err err = {0};
    if (config_load(cfg, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        config_release(cfg);
        return -1;
    }
    jb_log_init(cfg->log_level, stderr);
    return 0;
}

static const char *login_name(void)
{
    const char *u = getenv("USER");
    if (u && *u) return u;
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "user";
}

/* ---- chat ---- */

static char *read_line(int interactive, size_t *cap, char **buf)
{
    if (interactive) return readline("you> ");
    ssize_t n = getline(buf, cap, stdin);
    if (n < 0) return NULL;
    while (n && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
        (*buf)[--n] = '\0';
    return strdup(*buf);
}

static int chat_loop(struct core *c, const char *key, const char *user, int interactive)
{
    struct jb_err err = {0};
    int resumed = core_resume_pending(c, key, 0, &err);
    if (resumed > 0)
        fprintf(stderr, "janebot: answering %d message(s) left unanswered by the last run\n",
                resumed);
    char *buf = NULL;
    size_t cap = 0;
    char *line;
    while ((line = read_line(interactive, &cap, &buf))) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            if (interactive) add_history(line);
            if (core_submit(c, key, user, line, NULL, &err) < 0)
                fprintf(stderr, "janebot: message not accepted: %s\n", err.msg);
            else if (interactive)
                core_drain(c); /* a conversation: answer before the next prompt */
        }
        free(line);
    }
    free(buf);
    core_drain(c);
    return 0;
}

static int cmd_chat(const struct command *cmd, int argc, char **argv);
static int cmd_sandbox_exec(const struct command *cmd, int argc, char **argv);
static int cmd_sandbox_list(const struct command *cmd, int argc, char **argv);
static int cmd_sandbox_rm(const struct command *cmd, int argc, char **argv);
static int cmd_sessions_list(const struct command *cmd, int argc, char **argv);
static int cmd_sandbox_gc(const struct command *cmd, int argc, char **argv);
static int cmd_sandbox_reset(const struct command *cmd, int argc, char **argv);
static int cmd_sprites_golden(const struct command *cmd, int argc, char **argv);
static int cmd_serve(const struct command *cmd, int argc, char **argv);
static int cmd_tokens_list(const struct command *cmd, int argc, char **argv);
static int cmd_tokens_revoke(const struct command *cmd, int argc, char **argv);
static int cmd_usage(const struct command *cmd, int argc, char **argv);
static int no_args(const struct command *cmd, int argc, char **argv);
static int cmd_doctor(const struct command *cmd, int argc, char **argv);
static int cmd_config_check(const struct command *cmd, int argc, char **argv);

static const struct command commands[] = {
    {"serve", "serve", cmd_serve, NULL},
    {"chat", "chat [--thread NAME] [--user ID]", cmd_chat, NULL},
    {"sandbox exec", "sandbox exec THREAD_KEY -- CMD [ARG...]", cmd_sandbox_exec, NULL},
    {"sandbox list", "sandbox list", cmd_sandbox_list, NULL},
    {"sandbox rm", "sandbox rm THREAD_KEY|NAME", cmd_sandbox_rm, NULL},
    {"sandbox gc", "sandbox gc --idle DAYS", cmd_sandbox_gc, NULL},
    {"sandbox reset", "sandbox reset THREAD_KEY", cmd_sandbox_reset,
     "Puts the thread's sandbox back to its state right after set-up and starts a new agent\n"
     "conversation there. Sprites: restores the sprite's golden checkpoint. Local: empties\n"
     "the thread's home.\n"},
    {"sprites golden", "sprites golden", cmd_sprites_golden,
     "Builds the golden sprite \"jane-golden\" from a clean image: runs the set-up\n"
     "(JANEBOT_SPRITES_SETUP; by default it installs the agent's CLI when missing, reaching\n"
     "the hosts of JANEBOT_SPRITES_SETUP_EGRESS) and checkpoints it.\n"
     "What the Sprites API does not offer: a sprite cannot start from, or restore, another\n"
     "sprite's checkpoint. So every new or pooled sprite runs the same set-up once and keeps\n"
     "its own golden checkpoint (what `sandbox reset` restores); this command proves the\n"
     "set-up on a fresh sprite and times it. Pool sprites made by an older set-up are\n"
     "replaced when `serve` or `chat` starts.\n"},
    {"sessions list", "sessions list", cmd_sessions_list, NULL},
    {"tokens list", "tokens list", cmd_tokens_list, NULL},
    {"tokens revoke", "tokens revoke THREAD_KEY", cmd_tokens_revoke, NULL},
    {"usage", "usage [--since YYYY-MM-DD]", cmd_usage, NULL},
    {"doctor", "doctor", cmd_doctor, NULL},
    {"config check", "config check", cmd_config_check, NULL},
};

static int cmd_chat(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"thread", required_argument, 0, 't'},
                                         {"user", required_argument, 0, 'u'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return usage_error(cmd, "unexpected argument %s", argv[optind]);
    const char *thread = vals['t'] ? vals['t'] : "default";
    const char *user = vals['u'] ? vals['u'] : login_name();
    if (!*thread || strchr(thread, '\n') || !*user)
        return usage_error(cmd, "%s", "thread and user must be non-empty");
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    int interactive = isatty(0);
    struct frontend *fe = frontend_terminal_new(stdout, stderr, isatty(2));
    struct core *c = NULL;
    struct jb_err err = {0};
    char key[1024];
    snprintf(key, sizeof key, "chat:%s", thread);
    if (!fe || core_new(&cfg, fe, NULL, &c, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", fe ? err.msg : "out of memory");
        frontend_terminal_free(fe);
        config_release(&cfg);
        return 1;
    }
    if (interactive)
        fprintf(stderr, "janebot chat: thread %s, agent %s, sandbox %s. Ctrl-D to quit.\n", key,
                cfg.agent, cfg.sandbox);
    rc = chat_loop(c, key, user, interactive);
    core_free(c);
    frontend_terminal_free(fe);
    config_release(&cfg);
    return rc;
}

/* ---- serve ---- */

static int cmd_serve(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    rc = slack_serve(&cfg);
    config_release(&cfg);
    return rc;
}

/* ---- sandbox ---- */

static int cmd_sandbox_exec(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    /* getopt stops at "--" or the first non-option: THREAD_KEY [--] CMD... */
    if (optind >= argc) return usage_error(cmd, "%s", "missing THREAD_KEY");
    const char *key = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--")) optind++;
    if (optind >= argc) return usage_error(cmd, "%s", "missing CMD after --");
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    int code = 0;
    if (core_sandbox_exec(&cfg, key, (const char *const *)argv + optind, &code, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        code = 1;
    }
    config_release(&cfg);
    return code;
}

static int no_args(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return usage_error(cmd, "unexpected argument %s", argv[optind]);
    return -1;
}

static int cmd_sandbox_list(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct sandbox_ctx ctx = {0};
    struct sandbox_info *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    rc = 0;
    if (sandbox_ctx_init(&ctx, &cfg, 0, &err) < 0 && err.code != JB_EUNAVAIL) rc = 1;
    if (rc == 0 && sandbox_list(&ctx, &v, &n, &err) < 0) rc = 1;
    if (rc) {
        fprintf(stderr, "janebot: %s\n", err.msg);
    } else {
        printf("%-18s  %-32s  %-8s  %10s  %s\n", "NAME", "THREAD KEY", "BACKEND", "SIZE",
               "LAST USED");
        for (size_t i = 0; i < n; i++) {
            char size[32], when[32];
            jb_fmt_size(v[i].size_bytes, size, sizeof size);
            jb_fmt_time(v[i].last_used, when, sizeof when);
            printf("%-18s  %-32s  %-8s  %10s  %s\n", v[i].name, v[i].thread_key, v[i].backend, size,
                   when);
        }
    }
    sandbox_info_free(v, n);
    sandbox_ctx_release(&ctx);
    config_release(&cfg);
    return rc;
}

static int cmd_sandbox_rm(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind + 1 != argc) return usage_error(cmd, "%s", "expected one THREAD_KEY or NAME");
    const char *what = argv[optind];
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct sandbox_ctx ctx = {0};
    struct jb_err err = {0};
    struct store *st = NULL;
    rc = 0;
    if ((sandbox_ctx_init(&ctx, &cfg, 0, &err) < 0 && err.code != JB_EUNAVAIL) ||
        sandbox_remove(&ctx, what, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        rc = 1;
    } else {
        /* The agent conversation lived in that home: forget it. */
        if (!sandbox_is_name(what) && store_open(cfg.db_path, &st, &err) == 0) {
            store_session_delete(st, what, NULL);
            store_token_revoke(st, NULL, what, NULL);
        }
        printf("removed sandbox of %s\n", what);
    }
    store_close(st);
    sandbox_ctx_release(&ctx);
    config_release(&cfg);
    return rc;
}

static int cmd_sandbox_reset(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind + 1 != argc) return usage_error(cmd, "%s", "expected one THREAD_KEY");
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_reset(&cfg, argv[optind], &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("reset the sandbox of %s; its next turn starts a new conversation\n", argv[optind]);
    config_release(&cfg);
    return rc;
}

static int cmd_sprites_golden(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    char report[1024];
    rc = core_sandbox_golden(&cfg, report, sizeof report, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("%s\n", report);
    config_release(&cfg);
    return rc;
}

static int cmd_sessions_list(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct store *st = NULL;
    struct session_row *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    if (jb_mkdir_p(cfg.state_dir, 0700, &err) < 0 || store_open(cfg.db_path, &st, &err) < 0 ||
        store_session_list(st, &v, &n, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        rc = 1;
    } else {
        rc = 0;
        printf("%-32s  %-8s  %-38s  %5s  %s\n", "THREAD KEY", "AGENT", "AGENT SESSION", "TURNS",
               "LAST ACTIVE");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            jb_fmt_time(v[i].last_active / 1000, when, sizeof when);
            printf("%-32s  %-8s  %-38s  %5lld  %s\n", v[i].thread_key, v[i].agent,
                   v[i].agent_session_id ? v[i].agent_session_id : "-", (long long)v[i].turns,
                   when);
        }
    }
    session_rows_free(v, n);
    store_close(st);
    config_release(&cfg);
    return rc;
}

static int cmd_sandbox_gc(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"idle", required_argument, 0, 'i'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return usage_error(cmd, "unexpected argument %s", argv[optind]);
    char *end = NULL;
    long days = vals['i'] ? strtol(vals['i'], &end, 10) : -1;
    if (!vals['i'] || *end || end == vals['i'] || days < 0 || days > 36500)
        return usage_error(cmd, "%s", "--idle needs a number of days (0 or more)");
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_gc(&cfg, (int64_t)days * 86400, &err);
    if (rc < 0)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("removed %d sandbox(es) idle for more than %ld day(s)\n", rc, days);
    config_release(&cfg);
    return rc < 0 ? 1 : 0;
}

/* ---- tokens and usage ---- */

static int open_store(struct jb_config *cfg, struct store **st)
{
    struct jb_err err = {0};
    if (load_config(cfg) < 0) return -1;
    if (jb_mkdir_p(cfg->state_dir, 0700, &err) < 0 || store_open(cfg->db_path, st, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        config_release(cfg);
        return -1;
    }
    return 0;
}

static int cmd_tokens_list(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    struct store *st = NULL;
    if (open_store(&cfg, &st) < 0) return 1;
    struct token_row *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    rc = store_token_list(st, &v, &n, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("%-32s  %-12s  %-19s  %-19s  %-8s  %10s  %10s\n", "THREAD KEY", "USER", "CREATED",
               "LAST USED", "STATE", "TOKENS IN", "TOKENS OUT");
    int64_t now = jb_now_ms();
    for (size_t i = 0; !rc && i < n; i++) {
        char made[32], used[32];
        jb_fmt_time(v[i].created_at / 1000, made, sizeof made);
        jb_fmt_time(v[i].last_used / 1000, used, sizeof used);
        printf("%-32s  %-12s  %-19s  %-19s  %-8s  %10lld  %10lld\n", v[i].thread_key,
               v[i].user_id ? v[i].user_id : "-", made, used,
               v[i].revoked            ? "revoked"
               : v[i].expires_at < now ? "expired"
                                       : "valid",
               (long long)v[i].input_tokens, (long long)v[i].output_tokens);
    }
    token_rows_free(v, n);
    store_close(st);
    config_release(&cfg);
    return rc;
}

static int cmd_tokens_revoke(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind + 1 != argc) return usage_error(cmd, "%s", "expected one THREAD_KEY");
    struct jb_config cfg;
    struct store *st = NULL;
    if (open_store(&cfg, &st) < 0) return 1;
    struct jb_err err = {0};
    int n = store_token_revoke(st, NULL, argv[optind], &err);
    if (n < 0)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("revoked %d token(s) of %s\n", n, argv[optind]);
    store_close(st);
    config_release(&cfg);
    return n < 0;
}

static int cmd_usage(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"since", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return usage_error(cmd, "unexpected argument %s", argv[optind]);
    const char *since = vals['s'];
    int y, m, d;
    char tail;
    if (since && (sscanf(since, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 ||
                  d < 1 || d > 31 || strlen(since) != 10))
        return usage_error(cmd, "--since %s: expected a date like 2026-11-01", since);
    struct jb_config cfg;
    struct store *st = NULL;
    if (open_store(&cfg, &st) < 0) return 1;
    struct usage_row *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    rc = store_usage_list(st, since, &v, &n, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("%-16s  %-32s  %8s  %12s  %12s\n", "USER", "THREAD KEY", "REQUESTS", "TOKENS IN",
               "TOKENS OUT");
    for (size_t i = 0; !rc && i < n; i++)
        printf("%-16s  %-32s  %8lld  %12lld  %12lld\n", v[i].user_id, v[i].thread_key,
               (long long)v[i].requests, (long long)v[i].input_tokens,
               (long long)v[i].output_tokens);
    usage_rows_free(v, n);
    store_close(st);
    config_release(&cfg);
    return rc;
}

/* ---- doctor ---- */

static void doctor_report(void *ud, int ok, const char *what, const char *detail)
{
    int *failed = ud;
    if (!ok) (*failed)++;
    jb_autofree char *clean = jb_redact(detail ? detail : "");
    printf("%-5s %-16s %s\n", ok ? "ok" : "FAIL", what, clean ? clean : "");
}

static void doctor_state(const struct jb_config *cfg, int *failed)
{
    struct jb_err err = {0};
    char detail[1200];
    int ok = jb_mkdir_p(cfg->state_dir, 0700, &err) == 0 && access(cfg->state_dir, W_OK) == 0;
    snprintf(detail, sizeof detail, "%s%s%s", cfg->state_dir, ok ? " (writable)" : ": ",
             ok           ? ""
             : err.msg[0] ? err.msg
                          : "not writable");
    doctor_report(failed, ok, "state dir", detail);
    if (!ok) return;
    struct store *st = NULL;
    ok = store_open(cfg->db_path, &st, &err) == 0;
    if (ok)
        snprintf(detail, sizeof detail, "%s (schema version %d)", cfg->db_path,
                 store_schema_version(st));
    doctor_report(failed, ok, "database", ok ? detail : err.msg);
    store_close(st);
}

/* Slack, when configured: the tokens' shape, then auth.test with the bot token. */
static void doctor_slack(const struct jb_config *cfg, int *failed)
{
    if (!cfg->slack_bot_token && !cfg->slack_app_token) return;
    struct jb_err err = {0};
    if (config_check_slack(cfg, &err) < 0) {
        doctor_report(failed, 0, "slack", err.msg);
        return;
    }
    struct slack_web_opts wo = {.api_url = cfg->slack_api_url,
                                .bot_token = cfg->slack_bot_token,
                                .app_token = cfg->slack_app_token,
                                .max_retries = 1,
                                .timeout_ms = 10000};
    struct slack_web *w = NULL;
    char *user = NULL, *bot = NULL, detail[1024];
    int ok = slack_web_new(&wo, &w, &err) == 0 && slack_auth_test(w, &user, &bot, &err) == 0;
    if (ok)
        snprintf(detail, sizeof detail, "signed in as <@%s> through %s", user, cfg->slack_api_url);
    doctor_report(failed, ok, "slack", ok ? detail : err.msg);
    free(user);
    free(bot);
    slack_web_free(w);
}

static void doctor_agent(const struct jb_config *cfg, int *failed)
{
    const struct agent_ops *agent = agent_ops_find(cfg->agent);
    struct jb_err err = {0};
    jb_autofree char *bin = agent_binary(agent, cfg, &err);
    char detail[1200];
    snprintf(detail, sizeof detail, "%s: %s", cfg->agent, bin ? bin : err.msg);
    doctor_report(failed, bin != NULL, "agent CLI", detail);
    if (!agent->key_var) return;
    int set = config_get(agent->key_var) && *config_get(agent->key_var);
    snprintf(detail, sizeof detail, "%s is %s", agent->key_var,
             !set ? "not set: the agent cannot reach its API"
             : strcmp(cfg->sandbox, "local")
                 ? "set (value not shown)"
                 : "set (value not shown; it stays on the host: each sandbox gets a scoped "
                   "token for janebot's LLM proxy)");
    doctor_report(failed, set, "agent key", detail);
}

static int cmd_doctor(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    int failed = 0;
    struct jb_config cfg;
    struct jb_err err = {0};
    if (config_load(&cfg, &err) < 0) {
        doctor_report(&failed, 0, "configuration", err.msg);
        config_release(&cfg);
        return 1;
    }
    jb_log_init(JB_LOG_ERROR, stderr);
    doctor_report(&failed, 1, "configuration", "agent and sandbox settings are valid");
    doctor_state(&cfg, &failed);
    struct sandbox_ctx ctx = {.cfg = &cfg, .ops = sandbox_ops_find(cfg.sandbox)};
    ctx.ops->doctor(&ctx, doctor_report, &failed); /* counts its failures itself */
    doctor_agent(&cfg, &failed);
    doctor_slack(&cfg, &failed);
    printf("%s\n", failed ? "janebot cannot run as configured: fix the FAIL lines above"
                          : "janebot is ready");
    config_release(&cfg);
    return failed ? 1 : 0;
}

/* ---- config check ---- */

static int cmd_config_check(const struct command *cmd, int argc, char **argv)
{
    int rc = no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (load_config(&cfg) < 0) return 1;
    struct policy *p = NULL;
    struct jb_err err = {0};
    if (policy_load(&cfg, &p, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        config_release(&cfg);
        return 1;
    }
    policy_print(p, &cfg, stdout);
    printf("configuration is valid\n");
    policy_unref(p);
    config_release(&cfg);
    return 0;
}

/* ---- dispatch ---- */

static const struct command *find_command(int argc, char **argv, int *consumed)
{
    for (size_t i = 0; i < JB_ARRAY_LEN(commands); i++) {
        const char *name = commands[i].name, *sp = strchr(name, ' ');
        if (!sp && argc >= 1 && !strcmp(argv[0], name)) return *consumed = 1, &commands[i];
        if (sp && argc >= 2 && !strncmp(argv[0], name, (size_t)(sp - name)) &&
            argv[0][sp - name] == '\0' && !strcmp(argv[1], sp + 1))
            return *consumed = 2, &commands[i];
    }
    return NULL;
}

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* "janebot sandbox [--help]": the usage of every subcommand of that group, on stdout
 * when asked for, on stderr when the subcommand is missing or unknown. */
static int group_usage(const char *group, const char *next)
{
    size_t gl = strlen(group);
    FILE *out = next && is_help(next) ? stdout : stderr;
    int found = 0;
    for (size_t i = 0; i < JB_ARRAY_LEN(commands); i++) {
        const char *name = commands[i].name;
        if (strncmp(name, group, gl) != 0 || name[gl] != ' ') continue;
        if (!found++) {
            if (next && !is_help(next))
                fprintf(out, "janebot %s: unknown subcommand \"%s\"\n", group, next);
            fprintf(out, "usage:\n");
        }
        fprintf(out, "  janebot %s\n", commands[i].usage);
    }
    return found;
}

static void usage_all(FILE *out)
{
    fprintf(out, "janebot %s -- a coding agent for your team, one sandbox per thread\n\nusage:\n",
            VERSION);
    for (size_t i = 0; i < JB_ARRAY_LEN(commands); i++)
        fprintf(out, "  janebot %s\n", commands[i].usage);
    fprintf(out, "\nEvery command takes --help. Configuration: environment variables and .env "
                 "files (see README.md).\n");
}

int main(int argc, char **argv)
{
    /* Inside a sandbox, before anything else: no configuration, no logging. */
    if (argc > 1 && !strcmp(argv[1], "sandbox-init")) return sandbox_init_main(argc - 1, argv + 1);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage_all(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_all(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("janebot %s\n", VERSION);
        return 0;
    }
    int consumed = 0;
    const struct command *cmd = find_command(argc - 1, argv + 1, &consumed);
    if (!cmd && group_usage(argv[1], argc > 2 ? argv[2] : NULL))
        return argc > 2 && is_help(argv[2]) ? 0 : 2;
    if (!cmd) {
        fprintf(stderr, "janebot: unknown command \"%s\"\n", argv[1]);
        usage_all(stderr);
        return 2;
    }
    /* The command sees argv[0] = its own name, then its arguments. */
    return cmd->run(cmd, argc - consumed, argv + consumed);
}
