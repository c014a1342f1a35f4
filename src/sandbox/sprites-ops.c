/* sandbox/sprites-ops.c -- the Sprites backend's table: list, remove, reset, the golden
 * build, health checks for `doctor`, and the context (the client and the warm pool; the
 * store and the LLM proxy on TCP for JANEBOT_PUBLIC_URL are the core's services). ensure
 * and exec are in sprites.c. */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/sprites-int.h"

#define GOLDEN_NAME "jane-golden"

static struct sprites *sp_of(const struct sandbox_ctx *ctx)
{
    return ctx->priv;
}

/* ---- list ---- */

struct lister {
    const struct sandbox_ctx *ctx;
    struct sandbox_sprite_row *names; /* the store's, by name */
    size_t nnames;
    struct sandbox_info *v;
    size_t n;
};

static const struct sandbox_sprite_row *row_of(const struct lister *l, const char *name)
{
    for (size_t i = 0; i < l->nnames; i++)
        if (!strcmp(l->names[i].name, name)) return &l->names[i];
    return NULL;
}

static int list_one(void *ud, json_t *e, struct jb_err *err)
{
    struct lister *l = ud;
    const char *name = json_string_value(json_object_get(e, "name"));
    const struct sandbox_sprite_row *row = row_of(l, name);
    /* Thread sprites only: a pool sprite nobody claimed yet is not one. */
    if (!sandbox_is_name(name) || (!row && !strncmp(name, SPRITES_POOL_PREFIX, 10))) return 0;
    struct sandbox_info *nv = realloc(l->v, (l->n + 1) * sizeof *l->v);
    if (!nv) return jb_err_set(err, JB_ENOMEM, "sandbox list");
    l->v = nv;
    struct sandbox_info *in = &nv[l->n];
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", name);
    in->backend = "sprites";
    in->size_bytes = -1;
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/%s/thread_key", l->ctx->root, name);
    if (row)
        in->thread_key = strdup(row->thread_key);
    else if (jb_read_file(path, 4096, &in->thread_key, &len, NULL) < 0)
        in->thread_key = strdup("?");
    if (!in->thread_key) return jb_err_set(err, JB_ENOMEM, "sandbox list");
    l->n++;
    static const char *const fields[] = {"last_active_at", "last_running_at", "updated_at"};
    for (size_t i = 0; i < JB_ARRAY_LEN(fields) && !in->last_used; i++)
        in->last_used = sprites_parse_time(json_string_value(json_object_get(e, fields[i])));
    if (row && row->last_used / 1000 > in->last_used) in->last_used = row->last_used / 1000;
    return 0;
}

static int sprites_list(const struct sandbox_ctx *ctx, struct sandbox_info **ret, size_t *ret_n,
                        struct jb_err *err)
{
    struct sprites *sp = sp_of(ctx);
    struct lister l = {.ctx = ctx};
    int rc = sp->svc->name_list(sp->svc->ud, &l.names, &l.nnames, err);
    if (rc == 0) rc = sprites_list_each(sp, "jane-", list_one, &l, err);
    sandbox_sprite_rows_free(l.names, l.nnames);
    if (rc < 0) {
        sandbox_info_free(l.v, l.n);
        return -1;
    }
    *ret = l.v, *ret_n = l.n;
    return 0;
}

/* ---- remove and reset ---- */

/* key_or_name -> the sprite and (when known) its thread; *row filled when the store has it. */
static int resolve(struct sprites *sp, const char *key_or_name, char name[SANDBOX_NAME_LEN],
                   struct sandbox_sprite_row *row, int *have_row, struct jb_err *err)
{
    int by_name = sandbox_is_name(key_or_name);
    struct jb_err e = {0};
    int rc = sp->svc->name_get(sp->svc->ud, key_or_name, by_name, row, &e);
    if (rc < 0 && e.code != JB_ENOTFOUND) return jb_err_set(err, e.code, "%s", e.msg);
    *have_row = rc == 0;
    if (*have_row)
        snprintf(name, SANDBOX_NAME_LEN, "%s", row->name);
    else
        sandbox_name_of(key_or_name, name);
    return 0;
}

