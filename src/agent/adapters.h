/* agent/adapters.h -- private to src/agent: the adapter tables and what they share. */
#ifndef JB_AGENT_ADAPTERS_H
#define JB_AGENT_ADAPTERS_H

#include <jansson.h>

#include "agent/agent.h"

extern const struct agent_ops agent_amp_ops;
extern const struct agent_ops agent_claude_ops;
extern const struct agent_ops agent_command_ops;

static inline void agent_cmd_releasep(struct agent_cmd *c)
{
    agent_cmd_release(c);
}

/* Start c (zeroed) for ops: argv[0] = the resolved host binary, ro_paths = what the sandbox
 * must show of it (the file alone when file_only, else agent_bin_ro_path()), stdin_data =
 * a copy of t->prompt (NULL = ""). On error c may be half filled: the caller releases it. */
int agent_cmd_begin(const struct agent_ops *ops, const struct agent_turn *t, int file_only,
                    struct agent_cmd *c, struct jb_err *err);

/* Push to ro what the sandbox needs to see of the resolved binary `real` (absolute, no
 * symlinks): nothing under /usr/; the package of an npm-installed CLI (the nearest dir at
 * most 3 levels up that holds a package.json, never "/", a top dir such as /opt, a home
 * directory or ~/.local); else the file alone. Never the binary's folder as such: it may
 * hold a deployment's .env (DEPLOY/{.env,bin/amp}). The bind itself is checked by
 * sandbox_ro_path_check(). */
int agent_bin_ro_path(const char *real, struct jb_strv *ro, struct jb_err *err);

/* Add a file to c->files (copies path and data). JB_ENOMEM, or JB_EPROTO when full. */
int agent_cmd_add_file(struct agent_cmd *c, const char *path, const char *data, size_t len,
                       struct jb_err *err);

/* ---- the channel's policy in each agent's own switches (toolmap.c) ----
 * Each does nothing when t->policy is NULL. Amp: amp.tools.disable/enable and
 * amp.mcpServers into the settings object. Claude: --mcp-config <run_dir>/mcp.json
 * --strict-mcp-config and --allowedTools/--disallowedTools. Command: the file
 * <run_dir>/mcp.json in JANEBOT_MCP_CONFIG and JANEBOT_TOOL_PROFILE. */
int agent_amp_policy(const struct agent_turn *t, json_t *settings, struct jb_err *err);
int agent_claude_policy(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err);
int agent_command_policy(const struct agent_turn *t, struct agent_cmd *c, struct jb_err *err);

#endif
