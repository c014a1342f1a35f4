/* core/core.h -- configuration, thread lanes on a worker pool, and the turn.
 *
 * The core is the only place that holds the three seams: it takes a message from a
 * lane, ensures the thread's sandbox, lets the agent adapter build the run, streams the
 * output through the parser and reports to the frontend, recording sessions, the inbox
 * and the audit in the store. It knows no wire format. */
#ifndef JB_CORE_H
#define JB_CORE_H

#include <stdio.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ---- configuration (environment, then ./.env, then $STATE/.env) ---- */

struct jb_config {
    char *state_dir;             /* JANEBOT_STATE_DIR */
    char *db_path;               /* <state_dir>/janebot.db */
    char *agent;                 /* JANEBOT_AGENT: amp | claude | command */
    char *agent_cmd;             /* JANEBOT_AGENT_CMD (absolute path) for "command" */
    char *agent_cmd_input;       /* JANEBOT_AGENT_CMD_INPUT: text | stream-json */
    char *agent_bin;             /* JANEBOT_AGENT_BIN: path or name of the amp/claude CLI */
    char *sandbox;               /* JANEBOT_SANDBOX: local | host | sprites */
    int allow_local_execution;   /* ALLOW_LOCAL_EXECUTION */
    int max_concurrent_turns;    /* JANEBOT_MAX_CONCURRENT_TURNS, 1..256 */
    int turn_timeout_s;          /* JANEBOT_TURN_TIMEOUT, 1..86400 */
    enum jb_log_level log_level; /* JANEBOT_LOG_LEVEL */
    char *amp_api_key;           /* AMP_API_KEY (secret) */
    char *anthropic_api_key;     /* ANTHROPIC_API_KEY (secret) */
    char *agent_model;           /* JANEBOT_AGENT_MODEL, passed as --model to claude */
    char *path_env;              /* host PATH, to find agent CLIs */
    /* operations */
    enum jb_log_format log_format; /* JANEBOT_LOG_FORMAT: text | json */
    int stop_grace_s;              /* JANEBOT_STOP_GRACE: seconds serve's turns get to end */
    /* local sandbox limits */
    int sandbox_max_procs;   /* JANEBOT_SANDBOX_MAX_PROCS: RLIMIT_NPROC (and pids.max) */
    int sandbox_max_file_mb; /* JANEBOT_SANDBOX_MAX_FILE_MB: RLIMIT_FSIZE */
    int sandbox_memory_mb;   /* JANEBOT_SANDBOX_MEMORY_MB: memory of a sandbox (its cgroup) */
    int sandbox_as_mb;       /* JANEBOT_SANDBOX_ADDRESS_SPACE_MB: RLIMIT_AS, 0 = none */
    int sandbox_cpu_s;       /* JANEBOT_SANDBOX_CPU_SECONDS: RLIMIT_CPU */
    int sandbox_disk_mb;     /* JANEBOT_SANDBOX_DISK_MB: quota of a thread's home */
    int sandbox_tmp_mb;      /* JANEBOT_SANDBOX_TMP_MB: size of the sandbox's /tmp */
    int sandbox_nice;        /* JANEBOT_SANDBOX_NICE: niceness of every process in a sandbox */
    long sandbox_uid_base;   /* JANEBOT_SANDBOX_UID_BASE: host uids of sandboxes when root */
    int sandbox_idle_days;   /* JANEBOT_SANDBOX_IDLE_DAYS: gc of idle sandboxes */
    int retention_days;      /* JANEBOT_RETENTION_DAYS: history the store keeps (0 = all) */
    char *egress_allow;      /* JANEBOT_EGRESS_ALLOW (NULL: the default list) */
    char *egress_test_hosts; /* JANEBOT_EGRESS_TEST_HOSTS (tests only) */
    char *sprites_token;     /* SPRITES_TOKEN (secret) */
    char *sprites_api_url;   /* SPRITES_API_URL */
    int sprites_pool;        /* JANEBOT_SPRITES_POOL: warm sprites kept ready, 0..50 */
    char *sprites_setup; /* JANEBOT_SPRITES_SETUP: shell run once in each new sprite ("" none) */
    char *sprites_setup_allow; /* JANEBOT_SPRITES_SETUP_EGRESS: hosts reachable during set-up */
    int sprites_health_s;      /* JANEBOT_SPRITES_HEALTH_TIMEOUT: a sprite must answer within */
    char *proxy_listen;        /* JANEBOT_PROXY_LISTEN: LLM proxy on TCP for sprites (HOST:PORT) */
    char *metrics_listen;      /* JANEBOT_METRICS_LISTEN: /metrics, /healthz, /readyz (HOST:PORT) */
    char *public_url;          /* JANEBOT_PUBLIC_URL: where sprites reach it (https, no '/') */
    /* LLM proxy */
    char *openai_api_key;        /* OPENAI_API_KEY (secret) */
    char *upstream_anthropic;    /* JANEBOT_UPSTREAM_ANTHROPIC */
    char *upstream_openai;       /* JANEBOT_UPSTREAM_OPENAI */
    char *upstream_amp;          /* JANEBOT_UPSTREAM_AMP */
    long long user_daily_tokens; /* JANEBOT_USER_DAILY_TOKENS (0 = no cap) */
    char *prices;                /* JANEBOT_PRICES (parsed into the policy, prices.c) */
    /* Slack */
    char *slack_bot_token;           /* SLACK_BOT_TOKEN (secret) */
    char *slack_app_token;           /* SLACK_APP_TOKEN (secret) */
    char *slack_api_url;             /* SLACK_API_URL, ends with '/' */
    struct jb_strv allowed_users;    /* ALLOWED_USER_IDS (empty = everyone) */
    struct jb_strv allowed_channels; /* ALLOWED_CHANNEL_IDS (empty = everyone) */
    int debounce_ms;                 /* DEBOUNCE_MS */
    int max_response_length;         /* MAX_RESPONSE_LENGTH */
};

