/* proxy/policy.c -- the egress policy: the allowlist and test-host map parsed from the
 * environment, and the pure checks the proxy decides with (name normalisation, IP
 * literals in every spelling, forbidden destination addresses). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy-int.h"

struct test_host {
    char *name;
    struct sockaddr_storage addr;
    socklen_t len;
};

struct egress_policy {
    struct jb_strv allow; /* normalised names, or "*." + normalised suffix */
    struct test_host *tests;
    size_t ntests;
};

#define ALLOW_VAR "JANEBOT_EGRESS_ALLOW"
#define TESTS_VAR "JANEBOT_EGRESS_TEST_HOSTS"
#define ALLOW_HELP                                                                                 \
    "expected comma-separated domain names such as api.example.com or *.example.com "              \
    "(letters, digits, '-' and '.'; IDN as xn-- A-labels; no IP addresses)"
#define TESTS_HELP "expected comma-separated name=127.0.0.1:PORT or name=[::1]:PORT entries"

/* ---- names ----------------------------------------------------------------------------- */

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static const char *check_labels(const char *s)
{
    size_t lab = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || !*p) {
            if (lab == 0) return "empty label";
            if (lab > 63) return "label over 63 bytes";
            if (p[-1] == '-' || p[-(ptrdiff_t)lab] == '-') return "label starts or ends with '-'";
            if (!*p) return NULL;
            lab = 0;
        } else if (!is_ldh((unsigned char)*p)) {
            return (unsigned char)*p >= 0x80 ? "non-ASCII name (IDN must be xn-- A-labels)"
                                             : "character other than letters, digits, '-', '.'";
        } else {
            lab++;
        }
    }
}

int egress_normalize_host(const char *host, char out[EGRESS_NAME_MAX + 1], const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    *why = "empty name";
    size_t n = host ? strlen(host) : 0;
    if (n > 0 && host[n - 1] == '.') n--; /* one trailing dot: the root */
    if (n == 0) return -1;
    *why = "name over 253 bytes";
    if (n > EGRESS_NAME_MAX) return -1;
    char tmp[EGRESS_NAME_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        tmp[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    tmp[n] = '\0';
    if ((*why = check_labels(tmp))) return -1;
    memcpy(out, tmp, n + 1);
    return 0;
}

/* A label a URL parser reads as a number: decimal digits, or 0x followed by hex digits. */
static int numeric_label(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < n; i++)
            if (!s[i] || !strchr("0123456789abcdefABCDEF", s[i])) return 0;
        return 1;
    }
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* Why the last label: a WHATWG URL parser treats any host whose last label is numeric as
 * IPv4 (and inet_aton reads 1 to 4 such parts), so refusing those covers every dotted,
 * integer, octal, hex and short spelling without parsing each. */
int egress_is_ip_literal(const char *host)
{
    if (!host) return 0;
    if (host[0] == '[' || strchr(host, ':')) return 1; /* IPv6, bracketed or not */
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.') n--;
    size_t start = n;
    while (start > 0 && host[start - 1] != '.')
        start--;
    return numeric_label(host + start, n - start);
}

int egress_name_allowed(const struct egress_policy *p, const char *host)
{
    char name[EGRESS_NAME_MAX + 1];
    if (!p || egress_is_ip_literal(host) || egress_normalize_host(host, name, NULL) < 0) return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < p->allow.n; i++) {
        const char *e = p->allow.v[i];
        if (e[0] != '*') {
            if (strcmp(e, name) == 0) return 1;
            continue;
        }
        size_t sl = strlen(e + 1); /* ".example.com": the dot keeps the label boundary */
        if (n > sl && strcmp(name + n - sl, e + 1) == 0) return 1;
    }
    return 0;
}

const struct sockaddr *egress_policy_test_addr(const struct egress_policy *p, const char *name,
                                               socklen_t *ret_len)
{
    for (size_t i = 0; p && i < p->ntests; i++)
        if (strcmp(p->tests[i].name, name) == 0) {
            *ret_len = p->tests[i].len;
            return (const struct sockaddr *)&p->tests[i].addr;
        }
    return NULL;
}

