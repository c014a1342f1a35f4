/* tests/unit/test_llm_public.c -- the LLM proxy's TCP listener for remote sandboxes:
 * which tokens it takes for which paths, that the real key (never the token) goes
 * upstream, closing and revoking, and its limits. The upstream is a tiny HTTP server in a
 * thread here: it records each request head and answers with JSON usage, or holds
 * requests unanswered ("stall") for the tests of requests in flight. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/proxy.h"
#include "store/store.h"
#include "time-limit.h"

#define REAL_ANT                    "sk-ant-REALKEY-unit-0123456789abcdef"
#define REAL_OAI                    "sk-oai-REALKEY-unit-0123456789abcdef"
#define SANDBOX                     "jane-0123456789ab"
#define LLM_VERDICT_MAX_AGE_MS_TEST 1100 /* llm-int.h: LLM_VERDICT_MAX_AGE_MS + margin */
#define ANSWER                      "{\"id\":\"m1\",\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}"

static char dir[] = "/tmp/jb-llmpub-XXXXXX", db[128], logpath[128];
static FILE *logf;
static struct llm_proxy *px;
static int port; /* the proxy's TCP port */

/* ---- the upstream ---- */

static int up_fd = -1, up_stop[2] = {-1, -1}, up_port;
static pthread_t up_thr;
static pthread_mutex_t up_mu = PTHREAD_MUTEX_INITIALIZER;
static char up_head[16384];  /* the last request head, under up_mu */
static int up_requests;      /* under up_mu */
static atomic_int stall;     /* 1: accept and hold, never answer */
static int held[128], nheld; /* under up_mu */

static size_t read_some(int fd, char *buf, size_t n, const char *until, int ms)
{
    size_t got = 0;
    int64_t end = jb_mono_ms() + ms;
    buf[0] = '\0';
    while (got + 1 < n && jb_mono_ms() < end && !(until && strstr(buf, until))) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = '\0';
    }
    return got;
}

static void up_serve(int fd)
{
    char buf[65536];
    size_t n = read_some(fd, buf, sizeof buf, "\r\n\r\n", 5000);
    char *e = strstr(buf, "\r\n\r\n");
    if (!e) return;
    const char *cl = strcasestr(buf, "content-length: ");
    size_t want = (size_t)(e - buf) + 4 + (cl && cl < e ? strtoul(cl + 16, NULL, 10) : 0);
    while (n < want && n + 1 < sizeof buf) {
        size_t r = read_some(fd, buf + n, sizeof buf - n, NULL, 200);
        if (!r) break;
        n += r;
    }
    pthread_mutex_lock(&up_mu);
    snprintf(up_head, sizeof up_head, "%.*s", (int)(e - buf), buf);
    up_requests++;
    pthread_mutex_unlock(&up_mu);
    char out[512];
    int k = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(ANSWER), ANSWER);
    send(fd, out, (size_t)k, MSG_NOSIGNAL);
}

static void *up_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = up_fd, .events = POLLIN},
                              {.fd = up_stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents) return NULL;
        int fd = accept4(up_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pthread_mutex_lock(&up_mu);
        int hold = atomic_load(&stall) && nheld < (int)(sizeof held / sizeof held[0]);
        if (hold) held[nheld++] = fd;
        pthread_mutex_unlock(&up_mu);
        if (hold) continue;
        up_serve(fd);
        close(fd);
    }
}

static int up_held(void)
{
    pthread_mutex_lock(&up_mu);
    int n = nheld;
    pthread_mutex_unlock(&up_mu);
    return n;
}

