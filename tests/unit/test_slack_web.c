/* tests/unit/test_slack_web.c -- slack/web.c and web-files.c against a tiny scripted HTTP/1.1
 * server on 127.0.0.1 (threads of this test process): headers, bodies, error mapping,
 * retries, pagination, the upload flow, and that tokens never leak into errors or logs.
 * Real response bodies come from conformance/slack/web_api/ (JANEBOT_CONFORMANCE_DIR, else
 * ../shared/conformance); tests that need them are skipped when they are absent. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "slack/slack.h"
#include "time-limit.h"

#define BOT_TOKEN "xoxb-1111-2222-testbottoken"
#define APP_TOKEN "xapp-1-A0JANEBOT1-3333-testapptoken"
#define MAX_REQS  128
#define MAX_CONNS 64
#define MAX_BODY  ((size_t)4 << 20)

struct reply {
    int status;
    char *headers; /* extra header lines, each ending in \r\n; owned, may be NULL */
    char *body;    /* owned */
    int hang;      /* read the request, never answer */
};

struct req_rec {
    char method[8], path[256];
    char *headers; /* the raw header block */
    char *body;
    size_t len;
};

/* The server: one acceptor thread, one thread per connection; all under mu. */
static struct {
    int lfd, port, stop;
    pthread_t acceptor;
    pthread_t conn_thr[MAX_CONNS];
    int conn_fd[MAX_CONNS], nconns;
    pthread_mutex_t mu;
    struct reply script[8], dflt;
    int nscript, next;
    struct req_rec reqs[MAX_REQS];
    int nreqs;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct slack_web *w;
static char api_url[64];

/* ---- the server ---------------------------------------------------------------------- */

/* Read one request from fd into r; buf holds bytes read ahead. 0 at EOF. */
static int read_request(int fd, char *buf, size_t *have, struct req_rec *r)
{
    char *end;
    while (!(end = memmem(buf, *have, "\r\n\r\n", 4))) {
        if (*have == MAX_BODY) return 0;
        ssize_t n = read(fd, buf + *have, MAX_BODY - *have);
        if (n <= 0) return 0;
        *have += (size_t)n;
    }
    size_t hlen = (size_t)(end - buf) + 4, clen = 0;
    r->headers = strndup(buf, hlen);
    const char *cl = strcasestr(r->headers, "\r\ncontent-length:");
    if (cl) clen = strtoul(cl + 17, NULL, 10);
    /* No cr_assert off the test's thread: a bad request just ends the connection. */
    if (sscanf(buf, "%7s %255s", r->method, r->path) != 2 || hlen + clen > MAX_BODY) return 0;
    while (*have < hlen + clen) {
        ssize_t n = read(fd, buf + *have, MAX_BODY - *have);
        if (n <= 0) return 0;
        *have += (size_t)n;
    }
    r->body = malloc(clen + 1);
    memcpy(r->body, buf + hlen, clen);
    r->body[clen] = '\0';
    r->len = clen;
    memmove(buf, buf + hlen + clen, *have - hlen - clen);
    *have -= hlen + clen;
    return 1;
}

/* Record r and pick the next scripted reply (a copy of the pointers; the script owns them). */
static struct reply take_reply(struct req_rec *r)
{
    pthread_mutex_lock(&srv.mu);
    if (srv.nreqs < MAX_REQS)
        srv.reqs[srv.nreqs++] = *r;
    else
        free(r->headers), free(r->body);
    struct reply rep = srv.next < srv.nscript ? srv.script[srv.next++] : srv.dflt;
    pthread_mutex_unlock(&srv.mu);
    return rep;
}

static void wait_for_eof(int fd)
{
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (!__atomic_load_n(&srv.stop, __ATOMIC_RELAXED))
        if (poll(&p, 1, 50) > 0 && read(fd, &c, 1) <= 0) return;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(MAX_BODY);
    size_t have = 0;
    struct req_rec r;
    while (memset(&r, 0, sizeof r), read_request(fd, buf, &have, &r)) {
        struct reply rep = take_reply(&r);
        memset(&r, 0, sizeof r); /* recorded: srv.reqs owns it now */
        if (rep.hang) {
            wait_for_eof(fd);
            break;
        }
        const char *body = rep.body ? rep.body : "{\"ok\":false,\"error\":\"no_script\"}";
        char *out = NULL;
        int n = asprintf(&out, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n%s",
                         rep.status ? rep.status : 200, strlen(body),
                         rep.headers ? rep.headers : "", body);
        ssize_t wr = n > 0 ? send(fd, out, (size_t)n, MSG_NOSIGNAL) : -1;
        free(out);
        if (wr != n) break;
    }
    free(r.headers);
    free(r.body);
    free(buf);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return NULL; /* shut down */
        pthread_mutex_lock(&srv.mu);
        if (srv.nconns < MAX_CONNS &&
            pthread_create(&srv.conn_thr[srv.nconns], NULL, conn_main, (void *)(intptr_t)fd) == 0)
            srv.conn_fd[srv.nconns++] = fd;
        else
            close(fd); /* the test then sees the failed call */
        pthread_mutex_unlock(&srv.mu);
    }
}

