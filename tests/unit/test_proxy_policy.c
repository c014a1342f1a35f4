/* tests/unit/test_proxy_policy.c -- proxy/: the policy's pure checks (names, IP literals,
 * forbidden addresses, configuration errors) and the HTTP parser. The proxy end to end is
 * in test_proxy.c, the TLS parser in test_proxy_sni.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"

/* ---- pure checks --------------------------------------------------------------------------- */

static struct egress_policy *policy(const char *allow, const char *tests)
{
    struct egress_policy *p = NULL;
    struct jb_err err = {0};
    cr_assert_eq(egress_policy_new(allow, tests, &p, &err), 0, "%s", err.msg);
    return p;
}

/* Next space-separated word of *s into w; 0 at the end. Keeps long test lists compact. */
static int next_word(const char **s, char w[300])
{
    while (**s == ' ')
        (*s)++;
    size_t n = strcspn(*s, " ");
    if (n == 0) return 0;
    snprintf(w, 300, "%.*s", (int)n, *s);
    *s += n;
    return 1;
}

Test(proxy_policy, allowlist_matches_on_label_boundaries)
{
    struct egress_policy *p = policy("github.com, *.wild.test,xn--bcher-kva.example", NULL);
    char w[300];
    for (const char *s = "github.com GITHUB.COM. GitHub.Com a.wild.test A.B.WILD.TEST. "
                         "XN--BCHER-KVA.EXAMPLE.";
         next_word(&s, w);)
        cr_expect(egress_name_allowed(p, w), "%s should be allowed", w);
    for (const char *s = "evilgithub.com github.com.evil.example wild.test evilwild.test "
                         "xn--gthub-n4a.com g\303\255thub.com github..com github.com.. . "
                         "-github.com api.github.com github.com:443 1.2.3.4 [::1]";
         next_word(&s, w);)
        cr_expect(!egress_name_allowed(p, w), "%s should be refused", w);
    cr_expect(!egress_name_allowed(p, ""));
    cr_expect(!egress_name_allowed(p, NULL));
    egress_policy_free(p);
}

Test(proxy_policy, default_allowlist_and_normalisation)
{
    struct egress_policy *p = policy(NULL, "");
    cr_expect(egress_name_allowed(p, "api.anthropic.com"));
    cr_expect(egress_name_allowed(p, "AMPCODE.COM."));
    cr_expect(!egress_name_allowed(p, "example.com"));
    cr_expect(!egress_policy_has_test_hosts(p));
    egress_policy_free(p);
    char out[EGRESS_NAME_MAX + 1], big[300];
    cr_expect_eq(egress_normalize_host("Api.Example.COM.", out, NULL), 0);
    cr_expect_str_eq(out, "api.example.com");
    memset(big, 'a', 64), big[64] = '\0';
    cr_expect_eq(egress_normalize_host(big, out, NULL), -1, "label over 63 bytes");
    for (int i = 0; i < 254; i++)
        big[i] = i % 2 ? '.' : 'a';
    big[253] = 'a', big[254] = '\0';
    cr_expect_eq(egress_normalize_host(big, out, NULL), -1, "name over 253 bytes");
    big[253] = '\0';
    cr_expect_eq(egress_normalize_host(big, out, NULL), 0, "253 bytes are fine");
    cr_expect_eq(egress_normalize_host("foo_bar.com", out, NULL), -1);
}

Test(proxy_policy, ip_literals_in_every_spelling)
{
    char w[300];
    for (const char *s = "127.0.0.1 2130706433 0x7f.1 0X7F.1 0177.0.0.1 127.1 [::1] "
                         "[::ffff:127.0.0.1] ::1 10.0.0.1 1.2.3.4. 0x foo.123 999.999.999.999";
         next_word(&s, w);)
        cr_expect(egress_is_ip_literal(w), "%s is an IP literal", w);
    for (const char *s = "example.com 1e100.net 123abc.com x1.com 0xzz.com a.b0x1";
         next_word(&s, w);)
        cr_expect(!egress_is_ip_literal(w), "%s is a name", w);
}

static int forbidden(const char *s)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        cr_assert_fail("bad test address %s", s);
    return egress_addr_forbidden((struct sockaddr *)&ss);
}

