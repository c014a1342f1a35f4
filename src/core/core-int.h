/* core/core-int.h -- private to src/core: the bot's state shared by bot.c and turn.c. */
#ifndef JB_CORE_INT_H
#define JB_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"

struct agent_ops;
struct agent_event;
struct store;
struct egress_policy;
struct egress_proxy;
struct llm_proxy;

/* ---- the services the core hands the sandbox backends (services.c) ----
 * Built once per process: by core_new() for turns and the daily gc, or once by a one-off
 * command (`sandbox exec|list|rm|reset|gc`, `sprites golden`). Owns the egress proxy and
 * the LLM proxy (with its TCP listener for sprites); the store is the core's connection,
 * or one of its own for a one-off command. */
struct core_services {
    const struct jb_config *cfg;
    struct sandbox_opts opts;    /* from cfg (core_sandbox_opts) */
    char *config_file;           /* opts.config_file's copy (the environment may change) */
    struct sandbox_services svc; /* ud: this */
    int serving;                 /* a long-running process: fail closed at start */
    struct store *st;            /* sandbox uids, sprite names and the pool */
    pthread_mutex_t *st_mu;      /* one user of st at a time */
    pthread_mutex_t own_mu;      /* st_mu when st is this struct's own */
    int own_store;
    struct egress_policy *egress_policy; /* local backend only */
    struct egress_proxy *egress;
    egress_approve_fn *egress_approve; /* set on every listener when not NULL (bot.c) */
    void *egress_approve_ud;
    struct llm_proxy *llm; /* NULL when the host has no provider key (or no public URL) */
    pthread_mutex_t llm_mu;
    int llm_tried; /* sprites: the TCP listener opened (or given up on); under llm_mu */
    int no_keys;   /* sprites: it could not listen: sprites get no API key at all */
};
/* Build them for cfg. st (with its mutex) is borrowed, or NULL: the services open their
 * own connection. serving: a long-running process (the sprites LLM listener opens now and
 * must; otherwise at the first exec that needs it). Undo with core_services_close(), after
 * every sandbox context using them is released. */
int core_services_open(struct core_services *cs, const struct jb_config *cfg, int serving,
                       struct store *st, pthread_mutex_t *st_mu, struct jb_err *err);
void core_services_close(struct core_services *cs);
/* Count into m (borrowed, outlives cs): the proxies' requests and bytes, the Sprites API's
 * errors. Before core_services_sandbox(). */
void core_services_set_metrics(struct core_services *cs, struct jb_metrics *m);
/* The sandbox context on these services (check: the backend must prove it runs here). */
int core_services_sandbox(struct core_services *cs, struct sandbox_ctx *ctx, int check,
                          struct jb_err *err);

/* A turn in progress, for `status` and `abort`. Guarded by core.run_mu. */
struct running {
    char *thread_key;
    const char *user;   /* who asked the turn (its last message's user) */
    int64_t started_ms; /* jb_mono_ms() */
    char last_tool[160];
    const char *const *refs; /* the frontend's references to its messages (borrowed) */
    size_t nrefs;
    char stopped_by[64];         /* who stopped it (core_stop_turn), "" when nobody */
    struct sandbox_input *input; /* the agent's live stdin while it takes messages, or NULL */
    struct steered *steered;     /* messages written to it, newest first */
    int takes_interrupt;         /* input takes agent_interrupt_line() */
    int steer_flag;              /* messages go as agent_steer_line(.., 1, ..) (Amp) */
    int interrupted;             /* a stop was asked of the agent through its input */
    _Atomic int64_t kill_at_ms;  /* then: killed if still running at this time */
    atomic_int cancel;
    struct running *next;
};

/* The turn of thread_key running here (a thread runs one turn at a time), or NULL. The
 * caller holds run_mu and reads r only while it does. */
struct running *core_running_find(struct core *c, const char *thread_key);

/* ---- steering (steer.c): messages passed to a running agent ---- */
struct steered {
    struct lane_msg m; /* owned copies */
    uint64_t end;      /* its line's end in the input (sandbox_input_write) */
    struct steered *next;
};
/* The turn r's agent takes messages on in (owned by the caller until
 * core_steer_detach()). */
void core_steer_attach(struct core *c, struct running *r, struct sandbox_input *in,
                       int takes_interrupt, int steer_flag);
