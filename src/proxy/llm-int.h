/* proxy/llm-int.h -- private to the LLM proxy: llm.c (sessions, Unix listeners, the
 * proxy), llm-serve.c (one request: parse, check, forward), llm-fwd.c (upstream) and
 * llm-public.c (the TCP listener for remote sandboxes). */
#ifndef JB_LLM_INT_H
#define JB_LLM_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "proxy/proxy-int.h"

struct store;
struct llm_public;

#define LLM_PUBLIC_MAX_CONNS 512    /* TCP connections at once, all remote sandboxes together */
#define LLM_HEAD_TIMEOUT_MS  30000  /* to send a request head, on either listener */
#define LLM_BODY_WAIT_MS     120000 /* waiting for the body's bytes, in all */

/* The remote sessions (llm-registry.c), found by their token. Under mu: remote, and each
 * remote session's fds/nfds. cv: a remote session's request finished. */
struct llm_registry {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct llm_session *remote;
};

struct llm_proxy {
    struct llm_config cfg; /* strings owned */
    struct store *st;      /* tokens and usage: the writes; guarded by st_mu */
    struct store *rd;      /* the same database for the checks; guarded by rd_mu */
    struct jb_http *http;  /* upstream connections kept alive across requests */
    pthread_mutex_t st_mu, rd_mu;
    struct llm_registry reg;
    struct llm_public *pub;     /* the TCP listener, NULL when not listening */
    struct px_pool pool;        /* connection threads (pool.c): no cap for the whole proxy */
    struct jb_metrics *metrics; /* borrowed, or NULL */
    llm_approve_fn *approve;    /* the approval endpoint's decider, or NULL */
    void *approve_ud;
};

/* ---- sessions (llm-registry.c) ---- */

struct llm_session {
    struct llm_proxy *px;
    char *thread_key, *user, *sandbox;
    /* The token itself, to compare requests with (constant time, no hashing on the way
     * of a request); only its sha256 (hash) goes into the store. Zeroed on free. */
    char token[LLM_TOKEN_LEN + 1];
    char hash[65];
    _Atomic(const char *) refused;
    pthread_mutex_t mu;    /* tally */
    struct jb_tally tally; /* what its requests used, per model */
    /* local (llm.c): its own Unix socket */
    char *path;
    int lfd;
    struct px_group group; /* its connections, one request each (pool.c) */
    /* remote: requests come through px->pub; under px->reg.mu */
    int remote;
    struct llm_session *rnext;
    int fds[LLM_MAX_PER_LISTENER]; /* its requests in flight */
    int nfds;
};

void llm_registry_init(struct llm_registry *r);
void llm_registry_destroy(struct llm_registry *r); /* after every session is closed */
/* Allocate a session and mint its token (recorded in the store). *ret is the caller's:
 * llm_session_free() before it is published anywhere, llm_session_close() after. */
int llm_session_new(struct llm_proxy *px, const char *thread_key, const char *user,
                    const char *sandbox, char token[LLM_TOKEN_LEN + 1], struct llm_session **ret,
                    struct jb_err *err);
void llm_session_free(struct llm_session *s); /* memory only */
/* 1 when the token presented (len bytes) is s's own. Constant time in its bytes. */
int llm_token_is(const struct llm_session *s, const char *tok, size_t len);
/* Take s off the registry (no new request finds it) and revoke its token in the store. */
void llm_session_revoke(struct llm_session *s);
/* A remote s, once revoked: shut down its requests in flight and wait until none uses s. */
void llm_session_drain(struct llm_session *s);
/* What one request used (its tokens, by the model the answer named). */
void llm_session_add_usage(struct llm_session *s, const char *model, const struct jb_tokens *t);
void llm_session_set_refused(struct llm_session *s, const char *why); /* static text */
/* The remote session whose token tok (len bytes) is, with fd registered as one of its
 * requests in flight (llm_registry_release() when done): LLM_CLAIM_OK and *ret; else why
 * not, *ret NULL. */
enum llm_claim { LLM_CLAIM_OK, LLM_CLAIM_UNKNOWN, LLM_CLAIM_OTHER_SANDBOX, LLM_CLAIM_BUSY };
enum llm_claim llm_registry_claim(struct llm_registry *r, const char *tok, size_t len,
                                  const char *sandbox, int fd, struct llm_session **ret);
void llm_registry_release(struct llm_registry *r, struct llm_session *s, int fd);

void llm_public_stop(struct llm_proxy *px); /* llm-public.c: stop the TCP listener */

/* ---- one request (llm-serve.c) ---- */

/* One parsed request from a sandbox. Pointers into the request buffer. */
struct llm_request {
    enum llm_provider provider;
    char method[16];
    char path[4096];               /* upstream path with query, e.g. "/v1/messages?beta=true" */
    char *headers[PX_MAX_HEADERS]; /* "Name: value" lines, NUL-terminated, no CRLF; read by
                                    * px_parse_head(), trailing blanks cut */
    size_t nheaders;
    long long clen; /* the one Content-Length, -1 when none */
    int has_te;     /* a Transfer-Encoding header (refused: bodies need a length) */
    /* The body is streamed, never held whole: its first body_have bytes came with the head
     * (body), the rest is read from the sandbox's socket as the upstream takes it. */
    const char *body;
    size_t body_have, body_len; /* body_len: all of it (Content-Length) */
};

