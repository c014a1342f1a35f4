/* sandbox/sprites-rest.c -- the Sprites REST API over janebot's HTTP/1.1 client: one
 * client's keep-alive connections for every thread; the token travels only in the
 * Authorization header, never in a URL, a log line or an error.
 * Retries of idempotent calls (GET, DELETE, the policy POST replaces the whole policy, and
 * a create of an existing name answers "exists"): network errors, 429 and 5xx, with
 * jittered exponential backoff or the wait the API asks for (retry_after_seconds, the
 * Retry-After header), at most rest_attempts tries and rest_deadline_ms in total. A call
 * flagged SPR_NOT_IDEMPOTENT (checkpoint, restore) is re-sent only when it surely was not
 * done (429, no connection); its caller looks up the rest. */
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sandbox/sprites-int.h"

#define RESP_MAX           ((size_t)8 << 20)
#define CONNECT_TIMEOUT_MS 10000L
#define CALL_TIMEOUT_MS    120000L /* a create may wait for capacity */
/* A checkpoint or restore stream: the SDKs set no timeout; a timeout here means trouble. */
#define STREAM_TIMEOUT_MS (10 * 60 * 1000L)
#define BACKOFF_MS        300L

static void free_secret(char *s)
{
    if (s) explicit_bzero(s, strlen(s));
    free(s);
}

void sprites_client_free(struct sprites *sp)
{
    if (!sp) return;
    jb_http_free(sp->http);
    free(sp->api_url);
    free_secret(sp->auth);
    free_secret(sp->bearer);
    free(sp);
}

int sprites_client_new(const char *api_url, const char *token, struct sprites **ret,
                       struct jb_err *err)
{
    if (!token || !*token)
        return jb_err_set(err, JB_ECONFIG, "JANEBOT_SANDBOX=sprites needs SPRITES_TOKEN");
    if (!api_url || !*api_url) api_url = SPRITES_DEFAULT_URL;
    if (strncmp(api_url, "http://", 7) != 0 && strncmp(api_url, "https://", 8) != 0)
        return jb_err_set(err, JB_ECONFIG,
                          "SPRITES_API_URL=\"%s\" is not valid: expected http(s)://HOST[:PORT]",
                          api_url);
    struct sprites *sp = calloc(1, sizeof *sp);
    if (!sp) return jb_err_set(err, JB_ENOMEM, "sprites");
    sp->health_ms = 30000;
    sp->rest_attempts = 4;
    sp->rest_deadline_ms = 60000;
    if (!(sp->api_url = strdup(api_url)) ||
        asprintf(&sp->auth, "Authorization: Bearer %s", token) < 0 ||
        asprintf(&sp->bearer, "Bearer %s", token) < 0) {
        sp->auth = sp->bearer = NULL;
        sprites_client_free(sp);
        return jb_err_set(err, JB_ENOMEM, "sprites");
    }
    size_t n = strlen(sp->api_url);
    while (n && sp->api_url[n - 1] == '/')
        sp->api_url[--n] = '\0';
    if (!(sp->http = jb_http_new(8, err))) {
        sprites_client_free(sp);
        return -1;
    }
    *ret = sp;
    return 0;
}

int sprites_escape(struct jb_buf *b, const char *s, struct jb_err *err)
{
    jb_autofree char *e = jb_url_escape(s, strlen(s));
    if (!e) return jb_err_set(err, JB_ENOMEM, "escaping a URL part");
    return jb_buf_append(b, e, strlen(e), err);
}

int64_t sprites_parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end) return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (int64_t)t;
}

void sprites_resp_release(struct sprites_resp *r)
{
    jb_buf_release(&r->body);
}

/* One exchange's callbacks: the answer into r; why a body could not be kept. */
struct exchange {
    struct sprites_resp *r;
    struct jb_err body_err;
};

/* The status, and the Retry-After header of the final answer. */
static int on_head(void *ud, int status, const char *reason, size_t reason_len,
                   const struct jb_http_header *hdr, size_t nhdr)
{
    struct sprites_resp *r = ((struct exchange *)ud)->r;
    (void)reason, (void)reason_len;
    r->status = status;
    const struct jb_http_header *ra = jb_http_header_get(hdr, nhdr, "retry-after");
    if (ra) r->retry_after_ms = jb_retry_after_header_ms(ra, time(NULL));
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    struct exchange *x = ud;
    return jb_buf_append(&x->r->body, p, n, &x->body_err);
}

/* One exchange: 0 with r->status set, -1 on a network error (err says which). */
static int rest_once(struct sprites *sp, const char *method, const char *url, const char *body,
                     long timeout_ms, struct sprites_resp *r, struct jb_err *err)
{
    const char *headers[4] = {sp->auth}, **h = headers + 1;
    if (body) *h++ = "Content-Type: application/json";
    *h = "Accept: application/json";
    struct exchange x = {.r = r};
    struct jb_http_req rq = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .has_body = body || !strcmp(method, "POST"), /* a POST without a body: length 0 */
        .on_head = on_head,
        .on_body = on_body,
        .ud = &x,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .timeout_ms = timeout_ms,
    };
    struct jb_http_resp rs = {0};
    struct jb_err e = {0};
    jb_buf_reset(&r->body);
    r->retry_after_ms = 0;
    if (jb_http_request(sp->http, &rq, &rs, &e) == 0) return 0;
    r->unsent = !rs.sent;
    if (x.body_err.code) /* the answer, not the network, failed: say so */
        return jb_err_set(err, JB_EUNAVAIL, "answer body: %s", x.body_err.msg);
    return jb_err_set(err, e.code == JB_ETIMEOUT ? JB_ETIMEOUT : JB_EUNAVAIL, "%s", e.msg);
}