Test(proxy_policy, forbidden_addresses)
{
    char w[300];
    for (const char *s = "127.0.0.1 127.255.0.9 10.0.0.1 172.16.0.1 172.31.255.255 192.168.1.1 "
                         "169.254.169.254 169.254.170.2 100.64.0.1 100.127.255.255 0.0.0.0 "
                         "224.0.0.1 240.0.0.1 255.255.255.255 198.18.0.1 192.0.0.170 :: ::1 "
                         "fc00::1 fd00:ec2::254 fe80::1 ff02::1 ::ffff:10.0.0.1 ::ffff:127.0.0.1 "
                         "64:ff9b::a00:1 2002:0a00:0001:: 2001:db8::1 2001::1 ::127.0.0.1 fec0::1";
         next_word(&s, w);)
        cr_expect(forbidden(w), "%s must be forbidden", w);
    for (const char *s = "93.184.216.34 8.8.8.8 172.32.0.1 100.128.0.1 2606:2800:220:1::1 "
                         "::ffff:93.184.216.34 64:ff9b::5db8:d822 2002:5db8:d822::1 2a00:1450::1";
         next_word(&s, w);)
        cr_expect(!forbidden(w), "%s must be allowed", w);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    cr_expect(egress_addr_forbidden((struct sockaddr *)&un));
    cr_expect(egress_addr_forbidden(NULL));
}

Test(proxy_policy, bad_configuration_names_variable_and_entry)
{
    static const struct {
        const char *allow, *tests, *var, *entry;
    } cases[] = {
        {"ok.com,1.2.3.4", NULL, "JANEBOT_EGRESS_ALLOW", "1.2.3.4"},
        {"*.com", NULL, "JANEBOT_EGRESS_ALLOW", "*.com"},
        {"exa mple.com", NULL, "JANEBOT_EGRESS_ALLOW", "exa mple.com"},
        {"foo_bar.com", NULL, "JANEBOT_EGRESS_ALLOW", "foo_bar.com"},
        {"*", NULL, "JANEBOT_EGRESS_ALLOW", "*"},
        {"b\303\274cher.de", NULL, "JANEBOT_EGRESS_ALLOW", "cher.de"},
        {",", NULL, "JANEBOT_EGRESS_ALLOW", "no domain"},
        {"a.test", "a.test=10.0.0.1:80", "JANEBOT_EGRESS_TEST_HOSTS", "a.test=10.0.0.1:80"},
        {"a.test", "a.test=127.0.0.1", "JANEBOT_EGRESS_TEST_HOSTS", "a.test=127.0.0.1"},
        {"a.test", "a.test=127.0.0.1:0", "JANEBOT_EGRESS_TEST_HOSTS", ":0"},
        {"a.test", "a.test=127.0.0.1:99999", "JANEBOT_EGRESS_TEST_HOSTS", "99999"},
        {"a.test", "a.test=[2001:db8::1]:80", "JANEBOT_EGRESS_TEST_HOSTS", "2001:db8"},
        {"a.test", "noequals", "JANEBOT_EGRESS_TEST_HOSTS", "noequals"},
        {"a.test", "1.2.3.4=127.0.0.1:80", "JANEBOT_EGRESS_TEST_HOSTS", "1.2.3.4"},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(cases); i++) {
        struct egress_policy *p = NULL;
        struct jb_err err = {0};
        cr_expect_eq(egress_policy_new(cases[i].allow, cases[i].tests, &p, &err), -1, "%zu", i);
        cr_expect_null(p);
        cr_expect_eq(err.code, JB_ECONFIG, "%zu: %s", i, err.msg);
        cr_expect(strstr(err.msg, cases[i].var) && strstr(err.msg, cases[i].entry), "%s", err.msg);
    }
    struct egress_policy *p = policy("a.test", " a.test=127.0.0.1:8080 , b.test=[::1]:9 ");
    cr_expect(egress_policy_has_test_hosts(p));
    egress_policy_free(p);
}

/* ---- parsers -------------------------------------------------------------------------------- */

Test(proxy_http, authority_is_parsed_strictly)
{
    struct px_authority a;
    const char *why;
    cr_assert_eq(px_parse_authority("[::1]:443", 9, 0, &a, &why), 0);
    cr_expect(a.bracketed && a.port == 443 && strcmp(a.host, "::1") == 0);
    cr_assert_eq(px_parse_authority("Example.com", 11, 80, &a, &why), 0);
    cr_expect_eq(a.port, 80);
    char w[300];
    for (const char *s = "a:b:443 user@host:443 host%2e.com:443 host: host:0 host:65536 host:+443 "
                         "[::1 [::1]x host:4a :443 h/x:443 h\\x:443 [a]b]:1 [a[b]:1";
         next_word(&s, w);)
        cr_expect_eq(px_parse_authority(w, strlen(w), 80, &a, &why), -1, "%s", w);
    cr_expect_eq(px_parse_authority("ho st:443", 9, 80, &a, &why), -1);
    cr_expect_eq(px_parse_authority("", 0, 80, &a, &why), -1);
    cr_expect_eq(px_parse_authority("host", 4, 0, &a, &why), -1, "CONNECT needs a port");
}

