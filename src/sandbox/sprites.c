/* sandbox/sprites.c -- the Sprites backend: one Sprite (a persistent Firecracker micro-VM
 * of api.sprites.dev) per thread, named like every sandbox ("jane-<12 hex>").
 *  - ensure: the store says which sprite serves the thread (sandbox_names); on its first
 *    turn that is its own existing sprite, a warm one claimed from the pool, or a new one
 *    made and set up now (sprites-setup.c). A sprite that is gone (404, or the 500 "failed
 *    to retrieve" quirk) is made again. Its network policy (JANEBOT_EGRESS_ALLOW, ending
 *    in deny *) is POSTed before any command runs, on every ensure.
 *  - exec: the WebSocket exec protocol (sprites-exec.c) with HOME, PATH and friends set
 *    explicitly (a given env replaces the sprite's), as a non-root user. An upgrade that
 *    failed is retried (5xx, network; a 404 first recreates the sprite) unless the sprite
 *    did not answer within the health bound; a command that started is never re-run.
 *    Files for the run are written by a small `sh` exec first.
 *  - list, remove, reset, golden and the context: sprites-ops.c.
 * The top layer of the backend: it builds on a sprite by name (sprites-sprite.c,
 * sprites-setup.c) and the pool (sprites-pool.c); which sprite serves a thread is the
 * store's, reached through the core's services (ctx->svc), as is the LLM proxy. */
#include <string.h>

#include "sandbox/sprites-int.h"

static struct sprites *sp_of(const struct sandbox_ctx *ctx)
{
    return ctx->priv;
}

/* ---- ensure: which sprite serves the thread ---- */

static int name_set(struct sprites *sp, const char *thread_key, const char *name,
                    const char *golden, struct jb_err *err)
{
    return sp->svc->name_set(sp->svc->ud, thread_key, name, golden, golden ? sp->setup_hash : NULL,
                             err);
}

/* A thread's first turn: its own sprite when one exists (made before janebot kept names),
 * else a warm one from the pool, else a new one made now (*ready: nothing more to do). */
static int first_sprite(struct sprites *sp, struct sandbox *sb, int *ready, struct jb_err *err)
{
    int ex = sprites_exists(sp, sb->name, err);
    if (ex < 0) return -1;
    if (ex) { /* just seen: its policy, and no second look */
        *ready = 1;
        return sprites_set_policy(sp, sb->name, sp->policy, err) < 0
                   ? -1
                   : name_set(sp, sb->thread_key, sb->name, NULL, err);
    }
    struct sandbox_sprite_row row = {0};
    struct jb_err e = {0};
    int rc =
        sp->pool ? sp->svc->pool_claim(sp->svc->ud, sb->thread_key, sp->setup_hash, &row, &e) : -1;
    if (rc == 0) {
        log_info("sprites: thread %s takes warm sprite %s", sb->thread_key, row.name);
        snprintf(sb->name, sizeof sb->name, "%s", row.name);
        sandbox_sprite_row_release(&row);
        sprites_pool_kick(sp);
        return 0;
    }
    if (sp->pool && e.code != JB_ENOTFOUND) log_warn("sprites: pool: %s", e.msg);
    char golden[SPRITES_CKPT_ID_MAX];
    if (sprites_prepare(sp, sb->name, golden, err) < 0) return -1;
    *ready = 1;
    return name_set(sp, sb->thread_key, sb->name, golden, err);
}

int sprites_sb_ensure(struct sandbox *sb, struct jb_err *err)
{
    struct sprites *sp = sp_of(sb->ctx);
    if (!(sb->run_dir = strdup(SPRITES_RUN_DIR))) return jb_err_set(err, JB_ENOMEM, "run dir");
    struct sandbox_sprite_row row = {0};
    if (sp->svc->name_get(sp->svc->ud, sb->thread_key, 0, &row, err) < 0) {
        if (err->code != JB_ENOTFOUND) return -1;
        memset(err, 0, sizeof *err);
        int ready = 0;
        if (first_sprite(sp, sb, &ready, err) < 0) return -1;
        if (ready) return 0;
    } else {
        snprintf(sb->name, sizeof sb->name, "%s", row.name);
        sandbox_sprite_row_release(&row);
    }
    int created = 0;
    if (sprites_make(sp, sb->name, NULL, &created, err) < 0) return -1;
    if (!created) return 0;
    /* It vanished (deleted, or lost by the API): made again under its name, set up, and
     * the thread keeps its session. */
    log_warn("sprites: sprite %s of %s was gone; made it again", sb->name, sb->thread_key);
    char golden[SPRITES_CKPT_ID_MAX];
    if (sprites_prepare(sp, sb->name, golden, err) < 0) return -1;
    return name_set(sp, sb->thread_key, sb->name, golden, err);
}

/* ---- exec ---- */