/* Read and validate everything; on error names the variable, the value and what is
 * allowed. Registers secrets with the logger. Release with config_release(). */
int config_load(struct jb_config *cfg, struct jb_err *err);
void config_release(struct jb_config *cfg);
/* `serve` needs both Slack tokens, well formed: -1 naming the variable (never the value). */
int config_check_slack(const struct jb_config *cfg, struct jb_err *err);

/* What the agent adapters take from cfg (agent/agent.h); every string is borrowed from
 * cfg, valid as long as cfg is. */
struct agent_opts;
void core_agent_opts(const struct jb_config *cfg, struct agent_opts *out);

/* Value of a variable as janebot sees it (environment, then .env files); borrowed. Only
 * valid between config_load() and config_release(). */
const char *config_get(const char *name);
/* The .env parser (config_load() reads ./.env, then $JANEBOT_STATE_DIR/.env with it; also
 * the fuzz target's entry point): NAME=VALUE lines into what config_get() answers, names
 * already known kept. A missing file is 0; a bad line -1 with JB_ECONFIG naming its line.
 * config_release() frees what it read. */
int config_dotenv_read(const char *path, struct jb_err *err);

/* ---- lanes: one per thread key, run on a bounded worker pool ----
 * (L1) At most one turn per lane runs at a time.
 * (L2) Messages of a lane run in arrival order; none is dropped. With merging, every
 *      message waiting when a turn starts goes into that one turn.
 * (L3) Different lanes run in parallel, at most `workers` at once.
 * (L4) With a debounce, an idle lane's turn starts debounce_ms after its latest message.
 * (L5) With max_per_user, at most that many turns of one user (the user of a turn's last
 *      message) run at once; a lane over the cap waits on the ready list, in order. */

struct lane_msg {
    int64_t inbox_id;
    char *thread_key, *user_id, *text;
    char *ref; /* the frontend's reference to the message (Slack: "CHANNEL:TS"), or NULL */
    /* Files shared with the message, fetched when its turn runs: a JSON array of
     * {"name","url","size","mimetype"} as stored in the inbox; NULL when none. */
    char *files;
};

