/* tests/unit/test_http_client.c -- janebot's HTTP/1.1 client (util.h) against a scripted
 * server on 127.0.0.1 (http-server.h): the exact request it sends, each way an answer's
 * body may be framed, keep-alive and the one retry on a connection the server closed,
 * deadlines, cancelling, limits and what it refuses to send. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "http-server.h"
#include "util/util.h"
#include "time-limit.h"

static struct srv S;
static struct jb_http *H;

static void setup(void)
{
    time_limit(30);
    signal(SIGPIPE, SIG_IGN); /* as main() does */
    struct jb_err err = {0};
    H = jb_http_new(0, &err);
    cr_assert_not_null(H, "%s", err.msg);
}

static void teardown(void)
{
    jb_http_free(H);
    srv_free(&S);
}

TestSuite(http_client, .init = setup, .fini = teardown);

/* What the callbacks saw. */
struct got {
    int heads, status;
    char reason[64];
    char headers[4096]; /* "name=value\n" each */
    char body[300000];
    size_t body_len;
    int cancel_after_ms; /* cancelled() turns true this long after the first call */
    int64_t first_call;
    const char *src; /* read() body */
    size_t src_len, src_off;
    int rewinds, fail_head;
};

static int on_head(void *ud, int status, const char *reason, size_t rl,
                   const struct jb_http_header *h, size_t n)
{
    struct got *g = ud;
    g->heads++, g->status = status;
    snprintf(g->reason, sizeof g->reason, "%.*s", (int)rl, reason);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(g->headers + o, sizeof g->headers - o, "%.*s=%.*s\n",
                              (int)h[i].name_len, h[i].name, (int)h[i].value_len, h[i].value);
    return g->fail_head ? -1 : 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    struct got *g = ud;
    cr_assert_leq(g->body_len + n, sizeof g->body);
    memcpy(g->body + g->body_len, p, n);
    g->body_len += n;
    return 0;
}

static int cancel_later(void *ud)
{
    struct got *g = ud;
    if (!g->first_call) g->first_call = jb_mono_ms();
    return jb_mono_ms() - g->first_call >= g->cancel_after_ms;
}

static ssize_t read_src(void *ud, char *buf, size_t cap)
{
    struct got *g = ud;
    size_t n = g->src_len - g->src_off < 1000 ? g->src_len - g->src_off : 1000;
    if (n > cap) n = cap;
    memcpy(buf, g->src + g->src_off, n);
    g->src_off += n;
    return (ssize_t)n;
}

static int rewind_src(void *ud)
{
    struct got *g = ud;
    g->src_off = 0, g->rewinds++;
    return 0;
}

static char url[128];

static const char *srv_url(const char *path)
{
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", S.port, path);
    return url;
}

static struct jb_http_req req(struct got *g, const char *u)
{
    return (struct jb_http_req){
        .url = u, .on_head = on_head, .on_body = on_body, .ud = g, .timeout_ms = 10000};
}

static int run(const struct jb_http_req *rq, struct jb_http_resp *rs, struct jb_err *err)
{
    memset(err, 0, sizeof *err);
    return jb_http_request(H, rq, rs, err);
}

static void expect_request(int i, const char *want)
{
    cr_assert_gt(S.nreq, i, "request %d never came", i);
    cr_expect(S.req_len[i] == strlen(want) && memcmp(S.req[i], want, S.req_len[i]) == 0,
              "request %d:\n%.*s\nwanted:\n%s", i, (int)S.req_len[i], S.req[i], want);
}

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Y:  v w \r\n\r\nhello"

Test(http_client, a_get_sends_the_exact_head_and_reads_the_answer)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    struct got g = {0};
    const char *hdrs[] = {"X-Token: abc", "Accept: */*", NULL};
    struct jb_http_req rq = req(&g, srv_url("/a/b?c=1&d"));
    rq.headers = hdrs;
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.status == 200 && rs.complete && rs.sent && !rs.too_big);
    cr_expect_eq(g.heads, 1);
    cr_expect_str_eq(g.reason, "OK");
    cr_expect_str_eq(g.headers, "Content-Length=5\nX-Y=v w\n");
    cr_expect(g.body_len == 5 && memcmp(g.body, "hello", 5) == 0);
    srv_stop(&S);
    char want[256];
    snprintf(want, sizeof want,
             "GET /a/b?c=1&d HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: janebot\r\n"
             "X-Token: abc\r\nAccept: */*\r\n\r\n",
             S.port);
    expect_request(0, want);
}

