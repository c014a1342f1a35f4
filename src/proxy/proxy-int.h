/* proxy/proxy-int.h -- private to src/proxy: the proxy's structures and the socket, HTTP
 * and TLS helpers its files share. Not part of the public interface. */
#ifndef JB_PROXY_INT_H
#define JB_PROXY_INT_H

#include <pthread.h>
#include <stdint.h>

#include "proxy/proxy.h"

/* ---- policy.c ---------------------------------------------------------------------- */

/* The loopback address a test host maps to (port included), or NULL. name normalised. */
const struct sockaddr *egress_policy_test_addr(const struct egress_policy *p, const char *name,
                                               socklen_t *ret_len);

/* ---- io.c: sockets with deadlines (jb_mono_ms() values) --------------------------------- */

/* One direction of a splice: bytes read from src, waiting in buf[off, off+len) for dst.
 * Callers fill buf, cap, len (bytes already read) and left; px_splice() owns the rest. */
struct px_dir {
    char *buf;
    size_t cap, off, len;
    long long left;           /* bytes still to read from src; -1: until EOF */
    int eof;                  /* 1: src gave EOF or an error; 2: left reached 0 (dst stays open) */
    int done;                 /* finished: flushed (or dst failed) */
    int failed;               /* dst would take no more: src may hold bytes nobody read */
    unsigned long long total; /* bytes dst took */
    int pipe[2];              /* px_splice(): src -> pipe -> dst in the kernel; -1: through buf */
    size_t piped;             /* bytes in the pipe, waiting for dst */
};
/* Copy a->b and b->a until both directions are done, starting with what the buffers
 * already hold. Once a buffer is empty its bytes move by splice(2) through a pipe, never
 * through user space (buf is the fallback where a descriptor cannot splice, or no pipe
 * can be had). Both descriptors are made non-blocking. EOF on one side half-closes the
 * other (shutdown SHUT_WR). 0 when both finished; -1 with errno ETIMEDOUT after idle_ms
 * without any event, or another errno on a poll failure. */
int px_splice(int a, int b, struct px_dir *ab, struct px_dir *ba, int idle_ms);
/* Read into buf until it holds "\r\n\r\n". 0 with *len (bytes read) and *head_len (up to
 * and including the blank line); -1 with errno E2BIG (cap reached), ETIMEDOUT, ECONNRESET
 * (peer closed first) or another errno. */
int px_read_head(int fd, char *buf, size_t cap, int64_t deadline, size_t *len, size_t *head_len);
/* Read until *len >= want (or cap). 0, or -1 with errno (ECONNRESET on EOF). */
int px_read_until(int fd, char *buf, size_t cap, size_t *len, size_t want, int64_t deadline);
int px_send_all(int fd, const void *p, size_t n, int64_t deadline); /* 0 or -1 (errno) */
/* Connect the non-blocking socket fd. 0 or -1 with errno (ETIMEDOUT at the deadline). */
int px_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline);
/* After an error reply: half-close and read what the peer still sends (bounded), so
 * closing does not reset the connection before the reply is read. Does not close fd. */
void px_linger(int fd);

/* ---- http.c ------------------------------------------------------------------------ */

/* One header line of a parsed head; the spans borrow from the head buffer. The value has
 * no leading or trailing blanks. */
struct px_header {
    const char *name, *value;
    size_t name_len, value_len;
};
#define PX_MAX_HEADERS 100
/* A request head as px_parse_head() read it; pointers borrow from the head buffer. */
struct px_head {
    const char *method; /* static text, e.g. "GET" */
    const char *target; /* as sent, not NUL-terminated */
    size_t target_len;
    int minor;   /* HTTP/1.<minor> */
    int connect; /* the method is CONNECT (target in authority form) */
    struct px_header hdr[PX_MAX_HEADERS];
    size_t nhdr;
    long long clen; /* the one Content-Length, -1 when absent */
    int has_te;     /* a Transfer-Encoding header was present (never with a length) */
    const char *end;
};
/* Read the request head head[0, len) (ends in the blank line): the one parser both proxies
 * use. Beyond the library's own checks it refuses bare CR or LF, NUL, folded lines, header
 * names that are not tokens (a space before the colon), more than one Content-Length (even
 * equal ones), Transfer-Encoding with Content-Length, control characters in values, other
 * versions than HTTP/1.0 and 1.1, control or non-ASCII bytes in the target, more than
 * PX_MAX_HEADERS lines. NULL when it holds, else why (static text). */
const char *px_parse_head(const char *head, size_t len, struct px_head *h);