/* A channel's own egress names (x->egress_extra) for this run: the policy is replaced for
 * it, and the next ensure puts the global one back. */
static int channel_policy(struct sprites *sp, const char *name, const char *extra,
                          struct jb_err *err)
{
    jb_autofree char *csv = sprites_policy_csv(sp->opts->egress_allow, extra, sp->opts->public_url);
    jb_autofree char *json = csv ? sprites_policy_json(csv, err) : NULL;
    if (!json) return csv ? -1 : jb_err_set(err, JB_ENOMEM, "policy");
    return sprites_set_policy(sp, name, json, err);
}

static int build_argv(const struct sandbox_exec *x, struct jb_strv *argv, struct jb_err *err)
{
    if (jb_strv_push(argv, "/bin/sh", err) < 0 || jb_strv_push(argv, "-c", err) < 0 ||
        jb_strv_push(argv, sprites_drop_root, err) < 0 || jb_strv_push(argv, "sh", err) < 0)
        return -1;
    for (const char *const *a = x->argv; *a; a++)
        if (jb_strv_push(argv, *a, err) < 0) return -1;
    return 0;
}

static int build_env(const struct sandbox_exec *x, struct jb_strv *env, struct jb_err *err)
{
    if (jb_env_set(env, "HOME", SPRITES_HOME, err) < 0 ||
        jb_env_set(env, "PATH", SPRITES_PATH, err) < 0 ||
        jb_env_set(env, "USER", "sprite", err) < 0 || jb_env_set(env, "LANG", "C.UTF-8", err) < 0 ||
        jb_env_set(env, "TERM", "dumb", err) < 0)
        return -1;
    for (const char *const *e = x->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        if (!eq || eq == *e || (size_t)(eq - *e) >= sizeof name) continue;
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        if (jb_env_set(env, name, eq + 1, err) < 0) return -1;
    }
    return 0;
}

/* What the run's stop() watches: the LLM proxy's refusal of the exec's token. */
struct stop_watch {
    const struct sandbox_services *svc;
    struct sandbox_llm *llm;
    struct sandbox_exec *x;
};

static int stop_check(void *ud)
{
    struct stop_watch *w = ud;
    const char *why = w->llm ? w->svc->llm_refused(w->svc->ud, w->llm) : NULL;
    if (why) w->x->llm_refused = why;
    return why != NULL;
}

/* The exec's scoped token (with JANEBOT_PUBLIC_URL): it replaces every real key the adapter
 * put in env, and the base URLs point at the proxy, by this sprite's name. */
static int llm_env(struct sprites *sp, struct sandbox *sb, const struct sandbox_exec *x,
                   struct jb_strv *env, struct sandbox_llm **ret, struct jb_err *err)
{
    struct jb_strv set = JB_STRV_INIT;
    struct sandbox_llm_req rq = {.thread_key = sb->thread_key,
                                 .user = x->user ? x->user : "sandbox-exec",
                                 .sandbox = sb->name,
                                 .owner = (uid_t)-1};
    int rc = sp->svc->llm_open(sp->svc->ud, &rq, &set, ret, err);
    for (size_t i = 0; rc == 0 && i < set.n; i++) {
        char *eq = strchr(set.v[i], '=');
        if (!eq) continue;
        *eq = '\0';
        rc = jb_env_set(env, set.v[i], eq + 1, err);
    }
    for (size_t i = 0; i < set.n; i++)
        explicit_bzero(set.v[i], strlen(set.v[i]) + 1); /* the token */
    jb_strv_free(&set);
    return rc;
}

/* Write one file of the run with `sh` in the sprite (only under the run dir), readable by
 * the agent's user. */
static int place_file(struct sandbox *sb, const struct sandbox_exec *x, const char *p,
                      const char *data, size_t len, struct jb_err *err)
{
    static const char script[] =
        "umask 077 && mkdir -p \"${1%/*}\" && cat > \"$1\" && if [ \"$(id -u)\" = 0 ]; then "
        "chown -R \"$(stat -c %u:%g \"$HOME\")\" \"${1%/*}\"; fi";
    size_t dl = strlen(SPRITES_RUN_DIR);
    if (strncmp(p, SPRITES_RUN_DIR "/", dl + 1) != 0 || strstr(p, "/.."))
        return jb_err_set(err, JB_EDENIED, "file %s is outside the sandbox's run dir", p);
    const char *argv[] = {"/bin/sh", "-c", script, "sh", p, NULL};
    const char *env[] = {"PATH=" SPRITES_PATH, "HOME=" SPRITES_HOME, NULL};
    struct sandbox_exec fx = {.argv = argv,
                              .env = env,
                              .stdin_data = data,
                              .stdin_len = len,
                              .deadline_ms = x->deadline_ms,
                              .cancel = x->cancel};
    if (sprites_run(sp_of(sb->ctx), sb->name, &fx, NULL, err) < 0) return -1;
    if (fx.exit_code != 0)
        return jb_err_set(err, JB_EUNAVAIL, "cannot write %s in sprite %s: %s", p, sb->name,
                          fx.stderr_tail);
    return 0;
}

