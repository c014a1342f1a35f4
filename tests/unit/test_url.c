/* tests/unit/test_url.c -- util/url.c: the strict URL reader, origins, percent-encoding and
 * HTTP dates. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

/* url (n bytes) into u; 0 or -1, why filled on -1. */
static int parse_n(const char *url, size_t n, struct jb_url *u, const char **why)
{
    *why = NULL;
    int rc = jb_url_parse(url, n, u, why);
    if (rc == 0) cr_expect_null(*why, "%s: accepted, but why=%s", url, *why);
    return rc;
}

static int parse(const char *url, struct jb_url *u, const char **why)
{
    return parse_n(url, strlen(url), u, why);
}

static void expect_url(const char *url, int https, const char *host, int ipv6, unsigned port,
                       int port_given, const char *target)
{
    struct jb_url u;
    const char *why;
    cr_assert_eq(parse(url, &u, &why), 0, "%s: %s", url, why);
    cr_expect_eq(u.https, https, "%s", url);
    cr_expect_str_eq(u.host, host, "%s", url);
    cr_expect_eq(u.ipv6, ipv6, "%s", url);
    cr_expect_eq(u.port, port, "%s", url);
    cr_expect_eq(u.port_given, port_given, "%s", url);
    cr_expect_str_eq(u.target, target, "%s", url);
    jb_url_release(&u);
}

Test(url, accepted_urls_are_split_as_written)
{
    expect_url("http://[::1]:8080/x?y", 0, "::1", 1, 8080, 1, "/x?y");
    expect_url("HTTP://Example.com", 0, "Example.com", 0, 80, 0, "/");
    expect_url("https://h?q", 1, "h", 0, 443, 0, "/?q");
    expect_url("hTTpS://h:1/a/../b//c/%2e%2E", 1, "h", 0, 1, 1, "/a/../b//c/%2e%2E");
    expect_url("http://h:65535", 0, "h", 0, 65535, 1, "/");
    expect_url("https://h:0443/", 1, "h", 0, 443, 1, "/");
    expect_url("http://a-b.c_d~e9./p?u=a@b&k=[v]", 0, "a-b.c_d~e9.", 0, 80, 0, "/p?u=a@b&k=[v]");
    expect_url("https://[2001:DB8::1]/", 1, "2001:DB8::1", 1, 443, 0, "/");
    expect_url("http://[::ffff:192.0.2.1]", 0, "::ffff:192.0.2.1", 1, 80, 0, "/");
    expect_url("http://192.0.2.1:81/", 0, "192.0.2.1", 0, 81, 1, "/");
}

Test(url, only_the_n_bytes_given_are_read)
{
    struct jb_url u;
    const char *why;
    cr_assert_eq(parse_n("http://h/abc#frag", 9, &u, &why), 0, "%s", why);
    cr_expect_str_eq(u.target, "/");
    jb_url_release(&u);
    cr_assert_eq(parse_n("https://host.example:44 trailing", 23, &u, &why), 0, "%s", why);
    cr_expect_str_eq(u.host, "host.example");
    cr_expect_eq(u.port, 44);
    jb_url_release(&u);
}

Test(url, a_host_of_255_bytes_is_the_longest)
{
    char url[300] = "http://";
    memset(url + 7, 'a', 255);
    strcpy(url + 7 + 255, "/x");
    struct jb_url u;
    const char *why;
    cr_assert_eq(parse(url, &u, &why), 0, "%s", why);
    cr_expect_eq(strlen(u.host), 255);
    jb_url_release(&u);
    memset(url + 7, 'a', 256);
    strcpy(url + 7 + 256, "/x");
    cr_expect_eq(parse(url, &u, &why), -1);
    cr_expect_str_eq(why, "host name too long");
    jb_url_release(&u);
}

/* url (n bytes) refused, with a reason containing want. */
static void expect_refused_n(const char *url, size_t n, const char *want)
{
    struct jb_url u;
    const char *why;
    cr_expect_eq(parse_n(url, n, &u, &why), -1, "%.*s: accepted", (int)n, url);
    cr_expect(why && strstr(why, want), "%.*s: why \"%s\", expected \"%s\"", (int)n, url,
              why ? why : "(null)", want);
    cr_expect_null(u.target, "%.*s: target left after -1", (int)n, url);
    jb_url_release(&u); /* safe after -1 */
    jb_url_release(&u); /* and on the zeroed struct it leaves */
}

static void expect_refused(const char *url, const char *want)
{
    expect_refused_n(url, strlen(url), want);
}

Test(url, other_schemes_are_refused)
{
    const char *bad[] = {"ftp://h/", "http:/h", "http:h",  "httpx://h",   "", "//h/x", "/x",
                         "ws://h",   "http",    "https:/", "h://http://x"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++)
        expect_refused(bad[i], "only http:// and https:// URLs");
}