static struct slack_web *client(const char *url, int max_retries, long timeout_ms)
{
    struct slack_web_opts o = {.api_url = url,
                               .bot_token = BOT_TOKEN,
                               .app_token = APP_TOKEN,
                               .max_retries = max_retries,
                               .timeout_ms = timeout_ms,
                               .backoff_ms = 10};
    struct slack_web *c = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_web_new(&o, &c, &err), 0, "%s", err.msg);
    return c;
}

static void setup(void)
{
    time_limit(20);
    jb_log_init(JB_LOG_ERROR, NULL);
    const char *proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < JB_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]); /* 127.0.0.1 must be reached directly */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(srv.lfd >= 0 && bind(srv.lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(srv.lfd, 64) == 0 && getsockname(srv.lfd, (struct sockaddr *)&a, &al) == 0);
    srv.port = ntohs(a.sin_port);
    snprintf(api_url, sizeof api_url, "http://127.0.0.1:%d/api/", srv.port);
    cr_assert_eq(pthread_create(&srv.acceptor, NULL, accept_main, NULL), 0);
    w = client(api_url, 3, 2000);
}

static void reply_free(struct reply *r)
{
    free(r->headers);
    free(r->body);
}

static void teardown(void)
{
    slack_web_free(w); /* closes the client's connections first */
    __atomic_store_n(&srv.stop, 1, __ATOMIC_RELAXED);
    shutdown(srv.lfd, SHUT_RDWR);
    pthread_join(srv.acceptor, NULL);
    close(srv.lfd);
    for (int i = 0; i < srv.nconns; i++) {
        shutdown(srv.conn_fd[i], SHUT_RDWR);
        pthread_join(srv.conn_thr[i], NULL);
        close(srv.conn_fd[i]);
    }
    for (int i = 0; i < srv.nreqs; i++)
        free(srv.reqs[i].headers), free(srv.reqs[i].body);
    for (int i = 0; i < srv.nscript; i++)
        reply_free(&srv.script[i]);
    reply_free(&srv.dflt);
}

TestSuite(slack_web, .init = setup, .fini = teardown);

/* ---- scripting helpers --------------------------------------------------------------- */

static char *fixture(const char *name)
{
    const char *dir = getenv("JANEBOT_CONFORMANCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/slack/web_api/%s", dir && *dir ? dir : "../shared/conformance",
             name);
    char *s = NULL;
    struct jb_err err = {0};
    if (jb_read_file(path, 1 << 20, &s, NULL, &err) < 0) cr_skip_test("no fixture %s", path);
    return s;
}

static void script(int status, const char *headers, char *body)
{
    cr_assert_lt(srv.nscript, (int)JB_ARRAY_LEN(srv.script));
    srv.script[srv.nscript++] = (struct reply){status, headers ? strdup(headers) : NULL, body, 0};
}

static void script_fixture(const char *name)
{
    script(200, NULL, fixture(name));
}

static void script_default(int status, const char *body)
{
    srv.dflt = (struct reply){status, NULL, strdup(body), 0};
}

