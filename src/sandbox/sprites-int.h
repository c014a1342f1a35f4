/* sandbox/sprites-int.h -- private to the Sprites backend (sprites*.c): the REST client
 * (sprites-rest.c), the WebSocket exec client (sprites-exec.c) and pure helpers that the
 * unit tests call. Protocol: docs/sprites-protocol.md (shared docs). */
#ifndef JB_SANDBOX_SPRITES_INT_H
#define JB_SANDBOX_SPRITES_INT_H

#include <curl/curl.h>
#include <pthread.h>

#include "sandbox/backend.h"

#define SPRITES_DEFAULT_URL "https://api.sprites.dev"
#define SPRITES_HOME        "/home/sprite" /* the sprite's default user's home */
#define SPRITES_RUN_DIR     "/tmp/janebot-run"
#define SPRITES_PATH        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ctx->priv of the sprites backend. Read-only after sprites_client_new() except the
 * curl share, which locks itself. */
struct sprites {
    char *api_url; /* no trailing '/' */
    char *auth;    /* "Authorization: Bearer <token>" (secret) */
    char *bearer;  /* "Bearer <token>" (secret), for the WebSocket upgrade */
    char *policy;  /* the network policy body, {"rules":[...]} */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    int rest_attempts;     /* per idempotent call */
    long rest_deadline_ms; /* total, per call */
};

int sprites_client_new(const char *api_url, const char *token, const char *egress_csv,
                       struct sprites **ret, struct jb_err *err);
void sprites_client_free(struct sprites *sp);

/* ---- REST (sprites-rest.c) ---- */

struct sprites_resp {
    long status;
    struct jb_buf body;
};
void sprites_resp_release(struct sprites_resp *r);

/* One call, retried on network errors, 429 and 5xx (except a not-found quirk when
 * SPR_GET_SPRITE is set) with jittered backoff within sp->rest_deadline_ms. 0 with r
 * filled for any final HTTP answer (the caller judges the status); -1 when none came. */
#define SPR_GET_SPRITE 1
int sprites_rest(struct sprites *sp, const char *method, const char *path, const char *body,
                 unsigned flags, struct sprites_resp *r, struct jb_err *err);
/* 404, or 500 with a body containing "failed to retrieve" (the protocol doc's quirk). */
int sprites_is_not_found(long status, const char *body);
/* A short, redacted description of an error answer: "HTTP 503: <message>". */
void sprites_describe(const struct sprites_resp *r, char *out, size_t n);

/* ---- pure helpers (sprites.c) ---- */

/* Percent-encode s (RFC 3986 unreserved kept) onto b. */
int sprites_escape(struct jb_buf *b, const char *s, struct jb_err *err);
/* {"rules":[{"action":"allow","domain":H}..., {"action":"deny","domain":"*"}]} from a
 * comma-separated host list (ports dropped, blanks skipped). Caller frees. */
char *sprites_policy_json(const char *csv, struct jb_err *err);
/* "/v1/sprites/<name>/exec?cmd=..&path=..&dir=..&env=..&stdin=true..." (after the base). */
int sprites_exec_path(const char *name, const char *const *argv, const char *const *env,
                      const char *dir, struct jb_buf *b, struct jb_err *err);
/* ISO 8601 UTC ("2026-01-13T10:30:00Z", fractions allowed) to Unix seconds; 0 if bad. */
int64_t sprites_parse_time(const char *s);

/* ---- WebSocket exec (sprites-exec.c) ---- */

enum { SPR_EXEC_DONE = 0, SPR_EXEC_FAILED = -1, SPR_EXEC_NOT_STARTED = -2 };
/* Run once. SPR_EXEC_DONE: x's results are filled (exit, timeout or cancel).
 * SPR_EXEC_NOT_STARTED: the upgrade failed (*http_status, 0 when none), safe to retry.
 * SPR_EXEC_FAILED: the command may have run (connection dropped): never retry. */
int sprites_ws_exec(struct sprites *sp, const char *path, struct sandbox_exec *x, long *http_status,
                    struct jb_err *err);

#endif
