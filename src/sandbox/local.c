/* sandbox/local.c -- the local backend: each exec is one bubblewrap sandbox.
 *
 * Own user, pid, ipc, uts, cgroup and network namespaces; no capabilities; a cleared
 * environment; /usr and a few /etc files read-only; the thread's home read-write at
 * /home/agent; fresh /tmp, /proc, /dev. Nothing of the state dir, the database, other
 * homes or .env files is mounted. bwrap stays pid 1's parent: when the command exits,
 * the pid namespace ends and every process left in it is killed by the kernel. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "sandbox/backend.h"

#define SANDBOX_UID "1000"
#define BWRAP_PATHS "/usr/bin:/bin:/usr/local/bin"

static const char *const sandbox_path = "/usr/local/bin:/usr/bin:/bin";

/* System folders shown read-only when they exist; symlinks are recreated as symlinks. */
static const char *const top_dirs[] = {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"};
static const char *const etc_paths[] = {
    "/etc/alternatives",   "/etc/ssl",         "/etc/ca-certificates",
    "/etc/ld.so.cache",    "/etc/ld.so.conf",  "/etc/ld.so.conf.d",
    "/etc/localtime",      "/etc/mime.types",  "/etc/os-release",
    "/etc/debian_version", "/etc/bash.bashrc", "/etc/profile",
};

static char *bwrap_path(void)
{
    return jb_which("bwrap", BWRAP_PATHS);
}

struct bwrap_args {
    struct jb_strv argv;
    int fds[16];
    size_t nfds;
};

static void bwrap_args_release(struct bwrap_args *a)
{
    jb_strv_free(&a->argv);
    for (size_t i = 0; i < a->nfds; i++)
        close(a->fds[i]);
    a->nfds = 0;
}

/* --ro-bind-data FD PATH: a file made from bytes, without touching the host's disk. */
static int add_data_file(struct bwrap_args *a, const char *path, const char *data, size_t len,
                         struct jb_err *err)
{
    if (a->nfds >= JB_ARRAY_LEN(a->fds)) return jb_err_set(err, JB_ESYS, "too many files");
    int fd = proc_memfd("janebot-file", data, len, err);
    if (fd < 0) return -1;
    a->fds[a->nfds++] = fd;
    return jb_strv_pushf(&a->argv, err, "--ro-bind-data") < 0 ||
                   jb_strv_pushf(&a->argv, err, "%d", fd) < 0 ||
                   jb_strv_push(&a->argv, path, err) < 0
               ? -1
               : 0;
}

static int add3(struct jb_strv *v, const char *a, const char *b, const char *c, struct jb_err *err)
{
    if (jb_strv_push(v, a, err) < 0 || jb_strv_push(v, b, err) < 0) return -1;
    return c ? jb_strv_push(v, c, err) : 0;
}

static int add_system(struct bwrap_args *a, struct jb_err *err)
{
    char target[4096];
    if (add3(&a->argv, "--ro-bind", "/usr", "/usr", err) < 0) return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(top_dirs); i++) {
        struct stat st;
        if (lstat(top_dirs[i], &st) < 0) continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(top_dirs[i], target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = '\0';
            if (add3(&a->argv, "--symlink", target, top_dirs[i], err) < 0) return -1;
        } else if (add3(&a->argv, "--ro-bind", top_dirs[i], top_dirs[i], err) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < JB_ARRAY_LEN(etc_paths); i++)
        if (access(etc_paths[i], F_OK) == 0 &&
            add3(&a->argv, "--ro-bind", etc_paths[i], etc_paths[i], err) < 0)
            return -1;
    return 0;
}

static int add_identity(struct bwrap_args *a, const char *hostname, struct jb_err *err)
{
    static const char passwd[] =
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "agent:x:" SANDBOX_UID ":" SANDBOX_UID ":janebot agent:/home/agent:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    static const char group[] = "root:x:0:\nagent:x:" SANDBOX_UID ":\nnogroup:x:65534:\n";
    static const char nss[] = "passwd: files\ngroup: files\nhosts: files dns\n";
    char hosts[256];
    snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost %s\n::1\tlocalhost\n", hostname);
    return add_data_file(a, "/etc/passwd", passwd, sizeof passwd - 1, err) < 0 ||
                   add_data_file(a, "/etc/group", group, sizeof group - 1, err) < 0 ||
                   add_data_file(a, "/etc/nsswitch.conf", nss, sizeof nss - 1, err) < 0 ||
                   add_data_file(a, "/etc/hosts", hosts, strlen(hosts), err) < 0
               ? -1
               : 0;
}

/* A host path the agent needs (its CLI) must not expose janebot's own state. */
static int check_ro_path(const struct sandbox *sb, const char *p, struct jb_err *err)
{
    const char *state = sb->ctx->cfg->state_dir;
    size_t pl = strlen(p), sl = strlen(state);
    if (p[0] != '/' || strstr(p, "/../"))
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show \"%s\" in the sandbox: not a clean absolute path", p);
    int contains_state =
        !strncmp(state, p, pl) && (state[pl] == '/' || state[pl] == '\0' || pl == 1);
    int inside_state = !strncmp(p, state, sl) && (p[sl] == '/' || p[sl] == '\0');
    if (contains_state || inside_state)
        return jb_err_set(err, JB_EDENIED,
                          "refusing to show %s in the sandbox: it overlaps the state dir %s", p,
                          state);
    return 0;
}

