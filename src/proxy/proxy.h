/* proxy/proxy.h -- the egress proxy and the LLM API proxy (host side), and the hand-over of
 * a sandbox's listeners to them (sandbox side).
 *
 * A sandbox has only its own loopback. Its first process listens on 127.0.0.1:3128 there
 * and hands that listener to the host (proxy_hand_over()) over a Unix socket bind-mounted
 * from the host. The egress proxy has one such socket per sandbox and accepts on the
 * listener it got through it, so where a connection came from says which thread it
 * belongs to: nothing the sandbox sends is trusted for that. The proxy serves `CONNECT host:port`
 * (tunnel) and absolute-URI `GET http://host/path` (forward) and applies, in this order
 * (sandbox-anchors 3.6):
 *   1. strict authority syntax; CONNECT to port 443 only (TLS, where step 6 checks the
 *      name), http:// forwarding to port 80 only (where the Host header is checked);
 *   2. no IP literals in any spelling;
 *   3. normalised name on the allowlist (exact, or "*.example.com" for subdomains);
 *   4. resolve on the host; refuse when ANY address is loopback, private, link-local…;
 *   5. connect to that vetted address only (never re-resolve);
 *   6. CONNECT: the tunnel carries nothing until the client's first bytes are a complete
 *      TLS ClientHello whose SNI is the allowed name (any case, no trailing dot); a
 *      silent client, anything but TLS, no SNI, another name, ECH, or a ClientHello a
 *      server could read differently is closed (see sni.c);
 *   7. refusals: a 403 that says it is a policy block, and one log line (log_warn).
 * With an approver (egress_listener_set_approver()), a name failing step 3 is held and a
 * person asked instead; steps 4-6 apply after an allow as to any name.
 * Use:
 *   1. egress_policy_new() from JANEBOT_EGRESS_ALLOW / JANEBOT_EGRESS_TEST_HOSTS;
 *   2. egress_proxy_new(policy);
 *   3. per sandbox: egress_listen(socket path, thread key) ... egress_listener_close();
 *   4. egress_proxy_free(), then egress_policy_free().
 * Limits: 32 live connections per listener, 256 per proxy, 16 KiB request heads read
 * within 10 s, a ClientHello within 10 s after the 200, 10 s to connect, 5 min idle, two
 * 64 KiB buffers per connection (the head, the ClientHello) and, once the tunnel or the
 * forwarded body runs, two pipes: bytes go client <-> origin by splice(2), in the kernel.
 * Thread-safety: a policy is read-only after egress_policy_new() and may be shared. The
 * proxy functions may be called from any thread; each connection runs in its own thread,
 * so a slow peer or a DNS lookup blocks only its own connection. */
#ifndef JB_PROXY_H
#define JB_PROXY_H

#include <sys/socket.h>
#include <sys/types.h>

#include "util/util.h"

#define EGRESS_DEFAULT_ALLOW      "api.anthropic.com,api.openai.com,ampcode.com"
#define EGRESS_MAX_PER_LISTENER   32
#define EGRESS_MAX_PER_PROXY      256
#define EGRESS_HEAD_MAX           16384
#define EGRESS_HEAD_TIMEOUT_MS    10000
#define EGRESS_HELLO_TIMEOUT_MS   10000
#define EGRESS_CONNECT_TIMEOUT_MS 10000
#define EGRESS_IDLE_TIMEOUT_MS    (5 * 60 * 1000)
#define EGRESS_BUF_SIZE           65536
#define EGRESS_NAME_MAX           253 /* bytes of a normalised host name */

/* ---- policy ------------------------------------------------------------------------ */

struct egress_policy;

/* allow_csv: JANEBOT_EGRESS_ALLOW, e.g. "api.anthropic.com,*.example.com" (NULL/empty →
 * EGRESS_DEFAULT_ALLOW). test_hosts_csv: JANEBOT_EGRESS_TEST_HOSTS, "name=127.0.0.1:PORT,..."
 * or "name=[::1]:PORT" (NULL/empty → none): such a name, when also allowed, connects to the
 * mapped loopback address and port instead of resolving. Bad entries → -1 with JB_ECONFIG
 * naming the variable, the entry and what is allowed. *ret is owned by the caller. */
int egress_policy_new(const char *allow_csv, const char *test_hosts_csv, struct egress_policy **ret,
                      struct jb_err *err);
