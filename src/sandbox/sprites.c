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
 *  - list, remove, reset, golden and the context: sprites-ops.c. */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "proxy/proxy.h"
#include "sandbox/sprites-int.h"
#include "store/store.h"

#define EXEC_ATTEMPTS 3

/* ---- pure helpers ---- */

int sprites_escape(struct jb_buf *b, const char *s, struct jb_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (jb_buf_append(b, plain ? (const char *)p : enc, plain ? 1 : 3, err) < 0) return -1;
    }
    return 0;
}

static int add_rule(json_t *rules, const char *action, const char *domain)
{
    json_t *r = json_pack("{s:s, s:s}", "action", action, "domain", domain);
    return r ? json_array_append_new(rules, r) : -1;
}

char *sprites_policy_json(const char *csv, struct jb_err *err)
{
    json_t *rules = json_array();
    jb_autofree char *copy = strdup(csv && *csv ? csv : EGRESS_DEFAULT_ALLOW);
    if (!rules || !copy) {
        json_decref(rules);
        jb_err_set(err, JB_ENOMEM, "policy");
        return NULL;
    }
    int bad = 0;
    for (char *save = NULL, *h = strtok_r(copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        while (*h == ' ' || *h == '\t')
            h++;
        char *end = h + strlen(h);
        while (end > h && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        char *colon = strrchr(h, ':');
        if (colon && h[0] != '[') *colon = '\0';
        if (*h) bad |= add_rule(rules, "allow", h) < 0;
    }
    bad |= add_rule(rules, "deny", "*") < 0;
    json_t *doc = json_pack("{s:o}", "rules", rules);
    char *s = doc && !bad ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!s) jb_err_set(err, JB_ENOMEM, "policy");
    return s;
}

char *sprites_policy_csv(const char *csv, const char *more, const char *url)
{
    char host[512] = "";
    if (url) {
        const char *h = strstr(url, "://");
        h = h ? h + 3 : url;
        snprintf(host, sizeof host, "%.*s", (int)strcspn(h, "/"), h);
    }
    char *s = NULL;
    if (asprintf(&s, "%s%s%s%s%s", csv && *csv ? csv : EGRESS_DEFAULT_ALLOW, more ? "," : "",
                 more ? more : "", *host ? "," : "", host) < 0)
        return NULL;
    return s;
}

static int add_param(struct jb_buf *b, const char *k, const char *v, struct jb_err *err)
{
    if (jb_buf_appendf(b, err, "&%s=", k) < 0) return -1;
    return sprites_escape(b, v, err);
}

int sprites_exec_path(const char *name, const char *const *argv, const char *const *env,
                      const char *dir, struct jb_buf *b, struct jb_err *err)
{
    if (!argv || !argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (jb_buf_appendf(b, err, "/v1/sprites/") < 0 || sprites_escape(b, name, err) < 0 ||
        jb_buf_appendf(b, err, "/exec?tty=false&stdin=true&max_run_after_disconnect=10s") < 0)
        return -1;
    for (const char *const *a = argv; *a; a++)
        if (add_param(b, "cmd", *a, err) < 0) return -1;
    if (add_param(b, "path", argv[0], err) < 0 || (dir && add_param(b, "dir", dir, err) < 0))
        return -1;
    for (const char *const *e = env; e && *e; e++)
        if (add_param(b, "env", *e, err) < 0) return -1;
    return 0;
}

int64_t sprites_parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end) return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (int64_t)t;
}

/* ---- sprites by name ---- */

static struct sprites *sp_of(const struct sandbox_ctx *ctx)
{
    return ctx->priv;
}

static int create_sprite(struct sprites *sp, const char *name, struct jb_err *err)
{
    jb_autofree char *body = NULL;
    json_t *j = json_pack("{s:s}", "name", name);
    body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) return jb_err_set(err, JB_ENOMEM, "create");
    struct sprites_resp r;
    if (sprites_rest(sp, "POST", "/v1/sprites", body, 0, &r, err) < 0) return -1;
    int ok = (r.status >= 200 && r.status < 300) || r.status == 409 ||
             (r.status == 400 && strstr(r.body.data, "exist"));
    if (ok) log_info("sprites: created sprite %s", name);
    char why[512];
    sprites_describe(&r, why, sizeof why);
    sprites_resp_release(&r);
    return ok ? 0 : jb_err_set(err, JB_EUNAVAIL, "cannot create sprite %s: %s", name, why);
}

