/* util/text.c -- text from outside (an agent's answer, a peer's message) made safe to
 * print on a terminal: no control characters, so no escape sequence can write the
 * operator's clipboard (OSC 52), retitle or query the terminal, or redraw the screen. */
#include <string.h>

#include "util.h"

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. p is NUL-terminated, so a cut sequence stops at
 * the NUL, which is no continuation byte. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

size_t jb_strip_controls(char *s)
{
    unsigned char *in = (unsigned char *)s, *out = in;
    while (*in) {
        size_t n = utf8_len(in);
        if (n == 0) { /* not UTF-8: a lone byte a terminal could read as an 8-bit control */
            *out++ = '?';
            in++;
        } else if ((n == 1 && ((*in < 0x20 && *in != '\n' && *in != '\t') || *in == 0x7f)) ||
                   (n == 2 && in[0] == 0xc2 && in[1] <= 0x9f)) {
            in += n; /* C0 (ESC, BEL, CR…), DEL, or C1 (U+0080-U+009F: CSI, OSC, ST…) */
        } else {
            memmove(out, in, n);
            out += n, in += n;
        }
    }
    *out = '\0';
    return (size_t)(out - (unsigned char *)s);
}

char *jb_strip_controls_dup(const char *s)
{
    char *copy = strdup(s ? s : "");
    if (copy) jb_strip_controls(copy);
    return copy;
}

int jb_split_hostport(const char *addr, char host[256], char port[6])
{
    const char *colon = NULL, *h = addr;
    size_t hn = 0;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end && end[1] == ':') h = addr + 1, hn = (size_t)(end - h), colon = end + 1;
    } else if ((colon = strrchr(addr, ':')) && memchr(addr, ':', (size_t)(colon - addr))) {
        colon = NULL; /* a bare IPv6 address: the port is ambiguous */
    } else if (colon) {
        hn = (size_t)(colon - addr);
    }
    size_t pn = colon ? strlen(colon + 1) : 0;
    if (!colon || hn == 0 || hn >= 256 || pn == 0 || pn > 5 ||
        strspn(colon + 1, "0123456789") != pn || atoi(colon + 1) > 65535)
        return -1;
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, colon + 1, pn + 1);
    return 0;
}