Test(url, userinfo_and_fragments_are_refused)
{
    expect_refused("http://a@b/", "userinfo is not allowed");
    expect_refused("http://a:p@b", "userinfo is not allowed");
    expect_refused("https://@b?x", "userinfo is not allowed");
    expect_refused("http://b/#x", "fragment in the URL");
    expect_refused("http://b#x", "fragment in the URL");
    expect_refused("http://b/p?q#", "fragment in the URL");
}

Test(url, bad_ports_are_refused)
{
    const char *bad[] = {"http://h:0/",   "http://h:65536/", "http://h:/",
                         "http://h:",     "http://h:8a/",    "http://h:+80/",
                         "http://h:-1/",  "http://h:1:2/",   "http://h:99999999999999999999999/",
                         "https://h:00/", "http://[::1]:/"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++)
        expect_refused(bad[i], "bad port");
}

Test(url, spaces_controls_backslashes_and_non_ascii_bytes_are_refused)
{
    expect_refused("http://h/a b", "space in the URL");
    expect_refused("http://h /", "space in the URL");
    expect_refused("http://h/a\tb", "control character");
    expect_refused("http://h/a\r\nHost: x", "control character");
    expect_refused("http://h/\x7f", "control character");
    expect_refused("http://h\\x/", "backslash");
    expect_refused("http://h/a\\..\\b", "backslash");
    expect_refused("http://h/caf\xc3\xa9", "non-ASCII");
    expect_refused("http://\xd0\xb0.example/", "non-ASCII");
    expect_refused_n("http://h/a\0b", 12, "NUL byte");
    expect_refused_n("http://h\0.evil/", 15, "NUL byte");
}

Test(url, empty_and_malformed_hosts_are_refused)
{
    expect_refused("http:///x", "empty host");
    expect_refused("http://", "empty host");
    expect_refused("https://?q", "empty host");
    expect_refused("http://:80/", "empty host");
    expect_refused("http://[]/", "empty host");
    expect_refused("http://[::1/", "unclosed '['");
    expect_refused("http://[fe80::1%25eth0]/", "malformed IPv6");
    expect_refused("http://[::g]/", "malformed IPv6");
    expect_refused("http://[:::]/", "malformed IPv6");
    expect_refused("http://[1.2.3.4]/", "malformed IPv6");
    expect_refused("http://[::1]x/", "junk after the host");
    expect_refused("http://[::1]]/", "junk after the host");
    expect_refused("http://a[b]/", "bracket");
    expect_refused("http://::1/", "empty host");
    expect_refused("http://h%2e.example/", "bad character in the host");
    expect_refused("http://h!.example/", "bad character in the host");
    expect_refused("http://a,b/", "bad character in the host");
}

static int same_origin(const char *a, const char *b)
{
    struct jb_url ua, ub;
    const char *why;
    cr_assert_eq(parse(a, &ua, &why), 0, "%s: %s", a, why);
    cr_assert_eq(parse(b, &ub, &why), 0, "%s: %s", b, why);
    int same = jb_url_same_origin(&ua, &ub);
    cr_expect_eq(jb_url_same_origin(&ub, &ua), same, "not symmetric: %s %s", a, b);
    jb_url_release(&ua);
    jb_url_release(&ub);
    return same;
}

Test(url, same_origin_is_scheme_host_and_port)
{
    cr_expect(same_origin("https://Example.COM/a", "https://example.com:443/b?c"));
    cr_expect(same_origin("http://[::1]/", "HTTP://[::1]:80/x"));
    cr_expect(same_origin("http://h:8080/", "http://H:8080?x"));
    cr_expect_not(same_origin("http://h/", "https://h/"));
    cr_expect_not(same_origin("http://h:8080/", "http://h/"));
    cr_expect_not(same_origin("http://h:443/", "https://h/"));
    cr_expect_not(same_origin("http://a.example/", "http://b.example/"));
    cr_expect_not(same_origin("http://a.example/", "http://a.example.evil/"));
    cr_expect_not(same_origin("http://[::1]/", "http://[::2]/"));
}

Test(url, escape_keeps_only_unreserved_bytes)
{
    char *e = jb_url_escape("a b&c=d/\xc3\xa9~-._+%Z9", 18);
    cr_assert_not_null(e);
    cr_expect_str_eq(e, "a%20b%26c%3Dd%2F%C3%A9~-._%2B%25Z9");
    free(e);
    e = jb_url_escape("a\0b\n", 4);
    cr_expect_str_eq(e, "a%00b%0A");
    free(e);
    e = jb_url_escape("", 0);
    cr_expect_str_eq(e, "");
    free(e);
    e = jb_url_escape("xyz", 1);
    cr_expect_str_eq(e, "x");
    free(e);
}

