/* sandbox/sprites-int.h -- private to the Sprites backend (sprites*.c). Protocol:
 * docs/sprites-protocol.md (shared docs). Layers, each calling only those above it here:
 *   1. the REST client (sprites-rest.c): one call with retries, URL escaping, API times;
 *   2. the exec client (sprites-exec.c): one command over the WebSocket exec protocol;
 *   3. a sprite by name (sprites-sprite.c: policy, make, delete, run, list;
 *      sprites-setup.c: checkpoint, restore, the set-up);
 *   4. the warm pool (sprites-pool.c);
 *   5. the backend (sprites.c: ensure, exec; sprites-ops.c: list, remove, reset, golden,
 *      the context; sprites-outbox.c: outbox and put), the only layer that sees a struct
 *      sandbox_ctx. */
#ifndef JB_SANDBOX_SPRITES_INT_H
#define JB_SANDBOX_SPRITES_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "sandbox/backend.h"

#define SPRITES_DEFAULT_URL "https://api.sprites.dev"
#define SPRITES_HOME        "/home/sprite" /* the sprite's default user's home */
#define SPRITES_RUN_DIR     "/tmp/janebot-run"
#define SPRITES_PATH        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* libwebsockets writes the upgrade's request line into 2048 bytes and cuts the rest: an
 * exec path longer than this goes through a launcher script instead (sprites.c). */
#define SPRITES_PATH_MAX 1900

struct sprites_pool;

/* ctx->priv of the sprites backend; each layer owns its part. Read-only after set-up
 * except the HTTP client (thread-safe). */
struct sprites {
    /* 1, 2: the client (sprites_client_new) */
    char *api_url;              /* no trailing '/' */
    char *auth;                 /* "Authorization: Bearer <token>" (secret) */
    char *bearer;               /* "Bearer <token>" (secret), for the WebSocket upgrade */
    struct jb_http *http;       /* the REST calls' keep-alive connections */
    int rest_attempts;          /* per idempotent call */
    long rest_deadline_ms;      /* total, per call */
    long health_ms;             /* an exec must be answered (upgraded) within this */
    struct jb_metrics *metrics; /* the options' (borrowed), or NULL */
    /* 3: sprites by name and their set-up (set by the backend's context) */
    char *policy;        /* the network policy body, {"rules":[...]}; owned */
    char *setup_policy;  /* the policy while the set-up runs (policy + set-up hosts); owned */
    const char *setup;   /* shell run once in each new sprite (the options') */
    char setup_hash[13]; /* 12 hex of sha256(setup) */
    atomic_int stopping; /* the context is going away: stop long set-ups */
    /* 4, 5: the pool and the backend */
    const struct sandbox_opts *opts;    /* the context's */
    const struct sandbox_services *svc; /* the store's names and pool, the LLM proxy */
    struct sprites_pool *pool;          /* refill thread, or NULL */
};

/* ---- 1. REST (sprites-rest.c) ---- */

/* The client part of a struct sprites (the rest zero). *ret is the caller's:
 * sprites_client_free() frees what this made (not the policies). */
int sprites_client_new(const char *api_url, const char *token, struct sprites **ret,
                       struct jb_err *err);
void sprites_client_free(struct sprites *sp);

struct sprites_resp {
    long status;
    struct jb_buf body;
    long retry_after_ms; /* the Retry-After header, 0 when none */
    int unsent;          /* no answer because no connection was made: surely not done */
};
void sprites_resp_release(struct sprites_resp *r);

/* One call, retried on network errors, 429 and 5xx (except a not-found quirk when
 * SPR_GET_SPRITE is set) with jittered backoff, or the wait the API asks for, within
 * sp->rest_deadline_ms. SPR_NOT_IDEMPOTENT (a checkpoint or restore stream): retried only
 * on 429 and when no connection was made (the caller looks up what a lost answer did), 10
 * minutes for it all. 0 with r filled for any final HTTP answer (the caller judges the
 * status); -1 when none came (r->status 0). */