static int sh_quote(struct jb_buf *b, const char *s, struct jb_err *err)
{
    if (jb_buf_append(b, "'", 1, err) < 0) return -1;
    for (const char *q; (q = strchr(s, '\'')); s = q + 1)
        if (jb_buf_append(b, s, (size_t)(q - s), err) < 0 || jb_buf_append(b, "'\\''", 4, err) < 0)
            return -1;
    return jb_buf_append(b, s, strlen(s), err) < 0 || jb_buf_append(b, "'", 1, err) < 0 ? -1 : 0;
}

/* The exec path of a run too long for one request line: its environment and argv go into
 * a launcher script (removed as it starts), and the path runs that. */
static int launcher(struct sandbox *sb, const struct sandbox_exec *x, const struct jb_strv *argv,
                    const struct jb_strv *env, struct jb_buf *path, struct jb_err *err)
{
    unsigned char raw[8];
    char file[128];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    snprintf(file, sizeof file, SPRITES_RUN_DIR "/launch-%02x%02x%02x%02x%02x%02x%02x%02x.sh",
             raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    struct jb_buf sh = JB_BUF_INIT(8u << 20);
    int rc = jb_buf_appendf(&sh, err, "rm -f \"$0\"\n");
    for (size_t i = 0; rc == 0 && i < env->n; i++) {
        const char *eq = strchr(env->v[i], '=');
        rc = !eq || !strncmp(env->v[i], "HOME=", 5) ? 0 /* HOME: the exec's own, below */
             : jb_buf_appendf(&sh, err, "export %.*s=", (int)(eq - env->v[i]), env->v[i]) < 0 ||
                     sh_quote(&sh, eq + 1, err) < 0 || jb_buf_append(&sh, "\n", 1, err) < 0
                 ? -1
                 : 0;
    }
    if (rc == 0) rc = jb_buf_appendf(&sh, err, "exec");
    for (size_t i = 0; rc == 0 && i < argv->n; i++)
        rc = jb_buf_append(&sh, " ", 1, err) < 0 ? -1 : sh_quote(&sh, argv->v[i], err);
    if (rc == 0) rc = jb_buf_append(&sh, "\n", 1, err);
    if (rc == 0) rc = place_file(sb, x, file, sh.data, sh.len, err);
    explicit_bzero(sh.data, sh.len); /* it holds the run's token */
    jb_buf_release(&sh);
    const char *run[] = {"/bin/sh", file, NULL};
    const char *base[] = {"PATH=" SPRITES_PATH, "HOME=" SPRITES_HOME, NULL};
    jb_buf_reset(path);
    return rc < 0 ? -1 : sprites_exec_path(sb->name, run, base, SPRITES_HOME, path, err);
}

int sprites_sb_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    struct sprites *sp = sp_of(sb->ctx);
    if (!x->argv || !x->argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (x->egress_extra && *x->egress_extra &&
        channel_policy(sp, sb->name, x->egress_extra, err) < 0)
        return -1;
    for (size_t i = 0; i < x->nfiles; i++)
        if (place_file(sb, x, x->files[i].path, x->files[i].data, x->files[i].len, err) < 0)
            return -1;
    struct jb_strv env = JB_STRV_INIT, argv = JB_STRV_INIT;
    struct jb_buf path = JB_BUF_INIT(4u << 20);
    struct stop_watch watch = {.svc = sp->svc, .x = x};
    int rc = -1;
    if (build_env(x, &env, err) == 0 && build_argv(x, &argv, err) == 0 &&
        llm_env(sp, sb, x, &env, &watch.llm, err) == 0 &&
        sprites_exec_path(sb->name, (const char *const *)argv.v, (const char *const *)env.v,
                          SPRITES_HOME, &path, err) == 0 &&
        (path.len <= SPRITES_PATH_MAX || launcher(sb, x, &argv, &env, &path, err) == 0))
        rc = sprites_run_path(sp, sb->name, x, path.data, stop_check, &watch, err);
    if (rc == 0 && watch.llm) sp->svc->llm_usage(sp->svc->ud, watch.llm, &x->llm);
    if (watch.llm) sp->svc->llm_close(sp->svc->ud, watch.llm);
    sp->svc->name_touch(sp->svc->ud, sb->thread_key, NULL);
    for (size_t i = 0; i < env.n; i++)
        explicit_bzero(env.v[i], strlen(env.v[i]));
    explicit_bzero(path.data, path.len);
    jb_strv_free(&env);
    jb_strv_free(&argv);
    jb_buf_release(&path);
    return rc;
}