static int nreqs(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.nreqs;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* The value of header name in request i ("" when absent); into a static buffer. */
static const char *req_header(int i, const char *name)
{
    static char val[512];
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(srv.reqs[i].headers, key);
    if (!p) return "";
    p += strlen(key);
    p += strspn(p, " ");
    snprintf(val, sizeof val, "%.*s", (int)strcspn(p, "\r"), p);
    return val;
}

static json_t *req_json(int i)
{
    json_t *j = json_loads(srv.reqs[i].body, 0, NULL);
    cr_assert_not_null(j, "request %d body is not JSON: %s", i, srv.reqs[i].body);
    return j;
}

static void assert_no_token(const struct jb_err *err)
{
    cr_assert_null(strstr(err->msg, BOT_TOKEN), "bot token in: %s", err->msg);
    cr_assert_null(strstr(err->msg, APP_TOKEN), "app token in: %s", err->msg);
    cr_assert_null(strstr(err->msg, "testbottoken"), "token part in: %s", err->msg);
}

/* ---- headers and bodies -------------------------------------------------------------- */

Test(slack_web, auth_test_sends_bot_token_form_encoded)
{
    script_fixture("auth_test.json");
    char *uid = NULL, *bid = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_auth_test(w, &uid, &bid, &err), 0, "%s", err.msg);
    cr_expect_str_eq(uid, "U0JANEBOT");
    cr_expect_str_eq(bid, "B0JANEBOT");
    free(uid);
    free(bid);
    cr_assert_eq(nreqs(), 1);
    cr_expect_str_eq(srv.reqs[0].method, "POST");
    cr_expect_str_eq(srv.reqs[0].path, "/api/auth.test");
    cr_expect_str_eq(req_header(0, "Authorization"), "Bearer " BOT_TOKEN);
    cr_expect_str_eq(req_header(0, "Content-Type"), "application/x-www-form-urlencoded");
    cr_expect_eq(srv.reqs[0].len, 0);
}

Test(slack_web, connections_open_uses_app_token)
{
    script(200, NULL,
           strdup("{\"ok\":true,\"url\":\"wss://wss-primary.slack.com/link/?ticket=t1\"}"));
    char *url = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_connections_open(w, &url, &err), 0, "%s", err.msg);
    cr_expect_str_eq(url, "wss://wss-primary.slack.com/link/?ticket=t1");
    free(url);
    cr_expect_str_eq(srv.reqs[0].path, "/api/apps.connections.open");
    cr_expect_str_eq(req_header(0, "Authorization"), "Bearer " APP_TOKEN);
    cr_expect_null(strstr(srv.reqs[0].headers, BOT_TOKEN));
    cr_expect_eq(srv.reqs[0].len, 0, "no token or anything else in the body");
}

Test(slack_web, post_message_sends_json)
{
    script_fixture("chat_postMessage_ok.json");
    char *ts = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_post_message(w, "C0DEVCHAN1", "1717171717.000100", "*hi* & <b>", &ts, &err),
                 0, "%s", err.msg);
    cr_expect_str_eq(ts, "1717171720.000200");
    free(ts);
    cr_expect_str_eq(srv.reqs[0].path, "/api/chat.postMessage");
    cr_expect_str_eq(req_header(0, "Authorization"), "Bearer " BOT_TOKEN);
    cr_expect_str_eq(req_header(0, "Content-Type"), "application/json; charset=utf-8");
    json_auto_t *j = req_json(0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "channel")), "C0DEVCHAN1");
    cr_expect_str_eq(json_string_value(json_object_get(j, "thread_ts")), "1717171717.000100");
    cr_expect_str_eq(json_string_value(json_object_get(j, "text")), "*hi* & <b>");
    cr_expect(json_is_false(json_object_get(j, "unfurl_links")));
    cr_expect_null(json_object_get(j, "token"));
}

Test(slack_web, form_encoding_escapes_and_sends_arrays_as_json)
{
    script_default(200, "{\"ok\":true}");
    json_auto_t *args = json_pack("{s:s, s:i, s:b, s:[{s:i}], s:n}", "text", "a b&c=d/\xc3\xa9",
                                  "limit", 15, "inclusive", 1, "blocks", "x", 1, "skip", NULL);
    struct jb_err err = {0};
    cr_assert_eq(slack_call(w, "conversations.history", args, 1, 0, NULL, NULL, &err), 0, "%s",
                 err.msg);
    cr_expect_str_eq(srv.reqs[0].body, "text=a%20b%26c%3Dd%2F%C3%A9&limit=15&inclusive=true&"
                                       "blocks=%5B%7B%22x%22%3A1%7D%5D");
}

