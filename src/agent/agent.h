/* agent/agent.h -- agent CLIs behind a table of adapters, and the stream-json parser.
 *
 * An adapter ("amp", "claude", "command") turns one user message into the argv,
 * environment, read-only files and stdin of one non-interactive CLI run, resuming the
 * thread's conversation by the session id saved from the previous turn. Every adapter's
 * CLI prints Claude-style stream-json on stdout; agent_stream parses it incrementally
 * and agent_result accumulates what a turn needs (session id, answer, usage).
 * Adapters do not know which sandbox they run in: paths for files come from
 * agent_turn.run_dir. */
#ifndef JB_AGENT_H
#define JB_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ---- adapters ------------------------------------------------------------------- */

/* The channel's policy for one turn (core/policy.c builds it; borrowed). */
enum agent_tool_profile {
    AGENT_TOOLS_FULL,     /* every tool but the cross-thread ones */
    AGENT_TOOLS_NO_SHELL, /* the seed's "drop Bash entirely" list */
    AGENT_TOOLS_ALLOW,    /* exactly the tools in allow */
};
struct agent_policy {
    const char *mcp_json; /* the channel's MCP servers, {"name": definition, ...}; "{}" none */
    enum agent_tool_profile tools;
    const char *const *allow; /* AGENT_TOOLS_ALLOW: NULL-terminated tool names */
    /* 1: the channel's `approve:` lists tools; the agent must ask janebot before a tool
     * runs (Claude Code: --permission-prompt-tool stdio), never skip its permissions. */
    int ask_permission;
    /* With ask_permission: the channel's `approve:` entries (tool names, "edit", "mcp:NAME",
     * "*"), NULL-terminated; Claude Code is made to ask about these even where it would not. */
    const char *const *approve;
};
/* The file-editing tools of Claude Code and Amp (what `approve: [edit]` covers);
 * NULL-terminated. */
extern const char *const agent_edit_tools[];

/* What the adapters take from the configuration: the core fills it (core_agent_opts());
 * every string is borrowed and may be NULL (unset). */
struct agent_opts {
    const char *agent_cmd;         /* JANEBOT_AGENT_CMD: absolute path of the command agent */
    int cmd_stream_input;          /* JANEBOT_AGENT_CMD_INPUT=stream-json: it reads user lines */
    const char *agent_bin;         /* JANEBOT_AGENT_BIN: path or name of the amp/claude CLI */
    const char *path_env;          /* the host's PATH, to look CLI names up in */
    const char *agent_model;       /* JANEBOT_AGENT_MODEL: --model for claude */
    const char *amp_api_key;       /* AMP_API_KEY (secret) */
    const char *anthropic_api_key; /* ANTHROPIC_API_KEY (secret) */
};

struct agent_turn {
    const struct agent_policy *policy; /* NULL: no MCP servers, no tool switches at all */
    const struct agent_opts *opts;
    const char *thread_key;
    const char *user;
    const char *prompt;
    const char *resume_id; /* session id saved from the last turn, or NULL for a new one */
    const char *run_dir;   /* absolute dir inside the sandbox for read-only files */
};

struct agent_file {
    char *path; /* absolute, under run_dir */
    char *data;
    size_t len;
};

