/* core/exec.c -- `janebot sandbox exec`: a command in a thread's sandbox with exactly the
 * isolation and environment an agent turn gets (the adapter's variables, read-only paths
 * and files), but with the caller's stdin, stdout and stderr. */
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "core/core-int.h"
#include "core/policy.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

void core_exec_from_cmd(struct sandbox_exec *x, struct sandbox_file *files,
                        const struct agent_cmd *cmd, const struct jb_config *cfg)
{
    for (size_t i = 0; i < cmd->nfiles; i++)
        files[i] = (struct sandbox_file){cmd->files[i].path, cmd->files[i].data, cmd->files[i].len};
    x->env = (const char *const *)cmd->env.v;
    x->ro_paths = (const char *const *)cmd->ro_paths.v;
    x->files = files, x->nfiles = cmd->nfiles;
    x->deadline_ms = jb_mono_ms() + (int64_t)cfg->turn_timeout_s * 1000;
}

int core_sandbox_exec(const struct jb_config *cfg, const char *thread_key, const char *const *argv,
                      int *ret_code, struct jb_err *err)
{
    struct sandbox_ctx ctx = {0};
    struct sandbox *sb = NULL;
    struct agent_cmd cmd = {0};
    struct policy *pol = NULL; /* the thread's channel policy, as a turn gets it */
    int rc = -1;
    if (jb_mkdir_p(cfg->state_dir, 0700, err) < 0 || sandbox_ctx_init(&ctx, cfg, 0, err) < 0) {
        sandbox_ctx_release(&ctx);
        return -1;
    }
    if (policy_load(cfg, &pol, err) < 0 || sandbox_ensure(&ctx, thread_key, &sb, err) < 0) goto out;
    const struct policy_channel *ch = policy_channel_for(pol, thread_key);
    const struct agent_ops *agent = agent_ops_find(ch->agent_name ? ch->agent_name : cfg->agent);
    struct agent_turn at = {.cfg = cfg,
                            .thread_key = thread_key,
                            .user = "sandbox-exec",
                            .prompt = "",
                            .run_dir = sb->run_dir,
                            .policy = &ch->agent};
    struct jb_err aerr = {0};
    if (!agent || agent->prepare(&at, &cmd, &aerr) < 0) {
        /* No agent CLI here: the environment is the sandbox's own, minus the agent's. */
        log_warn("sandbox exec: %s; running without the agent's environment", aerr.msg);
        agent_cmd_release(&cmd);
        memset(&cmd, 0, sizeof cmd);
    }
    struct sandbox_file files[JB_ARRAY_LEN(cmd.files)];
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    core_exec_from_cmd(&x, files, &cmd, cfg);
    x.argv = argv;
    x.passthrough = 1;
    x.egress_extra = ch->egress_csv;
    if (sandbox_exec(sb, &x, err) < 0) goto out;
    if (x.over_quota)
        log_warn("sandbox exec: stopped: the sandbox went over its disk quota "
                 "(JANEBOT_SANDBOX_DISK_MB)");
    if (x.oom_killed)
        log_warn("sandbox exec: a process was killed: the sandbox ran out of memory (%d MiB, "
                 "JANEBOT_SANDBOX_MEMORY_MB)",
                 cfg->sandbox_memory_mb);
    if (x.disk_full) {
        char full[512];
        sandbox_disk_full_msg(&x, cfg->sandbox_disk_mb, full, sizeof full);
        log_warn("sandbox exec: %s", full);
    }
    if (x.timed_out)
        log_warn("sandbox exec: stopped after %d seconds (JANEBOT_TURN_TIMEOUT)",
                 cfg->turn_timeout_s);
    *ret_code = x.exit_code;
    rc = 0;
out:
    policy_unref(pol);
    agent_cmd_release(&cmd);
    sandbox_free(sb);
    sandbox_ctx_release(&ctx);
    return rc;
}

int core_sandbox_gc(const struct jb_config *cfg, int64_t idle_s, struct jb_err *err)
{
    struct sandbox_ctx ctx = {0};
    struct jb_strv removed = JB_STRV_INIT;
    struct store *st = NULL;
    int n = -1;
    if (jb_mkdir_p(cfg->state_dir, 0700, err) < 0 || sandbox_ctx_init(&ctx, cfg, 0, err) < 0 ||
        store_open(cfg->db_path, &st, err) < 0)
        goto out;
    n = sandbox_gc(&ctx, idle_s, &removed, err);
    for (size_t i = 0; i < removed.n; i++) {
        struct jb_err e = {0};
        store_token_revoke(st, NULL, removed.v[i], NULL);
        if (store_session_delete(st, removed.v[i], &e) < 0 && e.code != JB_ENOTFOUND)
            log_warn("gc: session of %s: %s", removed.v[i], e.msg);
        else
            log_info("gc: removed the sandbox of %s", removed.v[i]);
    }
    store_retention_run(st, jb_now_ms(), cfg->retention_days, NULL, NULL);
out:
    jb_strv_free(&removed);
    store_close(st);
    sandbox_ctx_release(&ctx);
    return n;
}

int core_sandbox_reset(const struct jb_config *cfg, const char *thread_key, struct jb_err *err)
{
    struct sandbox_ctx ctx = {0};
    struct store *st = NULL;
    int rc = -1;
    if (jb_mkdir_p(cfg->state_dir, 0700, err) == 0 && sandbox_ctx_init(&ctx, cfg, 0, err) == 0 &&
        store_open(cfg->db_path, &st, err) == 0 && sandbox_reset(&ctx, thread_key, err) == 0) {
        /* The agent's transcript lived in the files just reset: start a new conversation. */
        struct jb_err e = {0};
        if (store_session_clear_id(st, thread_key, &e) < 0 && e.code != JB_ENOTFOUND)
            log_warn("reset: session of %s: %s", thread_key, e.msg);
        rc = 0;
    }
    store_close(st);
    sandbox_ctx_release(&ctx);
    return rc;
}

int core_sandbox_golden(const struct jb_config *cfg, char *out, size_t n, struct jb_err *err)
{
    struct sandbox_ctx ctx = {0};
    int rc = jb_mkdir_p(cfg->state_dir, 0700, err) == 0 && sandbox_ctx_init(&ctx, cfg, 0, err) == 0
                 ? sandbox_golden(&ctx, out, n, err)
                 : -1;
    sandbox_ctx_release(&ctx);
    return rc;
}