static int sprites_remove(const struct sandbox_ctx *ctx, const char *key_or_name,
                          struct jb_err *err)
{
    struct sprites *sp = sp_of(ctx);
    char name[SANDBOX_NAME_LEN], own[SANDBOX_NAME_LEN], dir[4096];
    struct sandbox_sprite_row row = {0};
    int have_row = 0;
    if (resolve(sp, key_or_name, name, &row, &have_row, err) < 0) return -1;
    int rc = sprites_delete(sp, name, err);
    if (rc >= 0 && have_row) sp->svc->name_delete(sp->svc->ud, row.thread_key, NULL);
    /* The local directory keeps the thread key and last-use stamp, by the thread's own name. */
    if (have_row) sandbox_name_for(row.thread_key, own);
    snprintf(dir, sizeof dir, "%s/%s", ctx->root, have_row ? own : name);
    struct stat lst;
    int local = lstat(dir, &lst) == 0;
    sandbox_sprite_row_release(&row);
    if (rc < 0 || (local && jb_rm_rf(dir, err) < 0)) return -1;
    if (rc == 1 && !have_row && !local)
        return jb_err_set(err, JB_ENOTFOUND, "no sandbox %s (for %s)", name, key_or_name);
    return 0;
}

static int sprites_reset(const struct sandbox_ctx *ctx, const char *thread_key, struct jb_err *err)
{
    struct sprites *sp = sp_of(ctx);
    char name[SANDBOX_NAME_LEN];
    struct sandbox_sprite_row row = {0};
    int have_row = 0, rc = -1;
    if (resolve(sp, thread_key, name, &row, &have_row, err) < 0) return -1;
    if (!have_row)
        rc = jb_err_set(err, JB_ENOTFOUND, "no sprite serves %s (it gets one on its next turn)",
                        thread_key);
    else if (!row.golden)
        rc = jb_err_set(err, JB_EUNAVAIL,
                        "sprite %s has no golden checkpoint (it was made before janebot kept "
                        "one): `janebot sandbox rm %s` gives the thread a new sprite",
                        name, thread_key);
    else if (sprites_restore(sp, name, row.golden, err) == 0)
        rc = sprites_make(sp, name, NULL, NULL, err); /* the allowlist of today */
    sandbox_sprite_row_release(&row);
    return rc;
}

/* ---- golden ---- */

static int sprites_golden(const struct sandbox_ctx *ctx, char *out, size_t n, struct jb_err *err)
{
    struct sprites *sp = sp_of(ctx);
    char golden[SPRITES_CKPT_ID_MAX];
    int64_t t0 = jb_mono_ms();
    /* From a clean image: the set-up must work on a new sprite, not only on the last one. */
    if (sprites_delete(sp, GOLDEN_NAME, err) < 0 ||
        sprites_prepare(sp, GOLDEN_NAME, golden, err) < 0)
        return -1;
    snprintf(out, n,
             "sprite %s: set-up %s ran and was checkpointed as %s (\"%s %s\") in %.1f s.\n"
             "The Sprites API restores a checkpoint only into the sprite that took it, so new "
             "and pooled sprites each run this same set-up once and keep their own golden "
             "checkpoint; pool sprites made by another set-up are replaced.",
             GOLDEN_NAME, sp->setup_hash, golden, SPRITES_GOLDEN_COMMENT, sp->setup_hash,
             (double)(jb_mono_ms() - t0) / 1000.0);
    return 0;
}

/* ---- health, context, table ---- */

