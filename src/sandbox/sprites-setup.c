/* sandbox/sprites-setup.c -- making a sprite ready for work, and its checkpoints.
 * A new sprite runs the configured set-up once (JANEBOT_SPRITES_SETUP: by default it
 * installs the agent's CLI when the image lacks it) under a policy that also allows the
 * set-up's hosts, gets the thread policy back, and is checkpointed with the comment
 * "janebot-golden <setup hash> <nonce>": `janebot sandbox reset` restores that checkpoint.
 * The set-up runs as the sprite's user (sudo inside the sprite for what needs root).
 * Checkpoint and restore are not idempotent: a lost answer is looked up (the checkpoint
 * list; a marker file the restore removes), never blindly sent again.
 * The Sprites API restores a checkpoint only into the sprite that took it, so every
 * sprite keeps its own golden checkpoint; the warm pool pays the set-up ahead of time. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "sandbox/sprites-int.h"

#define SETUP_TIMEOUT_MS (15 * 60 * 1000)
#define SEND_ATTEMPTS    3
#define RESTORE_WAIT_MS  (3 * 60 * 1000) /* for the sprite to come back after a restore */
#define PROBE_MS         30000
#define POLL_MS          500

int sprites_ndjson_result(const char *body, char *why, size_t whyn)
{
    snprintf(why, whyn, "the stream ended without \"complete\"");
    for (const char *line = body; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        json_t *ev = json_loadb(line, n, 0, NULL); /* not JSON: skipped, as the SDKs do */
        const char *type = json_string_value(json_object_get(ev, "type"));
        int done = 0;
        if (type && !strcmp(type, "complete")) {
            done = 1;
        } else if (type && !strcmp(type, "error")) {
            const char *e = json_string_value(json_object_get(ev, "error"));
            if (!e || !*e) e = json_string_value(json_object_get(ev, "data"));
            /* an empty text would leave the user an error that says nothing */
            snprintf(why, whyn, "%s", e && *e ? e : "the stream reported an error without text");
            done = -1;
        }
        json_decref(ev);
        if (done) return done > 0 ? 0 : -1;
        line = nl ? nl + 1 : NULL;
    }
    return 1;
}

/* What a checkpoint or restore POST did, as far as its answer tells. */
enum sent { SENT_DONE, SENT_FAILED, SENT_UNKNOWN };

/* POST path once (re-sent only when surely not done: sprites_rest's SPR_NOT_IDEMPOTENT);
 * why says what went wrong. A lost or cut answer, or a 5xx, is SENT_UNKNOWN: the caller
 * looks up what happened rather than sending it again blindly. */