struct px_authority {
    char host[256]; /* as sent, brackets removed; not normalised */
    unsigned port;
    int bracketed;
};
enum px_mode { PX_CONNECT, PX_FORWARD };
/* A request to the egress proxy. */
struct px_request {
    struct px_head head;
    enum px_mode mode;
    struct px_authority auth; /* where to: CONNECT's target, or the URL's host and port */
    char *path;               /* PX_FORWARD: origin-form target (path and query); owned */
    int has_host;
    struct px_authority host;
};
/* Strict authority: host[:port] or [v6][:port]; no userinfo, '%', whitespace or controls.
 * default_port 0: a port is required. 0, or -1 with *why. */
int px_parse_authority(const char *s, size_t n, unsigned default_port, struct px_authority *a,
                       const char **why);
/* Parse head[0, len) (ends in the blank line) with px_parse_head(), then its target
 * (http:// URLs split by jb_url_parse()) and Host. 0, or -1 with *status (400, 411) and *why.
 * Either way px_request_release(r) afterwards. */
int px_parse_request(const char *head, size_t len, struct px_request *r, int *status,
                     const char **why);
void px_request_release(struct px_request *r); /* r->path; r may be zeroed or parsed */
/* The request for the origin: origin-form line, Proxy-* and hop-by-hop headers dropped,
 * the client's Host replaced by host (the normalised name the policy checked),
 * "Connection: close". */
int px_forward_head(const struct px_request *r, const char *host, struct jb_buf *out,
                    struct jb_err *err);
/* Send a complete response with a text/plain body (NULL for none); best effort. */
void px_respond(int fd, int status, const char *body);
/* Copy at most n bytes of in for a log line: non-printables become '?', cut at outsz. */
void px_sanitize(const char *in, size_t n, char *out, size_t outsz);

/* ---- sni.c ------------------------------------------------------------------------- */

enum px_sni {
    PX_SNI_NOT_TLS, /* the first bytes are not a TLS handshake record */
    PX_SNI_NONE,    /* a ClientHello without server_name */
    PX_SNI_FOUND,   /* name copied out, as sent */
    PX_SNI_MORE,    /* not complete yet: read until *need bytes in all */
    PX_SNI_BAD,     /* malformed, too large, or readable two ways (see sni.c) */
    PX_SNI_ECH,     /* an encrypted ClientHello: the name that counts is hidden */
};
#define PX_HELLO_MAX 32768 /* bytes of records one ClientHello may take */
/* The ClientHello at the start of p[0, n), reassembled in hs (scratch of PX_HELLO_MAX
 * bytes) when it spans records. *need is at most PX_HELLO_MAX. */
enum px_sni px_sni_parse(const unsigned char *p, size_t n, unsigned char hs[PX_HELLO_MAX],
                         size_t *need, char out[256]);

/* ---- handoff.c: a sandbox's listener handed to the host --------------------------------- */

#define PX_HANDOFF_BYTE       '\0' /* first byte of a hand-over; no HTTP request starts so */
#define PX_HANDOFF_TIMEOUT_MS 10000
/* 1 when the first byte on fd (waited for up to PX_HANDOFF_TIMEOUT_MS, left unread) is
 * PX_HANDOFF_BYTE; 0 otherwise, the connection then being an ordinary one. */
int px_handoff_waiting(int fd);
/* Reads the hand-over on fd: the listener that came with it, the caller's to close, once
 * checked (a TCP socket listening on 127.0.0.1, not in the host's network namespace); or
 * -1 with n bytes of why saying what was wrong (anything that came is closed). */
int px_handoff_take(int fd, char *why, size_t n);

/* ---- pool.c: connection threads, for the proxies ----------------------------------------- */

/* All the groups of one proxy: its cap on live connections (0: none). cv: a connection of
 * any group finished. */
struct px_pool {
    pthread_mutex_t mu; /* every group's lists, counts and closing; connections' fds */
    pthread_cond_t cv;
    int nlive, max;
};
struct px_conn; /* one live connection (its thread, its descriptors) */
/* Runs in the connection's own thread. fd is the connection's: the pool closes it after
 * serve returns (do not close it here). */