static void up_start(void)
{
    up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(up_fd >= 0 && bind(up_fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(listen(up_fd, 256) == 0 && getsockname(up_fd, (struct sockaddr *)&a, &len) == 0);
    up_port = ntohs(a.sin_port);
    cr_assert_eq(pipe2(up_stop, O_CLOEXEC), 0);
    cr_assert_eq(pthread_create(&up_thr, NULL, up_main, NULL), 0);
}

static void up_stop_all(void)
{
    cr_expect_eq(write(up_stop[1], "x", 1), 1);
    pthread_join(up_thr, NULL);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    close(up_fd), close(up_stop[0]), close(up_stop[1]);
}

/* ---- fixture ---- */

static void setup(void)
{
    time_limit(60);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/jb.db", dir);
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    cr_assert_not_null(logf = fopen(logpath, "w+"));
    jb_log_init(JB_LOG_DEBUG, logf);
    up_start();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", up_port);
    struct llm_config cfg = {.key = {[LLM_ANTHROPIC] = REAL_ANT, [LLM_OPENAI] = REAL_OAI},
                             .upstream = {[LLM_ANTHROPIC] = url, [LLM_OPENAI] = url},
                             .db_path = db};
    struct jb_err err = {0};
    cr_assert_eq(llm_proxy_new(&cfg, &px, &err), 0, "%s", err.msg);
    cr_assert_eq(llm_proxy_port(px), 0);
    cr_assert_eq(llm_proxy_listen(px, "127.0.0.1:0", &err), 0, "%s", err.msg);
    port = llm_proxy_port(px);
    cr_assert_gt(port, 0);
}

/* The log, read back whole (static buffer). */
static const char *log_text(void)
{
    static char buf[1 << 16];
    fflush(logf);
    size_t n = (size_t)pread(fileno(logf), buf, sizeof buf - 1, 0);
    buf[n < sizeof buf ? n : 0] = '\0';
    return buf;
}

static void teardown(void)
{
    llm_proxy_free(px);
    up_stop_all();
    const char *log = log_text();
    cr_expect_null(strstr(log, "jbt_"), "a token in the log:\n%s", log);
    cr_expect_null(strstr(log, "REALKEY"), "a real key in the log:\n%s", log);
    jb_log_init(JB_LOG_INFO, NULL);
    fclose(logf);
    jb_rm_rf(dir, NULL);
}

TestSuite(llm_public, .init = setup, .fini = teardown);

/* ---- clients ---- */

static int dial_tcp(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    return fd;
}

static int dial_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    return fd;
}

/* Send a POST of a small JSON body to path on fd with auth (a header line or NULL). */
static void send_req(int fd, const char *path, const char *auth, const char *extra)
{
    static const char body[] = "{\"model\":\"m\",\"messages\":[]}";
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: proxy.example\r\n%s%s%sContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, auth ? auth : "", auth ? "\r\n" : "", extra ? extra : "", strlen(body),
                     body);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
}

/* The answer to one request (whole, until the proxy closes); its status, 0 for none. */
static int ask_on(int fd, const char *path, const char *auth, const char *extra, char *out,
                  size_t n)
{
    send_req(fd, path, auth, extra);
    read_some(fd, out, n, NULL, 10000);
    close(fd);
    return !strncmp(out, "HTTP/1.1 ", 9) ? atoi(out + 9) : 0;
}

static char answer[8192];

static int ask(const char *path, const char *auth)
{
    return ask_on(dial_tcp(), path, auth, NULL, answer, sizeof answer);
}

static char *xkey(const char *token)
{
    static char line[128];
    snprintf(line, sizeof line, "x-api-key: %s", token);
    return line;
}

static struct llm_session *open_remote(const char *thread, const char *sandbox,
                                       char token[LLM_TOKEN_LEN + 1])
{
    struct llm_session *s = NULL;
    struct jb_err err = {0};
    cr_assert_eq(llm_session_open_remote(px, thread, "U1", sandbox, token, &s, &err), 0, "%s",
                 err.msg);
    return s;
}

#define ANT_PATH "/s/" SANDBOX "/anthropic/v1/messages?beta=true"

/* ---- tests ---- */

Test(llm_public, a_remote_token_works_and_only_the_real_key_goes_upstream)
{
    char tok[LLM_TOKEN_LEN + 1];
    struct llm_session *s = open_remote("C1:1.1", SANDBOX, tok);
    cr_assert_eq(strlen(tok), LLM_TOKEN_LEN);
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 200, "%s", answer);
    cr_expect(strstr(answer, "\"output_tokens\":5"), "%s", answer);
    pthread_mutex_lock(&up_mu);
    cr_expect(strstr(up_head, "POST /v1/messages?beta=true HTTP/1.1"), "%s", up_head);
    cr_expect(strstr(up_head, "x-api-key: " REAL_ANT), "%s", up_head);
    cr_expect_null(strstr(up_head, tok), "the token went upstream:\n%s", up_head);
    pthread_mutex_unlock(&up_mu);
    struct jb_tally ty;
    llm_session_usage(s, &ty);
    struct jb_tokens sum = jb_tally_sum(&ty);
    cr_expect(sum.input == 10 && sum.output == 5, "usage %lld/%lld", (long long)sum.input,
              (long long)sum.output);
    cr_expect_null(llm_session_refused(s));

    /* A Bearer works too (OpenAI), and headers a TLS terminator adds stay here. */
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    int st = ask_on(dial_tcp(), "/s/" SANDBOX "/openai/v1/chat/completions", auth,
                    "X-Forwarded-For: 203.0.113.9\r\nForwarded: for=203.0.113.9\r\n"
                    "X-Real-IP: 203.0.113.9\r\n",
                    answer, sizeof answer);
    cr_assert_eq(st, 200, "%s", answer);
    pthread_mutex_lock(&up_mu);
    cr_expect(strstr(up_head, "POST /v1/chat/completions"), "%s", up_head);
    cr_expect(strstr(up_head, "Authorization: Bearer " REAL_OAI), "%s", up_head);
    cr_expect_null(strstr(up_head, "203.0.113.9"), "client address went upstream:\n%s", up_head);
    cr_expect_null(strstr(up_head, tok));
    pthread_mutex_unlock(&up_mu);
    llm_session_close(s);
}