/* Fill m with copies of the strings (ref, files may be NULL): 0, or -1 out of memory (m is
 * then zeroed). Free them with lane_msg_release(), which zeroes m. */
int lane_msg_init(struct lane_msg *m, int64_t inbox_id, const char *thread_key, const char *user,
                  const char *text, const char *ref, const char *files);
void lane_msg_release(struct lane_msg *m);

struct lanes;
/* One turn: n >= 1 messages of one thread, in arrival order (borrowed for the call). */
typedef void (*lane_run_fn)(void *ud, int worker, const struct lane_msg *msgs, size_t n);
struct lanes_opts {
    int workers;
    int merge;        /* 1: a turn takes every waiting message of its lane */
    int debounce_ms;  /* 0: no debounce */
    int max_per_user; /* 0: no cap (L5) */
};
/* Starts the workers. *ret is the caller's; lanes_free() drains and joins. */
int lanes_new(const struct lanes_opts *o, lane_run_fn run, void *ud, struct lanes **ret,
              struct jb_err *err);
/* Copies the message. text, ref and files may be NULL: the core queues only a message's
 * inbox id and user (what a lane's scheduling needs) and reads the rest from the inbox
 * when its turn starts, so a backlog costs memory per message, not per byte of it. The
 * lane_msg given to run has thread_key = the lane's own key. */
int lanes_enqueue(struct lanes *l, int64_t inbox_id, const char *thread_key, const char *user,
                  const char *text, const char *ref, const char *files, struct jb_err *err);
/* Change the cap of (L5) (a reloaded configuration); lanes waiting on it may start. */
void lanes_set_max_per_user(struct lanes *l, int max_per_user);
/* Blocks until every queued message has run. */
void lanes_drain(struct lanes *l);
/* Messages queued or running. */
size_t lanes_pending(struct lanes *l);
/* Lanes ready to run a turn and waiting for a worker (or under the per-user cap). */
size_t lanes_waiting(struct lanes *l);
/* (L6) A stop: no turn starts from now on (queued messages stay queued, and in the
 * inbox); returns how many turns are running. lanes_drain() must not be called after it
 * while messages are queued; lanes_free() then joins the workers without running them. */
int lanes_hold(struct lanes *l);
/* Turns running now. */
int lanes_running(struct lanes *l);
/* 1 when the thread has a message waiting (queued or debounced) or a turn running: its
 * lane exists exactly that long. */
int lanes_has(struct lanes *l, const char *thread_key);
void lanes_free(struct lanes *l);

/* ---- the frontend seam: what the core needs of a frontend ----
 * The core defines it and frontend/ implements it (terminal, Slack), so the core never
 * includes a frontend. Every text is plain markdown from the agent; a frontend renders it
 * its own way. */

struct frontend;

/* ---- approvals: a person's yes before the agent uses a tool (approve.c) ---- */

struct core;
/* 1 when the channel of thread_key lists any tool in `approve:` or has egress_approval. */
int core_approvals_on(struct core *c, const char *thread_key);

struct approval_ask {
    const char *thread_key, *channel, *requester, *tool, *input_json;
    const char *domain; /* an egress ask: the name the sandbox wants to reach (tool "egress");
                         * NULL for a tool */
    unsigned port;      /* with domain */
};
enum approval_answer { APPROVAL_DENY = 0, APPROVAL_ALLOW_ONCE, APPROVAL_ALLOW_THREAD };
struct approval_decision {
    enum approval_answer answer;
    char who[64];     /* the user id who decided, or "timeout", "stop" */
    char reason[200]; /* why, in words fit for the agent and the user */
};
/* What a frontend shows: the question, who may answer and for how long. Borrowed. */
struct approval_request {
    const char *id; /* "<thread key>#perm-<n>": the buttons' value */
    const char *thread_key, *channel, *requester, *tool, *input_json;
    const char *domain; /* egress: show "wants to reach DOMAIN:PORT" instead of a tool */
    unsigned port;
    const char *const *approvers; /* NULL-terminated user ids besides the requester */
    int timeout_s;
};
/* "allowed once", "allowed for this thread", "denied". Static. */
const char *approval_answer_text(enum approval_answer a);