void egress_policy_free(struct egress_policy *p); /* accepts NULL */
int egress_policy_has_test_hosts(const struct egress_policy *p);

/* ---- pure checks (what the proxy decides with; exposed for tests) -------------------- */

/* Lowercase, strip one trailing dot; only [a-z0-9.-] (IDN must already be xn-- A-labels),
 * labels of 1..63 bytes not starting or ending with '-', at most 253 bytes in all.
 * 0 with out filled, or -1 with *why (static text, may be NULL) when host is not a name. */
int egress_normalize_host(const char *host, char out[EGRESS_NAME_MAX + 1], const char **why);
/* 1 when host (any case, trailing dot allowed) normalises to a name on the allowlist and is
 * not an IP literal; 0 otherwise. "*.example.com" matches sub.example.com and
 * a.b.example.com, never example.com itself nor evilexample.com. */
int egress_name_allowed(const struct egress_policy *p, const char *host);
/* 1 when host is an IP address in any spelling a resolver or URL parser would accept:
 * dotted quad, one integer (2130706433), octal or hex parts (0177.0.0.1, 0x7f.1), short
 * forms (127.1), any name whose last label is numeric, bare or bracketed IPv6 ([::1],
 * [::ffff:127.0.0.1]). */
int egress_is_ip_literal(const char *host);
/* 1 when the proxy must not connect to sa: anything but public unicast. IPv4 0/8, 10/8,
 * 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24,
 * 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4; IPv6 outside 2000::/3
 * (::, ::1, fc00::/7, fe80::/10, ff00::/8…), 2001::/23, 2001:db8::/32, 3fff::/20, and the
 * IPv4 inside ::ffff:0:0/96, 64:ff9b::/96 and 2002::/16 checked as IPv4. Other families
 * and NULL → 1. */
int egress_addr_forbidden(const struct sockaddr *sa);

/* ---- the proxy ----------------------------------------------------------------------- */

struct egress_proxy;
struct egress_listener;

/* p is borrowed and must outlive the proxy. *ret is owned by the caller. */
int egress_proxy_new(const struct egress_policy *p, struct egress_proxy **ret, struct jb_err *err);
/* Closes every listener still open (as egress_listener_close()) and frees px; listener
 * handles of px are invalid afterwards. Accepts NULL. */
void egress_proxy_free(struct egress_proxy *px);
/* Count requests (allowed, denied by policy, error) and bytes into m (borrowed; must
 * outlive px). Call before the first egress_listen(). */
void egress_proxy_set_metrics(struct egress_proxy *px, struct jb_metrics *m);

/* Listen on a new Unix socket at sock_path (a stale socket there is replaced; any other
 * file is an error). The socket is mode 0600, then chowned to owner_uid when owner_uid !=
 * (uid_t)-1 so an unprivileged sandbox uid can connect. Connections through it are
 * attributed to thread_key (copied) in logs and limits. *ret belongs to px; release it
 * with egress_listener_close() or egress_proxy_free(). */
int egress_listen(struct egress_proxy *px, const char *sock_path, const char *thread_key,
                  uid_t owner_uid, struct egress_listener **ret, struct jb_err *err);
/* The listener of l uses policy (borrowed; must outlive l) instead of the proxy's: a
 * channel's own allowlist. Call right after egress_listen(). */
void egress_listener_set_policy(struct egress_listener *l, const struct egress_policy *policy);

/* Egress approval. With an approver, a name that fails step 3 (after steps 1-2: never an IP
 * literal, a bad name or port) is not refused at once: the connection is held (no reply
 * yet) and the approver decides, blocking that connection's thread only. Steps 4-6 still
 * apply after an allow. One question per name at a time: other connections to it wait and
 * share a deny or an ALLOWED_THREAD (an ALLOWED_ONCE lets only the asking connection
 * through; a waiter then asks again); at most EGRESS_MAX_ASKS names wait per listener, and
 * past that a connection gets the 403 without a question. */
