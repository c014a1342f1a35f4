/* slack/web.c -- the Slack Web API over HTTP/1.1: one POST per call on connections shared by
 * all threads, retries, slack_call_ex() and the upload POST (typed methods: web-files.c).
 * Tokens travel only in the Authorization header: never in a URL, a log line or an error.
 *
 * Retry policy, per call (web_request):
 *  (W1) HTTP 429: wait Retry-After seconds (1 when missing or not a number, at most 120),
 *       at most RATE_LIMIT_RETRIES times; these are counted apart from (W2).
 *  (W2) 5xx, a body that is not JSON, ok:false with a Slack-side error (internal_error,
 *       fatal_error, service_unavailable, request_timeout), network errors: jittered
 *       exponential backoff from backoff_ms, at most max_retries times, then JB_EUNAVAIL.
 *  (W3) SLACK_CALL_ONCE: (W2) applies only when Slack did not act on the request: an HTTP
 *       5xx or an error that says so; a timeout after sending, or a 2xx whose body is
 *       garbled, gives JB_ETIMEOUT at once, because a blind retry could post twice.
 *  (W4) A 429 blocks its method for every thread until Retry-After has passed: Slack's
 *       limits are per method, so other calls of that method wait too.
 *  (W5) slack_call_nowait(): one attempt and no sleep at all; a 429, or a method still
 *       inside its window, returns at once with the seconds left (the window is still
 *       recorded for (W4)). For callers that must never stall (the status writer). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "slack.h"

#define RESP_MAX           ((size_t)32 << 20) /* one response body */
#define RATE_LIMIT_RETRIES 5
#define RETRY_AFTER_MAX_S  120L
#define CONNECT_TIMEOUT_MS 10000L
#define MAX_IDLE_CONNS     32 /* kept alive for 8 busy threads and more */

struct slack_web {
    char *api_url, *bot_token, *app_token; /* api_url ends with '/'; tokens may be NULL */
    int max_retries;
    long timeout_ms, backoff_ms;
    struct jb_http *http;       /* kept-alive connections, for all threads */
    struct jb_metrics *metrics; /* borrowed, or NULL */
    pthread_mutex_t limit_mu;   /* guards limits (W4) */
    struct {
        char method[48];
        int64_t until_ms; /* jb_mono_ms() */
    } limits[16];
};

/* One HTTP exchange to make, and what came back. */
struct web_req {
    const char *what;  /* method name or "file upload", for messages */
    const char *url;   /* never holds a token */
    const char *token; /* NULL: no Authorization header */
    const char *ctype; /* the whole "Content-Type: …" header line */
    const char *body;  /* len bytes, unless fd >= 0: then len bytes read from fd */
    size_t len;
    int fd;
    long timeout_ms;
    int once;                /* (W3) */
    int want_json;           /* success needs a JSON object body */
    struct slack_nowait *nw; /* (W5), or NULL */
};

struct web_resp {
    int failed; /* no complete answer: net says why */
    struct jb_err net;
    long status;
    int maybe_sent;   /* the request may have reached the server */
    int body_failed;  /* over RESP_MAX or out of memory */
    int read_failed;  /* the upload file could not be read */
    long retry_after; /* seconds; -1 when absent or invalid */
    struct jb_buf body;
};

struct upload_src {
    int fd, failed;
    size_t len, off;
};

enum verdict { V_OK, V_FAIL, V_BACKOFF, V_RATE };

