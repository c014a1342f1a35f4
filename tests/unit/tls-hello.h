/* tests/unit/tls-hello.h -- minimal TLS ClientHello records, and the same handshake cut
 * into several records, for the proxy's SNI tests. */
#ifndef JB_TEST_TLS_HELLO_H
#define JB_TEST_TLS_HELLO_H

#include <string.h>

#define TLS_HELLO_MAX 1024 /* room each builder below needs in its output */

static inline void tls_put16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8), p[1] = (unsigned char)v;
}

/* A TLS 1.2-style ClientHello record into b: one cipher suite, an optional server_name,
 * then extra (whole extensions, already encoded; NULL for none). Its length. */
static inline size_t tls_hello_ext(unsigned char *b, const char *sni, const unsigned char *extra,
                                   size_t extra_len)
{
    size_t nl = sni ? strlen(sni) : 0, n = 9;
    memset(b, 0, TLS_HELLO_MAX);
    b[n++] = 3, b[n++] = 3, n += 32;                   /* version, random */
    b[n++] = 0;                                        /* session id */
    b[n++] = 0, b[n++] = 2, b[n++] = 0x13, b[n++] = 1; /* one cipher suite */
    b[n++] = 1, b[n++] = 0;                            /* compression: null */
    tls_put16(b + n, (sni ? 9 + nl : 0) + extra_len), n += 2;
    if (sni) {
        b[n++] = 0, b[n++] = 0, tls_put16(b + n, 5 + nl), n += 2;
        tls_put16(b + n, 3 + nl), n += 2, b[n++] = 0, tls_put16(b + n, nl), n += 2;
        memcpy(b + n, sni, nl), n += nl;
    }
    if (extra_len) memcpy(b + n, extra, extra_len), n += extra_len;
    b[0] = 0x16, b[1] = 3, b[2] = 1, tls_put16(b + 3, n - 5);
    b[5] = 1, b[6] = 0, tls_put16(b + 7, n - 9);
    return n;
}

static inline size_t tls_hello(unsigned char *b, const char *sni)
{
    return tls_hello_ext(b, sni, NULL, 0);
}

/* The handshake bytes of the one record rec[0, n) cut into records of at most cut bytes,
 * into out (n + 5 * pieces bytes). Its length. */
static inline size_t tls_reframe(const unsigned char *rec, size_t n, size_t cut, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 5; i < n; i += cut) {
        size_t part = n - i < cut ? n - i : cut;
        memcpy(out + o, rec, 3), tls_put16(out + o + 3, part);
        memcpy(out + o + 5, rec + i, part);
        o += 5 + part;
    }
    return o;
}

#endif