#define EGRESS_MAX_ASKS   3
#define EGRESS_MAX_DENIED 64 /* names remembered as denied per listener (then: asked again) */
enum egress_verdict {
    EGRESS_NOT_ASKED,     /* nobody to ask here: the usual "not on the allowlist" 403 */
    EGRESS_DENIED,        /* a deny, the timeout, a stop: a 403 with the reason */
    EGRESS_ALLOWED_ONCE,  /* this connection only */
    EGRESS_ALLOWED_THREAD /* the name is on the thread's own list now (or was already) */
};
struct egress_approve_q {
    const char *thread_key; /* the listener's */
    const char *name;       /* normalised, not an IP literal */
    unsigned port;
    int (*gone)(void *ud); /* 1 once the client left or the listener closes (then deny) */
    void *gone_ud;
};
/* Decides one held connection; blocks until decided. why (n bytes) gets the reason for a
 * deny, fit for the sandbox's 403 and the log (no secrets). Called from connection
 * threads, several at once (for different names). */
typedef enum egress_verdict egress_approve_fn(void *ud, const struct egress_approve_q *q, char *why,
                                              size_t n);
/* Set l's approver (ud borrowed; must outlive l). Call right after egress_listen(). */
void egress_listener_set_approver(struct egress_listener *l, egress_approve_fn *fn, void *ud);
/* Stops accepting, drops the listener's live connections, unlinks the socket and frees l;
 * returns once all of its threads are gone (a connection inside a DNS lookup finishes
 * that lookup first, within the resolver's timeout). Accepts NULL. */
void egress_listener_close(struct egress_listener *l);

/* ---- the hand-over (inside the sandbox) ------------------------------------------------- */

/* Give listen_fd (a TCP socket listening on 127.0.0.1 in the sandbox's own network) to the
 * host proxy behind the Unix socket unix_path: one marker byte with the descriptor
 * (SCM_RIGHTS). The proxy checks it and accepts the sandbox's connections on it from then
 * on, as it does those coming to unix_path itself; it takes one listener per socket.
 * Blocks until the proxy answers, at most 10 s. 0; or -1 with err saying why (the proxy's
 * refusal, or no answer). listen_fd stays the caller's: close it, the proxy has its own. */
int proxy_hand_over(int listen_fd, const char *unix_path, struct jb_err *err);

/* ---- the LLM API proxy (llm*.c) ------------------------------------------------------
 * Holds the real API keys; a sandbox gets, per exec, a scoped token ("jbt_" + 64 hex,
 * 256 random bits) that works only for that exec, for the provider API paths the agents
 * use. A local exec reaches the proxy on its own Unix socket (llm_session_open()); a
 * remote one (a Sprite VM) over TCP through a TLS terminator (llm_proxy_listen(),
 * llm_session_open_remote()), where the token alone says whose request it is; neither
 * kind of token works on the other's listener. The proxy checks the token (stored as its
 * sha256 only: revoked, expired and other sandboxes' tokens fail), swaps in the real key,
 * strips every other credential, streams the answer back unbuffered, and records the
 * tokens used. Request bodies (up to 32 MiB) are streamed to the upstream as it takes
 * them, never held whole. Limits: 64 requests at once per exec (more wait in the socket's
 * backlog until one ends), 512 TCP connections in all (more get a 503), 30 s to send a
 * request head, one request per connection. */

enum llm_provider { LLM_ANTHROPIC, LLM_OPENAI, LLM_AMP, LLM_NPROVIDERS };

#define LLM_TOKEN_LEN        68 /* "jbt_" + 64 hex */
#define LLM_BODY_MAX         ((size_t)32 << 20)
#define LLM_TOKEN_TTL_MS     (60 * 60 * 1000) /* renewed by use */
#define LLM_MAX_PER_LISTENER 64

struct llm_config {
    const char *key[LLM_NPROVIDERS];      /* real keys; NULL: provider not offered */
    const char *upstream[LLM_NPROVIDERS]; /* base URLs without a trailing '/' */
    const char *db_path;                  /* tokens and usage */
    long long user_daily_tokens;          /* 0: no cap */
};

/* The variables of a provider inside a sandbox, pointing at its own 127.0.0.1:4000. */
const char *llm_key_var(enum llm_provider p);  /* "ANTHROPIC_API_KEY", … */
const char *llm_base_var(enum llm_provider p); /* "ANTHROPIC_BASE_URL", … */
const char *llm_base_url(enum llm_provider p); /* "http://127.0.0.1:4000/anthropic", … */