Test(slack_web, connections_are_reused)
{
    script_default(200, "{\"ok\":true}");
    struct jb_err err = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(slack_delete_message(w, "C1", "1.2", &err), 0, "%s", err.msg);
    cr_expect_eq(nreqs(), 3);
    cr_expect_eq(srv.nconns, 1, "keep-alive: one connection for three calls");
}

/* ---- errors -------------------------------------------------------------------------- */

Test(slack_web, ok_false_maps_to_code_message_and_ret_error)
{
    script_fixture("chat_postMessage_error_channel_not_found.json");
    script_fixture("missing_scope.json");
    script_fixture("auth_test_error_invalid_auth.json");
    char logbuf[4096] = "";
    FILE *log = fmemopen(logbuf, sizeof logbuf, "w");
    jb_log_init(JB_LOG_DEBUG, log);
    struct jb_err err = {0};
    char *code = NULL;
    json_auto_t *args = json_pack("{s:s, s:s}", "channel", "CX", "text", "x");
    cr_assert_eq(slack_call(w, "chat.postMessage", args, 0, 0, NULL, &code, &err), -1);
    cr_expect_eq(err.code, JB_EPROTO);
    cr_expect_str_eq(err.msg, "chat.postMessage: channel_not_found");
    cr_expect_str_eq(code, "channel_not_found");
    free(code);
    cr_assert_eq(slack_reaction(w, "C1", "1.2", "eyes", 1, &err), -1);
    cr_expect_eq(err.code, JB_EDENIED);
    cr_expect_str_eq(err.msg, "reactions.add: missing_scope (needed reactions:write)");
    cr_assert_eq(slack_auth_test(w, NULL, NULL, &err), -1);
    cr_expect_eq(err.code, JB_EDENIED);
    cr_expect_str_eq(err.msg, "auth.test: invalid_auth");
    assert_no_token(&err);
    jb_log_init(JB_LOG_ERROR, NULL);
    fclose(log);
    cr_expect_eq(nreqs(), 3, "no retries for API errors");
    const char *hit = strstr(logbuf, "chat.postMessage: channel_not_found");
    cr_expect_not_null(hit, "log: %s", logbuf);
    cr_expect(hit && !strstr(hit + 1, "chat.postMessage: channel_not_found"), "logged once");
    cr_expect_null(strstr(logbuf, "testbottoken"));
}

Test(slack_web, already_reacted_and_no_reaction_are_success)
{
    script_fixture("reactions_add_already_reacted.json");
    script_fixture("reactions_remove_no_reaction.json");
    script_fixture("reactions_add_invalid_name.json");
    struct jb_err err = {0};
    cr_expect_eq(slack_reaction(w, "C1", "1.2", ":eyes:", 1, &err), 0, "%s", err.msg);
    cr_expect_eq(slack_reaction(w, "C1", "1.2", "eyes", 0, &err), 0, "%s", err.msg);
    cr_expect_eq(slack_reaction(w, "C1", "1.2", "eyes", 1, &err), -1);
    cr_expect_str_eq(err.msg, "reactions.add: invalid_name");
    cr_assert_eq(nreqs(), 3);
    cr_expect_str_eq(srv.reqs[1].path, "/api/reactions.remove");
    json_auto_t *j = req_json(0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "name")), "eyes", "colons stripped");
    cr_expect_str_eq(json_string_value(json_object_get(j, "timestamp")), "1.2");
}

Test(slack_web, rate_limit_waits_retry_after)
{
    char *raw = fixture("ratelimited_429.json");
    json_auto_t *rl = json_loads(raw, 0, NULL);
    free(raw);
    script(429, "Retry-After: 1\r\n", json_dumps(json_object_get(rl, "body"), 0));
    script_fixture("reactions_add_ok.json");
    struct jb_err err = {0};
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(slack_reaction(w, "C1", "1.2", "eyes", 1, &err), 0, "%s", err.msg);
    int64_t dt = jb_mono_ms() - t0;
    cr_expect_eq(nreqs(), 2);
    cr_expect_geq(dt, 950, "waited %lld ms", (long long)dt);
    cr_expect_lt(dt, 3000, "waited %lld ms", (long long)dt);
}