static enum sent post_stream(struct sprites *sp, const char *path, const char *body, char *why,
                             size_t whyn)
{
    struct sprites_resp r;
    struct jb_err e = {0};
    if (sprites_rest(sp, "POST", path, body, SPR_NOT_IDEMPOTENT, &r, &e) < 0) {
        snprintf(why, whyn, "%.*s", (int)(whyn > 1 ? whyn - 1 : 0), e.msg);
        return SENT_UNKNOWN;
    }
    enum sent s;
    if (r.status == 200) {
        int rc = sprites_ndjson_result(r.body.data, why, whyn);
        s = rc == 0 ? SENT_DONE : rc < 0 ? SENT_FAILED : SENT_UNKNOWN;
    } else {
        sprites_describe(&r, why, whyn);
        s = r.status >= 500 || r.status == 408 || r.status == 429 ? SENT_UNKNOWN : SENT_FAILED;
    }
    sprites_resp_release(&r);
    return s;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/* The id of sprite name's checkpoint whose comment is comment (*found 0 when none). */
static int find_checkpoint(struct sprites *sp, const char *name, const char *comment, char *id,
                           size_t idn, int *found, struct jb_err *err)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/sprites/%s/checkpoints", name);
    struct sprites_resp r;
    *found = 0;
    if (sprites_rest(sp, "GET", path, NULL, 0, &r, err) < 0) return -1;
    json_t *arr = r.status == 200 ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL, *cp;
    size_t i;
    int rc = 0;
    if (!json_is_array(arr)) {
        char why[512];
        sprites_describe(&r, why, sizeof why);
        rc =
            jb_err_set(err, JB_EUNAVAIL, "cannot list the checkpoints of sprite %s: %s", name, why);
    }
    json_array_foreach(arr, i, cp)
    {
        const char *cid = json_string_value(json_object_get(cp, "id"));
        const char *c = json_string_value(json_object_get(cp, "comment"));
        if (!*found && cid && *cid && strcmp(cid, "Current") != 0 && strlen(cid) < idn && c &&
            !strcmp(c, comment)) {
            snprintf(id, idn, "%s", cid);
            *found = 1;
        }
    }
    json_decref(arr);
    sprites_resp_release(&r);
    return rc;
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
    for (int n = 1;; n++) {
        char why[512] = "";
        enum sent s = post_stream(sp, path, body, why, sizeof why);
        if (s == SENT_FAILED)
            return jb_err_set(err, JB_EUNAVAIL, "cannot checkpoint sprite %s: %s", name, why);
        /* The id is looked up by the comment (unique to this call), not read from the
         * stream's human text; after a lost answer, the lookup says whether it was made. */
        int found = 0;
        struct jb_err e = {0};
        if (find_checkpoint(sp, name, comment, id, SPRITES_CKPT_ID_MAX, &found, &e) < 0)
            return jb_err_set(err, e.code, "checkpoint of sprite %s%s%s: %s", name,
                              s == SENT_UNKNOWN ? ", whose answer was lost (" : "",
                              s == SENT_UNKNOWN ? why : "", e.msg);
        if (found) {
            log_info("sprites: checkpoint %s of %s (%s)", id, name, comment);
            return 0;
        }
        if (s == SENT_DONE)
            return jb_err_set(err, JB_EPROTO,
                              "sprite %s: the checkpoint was reported made, but no checkpoint "
                              "has its comment \"%s\"",
                              name, comment);
        if (n >= SEND_ATTEMPTS)
            return jb_err_set(err, JB_EUNAVAIL, "cannot checkpoint sprite %s: %s", name, why);
        log_warn("sprites: checkpoint of %s: %s; it was not made, sending it again", name, why);
        pause_ms(1000L * n);
    }
}

/* ---- restore ---- */

/* One run of `sh -c script sh arg` in sprite name, not retried: 0 with *code, -1 when it
 * did not run to its end (the sprite is not answering). */
static int probe(struct sprites *sp, const char *name, const char *script, const char *arg,
                 int *code, struct jb_err *err)
{
    const char *argv[] = {"/bin/sh", "-c", script, "sh", arg, NULL};
    const char *env[] = {"HOME=" SPRITES_HOME, "PATH=" SPRITES_PATH, NULL};
    struct sandbox_exec x = {.argv = argv, .env = env, .deadline_ms = jb_mono_ms() + PROBE_MS};
    struct jb_buf path = JB_BUF_INIT(64u << 10);
    long status = 0;
    int rc = sprites_exec_path(name, argv, env, SPRITES_HOME, &path, err);
    if (rc == 0 && (sprites_ws_exec(sp, path.data, &x, NULL, NULL, &status, err) != SPR_EXEC_DONE ||
                    x.timed_out))
        rc = x.timed_out ? jb_err_set(err, JB_ETIMEOUT, "a probe took %d s", PROBE_MS / 1000) : -1;
    jb_buf_release(&path);
    *code = x.exit_code;
    return rc;
}

#define MARKER_PUT  "umask 077 && : > \"$HOME/$1\""
#define MARKER_GONE "test ! -e \"$HOME/$1\"" /* exit 0: the files are the checkpoint's */
#define MARKER_DROP "rm -f \"$HOME/$1\""

/* Until sprite name answers an exec again (restarting, it refuses them), at most until end:
 * 0 with *restored (its marker file is gone: the checkpoint's files are in place). */
static int answer(struct sprites *sp, const char *name, const char *marker, int64_t end,
                  int *restored, struct jb_err *err)
{
    for (;;) {
        int code = -1;
        struct jb_err e = {0};
        if (probe(sp, name, marker ? MARKER_GONE : "true", marker ? marker : "", &code, &e) == 0) {
            *restored = code == 0;
            return 0;
        }
        if (jb_mono_ms() + POLL_MS >= end)
            return jb_err_set(err, JB_ETIMEOUT,
                              "sprite %s did not answer within %d s of a restore (last: %s)", name,
                              RESTORE_WAIT_MS / 1000, e.msg);
        pause_ms(POLL_MS);
    }
}