Test(http_client, a_post_sends_its_body_with_a_length)
{
    static char big[200000];
    memset(big, 'z', sizeof big);
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    S.steps[1] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    struct got g = {0};
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct jb_http_req rq = req(&g, srv_url("/post"));
    rq.headers = hdrs, rq.body = "a=1&b=2", rq.body_len = 7;
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    rq.method = "PUT", rq.headers = NULL, rq.body = big, rq.body_len = sizeof big;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    srv_stop(&S);
    char want[256];
    snprintf(want, sizeof want,
             "POST /post HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: janebot\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\n"
             "a=1&b=2",
             S.port);
    expect_request(0, want);
    int hl = snprintf(want, sizeof want,
                      "PUT /post HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: janebot\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      S.port, sizeof big);
    cr_assert_eq(S.req_len[1], (size_t)hl + sizeof big);
    cr_expect(memcmp(S.req[1], want, (size_t)hl) == 0, "%.*s", hl, S.req[1]);
    cr_expect(memcmp(S.req[1] + hl, big, sizeof big) == 0);
    cr_expect_eq(S.accepts, 1);
}

Test(http_client, a_chunked_body_in_pieces_with_extensions_and_trailers)
{
    S.steps[0] = (struct srv_step){.answer = "HTTP/1.1 200 Fine Then\r\nTransfer-Encoding: chunked"
                                             "\r\nX-A: 1\r\n\r\n5;ext=\"x y\"\r\nhello\r\n"
                                             "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                                   .bytewise = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.complete && rs.status == 200);
    cr_expect_str_eq(g.reason, "Fine Then");
    cr_expect_str_eq(g.headers, "Transfer-Encoding=chunked\nX-A=1\n");
    cr_expect(g.body_len == 11 && memcmp(g.body, "hello world", 11) == 0, "%.*s", (int)g.body_len,
              g.body);
}

Test(http_client, a_body_that_runs_to_the_close)
{
    S.steps[0] = (struct srv_step){.answer = "HTTP/1.1 200 OK\r\n\r\nall of it", .close = 1};
    S.steps[1] = (struct srv_step){.answer = "HTTP/1.0 200 OK\r\n\r\nagain", .close = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.complete);
    cr_expect(g.body_len == 9 && memcmp(g.body, "all of it", 9) == 0);
    g.body_len = 0;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(g.body_len == 5 && memcmp(g.body, "again", 5) == 0);
    cr_expect_eq(S.accepts, 2);
}

Test(http_client, interim_answers_are_skipped)
{
    S.steps[0] = (struct srv_step){.answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing"
                                             "\r\nX-I: 1\r\n\r\nHTTP/1.1 201 Created\r\n"
                                             "Content-Length: 2\r\n\r\nok",
                                   .bytewise = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect_eq(g.heads, 1);
    cr_expect_eq(rs.status, 201);
    cr_expect_str_eq(g.headers, "Content-Length=2\n");
    cr_expect(g.body_len == 2 && memcmp(g.body, "ok", 2) == 0);
}

Test(http_client, a_kept_alive_connection_is_used_again)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    S.steps[1] = (struct srv_step){.answer = "HTTP/1.1 204 No Content\r\n\r\n"};
    S.steps[2] = (struct srv_step){.answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"};
    S.steps[3] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect_eq(rs.status, 204);
    rq.method = "HEAD"; /* a length, but no body */
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    rq.method = NULL;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.complete && rs.status == 200);
    cr_expect_eq(g.body_len, 10);
    cr_expect_eq(S.nreq, 4);
    cr_expect_eq(S.accepts, 1);
}

Test(http_client, a_kept_alive_connection_the_server_closed_is_not_used)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO, .close = 1};
    S.steps[1] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    /* A body that cannot be read again: only a connection found closed before use, not a
     * retry, lets the second request through. */
    struct got g = {.src = "0123", .src_len = 4};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.read = read_src, rq.body_len = 4;
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    usleep(100000); /* the server's FIN arrives */
    g.src_off = 0;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.status == 200 && g.body_len == 10);
    cr_expect_eq(S.accepts, 2);
}

