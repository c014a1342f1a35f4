/* tests/unit/test_metrics.c -- util/metrics.c: the registry, histogram buckets and the
 * Prometheus text rendering; util/metrics-http.c's address check; the Sprites REST
 * client's error counts. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "sandbox/sprites-int.h"
#include "util/util.h"

static char *render(struct jb_metrics *m)
{
    struct jb_buf out = JB_BUF_INIT(1 << 20);
    struct jb_err e = {0};
    cr_assert_eq(jb_metrics_render(m, &out, &e), 0, "%s", e.msg);
    return jb_buf_detach(&out, NULL);
}

static struct jb_metrics *registry(void)
{
    struct jb_metrics *m = NULL;
    struct jb_err e = {0};
    cr_assert_eq(jb_metrics_new("1.2.3", &m, &e), 0, "%s", e.msg);
    return m;
}

#define assert_has(text, line)                                                                     \
    cr_assert(strstr(text, line "\n"), "missing line %s in:\n%s", line, text)

Test(metrics, counters_by_label_with_help_type_and_build_info)
{
    struct jb_metrics *m = registry();
    jb_metrics_add(m, JB_M_SLACK_CALLS, "chat.postMessage", NULL, 1);
    jb_metrics_add(m, JB_M_SLACK_CALLS, "chat.postMessage", NULL, 2);
    jb_metrics_add(m, JB_M_SLACK_CALLS, "chat.update", NULL, 1);
    jb_metrics_add(m, JB_M_SLACK_ERRORS, "chat.update", "ratelimited", 1);
    char *t = render(m);
    assert_has(t, "# TYPE janebot_slack_api_calls_total counter");
    cr_assert(strstr(t, "# HELP janebot_slack_api_calls_total "));
    assert_has(t, "janebot_slack_api_calls_total{method=\"chat.postMessage\"} 3");
    assert_has(t, "janebot_slack_api_calls_total{method=\"chat.update\"} 1");
    assert_has(t, "janebot_slack_api_errors_total{method=\"chat.update\",kind=\"ratelimited\"} 1");
    assert_has(t, "janebot_build_info{version=\"1.2.3\"} 1");
    assert_has(t, "janebot_events_deduped_total 0"); /* no labels: present from the start */
    cr_assert_null(strstr(t, "janebot_proxy_requests_total{"), "no series before any count");
    cr_assert(strstr(t, "\nprocess_resident_memory_bytes "));
    cr_assert(strstr(t, "\nprocess_open_fds "));
    cr_assert(strstr(t, "\nprocess_start_time_seconds "));
    free(t);
    jb_metrics_free(m);
}

Test(metrics, label_values_are_escaped)
{
    struct jb_metrics *m = registry();
    jb_metrics_add(m, JB_M_SPRITES_ERRORS, "a\"b\\c\nd", NULL, 1);
    char *t = render(m);
    assert_has(t, "janebot_sprites_api_errors_total{kind=\"a\\\"b\\\\c\\nd\"} 1");
    free(t);
    jb_metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative_and_a_bound_is_inclusive)
{
    struct jb_metrics *m = registry();
    jb_metrics_observe(m, JB_M_ACK_SECONDS, 0.001);  /* exactly the first bound */
    jb_metrics_observe(m, JB_M_ACK_SECONDS, 0.0011); /* just above it */
    jb_metrics_observe(m, JB_M_ACK_SECONDS, 0.3);
    jb_metrics_observe(m, JB_M_ACK_SECONDS, 60); /* past every bound */
    jb_metrics_observe(m, JB_M_ACK_SECONDS, -1); /* a clock step counts as 0 */
    char *t = render(m);
    assert_has(t, "# TYPE janebot_socket_ack_seconds histogram");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"0.001\"} 2");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"0.0025\"} 3");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"0.25\"} 3");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"0.5\"} 4");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"5\"} 4");
    assert_has(t, "janebot_socket_ack_seconds_bucket{le=\"+Inf\"} 5");
    assert_has(t, "janebot_socket_ack_seconds_count 5");
    assert_has(t, "janebot_socket_ack_seconds_sum 60.302100");
    assert_has(t, "janebot_turn_duration_seconds_count 0");
    free(t);
    jb_metrics_free(m);
}

Test(metrics, a_family_full_of_label_values_counts_the_rest_under_other)
{
    struct jb_metrics *m = registry();
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "m%d", i);
        jb_metrics_add(m, JB_M_SLACK_CALLS, name, NULL, 1);
    }
    char *t = render(m);
    assert_has(t, "janebot_slack_api_calls_total{method=\"m0\"} 1");
    assert_has(t, "janebot_slack_api_calls_total{method=\"m46\"} 1");
    cr_assert_null(strstr(t, "method=\"m47\""), "past the cap");
    assert_has(t, "janebot_slack_api_calls_total{method=\"other\"} 53");
    free(t);
    jb_metrics_free(m);
}

