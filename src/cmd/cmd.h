/* cmd/cmd.h -- the command line's commands: each parses its own arguments (getopt),
 * loads the configuration and calls the library. main.c holds the table of commands and
 * dispatches argv to one of them; the helpers here are what the commands share. */
#ifndef JB_CMD_H
#define JB_CMD_H

#include <getopt.h>

struct jb_config;
struct store;

struct command {
    const char *name; /* "chat", "sandbox exec", … */
    const char *usage;
    int (*run)(const struct command *cmd, int argc, char **argv);
    const char *help; /* more for --help, or NULL */
};

/* ---- option parsing shared by every command: --help, and an error on the unknown ---- */

/* Prints "janebot NAME: " fmt (with arg) when fmt is set, then the usage; returns 2. */
int cmd_usage_error(const struct command *cmd, const char *fmt, const char *arg);
/* Parses long options from `opts`; returns -1 when parsing may go on, else an exit code.
 * vals[ch] gets the value of the option whose getopt code is ch. */
int cmd_parse_opts(const struct command *cmd, int argc, char **argv, const struct option *opts,
                   char **vals);
/* For a command without options or arguments: -1 when it may run, else an exit code. */
int cmd_no_args(const struct command *cmd, int argc, char **argv);
/* Only --help and exactly one argument (what it is, for the error): -1 with *ret set when
 * the command may go on, else its exit code. */
int cmd_one_arg(const struct command *cmd, int argc, char **argv, const char *what,
                const char **ret);

/* Loads the configuration and starts logging; on error prints it and returns -1 (cfg is
 * then released). */
int cmd_load_config(struct jb_config *cfg);
/* cmd_load_config(), then opens the database (making the state dir); -1 after printing
 * the error, with cfg released. */
int cmd_open_store(struct jb_config *cfg, struct store **st);

/* ---- commands (serve.c) ---- */

int cmd_serve(const struct command *cmd, int argc, char **argv);

/* ---- commands (sandbox.c) ---- */

int cmd_sandbox_exec(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_list(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_rm(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_show(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_egress(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_gc(const struct command *cmd, int argc, char **argv);
int cmd_sandbox_reset(const struct command *cmd, int argc, char **argv);
int cmd_sprites_golden(const struct command *cmd, int argc, char **argv);
int cmd_sessions_list(const struct command *cmd, int argc, char **argv);
int cmd_turns(const struct command *cmd, int argc, char **argv);

/* ---- commands (admin.c) ---- */

int cmd_tokens_list(const struct command *cmd, int argc, char **argv);
int cmd_tokens_revoke(const struct command *cmd, int argc, char **argv);
int cmd_usage(const struct command *cmd, int argc, char **argv);
int cmd_doctor(const struct command *cmd, int argc, char **argv);
int cmd_config_check(const struct command *cmd, int argc, char **argv);

#endif