static int set_policy(struct sprites *sp, const char *name, const char *policy, struct jb_err *err)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/sprites/%s/policy/network", name);
    struct sprites_resp r;
    if (sprites_rest(sp, "POST", path, policy, 0, &r, err) < 0) return -1;
    char why[512];
    sprites_describe(&r, why, sizeof why);
    int ok = r.status == 200 || r.status == 204;
    sprites_resp_release(&r);
    return ok ? 0
              : jb_err_set(err, JB_EUNAVAIL, "cannot set the network policy of sprite %s: %s", name,
                           why);
}

/* 1 when sprite name exists, 0 when it does not (404 or the quirk), -1 on error. */
static int sprite_exists(struct sprites *sp, const char *name, struct jb_err *err)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/sprites/%s", name);
    struct sprites_resp r;
    if (sprites_rest(sp, "GET", path, NULL, SPR_GET_SPRITE, &r, err) < 0) return -1;
    long st = r.status;
    int missing = sprites_is_not_found(st, r.body.data);
    char why[512];
    sprites_describe(&r, why, sizeof why);
    sprites_resp_release(&r);
    if (missing) return 0;
    if (st == 200) return 1;
    return jb_err_set(err, st == 401 || st == 403 ? JB_EDENIED : JB_EUNAVAIL, "sprite %s: %s%s",
                      name, why, st == 401 || st == 403 ? " (is SPRITES_TOKEN right?)" : "");
}

int sprites_make(struct sprites *sp, const char *name, const char *policy, int *created,
                 struct jb_err *err)
{
    int ex = sprite_exists(sp, name, err);
    if (ex < 0 || (!ex && create_sprite(sp, name, err) < 0)) return -1;
    if (created) *created = !ex;
    /* Every use re-applies the policy: it replaces, so a sprite whose policy call once
     * failed is never left open, and a changed allowlist reaches old sprites. */
    return set_policy(sp, name, policy ? policy : sp->policy, err);
}

int sprites_delete(struct sprites *sp, const char *name, struct jb_err *err)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/sprites/%s", name);
    struct sprites_resp r;
    if (sprites_rest(sp, "DELETE", path, NULL, 0, &r, err) < 0) return -1;
    long st = r.status;
    char why[512];
    sprites_describe(&r, why, sizeof why);
    sprites_resp_release(&r);
    if (st != 404 && (st < 200 || st >= 300))
        return jb_err_set(err, JB_EUNAVAIL, "cannot delete sprite %s: %s", name, why);
    if (st == 404) return 1;
    log_info("sprites: deleted sprite %s", name);
    return 0;
}

struct stop_watch {
    struct llm_session *llm;
    struct sandbox_exec *x;
};

static int stop_check(void *ud)
{
    struct stop_watch *w = ud;
    const char *why = w->llm ? llm_session_refused(w->llm) : NULL;
    if (why) w->x->llm_refused = why;
    return why != NULL;
}

static int run_path(struct sprites *sp, const char *name, struct sandbox_exec *x, const char *path,
                    struct stop_watch *watch, struct jb_err *err)
{
    struct jb_err e = {0};
    for (int n = 1;; n++) {
        long status = 0;
        int rc = sprites_ws_exec(sp, path, x, watch ? stop_check : NULL, watch, &status, &e);
        if (rc == SPR_EXEC_DONE) return 0;
        int again = rc == SPR_EXEC_NOT_STARTED && n < EXEC_ATTEMPTS && e.code != JB_ETIMEOUT &&
                    (status == 0 || status >= 500 || status == 404) &&
                    !(x->deadline_ms && jb_mono_ms() >= x->deadline_ms);
        if (!again) return jb_err_set(err, e.code, "sprite %s: %s", name, e.msg);
        log_warn("sprites: exec in %s: %s; trying again", name, e.msg);
        if (status == 404 && sprites_make(sp, name, NULL, NULL, err) < 0) return -1; /* gone */
        usleep(300000u * (unsigned)n);
    }
}

int sprites_run(struct sprites *sp, const char *name, struct sandbox_exec *x, const char *dir,
                struct jb_err *err)
{
    struct jb_buf path = JB_BUF_INIT(4u << 20);
    int rc = sprites_exec_path(name, x->argv, x->env, dir, &path, err);
    if (rc == 0) rc = run_path(sp, name, x, path.data, NULL, err);
    jb_buf_release(&path);
    return rc;
}

