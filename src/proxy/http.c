/* proxy/http.c -- the proxies' HTTP/1.x: one strict reader of request heads for both the
 * egress proxy and the LLM proxy (px_parse_head()), the egress proxy's reading of its
 * targets (CONNECT and absolute-URI forms), the rewritten head sent to an origin, and error
 * replies.
 *
 * The tokens come from http_parser (libhttp-parser, the parser Node.js used before llhttp);
 * the rules it is lax about are added here, in this one place: whatever this proxy and an
 * origin's parser could read differently (bare LF, folded lines, a space before the colon,
 * two lengths, a length and a Transfer-Encoding, HTTP/0.9 or 2 request lines) is refused
 * rather than guessed at. Targets are split with jb_url_parse(), the URL reader janebot's
 * own HTTP client uses. */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy-int.h"

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Digits only, at most 15 of them; -1 otherwise. The input need not be NUL-terminated. */
static long long parse_num(const char *s, size_t n)
{
    if (n == 0 || n > 15) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ---- the request head ----------------------------------------------------------------- */

/* What http_parser does not check on its own: line ends are CRLF only (a bare CR or LF is
 * read differently by different parsers, which is how requests get smuggled past a proxy),
 * no NUL, and no folded (obs-fold) line, which the library joins to the header above. */
static const char *check_lines(const char *h, size_t n)
{
    if (n < 4 || memcmp(h + n - 4, "\r\n\r\n", 4) != 0)
        return "request head does not end in a blank line";
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '\0') return "NUL byte in the request head";
        if (h[i] == '\r' && (i + 1 == n || h[i + 1] != '\n')) return "bare CR in the request head";
        if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r')) return "bare LF in the request head";
        if (h[i] == '\n' && i + 1 < n && (h[i + 1] == ' ' || h[i + 1] == '\t'))
            return "folded header line";
    }
    return NULL;
}

struct head_reader {
    struct px_head *h;
    const char *why; /* our own refusal, taken before the library's */
    int in_value;    /* the last callback was a value: the next name starts a header */
    int ncl, nte;    /* Content-Length and Transfer-Encoding headers seen */
    int complete;
};

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct px_head *h = ((struct head_reader *)p->data)->h;
    if (!h->target) h->target = at;
    h->target_len = (size_t)(at + n - h->target); /* one buffer: pieces are contiguous */
    return 0;
}

/* A header's name, once the colon is reached: tokens only (the library takes a space in a
 * name as part of it), at most one length, and never a length with a Transfer-Encoding. */
static const char *check_name(struct head_reader *rd, const struct px_header *x)
{
    for (size_t i = 0; i < x->name_len; i++)
        if (!is_tchar((unsigned char)x->name[i])) return "bad header name";
    if (name_is(x->name, x->name_len, "content-length") && rd->ncl++)
        return "more than one Content-Length header";
    if (name_is(x->name, x->name_len, "transfer-encoding")) rd->nte++;
    if (rd->ncl && rd->nte) return "Transfer-Encoding together with Content-Length";
    return NULL;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    struct head_reader *rd = p->data;
    struct px_head *h = rd->h;
    if (h->nhdr == 0 || rd->in_value) {
        if (h->nhdr == PX_MAX_HEADERS) return rd->why = "too many header lines", -1;
        h->hdr[h->nhdr++] = (struct px_header){.name = at};
        rd->in_value = 0;
    }
    struct px_header *x = &h->hdr[h->nhdr - 1];
    x->name_len = (size_t)(at + n - x->name);
    /* Called at the colon (or at the end of the buffer, where the library fails anyway). */
    if (at + n < h->end && *(at + n) == ':' && (rd->why = check_name(rd, x))) return -1;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    struct head_reader *rd = p->data;
    struct px_header *x = &rd->h->hdr[rd->h->nhdr - 1];
    if (!rd->in_value) x->value = at;
    rd->in_value = 1;
    x->value_len = (size_t)(at + n - x->value);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    ((struct head_reader *)p->data)->complete = 1;
    return 0;
}

/* The values, once all are read: trailing blanks cut, no control character but HT, and
 * the one Content-Length digits only. */