typedef void px_serve_fn(struct px_conn *c, int fd, void *ud);
enum px_refusal { PX_STARTED, PX_GROUP_FULL, PX_POOL_FULL, PX_NO_THREAD, PX_CLOSING };
/* Answers a refused connection (fd still open; the accept loop closes it). */
typedef void px_refuse_fn(int fd, enum px_refusal why, void *ud);
/* One listener's connections: its cap (0: none) and, once listening, its accept thread. */
struct px_group {
    struct px_pool *pool;
    int max;
    int lfd, tcp, wake[2]; /* listening socket (not owned); a pipe that wakes the thread */
    int hold_when_full;    /* at the cap, leave new connections in lfd's backlog until a live
                            * one ends, instead of refusing them; set before listening */
    px_serve_fn *serve;
    px_refuse_fn *refuse;
    void *ud;
    int handoff;   /* set before listening: a connection may hand over a listener from
                    * the sandbox (handoff.c), accepted on like lfd from then on */
    char name[96]; /* for log lines */
    pthread_t thr;
    int accepting; /* thr runs */
    /* under pool->mu: */
    int nlive, closing;
    struct px_conn *live, *dead; /* dead: finished, waiting to be joined */
    int lfd2;                    /* the listener handed over (owned), or -1 */
};

/* A joinable (or detached) thread with a small stack; 0 or -1 with errno. */
int px_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached);
void px_pool_init(struct px_pool *p, int max);
void px_pool_destroy(struct px_pool *p); /* after every group is closed */
/* An empty group of p (its wake pipe made); px_group_close() it even when this fails. */
int px_group_init(struct px_group *g, struct px_pool *p, int max, struct jb_err *err);
/* Serve fd in a new thread of g: PX_STARTED, and fd is the pool's; or why not (a cap, the
 * group closing, no memory or thread), and fd stays the caller's (answer 503 and close).
 * Call it, px_reap() and px_group_listen()'s loop from one thread only. */
enum px_refusal px_start(struct px_group *g, int fd, px_serve_fn *serve, void *ud);
void px_reap(struct px_group *g); /* join and free g's finished connections */
/* Accept on lfd in a new thread of g until px_group_close(): px_start(g, fd, serve, ud)
 * each connection (TCP_NODELAY when tcp), refuse(fd, why, ud) and close the ones refused;
 * backs off when out of descriptors or memory; stops on an error of lfd itself. name goes
 * into log lines. */
int px_group_listen(struct px_group *g, int lfd, int tcp, const char *name, px_serve_fn *serve,
                    px_refuse_fn *refuse, void *ud, struct jb_err *err);
/* No new connections; shut every live one's descriptors down (a thread blocked on one
 * wakes), wait until all have finished and join them; close the wake pipe. lfd stays open
 * (the caller's). Safe on a group whose init failed. */
void px_group_close(struct px_group *g);
/* Register fd (the connection's second socket, e.g. upstream) so a group close wakes a
 * thread blocked on it too. -1 when the group is closing (fd is closed then). */
int px_conn_set_fd2(struct px_conn *c, int fd);
void px_conn_close_fd2(struct px_conn *c); /* close it now (e.g. after a failed connect) */

/* ---- egress.c / conn.c ------------------------------------------------------------- */

struct egress_conn {
    struct egress_listener *l;
    struct px_conn *pc;
    int cfd;                                       /* the client's socket (the pool's) */
    char ab[EGRESS_BUF_SIZE], ba[EGRESS_BUF_SIZE]; /* client->upstream, upstream->client */
};

struct egress_ask; /* a question about one name, in flight (egress-ask.c) */

struct egress_listener {
    struct egress_proxy *px;
    const struct egress_policy *policy; /* this listener's (a channel's additions), else NULL */
    egress_approve_fn *approve;         /* NULL: a name off the list is refused at once */
    void *approve_ud;
    struct egress_ask *asks; /* under px->mu */
    int nasks;
    /* "name:port" a person denied (or left unanswered) while this listener lives: refused
     * again without a question, so a retrying sandbox cannot flood the thread. Under px->mu;
     * at most EGRESS_MAX_DENIED. */
    struct jb_strv denied;
    char *path, *key;
    int fd; /* listening socket */
    struct px_group group;
    struct egress_listener *next;
};

struct egress_proxy {
    const struct egress_policy *policy;
    pthread_mutex_t mu;    /* listeners, each one's policy, approver and questions */
    pthread_cond_t ask_cv; /* (CLOCK_MONOTONIC) a question was decided */
    struct px_pool pool;
    struct egress_listener *listeners;
    struct jb_metrics *metrics; /* borrowed, or NULL */
};

/* Step 3 failed for name:port: ask the listener's approver, holding c (egress-ask.c).
 * EGRESS_NOT_ASKED when the listener has none; EGRESS_DENIED with why (for the 403 and
 * the log line) on a deny, the timeout, a stop, the client leaving, or too many names
 * waiting already. Never call it for an IP literal or a name that is not valid. */
enum egress_verdict egress_ask(struct egress_conn *c, const char *name, unsigned port, char *why,
                               size_t n);

/* Serve one client connection (conn.c); a px_serve_fn, ud the listener. */
void egress_conn_serve(struct px_conn *pc, int fd, void *ud);

#endif