/* The run is over: *in is ended and freed (set NULL). Messages whose line reached the agent
 * are appended to *reached, oldest first (the caller finishes them with the turn and frees
 * them with core_steered_free()); those that did not are queued for the next turn, as if
 * never passed. */
void core_steer_detach(struct core *c, struct running *r, struct sandbox_input **in,
                       struct steered **reached);
void core_steered_free(struct steered *s);
/* Write one JSON line (newline-terminated; borrowed) to the live stdin of the thread's
 * running agent, e.g. a control_response to a control request it printed. 0 when written;
 * -1 with JB_ENOTFOUND when no turn of the thread takes input, JB_EPROTO when line is not
 * one line of JSON (Claude Code exits on anything else), JB_EUNAVAIL when its input is
 * closed (the run is ending). */
int core_agent_write_line(struct core *c, const char *thread_key, const char *line,
                          struct jb_err *err);
/* ---- files shared in a thread (files-in.c) ---- */
/* Every file of msgs (the first 10) fetched into sb's ~/inbox/; each one that cannot be is
 * said in the thread. The line the prompt ends with, naming them (caller frees), or NULL
 * when none was placed. */
char *core_files_in(struct core *c, const char *thread_key, const struct lane_msg *msgs,
                    size_t nmsgs, struct sandbox *sb);

/* ---- the agent's own questions before a tool runs (asks.c) ---- */
struct core_ask;
struct core_asks {
    struct core *c;
    const char *thread_key, *user; /* the turn's; borrowed */
    pthread_mutex_t mu;
    struct core_ask *list; /* under mu */
    atomic_int ended;
};
/* For one run of an agent that asks (agent_cmd.asks_permission); end it with
 * core_asks_end() after the run, before thread_key and user go away. */
void core_asks_init(struct core_asks *a, struct core *c, const char *thread_key, const char *user);
/* An AGENT_EV_PERMISSION (answered at once when the channel's `approve:` does not cover the
 * tool, else asked of a person on a thread of its own) or AGENT_EV_PERMISSION_CANCEL. */
void core_asks_on_event(struct core_asks *a, const struct agent_event *ev);
/* The run is over: every question still waiting is withdrawn and its thread joined. */
void core_asks_end(struct core_asks *a);

/* Pass a message to the thread's running agent: 1 when written to its live stdin, 0 when
 * no turn of the thread takes messages now (the caller queues it), -1 when out of memory. */
int core_steer(struct core *c, int64_t inbox_id, const char *thread_key, const char *user,
               const char *text, const char *ref, const char *files);

/* The daily gc of idle sandboxes while serving (gc.c). */
struct core_gc {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int started, stop;
};

/* Approval requests waiting for a person (approve.c). Under mu; cv (CLOCK_MONOTONIC) is
 * broadcast whenever one is decided. */
struct approval_pending;
struct approvals {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct approval_pending *list;
    unsigned seq;
    unsigned nonce; /* random per process: a button of an earlier run matches nothing */
};
void core_approvals_init(struct approvals *a);
/* The channel part of a thread key ("C123:1700.1" -> "C123"), cut to fit out. */
void core_approval_channel(const char *thread_key, char out[64]);
/* An agent's question about tool (input_json: its input) in the turn of user: asked
 * through core_approval_ask_while(), ending as a deny once gone(ud); a failure to ask is
 * logged and is a deny. */
void core_approval_ask_agent(struct core *c, const char *thread_key, const char *user,
                             const char *tool, const char *input_json, int (*gone)(void *ud),
                             void *ud, struct approval_decision *out);
void core_approvals_destroy(struct approvals *a);
/* The LLM proxy's approval endpoint decider (llm_approve_fn, proxy.h); ud is the core. */
struct llm_approve_q;
struct llm_approve_a;
void core_llm_approve(void *ud, const struct llm_approve_q *q, struct llm_approve_a *a);
/* The egress proxy's approver (egress_approve_fn, proxy.h; egress.c); ud is the core. Off
 * unless the thread's channel has egress_approval; a name on the thread's own list passes;
 * with no turn of the thread running there is nobody to ask (a deny); else the turn's
 * requester or the channel's approvers decide, as for a tool. */
enum egress_verdict core_egress_approve(void *ud, const struct egress_approve_q *q, char *why,
                                        size_t n);
struct policy_channel;
/* The names an exec of thread_key adds to the global allowlist: the channel's `egress:`
 * and, when the channel has egress_approval, the thread's own list. *ret (caller frees) is
 * NULL when the channel adds nothing and has no egress_approval; a comma list (maybe "")
 * otherwise. A Sprite gets the global policy back at every ensure, so a name removed from
 * the thread's list leaves its policy at the next run. */