/* ---- ensure: which sprite serves the thread ---- */

static int store_locked_get(struct sprites *sp, const char *thread_key,
                            struct sandbox_name_row *row, struct jb_err *err)
{
    pthread_mutex_lock(&sp->st_mu);
    int rc = store_name_get(sp->st, thread_key, 0, row, err);
    pthread_mutex_unlock(&sp->st_mu);
    return rc;
}

static int store_locked_set(struct sprites *sp, const char *thread_key, const char *name,
                            const char *golden, struct jb_err *err)
{
    pthread_mutex_lock(&sp->st_mu);
    int rc = store_name_set(sp->st, thread_key, name, golden, golden ? sp->setup_hash : NULL, err);
    pthread_mutex_unlock(&sp->st_mu);
    return rc;
}

/* A thread's first turn: its own sprite when one exists (made before janebot kept names),
 * else a warm one from the pool, else a new one made now (*ready: nothing more to do). */
static int first_sprite(struct sprites *sp, struct sandbox *sb, int *ready, struct jb_err *err)
{
    int ex = sprite_exists(sp, sb->name, err);
    if (ex < 0) return -1;
    if (ex) { /* just seen: its policy, and no second look */
        *ready = 1;
        return set_policy(sp, sb->name, sp->policy, err) < 0
                   ? -1
                   : store_locked_set(sp, sb->thread_key, sb->name, NULL, err);
    }
    struct sandbox_name_row row;
    struct jb_err e = {0};
    pthread_mutex_lock(&sp->st_mu);
    int rc = sp->pool ? store_pool_claim(sp->st, sb->thread_key, sp->setup_hash, &row, &e) : -1;
    pthread_mutex_unlock(&sp->st_mu);
    if (rc == 0) {
        log_info("sprites: thread %s takes warm sprite %s", sb->thread_key, row.name);
        snprintf(sb->name, sizeof sb->name, "%s", row.name);
        sandbox_name_row_release(&row);
        sprites_pool_kick(sp);
        return 0;
    }
    if (sp->pool && e.code != JB_ENOTFOUND) log_warn("sprites: pool: %s", e.msg);
    char golden[SPRITES_CKPT_ID_MAX];
    if (sprites_prepare(sp, sb->name, golden, err) < 0) return -1;
    *ready = 1;
    return store_locked_set(sp, sb->thread_key, sb->name, golden, err);
}

int sprites_sb_ensure(struct sandbox *sb, struct jb_err *err)
{
    struct sprites *sp = sp_of(sb->ctx);
    if (!(sb->run_dir = strdup(SPRITES_RUN_DIR))) return jb_err_set(err, JB_ENOMEM, "run dir");
    struct sandbox_name_row row;
    if (store_locked_get(sp, sb->thread_key, &row, err) < 0) {
        if (err->code != JB_ENOTFOUND) return -1;
        memset(err, 0, sizeof *err);
        int ready = 0;
        if (first_sprite(sp, sb, &ready, err) < 0) return -1;
        if (ready) return 0;
    } else {
        snprintf(sb->name, sizeof sb->name, "%s", row.name);
        sandbox_name_row_release(&row);
    }
    int created = 0;
    if (sprites_make(sp, sb->name, NULL, &created, err) < 0) return -1;
    if (!created) return 0;
    /* It vanished (deleted, or lost by the API): made again under its name, set up, and
     * the thread keeps its session. */
    log_warn("sprites: sprite %s of %s was gone; made it again", sb->name, sb->thread_key);
    char golden[SPRITES_CKPT_ID_MAX];
    if (sprites_prepare(sp, sb->name, golden, err) < 0) return -1;
    return store_locked_set(sp, sb->thread_key, sb->name, golden, err);
}

/* ---- exec ---- */

/* A channel's own egress names (x->egress_extra) for this run: the policy is replaced for
 * it, and the next ensure puts the global one back. */
static int channel_policy(struct sprites *sp, const char *name, const char *extra,
                          struct jb_err *err)
{
    jb_autofree char *csv = sprites_policy_csv(sp->cfg->egress_allow, extra, sp->cfg->public_url);
    jb_autofree char *json = csv ? sprites_policy_json(csv, err) : NULL;
    if (!json) return csv ? -1 : jb_err_set(err, JB_ENOMEM, "policy");
    return set_policy(sp, name, json, err);
}

