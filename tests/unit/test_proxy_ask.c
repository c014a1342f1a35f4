/* tests/unit/test_proxy_ask.c -- egress approval in the proxy (egress-ask.c) with a
 * scripted approver: IP literals, bad ports and bad names are refused without asking; a
 * deny is a 403 with the reason; an allow goes on to the later checks (here a name mapped
 * to a closed local port: the 502 of step 5 shows step 3 was passed); one question per
 * name, the waiters share a deny; at most EGRESS_MAX_ASKS names wait, the rest are
 * refused at once; a client that hangs up ends its question. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/proxy-int.h"
#include "time-limit.h"

static char dir[] = "/tmp/jb-proxy-ask-XXXXXX", sock[128];
static struct egress_policy *pol;
static struct egress_proxy *px;
static struct egress_listener *lst;

/* The approver: counts the questions, holds each until released, then answers verdict. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int asked, released, gone_seen;
static enum egress_verdict verdict;
static char last_name[300];

static enum egress_verdict approver(void *ud, const struct egress_approve_q *q, char *why, size_t n)
{
    (void)ud;
    pthread_mutex_lock(&mu);
    asked++;
    snprintf(last_name, sizeof last_name, "%s:%u", q->name, q->port);
    pthread_cond_broadcast(&cv);
    while (!released) {
        if (q->gone(q->gone_ud)) {
            gone_seen++;
            pthread_mutex_unlock(&mu);
            snprintf(why, n, "the client left");
            return EGRESS_DENIED;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    snprintf(why, n, "denied by U0TEST001");
    return verdict;
}

static void release(enum egress_verdict v)
{
    pthread_mutex_lock(&mu);
    verdict = v, released = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int asked_now(void)
{
    pthread_mutex_lock(&mu);
    int n = asked;
    pthread_mutex_unlock(&mu);
    return n;
}

static void wait_asked(int n)
{
    for (int i = 0; i < 500 && asked_now() < n; i++)
        poll(NULL, 0, 10);
    cr_assert_geq(asked_now(), n, "the approver was asked %d times, expected %d", asked_now(), n);
}

static void setup(void)
{
    time_limit(60);
    jb_log_init(JB_LOG_ERROR, NULL);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sock, sizeof sock, "%s/egress.sock", dir);
    struct jb_err err = {0};
    /* Port 1 on loopback: nothing listens, so an allowed name ends in step 5's 502. */
    cr_assert_eq(egress_policy_new("allowed.test", "asked.test=127.0.0.1:1,other.test=127.0.0.1:1",
                                   &pol, &err),
                 0, "%s", err.msg);
    cr_assert_eq(egress_proxy_new(pol, &px, &err), 0, "%s", err.msg);
    cr_assert_eq(egress_listen(px, sock, "C1:1.2", (uid_t)-1, &lst, &err), 0, "%s", err.msg);
    egress_listener_set_approver(lst, approver, NULL);
    asked = released = gone_seen = 0;
}

static void teardown(void)
{
    release(EGRESS_DENIED);
    egress_proxy_free(px);
    egress_policy_free(pol);
    jb_rm_rf(dir, NULL);
}

TestSuite(proxy_ask, .init = setup, .fini = teardown);

static int send_request(const char *req)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    return fd;
}

/* The reply on fd until EOF (or 10 s); closes fd. */
static void reply(int fd, char *buf, size_t n)
{
    size_t len = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len + 1 < n && poll(&p, 1, 10000) > 0) {
        ssize_t r = recv(fd, buf + len, n - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = 0;
    close(fd);
}

static void connect_to(const char *authority, char *buf, size_t n)
{
    char req[400];
    snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
    reply(send_request(req), buf, n);
}

Test(proxy_ask, literals_ports_and_bad_names_are_refused_without_asking)
{
    const char *const never[] = {"127.0.0.1:443", "[::1]:443",     "2130706433:443",
                                 "0x7f.1:443",    "asked.test:80", "bad_name.test:443",
                                 "-x.test:443"};
    char buf[4096];
    for (size_t i = 0; i < JB_ARRAY_LEN(never); i++) {
        connect_to(never[i], buf, sizeof buf);
        cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "%s -> %s", never[i], buf);
    }
    cr_expect_eq(asked_now(), 0, "nobody is asked about those");
    connect_to("allowed.test:443", buf, sizeof buf);
    cr_expect_eq(asked_now(), 0, "nor about a name on the list");
}