/* 1 when the channel's `approve:` covers tool and the thread has not allowed it for good;
 * 0 when the tool needs nobody's yes. */
int core_approval_needed(struct core *c, const char *channel, const char *thread_key,
                         const char *tool);
/* Ask (through the frontend) and block until a person answers, the channel's
 * approve_timeout passes, or the turn is stopped: those two are a deny. Recorded in the
 * store; ALLOW_THREAD stores the allowance. -1 (out a deny) when it cannot ask at all. */
int core_approval_ask(struct core *c, const struct approval_ask *q, struct approval_decision *out,
                      struct jb_err *err);
/* The same, also ending as a deny once gone(ud) says 1 (the asker went away). */
int core_approval_ask_while(struct core *c, const struct approval_ask *q, int (*gone)(void *ud),
                            void *ud, struct approval_decision *out, struct jb_err *err);
/* A person's answer to request id (from a button). 0 decided; 1 refused: user may not
 * decide (why says so, for them alone); 2 nothing to decide (already decided, expired,
 * unknown): a double click decides once. */
enum approval_click { APPROVAL_DECIDED, APPROVAL_NOT_YOURS, APPROVAL_NOT_PENDING };
enum approval_click core_approval_answer(struct core *c, const char *id, const char *user,
                                         enum approval_answer a, char *why, size_t n);

/* refs[i] is the frontend's reference to the i-th message of a turn (Slack: "CHANNEL:TS"),
 * or NULL; n >= 1. Everything is borrowed for the call. */
struct frontend_ops {
    int version;      /* 1 */
    const char *name; /* "terminal", "slack" */
    /* Work on a turn started: the agent is running. */
    void (*started)(struct frontend *fe, const char *thread_key, const char *user,
                    const char *const *refs, size_t n);
    /* Progress while the agent works: a tool in use, a retry, a wait. */
    void (*progress)(struct frontend *fe, const char *thread_key, const char *status);
    /* The answer of a turn. */
    int (*answer)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                  const char *markdown, struct jb_err *err);
    /* A turn failed; message is short, friendly and already free of secrets. */
    int (*fail)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                const char *message, struct jb_err *err);
    /* The turn is over and recorded (after answer() or fail()): ok or not. Optional. */
    void (*finished)(struct frontend *fe, const char *thread_key, const char *const *refs, size_t n,
                     int ok);
    /* A reply that is not an agent's answer (status, refusals, notes). */
    int (*notice)(struct frontend *fe, const char *thread_key, const char *text,
                  struct jb_err *err);
    /* A file the agent left in its outbox, open for reading (borrowed); NULL when the
     * frontend cannot deliver files (then they stay in the outbox). */
    int (*upload)(struct frontend *fe, const char *thread_key, int fd, const char *name,
                  struct jb_err *err);
    /* Optional: what was said in the thread before the bot joined it (the first turn of a
     * conversation started inside an existing thread), as text for the agent; caller
     * frees; NULL when there is nothing. */
    char *(*context)(struct frontend *fe, const char *thread_key, const char *ref);
    /* Optional: download a file a user shared (url from the message's files) into fd (the
     * caller's, written from its offset), at most max bytes. NULL when the frontend has no
     * files (terminal). Errors are fit for the user: no secrets in them. */
    int (*fetch)(struct frontend *fe, const char *url, int fd, long long max, struct jb_err *err);
    /* Optional: whether the reply of a turn to the message ref (answer() or fail()) is in
     * the thread already: 1 yes, 0 no, -1 cannot tell. Asked at start for a message
     * whose reply was going out when the last process died. */
    int (*answered)(struct frontend *fe, const char *thread_key, const char *ref);
    /* Optional: show an approval request; the answer comes back through
     * core_approval_answer() (Slack), or is given here at once into *now (the terminal:
     * return 1). ref (room for 96) gets the frontend's reference to the question. 0 shown,
     * 1 answered now, -1 cannot ask. NULL: the frontend cannot ask (a deny). */
    int (*approval_show)(struct frontend *fe, const struct approval_request *rq, char *ref,
                         struct approval_decision *now, struct jb_err *err);
    /* Optional: the request was decided (by a person, the timeout or a stop). */
    void (*approval_done)(struct frontend *fe, const struct approval_request *rq, const char *ref,
                          const struct approval_decision *d);
};

