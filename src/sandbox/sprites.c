/* sandbox/sprites.c -- the Sprites backend: one Sprite (a persistent Firecracker micro-VM
 * of api.sprites.dev) per thread, named like every sandbox ("jane-<12 hex>").
 *  - ensure: GET the sprite; when missing (404, or the 500 "failed to retrieve" quirk)
 *    create it; then POST its network policy (JANEBOT_EGRESS_ALLOW, ending in deny *)
 *    before any command runs. Every ensure re-applies the policy (it replaces, so this is
 *    idempotent, and a sprite whose policy call failed once is never left open).
 *  - exec: the WebSocket exec protocol (sprites-exec.c) with HOME, PATH and friends set
 *    explicitly (a given env replaces the sprite's). An upgrade that failed is retried
 *    (5xx, network; a 404 first recreates the sprite); a command that started is never
 *    re-run. Files for the run are written by a small `sh` exec first.
 *  - list and remove go to the API (sandbox.c routes them here); the local directory
 *    <state>/sandboxes/<name> only keeps the thread key and last-use stamp. */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "proxy/proxy.h"
#include "sandbox/sprites-int.h"

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

/* ---- ensure ---- */

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

static int set_policy(struct sprites *sp, const char *name, struct jb_err *err)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/sprites/%s/policy/network", name);
    struct sprites_resp r;
    if (sprites_rest(sp, "POST", path, sp->policy, 0, &r, err) < 0) return -1;
    char why[512];
    sprites_describe(&r, why, sizeof why);
    int ok = r.status == 200 || r.status == 204;
    sprites_resp_release(&r);
    return ok ? 0
              : jb_err_set(err, JB_EUNAVAIL, "cannot set the network policy of sprite %s: %s", name,
                           why);
}

/* Make sure the sprite exists and has our policy. */
static int sprite_ready(struct sprites *sp, const char *name, struct jb_err *err)
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
    if (missing) {
        if (create_sprite(sp, name, err) < 0) return -1;
    } else if (st != 200) {
        return jb_err_set(err, st == 401 || st == 403 ? JB_EDENIED : JB_EUNAVAIL, "sprite %s: %s%s",
                          name, why, st == 401 || st == 403 ? " (is SPRITES_TOKEN right?)" : "");
    }
    return set_policy(sp, name, err);
}

static int sprites_ensure(struct sandbox *sb, struct jb_err *err)
{
    if (!(sb->run_dir = strdup(SPRITES_RUN_DIR))) return jb_err_set(err, JB_ENOMEM, "run dir");
    return sprite_ready(sp_of(sb->ctx), sb->name, err);
}

/* ---- exec ---- */

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

static int exec_once_retrying(struct sandbox *sb, struct sandbox_exec *x, const char *path,
                              struct jb_err *err)
{
    struct sprites *sp = sp_of(sb->ctx);
    struct jb_err e = {0};
    for (int n = 1;; n++) {
        long status = 0;
        int rc = sprites_ws_exec(sp, path, x, &status, &e);
        if (rc == SPR_EXEC_DONE) return 0;
        int again = rc == SPR_EXEC_NOT_STARTED && n < EXEC_ATTEMPTS &&
                    (status == 0 || status >= 500 || status == 404) &&
                    !(x->deadline_ms && jb_mono_ms() >= x->deadline_ms);
        if (!again) return jb_err_set(err, e.code, "sprite %s: %s", sb->name, e.msg);
        log_warn("sprites: exec in %s: %s; trying again", sb->name, e.msg);
        if (status == 404 && sprite_ready(sp, sb->name, err) < 0) return -1; /* it vanished */
        usleep(300000u * (unsigned)n);
    }
}

/* Write the run's files with `sh` in the sprite (only under the run dir). */
static int place_files(struct sandbox *sb, const struct sandbox_exec *x, struct jb_err *err)
{
    static const char script[] = "umask 077 && mkdir -p \"${1%/*}\" && cat > \"$1\"";
    size_t dl = strlen(SPRITES_RUN_DIR);
    for (size_t i = 0; i < x->nfiles; i++) {
        const char *p = x->files[i].path;
        if (strncmp(p, SPRITES_RUN_DIR "/", dl + 1) != 0 || strstr(p, "/.."))
            return jb_err_set(err, JB_EDENIED, "file %s is outside the sandbox's run dir", p);
        const char *argv[] = {"/bin/sh", "-c", script, "sh", p, NULL};
        const char *env[] = {"PATH=" SPRITES_PATH, NULL};
        struct jb_buf path = JB_BUF_INIT(1u << 20);
        struct sandbox_exec fx = {.stdin_data = x->files[i].data,
                                  .stdin_len = x->files[i].len,
                                  .deadline_ms = x->deadline_ms,
                                  .cancel = x->cancel};
        int rc = sprites_exec_path(sb->name, argv, env, NULL, &path, err);
        if (rc == 0) rc = exec_once_retrying(sb, &fx, path.data, err);
        jb_buf_release(&path);
        if (rc < 0) return -1;
        if (fx.exit_code != 0)
            return jb_err_set(err, JB_EUNAVAIL, "cannot write %s in sprite %s: %s", p, sb->name,
                              fx.stderr_tail);
    }
    return 0;
}