#define SPR_GET_SPRITE     1
#define SPR_NOT_IDEMPOTENT 2
int sprites_rest(struct sprites *sp, const char *method, const char *path, const char *body,
                 unsigned flags, struct sprites_resp *r, struct jb_err *err);
/* 404, or 500 with a body containing "failed to retrieve" (the protocol doc's quirk). */
int sprites_is_not_found(long status, const char *body);
/* A short, redacted description of an error answer: "HTTP 503: <message>". */
void sprites_describe(const struct sprites_resp *r, char *out, size_t n);

/* retry_after_seconds of a structured 429 body, in ms; 0 when absent. */
long sprites_retry_after_ms(const char *body);

/* Percent-encode s (RFC 3986 unreserved kept) onto b. */
int sprites_escape(struct jb_buf *b, const char *s, struct jb_err *err);
/* ISO 8601 UTC ("2026-01-13T10:30:00Z", fractions allowed) to Unix seconds; 0 if bad. */
int64_t sprites_parse_time(const char *s);

/* ---- 2. WebSocket exec (sprites-exec.c) ---- */

/* "/v1/sprites/<name>/exec?cmd=..&path=..&dir=..&env=..&stdin=true..." (after the base). */
int sprites_exec_path(const char *name, const char *const *argv, const char *const *env,
                      const char *dir, struct jb_buf *b, struct jb_err *err);

/* The exec client's message reader, apart from the connection (also the fuzz target's
 * entry point): one WebSocket fragment at a time (binary or text; final ends the message).
 * Stdout goes to x->on_stdout (or fd 1 with passthrough), stderr to x->stderr_tail (or fd
 * 2), the exit status to x->exit_code. Zero it, set x and text = JB_BUF_INIT(cap of a text
 * message); release with sprites_rx_release(). */
struct sprites_rx {
    struct sandbox_exec *x;
    int msg_open, msg_id; /* inside a message: its stream id, or -1 for text */
    struct jb_buf text;
    size_t tail_len;
    int got_exit, exit_pending;
};
/* 1 once the exit status is in, else 0. */
int sprites_rx_fragment(struct sprites_rx *rx, int binary, int final, const char *in, size_t len);
void sprites_rx_release(struct sprites_rx *rx);

enum { SPR_EXEC_DONE = 0, SPR_EXEC_FAILED = -1, SPR_EXEC_NOT_STARTED = -2 };
/* Run once. SPR_EXEC_DONE: x's results are filled (exit, timeout, cancel, or stop() said
 * non-zero: polled every 50 ms, may be NULL). SPR_EXEC_NOT_STARTED: the upgrade failed
 * (*http_status, 0 when none), safe to retry -- except JB_ETIMEOUT: the sprite did not
 * answer within sp->health_ms. SPR_EXEC_FAILED: the command may have run (connection
 * dropped): never retry. */
int sprites_ws_exec(struct sprites *sp, const char *path, struct sandbox_exec *x,
                    int (*stop)(void *ud), void *stop_ud, long *http_status, struct jb_err *err);

/* ---- 3. a sprite by name (sprites-sprite.c): what ensure, the pool and golden share ---- */

/* {"rules":[{"action":"allow","domain":H}..., {"action":"deny","domain":"*"}]} from a
 * comma-separated host list (ports dropped, blanks skipped; none: deny all). Caller frees. */
char *sprites_policy_json(const char *csv, struct jb_err *err);
/* csv (the options' egress_allow) + ",more" + ",<host of url>" (more and url may be NULL):
 * the names a sprite may reach. Caller frees; NULL on no memory. */
char *sprites_policy_csv(const char *csv, const char *more, const char *url);
/* Replace sprite name's network policy with policy (a JSON body). */
int sprites_set_policy(struct sprites *sp, const char *name, const char *policy,
                       struct jb_err *err);
/* 1 when sprite name exists, 0 when it does not (404 or the quirk), -1 on error. */
int sprites_exists(struct sprites *sp, const char *name, struct jb_err *err);
/* The sprite exists (created when missing: 404 or the quirk) and has policy (sp->policy
 * when NULL). *created (may be NULL) says whether it was made now. */