/* r: zeroed or parsed before; what it held is released first. */
static int parse(const char *head, struct px_request *r, int *status)
{
    const char *why;
    px_request_release(r);
    return px_parse_request(head, strlen(head), r, status, &why);
}

Test(proxy_http, request_heads)
{
    struct px_request r = {0};
    int st;
    cr_assert_eq(parse("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", &r, &st), 0);
    cr_expect(r.mode == PX_CONNECT && r.auth.port == 443);
    const char *bad[] = {
        "GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a/ HTTP/1.1\n\r\n",
        "GET http://a/ HTTP/2\r\n\r\n",
        "GET  http://a/ HTTP/1.1\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\n X: folded\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nX : y\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET https://a/ HTTP/1.1\r\n\r\n",
        "GET http://u@a/ HTTP/1.1\r\n\r\n",
        "CONNECT a.test HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
        "GET http://a/#f HTTP/1.1\r\n\r\n",
        "GET http://a\\b/ HTTP/1.1\r\n\r\n",
        "GET http://a/x\\..\\y HTTP/1.1\r\n\r\n",
        "GET http://a:0/ HTTP/1.1\r\n\r\n",
        "GET http://a:/ HTTP/1.1\r\n\r\n",
        "GET http:///x HTTP/1.1\r\n\r\n",
        "GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n\r\n",
        "GET http://a%2e.test/ HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        cr_expect_eq(parse(bad[i], &r, &st), -1, "%s", bad[i]);
        cr_expect_eq(st, 400, "%s", bad[i]);
    }
    cr_expect_eq(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r, &st),
                 -1);
    cr_expect_eq(st, 411);
    px_request_release(&r);
}

/* The why a client gets for a refused target. */
static const char *refusal(const char *head)
{
    struct px_request r = {0};
    int st;
    const char *why = NULL;
    cr_expect_eq(px_parse_request(head, strlen(head), &r, &st, &why), -1, "%s", head);
    px_request_release(&r);
    return why ? why : "";
}

Test(proxy_http, forward_targets_are_taken_as_written)
{
    struct px_request r = {0};
    int st;
    cr_assert_eq(parse("GET http://a.test/p/../q/./%2e%2E//r?x=../y HTTP/1.1\r\n\r\n", &r, &st), 0);
    cr_expect_str_eq(r.path, "/p/../q/./%2e%2E//r?x=../y",
                     "no dot segment removed, nothing decoded");
    cr_expect(r.auth.port == 80 && !r.auth.bracketed && !strcmp(r.auth.host, "a.test"));
    cr_assert_eq(parse("GET http://[::1]:8080?q HTTP/1.1\r\n\r\n", &r, &st), 0);
    cr_expect(r.auth.bracketed && r.auth.port == 8080 && !strcmp(r.auth.host, "::1"));
    cr_expect_str_eq(r.path, "/?q");
    px_request_release(&r);
    cr_expect_str_eq(refusal("GET http://u@a/ HTTP/1.1\r\n\r\n"), "userinfo is not allowed");
    cr_expect_str_eq(refusal("GET http://a/b#f HTTP/1.1\r\n\r\n"),
                     "fragment in the request target");
    cr_expect_str_eq(refusal("GET http://a:65536/ HTTP/1.1\r\n\r\n"), "bad port");
    cr_expect_str_eq(refusal("GET http://a/x\\y HTTP/1.1\r\n\r\n"), "backslash in the URL");
}

Test(proxy_http, forward_head_is_rewritten)
{
    struct px_request r = {0};
    int st;
    const char *h = "GET http://a.test:8080?q=1 HTTP/1.1\r\nProxy-Authorization: Basic eA==\r\n"
                    "Connection: keep-alive\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n";
    cr_assert_eq(parse(h, &r, &st), 0);
    struct jb_buf out = JB_BUF_INIT(4096);
    struct jb_err err = {0};
    cr_assert_eq(px_forward_head(&r, "a.test", &out, &err), 0, "%s", err.msg);
    cr_expect_str_eq(out.data, "GET /?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nAccept: */*\r\n"
                               "Connection: close\r\n\r\n");
    /* The client's own Host, in another spelling, gives way to the checked name. */
    h = "GET http://A.Test./p HTTP/1.1\r\nAccept: */*\r\nhOST: A.Test.\r\n\r\n";
    cr_assert_eq(parse(h, &r, &st), 0);
    jb_buf_reset(&out);
    cr_assert_eq(px_forward_head(&r, "a.test", &out, &err), 0, "%s", err.msg);
    cr_expect_str_eq(out.data, "GET /p HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n"
                               "Connection: close\r\n\r\n");
    jb_buf_release(&out);
    px_request_release(&r);
}
