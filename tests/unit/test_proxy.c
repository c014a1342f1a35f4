/* tests/unit/test_proxy.c -- proxy/: the egress proxy end to end over real sockets (a local
 * origin mapped as a test host), and the listener a sandbox hands over to it. The policy's pure
 * checks and the HTTP parser are in test_proxy_policy.c, the TLS parser in test_proxy_sni.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "proxy/proxy-int.h"
#include "sandbox-standin.h"
#include "tls-hello.h"
#include "time-limit.h"

static struct egress_policy *policy(const char *allow, const char *tests)
{
    struct egress_policy *p = NULL;
    struct jb_err err = {0};
    cr_assert_eq(egress_policy_new(allow, tests, &p, &err), 0, "%s", err.msg);
    return p;
}

/* ---- end to end ------------------------------------------------------------------------------ */

static char dir[] = "/tmp/jb-proxy-XXXXXX", sock[128], logpath[160];
static int origin_fd = -1, origin_stop[2] = {-1, -1}, origin_port;
static pthread_t origin_thr;
static struct egress_policy *pol;
static struct egress_proxy *px;
static struct egress_listener *lst;
static FILE *logf;

/* Read from fd until EOF, n-1 bytes, or 5 s; NUL-terminated; the byte count. */
static size_t read_some(int fd, char *buf, size_t n, const char *until)
{
    size_t got = 0;
    int64_t end = jb_mono_ms() + 5000;
    while (got + 1 < n && jb_mono_ms() < end) {
        buf[got] = '\0';
        if (until && strstr(buf, until)) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    return got;
}

/* One recv, waiting at most 5 s (or until the test stops the origin); 0 on EOF or timeout. */
static size_t recv_once(int fd, char *buf, size_t n)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = origin_stop[0], .events = POLLIN}};
    if (poll(p, 2, 5000) <= 0 || p[1].revents) return 0;
    ssize_t r = recv(fd, buf, n, 0);
    return r > 0 ? (size_t)r : 0;
}

/* The origin: answers an origin-form request with its head and body; echoes anything else. */
static void origin_serve(int fd)
{
    char buf[8192];
    size_t n = recv_once(fd, buf, sizeof buf - 1), r = 1;
    buf[n] = '\0';
    if (strncmp(buf, "GET /", 5) == 0 || strncmp(buf, "POST /", 6) == 0) {
        while (!strstr(buf, "\r\n\r\n") && r && n < sizeof buf - 1)
            n += r = recv_once(fd, buf + n, sizeof buf - 1 - n), buf[n] = '\0';
        if (strncmp(buf, "GET /oob ", 9) == 0) { /* TCP urgent data amid the body */
            static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc";
            send(fd, head, sizeof head - 1, MSG_NOSIGNAL);
            poll(NULL, 0, 50);
            send(fd, "X", 1, MSG_OOB | MSG_NOSIGNAL);
            poll(NULL, 0, 50);
            send(fd, "def", 3, MSG_NOSIGNAL);
            return;
        }
        const char *cl = strstr(buf, "Content-Length: "), *e = strstr(buf, "\r\n\r\n");
        size_t want = e ? (size_t)(e - buf) + 4 + (cl ? strtoul(cl + 16, NULL, 10) : 0) : n;
        while (n < want && r && n < sizeof buf - 1)
            n += r = recv_once(fd, buf + n, want - n);
        char head[128];
        int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
        send(fd, head, (size_t)hl, MSG_NOSIGNAL);
        send(fd, buf, n, MSG_NOSIGNAL);
        return;
    }
    while (n > 0 && send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n)
        n = recv_once(fd, buf, sizeof buf);
}

static void *origin_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = origin_fd, .events = POLLIN},
                              {.fd = origin_stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents) return NULL;
        int fd = accept4(origin_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        origin_serve(fd);
        close(fd);
    }
}

static int tcp_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 64) == 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void start_proxy(const char *allow, const char *tests)
{
    struct jb_err err = {0};
    pol = policy(allow, tests);
    cr_assert_eq(egress_proxy_new(pol, &px, &err), 0, "%s", err.msg);
    cr_assert_eq(egress_listen(px, sock, "C1:1.2", (uid_t)-1, &lst, &err), 0, "%s", err.msg);
}

