/* core/exec.c -- the one-off sandbox commands: `janebot sandbox exec` (a command in a
 * thread's sandbox with exactly the isolation and environment an agent turn gets: the
 * adapter's variables, read-only paths and files, but the caller's stdin, stdout and
 * stderr), `sandbox list|rm|reset|gc` and `sprites golden`. Each builds the core's
 * services and one sandbox context on them once (struct oneoff), as a turn's process does. */
#include <string.h>

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

/* What a one-off command runs on: the services and one sandbox context. */
struct oneoff {
    struct core_services cs;
    struct sandbox_ctx ctx;
};

/* lenient: a backend that says it cannot run here (JB_EUNAVAIL) still lists and removes. */
static int oneoff_open(struct oneoff *o, const struct jb_config *cfg, int lenient,
                       struct jb_err *err)
{
    memset(o, 0, sizeof *o);
    if (core_services_open(&o->cs, cfg, 0, NULL, NULL, err) < 0) return -1;
    if (core_services_sandbox(&o->cs, &o->ctx, 0, err) == 0) return 0;
    return lenient && err->code == JB_EUNAVAIL && o->ctx.ops ? 0 : -1;
}

static void oneoff_close(struct oneoff *o)
{
    sandbox_ctx_release(&o->ctx); /* before the services it uses */
    core_services_close(&o->cs);
}

int core_sandbox_exec(const struct jb_config *cfg, const char *thread_key, const char *const *argv,
                      int *ret_code, struct jb_err *err)
{
    struct oneoff o;
    struct sandbox *sb = NULL;
    struct agent_cmd cmd = {0};
    struct policy *pol = NULL;       /* the thread's channel policy, as a turn gets it */
    jb_autofree char *egress = NULL; /* the channel's and the thread's names */
    int rc = -1;
    if (oneoff_open(&o, cfg, 0, err) < 0) {
        oneoff_close(&o);
        return -1;
    }
    if (policy_load(cfg, &pol, err) < 0 || sandbox_ensure(&o.ctx, thread_key, &sb, err) < 0)
        goto out;
    const struct policy_channel *ch = policy_channel_for(pol, thread_key);
    const struct agent_ops *agent = agent_ops_find(ch->agent_name ? ch->agent_name : cfg->agent);
    struct agent_opts ao;
    core_agent_opts(cfg, &ao);
    struct agent_turn at = {.opts = &ao,
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
    if (core_egress_extra(&o.cs, ch, thread_key, &egress, err) < 0) goto out;
    x.egress_extra = egress;
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
    oneoff_close(&o);
    return rc;
}

int core_sandbox_list(const struct jb_config *cfg, struct sandbox_info **ret, size_t *ret_n,
                      struct jb_err *err)
{
    struct oneoff o;
    int rc = oneoff_open(&o, cfg, 1, err) == 0 ? sandbox_list(&o.ctx, ret, ret_n, err) : -1;
    oneoff_close(&o);
    return rc;
}

int core_sandbox_remove(const struct jb_config *cfg, const char *key_or_name, struct jb_err *err)
{
    struct oneoff o;
    int rc = -1;
    if (oneoff_open(&o, cfg, 1, err) == 0 && sandbox_remove(&o.ctx, key_or_name, err) == 0) {
        /* The agent conversation lived in that home: forget it. */
        if (!sandbox_is_name(key_or_name)) {
            pthread_mutex_lock(o.cs.st_mu);
            core_thread_forget(&o.cs, key_or_name, NULL);
            pthread_mutex_unlock(o.cs.st_mu);
        }
        rc = 0;
    }
    oneoff_close(&o);
    return rc;
}

int core_sandbox_gc(const struct jb_config *cfg, int64_t idle_s, struct jb_err *err)
{
    struct oneoff o;
    int n =
        oneoff_open(&o, cfg, 0, err) == 0 ? core_sandbox_gc_oneoff(&o.cs, &o.ctx, idle_s, err) : -1;
    oneoff_close(&o);
    return n;
}

int core_sandbox_reset(const struct jb_config *cfg, const char *thread_key, struct jb_err *err)
{
    struct oneoff o;
    int rc = -1;
    if (oneoff_open(&o, cfg, 0, err) == 0 && sandbox_reset(&o.ctx, thread_key, err) == 0) {
        /* The agent's transcript lived in the files just reset: start a new conversation. */
        struct jb_err e = {0};
        pthread_mutex_lock(o.cs.st_mu);
        if (store_session_clear_id(o.cs.st, thread_key, &e) < 0 && e.code != JB_ENOTFOUND)
            log_warn("reset: session of %s: %s", thread_key, e.msg);
        pthread_mutex_unlock(o.cs.st_mu);
        rc = 0;
    }
    oneoff_close(&o);
    return rc;
}

int core_sandbox_golden(const struct jb_config *cfg, char *out, size_t n, struct jb_err *err)
{
    struct oneoff o;
    int rc = oneoff_open(&o, cfg, 0, err) == 0 ? sandbox_golden(&o.ctx, out, n, err) : -1;
    oneoff_close(&o);
    return rc;
}

/* ---- `sandbox show` and `sandbox egress rm` ---- */

static void show_sandbox(struct oneoff *o, const char *thread_key, FILE *out)
{
    struct sandbox_info *v = NULL;
    size_t n = 0;
    struct jb_err e = {0};
    int shown = 0;
    if (sandbox_list(&o->ctx, &v, &n, &e) < 0) {
        fprintf(out, "sandbox:        (cannot list: %s)\n", e.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].thread_key, thread_key) != 0) continue;
        char size[32] = "?", when[32] = "never";
        if (v[i].size_bytes >= 0) jb_fmt_size(v[i].size_bytes, size, sizeof size);
        if (v[i].last_used) jb_fmt_time(v[i].last_used, when, sizeof when);
        fprintf(out, "sandbox:        %s (%s), %s, last used %s\n", v[i].name, v[i].backend, size,
                when);
        shown = 1;
    }
    if (!shown) fprintf(out, "sandbox:        none\n");
    sandbox_info_free(v, n);
}