static int sprites_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err)
{
    if (!x->argv || !x->argv[0]) return jb_err_set(err, JB_EPROTO, "empty command");
    if (place_files(sb, x, err) < 0) return -1;
    struct jb_strv env = JB_STRV_INIT;
    struct jb_buf path = JB_BUF_INIT(4u << 20);
    int rc = -1;
    if (build_env(x, &env, err) == 0 &&
        sprites_exec_path(sb->name, x->argv, (const char *const *)env.v, SPRITES_HOME, &path,
                          err) == 0)
        rc = exec_once_retrying(sb, x, path.data, err);
    jb_strv_free(&env);
    jb_buf_release(&path);
    return rc;
}

/* ---- list and remove (called by sandbox.c for this backend) ---- */

static void info_from(const struct sandbox_ctx *ctx, json_t *e, struct sandbox_info *in)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    char path[4096];
    size_t len;
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", name);
    in->backend = "sprites";
    in->size_bytes = -1;
    snprintf(path, sizeof path, "%s/%s/thread_key", ctx->root, name);
    if (jb_read_file(path, 4096, &in->thread_key, &len, NULL) < 0) in->thread_key = strdup("?");
    static const char *const fields[] = {"last_active_at", "last_running_at", "updated_at"};
    for (size_t i = 0; i < JB_ARRAY_LEN(fields) && !in->last_used; i++)
        in->last_used = sprites_parse_time(json_string_value(json_object_get(e, fields[i])));
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/last_used", ctx->root, name);
    if (stat(path, &st) == 0 && st.st_mtime > in->last_used) in->last_used = st.st_mtime;
}

/* Append this page's thread sprites to *v; *next gets the continuation token or NULL. */
static int list_page(const struct sandbox_ctx *ctx, json_t *doc, struct sandbox_info **v, size_t *n,
                     struct jb_err *err)
{
    json_t *arr = json_object_get(doc, "sprites"), *e;
    size_t i;
    if (!json_is_array(arr))
        return jb_err_set(err, JB_EPROTO, "Sprites list: no \"sprites\" array");
    json_array_foreach(arr, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!name || !sandbox_is_name(name)) continue; /* pool sprites, others' */
        struct sandbox_info *nv = realloc(*v, (*n + 1) * sizeof **v);
        if (!nv) return jb_err_set(err, JB_ENOMEM, "sandbox list");
        *v = nv;
        info_from(ctx, e, &nv[*n]);
        if (!nv[*n].thread_key) return jb_err_set(err, JB_ENOMEM, "sandbox list");
        (*n)++;
    }
    return 0;
}

static int sprites_list(const struct sandbox_ctx *ctx, struct sandbox_info **ret, size_t *ret_n,
                        struct jb_err *err)
{
    struct sandbox_info *v = NULL;
    size_t n = 0;
    struct jb_buf path = JB_BUF_INIT(8192);
    char *token = NULL;
    int rc = 0;
    for (int page = 0; rc == 0 && page < 1000; page++) {
        jb_buf_reset(&path);
        struct sprites_resp r;
        rc = jb_buf_appendf(&path, err, "/v1/sprites?prefix=jane-&max_results=50");
        if (rc == 0 && token)
            rc = jb_buf_appendf(&path, err, "&continuation_token=") < 0
                     ? -1
                     : sprites_escape(&path, token, err);
        if (rc < 0 || (rc = sprites_rest(sp_of(ctx), "GET", path.data, NULL, 0, &r, err)) < 0)
            break;
        json_t *doc = r.status == 200 ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL;
        if (!doc) {
            char why[512];
            sprites_describe(&r, why, sizeof why);
            rc = jb_err_set(err, JB_EUNAVAIL, "cannot list sprites: %s", why);
        } else {
            rc = list_page(ctx, doc, &v, &n, err);
            const char *next = json_string_value(json_object_get(doc, "next_continuation_token"));
            free(token);
            token = json_is_true(json_object_get(doc, "has_more")) && next ? strdup(next) : NULL;
        }
        json_decref(doc);
        sprites_resp_release(&r);
        if (!token) break;
    }
    free(token);
    jb_buf_release(&path);
    if (rc < 0) {
        sandbox_info_free(v, n);
        return -1;
    }
    *ret = v, *ret_n = n;
    return 0;
}