/* A request head as read from the sandbox; everything borrows from a thread-local
 * buffer, valid until the thread reads the next head. */
struct llm_in {
    struct llm_request rq;
    const char *target; /* request target as sent, e.g. "/anthropic/v1/messages" */
    char *rest;         /* body bytes that came with the head */
    size_t rest_len;
    char *head; /* the bytes read (head, then rest): allocated by llm_read_request() */
};

/* What a base URL adds after the proxy address: "/anthropic", "/openai/v1", "/amp". */
const char *llm_api_path(enum llm_provider p);
/* An error answer in the provider's JSON shape, then Connection: close. Best effort. */
void llm_reply(int fd, enum llm_provider p, int status, const char *type, const char *msg);
void llm_reply_401(int fd, enum llm_provider p, const char *msg);
/* Read and parse a request head: 0, or -1 when answered (400) or the peer is gone. */
int llm_read_request(int fd, struct llm_in *in);
/* Frees what llm_read_request() allocated in in (a cleanup: in is {0} or read). */
void llm_in_free(struct llm_in *in);
/* "/anthropic/v1/messages?x" → in->rq.provider and .path: 0, or -1 when answered (404/414). */
int llm_route(int fd, const char *target, struct llm_in *in);
/* NULL when provider p's API takes method on target (path and query, as sent upstream,
 * llm-path.c); else why not (static text). */
const char *llm_path_check(enum llm_provider p, const char *method, const char *target);
/* The token the request presents (x-api-key, else a Bearer), up to a blank; NULL if none.
 * Borrowed from the request; *len its length. */
const char *llm_presented_token(const struct llm_request *rq, size_t *len);
/* What the store says about a session's token (unrevoked, unexpired) and its user's
 * daily budget, and when it said so. */
struct llm_verdict {
    int64_t at;      /* jb_mono_ms() when the store was asked */
    const char *why; /* NULL: go ahead; else the refusal (static text) */
    int status;      /* with why: 401 (token) or 429 (budget) */
};
#define LLM_VERDICT_MAX_AGE_MS 1000 /* a verdict older than this is asked again */
void llm_verdict(struct llm_session *s, struct llm_verdict *v);
/* Everything after routing, for the session s the request belongs to: provider offered,
 * path allowed, s's own token, the store's verdict (pre, when taken at most
 * LLM_VERDICT_MAX_AGE_MS ago, else asked now), body, forward, usage. Every failure is
 * answered on fd. */
void llm_serve(struct llm_session *s, int fd, struct llm_in *in, const struct llm_verdict *pre);

/* The approval endpoint (llm-approve.c): the session's own token, then the body, then the
 * decider; every outcome is answered on fd. */
void llm_approve_serve(struct llm_session *s, int fd, struct llm_in *in);

/* ---- upstream (llm-fwd.c) ---- */

struct llm_usage {
    struct jb_tokens t;
    char model[JB_MODEL_MAX]; /* as the answer named it; "" when it did not */
    long status;
    long long up_bytes, down_bytes; /* the sandbox's body sent; the upstream's answer body */
};

/* ---- what answers and bodies say (llm-usage.c) ---- */

/* Add what one JSON answer, or one server-sent event's data, says about usage and model
 * to u (fields present replace earlier ones: events carry running totals). 1 when it is
 * a Chat Completion chunk with usage and no choices (what include_usage adds), else 0. */
int llm_usage_read(struct llm_usage *u, enum llm_provider p, const char *data, size_t len);
/* Bytes the proxy may add to a request body of this endpoint (the Content-Length sent
 * upstream grows by this; what is not inserted is sent as trailing spaces). */
size_t llm_body_pad(enum llm_provider p, const char *method, const char *path);
/* The top level of a JSON request body, read as it streams up: its "model", and for a
 * Chat Completion (want_usage) where usage must be asked for. Zero it, set want_usage. */
struct llm_body_scan {
    int want_usage;
    int depth, in_str, esc, uhex, ucode, want_key, key_id, stream, inserted, in_options;
    int client_usage; /* the client asked for usage itself (stream_options.include_usage) */
    char key[24];
    size_t key_len;
    char model[JB_MODEL_MAX];
    size_t model_len;
};
/* Scan p[0, n): returns n, or i < n when *inject must be sent before p[i] (once per body;
 * then feed again from p[i]). */
size_t llm_body_scan(struct llm_body_scan *sc, const char *p, size_t n, const char **inject);
/* The request's model, fit to show (printable ASCII); "" when it named none. */
void llm_body_model(const struct llm_body_scan *sc, char out[JB_MODEL_MAX]);

/* Forward rq to the provider's upstream with the real key, its body streamed from fd as
 * the upstream takes it, and stream the answer to fd. -1 when nothing was sent to fd: err
 * JB_EPROTO when the sandbox did not send its whole body in time (or left), else the
 * upstream could not be reached. The transfer stops once fd is shut down (see
 * px_group_close()). */
int llm_forward(const struct llm_proxy *px, const struct llm_request *rq, int fd,
                struct llm_usage *u, struct jb_err *err);

#endif