static void show_session(struct oneoff *o, const char *thread_key, FILE *out)
{
    struct session_row r = {0};
    struct jb_err e = {0};
    pthread_mutex_lock(o->cs.st_mu);
    int rc = store_session_get(o->cs.st, thread_key, &r, &e);
    pthread_mutex_unlock(o->cs.st_mu);
    if (rc < 0) {
        fprintf(out, "agent session:  none\n");
        return;
    }
    char when[32];
    jb_fmt_time(r.last_active / 1000, when, sizeof when);
    fprintf(out, "agent session:  %s %s, %lld turn(s), last active %s\n", r.agent,
            r.agent_session_id ? r.agent_session_id : "(none yet)", (long long)r.turns, when);
    session_row_release(&r);
}

static void show_egress(struct oneoff *o, const struct policy_channel *ch, const char *thread_key,
                        FILE *out)
{
    fprintf(out, "channel egress: %s%s%s; egress_approval %s\n", o->cs.opts.egress_allow,
            ch->egress_csv ? "," : "", ch->egress_csv ? ch->egress_csv : "",
            ch->egress_approval ? "on" : "off");
    struct egress_row *v = NULL;
    size_t n = 0;
    struct jb_err e = {0};
    pthread_mutex_lock(o->cs.st_mu);
    int rc = store_egress_list(o->cs.st, thread_key, &v, &n, &e);
    pthread_mutex_unlock(o->cs.st_mu);
    if (rc < 0) {
        fprintf(out, "thread egress:  (cannot read: %s)\n", e.msg);
        return;
    }
    fprintf(out, "thread egress:  %zu name(s) allowed for this thread%s\n", n,
            n && !ch->egress_approval ? " (not used while the channel's egress_approval is off)"
                                      : "");
    for (size_t i = 0; i < n; i++) {
        char when[32];
        jb_fmt_time(v[i].added_at / 1000, when, sizeof when);
        fprintf(out, "  %-40s added by %s at %s\n", v[i].name, v[i].added_by, when);
    }
    egress_rows_free(v, n);
}

int core_sandbox_show(const struct jb_config *cfg, const char *thread_key, FILE *out,
                      struct jb_err *err)
{
    struct oneoff o;
    struct policy *pol = NULL;
    int rc = -1;
    if (oneoff_open(&o, cfg, 1, err) == 0 && policy_load(cfg, &pol, err) == 0) {
        fprintf(out, "thread:         %s\n", thread_key);
        show_sandbox(&o, thread_key, out);
        show_session(&o, thread_key, out);
        show_egress(&o, policy_channel_for(pol, thread_key), thread_key, out);
        rc = 0;
    }
    policy_unref(pol);
    oneoff_close(&o);
    return rc;
}

int core_sandbox_egress_rm(const struct jb_config *cfg, const char *thread_key, const char *name,
                           struct jb_err *err)
{
    char norm[EGRESS_NAME_MAX + 1];
    const char *why = NULL;
    if (egress_is_ip_literal(name) || egress_normalize_host(name, norm, &why) < 0)
        return jb_err_set(err, JB_EPROTO, "\"%.300s\" is not a host name%s%s", name,
                          why ? ": " : "", why ? why : "");
    struct oneoff o;
    int rc = -1;
    if (oneoff_open(&o, cfg, 1, err) == 0) {
        pthread_mutex_lock(o.cs.st_mu);
        rc = store_egress_remove(o.cs.st, thread_key, norm, err);
        pthread_mutex_unlock(o.cs.st_mu);
    }
    oneoff_close(&o);
    return rc;
}