Test(proxy_ask, deny_is_a_403_with_the_reason_and_allow_passes_step_3)
{
    char buf[4096];
    int fd = send_request("CONNECT Asked.Test.:443 HTTP/1.1\r\nHost: asked.test:443\r\n\r\n");
    wait_asked(1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 200), 0, "held: no reply before the decision");
    cr_expect_str_eq(last_name, "asked.test:443", "the normalised name");
    release(EGRESS_DENIED);
    reply(fd, buf, sizeof buf);
    cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "%s", buf);
    cr_expect(strstr(buf, "asked.test is not on the allowlist and was not approved (denied by "
                          "U0TEST001)"),
              "%s", buf);
    connect_to("asked.test:443", buf, sizeof buf); /* denied: not asked again */
    cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "%s", buf);
    cr_expect(strstr(buf, "denied earlier in this run; not asked again"), "%s", buf);
    cr_expect_eq(asked_now(), 1, "one question in all");
    release(EGRESS_ALLOWED_ONCE);
    connect_to("other.test:443", buf, sizeof buf);
    cr_expect(!strncmp(buf, "HTTP/1.1 502", 12), "allowed: on to step 5 -> %s", buf);
    cr_expect(strstr(buf, "cannot connect to other.test"), "%s", buf);
    connect_to("metadata.localhost:443", buf, sizeof buf);
    cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "step 4 after an allow -> %s", buf);
    cr_expect(strstr(buf, "loopback"), "%s", buf);
}

Test(proxy_ask, one_question_per_name_and_a_cap_on_names_waiting)
{
    int same[4], other[EGRESS_MAX_ASKS + 2];
    for (int i = 0; i < 4; i++)
        same[i] = send_request("CONNECT same.test:443 HTTP/1.1\r\nHost: same.test:443\r\n\r\n");
    wait_asked(1);
    poll(NULL, 0, 200);
    cr_expect_eq(asked_now(), 1, "one question for four connections to one name");
    char req[200], buf[4096];
    for (int i = 0; i < EGRESS_MAX_ASKS + 2; i++) {
        snprintf(req, sizeof req, "CONNECT n%d.test:443 HTTP/1.1\r\nHost: n%d.test:443\r\n\r\n", i,
                 i);
        other[i] = send_request(req);
    }
    wait_asked(EGRESS_MAX_ASKS);
    /* The names past the cap (whichever came last) are refused at once, unasked. */
    int refused = 0;
    for (int round = 0; round < 50 && refused < 3; round++)
        for (int i = 0; i < EGRESS_MAX_ASKS + 2; i++) {
            struct pollfd p = {.fd = other[i], .events = POLLIN};
            if (other[i] < 0 || poll(&p, 1, 10) <= 0) continue;
            reply(other[i], buf, sizeof buf);
            cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "%s", buf);
            cr_expect(strstr(buf, "wait for a person's answer"), "%s", buf);
            other[i] = -1, refused++;
        }
    cr_expect_eq(refused, 3, "1 + 2 names asked (the cap is %d), 3 refused", EGRESS_MAX_ASKS);
    cr_expect_eq(asked_now(), EGRESS_MAX_ASKS);
    release(EGRESS_DENIED);
    for (int i = 0; i < 4; i++) {
        reply(same[i], buf, sizeof buf);
        cr_expect(!strncmp(buf, "HTTP/1.1 403", 12), "a waiter shares the deny: %s", buf);
    }
    for (int i = 0; i < EGRESS_MAX_ASKS + 2; i++)
        if (other[i] >= 0) reply(other[i], buf, sizeof buf);
    cr_expect_eq(asked_now(), EGRESS_MAX_ASKS, "no question after the deny");
}

Test(proxy_ask, a_client_that_hangs_up_ends_its_question)
{
    int fd = send_request("CONNECT gone.test:443 HTTP/1.1\r\nHost: gone.test:443\r\n\r\n");
    wait_asked(1);
    close(fd);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&mu);
        int g = gone_seen;
        pthread_mutex_unlock(&mu);
        if (g) break;
        poll(NULL, 0, 10);
    }
    pthread_mutex_lock(&mu);
    cr_expect_eq(gone_seen, 1, "the approver learns the client left");
    pthread_mutex_unlock(&mu);
}