/* ---- handle ------------------------------------------------------------------------ */
static char *dup_secret(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

void slack_web_free(struct slack_web *w)
{
    if (!w) return;
    jb_http_free(w->http);
    pthread_mutex_destroy(&w->limit_mu);
    free(w->api_url);
    free_secret(w->bot_token);
    free_secret(w->app_token);
    free(w);
}

struct jb_metrics *slack_web_metrics(const struct slack_web *w)
{
    return w ? w->metrics : NULL;
}

struct jb_http *slack_web_http(const struct slack_web *w)
{
    return w ? w->http : NULL;
}

static void web_freep(struct slack_web **w)
{
    slack_web_free(*w);
}

int slack_web_new(const struct slack_web_opts *o, struct slack_web **ret, struct jb_err *err)
{
    if (!o || !o->api_url ||
        (strncmp(o->api_url, "https://", 8) != 0 && strncmp(o->api_url, "http://", 7) != 0))
        return jb_err_set(err, JB_ECONFIG,
                          "slack: the API URL must start with https:// (or http://)");
    jb_auto(web_freep) struct slack_web *w = calloc(1, sizeof *w);
    if (!w) return jb_err_set(err, JB_ENOMEM, "slack web client");
    pthread_mutex_init(&w->limit_mu, NULL);
    size_t n = strlen(o->api_url);
    if (asprintf(&w->api_url, "%s%s", o->api_url, o->api_url[n - 1] == '/' ? "" : "/") < 0) {
        w->api_url = NULL;
        return jb_err_set(err, JB_ENOMEM, "slack web client");
    }
    w->bot_token = dup_secret(o->bot_token);
    w->app_token = dup_secret(o->app_token);
    if ((o->bot_token && *o->bot_token && !w->bot_token) ||
        (o->app_token && *o->app_token && !w->app_token))
        return jb_err_set(err, JB_ENOMEM, "slack web client");
    jb_log_add_secret(w->bot_token);
    jb_log_add_secret(w->app_token);
    w->max_retries = o->max_retries > 0 ? o->max_retries : 3;
    w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 15000;
    w->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 500;
    w->metrics = o->metrics;
    if (!(w->http = jb_http_new(MAX_IDLE_CONNS, err))) return -1;
    *ret = TAKE_PTR(w);
    return 0;
}

/* ---- one HTTP exchange ------------------------------------------------------------- */

/* One exchange's callbacks (jb_http_req.ud). */
struct perform_ctx {
    struct web_resp *rs;
    struct upload_src *src;
    const atomic_int *stop;
};

static int on_body(void *u, const char *p, size_t n)
{
    struct web_resp *rs = ((struct perform_ctx *)u)->rs;
    if (jb_buf_append(&rs->body, p, n, NULL) < 0) {
        rs->body_failed = 1;
        return -1;
    }
    return 0;
}

/* The Retry-After among hdr[0, n), if there is one, in whole seconds. */
static void read_retry_after(struct web_resp *rs, const struct jb_http_header *hdr, size_t n)
{
    const struct jb_http_header *ra = jb_http_header_get(hdr, n, "retry-after");
    if (!ra) return;
    long ms = jb_retry_after_header_ms(ra, time(NULL));
    rs->retry_after = ms > 0 ? (ms + 999) / 1000 : -1;
}

static int on_head(void *u, int status, const char *reason, size_t reason_len,
                   const struct jb_http_header *hdr, size_t nhdr)
{
    (void)status, (void)reason, (void)reason_len; /* the status comes with the result */
    read_retry_after(((struct perform_ctx *)u)->rs, hdr, nhdr);
    return 0;
}

static ssize_t read_file(void *u, char *dst, size_t cap)
{
    struct upload_src *s = ((struct perform_ctx *)u)->src;
    size_t want = cap < s->len - s->off ? cap : s->len - s->off;
    ssize_t got;
    do
        got = pread(s->fd, dst, want, (off_t)s->off);
    while (got < 0 && errno == EINTR);
    if (got <= 0) { /* a read error, or the file shrank under us */
        s->failed = 1;
        return -1;
    }
    s->off += (size_t)got;
    return got;
}

static int rewind_file(void *u)
{
    ((struct perform_ctx *)u)->src->off = 0;
    return 0;
}

/* (W5): a transfer is abandoned once the caller's stop flag is set. */
static int stopped(void *u)
{
    const atomic_int *stop = ((struct perform_ctx *)u)->stop;
    return stop && atomic_load(stop);
}

/* Perform one POST; rs says what happened. -1 only for local trouble (memory). */
static int web_perform(struct slack_web *w, const struct web_req *rq, struct web_resp *rs,
                       struct jb_err *err)
{
    jb_autofree char *auth = NULL;
    if (rq->token && asprintf(&auth, "Authorization: Bearer %s", rq->token) < 0) auth = NULL;
    if (rq->token && !auth) return jb_err_set(err, JB_ENOMEM, "%s: headers", rq->what);
    const char *lines[4] = {0};
    size_t n = 0;
    if (auth) lines[n++] = auth;
    if (rq->ctype) lines[n++] = rq->ctype;
    lines[n++] = "Accept: application/json";
    struct upload_src src = {.fd = rq->fd, .len = rq->len};
    struct perform_ctx cx = {.rs = rs, .src = &src, .stop = rq->nw ? rq->nw->stop : NULL};
    struct jb_http_req hr = {.method = "POST",
                             .url = rq->url,
                             .headers = lines,
                             .has_body = 1,
                             .body = rq->fd >= 0 ? NULL : rq->body,
                             .body_len = rq->len,
                             .read = rq->fd >= 0 ? read_file : NULL,
                             .rewind = rq->fd >= 0 ? rewind_file : NULL,
                             .on_head = on_head,
                             .on_body = on_body,
                             .cancelled = cx.stop ? stopped : NULL,
                             .ud = &cx,
                             .connect_timeout_ms = CONNECT_TIMEOUT_MS,
                             .timeout_ms = rq->timeout_ms};
    struct jb_http_resp hs = {0};
    int rc = jb_http_request(w->http, &hr, &hs, &rs->net);
    if (auth) explicit_bzero(auth, strlen(auth));
    if (rc < 0 && rs->net.code == JB_ENOMEM)
        return jb_err_set(err, JB_ENOMEM, "%s: %s", rq->what, rs->net.msg);
    rs->failed = rc < 0;
    rs->status = hs.status;
    rs->maybe_sent = hs.sent;
    rs->read_failed = src.failed;
    return 0;
}

/* ---- retries ----------------------------------------------------------------------- */

static int in_list(const char *const *list, const char *s)
{
    for (; s && list && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

/* Slack-side errors: the first group says the request was not acted on. */
static const char *const not_processed[] = {"service_unavailable", "request_timeout", "ratelimited",
                                            NULL};
static const char *const slack_trouble[] = {"internal_error", "fatal_error", NULL};

/* The body as a JSON object, or NULL. */
static json_t *parse_object(const struct jb_buf *b)
{
    json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* The error code of an ok:false body, else NULL. Borrowed from j. */
static const char *body_error(const json_t *j)
{
    if (!j || !json_is_false(json_object_get(j, "ok"))) return NULL;
    return json_string_value(json_object_get(j, "error"));
}

#define MAYBE_DONE "; not retried, it may have been processed"

/* Fill why and return v. */
__attribute__((format(printf, 4, 5))) static enum verdict
verdict(enum verdict v, struct jb_err *why, enum jb_code c, const char *fmt, ...)
{
    char msg[sizeof why->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jb_err_set(why, c, "%s", msg);
    return v;
}

/* What one finished exchange means; on V_OK *ret_json (if wanted) gets the body. */
static enum verdict classify(const struct web_req *rq, struct web_resp *rs, json_t **ret_json,
                             struct jb_err *why)
{
    const char *what = rq->what;
    if (rs->read_failed) return verdict(V_FAIL, why, JB_ESYS, "%s: reading the file failed", what);
    if (rs->body_failed) return verdict(V_FAIL, why, JB_EPROTO, "%s: response over 32 MiB", what);
    if (rs->failed) {
        const char *msg = rs->net.msg;
        if (rq->once && rs->maybe_sent)
            return verdict(V_FAIL, why, JB_ETIMEOUT, "%s: %s after sending" MAYBE_DONE, what, msg);
        return verdict(V_BACKOFF, why, JB_EUNAVAIL, "%s: %s", what, msg);
    }
    if (rs->status == 429)
        return verdict(V_RATE, why, JB_EUNAVAIL, "%s: rate limited (HTTP 429)", what);
    jb_auto(json_decrefp) json_t *j = rq->want_json ? parse_object(&rs->body) : NULL;
    const char *e = body_error(j);
    int ok2xx = rs->status / 100 == 2, garbled = rq->want_json && !j;
    if (rs->status >= 500 || (ok2xx && garbled) || in_list(not_processed, e) ||
        in_list(slack_trouble, e)) {
        char desc[160];
        snprintf(desc, sizeof desc, "HTTP %ld%s%.100s", rs->status, e ? ": " : "",
                 e         ? e
                 : garbled ? " with a body that is not JSON"
                           : "");
        if (rq->once && rs->status < 500 && !in_list(not_processed, e))
            return verdict(V_FAIL, why, JB_ETIMEOUT, "%s: %s" MAYBE_DONE, what, desc);
        return verdict(V_BACKOFF, why, JB_EUNAVAIL, "%s: %s", what, desc);
    }
    if (!ok2xx && !e) return verdict(V_FAIL, why, JB_EPROTO, "%s: HTTP %ld", what, rs->status);
    if (ret_json) *ret_json = TAKE_PTR(j);
    return V_OK;
}

/* (W4): wait while the method is rate limited (unless nowait); with block_s > 0, limit it
 * first. Returns the milliseconds that were (or, with nowait, are) left of its window. */
static int64_t method_limit(struct slack_web *w, const char *method, long block_s, int nowait)
{
    int64_t now = jb_mono_ms(), until = 0;
    pthread_mutex_lock(&w->limit_mu);
    size_t free_slot = JB_ARRAY_LEN(w->limits), i;
    for (i = 0; i < JB_ARRAY_LEN(w->limits); i++) {
        if (!strcmp(w->limits[i].method, method)) break;
        if (w->limits[i].until_ms <= now && free_slot == JB_ARRAY_LEN(w->limits)) free_slot = i;
    }
    if (i == JB_ARRAY_LEN(w->limits) && block_s > 0 && free_slot < JB_ARRAY_LEN(w->limits)) {
        i = free_slot;
        snprintf(w->limits[i].method, sizeof w->limits[i].method, "%s", method);
    }
    if (i < JB_ARRAY_LEN(w->limits)) {
        if (block_s > 0 && now + block_s * 1000 > w->limits[i].until_ms)
            w->limits[i].until_ms = now + block_s * 1000;
        until = w->limits[i].until_ms;
    }
    pthread_mutex_unlock(&w->limit_mu);
    if (until <= now) return 0;
    if (!nowait) jb_sleep_ms((long)(until - now));
    return until - now;
}

/* (W5): the method is inside its Retry-After window; *ms left of it. */
static int nowait_busy(const struct web_req *rq, int64_t ms, struct jb_err *err)
{
    rq->nw->retry_after_s = (long)((ms + 999) / 1000);
    return jb_err_set(err, JB_EBUSY, "%s: rate limited for %ld s more", rq->what,
                      rq->nw->retry_after_s);
}

/* Run rq with the retry policy (W1)-(W4). 0: *ret_json (if wanted) holds the body. */
static int web_request(struct slack_web *w, const struct web_req *rq, json_t **ret_json,
                       struct jb_err *err)
{
    struct jb_err why = {0};
    int limited = 0;
    struct jb_retry rt = {
        .base_ms = w->backoff_ms, .cap_ms = w->backoff_ms << 10, .max_retries = w->max_retries};
    for (;;) {
        struct web_resp rs = {.retry_after = -1, .body = JB_BUF_INIT(RESP_MAX)};
        int64_t left = method_limit(w, rq->what, 0, rq->nw != NULL);
        if (rq->nw && left > 0) return nowait_busy(rq, left, err);
        jb_metrics_add(w->metrics, JB_M_SLACK_CALLS, rq->what, NULL, 1);
        int rc = web_perform(w, rq, &rs, err);
        enum verdict v = rc < 0 ? V_FAIL : classify(rq, &rs, ret_json, &why);
        long after = rs.retry_after;
        jb_buf_release(&rs.body);
        if (rc < 0) return -1;
        if (v == V_OK) return 0;
        if (v == V_FAIL || (rq->nw && v == V_BACKOFF)) {
            if (rq->nw && rq->nw->stop && atomic_load(rq->nw->stop))
                return jb_err_set(err, JB_ECANCEL, "%s: stopped", rq->what);
            return jb_err_set(err, why.code, "%s", why.msg);
        }
        if (v == V_RATE && rq->nw) {
            long s = after < 0 ? 1 : after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : after;
            return nowait_busy(rq, method_limit(w, rq->what, s, 1), err);
        }
        if (v == V_RATE) {
            if (limited++ >= RATE_LIMIT_RETRIES)
                return jb_err_set(err, JB_EUNAVAIL, "%s %d times; giving up", why.msg, limited);
            long s = after < 0 ? 1 : after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : after;
            log_info("slack %s: rate limited; retrying in %ld s", rq->what, s);
            method_limit(w, rq->what, s, 0);
            jb_metrics_add(w->metrics, JB_M_SLACK_RETRIES, rq->what, NULL, 1);
            continue;
        }
        long d = jb_retry_next(&rt, 0);
        if (d < 0)
            return jb_err_set(err, JB_EUNAVAIL, "%s; giving up after %d attempts", why.msg,
                              rt.retries + 1);
        log_info("%s; retry %d/%d in %ld ms", why.msg, rt.retries, w->max_retries, d);
        jb_metrics_add(w->metrics, JB_M_SLACK_RETRIES, rq->what, NULL, 1);
        jb_sleep_ms(d);
    }
}

int slack_web_post_file(struct slack_web *w, const char *url, int fd, size_t len,
                        struct jb_err *err)
{
    if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return jb_err_set(err, JB_EPROTO, "file upload: upload_url is not an http(s) URL");
    struct web_req rq = {
        .what = "file upload",
        .url = url,
        .ctype = "Content-Type: application/octet-stream",
        .len = len,
        .fd = fd,
        .timeout_ms = w->timeout_ms + (long)(len / 128), /* 8 ms per KiB */
    };
    return web_request(w, &rq, NULL, err);
}

/* ---- methods ----------------------------------------------------------------------- */

/* Answers that mean the token is missing, dead or lacks a scope: JB_EDENIED. */
/* clang-format off */
static const char *const auth_errors[] = {
    "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
    "missing_scope", "no_permission", "not_allowed_token_type", "access_denied",
    "team_access_not_granted", NULL};
/* clang-format on */

/* Method names are [A-Za-z0-9._]: they become part of the URL. */
static int method_ok(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (!n || n > 64) return 0;
    for (; *m; m++)
        if (!(*m == '.' || *m == '_' || (*m >= '0' && *m <= '9') || (*m >= 'a' && *m <= 'z') ||
              (*m >= 'A' && *m <= 'Z')))
            return 0;
    return 1;
}

static void log_warnings(const char *method, const json_t *j)
{
    json_t *ws = json_object_get(json_object_get(j, "response_metadata"), "warnings");
    size_t i;
    json_t *x;
    json_array_foreach(ws, i, x)
    {
        const char *s = json_string_value(x);
        if (s && strcmp(s, "missing_charset") != 0 && strcmp(s, "superfluous_charset") != 0)
            log_warn("slack %s: warning %.100s", method, s);
    }
}

/* Turn a JSON answer into the result of slack_call_ex(); takes *jp on success. */
static int api_result(const char *method, json_t **jp, const char *const *tolerate, json_t **ret,
                      char **ret_error, struct jb_err *err)
{
    json_t *ok = json_object_get(*jp, "ok");
    if (json_is_true(ok)) {
        log_warnings(method, *jp);
        if (ret) *ret = TAKE_PTR(*jp);
        return 0;
    }
    const char *e = json_string_value(json_object_get(*jp, "error"));
    if (!json_is_false(ok) || !e)
        return jb_err_set(err, JB_EPROTO, "%s: response without \"ok\" and \"error\"", method);
    if (ret_error && !(*ret_error = strdup(e))) return jb_err_set(err, JB_ENOMEM, "%s", method);
    if (in_list(tolerate, e)) return 1;
    const char *needed = json_string_value(json_object_get(*jp, "needed"));
    char extra[128] = "";
    if (needed) snprintf(extra, sizeof extra, " (needed %.100s)", needed);
    log_warn("slack %s: %.100s%s", method, e, extra);
    return jb_err_set(err, in_list(auth_errors, e) ? JB_EDENIED : JB_EPROTO, "%s: %.100s%s", method,
                      e, extra);
}

/* A failed call in the metrics, by what went wrong (never Slack's own words: they are
 * the other side's, and a label must stay a small set). */
static void count_error(struct slack_web *w, const char *method, const struct jb_err *err)
{
    enum jb_code c = err ? err->code : JB_EPROTO;
    const char *kind = c == JB_EDENIED    ? "auth"
                       : c == JB_EPROTO   ? "api"
                       : c == JB_EUNAVAIL ? "unavailable"
                       : c == JB_ETIMEOUT ? "timeout"
                       : c == JB_EBUSY    ? "ratelimited"
                       : c == JB_ECANCEL  ? "cancelled"
                                          : "other";
    jb_metrics_add(w->metrics, JB_M_SLACK_ERRORS, method, kind, 1);
}

static int call_method(struct slack_web *w, const char *method, const json_t *args, unsigned flags,
                       const char *const *tolerate, struct slack_nowait *nw, json_t **ret,
                       char **ret_error, struct jb_err *err)
{
    if (!method_ok(method)) return jb_err_set(err, JB_EPROTO, "slack: bad method name");
    int app = !!(flags & SLACK_CALL_APP_TOKEN);
    const char *token = app ? w->app_token : w->bot_token;
    if (!token)
        return jb_err_set(err, JB_ECONFIG, "%s: no %s token configured", method,
                          app ? "app-level (xapp-)" : "bot (xoxb-)");
    jb_autofree char *url = NULL;
    if (asprintf(&url, "%s%s", w->api_url, method) < 0) {
        url = NULL;
        return jb_err_set(err, JB_ENOMEM, "%s", method);
    }
    jb_autofree char *body = slack_request_body(args, flags, err);
    if (!body) return jb_err_prefix(err, "%s", method);
    struct web_req rq = {
        .what = method,
        .url = url,
        .token = token,
        .ctype = (flags & SLACK_CALL_FORM) ? "Content-Type: application/x-www-form-urlencoded"
                                           : "Content-Type: application/json; charset=utf-8",
        .body = body,
        .len = strlen(body),
        .fd = -1,
        .timeout_ms = nw && nw->timeout_ms > 0 ? nw->timeout_ms : w->timeout_ms,
        .once = !!(flags & SLACK_CALL_ONCE),
        .want_json = 1,
        .nw = nw,
    };
    jb_auto(json_decrefp) json_t *j = NULL;
    int rc = web_request(w, &rq, &j, err);
    if (rc == 0) rc = api_result(method, &j, tolerate, ret, ret_error, err);
    if (rc < 0) count_error(w, method, err);
    return rc;
}

/* The answer parser alone (declared in slack.h): header lines ("Name: value", CRLF-ended;
 * a status line resets what was read, as an interim answer is not the final one), then
 * classify() and api_result() as web_request() and call_method() do. */
static void head_line(struct web_resp *rs, const char *p, size_t n)
{
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        rs->retry_after = -1; /* a new answer, e.g. after "100 Continue" */
        return;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon) return;
    const char *v = colon + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    struct jb_http_header h = {
        .name = p, .name_len = (size_t)(colon - p), .value = v, .value_len = (size_t)(end - v)};
    read_retry_after(rs, &h, 1);
}

int slack_web_answer(const char *method, unsigned flags, long status, const char *head,
                     size_t head_len, const char *body, size_t body_len, json_t **ret,
                     char **ret_error, long *retry_after_s, struct jb_err *err)
{
    struct web_req rq = {
        .what = method, .fd = -1, .once = !!(flags & SLACK_CALL_ONCE), .want_json = 1};
    struct web_resp rs = {.status = status,
                          .maybe_sent = 1,
                          .retry_after = -1,
                          .body = {.data = (char *)body, .len = body_len, .cap = body_len}};
    for (size_t i = 0, n; i < head_len; i += n) {
        const char *nl = memchr(head + i, '\n', head_len - i);
        n = nl ? (size_t)(nl - (head + i)) + 1 : head_len - i;
        head_line(&rs, head + i, n);
    }
    *retry_after_s = rs.retry_after;
    struct jb_err why = {0};
    jb_auto(json_decrefp) json_t *j = NULL;
    if (classify(&rq, &rs, &j, &why) != V_OK) return jb_err_set(err, why.code, "%s", why.msg);
    return api_result(method, &j, NULL, ret, ret_error, err);
}

int slack_call_ex(struct slack_web *w, const char *method, const json_t *args, unsigned flags,
                  const char *const *tolerate, json_t **ret, char **ret_error, struct jb_err *err)
{
    return call_method(w, method, args, flags, tolerate, NULL, ret, ret_error, err);
}

int slack_call_nowait(struct slack_web *w, const char *method, const json_t *args, unsigned flags,
                      struct slack_nowait *nw, json_t **ret, char **ret_error, struct jb_err *err)
{
    nw->retry_after_s = 0;
    return call_method(w, method, args, flags, NULL, nw, ret, ret_error, err);
}

int slack_call(struct slack_web *w, const char *method, const json_t *args, int form, int app_token,
               json_t **ret, char **ret_error, struct jb_err *err)
{
    unsigned flags = (form ? SLACK_CALL_FORM : 0) | (app_token ? SLACK_CALL_APP_TOKEN : 0);
    return slack_call_ex(w, method, args, flags, NULL, ret, ret_error, err);
}