struct llm_proxy;
/* cfg's strings are copied. *ret is the caller's; llm_proxy_free(). */
int llm_proxy_new(const struct llm_config *cfg, struct llm_proxy **ret, struct jb_err *err);
void llm_proxy_free(struct llm_proxy *px); /* accepts NULL */
int llm_proxy_offers(const struct llm_proxy *px, enum llm_provider p);
/* As egress_proxy_set_metrics(), for the LLM proxy; before its first session. */
void llm_proxy_set_metrics(struct llm_proxy *px, struct jb_metrics *m);

struct llm_session;
/* One sandbox exec: mint a token for thread_key (written to token, NUL-terminated) and
 * listen on sock_path (mode 0600, chowned to owner_uid unless (uid_t)-1). *ret belongs to
 * the caller until llm_session_close(). */
int llm_session_open(struct llm_proxy *px, const char *sock_path, const char *thread_key,
                     const char *user, const char *sandbox, uid_t owner_uid,
                     char token[LLM_TOKEN_LEN + 1], struct llm_session **ret, struct jb_err *err);
/* Listen on addr ("HOST:PORT", "[V6]:PORT"; port 0 picks one) for requests from remote
 * sandboxes. At most one listener per proxy; stopped by llm_proxy_free(). Not thread-safe
 * against itself: call once, at start-up. */
int llm_proxy_listen(struct llm_proxy *px, const char *addr, struct jb_err *err);
int llm_proxy_port(const struct llm_proxy *px); /* the bound port, 0 when not listening */
/* A session for one exec in a remote sandbox: mints a token bound to thread_key and
 * sandbox like llm_session_open(), but has no socket of its own: requests come through
 * the TCP listener at "/s/<sandbox>/<provider prefix>/...". sandbox: 1..63 of
 * [A-Za-z0-9._-] (it is a path segment). *ret is the caller's until llm_session_close(),
 * which unregisters it first, then revokes, drops its requests in flight and waits. */
int llm_session_open_remote(struct llm_proxy *px, const char *thread_key, const char *user,
                            const char *sandbox, char token[LLM_TOKEN_LEN + 1],
                            struct llm_session **ret, struct jb_err *err);
/* "<public_url>/s/<sandbox>" + the provider's path (e.g. "/anthropic", "/openai/v1",
 * "/amp"); trailing '/' of public_url dropped. Caller frees; NULL on no memory. */
char *llm_remote_base_url(const char *public_url, const char *sandbox, enum llm_provider p);
/* Why the proxy refused this exec's token since it opened ("revoked", "expired", "over
 * the daily budget"), or NULL. Safe from any thread. */
const char *llm_session_refused(struct llm_session *s);
/* What the exec's requests used so far, per model (a copy). */
void llm_session_usage(struct llm_session *s, struct jb_tally *ret);
/* ---- the approval endpoint (llm-approve.c) ----
 * POST /janebot/approve on a local sandbox's own http://127.0.0.1:4000, with its run
 * token as "Authorization: Bearer jbt_..." and a JSON body {"tool": NAME, "input": {...}}
 * (at most LLM_APPROVE_BODY_MAX bytes): the answer, once a person decided, is
 * {"decision": "allow_once"|"allow_thread"|"deny"|"not_required", "allowed": BOOL,
 *  "by": WHO, "reason": TEXT}. The session's thread and user say whose turn asks. */
#define LLM_APPROVE_PATH     "/janebot/approve"
#define LLM_APPROVE_BODY_MAX (64u << 10)
struct llm_approve_q {
    const char *thread_key, *user, *tool, *input_json;
    int (*gone)(void *ud); /* 1 once the agent hung up (the ask then ends as a deny) */
    void *gone_ud;
};
struct llm_approve_a {
    const char *answer; /* static: "allow_once", "allow_thread", "deny", "not_required" */
    int allowed;
    char who[64], reason[200];
};
/* Decides one ask; blocks until it is decided. */
typedef void llm_approve_fn(void *ud, const struct llm_approve_q *q, struct llm_approve_a *a);
/* Who decides (borrowed ud; must outlive px). Without one, every ask is denied. Call before
 * the first session. */
void llm_proxy_set_approver(struct llm_proxy *px, llm_approve_fn *fn, void *ud);
/* 1 when target (as sent) is the approval endpoint. */
int llm_is_approve_target(const char *target);

/* Revoke the token, stop listening, drop live requests, join; frees s (NULL is fine).
 * Close every session before llm_proxy_free(). */
void llm_session_close(struct llm_session *s);

#endif
