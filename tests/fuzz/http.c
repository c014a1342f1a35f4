/* tests/fuzz/http.c -- the proxies' request heads: px_parse_request() (the egress proxy:
 * px_parse_head(), the target, Host) and px_forward_head() of what it accepts; for the LLM
 * proxy, llm_read_request() and llm_route() reading the bytes from a socket as they would
 * come from a sandbox, then llm_path_check() and llm_presented_token(); and the request
 * line's target alone through jb_url_parse(), the input through jb_http_date(). */
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "proxy/llm-int.h"
#include "proxy/proxy-int.h"

static void egress_head(const char *head, size_t len)
{
    struct px_request r = {0};
    int status = 0;
    const char *why = NULL;
    if (px_parse_request(head, len, &r, &status, &why) == 0) {
        FUZZ_ASSERT(r.auth.host[0] && r.auth.port > 0 && r.auth.port < 65536);
        if (r.mode == PX_FORWARD) {
            struct jb_buf out = JB_BUF_INIT(1u << 20);
            struct jb_err err = {0};
            if (px_forward_head(&r, r.auth.host, &out, &err) == 0) {
                struct px_head h;
                FUZZ_ASSERT(out.len >= 4 && !memcmp(out.data + out.len - 4, "\r\n\r\n", 4));
                /* what goes to the origin is a head the proxy itself would accept, but for
                 * its own cap on lines, which the added Host and Connection may pass */
                const char *again = px_parse_head(out.data, out.len, &h);
                if (again && !strcmp(again, "too many header lines") &&
                    r.head.nhdr + 2 > PX_MAX_HEADERS)
                    again = NULL;
                if (again) fprintf(stderr, "fuzz: forwarded head refused: %s\n", again);
                FUZZ_ASSERT(again == NULL);
            }
            jb_buf_release(&out);
        }
    } else {
        FUZZ_ASSERT(why && (status == 400 || status == 411 || status == 414 || status == 501));
    }
    px_request_release(&r);
    char line[64];
    px_sanitize(head, len, line, sizeof line);
}

static void llm_head(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) abort();
    int sz = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (size && send(sv[0], data, size, MSG_DONTWAIT) != (ssize_t)size) abort();
    shutdown(sv[0], SHUT_WR); /* the sandbox sent all it will */
    struct llm_in in;
    if (llm_read_request(sv[1], &in) == 0 && llm_route(sv[1], in.target, &in) == 0) {
        llm_path_check(in.rq.provider, in.rq.method, in.rq.path);
        size_t n = 0;
        const char *tok = llm_presented_token(&in.rq, &n);
        if (tok) FUZZ_ASSERT(n <= strlen(tok));
    }
    llm_in_free(&in);
    close(sv[0]);
    close(sv[1]);
}

/* The target of the request line (the input when it has no blank) as jb_url_parse() reads
 * it: what it accepts keeps to its rules; then the same bytes as an HTTP date. */
static void url_and_date(const char *s, size_t n)
{
    const char *blank = memchr(s, ' ', n);
    if (blank) {
        n -= (size_t)(blank + 1 - s), s = blank + 1;
        if ((blank = memchr(s, ' ', n))) n = (size_t)(blank - s);
    }
    struct jb_url u;
    const char *why = NULL;
    if (jb_url_parse(s, n, &u, &why) == 0) {
        FUZZ_ASSERT(u.host[0] && u.port >= 1 && u.port <= 65535 && u.target[0] == '/');
        FUZZ_ASSERT(strlen(u.host) <= n && strlen(u.target) <= n + 1);
        for (const char *p = u.target; *p; p++)
            FUZZ_ASSERT(*p > 0x20 && *p < 0x7f && *p != '#' && *p != '\\');
    } else {
        FUZZ_ASSERT(why && !u.target);
    }
    jb_url_release(&u);
    char date[64];
    snprintf(date, sizeof date, "%.*s", (int)(n < sizeof date ? n : sizeof date - 1), s);
    time_t t = jb_http_date(date);
    FUZZ_ASSERT(t == -1 || t >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const uint8_t *end = size >= 4 ? memmem(data, size, "\r\n\r\n", 4) : NULL;
    if (end) egress_head((const char *)data, (size_t)(end - data) + 4);
    llm_head(data, size);
    url_and_date((const char *)data, size);
    return 0;
}