int egress_policy_has_test_hosts(const struct egress_policy *p)
{
    return p && p->ntests > 0;
}

/* ---- addresses ------------------------------------------------------------------------- */

/* 0/8 "this network", 10/8, 100.64/10 CGNAT, 127/8, 169.254/16 link-local (cloud metadata),
 * 172.16/12, 192.0.0/24 IETF, 192.0.2/24 TEST-NET-1, 192.88.99/24 6to4 relays, 192.168/16,
 * 198.18/15 benchmarking, 198.51.100/24 TEST-NET-2, 203.0.113/24 TEST-NET-3, 224/4
 * multicast, 240/4 reserved and broadcast. */
static int v4_forbidden(uint32_t a)
{
    static const struct {
        uint32_t net;
        int bits;
    } nets[] = {
        {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},  {0xa9fe0000, 16},
        {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24}, {0xc0586300, 24}, {0xc0a80000, 16},
        {0xc6120000, 15}, {0xc6336400, 24}, {0xcb007100, 24}, {0xe0000000, 4},  {0xf0000000, 4},
    };
    for (size_t i = 0; i < JB_ARRAY_LEN(nets); i++) {
        uint32_t mask = 0xffffffffu << (32 - nets[i].bits);
        if ((a & mask) == nets[i].net) return 1;
    }
    return 0;
}

static uint32_t be32_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Only global unicast passes. An address embedding IPv4 (mapped, NAT64, 6to4) reaches that
 * IPv4 address through a translator, so the embedded address is what gets checked. */
static int v6_forbidden(const unsigned char *b)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_forbidden(be32_at(b + 12));
    if ((b[0] & 0xe0) != 0x20) return 1;                       /* outside 2000::/3 global unicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) return 1; /* 2001::/23, Teredo… */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return 1; /* docs */
    if (b[0] == 0x3f && b[1] == 0xff && b[2] < 0x10) return 1;                  /* 3fff::/20 */
    if (b[0] == 0x20 && b[1] == 0x02) return v4_forbidden(be32_at(b + 2));      /* 6to4 */
    return 0;
}

int egress_addr_forbidden(const struct sockaddr *sa)
{
    if (!sa) return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_forbidden(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return v6_forbidden(in6->sin6_addr.s6_addr);
    }
    return 1;
}

/* ---- parsing the environment ----------------------------------------------------------- */

/* Next comma-separated entry of *csv with blanks trimmed, into out; 0 at the end. */
static int next_entry(const char **csv, char *out, size_t outsz, size_t *ret_len)
{
    const char *s = *csv;
    if (!*s) return 0;
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    *csv = end ? end + 1 : s + n;
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *ret_len = n;
    size_t c = n < outsz - 1 ? n : outsz - 1;
    memcpy(out, s, c);
    out[c] = '\0';
    return 1;
}

static int add_allow(struct egress_policy *p, const char *e, size_t n, struct jb_err *err)
{
    char name[EGRESS_NAME_MAX + 1];
    const char *why = "entry too long";
    int wild = n >= 2 && e[0] == '*' && e[1] == '.';
    const char *bare = wild ? e + 2 : e;
    if (n > EGRESS_NAME_MAX + 2) goto bad;
    why = "IP addresses are not allowed";
    if (egress_is_ip_literal(bare)) goto bad;
    if (egress_normalize_host(bare, name, &why) < 0) goto bad;
    why = "a wildcard needs at least two labels after \"*.\"";
    if (wild && !strchr(name, '.')) goto bad;
    return wild ? jb_strv_pushf(&p->allow, err, "*.%s", name) : jb_strv_push(&p->allow, name, err);
bad:
    return jb_err_set(err, JB_ECONFIG, "%s: bad entry \"%.300s\": %s; %s", ALLOW_VAR, e, why,
                      ALLOW_HELP);
}