static int add_exec_parts(struct bwrap_args *a, const struct sandbox *sb,
                          const struct sandbox_exec *x, struct jb_err *err)
{
    for (const char *const *p = x->ro_paths; p && *p; p++)
        if (check_ro_path(sb, *p, err) < 0 || add3(&a->argv, "--ro-bind", *p, *p, err) < 0)
            return -1;
    for (size_t i = 0; i < x->nfiles; i++)
        if (add_data_file(a, x->files[i].path, x->files[i].data, x->files[i].len, err) < 0)
            return -1;
    static const char *const base_env[][2] = {
        {"HOME", "/home/agent"}, {"USER", "agent"},  {"LOGNAME", "agent"},
        {"LANG", "C.UTF-8"},     {"TMPDIR", "/tmp"}, {"TERM", "dumb"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(base_env); i++)
        if (add3(&a->argv, "--setenv", base_env[i][0], base_env[i][1], err) < 0) return -1;
    if (add3(&a->argv, "--setenv", "PATH", sandbox_path, err) < 0) return -1;
    for (const char *const *e = x->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e) return jb_err_set(err, JB_EPROTO, "bad environment entry");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        if (add3(&a->argv, "--setenv", name, eq + 1, err) < 0) return -1;
    }
    return 0;
}

static int build_args(struct bwrap_args *a, struct sandbox *sb, const struct sandbox_exec *x,
                      struct jb_err *err)
{
    static const char *const ns_flags[] = {
        "--unshare-user",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--uid",
        SANDBOX_UID,
        "--gid",
        SANDBOX_UID,
    };
    jb_autofree char *bwrap = bwrap_path();
    if (!bwrap) return jb_err_set(err, JB_EUNAVAIL, "bubblewrap (bwrap) is not installed");
    if (jb_strv_push(&a->argv, bwrap, err) < 0) return -1;
    for (size_t i = 0; i < JB_ARRAY_LEN(ns_flags); i++)
        if (jb_strv_push(&a->argv, ns_flags[i], err) < 0) return -1;
    if (add3(&a->argv, "--hostname", sb->name, NULL, err) < 0 || add_system(a, err) < 0 ||
        add_identity(a, sb->name, err) < 0 || add3(&a->argv, "--proc", "/proc", NULL, err) < 0 ||
        add3(&a->argv, "--dev", "/dev", NULL, err) < 0 ||
        add3(&a->argv, "--tmpfs", "/tmp", NULL, err) < 0 ||
        add3(&a->argv, "--bind", sb->home, "/home/agent", err) < 0 ||
        add3(&a->argv, "--chdir", "/home/agent", NULL, err) < 0 ||
        add_exec_parts(a, sb, x, err) < 0 || jb_strv_push(&a->argv, "--", err) < 0)
        return -1;
    /* Through sh's exec, a missing command exits 127 and a non-executable one 126, as in
     * any shell, instead of bwrap's generic 1. */
    static const char *const via_sh[] = {"/bin/sh", "-c", "exec \"$0\" \"$@\"", NULL};
    if (jb_strv_pushv(&a->argv, via_sh, err) < 0) return -1;
    for (const char *const *p = x->argv; *p; p++)
        if (jb_strv_push(&a->argv, *p, err) < 0) return -1;
    return 0;
}

