/* util/url.c -- the one reader of http:// and https:// URLs every HTTP user in janebot shares
 * (jb_url_parse()), percent-encoding for forms and queries, and HTTP dates.
 *
 * The URL rules are few and strict on purpose: what the client sends, what the proxy's
 * policy checks and what a server reads must be the same host, port and target, so
 * nothing is decoded, normalised or guessed (no userinfo, no fragment, no backslash, no
 * percent-escape or IDN in the host, no dot-segment removal in the path). */
#include <arpa/inet.h>
#include <string.h>

#include "util.h"

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* a and b (n bytes each) equal but for ASCII case, whatever the locale. */
static int ascii_caseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return 0;
    return 1;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- URLs ------------------------------------------------------------------------------ */

/* Bytes no part of a URL may hold; why, or NULL. */
static const char *check_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0) return "NUL byte in the URL";
        if (c == ' ') return "space in the URL";
        if (c < 0x20 || c == 0x7f) return "control character in the URL";
        if (c >= 0x80) return "non-ASCII byte in the URL (percent-encode it)";
        if (c == '\\') return "backslash in the URL";
    }
    return NULL;
}

/* "[v6]" at s (n bytes, s[0] == '['): its inside into u->host. The rest is after ']'. */
static const char *parse_ipv6(const char *s, size_t n, struct jb_url *u, size_t *used)
{
    const char *close = memchr(s, ']', n);
    if (!close) return "unclosed '[' in the host";
    size_t hl = (size_t)(close - s - 1);
    if (hl == 0) return "empty host";
    for (size_t i = 1; i <= hl; i++)
        if (!is_hex((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
            return "malformed IPv6 address";
    if (hl >= INET6_ADDRSTRLEN) return "malformed IPv6 address";
    memcpy(u->host, s + 1, hl);
    u->host[hl] = '\0';
    unsigned char bin[16];
    if (inet_pton(AF_INET6, u->host, bin) != 1) return "malformed IPv6 address";
    u->ipv6 = 1;
    *used = hl + 2;
    return NULL;
}

/* A reg-name at s (n bytes): unreserved characters only (no percent-escape, no IDN). */
static const char *parse_name(const char *s, size_t n, struct jb_url *u, size_t *used)
{
    size_t hl = 0;
    while (hl < n && s[hl] != ':') {
        unsigned char c = (unsigned char)s[hl];
        if (c == '[' || c == ']') return "unexpected bracket in the host";
        if (!is_alnum(c) && !strchr("._~-", c)) return "bad character in the host";
        hl++;
    }
    if (hl == 0) return "empty host";
    if (hl >= sizeof u->host) return "host name too long";
    memcpy(u->host, s, hl);
    u->host[hl] = '\0';
    *used = hl;
    return NULL;
}

/* ":port" (or nothing) at s (n bytes, the rest of the authority). */
static const char *parse_port(const char *s, size_t n, struct jb_url *u)
{
    u->port = u->https ? 443 : 80;
    if (n == 0) return NULL;
    if (s[0] != ':') return "junk after the host";
    if (n == 1) return "bad port";
    unsigned long p = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return "bad port";
        p = p * 10 + (unsigned long)(s[i] - '0');
        if (p > 65535) return "bad port";
    }
    if (p == 0) return "bad port";
    u->port = (unsigned)p;
    u->port_given = 1;
    return NULL;
}

static const char *parse_authority(const char *s, size_t n, struct jb_url *u)
{
    if (memchr(s, '@', n)) return "userinfo is not allowed";
    if (n == 0) return "empty host";
    size_t used = 0;
    const char *why = s[0] == '[' ? parse_ipv6(s, n, u, &used) : parse_name(s, n, u, &used);
    return why ? why : parse_port(s + used, n - used, u);
}

int jb_url_parse(const char *url, size_t n, struct jb_url *u, const char **why)
{
    memset(u, 0, sizeof *u);
    size_t skip;
    if (n >= 7 && ascii_caseeq(url, "http://", 7))
        skip = 7;
    else if (n >= 8 && ascii_caseeq(url, "https://", 8))
        skip = 8, u->https = 1;
    else
        return *why = "only http:// and https:// URLs", -1;
    if ((*why = check_bytes(url, n))) return -1;
    if (memchr(url, '#', n)) return *why = "fragment in the URL", -1;
    const char *auth = url + skip, *end = url + n, *rest = auth;
    while (rest < end && *rest != '/' && *rest != '?')
        rest++;
    if ((*why = parse_authority(auth, (size_t)(rest - auth), u))) return -1;
    size_t tl = (size_t)(end - rest);
    int slash = tl == 0 || *rest == '?'; /* "" is "/", "?q" is "/?q" */
    if (!(u->target = malloc(tl + slash + 1))) return *why = "out of memory", -1;
    u->target[0] = '/';
    memcpy(u->target + slash, rest, tl);
    u->target[tl + slash] = '\0';
    return 0;
}

void jb_url_release(struct jb_url *u)
{
    free(u->target);
    memset(u, 0, sizeof *u);
}

int jb_url_same_origin(const struct jb_url *a, const struct jb_url *b)
{
    size_t n = strlen(a->host);
    return a->https == b->https && a->port == b->port && n == strlen(b->host) &&
           ascii_caseeq(a->host, b->host, n);
}

char *jb_url_escape(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- HTTP dates (RFC 9110, 5.6.7) ------------------------------------------------------- */

static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                   "Friday", "Saturday", "Sunday"};
static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* A cursor over the date text: each reader moves it past what it took, or fails. */
struct cursor {
    const char *p;
};

static int lit(struct cursor *c, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(c->p, s, n) != 0) return -1;
    c->p += n;
    return 0;
}

/* Exactly ndig digits. */
static int digits(struct cursor *c, int ndig, int *v)
{
    *v = 0;
    for (int i = 0; i < ndig; i++, c->p++) {
        if (*c->p < '0' || *c->p > '9') return -1;
        *v = *v * 10 + (*c->p - '0');
    }
    return 0;
}

/* A day name, short ("Sun") or long ("Sunday"). Whether it is the date's day is not
 * checked: the numbers say when, the name is redundant. */
static int day_name(struct cursor *c, int longform)
{
    for (size_t i = 0; i < JB_ARRAY_LEN(days); i++) {
        size_t n = longform ? strlen(days[i]) : 3;
        if (strncmp(c->p, days[i], n) == 0) return c->p += n, 0;
    }
    return -1;
}

/* "Nov" -> 1-12. */
static int month(struct cursor *c, int *mon)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(c->p, months + 3 * i, 3) == 0) return *mon = i + 1, c->p += 3, 0;
    return -1;
}