int core_egress_extra(struct core_services *cs, const struct policy_channel *ch,
                      const char *thread_key, char **ret, struct jb_err *err);

struct core {
    const struct jb_config *cfg;
    struct frontend *fe;
    const struct agent_ops *agent;
    struct core_services svc; /* the proxies and the store's sandbox records */
    struct sandbox_ctx sbx;   /* on svc */
    struct core_gc gc;
    struct store *store;         /* the accepting thread's connection */
    pthread_mutex_t store_mu;    /* core_submit may be called from several threads */
    struct store **worker_store; /* one per worker, opened by that worker */
    struct lanes *lanes;
    pthread_mutex_t run_mu;
    struct running *running;
    pthread_mutex_t pol_mu;     /* guards the pointer only; snapshots are immutable */
    struct policy *policy;      /* current snapshot (core/policy.h); one reference held */
    struct jb_metrics *metrics; /* core_opts.metrics, or NULL */
    struct approvals approvals;
};

struct agent_cmd;
/* What turns and `sandbox exec` both run: the adapter's environment, read-only paths and
 * files (files has room for every cmd->files entry; both borrowed by x) and the turn
 * timeout as deadline. argv, stdin and the callbacks stay the caller's to set. */
void core_exec_from_cmd(struct sandbox_exec *x, struct sandbox_file *files,
                        const struct agent_cmd *cmd, const struct jb_config *cfg);

/* ---- gc (gc.c) ---- */
/* A thread whose sandbox is gone: its agent conversation and its LLM tokens are forgotten.
 * The caller holds cs->st_mu. -1 with err when the session could not be deleted (JB_ENOTFOUND
 * when there was none). */
int core_thread_forget(struct core_services *cs, const char *thread_key, struct jb_err *err);
/* Remove the sandboxes of ctx idle for more than idle_s seconds (none when ctx is NULL;
 * not those keep() says 1
 * for; keep may be NULL), their sessions and tokens through cs's store, then forget old
 * history (store_retention_run). Returns how many, or -1. */
int core_gc_run(struct core_services *cs, const struct sandbox_ctx *ctx, int64_t idle_s,
                int (*keep)(void *ud, const char *thread_key), void *keep_ud, struct jb_err *err);
/* `janebot sandbox gc`: core_gc_run() keeping the threads with messages waiting. */
int core_sandbox_gc_oneoff(struct core_services *cs, const struct sandbox_ctx *ctx, int64_t idle_s,
                           struct jb_err *err);
/* At start and daily while the core lives: idle sandboxes (JANEBOT_SANDBOX_IDLE_DAYS > 0)
 * and old history (store_retention_run). Started by core_new() with
 * core_opts.gc, stopped (joined) by core_free(). */
int core_gc_start(struct core *c, struct jb_err *err);
void core_gc_stop(struct core *c);
/* 1 when a message of thread_key, received within idle_s (at least a day), is unfinished in
 * the inbox of cs's store: every message a lane holds (queued, debounced, its turn
 * running) is, until its turn ends, and so are those a stop left, in any process sharing
 * the database. 1 also when it cannot tell. */
int core_inbox_waits(struct core_services *cs, const char *thread_key, int64_t idle_s);
/* 1 when a turn of thread_key runs in this process. */
int core_thread_running(struct core *c, const char *thread_key);

/* The lane worker: one turn of msgs[0..n). */
void core_run_turn(void *ud, int worker, const struct lane_msg *msgs, size_t n);
/* Stop the running turn r (the caller holds run_mu), user (may be NULL) asking: an agent
 * that takes the interrupt request gets it on its live stdin and is killed only if it
 * has not ended within INTERRUPT_GRACE_MS; any other is killed at once. */
#define INTERRUPT_GRACE_MS 3000
void core_running_stop(struct running *r, const char *user);
/* Who stopped r into buf ("" when nobody); whether it was asked through its input. */
void core_running_stopped_by(struct core *c, struct running *r, char *buf, size_t n);
int core_running_interrupted(struct core *c, struct running *r);

/* Register / unregister the turn of a thread (the caller owns r until unregistered). */
void core_running_add(struct core *c, struct running *r);
void core_running_remove(struct core *c, struct running *r);
void core_running_set_tool(struct core *c, struct running *r, const char *tool);

#endif
