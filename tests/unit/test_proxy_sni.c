/* tests/unit/test_proxy_sni.c -- proxy/sni.c: the server name of a ClientHello, reassembled
 * from several records, and every shape a server could read differently refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "proxy/proxy-int.h"
#include "tls-hello.h"

static unsigned char hs[PX_HELLO_MAX];

static enum px_sni parse(const unsigned char *b, size_t n, size_t *need, char name[256])
{
    return px_sni_parse(b, n, hs, need, name);
}

Test(proxy_sni, one_record)
{
    unsigned char b[TLS_HELLO_MAX];
    char name[256];
    size_t need, n = tls_hello(b, "Allowed.test");
    cr_assert_eq(parse(b, n, &need, name), PX_SNI_FOUND);
    cr_expect_str_eq(name, "Allowed.test", "as sent: the caller compares");
    cr_expect_eq(parse(b, 0, &need, name), PX_SNI_MORE);
    cr_expect_eq(need, 5);
    cr_expect_eq(parse(b, 3, &need, name), PX_SNI_MORE);
    cr_expect_eq(parse(b, n - 1, &need, name), PX_SNI_MORE);
    cr_expect_eq(need, n);
    cr_expect_eq(parse((const unsigned char *)"GET / HTTP", 10, &need, name), PX_SNI_NOT_TLS);
    cr_expect_eq(parse((const unsigned char *)"\x16\x02", 2, &need, name), PX_SNI_NOT_TLS);
    cr_expect_eq(parse((const unsigned char *)"\x17\x03\x03\x00\x01x", 6, &need, name),
                 PX_SNI_NOT_TLS);
    n = tls_hello(b, NULL);
    cr_expect_eq(parse(b, n, &need, name), PX_SNI_NONE);
}

Test(proxy_sni, reassembled_from_records_of_any_size)
{
    unsigned char b[TLS_HELLO_MAX], f[8 * TLS_HELLO_MAX];
    char name[256];
    size_t need, n = tls_hello(b, "x.test");
    static const size_t cuts[] = {1, 3, 4, 7, 50, 100};
    for (size_t c = 0; c < JB_ARRAY_LEN(cuts); c++) {
        size_t fn = tls_reframe(b, n, cuts[c], f);
        cr_assert_eq(parse(f, fn, &need, name), PX_SNI_FOUND, "records of %zu", cuts[c]);
        cr_expect_str_eq(name, "x.test");
        for (size_t k = 0; k < fn; k++) { /* every prefix asks for more, up to a record's end */
            enum px_sni s = parse(f, k, &need, name);
            cr_assert_eq(s, PX_SNI_MORE, "records of %zu, %zu bytes: %d", cuts[c], k, s);
            cr_assert(need > k && need <= fn, "need %zu after %zu of %zu", need, k, fn);
        }
    }
}

Test(proxy_sni, what_a_server_could_read_differently_is_refused)
{
    unsigned char b[TLS_HELLO_MAX], f[2 * TLS_HELLO_MAX];
    char name[256];
    size_t need, n = tls_hello(b, "x.test");
    /* Another handshake message after the ClientHello, in the same record. */
    memcpy(f, b, n), memcpy(f + n, b + 5, n - 5), tls_put16(f + 3, 2 * (n - 5));
    cr_expect_eq(parse(f, 2 * n - 5, &need, name), PX_SNI_BAD);
    /* Bytes after the extensions, inside the ClientHello. */
    memcpy(f, b, n), f[n] = 0, tls_put16(f + 3, n - 4), tls_put16(f + 7, n - 8);
    cr_expect_eq(parse(f, n + 1, &need, name), PX_SNI_BAD);
    /* A message longer than its record, then a record that is not a handshake one. */
    memcpy(f, b, n), f[8] += 1, memcpy(f + n, "\x17\x03\x03\x00\x01x", 6);
    cr_expect_eq(parse(f, n, &need, name), PX_SNI_MORE);
    cr_expect_eq(parse(f, n + 6, &need, name), PX_SNI_BAD);
    /* An empty record first (RFC 8446 forbids it for handshakes). */
    memcpy(f, "\x16\x03\x01\x00\x00", 5), memcpy(f + 5, b, n);
    cr_expect_eq(parse(f, n + 5, &need, name), PX_SNI_BAD);
    /* A first message other than a ClientHello. */
    memcpy(f, b, n), f[5] = 2;
    cr_expect_eq(parse(f, n, &need, name), PX_SNI_BAD);
    /* Two server_name extensions. */
    static const unsigned char two[] = {0,   0,   0,   15,  0,   13,  0,   0,   10, 'o',
                                        't', 'h', 'e', 'r', '.', 't', 'e', 's', 't'};
    n = tls_hello_ext(b, "x.test", two, sizeof two);
    cr_expect_eq(parse(b, n, &need, name), PX_SNI_BAD);
    /* A name entry of another type than host_name, or a name with a NUL in it. */
    n = tls_hello(b, "x.test");
    b[58] = 1;
    cr_expect_eq(parse(b, n, &need, name), PX_SNI_BAD);
    n = tls_hello(b, "x.test");
    b[62] = 0;
    cr_expect_eq(parse(b, n, &need, name), PX_SNI_BAD);
}

Test(proxy_sni, encrypted_client_hello_is_its_own_answer)
{
    unsigned char b[TLS_HELLO_MAX];
    char name[256];
    size_t need;
    static const unsigned char ech[] = {0xfe, 0x0d, 0, 4, 0, 0, 1, 0};
    static const unsigned char esni[] = {0xff, 0xce, 0, 2, 0, 0};
    cr_expect_eq(parse(b, tls_hello_ext(b, "x.test", ech, sizeof ech), &need, name), PX_SNI_ECH);
    cr_expect_eq(parse(b, tls_hello_ext(b, NULL, esni, sizeof esni), &need, name), PX_SNI_ECH);
}

Test(proxy_sni, sizes_are_bounded)
{
    unsigned char b[TLS_HELLO_MAX];
    char name[256];
    size_t need, n = tls_hello(b, "x.test");
    b[6] = 1; /* a ClientHello of 64 KiB and more: refused before it is read */
    cr_expect_eq(parse(b, n, &need, name), PX_SNI_BAD);
    memcpy(b, "\x16\x03\x01\x40\x01", 5); /* a record over 16 KiB */
    cr_expect_eq(parse(b, 5, &need, name), PX_SNI_BAD);
    /* 32760 bytes of message: with two record headers more than PX_HELLO_MAX in all. */
    static unsigned char big[2 * 16384 + 10];
    memcpy(big, "\x16\x03\x01\x40\x00\x01\x00\x7f\xf8", 9);
    memcpy(big + 5 + 16384, "\x16\x03\x01\x3f\xfc", 5);
    cr_expect_eq(parse(big, 5 + 16384, &need, name), PX_SNI_MORE);
    cr_expect_eq(need, 5 + 16384 + 5);
    cr_expect_eq(parse(big, 5 + 16384 + 5, &need, name), PX_SNI_BAD);
    for (size_t cut = 5; cut < n; cut++) { /* truncated inner lengths never read past the end */
        unsigned char t[TLS_HELLO_MAX];
        n = tls_hello(t, "x.test");
        tls_put16(t + 3, cut - 5);
        if (cut >= 9) tls_put16(t + 7, cut - 9);
        enum px_sni r = parse(t, cut, &need, name);
        cr_expect(r == PX_SNI_BAD || r == PX_SNI_MORE || r == PX_SNI_NONE, "%zu: %d", cut, r);
    }
}