static const char *check_values(struct px_head *h)
{
    for (size_t i = 0; i < h->nhdr; i++) {
        struct px_header *x = &h->hdr[i];
        if (!x->value) x->value = x->name + x->name_len + 1; /* "Name:" with no value */
        while (x->value_len &&
               (x->value[x->value_len - 1] == ' ' || x->value[x->value_len - 1] == '\t'))
            x->value_len--;
        for (size_t k = 0; k < x->value_len; k++)
            if (((unsigned char)x->value[k] < 0x20 && x->value[k] != '\t') || x->value[k] == 0x7f)
                return "control character in a header value";
        if (name_is(x->name, x->name_len, "content-length") &&
            (h->clen = parse_num(x->value, x->value_len)) < 0)
            return "bad Content-Length";
        if (name_is(x->name, x->name_len, "transfer-encoding")) h->has_te = 1;
    }
    return NULL;
}

/* The request line is exactly METHOD SP TARGET SP HTTP/1.x CRLF: the library lets more
 * blanks through, which another parser may read as part of the target. */
static const char *check_line(const char *head, const http_parser *p, struct px_head *h)
{
    if (p->http_major != 1 || p->http_minor > 1 || !h->target)
        return "unsupported HTTP version (HTTP/1.0 or HTTP/1.1 only)";
    h->minor = p->http_minor;
    h->method = http_method_str((enum http_method)p->method);
    h->connect = p->method == HTTP_CONNECT;
    size_t ml = strlen(h->method);
    const char *v = h->target + h->target_len;
    if (h->target != head + ml + 1 || head[ml] != ' ' || h->end - v < 11 ||
        memcmp(v, " HTTP/1.", 8) != 0 || memcmp(v + 9, "\r\n", 2) != 0)
        return "malformed request line";
    for (size_t i = 0; i < h->target_len; i++)
        if ((unsigned char)h->target[i] <= 0x20 || (unsigned char)h->target[i] >= 0x7f)
            return "control or non-ASCII byte in the request target";
    return NULL;
}

const char *px_parse_head(const char *head, size_t len, struct px_head *h)
{
    memset(h, 0, sizeof *h);
    h->clen = -1;
    h->end = head + len;
    const char *why = check_lines(head, len);
    if (why) return why;
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = on_url, s.on_header_field = on_field, s.on_header_value = on_value;
    s.on_headers_complete = on_headers_complete;
    struct head_reader rd = {.h = h};
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &rd;
    size_t used = http_parser_execute(&p, &s, head, len);
    if (rd.why) return rd.why;
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (e == HPE_INVALID_METHOD) return "bad method";
    if (e != HPE_OK) return http_errno_description(e);
    if (!rd.complete || used != len) return "malformed request head";
    if ((why = check_line(head, &p, h))) return why;
    return check_values(h);
}

/* ---- the egress proxy's targets ------------------------------------------------------- */

/* Characters no authority may hold; returns why, or NULL. */
static const char *authority_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f) return "whitespace or control character in the host";
        if (c == '%') return "percent-escapes are not allowed in the host";
        if (c == '@') return "userinfo is not allowed";
        if (strchr("/?#\\", c)) return "unexpected character in the host";
    }
    return NULL;
}

/* Split s into host and port text (*port NULL when there is none); brackets are removed
 * from an IPv6 host. */
static const char *split_authority(const char *s, size_t n, const char **host, size_t *hl,
                                   const char **port)
{
    const char *end = s + n, *colon;
    *port = NULL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return "unclosed '['";
        *host = s + 1, *hl = (size_t)(close - s - 1);
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon && *colon != ':') return "junk after ']'";
    } else {
        colon = memchr(s, ':', n);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return "more than one ':' (IPv6 needs brackets)";
        *host = s, *hl = colon ? (size_t)(colon - s) : n;
    }
    if (memchr(*host, '[', *hl) || memchr(*host, ']', *hl)) return "unexpected bracket";
    if (colon) *port = colon + 1;
    return NULL;
}

int px_parse_authority(const char *s, size_t n, unsigned default_port, struct px_authority *a,
                       const char **why)
{
    const char *host, *port;
    size_t hl;
    *why = "empty host";
    if (n == 0 || (*why = authority_chars(s, n))) return -1;
    if ((*why = split_authority(s, n, &host, &hl, &port))) return -1;
    if (hl == 0) return *why = "empty host", -1;
    if (hl >= sizeof a->host) return *why = "host name too long", -1;
    long long p = port ? parse_num(port, (size_t)(s + n - port)) : default_port;
    if (port && (p <= 0 || p > 65535)) return *why = "bad port", -1;
    if (p == 0) return *why = "missing port", -1;
    a->bracketed = s[0] == '[';
    a->port = (unsigned)p;
    memcpy(a->host, host, hl);
    a->host[hl] = '\0';
    return 0;
}