/* What one run needs. Everything is owned; release with agent_cmd_release(). */
struct agent_cmd {
    struct jb_strv argv;
    struct jb_strv env;      /* NAME=VALUE added to the sandbox's base environment */
    struct jb_strv ro_paths; /* host paths the sandbox must show read-only (the CLI) */
    struct agent_file files[4];
    size_t nfiles;
    char *stdin_data; /* the prompt (with live_input: its user line) */
    /* 1: the CLI reads stream-json user lines on stdin while it runs (the prompt is the
     * first; agent_input_line() makes more); the caller keeps stdin open and closes it
     * after the run's result. 0: stdin is the prompt alone. */
    int live_input;
    /* 1 (with live_input): the CLI stops its turn on agent_interrupt_line() (Claude Code's
     * interrupt control request), so a stop asks it first and kills after a grace. */
    int takes_interrupt;
    /* 1 (with live_input): the CLI asks before each tool that needs permission with an
     * AGENT_EV_PERMISSION event and waits for agent_permission_line() on its stdin. */
    int asks_permission;
    /* (with live_input) a message sent while it works is a steering line: agent_steer_line()
     * with "steer": true (Amp's --stream-json-input), not a plain user line (Claude Code). */
    int steer_flag;
    char *session_id; /* session the run will use when known before it starts
                         (Claude: the new --session-id or the --resume id), or NULL */
};
/* Frees everything and zeroes *c; accepts a zeroed or half-filled struct. */
void agent_cmd_release(struct agent_cmd *c);
/* One stream-json user message for a CLI with live_input, newline-terminated:
 * {"type":"user","message":{"role":"user","content":[{"type":"text","text":TEXT}]}}. Always
 * one compact JSON line, never anything else: Claude Code exits on a line that is not
 * JSON. Caller frees; NULL when text is not UTF-8 or out of memory. */
char *agent_input_line(const char *text);
/* A message for a running agent: agent_input_line()'s line, plus "steer":true and
 * "request_id":ID (1..256 bytes, which makes a redelivered line one message) when steer_flag
 * (Amp). Caller frees; NULL when text is not UTF-8 or out of memory. */
char *agent_steer_line(const char *text, int steer_flag, const char *request_id);
/* Claude Code's interrupt control request, one line: {"type":"control_request",
 * "request_id":ID,"request":{"subtype":"interrupt"}}. Caller frees; NULL on ENOMEM. */
char *agent_interrupt_line(const char *request_id);
/* The answer to a permission question (AGENT_EV_PERMISSION) of Claude Code, one line: a
 * control_response for request_id, {"behavior":"allow","updatedInput":INPUT} when allow
 * (input_json: the object asked about, run unchanged) else {"behavior":"deny","message":
 * why}. Caller frees; NULL when input_json is not a JSON object or out of memory. */
char *agent_permission_line(const char *request_id, int allow, const char *input_json,
                            const char *why);

struct agent_ops {
    int version;         /* 1 */
    const char *name;    /* "amp", "claude", "command" */
    const char *key_var; /* the API key variable it needs, or NULL */
    /* Fill *out (zeroed by the caller) for one run; *out is written only on success, then
     * owned by the caller (agent_cmd_release()). The prompt goes to stdin_data, never argv.
     * Errors: JB_EUNAVAIL (CLI not installed; the message says how to install it),
     * JB_ECONFIG (no run_dir where one is needed), JB_ENOMEM. Thread-safe. */
    int (*prepare)(const struct agent_turn *t, struct agent_cmd *out, struct jb_err *err);
    const char *bin_name;     /* executable looked up on PATH, or NULL: opts->agent_cmd */
    const char *install_hint; /* appended to "not found" errors */
};

const struct agent_ops *agent_ops_find(const char *name); /* NULL if unknown */
/* Who asked and where, for the agent's instructions (not its prompt): caller frees; NULL
 * when out of memory. Claude gets it as --append-system-prompt, a command agent as
 * JANEBOT_INSTRUCTIONS. */
char *agent_instructions(const struct agent_turn *t);
/* Host path of the agent's executable, realpath()ed; caller frees. amp/claude:
 * o->agent_bin (a name looked up on o->path_env, or a path) else bin_name on o->path_env;
 * command: o->agent_cmd, which must be an absolute path. NULL with JB_EUNAVAIL and a
 * message saying how to install or configure it. */
char *agent_binary(const struct agent_ops *ops, const struct agent_opts *o, struct jb_err *err);

/* ---- stream-json parser --------------------------------------------------------- */

