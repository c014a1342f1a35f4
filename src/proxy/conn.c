/* proxy/conn.c -- one egress connection, in its own thread: read the request head, decide
 * (sandbox-anchors 3.6 order: port, IP literal, name, allowlist, resolved addresses),
 * connect to the vetted address, then tunnel (CONNECT) or forward (absolute URI). Every
 * refusal gets a reply and exactly one log line; nothing from a header value is logged. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "proxy/proxy-int.h"

#define MAX_ADDRS 8

struct target {
    char name[EGRESS_NAME_MAX + 1];
    unsigned port;
    struct sockaddr_storage addr[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
    int n;
};

static const char *addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    return inet_ntop(sa->sa_family, a, buf, (socklen_t)n) ? buf : "?";
}

/* Reply status with body (a generic one when NULL), log the refusal once, linger. */
static void refuse(struct egress_conn *c, int status, const char *host, unsigned port,
                   const char *why, const char *body)
{
    char safe[80], dflt[600];
    if (host && *host) {
        px_sanitize(host, strlen(host), safe, sizeof safe);
        log_warn("egress %s: refused %s:%u: %d %s", c->l->key, safe, port, status, why);
    } else {
        log_warn("egress %s: refused a request: %d %s", c->l->key, status, why);
    }
    if (!body) {
        snprintf(dflt, sizeof dflt, "janebot egress %s: %s.%s\n",
                 status == 403 ? "policy" : "proxy", why,
                 status == 403 ? " Retrying another way will not work." : "");
        body = dflt;
    }
    px_respond(c->cfd, status, body);
    px_linger(c->cfd);
    jb_metrics_add(c->l->px->metrics, JB_M_PROXY_REQUESTS, "egress",
                   status == 403 ? "denied" : "error", 1);
}

static void head_failed(struct egress_conn *c, int e, size_t got)
{
    if (e == E2BIG)
        refuse(c, 431, NULL, 0, "request head over 16384 bytes", NULL);
    else if (e == ETIMEDOUT)
        refuse(c, 408, NULL, 0, "no complete request head within 10 s", NULL);
    else
        log_debug("egress %s: client left after %zu bytes of head", c->l->key, got);
}

/* The Host header of a forward request must name the URI's host and port. */
static int host_header_ok(const struct px_request *r, const char *name)
{
    char h[EGRESS_NAME_MAX + 1];
    if (!r->has_host || r->mode != PX_FORWARD) return 1;
    if (r->host.bracketed || egress_is_ip_literal(r->host.host)) return 0;
    if (egress_normalize_host(r->host.host, h, NULL) < 0) return 0;
    return strcmp(h, name) == 0 && r->host.port == r->auth.port;
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* "localhost" and "*.localhost" are loopback by definition (RFC 6761), whatever the
 * resolver says: refused before any lookup. */
static int is_localhost_name(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, "localhost") || (n > 10 && !strcmp(name + n - 10, ".localhost"));
}

static int resolve(struct egress_conn *c, struct target *t)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (is_localhost_name(t->name))
        return refuse(c, 403, t->name, t->port, "a localhost name is a loopback address", NULL), -1;
    int rc = getaddrinfo(t->name, NULL, &hints, &res);
    char why[400], ip[INET6_ADDRSTRLEN];
    if (rc != 0) {
        snprintf(why, sizeof why, "cannot resolve %s: %s", t->name, gai_strerror(rc));
        return refuse(c, 502, t->name, t->port, why, NULL), -1;
    }
    t->n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (egress_addr_forbidden(ai->ai_addr)) { /* any bad answer taints the name */
            snprintf(why, sizeof why, "%s resolves to a non-public address (%s)", t->name,
                     addr_str(ai->ai_addr, ip, sizeof ip));
            freeaddrinfo(res);
            return refuse(c, 403, t->name, t->port, why, NULL), -1;
        }
        if (t->n < MAX_ADDRS && ai->ai_addrlen <= sizeof t->addr[0]) {
            memcpy(&t->addr[t->n], ai->ai_addr, ai->ai_addrlen);
            t->len[t->n] = ai->ai_addrlen;
            set_port(&t->addr[t->n++], t->port);
        }
    }
    freeaddrinfo(res);
    if (t->n == 0) {
        snprintf(why, sizeof why, "%s has no usable address", t->name);
        return refuse(c, 502, t->name, t->port, why, NULL), -1;
    }
    return 0;
}

