/* agent/command.c -- any executable that prints Claude-style stream-json (JANEBOT_AGENT_CMD).
 *
 * Run with no arguments and the prompt on stdin. The context comes by environment:
 * JANEBOT_THREAD_KEY, JANEBOT_USER, and JANEBOT_RESUME_ID (the session_id it printed on the
 * thread's previous turn) only when resuming. With JANEBOT_AGENT_CMD_INPUT=stream-json it
 * declares it reads stream-json user lines: the prompt comes as the first
 * {"type":"user",...} line, later messages of the thread as more lines while it runs, and
 * stdin closes after its result (JANEBOT_INPUT=stream-json tells it so). */
#include <string.h>

#include "agent/adapters.h"

#define MAX_RESUME_ID 256

/* Printable ASCII, no newline, at most MAX_RESUME_ID bytes. */
static int printable_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MAX_RESUME_ID) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

static int command_prepare(const struct agent_turn *t, struct agent_cmd *out, struct jb_err *err)
{
    jb_auto(agent_cmd_releasep) struct agent_cmd c = {0};
    if (agent_cmd_begin(&agent_command_ops, t, 1, &c, err) < 0) return -1;
    if (t->resume_id && *t->resume_id && !printable_id(t->resume_id))
        log_warn("command agent: ignoring a malformed resume id; starting anew");
    if (printable_id(t->resume_id) &&
        jb_env_set(&c.env, "JANEBOT_RESUME_ID", t->resume_id, err) < 0)
        return -1;
    if (t->thread_key && jb_env_set(&c.env, "JANEBOT_THREAD_KEY", t->thread_key, err) < 0)
        return -1;
    if (t->user && jb_env_set(&c.env, "JANEBOT_USER", t->user, err) < 0) return -1;
    jb_autofree char *who = agent_instructions(t);
    if (who && jb_env_set(&c.env, "JANEBOT_INSTRUCTIONS", who, err) < 0) return -1;
    if (agent_command_policy(t, &c, err) < 0) return -1;
    if (t->opts && t->opts->cmd_stream_input) {
        /* JANEBOT_AGENT_CMD_INPUT=stream-json: the prompt is the first user line, and more
         * come while it runs (messages sent in the thread meanwhile). */
        free(c.stdin_data);
        if (!(c.stdin_data = agent_input_line(t->prompt)))
            return jb_err_set(err, JB_ENOMEM, "prompt line");
        c.live_input = 1;
        if (jb_env_set(&c.env, "JANEBOT_INPUT", "stream-json", err) < 0) return -1;
    }
    *out = c;
    c = (struct agent_cmd){0};
    return 0;
}

const struct agent_ops agent_command_ops = {
    .version = 1,
    .name = "command",
    .key_var = NULL,
    .prepare = command_prepare,
    .bin_name = NULL,
    .install_hint = "set JANEBOT_AGENT_CMD to the absolute path of an executable",
};