Test(slack_web, server_error_then_success_is_retried)
{
    script(500, NULL, strdup("{\"ok\":false,\"error\":\"internal_error\"}"));
    script_fixture("chat_update_ok.json");
    struct jb_err err = {0};
    cr_assert_eq(slack_update_message(w, "C0DEVCHAN1", "1717171720.000200", "Done", &err), 0, "%s",
                 err.msg);
    cr_expect_eq(nreqs(), 2);
}

Test(slack_web, non_json_502_gives_up_unavailable)
{
    script_default(502, "<html><body>Bad Gateway</body></html>");
    struct jb_err err = {0};
    cr_assert_eq(slack_update_message(w, "C1", "1.2", "x", &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL, "%s", err.msg);
    cr_expect_eq(nreqs(), 4, "first try + max_retries (3)");
    cr_expect_not_null(strstr(err.msg, "chat.update: HTTP 502"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "giving up"), "%s", err.msg);
    assert_no_token(&err);
}

/* ---- chat.postMessage never posts twice ---------------------------------------------- */

Test(slack_web, post_message_timeout_after_send_is_not_retried)
{
    slack_web_free(w);
    w = client(api_url, 3, 300);
    srv.dflt = (struct reply){.hang = 1};
    struct jb_err err = {0};
    char *ts = NULL;
    cr_assert_eq(slack_post_message(w, "C1", NULL, "hello", &ts, &err), -1);
    cr_expect_eq(err.code, JB_ETIMEOUT, "%s", err.msg);
    cr_expect_null(ts);
    cr_expect_eq(nreqs(), 1, "sent once");
    assert_no_token(&err);
    /* An idempotent method is retried on the same trouble. */
    cr_assert_eq(slack_update_message(w, "C1", "1.2", "x", &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL, "%s", err.msg);
    cr_expect_eq(nreqs(), 5);
}

Test(slack_web, post_message_retries_5xx_but_not_a_garbled_success)
{
    /* A 5xx means Slack did not post (the doc: retry with backoff); a 200 whose body is
     * garbled may have posted, so it is not retried. */
    script(503, NULL, strdup("{\"ok\":false,\"error\":\"service_unavailable\"}"));
    script_fixture("chat_postMessage_ok.json");
    script(500, NULL, strdup("<html>oops</html>"));
    script_fixture("chat_postMessage_ok.json");
    script(200, NULL, strdup("<html>proxy says hi</html>"));
    struct jb_err err = {0};
    cr_assert_eq(slack_post_message(w, "C1", NULL, "a", NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(nreqs(), 2);
    cr_assert_eq(slack_post_message(w, "C1", NULL, "b", NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(nreqs(), 4, "an HTML 500 is retried");
    cr_assert_eq(slack_post_message(w, "C1", NULL, "c", NULL, &err), -1);
    cr_expect_eq(err.code, JB_ETIMEOUT, "%s", err.msg);
    cr_expect_eq(nreqs(), 5, "a garbled 200 may have posted: no retry");
}

Test(slack_web, connection_refused_is_retried_then_unavailable)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd); /* a port nobody listens on */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/", ntohs(a.sin_port));
    struct slack_web *c = client(url, 2, 2000);
    struct jb_err err = {0};
    cr_expect_eq(slack_post_message(c, "C1", NULL, "x", NULL, &err), -1);
    cr_expect_eq(err.code, JB_EUNAVAIL, "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "giving up after 3 attempts"), "%s", err.msg);
    assert_no_token(&err);
    slack_web_free(c);
}

Test(slack_web, token_never_in_error_messages)
{
    script(200, NULL, strdup("not json " BOT_TOKEN));
    script_default(200, "{\"ok\":false,\"error\":\"token_revoked\"}");
    struct jb_err err = {0};
    cr_expect_eq(slack_post_message(w, "C1", NULL, "x", NULL, &err), -1);
    assert_no_token(&err);
    const char *methods[] = {"auth.test", "chat.update", "apps.connections.open"};
    for (size_t i = 0; i < JB_ARRAY_LEN(methods); i++) {
        cr_expect_eq(slack_call(w, methods[i], NULL, 1, i == 2, NULL, NULL, &err), -1);
        cr_expect_eq(err.code, JB_EDENIED);
        assert_no_token(&err);
    }
    cr_expect_eq(slack_call(w, "bad/method?token=" BOT_TOKEN, NULL, 0, 0, NULL, NULL, &err), -1);
    assert_no_token(&err);
}

/* ---- conversations.replies ----------------------------------------------------------- */

Test(slack_web, replies_follow_the_cursor)
{
    script_fixture("conversations_replies_page1.json");
    script_fixture("conversations_replies_page2.json");
    json_t *msgs = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_thread_replies(w, "C0DEVCHAN1", "1717171717.000100", &msgs, &err), 0, "%s",
                 err.msg);
    const char *want[] = {"1717171717.000100", "1717171720.000200", "1717172000.000300",
                          "1717172100.000350", "1717176000.000900"};
    cr_assert_eq(json_array_size(msgs), JB_ARRAY_LEN(want));
    for (size_t i = 0; i < JB_ARRAY_LEN(want); i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(msgs, i), "ts")),
                         want[i]);
    json_decref(msgs);
    cr_assert_eq(nreqs(), 2);
    cr_expect_str_eq(req_header(0, "Content-Type"), "application/x-www-form-urlencoded");
    cr_expect_str_eq(srv.reqs[0].body,
                     "channel=C0DEVCHAN1&ts=1717171717.000100&limit=200&include_all_metadata=true");
    cr_expect_str_eq(srv.reqs[1].body,
                     "channel=C0DEVCHAN1&ts=1717171717.000100&limit=200&"
                     "cursor=bmV4dF90czoxNzE3MTcyMDAwMDAwMzAw&include_all_metadata=true");
}

Test(slack_web, replies_thread_not_found_is_empty)
{
    script_fixture("conversations_replies_error_thread_not_found.json");
    json_t *msgs = NULL;
    struct jb_err err = {0};
    cr_assert_eq(slack_thread_replies(w, "C1", "1.2", &msgs, &err), 0, "%s", err.msg);
    cr_expect(json_is_array(msgs) && json_array_size(msgs) == 0);
    json_decref(msgs);
}

/* ---- upload -------------------------------------------------------------------------- */

static void temp_file(char *path, size_t n, const void *data, size_t len)
{
    snprintf(path, n, "/tmp/janebot-web-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

Test(slack_web, upload_flow_end_to_end)
{
    size_t len = 300 * 1024;
    unsigned char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    char path[64];
    temp_file(path, sizeof path, data, len);
    char *step1 = NULL;
    cr_assert_gt(asprintf(&step1,
                          "{\"ok\":true,\"upload_url\":\"http://127.0.0.1:%d/upload/v1/Cw1\","
                          "\"file_id\":\"F07REPORT1\"}",
                          srv.port),
                 0);
    script(200, NULL, step1);
    script(200, NULL, strdup("OK - 307200"));
    script_fixture("files_completeUploadExternal.json");
    struct jb_err err = {0};
    int rc = slack_upload_file(w, "C0DEVCHAN1", "1717171717.000100", path, "report.md", &err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(nreqs(), 3);
    cr_expect_str_eq(srv.reqs[0].path, "/api/files.getUploadURLExternal");
    cr_expect_str_eq(srv.reqs[0].body, "filename=report.md&length=307200");
    cr_expect_str_eq(srv.reqs[1].path, "/upload/v1/Cw1");
    cr_expect_str_eq(req_header(1, "Authorization"), "", "no token to the upload URL");
    cr_assert_eq(srv.reqs[1].len, len);
    cr_expect_eq(memcmp(srv.reqs[1].body, data, len), 0, "bytes arrive intact");
    free(data);
    cr_expect_str_eq(srv.reqs[2].path, "/api/files.completeUploadExternal");
    cr_expect_str_eq(req_header(2, "Authorization"), "Bearer " BOT_TOKEN);
    json_auto_t *j = req_json(2);
    json_t *f = json_array_get(json_object_get(j, "files"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(f, "id")), "F07REPORT1");
    cr_expect_str_eq(json_string_value(json_object_get(f, "title")), "report.md");
    cr_expect_str_eq(json_string_value(json_object_get(j, "channel_id")), "C0DEVCHAN1");
    cr_expect_str_eq(json_string_value(json_object_get(j, "thread_ts")), "1717171717.000100");
}

Test(slack_web, upload_refuses_big_files_and_symlinks)
{
    char path[64], link[80];
    temp_file(path, sizeof path, "x", 1);
    cr_assert_eq(truncate(path, (off_t)SLACK_UPLOAD_MAX + 1), 0); /* sparse */
    struct jb_err err = {0};
    cr_expect_eq(slack_upload_file(w, "C1", NULL, path, NULL, &err), -1);
    cr_expect_eq(err.code, JB_EDENIED, "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "100 MiB"), "%s", err.msg);
    snprintf(link, sizeof link, "%s.lnk", path);
    cr_assert_eq(symlink(path, link), 0);
    cr_expect_eq(slack_upload_file(w, "C1", NULL, link, NULL, &err), -1);
    cr_expect_eq(err.code, JB_ESYS, "%s", err.msg);
    unlink(link);
    unlink(path);
    cr_expect_eq(nreqs(), 0, "refused before any request");
}

/* ---- threads ------------------------------------------------------------------------- */

static void *worker(void *arg)
{
    struct jb_err err = {0};
    intptr_t fails = 0;
    for (int i = 0; i < 5; i++) {
        char ts[32];
        snprintf(ts, sizeof ts, "%d.%06d", (int)(intptr_t)arg, i);
        fails += slack_update_message(w, "C1", ts, "x", &err) != 0;
        fails += slack_reaction(w, "C1", ts, "eyes", 1, &err) != 0;
    }
    return (void *)fails;
}

Test(slack_web, concurrent_calls_from_eight_threads)
{
    script_default(200, "{\"ok\":true}");
    pthread_t th[8];
    for (intptr_t i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < 8; i++) {
        void *fails = NULL;
        pthread_join(th[i], &fails);
        cr_expect_eq((intptr_t)fails, 0, "thread %d", i);
    }
    cr_expect_eq(nreqs(), 80);
    cr_expect_leq(srv.nconns, 8, "connections are shared and reused: %d", srv.nconns);
}

/* ---- slack_call_nowait: the status writer's calls never wait -------------------------- */

Test(slack_web, nowait_429_returns_at_once_with_retry_after_and_keeps_the_window)
{
    script(429, "Retry-After: 30\r\n", strdup("{\"ok\":false,\"error\":\"ratelimited\"}"));
    json_auto_t *args = json_pack("{s:s, s:s, s:s}", "channel", "C1", "ts", "1.2", "text", "x");
    struct slack_nowait nw = {0};
    struct jb_err err = {0};
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(slack_call_nowait(w, "chat.update", args, 0, &nw, NULL, NULL, &err), -1);
    cr_expect_eq(err.code, JB_EBUSY, "%s", err.msg);
    cr_expect_eq(nw.retry_after_s, 30);
    cr_expect_eq(nreqs(), 1, "one attempt");
    /* Inside the window: no request at all, the seconds left. */
    cr_assert_eq(slack_call_nowait(w, "chat.update", args, 0, &nw, NULL, NULL, &err), -1);
    cr_expect_eq(err.code, JB_EBUSY, "%s", err.msg);
    cr_expect(nw.retry_after_s >= 29 && nw.retry_after_s <= 30, "%ld", nw.retry_after_s);
    cr_expect_eq(nreqs(), 1, "no request inside the window");
    int64_t dt = jb_mono_ms() - t0;
    cr_expect_lt(dt, 1000, "took %lld ms", (long long)dt);
    assert_no_token(&err);
}

static void *set_stop_later(void *p)
{
    usleep(300 * 1000);
    atomic_store((atomic_int *)p, 1);
    return NULL;
}

Test(slack_web, nowait_stop_abandons_a_hung_request)
{
    srv.dflt = (struct reply){.hang = 1};
    json_auto_t *args = json_pack("{s:s, s:s}", "channel", "C1", "ts", "1.2");
    atomic_int stop = 0;
    struct slack_nowait nw = {.stop = &stop, .timeout_ms = 10000};
    struct jb_err err = {0};
    pthread_t th;
    pthread_create(&th, NULL, set_stop_later, &stop);
    int64_t t0 = jb_mono_ms();
    cr_assert_eq(slack_call_nowait(w, "chat.delete", args, 0, &nw, NULL, NULL, &err), -1);
    int64_t dt = jb_mono_ms() - t0;
    pthread_join(th, NULL);
    cr_expect_eq(err.code, JB_ECANCEL, "%s", err.msg);
    cr_expect_lt(dt, 2500, "the hung request was given up after %lld ms", (long long)dt);
    cr_expect_eq(nreqs(), 1, "not retried");
}
