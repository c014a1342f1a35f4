/* sandbox/sprites-sprite.c -- a sprite by name: its network policy, make (create when
 * missing, then the policy), delete, run a command in it, list sprites. The layer over the
 * REST client (sprites-rest.c) and the exec client (sprites-exec.c) that set-up and
 * checkpoints (sprites-setup.c), the pool (sprites-pool.c) and the backend (sprites.c,
 * sprites-ops.c) build on; it calls nothing above it. */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sprites-int.h"

#define EXEC_ATTEMPTS 3

/* ---- network policies ---- */

static int add_rule(json_t *rules, const char *action, const char *domain)
{
    json_t *r = json_pack("{s:s, s:s}", "action", action, "domain", domain);
    return r ? json_array_append_new(rules, r) : -1;
}

char *sprites_policy_json(const char *csv, struct jb_err *err)
{
    json_t *rules = json_array();
    jb_autofree char *copy = strdup(csv ? csv : "");
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
    if (asprintf(&s, "%s%s%s%s%s", csv ? csv : "", more ? "," : "", more ? more : "",
                 *host ? "," : "", host) < 0)
        return NULL;
    return s;
}

/* ---- make, delete ---- */

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

int sprites_set_policy(struct sprites *sp, const char *name, const char *policy, struct jb_err *err)
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
int sprites_exists(struct sprites *sp, const char *name, struct jb_err *err)
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
    int ex = sprites_exists(sp, name, err);
    if (ex < 0 || (!ex && create_sprite(sp, name, err) < 0)) return -1;
    if (created) *created = !ex;
    /* Every use re-applies the policy: it replaces, so a sprite whose policy call once
     * failed is never left open, and a changed allowlist reaches old sprites. */
    return sprites_set_policy(sp, name, policy ? policy : sp->policy, err);
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

/* ---- run ---- */

const char sprites_drop_root[] =
    "if [ \"$(id -u)\" = 0 ]; then u=$(stat -c %u \"$HOME\") g=$(stat -c %g \"$HOME\"); "
    "if [ \"${u:-0}\" = 0 ]; then echo \"janebot: $HOME belongs to root; the agent does not run "
    "as root\" >&2; exit 126; fi; exec setpriv --reuid=\"$u\" --regid=\"$g\" --clear-groups -- "
    "\"$@\"; fi; exec \"$@\"";

int sprites_run_path(struct sprites *sp, const char *name, struct sandbox_exec *x, const char *path,
                     int (*stop)(void *ud), void *stop_ud, struct jb_err *err)
{
    struct jb_err e = {0};
    for (int n = 1;; n++) {
        long status = 0;
        int rc = sprites_ws_exec(sp, path, x, stop, stop_ud, &status, &e);
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
    if (rc == 0) rc = sprites_run_path(sp, name, x, path.data, NULL, NULL, err);
    jb_buf_release(&path);
    return rc;
}

/* ---- list ---- */

int sprites_list_each(struct sprites *sp, const char *prefix,
                      int (*fn)(void *ud, json_t *entry, struct jb_err *err), void *ud,
                      struct jb_err *err)
{
    struct jb_buf path = JB_BUF_INIT(8192);
    char *token = NULL;
    int rc = 0;
    for (int page = 0; rc == 0 && page < 1000; page++) {
        jb_buf_reset(&path);
        struct sprites_resp r;
        rc = jb_buf_appendf(&path, err, "/v1/sprites?max_results=50&prefix=") < 0 ||
                     sprites_escape(&path, prefix, err) < 0 ||
                     (token && (jb_buf_appendf(&path, err, "&continuation_token=") < 0 ||
                                sprites_escape(&path, token, err) < 0))
                 ? -1
                 : 0;
        if (rc < 0 || (rc = sprites_rest(sp, "GET", path.data, NULL, 0, &r, err)) < 0) break;
        json_t *doc = r.status == 200 ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL;
        json_t *arr = json_object_get(doc, "sprites"), *e;
        size_t i;
        if (!json_is_array(arr)) {
            char why[512];
            sprites_describe(&r, why, sizeof why);
            rc = jb_err_set(err, JB_EUNAVAIL, "cannot list sprites: %s", why);
        } else {
            json_array_foreach(arr, i,
                               e) if (rc == 0 && json_string_value(json_object_get(e, "name"))) rc =
                fn(ud, e, err);
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
    return rc;
}