static int not_allowed(struct egress_conn *c, const char *name, unsigned port)
{
    char body[700];
    snprintf(body, sizeof body,
             "janebot egress policy: %s is not on the allowlist. An admin can add it to "
             "JANEBOT_EGRESS_ALLOW (for example JANEBOT_EGRESS_ALLOW=...,%s). Retrying another "
             "way will not work.\n",
             name, name);
    refuse(c, 403, name, port, "not on the allowlist", body);
    return -1;
}

/* Step 3 failed: with an approver, a person decides while the connection is held. 0 to go
 * on to step 4, or -1 after the refusal. */
static int ask_or_refuse(struct egress_conn *c, const char *name, unsigned port)
{
    char why[200], body[700];
    enum egress_verdict v = egress_ask(c, name, port, why, sizeof why);
    if (v == EGRESS_NOT_ASKED) return not_allowed(c, name, port);
    if (v == EGRESS_DENIED) {
        snprintf(body, sizeof body,
                 "janebot egress policy: %s is not on the allowlist and was not approved (%s). "
                 "Retrying another way will not work.\n",
                 name, why);
        char line[300];
        snprintf(line, sizeof line, "not on the allowlist and not approved: %s", why);
        refuse(c, 403, name, port, line, body);
        return -1;
    }
    log_info("egress %s: %s:%u approved (%s)", c->l->key, name, port,
             v == EGRESS_ALLOWED_ONCE ? "once" : "for this thread");
    return 0;
}

/* Steps 1-4: 0 with t filled (addresses vetted), or -1 after a refusal. */
static int decide(struct egress_conn *c, const struct px_request *r, struct target *t)
{
    /* The listener's policy is set by another thread (egress_listener_set_policy). */
    pthread_mutex_lock(&c->l->px->mu);
    const struct egress_policy *p = c->l->policy ? c->l->policy : c->l->px->policy;
    pthread_mutex_unlock(&c->l->px->mu);
    const char *host = r->auth.host, *why;
    char msg[400];
    t->port = r->auth.port;
    if (r->mode == PX_CONNECT && t->port != 443) {
        snprintf(msg, sizeof msg,
                 "CONNECT to port %u is not allowed: tunnels go to port 443 only, where the TLS "
                 "server name is checked. For plain HTTP send the request itself to the proxy "
                 "(GET http://host/path, as http_proxy does)",
                 t->port);
        return refuse(c, 403, host, t->port, msg, NULL), -1;
    }
    if (r->mode == PX_FORWARD && t->port != 80) {
        snprintf(msg, sizeof msg,
                 "port %u is not allowed for http:// requests (only 80; for https use CONNECT "
                 "to port 443, as https_proxy does)",
                 t->port);
        return refuse(c, 403, host, t->port, msg, NULL), -1;
    }
    if (r->auth.bracketed || egress_is_ip_literal(host))
        return refuse(c, 403, host, t->port,
                      "IP addresses are not allowed; use a domain name on the allowlist", NULL),
               -1;
    if (egress_normalize_host(host, t->name, &why) < 0) {
        snprintf(msg, sizeof msg, "not a valid host name: %s", why);
        return refuse(c, 403, host, t->port, msg, NULL), -1;
    }
    if (!host_header_ok(r, t->name))
        return refuse(c, 403, t->name, t->port, "Host header does not match the request URI", NULL),
               -1;
    if (!egress_name_allowed(p, t->name) && ask_or_refuse(c, t->name, t->port) < 0) return -1;
    socklen_t len;
    const struct sockaddr *mapped = egress_policy_test_addr(p, t->name, &len);
    if (!mapped) return resolve(c, t);
    memcpy(&t->addr[0], mapped, len); /* a test host: its mapped loopback port replaces ours */
    t->len[0] = len, t->n = 1;
    return 0;
}