static int parse_allow(struct egress_policy *p, const char *csv, struct jb_err *err)
{
    if (!csv || !*csv) csv = EGRESS_DEFAULT_ALLOW;
    char e[EGRESS_NAME_MAX + 8];
    size_t n;
    while (next_entry(&csv, e, sizeof e, &n))
        if (n > 0 && add_allow(p, e, n, err) < 0) return -1;
    if (p->allow.n == 0)
        return jb_err_set(err, JB_ECONFIG, "%s lists no domain; %s", ALLOW_VAR, ALLOW_HELP);
    return 0;
}

/* "127.0.0.1:PORT" or "[::1]:PORT" into t; a loopback address is required. */
static const char *parse_loopback(const char *s, struct test_host *t)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return "missing :PORT";
    char host[64], *end;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && colon[-1] == ']') s++, hl -= 2;
    if (hl >= sizeof host) return "address too long";
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)) return "bad port";
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (port == 0 || port > 65535) return "port out of range 1-65535";
    struct sockaddr_in *in = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->addr;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET, in->sin_port = htons((uint16_t)port), t->len = sizeof *in;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127 ? NULL : "address is not loopback";
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6, in6->sin6_port = htons((uint16_t)port), t->len = sizeof *in6;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ? NULL : "address is not loopback";
    }
    return "not an IPv4 or bracketed IPv6 address";
}

static int add_test_host(struct egress_policy *p, const char *e, struct jb_err *err)
{
    struct test_host t = {0};
    char name[EGRESS_NAME_MAX + 1];
    const char *why = "missing '='", *eq = strchr(e, '=');
    if (!eq) goto bad;
    char raw[EGRESS_NAME_MAX + 2];
    size_t nl = (size_t)(eq - e);
    why = "name too long";
    if (nl >= sizeof raw) goto bad;
    memcpy(raw, e, nl);
    raw[nl] = '\0';
    why = "IP addresses are not names";
    if (egress_is_ip_literal(raw) || egress_normalize_host(raw, name, &why) < 0) goto bad;
    if ((why = parse_loopback(eq + 1, &t))) goto bad;
    struct test_host *v = realloc(p->tests, (p->ntests + 1) * sizeof *v);
    if (!v || !(t.name = strdup(name))) {
        if (v) p->tests = v;
        return jb_err_set(err, JB_ENOMEM, "%s: out of memory", TESTS_VAR);
    }
    p->tests = v;
    p->tests[p->ntests++] = t;
    return 0;
bad:
    return jb_err_set(err, JB_ECONFIG, "%s: bad entry \"%.300s\": %s; %s", TESTS_VAR, e, why,
                      TESTS_HELP);
}

static int parse_tests(struct egress_policy *p, const char *csv, struct jb_err *err)
{
    char e[EGRESS_NAME_MAX + 80];
    size_t n;
    while (csv && next_entry(&csv, e, sizeof e, &n)) {
        if (n >= sizeof e)
            return jb_err_set(err, JB_ECONFIG, "%s: bad entry \"%.300s...\": too long; %s",
                              TESTS_VAR, e, TESTS_HELP);
        if (n > 0 && add_test_host(p, e, err) < 0) return -1;
    }
    return 0;
}

void egress_policy_free(struct egress_policy *p)
{
    if (!p) return;
    jb_strv_free(&p->allow);
    for (size_t i = 0; i < p->ntests; i++)
        free(p->tests[i].name);
    free(p->tests);
    free(p);
}

static void policy_freep(struct egress_policy **p)
{
    egress_policy_free(*p);
}

int egress_policy_new(const char *allow_csv, const char *test_hosts_csv, struct egress_policy **ret,
                      struct jb_err *err)
{
    jb_auto(policy_freep) struct egress_policy *p = calloc(1, sizeof *p);
    if (!p) return jb_err_set(err, JB_ENOMEM, "egress policy: out of memory");
    if (parse_allow(p, allow_csv, err) < 0 || parse_tests(p, test_hosts_csv, err) < 0) return -1;
    *ret = TAKE_PTR(p);
    return 0;
}
