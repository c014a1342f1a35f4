/* main.c -- janebot's command line: the table of commands and the dispatch of argv to
 * one of them, plus `chat`; the other commands are in cmd/. No logic of its own beyond
 * printing tables. */
#include <editline/readline.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/core.h"
#include "frontend/frontend.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"

#define VERSION JB_VERSION

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

/* A line typed while an approval question is shown: its answer. -1 when it is none. */
static int approval_word(const char *line, enum approval_answer *ret)
{
    while (*line == ' ' || *line == '\t')
        line++;
    static const struct {
        const char *word;
        enum approval_answer a;
    } words[] = {{"y", APPROVAL_ALLOW_ONCE},   {"yes", APPROVAL_ALLOW_ONCE},
                 {"a", APPROVAL_ALLOW_THREAD}, {"always", APPROVAL_ALLOW_THREAD},
                 {"n", APPROVAL_DENY},         {"no", APPROVAL_DENY}};
    size_t len = strcspn(line, " \t\r\n");
    for (size_t i = 0; i < JB_ARRAY_LEN(words); i++)
        if (len == strlen(words[i].word) && !strncasecmp(line, words[i].word, len))
            return *ret = words[i].a, 0;
    return -1;
}

/* Until the thread's turns are over, answer the approval questions they ask with the lines
 * typed (y / a / n). 0, or -1 at the end of the input (a question then is denied). */
static int chat_wait(struct core *c, struct frontend *fe, const char *user, int interactive,
                     size_t *cap, char **buf)
{
    char id[200], answered[200] = "";
    while (core_pending(c) > 0) {
        /* A question stays shown until its turn has taken the answer. */
        if (!frontend_terminal_question(fe, id, sizeof id) || !strcmp(id, answered)) {
            usleep(20000);
            continue;
        }
        char *line = interactive ? readline("allow (y/a/n)> ") : NULL;
        if (!interactive) {
            ssize_t n = getline(buf, cap, stdin);
            line = n < 0 ? NULL : strdup(*buf);
        }
        enum approval_answer a = APPROVAL_DENY;
        if (!line) {
            frontend_terminal_input_closed(fe);
            core_approval_answer(c, id, user, APPROVAL_DENY, NULL, 0);
            return -1;
        }
        if (approval_word(line, &a) == 0) {
            core_approval_answer(c, id, user, a, NULL, 0);
            snprintf(answered, sizeof answered, "%s", id);
        } else
            fprintf(stderr, "answer y (allow once), a (allow for this thread) or n (deny)\n");
        free(line);
    }
    return 0;
}

static int chat_loop(struct core *c, struct frontend *fe, const char *key, const char *user,
                     int interactive)
{
    int ask = core_approvals_on(c, key); /* a question's answer is read as the next line */
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
            else if (interactive || ask) /* a conversation: answer before the next prompt */
                if (chat_wait(c, fe, user, interactive, &cap, &buf) < 0) {
                    free(line);
                    break;
                }
        }
        free(line);
    }
    frontend_terminal_input_closed(fe);
    free(buf);
    core_drain(c);
    return 0;
}

static int cmd_chat(const struct command *cmd, int argc, char **argv);

static const struct command commands[] = {
    {"serve", "serve", cmd_serve, NULL},
    {"chat", "chat [--thread NAME] [--user ID]", cmd_chat, NULL},
    {"sandbox exec", "sandbox exec THREAD_KEY -- CMD [ARG...]", cmd_sandbox_exec, NULL},
    {"sandbox list", "sandbox list", cmd_sandbox_list, NULL},
    {"sandbox show", "sandbox show THREAD_KEY", cmd_sandbox_show,
     "What is known of the thread's sandbox: its name, backend, size and last use, its agent\n"
     "session, the egress names its channel adds (and whether egress_approval is on), and\n"
     "the thread's own egress list: the names a person allowed for this thread.\n"},
    {"sandbox egress", "sandbox egress rm THREAD_KEY NAME", cmd_sandbox_egress,
     "Removes NAME from the thread's own egress list (added by \"Allow for this thread\" on\n"
     "an egress approval). Its next connection there is asked about again. Takes effect at\n"
     "the thread's next run (a Sprite's network policy is set anew then).\n"},
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
    {"turns", "turns [--limit N] [THREAD_KEY]", cmd_turns,
     "The turn audit, newest first (default 20): when, thread, who asked, backend and sandbox\n"
     "(the sprite), outcome, exit status, wall time in the sandbox and of the whole turn.\n"},
    {"tokens list", "tokens list", cmd_tokens_list, NULL},
    {"tokens revoke", "tokens revoke THREAD_KEY", cmd_tokens_revoke, NULL},
    {"usage", "usage [--since YYYY-MM-DD] [--json]", cmd_usage, NULL},
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
    int rc = cmd_parse_opts(cmd, argc, argv, opts, vals);
    if (rc >= 0) return rc;
    if (optind < argc) return cmd_usage_error(cmd, "unexpected argument %s", argv[optind]);
    const char *thread = vals['t'] ? vals['t'] : "default";
    const char *user = vals['u'] ? vals['u'] : login_name();
    if (!*thread || strchr(thread, '\n') || !*user)
        return cmd_usage_error(cmd, "%s", "thread and user must be non-empty");
    struct jb_config cfg;
    if (cmd_load_config(&cfg) < 0) return 1;
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
    rc = chat_loop(c, fe, key, user, interactive);
    core_free(c);
    frontend_terminal_free(fe);
    config_release(&cfg);
    return rc;
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
    if (argc > 1 && !strcmp(argv[1], "sandbox-init"))
        return sandbox_init_main(argc - 1, argv + 1, proxy_hand_over);
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