Test(llm_public, tokens_of_other_sandboxes_forged_or_missing_get_401)
{
    char tok[LLM_TOKEN_LEN + 1], other[LLM_TOKEN_LEN + 1];
    struct llm_session *s = open_remote("C1:1.1", SANDBOX, tok);
    struct llm_session *s2 = open_remote("C2:2.2", "jane-ffffffffffff", other);
    /* The other thread's token for this sandbox's path: 401, a log line naming its thread. */
    cr_assert_eq(ask(ANT_PATH, xkey(other)), 401, "%s", answer);
    cr_expect(strstr(answer, "\"type\":\"authentication_error\""), "%s", answer);
    cr_expect(strstr(log_text(), "C2:2.2"), "%s", log_text());
    /* And its own token for another sandbox's path. */
    cr_assert_eq(ask("/s/jane-ffffffffffff/anthropic/v1/messages", xkey(tok)), 401);
    /* Forged: the right shape, unknown. Missing: no credentials at all. */
    char forged[LLM_TOKEN_LEN + 1];
    memcpy(forged, tok, sizeof forged);
    forged[LLM_TOKEN_LEN - 1] = forged[LLM_TOKEN_LEN - 1] == '0' ? '1' : '0';
    cr_assert_eq(ask(ANT_PATH, xkey(forged)), 401);
    cr_assert_eq(ask(ANT_PATH, NULL), 401);
    cr_assert_eq(ask("/s/" SANDBOX "/openai/v1/chat/completions", "Authorization: Basic abc"), 401);
    cr_expect(strstr(answer, "\"type\":\"invalid_api_key\""), "OpenAI's shape: %s", answer);
    pthread_mutex_lock(&up_mu);
    cr_expect_eq(up_requests, 0, "a refused request went upstream");
    pthread_mutex_unlock(&up_mu);
    cr_expect_null(llm_session_refused(s)); /* somebody else's mistake: the exec goes on */
    llm_session_close(s2);
    llm_session_close(s);
}

Test(llm_public, local_and_remote_tokens_stay_on_their_own_listener)
{
    char tok[LLM_TOKEN_LEN + 1], rtok[LLM_TOKEN_LEN + 1], sock[160];
    snprintf(sock, sizeof sock, "%s/llm.sock", dir);
    struct llm_session *local = NULL, *remote = open_remote("C2:2.2", SANDBOX, rtok);
    struct jb_err err = {0};
    cr_assert_eq(llm_session_open(px, sock, "C1:1.1", "U1", SANDBOX, (uid_t)-1, tok, &local, &err),
                 0, "%s", err.msg);
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 401, "a local token worked over TCP: %s", answer);
    cr_assert_eq(
        ask_on(dial_unix(sock), "/anthropic/v1/messages", xkey(rtok), NULL, answer, sizeof answer),
        401, "a remote token worked on a Unix socket: %s", answer);
    /* Each on its own listener works. */
    cr_assert_eq(
        ask_on(dial_unix(sock), "/anthropic/v1/messages", xkey(tok), NULL, answer, sizeof answer),
        200, "%s", answer);
    cr_assert_eq(ask(ANT_PATH, xkey(rtok)), 200, "%s", answer);
    llm_session_close(local);
    llm_session_close(remote);
}