static int sprites_remove(const struct sandbox_ctx *ctx, const char *key_or_name,
                          struct jb_err *err)
{
    char name[SANDBOX_NAME_LEN], path[4096];
    sandbox_name_of(key_or_name, name);
    snprintf(path, sizeof path, "/v1/sprites/%s", name);
    struct sprites_resp r;
    if (sprites_rest(sp_of(ctx), "DELETE", path, NULL, 0, &r, err) < 0) return -1;
    long st = r.status;
    char why[512];
    sprites_describe(&r, why, sizeof why);
    sprites_resp_release(&r);
    snprintf(path, sizeof path, "%s/%s", ctx->root, name);
    struct stat lst;
    int local = lstat(path, &lst) == 0;
    if (local && jb_rm_rf(path, err) < 0) return -1;
    if (st == 404 && !local)
        return jb_err_set(err, JB_ENOTFOUND, "no sandbox %s (for %s)", name, key_or_name);
    if (st != 404 && (st < 200 || st >= 300))
        return jb_err_set(err, JB_EUNAVAIL, "cannot delete sprite %s: %s", name, why);
    log_info("sprites: deleted sprite %s", name);
    return 0;
}

/* ---- backend table ---- */

static int probe(const struct jb_config *cfg, struct jb_err *err)
{
    struct sprites *sp = NULL;
    if (sprites_client_new(cfg->sprites_api_url, cfg->sprites_token, cfg->egress_allow, &sp, err) <
        0)
        return -1;
    sp->rest_attempts = 2;
    struct sprites_resp r;
    int rc = sprites_rest(sp, "GET", "/v1/sprites?max_results=1", NULL, 0, &r, err);
    if (rc == 0) {
        char why[512];
        sprites_describe(&r, why, sizeof why);
        if (r.status != 200)
            rc = jb_err_set(err, JB_EUNAVAIL, "the Sprites API at %s answered %s%s", sp->api_url,
                            why,
                            r.status == 401 || r.status == 403 ? " (is SPRITES_TOKEN right?)" : "");
        sprites_resp_release(&r);
    }
    sprites_client_free(sp);
    return rc;
}

/* The seed's trade-off, said plainly: a sprite cannot reach janebot's LLM proxy on a
 * host socket, so the agent's real key goes into the sprite. */
static const char key_in_sprite[] =
    "the Sprites backend passes the agent's real API key into each sprite (the seed's "
    "trade-off): janebot's LLM proxy with scoped tokens covers local sandboxes only";

static int sprites_available(const struct sandbox_ctx *ctx, struct jb_err *err)
{
    if (probe(ctx->cfg, err) < 0) return -1;
    log_warn("%s", key_in_sprite);
    return 0;
}

static int sprites_doctor(const struct sandbox_ctx *ctx,
                          void (*report)(void *ud, int ok, const char *what, const char *detail),
                          void *ud)
{
    struct jb_err e = {0};
    int ok = probe(ctx->cfg, &e) == 0;
    char detail[900];
    snprintf(detail, sizeof detail, "sprites: %s", ok ? "the Sprites API answers" : e.msg);
    report(ud, ok, "sandbox", detail);
    report(ud, 1, "api keys", key_in_sprite);
    return ok ? 0 : 1;
}

static int sprites_ctx_init(struct sandbox_ctx *ctx, struct jb_err *err)
{
    struct sprites *sp = NULL;
    const struct jb_config *cfg = ctx->cfg;
    if (sprites_client_new(cfg->sprites_api_url, cfg->sprites_token, cfg->egress_allow, &sp, err) <
        0)
        return -1;
    ctx->priv = sp;
    return 0;
}

static void sprites_ctx_release(struct sandbox_ctx *ctx)
{
    sprites_client_free(ctx->priv);
}

const struct sandbox_ops sandbox_sprites_ops = {
    .version = 1,
    .name = "sprites",
    .available = sprites_available,
    .ensure = sprites_ensure,
    .exec = sprites_exec,
    .doctor = sprites_doctor,
    .ctx_init = sprites_ctx_init,
    .ctx_release = sprites_ctx_release,
    .list = sprites_list,
    .remove = sprites_remove,
};
