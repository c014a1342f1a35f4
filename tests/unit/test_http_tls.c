/* tests/unit/test_http_tls.c -- the HTTP client over TLS: a server with a certificate made
 * here, trusted through SSL_CERT_FILE (read at the client's first https:// connection,
 * so it stays set until the test ends), answers; the same
 * server is refused when another certificate is the trusted one, or when the certificate
 * names another host. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>

#include "http-server.h"
#include "util/util.h"
#include "time-limit.h"

static struct srv S;
static struct jb_http *H;
static char *ca_path, *other_path;

static void setup(void)
{
    time_limit(30);
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    jb_http_free(H);
    srv_free(&S);
    for (char **p = (char *[]){ca_path, other_path, NULL}; *p; p++)
        unlink(*p), free(*p);
    unsetenv("SSL_CERT_FILE");
}

TestSuite(http_tls, .init = setup, .fini = teardown);

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

/* A TLS server for san answering OK_HELLO to each request; a client trusting trusted
 * (a PEM file's path). */
static void start(const char *san, const char *const *trusted)
{
    for (int i = 0; i < SRV_STEPS; i++)
        S.steps[i] = (struct srv_step){.answer = OK_HELLO};
    ca_path = srv_use_tls(&S, san);
    srv_start(&S);
    EVP_PKEY *k;
    X509 *x = srv_make_cert("DNS:localhost,IP:127.0.0.1", &k);
    other_path = srv_write_cert(x);
    X509_free(x);
    EVP_PKEY_free(k);
    setenv("SSL_CERT_FILE", *trusted, 1);
    struct jb_err err = {0};
    H = jb_http_new(2, &err);
    cr_assert_not_null(H, "%s", err.msg);
}

static size_t body_len;

static int on_body(void *ud, const char *p, size_t n)
{
    (void)ud, (void)p;
    body_len += n;
    return 0;
}

static int get(const char *host, struct jb_http_resp *rs, struct jb_err *err)
{
    char url[128];
    snprintf(url, sizeof url, "https://%s:%u/x", host, S.port);
    struct jb_http_req rq = {.url = url, .on_body = on_body, .timeout_ms = 10000};
    memset(err, 0, sizeof *err);
    return jb_http_request(H, &rq, rs, err);
}

/* The name checks need localhost to lead to 127.0.0.1: a root without /etc/hosts may
 * resolve it through DNS, if at all. */
static void need_localhost(void)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int ok = getaddrinfo("localhost", "443", &hints, &res) == 0 &&
             ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (res) freeaddrinfo(res);
    if (!ok) cr_skip_test("localhost does not resolve to 127.0.0.1 here (no /etc/hosts)");
}

Test(http_tls, a_trusted_certificate_for_the_address_kept_alive)
{
    start("DNS:localhost,IP:127.0.0.1", (const char *const *)&ca_path);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(get("127.0.0.1", &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.status == 200 && rs.complete);
    cr_assert_eq(get("127.0.0.1", &rs, &err), 0, "%s", err.msg);
    cr_expect_eq(body_len, 10);
    srv_stop(&S);
    cr_expect_eq(S.accepts, 1); /* kept alive over TLS too */
}

Test(http_tls, a_trusted_certificate_for_the_name)
{
    need_localhost();
    start("DNS:localhost,IP:127.0.0.1", (const char *const *)&ca_path);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(get("localhost", &rs, &err), 0, "%s", err.msg);
    cr_expect_eq(body_len, 5);
    srv_stop(&S);
    char want[128];
    snprintf(want, sizeof want, "GET /x HTTP/1.1\r\nHost: localhost:%u\r\n", S.port);
    cr_expect(S.nreq == 1 && strncmp(S.req[0], want, strlen(want)) == 0, "%s", S.req[0]);
}

Test(http_tls, an_untrusted_certificate_is_refused)
{
    start("DNS:localhost,IP:127.0.0.1", (const char *const *)&other_path);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(get("127.0.0.1", &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL);
    char want[96];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%u: certificate verify failed (",
             S.port);
    cr_expect(strstr(err.msg, want), "%s", err.msg);
    cr_expect(!rs.sent && !rs.complete);
    srv_stop(&S);
    cr_expect_eq(S.nreq, 0);
}

Test(http_tls, a_certificate_for_another_address_is_refused)
{
    start("DNS:other.example.com", (const char *const *)&ca_path);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(get("127.0.0.1", &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL);
    cr_expect(strstr(err.msg, "certificate verify failed (IP address mismatch)"), "%s", err.msg);
    srv_stop(&S);
    cr_expect_eq(S.nreq, 0);
}

Test(http_tls, a_certificate_for_another_name_is_refused)
{
    need_localhost();
    start("DNS:other.example.com", (const char *const *)&ca_path);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(get("localhost", &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL);
    cr_expect(strstr(err.msg, "certificate verify failed (hostname mismatch)"), "%s", err.msg);
    srv_stop(&S);
    cr_expect_eq(S.nreq, 0);
}