/* With room for one idle connection, the older origin's is closed for the newer's. */
Test(http_client, idle_connections_past_max_idle_are_closed)
{
    static struct srv S2;
    struct jb_err err;
    jb_http_free(H);
    H = jb_http_new(1, &err);
    for (int i = 0; i < 3; i++)
        S.steps[i] = S2.steps[i] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    srv_start(&S2);
    char u2[64];
    snprintf(u2, sizeof u2, "http://127.0.0.1:%u/", S2.port);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/")), rq2 = req(&g, u2);
    struct jb_http_resp rs;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_assert_eq(run(&rq2, &rs, &err), 0, "%s", err.msg);
    cr_assert_eq(run(&rq2, &rs, &err), 0, "%s", err.msg);
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    srv_free(&S2);
    cr_expect_eq(S.accepts, 2);
}

/* The server reads the second request and closes without answering, as one does whose
 * keep-alive timer fired just then: the request goes again, once, with its body read
 * again from the start. */
Test(http_client, a_request_the_kept_alive_connection_lost_goes_again_once)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    S.steps[1] = (struct srv_step){.close = 1};
    S.steps[2] = (struct srv_step){.answer = OK_HELLO, .close = 1};
    S.steps[3] = (struct srv_step){.close = 1};
    srv_start(&S);
    struct got g = {.src = "0123456789abcdef", .src_len = 16};
    struct jb_http_req rq = req(&g, srv_url("/up"));
    rq.read = read_src, rq.rewind = rewind_src, rq.body_len = 16;
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    g.rewinds = 0, g.src_off = 0;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    cr_expect(rs.status == 200 && rs.complete);
    cr_expect_eq(g.rewinds, 1);
    cr_expect_eq(S.accepts, 2);
    /* A new connection closed before an answer is not tried again. */
    g.src_off = 0;
    cr_assert_eq(run(&rq, &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL, "%s", err.msg);
    cr_expect(strstr(err.msg, "closed the connection before answering"), "%s", err.msg);
    srv_stop(&S);
    cr_expect_eq(S.nreq, 4);
    char want[256];
    snprintf(want, sizeof want,
             "POST /up HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: janebot\r\n"
             "Content-Length: 16\r\n\r\n0123456789abcdef",
             S.port);
    for (int i = 0; i < 4; i++)
        expect_request(i, want);
}

Test(http_client, a_reused_connection_is_not_retried_when_the_body_cannot_go_again)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    S.steps[1] = (struct srv_step){.close = 1};
    srv_start(&S);
    struct got g = {.src = "0123456789abcdef", .src_len = 16};
    struct jb_http_req rq = req(&g, srv_url("/up"));
    rq.read = read_src, rq.body_len = 16; /* no rewind */
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), 0, "%s", err.msg);
    g.src_off = 0;
    cr_assert_eq(run(&rq, &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL, "%s", err.msg);
    cr_expect(rs.sent && !rs.complete && rs.status == 0);
    cr_expect_eq(S.accepts, 1);
}

Test(http_client, a_refused_connection_is_unavailable_and_nothing_was_sent)
{
    unsigned port;
    int fd = srv_listen(&port);
    close(fd);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", port);
    struct got g = {0};
    struct jb_http_req rq = req(&g, u);
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL);
    char want[96];
    snprintf(want, sizeof want, "connect to 127.0.0.1:%u: Connection refused", port);
    cr_expect_str_eq(err.msg, want);
    cr_expect(!rs.sent && !rs.status && !rs.complete);
}