/* Files users share are fetched up to this size each; larger ones are skipped (and the user
 * told) when the message comes in. */
#define FRONTEND_FILE_MAX (20LL << 20) /* 20 MiB */

struct frontend {
    const struct frontend_ops *ops;
    void *priv;
};

/* ---- the bot: store + sandbox backend + agent + frontend ---- */

struct core;

struct core_opts {
    int merge;       /* a turn takes every message waiting in its thread (Slack) */
    int debounce_ms; /* quick successive messages of a thread become one turn */
    int gc; /* at start and daily: idle sandboxes (JANEBOT_SANDBOX_IDLE_DAYS), old history */
    struct jb_metrics *metrics; /* serve's registry (borrowed, outlives the core), or NULL */
};

/* Opens the store, builds the sandbox services (proxies) and checks that the sandbox
 * backend can run (fails closed), warns when the agent CLI or its key is missing (each
 * turn then says how to install it), starts the workers (and, with o->gc, the gc). o may
 * be NULL (no merging, no debounce, no gc). *ret is the caller's; core_free() waits for
 * turns in flight. */
int core_new(const struct jb_config *cfg, struct frontend *fe, const struct core_opts *o,
             struct core **ret, struct jb_err *err);
/* Accept a message: stored in the inbox first, then queued in its thread's lane. ref is
 * the frontend's reference to it (may be NULL). Returns 1, with nothing stored or run,
 * when the user is over RATE_LIMIT_PER_MINUTE: the frontend's notice() told them when
 * to retry. (A failed rate check lets the message through.) */
int core_submit(struct core *c, const char *thread_key, const char *user, const char *text,
                const char *ref, struct jb_err *err);
/* Accept a Slack event exactly once (by event id and by post), its sender's rate token spent
 * in the same store transaction: 0 queued, 1 seen before, 2 passed to the thread's running
 * agent (it takes messages while it runs: core_steer), 3 over RATE_LIMIT_PER_MINUTE
 * (recorded as seen, nothing stored for a turn; *ret_retry_s says when to retry), -1 error.
 * A failed rate check lets the message through (logged). While a turn of the thread runs,
 * its status says which happened. Durable before it returns, so the caller may acknowledge it.
 * files (may be NULL): the files shared with it, a JSON array of {"name","url","size","mimetype"}
 * (slack_files_normalise()); stored with the message and fetched into the sandbox's
 * ~/inbox/ through the frontend's fetch() when the turn runs. */
int core_submit_event(struct core *c, const char *event_id, const char *dedupe_key,
                      const char *thread_key, const char *user, const char *text, const char *ref,
                      const char *files, int *ret_retry_s, struct jb_err *err);
/* A Slack event that runs no turn, exactly once: 0 new, 1 seen before, -1 error. */
int core_event_once(struct core *c, const char *event_id, const char *dedupe_key,
                    struct jb_err *err);
/* Queue the inbox's unfinished messages (after a crash or restart) of thread `key`, or
 * of every thread whose key starts with `key` when prefix is 1. Returns how many, or -1. */
int core_resume_pending(struct core *c, const char *key, int prefix, struct jb_err *err);
/* 1 when the bot already has a conversation in this thread (a session, or a turn queued
 * or running), so a reply there without a mention is for the bot. */
int core_knows_thread(struct core *c, const char *thread_key);
/* A one-line status of the thread's turn into buf; returns 1 when one is running. */
int core_status(struct core *c, const char *thread_key, char *buf, size_t n);
/* Cancel the thread's running turn (its processes are killed); 1 when there was one. user
 * (may be NULL) asked: the turn's answer names them. */