/* The restore is asynchronous: its stream's "complete" only starts it. A marker file put
 * in the home first tells when the checkpoint's files are in place (and, after a lost
 * answer, whether it happened at all); nothing else runs in the sprite before. */
int sprites_restore(struct sprites *sp, const char *name, const char *id, struct jb_err *err)
{
    struct jb_buf p = JB_BUF_INIT(512);
    if (jb_buf_appendf(&p, err, "/v1/sprites/%s/checkpoints/", name) < 0 ||
        sprites_escape(&p, id, err) < 0 || jb_buf_appendf(&p, err, "/restore") < 0) {
        jb_buf_release(&p);
        return -1;
    }
    unsigned char raw[8];
    char marker[64];
    int code = -1, rc = -1;
    struct jb_err e = {0};
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return jb_buf_release(&p), -1;
    snprintf(marker, sizeof marker, ".janebot-restore-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0],
             raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    int marked = probe(sp, name, MARKER_PUT, marker, &code, &e) == 0 && code == 0;
    if (!marked) log_warn("sprites: %s: cannot mark the files before a restore: %s", name, e.msg);
    int64_t end = jb_mono_ms() + RESTORE_WAIT_MS;
    for (int n = 1;; n++) {
        char why[512] = "";
        enum sent s = post_stream(sp, p.data, NULL, why, sizeof why);
        int restored = 0;
        if (s == SENT_FAILED) {
            jb_err_set(err, JB_EUNAVAIL, "cannot restore %s of sprite %s: %s", id, name, why);
            break;
        }
        if (!marked && s == SENT_UNKNOWN) {
            jb_err_set(err, JB_EUNAVAIL,
                       "restore %s of sprite %s: the answer was lost (%s), and janebot cannot "
                       "tell whether it happened: reset it again",
                       id, name, why);
            break;
        }
        /* Done: wait until its files are in place. Unknown: until it answers, and see. */
        while ((rc = answer(sp, name, marked ? marker : NULL, end, &restored, err)) == 0 &&
               !restored && marked && s == SENT_DONE && jb_mono_ms() + POLL_MS < end)
            pause_ms(POLL_MS);
        if (rc < 0 || restored || !marked) break;
        rc = -1;
        if (s == SENT_DONE) {
            jb_err_set(err, JB_ETIMEOUT,
                       "sprite %s answers, but its files were still not those of %s %d s after "
                       "the restore",
                       name, id, RESTORE_WAIT_MS / 1000);
            break;
        }
        if (n >= SEND_ATTEMPTS) {
            jb_err_set(err, JB_EUNAVAIL, "cannot restore %s of sprite %s: %s", id, name, why);
            break;
        }
        log_warn("sprites: restore of %s: %s; the sprite still has its files, sending it again",
                 name, why);
    }
    if (rc < 0 && marked) probe(sp, name, MARKER_DROP, marker, &code, &e);
    jb_buf_release(&p);
    if (rc < 0) return -1;
    log_info("sprites: restored %s of %s", id, name);
    return 0;
}

static int run_setup(struct sprites *sp, const char *name, struct jb_err *err)
{
    /* As the sprite's user, whose home it prepares; steps that need root say `sudo`. */
    const char *argv[] = {"/bin/sh", "-c", sprites_drop_root, "sh",
                          "/bin/sh", "-c", sp->setup,         NULL};
    const char *env[] = {"HOME=" SPRITES_HOME, "PATH=" SPRITES_PATH, "LANG=C.UTF-8", "USER=sprite",
                         NULL};
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
    /* Unique, so the checkpoint is found by it (and a lost answer told from a lost call). */
    unsigned char raw[4];
    char comment[64];
    if (jb_random_bytes(raw, sizeof raw, err) < 0) return -1;
    snprintf(comment, sizeof comment, "%s %s %02x%02x%02x%02x", SPRITES_GOLDEN_COMMENT,
             sp->setup_hash, raw[0], raw[1], raw[2], raw[3]);
    return sprites_checkpoint(sp, name, comment, golden, err);
}
