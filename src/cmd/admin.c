/* cmd/admin.c -- `tokens list|revoke`, `doctor`, `config check`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "cmd/cmd.h"
#include "core/core.h"
#include "core/policy.h"
#include "sandbox/sandbox.h"
#include "slack/slack.h"
#include "store/store.h"

/* ---- tokens and usage ---- */

int cmd_tokens_list(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    struct store *st = NULL;
    if (cmd_open_store(&cfg, &st) < 0) return 1;
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

int cmd_tokens_revoke(const struct command *cmd, int argc, char **argv)
{
    const char *key = NULL;
    int rc = cmd_one_arg(cmd, argc, argv, "THREAD_KEY", &key);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    struct store *st = NULL;
    if (cmd_open_store(&cfg, &st) < 0) return 1;
    struct jb_err err = {0};
    int n = store_token_revoke(st, NULL, key, &err);
    if (n < 0)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("revoked %d token(s) of %s\n", n, key);
    store_close(st);
    config_release(&cfg);
    return n < 0;
}

/* ---- doctor ---- */

static void doctor_report(void *ud, int ok, const char *what, const char *detail)
{
    int *failed = ud;
    if (!ok) (*failed)++;
    jb_autofree char *clean = jb_redact(detail ? detail : "");
    printf("%-5s %-16s %s\n", ok > 0 ? "ok" : ok < 0 ? "warn" : "FAIL", what, clean ? clean : "");
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
    struct agent_opts ao;
    core_agent_opts(cfg, &ao);
    jb_autofree char *bin = agent_binary(agent, &ao, &err);
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

int cmd_doctor(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
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
    struct sandbox_opts so;
    core_sandbox_opts(&cfg, &so);
    sandbox_doctor(&so, doctor_report, &failed); /* counts its failures itself */
    doctor_agent(&cfg, &failed);
    doctor_slack(&cfg, &failed);
    printf("%s\n", failed ? "janebot cannot run as configured: fix the FAIL lines above"
                          : "janebot is ready");
    config_release(&cfg);
    return failed ? 1 : 0;
}

/* ---- config check ---- */

int cmd_config_check(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
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