Test(llm_public, closed_sessions_and_revoked_tokens_are_refused)
{
    char tok[LLM_TOKEN_LEN + 1], tok2[LLM_TOKEN_LEN + 1], hash[65];
    struct llm_session *s = open_remote("C1:1.1", SANDBOX, tok);
    struct llm_session *s2 = open_remote("C1:1.1", SANDBOX, tok2); /* a second exec */
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 200);
    llm_session_close(s);
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 401, "after close: %s", answer);
    /* Revoked in the store (janebot token revoke, sandbox rm), session still open. */
    struct store *st = NULL;
    struct jb_err err = {0};
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    jb_sha256_hex(tok2, LLM_TOKEN_LEN, hash);
    cr_assert_eq(store_token_revoke(st, hash, NULL, &err), 1, "%s", err.msg);
    store_close(st);
    cr_assert_eq(ask(ANT_PATH, xkey(tok2)), 401, "revoked: %s", answer);
    cr_expect(strstr(answer, "revoked"), "%s", answer);
    cr_assert_not_null(llm_session_refused(s2));
    cr_expect(strstr(llm_session_refused(s2), "revoked"));
    llm_session_close(s2);
}

Test(llm_public, unknown_targets_get_404_and_path_rules_still_apply)
{
    char tok[LLM_TOKEN_LEN + 1];
    struct llm_session *s = open_remote("C1:1.1", SANDBOX, tok);
    static const char *const unknown[] = {
        "/anthropic/v1/messages", /* the Unix socket's form */
        "/s/" SANDBOX,
        "/s/" SANDBOX "/",
        "/s//anthropic/v1/messages",
        "/s/" SANDBOX "/nope/v1/messages",
        "/x/" SANDBOX "/anthropic/v1/messages",
        "/s/" SANDBOX "/anthropicx/v1/messages",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_expect_eq(ask(unknown[i], xkey(tok)), 404, "%s: %s", unknown[i], answer);
        cr_expect(strstr(answer, "\"error\""), "JSON error: %s", answer);
    }
    /* Known provider, path outside the API: 403 as on the Unix socket. Not offered: 404. */
    cr_expect_eq(ask("/s/" SANDBOX "/anthropic/v1/files", xkey(tok)), 403, "%s", answer);
    cr_expect_eq(ask("/s/" SANDBOX "/amp/api/threads", xkey(tok)), 404, "%s", answer);
    pthread_mutex_lock(&up_mu);
    cr_expect_eq(up_requests, 0);
    pthread_mutex_unlock(&up_mu);
    llm_session_close(s);
}

Test(llm_public, addresses_urls_and_bad_sandbox_names)
{
    struct jb_err err = {0};
    static const char *const bad[] = {"nonsense", "127.0.0.1", "127.0.0.1:",      ":8787",
                                      "::1:8787", "[::1]8787", "127.0.0.1:99999", "127.0.0.1:80x"};
    struct llm_proxy *p2 = NULL;
    struct llm_config cfg = {.key = {[LLM_ANTHROPIC] = REAL_ANT}, .db_path = db};
    cr_assert_eq(llm_proxy_new(&cfg, &p2, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct jb_err){0};
        cr_expect_eq(llm_proxy_listen(p2, bad[i], &err), -1, "%s was taken", bad[i]);
        cr_expect(strstr(err.msg, "HOST:PORT"), "%s: %s", bad[i], err.msg);
    }
    cr_expect_eq(llm_proxy_port(p2), 0);
    cr_expect_eq(llm_proxy_listen(px, "127.0.0.1:0", &err), -1, "a second listener");
    llm_proxy_free(p2);

    char *u = llm_remote_base_url("https://jb.example.net/", SANDBOX, LLM_OPENAI);
    cr_expect_str_eq(u, "https://jb.example.net/s/" SANDBOX "/openai/v1");
    free(u);
    u = llm_remote_base_url("https://jb.example.net", SANDBOX, LLM_ANTHROPIC);
    cr_expect_str_eq(u, "https://jb.example.net/s/" SANDBOX "/anthropic");
    free(u);
    u = llm_remote_base_url("https://jb.example.net", SANDBOX, LLM_AMP);
    cr_expect_str_eq(u, "https://jb.example.net/s/" SANDBOX "/amp");
    free(u);

    char tok[LLM_TOKEN_LEN + 1];
    struct llm_session *s = NULL;
    cr_expect_eq(llm_session_open_remote(px, "C1:1.1", "U1", "a/b", tok, &s, &err), -1);
    cr_expect(strstr(err.msg, "a/b"), "%s", err.msg);
    cr_expect_eq(llm_session_open_remote(px, "C1:1.1", "U1", "", tok, &s, &err), -1);
    cr_expect_eq(llm_session_open_remote(px, "C1:1.1", "U1", "..", tok, &s, &err), -1);
}