Test(url, escape_of_every_byte)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    char *e = jb_url_escape(all, sizeof all);
    cr_assert_not_null(e);
    const char *p = e;
    for (int i = 0; i < 256; i++) {
        int plain = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') || (i >= '0' && i <= '9') ||
                    (i && strchr("-._~", i));
        char want[4];
        snprintf(want, sizeof want, plain ? "%c" : "%%%02X", i);
        cr_assert_eq(strncmp(p, want, strlen(want)), 0, "byte %d: \"%.3s\", want \"%s\"", i, p,
                     want);
        p += strlen(want);
    }
    cr_expect_eq(*p, '\0');
    free(e);
}

Test(url, http_dates_in_the_three_forms)
{
    time_t want = 784111777; /* 1994-11-06T08:49:37Z */
    cr_expect_eq(jb_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
    cr_expect_eq(jb_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
    cr_expect_eq(jb_http_date("Sun Nov  6 08:49:37 1994"), want);
    cr_expect_eq(jb_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    cr_expect_eq(jb_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
    cr_expect_eq(jb_http_date("Tuesday, 13-Jan-26 10:30:05 GMT"), 1768300205);
    cr_expect_eq(jb_http_date("Tue, 29 Feb 2028 23:59:59 GMT"), 1835481599);
    cr_expect_eq(jb_http_date("Wed Dec 31 23:59:59 2025"), 1767225599);
}

/* Every form of many times, as strftime writes them in the C locale, reads back the same. */
Test(url, http_dates_agree_with_strftime)
{
    int n = 0;
    for (time_t t = 0; t < (time_t)4102444800; t += 86400 * 5 + 3607, n++) { /* to 2100 */
        struct tm tm;
        gmtime_r(&t, &tm);
        char s[64];
        strftime(s, sizeof s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cr_assert_eq(jb_http_date(s), t, "%s", s);
        strftime(s, sizeof s, "%a %b %e %H:%M:%S %Y", &tm);
        cr_assert_eq(jb_http_date(s), t, "%s", s);
        if (tm.tm_year < 170) { /* two-digit years: 1970-2069 */
            strftime(s, sizeof s, "%A, %d-%b-%y %H:%M:%S GMT", &tm);
            cr_assert_eq(jb_http_date(s), t, "%s", s);
        }
    }
    cr_expect_gt(n, 8000);
}

Test(url, anything_else_is_not_a_date)
{
    const char *bad[] = {
        "",
        "soon",
        "120",
        "Sun, 06 Nov 1994 08:49:37",         /* no zone */
        "Sun, 06 Nov 1994 08:49:37 GMT ",    /* trailing junk */
        "Sun, 06 Nov 1994 08:49:37 GMTx",    /* trailing junk */
        "Sun, 06 Nov 1994 08:49:37 GMT\r\n", /* trailing junk */
        " Sun, 06 Nov 1994 08:49:37 GMT",    /* leading junk */
        "Sun, 06 Nov 1994 08:49:37 UTC",     /* another zone */
        "Sun, 6 Nov 1994 08:49:37 GMT",      /* one-digit day */
        "Sun, 06 Nov 94 08:49:37 GMT",       /* two-digit year */
        "Sun, 06 Nov 1994 8:49:37 GMT",      /* one-digit hour */
        "Sun, 31 Feb 1994 08:49:37 GMT",     /* no such day */
        "Sun, 29 Feb 2100 08:49:37 GMT",     /* not a leap year */
        "Sun, 00 Nov 1994 08:49:37 GMT",     /* no such day */
        "Sun, 06 Nov 1994 24:00:00 GMT",     /* no such hour */
        "Sun, 06 Nov 1994 08:60:00 GMT",     /* no such minute */
        "Sun, 06 Foo 1994 08:49:37 GMT",     /* no such month */
        "Xyz, 06 Nov 1994 08:49:37 GMT",     /* no such day name */
        "Sunday, 06 Nov 1994 08:49:37 GMT",  /* long day name in an IMF-fixdate */
        "Sun, 06-Nov-94 08:49:37 GMT",       /* short day name in an RFC 850 date */
        "Sunday, 06-Nov-1994 08:49:37 GMT",  /* four-digit year in an RFC 850 date */
        "Sun Nov 6 08:49:37 1994",           /* asctime's day unpadded */
        "Sun Nov  6 08:49:37 1994 ",         /* trailing junk */
        "Sun Nov  6 08:49:37 94",            /* two-digit year */
        "Wed, 31 Dec 1969 23:59:59 GMT",     /* before 1970 */
        "2026-01-13T10:30:05Z",              /* another format */
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++)
        cr_expect_eq(jb_http_date(bad[i]), -1, "\"%s\"", bad[i]);
    cr_expect_eq(jb_http_date(NULL), -1);
}