static int probe(const struct sandbox_opts *o, struct jb_err *err)
{
    struct sprites *sp = NULL;
    if (sprites_client_new(o->sprites_api_url, o->sprites_token, &sp, err) < 0) return -1;
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

/* Where the agent's API key comes from, said plainly (the seed's trade-off without a
 * public URL for the proxy). */
static void keys_line(const struct sandbox_opts *o, char *out, size_t n)
{
    if (o->public_url)
        snprintf(out, n,
                 "sprites reach janebot's LLM proxy at %s with a scoped token per exec; the real "
                 "API keys stay on this host",
                 o->public_url);
    else
        snprintf(out, n,
                 "JANEBOT_PUBLIC_URL is not set, so the Sprites backend passes the agent's real "
                 "API key into each sprite (the seed's trade-off); set JANEBOT_PROXY_LISTEN and "
                 "JANEBOT_PUBLIC_URL (https, a TLS terminator in front) to keep it on this host");
}

static int sprites_available(const struct sandbox_ctx *ctx, struct jb_err *err)
{
    if (probe(ctx->opts, err) < 0) return -1;
    char line[512];
    keys_line(ctx->opts, line, sizeof line);
    if (ctx->opts->public_url)
        log_info("%s", line);
    else
        log_warn("%s", line);
    return 0;
}

static int sprites_doctor(const struct sandbox_ctx *ctx,
                          void (*report)(void *ud, int ok, const char *what, const char *detail),
                          void *ud)
{
    struct jb_err e = {0};
    int ok = probe(ctx->opts, &e) == 0;
    char detail[900];
    snprintf(detail, sizeof detail, "sprites: %s", ok ? "the Sprites API answers" : e.msg);
    report(ud, ok, "sandbox", detail);
    keys_line(ctx->opts, detail, sizeof detail);
    report(ud, 1, "api keys", detail);
    return ok ? 0 : 1;
}

/* The store's names and pool, and the LLM proxy, are the core's: without them a thread
 * could not keep its sprite. */
static int services_given(const struct sandbox_services *svc, struct jb_err *err)
{
    if (svc && svc->llm_open && svc->llm_refused && svc->llm_usage && svc->llm_close &&
        svc->name_get && svc->name_set && svc->name_touch && svc->name_delete && svc->name_list &&
        svc->pool_add && svc->pool_claim && svc->pool_names && svc->pool_remove)
        return 0;
    return jb_err_set(err, JB_EUNAVAIL,
                      "the Sprites backend needs the store and the LLM proxy (services not given)");
}

static void sprites_ctx_release(struct sandbox_ctx *ctx)
{
    struct sprites *sp = ctx->priv;
    sprites_pool_stop(sp);
    free(sp->policy);
    free(sp->setup_policy);
    sprites_client_free(sp);
}

static int sprites_ctx_init(struct sandbox_ctx *ctx, struct jb_err *err)
{
    struct sprites *sp = NULL;
    const struct sandbox_opts *o = ctx->opts;
    if (services_given(ctx->svc, err) < 0) return -1;
    jb_autofree char *csv = sprites_policy_csv(o->egress_allow, NULL, o->public_url);
    jb_autofree char *setup_csv = sprites_policy_csv(o->egress_allow, o->sprites_setup_allow, NULL);
    if (!csv || !setup_csv) return jb_err_set(err, JB_ENOMEM, "sprites");
    if (sprites_client_new(o->sprites_api_url, o->sprites_token, &sp, err) < 0) return -1;
    ctx->priv = sp;
    sp->metrics = o->metrics;
    char hex[65];
    sp->setup = o->sprites_setup ? o->sprites_setup : "";
    jb_sha256_hex(sp->setup, strlen(sp->setup), hex);
    snprintf(sp->setup_hash, sizeof sp->setup_hash, "%.12s", hex);
    sp->health_ms = (long)o->sprites_health_s * 1000;
    sp->opts = o, sp->svc = ctx->svc;
    if (!(sp->policy = sprites_policy_json(csv, err)) ||
        !(sp->setup_policy = sprites_policy_json(setup_csv, err)))
        return -1;
    if (ctx->serving && o->sprites_pool > 0) return sprites_pool_start(sp, o->sprites_pool, err);
    return 0;
}

const struct sandbox_ops sandbox_sprites_ops = {
    .version = 1,
    .name = "sprites",
    .available = sprites_available,
    .ensure = sprites_sb_ensure,
    .exec = sprites_sb_exec,
    .doctor = sprites_doctor,
    .ctx_init = sprites_ctx_init,
    .ctx_release = sprites_ctx_release,
    .list = sprites_list,
    .remove = sprites_remove,
    .reset = sprites_reset,
    .golden = sprites_golden,
    .outbox = sprites_outbox,
    .put = sprites_put,
};