int sprites_is_not_found(long status, const char *body)
{
    return status == 404 || (status == 500 && body && strstr(body, "failed to retrieve"));
}

/* Whether to send again after rest_once returned rc with r. */
static int retryable(int rc, const struct sprites_resp *r, unsigned flags)
{
    if (flags & SPR_NOT_IDEMPOTENT) return rc < 0 ? r->unsent : r->status == 429;
    if (rc < 0) return 1;
    if ((flags & SPR_GET_SPRITE) && sprites_is_not_found(r->status, r->body.data)) return 0;
    return r->status == 429 || r->status >= 500;
}

long sprites_retry_after_ms(const char *body)
{
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *v = json_object_get(j, "retry_after_seconds");
    double secs = json_is_number(v) ? json_number_value(v) : 0;
    json_decref(j);
    return secs > 0 && secs < 86400 ? (long)(secs * 1000) : 0;
}

/* A failed attempt in the metrics, by kind: no answer, or the answer's class. A sprite not
 * found where that is a normal answer is not an error. */
static void count_error(struct sprites *sp, int rc, const struct jb_err *e,
                        const struct sprites_resp *r, unsigned flags)
{
    const char *kind = NULL;
    if (rc < 0)
        kind = e->code == JB_ETIMEOUT ? "timeout" : "network";
    else if (r->status == 429)
        kind = "ratelimited";
    else if (r->status >= 500 &&
             !((flags & SPR_GET_SPRITE) && sprites_is_not_found(r->status, r->body.data)))
        kind = "server_error";
    else if (r->status >= 400 && r->status != 404)
        kind = "client_error";
    if (kind) jb_metrics_add(sp->metrics, JB_M_SPRITES_ERRORS, kind, NULL, 1);
}

int sprites_rest(struct sprites *sp, const char *method, const char *path, const char *body,
                 unsigned flags, struct sprites_resp *r, struct jb_err *err)
{
    jb_autofree char *url = NULL;
    if (asprintf(&url, "%s%s", sp->api_url, path) < 0) return jb_err_set(err, JB_ENOMEM, "url");
    r->body = (struct jb_buf)JB_BUF_INIT(RESP_MAX);
    long call_max = (flags & SPR_NOT_IDEMPOTENT) ? STREAM_TIMEOUT_MS : CALL_TIMEOUT_MS;
    int64_t end =
        jb_mono_ms() + ((flags & SPR_NOT_IDEMPOTENT) ? STREAM_TIMEOUT_MS : sp->rest_deadline_ms);
    struct jb_err e = {0};
    long asked = 0; /* ms the API asked us to wait, when that was past the deadline */
    struct jb_retry rt = {.base_ms = BACKOFF_MS,
                          .cap_ms = BACKOFF_MS << 6,
                          .max_retries = sp->rest_attempts - 1,
                          .deadline = end};
    for (;;) {
        int64_t left = end - jb_mono_ms();
        long to = left < call_max ? (long)(left > 1000 ? left : 1000) : call_max;
        r->status = 0;
        r->unsent = 0;
        int rc = rest_once(sp, method, url, body, to, r, &e);
        count_error(sp, rc, &e, r, flags);
        if (!retryable(rc, r, flags)) {
            if (rc == 0) return 0;
            break;
        }
        long ra = 0; /* the API says when: prefer it to our guess (body, then header) */
        if (rc == 0) ra = r->status == 429 ? sprites_retry_after_ms(r->body.data) : 0;
        if (rc == 0 && !ra) ra = r->retry_after_ms;
        long wait = rt.max_retries > 0 ? jb_retry_next(&rt, ra) : JB_RETRY_STOP;
        if (wait == JB_RETRY_ASKED) asked = ra;
        if (wait < 0) break;
        log_warn("sprites: %s %s: %s; retrying in %ld ms", method, path,
                 rc < 0 ? e.msg : (r->status == 429 ? "rate limited (429)" : "server error"), wait);
        jb_sleep_ms(wait);
    }
    if (r->status) {
        char why[512];
        sprites_describe(r, why, sizeof why);
        if (asked)
            jb_err_set(err, JB_EUNAVAIL,
                       "Sprites API %s %s: %s; it asks to wait %ld s (Retry-After), past this "
                       "call's deadline: try again later",
                       method, path, why, (asked + 999) / 1000);
        else
            jb_err_set(err, JB_EUNAVAIL, "Sprites API %s %s: %s", method, path, why);
    } else {
        jb_err_set(err, e.code ? e.code : JB_EUNAVAIL, "Sprites API %s %s: %s", method, path,
                   e.msg);
    }
    sprites_resp_release(r);
    return -1;
}

void sprites_describe(const struct sprites_resp *r, char *out, size_t n)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s", r->body.data ? r->body.data : "");
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    jb_autofree char *red = jb_redact(msg);
    snprintf(out, n, "HTTP %ld%s%s", r->status, *msg ? ": " : "", red ? red : "");
}