enum agent_event_type {
    AGENT_EV_INIT,        /* session_id */
    AGENT_EV_TEXT,        /* text: one assistant text block of the main agent */
    AGENT_EV_TOOL_USE,    /* tool_name, text: short summary of the input */
    AGENT_EV_TOOL_RESULT, /* is_error, text: the result when it is a string (may be NULL) */
    AGENT_EV_RETRY,       /* text: "API retry N/M (status S)" */
    AGENT_EV_RESULT,      /* text (may be NULL), is_error, subtype, tokens, errors */
    /* The agent asks before a tool runs (Claude Code's can_use_tool control request):
     * request_id, tool_name, input_json (the tool's input, one compact JSON object),
     * tool_use_id (may be NULL). It waits for agent_permission_line() on stdin. */
    AGENT_EV_PERMISSION,
    AGENT_EV_PERMISSION_CANCEL, /* request_id: that question is withdrawn */
};

/* Every pointer is borrowed and valid only during the callback. */
struct agent_event {
    enum agent_event_type type;
    const char *session_id;
    const char *text;
    const char *tool_name;
    const char *subtype;
    int is_error;
    int64_t input_tokens, output_tokens;
    const char *errors; /* RESULT: the "errors" list joined with "; ", or NULL */
    const char *request_id, *input_json, *tool_use_id; /* PERMISSION, PERMISSION_CANCEL */
};

struct agent_stream_stats {
    size_t lines;    /* complete lines seen (blank and too long ones included) */
    size_t events;   /* events emitted */
    size_t not_json; /* skipped: not a JSON object */
    size_t unknown;  /* skipped: unknown type or subtype */
    size_t too_long; /* skipped: over the line cap */
};

struct agent_stream;
typedef void (*agent_event_fn)(void *ud, const struct agent_event *ev);
/* max_line: the cap of one line in bytes (0 = 16 MiB). NULL when out of memory.
 * Owned by the caller; free with agent_stream_free(). */
struct agent_stream *agent_stream_new(size_t max_line, agent_event_fn cb, void *ud);
/* Feed bytes as they arrive; emits events (zero or more) per complete, understood line,
 * from inside this call. Never fails: bad lines are counted and skipped. Lines of
 * subagents (non-null parent_tool_use_id) emit nothing. One stream per thread. */
void agent_stream_feed(struct agent_stream *st, const char *data, size_t len);
/* End of input: parses a non-empty unterminated tail once. */
void agent_stream_finish(struct agent_stream *st);
const struct agent_stream_stats *agent_stream_stats(const struct agent_stream *st);
void agent_stream_free(struct agent_stream *st);

/* ---- what a turn keeps of the stream -------------------------------------------- */

struct agent_result {
    char *session_id;    /* last seen; owned */
    char *result_text;   /* result line's text; owned, NULL when none */
    struct jb_buf texts; /* assistant texts joined by blank lines */
    char *last_tool;     /* owned */
    char *subtype;       /* result subtype; owned */
    char *errors;        /* result "errors" joined; owned */
    int has_result, is_error;
    int64_t input_tokens, output_tokens;
    size_t tool_uses;
};
#define AGENT_RESULT_INIT                                                                          \
    {                                                                                              \
        .texts = JB_BUF_INIT(4u << 20)                                                             \
    }
/* An agent_event_fn that records into a struct agent_result (ud). session_id comes from
 * init and result events (else the first event carrying one); a later result replaces an
 * earlier one. Out of memory loses the affected field, nothing else. */
void agent_result_on_event(void *ud, const struct agent_event *ev);
/* The answer: the result text, else the assistant texts; borrowed, NULL when neither. */
const char *agent_result_answer(const struct agent_result *r);
/* 1 when the run failed because the resumed conversation does not exist (Claude:
 * "No conversation found with session ID"): retry once with a fresh session. */
int agent_resume_missing(const struct agent_result *r);
/* Frees everything; *r is AGENT_RESULT_INIT afterwards. */
void agent_result_release(struct agent_result *r);

#endif