/* The agent never runs as root: when the sprite's exec user is root, drop to the owner of
 * the home (the sprite's own user), and refuse when that is root too. */
static const char drop_root[] =
    "if [ \"$(id -u)\" = 0 ]; then u=$(stat -c %u \"$HOME\") g=$(stat -c %g \"$HOME\"); "
    "if [ \"${u:-0}\" = 0 ]; then echo \"janebot: $HOME belongs to root; the agent does not run "
    "as root\" >&2; exit 126; fi; exec setpriv --reuid=\"$u\" --regid=\"$g\" --clear-groups -- "
    "\"$@\"; fi; exec \"$@\"";

static int build_argv(const struct sandbox_exec *x, struct jb_strv *argv, struct jb_err *err)
{
    if (jb_strv_push(argv, "/bin/sh", err) < 0 || jb_strv_push(argv, "-c", err) < 0 ||
        jb_strv_push(argv, drop_root, err) < 0 || jb_strv_push(argv, "sh", err) < 0)
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

/* With JANEBOT_PUBLIC_URL: a scoped token for this exec replaces every real key the
 * adapter put in env, and the base URLs point at the proxy, by this sprite's name. */
static int llm_env(struct sprites *sp, struct sandbox *sb, const struct sandbox_exec *x,
                   struct jb_strv *env, struct llm_session **ret, struct jb_err *err)
{
    char token[LLM_TOKEN_LEN + 1];
    if (llm_session_open_remote(sp->llm, sb->thread_key, x->user ? x->user : "sandbox-exec",
                                sb->name, token, ret, err) < 0)
        return -1;
    int rc = 0;
    for (int p = 0; p < LLM_NPROVIDERS && rc == 0; p++) {
        if (!llm_proxy_offers(sp->llm, (enum llm_provider)p)) continue;
        jb_autofree char *base =
            llm_remote_base_url(sp->public_url, sb->name, (enum llm_provider)p);
        rc = !base ? jb_err_set(err, JB_ENOMEM, "llm env")
             : jb_env_set(env, llm_base_var((enum llm_provider)p), base, err) < 0 ||
                     jb_env_set(env, llm_key_var((enum llm_provider)p), token, err) < 0
                 ? -1
                 : 0;
    }
    explicit_bzero(token, sizeof token);
    return rc;
}

static int no_keys(struct jb_strv *env, struct jb_err *err)
{
    for (int p = 0; p < LLM_NPROVIDERS; p++)
        if (jb_env_set(env, llm_key_var((enum llm_provider)p), "", err) < 0) return -1;
    return 0;
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
    sprites_llm_ready(sp);
    if (x->egress_extra && *x->egress_extra &&
        channel_policy(sp, sb->name, x->egress_extra, err) < 0)
        return -1;
    for (size_t i = 0; i < x->nfiles; i++)
        if (place_file(sb, x, x->files[i].path, x->files[i].data, x->files[i].len, err) < 0)
            return -1;
    struct jb_strv env = JB_STRV_INIT, argv = JB_STRV_INIT;
    struct jb_buf path = JB_BUF_INIT(4u << 20);
    struct stop_watch watch = {.x = x};
    int rc = -1;
    if (build_env(x, &env, err) == 0 && build_argv(x, &argv, err) == 0 &&
        (!sp->llm || llm_env(sp, sb, x, &env, &watch.llm, err) == 0) &&
        (!sp->no_keys || no_keys(&env, err) == 0) &&
        sprites_exec_path(sb->name, (const char *const *)argv.v, (const char *const *)env.v,
                          SPRITES_HOME, &path, err) == 0 &&
        (path.len <= SPRITES_PATH_MAX || launcher(sb, x, &argv, &env, &path, err) == 0))
        rc = run_path(sp, sb->name, x, path.data, &watch, err);
    if (rc == 0 && watch.llm) llm_session_usage(watch.llm, &x->llm);
    llm_session_close(watch.llm);
    pthread_mutex_lock(&sp->st_mu);
    store_name_touch(sp->st, sb->thread_key, NULL);
    pthread_mutex_unlock(&sp->st_mu);
    for (size_t i = 0; i < env.n; i++)
        explicit_bzero(env.v[i], strlen(env.v[i]));
    explicit_bzero(path.data, path.len);
    jb_strv_free(&env);
    jb_strv_free(&argv);
    jb_buf_release(&path);
    return rc;
}