int sprites_make(struct sprites *sp, const char *name, const char *policy, int *created,
                 struct jb_err *err);
/* `sh -c sprites_drop_root sh CMD...` runs CMD as the sprite's user: the agent and the
 * set-up never run as root. When the sprite's exec user is root, it drops to the owner of
 * the home (the sprite's own user), and refuses when that is root too. */
extern const char sprites_drop_root[];
/* Run argv in sprite name (upgrade failures retried, a started command never). */
int sprites_run(struct sprites *sp, const char *name, struct sandbox_exec *x, const char *dir,
                struct jb_err *err);
/* The same for an exec path already built (sprites_exec_path), with stop() polled as
 * sprites_ws_exec() does (may be NULL). A 404 at the upgrade makes the sprite again. */
int sprites_run_path(struct sprites *sp, const char *name, struct sandbox_exec *x, const char *path,
                     int (*stop)(void *ud), void *stop_ud, struct jb_err *err);
/* 0 deleted, 1 there was none (404), -1 error. */
int sprites_delete(struct sprites *sp, const char *name, struct jb_err *err);
/* Every sprite whose name starts with prefix, page by page: fn(ud, entry) per list entry
 * (a JSON object with at least "name"); fn returns -1 to stop with its error. */
int sprites_list_each(struct sprites *sp, const char *prefix,
                      int (*fn)(void *ud, json_t *entry, struct jb_err *err), void *ud,
                      struct jb_err *err);

/* ---- 3. set-up and checkpoints (sprites-setup.c) ---- */

#define SPRITES_GOLDEN_COMMENT "janebot-golden"
#define SPRITES_CKPT_ID_MAX    64
/* An NDJSON checkpoint/restore stream: 0 when it has a "complete" event, -1 with why for an
 * "error" event (its text), 1 with why when it ended without either (cut short). */
int sprites_ndjson_result(const char *body, char *why, size_t whyn);
/* Checkpoint sprite name with comment (unique to this call: the new checkpoint is looked up
 * by it); id gets the new checkpoint's id. */
int sprites_checkpoint(struct sprites *sp, const char *name, const char *comment,
                       char id[SPRITES_CKPT_ID_MAX], struct jb_err *err);
/* Restore checkpoint id into sprite name, and wait until the sprite answers again with
 * the checkpoint's files (the service restores asynchronously). */
int sprites_restore(struct sprites *sp, const char *name, const char *id, struct jb_err *err);
/* Make sprite name ready for work: create it, run sp->setup under the set-up policy, put
 * the thread policy back, checkpoint it as golden (id to golden). */
int sprites_prepare(struct sprites *sp, const char *name, char golden[SPRITES_CKPT_ID_MAX],
                    struct jb_err *err);

/* ---- 4. the warm pool (sprites-pool.c); store records through sp->svc ---- */

#define SPRITES_POOL_PREFIX "jane-pool-"
/* Start the refill thread keeping n sprites ready (sweeps strays and stale ones first). */
int sprites_pool_start(struct sprites *sp, int n, struct jb_err *err);
void sprites_pool_stop(struct sprites *sp); /* joins; accepts sp->pool == NULL */
void sprites_pool_kick(struct sprites *sp); /* a sprite was claimed: refill now */

/* ---- 5. the backend (sprites.c, sprites-ops.c, sprites-outbox.c) ---- */

/* The backend's ensure and exec (sandbox_ops). */
int sprites_sb_ensure(struct sandbox *sb, struct jb_err *err);
int sprites_sb_exec(struct sandbox *sb, struct sandbox_exec *x, struct jb_err *err);
/* sandbox_outbox() of a sprite. */
int sprites_outbox(struct sandbox *sb, size_t max_files, long long max_bytes,
                   int (*deliver)(void *ud, int fd, const char *name),
                   void (*skipped)(void *ud, const char *name, const char *why), void *ud);
/* sandbox_put() of a sprite: one exec writes stdin to ~/relpath (relpath checked by the
 * caller); at most 64 MiB. */
int sprites_put(struct sandbox *sb, const char *relpath, int fd, struct jb_err *err);

#endif