static void scrape(void *ud, struct jb_metrics *m)
{
    (*(int *)ud)++;
    jb_metrics_reset(m, JB_M_SANDBOXES);
    jb_metrics_set(m, JB_M_SANDBOXES, "local", "busy", *(int *)ud);
}

Test(metrics, gauges_are_read_at_each_scrape_and_a_removed_scraper_is_not_called)
{
    struct jb_metrics *m = registry();
    int calls = 0;
    cr_assert_eq(jb_metrics_on_scrape(m, scrape, &calls), 0);
    char *t = render(m);
    assert_has(t, "janebot_sandboxes{backend=\"local\",state=\"busy\"} 1");
    free(t);
    t = render(m);
    assert_has(t, "janebot_sandboxes{backend=\"local\",state=\"busy\"} 2");
    free(t);
    jb_metrics_off_scrape(m, &calls);
    free(render(m));
    cr_assert_eq(calls, 2);
    jb_metrics_free(m);
}

Test(metrics, a_null_registry_counts_nothing_and_wrong_kinds_are_ignored)
{
    jb_metrics_add(NULL, JB_M_TURNS, "ok", NULL, 1);
    jb_metrics_observe(NULL, JB_M_TURN_SECONDS, 1);
    jb_metrics_set(NULL, JB_M_SOCKET_CONNECTED, NULL, NULL, 1);
    struct jb_metrics *m = registry();
    jb_metrics_set(m, JB_M_TURNS, "ok", NULL, 5);        /* a counter is not set */
    jb_metrics_observe(m, JB_M_TURNS, 1);                /* nor observed */
    jb_metrics_add(m, JB_M_TURN_SECONDS, NULL, NULL, 1); /* a histogram is not added to */
    char *t = render(m);
    cr_assert_null(strstr(t, "janebot_turns_total{"), "%s", t);
    assert_has(t, "janebot_turn_duration_seconds_count 0");
    free(t);
    jb_metrics_free(m);
}

Test(metrics, listen_addresses_are_host_and_port)
{
    struct jb_err e = {0};
    cr_assert_eq(jb_metrics_addr_check("X", "127.0.0.1:9464", &e), 0);
    cr_assert_eq(jb_metrics_addr_check("X", "[::1]:9464", &e), 0);
    cr_assert_eq(jb_metrics_addr_check("X", "localhost:1", &e), 0);
    const char *bad[] = {"",           "9464",          ":9464",
                         "127.0.0.1:", "127.0.0.1:0",   "127.0.0.1:65536",
                         "::1:9464",   "127.0.0.1:94a4"};
    for (size_t i = 0; i < JB_ARRAY_LEN(bad); i++) {
        cr_assert_eq(jb_metrics_addr_check("X", bad[i], &e), -1, "%s", bad[i]);
        cr_assert_eq(e.code, JB_ECONFIG);
        cr_assert(strstr(e.msg, "X=\"") && strstr(e.msg, "HOST:PORT"), "%s", e.msg);
    }
}

/* ---- the Sprites REST client counts its failed attempts ---- */

/* Answers one connection on fd with the HTTP response in ud, then closes. */
struct one_answer {
    int fd;
    const char *response;
};

static void *answer_once(void *ud)
{
    struct one_answer *a = ud;
    int c = accept(a->fd, NULL, NULL);
    if (c < 0) return NULL;
    char buf[4096];
    (void)!read(c, buf, sizeof buf);
    (void)!write(c, a->response, strlen(a->response));
    close(c);
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void sprites_call(struct jb_metrics *m, const char *url)
{
    struct sprites *sp = NULL;
    struct jb_err e = {0};
    cr_assert_eq(sprites_client_new(url, "tok-123456789", &sp, &e), 0, "%s", e.msg);
    sp->metrics = m;
    sp->rest_attempts = 1;
    struct sprites_resp r;
    if (sprites_rest(sp, "GET", "/v1/sprites", NULL, 0, &r, &e) == 0) sprites_resp_release(&r);
    sprites_client_free(sp);
}

Test(metrics, sprites_api_errors_are_counted_by_kind)
{
    struct jb_metrics *m = registry();
    int port = 0, fd = listen_loopback(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct one_answer a = {fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n"};
    pthread_t t;
    pthread_create(&t, NULL, answer_once, &a);
    sprites_call(m, url);
    pthread_join(t, NULL);
    close(fd); /* nothing listens there now: the next call cannot connect */
    sprites_call(m, url);
    char *text = render(m);
    assert_has(text, "janebot_sprites_api_errors_total{kind=\"server_error\"} 1");
    assert_has(text, "janebot_sprites_api_errors_total{kind=\"network\"} 1");
    free(text);
    jb_metrics_free(m);
}