int core_abort(struct core *c, const char *thread_key, const char *user);
/* How many turns run, and how many of them in threads whose key starts with prefix. */
void core_running_count(struct core *c, const char *prefix, int *ret_all, int *ret_prefix);
/* Cancel the running turns of user in threads whose key starts with prefix; how many. */
int core_abort_user(struct core *c, const char *prefix, const char *user);
/* ---- stopping a running turn from inside its thread (stop.c) ---- */

/* A ❌ on a message: which message, in which thread (when the frontend knows), by whom.
 * Everything borrowed. */
struct core_stop_req {
    const char *user;       /* who asks to stop */
    const char *channel;    /* the conversation, for who may stop turns there */
    const char *thread_key; /* the thread of the message, or NULL when not known */
    const char *ref;        /* the frontend's reference to the message ("CHANNEL:TS") */
    int on_bot_message;     /* the message is one of the bot's (then thread_key is needed) */
};
enum core_stop_verdict {
    CORE_STOP_NO_TURN,  /* no running turn is that message's: its own, or its thread's
                           for one of the bot's messages */
    CORE_STOP_REFUSED,  /* a turn is, but rq->user may not stop it */
    CORE_STOP_STOPPING, /* it is being stopped; its answer will say by whom */
};
/* Who may stop the running turn of a thread in channel that requester asked for: 1 when
 * user may: the requester, or one of the channel's `approvers:`. The one place this is
 * decided. */
int core_may_stop_turn(struct core *c, const char *channel, const char *requester,
                       const char *user);
/* Stop the running turn rq points at, if rq->user may (like `abort`: its processes are
 * killed). The turn's requester goes into requester (n bytes, "" when no turn), for the
 * log of a refusal. */
enum core_stop_verdict core_stop_turn(struct core *c, const struct core_stop_req *rq,
                                      char *requester, size_t n);
void core_drain(struct core *c);
/* Messages queued or running (0: every turn is over). */
size_t core_pending(struct core *c);
/* /readyz: 0 when a write transaction on the store can begin (it is rolled back), else -1
 * with err saying why (disk full, locked, read-only). */
int core_store_check(struct core *c, struct jb_err *err);
/* A stop: no new turn starts (messages waiting stay in the inbox for the next start);
 * returns how many turns are running. core_free() then waits only for those. */
int core_hold(struct core *c);
/* Turns running now. */
int core_turns_running(struct core *c);
void core_free(struct core *c);

/* ---- what the core decides about a message a frontend received (admit.c) ----
 * The frontend only translates: its event into a struct core_msg, the decision into its
 * own words. Who may use the bot, the thread commands, who may stop what, and the rate
 * limit are decided here. */

/* The facts of one message, as the frontend read them; everything borrowed. */
struct core_msg {
    const char *event_id, *dedupe_key; /* exactly once: by event and by post */
    const char *thread_key, *user, *channel;
    const char *text;  /* the prompt (the bot's mention stripped); "" when none */
    const char *ref;   /* the frontend's reference to the message, or NULL */
    const char *files; /* JSON array of the files shared with it, or NULL */
    int followup_only; /* a reply without a mention: for the bot only in a thread it is in */
};

enum core_verdict {
    CORE_IGNORED,      /* not for the bot: a reply in a thread it is not in */
    CORE_DUPLICATE,    /* this event or post was handled before */
    CORE_REFUSED,      /* the user or the channel is not on the allowlist */
    CORE_STATUS,       /* `status`: text is the thread's status */
    CORE_ABORTED,      /* `abort` / `stop`: the thread's running turn is being stopped */
    CORE_NOT_RUNNING,  /* `abort` / `stop` with no turn running in the thread */
    CORE_EMPTY,        /* neither text nor files: nothing to run */
    CORE_RATE_LIMITED, /* over RATE_LIMIT_PER_MINUTE: text says when to retry */
    CORE_QUEUED,       /* stored and queued for a turn */
    CORE_PASSED,       /* stored and passed to the thread's running agent */
};

