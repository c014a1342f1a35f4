/* core/core-int.h -- private to src/core: the bot's state shared by bot.c and turn.c. */
#ifndef JB_CORE_INT_H
#define JB_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "sandbox/sandbox.h"

struct agent_ops;
struct store;

/* A turn in progress, for `status` and `abort`. Guarded by core.run_mu. */
struct running {
    char *thread_key;
    const char *user;   /* who asked the turn (its last message's user) */
    int64_t started_ms; /* jb_mono_ms() */
    char last_tool[160];
    atomic_int cancel;
    struct running *next;
};

struct core {
    const struct jb_config *cfg;
    struct frontend *fe;
    const struct agent_ops *agent;
    struct sandbox_ctx sbx;
    struct store *store;         /* the accepting thread's connection */
    pthread_mutex_t store_mu;    /* core_submit may be called from several threads */
    struct store **worker_store; /* one per worker, opened by that worker */
    struct lanes *lanes;
    pthread_mutex_t run_mu;
    struct running *running;
    pthread_mutex_t pol_mu; /* guards the pointer only; snapshots are immutable */
    struct policy *policy;  /* current snapshot (core/policy.h); one reference held */
};

struct agent_cmd;
/* What turns and `sandbox exec` both run: the adapter's environment, read-only paths and
 * files (files has room for every cmd->files entry; both borrowed by x) and the turn
 * timeout as deadline. argv, stdin and the callbacks stay the caller's to set. */
void core_exec_from_cmd(struct sandbox_exec *x, struct sandbox_file *files,
                        const struct agent_cmd *cmd, const struct jb_config *cfg);

/* The lane worker: one turn of msgs[0..n). */
void core_run_turn(void *ud, int worker, const struct lane_msg *msgs, size_t n);
/* Register / unregister the turn of a thread (the caller owns r until unregistered). */
void core_running_add(struct core *c, struct running *r);
void core_running_remove(struct core *c, struct running *r);
void core_running_set_tool(struct core *c, struct running *r, const char *tool);

#endif
