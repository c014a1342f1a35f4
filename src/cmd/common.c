/* cmd/common.c -- what the commands share: option parsing with --help and usage errors,
 * loading the configuration, opening the database. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/core.h"
#include "store/store.h"

int cmd_usage_error(const struct command *cmd, const char *fmt, const char *arg)
{
    if (fmt) {
        fprintf(stderr, "janebot %s: ", cmd->name);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fprintf(stderr, "usage: janebot %s\n", cmd->usage);
    return 2;
}

int cmd_parse_opts(const struct command *cmd, int argc, char **argv, const struct option *opts,
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
            return cmd_usage_error(cmd, ch == ':' ? "option %s needs a value" : "unknown option %s",
                                   bad);
        }
        vals[ch] = optarg ? optarg : (char *)""; /* a flag: set, with no value */
    }
    return -1;
}

int cmd_load_config(struct jb_config *cfg)
{
    struct jb_err err = {0};
    if (config_load(cfg, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        config_release(cfg);
        return -1;
    }
    jb_log_init(cfg->log_level, stderr);
    jb_log_set_format(cfg->log_format);
    return 0;
}

int cmd_no_args(const struct command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return cmd_usage_error(cmd, "unexpected argument %s", argv[optind]);
    return -1;
}

int cmd_one_arg(const struct command *cmd, int argc, char **argv, const char *what,
                const char **ret)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *vals[256] = {0};
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind + 1 != argc) return cmd_usage_error(cmd, "expected one %s", what);
    *ret = argv[optind];
    return -1;
}

int cmd_open_store(struct jb_config *cfg, struct store **st)
{
    struct jb_err err = {0};
    if (cmd_load_config(cfg) < 0) return -1;
    if (jb_mkdir_p(cfg->state_dir, 0700, &err) < 0 || store_open(cfg->db_path, st, &err) < 0) {
        fprintf(stderr, "janebot: %s\n", err.msg);
        config_release(cfg);
        return -1;
    }
    return 0;
}
