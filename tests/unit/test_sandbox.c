/* tests/unit/test_sandbox.c -- names, layout, list/remove and the process runner
 * (through the host backend, which needs no namespaces). */
#include <criterion/criterion.h>
#include <string.h>
#include <signal.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sandbox/sandbox.h"

static char dir[] = "/tmp/jb-sbx-XXXXXX";
static struct sandbox_opts cfg;
static struct sandbox_ctx ctx;

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    memset(&cfg, 0, sizeof cfg);
    cfg.state_dir = dir;
    cfg.backend = "host";
    cfg.allow_local_execution = 1;
    cfg.path_env = "/usr/bin:/bin";
    jb_log_init(JB_LOG_ERROR, stderr);
    struct jb_err err = {0};
    cr_assert_eq(sandbox_ctx_init(&ctx, &cfg, NULL, 1, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    sandbox_ctx_release(&ctx);
    jb_rm_rf(dir, NULL);
}

TestSuite(sandbox, .init = setup, .fini = teardown);

Test(sandbox, name_is_jane_plus_12_hex_of_sha256)
{
    char name[SANDBOX_NAME_LEN];
    sandbox_name_for("chat:x", name);
    /* printf %s chat:x | sha256sum */
    char hex[65];
    jb_sha256_hex("chat:x", 6, hex);
    char want[SANDBOX_NAME_LEN];
    snprintf(want, sizeof want, "jane-%.12s", hex);
    cr_assert_str_eq(name, want);
    cr_assert(sandbox_is_name(name));
    cr_assert(!sandbox_is_name("chat:x"));
    cr_assert(!sandbox_is_name("jane-ABCDEF012345"));
    cr_assert(!sandbox_is_name("jane-0123"));
    cr_assert(sandbox_is_name("jane-pool-0123456789ab"));
    cr_assert(!sandbox_is_name("jane-pool-0123"));
    cr_assert(!sandbox_is_name("jane-golden"));
}

Test(sandbox, unknown_backend_is_refused)
{
    struct sandbox_opts c2 = cfg;
    c2.backend = "docker";
    struct sandbox_ctx c;
    struct jb_err err = {0};
    cr_assert_eq(sandbox_ctx_init(&c, &c2, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, "docker"));
    sandbox_ctx_release(&c);
}

struct sink {
    char out[8192];
};

static void collect(void *ud, const char *data, size_t len)
{
    struct sink *s = ud;
    size_t n = strlen(s->out);
    if (n + len < sizeof s->out) memcpy(s->out + n, data, len), s->out[n + len] = '\0';
}

static int run(struct sandbox *sb, const char *const *argv, const char *in, struct sink *s,
               struct sandbox_exec *x)
{
    *x = (struct sandbox_exec)SANDBOX_EXEC_INIT;
    x->argv = argv;
    x->stdin_data = in;
    x->stdin_len = in ? strlen(in) : 0;
    x->on_stdout = collect;
    x->ud = s;
    x->deadline_ms = jb_mono_ms() + 20000;
    struct jb_err err = {0};
    int rc = sandbox_exec(sb, x, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return x->exit_code;
}

Test(sandbox, ensure_list_exec_remove)
{
    struct sandbox *sb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(sandbox_ensure(&ctx, "chat:one", &sb, &err), 0, "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat(sb->home, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);

    struct sink s = {""};
    struct sandbox_exec x;
    const char *argv[] = {"sh", "-c", "cat; echo \"home=$HOME\"; echo oops >&2; exit 7", NULL};
    cr_assert_eq(run(sb, argv, "from stdin\n", &s, &x), 7);
    cr_assert_not_null(strstr(s.out, "from stdin\n"), "%s", s.out);
    cr_assert_not_null(strstr(s.out, sb->home), "%s", s.out);
    cr_assert_str_eq(x.stderr_tail, "oops\n");

    struct sandbox_info *v = NULL;
    size_t n = 0;
    cr_assert_eq(sandbox_list(&ctx, &v, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].thread_key, "chat:one");
    cr_assert_str_eq(v[0].name, sb->name);
    cr_assert_str_eq(v[0].backend, "host");
    cr_assert_gt(v[0].last_used, 0);
    sandbox_info_free(v, n);

    /* In use until freed: not removed, reset nor collected meanwhile. */
    cr_assert_eq(sandbox_remove(&ctx, sb->name, &err), -1);
    cr_assert_eq(err.code, JB_EBUSY);
    cr_assert_str_eq(err.msg, "a turn is running in this thread's sandbox: wait for it or "
                              "cancel it");
    cr_assert_eq(sandbox_reset(&ctx, "chat:one", &err), -1);
    cr_assert_eq(err.code, JB_EBUSY);
    struct jb_strv gone = JB_STRV_INIT;
    cr_assert_eq(sandbox_gc(&ctx, -3600, NULL, NULL, &gone, &err), 0, "%s", err.msg);
    cr_assert_eq(gone.n, 0);
    cr_assert_eq(stat(sb->home, &st), 0, "an exec's sandbox was removed");
    char home[PATH_MAX];
    snprintf(home, sizeof home, "%s", sb->home);
    sandbox_free(sb);

    cr_assert_eq(sandbox_remove(&ctx, "chat:one", &err), 0, "%s", err.msg);
    cr_assert_neq(stat(home, &st), 0);
    cr_assert_eq(sandbox_remove(&ctx, "chat:one", &err), -1);
    cr_assert_eq(err.code, JB_ENOTFOUND);
    cr_assert_eq(sandbox_gc(&ctx, -3600, NULL, NULL, &gone, &err), 0, "%s", err.msg);
    jb_strv_free(&gone);
}

static int keep_busy_one(void *ud, const char *thread_key)
{
    (*(int *)ud)++;
    return !strcmp(thread_key, "chat:busy");
}

/* The gc asks before each removal: a thread the caller says is busy keeps its sandbox. */
Test(sandbox, gc_keeps_what_the_caller_says_is_busy)
{
    struct jb_err err = {0};
    const char *keys[] = {"chat:busy", "chat:idle"};
    for (size_t i = 0; i < 2; i++) {
        struct sandbox *sb = NULL;
        cr_assert_eq(sandbox_ensure(&ctx, keys[i], &sb, &err), 0, "%s", err.msg);
        sandbox_free(sb);
    }
    struct jb_strv gone = JB_STRV_INIT;
    int asked = 0;
    cr_assert_eq(sandbox_gc(&ctx, -3600, keep_busy_one, &asked, &gone, &err), 1, "%s", err.msg);
    cr_assert_eq(asked, 2);
    cr_assert_eq(gone.n, 1);
    cr_assert_str_eq(gone.v[0], "chat:idle");
    struct sandbox_info *v = NULL;
    size_t n = 0;
    cr_assert_eq(sandbox_list(&ctx, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].thread_key, "chat:busy");
    sandbox_info_free(v, n);
    jb_strv_free(&gone);
}

/* Another process removes the sandbox: a new user of it waits, then gets a fresh one. */
Test(sandbox, ensure_waits_for_a_removal_then_starts_fresh)
{
    struct sandbox *sb = NULL;
    struct jb_err err = {0};
    cr_assert_eq(sandbox_ensure(&ctx, "chat:two", &sb, &err), 0, "%s", err.msg);
    char dir[PATH_MAX], lock[PATH_MAX + 8], old_file[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s", sb->dir);
    snprintf(lock, sizeof lock, "%s/lock", dir);
    snprintf(old_file, sizeof old_file, "%s/old-file", sb->home);
    cr_assert_eq(jb_write_file(old_file, "x", 1, 0600, &err), 0, "%s", err.msg);
    sandbox_free(sb);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) { /* `janebot sandbox rm` in another process */
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) _exit(1);
        if (write(ready[1], "k", 1) != 1) _exit(1);
        usleep(500 * 1000);
        _exit(jb_rm_rf(dir, NULL) < 0 ? 1 : 0);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(sandbox_ensure(&ctx, "chat:two", &sb, &err), 0, "%s", err.msg);
    cr_assert_geq(jb_mono_ms() - t0, 300, "did not wait for the removal");
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    cr_assert_eq(stat(sb->home, &st), 0, "the fresh sandbox has a home");
    cr_assert_neq(stat(old_file, &st), 0, "the old home's files are gone");
    cr_assert_eq(sandbox_remove(&ctx, "chat:two", &err), -1, "the fresh one is held");
    sandbox_free(sb);
}

/* Running, not a zombie waiting for its (re)parent to reap it. */
static int alive(int pid)
{
    char path[64], *stat = NULL;
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (jb_read_file(path, 4096, &stat, &len, NULL) < 0) return 0;
    const char *p = strrchr(stat, ')');
    int zombie = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    free(stat);
    return !zombie;
}

Test(sandbox, deadline_kills_the_whole_group)
{
    struct sandbox *sb = NULL;
    cr_assert_eq(sandbox_ensure(&ctx, "chat:slow", &sb, NULL), 0);
    struct sink s = {""};
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    const char *argv[] = {"sh", "-c", "sleep 30 & echo $!; wait", NULL};
    x.argv = argv;
    x.on_stdout = collect;
    x.ud = &s;
    x.deadline_ms = jb_mono_ms() + 500;
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(sandbox_exec(sb, &x, NULL), 0);
    cr_assert(x.timed_out);
    cr_assert_lt(jb_mono_ms() - t0, 10000);
    int child = atoi(s.out);
    cr_assert_gt(child, 0);
    usleep(100000);
    cr_assert(!alive(child), "background child %d survived", child);
    sandbox_free(sb);
}

Test(sandbox, cancel_flag_stops_the_run)
{
    struct sandbox *sb = NULL;
    cr_assert_eq(sandbox_ensure(&ctx, "chat:cancel", &sb, NULL), 0);
    atomic_int cancel = 1;
    struct sandbox_exec x = SANDBOX_EXEC_INIT;
    const char *argv[] = {"sleep", "30", NULL};
    x.argv = argv;
    x.cancel = &cancel;
    cr_assert_eq(sandbox_exec(sb, &x, NULL), 0);
    cr_assert(x.cancelled);
    cr_assert_neq(x.exit_code, 0);
    sandbox_free(sb);
}

Test(sandbox, stderr_tail_keeps_the_last_bytes)
{
    struct sandbox *sb = NULL;
    cr_assert_eq(sandbox_ensure(&ctx, "chat:loud", &sb, NULL), 0);
    struct sink s = {""};
    struct sandbox_exec x;
    const char *argv[] = {"sh", "-c",
                          "i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done", NULL};
    cr_assert_eq(run(sb, argv, NULL, &s, &x), 0);
    cr_assert_lt(strlen(x.stderr_tail), sizeof x.stderr_tail);
    size_t n = strlen(x.stderr_tail);
    cr_assert_str_eq(x.stderr_tail + n - 9, "line1999\n");
    sandbox_free(sb);
}

/* ---- host paths shown read-only (the agent CLI's files) ---- */

static void mk(const char *rel, int file)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct jb_err err = {0};
    if (file) {
        char *slash = strrchr(p, '/');
        *slash = '\0';
        cr_assert_eq(jb_mkdir_p(p, 0755, &err), 0, "%s", err.msg);
        *slash = '/';
        cr_assert_eq(jb_write_file(p, "K=v\n", 4, 0600, &err), 0, "%s", err.msg);
    } else {
        cr_assert_eq(jb_mkdir_p(p, 0755, &err), 0, "%s", err.msg);
    }
}

/* The check of dir/rel: 0, or -1 with err.msg holding want. */
static void assert_ro_check(const char *rel, const char *want)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s%s%s", dir, *rel ? "/" : "", rel);
    struct jb_err err = {0};
    int rc = sandbox_ro_path_check(&cfg, p, &err);
    if (!want) {
        cr_assert_eq(rc, 0, "%s: %s", rel, err.msg);
        return;
    }
    cr_assert_eq(rc, -1, "%s should be refused (%s)", rel, want);
    cr_assert_eq(err.code, JB_EDENIED, "%s: %s", rel, err.msg);
    cr_assert_not_null(strstr(err.msg, want), "%s: %s", rel, err.msg);
}

Test(sandbox, ro_paths_that_would_show_secrets_are_refused)
{
    char state[PATH_MAX], cwd[PATH_MAX], conf[PATH_MAX];
    snprintf(state, sizeof state, "%s/deploy/state", dir);
    cfg.state_dir = state;
    mk("deploy/state", 0);
    mk("pkg/bin/amp", 1);
    mk("pkg/node_modules/dep/.env", 1); /* a dependency's own file: not looked at */
    assert_ro_check("pkg", NULL);
    assert_ro_check("pkg/bin/amp", NULL);
    /* the state dir, either way round */
    assert_ro_check("deploy", "overlaps the state dir");
    mk("deploy/state/tool", 1);
    assert_ro_check("deploy/state/tool", "overlaps the state dir");
    /* a .env anywhere in the tree (outside node_modules) */
    mk("app/.env", 1);
    mk("app/bin/amp", 1);
    assert_ro_check("app", "app/.env may hold secrets; move it out of");
    mk("pkg/lib/conf/.env.production", 1);
    assert_ro_check("pkg", "pkg/lib/conf/.env.production may hold secrets");
    assert_ro_check("app/.env", "a .env file may hold secrets");
    /* the working directory, and the config file */
    mk("work/here", 0);
    snprintf(cwd, sizeof cwd, "%s/work/here", dir);
    char old[PATH_MAX];
    cr_assert_not_null(getcwd(old, sizeof old));
    cr_assert_eq(chdir(cwd), 0);
    assert_ro_check("work", "holds janebot's working directory");
    cr_assert_eq(chdir(old), 0);
    mk("etc/jb/janebot.yaml", 1);
    snprintf(conf, sizeof conf, "%s/etc/jb/janebot.yaml", dir);
    cfg.config_file = conf;
    assert_ro_check("etc", "holds the config file");
    cfg.config_file = NULL;
    assert_ro_check("etc", NULL);
    /* only clean absolute paths */
    struct jb_err err = {0};
    cr_assert_eq(sandbox_ro_path_check(&cfg, "relative/amp", &err), -1);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/pkg/../app", dir);
    cr_assert_eq(sandbox_ro_path_check(&cfg, p, &err), -1);
}