static void setup_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sock, sizeof sock, "%s/egress.sock", dir);
    snprintf(logpath, sizeof logpath, "%s/log", dir);
}

static void setup_servers(void)
{
    cr_assert_not_null(logf = fopen(logpath, "w+"));
    jb_log_init(JB_LOG_DEBUG, logf);
    origin_fd = tcp_listen(&origin_port);
    cr_assert_eq(pipe2(origin_stop, O_CLOEXEC), 0);
    cr_assert_eq(pthread_create(&origin_thr, NULL, origin_main, NULL), 0);
    char tests[64];
    snprintf(tests, sizeof tests, "allowed.test=127.0.0.1:%d", origin_port);
    start_proxy("allowed.test,*.wild.test", tests);
}

static void setup(void)
{
    time_limit(60);
    setup_dir();
    setup_servers();
}

static void teardown(void)
{
    egress_proxy_free(px); /* closes lst and drops every tunnel first */
    egress_policy_free(pol);
    cr_expect_eq(write(origin_stop[1], "x", 1), 1);
    pthread_join(origin_thr, NULL);
    close(origin_fd), close(origin_stop[0]), close(origin_stop[1]);
    jb_log_init(JB_LOG_INFO, NULL);
    fclose(logf);
    jb_rm_rf(dir, NULL);
}

static int dial(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    return fd;
}

static int (*dial_fn)(void) = dial; /* the hand-over tests dial inside a sandbox instead */

/* Wait until the proxy has no live connection (their threads run on after our close). */
static void wait_idle(void)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&px->pool.mu);
        int n = px->pool.nlive;
        pthread_mutex_unlock(&px->pool.mu);
        if (n == 0) return;
        poll(NULL, 0, 10);
    }
    cr_assert_fail("connections did not finish");
}

/* One request on a fresh connection; the reply until EOF (or 5 s) into buf. */
static const char *ask(const char *req, size_t reqlen, char *buf, size_t n)
{
    int fd = dial_fn();
    cr_assert_eq(send(fd, req, reqlen ? reqlen : strlen(req), MSG_NOSIGNAL),
                 (ssize_t)(reqlen ? reqlen : strlen(req)));
    read_some(fd, buf, n, NULL);
    close(fd);
    return buf;
}

static void expect_reply(const char *req, const char *status, const char *body_part)
{
    char buf[4096];
    ask(req, 0, buf, sizeof buf);
    cr_expect(strncmp(buf, status, strlen(status)) == 0, "%s -> %s", req, buf);
    if (body_part) cr_expect(strstr(buf, body_part), "%s -> %s (want %s)", req, buf, body_part);
}

static int open_tunnel(const char *host)
{
    int fd = dial_fn();
    char req[256], buf[256];
    int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    read_some(fd, buf, 40, "\r\n\r\n");
    cr_assert_str_eq(buf, "HTTP/1.1 200 Connection established\r\n\r\n");
    return fd;
}