struct core_decision {
    enum core_verdict verdict;
    int retry_s;    /* CORE_RATE_LIMITED: seconds until the user may send again */
    char text[512]; /* CORE_STATUS and CORE_RATE_LIMITED: what to tell the user */
};

/* Decide about m and act on it: only CORE_QUEUED runs a turn (durable before this
 * returns, so the frontend may acknowledge the event); every verdict but CORE_IGNORED
 * records the event as seen. -1 with err when the store failed: nothing was queued. */
int core_message(struct core *c, const struct core_msg *m, struct core_decision *d,
                 struct jb_err *err);

/* A command for the whole channel (Slack: `/janebot WORD`). */
enum core_channel_cmd {
    CORE_CMD_HELP,    /* "help" or nothing */
    CORE_CMD_STATUS,  /* "status": running, running_here */
    CORE_CMD_CANCEL,  /* "cancel" or "stop": the caller's own turns in the channel */
    CORE_CMD_UNKNOWN, /* any other word (in word) */
};

struct core_channel_answer {
    int refused; /* the user or channel is not on the allowlist: nothing was done */
    enum core_channel_cmd cmd;
    int running, running_here; /* turns running, and in this channel */
    int cancelled;             /* the caller's turns being stopped */
    char word[32];             /* the command word asked ("" when none) */
};

/* `text` ("status", "cancel", ...) from user in channel: the allowlist, then the
 * command, acting on the turns of threads in that channel only. */
void core_channel_command(struct core *c, const char *user, const char *channel, const char *text,
                          struct core_channel_answer *a);

/* The sandbox backends' options from the configuration (strings borrowed from cfg). */
struct sandbox_opts;
void core_sandbox_opts(const struct jb_config *cfg, struct sandbox_opts *o);

/* `janebot sandbox list`: *ret freed with sandbox_info_free(). */
struct sandbox_info;
int core_sandbox_list(const struct jb_config *cfg, struct sandbox_info **ret, size_t *ret_n,
                      struct jb_err *err);
/* `janebot sandbox rm`: by thread key or name (see sandbox_remove); with a thread key, its
 * agent conversation and tokens are forgotten too. */
int core_sandbox_remove(const struct jb_config *cfg, const char *key_or_name, struct jb_err *err);
/* `janebot sandbox reset`: the thread's sandbox back to its state after set-up (its golden
 * checkpoint for sprites; an empty home for local); the agent conversation is forgotten. */
int core_sandbox_reset(const struct jb_config *cfg, const char *thread_key, struct jb_err *err);
/* `janebot sprites golden`: build the backend's golden sandbox; a report goes to out. */
int core_sandbox_golden(const struct jb_config *cfg, char *out, size_t n, struct jb_err *err);

/* `janebot sandbox gc`: remove sandboxes idle for more than idle_s seconds, with their
 * agent sessions; those in use, and those of threads with a message waiting in the inbox
 * (serve's), stay. Returns how many, or -1. */
int core_sandbox_gc(const struct jb_config *cfg, int64_t idle_s, struct jb_err *err);
/* `janebot sandbox show`: what is known of the thread's sandbox (name, backend, size, last
 * use), its agent session, the egress names its channel adds and whether the channel asks
 * about others (egress_approval), and the thread's own egress list, printed to out. */
int core_sandbox_show(const struct jb_config *cfg, const char *thread_key, FILE *out,
                      struct jb_err *err);
/* `janebot sandbox egress rm`: take name (any case, trailing dot allowed) off the thread's
 * own egress list; JB_ENOTFOUND when it is not there, JB_EPROTO when it is no host name. */
int core_sandbox_egress_rm(const struct jb_config *cfg, const char *thread_key, const char *name,
                           struct jb_err *err);
/* `janebot sandbox exec`: run argv in the thread's sandbox exactly as a turn would (same
 * backend, environment and agent files), stdio passed through. Sets *ret_code to the
 * command's exit status. */
int core_sandbox_exec(const struct jb_config *cfg, const char *thread_key, const char *const *argv,
                      int *ret_code, struct jb_err *err);

#endif