/* "08:49:37" */
static int clock_time(struct cursor *c, int *h, int *m, int *s)
{
    return digits(c, 2, h) < 0 || lit(c, ":") < 0 || digits(c, 2, m) < 0 || lit(c, ":") < 0 ||
                   digits(c, 2, s) < 0
               ? -1
               : 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (y >= 1970, the date valid). */
static int64_t days_since_epoch(int y, int m, int d)
{
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t n = (int64_t)(y - 1970) * 365 + ((y - 1) / 4 - 1969 / 4) -
                ((y - 1) / 100 - 1969 / 100) + ((y - 1) / 400 - 1969 / 400);
    return n + before[m - 1] + (m > 2 && is_leap(y)) + d - 1;
}

static time_t to_time(int y, int mon, int d, int h, int mi, int s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || d < 1 || d > mdays[mon - 1] + (mon == 2 && is_leap(y))) return -1;
    if (h > 23 || mi > 59 || s > 60) return -1; /* 60: a leap second */
    return (time_t)(days_since_epoch(y, mon, d) * 86400 + h * 3600 + mi * 60 + s);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static time_t imf_fixdate(const char *s)
{
    struct cursor c = {s};
    int d, mon, y, h, mi, sec;
    if (day_name(&c, 0) < 0 || lit(&c, ", ") < 0 || digits(&c, 2, &d) < 0 || lit(&c, " ") < 0 ||
        month(&c, &mon) < 0 || lit(&c, " ") < 0 || digits(&c, 4, &y) < 0 || lit(&c, " ") < 0 ||
        clock_time(&c, &h, &mi, &sec) < 0 || lit(&c, " GMT") < 0 || *c.p)
        return -1;
    return to_time(y, mon, d, h, mi, sec);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year below 70 is 20yy, else 19yy. */
static time_t rfc850_date(const char *s)
{
    struct cursor c = {s};
    int d, mon, y, h, mi, sec;
    if (day_name(&c, 1) < 0 || lit(&c, ", ") < 0 || digits(&c, 2, &d) < 0 || lit(&c, "-") < 0 ||
        month(&c, &mon) < 0 || lit(&c, "-") < 0 || digits(&c, 2, &y) < 0 || lit(&c, " ") < 0 ||
        clock_time(&c, &h, &mi, &sec) < 0 || lit(&c, " GMT") < 0 || *c.p)
        return -1;
    return to_time(y < 70 ? 2000 + y : 1900 + y, mon, d, h, mi, sec);
}

/* "Sun Nov  6 08:49:37 1994" (the day: two digits, or a space and one digit) */
static time_t asctime_date(const char *s)
{
    struct cursor c = {s};
    int d, mon, y, h, mi, sec;
    if (day_name(&c, 0) < 0 || lit(&c, " ") < 0 || month(&c, &mon) < 0 || lit(&c, " ") < 0)
        return -1;
    int two = *c.p != ' ';
    if (!two) c.p++;
    if (digits(&c, two ? 2 : 1, &d) < 0) return -1;
    if (lit(&c, " ") < 0 || clock_time(&c, &h, &mi, &sec) < 0 || lit(&c, " ") < 0 ||
        digits(&c, 4, &y) < 0 || *c.p)
        return -1;
    return to_time(y, mon, d, h, mi, sec);
}

time_t jb_http_date(const char *s)
{
    if (!s) return -1;
    time_t t = imf_fixdate(s);
    if (t < 0) t = rfc850_date(s);
    if (t < 0) t = asctime_date(s);
    return t;
}
