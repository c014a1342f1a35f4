/* tests/unit/test_http_head.c -- the one request-head parser of both proxies
 * (px_parse_head(), proxy/http.c). Each rule the library alone is lax about has a case
 * here that a lax parser passes: bare LF, folded lines, a space before the colon, two
 * lengths (equal ones too), a length with a Transfer-Encoding, other versions. */
#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy-int.h"

static const char *parse(const char *head, struct px_head *h)
{
    return px_parse_head(head, strlen(head), h);
}

static const struct px_header *find(const struct px_head *h, const char *name)
{
    for (size_t i = 0; i < h->nhdr; i++)
        if (strlen(name) == h->hdr[i].name_len &&
            !strncasecmp(h->hdr[i].name, name, h->hdr[i].name_len))
            return &h->hdr[i];
    return NULL;
}

static void expect_refused(const char *head, const char *why_part)
{
    struct px_head h;
    const char *why = parse(head, &h);
    cr_expect_not_null(why, "passed: %s", head);
    if (why) cr_expect(strcasestr(why, why_part), "%s: %s (wanted %s)", head, why, why_part);
}

Test(http_head, a_good_head_is_read)
{
    struct px_head h;
    const char *head = "POST /x?y=1 HTTP/1.1\r\nHost: a\r\nX-A:\tv  w\t\r\nX-B:\r\n"
                       "Content-Length: 12\r\n\r\n";
    cr_assert_null(parse(head, &h));
    cr_expect_str_eq(h.method, "POST");
    cr_expect(h.target_len == 6 && memcmp(h.target, "/x?y=1", 6) == 0);
    cr_expect_eq(h.minor, 1);
    cr_expect_eq(h.clen, 12);
    cr_expect_eq(h.has_te, 0);
    cr_assert_eq(h.nhdr, 4);
    const struct px_header *x = find(&h, "x-a");
    cr_assert_not_null(x);
    cr_expect(x->value_len == 4 && memcmp(x->value, "v  w", 4) == 0, "%.*s", (int)x->value_len,
              x->value);
    x = find(&h, "X-B");
    cr_assert_not_null(x);
    cr_expect_eq(x->value_len, 0);
    cr_assert_null(parse("CONNECT a.test:443 HTTP/1.0\r\nHost: a.test:443\r\n\r\n", &h));
    cr_expect(h.connect && h.minor == 0 && h.clen == -1);
    cr_assert_null(parse("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h));
    cr_expect(h.has_te && h.clen == -1);
}

Test(http_head, bare_line_ends_are_refused)
{
    expect_refused("GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF");
    expect_refused("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF");
    expect_refused("GET / HTTP/1.1\r\nX-A: v\rX-B: w\r\n\r\n", "bare CR");
    static const char nul[] = "POST /x HTTP/1.1\r\nX-A: v\0w\r\n\r\n";
    struct px_head h;
    const char *why = px_parse_head(nul, sizeof nul - 1, &h);
    cr_expect(why && strstr(why, "NUL"), "%s", why ? why : "passed");
    expect_refused("POST /x HTTP/1.1\r\nX-A: v\r\n", "blank line");
}

Test(http_head, folded_lines_are_refused)
{
    expect_refused("GET / HTTP/1.1\r\nX-A: v\r\n folded\r\nHost: a\r\n\r\n", "folded");
    expect_refused("GET / HTTP/1.1\r\nX-A: v\r\n\tX-B: w\r\n\r\n", "folded");
    expect_refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", "folded");
}

Test(http_head, one_content_length_only)
{
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                   "more than one Content-Length");
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\n",
                   "more than one Content-Length");
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", "Content-Length");
    expect_refused("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", "Content-Length");
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", "Content-Length");
}

Test(http_head, transfer_encoding_with_a_length_is_refused)
{
    const char *why = "Transfer-Encoding together with Content-Length";
    expect_refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                   why);
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                   why);
    expect_refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n", why);
}

Test(http_head, header_names_are_tokens)
{
    /* The library takes "Content-Length " as a name: another parser reads a length. */
    expect_refused("POST / HTTP/1.1\r\nContent-Length : 3\r\n\r\n", "bad header name");
    expect_refused("POST /x HTTP/1.1\r\nX-A\t: v\r\n\r\n", "header");
    expect_refused("POST /x HTTP/1.1\r\nX(A): v\r\n\r\n", "header");
    expect_refused("POST /x HTTP/1.1\r\n: v\r\n\r\n", "header");
    expect_refused("POST /x HTTP/1.1\r\nno colon\r\n\r\n", "header");
    expect_refused("POST /x HTTP/1.1\r\nX-\xc3\xa9: v\r\n\r\n", "header");
    expect_refused("POST /x HTTP/1.1\r\nX-A: v\x01\r\n\r\n", "");
    expect_refused("POST /x HTTP/1.1\r\nX-A: v\x7f\r\n\r\n", "");
}

Test(http_head, only_http_1_0_and_1_1)
{
    expect_refused("GET /\r\n\r\n", "version"); /* HTTP/0.9 */
    expect_refused("GET / HTTP/2.0\r\n\r\n", "version");
    expect_refused("GET / HTTP/1.2\r\n\r\n", "version");
    expect_refused("GET  / HTTP/1.1\r\n\r\n", "request line");
    expect_refused("GET /  HTTP/1.1\r\n\r\n", "request line");
    expect_refused("GET / HTTP/1.1 \r\n\r\n", "");
    expect_refused("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "non-ASCII");
    expect_refused("FOO / HTTP/1.1\r\n\r\n", "method");
    expect_refused("get / HTTP/1.1\r\n\r\n", "method");
}

Test(http_head, at_most_a_hundred_lines)
{
    char head[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < PX_MAX_HEADERS; i++)
        strcat(head, "X: y\r\n");
    strcat(head, "\r\n");
    struct px_head h;
    cr_expect_null(parse(head, &h));
    strcpy(head + strlen(head) - 2, "X: y\r\n\r\n");
    expect_refused(head, "too many header lines");
}
