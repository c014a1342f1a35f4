/* proxy/http.c -- the proxy's HTTP/1.x: a strict parser for request heads (CONNECT and
 * absolute-URI forms), the rewritten head sent to an origin, and error replies. Strict on
 * purpose: whatever this parser and the origin's parser could read differently (bare LF,
 * folded lines, two Hosts, two lengths) is refused rather than guessed at. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy-int.h"

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

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

/* Line endings are CRLF only and no NUL anywhere: a bare CR or LF is read differently by
 * different parsers, which is how requests get smuggled past a proxy. */
static const char *check_bytes(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '\0') return "NUL byte in the request head";
        if (h[i] == '\r' && (i + 1 == n || h[i + 1] != '\n')) return "bare CR in the request head";
        if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r')) return "bare LF in the request head";
    }
    return NULL;
}

static const char *parse_target(const char *t, size_t n, struct px_request *r)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return "control or non-ASCII byte in the request target";
    const char *why;
    if (r->mode == PX_CONNECT) return px_parse_authority(t, n, 0, &r->auth, &why) < 0 ? why : NULL;
    if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        return "https:// URLs must use CONNECT (set https_proxy)";
    if (n > 0 && t[0] == '/') return "not a proxy request (origin-form target); use http_proxy";
    if (n < 7 || strncasecmp(t, "http://", 7) != 0) return "request target is not http://host/...";
    const char *a = t + 7, *end = t + n;
    size_t al = 0; /* the authority ends at the path or the query */
    while (a + al < end && a[al] != '/' && a[al] != '?')
        al++;
    if (px_parse_authority(a, al, 80, &r->auth, &why) < 0) return why;
    r->path = a + al, r->path_len = (size_t)(end - r->path);
    if (memchr(r->path, '#', r->path_len)) return "fragment in the request target";
    return NULL;
}

static const char *parse_line(const char *l, size_t n, struct px_request *r)
{
    const char *sp1 = memchr(l, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1)) : NULL;
    if (!sp2 || memchr(sp2 + 1, ' ', (size_t)(l + n - sp2 - 1))) return "malformed request line";
    r->method = l, r->method_len = (size_t)(sp1 - l);
    if (r->method_len == 0 || r->method_len > 20) return "bad method";
    for (size_t i = 0; i < r->method_len; i++)
        if (!is_tchar((unsigned char)l[i])) return "bad method";
    const char *v = sp2 + 1;
    size_t vl = (size_t)(l + n - v);
    if (vl != 8 || (memcmp(v, "HTTP/1.1", 8) != 0 && memcmp(v, "HTTP/1.0", 8) != 0))
        return "unsupported HTTP version (HTTP/1.0 or HTTP/1.1 only)";
    r->minor = v[7] - '0';
    r->mode = r->method_len == 7 && memcmp(l, "CONNECT", 7) == 0 ? PX_CONNECT : PX_FORWARD;
    return parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), r);
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* One header line's syntax: a token name right before the colon (no space, so nothing can
 * read it as another name), not folded, no control character in the value. */
static const char *header_syntax(const char *l, size_t n)
{
    if (n && (l[0] == ' ' || l[0] == '\t')) return "folded header line";
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l) return "malformed header line";
    for (const char *p = l; p < colon; p++)
        if (!is_tchar((unsigned char)*p)) return "bad header name";
    for (const char *p = colon + 1; p < l + n; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return "control character in a header value";
    return NULL;
}

static const char *parse_header(const char *l, size_t n, struct px_request *r)
{
    const char *why = header_syntax(l, n);
    if (why) return why;
    const char *colon = memchr(l, ':', n);
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1, *end = l + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (name_is(l, nl, "host")) {
        if (r->has_host++) return "more than one Host header";
        if (r->mode == PX_FORWARD && px_parse_authority(v, vl, 80, &r->host, &why) < 0) return why;
    } else if (name_is(l, nl, "content-length")) {
        long long cl = parse_num(v, vl);
        if (cl < 0) return "bad Content-Length";
        if (r->clen >= 0 && r->clen != cl) return "conflicting Content-Length headers";
        r->clen = cl;
    } else if (name_is(l, nl, "transfer-encoding")) {
        r->chunked = 1;
    }
    return NULL;
}

const char *px_check_head(const char *head, size_t len)
{
    if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
        return "request head does not end in a blank line";
    const char *why = check_bytes(head, len);
    const char *l = (const char *)memmem(head, len, "\r\n", 2) + 2, *end = head + len - 2;
    while (!why && l < end) {
        const char *e = memmem(l, (size_t)(end - l), "\r\n", 2);
        why = header_syntax(l, (size_t)(e - l));
        l = e + 2;
    }
    return why;
}

int px_parse_request(const char *head, size_t len, struct px_request *r, int *status,
                     const char **why)
{
    memset(r, 0, sizeof *r);
    r->clen = -1;
    *status = 400;
    *why = "request head does not end in a blank line";
    if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) return -1;
    if ((*why = check_bytes(head, len))) return -1;
    const char *eol = memmem(head, len, "\r\n", 2), *end = head + len - 2;
    if ((*why = parse_line(head, (size_t)(eol - head), r))) return -1;
    r->hdrs = eol + 2, r->hdrs_len = (size_t)(end - r->hdrs);
    for (const char *l = r->hdrs; l < end;) {
        const char *e = memmem(l, (size_t)(end - l), "\r\n", 2);
        if ((*why = parse_header(l, (size_t)(e - l), r))) return -1;
        l = e + 2;
    }
    if (r->mode == PX_FORWARD && r->chunked) {
        *status = 411;
        return *why = "chunked request bodies are not supported; send Content-Length", -1;
    }
    return 0;
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
    const char *slash = r->path_len == 0 || r->path[0] == '?' ? "/" : "";
    if (jb_buf_appendf(out, err, "%.*s %s%.*s HTTP/1.%d\r\n", (int)r->method_len, r->method, slash,
                       (int)r->path_len, r->path, r->minor) < 0)
        return -1;
    /* The name the policy checked, never the client's spelling of it ("NAME." may be
     * another virtual host to the origin). */
    if (jb_buf_appendf(out, err, "Host: %s", host) < 0) return -1;
    if (r->auth.port != 80 && jb_buf_appendf(out, err, ":%u", r->auth.port) < 0) return -1;
    if (jb_buf_append(out, "\r\n", 2, err) < 0) return -1;
    const char *end = r->hdrs + r->hdrs_len;
    for (const char *l = r->hdrs; l < end;) {
        const char *e = memmem(l, (size_t)(end - l), "\r\n", 2) + 2;
        size_t nl = (size_t)((const char *)memchr(l, ':', (size_t)(e - l)) - l);
        if (!hop_by_hop(l, nl) && !name_is(l, nl, "host") &&
            jb_buf_append(out, l, (size_t)(e - l), err) < 0)
            return -1;
        l = e;
    }
    return jb_buf_append(out, "Connection: close\r\n\r\n", 21, err);
}

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    }
    return "Error";
}

void px_respond(int fd, int status, const char *body)
{
    char msg[2048];
    size_t bl = body ? strlen(body) : 0;
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, reason(status), bl, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof msg) /* never cut a reply short of its length */
        n = snprintf(msg, sizeof msg, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", status,
                     reason(status));
    px_send_all(fd, msg, (size_t)n, jb_mono_ms() + 5000);
}

void px_sanitize(const char *in, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outsz; i++)
        out[o++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
    out[o] = '\0';
}