/* Step 5: connect to a vetted address, in order, within one deadline. fd or -1. */
static int open_upstream(struct egress_conn *c, const struct target *t, int *ret_i)
{
    int64_t deadline = jb_mono_ms() + EGRESS_CONNECT_TIMEOUT_MS;
    int e = ETIMEDOUT;
    for (int i = 0; i < t->n && jb_mono_ms() < deadline; i++) {
        int fd = socket(t->addr[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (px_conn_set_fd2(c->pc, fd) < 0) return -1; /* the listener is closing */
        if (px_connect(fd, (const struct sockaddr *)&t->addr[i], t->len[i], deadline) == 0)
            return *ret_i = i, fd;
        e = errno;
        px_conn_close_fd2(c->pc);
    }
    char why[400];
    snprintf(why, sizeof why, "cannot connect to %s: %s", t->name, strerror(e));
    refuse(c, 502, t->name, t->port, why, NULL);
    return -1;
}

/* The alert a TLS library reports as "access denied": the agent reads a refusal, not a
 * network glitch. */
static const unsigned char tls_access_denied[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31};

static const char *hello_refusal(enum px_sni s)
{
    switch (s) {
    case PX_SNI_NOT_TLS:
        return "the first bytes are not a TLS ClientHello (tunnels carry TLS only)";
    case PX_SNI_NONE:
        return "the TLS ClientHello names no server (no SNI)";
    case PX_SNI_ECH:
        return "the TLS ClientHello is encrypted (ECH), which hides the server name";
    default:
        return "malformed or oversized TLS ClientHello, or one a server could read differently";
    }
}

/* The SNI is the allowed name itself: any ASCII case, and no trailing dot (RFC 6066 allows
 * none, and a front end may route "name." to another virtual host than "name"). */
static int sni_names(const char *sni, const char *name)
{
    char norm[EGRESS_NAME_MAX + 1];
    size_t n = strlen(sni);
    return n > 0 && sni[n - 1] != '.' && egress_normalize_host(sni, norm, NULL) == 0 &&
           strcmp(norm, name) == 0;
}

/* Step 6: nothing goes through until the first bytes are a complete ClientHello naming the
 * host the tunnel was allowed for; a client that does not send one in time is closed too.
 * 0 to go on, with *n the bytes in c->ab (the ClientHello and what followed it). */
static int hello_ok(struct egress_conn *c, const char *name, size_t *n)
{
    int64_t deadline = jb_mono_ms() + EGRESS_HELLO_TIMEOUT_MS;
    char sni[256], safe[80], why[200];
    size_t need;
    enum px_sni s;
    /* c->ba carries nothing before the splice starts: the reassembly scratch. */
    _Static_assert(sizeof c->ba >= PX_HELLO_MAX && sizeof c->ab >= PX_HELLO_MAX, "buffers");
    while ((s = px_sni_parse((unsigned char *)c->ab, *n, (unsigned char *)c->ba, &need, sni)) ==
           PX_SNI_MORE) {
        if (px_read_until(c->cfd, c->ab, sizeof c->ab, n, need, deadline) == 0) continue;
        if (errno == ETIMEDOUT)
            log_warn("egress %s: closed tunnel to %s: no complete TLS ClientHello within %d s",
                     c->l->key, name, EGRESS_HELLO_TIMEOUT_MS / 1000);
        else
            log_debug("egress %s: client left the tunnel to %s before its ClientHello", c->l->key,
                      name);
        return -1;
    }
    if (s == PX_SNI_FOUND && sni_names(sni, name)) return 0;
    if (s == PX_SNI_FOUND) {
        px_sanitize(sni, strlen(sni), safe, sizeof safe);
        snprintf(why, sizeof why, "the TLS server name is %s", safe);
    } else {
        snprintf(why, sizeof why, "%s", hello_refusal(s));
    }
    log_warn("egress %s: closed tunnel to %s: %s", c->l->key, name, why);
    if (s != PX_SNI_NOT_TLS) {
        px_send_all(c->cfd, tls_access_denied, sizeof tls_access_denied, jb_mono_ms() + 1000);
        px_linger(c->cfd);
    }
    return -1;
}

static void pump(struct egress_conn *c, int ufd, size_t pre, long long left, const char *what)
{
    struct px_dir ab = {.buf = c->ab, .cap = sizeof c->ab, .len = pre, .left = left};
    struct px_dir ba = {.buf = c->ba, .cap = sizeof c->ba, .left = -1};
    int rc = px_splice(c->cfd, ufd, &ab, &ba, EGRESS_IDLE_TIMEOUT_MS);
    struct jb_metrics *m = c->l->px->metrics;
    jb_metrics_add(m, JB_M_PROXY_REQUESTS, "egress", "allowed", 1);
    jb_metrics_add(m, JB_M_PROXY_BYTES, "egress", "upstream", (int64_t)ab.total);
    jb_metrics_add(m, JB_M_PROXY_BYTES, "egress", "downstream", (int64_t)ba.total);
    log_info("egress %s: %s done: %llu bytes out, %llu in%s", c->l->key, what, ab.total, ba.total,
             rc < 0 && errno == ETIMEDOUT ? " (idle timeout)" : "");
}

static void tunnel(struct egress_conn *c, const struct target *t, int ufd, size_t pre)
{
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (px_send_all(c->cfd, ok, sizeof ok - 1, jb_mono_ms() + EGRESS_HEAD_TIMEOUT_MS) < 0) return;
    if (hello_ok(c, t->name, &pre) < 0) return;
    pump(c, ufd, pre, -1, "tunnel");
}

/* r borrows from c->ab, so the new head is sent before the body bytes move down. */
static void forward(struct egress_conn *c, const struct px_request *r, const char *name, int ufd,
                    size_t hl, size_t pre)
{
    struct jb_buf head = JB_BUF_INIT(EGRESS_HEAD_MAX + 1024);
    struct jb_err err = {0};
    int rc = px_forward_head(r, name, &head, &err);
    if (rc == 0) rc = px_send_all(ufd, head.data, head.len, jb_mono_ms() + EGRESS_HEAD_TIMEOUT_MS);
    jb_buf_release(&head);
    if (rc < 0) return refuse(c, 502, r->auth.host, r->auth.port, "cannot send the request", NULL);
    long long left = r->head.clen < 0 ? 0 : r->head.clen;
    if ((long long)pre > left) pre = (size_t)left; /* bytes past the body are not forwarded */
    memmove(c->ab, c->ab + hl, pre);
    pump(c, ufd, pre, left - (long long)pre, "forward");
}

static void serve(struct egress_conn *c)
{
    size_t len, hl;
    if (px_read_head(c->cfd, c->ab, EGRESS_HEAD_MAX, jb_mono_ms() + EGRESS_HEAD_TIMEOUT_MS, &len,
                     &hl) < 0)
        return head_failed(c, errno, len);
    jb_auto(px_request_release) struct px_request r = {0};
    struct target t;
    int status, i;
    const char *why;
    if (px_parse_request(c->ab, hl, &r, &status, &why) < 0)
        return refuse(c, status, r.auth.host, r.auth.port, why, NULL);
    if (decide(c, &r, &t) < 0) return;
    int ufd = open_upstream(c, &t, &i);
    if (ufd < 0) return;
    char ip[INET6_ADDRSTRLEN];
    log_info("egress %s: %s %s:%u via %s", c->l->key, r.mode == PX_CONNECT ? "CONNECT" : "forward",
             t.name, r.auth.port, addr_str((const struct sockaddr *)&t.addr[i], ip, sizeof ip));
    if (r.mode == PX_FORWARD) return forward(c, &r, t.name, ufd, hl, len - hl);
    memmove(c->ab, c->ab + hl, len - hl);
    tunnel(c, &t, ufd, len - hl);
}

void egress_conn_serve(struct px_conn *pc, int fd, void *ud)
{
    struct egress_conn *c = malloc(sizeof *c); /* the buffers need no zeroing */
    if (!c) {
        log_warn("egress %s: refused a connection: out of memory",
                 ((struct egress_listener *)ud)->key);
        px_respond(fd, 503, "janebot egress proxy: out of memory; try again later.\n");
        px_linger(fd);
        return;
    }
    c->l = ud, c->pc = pc, c->cfd = fd;
    serve(c);
    free(c);
}