static void check_basics(void)
{
    char buf[4096];
    unsigned char hello[TLS_HELLO_MAX];
    size_t n = tls_hello(hello, "allowed.test");
    int fd = open_tunnel("allowed.test:443");
    cr_assert_eq(send(fd, hello, n, MSG_NOSIGNAL), (ssize_t)n);
    cr_expect_eq(read_some(fd, buf, n + 1, NULL), n, "the origin echoes the ClientHello");
    cr_expect(memcmp(buf, hello, n) == 0);
    close(fd);
    ask("GET http://allowed.test/x?y=1 HTTP/1.1\r\nHost: allowed.test\r\nProxy-Authorization: "
        "Basic "
        "c2VjcmV0\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nUser-Agent: "
        "t\r\n\r\n",
        0, buf, sizeof buf);
    cr_expect(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
    cr_expect(strstr(buf, "\r\n\r\nGET /x?y=1 HTTP/1.1\r\nHost: allowed.test\r\nUser-Agent: t\r\n"
                          "Connection: close\r\n\r\n"),
              "%s", buf);
    cr_expect(!strstr(buf, "Proxy-") && !strstr(buf, "c2VjcmV0") && !strstr(buf, "keep-alive"));
    expect_reply("CONNECT notallowed.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ",
                 "notallowed.test is not on the allowlist. An admin can add it to "
                 "JANEBOT_EGRESS_ALLOW (for example JANEBOT_EGRESS_ALLOW=...,notallowed.test). "
                 "Retrying another way will not work.");
    expect_reply("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ",
                 "IP addresses are not allowed");
    expect_reply("CONNECT allowed.test:22 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "port 22");
    expect_reply("CONNECT allowed.test:80 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ",
                 "tunnels go to port 443 only");
    expect_reply("GET http://allowed.test:443/ HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ",
                 "port 443 is not allowed for http://");
}

/* A bulk tunnel (the bytes move by splice(2)): sends hello then len bytes of a pattern
 * and reads the origin's echo at the same time, then half-closes; what came back must be
 * exactly what went, and the EOF must come through both ways. */
static void bulk_echo(size_t len)
{
    unsigned char hello[TLS_HELLO_MAX];
    size_t hn = tls_hello(hello, "allowed.test");
    size_t total = hn + len, sent = 0, got = 0;
    unsigned char *out = malloc(total), *in = malloc(total + 1);
    cr_assert(out && in);
    memcpy(out, hello, hn);
    for (size_t i = hn; i < total; i++)
        out[i] = (unsigned char)(i * 131 % 251);
    int fd = open_tunnel("allowed.test:443");
    int64_t end = jb_mono_ms() + 20000;
    int eof = 0;
    while (!eof && jb_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        if (poll(&p, 1, 100) <= 0) continue;
        if ((p.revents & POLLOUT) && sent < total) {
            ssize_t w = send(fd, out + sent, total - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            cr_assert(w > 0 || errno == EAGAIN, "send: %s", strerror(errno));
            if (w > 0 && (sent += (size_t)w) == total) shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t r = recv(fd, in + got, total + 1 - got, MSG_DONTWAIT);
            if (r > 0) got += (size_t)r;
            eof = r == 0;
        }
    }
    close(fd);
    cr_assert(eof, "the origin's EOF came back (%zu of %zu bytes)", got, total);
    cr_assert_eq(got, total, "every byte echoed once");
    cr_assert(memcmp(in, out, total) == 0, "the same bytes, in order");
    free(out), free(in);
}

/* What the proxy counted for its egress bytes, from the metrics text. */
static long long counted(struct jb_metrics *m, const char *direction)
{
    struct jb_buf out = JB_BUF_INIT(1 << 20);
    struct jb_err e = {0};
    cr_assert_eq(jb_metrics_render(m, &out, &e), 0, "%s", e.msg);
    char key[128];
    snprintf(key, sizeof key, "janebot_proxy_bytes_total{proxy=\"egress\",direction=\"%s\"} ",
             direction);
    const char *at = strstr(out.data, key);
    long long v = at ? strtoll(at + strlen(key), NULL, 10) : -1;
    jb_buf_release(&out);
    return v;
}

/* The tunnel's bytes, both ways, with what the metrics count for them. */
static void check_bulk(void)
{
    struct jb_metrics *m = NULL;
    struct jb_err e = {0};
    cr_assert_eq(jb_metrics_new("t", &m, &e), 0, "%s", e.msg);
    wait_idle(); /* no connection reads px->metrics while it is set */
    egress_proxy_set_metrics(px, m);
    size_t len = (size_t)3 << 20;
    bulk_echo(len);
    wait_idle();
    unsigned char hello[TLS_HELLO_MAX];
    long long want = (long long)(tls_hello(hello, "allowed.test") + len);
    cr_expect_eq(counted(m, "upstream"), want, "client -> origin bytes counted");
    cr_expect_eq(counted(m, "downstream"), want, "origin -> client bytes counted");
    egress_proxy_set_metrics(px, NULL);
    jb_metrics_free(m);
}

TestSuite(proxy_e2e, .init = setup, .fini = teardown);

Test(proxy_e2e, tunnel_forward_and_refusals)
{
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    check_basics();
    wait_idle();
    FILE *f = fopen(logpath, "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        found += strstr(line, "egress C1:1.2: refused notallowed.test:443") != NULL;
    if (f) fclose(f);
    cr_expect_eq(found, 1, "one log line per refusal");
}

Test(proxy_e2e, more_refusals)
{
    const char *ip[] = {"[::1]:443", "2130706433:443",         "0x7f.1:443",  "0177.0.0.1:443",
                        "127.1:443", "[::ffff:127.0.0.1]:443", "10.0.0.1:443"};
    char req[128];
    for (size_t i = 0; i < JB_ARRAY_LEN(ip); i++) {
        snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\n\r\n", ip[i]);
        expect_reply(req, "HTTP/1.1 403 ", "IP addresses are not allowed");
    }
    expect_reply("GET http://10.0.0.1/ HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "IP addresses");
    expect_reply("CONNECT wild.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "not on the allowlist");
    expect_reply("CONNECT ALLOWED.TEST.:25 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "port 25");
    expect_reply("GET http://allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n", "HTTP/1.1 403 ",
                 "Host header");
    expect_reply("GET /x HTTP/1.1\r\nHost: allowed.test\r\n\r\n", "HTTP/1.1 400 ",
                 "not a proxy request");
    expect_reply("CONNECT a.wild.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 502 ", "cannot resolve");
    char buf[4096];
    ask("POST http://ALLOWED.test/p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 0, buf,
        sizeof buf);
    cr_expect(strstr(buf, "POST /p HTTP/1.1\r\nHost: allowed.test\r\n") &&
                  strstr(buf, "\r\n\r\nhello"),
              "%s", buf);
    cr_expect(!strstr(buf, "EXTRA"), "bytes past Content-Length are not forwarded: %s", buf);
}

Test(proxy_e2e, loopback_name_without_mapping_is_refused)
{
    egress_proxy_free(px);
    egress_policy_free(pol);
    start_proxy("localhost,allowed.test", NULL);
    /* Refused before any lookup (RFC 6761), so it holds where the resolver knows no
     * "localhost" as well. */
    expect_reply("CONNECT localhost:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "loopback");
    expect_reply("CONNECT api.localhost:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", NULL);
}

/* Through a tunnel to allowed.test: what comes back (the origin echoes) into buf. */
static size_t through_tunnel(const void *data, size_t n, char *buf, size_t cap)
{
    int fd = open_tunnel("allowed.test:443");
    cr_assert_eq(send(fd, data, n, MSG_NOSIGNAL), (ssize_t)n);
    size_t got = read_some(fd, buf, cap, NULL);
    close(fd);
    return got;
}

Test(proxy_e2e, a_bulk_tunnel_is_byte_exact_and_counted)
{
    check_bulk();
}

/* splice(2) cannot step over TCP urgent data: the proxy must not spin on it, nor stop. */
Test(proxy_e2e, urgent_data_from_the_origin_is_skipped_not_stuck_on)
{
    char buf[4096];
    ask("GET http://allowed.test/oob HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 0, buf, sizeof buf);
    const char *body = strstr(buf, "\r\n\r\n");
    cr_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
    cr_expect_str_eq(body ? body + 4 : "", "abcdef", "the body around the urgent byte");
}

Test(proxy_e2e, sni_must_match_the_connect_host)
{
    static const char denied[] = "\x15\x03\x03\x00\x02\x02\x31"; /* alert access_denied */
    unsigned char hello[TLS_HELLO_MAX], frag[4 * TLS_HELLO_MAX];
    char buf[4 * TLS_HELLO_MAX];
    size_t n = tls_hello(hello, "ALLOWED.test");
    cr_expect_eq(through_tunnel(hello, n, buf, n + 1), n, "any case: echoed");
    size_t fn = tls_reframe(hello, n, 10, frag);
    cr_expect_eq(through_tunnel(frag, fn, buf, fn + 1), fn, "fragmented: reassembled, echoed");
    const char *refused[] = {"other.test", "allowed.test.", NULL, "127.0.0.1"};
    for (size_t i = 0; i < JB_ARRAY_LEN(refused); i++) {
        n = tls_hello(hello, refused[i]);
        cr_expect_eq(through_tunnel(hello, n, buf, sizeof buf), 7, "%s", refused[i]);
        cr_expect(memcmp(buf, denied, 7) == 0, "%s: an access_denied alert", refused[i]);
    }
    cr_expect_eq(through_tunnel("GET / HTTP/1.1\r\n\r\n", 18, buf, sizeof buf), 0,
                 "not TLS: closed without a byte");
}

Test(proxy_e2e, connection_limit_and_hostile_input)
{
    int fds[EGRESS_MAX_PER_LISTENER];
    for (int i = 0; i < EGRESS_MAX_PER_LISTENER; i++)
        fds[i] = dial();
    expect_reply("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 503 ",
                 "too many connections from this sandbox");
    for (int i = 0; i < EGRESS_MAX_PER_LISTENER; i++)
        close(fds[i]);
    wait_idle();
    static char junk[20000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(1 + i * 7919 % 250); /* a first byte of 0 would be a hand-over */
    char buf[4096];
    int fd = dial();
    cr_expect_eq(send(fd, junk, 64, MSG_NOSIGNAL), 64);
    close(fd); /* half a head of junk, then gone */
    memcpy(junk + 100, "\r\n\r\n", 4);
    ask(junk, 104, buf, sizeof buf);
    cr_expect(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
    memset(junk, 'A', sizeof junk);
    ask(junk, sizeof junk, buf, sizeof buf);
    cr_expect(strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "%s", buf);
    expect_reply("CONNECT allowed.test:443 HTTP/1.1\r\nX: a\nY: b\r\n\r\n", "HTTP/1.1 400 ",
                 "bare LF");
    close(dial());  /* abrupt close before anything */
    check_basics(); /* still serving */
}

Test(proxy_e2e, listener_close_drops_a_live_tunnel)
{
    int fd = open_tunnel("allowed.test:443");
    unsigned char hello[TLS_HELLO_MAX];
    char buf[TLS_HELLO_MAX];
    size_t n = tls_hello(hello, "allowed.test");
    cr_assert_eq(send(fd, hello, n, MSG_NOSIGNAL), (ssize_t)n);
    cr_assert_eq(read_some(fd, buf, n + 1, NULL), n);
    int64_t t0 = jb_mono_ms();
    egress_listener_close(lst);
    cr_expect_lt(jb_mono_ms() - t0, 2000, "close waited %lld ms", (long long)(jb_mono_ms() - t0));
    cr_expect_eq(read_some(fd, buf, sizeof buf, NULL), 0, "the tunnel is gone");
    struct stat st;
    cr_expect_eq(stat(sock, &st), -1, "the socket is unlinked");
    close(fd);
}

Test(proxy_e2e, listen_replaces_stale_sockets_only)
{
    struct egress_listener *l2 = NULL;
    struct jb_err err = {0};
    char path[200];
    snprintf(path, sizeof path, "%s/file", dir);
    cr_assert_eq(jb_write_file(path, "x", 1, 0600, &err), 0, "%s", err.msg);
    cr_expect_eq(egress_listen(px, path, "k2", (uid_t)-1, &l2, &err), -1);
    cr_expect_eq(err.code, JB_ECONFIG, "%s", err.msg);
    snprintf(path, sizeof path, "%s/stale.sock", dir);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd); /* leaves a stale socket file behind */
    cr_assert_eq(egress_listen(px, path, "k2", getuid(), &l2, &err), 0, "%s", err.msg);
    egress_listener_close(l2);
    cr_expect_eq(access(path, F_OK), -1, "unlinked on close");
}

/* ---- the hand-over ----------------------------------------------------------------------------
 * A sandbox stand-in (sandbox-standin.h), forked before any thread starts. */

static pid_t sbx_pid = -1;
static int sbx_sp = -1;

static const char *sbx_ask(char cmd, char *line, size_t n)
{
    cr_assert_eq(write(sbx_sp, &cmd, 1), 1);
    ssize_t r = read(sbx_sp, line, n - 1);
    cr_assert_gt(r, 0, "the sandbox stand-in died");
    line[r] = '\0';
    return line;
}

static int dial_sandbox(void)
{
    char cmd = 'd';
    cr_assert_eq(write(sbx_sp, &cmd, 1), 1);
    int fd = sbx_recv_fd(sbx_sp);
    cr_assert_geq(fd, 0, "no socket from the sandbox stand-in");
    return fd;
}

static void handoff_setup(void)
{
    time_limit(60);
    setup_dir();
    int sp[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    sbx_pid = fork();
    cr_assert_geq(sbx_pid, 0);
    if (sbx_pid == 0) close(sp[0]), sbx_main(sp[1], sock);
    close(sp[1]);
    sbx_sp = sp[0];
    dial_fn = dial_sandbox;
    setup_servers();
}

static void handoff_teardown(void)
{
    close(sbx_sp);
    waitpid(sbx_pid, NULL, 0);
    teardown();
}

Test(proxy_handoff, the_sandbox_listener_served_by_the_proxy, .init = handoff_setup,
     .fini = handoff_teardown)
{
    char line[1024];
    sbx_ask('h', line, sizeof line);
    if (!strncmp(line, "skip:", 5)) cr_skip_test("%s", line);
    cr_assert_str_eq(line, "0 ", "handed over: %s", line);
    check_basics(); /* every connection now comes through the listener handed over */
    check_bulk();   /* one spliced hop */
    /* A connection of the sandbox's own is never a hand-over, whatever it starts with. */
    int fd = dial_sandbox();
    cr_assert_eq(send(fd, "\0\r\n\r\n", 5, MSG_NOSIGNAL), 5);
    char buf[256];
    read_some(fd, buf, sizeof buf, "\r\n");
    cr_expect(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
    close(fd);
    /* One listener per socket: a second is refused, and the first still serves. */
    sbx_ask('h', line, sizeof line);
    cr_expect(strstr(line, "-1 ") == line && strstr(line, "a listener came already"), "%s", line);
    expect_reply("CONNECT notallowed.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "allowlist");
}

/* What the proxy refuses to take: only a listening TCP socket on a sandbox's own
 * 127.0.0.1 is one. Each refusal says why, and the socket goes on serving HTTP. */
Test(proxy_handoff, what_is_not_a_sandbox_listener_is_refused, .init = setup, .fini = teardown)
{
    struct jb_err err = {0};
    int port, host = tcp_listen(&port); /* the host's own network: never a sandbox's */
    cr_expect_eq(proxy_hand_over(host, sock, &err), -1);
    cr_expect(strstr(err.msg, "refused the listener: a socket of the host's network"), "%s",
              err.msg);
    int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* not listening */
    cr_expect_eq(proxy_hand_over(idle, sock, &err), -1);
    cr_expect(strstr(err.msg, "not listening"), "%s", err.msg);
    int unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_expect_eq(proxy_hand_over(unix_fd, sock, &err), -1);
    cr_expect(strstr(err.msg, "not a TCP/IPv4 socket"), "%s", err.msg);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_expect_eq(proxy_hand_over(devnull, sock, &err), -1);
    cr_expect(strstr(err.msg, "not a socket"), "%s", err.msg);
    close(host), close(idle), close(unix_fd), close(devnull);
    /* The marker with no descriptor. */
    int fd = dial();
    cr_assert_eq(send(fd, "\0GET", 4, MSG_NOSIGNAL), 4);
    char buf[256];
    read_some(fd, buf, sizeof buf, "\n");
    cr_expect_str_eq(buf, "no descriptor came with the marker\n");
    close(fd);
    cr_expect_eq(proxy_hand_over(host, "/nonexistent/egress.sock", &err), -1);
    expect_reply("CONNECT notallowed.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 ", "allowlist");
}
