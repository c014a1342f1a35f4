/* sandbox/host.c -- the host backend: no isolation at all. The command runs as janebot's
 * own user with the thread's home as HOME and cwd. Only with ALLOW_LOCAL_EXECUTION=true
 * (checked by the configuration), for a trusted single-user setup; janebot warns at
 * every start. */
#include <string.h>

#include "sandbox/backend.h"

static int host_available(const struct sandbox_ctx *ctx, struct jb_err *err)
{
    if (!ctx->opts->allow_local_execution)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_SANDBOX=host needs ALLOW_LOCAL_EXECUTION=true");
    return 0;
}

static int host_ensure(struct sandbox *sb, struct jb_err *err)
{
    if (asprintf(&sb->run_dir, "%s/run", sb->dir) < 0) {
        sb->run_dir = NULL;
        return jb_err_set(err, JB_ENOMEM, "run dir");
    }
    return jb_mkdir_p(sb->run_dir, 0700, err);
}

static int place_files(struct sandbox *sb, const struct sandbox_exec *x, struct jb_err *err)
{
    size_t dl = strlen(sb->dir);
    for (size_t i = 0; i < x->nfiles; i++) {
        const char *p = x->files[i].path;
        if (strncmp(p, sb->dir, dl) != 0 || strstr(p, "/.."))
            return jb_err_set(err, JB_EDENIED, "file %s is outside the sandbox's run dir", p);
        if (jb_write_file(p, x->files[i].data, x->files[i].len, 0600, err) < 0) return -1;
    }
    return 0;
}

static int host_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    if (!x->argv || !x->argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (place_files(sb, x, err) < 0) return -1;
    const char *path = sb->ctx->opts->path_env;
    jb_autofree char *exe = jb_which(x->argv[0], path);
    if (!exe) return jb_err_set(err, JB_ENOTFOUND, "%s: command not found", x->argv[0]);
    struct jb_strv env = JB_STRV_INIT, argv = JB_STRV_INIT;
    int rc = -1;
    if (jb_env_set(&env, "HOME", sb->home, err) < 0 || jb_env_set(&env, "PATH", path, err) < 0 ||
        jb_env_set(&env, "LANG", "C.UTF-8", err) < 0 || jb_env_set(&env, "TERM", "dumb", err) < 0 ||
        jb_env_set(&env, "TMPDIR", "/tmp", err) < 0 || jb_strv_push(&argv, exe, err) < 0 ||
        jb_strv_pushv(&argv, x->argv + 1, err) < 0)
        goto out;
    for (const char *const *e = x->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        if (!eq) continue;
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        if (jb_env_set(&env, name, eq + 1, err) < 0) goto out;
    }
    struct proc_spec ps = {
        .argv = (const char *const *)argv.v,
        .envp = (const char *const *)env.v,
        .cwd = sb->home,
        .nice = sb->ctx->opts->nice,
    };
    rc = proc_run(&ps, x, err);
out:
    jb_strv_free(&env);
    jb_strv_free(&argv);
    return rc;
}

static int host_doctor(const struct sandbox_ctx *ctx,
                       void (*report)(void *ud, int ok, const char *what, const char *detail),
                       void *ud)
{
    int ok = ctx->opts->allow_local_execution;
    report(ud, ok, "sandbox",
           ok ? "host: NO isolation (ALLOW_LOCAL_EXECUTION=true); every thread sees the machine"
              : "host backend needs ALLOW_LOCAL_EXECUTION=true");
    return ok ? 0 : 1;
}

const struct sandbox_ops sandbox_host_ops = {
    .version = 1,
    .name = "host",
    .available = host_available,
    .ensure = host_ensure,
    .exec = host_exec,
    .doctor = host_doctor,
};
