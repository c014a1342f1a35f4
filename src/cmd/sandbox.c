/* cmd/sandbox.c -- `sandbox exec|list|show|rm|gc|reset|egress`, `sprites golden`,
 * `sessions list`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/core.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

int cmd_sandbox_exec(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    /* getopt stops at "--" or the first non-option: THREAD_KEY [--] CMD... */
    if (optind >= argc) return cmd_usage_error(cmd, "%s", "missing THREAD_KEY");
    const char *key = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--")) optind++;
    if (optind >= argc) return cmd_usage_error(cmd, "%s", "missing CMD after --");
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    int code = 0;
    if (core_sandbox_exec(&cfg, key, (const char *const *)argv + optind, &code, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        code = 1;
    }
    config_release(&cfg);
    return code;
}

int cmd_sandbox_list(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct sandbox_info *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    rc = core_sandbox_list(&cfg, &v, &n, &err) < 0;
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
    config_release(&cfg);
    return rc;
}

int cmd_sandbox_show(const struct command *cmd, int argc, char **argv)
{
    const char *key = NULL;
    int rc = cmd_one_arg(cmd, argc, argv, "THREAD_KEY", &key);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_show(&cfg, key, stdout, &err) < 0;
    if (rc) fprintf(stderr, "janebot: %s\n", err.msg);
    config_release(&cfg);
    return rc;
}

int cmd_sandbox_egress(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind >= argc) return cmd_usage_error(cmd, "%s", "missing rm");
    if (strcmp(argv[optind], "rm") != 0)
        return cmd_usage_error(cmd, "unknown subcommand \"%s\" (expected rm)", argv[optind]);
    if (argc - optind != 3) return cmd_usage_error(cmd, "%s", "expected rm THREAD_KEY NAME");
    const char *key = argv[optind + 1], *name = argv[optind + 2];
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_egress_rm(&cfg, key, name, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("removed %s from the egress list of %s\n", name, key);
    config_release(&cfg);
    return rc;
}

int cmd_sandbox_rm(const struct command *cmd, int argc, char **argv)
{
    const char *what = NULL;
    int rc = cmd_one_arg(cmd, argc, argv, "THREAD_KEY or NAME", &what);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = 0;
    if (core_sandbox_remove(&cfg, what, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        rc = 1;
    } else {
        printf("removed sandbox of %s\n", what);
    }
    config_release(&cfg);
    return rc;
}

int cmd_sandbox_reset(const struct command *cmd, int argc, char **argv)
{
    const char *key = NULL;
    int rc = cmd_one_arg(cmd, argc, argv, "THREAD_KEY", &key);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_reset(&cfg, key, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("reset the sandbox of %s; its next turn starts a new conversation\n", key);
    config_release(&cfg);
    return rc;
}

int cmd_sprites_golden(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
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

int cmd_sessions_list(const struct command *cmd, int argc, char **argv)
{
    int rc = cmd_no_args(cmd, argc, argv);
    if (rc >= 0) return rc;
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
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

int cmd_sandbox_gc(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"idle", required_argument, 0, 'i'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return cmd_usage_error(cmd, "unexpected argument %s", argv[optind]);
    char *end = NULL;
    long days = vals['i'] ? strtol(vals['i'], &end, 10) : -1;
    if (!vals['i'] || *end || end == vals['i'] || days < 0 || days > 36500)
        return cmd_usage_error(cmd, "%s", "--idle needs a number of days (0 or more)");
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
    struct jb_err err = {0};
    rc = core_sandbox_gc(&cfg, (int64_t)days * 86400, &err);
    if (rc < 0)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("removed %d sandbox(es) idle for more than %ld day(s)\n", rc, days);
    config_release(&cfg);
    return rc < 0 ? 1 : 0;
}

int cmd_turns(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind + 1 < argc) return cmd_usage_error(cmd, "unexpected argument %s", argv[optind + 1]);
    char *end = NULL;
    long limit = vals['n'] ? strtol(vals['n'], &end, 10) : 20;
    if (vals['n'] && (*end || end == vals['n'] || limit < 1 || limit > 100000))
        return cmd_usage_error(cmd, "%s", "--limit needs a number from 1 to 100000");
    struct jb_config cfg;
    struct store *st = NULL;
    if (cmd_open_store(&cfg, &st) < 0) return 1;
    struct turn_row *v = NULL;
    size_t n = 0;
    struct jb_err err = {0};
    rc = store_turn_list(st, optind < argc ? argv[optind] : NULL, (size_t)limit, &v, &n, &err) < 0;
    if (rc)
        fprintf(stderr, "janebot: %s\n", err.msg);
    else
        printf("%-20s  %-28s  %-12s  %-8s  %-22s  %-11s  %4s  %9s  %9s\n", "STARTED", "THREAD KEY",
               "USER", "BACKEND", "SANDBOX", "OUTCOME", "EXIT", "EXEC MS", "TOTAL MS");
    for (size_t i = 0; !rc && i < n; i++) {
        char when[32];
        jb_fmt_time(v[i].started_at / 1000, when, sizeof when);
        printf("%-20s  %-28s  %-12s  %-8s  %-22s  %-11s  %4d  %9lld  %9lld\n", when,
               v[i].thread_key, v[i].user_id ? v[i].user_id : "-",
               v[i].backend ? v[i].backend : "-", v[i].sandbox ? v[i].sandbox : "-",
               v[i].outcome ? v[i].outcome : "running", v[i].exit_status, (long long)v[i].exec_ms,
               (long long)v[i].duration_ms);
    }
    turn_rows_free(v, n);
    store_close(st);
    config_release(&cfg);
    return rc;
}
