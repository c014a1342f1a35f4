/* sandbox/sprites-setup.c -- making a sprite ready for work, and its checkpoints.
 * A new sprite runs the configured set-up once (JANEBOT_SPRITES_SETUP: by default it
 * installs the agent's CLI when the image lacks it) under a policy that also allows the
 * set-up's hosts, gets the thread policy back, and is checkpointed with the comment
 * "janebot-golden <setup hash>": `janebot sandbox reset` restores that checkpoint.
 * The Sprites API restores a checkpoint only into the sprite that took it, so every
 * sprite keeps its own golden checkpoint; the warm pool pays the set-up ahead of time. */
#include <jansson.h>
#include <string.h>

#include "sandbox/sprites-int.h"

#define SETUP_TIMEOUT_MS (15 * 60 * 1000)

/* The "vN" in "Checkpoint v8 created". */
static void id_from_text(const char *text, char *id, size_t idn)
{
    const char *p = text ? strstr(text, "Checkpoint ") : NULL;
    id[0] = '\0';
    if (!p) return;
    p += strlen("Checkpoint ");
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
    if (n && n < idn) snprintf(id, idn, "%.*s", (int)n, p);
}

int sprites_ndjson_result(const char *body, char *id, size_t idn, char *why, size_t whyn)
{
    snprintf(why, whyn, "the stream ended without \"complete\"");
    id[0] = '\0';
    for (const char *line = body; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        json_t *ev = json_loadb(line, n, 0, NULL); /* not JSON: skipped, as the SDKs do */
        const char *type = json_string_value(json_object_get(ev, "type"));
        int done = 0;
        if (type && !strcmp(type, "complete")) {
            id_from_text(json_string_value(json_object_get(ev, "data")), id, idn);
            done = 1;
        } else if (type && !strcmp(type, "error")) {
            const char *e = json_string_value(json_object_get(ev, "error"));
            if (!e) e = json_string_value(json_object_get(ev, "data"));
            snprintf(why, whyn, "%s", e ? e : "error");
            done = -1;
        }
        json_decref(ev);
        if (done) return done > 0 ? 0 : -1;
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* POST path (body may be NULL) and judge the NDJSON answer. */
static int stream_call(struct sprites *sp, const char *path, const char *body, const char *what,
                       const char *name, char *id, size_t idn, struct jb_err *err)
{
    struct sprites_resp r;
    if (sprites_rest(sp, "POST", path, body, 0, &r, err) < 0) return -1;
    char why[512] = "";
    int rc = -1;
    if (r.status == 200)
        rc = sprites_ndjson_result(r.body.data, id, idn, why, sizeof why);
    else
        sprites_describe(&r, why, sizeof why);
    sprites_resp_release(&r);
    if (rc < 0) return jb_err_set(err, JB_EUNAVAIL, "cannot %s sprite %s: %s", what, name, why);
    return 0;
}

int sprites_checkpoint(struct sprites *sp, const char *name, const char *comment,
                       char id[SPRITES_CKPT_ID_MAX], struct jb_err *err)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sprites/%s/checkpoint", name);
    json_t *j = json_pack("{s:s}", "comment", comment);
    jb_autofree char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) return jb_err_set(err, JB_ENOMEM, "checkpoint");
    if (stream_call(sp, path, body, "checkpoint", name, id, SPRITES_CKPT_ID_MAX, err) < 0)
        return -1;
    if (!id[0])
        return jb_err_set(err, JB_EPROTO, "sprite %s: the checkpoint's id was not in the answer",
                          name);
    log_info("sprites: checkpoint %s of %s (%s)", id, name, comment);
    return 0;
}

int sprites_restore(struct sprites *sp, const char *name, const char *id, struct jb_err *err)
{
    char ignored[SPRITES_CKPT_ID_MAX];
    struct jb_buf p = JB_BUF_INIT(512);
    int rc = jb_buf_appendf(&p, err, "/v1/sprites/%s/checkpoints/", name) < 0 ||
                     sprites_escape(&p, id, err) < 0 || jb_buf_appendf(&p, err, "/restore") < 0
                 ? -1
                 : stream_call(sp, p.data, NULL, "restore", name, ignored, sizeof ignored, err);
    jb_buf_release(&p);
    if (rc < 0) return -1;
    log_info("sprites: restored %s of %s", id, name);
    return 0;
}

static int run_setup(struct sprites *sp, const char *name, struct jb_err *err)
{
    const char *argv[] = {"/bin/sh", "-c", sp->setup, NULL};
    const char *env[] = {"HOME=" SPRITES_HOME, "PATH=" SPRITES_PATH, "LANG=C.UTF-8", NULL};
    struct sandbox_exec x = {.argv = argv,
                             .env = env,
                             .deadline_ms = jb_mono_ms() + SETUP_TIMEOUT_MS,
                             .cancel = &sp->stopping};
    int64_t t0 = jb_mono_ms();
    if (sprites_run(sp, name, &x, SPRITES_HOME, err) < 0) return -1;
    if (x.timed_out || x.exit_code != 0)
        return jb_err_set(err, JB_EUNAVAIL,
                          "the set-up (JANEBOT_SPRITES_SETUP) failed in sprite %s (%s %d): %s%s",
                          name, x.timed_out ? "stopped after" : "exit",
                          x.timed_out ? SETUP_TIMEOUT_MS / 60000 : x.exit_code, x.stderr_tail,
                          x.timed_out ? " minutes"
                                      : "; if it installs packages, add their "
                                        "registry to JANEBOT_SPRITES_SETUP_EGRESS");
    log_info("sprites: set-up %s ran in %s in %lld ms", sp->setup_hash, name,
             (long long)(jb_mono_ms() - t0));
    return 0;
}

int sprites_prepare(struct sprites *sp, const char *name, char golden[SPRITES_CKPT_ID_MAX],
                    struct jb_err *err)
{
    int has_setup = sp->setup && *sp->setup;
    if (sprites_make(sp, name, has_setup ? sp->setup_policy : sp->policy, NULL, err) < 0 ||
        (has_setup && run_setup(sp, name, err) < 0) ||
        (has_setup && sprites_make(sp, name, sp->policy, NULL, err) < 0))
        return -1;
    char comment[64];
    snprintf(comment, sizeof comment, "%s %s", SPRITES_GOLDEN_COMMENT, sp->setup_hash);
    return sprites_checkpoint(sp, name, comment, golden, err);
}