static int local_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    if (!x->argv || !x->argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    struct bwrap_args a = {.argv = JB_STRV_INIT};
    if (build_args(&a, sb, x, err) < 0) {
        bwrap_args_release(&a);
        return -1;
    }
    static const char *const bwrap_env[] = {"PATH=/usr/bin:/bin", NULL};
    struct proc_spec ps = {.argv = (const char *const *)a.argv.v,
                           .envp = bwrap_env,
                           .keep_fds = a.fds,
                           .nkeep = a.nfds};
    int rc = proc_run(&ps, x, err);
    bwrap_args_release(&a);
    return rc;
}

static int local_ensure(struct sandbox *sb, struct jb_err *err)
{
    sb->run_dir = strdup("/run/janebot");
    return sb->run_dir ? 0 : jb_err_set(err, JB_ENOMEM, "run dir");
}

/* Start a minimal sandbox with the same namespace flags: proves bwrap and user
 * namespaces work here, so janebot fails closed at start rather than at a user's turn. */
static int local_probe(char *detail, size_t n)
{
    jb_autofree char *bwrap = bwrap_path();
    if (!bwrap) {
        snprintf(detail, n, "bubblewrap is not installed: apt-get install bubblewrap");
        return -1;
    }
    const char *argv[] = {bwrap,
                          "--unshare-user",
                          "--unshare-pid",
                          "--unshare-net",
                          "--unshare-ipc",
                          "--unshare-uts",
                          "--disable-userns",
                          "--die-with-parent",
                          "--ro-bind",
                          "/usr",
                          "/usr",
                          "--symlink",
                          "usr/lib",
                          "/lib",
                          "--symlink",
                          "usr/lib64",
                          "/lib64",
                          "--uid",
                          SANDBOX_UID,
                          "--",
                          "/usr/bin/true",
                          NULL};
    static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    struct proc_spec ps = {.argv = argv, .envp = env};
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    x.deadline_ms = jb_mono_ms() + 10000;
    struct jb_err e = {0};
    if (proc_run(&ps, &x, &e) < 0 || x.exit_code != 0) {
        size_t l = strlen(x.stderr_tail);
        while (l && x.stderr_tail[l - 1] == '\n')
            x.stderr_tail[--l] = '\0';
        snprintf(detail, n,
                 "bubblewrap cannot create a sandbox here (%s). Enable unprivileged user "
                 "namespaces (sysctl user.max_user_namespaces=15000, and on Debian "
                 "kernel.unprivileged_userns_clone=1), or set JANEBOT_SANDBOX=host with "
                 "ALLOW_LOCAL_EXECUTION=true to run without isolation",
                 e.msg[0] ? e.msg
                 : l      ? x.stderr_tail
                          : "it exited with an error");
        return -1;
    }
    snprintf(detail, n, "%s starts sandboxes with user, pid and network namespaces", bwrap);
    return 0;
}

static int local_available(const struct sandbox_ctx *ctx, struct jb_err *err)
{
    (void)ctx;
    char detail[1024];
    if (local_probe(detail, sizeof detail) < 0) return jb_err_set(err, JB_EUNAVAIL, "%s", detail);
    return 0;
}

static int local_doctor(const struct sandbox_ctx *ctx,
                        void (*report)(void *ud, int ok, const char *what, const char *detail),
                        void *ud)
{
    (void)ctx;
    char detail[1024];
    jb_autofree char *bwrap = bwrap_path();
    report(ud, bwrap != NULL, "bubblewrap",
           bwrap ? bwrap : "not installed: apt-get install bubblewrap");
    if (!bwrap) return 1;
    int ok = local_probe(detail, sizeof detail) == 0;
    report(ud, ok, "user namespaces", detail);
    return ok ? 0 : 1;
}

const struct sandbox_ops sandbox_local_ops = {
    .version = 1,
    .name = "local",
    .available = local_available,
    .ensure = local_ensure,
    .exec = local_exec,
    .doctor = local_doctor,
};