Test(http_client, a_name_that_does_not_resolve)
{
    struct got g = {0};
    struct jb_http_req rq = req(&g, "http://no-such-host.invalid/");
    struct jb_http_resp rs;
    struct jb_err err;
    cr_assert_eq(run(&rq, &rs, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL);
    cr_expect(strstr(err.msg, "could not resolve no-such-host.invalid: "), "%s", err.msg);
    cr_expect(!rs.sent);
}

static void expect_fails(struct jb_http_req *rq, enum jb_code code, const char *part,
                         struct jb_http_resp *rs)
{
    struct jb_err err;
    cr_assert_eq(run(rq, rs, &err), -1);
    cr_expect_eq(err.code, code, "%s: %s", jb_strerror(err.code), err.msg);
    cr_expect(strstr(err.msg, part), "%s (wanted %s)", err.msg, part);
}

Test(http_client, a_server_that_never_answers_times_out)
{
    S.steps[0] = (struct srv_step){.stall = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.timeout_ms = 300;
    struct jb_http_resp rs;
    int64_t t0 = jb_mono_ms();
    char want[96];
    snprintf(want, sizeof want, "timed out after 300 ms waiting for 127.0.0.1:%u", S.port);
    expect_fails(&rq, JB_ETIMEOUT, want, &rs);
    cr_expect_geq(jb_mono_ms() - t0, 300);
    cr_expect(rs.sent && !rs.complete);
}

Test(http_client, a_server_silent_mid_answer_times_out)
{
    S.steps[0] =
        (struct srv_step){.answer = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart", .stall = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.timeout_ms = 0, rq.idle_timeout_ms = 300;
    struct jb_http_resp rs;
    expect_fails(&rq, JB_ETIMEOUT, "timed out after 300 ms of silence", &rs);
    cr_expect(rs.status == 200 && !rs.complete && g.body_len == 4);
}

Test(http_client, cancelled_ends_the_wait)
{
    S.steps[0] = (struct srv_step){.stall = 1};
    srv_start(&S);
    struct got g = {.cancel_after_ms = 300};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.timeout_ms = 0, rq.cancelled = cancel_later;
    struct jb_http_resp rs;
    int64_t t0 = jb_mono_ms();
    expect_fails(&rq, JB_ECANCEL, "cancelled", &rs);
    cr_expect_lt(jb_mono_ms() - t0, 5000);
}

Test(http_client, on_head_refusing_cancels)
{
    S.steps[0] = (struct srv_step){.answer = OK_HELLO};
    srv_start(&S);
    struct got g = {.fail_head = 1};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    expect_fails(&rq, JB_ECANCEL, "cancelled", &rs);
    cr_expect(g.body_len == 0 && !rs.complete);
}

Test(http_client, a_body_over_max_body_is_refused)
{
    S.steps[0] = (struct srv_step){.answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"};
    S.steps[1] = (struct srv_step){.answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                             "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.max_body = 10;
    struct jb_http_resp rs;
    expect_fails(&rq, JB_EPROTO, "answer body over 10 bytes", &rs);
    cr_expect(rs.too_big && rs.status == 200 && !rs.complete);
    expect_fails(&rq, JB_EPROTO, "answer body over 10 bytes", &rs);
    cr_expect(rs.too_big && g.body_len == 8);
}

Test(http_client, a_malformed_answer_is_refused)
{
    S.steps[0] = (struct srv_step){.answer = "HTTP/1.1 abc\r\n\r\n"};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    char want[96];
    snprintf(want, sizeof want, "malformed answer from 127.0.0.1:%u: ", S.port);
    expect_fails(&rq, JB_EPROTO, want, &rs);
    cr_expect(!rs.complete && !rs.status && g.heads == 0);
}

Test(http_client, an_answer_head_too_large_is_refused)
{
    static char big[90000];
    int n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 101; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "X-%d: 1\r\n", i);
    snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    S.steps[0] = (struct srv_step){.answer = big};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    struct jb_http_resp rs;
    expect_fails(&rq, JB_EPROTO, "answer head too large", &rs);
    cr_expect_eq(g.heads, 0);
}

Test(http_client, what_the_client_will_not_send)
{
    struct got g = {0};
    struct jb_http_req rq = req(&g, "http://127.0.0.1:9/");
    struct jb_http_resp rs;
    const char *crlf[] = {"X-A: 1\r\nX-B: 2", NULL};
    rq.headers = crlf;
    expect_fails(&rq, JB_EPROTO, "CR or LF", &rs);
    const char *lf[] = {"X-A: ok", "X-B: 1\n", NULL};
    rq.headers = lf;
    expect_fails(&rq, JB_EPROTO, "request header 2 holds a CR or LF", &rs);
    const char *host[] = {"host: evil.example.com", NULL};
    rq.headers = host;
    expect_fails(&rq, JB_EPROTO, "header host is set by the client", &rs);
    const char *cl[] = {"Content-LENGTH: 3", NULL};
    rq.headers = cl;
    expect_fails(&rq, JB_EPROTO, "set by the client", &rs);
    const char *te[] = {"Transfer-Encoding: chunked", NULL};
    rq.headers = te;
    expect_fails(&rq, JB_EPROTO, "set by the client", &rs);
    const char *conn[] = {"Connection: close", NULL};
    rq.headers = conn;
    expect_fails(&rq, JB_EPROTO, "set by the client", &rs);
    const char *nocolon[] = {"X-A 1", NULL};
    rq.headers = nocolon;
    expect_fails(&rq, JB_EPROTO, "Name: value", &rs);
    rq.headers = NULL, rq.method = "GET /x";
    expect_fails(&rq, JB_EPROTO, "bad request method", &rs);
    rq.method = NULL, rq.url = "ftp://127.0.0.1/";
    expect_fails(&rq, JB_EPROTO, "bad URL: ", &rs);
    cr_expect(!rs.sent);
}

static ssize_t read_fails(void *ud, char *buf, size_t cap)
{
    (void)ud, (void)buf, (void)cap;
    return -1;
}

static ssize_t read_short(void *ud, char *buf, size_t cap)
{
    struct got *g = ud;
    if (g->src_off) return 0;
    g->src_off = 1;
    memset(buf, 'x', cap < 10 ? cap : 10);
    return cap < 10 ? (ssize_t)cap : 10;
}

Test(http_client, a_body_reader_that_gives_up_or_ends_early)
{
    S.steps[0] = (struct srv_step){.stall = 1};
    srv_start(&S);
    struct got g = {0};
    struct jb_http_req rq = req(&g, srv_url("/"));
    rq.read = read_fails, rq.body_len = 100;
    struct jb_http_resp rs;
    expect_fails(&rq, JB_ECANCEL, "the request body could not be read", &rs);
    rq.read = read_short;
    expect_fails(&rq, JB_EPROTO, "the request body ended after 10 of 100 bytes", &rs);
    cr_expect(rs.sent && !rs.complete);
}

/* A listener whose backlog is full drops further SYNs: a connection that never
 * completes. */
Test(http_client, a_connection_that_never_completes_times_out)
{
    unsigned port;
    int lfd = srv_listen(&port);
    listen(lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", port);
    struct got g = {0};
    struct jb_http_req rq = req(&g, u);
    rq.connect_timeout_ms = 300;
    struct jb_http_resp rs;
    char want[96];
    snprintf(want, sizeof want, "timed out after 300 ms waiting for 127.0.0.1:%u to connect", port);
    int64_t t0 = jb_mono_ms();
    expect_fails(&rq, JB_ETIMEOUT, want, &rs);
    cr_expect_geq(jb_mono_ms() - t0, 300);
    cr_expect(!rs.sent);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

/* Threads sharing one client, each with a server of its own: the idle list is taken from
 * and given back to at once, with fewer places than connections (run under TSan too). */
struct worker {
    struct srv srv;
    int ok;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", w->srv.port);
    for (int i = 0; i < SRV_STEPS; i++) {
        struct got g = {0};
        struct jb_http_req rq = req(&g, u);
        struct jb_http_resp rs;
        struct jb_err err;
        if (jb_http_request(H, &rq, &rs, &err) == 0 && rs.status == 200 && g.body_len == 5) w->ok++;
    }
    return NULL;
}

Test(http_client, threads_share_one_client)
{
    static struct worker w[4];
    pthread_t t[4];
    jb_http_free(H);
    struct jb_err err;
    H = jb_http_new(2, &err);
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < SRV_STEPS; k++)
            w[i].srv.steps[k] = (struct srv_step){.answer = OK_HELLO};
        srv_start(&w[i].srv);
    }
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].ok, SRV_STEPS, "thread %d: %d of %d", i, w[i].ok, SRV_STEPS);
        srv_free(&w[i].srv);
    }
}