/* An absolute http:// URL, split by jb_url_parse(): r->auth from its host and port (then
 * held to px_parse_authority()'s rules), r->path its path and query as written, dot
 * segments and all (owned by r). NULL, or why. */
static const char *split_url(const char *t, size_t n, struct px_request *r)
{
    jb_auto(jb_url_release) struct jb_url u = {0};
    const char *why;
    if (memchr(t, '#', n)) return "fragment in the request target";
    if (jb_url_parse(t, n, &u, &why) < 0) return why; /* "userinfo is not allowed", "bad port"... */
    char auth[300];
    int al = snprintf(auth, sizeof auth, u.ipv6 ? "[%s]" : "%s", u.host);
    if (u.port_given) al += snprintf(auth + al, sizeof auth - (size_t)al, ":%u", u.port);
    if (px_parse_authority(auth, (size_t)al, 80, &r->auth, &why) < 0) return why;
    r->path = TAKE_PTR(u.target);
    return NULL;
}

static const char *parse_target(const char *t, size_t n, struct px_request *r)
{
    const char *why;
    if (r->mode == PX_CONNECT) return px_parse_authority(t, n, 0, &r->auth, &why) < 0 ? why : NULL;
    if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        return "https:// URLs must use CONNECT (set https_proxy)";
    if (n > 0 && t[0] == '/') return "not a proxy request (origin-form target); use http_proxy";
    if (n < 7 || strncasecmp(t, "http://", 7) != 0) return "request target is not http://host/...";
    return split_url(t, n, r);
}

int px_parse_request(const char *head, size_t len, struct px_request *r, int *status,
                     const char **why)
{
    memset(r, 0, sizeof *r);
    *status = 400;
    if ((*why = px_parse_head(head, len, &r->head))) return -1;
    const struct px_head *h = &r->head;
    r->mode = h->connect ? PX_CONNECT : PX_FORWARD;
    if ((*why = parse_target(h->target, h->target_len, r))) return -1;
    for (size_t i = 0; i < h->nhdr; i++) {
        const struct px_header *x = &h->hdr[i];
        if (!name_is(x->name, x->name_len, "host")) continue;
        if (r->has_host++) return *why = "more than one Host header", -1;
        if (r->mode == PX_FORWARD &&
            px_parse_authority(x->value, x->value_len, 80, &r->host, why) < 0)
            return -1;
    }
    if (r->mode == PX_FORWARD && h->has_te) {
        *status = 411;
        return *why = "chunked request bodies are not supported; send Content-Length", -1;
    }
    return 0;
}

void px_request_release(struct px_request *r)
{
    free(r->path);
    r->path = NULL;
}

static int hop_by_hop(const char *name, size_t n)
{
    static const char *const drop[] = {"connection", "keep-alive", "te",
                                       "trailer",    "upgrade",    "transfer-encoding"};
    if (n >= 6 && strncasecmp(name, "proxy-", 6) == 0) return 1; /* credentials for us */
    for (size_t i = 0; i < JB_ARRAY_LEN(drop); i++)
        if (name_is(name, n, drop[i])) return 1;
    return 0;
}

int px_forward_head(const struct px_request *r, const char *host, struct jb_buf *out,
                    struct jb_err *err)
{
    const struct px_head *h = &r->head;
    if (jb_buf_appendf(out, err, "%s %s HTTP/1.%d\r\n", h->method, r->path, h->minor) < 0)
        return -1;
    /* The name the policy checked, never the client's spelling of it ("NAME." may be
     * another virtual host to the origin). */
    if (jb_buf_appendf(out, err, "Host: %s", host) < 0) return -1;
    if (r->auth.port != 80 && jb_buf_appendf(out, err, ":%u", r->auth.port) < 0) return -1;
    if (jb_buf_append(out, "\r\n", 2, err) < 0) return -1;
    /* The headers as read, not as sent: the origin gets exactly what was checked. */
    for (size_t i = 0; i < h->nhdr; i++) {
        const struct px_header *x = &h->hdr[i];
        if (hop_by_hop(x->name, x->name_len) || name_is(x->name, x->name_len, "host")) continue;
        if (jb_buf_appendf(out, err, "%.*s: %.*s\r\n", (int)x->name_len, x->name, (int)x->value_len,
                           x->value) < 0)
            return -1;
    }
    return jb_buf_append(out, "Connection: close\r\n\r\n", 21, err);
}

void px_sanitize(const char *in, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outsz; i++)
        out[o++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
    out[o] = '\0';
}
