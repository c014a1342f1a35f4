/* util/util.h -- errors, logging with secret redaction, buffers, string vectors,
 * hashing, files and time. Prefix jb_. Everything here is thread-safe unless noted. */
#ifndef JB_UTIL_H
#define JB_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---------------------------------------------------------------------- */

enum jb_code {
    JB_OK,
    JB_ENOMEM,
    JB_ESYS,   /* a system call failed; sys_errno says why */
    JB_EPROTO, /* bad input from outside (agent output, files, peers) */
    JB_ETIMEOUT,
    JB_EDENIED, /* refused by policy or isolation */
    JB_ECONFIG, /* bad configuration value */
    JB_ENOTFOUND,
    JB_ECANCEL,
    JB_EUNAVAIL, /* a needed tool or kernel feature is missing */
    JB_EBUSY,    /* in use (a turn runs in the sandbox); try again later */
};

/* A code for the program, a message a person can act on. */
struct jb_err {
    enum jb_code code;
    int sys_errno;
    char msg[768];
};

const char *jb_strerror(enum jb_code c); /* static string, never NULL */
/* Fill err (may be NULL); always returns -1 so callers can `return jb_err_set(...)`. */
int jb_err_set(struct jb_err *err, enum jb_code c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like jb_err_set(JB_ESYS), appending ": strerror(errno)". */
int jb_err_sys(struct jb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message: "<prefix>: <old msg>". Returns -1. */
int jb_err_prefix(struct jb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- text from outside on a terminal (text.c) ------------------------------------ */

/* Remove, in place, every control character but newline and tab: C0 (ESC, BEL, CR…), DEL
 * and the C1 controls U+0080-U+009F in their UTF-8 form, so no escape sequence survives.
 * Other UTF-8 is kept as it is; a byte that is not part of well-formed UTF-8 becomes '?'.
 * Returns the new length. */
size_t jb_strip_controls(char *s);
/* The same on a copy of s (NULL reads as ""). Caller frees; NULL when out of memory. */
char *jb_strip_controls_dup(const char *s);

/* ---- listen addresses (text.c) ------------------------------------------------- */
/* "HOST:PORT" or "[V6]:PORT" -> host and port (1-5 digits, at most 65535; 0 passes, the
 * caller decides whether it may). 0, or -1 when addr has neither shape (a bare IPv6
 * address is one: its port is ambiguous). The caller words the error. */
int jb_split_hostport(const char *addr, char host[256], char port[6]);

/* ---- logging (the process-wide logger; redacts registered secrets and strips control
 * characters from every line) ------------------------------------------------------ */

enum jb_log_level { JB_LOG_DEBUG, JB_LOG_INFO, JB_LOG_WARN, JB_LOG_ERROR };

/* Set the minimum level and destination (NULL = stderr). Call once at start. */
void jb_log_init(enum jb_log_level min, FILE *out);
int jb_log_level_parse(const char *s, enum jb_log_level *ret);
/* Register a secret value; every later log line and jb_redact() result hides it.
 * Values shorter than 6 bytes are ignored (they would redact ordinary words). */
void jb_log_add_secret(const char *value);
void jb_log(enum jb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) jb_log(JB_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  jb_log(JB_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  jb_log(JB_LOG_WARN, __VA_ARGS__)
#define log_error(...) jb_log(JB_LOG_ERROR, __VA_ARGS__)
/* Copy of s with registered secrets and well-known token shapes (xoxb-, xapp-, sk-ant-,
 * sk-, Bearer …) replaced by "[redacted]". Caller frees. NULL only when out of memory. */
char *jb_redact(const char *s);

/* The line format: text ("TIME janebot LEVEL: MESSAGE", the default) or json (one object
 * per line: time (RFC 3339, UTC, ms), level, event, msg, and where they apply thread,
 * user, turn, duration_ms). Every field is stripped of controls and redacted. */
enum jb_log_format { JB_LOG_TEXT, JB_LOG_JSON };
int jb_log_format_parse(const char *s, enum jb_log_format *ret); /* "text" | "json" */
void jb_log_set_format(enum jb_log_format f);
/* The calling thread's context (a turn's): its lines carry thread and user (copied; NULL
 * leaves a field out) until jb_log_ctx_clear(); turn ids come later (the audit row). */
void jb_log_ctx_set(const char *thread, const char *user);
void jb_log_ctx_turn(int64_t turn_id);
void jb_log_ctx_clear(void);
/* A line that marks an event an operator looks for (a short dotted name: "turn.end",
 * "slack.connected", "config.reloaded"); duration_ms < 0 when none. Plain log lines get
 * the event "log", or their module when they start with one ("slack: …" -> "slack"). */
void jb_log_event(enum jb_log_level lvl, const char *event, int64_t duration_ms, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
/* s as the inside of a JSON string: '"', '\\' and control characters escaped (s is valid
 * UTF-8: the logger strips it first). */
struct jb_buf;
int jb_json_escape(struct jb_buf *b, const char *s);

/* ---- growable buffer with a ceiling --------------------------------------------- */

/* Invariants once initialised: data != NULL, data[len] == '\0', len <= max.
 * Only jb_buf_detach() hands the memory over; the caller then free()s it. */
struct jb_buf {
    char *data;
    size_t len, cap, max;
};
extern char jb_buf_empty[1];
#define JB_BUF_INIT(limit)                                                                         \
    {                                                                                              \
        .data = jb_buf_empty, .len = 0, .cap = 0, .max = (limit)                                   \
    }
/* -1 with JB_EPROTO when the result would exceed max, JB_ENOMEM on allocation failure;
 * the buffer is unchanged then. */
int jb_buf_append(struct jb_buf *b, const void *p, size_t n, struct jb_err *err);
int jb_buf_appendf(struct jb_buf *b, struct jb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void jb_buf_reset(struct jb_buf *b);
void jb_buf_release(struct jb_buf *b);
char *jb_buf_detach(struct jb_buf *b, size_t *len_out); /* caller frees; buf is reset */

/* ---- NULL-terminated string vectors --------------------------------------------- */

struct jb_strv {
    char **v; /* NULL-terminated once anything was pushed; may be NULL when empty */
    size_t n, cap;
};
#define JB_STRV_INIT                                                                               \
    {                                                                                              \
        0                                                                                          \
    }
int jb_strv_push(struct jb_strv *s, const char *str, struct jb_err *err); /* copies str */
int jb_strv_pushf(struct jb_strv *s, struct jb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int jb_strv_pushv(struct jb_strv *s, const char *const *strs, struct jb_err *err);
void jb_strv_free(struct jb_strv *s);
/* Set or replace "NAME=value" in an environment vector. */
int jb_env_set(struct jb_strv *env, const char *name, const char *value, struct jb_err *err);
const char *jb_env_get(const struct jb_strv *env, const char *name); /* borrowed or NULL */

/* ---- hashing and randomness ----------------------------------------------------- */

void jb_sha256(const void *data, size_t len, unsigned char out[32]);
void jb_sha256_hex(const void *data, size_t len, char out[65]); /* lowercase hex */
int jb_random_bytes(void *out, size_t n, struct jb_err *err);
int jb_uuid_v4(char out[37], struct jb_err *err);

/* ---- files ---------------------------------------------------------------------- */

int jb_mkdir_p(const char *path, unsigned mode, struct jb_err *err);

/* ---- trees someone else may change while janebot walks them (tree.c) ------------ */
/* Every step is relative to a directory fd: symlinks are never followed and nothing on
 * another mount is entered, removed or changed. Permission bits are added only to
 * directories the caller owns (never as root), through an fd. */

/* Remove path and everything below it; a missing path is not an error. A directory its
 * owner made unreadable or read-only (chmod 000, 0500) is made usable first. A mount
 * point at path is refused (JB_EDENIED, nothing removed); one below it is left alone and
 * makes the removal fail, naming it. */
int jb_rm_rf(const char *path, struct jb_err *err);
/* The same for the entry name of directory dirfd. */
int jb_rm_rf_at(int dirfd, const char *name, struct jb_err *err);
/* Bytes on disk (st_blocks * 512) of a tree, every name counted; directories the caller
 * owns but cannot read are read (their bits put back afterwards); -1 when path cannot be
 * looked at. */
long long jb_disk_usage(const char *path);
/* Give dirfd's directory and everything below it (symlinks themselves) to uid:gid. */
int jb_chown_tree(int dirfd, uid_t uid, gid_t gid, struct jb_err *err);
/* Look through the tree at path (at most max_entries entries; directories whose name
 * skip() accepts are not entered; skip may be NULL) for an entry whose name match()
 * accepts: 1 with its path below path in found, 2 when a mount point comes first (its
 * path in found), 0 when there is none, -1 when the tree cannot be read or is larger. */
int jb_tree_find(const char *path, int (*match)(const char *name), int (*skip)(const char *name),
                 size_t max_entries, char *found, size_t n, struct jb_err *err);

/* Whole file into a NUL-terminated malloc'd string (caller frees); at most max bytes. */
int jb_read_file(const char *path, size_t max, char **ret, size_t *ret_len, struct jb_err *err);
/* Write data to path atomically (temp file + rename), mode applied. */
/* Write all n bytes to fd (EINTR retried): 0, or -1 with errno (0 when write() wrote
 * nothing). */
int jb_write_all(int fd, const void *p, size_t n);
int jb_write_file(const char *path, const void *data, size_t len, unsigned mode,
                  struct jb_err *err);
/* First executable named `name` on PATH (or name itself when it has a '/'); caller frees. */
char *jb_which(const char *name, const char *path_env);

/* ---- libwebsockets: its log into ours, the CAs its TLS client trusts (lwslog.c) ---- */

/* Once per process, before the first lws context; any thread. */
void jb_lws_log_init(void);
/* The system's CAs into ssl_ctx (an SSL_CTX *), looked up per handshake in the hashed
 * directory where there is one, else the bundle: for the HTTP client's TLS context and for
 * LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS on a context made with
 * LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS. */
void jb_tls_trust_system_cas(void *ssl_ctx);

/* ---- URLs and HTTP dates (url.c) ------------------------------------------------- */

/* An http:// or https:// URL as the one strict parser every HTTP user in janebot shares
 * reads it: the client sends exactly the parts a caller checked. */
struct jb_url {
    int https;
    char host[256]; /* as written; an IPv6 literal without its brackets */
    int ipv6;       /* the host was [bracketed] */
    unsigned port;  /* as written, else 80 or 443 */
    int port_given;
    char *target; /* path and query as written ("/" when empty); owned */
};

/* Split url (n bytes; no NUL needed). Refused, with a static reason in *why: another
 * scheme, userinfo ('@' before the path), a fragment, a backslash, a control byte, space,
 * DEL or a non-ASCII byte anywhere, an empty or malformed host, a port not 1-65535.
 * The host is a name of A-Z a-z 0-9 . _ ~ - (no percent-escape) or a [bracketed] IPv6
 * address (no zone); nothing is decoded or normalised, the path keeps its dot segments.
 * 0, or -1 (also out of memory). Release u with jb_url_release(), also after -1. */
int jb_url_parse(const char *url, size_t n, struct jb_url *u, const char **why);
void jb_url_release(struct jb_url *u);
/* a and b have one origin: scheme, host (ASCII case-insensitive) and port. */
int jb_url_same_origin(const struct jb_url *a, const struct jb_url *b);
/* s (n bytes) percent-encoded for a form body or a query (every byte but A-Z a-z 0-9 - . _ ~
 * as %XX). Allocated, the caller frees it; NULL when out of memory. */
char *jb_url_escape(const char *s, size_t n);

/* An HTTP date (IMF-fixdate, RFC 850 or asctime form, nothing before or after it; a date
 * from 1970 on) as a time; -1 when it is not one. An RFC 850 year below 70 is 20yy. */
time_t jb_http_date(const char *s);

/* ---- HTTP/1.1 client (http-client.c, http-conn.c) ---------------------------------- */

/* One client: idle keep-alive connections (plain and TLS) and one TLS context; any
 * number of threads may run requests on it at once. TLS checks the server's certificate
 * against the system's CAs (SSL_CERT_FILE / SSL_CERT_DIR honoured) and its name. No proxy
 * from the environment is used, no redirect followed, no cookie or .netrc read. */
struct jb_http;

/* A client keeping at most max_idle idle connections (0: 8). NULL on error (err says why).
 * The caller frees it with jb_http_free() once no request runs on it. Needs SIGPIPE
 * ignored (main() does). */
struct jb_http *jb_http_new(int max_idle, struct jb_err *err);
void jb_http_free(struct jb_http *h);

struct jb_http_header {
    const char *name, *value; /* not NUL-terminated; value without surrounding blanks */
    size_t name_len, value_len;
};

/* The last of hdr[0, n) named name (ASCII case-insensitive; a later one overrides), or
 * NULL. Borrowed from hdr. */
const struct jb_http_header *jb_http_header_get(const struct jb_http_header *hdr, size_t n,
                                                const char *name);

struct jb_http_req {
    const char *method; /* NULL: GET, or POST with a body */
    const char *url;    /* as jb_url_parse() takes it; the target is sent as written */
    /* "Name: value" lines, NULL-ended. Host, Content-Length, Transfer-Encoding and
     * Connection are the client's own: a request naming one is refused. */
    const char *const *headers;
    /* The body, sent with Content-Length: body_len bytes, from body, or when read is set
     * from read() (bytes > 0 as they come, -1 to give up). has_body: a body (of maybe 0
     * bytes) is sent; implied by body or read. */
    const char *body;
    size_t body_len;
    int has_body;
    ssize_t (*read)(void *ud, char *buf, size_t cap);
    /* read() starts over (0) so the request can go again on a new connection when a
     * kept-alive one turns out closed before any answer; NULL or -1: it cannot. */
    int (*rewind)(void *ud);
    /* The answer, 1xx interim answers skipped: on_head once with the status line's code
     * and reason and every header, then on_body for each piece of the (decoded) body.
     * Either returns -1 to abort (the request ends with JB_ECANCEL). */
    int (*on_head)(void *ud, int status, const char *reason, size_t reason_len,
                   const struct jb_http_header *hdr, size_t nhdr);
    int (*on_body)(void *ud, const char *p, size_t n);
    /* Optional: after each batch of bytes read from the server has gone through on_head
     * and on_body (a place to send on at once what they gathered); nonzero aborts. */
    int (*on_fed)(void *ud);
    /* Looked at at least every 200 ms while the client waits; nonzero aborts (JB_ECANCEL). */
    int (*cancelled)(void *ud);
    void *ud;
    long connect_timeout_ms; /* resolving and connecting (TLS handshake included); 0: 10 s */
    long timeout_ms;         /* the whole exchange; 0: none */
    long idle_timeout_ms;    /* the longest silence of the server mid-answer; 0: none */
    long long max_body;      /* a longer answer body is refused (too_big); 0: no limit */
};

struct jb_http_resp {
    int status;   /* of the final answer; 0 when none came */
    int sent;     /* some byte of the request may have reached the server */
    int too_big;  /* the body passed max_body */
    int complete; /* the whole answer came */
};

/* One exchange. 0 when a complete answer came (any status), else -1 with err:
 * JB_EPROTO (a bad URL or header; a malformed answer), JB_ETIMEOUT, JB_EUNAVAIL (name
 * not resolved, no connection, TLS refused, connection lost), JB_ECANCEL (a callback or
 * cancelled()), JB_ENOMEM. rs says how far it got either way. Thread-safe. */
int jb_http_request(struct jb_http *h, const struct jb_http_req *rq, struct jb_http_resp *rs,
                    struct jb_err *err);

/* ---- LLM tokens counted per model (tally.c) --------------------------------------- */

/* What a provider bills for: input not read from a cache, prompt written to its cache,
 * prompt read from its cache, output (reasoning included). */
struct jb_tokens {
    int64_t input, cache_write, cache_read, output;
};
int64_t jb_tokens_total(const struct jb_tokens *t);
void jb_tokens_add(struct jb_tokens *into, const struct jb_tokens *t);

#define JB_MODEL_MAX 80 /* longer model names are cut */
#define JB_TALLY_MAX 8  /* models per tally; past that they add up under "(other models)" */
struct jb_tally {
    size_t n;
    struct jb_model_tokens {
        char model[JB_MODEL_MAX]; /* "" when the provider named none */
        struct jb_tokens t;
        int64_t requests;
    } m[JB_TALLY_MAX];
};
void jb_tally_add(struct jb_tally *ty, const char *model, const struct jb_tokens *t,
                  int64_t requests);
void jb_tally_merge(struct jb_tally *into, const struct jb_tally *from);
struct jb_tokens jb_tally_sum(const struct jb_tally *ty);

/* ---- time ----------------------------------------------------------------------- */

int64_t jb_now_ms(void);  /* wall clock, Unix epoch */
int64_t jb_mono_ms(void); /* monotonic */
/* "2026-11-25 12:00:00" in local time into out (at least 20 bytes). */
void jb_fmt_time(int64_t unix_s, char *out, size_t n);
/* "1.2 MiB" style into out. */
void jb_fmt_size(long long bytes, char *out, size_t n);

/* ---- threads (thread.c) ----------------------------------------------------------- */

/* A condition variable whose timed waits count on CLOCK_MONOTONIC, so a step of the wall
 * clock neither stalls nor hurries them (deadlines: clock_gettime(CLOCK_MONOTONIC)). */
void jb_cond_init_monotonic(pthread_cond_t *cv);

/* ---- retries (retry.c) ----------------------------------------------------------
 * One schedule for every retry loop (Slack's Web API, the Sprites API, the warm pool, the
 * Socket Mode reconnect): exponential backoff with "equal jitter" (base * 2^n, then a
 * random point in its upper half, so that many clients that failed together do not come
 * back together), capped, with a limit on retries, a deadline, and the wait the other
 * side asked for (Retry-After), whichever is longer. */
struct jb_retry {
    long base_ms;     /* first backoff (> 0) */
    long cap_ms;      /* longest backoff; 0 = no cap */
    long ask_max_ms;  /* longest wait asked for that is honoured; a longer ask ends the
                         retries (the caller says why); 0 = any */
    int max_retries;  /* 0 = no limit */
    int64_t deadline; /* jb_mono_ms() value no wait may end past; 0 = none */
    int retries;      /* retries so far (counted by jb_retry_next) */
};
#define JB_RETRY_STOP  (-1L) /* no more retries: out of tries or past the deadline */
#define JB_RETRY_ASKED (-2L) /* the other side asked to wait longer than ask_max_ms */
/* The wait in ms before the next attempt: the backoff, or asked_ms when that is longer
 * (asked_ms <= 0: nothing was asked), counting one retry; JB_RETRY_STOP or
 * JB_RETRY_ASKED when there is none to make (nothing is counted then). */
long jb_retry_next(struct jb_retry *r, long asked_ms);
/* The backoff alone, without counting or limits: the nth wait (n >= 0) of r's schedule. */
long jb_retry_backoff(const struct jb_retry *r, int n);
/* After a success: the next failure starts again from base_ms. */
void jb_retry_reset(struct jb_retry *r);
/* A Retry-After header's value in ms: delta-seconds (a fraction allowed) or an HTTP date
 * (against now); 0 when missing, not one of those, in the past or a day or more away. */
long jb_retry_after_ms(const char *value, time_t now);
/* The same, of a header's value (not NUL-terminated; a longer one than any such value is
 * no Retry-After). */
long jb_retry_after_header_ms(const struct jb_http_header *h, time_t now);
/* Sleep ms milliseconds, through interrupting signals. */
void jb_sleep_ms(long ms);

/* ---- metrics (metrics.c: the registry and Prometheus text; metrics-http.c: /metrics,
 * /healthz, /readyz) -------------------------------------------------------------
 * One registry per process, made by `serve` and handed down by pointer; a NULL registry
 * counts nothing (chat, the other commands, tests). Labels never carry secrets, text,
 * user ids or thread keys: only words of janebot's own (a method, an outcome, a kind). */

#define JB_VERSION "0.1.0"

enum jb_metric {
    JB_M_EVENTS_RECEIVED,  /* counter {type}: Socket Mode envelopes read */
    JB_M_EVENTS_ACKED,     /* counter {type} */
    JB_M_EVENTS_DEDUPED,   /* counter: events seen before (redeliveries) */
    JB_M_TURNS,            /* counter {outcome}: ok, error, cancelled, timeout */
    JB_M_TURN_SECONDS,     /* histogram */
    JB_M_ACK_SECONDS,      /* histogram: envelope read to ack sent */
    JB_M_QUEUE_MESSAGES,   /* gauge: messages queued or running (lanes) */
    JB_M_QUEUE_LANES,      /* gauge: threads waiting for a worker */
    JB_M_TURNS_RUNNING,    /* gauge */
    JB_M_SANDBOXES,        /* gauge {backend, state} */
    JB_M_PROXY_REQUESTS,   /* counter {proxy: egress|llm, verdict: allowed|denied} */
    JB_M_PROXY_BYTES,      /* counter {proxy, direction: upstream|downstream} */
    JB_M_LLM_TOKENS,       /* counter {kind: input, output, cache_read, cache_write} */
    JB_M_SLACK_CALLS,      /* counter {method}: requests sent (each attempt) */
    JB_M_SLACK_RETRIES,    /* counter {method} */
    JB_M_SLACK_ERRORS,     /* counter {method, kind: api|auth|ratelimited|unavailable|...} */
    JB_M_SOCKET_CONNECTED, /* gauge: 0 or 1 */
    JB_M_SOCKET_CONNECTS,  /* counter */
    JB_M_SPRITES_ERRORS,   /* counter {kind: http_4xx|http_5xx|network|...} */
    JB_M_COUNT
};

struct jb_metrics;
/* version goes into janebot_build_info. *ret is the caller's: jb_metrics_free(), after
 * everything that counts into it has stopped. */
int jb_metrics_new(const char *version, struct jb_metrics **ret, struct jb_err *err);
void jb_metrics_free(struct jb_metrics *m); /* accepts NULL */
/* Every function below does nothing when m is NULL. Label values l1, l2 (NULL = "") are
 * borrowed and copied; those a family does not have are ignored. Any thread. */
void jb_metrics_add(struct jb_metrics *m, enum jb_metric id, const char *l1, const char *l2,
                    int64_t n); /* counters and gauges */
void jb_metrics_set(struct jb_metrics *m, enum jb_metric id, const char *l1, const char *l2,
                    int64_t v);                                 /* gauges */
void jb_metrics_reset(struct jb_metrics *m, enum jb_metric id); /* every series of a gauge to 0 */
void jb_metrics_observe(struct jb_metrics *m, enum jb_metric id, double seconds); /* histograms */
/* fn(ud, m) runs at each scrape, before rendering, to set gauges that are read rather than
 * counted (queue depth). At most 4; -1 when full. jb_metrics_off_scrape() removes those of
 * ud, waiting for a scrape running it. */
int jb_metrics_on_scrape(struct jb_metrics *m, void (*fn)(void *ud, struct jb_metrics *m),
                         void *ud);
void jb_metrics_off_scrape(struct jb_metrics *m, void *ud);
/* Every family in Prometheus text format 0.0.4, then the process's memory, open fds,
 * start time and janebot_build_info, appended to out. */
int jb_metrics_render(struct jb_metrics *m, struct jb_buf *out, struct jb_err *err);

/* HOST:PORT or [IPv6]:PORT, port 1-65535: 0, or -1 with JB_ECONFIG saying what is wanted
 * (the message starts with name, the variable). */
int jb_metrics_addr_check(const char *name, const char *addr, struct jb_err *err);
/* Readiness: 1 when ready, else 0 with a one-line reason in why. Any thread. */
typedef int (*jb_ready_fn)(void *ud, char *why, size_t n);
struct jb_metrics_http;
/* Listen on addr (checked as above) and serve GET /metrics (m), /healthz, /readyz (ready)
 * on a thread of its own, each connection on its own (at most 8 at once), with a 5 s read
 * timeout and 8 KiB request heads. *ret is the caller's: jb_metrics_http_stop(). */
int jb_metrics_http_start(struct jb_metrics *m, const char *addr, jb_ready_fn ready, void *ud,
                          struct jb_metrics_http **ret, struct jb_err *err);
/* Stops listening, ends the connections and joins; h freed (NULL is fine). */
void jb_metrics_http_stop(struct jb_metrics_http *h);

/* ---- resource helpers (cleanup attributes) -------------------------------------- */

static inline void jb_freep(void *p)
{
    free(*(void **)p);
}
static inline void jb_closep(int *fd)
{
    if (*fd >= 0) close(*fd);
}
#define jb_auto(fn)  __attribute__((cleanup(fn)))
#define jb_autofree  jb_auto(jb_freep)
#define jb_autoclose jb_auto(jb_closep)
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) p_ = (p);                                                                    \
        (p) = NULL;                                                                                \
        p_;                                                                                        \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int fd_ = (fd);                                                                            \
        (fd) = -1;                                                                                 \
        fd_;                                                                                       \
    })
#define JB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