/* Start a request that the stalled upstream holds; returns the client's socket. */
static int start_held(const char *tok, int *nwant)
{
    int fd = dial_tcp();
    send_req(fd, ANT_PATH, xkey(tok), NULL);
    ++*nwant;
    for (int i = 0; i < 500 && up_held() < *nwant; i++)
        poll(NULL, 0, 10);
    cr_assert_eq(up_held(), *nwant, "the upstream never saw request %d", *nwant);
    return fd;
}

Test(llm_public, close_drops_requests_in_flight_and_caps_them_per_session)
{
    char tok[LLM_TOKEN_LEN + 1];
    struct llm_session *s = open_remote("C1:1.1", SANDBOX, tok);
    atomic_store(&stall, 1);
    int fds[LLM_MAX_PER_LISTENER], n = 0;
    for (int i = 0; i < LLM_MAX_PER_LISTENER; i++)
        fds[i] = start_held(tok, &n);
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 503, "request 65 of one session: %s", answer);
    int64_t t0 = jb_mono_ms();
    llm_session_close(s); /* the upstream stays silent: the proxy must stop waiting on it */
    int64_t took = jb_mono_ms() - t0;
    cr_expect_lt(took, 3000, "close took %lld ms", (long long)took);
    for (int i = 0; i < n; i++) {
        char buf[256];
        read_some(fds[i], buf, sizeof buf, NULL, 2000);
        cr_expect_null(strstr(buf, " 200 "), "%s", buf);
        close(fds[i]);
    }
    cr_assert_eq(ask(ANT_PATH, xkey(tok)), 401);
}

Test(llm_public, connections_past_the_cap_get_503)
{
    int fds[512];
    for (int i = 0; i < 512; i++)
        fds[i] = dial_tcp(); /* connected, saying nothing: each holds a slot */
    int fd = dial_tcp();
    char buf[1024];
    read_some(fd, buf, sizeof buf, NULL, 5000);
    cr_expect(!strncmp(buf, "HTTP/1.1 503 ", 13), "connection 513: %s", buf);
    close(fd);
    close(fds[0]); /* one slot frees up once its thread sees the EOF */
    int st = 0;
    for (int i = 0; i < 100 && st != 404; i++) {
        st = ask("/nowhere", NULL);
        if (st != 404) poll(NULL, 0, 20);
    }
    cr_expect_eq(st, 404, "no slot came free: %s", answer);
    for (int i = 1; i < 512; i++)
        close(fds[i]);
}

/* The Unix path asks the store when a connection opens, before its request arrives: a
 * connection opened after a revoke is refused at once, and a verdict older than a second
 * when the request comes is asked again. */
Test(llm_public, a_unix_connections_early_verdict_is_fresh)
{
    char tok[LLM_TOKEN_LEN + 1], sock[160], hash[65];
    snprintf(sock, sizeof sock, "%s/llm.sock", dir);
    struct llm_session *s = NULL;
    struct jb_err err = {0};
    cr_assert_eq(llm_session_open(px, sock, "C1:1.1", "U1", SANDBOX, (uid_t)-1, tok, &s, &err), 0,
                 "%s", err.msg);
    int early = dial_unix(sock); /* its verdict: valid */
    poll(NULL, 0, 200);
    cr_assert_eq(
        ask_on(dial_unix(sock), "/anthropic/v1/messages", xkey(tok), NULL, answer, sizeof answer),
        200, "%s", answer);
    struct store *st = NULL;
    cr_assert_eq(store_open(db, &st, &err), 0, "%s", err.msg);
    jb_sha256_hex(tok, LLM_TOKEN_LEN, hash);
    cr_assert_eq(store_token_revoke(st, hash, NULL, &err), 1, "%s", err.msg);
    store_close(st);
    cr_assert_eq(
        ask_on(dial_unix(sock), "/anthropic/v1/messages", xkey(tok), NULL, answer, sizeof answer),
        401, "the next request after the revoke: %s", answer);
    poll(NULL, 0, LLM_VERDICT_MAX_AGE_MS_TEST);
    cr_assert_eq(ask_on(early, "/anthropic/v1/messages", xkey(tok), NULL, answer, sizeof answer),
                 401, "a request on a connection opened before the revoke: %s", answer);
    pthread_mutex_lock(&up_mu);
    cr_expect_eq(up_requests, 1);
    pthread_mutex_unlock(&up_mu);
    cr_expect_not_null(llm_session_refused(s));
    llm_session_close(s);
}
